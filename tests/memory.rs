//! `memory.growth` through `harness run` against the real services: an engine told to leak a
//! known number of bytes per request is caught, and the same short run without the leak passes.
//! Both runs last about 25 s and run side by side.

mod support;

use serde_json::Value;
use support::run::Run;

/// Requests per second, and bytes the leaking engine keeps per request: 200 × 16 KiB is
/// 3.3 MB/s, 197 MB/min, against a bound of 20 MB/min that a clean engine stays far below
/// (about 2 MB/min in a run this short, while its allocator and caches still fill).
const RATE: u64 = 200;
const LEAK_BYTES: u64 = 16 * 1024;
const BOUND: &str = "20MB/min";

fn scenario(leak: u64) -> String {
    format!(
        r#"name: memory
system:
  managed:
    tracing: false
    engine:
      args: ["--calibration-leak-bytes-per-request", "{leak}"]
load:
  protocol: http
  warmup: 2s
  phases:
    - constant: {{rate: {RATE}, duration: 20s}}
requests:
  - name: quote
    weight: 1
    body: {{symbols: [AAPL], source_id: yahoo_finance, window: 100}}
    expect: {{status: 200}}
thresholds:
  - "error_rate < 1%"
  - "memory.growth(core-engine) < {BOUND}"
  - "memory.growth < {BOUND}"
"#
    )
}

/// The threshold written as `expression`.
fn threshold<'a>(result: &'a Value, expression: &str) -> &'a Value {
    result["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .find(|t| t["expression"] == expression)
        .unwrap_or_else(|| panic!("no threshold {expression}: {result}"))
}

fn process<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["memory"]["processes"]
        .as_array()
        .expect("memory.processes")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name}: {}", result["memory"]))
}

fn run(name: &str, leak: u64) -> (Option<i32>, String, Value) {
    let run = Run::new(name);
    let path = run.write_scenario("memory.yaml", &scenario(leak));
    let output = run.run(&["run", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let result = run.result("memory");
    run.assert_no_leftovers();
    (output.status.code(), stdout, result)
}

#[test]
fn a_leaking_engine_fails_memory_growth() {
    let (code, stdout, result) = run("memory-leak", LEAK_BYTES);
    assert_eq!(code, Some(1), "{stdout}");
    let engine = process(&result, "core-engine");
    let growth = &engine["growth"];
    // At the rate the load achieved: a busy machine may have sent a little late.
    let achieved = result["load"]["achieved_rate"]
        .as_f64()
        .expect("achieved rate");
    assert!(achieved > 0.9 * RATE as f64, "{achieved}");
    let leaked = achieved * LEAK_BYTES as f64;
    let estimate = growth["estimate"].as_f64().expect("an estimate");
    // What was leaked, give or take the allocator's rounding.
    assert!(
        (0.7 * leaked..=1.3 * leaked).contains(&estimate),
        "growth {estimate} B/s against {leaked} B/s leaked: {growth}"
    );
    let named = threshold(&result, &format!("memory.growth(core-engine) < {BOUND}"));
    assert_eq!(named["passed"], false, "{named}");
    assert_eq!(named["unit"], "B/s");
    assert_eq!(named["measured"], growth["high"]);
    // Unnamed, the fastest-growing service is judged: the engine.
    let any = threshold(&result, &format!("memory.growth < {BOUND}"));
    assert_eq!(any["measured"], named["measured"], "{any}");
    // The other processes did not leak; the summary names the engine's growth.
    let gateway = process(&result, "api-gateway")["growth"]["estimate"]
        .as_f64()
        .expect("gateway estimate");
    assert!(gateway < leaked / 10.0, "gateway {gateway}");
    assert!(stdout.contains("memory (resident;"), "{stdout}");
    assert!(
        stdout.contains(&format!("[overall] memory.growth(core-engine) < {BOUND}: ")),
        "{stdout}"
    );
}

#[test]
fn a_clean_run_of_the_same_length_passes() {
    let (code, stdout, result) = run("memory-clean", 0);
    assert_eq!(code, Some(0), "{stdout}");
    for expression in [
        format!("memory.growth(core-engine) < {BOUND}"),
        format!("memory.growth < {BOUND}"),
    ] {
        assert_eq!(threshold(&result, &expression)["passed"], true);
    }
    // Every process was sampled about once a second through the 20 s of load, the harness too,
    // and the section says where the estimate starts.
    let memory = &result["memory"];
    assert_eq!(memory["sample_every_s"], 1.0);
    let steady = memory["steady_from_s"].as_f64().expect("steady_from_s");
    assert!((3.0..=5.0).contains(&steady), "{steady}");
    for name in ["core-engine", "api-gateway", "harness"] {
        let p = process(&result, name);
        let samples = p["samples"].as_array().expect("samples");
        assert!(
            (18..=22).contains(&samples.len()),
            "{name}: {}",
            samples.len()
        );
        assert!(
            p["start_bytes"].as_u64().expect("start") > 1 << 20,
            "{name}"
        );
        assert!(p["growth"]["high"].is_number(), "{name}");
    }
}
