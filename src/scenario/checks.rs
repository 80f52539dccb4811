//! The `verify:` section and each kind's `trace_sample`, with the defaults that fit the bundled
//! engine and gateway: a scenario that writes `verify: {traces: {}}` checks the full chain.

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::{
    Access, ChainStep, Equals, ErrorRule, MetricRule, MetricsChecks, PrometheusSpec, Protocol,
    SampleShare, TraceChecks, TraceSourceSpec, Verify,
};
use super::read::{
    Cx, boolean, duration, http_url, join, list, mapping, string, strings, text, word,
};
use super::tree::{Node, Origin, Value};
use crate::tls::TlsSpec;
use crate::trace::SpanKind;

/// How long a trace may take to arrive after the load ends, unless the scenario says.
const DEFAULT_TRACE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_SAMPLE: SampleShare = SampleShare::Ratio(0.1);
/// What an expected attribute value may stand for: the outcome the harness received.
const PLACEHOLDERS: &[&str] = &["{status}", "{code}"];

/// `bundled` says whether every request kind is the bundled API's shorthand: only then do the
/// bundled system's chain and services apply by default.
pub(super) fn verify(
    cx: &mut Cx,
    node: &Node,
    protocol: Protocol,
    system: Declared<'_>,
) -> Option<Verify> {
    let (managed, bundled) = (system.managed, system.bundled);
    let fields = mapping(cx, node, "verify", Some(&["traces", "metrics"]))?;
    let before = cx.problems.len();
    let traces = fields
        .has("traces")
        .then(|| {
            let at = fields
                .entries
                .iter()
                .find(|e| e.1 == "traces")
                .map(|e| e.0.origin);
            traces(
                cx,
                fields.get("traces"),
                at.unwrap_or(node.origin),
                protocol,
                managed,
                bundled,
            )
        })
        .flatten();
    let metrics = fields
        .has("metrics")
        .then(|| metrics(cx, fields.get("metrics"), node.origin, system))
        .flatten();
    (cx.problems.len() == before).then_some(Verify { traces, metrics })
}

