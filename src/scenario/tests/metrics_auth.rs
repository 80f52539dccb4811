//! `system.managed.metrics_auth`: read as a boolean, off by default, and refused where the
//! harness could not honour it.

use super::*;

fn managed(text: &str) -> Managed {
    match parse("x.yaml", text, &[]).expect("valid").system {
        System::Managed(m) => m,
        other => panic!("managed expected, got {other:?}"),
    }
}

#[test]
fn metrics_auth_is_read_and_off_by_default() {
    assert!(!managed(BASE).metrics_auth);
    let on = edit(&[("  managed: {}\n", "  managed: {metrics_auth: true}\n")]);
    assert!(managed(&on).metrics_auth);
    let off = edit(&[("  managed: {}\n", "  managed: {metrics_auth: false}\n")]);
    assert!(!managed(&off).metrics_auth);
    let set = parse("x.yaml", BASE, &sets(&["system.managed.metrics_auth=true"]));
    match set.expect("valid").system {
        System::Managed(m) => assert!(m.metrics_auth),
        other => panic!("managed expected, got {other:?}"),
    }
}

#[test]
fn what_does_not_fit_metrics_auth_is_named() {
    let with = |services: &str| {
        edit(&[(
            "  managed: {}\n",
            &format!("  managed:\n    metrics_auth: true\n{services}"),
        )])
    };
    assert_errors([
        (
            edit(&[("  managed: {}\n", "  managed: {metrics_auth: yes please}\n")]),
            "x.yaml:3:27: system.managed.metrics_auth: expected true or false, got \"yes please\"",
        ),
        (
            edit(&[("  managed: {}\n", "  managed: {metrics_token: true}\n")]),
            "x.yaml:3:13: system.managed.metrics_token: unknown key; expected one of: tracing, \
             engine, gateway, jaeger, metrics_auth",
        ),
        (
            with("    engine: {args: [--metrics-token-file, /tmp/t]}\n"),
            "x.yaml:4:5: system.managed.engine: sets --metrics-token-file or \
             ENGINE_METRICS_TOKEN_FILE, which metrics_auth: true leaves to the harness (it makes \
             a token for each run)",
        ),
        (
            with("    gateway: {env: {GATEWAY_METRICS_TOKEN_FILE: /tmp/t}}\n"),
            "x.yaml:4:5: system.managed.gateway: sets --metrics-token-file or \
             GATEWAY_METRICS_TOKEN_FILE, which metrics_auth: true leaves to the harness (it makes \
             a token for each run)",
        ),
        (
            edit(&[
                ("  managed: {}\n", "  managed: {metrics_auth: true}\n"),
                (
                    "    expect: {status: 200}\n",
                    "    expect: {status: 200}\noverhead: {}\n",
                ),
            ]),
            "x.yaml:14:11: system.managed.metrics_auth: does not apply to the overhead \
             experiment: it reads no metrics endpoint",
        ),
    ]);
    // Without metrics_auth a scenario may name a token file of its own.
    let own = edit(&[(
        "  managed: {}\n",
        "  managed:\n    engine: {args: [--metrics-token-file, /tmp/t]}\n",
    )]);
    assert!(parse("x.yaml", &own, &[]).is_ok());
}
