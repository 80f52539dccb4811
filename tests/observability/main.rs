//! The observability stack (`docker-compose-observability.yml`, `observability/`), checked without
//! Docker: promtool validates the Prometheus configuration, the alert rules, the dashboards'
//! queries and the rules' unit tests; every metric the alerts and dashboards read must be exported
//! by the real services; and the compose file must agree with the services' defaults, the
//! Prometheus configuration, Jaeger's and Grafana's. Each checker is also shown to catch a fault.

#[path = "../support/mod.rs"]
mod support;

mod queries;
mod stack;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::metrics::scrape::parse_exposition;
use harness::system::{ManagedSystem, ServiceLaunch};
use queries::{Query, Reference};
use stack::{Defaults, Files};

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");
const DASHBOARDS: &[&str] = &[
    "observability/grafana/dashboards/api-gateway-overview.json",
    "observability/grafana/dashboards/core-engine-overview.json",
    "observability/grafana/dashboards/system-health.json",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs promtool from the repository root (relative paths in the files resolve as in the stack)
/// and fails the test with its output unless it succeeds.
fn promtool(promtool: &Path, args: &[&str]) {
    let output = Command::new(promtool)
        .current_dir(root())
        .args(args)
        .output()
        .expect("running promtool");
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn alert_rules() -> queries::RuleFile {
    queries::rule_file(&read("observability/alerts.yml")).expect("alerts.yml parses")
}

fn dashboard_queries() -> Vec<Query> {
    DASHBOARDS
        .iter()
        .flat_map(|path| queries::dashboard_queries(path, &read(path)).expect("dashboard JSON"))
        .collect()
}

/// A file in the temporary directory, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        Scratch(std::env::temp_dir().join(format!(
            "harness-observability-{name}-{}",
            std::process::id()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn promtool_accepts_the_configuration_the_rules_and_the_dashboard_queries() {
    let test = "promtool_accepts_the_configuration_the_rules_and_the_dashboard_queries";
    let Some(tool) = support::prometheus::promtool(test) else {
        return;
    };
    // `check config` also checks that the rule files and the credentials files it names exist:
    // it reads a copy of observability/ in which the token, which whoever runs the stack makes,
    // is the committed example, as the compose file mounts them all beside the configuration.
    let config_dir = Scratch::new("config");
    std::fs::create_dir_all(&config_dir.0).expect("scratch configuration directory");
    for entry in std::fs::read_dir(root().join("observability")).expect("observability/") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let name = path.file_name().expect("a file name");
            std::fs::copy(&path, config_dir.0.join(name)).expect("copied");
        }
    }
    let token = config_dir.0.join("metrics-token");
    if !token.exists() {
        std::fs::copy(root().join("observability/metrics-token.example"), &token)
            .expect("the token's example");
    }
    let config = config_dir.0.join("prometheus.yml").display().to_string();
    promtool(&tool, &["check", "config", &config]);
    // Without the token file, promtool names it: the check above did look for it.
    std::fs::remove_file(&token).expect("removed");
    let output = Command::new(&tool)
        .args(["check", "config", &config])
        .output()
        .expect("running promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success() && said.contains("metrics-token"),
        "{said}"
    );
    promtool(&tool, &["check", "rules", "observability/alerts.yml"]);

    // Prometheus's own parser on every dashboard query, as recording rules of a scratch file.
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let dashboards = dashboard_queries();
    for (i, query) in dashboards.iter().enumerate() {
        let expr = queries::substitute_grafana_variables(&query.expr);
        let quoted = serde_json::to_string(&expr).expect("a string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        ));
    }
    let scratch = Scratch::new("dashboard-rules.yml");
    std::fs::write(&scratch.0, rules).expect("scratch rules written");
    let path = scratch.0.display().to_string();
    promtool(&tool, &["check", "rules", &path]);
}

#[test]
fn every_alert_fires_and_stays_quiet_as_its_unit_tests_expect() {
    let test = "every_alert_fires_and_stays_quiet_as_its_unit_tests_expect";
    let untested = queries::untested_alerts(&alert_rules(), &read("observability/alerts.test.yml"))
        .expect("alerts.test.yml parses");
    assert!(untested.is_empty(), "{untested:#?}");
    let Some(tool) = support::prometheus::promtool(test) else {
        return;
    };
    promtool(&tool, &["test", "rules", "observability/alerts.test.yml"]);
}

#[test]
fn an_alert_without_a_quiet_case_is_reported() {
    let rules = queries::rule_file(
        "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n      - alert: Never\n        expr: vector(0) > 1\n",
    )
    .expect("rules parse");
    let tests = "tests:\n  - alert_rule_test:\n      - eval_time: 1m\n        alertname: Down\n        exp_alerts:\n          - exp_labels: {job: a}\n";
    let mut problems = queries::untested_alerts(&rules, tests).expect("tests parse");
    problems.sort();
    assert_eq!(
        problems,
        [
            "Down: no test case expects it to stay quiet",
            "Never: no test case expects it to fire",
            "Never: no test case expects it to stay quiet",
        ]
    );
}

#[test]
fn queries_are_read_for_their_metric_names_and_jobs() {
    let found = queries::references(
        r#"histogram_quantile(0.95, sum by (job, le) (rate(request_duration_seconds_bucket{job=~"api-gateway|core-engine"}[$__rate_interval])))
           / on (job) group_left max by (job) (up{job="core-engine", instance=~"${instance}"}) > 0.1"#,
    )
    .expect("parses");
    assert_eq!(
        found,
        [
            Reference {
                name: "request_duration_seconds_bucket".into(),
                jobs: vec!["api-gateway".into(), "core-engine".into()],
            },
            Reference {
                name: "up".into(),
                jobs: vec!["core-engine".into()],
            },
        ]
    );
    assert_eq!(
        queries::substitute_grafana_variables(
            r#"rate(x{path=~"/api.*$", job="$job", i="${instance}"}[${__rate_interval}])"#
        ),
        r#"rate(x{path=~"/api.*$", job="grafana-variable", i="grafana-variable"}[5m])"#
    );
}

#[test]
fn a_made_up_or_misplaced_metric_name_is_reported() {
    let exported = BTreeMap::from([
        (
            "api-gateway".to_owned(),
            BTreeSet::from(["http_requests_total".to_owned()]),
        ),
        (
            "core-engine".to_owned(),
            BTreeSet::from(["requests_in_flight".to_owned()]),
        ),
    ]);
    let query = |expr: &str| Query {
        origin: "test".into(),
        expr: expr.into(),
    };
    // What the real files do: no false alarm.
    let fine = [
        query(r#"sum(rate(http_requests_total{job="api-gateway"}[$__rate_interval]))"#),
        query(r#"up{job=~"api-gateway|core-engine"} == 0"#),
        query(r#"sum(requests_in_flight) + count(ALERTS{alertstate="firing"})"#),
        query(r#"requests_in_flight{job="$job"}"#),
    ];
    assert_eq!(
        queries::unknown_references(&fine, &exported),
        Vec::<String>::new()
    );
    let faults = [
        query(r#"sum(rate(http_request_total{job="api-gateway"}[5m]))"#),
        query(r#"requests_in_flight{job="api-gateway"}"#),
        query(r#"up{job="gateway"} == 0"#),
        query("sum(rate(grpc_requests_total[5m]))"),
        query("rate(http_requests_total{job=\"api-gateway\"}[5m]"),
    ];
    let problems = queries::unknown_references(&faults, &exported);
    assert_eq!(
        problems[..4],
        [
            "test: `http_request_total` is not exported by api-gateway",
            "test: `requests_in_flight` is not exported by api-gateway",
            "test: `up` names the job \"gateway\", which Prometheus does not scrape",
            "test: `grpc_requests_total` is exported by no service",
        ],
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(
        problems[4].starts_with("test: does not parse"),
        "{problems:#?}"
    );
}

/// Sample names of one scrape of `url`, histogram parts (`_bucket`, `_sum`, `_count`) included.
async fn exported_names(http: &reqwest::Client, service: &str, url: &str) -> BTreeSet<String> {
    let response = http
        .get(url)
        .send()
        .await
        .expect("metrics endpoint reachable");
    assert_eq!(response.status(), 200, "{url}");
    let text = response.text().await.expect("metrics body");
    let snapshot = parse_exposition(service, url, &text).expect("exposition parses");
    snapshot.samples.into_iter().map(|s| s.name).collect()
}

/// Subscribes to two updates and reads until the gateway closes the finished stream.
async fn stream_briefly(url: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the gateway upgrades");
    let subscribe = r#"{"type":"subscribe","symbols":["AAPL"],"source_id":"yahoo_finance","interval_ms":10,"max_updates":2}"#;
    ws.send(Message::text(subscribe))
        .await
        .expect("subscribe sent");
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("the stream ends in time")
    {
        if message.expect("a frame").is_close() {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboards_read_only_metrics_the_services_export() {
    let logs = Scratch::new("logs");
    std::fs::create_dir_all(&logs.0).expect("log directory");
    let system = ManagedSystem::start(
        Path::new(HARNESS),
        &BTreeMap::from([("OTEL_SDK_DISABLED".to_owned(), "true".to_owned())]),
        &ServiceLaunch::default(),
        &ServiceLaunch::default(),
        &logs.0,
    )
    .await
    .expect("services start");
    let gateway = system.gateway.address("http").expect("gateway address");
    let engine_metrics = system.engine.address("metrics").expect("engine address");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");

    // A success and a caller error, so that the labelled families (errors included) have series.
    let fetch = format!("http://{gateway}{}", engine::gateway::FETCH_ROUTE);
    for (body, status) in [
        (
            r#"{"symbols":["AAPL"],"source_id":"yahoo_finance","window":100}"#,
            200,
        ),
        (r#"{"symbols":[""],"source_id":"yahoo_finance"}"#, 400),
    ] {
        let response = http
            .post(&fetch)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("gateway reachable");
        assert_eq!(response.status(), status, "{body}");
    }
    // A short subscription, so that the streaming families (labelled by symbol) have series.
    stream_briefly(&format!("ws://{gateway}{}", engine::gateway::STREAM_ROUTE)).await;
    let defaults = Defaults::of_the_services();
    let exported = BTreeMap::from([
        (
            defaults.gateway_job.to_owned(),
            exported_names(
                &http,
                defaults.gateway_job,
                &format!("http://{gateway}{}", defaults.gateway_metrics_path),
            )
            .await,
        ),
        (
            defaults.engine_job.to_owned(),
            exported_names(
                &http,
                defaults.engine_job,
                &format!("http://{engine_metrics}{}", defaults.engine_metrics_path),
            )
            .await,
        ),
    ]);
    system.stop().await;

    for names in exported.values() {
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
    }
    let alerts = queries::alert_queries(&alert_rules());
    let dashboards = dashboard_queries();
    assert!(alerts.len() >= 8, "{alerts:#?}");
    assert!(dashboards.len() >= 30, "{dashboards:#?}");
    let problems = queries::unknown_references(&[alerts, dashboards].concat(), &exported);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_compose_file_agrees_with_the_services_and_the_configuration() {
    let defaults = Defaults::of_the_services();
    // The gateway's default engine URL is the engine's default address.
    let engine_url: axum::http::Uri = engine::gateway::DEFAULT_ENGINE_URL.parse().expect("a URL");
    assert_eq!(engine_url.port_u16(), Some(defaults.engine_grpc_port));
    let problems = stack::check(&Files::read(root()), &defaults, root());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn an_injected_mismatch_is_caught() {
    let defaults = Defaults::of_the_services();
    type Field = fn(&mut Files) -> &mut String;
    let cases: &[(Field, &str, &str, &str)] = &[
        (
            |f| &mut f.prometheus,
            "core-engine:50052",
            "core-engine:50053",
            "expected [\"core-engine:50052\"]",
        ),
        (
            |f| &mut f.prometheus,
            "metrics_path: /api/v1/metrics",
            "metrics_path: /metrics",
            "but the service serves /api/v1/metrics",
        ),
        (
            |f| &mut f.prometheus,
            "job_name: api-gateway",
            "job_name: gateway",
            "no job \"api-gateway\"",
        ),
        (
            |f| &mut f.prometheus,
            "- alerts.yml",
            "- rules/alerts.yml",
            "./observability/rules/alerts.yml is not mounted",
        ),
        (
            |f| &mut f.compose,
            "GATEWAY_ENGINE_URL: http://core-engine:50051",
            "GATEWAY_ENGINE_URL: http://core-engine:50052",
            "GATEWAY_ENGINE_URL is Some(\"http://core-engine:50052\")",
        ),
        (
            |f| &mut f.compose,
            "ENGINE_METRICS_LISTEN: 0.0.0.0:50052",
            "ENGINE_METRICS_LISTEN: 127.0.0.1:50052",
            "ENGINE_METRICS_LISTEN=127.0.0.1:50052",
        ),
        (
            |f| &mut f.compose,
            "OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4317\n      OTEL_SERVICE_NAME: api-gateway",
            "OTEL_EXPORTER_OTLP_ENDPOINT: http://localhost:4317\n      OTEL_SERVICE_NAME: api-gateway",
            "api-gateway's OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            |f| &mut f.compose,
            "\"127.0.0.1:16686:16686\"",
            "\"16686:16686\"",
            "is not published on 127.0.0.1 only",
        ),
        (
            |f| &mut f.compose,
            "prom/prometheus:v3.13.1",
            "prom/prometheus:latest",
            "is not pinned to a version",
        ),
        (
            |f| &mut f.compose,
            "GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD in .env (see .env.example)}",
            "GF_SECURITY_ADMIN_PASSWORD: admin",
            "GF_SECURITY_ADMIN_PASSWORD is written into the file",
        ),
        (
            |f| &mut f.compose,
            "./observability/grafana/dashboards:/etc/grafana/dashboards:ro",
            "./observability/dashboards:/etc/grafana/dashboards:ro",
            "dashboard provider",
        ),
        (
            |f| &mut f.datasources,
            "url: http://jaeger:16686",
            "url: http://jaeger:16687",
            "expected http://jaeger:16686",
        ),
        (
            |f| &mut f.jaeger,
            "endpoint: 0.0.0.0:4317",
            "endpoint: 0.0.0.0:14317",
            "expected 0.0.0.0:4317",
        ),
        (
            |f| &mut f.jaeger,
            "max_traces: ",
            "max_spans: ",
            "is not a memory store with max_traces",
        ),
        (
            |f| &mut f.env_example,
            "GRAFANA_ADMIN_PASSWORD=",
            "ADMIN_PASSWORD=",
            "which .env.example does not document",
        ),
        (
            |f| &mut f.prometheus,
            "    authorization:\n      type: Bearer\n      credentials_file: metrics-token\n    static_configs:\n      - targets: [\"core-engine:50052\"]",
            "    static_configs:\n      - targets: [\"core-engine:50052\"]",
            "prometheus.yml job core-engine: sends no bearer token",
        ),
        (
            |f| &mut f.prometheus,
            "credentials_file: metrics-token\n    static_configs:\n      - targets: [\"api-gateway:8080\"]",
            "credentials_file: token\n    static_configs:\n      - targets: [\"api-gateway:8080\"]",
            "credentials_file token is /etc/prometheus/token in prometheus, where ./observability/metrics-token is not mounted",
        ),
        (
            |f| &mut f.compose,
            "GATEWAY_METRICS_TOKEN_FILE: /run/secrets/metrics-token",
            "GATEWAY_METRICS_TOKEN_FILE: /run/secrets/token",
            "api-gateway: GATEWAY_METRICS_TOKEN_FILE=/run/secrets/token, where ./observability/metrics-token is not mounted",
        ),
        (
            |f| &mut f.compose,
            "      ENGINE_METRICS_TOKEN_FILE: /run/secrets/metrics-token\n",
            "",
            "core-engine: ENGINE_METRICS_TOKEN_FILE is not set",
        ),
        (
            |f| &mut f.compose,
            "source: ./observability/metrics-token\n        target: /etc/prometheus/metrics-token",
            "source: ./observability/other-token\n        target: /etc/prometheus/metrics-token",
            "prometheus.yml job api-gateway: credentials_file metrics-token is /etc/prometheus/metrics-token in prometheus, where ./observability/metrics-token is not mounted",
        ),
        (
            |f| &mut f.gitignore,
            "/observability/metrics-token\n",
            "",
            "./observability/metrics-token is not ignored by git",
        ),
    ];
    for (field, from, to, expected) in cases {
        let mut files = Files::read(root());
        let text = field(&mut files);
        assert!(
            text.contains(from),
            "the fault {from:?} must alter the file"
        );
        *text = text.replacen(from, to, 1);
        let problems = stack::check(&files, &defaults, root());
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{from:?} -> {to:?} must be reported with {expected:?}; got {problems:#?}"
        );
    }
    let mut files = Files::read(root());
    files.token_example = false;
    let problems = stack::check(&files, &defaults, root());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("observability/metrics-token.example does not exist")),
        "{problems:#?}"
    );
}
