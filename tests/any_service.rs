//! `harness run` against servers this project did not write: the quote service built on the
//! OpenTelemetry Python SDK, directly and behind nginx over HTTP/1.1, h2c and TLS. Declared
//! `http:` and `grpc:` requests, an API key from the environment, values from a CSV file, and
//! the trace chain the scenario declares. Each fault a user would care about must be caught.

mod support;

use std::net::{SocketAddr, TcpListener};

use serde_json::Value;
use support::client::TestCert;
use support::nginx::{NginxConfig, NginxServer};
use support::python::{QuoteOptions, QuoteServices};
use support::run::Run;

const KEY: &str = "quote-secret-4711";

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// The quote services exporting to `otlp`, or `None` (skip) where Python is missing and not
/// required.
fn services(test: &str, otlp: SocketAddr, faults: &[&str]) -> Option<QuoteServices> {
    let python = support::python::python(test)?;
    Some(QuoteServices::start(
        &python,
        &QuoteOptions {
            api_key: Some(KEY.to_owned()),
            otlp_endpoint: Some(format!("http://{otlp}")),
            faults: faults.iter().map(|f| (*f).to_owned()).collect(),
            env: vec![("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into())],
        },
    ))
}

/// The trace section both quote paths share: front server, its call to back, back's server.
/// `error` is when the front's server span is marked ERROR (`server` for HTTP, `any` for gRPC).
fn traces(otlp: SocketAddr, front_server: &str, error: &str) -> String {
    format!(
        "verify:
  traces:
    sample: 50%
    timeout: 10s
    receiver: {{grpc: \"{otlp}\", http: \"{http}\"}}
    services: [quote-front, quote-back]
    chain:
      - {{service: quote-front, kind: server, name: \"{front_server}\", error: {error}}}
      - {{service: quote-front, kind: client, name: quotes.v1.Prices/GetPrice, only_on_success: true}}
      - {{service: quote-back, kind: server, name: quotes.v1.Prices/GetPrice, only_on_success: true}}
",
        http = free_addr(),
    )
}

/// The metrics section: the front counts each quote by status, its duration histogram counts as
/// many, and the back answers one price per successful quote. Nothing else is checked.
fn metrics(quotes: &QuoteServices) -> String {
    format!(
        "  metrics:
    scrape: {{quote-front: \"{front}\", quote-back: \"{back}\"}}
    checks:
      - {{service: quote-front, metric: http_requests_total, labels: {{route: /v2/quote, status: \"{{status}}\"}}, equals: responses}}
      - {{service: quote-front, metric: http_request_duration_seconds_count, labels: {{route: /v2/quote}},
         equals: {{metric: http_requests_total, labels: {{route: /v2/quote}}}}}}
      - {{service: quote-back, metric: grpc_server_handled_total, labels: {{grpc_code: OK}}, equals: responses, kinds: [quote]}}
",
        front = quotes.front.metrics_url(),
        back = quotes.back.metrics_url(),
    )
}

/// An HTTP scenario for the quote route at `target`, with the metrics checks of `quotes`.
fn http_scenario(
    run: &Run,
    target: &str,
    extra_system: &str,
    otlp: SocketAddr,
    quotes: &QuoteServices,
) -> String {
    let dir = run.out.join("input");
    std::fs::create_dir_all(&dir).expect("input directory");
    std::fs::write(
        dir.join("symbols.csv"),
        "symbol,venue\nACME,X\nINIT,Y\nZETA,X\n",
    )
    .expect("symbols.csv");
    let text = format!(
        "name: quotes
system:
  external:
    target: {target}
{extra_system}
load:
  phases:
    - constant: {{rate: 20, duration: 2s}}
requests:
  - name: quote
    weight: 1
    http:
      method: POST
      url: /v2/quote
      headers: {{x-api-key: \"${{QUOTE_KEY}}\"}}
      body: {{symbol: \"{{{{symbol}}}}\"}}
    vars_file: symbols.csv
    expect: {{status: 200}}
thresholds: [\"error_rate < 1%\"]
{traces}",
        traces = traces(otlp, "POST /v2/quote", "server")
            + "    response_header: X-Trace-ID\n"
            + &metrics(quotes),
    );
    let path = dir.join("quotes.yaml");
    std::fs::write(&path, text).expect("scenario");
    path.display().to_string()
}

fn harness(run: &Run, scenario: &str, key: &str) -> (Option<i32>, String, Value) {
    let output = run
        .command(&["run", scenario])
        .env("QUOTE_KEY", key)
        .output()
        .expect("harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let result = run.result("quotes");
    (output.status.code(), stdout, result)
}

fn assert_all_traces_pass(code: Option<i32>, stdout: &str, result: &Value) {
    let traces = &result["verification"]["traces"];
    assert_eq!(code, Some(0), "{stdout}\n{traces:#}");
    let metrics = &result["verification"]["metrics"];
    assert_eq!(metrics["reconciled"], true, "{stdout}\n{metrics:#}");
    let sampled = traces["sampled"].as_u64().expect("sampled");
    assert!(sampled >= 10, "{traces:#}");
    assert_eq!(traces["passed"], sampled, "{traces:#}");
}

/// Nothing the run writes holds the key's value.
fn assert_secret_kept(run: &Run, stdout: &str) {
    assert!(!stdout.contains(KEY), "{stdout}");
    for entry in walk(&run.out) {
        let text = std::fs::read(&entry).expect("an output file");
        assert!(
            !String::from_utf8_lossy(&text).contains(KEY),
            "{} holds the key",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e != "csv" && e != "yaml") {
            files.push(path);
        }
    }
    files
}

/// The quote services behind nginx (HTTP at `/v2/`, gRPC calls to the front's gRPC port) and
/// the certificate of nginx's TLS listener; `None` where either is not installed.
fn behind_nginx(test: &str, otlp: SocketAddr) -> Option<(QuoteServices, TestCert, NginxServer)> {
    let quotes = services(test, otlp, &[])?;
    let nginx_binary = support::nginx::binary(test)?;
    let cert = TestCert::new();
    let nginx = NginxServer::start(
        &nginx_binary,
        &NginxConfig {
            upstream: quotes.front_http(),
            grpc_upstream: Some(quotes.front.grpc),
            cert_pem: &cert.cert(),
            key_pem: &cert.key(),
        },
    );
    Some((quotes, cert, nginx))
}

#[test]
fn quotes_through_nginx_over_tls_http1_and_h2c_pass_with_their_traces() {
    let otlp = free_addr();
    let Some((quotes, cert, nginx)) = behind_nginx("any-service-nginx", otlp) else {
        return;
    };
    let cases = [
        (
            format!("https://127.0.0.1:{}", nginx.tls.port()),
            format!("    tls: {{ca: {}}}", cert.cert().display()),
        ),
        (
            format!("http://{}", nginx.http),
            "    http_version: 1.1".to_owned(),
        ),
        (
            format!("http://{}", nginx.h2c),
            "    http_version: 2".to_owned(),
        ),
    ];
    for (target, extra) in cases {
        let run = Run::new("any-service-nginx");
        let scenario = http_scenario(&run, &target, &extra, otlp, &quotes);
        let (code, stdout, result) = harness(&run, &scenario, KEY);
        assert_all_traces_pass(code, &stdout, &result);
        assert_secret_kept(&run, &stdout);
    }
}

#[test]
fn a_tls_target_the_harness_does_not_trust_is_refused_unless_told_to_accept_it() {
    let otlp = free_addr();
    let Some((quotes, _cert, nginx)) = behind_nginx("any-service-untrusted", otlp) else {
        return;
    };
    let run = Run::new("any-service-untrusted");
    let target = format!("https://127.0.0.1:{}", nginx.tls.port());
    // No CA: the system's roots do not know the test's certificate.
    let scenario = http_scenario(&run, &target, "", otlp, &quotes);
    let (code, stdout, _) = harness(&run, &scenario, KEY);
    assert_ne!(code, Some(0), "{stdout}");
    assert!(stdout.to_lowercase().contains("certificate"), "{stdout}");

    // The insecure switch accepts it, and the summary says so.
    let run = Run::new("any-service-insecure");
    let insecure = "    tls: {insecure: true}";
    let scenario = http_scenario(&run, &target, insecure, otlp, &quotes);
    let (code, stdout, result) = harness(&run, &scenario, KEY);
    assert_all_traces_pass(code, &stdout, &result);
    assert!(
        stdout.contains("WARNING: system.external.tls.insecure"),
        "{stdout}"
    );
}

#[test]
fn a_wrong_key_fails_the_run_on_its_error_rate() {
    let otlp = free_addr();
    let Some(quotes) = services("any-service-key", otlp, &[]) else {
        return;
    };
    let run = Run::new("any-service-key");
    let target = format!("http://{}", quotes.front_http());
    let scenario = http_scenario(&run, &target, "", otlp, &quotes);
    let (code, stdout, result) = harness(&run, &scenario, "not-the-key");
    assert_eq!(code, Some(1), "{stdout}");
    let kind = &result["kinds"][0];
    assert_eq!(kind["outcomes"]["401"], kind["sent"], "{kind:#}");
}

#[test]
fn a_hop_that_drops_the_context_fails_the_trace_checks() {
    let otlp = free_addr();
    let Some(quotes) = services("any-service-context", otlp, &["drop-context"]) else {
        return;
    };
    let run = Run::new("any-service-context");
    let target = format!("http://{}", quotes.front_http());
    let scenario = http_scenario(&run, &target, "", otlp, &quotes);
    let (code, stdout, result) = harness(&run, &scenario, KEY);
    let traces = &result["verification"]["traces"];
    assert_eq!(code, Some(1), "{stdout}\n{traces:#}");
    assert_eq!(traces["passed"], 0, "{traces:#}");
    let detail = traces["failing"][0]["failures"].to_string();
    assert!(detail.contains("quote-back"), "{detail}");
}

#[test]
fn a_counter_that_counts_twice_fails_the_metrics_checks_and_nothing_else() {
    let otlp = free_addr();
    let Some(quotes) = services("any-service-twice", otlp, &["count-twice"]) else {
        return;
    };
    let run = Run::new("any-service-twice");
    let target = format!("http://{}", quotes.front_http());
    let scenario = http_scenario(&run, &target, "", otlp, &quotes);
    let (code, stdout, result) = harness(&run, &scenario, KEY);
    let checks = result["verification"]["metrics"]["sources"][0]["checks"]
        .as_array()
        .expect("checks")
        .clone();
    assert_eq!(code, Some(1), "{stdout}");
    let failed: Vec<&Value> = checks.iter().filter(|c| c["passed"] == false).collect();
    // The per-status count and the histogram-to-counter comparison: exactly the two rules that
    // read the doubled counter.
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert!(
        failed
            .iter()
            .all(|c| c["metric"] == "http_request_duration_seconds_count"
                || c["observed"].as_f64() == Some(2.0 * c["expected"].as_f64().unwrap_or(0.0)))
    );
    assert!(stdout.contains("expected"), "{stdout}");
}

#[test]
fn a_service_that_resets_half_its_traced_requests_fails_the_traces() {
    let otlp = free_addr();
    let Some(quotes) = services("any-service-reset", otlp, &["reset-traced-half"]) else {
        return;
    };
    let run = Run::new("any-service-reset");
    let target = format!("http://{}", quotes.front_http());
    let scenario = http_scenario(&run, &target, "", otlp, &quotes);
    let (code, stdout, result) = harness(&run, &scenario, KEY);
    let traces = &result["verification"]["traces"];
    assert_eq!(code, Some(1), "{stdout}\n{traces:#}");
    let sampled = traces["sampled"].as_u64().expect("sampled");
    let passed = traces["passed"].as_u64().expect("passed");
    assert!(passed < sampled && passed * 3 >= sampled, "{traces:#}");
}

/// Two kinds of the quote service's `GetQuote`, called from its `.proto`: a good one and one the
/// service refuses.
fn grpc_scenario(run: &Run, target: &str, extra_system: &str, otlp: SocketAddr) -> String {
    let proto =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/external/python/quotes.proto");
    let text = format!(
        "name: quotes
system:
  external:
    target: {target}
{extra_system}
load:
  phases:
    - constant: {{rate: 20, duration: 2s}}
requests:
  - name: quote
    weight: 1
    grpc:
      method: quotes.v1.Quotes/GetQuote
      proto: {proto}
      message: {{symbol: \"{{{{symbol}}}}\"}}
      metadata: {{x-api-key: \"${{QUOTE_KEY}}\"}}
    vars: {{symbol: [ACME, INIT]}}
    expect: {{code: OK}}
  - name: unknown
    weight: 1
    grpc:
      method: quotes.v1.Quotes/GetQuote
      proto: {proto}
      message: {{symbol: \"\"}}
      metadata: {{x-api-key: \"${{QUOTE_KEY}}\"}}
    expect: {{code: INVALID_ARGUMENT}}
    trace_sample: 0                 # refused before the call to back: a shorter trace
thresholds: [\"error_rate < 1%\"]
{traces}",
        proto = proto.display(),
        traces = traces(otlp, "quotes.v1.Quotes/GetQuote", "any")
            + "    response_header: x-trace-id   # the front's response metadata\n",
    );
    run.write_scenario("quotes.yaml", &text)
}

fn assert_grpc_run_passes(run: &Run, scenario: &str) {
    let (code, stdout, result) = harness(run, scenario, KEY);
    let traces = &result["verification"]["traces"];
    assert_eq!(code, Some(0), "{stdout}\n{traces:#}");
    assert!(traces["sampled"].as_u64() >= Some(10), "{traces:#}");
    assert_eq!(traces["passed"], traces["sampled"], "{traces:#}");
    let kinds = &result["kinds"];
    assert_eq!(kinds[0]["outcomes"]["OK"], kinds[0]["sent"], "{kinds:#}");
    assert_eq!(
        kinds[1]["outcomes"]["INVALID_ARGUMENT"], kinds[1]["sent"],
        "{kinds:#}"
    );
    assert_secret_kept(run, &stdout);
}

#[test]
fn a_grpc_method_from_its_proto_passes_with_its_traces() {
    let otlp = free_addr();
    let Some(quotes) = services("any-service-grpc", otlp, &[]) else {
        return;
    };
    let run = Run::new("any-service-grpc");
    let target = format!("http://{}", quotes.front.grpc);
    let scenario = grpc_scenario(&run, &target, "", otlp);
    assert_grpc_run_passes(&run, &scenario);
}

#[test]
fn grpc_through_nginx_over_tls_passes_with_its_statuses_and_traces() {
    let otlp = free_addr();
    let Some((_quotes, cert, nginx)) = behind_nginx("any-service-grpc-tls", otlp) else {
        return;
    };
    let run = Run::new("any-service-grpc-tls");
    let target = format!("https://127.0.0.1:{}", nginx.tls.port());
    let tls = format!("    tls: {{ca: {}}}", cert.cert().display());
    let scenario = grpc_scenario(&run, &target, &tls, otlp);
    assert_grpc_run_passes(&run, &scenario);
}
