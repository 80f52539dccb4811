//! `verify.metrics`: where the metrics are read (the services' own endpoints, or Prometheus, each
//! with its access) and the checks a scenario declares for its own system.

use super::super::model::{Access, Equals, MetricRule, MetricsChecks, PrometheusSpec};
use super::super::read::{Cx, boolean, http_url, join, list, mapping, string, strings, text};
use super::super::tree::{Node, Origin, Value};
use super::{Declared, PLACEHOLDERS};
use crate::tls::TlsSpec;

pub(super) fn metrics(
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
        // Every rule was read (else this point is not reached): item `i` is rule `i`.
        let items = match fields.get("checks").map(|n| &n.value) {
            Some(Value::Seq(items)) => items.as_slice(),
            _ => &[],
        };
        for (i, (rule, item)) in checks.rules.iter().zip(items).enumerate() {
            if !known.contains(&rule.service.as_str()) {
                cx.err(
                    item.origin,
                    &super::super::read::index(&fields.path("checks"), i),
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
pub(super) fn access(cx: &mut Cx, fields: &super::super::read::Fields<'_>) -> Option<Access> {
    let tls = fields.read_or(cx, "tls", TlsSpec::default(), super::super::system::tls);
    let headers = match fields.get("headers") {
        None => Some(Vec::new()),
        Some(n) => {
            let mut placeholders = Vec::new();
            let path = fields.path("headers");
            let headers =
                super::super::calls::named_templates(cx, n, &path, &mut placeholders, |name| {
                    hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                });
            if let Some(var) = placeholders.iter().find(|p| !p.env) {
                cx.err(
                    var.origin,
                    &var.at,
                    format!(
                        "\"{{{{{}}}}}\" has no values here; ${{NAME}} reads the environment",
                        var.name
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
            let at = super::super::read::index(&fields.path("kinds"), i);
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
