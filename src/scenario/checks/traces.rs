//! `verify.traces`: the sample, the source (the embedded receiver or Jaeger, with its access),
//! and the services and chain each sampled request's trace must show; the bundled system's
//! defaults when every request is its shorthand.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::model::{
    ChainStep, ErrorRule, Protocol, SampleShare, TraceChecks, TraceSourceSpec,
};
use super::super::read::{
    Cx, Fields, boolean, duration, http_url, join, list, mapping, string, strings, text, word,
};
use super::super::tree::{Node, Origin, Value};
use super::PLACEHOLDERS;
use super::metrics::access;
use crate::trace::SpanKind;

/// How long a trace may take to arrive after the load ends, unless the scenario says.
const DEFAULT_TRACE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_SAMPLE: SampleShare = SampleShare::Ratio(0.1);

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
        // A websocket: kind is never the shorthand, so never gets these defaults.
        Protocol::Http | Protocol::WebSocket => {
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

pub(super) fn traces(
    cx: &mut Cx,
    node: Option<&Node>,
    key_origin: Origin,
    protocol: Protocol,
    managed: bool,
    bundled: bool,
    launched_jaeger: bool,
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
    if launched_jaeger {
        checks.source = TraceSourceSpec::ManagedJaeger {
            api: "auto".to_owned(),
        };
    }
    if !bundled {
        // Declared requests: the services and chain are the scenario's to say.
        checks.services.clear();
        checks.chain.clear();
        checks.response_header = None;
    }
    let path = "verify.traces";
    let Some(node) = node else {
        if !bundled {
            for key in ["services", "chain"] {
                cx.err(key_origin, &join(path, key), DECLARE);
            }
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
    let default_source = if launched_jaeger {
        "jaeger"
    } else {
        "embedded"
    };
    let source = fields.get("source").map_or(Some(default_source), |n| {
        word(
            cx,
            n,
            &fields.path("source"),
            &[("embedded", "embedded"), ("jaeger", "jaeger")],
        )
    });
    if let (Some("jaeger"), Some(n)) = (source, fields.get("receiver")) {
        cx.err(
            n.origin,
            &fields.path("receiver"),
            "given, but source is jaeger",
        );
    }
    if launched_jaeger {
        launched(cx, &fields, source, &mut checks);
    } else {
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
pub(in crate::scenario) fn sample_share(
    cx: &mut Cx,
    node: &Node,
    path: &str,
) -> Option<SampleShare> {
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

/// The source when the harness launches Jaeger: its query API, of which only `jaeger.api` may be
/// chosen; the services export nowhere else, so the embedded receiver would receive nothing.
fn launched(cx: &mut Cx, fields: &Fields<'_>, source: Option<&str>, checks: &mut TraceChecks) {
    if let (Some("embedded"), Some(entry)) =
        (source, fields.entries.iter().find(|e| e.1 == "source"))
    {
        cx.err(
            entry.2.origin,
            &fields.path("source"),
            "the services export to the Jaeger the harness launches (system.managed.jaeger); \
             expected jaeger, or no source",
        );
        return;
    }
    let Some(node) = fields.get("jaeger") else {
        return;
    };
    let path = fields.path("jaeger");
    let Some(jaeger) = mapping(cx, node, &path, Some(&["url", "api", "tls", "headers"])) else {
        return;
    };
    for key in ["url", "tls", "headers"] {
        if let Some(entry) = jaeger.entries.iter().find(|e| e.1 == key) {
            cx.err(
                entry.0.origin,
                &jaeger.path(key),
                "given, but the harness launches Jaeger (system.managed.jaeger) and knows its \
                 loopback URL",
            );
        }
    }
    if let Some(n) = jaeger.get("api")
        && let Some(api) = word(
            cx,
            n,
            &jaeger.path("api"),
            &[("auto", "auto"), ("v3", "v3"), ("v1", "v1")],
        )
    {
        checks.source = TraceSourceSpec::ManagedJaeger {
            api: api.to_owned(),
        };
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