/// The trace checks for the bundled services, reached over `protocol`.
pub(crate) fn bundled_trace_checks(protocol: Protocol, managed: bool) -> TraceChecks {
    let (gateway, engine) = (
        engine::gateway::DEFAULT_SERVICE_NAME,
        engine::core_engine::DEFAULT_SERVICE_NAME,
    );
    let rpc = |code: bool| {
        let mut attributes = attrs(&[
            ("rpc.system", "grpc"),
            ("rpc.service", engine::core_engine::SERVICE_NAME),
            ("rpc.method", engine::core_engine::FETCH_METHOD),
        ]);
        if code {
            attributes.insert("rpc.grpc.status_code".into(), "{code}".into());
        }
        attributes
    };
    let step = |service: &str, kind, attributes, error| ChainStep {
        service: service.to_owned(),
        kind,
        name: None,
        attributes,
        error,
        only_on_success: false,
    };
    let engine_steps = |direct: bool| {
        [
            ChainStep {
                name: Some(engine::core_engine::FETCH_SPAN_NAME.to_owned()),
                ..step(engine, SpanKind::Server, rpc(direct), ErrorRule::Server)
            },
            ChainStep {
                only_on_success: true,
                ..step(
                    engine,
                    SpanKind::Internal,
                    BTreeMap::new(),
                    ErrorRule::Never,
                )
            },
        ]
    };
    let (services, chain, response_header) = match protocol {
        Protocol::Http => {
            let server = attrs(&[
                ("http.request.method", "POST"),
                ("http.route", engine::gateway::FETCH_ROUTE),
                ("http.response.status_code", "{status}"),
            ]);
            let mut chain = vec![
                step(gateway, SpanKind::Server, server, ErrorRule::Server),
                step(gateway, SpanKind::Client, rpc(false), ErrorRule::Any),
            ];
            chain.extend(engine_steps(false));
            (vec![gateway, engine], chain, Some("X-Trace-ID".to_owned()))
        }
        Protocol::Grpc => (vec![engine], engine_steps(true).to_vec(), None),
    };
    TraceChecks {
        sample: DEFAULT_SAMPLE,
        source: TraceSourceSpec::Embedded {
            grpc: None,
            http: None,
        },
        timeout: DEFAULT_TRACE_TIMEOUT,
        response_header,
        logs: managed,
        services: services.into_iter().map(str::to_owned).collect(),
        chain,
    }
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn traces(
    cx: &mut Cx,
    node: Option<&Node>,
    key_origin: Origin,
    protocol: Protocol,
    managed: bool,
    bundled: bool,
) -> Option<TraceChecks> {
    const KEYS: &[&str] = &[
        "sample",
        "source",
        "receiver",
        "jaeger",
        "timeout",
        "response_header",
        "logs",
        "services",
        "chain",
    ];
    let mut checks = bundled_trace_checks(protocol, managed);
    if !bundled {
        // Declared requests: the services and chain are the scenario's to say.
        checks.services.clear();
        checks.chain.clear();
        checks.response_header = None;
    }
    let path = "verify.traces";
    let Some(node) = node else {
        if !bundled {
            cx.err(key_origin, &join(path, "chain"), DECLARE);
            return None;
        }
        return Some(checks);
    };
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let before = cx.problems.len();
    if !bundled {
        for key in ["services", "chain"] {
            if !fields.has(key) {
                cx.err(node.origin, &fields.path(key), DECLARE);
            }
        }
    }
    if let Some(n) = fields.get("sample") {
        checks.sample = sample_share(cx, n, &fields.path("sample"))?;
    }
    let source = fields.get("source").map_or(Some("embedded"), |n| {
        word(
            cx,
            n,
            &fields.path("source"),
            &[("embedded", "embedded"), ("jaeger", "jaeger")],
        )
    });
    let jaeger = fields
        .get("jaeger")
        .and_then(|n| jaeger(cx, n, &fields.path("jaeger")));
    match (source, jaeger) {
        (Some("jaeger"), Some(spec)) => checks.source = spec,
        (Some("jaeger"), None) if !fields.has("jaeger") => {
            cx.err(
                node.origin,
                &fields.path("jaeger"),
                "required when source is jaeger (or pass --jaeger URL)",
            );
        }
        (Some("embedded"), None) => {
            if let Some(n) = fields.get("receiver") {
                checks.source = receiver(cx, n, &fields.path("receiver"))?;
            }
        }
        (Some("embedded"), Some(_)) => {
            if let Some(n) = fields.get("jaeger") {
                cx.err(
                    n.origin,
                    &fields.path("jaeger"),
                    "given, but source is embedded",
                );
            }
        }
        _ => {}
    }
    if let Some(n) = fields.get("timeout") {
        checks.timeout = duration(cx, n, &fields.path("timeout"), true)?;
    }
    if fields.has("response_header") {
        checks.response_header = match fields.get("response_header") {
            Some(n) => Some(header_name(cx, n, &fields.path("response_header"))?),
            None => None,
        };
    }
    if let Some(n) = fields.get("logs") {
        let logs = boolean(cx, n, &fields.path("logs"))?;
        if logs && !managed {
            cx.err(
                n.origin,
                &fields.path("logs"),
                "log checks need a managed system (the harness reads the services' log files)",
            );
        }
        checks.logs = logs;
    }
    if let Some(n) = fields.get("services") {
        let services = strings(cx, Some(n), &fields.path("services"), false);
        if matches!(&n.value, Value::Seq(items) if items.is_empty()) {
            cx.expected::<()>(n, &fields.path("services"), "at least one service name");
        }
        checks.services = services;
    }
    if let Some(n) = fields.get("chain") {
        let chain = list(cx, Some(n), &fields.path("chain"), chain_step);
        if matches!(&n.value, Value::Seq(items) if items.is_empty()) {
            cx.expected::<()>(n, &fields.path("chain"), "at least one step");
        }
        checks.chain = chain;
    }
    (cx.problems.len() == before).then_some(checks)
}

/// Why `services` and `chain` must be written for declared requests.
const DECLARE: &str = "required: the requests are not the bundled API's, so there is no default \
     (name the services and the spans each request should produce)";

/// `receiver: {grpc: ADDR, http: ADDR}`: where the embedded receiver listens for an external
/// system's exports.
fn receiver(cx: &mut Cx, node: &Node, path: &str) -> Option<TraceSourceSpec> {
    let fields = mapping(cx, node, path, Some(&["grpc", "http"]))?;
    let mut address = |key: &str| match fields.get(key) {
        None => Some(None),
        Some(n) => match &n.value {
            Value::Str(s) => match s.parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(Some(addr)),
                Err(_) => cx.expected(n, &fields.path(key), "an address such as 127.0.0.1:4317"),
            },
            _ => cx.expected(n, &fields.path(key), "an address such as 127.0.0.1:4317"),
        },
    };
    let grpc = address("grpc");
    let http = address("http");
    Some(TraceSourceSpec::Embedded {
        grpc: grpc?,
        http: http?,
    })
}

