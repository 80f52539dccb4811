use super::*;
use crate::metrics::scrape::parse_exposition;

const NAMES: CounterNames = crate::bundled::spans::COUNTERS;

/// An OpenTelemetry Collector's own telemetry (v0.123 and later: counters end in `_total`), in
/// the metric names and label sets the Collector documents for its receivers and exporters.
const COLLECTOR: &str = r#"# HELP otelcol_receiver_accepted_spans_total Number of spans successfully pushed into the pipeline. [alpha]
# TYPE otelcol_receiver_accepted_spans_total counter
otelcol_receiver_accepted_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_version="",receiver="otlp",service_instance_id="0c1d",service_name="jaeger",service_version="v2.12.0",transport="grpc"} 1200
otelcol_receiver_accepted_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_version="",receiver="otlp",service_instance_id="0c1d",service_name="jaeger",service_version="v2.12.0",transport="http"} 30
# HELP otelcol_receiver_refused_spans_total Number of spans that could not be pushed into the pipeline. [alpha]
# TYPE otelcol_receiver_refused_spans_total counter
otelcol_receiver_refused_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_version="",receiver="otlp",service_instance_id="0c1d",service_name="jaeger",service_version="v2.12.0",transport="grpc"} 4
# HELP otelcol_exporter_sent_spans_total Number of spans successfully sent to destination. [alpha]
# TYPE otelcol_exporter_sent_spans_total counter
otelcol_exporter_sent_spans_total{exporter="jaeger_storage_exporter",otel_scope_name="go.opentelemetry.io/collector/exporter/exporterhelper",otel_scope_version="",service_instance_id="0c1d",service_name="jaeger",service_version="v2.12.0"} 1225
# HELP otelcol_exporter_send_failed_spans_total Number of spans in failed attempts to send to destination. [alpha]
# TYPE otelcol_exporter_send_failed_spans_total counter
otelcol_exporter_send_failed_spans_total{exporter="jaeger_storage_exporter",otel_scope_name="go.opentelemetry.io/collector/exporter/exporterhelper",otel_scope_version="",service_instance_id="0c1d",service_name="jaeger",service_version="v2.12.0"} 5
# HELP otelcol_process_uptime_total Uptime of the process [alpha]
# TYPE otelcol_process_uptime_total counter
otelcol_process_uptime_total{service_instance_id="0c1d",service_name="jaeger",service_version="v2.12.0"} 12.5
"#;

fn collector(text: &str) -> Option<BackendSpans> {
    let snapshot =
        parse_exposition("collector", "http://jaeger:8888/metrics", text).expect("parse");
    BackendSpans::from_collector(&snapshot)
}

#[test]
fn a_collectors_own_metrics_are_read_summed_over_transports() {
    assert_eq!(
        collector(COLLECTOR),
        Some(BackendSpans {
            accepted: 1230.0,
            refused: 4.0,
            stored: Some(1225.0),
            store_failed: Some(5.0),
        })
    );
    // Every accepted span was stored or failed: the pipeline is empty.
    assert_eq!(collector(COLLECTOR).map(|b| b.pipeline_empty()), Some(true));
    // 5 accepted spans still in its batch processor, neither stored nor failed yet.
    let busy = COLLECTOR.replace("} 1225", "} 1220");
    assert_eq!(collector(&busy).map(|b| b.pipeline_empty()), Some(false));
    // Before v0.123 the same counters had no `_total`.
    let old = COLLECTOR.replace("_spans_total", "_spans");
    assert_eq!(collector(&old), collector(COLLECTOR));
    // Without receiver counters it is no collector (or its telemetry is off).
    assert_eq!(collector("otelcol_process_uptime_total 3\n"), None);
}

fn spans(ended: f64, dropped: f64, exported: f64) -> ServiceSpans {
    ServiceSpans {
        ended,
        dropped,
        exported,
        capacity: 2048.0,
        ..ServiceSpans::default()
    }
}

fn backend(accepted: f64, refused: f64) -> BackendSpans {
    BackendSpans {
        accepted,
        refused,
        ..BackendSpans::default()
    }
}

