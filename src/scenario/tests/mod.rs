use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use super::model::{Expect, External, RequestKind, Verify};
use super::*;

mod external;
mod jaeger;
mod metrics_auth;
mod properties;
mod requests;
mod verify;

/// The JSON body of a bundled-shorthand kind.
fn body(kind: &RequestKind) -> &serde_json::Value {
    match &kind.call {
        Call::Bundled(body) => body,
        other => panic!("a body: kind expected, got {other:?}"),
    }
}

/// The values of `vars:` lists.
fn lists(kind: &RequestKind) -> &std::collections::BTreeMap<String, Vec<String>> {
    match &kind.vars {
        Vars::Lists(lists) => lists,
        other => panic!("vars: lists expected, got {other:?}"),
    }
}

/// One request's body, its placeholders drawn as the plan draws them.
fn render(kind: &RequestKind, rng: &mut StdRng) -> serde_json::Value {
    let draw = kind.vars.draw(0, rng);
    template::render_json(body(kind), &draw, &|_| None).expect("renders")
}

/// A small valid file; bad cases edit one line of it so positions stay easy to check.
const BASE: &str = "\
name: base
system:
  managed: {}
load:
  protocol: http
  phases:
    - constant: {rate: 50, duration: 2s}
requests:
  - name: quote
    weight: 1
    body: {symbols: [\"{{symbol}}\"], source_id: yahoo_finance}
    vars: {symbol: [AAPL, MSFT]}
    expect: {status: 200}
";

fn sets(overrides: &[&str]) -> Vec<Override> {
    overrides
        .iter()
        .map(|o| o.parse().expect("test override parses"))
        .collect()
}

/// The values of located items, for comparing with what was written.
fn texts(items: &[Located<String>]) -> Vec<&str> {
    items.iter().map(|item| item.value.as_str()).collect()
}

fn error(text: &str, overrides: &[&str]) -> String {
    match parse("x.yaml", text, &sets(overrides)) {
        Ok(scenario) => panic!("expected an error, parsed {scenario:#?}"),
        Err(err) => err.to_string(),
    }
}

/// `BASE` with each `from` replaced by `to` (each `from` must occur exactly once).
fn edit(edits: &[(&str, &str)]) -> String {
    edit_of(BASE, edits)
}

/// `base` with each `from` replaced by `to` (each `from` must occur exactly once).
fn edit_of(base: &str, edits: &[(&str, &str)]) -> String {
    let mut text = base.to_owned();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} is not unique in {base:?}"
        );
        text = text.replace(from, to);
    }
    text
}