/// `50` (a count), `10%` or `0.1` (a ratio).
pub(super) fn sample_share(cx: &mut Cx, node: &Node, path: &str) -> Option<SampleShare> {
    const WHAT: &str = "a count such as 50 or a share such as 10% or 0.1";
    match &node.value {
        Value::Int(i) if *i >= 0 => u64::try_from(*i).ok().map(SampleShare::Count),
        Value::Float(x) if (0.0..=1.0).contains(x) => Some(SampleShare::Ratio(*x)),
        Value::Str(s) => match s
            .trim()
            .strip_suffix('%')
            .map(str::trim)
            .map(str::parse::<f64>)
        {
            Some(Ok(percent)) if (0.0..=100.0).contains(&percent) => {
                Some(SampleShare::Ratio(percent / 100.0))
            }
            _ => cx.expected(node, path, WHAT),
        },
        _ => cx.expected(node, path, WHAT),
    }
}

fn jaeger(cx: &mut Cx, node: &Node, path: &str) -> Option<TraceSourceSpec> {
    let fields = mapping(cx, node, path, Some(&["url", "api", "tls", "headers"]))?;
    let url = fields
        .required(cx, "url")
        .and_then(|n| http_url(cx, n, &fields.path("url")));
    let access = access(cx, &fields);
    let api = fields.get("api").map_or(Some("auto"), |n| {
        word(
            cx,
            n,
            &fields.path("api"),
            &[("auto", "auto"), ("v3", "v3"), ("v1", "v1")],
        )
    });
    Some(TraceSourceSpec::Jaeger {
        url: url?,
        api: api?.to_owned(),
        access: access?,
    })
}

fn header_name(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Str(s) if hyper::header::HeaderName::from_bytes(s.as_bytes()).is_ok() => {
            Some(s.clone())
        }
        _ => cx.expected(node, path, "an HTTP header name such as X-Trace-ID"),
    }
}

fn chain_step(cx: &mut Cx, node: &Node, path: &str) -> Option<ChainStep> {
    const KEYS: &[&str] = &[
        "service",
        "kind",
        "name",
        "attributes",
        "error",
        "only_on_success",
    ];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let before = cx.problems.len();
    let service = fields
        .required(cx, "service")
        .and_then(|n| string(cx, n, &fields.path("service")));
    let kind = fields.required(cx, "kind").and_then(|n| {
        word(
            cx,
            n,
            &fields.path("kind"),
            &[
                ("server", SpanKind::Server),
                ("client", SpanKind::Client),
                ("internal", SpanKind::Internal),
                ("producer", SpanKind::Producer),
                ("consumer", SpanKind::Consumer),
            ],
        )
    });
    let name = fields
        .get("name")
        .and_then(|n| string(cx, n, &fields.path("name")));
    let mut attributes = BTreeMap::new();
    if let Some(n) = fields.get("attributes") {
        let at = fields.path("attributes");
        if let Some(map) = mapping(cx, n, &at, None) {
            for &(_, key, node) in &map.entries {
                let key_path = join(&at, key);
                let Some(value) = text(cx, node, &key_path) else {
                    continue;
                };
                if value.starts_with('{') && !PLACEHOLDERS.contains(&value.as_str()) {
                    cx.expected::<()>(
                        node,
                        &key_path,
                        "a value, or {status} (the HTTP status received) or {code} (the gRPC code)",
                    );
                    continue;
                }
                attributes.insert(key.to_owned(), value);
            }
        }
    }
    let error = fields.get("error").map_or(Some(ErrorRule::Never), |n| {
        word(
            cx,
            n,
            &fields.path("error"),
            &[
                ("server", ErrorRule::Server),
                ("any", ErrorRule::Any),
                ("never", ErrorRule::Never),
            ],
        )
    });
    let only_on_success = fields.get("only_on_success").map_or(Some(false), |n| {
        boolean(cx, n, &fields.path("only_on_success"))
    });
    let step = ChainStep {
        service: service?,
        kind: kind?,
        name,
        attributes,
        error: error?,
        only_on_success: only_on_success?,
    };
    (cx.problems.len() == before).then_some(step)
}

