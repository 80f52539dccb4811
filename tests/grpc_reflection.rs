//! `harness run` with `grpc:` kinds described by the server (`reflection: true`) instead of a
//! `.proto`: the Python quote service, which serves reflection v1 and v1alpha, passes with its
//! traces checked; a method it does not have is bad input; a server without reflection (the
//! bundled engine) leaves the run incomplete before any request is sent.

mod support;

use std::net::{SocketAddr, TcpListener};

use serde_json::Value;
use support::python::{QuoteOptions, QuoteServices};
use support::run::Run;

const KEY: &str = "reflection-secret-2718";

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// The quote services exporting to `otlp`, or `None` (skip) where Python is missing and not
/// required.
fn services(test: &str, otlp: SocketAddr) -> Option<QuoteServices> {
    let python = support::python::python(test)?;
    Some(QuoteServices::start(
        &python,
        &QuoteOptions {
            api_key: Some(KEY.to_owned()),
            otlp_endpoint: Some(format!("http://{otlp}")),
            faults: Vec::new(),
            env: vec![("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into())],
        },
    ))
}

/// A scenario against `target` whose kinds call `method` as the server describes it; with
/// `otlp`, the quote path's trace chain is checked.
fn scenario(target: &str, method: &str, otlp: Option<SocketAddr>) -> String {
    let traces = otlp.map_or_else(String::new, |otlp| {
        format!(
            "verify:
  traces:
    sample: 50%
    timeout: 10s
    receiver: {{grpc: \"{otlp}\", http: \"{http}\"}}
    services: [quote-front, quote-back]
    chain:
      - {{service: quote-front, kind: server, name: quotes.v1.Quotes/GetQuote, error: any}}
      - {{service: quote-front, kind: client, name: quotes.v1.Prices/GetPrice, only_on_success: true}}
      - {{service: quote-back, kind: server, name: quotes.v1.Prices/GetPrice, only_on_success: true}}
",
            http = free_addr(),
        )
    });
    format!(
        "name: quotes
system:
  external:
    target: {target}
load:
  warmup: 1s
  phases:
    - constant: {{rate: 20, duration: 2s}}
requests:
  - name: quote
    weight: 1
    grpc:
      method: {method}
      reflection: true
      message: {{symbol: \"{{{{symbol}}}}\"}}
      metadata: {{x-api-key: \"${{QUOTE_KEY}}\"}}
    vars: {{symbol: [ACME, INIT]}}
    expect: {{code: OK}}
  - name: unknown
    weight: 1
    grpc:
      method: {method}
      reflection: true
      message: {{symbol: \"\"}}
      metadata: {{x-api-key: \"${{QUOTE_KEY}}\"}}
    expect: {{code: INVALID_ARGUMENT}}
{sample}thresholds: [\"error_rate < 1%\"]
{traces}",
        // Refused before the call to back: a shorter trace than the chain.
        sample = if traces.is_empty() {
            ""
        } else {
            "    trace_sample: 0\n"
        },
    )
}

fn harness(run: &Run, scenario: &str) -> (Option<i32>, String) {
    let output = run
        .command(&["run", scenario])
        .env("QUOTE_KEY", KEY)
        .output()
        .expect("harness runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

/// Requests the run sent, warm-up aside: none when it stopped before the load.
fn sent(result: &Value) -> u64 {
    result["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .map(|kind| kind["sent"].as_u64().expect("sent"))
        .sum()
}

#[test]
fn a_method_described_by_reflection_passes_with_its_traces() {
    let otlp = free_addr();
    let Some(quotes) = services("reflection-quotes", otlp) else {
        return;
    };
    let run = Run::new("reflection-quotes");
    let target = format!("http://{}", quotes.front.grpc);
    let text = scenario(&target, "quotes.v1.Quotes/GetQuote", Some(otlp));
    let path = run.write_scenario("quotes.yaml", &text);

    // Without the server, validate checks the rest and says what is left to the run.
    let validated = std::process::Command::new(support::run::HARNESS)
        .args(["validate", &path])
        .output()
        .expect("harness validate runs");
    let said = String::from_utf8_lossy(&validated.stdout);
    assert_eq!(validated.status.code(), Some(0), "{said}");
    assert!(
        said.contains("quotes.v1.Quotes/GetQuote to be described by the server's reflection"),
        "{said}"
    );

    let (code, stdout) = harness(&run, &path);
    let result = run.result("quotes");
    let traces = &result["verification"]["traces"];
    assert_eq!(
        code,
        Some(0),
        "{stdout}\n{traces:#}\n{}",
        quotes.front.log()
    );
    assert!(traces["sampled"].as_u64() >= Some(10), "{traces:#}");
    assert_eq!(traces["passed"], traces["sampled"], "{traces:#}");
    // The messages were encoded from the server's descriptors: the bad symbol got its
    // INVALID_ARGUMENT, every good one an OK.
    for kind in result["kinds"].as_array().expect("kinds") {
        let expected = if kind["name"] == "quote" {
            "OK"
        } else {
            "INVALID_ARGUMENT"
        };
        assert_eq!(kind["outcomes"][expected], kind["sent"], "{kind:#}");
    }
    assert!(!stdout.contains(KEY), "{stdout}");
}

#[test]
fn a_method_or_service_the_server_lacks_is_bad_input() {
    let Some(quotes) = services("reflection-unknown", free_addr()) else {
        return;
    };
    let target = format!("http://{}", quotes.front.grpc);
    let cases = [
        (
            "quotes.v1.Quotes/GetQuot",
            "requests[0].grpc.method: quotes.v1.Quotes has no method \"GetQuot\"",
            "it has: GetQuote",
        ),
        (
            "quotes.v1.Quote/GetQuote",
            "requests[0].grpc.method: no service \"quotes.v1.Quote\" on the server",
            "quotes.v1.Quotes",
        ),
    ];
    for (method, says, lists) in cases {
        let run = Run::new("reflection-unknown");
        let path = run.write_scenario("quotes.yaml", &scenario(&target, method, None));
        let (code, stdout) = harness(&run, &path);
        assert_eq!(code, Some(2), "{stdout}");
        assert!(
            stdout.contains(&format!("{path}:13:15: {says}")),
            "{stdout}"
        );
        assert!(stdout.contains(lists), "{stdout}");
        assert_eq!(sent(&run.result("quotes")), 0);
    }
}

#[test]
fn a_server_without_reflection_leaves_the_run_incomplete_before_any_load() {
    // The bundled engine serves its method but no reflection.
    let run = Run::new("reflection-none");
    let text = "name: quotes
system:
  managed: {}
load:
  phases:
    - constant: {rate: 20, duration: 2s}
requests:
  - name: fetch
    weight: 1
    grpc:
      method: core_engine.v1.CoreEngineService/FetchMarketData
      reflection: true
      message: {symbols: [AAPL], source_id: yahoo_finance}
";
    let path = run.write_scenario("quotes.yaml", text);
    let output = run.run(&["run", &path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "expected its gRPC server reflection to describe core_engine.v1.CoreEngineService"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("UNIMPLEMENTED"), "{stderr}");
    assert_eq!(sent(&run.result("quotes")), 0);
    run.assert_no_leftovers();
}