/// Two services before and after 100 requests of 2 spans each, all delivered.
fn clean() -> Readings {
    let services = |f: &dyn Fn(f64) -> ServiceSpans| {
        BTreeMap::from([
            ("api-gateway".to_owned(), f(0.0)),
            ("core-engine".to_owned(), f(0.0)),
        ])
    };
    let mut readings = Readings {
        before: services(&|_| spans(40.0, 0.0, 40.0)),
        after: services(&|_| spans(240.0, 0.0, 240.0)),
        backend: Some((
            "embedded OTLP receiver".into(),
            backend(80.0, 0.0),
            backend(480.0, 0.0),
        )),
        required: vec!["api-gateway".into(), "core-engine".into()],
        ..Readings::default()
    };
    for service in ["api-gateway", "core-engine"] {
        readings
            .expected
            .insert(service.into(), Ok((200.0, "100 requests × 2".into())));
    }
    readings
}

fn failed(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.subject(), c.comparison()))
        .collect()
}

#[test]
fn a_clean_run_accounts_for_every_span() {
    let checks = account(&clean(), &NAMES);
    assert_eq!(failed(&checks), Vec::<String>::new());
    // Per service: ended, dropped, failed, pending; then accepted and refused.
    assert_eq!(checks.len(), 10, "{checks:#?}");
    let accepted = checks
        .iter()
        .find(|c| c.metric == "spans accepted")
        .expect("backend check");
    assert_eq!((accepted.expected, accepted.observed), (400.0, 400.0));
}

#[test]
fn queue_drops_are_named_with_the_service_and_its_queue() {
    let mut readings = clean();
    // The gateway dropped 150 of its 200 spans; the backend got the rest.
    readings
        .after
        .insert("api-gateway".into(), spans(240.0, 150.0, 90.0));
    readings.backend = Some((
        "embedded OTLP receiver".into(),
        backend(80.0, 0.0),
        backend(330.0, 0.0),
    ));
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0]
            .starts_with("api-gateway otel_spans_dropped_total{reason=\"queue_full\"}: expected 0")
            && failures[0].contains("observed 150")
            && failures[0].contains("batch queue, which holds 2048"),
        "{failures:#?}"
    );
}

#[test]
fn spans_lost_on_the_way_or_refused_are_named_apart() {
    let mut readings = clean();
    readings.backend = Some((
        "embedded OTLP receiver".into(),
        backend(80.0, 0.0),
        backend(470.0, 0.0),
    ));
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("10 of them never reached the backend"),
        "{failures:#?}"
    );

    readings.backend = Some(("collector".into(), backend(80.0, 0.0), backend(470.0, 10.0)));
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("collector spans refused"),
        "{failures:#?}"
    );
}

#[test]
fn export_failures_pending_spans_and_missing_spans_fail() {
    let mut readings = clean();
    let mut engine = spans(240.0, 0.0, 230.0);
    engine.export_failed = 10.0;
    readings.after.insert("core-engine".into(), engine);
    readings.backend = None;
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("core-engine otel_spans_export_failed_total"),
        "{failures:#?}"
    );

    let mut readings = clean();
    let mut engine = spans(240.0, 0.0, 230.0);
    engine.pending = 10.0;
    readings.after.insert("core-engine".into(), engine);
    readings.backend = None;
    readings.unsettled = Some("spans still pending when the wait ended: core-engine 10".into());
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("still pending when the wait ended"),
        "{failures:#?}"
    );

    // The engine ended fewer spans than its requests call for: a span never made.
    let mut readings = clean();
    readings
        .after
        .insert("core-engine".into(), spans(230.0, 0.0, 230.0));
    readings.backend = None;
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("core-engine otel_spans_ended_total: expected 200"),
        "{failures:#?}"
    );
    // More than the chain names is no fault: a service may make spans the chain leaves out.
    let mut readings = clean();
    readings
        .after
        .insert("core-engine".into(), spans(300.0, 0.0, 300.0));
    readings.backend = Some((
        "embedded OTLP receiver".into(),
        backend(80.0, 0.0),
        backend(540.0, 0.0),
    ));
    assert_eq!(failed(&account(&readings, &NAMES)), Vec::<String>::new());
}

#[test]
fn a_required_service_without_counters_fails_and_a_collector_reports_storage() {
    let mut readings = clean();
    readings.before.remove("core-engine");
    readings.after.remove("core-engine");
    readings.backend = None;
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("did not expose its span counters before or after"),
        "{failures:#?}"
    );

    let mut readings = clean();
    let mut before = backend(80.0, 0.0);
    before.stored = Some(80.0);
    let mut after = backend(480.0, 0.0);
    after.stored = Some(470.0);
    after.store_failed = Some(10.0);
    readings.backend = Some(("collector".into(), before, after));
    let failures = failed(&account(&readings, &NAMES));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("collector spans stored: expected 400")
            && failures[0].contains("10 failed to be stored"),
        "{failures:#?}"
    );
}