fn metrics(
    cx: &mut Cx,
    node: Option<&Node>,
    verify: Origin,
    system: Declared<'_>,
) -> Option<MetricsChecks> {
    const KEYS: &[&str] = &[
        "scrape",
        "gateway_metrics",
        "engine_metrics",
        "prometheus",
        "checks",
        "tls",
        "headers",
    ];
    let mut checks = MetricsChecks {
        scrape: true,
        ..MetricsChecks::default()
    };
    let path = "verify.metrics";
    let Some(node) = node else {
        if !system.managed {
            cx.err(
                verify,
                path,
                "an external system needs verify.metrics.scrape URLs or prometheus",
            );
            return None;
        }
        if !system.bundled {
            cx.err(verify, &join(path, "checks"), DECLARE_METRICS);
            return None;
        }
        return Some(checks);
    };
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let before = cx.problems.len();
    if let Some(n) = fields.get("scrape") {
        match &n.value {
            Value::Map(_) => checks.targets = named(cx, n, &fields.path("scrape"), url_text),
            _ => checks.scrape = boolean(cx, n, &fields.path("scrape"))?,
        }
    }
    for (key, service) in [
        ("gateway_metrics", engine::gateway::DEFAULT_SERVICE_NAME),
        ("engine_metrics", engine::core_engine::DEFAULT_SERVICE_NAME),
    ] {
        if let Some(url) = fields
            .get(key)
            .and_then(|n| http_url(cx, n, &fields.path(key)))
        {
            checks.targets.push((service.to_owned(), url));
        }
    }
    if let Some(n) = fields.get("prometheus") {
        checks.prometheus = prometheus(cx, n, &fields.path("prometheus"));
    }
    if let Some(access) = access(cx, &fields) {
        checks.access = access;
    }
    if let Some(n) = fields.get("checks") {
        checks.rules = list(cx, Some(n), &fields.path("checks"), |cx, item, at| {
            metric_rule(cx, item, at, system.kinds)
        });
    }
    if cx.problems.len() != before {
        return None;
    }
    let external_scrape = checks.scrape && !system.managed;
    if !checks.scrape && checks.prometheus.is_none() {
        cx.err(
            node.origin,
            path,
            "nothing to read the metrics from: scrape is false and no prometheus is given",
        );
    } else if external_scrape && checks.targets.is_empty() {
        cx.err(
            node.origin,
            &fields.path("scrape"),
            "scraping an external system needs its metrics URLs ({service: URL}), or scrape: false with prometheus",
        );
    } else if external_scrape
        && system.bundled
        && checks.rules.is_empty()
        && checks.targets.len() < 2
    {
        cx.err(
            node.origin,
            path,
            "the bundled system's checks scrape both services: give gateway_metrics and engine_metrics",
        );
    }
    if !system.bundled && checks.rules.is_empty() {
        cx.err(node.origin, &fields.path("checks"), DECLARE_METRICS);
    }
    // Every declared check's service must be one the sources read.
    let known: Vec<&str> = if external_scrape {
        checks.targets.iter().map(|(s, _)| s.as_str()).collect()
    } else if let Some(prometheus) = &checks.prometheus {
        prometheus
            .selectors
            .iter()
            .map(|(s, _)| s.as_str())
            .collect()
    } else {
        Vec::new()
    };
    if !known.is_empty() {
        for rule in &checks.rules {
            if !known.contains(&rule.service.as_str()) {
                cx.err(
                    node.origin,
                    &rule.at,
                    format!(
                        "service {:?} is not one the metrics are read from ({})",
                        rule.service,
                        known.join(", ")
                    ),
                );
            }
        }
    }
    (cx.problems.len() == before).then_some(checks)
}

/// `tls:` and `headers:` of a query API or of the scrape.
fn access(cx: &mut Cx, fields: &super::read::Fields<'_>) -> Option<Access> {
    let tls = fields.read_or(cx, "tls", TlsSpec::default(), super::system::tls);
    let headers = match fields.get("headers") {
        None => Some(Vec::new()),
        Some(n) => {
            let mut placeholders = Vec::new();
            let path = fields.path("headers");
            let headers = super::calls::named_templates(cx, n, &path, &mut placeholders, |name| {
                hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
            });
            if let Some((var, origin, at)) = placeholders.first() {
                cx.err(
                    *origin,
                    at,
                    format!(
                        "\"{{{{{var}}}}}\" has no values here; ${{NAME}} reads the environment"
                    ),
                );
                return None;
            }
            headers
        }
    };
    Some(Access {
        tls: tls?,
        headers: headers?,
    })
}

/// What the metrics defaults depend on.
#[derive(Clone, Copy)]
pub(super) struct Declared<'a> {
    /// The harness launches the bundled services.
    pub(super) managed: bool,
    /// Every request kind is the bundled API's shorthand.
    pub(super) bundled: bool,
    /// The request kinds' names.
    pub(super) kinds: &'a [String],
}

/// Why `checks` must be written for a system of one's own.
const DECLARE_METRICS: &str = "required: the requests are not the bundled API's, so there are no \
     default metrics checks (declare which series must grow by what the harness received)";

