//! Span accounting end to end: after a run the services' span counters (`otel_spans_*`) are
//! reconciled with what the embedded OTLP receiver accepted. A clean run accounts for every span;
//! a batch queue too small for the rate is caught as spans dropped in that service's queue.

mod support;

use serde_json::Value;
use support::run::Run;

/// The span-count source of a result's metrics verification.
fn span_counts(result: &Value) -> &Value {
    result["verification"]["metrics"]["sources"]
        .as_array()
        .expect("metrics sources")
        .iter()
        .find(|s| {
            s["source"]
                .as_str()
                .is_some_and(|d| d.starts_with("span counts"))
        })
        .unwrap_or_else(|| panic!("no span counts in {:#}", result["verification"]))
}

/// The check of `service`'s `metric`.
fn check<'a>(counts: &'a Value, service: &str, metric: &str) -> &'a Value {
    counts["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["service"] == service && c["metric"] == metric)
        .unwrap_or_else(|| panic!("no {service} {metric} in {counts:#}"))
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

#[test]
fn a_clean_run_accounts_for_every_span() {
    let run = Run::new("spans-clean");
    let output = run.run(&["run", "scenarios/verify.yaml"]);
    let result = run.result("verify");
    let counts = span_counts(&result);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{counts:#}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(counts["passed"], true, "{counts:#}");
    let mut ended = 0.0;
    for service in ["api-gateway", "core-engine"] {
        let made = check(counts, service, "otel_spans_ended_total");
        // Every request makes spans in both services: at least the chain's share of them.
        assert!(
            number(&made["observed"]) >= number(&made["expected"]),
            "{made}"
        );
        assert!(number(&made["expected"]) >= 250.0, "{made}");
        ended += number(&made["observed"]);
        for metric in [
            "otel_spans_dropped_total",
            "otel_spans_export_failed_total",
            "otel_spans_pending",
        ] {
            assert_eq!(number(&check(counts, service, metric)["observed"]), 0.0);
        }
    }
    let accepted = check(counts, "embedded OTLP receiver", "spans accepted");
    // The receiver took what the services exported: the run's spans, and the warm-up's last.
    assert_eq!(accepted["expected"], accepted["observed"], "{accepted}");
    assert!(
        number(&accepted["observed"]) >= ended,
        "{accepted} < {ended}"
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("span counts"), "{summary}");
    run.assert_no_leftovers();
}

#[test]
fn a_batch_queue_too_small_for_the_rate_is_caught_as_dropped_spans() {
    let run = Run::new("spans-drop");
    let output = run.run(&[
        "run",
        "scenarios/verify.yaml",
        "--set",
        "system.managed.gateway.env.OTEL_BSP_MAX_QUEUE_SIZE=1",
        "--set",
        "load.phases.0.constant.rate=300",
        "--set",
        "verify.traces.timeout=2s",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let result = run.result("verify");
    let counts = span_counts(&result);
    assert_eq!(counts["passed"], false, "{counts:#}");
    let dropped = check(counts, "api-gateway", "otel_spans_dropped_total");
    assert_eq!(dropped["passed"], false, "{dropped}");
    let lost = number(&dropped["observed"]);
    assert!(lost > 0.0, "{dropped}");
    assert!(
        dropped["detail"]
            .as_str()
            .is_some_and(|d| d.contains("api-gateway's batch queue, which holds 1")),
        "{dropped}"
    );
    // The loss is the queue's alone: what left the services all arrived, and the engine, with
    // its default queue, dropped nothing.
    assert_eq!(
        check(counts, "embedded OTLP receiver", "spans accepted")["passed"],
        true,
        "{counts:#}"
    );
    assert_eq!(
        number(&check(counts, "core-engine", "otel_spans_dropped_total")["observed"]),
        0.0,
        "{counts:#}"
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("api-gateway otel_spans_dropped_total{reason=\"queue_full\"}"),
        "{summary}"
    );
    run.assert_no_leftovers();
}

#[test]
fn through_a_launched_jaeger_its_own_count_agrees_and_queue_drops_are_named() {
    let Some(jaeger) = support::jaeger::binary(
        "through_a_launched_jaeger_its_own_count_agrees_and_queue_drops_are_named",
    ) else {
        return;
    };
    let run = Run::new("spans-jaeger");
    let output = run.run(&[
        "run",
        "scenarios/jaeger.yaml",
        "--jaeger-bin",
        &jaeger.display().to_string(),
        "--set",
        "system.managed.engine.env.OTEL_BSP_MAX_QUEUE_SIZE=1",
        "--set",
        "load.phases.0.constant.rate=300",
        "--set",
        "verify.traces.timeout=2s",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let result = run.result("jaeger");
    let counts = span_counts(&result);
    assert!(
        counts["source"]
            .as_str()
            .is_some_and(|s| s.contains("against collector http://127.0.0.1:")),
        "{counts:#}"
    );
    let dropped = check(counts, "core-engine", "otel_spans_dropped_total");
    assert!(number(&dropped["observed"]) > 0.0, "{dropped}");
    assert_eq!(
        number(&check(counts, "api-gateway", "otel_spans_dropped_total")["observed"]),
        0.0
    );
    // Jaeger's own otelcol counters: it accepted and stored exactly what the services exported.
    let backend = counts["source"]
        .as_str()
        .and_then(|s| s.split(" against ").nth(1))
        .expect("backend");
    for metric in ["spans accepted", "spans stored"] {
        let agreed = check(counts, backend, metric);
        assert_eq!(agreed["passed"], true, "{agreed}");
        assert!(number(&agreed["observed"]) > 0.0, "{agreed}");
    }
    assert_eq!(
        number(&check(counts, backend, "spans refused")["observed"]),
        0.0
    );
    run.assert_no_leftovers();
}
