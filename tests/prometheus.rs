//! Metrics reconciliation against the real services, read both ways: straight from their metrics
//! endpoints and through a real Prometheus scraping them every second. A known mix of requests must
//! reconcile exactly; a gateway that double-counts must be caught, naming the metric.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use engine::proto::FetchMarketDataRequest;
use harness::bundled::metrics::{Received, reconcile};
use harness::load::{Driver, GrpcCall, GrpcDriver, HttpDriver, HttpRequest, HttpVersion, Outcome};
use harness::metrics::{MetricsSource, PrometheusSource, Reconciliation, ScrapeSource, Snapshot};
use harness::system::{ManagedSystem, MetricsTokenFile, ServiceLaunch};
use harness::tls::TlsSpec;
use hyper::http::uri::PathAndQuery;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use support::prometheus::{PrometheusServer, ScrapeTarget};
use support::scratch::Scratch;

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");
const GATEWAY: &str = "api-gateway";
const ENGINE: &str = "core-engine";
/// Two 1 s scrape intervals and then some, for a busy machine.
const SCRAPE_WAIT: Duration = Duration::from_secs(20);

const VALID: &str = r#"{"symbols":["AAPL"],"source_id":"yahoo_finance","window":100}"#;
const INVALID_SYMBOL: &str = r#"{"symbols":[""],"source_id":"yahoo_finance"}"#;

/// The drivers the harness itself uses, and the counts it keeps.
struct Client {
    http: HttpDriver,
    grpc: GrpcDriver,
    received: Received,
    service_times: Vec<Duration>,
}

impl Client {
    fn new(system: &ManagedSystem) -> Self {
        let gateway = system.gateway.address("http").expect("gateway address");
        let engine = system.engine.address("grpc").expect("engine address");
        let base = format!("http://{gateway}");
        let engine_url = format!("http://{engine}").parse().expect("engine url");
        let tls = harness::tls::client_config(&harness::tls::TlsSpec::default()).expect("TLS");
        Client {
            http: HttpDriver::new(
                &base.parse().expect("url"),
                tls.clone(),
                HttpVersion::Auto,
                2,
            )
            .expect("an absolute base"),
            grpc: GrpcDriver::new(&engine_url, tls, 1).expect("an absolute base"),
            received: Received::default(),
            service_times: Vec::new(),
        }
    }

    async fn fetch(&mut self, body: &'static str, n: usize) {
        let body = Arc::new(HttpRequest::json(
            hyper::Method::POST,
            hyper::Uri::from_static("/api/v1/market-data/fetch"),
            Bytes::from_static(body.as_bytes()),
        ));
        for _ in 0..n {
            let sent = Instant::now();
            let outcome = self.http.send(&body, None).await.outcome;
            self.service_times.push(sent.elapsed());
            let Outcome::Status(status) = outcome else {
                panic!("fetch failed: {outcome:?}")
            };
            *self.received.http.entry(status).or_default() += 1;
        }
    }

    async fn call(&mut self, symbol: &str, n: usize) {
        let message = FetchMarketDataRequest {
            symbols: vec![symbol.to_owned()],
            source_id: "yahoo_finance".into(),
            window: 100,
            ..FetchMarketDataRequest::default()
        };
        let request = Arc::new(GrpcCall {
            path: PathAndQuery::from_static("/core_engine.v1.CoreEngineService/FetchMarketData"),
            metadata: tonic::metadata::MetadataMap::new(),
            message: prost::Message::encode_to_vec(&message).into(),
        });
        for _ in 0..n {
            let sent = Instant::now();
            let outcome = self.grpc.send(&request, None).await.outcome;
            self.service_times.push(sent.elapsed());
            let Outcome::Code(code) = outcome else {
                panic!("call failed: {outcome:?}")
            };
            *self
                .received
                .grpc
                .entry(engine::status::code_name(code).to_owned())
                .or_default() += 1;
        }
    }

    /// Forgets what was counted so far (the warm-up), keeping the connections.
    fn reset(&mut self) {
        self.received = Received::default();
        self.service_times.clear();
    }

    /// The counts, with the p99 service time (nearest rank).
    fn received(&self) -> Received {
        let mut times = self.service_times.clone();
        times.sort();
        let rank = (times.len() as f64 * 0.99).ceil() as usize;
        Received {
            client_p99: rank.checked_sub(1).map(|i| times[i]),
            ..self.received.clone()
        }
    }
}

/// The reconciliation by each source, for one run of the known request mix.
struct Outcomes {
    scrape: Reconciliation,
    prometheus: Option<Reconciliation>,
}