/// A mapping of names to values read by `read`.
fn named(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    read: impl Fn(&mut Cx, &Node, &str) -> Option<String>,
) -> Vec<(String, String)> {
    let Some(fields) = mapping(cx, node, path, None) else {
        return Vec::new();
    };
    fields
        .entries
        .iter()
        .filter_map(|&(_, key, value)| {
            read(cx, value, &join(path, key)).map(|v| (key.to_owned(), v))
        })
        .collect()
}

fn url_text(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    http_url(cx, node, path)
}

/// One declared metrics check.
fn metric_rule(cx: &mut Cx, node: &Node, path: &str, kinds: &[String]) -> Option<MetricRule> {
    const KEYS: &[&str] = &["service", "metric", "labels", "equals", "kinds"];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let before = cx.problems.len();
    let service = fields
        .required(cx, "service")
        .and_then(|n| string(cx, n, &fields.path("service")));
    let metric = fields
        .required(cx, "metric")
        .and_then(|n| metric_name(cx, n, &fields.path("metric")));
    let labels = fields
        .get("labels")
        .map(|n| named(cx, n, &fields.path("labels"), text))
        .unwrap_or_default();
    let wanted = strings(cx, fields.get("kinds"), &fields.path("kinds"), false);
    for (i, kind) in wanted.iter().enumerate() {
        if !kinds.contains(kind) {
            let at = super::read::index(&fields.path("kinds"), i);
            cx.err(
                node.origin,
                &at,
                format!("no request kind {kind:?} (there are: {})", kinds.join(", ")),
            );
        }
    }
    let equals = fields.required(cx, "equals").and_then(|n| {
        let at = fields.path("equals");
        match &n.value {
            Value::Str(s) if s == "responses" => Some(Equals::Responses {
                kinds: wanted.clone(),
            }),
            Value::Map(_) => {
                let inner = mapping(cx, n, &at, Some(&["metric", "labels"]))?;
                let metric = inner
                    .required(cx, "metric")
                    .and_then(|m| metric_name(cx, m, &inner.path("metric")))?;
                let labels = inner
                    .get("labels")
                    .map(|m| named(cx, m, &inner.path("labels"), text))
                    .unwrap_or_default();
                Some(Equals::Metric { metric, labels })
            }
            _ => cx.expected(
                n,
                &at,
                "responses, or a mapping {metric: NAME, labels: {...}}",
            ),
        }
    });
    if let Some(Equals::Metric { .. }) = &equals {
        if fields.has("kinds") {
            cx.err(
                node.origin,
                &fields.path("kinds"),
                "only with equals: responses",
            );
        }
        if labels
            .iter()
            .any(|(_, v)| PLACEHOLDERS.contains(&v.as_str()))
        {
            cx.err(
                node.origin,
                &fields.path("labels"),
                "{status} and {code} stand for the outcomes received: only with equals: responses",
            );
        }
    }
    let placeholders = labels
        .iter()
        .filter(|(_, v)| PLACEHOLDERS.contains(&v.as_str()))
        .count();
    if placeholders > 1 {
        cx.err(
            node.origin,
            &fields.path("labels"),
            "at most one label may stand for the outcome",
        );
    }
    if cx.problems.len() != before {
        return None;
    }
    Some(MetricRule {
        service: service?,
        metric: metric?,
        labels,
        equals: equals?,
        at: cx.position(node.origin, path),
    })
}

/// A Prometheus metric name.
fn metric_name(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Str(s)
            if !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') =>
        {
            Some(s.clone())
        }
        _ => cx.expected(node, path, "a metric name such as http_requests_total"),
    }
}

fn prometheus(cx: &mut Cx, node: &Node, path: &str) -> Option<PrometheusSpec> {
    let fields = mapping(
        cx,
        node,
        path,
        Some(&["url", "gateway", "engine", "services", "tls", "headers"]),
    )?;
    let url = fields
        .required(cx, "url")
        .and_then(|n| http_url(cx, n, &fields.path("url")));
    let access = access(cx, &fields)?;
    if let Some(n) = fields.get("services") {
        let selectors = named(cx, n, &fields.path("services"), string);
        return Some(PrometheusSpec {
            url: url?,
            access,
            selectors,
        });
    }
    let mut spec = PrometheusSpec::bundled(url?);
    spec.access = access;
    for ((_, selector), key) in spec.selectors.iter_mut().zip(["gateway", "engine"]) {
        if let Some(n) = fields.get(key) {
            *selector = string(cx, n, &fields.path(key))?;
        }
    }
    Some(spec)
}