/// Parses each `(text, expected error)` and lists every case whose error differs.
fn assert_errors<'a>(cases: impl IntoIterator<Item = (String, &'a str)>) {
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(text, expected)| {
            let got = match parse("x.yaml", &text, &[]) {
                Ok(_) => "(parsed)".to_owned(),
                Err(err) => err.to_string(),
            };
            (got != expected).then(|| format!("{text}\n  expected: {expected}\n       got: {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// A directory of files a scenario refers to, removed when the test ends.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(test: &str, files: &[(&str, &[u8])]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("harness-scenario-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("scratch dir");
            std::fs::write(&path, bytes).expect("scratch file");
        }
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// The name of a scenario file in the directory, as `parse` takes it.
    fn source(&self) -> String {
        self.0.join("x.yaml").display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn base_parses_with_defaults() {
    let s = parse("x.yaml", BASE, &[]).expect("BASE is valid");
    assert_eq!(s.name, "base");
    assert_eq!(s.description, "");
    assert_eq!(
        s.system,
        System::Managed(Managed {
            tracing: true,
            engine: ServiceSpec::default(),
            gateway: ServiceSpec::default(),
            jaeger: None,
            metrics_auth: false,
        })
    );
    assert_eq!(
        s.load,
        Load {
            protocol: Protocol::Http,
            warmup: Duration::ZERO,
            phases: vec![Phase::Constant {
                rate: 50.0,
                duration: Duration::from_secs(2)
            }],
            arrivals: Arrivals::Uniform,
            seed: 1,
            max_in_flight: 1000,
            timeout: Duration::from_secs(5),
            connections: 2,
            batch_window: Duration::from_micros(50),
        }
    );
    let kind = &s.requests[0];
    assert_eq!(kind.name, "quote");
    assert_eq!(kind.weight, 1);
    assert_eq!(
        *body(kind),
        json!({"symbols": ["{{symbol}}"], "source_id": "yahoo_finance"})
    );
    assert_eq!(lists(kind)["symbol"], ["AAPL", "MSFT"]);
    assert_eq!(kind.expect, Expect::default());
    assert_eq!(kind.expect.code, tonic::Code::Ok);
    assert!(kind.thresholds.is_empty());
    assert!(s.thresholds.is_empty());
    assert_eq!(s.total_duration(), Duration::from_secs(2));
}

#[test]
fn full_file_reads_every_field() {
    let text = "\
name: full-run_2
description: everything set
system:
  external:
    gateway: http://127.0.0.1:8080
    engine: http://10.0.0.2:50051/
load:
  protocol: grpc
  warmup: 500ms
  phases:
    - constant: {rate: 2.5, duration: 1m}
    - ramp: {from: 100, to: 1000, duration: 20s}
  arrivals: poisson
  seed: 18446744073709551615
  max_in_flight: 1
  timeout: 250us
  connections: 8
requests:
  - name: a
    weight: 3
    body: {window: 1000, nested: {deep: [1, \"{{x}}\", {y: \"{{ y }}\"}], f: 1.5, n: ~, t: true}}
    vars:
      x: [\"1\", two]
      y: [NO]
    expect: {code: unavailable}
    thresholds: [\"p(99) < 50ms\"]
  - name: b
    weight: 4294967295
    body: {}
thresholds: [\"error_rate < 1%\", \"rps > 10\"]
";
    let s = parse("full.yaml", text, &[]).expect("valid");
    let System::External(external) = &s.system else {
        panic!("external expected: {:?}", s.system);
    };
    let External {
        gateway, engine, ..
    } = external.as_ref();
    assert_eq!(
        gateway.as_ref().map(|u| u.to_string()).as_deref(),
        Some("http://127.0.0.1:8080/")
    );
    assert_eq!(
        engine.as_ref().and_then(|u| u.port_u16()),
        Some(50051),
        "{engine:?}"
    );
    assert_eq!(s.load.protocol, Protocol::Grpc);
    assert_eq!(s.load.warmup, Duration::from_millis(500));
    assert_eq!(
        s.load.phases,
        [
            Phase::Constant {
                rate: 2.5,
                duration: Duration::from_secs(60)
            },
            Phase::Ramp {
                from: 100.0,
                to: 1000.0,
                duration: Duration::from_secs(20)
            }
        ]
    );
    assert_eq!(s.load.arrivals, Arrivals::Poisson);
    assert_eq!(s.load.seed, u64::MAX);
    assert_eq!(s.load.max_in_flight, 1);
    assert_eq!(s.load.timeout, Duration::from_micros(250));
    assert_eq!(s.load.connections, 8);
    assert_eq!(s.total_duration(), Duration::from_secs(80));
    assert_eq!(s.total_weight(), 3 + u64::from(u32::MAX));
    let a = &s.requests[0];
    assert_eq!(
        *body(a),
        json!({"window": 1000, "nested": {"deep": [1, "{{x}}", {"y": "{{ y }}"}], "f": 1.5, "n": null, "t": true}})
    );
    assert_eq!(lists(a)["x"], ["1", "two"]);
    assert_eq!(
        lists(a)["y"],
        ["NO"],
        "YAML 1.2 booleans only: NO stays a string"
    );
    assert_eq!(
        a.expect,
        Expect {
            status: 200,
            code: tonic::Code::Unavailable
        }
    );
    assert_eq!(texts(&a.thresholds), ["p(99) < 50ms"]);
    assert_eq!(*body(&s.requests[1]), json!({}));
    assert_eq!(texts(&s.thresholds), ["error_rate < 1%", "rps > 10"]);
}

#[test]
fn managed_services_take_args_and_env() {
    let text = edit(&[(
        "  managed: {}\n",
        "  managed:\n    tracing: false\n    engine:\n      args: [--fault-stall-every, 5s, --port, 50051]\n      env: {RUST_LOG: warn, N: 1}\n    gateway:\n",
    )]);
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let System::Managed(m) = s.system else {
        panic!("managed expected")
    };
    assert!(!m.tracing);
    assert_eq!(
        m.engine.args,
        ["--fault-stall-every", "5s", "--port", "50051"]
    );
    assert_eq!(m.engine.env["RUST_LOG"], "warn");
    assert_eq!(m.engine.env["N"], "1");
    assert_eq!(m.gateway, ServiceSpec::default());
}

#[test]
fn bad_files_say_where_and_what() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // Syntax and structure.
        (
            &[("  protocol: http", "  protocol: [http")],
            "x.yaml:6:9: illegal placement of ':' indicator",
        ),
        (
            &[("load:\n", "laod:\n")],
            "x.yaml:4:1: laod: unknown key; expected one of: name, description, system, load, requests, thresholds, verify, overhead\n\
             x.yaml:1:1: load: required key is missing",
        ),
        (
            &[("    weight: 1", "    weight: 1\n    wieght: 2")],
            "x.yaml:11:5: requests[0].wieght: unknown key; expected one of: name, weight, body, http, grpc, websocket, vars, vars_file, expect, thresholds, trace_sample",
        ),
        (
            &[("  protocol: http", "  protocol: http\n  protocol: grpc")],
            "x.yaml:6:3: load.protocol: duplicate key (first at x.yaml:5:3)",
        ),
        (
            &[("rate: 50", "rate: fifty")],
            "x.yaml:7:24: load.phases[0].constant.rate: expected a number > 0, got \"fifty\"",
        ),
        // Name pattern.
        (
            &[("name: base", "name: Base Line")],
            "x.yaml:1:7: name: expected a name matching [a-z0-9_-]+, got \"Base Line\"",
        ),
        (
            &[("name: quote", "name: quote-2")],
            "x.yaml:9:11: requests[0].name: expected a name matching [a-z0-9_]+, got \"quote-2\"",
        ),
        // Phases.
        (
            &[("    - constant: {rate: 50, duration: 2s}", "    []")],
            "x.yaml:7:5: load.phases: expected at least one phase, got an empty sequence",
        ),
        (
            &[("rate: 50", "rate: -5")],
            "x.yaml:7:24: load.phases[0].constant.rate: expected a number > 0, got -5",
        ),
        (
            &[("rate: 50", "rate: .inf")],
            "x.yaml:7:24: load.phases[0].constant.rate: expected a number > 0, got .inf",
        ),
        (
            &[(
                "- constant: {rate: 50, duration: 2s}",
                "- ramp: {from: 0, to: 10, duration: 2s}",
            )],
            "x.yaml:7:20: load.phases[0].ramp.from: expected a number > 0, got 0",
        ),
        (
            &[("duration: 2s", "duration: 0s")],
            "x.yaml:7:38: load.phases[0].constant.duration: expected a duration > 0, got \"0s\"",
        ),
        (
            &[("duration: 2s", "duration: 2h")],
            "x.yaml:7:38: load.phases[0].constant.duration: \"2h\" has unknown unit \"h\"; use us, ms, s or m",
        ),
        (
            &[("duration: 2s", "duration: 2")],
            "x.yaml:7:38: load.phases[0].constant.duration: \"2\" has no unit; write e.g. 250ms, 1.5s, 500us or 2m",
        ),
        (
            &[(
                "constant: {rate: 50, duration: 2s}",
                "{constant: {rate: 50}, ramp: {}}",
            )],
            "x.yaml:7:7: load.phases[0]: expected exactly one of constant, ramp",
        ),
        (
            &[("constant: {rate: 50, duration: 2s}", "constant: {rate: 50}")],
            "x.yaml:7:17: load.phases[0].constant.duration: required key is missing",
        ),
        // Request kinds.
        (
            &[(
                "  - name: quote",
                "  - name: quote\n    weight: 1\n    body: {}\n  - name: quote",
            )],
            "x.yaml:12:11: requests[1].name: duplicate request name \"quote\" (also requests[0])",
        ),
        (
            &[("weight: 1", "weight: 0")],
            "x.yaml:10:13: requests[0].weight: expected an integer > 0, got 0",
        ),
        (
            &[("weight: 1", "weight: 1.5")],
            "x.yaml:10:13: requests[0].weight: expected an integer > 0, got 1.5",
        ),
        (
            &[("weight: 1", "weight: 4294967296")],
            "x.yaml:10:13: requests[0].weight: expected an integer <= 4294967295, got 4294967296",
        ),
        (
            &[("[\"{{symbol}}\"]", "[\"{{symbol}}\", \"{{venue}}\"]")],
            "x.yaml:11:36: requests[0].body.symbols[1]: \"{{venue}}\" needs a non-empty requests[0].vars.venue",
        ),
        (
            &[(
                "vars: {symbol: [AAPL, MSFT]}",
                "vars: {symbol: [AAPL], venue: [X]}",
            )],
            "x.yaml:12:28: requests[0].vars.venue: unused: the request has no \"{{venue}}\"",
        ),
        (
            &[("vars: {symbol: [AAPL, MSFT]}", "vars: {symbol: []}")],
            "x.yaml:12:20: requests[0].vars.symbol: expected a non-empty sequence of strings, got an empty sequence",
        ),
        (
            &[("[\"{{symbol}}\"]", "[\"x-{{symbol\"]")],
            "x.yaml:11:22: requests[0].body.symbols[0]: unclosed \"{{\" in \"x-{{symbol\"",
        ),
        (
            &[("{status: 200}", "{status: 200, code: TEAPOT}")],
            "x.yaml:13:33: requests[0].expect.code: expected a gRPC code name such as OK, INVALID_ARGUMENT or UNAVAILABLE, got \"TEAPOT\"",
        ),
        (
            &[("{status: 200}", "{status: 42}")],
            "x.yaml:13:22: requests[0].expect.status: expected an HTTP status from 100 to 599, got 42",
        ),
        // System.
        (
            &[(
                "  managed: {}",
                "  managed: {}\n  external: {gateway: http://h:1}",
            )],
            "x.yaml:3:3: system: expected exactly one of managed, external, got both",
        ),
        (
            &[("  managed: {}", "  {}")],
            "x.yaml:3:3: system: expected exactly one of managed, external, got neither",
        ),
        (
            &[("  managed: {}", "  external: {gateway: ftp://h:1}")],
            "x.yaml:3:23: system.external.gateway: expected an http:// or https:// URL such as https://127.0.0.1:8443 (a path prefix is allowed), got \"ftp://h:1\"",
        ),
        (
            &[("  managed: {}", "  external: {engine: http://h:1}")],
            "x.yaml:3:13: system.external.target: required when load.protocol is http (or system.external.gateway)",
        ),
        (
            &[("  managed: {}", "  managed: {tracing: maybe}")],
            "x.yaml:3:22: system.managed.tracing: expected true or false, got \"maybe\"",
        ),
        // Load settings.
        (
            &[("  protocol: http", "  protocol: http\n  max_in_flight: 0")],
            "x.yaml:6:18: load.max_in_flight: expected an integer > 0, got 0",
        ),
        (
            &[("  protocol: http", "  protocol: http\n  batch_window: 20ms")],
            "x.yaml:6:17: load.batch_window: expected a duration <= 10ms, got \"20ms\"",
        ),
        (
            &[("  protocol: http", "  protocol: http\n  connections: -1")],
            "x.yaml:6:16: load.connections: expected an integer > 0, got -1",
        ),
        (
            &[("  protocol: http", "  protocol: tcp")],
            "x.yaml:5:13: load.protocol: expected http or grpc or websocket, got \"tcp\"",
        ),
        (
            &[("  protocol: http", "  protocol: http\n  arrivals: bursty")],
            "x.yaml:6:13: load.arrivals: expected uniform or poisson, got \"bursty\"",
        ),
        (
            &[("  protocol: http", "  protocol: http\n  timeout: 0ms")],
            "x.yaml:6:12: load.timeout: expected a duration > 0, got \"0ms\"",
        ),
        (
            &[("  protocol: http", "  protocol: http\n  warmup: -1s")],
            "x.yaml:6:11: load.warmup: \"-1s\" does not start with a number",
        ),
        // Several problems are all reported.
        (
            &[("name: base", "name: \"\""), ("weight: 1", "weight: x")],
            "x.yaml:1:7: name: expected a name matching [a-z0-9_-]+, got \"\"\n\
             x.yaml:10:13: requests[0].weight: expected an integer > 0, got \"x\"",
        ),
    ];
    let mut failures = Vec::new();
    for (edits, expected) in cases {
        let got = error(&edit(edits), &[]);
        if got != *expected {
            failures.push(format!(
                "edits {edits:?}\n  expected: {expected}\n       got: {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn documents_that_are_not_mappings() {
    assert_eq!(
        error("", &[]),
        "x.yaml:1:1: expected a mapping at the top level, got null"
    );
    assert_eq!(
        error("- a\n", &[]),
        "x.yaml:1:1: expected a mapping at the top level, got a sequence"
    );
    assert_eq!(
        error("a: 1\n---\nb: 2\n", &[]),
        "x.yaml:3:1: only single YAML document expected but multiple found"
    );
}

#[test]
fn set_overrides_values_and_errors_name_the_set() {
    let s = parse(
        "x.yaml",
        BASE,
        &sets(&[
            "load.phases.0.constant.rate=500",
            "load.warmup=1.5s",
            "load.phases.1.ramp.from=1",
            "load.phases.1.ramp.to=2",
            "load.phases.1.ramp.duration=1s",
            "requests.0.vars.symbol.2=NVDA",
            "requests.0.expect.code=NOT_FOUND",
            "system.managed.engine.args.0=--x",
            "description=",
            "thresholds.0=p(99) < 50ms",
        ]),
    )
    .expect("valid");
    assert_eq!(
        s.load.phases,
        [
            Phase::Constant {
                rate: 500.0,
                duration: Duration::from_secs(2)
            },
            Phase::Ramp {
                from: 1.0,
                to: 2.0,
                duration: Duration::from_secs(1)
            }
        ]
    );
    assert_eq!(s.load.warmup, Duration::from_millis(1500));
    assert_eq!(lists(&s.requests[0])["symbol"], ["AAPL", "MSFT", "NVDA"]);
    assert_eq!(s.requests[0].expect.code, tonic::Code::NotFound);
    assert_eq!(texts(&s.thresholds), ["p(99) < 50ms"]);
    let System::Managed(m) = s.system else {
        panic!("managed")
    };
    assert_eq!(m.engine.args, ["--x"]);

    let cases: &[(&[&str], &str)] = &[
        (
            &["load.phases.0.constant.rate=-5"],
            "--set load.phases.0.constant.rate: load.phases[0].constant.rate: expected a number > 0, got -5",
        ),
        (
            &["load.rate=5"],
            "--set load.rate: load.rate: unknown key; expected one of: protocol, warmup, phases, arrivals, seed, max_in_flight, timeout, connections, batch_window",
        ),
        (
            &["load.phases.3.constant.rate=5"],
            "--set load.phases.3.constant.rate: load.phases: index 3 is out of range: the sequence has 1 items (1 appends)",
        ),
        (
            &["load.phases.first.constant.rate=5"],
            "--set load.phases.first.constant.rate: load.phases: expected an index into the sequence, got \"first\"",
        ),
        (
            &["name.first=5"],
            "--set name.first: name: is \"base\", which has no key \"first\" to set",
        ),
        (
            &["load.phases.1.constant.rate=5"],
            "--set load.phases.1.constant.rate: load.phases[1].constant.duration: required key is missing",
        ),
        (
            &["load.timeout=\"5\""],
            "--set load.timeout: load.timeout: \"5\" has no unit; write e.g. 250ms, 1.5s, 500us or 2m",
        ),
        (
            &["requests.0.weight=500", "requests.0.weight=0"],
            "--set requests.0.weight: requests[0].weight: expected an integer > 0, got 0",
        ),
    ];
    for (overrides, expected) in cases {
        assert_eq!(error(BASE, overrides), *expected, "{overrides:?}");
    }
}

#[test]
fn load_limits_refuse_what_no_run_could_honour() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["load.connections=9223372036854775807"],
            "--set load.connections: load.connections: expected an integer <= 10000, got 9223372036854775807",
        ),
        (
            &["load.max_in_flight=1000001"],
            "--set load.max_in_flight: load.max_in_flight: expected an integer <= 1000000, got 1000001",
        ),
        (
            &["load.phases.0.constant.rate=1000001"],
            "--set load.phases.0.constant.rate: load.phases[0].constant.rate: expected at most 1000000 requests per second, got 1000001",
        ),
        (
            &["load.phases.0.constant.duration=1441m"],
            "--set load.phases.0.constant.duration: load.phases[0].constant.duration: expected a duration <= 1440m (a day), got \"1441m\"",
        ),
        (
            &["load.warmup=100000000000s"],
            "--set load.warmup: load.warmup: expected a duration <= 1440m (a day), got \"100000000000s\"",
        ),
        (
            &["load.timeout=86401s"],
            "--set load.timeout: load.timeout: expected a duration <= 1440m (a day), got \"86401s\"",
        ),
    ];
    for (overrides, expected) in cases {
        assert_eq!(error(BASE, overrides), *expected, "{overrides:?}");
    }
    assert_errors([(
        edit(&[(
            "constant: {rate: 50, duration: 2s}",
            "ramp: {from: 2e6, to: 3e6, duration: 1s}",
        )]),
        "x.yaml:7:20: load.phases[0].ramp.from: expected at most 1000000 requests per second, got 2000000\n\
         x.yaml:7:29: load.phases[0].ramp.to: expected at most 1000000 requests per second, got 3000000",
    )]);
    // A huge number is named in a form that can be read, and read back.
    assert_errors([(
        edit(&[(
            "constant: {rate: 50, duration: 2s}",
            "ramp: {from: 1e300, to: 1.5e308, duration: 1s}",
        )]),
        "x.yaml:7:20: load.phases[0].ramp.from: expected at most 1000000 requests per second, got 1e300\n\
         x.yaml:7:31: load.phases[0].ramp.to: expected at most 1000000 requests per second, got 1.5e308",
    )]);
    // Every limit itself is allowed.
    let s = parse(
        "x.yaml",
        BASE,
        &sets(&[
            "load.connections=10000",
            "load.max_in_flight=1000000",
            "load.phases.0.constant.rate=1000000",
            "load.phases.0.constant.duration=1440m",
            "load.warmup=1440m",
            "load.timeout=1440m",
        ]),
    )
    .expect("the limits themselves parse");
    assert_eq!(s.load.connections, 10_000);
    assert_eq!(s.load.max_in_flight, 1_000_000);
    assert_eq!(s.load.timeout, Duration::from_secs(24 * 3600));
}

#[test]
fn bad_set_syntax() {
    let err = |text: &str| match text.parse::<Override>() {
        Ok(o) => panic!("expected an error, got {o}"),
        Err(err) => err.to_string(),
    };
    assert_eq!(
        err("load.seed"),
        "--set load.seed: expected KEY=VALUE, e.g. load.phases.0.constant.rate=500"
    );
    assert_eq!(
        err("load..seed=1"),
        "--set load..seed: expected a dotted key path such as load.phases.0.constant.rate"
    );
    assert_eq!(
        err("requests.0.body.symbols.0={{x}}"),
        "--set requests.0.body.symbols.0: expected a YAML scalar value, got a mapping (quote a string such as '\"{{symbol}}\"')"
    );
    assert!(
        err("name=\"unterminated").starts_with("--set name: the value is not valid YAML: "),
        "{}",
        err("name=\"unterminated")
    );
    let ok: Override = "a.b.0=\"{{x}}\""
        .parse()
        .expect("quoted placeholder is a scalar");
    assert_eq!(ok.to_string(), "a.b.0=\"{{x}}\"");
    assert_eq!(ok.path(), "a.b.0");
}

#[test]
fn render_draws_every_placeholder_from_its_vars() {
    let text = edit(&[(
        "    body: {symbols: [\"{{symbol}}\"], source_id: yahoo_finance}\n    vars: {symbol: [AAPL, MSFT]}",
        "    body: {symbols: [\"{{symbol}}\", \"{{symbol}}\"], source_id: \"{{src}}\", keep: \"{x}\", deep: [{s: \"{{symbol}}\"}], n: 3}\n    vars: {symbol: [AAPL, MSFT], src: [yahoo_finance]}",
    )]);
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let kind = &s.requests[0];
    let mut rng = StdRng::seed_from_u64(7);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let body = render(kind, &mut rng);
        // One draw per request: every use of a variable in it gets the same value.
        assert_eq!(body["symbols"][0], body["symbols"][1], "{body}");
        for symbol in [
            &body["symbols"][0],
            &body["symbols"][1],
            &body["deep"][0]["s"],
        ] {
            let symbol = symbol.as_str().expect("a string");
            assert!(["AAPL", "MSFT"].contains(&symbol), "{body}");
            seen.insert(symbol.to_owned());
        }
        assert_eq!(body["source_id"], "yahoo_finance");
        assert_eq!(body["keep"], "{x}");
        assert_eq!(body["n"], 3);
    }
    assert_eq!(seen.len(), 2, "both values drawn");

    // Same seed, same sequence of bodies: runs are repeatable.
    let draw = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..20).map(|_| render(kind, &mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));

    // No vars: the body as is.
    let plain = RequestKind {
        call: Call::Bundled(json!({"symbols": ["AAPL"], "keep": "{x}"})),
        vars: Default::default(),
        ..kind.clone()
    };
    assert_eq!(render(&plain, &mut rng), *body(&plain));
}

#[test]
fn phase_helpers() {
    let ramp = Phase::Ramp {
        from: 100.0,
        to: 300.0,
        duration: Duration::from_secs(10),
    };
    assert_eq!(ramp.start_rate(), 100.0);
    assert_eq!(ramp.duration(), Duration::from_secs(10));
    let constant = Phase::Constant {
        rate: 50.0,
        duration: Duration::from_secs(2),
    };
    assert_eq!(constant.start_rate(), 50.0);
    assert_eq!(constant.duration(), Duration::from_secs(2));
}

/// Every shipped scenario, and the example in the format's documentation, must stay valid.
#[test]
fn shipped_scenarios_and_the_documented_example_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
        let path = entry.expect("readable entry").path();
        // Sign-off suites live here too; they are checked with their scenarios in `signoff`.
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && !crate::signoff::suite::is_suite_file(&path)
        {
            load(&path, &[]).unwrap_or_else(|err| panic!("{err}"));
            count += 1;
        }
    }
    assert!(count >= 1, "no scenarios in {}", dir.display());

    let smoke = load(&dir.join("smoke.yaml"), &[]).expect("smoke parses");
    assert_eq!(
        smoke.load.warmup + smoke.total_duration(),
        Duration::from_secs(3)
    );

    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario.md"))
            .expect("docs/scenario.md");
    // The complete scenarios among the page's YAML blocks, found by their names.
    let block = |name: &str| {
        doc.split("```yaml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .find(|block| block.starts_with(&format!("name: {name}")))
            .unwrap_or_else(|| panic!("the example named {name} in docs/scenario.md"))
    };
    let example = block("baseline");
    let s = parse("docs/scenario.md", example, &[]).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(s.name, "baseline");
    assert_eq!(s.requests.len(), 2);
    assert_eq!(s.total_duration(), Duration::from_secs(50));

    let own = block("quotes");
    let s = parse("docs/scenario.md", own, &[]).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!((s.name.as_str(), s.requests.len()), ("quotes", 1));
    let metrics = s.verify.metrics.expect("metrics checks");
    assert_eq!(metrics.rules.len(), 2);

    let overhead = block("overhead-example");
    let s = parse("docs/scenario.md", overhead, &[]).unwrap_or_else(|err| panic!("{err}"));
    let overhead = s.overhead.expect("an experiment");
    assert_eq!(overhead.sweep.expect("a sweep").values.len(), 4);
}

#[test]
fn only_a_regular_file_of_bounded_size_is_read() {
    let err = load(Path::new("/dev/zero"), &[]).expect_err("a device");
    assert_eq!(
        err.to_string(),
        "/dev/zero: not a regular file (a directory, device or FIFO)"
    );
    let scratch = Scratch::new("regular", &[]);
    let fifo = scratch.0.join("fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    // No writer: reading would block forever.
    let err = load(&fifo, &[]).expect_err("a FIFO");
    assert!(
        err.to_string()
            .ends_with(": not a regular file (a directory, device or FIFO)")
    );
    let big = scratch.0.join("big.yaml");
    std::fs::write(&big, format!("{BASE}#{}\n", "x".repeat(4 << 20))).expect("written");
    let err = load(&big, &[]).expect_err("too big");
    assert_eq!(
        err.to_string(),
        format!("{}: larger than 4194304 bytes", big.display())
    );
    let fine = scratch.0.join("fine.yaml");
    std::fs::write(&fine, BASE).expect("written");
    load(&fine, &[]).expect("a regular file parses");
}

#[test]
fn missing_file_names_the_path() {
    let err = load(Path::new("/nonexistent/x.yaml"), &[]).expect_err("no such file");
    assert!(
        err.to_string().starts_with("/nonexistent/x.yaml: "),
        "{err}"
    );
    assert!(
        matches!(err, ScenarioError::Read { .. }),
        "a read error has no problems"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("name: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = error(&text, &[]);
    assert!(err.starts_with("x.yaml:"), "{err}");
}

/// `--set` is meant for clap: `Vec<Override>` must work as a repeated option.
#[test]
fn overrides_parse_as_clap_arguments() {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[arg(long = "set")]
        set: Vec<Override>,
    }
    let cli = Cli::try_parse_from(["harness", "--set", "load.seed=2", "--set", "name=x"])
        .expect("valid overrides");
    assert_eq!(cli.set.len(), 2);
    let err = Cli::try_parse_from(["harness", "--set", "load.seed"])
        .err()
        .expect("no value");
    assert!(
        err.to_string()
            .contains("--set load.seed: expected KEY=VALUE"),
        "{err}"
    );
}

#[test]
fn verify_defaults_fit_the_bundled_system() {
    let text = format!("{BASE}verify:\n  traces: {{}}\n  metrics:\n");
    let s = parse("x.yaml", &text, &[]).expect("valid");
    let traces = s.verify.traces.expect("traces");
    assert_eq!(traces.sample, SampleShare::Ratio(0.1));
    assert_eq!(
        traces.source,
        TraceSourceSpec::Embedded {
            grpc: None,
            http: None
        }
    );
    assert_eq!(traces.response_header.as_deref(), Some("X-Trace-ID"));
    assert!(traces.logs);
    assert_eq!(traces.services, ["api-gateway", "core-engine"]);
    let kinds: Vec<_> = traces
        .chain
        .iter()
        .map(|step| (step.service.as_str(), step.kind.name(), step.error))
        .collect();
    assert_eq!(
        kinds,
        [
            ("api-gateway", "server", ErrorRule::Server),
            ("api-gateway", "client", ErrorRule::Any),
            ("core-engine", "server", ErrorRule::Server),
            ("core-engine", "internal", ErrorRule::Never),
        ]
    );
    assert_eq!(
        traces.chain[0].attributes["http.response.status_code"],
        "{status}"
    );
    let metrics = s.verify.metrics.expect("metrics");
    assert!(metrics.scrape && metrics.prometheus.is_none());
    // Without the section nothing is checked.
    assert_eq!(
        parse("x.yaml", BASE, &[]).expect("valid").verify,
        Verify::default()
    );
}

#[test]
fn verify_reads_every_field() {
    let text = format!(
        "{BASE}    trace_sample: 25
verify:
  traces:
    sample: 5%
    source: jaeger
    jaeger: {{url: http://127.0.0.1:16686/, api: v3}}
    timeout: 4s
    response_header:
    logs: false
    services: [api-gateway]
    chain:
      - {{service: api-gateway, kind: server, name: GET /x, attributes: {{http.response.status_code: 200}}, error: any, only_on_success: true}}
  metrics:
    scrape: false
    prometheus: {{url: http://127.0.0.1:9090, gateway: '{{job=\"gw\"}}'}}
"
    );
    let s = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(s.requests[0].trace_sample, Some(SampleShare::Count(25)));
    let traces = s.verify.traces.expect("traces");
    assert_eq!(traces.sample, SampleShare::Ratio(0.05));
    assert_eq!(
        traces.source,
        TraceSourceSpec::Jaeger {
            url: "http://127.0.0.1:16686".into(),
            api: "v3".into(),
            access: Access::default(),
        }
    );
    assert_eq!(traces.timeout, Duration::from_secs(4));
    assert_eq!((traces.response_header, traces.logs), (None, false));
    assert_eq!(traces.chain.len(), 1);
    let step = &traces.chain[0];
    assert_eq!(step.name.as_deref(), Some("GET /x"));
    assert_eq!(step.attributes["http.response.status_code"], "200");
    assert!(step.only_on_success && step.error == ErrorRule::Any);
    let prometheus = s
        .verify
        .metrics
        .and_then(|m| m.prometheus)
        .expect("prometheus");
    assert_eq!(
        prometheus.selectors,
        [
            ("api-gateway".to_owned(), "{job=\"gw\"}".to_owned()),
            ("core-engine".to_owned(), "{job=\"core-engine\"}".to_owned())
        ]
    );
}

#[test]
fn pii_defaults_to_pattern_warnings_and_canaries_need_no_vars() {
    use crate::scenario::{PatternSeverity, PiiChecks};
    let text = format!("{BASE}verify:\n  pii:\n");
    let scenario = parse("x.yaml", &text, &[]).expect("valid");
    assert_eq!(
        scenario.verify.pii,
        Some(PiiChecks {
            patterns: PatternSeverity::Warn
        })
    );
    let text = edit(&[(
        "source_id: yahoo_finance}",
        "source_id: \"{{canary.card}}\"}",
    )]);
    parse("x.yaml", &text, &[]).expect("a canary is no variable to declare");
    let bad = edit(&[(
        "source_id: yahoo_finance}",
        "source_id: \"{{canary.ssn}}\"}",
    )]);
    assert!(
        error(&bad, &[]).contains("unknown canary"),
        "{}",
        error(&bad, &[])
    );
}

#[test]
fn bad_verify_sections_say_where_and_what() {
    let cases: &[(&str, &str)] = &[
        (
            "verify:\n  traces: {sample: 150%}\n",
            "x.yaml:15:20: verify.traces.sample: expected a count such as 50 or a share such as 10% or 0.1, got \"150%\"",
        ),
        (
            "verify:\n  traces: {source: jaeger}\n",
            "x.yaml:15:11: verify.traces.jaeger: required when source is jaeger (or pass --jaeger URL)",
        ),
        (
            "verify:\n  traces: {jaeger: {url: ftp://x}, source: jaeger}\n",
            "x.yaml:15:26: verify.traces.jaeger.url: expected an http:// URL such as http://127.0.0.1:16686, got \"ftp://x\"",
        ),
        (
            "verify:\n  traces: {chain: [{service: a, kind: sever}]}\n",
            "x.yaml:15:39: verify.traces.chain[0].kind: expected server or client or internal or producer or consumer, got \"sever\"",
        ),
        (
            "verify:\n  traces: {chain: []}\n",
            "x.yaml:15:19: verify.traces.chain: expected at least one step, got an empty sequence",
        ),
        (
            "verify:\n  metrics: {prometheus: {gateway: x}}\n",
            "x.yaml:15:25: verify.metrics.prometheus.url: required key is missing",
        ),
        (
            "verify:\n  traces: {chain: [{service: a, kind: server, attributes: {x: \"{stauts}\"}}]}\n",
            "x.yaml:15:63: verify.traces.chain[0].attributes.x: expected a value, or {status} (the HTTP status received) or {code} (the gRPC code), got \"{stauts}\"",
        ),
        (
            "verify:\n  metrics: {scrape: false}\n",
            "x.yaml:15:12: verify.metrics: nothing to read the metrics from: scrape is false and no prometheus is given",
        ),
        (
            "    trace_sample: 5\n",
            "x.yaml:1:1: requests[0].trace_sample: given, but there is no verify.traces section",
        ),
        (
            "verify:\n  trace: {}\n",
            "x.yaml:15:3: verify.trace: unknown key; expected one of: traces, metrics, pii, streams",
        ),
        (
            "verify:\n  pii: {patterns: loud}\n",
            "x.yaml:15:19: verify.pii.patterns: expected off or warn or fail, got \"loud\"",
        ),
        (
            "verify:\n  pii: {canaries: false}\n",
            "x.yaml:15:9: verify.pii.canaries: unknown key; expected one of: patterns",
        ),
    ];
    for (tail, expected) in cases {
        let text = format!("{BASE}{tail}");
        assert_eq!(error(&text, &[]), *expected, "{tail}");
    }
}

#[test]
fn overhead_defaults_to_tracing_off_against_on_and_a_one_percent_cpu_claim() {
    let text = format!("{BASE}overhead: {{}}\n");
    let overhead = parse("x.yaml", &text, &[])
        .expect("valid")
        .overhead
        .expect("an experiment");
    assert_eq!(overhead.trials, 10);
    assert_eq!(overhead.execution, Execution::Duet);
    assert_eq!(overhead.relaunch, Relaunch::EveryPair);
    assert_eq!(overhead.settle, Duration::from_secs(1));
    assert_eq!(
        overhead.claim,
        Claim {
            metric: ClaimMetric::Cpu,
            bound: 0.01
        }
    );
    assert!(!overhead.control.tracing && overhead.treatment.tracing);
    assert_eq!((overhead.export, overhead.sweep), (None, None));
    assert_eq!((overhead.instructions, overhead.steps), (None, Vec::new()));
    assert_eq!(parse("x.yaml", BASE, &[]).expect("valid").overhead, None);
}

#[test]
fn overhead_reads_arms_claims_and_sweeps() {
    let text = format!(
        "{BASE}overhead:
  trials: 6
  execution: alternating
  relaunch: never
  settle: 500ms
  claim: {{metric: p99, bound: 5%}}
  export: http://127.0.0.1:4317
  control: {{tracing: true}}
  treatment:
    engine: {{args: [--calibration-traced-cpu-us, 100], env: {{A: 1}}}}
  sweep: {{set: requests.0.body.window, values: [100, 1000]}}
"
    );
    let overhead = parse("x.yaml", &text, &[])
        .expect("valid")
        .overhead
        .expect("an experiment");
    assert_eq!(overhead.trials, 6);
    assert_eq!(overhead.execution, Execution::Alternating);
    assert_eq!(overhead.relaunch, Relaunch::Never);
    assert_eq!(overhead.settle, Duration::from_millis(500));
    assert_eq!(overhead.claim.metric, ClaimMetric::P99);
    assert!((overhead.claim.bound - 0.05).abs() < 1e-12);
    assert_eq!(overhead.export.as_deref(), Some("http://127.0.0.1:4317"));
    assert!(overhead.control.tracing && overhead.treatment.tracing);
    assert_eq!(
        overhead.treatment.engine.args,
        ["--calibration-traced-cpu-us", "100"]
    );
    assert_eq!(overhead.treatment.engine.env["A"], "1");
    let sweep = overhead.sweep.expect("a sweep");
    assert_eq!(sweep.key, "requests.0.body.window");
    assert_eq!(texts(&sweep.values), ["100", "1000"]);
    // Each value keeps its place, for the errors of the point it makes.
    let places: Vec<String> = sweep
        .values
        .iter()
        .map(|v| format!("{}: {}", v.at, v.key))
        .collect();
    assert_eq!(
        places,
        [
            "x.yaml:24:49: overhead.sweep.values[0]",
            "x.yaml:24:54: overhead.sweep.values[1]"
        ]
    );
}

#[test]
fn thresholds_keep_where_they_were_written() {
    let text = format!(
        "{BASE}    thresholds:\n      - \"p(99) < 50ms\"\nthresholds: [\"error_rate < 1%\", \"rps > 10\"]\n"
    );
    let s = parse("x.yaml", &text, &sets(&["thresholds.1=rps > 20"])).expect("valid");
    let place = |t: &Located<String>| format!("{}: {}", t.at, t.key);
    assert_eq!(
        place(&s.requests[0].thresholds[0]),
        "x.yaml:15:9: requests[0].thresholds[0]"
    );
    assert_eq!(place(&s.thresholds[0]), "x.yaml:16:14: thresholds[0]");
    // A value a --set supplied is the --set's.
    assert_eq!(place(&s.thresholds[1]), "--set thresholds.1: thresholds[1]");
    assert_eq!(s.thresholds[1].value, "rps > 20");
    assert_eq!(
        s.thresholds[0].problem("bad").to_string(),
        "x.yaml:16:14: thresholds[0]: bad"
    );
}

#[test]
fn a_sweep_value_that_is_no_setting_is_refused_where_it_is_written() {
    let text =
        format!("{BASE}overhead: {{sweep: {{set: requests.0.weight, values: [1, \"[2\"]}}}}\n");
    let message = error(&text, &[]);
    assert!(
        message.starts_with("x.yaml:14:56: overhead.sweep.values[1]: requests.0.weight=[2: "),
        "{message}"
    );
    assert!(!message.contains("--set"), "{message}");
}

#[test]
fn overhead_reads_steps_and_instruction_counts() {
    let text = format!(
        "{BASE}overhead:
  steps:
    - name: unsampled
      engine: {{env: {{OTEL_TRACES_SAMPLER: always_off}}}}
    - {{name: off again, tracing: false}}
  instructions: {{requests: 100, rate: 10, repeats: 2}}
"
    );
    let overhead = parse("x.yaml", &text, &[])
        .expect("valid")
        .overhead
        .expect("an experiment");
    let names: Vec<&str> = overhead.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["unsampled", "off again"]);
    assert!(overhead.steps[0].arm.tracing && !overhead.steps[1].arm.tracing);
    assert_eq!(
        overhead.steps[0].arm.engine.env["OTEL_TRACES_SAMPLER"],
        "always_off"
    );
    assert_eq!(
        overhead.instructions,
        Some(Instructions {
            requests: 100,
            rate: 10.0,
            repeats: 2
        })
    );
    let defaults = format!("{BASE}overhead: {{instructions: true}}\n");
    let overhead = parse("x.yaml", &defaults, &[])
        .expect("valid")
        .overhead
        .expect("an experiment");
    assert_eq!(overhead.instructions.map(|i| i.requests), Some(400));
    assert!(overhead.steps.is_empty());
}

#[test]
fn bad_overhead_sections_say_where_and_what() {
    let cases: &[(&str, &str)] = &[
        (
            "overhead: {trials: 5}",
            "x.yaml:14:20: overhead.trials: expected an integer >= 6, got 5",
        ),
        (
            "overhead: {claim: {bound: 0}}",
            "x.yaml:14:27: overhead.claim.bound: expected a share > 0 such as 1% or 0.01 (write \
             100% or more with %), got 0",
        ),
        (
            "overhead: {claim: {bound: 1}}",
            "x.yaml:14:27: overhead.claim.bound: expected a share > 0 such as 1% or 0.01 (write \
             100% or more with %), got 1",
        ),
        (
            "overhead: {claim: {metric: p95}}",
            "x.yaml:14:28: overhead.claim.metric: expected cpu or p50 or p90 or p99, got \"p95\"",
        ),
        (
            "overhead: {sweep: {set: system.managed.tracing, values: [true]}}",
            "x.yaml:14:25: overhead.sweep.set: \"system.managed.tracing\" cannot be swept: the \
             arms are launched from the scenario's system settings, so only keys under requests. \
             or load. (but not load.protocol) may vary",
        ),
        (
            "overhead: {sweep: {set: load.connections, values: []}}",
            "x.yaml:14:51: overhead.sweep.values: expected at least one value",
        ),
        (
            "overhead: {}\nverify: {metrics: {}}",
            "x.yaml:14:11: overhead: cannot be combined with verify: sampled requests would add \
             work to one arm only; verify tracing in a scenario of its own",
        ),
        (
            "overhead: {export: grpc://x}",
            "x.yaml:14:20: overhead.export: expected an http:// URL such as \
             http://127.0.0.1:16686, got \"grpc://x\"",
        ),
        (
            "overhead: {execution: together}",
            "x.yaml:14:23: overhead.execution: expected duet or alternating, got \"together\"",
        ),
        (
            "overhead: {instructions: {requests: 5}}",
            "x.yaml:14:37: overhead.instructions.requests: expected an integer >= 6, got 5",
        ),
        (
            "overhead: {instructions: {rate: 5000}}",
            "x.yaml:14:33: overhead.instructions.rate: expected at most 1000 requests per \
             second, got 5000",
        ),
        (
            "overhead: {instructions: {repeats: 0}}",
            "x.yaml:14:36: overhead.instructions.repeats: expected an integer > 0, got 0",
        ),
        (
            "overhead: {instructions: yes}",
            "x.yaml:14:26: overhead.instructions: expected true, false, or a mapping of \
             requests, rate, repeats, got \"yes\"",
        ),
        (
            "overhead: {execution: alternating, steps: [{name: a}]}",
            "x.yaml:14:43: overhead.steps: steps need execution: duet (every arm under the same \
             requests at once)",
        ),
        (
            "overhead: {steps: [{name: a}, {name: a}]}",
            "x.yaml:14:38: overhead.steps[1].name: \"a\" repeats the name of overhead.steps[0]",
        ),
        (
            "overhead: {steps: [{name: treatment}]}",
            "x.yaml:14:27: overhead.steps[0].name: \"treatment\" names an arm of its own",
        ),
        (
            "overhead: {steps: [{tracing: true}]}",
            "x.yaml:14:20: overhead.steps[0].name: required key is missing",
        ),
        (
            "overhead: {steps: [{name: a, trace: true}]}",
            "x.yaml:14:30: overhead.steps[0].trace: unknown key; expected one of: name, \
             tracing, engine, gateway",
        ),
        (
            "overhead: {steps: [a, b, c, d, e, f, g]}",
            "x.yaml:14:19: overhead.steps: at most 6 steps: each is one more copy of the \
             system under load",
        ),
    ];
    let mut failures = Vec::new();
    for (section, expected) in cases {
        let got = error(&format!("{BASE}{section}\n"), &[]);
        if got != *expected {
            failures.push(format!(
                "{section}\n  expected: {expected}\n       got: {got}"
            ));
        }
    }
    let sampler = edit(&[(
        "  managed: {}",
        "  managed: {engine: {env: {OTEL_TRACES_SAMPLER: always_off}}}",
    )]);
    let got = error(&format!("{sampler}overhead: {{}}\n"), &[]);
    let expected = "x.yaml:14:11: system.managed.engine.env.OTEL_TRACES_SAMPLER: decided by the \
                    overhead arms; set it under overhead.control, overhead.treatment or \
                    overhead.steps";
    if got != expected {
        failures.push(format!(
            "sampler\n  expected: {expected}\n       got: {got}"
        ));
    }
    let external = edit(&[(
        "  managed: {}",
        "  external: {gateway: http://127.0.0.1:8080}",
    )]);
    let got = error(&format!("{external}overhead: {{}}\n"), &[]);
    let expected = "x.yaml:14:11: overhead: needs system.managed: the harness launches both \
                    arms itself";
    if got != expected {
        failures.push(format!(
            "external\n  expected: {expected}\n       got: {got}"
        ));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
