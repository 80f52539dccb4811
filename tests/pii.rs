//! The search for personal data end to end, through `harness run` against the real services: the
//! bundled system is clean, and each leak the gateway can be made to commit (a header copied into
//! its span, request bodies logged) is caught and its place named, with secrets never shown whole.

mod support;

use serde_json::Value;
use support::run::Run;

/// `scenarios/pii.yaml` with the gateway started with `args`.
fn scenario(run: &Run, args: &str) -> String {
    let text = include_str!("../scenarios/pii.yaml");
    let from = "    gateway:\n      env:";
    assert_eq!(text.matches(from).count(), 1);
    let text = text.replace(
        from,
        &format!("    gateway:\n      args: [{args}]\n      env:"),
    );
    run.write_scenario("pii.yaml", &text)
}

fn pii(result: &Value) -> &Value {
    &result["verification"]["pii"]
}

fn findings(pii: &Value) -> Vec<(bool, String, String, String)> {
    pii["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let text = |key: &str| f[key].as_str().unwrap_or_default().to_owned();
            (
                f["canary"] == true,
                text("kind"),
                text("place"),
                text("value"),
            )
        })
        .collect()
}

/// No whole bearer-token canary anywhere in the run's outputs (`tok_` and 34 hex digits).
fn assert_no_whole_token(run: &Run, stdout: &str) {
    let whole = regex::Regex::new("tok_[0-9a-f]{34}").expect("valid");
    assert!(!whole.is_match(stdout), "{stdout}");
    for file in ["result.json", "report.html"] {
        let path = run.out.join("pii").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(!whole.is_match(&text), "a whole token in {file}");
    }
}

#[test]
fn the_bundled_system_keeps_personal_data_out_of_its_telemetry() {
    let run = Run::new("pii-clean");
    let output = run.run(&["run", "scenarios/pii.yaml"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = run.result("pii");
    let pii = pii(&result);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{pii:#}");
    assert_eq!(pii["passed"], true);
    assert_eq!(pii["canary_kinds"], serde_json::json!(["account", "token"]));
    assert_eq!(
        (
            pii["canaries_found"].as_u64(),
            pii["patterns_found"].as_u64()
        ),
        (Some(0), Some(0)),
        "{pii:#}"
    );
    let searched = &pii["searched"];
    assert!(searched["spans"].as_u64() >= Some(3 * 20), "{searched}");
    assert_eq!(searched["log_files"], 2);
    assert!(searched["log_lines"].as_u64() >= Some(150), "{searched}");
    assert!(searched["series"].as_u64() >= Some(10), "{searched}");
    assert!(pii.get("not_searched").is_none(), "{pii:#}");
    assert!(stdout.contains("pii: clean"), "{stdout}");
    run.assert_no_leftovers();
}

#[test]
fn a_bearer_token_copied_into_a_span_is_caught_and_never_shown_whole() {
    let run = Run::new("pii-span");
    let path = scenario(&run, "--calibration-copy-header-to-span, authorization");
    let output = run.run(&[
        "run",
        &path,
        "--junit",
        &run.out.join("junit.xml").display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = run.result("pii");
    let pii = pii(&result);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{pii:#}");
    assert_eq!(pii["passed"], false);
    let found = findings(pii);
    let (canary, kind, place, value) = &found[0];
    assert!(*canary && kind == "token", "{found:?}");
    assert!(
        place.starts_with("trace ")
            && place.contains("span \"POST /api/v1/market-data/fetch\" (api-gateway)")
            && place.ends_with("attribute http.request.header.authorization"),
        "{place}"
    );
    assert!(value.starts_with("tok_") && value.contains('…'), "{value}");
    // Every sampled trace leaked it; the header is no pattern find of its own besides.
    assert!(pii["canaries_found"].as_u64() >= Some(5), "{pii:#}");
    assert!(stdout.contains("pii: FOUND personal data"), "{stdout}");
    let junit = std::fs::read_to_string(run.out.join("junit.xml")).expect("junit");
    assert!(
        junit.contains("http.request.header.authorization"),
        "{junit}"
    );
    assert_no_whole_token(&run, &stdout);
    run.assert_no_leftovers();
}

#[test]
fn logged_request_bodies_are_caught_with_their_file_and_line() {
    let run = Run::new("pii-log");
    let path = scenario(&run, "--calibration-log-request-body");
    let output = run.run(&["run", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = run.result("pii");
    let pii = pii(&result);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{pii:#}");
    let found = findings(pii);
    let (canary, kind, place, value) = &found[0];
    assert!(*canary && kind == "account", "{found:?}");
    assert!(value.starts_with("acct-"), "{value}");
    let (file, line) = place.rsplit_once(':').expect("file:line");
    assert_eq!(file, "gateway.log", "{place}");
    let line: usize = line.parse().expect("a line number");
    let log = std::fs::read_to_string(run.out.join("pii").join("gateway.log")).expect("log");
    let logged = log.lines().nth(line - 1).expect("the line");
    assert!(
        logged.contains("calibration: request body") && logged.contains(value.as_str()),
        "{logged}"
    );
    run.assert_no_leftovers();
}
