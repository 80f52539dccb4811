//! `verify:` for requests of one's own: no bundled defaults (the trace chain and services and the
//! metrics checks are declared), where an external system exports its spans, and declared
//! metrics checks with the sources they read.

use std::net::SocketAddr;

use super::requests::HTTP;
use super::*;

/// `HTTP` with `verify:` and the lines given under it.
fn verify(section: &str) -> String {
    format!("{HTTP}verify:\n{section}")
}

/// Traces section lines 17-20: services, a two-step chain, and the receiver on line 20.
const TRACES: &str = "  traces:
    services: [quotes-front, quotes-back]
    chain:
      - {service: quotes-front, kind: server, attributes: {http.response.status_code: \"{status}\"}, error: server}
      - {service: quotes-back, kind: server, name: quotes.v1.Prices/GetPrice}
";

/// A scrape URL for the front (line 18) and one check on line 20.
fn metrics_rule(rule: &str) -> String {
    verify(&format!(
        "  metrics:\n    scrape: {{quotes-front: http://127.0.0.1:8000/metrics}}\n    checks:\n      - {rule}\n"
    ))
}

#[test]
fn declared_trace_checks_and_the_receiver_are_read() {
    let text = verify(&format!(
        "{TRACES}    receiver: {{grpc: \"127.0.0.1:14317\", http: \"[::1]:14318\"}}\n"
    ));
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let traces = s.verify.traces.expect("traces");
    assert_eq!(traces.services, ["quotes-front", "quotes-back"]);
    let steps: Vec<_> = traces
        .chain
        .iter()
        .map(|step| (step.service.as_str(), step.name.as_deref(), step.error))
        .collect();
    assert_eq!(
        steps,
        [
            ("quotes-front", None, ErrorRule::Server),
            (
                "quotes-back",
                Some("quotes.v1.Prices/GetPrice"),
                ErrorRule::Never
            ),
        ]
    );
    assert_eq!(
        traces.chain[0].attributes["http.response.status_code"],
        "{status}"
    );
    assert_eq!(
        traces.source,
        TraceSourceSpec::Embedded {
            grpc: Some(SocketAddr::from(([127, 0, 0, 1], 14317))),
            http: Some("[::1]:14318".parse().expect("an address")),
        }
    );
    // No bundled defaults: no trace-id header to expect, no logs to read.
    assert_eq!(traces.response_header, None);
    assert!(!traces.logs);
    assert_eq!(traces.sample, SampleShare::Ratio(0.1));
    assert_eq!(traces.timeout, Duration::from_secs(30));

    // One receiver address alone; the other keeps its default.
    let text = verify(&format!(
        "{TRACES}    receiver: {{http: \"127.0.0.1:4318\"}}\n"
    ));
    let s = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(
        s.verify.traces.expect("traces").source,
        TraceSourceSpec::Embedded {
            grpc: None,
            http: Some(SocketAddr::from(([127, 0, 0, 1], 4318))),
        }
    );
    // A header named by the scenario is checked.
    let text = verify(&format!("{TRACES}    response_header: X-Trace-Id\n"));
    let s = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(
        s.verify.traces.expect("traces").response_header.as_deref(),
        Some("X-Trace-Id")
    );
}

#[test]
fn bad_declared_trace_checks_say_where_and_what() {
    const DECLARE: &str = "required: the requests are not the bundled API's, so there is no \
                           default (name the services and the spans each request should produce)";
    let services = "x.yaml:17:11: verify.traces.services: ".to_owned() + DECLARE;
    let chain = "x.yaml:17:11: verify.traces.chain: ".to_owned() + DECLARE;
    let both = format!("{services}\n{chain}");
    let empty_services = "x.yaml:17:3: verify.traces.services: ".to_owned() + DECLARE;
    let empty_chain = "x.yaml:17:3: verify.traces.chain: ".to_owned() + DECLARE;
    let empty = format!("{empty_services}\n{empty_chain}");
    let only_chain = "x.yaml:17:11: verify.traces.chain: ".to_owned() + DECLARE;
    let cases = [
        (verify("  traces: {}\n"), both.as_str()),
        (verify("  traces:\n"), empty.as_str()),
        (
            verify("  traces: {services: [quotes-front]}\n"),
            only_chain.as_str(),
        ),
        (
            verify(&format!(
                "{TRACES}    receiver: {{grpc: \"localhost:4317\"}}\n"
            )),
            "x.yaml:22:22: verify.traces.receiver.grpc: expected an address such as \
             127.0.0.1:4317, got \"localhost:4317\"",
        ),
        (
            verify(&format!(
                "{TRACES}    receiver: {{otlp: \"127.0.0.1:4317\"}}\n"
            )),
            "x.yaml:22:16: verify.traces.receiver.otlp: unknown key; expected one of: grpc, http",
        ),
        (
            verify(&format!(
                "{TRACES}    source: jaeger\n    jaeger: {{url: http://127.0.0.1:16686}}\n    \
                 receiver: {{grpc: \"127.0.0.1:4317\"}}\n"
            )),
            "x.yaml:24:15: verify.traces.receiver: given, but source is jaeger",
        ),
        (
            verify(&format!("{TRACES}    logs: true\n")),
            "x.yaml:22:11: verify.traces.logs: log checks need a managed system (the harness \
             reads the services' log files)",
        ),
        (
            verify(&TRACES.replace("[quotes-front, quotes-back]", "[]")),
            "x.yaml:18:15: verify.traces.services: expected at least one service name, got an \
             empty sequence",
        ),
    ];
    assert_errors(cases);
}

#[test]
fn declared_metrics_checks_are_read() {
    let text = verify(
        "  metrics:
    scrape: {quotes-front: http://127.0.0.1:8000/metrics}
    checks:
      - service: quotes-front
        metric: quotes_requests_total
        labels: {route: /quote, code: \"{status}\"}
        equals: responses
        kinds: [quote]
      - {service: quotes-front, metric: quotes_latency_seconds_count, labels: {route: /quote}, equals: {metric: quotes_requests_total, labels: {route: /quote}}}
",
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let metrics = s.verify.metrics.expect("metrics");
    assert!(metrics.scrape);
    assert_eq!(
        metrics.targets,
        [(
            "quotes-front".to_owned(),
            "http://127.0.0.1:8000/metrics".to_owned()
        )]
    );
    assert_eq!(metrics.prometheus, None);
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    assert_eq!(
        metrics.rules,
        [
            MetricRule {
                service: "quotes-front".into(),
                metric: "quotes_requests_total".into(),
                labels: pairs(&[("route", "/quote"), ("code", "{status}")]),
                equals: Equals::Responses {
                    kinds: vec!["quote".into()]
                },
                at: "x.yaml:20:9: verify.metrics.checks[0]".into(),
            },
            MetricRule {
                service: "quotes-front".into(),
                metric: "quotes_latency_seconds_count".into(),
                labels: pairs(&[("route", "/quote")]),
                equals: Equals::Metric {
                    metric: "quotes_requests_total".into(),
                    labels: pairs(&[("route", "/quote")]),
                },
                at: "x.yaml:25:9: verify.metrics.checks[1]".into(),
            },
        ]
    );

    let text = verify(
        "  metrics:
    scrape: false
    prometheus: {url: http://127.0.0.1:9090/, services: {quotes-front: '{job=\"front\"}'}}
    checks: [{service: quotes-front, metric: quotes_requests_total, equals: responses}]
",
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let metrics = s.verify.metrics.expect("metrics");
    assert!(!metrics.scrape && metrics.targets.is_empty());
    assert_eq!(
        metrics.prometheus,
        Some(PrometheusSpec {
            url: "http://127.0.0.1:9090".into(),
            access: Access::default(),
            selectors: vec![("quotes-front".into(), "{job=\"front\"}".into())],
        })
    );
    assert_eq!(
        metrics.rules[0].equals,
        Equals::Responses { kinds: Vec::new() },
        "no kinds: all of them"
    );
}

#[test]
fn bad_declared_metrics_checks_say_where_and_what() {
    const DECLARE: &str = "required: the requests are not the bundled API's, so there are no \
                           default metrics checks (declare which series must grow by what the \
                           harness received)";
    let rule = |fields: &str| {
        metrics_rule(&format!(
            "{{service: quotes-front, metric: quotes_requests_total, {fields}}}"
        ))
    };
    let no_checks = "x.yaml:18:5: verify.metrics.checks: ".to_owned() + DECLARE;
    let managed_no_checks = "x.yaml:17:3: verify.metrics.checks: ".to_owned() + DECLARE;
    let managed = edit_of(
        &verify("  metrics:\n"),
        &[(
            "  external: {target: http://127.0.0.1:8000}",
            "  managed: {}",
        )],
    );
    let cases = [
        (
            verify("  metrics:\n"),
            "x.yaml:17:3: verify.metrics: an external system needs verify.metrics.scrape URLs or \
             prometheus",
        ),
        (managed, managed_no_checks.as_str()),
        (
            verify("  metrics:\n    scrape: {quotes-front: http://127.0.0.1:8000/metrics}\n"),
            no_checks.as_str(),
        ),
        (
            rule("equals: responses, kinds: [quote, nope]"),
            "x.yaml:20:9: verify.metrics.checks[0].kinds[1]: no request kind \"nope\" (there \
             are: quote)",
        ),
        (
            rule("equals: {metric: other_total}, kinds: [quote]"),
            "x.yaml:20:9: verify.metrics.checks[0].kinds: only with equals: responses",
        ),
        (
            rule("labels: {code: \"{status}\"}, equals: {metric: other_total}"),
            "x.yaml:20:9: verify.metrics.checks[0].labels: {status} and {code} stand for the \
             outcomes received: only with equals: responses",
        ),
        (
            rule("labels: {code: \"{status}\", grpc: \"{code}\"}, equals: responses"),
            "x.yaml:20:9: verify.metrics.checks[0].labels: at most one label may stand for the \
             outcome",
        ),
        (
            rule("equals: requests"),
            "x.yaml:20:72: verify.metrics.checks[0].equals: expected responses, or a mapping \
             {metric: NAME, labels: {...}}, got \"requests\"",
        ),
        (
            rule("equals: {labels: {a: b}}"),
            "x.yaml:20:72: verify.metrics.checks[0].equals.metric: required key is missing",
        ),
        (
            rule("equals: responses, scale: 2"),
            "x.yaml:20:83: verify.metrics.checks[0].scale: unknown key; expected one of: \
             service, metric, labels, equals, kinds",
        ),
        (
            metrics_rule("{service: quotes-front, metric: quotes_requests_total}"),
            "x.yaml:20:9: verify.metrics.checks[0].equals: required key is missing",
        ),
        (
            metrics_rule("{service: quotes-front, metric: 2xx_total, equals: responses}"),
            "x.yaml:20:41: verify.metrics.checks[0].metric: expected a metric name such as \
             http_requests_total, got \"2xx_total\"",
        ),
        (
            metrics_rule(
                "{service: quotes-back, metric: quotes_requests_total, equals: responses}",
            ),
            "x.yaml:20:9: verify.metrics.checks[0]: service \"quotes-back\" is not one the \
             metrics are read from (quotes-front)",
        ),
        (
            verify(
                "  metrics:\n    scrape: false\n    prometheus: {url: http://127.0.0.1:9090}\n    \
                 checks: [{service: quotes-front, metric: m_total, equals: responses}]\n",
            ),
            "x.yaml:20:14: verify.metrics.checks[0]: service \"quotes-front\" is not one the \
             metrics are read from (api-gateway, core-engine)",
        ),
        (
            verify(
                "  metrics:\n    scrape: false\n    prometheus: {url: http://p:9090, services: \
                 {quotes-front: '{job=\"front\"}'}}\n    checks: [{service: back, metric: \
                 m_total, equals: responses}]\n",
            ),
            "x.yaml:20:14: verify.metrics.checks[0]: service \"back\" is not one the metrics are \
             read from (quotes-front)",
        ),
        (
            verify(
                "  metrics:\n    checks: [{service: quotes-front, metric: m_total, equals: \
                 responses}]\n",
            ),
            "x.yaml:18:5: verify.metrics.scrape: scraping an external system needs its metrics \
             URLs ({service: URL}), or scrape: false with prometheus",
        ),
        (
            metrics_rule("{service: quotes-front, metric: m_total, equals: responses}")
                .replace("http://127.0.0.1:8000/metrics", "ftp://h/metrics"),
            "x.yaml:18:28: verify.metrics.scrape.quotes-front: expected an http:// URL such as \
             http://127.0.0.1:16686, got \"ftp://h/metrics\"",
        ),
    ];
    assert_errors(cases);
}