/// The engine and gateway, both requiring `token` on their metrics endpoints when there is one.
async fn start_system(
    logs: &Scratch,
    gateway_args: &[&str],
    token: Option<&MetricsTokenFile>,
) -> ManagedSystem {
    let launch = |variable: &str, args: &[&str]| ServiceLaunch {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: token
            .map(|t| (variable.to_owned(), t.path().display().to_string()))
            .into_iter()
            .collect(),
        ..ServiceLaunch::default()
    };
    ManagedSystem::start(
        Path::new(HARNESS),
        &BTreeMap::from([("OTEL_SDK_DISABLED".to_owned(), "true".to_owned())]),
        &launch("ENGINE_METRICS_TOKEN_FILE", &[]),
        &launch("GATEWAY_METRICS_TOKEN_FILE", gateway_args),
        logs.path(),
    )
    .await
    .expect("system starts")
}

/// Prometheus's jobs for the two services, sending the token in `credentials_file` if given.
fn scrape_targets<'a>(
    system: &ManagedSystem,
    credentials_file: Option<&'a Path>,
) -> [ScrapeTarget<'a>; 2] {
    [
        ScrapeTarget {
            job: GATEWAY,
            address: system.gateway.address("http").expect("gateway address"),
            metrics_path: "/api/v1/metrics",
            credentials_file,
        },
        ScrapeTarget {
            job: ENGINE,
            address: system.engine.address("metrics").expect("metrics address"),
            metrics_path: "/metrics",
            credentials_file,
        },
    ]
}

fn prometheus_source(server: &PrometheusServer) -> PrometheusSource {
    PrometheusSource::new(
        &server.url,
        vec![
            (GATEWAY.into(), format!("{{job=\"{GATEWAY}\"}}")),
            (ENGINE.into(), format!("{{job=\"{ENGINE}\"}}")),
        ],
    )
    .expect("Prometheus source")
}

/// The known mix against the services, read by a direct scrape and by Prometheus; with
/// `metrics_auth`, the services require a token that both send.
async fn run_known_mix(test: &str, gateway_args: &[&str], metrics_auth: bool) -> Outcomes {
    let logs = Scratch::new(test);
    let token = metrics_auth.then(|| MetricsTokenFile::create(logs.path()).expect("token file"));
    let system = start_system(&logs, gateway_args, token.as_ref()).await;
    let gateway = system.gateway.address("http").expect("gateway address");
    let engine_metrics = system.engine.address("metrics").expect("metrics address");

    let mut scrape = ScrapeSource::new(vec![
        (GATEWAY.into(), format!("http://{gateway}/api/v1/metrics")),
        (ENGINE.into(), format!("http://{engine_metrics}/metrics")),
    ])
    .expect("scrape source");
    if let Some(token) = &token {
        let headers = HeaderMap::from_iter([(AUTHORIZATION, token.authorization())]);
        scrape = scrape
            .with_access(&TlsSpec::default(), headers)
            .expect("scrape source with the token");
    }
    let server = match support::prometheus::binary(test) {
        Some(binary) => Some(
            PrometheusServer::start(
                &binary,
                &scrape_targets(&system, token.as_ref().map(|t| t.path())),
            )
            .await,
        ),
        None => None,
    };
    let prometheus = server.as_ref().map(prometheus_source);

    // Warm-up, so that the series exist before the first snapshot and the deltas are real ones.
    let mut client = Client::new(&system);
    client.fetch(VALID, 3).await;
    client.fetch(INVALID_SYMBOL, 1).await;
    client.call("MSFT", 2).await;
    client.reset();

    let quiet = SystemTime::now();
    let before_scrape = scrape.snapshot().await.expect("scrape before");
    let before_prometheus = match &prometheus {
        Some(source) => Some(snapshot_after(source, quiet).await),
        None => None,
    };

    client.fetch(VALID, 30).await;
    client.fetch(INVALID_SYMBOL, 5).await;
    client.call("MSFT", 8).await;
    client.call("", 3).await;
    let received = client.received();
    assert_eq!(received.http, BTreeMap::from([(200, 30), (400, 5)]));
    assert_eq!(
        received.grpc,
        BTreeMap::from([("INVALID_ARGUMENT".to_owned(), 3), ("OK".to_owned(), 8)])
    );

    let done = SystemTime::now();
    let after_scrape = scrape.snapshot().await.expect("scrape after");
    let after_prometheus = match &prometheus {
        Some(source) => Some(snapshot_after(source, done).await),
        None => None,
    };
    system.stop().await;

    Outcomes {
        scrape: reconcile(&before_scrape, &after_scrape, &received),
        prometheus: before_prometheus
            .zip(after_prometheus)
            .map(|(before, after)| reconcile(&before, &after, &received)),
    }
}

async fn snapshot_after(source: &PrometheusSource, t: SystemTime) -> Vec<Snapshot> {
    let waited = Instant::now();
    source
        .wait_for_scrape_after(t, SCRAPE_WAIT)
        .await
        .expect("a scrape after the mark");
    eprintln!("waited {:?} for a scrape", waited.elapsed());
    source.snapshot().await.expect("Prometheus snapshot")
}

fn failures(r: &Reconciliation) -> String {
    let lines: Vec<String> = r.failures().iter().map(|c| c.to_string()).collect();
    lines.join("\n")
}

/// The check of the 200s on the fetch route: it must have seen the 30 sent, so a pass is not the
/// pass of a comparison that had nothing to compare.
fn assert_counted_the_load(r: &Reconciliation, source: &str) {
    let check = r
        .checks
        .iter()
        .find(|c| c.metric == "http_requests_total" && c.labels.contains("status=\"200\""))
        .unwrap_or_else(|| panic!("{source}: no check of the 200s"));
    assert_eq!(
        (check.expected, check.observed),
        (30.0, 30.0),
        "{source}: {check}"
    );
    let engine_ok = r
        .checks
        .iter()
        .find(|c| c.metric == "grpc_requests_total" && c.labels == "status=~\"OK\"")
        .unwrap_or_else(|| panic!("{source}: no check of the engine's OKs"));
    assert_eq!(engine_ok.observed, 38.0, "{source}: {engine_ok}");
    assert!(
        r.checks
            .iter()
            .any(|c| c.labels.contains("quantile") && !c.skipped),
        "{source}: the latency check was not made"
    );
}

/// The mix reconciled and counted the whole load, straight from the services and, where a
/// Prometheus ran, through it.
fn assert_reconciled_both_ways(outcomes: &Outcomes) {
    assert!(
        outcomes.scrape.passed,
        "direct scrape:\n{}",
        failures(&outcomes.scrape)
    );
    assert_counted_the_load(&outcomes.scrape, "direct scrape");
    if let Some(prometheus) = &outcomes.prometheus {
        assert!(prometheus.passed, "Prometheus:\n{}", failures(prometheus));
        assert_counted_the_load(prometheus, "Prometheus");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_request_mix_reconciles_through_both_sources() {
    let started = Instant::now();
    let outcomes = run_known_mix("metrics-reconcile", &[], false).await;
    assert_reconciled_both_ways(&outcomes);
    eprintln!("reconciliation end to end took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_counting_gateway_fails_naming_http_requests_total() {
    let started = Instant::now();
    let outcomes = run_known_mix(
        "metrics-calibration",
        &["--calibration-double-count"],
        false,
    )
    .await;
    let sources = [
        ("direct scrape", Some(&outcomes.scrape)),
        ("Prometheus", outcomes.prometheus.as_ref()),
    ];
    for (source, reconciliation) in sources {
        let Some(r) = reconciliation else { continue };
        assert!(!r.passed, "{source}: the double count went unnoticed");
        eprintln!("{source} caught the double count:\n{}", failures(r));
        let failed = r.failures();
        assert!(
            failed
                .iter()
                .any(|c| c.metric == "http_requests_total" && c.service == GATEWAY),
            "{source}: no failed check names http_requests_total:\n{}",
            failures(r)
        );
        // The fault is in the gateway's counter alone: nothing of the engine may fail.
        assert!(
            failed.iter().all(|c| c.service == GATEWAY),
            "{source}:\n{}",
            failures(r)
        );
    }
    eprintln!("calibration end to end took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_the_mix_reconciles_through_both_sources() {
    let outcomes = run_known_mix("metrics-reconcile-token", &[], true).await;
    assert_reconciled_both_ways(&outcomes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_without_the_token_finds_the_targets_down_and_nothing_reconciles() {
    let test = "prometheus_without_the_token_finds_the_targets_down_and_nothing_reconciles";
    let Some(binary) = support::prometheus::binary(test) else {
        return;
    };
    let logs = Scratch::new("metrics-token-missing");
    let token = MetricsTokenFile::create(logs.path()).expect("token file");
    let system = start_system(&logs, &[], Some(&token)).await;
    // Prometheus is not given the token.
    let (server, errors) =
        PrometheusServer::start_refused(&binary, &scrape_targets(&system, None)).await;
    for error in &errors {
        assert!(error.contains("401"), "{errors:?}");
    }
    let prometheus = prometheus_source(&server);
    let before = prometheus.snapshot().await.expect("Prometheus answers");
    let mut client = Client::new(&system);
    let mark = SystemTime::now();
    client.fetch(VALID, 10).await;
    // No scrape after the load ever succeeds: the wait says so instead of reading stale data.
    let waited = prometheus
        .wait_for_scrape_after(mark, Duration::from_secs(4))
        .await
        .expect_err("no successful scrape");
    eprintln!("the wait for a scrape failed as it must: {waited}");
    let after = prometheus.snapshot().await.expect("Prometheus answers");
    system.stop().await;
    let reconciliation = reconcile(&before, &after, &client.received());
    assert!(
        !reconciliation.passed,
        "an unauthorized scrape reconciled: {:#?}",
        reconciliation.checks
    );
    let failed = reconciliation.failures();
    for service in [GATEWAY, ENGINE] {
        assert!(
            failed.iter().any(|c| c.service == service),
            "no failed check of {service}:\n{}",
            failures(&reconciliation)
        );
    }
}
