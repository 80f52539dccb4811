use super::*;
use crate::bundled::STREAM_ROUTE;
use crate::metrics::{Check, Sample};

/// One series for [`snapshot`]: name, labels, value.
type Series<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

fn snapshot(service: &str, series: &[Series<'_>]) -> Snapshot {
    Snapshot {
        service: service.to_owned(),
        samples: series
            .iter()
            .map(|(name, labels, value)| Sample {
                name: (*name).to_owned(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value: *value,
            })
            .collect(),
    }
}

/// Histogram series of `base` with `matching` labels: (le, cumulative count) plus _sum, _count.
fn histogram(
    base: &str,
    matching: &[(&str, &str)],
    buckets: &[(&str, f64)],
    sum: f64,
) -> Vec<Sample> {
    let labels = |extra: Option<(&str, &str)>| {
        matching
            .iter()
            .copied()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut samples: Vec<Sample> = buckets
        .iter()
        .map(|(le, n)| Sample {
            name: format!("{base}_bucket"),
            labels: labels(Some(("le", le))),
            value: *n,
        })
        .collect();
    let count = buckets.last().map_or(0.0, |b| b.1);
    samples.push(Sample {
        name: format!("{base}_sum"),
        labels: labels(None),
        value: sum,
    });
    samples.push(Sample {
        name: format!("{base}_count"),
        labels: labels(None),
        value: count,
    });
    samples
}

/// The gateway after `ok` 200s and `bad` 400s on the fetch route, plus `unmatched` 404s, with
/// every duration in the 1–2 ms bucket. `extra_ok` is added to the 200 counter only.
fn gateway_at(ok: f64, bad: f64, unmatched: f64, extra_ok: f64) -> Snapshot {
    let status = |s| [FETCH[0], FETCH[1], ("status", s)];
    let all = ok + bad + unmatched;
    let errors = bad + unmatched;
    let mut snap = snapshot(
        "api-gateway",
        &[
            ("requests_total", &[], all),
            ("errors_total", &[], errors),
            ("http_requests_total", &status("200"), ok + extra_ok),
            ("http_requests_total", &status("400"), bad),
            ("http_errors_total", &status("400"), bad),
            (
                "http_requests_total",
                &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
                unmatched,
            ),
            (
                "http_errors_total",
                &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
                unmatched,
            ),
            ("http_connections_active", &[], 1.0),
        ],
    );
    let fetch = ok + bad;
    let buckets = [("0.001", 0.0), ("0.002", fetch), ("+Inf", fetch)];
    snap.samples.extend(histogram(
        "http_request_duration_seconds",
        &FETCH,
        &buckets,
        fetch * 0.0015,
    ));
    let all_buckets = [("0.001", 0.0), ("0.002", all), ("+Inf", all)];
    snap.samples.extend(histogram(
        "request_duration_seconds",
        &[],
        &all_buckets,
        all * 0.0015,
    ));
    snap
}

/// The engine after `ok` OKs and `invalid` INVALID_ARGUMENTs, durations in the 0.5–1 ms bucket.
fn engine_at(ok: f64, invalid: f64) -> Snapshot {
    let m = ("method", "FetchMarketData");
    let all = ok + invalid;
    let mut snap = snapshot(
        "core-engine",
        &[
            ("requests_total", &[], all),
            ("errors_total", &[], invalid),
            ("grpc_requests_total", &[m, ("status", "OK")], ok),
            (
                "grpc_requests_total",
                &[m, ("status", "INVALID_ARGUMENT")],
                invalid,
            ),
            (
                "grpc_errors_total",
                &[m, ("error_type", "invalid_argument")],
                invalid,
            ),
            ("requests_in_flight", &[], 0.0),
        ],
    );
    let buckets = [("0.0005", 0.0), ("0.001", all), ("+Inf", all)];
    snap.samples.extend(histogram(
        "grpc_request_duration_seconds",
        &[m],
        &buckets,
        all * 0.0007,
    ));
    snap.samples.extend(histogram(
        "request_duration_seconds",
        &[],
        &buckets,
        all * 0.0007,
    ));
    snap
}

/// 30 × 200 and 5 × 400 through the gateway, 7 OK and 2 INVALID_ARGUMENT straight to the
/// engine, 3 unmatched routes; on top of earlier traffic.
fn received() -> Received {
    Received {
        http: BTreeMap::from([(200, 30), (400, 5)]),
        grpc: BTreeMap::from([("OK".into(), 7), ("INVALID_ARGUMENT".into(), 2)]),
        client_p99: Some(Duration::from_micros(1_900)),
        ..Received::default()
    }
}

fn before() -> Vec<Snapshot> {
    vec![gateway_at(10.0, 1.0, 0.0, 0.0), engine_at(12.0, 1.0)]
}

fn after() -> Vec<Snapshot> {
    vec![
        gateway_at(40.0, 6.0, 3.0, 0.0),
        engine_at(12.0 + 37.0, 1.0 + 7.0),
    ]
}

fn failures_of(r: &Reconciliation) -> Vec<String> {
    r.failures().iter().map(|c| c.to_string()).collect()
}

/// Runs `reconcile` with `after` changed by `fault`, and returns the failed checks' metrics.
fn failing_metrics(fault: impl FnOnce(&mut Vec<Snapshot>, &mut Received)) -> Vec<String> {
    let mut after = after();
    let mut received = received();
    fault(&mut after, &mut received);
    let r = reconcile(&before(), &after, &received);
    assert!(!r.passed, "the fault went unnoticed");
    r.failures().iter().map(|c| c.metric.clone()).collect()
}

fn set(snapshot: &mut Snapshot, name: &str, matching: &[(&str, &str)], value: f64) {
    let sample = snapshot
        .samples
        .iter_mut()
        .find(|s| s.name == name && s.matches(matching))
        .expect("series to change");
    sample.value = value;
}

#[test]
fn consistent_snapshots_pass_every_check() {
    let r = reconcile(&before(), &after(), &received());
    assert!(r.passed, "{:#?}", failures_of(&r));
    let metrics: BTreeSet<&str> = r.checks.iter().map(|c| c.metric.as_str()).collect();
    for m in [
        "http_requests_total",
        "http_errors_total",
        "http_request_duration_seconds_count",
        "requests_total",
        "errors_total",
        "grpc_requests_total",
        "grpc_errors_total",
        "grpc_request_duration_seconds_count",
        "http_request_duration_seconds",
        "grpc_request_duration_seconds",
        "http_connections_active",
    ] {
        assert!(metrics.contains(m), "no check of {m}: {metrics:?}");
    }
    assert!(r.checks.iter().all(|c| !c.skipped), "{:#?}", r.checks);
}

#[test]
fn extra_labels_from_prometheus_are_ignored() {
    let tag = |mut snaps: Vec<Snapshot>| {
        for snap in &mut snaps {
            for s in &mut snap.samples {
                s.labels.insert("job".into(), snap.service.clone());
                s.labels.insert("instance".into(), "127.0.0.1:1".into());
            }
        }
        snaps
    };
    let r = reconcile(&tag(before()), &tag(after()), &received());
    assert!(r.passed, "{:#?}", failures_of(&r));
}

#[test]
fn a_double_counted_fetch_fails_http_requests_total() {
    let metrics = failing_metrics(|after, _| after[0] = gateway_at(40.0, 6.0, 3.0, 30.0));
    assert!(
        metrics.contains(&"http_requests_total".to_owned()),
        "{metrics:?}"
    );
    // The unchanged totals no longer add up to the per-route counter either.
    assert!(
        metrics.contains(&"requests_total".to_owned()),
        "{metrics:?}"
    );
}

#[test]
fn a_response_the_harness_missed_fails_per_status() {
    let metrics = failing_metrics(|_, received| {
        received.http.insert(400, 4);
    });
    assert!(
        metrics.contains(&"http_requests_total".to_owned()),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&"http_errors_total".to_owned()),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&"grpc_requests_total".to_owned()),
        "{metrics:?}"
    );
}

#[test]
fn an_uncounted_error_fails_http_errors_total() {
    let metrics = failing_metrics(|after, _| {
        set(
            &mut after[0],
            "http_errors_total",
            &[("status", "400")],
            1.0,
        );
    });
    assert_eq!(metrics, ["http_errors_total"]);
}

#[test]
fn a_lost_duration_observation_fails_the_count() {
    let metrics = failing_metrics(|after, _| {
        set(
            &mut after[0],
            "http_request_duration_seconds_count",
            &FETCH,
            45.0,
        );
    });
    assert_eq!(metrics, ["http_request_duration_seconds_count"]);
}

#[test]
fn gateway_totals_must_match_the_per_route_counters() {
    let metrics = failing_metrics(|after, _| {
        set(&mut after[0], "requests_total", &[], 48.0);
        set(&mut after[0], "errors_total", &[], 10.0);
    });
    assert_eq!(metrics, ["requests_total", "errors_total"]);
}

#[test]
fn engine_codes_are_compared_by_the_gateways_status_groups() {
    // Two forwarded 400s answered as INTERNAL by the engine: both groups are off.
    let metrics = failing_metrics(|after, _| {
        let m = ("method", "FetchMarketData");
        let snap = &mut after[1];
        set(
            snap,
            "grpc_requests_total",
            &[("status", "INVALID_ARGUMENT")],
            6.0,
        );
        snap.samples.push(Sample {
            name: "grpc_requests_total".into(),
            labels: [m, ("status", "INTERNAL")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: 2.0,
        });
    });
    assert_eq!(
        metrics
            .iter()
            .filter(|m| *m == "grpc_requests_total")
            .count(),
        2,
        "{metrics:?}"
    );
    // The error counters did not move with INTERNAL: their per-type check fails too.
    assert!(
        metrics.contains(&"grpc_errors_total".to_owned()),
        "{metrics:?}"
    );
}

#[test]
fn engine_totals_and_error_types_are_checked() {
    let metrics = failing_metrics(|after, _| {
        set(&mut after[1], "requests_total", &[], 0.0);
        set(
            &mut after[1],
            "grpc_request_duration_seconds_count",
            &[],
            0.0,
        );
    });
    assert_eq!(
        metrics,
        ["grpc_request_duration_seconds_count", "requests_total"]
    );
    let metrics = failing_metrics(|after, _| {
        set(&mut after[1], "grpc_errors_total", &[], 1.0);
        set(&mut after[1], "errors_total", &[], 1.0);
    });
    assert_eq!(
        metrics,
        ["errors_total", "grpc_errors_total", "grpc_errors_total"]
    );
}

#[test]
fn statuses_only_the_gateway_makes_are_left_out_of_the_engines_count() {
    let mut after = after();
    let mut received = received();
    received.http.insert(413, 2);
    for (name, value) in [("requests_total", 51.0), ("errors_total", 11.0)] {
        set(&mut after[0], name, &[], value);
    }
    let status = [FETCH[0], FETCH[1], ("status", "413")];
    for name in ["http_requests_total", "http_errors_total"] {
        after[0].samples.push(Sample {
            name: name.into(),
            labels: status
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: 2.0,
        });
    }
    let fetch_count = [FETCH[0], FETCH[1]];
    set(
        &mut after[0],
        "http_request_duration_seconds_count",
        &fetch_count,
        48.0,
    );
    set(&mut after[0], "request_duration_seconds_count", &[], 51.0);
    let r = reconcile(&before(), &after, &received);
    assert!(r.passed, "{:#?}", failures_of(&r));
    let engine_total = r
        .checks
        .iter()
        .find(|c| c.service == "core-engine" && c.detail.contains("fetches forwarded"))
        .expect("engine total");
    assert!(
        engine_total.detail.contains("2 × HTTP 413"),
        "{engine_total}"
    );
}

#[test]
fn missing_metrics_fail_naming_metric_and_service() {
    let mut after = after();
    after[0]
        .samples
        .retain(|s| s.name != "http_connections_active");
    after[1]
        .samples
        .retain(|s| s.name != "grpc_request_duration_seconds_sum");
    let r = reconcile(&before(), &after, &received());
    let failed: Vec<&Check> = r.failures();
    assert_eq!(failed.len(), 2, "{:#?}", failures_of(&r));
    assert_eq!(
        (failed[0].service.as_str(), failed[0].metric.as_str()),
        ("api-gateway", "http_connections_active")
    );
    assert_eq!(
        (failed[1].service.as_str(), failed[1].metric.as_str()),
        ("core-engine", "grpc_request_duration_seconds")
    );
    assert!(
        failed[1]
            .detail
            .contains("grpc_request_duration_seconds_sum missing"),
        "{}",
        failed[1]
    );
}

#[test]
fn unused_labelled_families_are_skipped_not_failed() {
    // No traffic at all, before or after: the labelled families do not exist yet.
    let quiet = |s: &str| {
        let mut snap = if s == "api-gateway" {
            gateway_at(0.0, 0.0, 0.0, 0.0)
        } else {
            engine_at(0.0, 0.0)
        };
        snap.samples
            .retain(|s| !s.name.starts_with("http_") && !s.name.starts_with("grpc_"));
        snap.samples.push(Sample {
            name: "http_connections_active".into(),
            labels: BTreeMap::new(),
            value: 0.0,
        });
        snap
    };
    let snaps = vec![quiet("api-gateway"), quiet("core-engine")];
    let received = Received {
        client_p99: None,
        ..Received::default()
    };
    let r = reconcile(&snaps, &snaps, &received);
    assert!(r.passed, "{:#?}", failures_of(&r));
    let skipped: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.skipped)
        .map(|c| c.metric.as_str())
        .collect();
    for m in [
        "http_errors_total",
        "grpc_requests_total",
        "http_request_duration_seconds",
    ] {
        assert!(skipped.contains(&m), "{m} not skipped: {skipped:?}");
    }
    // The same absence after traffic is a failure.
    let busy = Received {
        http: BTreeMap::from([(500, 1)]),
        ..Received::default()
    };
    let metrics: Vec<String> = reconcile(&snaps, &snaps, &busy)
        .failures()
        .iter()
        .map(|c| c.metric.clone())
        .collect();
    assert!(
        metrics.contains(&"http_errors_total".to_owned()),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&"grpc_errors_total".to_owned()),
        "{metrics:?}"
    );
}

#[test]
fn a_missing_service_snapshot_is_a_failure() {
    let r = reconcile(&before(), &after()[..1], &received());
    let failed = r.failures();
    assert_eq!(failed.len(), 1, "{:#?}", failures_of(&r));
    assert_eq!(failed[0].service, "core-engine");
    assert!(
        failed[0].detail.contains("no after snapshot"),
        "{}",
        failed[0]
    );
}

#[test]
fn server_p99_above_the_clients_fails() {
    // The client saw everything within 0.9 ms; the gateway claims 1–2 ms for all of it.
    let mut received = received();
    received.client_p99 = Some(Duration::from_micros(900));
    let r = reconcile(&before(), &after(), &received);
    let failed = r.failures();
    assert_eq!(failed.len(), 1, "{:#?}", failures_of(&r));
    assert_eq!(failed[0].metric, "http_request_duration_seconds");
    assert!(failed[0].observed > 0.0019 && failed[0].expected < 0.0019 + 1e-12);
    // Within a bucket's width of the client's, it passes (the estimate is coarse).
    received.client_p99 = Some(Duration::from_micros(1_000));
    assert!(reconcile(&before(), &after(), &received).passed);
}

#[test]
fn p99_is_skipped_without_client_p99_or_observations() {
    let mut received = received();
    received.client_p99 = None;
    let r = reconcile(&before(), &after(), &received);
    assert!(r.passed);
    let skipped: Vec<&Check> = r.checks.iter().filter(|c| c.skipped).collect();
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    assert!(
        skipped[0].detail.contains("no client-side p99"),
        "{}",
        skipped[0]
    );

    let snaps = vec![gateway_at(5.0, 0.0, 0.0, 0.0), engine_at(5.0, 0.0)];
    let received = Received {
        client_p99: Some(Duration::from_millis(1)),
        ..Received::default()
    };
    let r = reconcile(&snaps, &snaps, &received);
    let latency: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| c.labels.contains("quantile"))
        .collect();
    assert_eq!(latency.len(), 2);
    assert!(
        latency
            .iter()
            .all(|c| c.skipped && c.detail.contains("no observations")),
        "{latency:#?}"
    );
}

#[test]
fn p99_beyond_the_last_bucket_needs_a_slower_client() {
    let stalled = |count: f64| {
        let mut snap = gateway_at(0.0, 0.0, 0.0, 0.0);
        snap.samples
            .retain(|s| !s.name.starts_with("http_request_duration"));
        snap.samples.extend(histogram(
            "http_request_duration_seconds",
            &FETCH,
            &[("10", 0.0), ("+Inf", count)],
            count * 12.0,
        ));
        snap
    };
    let received = Received {
        client_p99: Some(Duration::from_secs(5)),
        ..Received::default()
    };
    let r = reconcile(&[stalled(0.0)], &[stalled(4.0)], &received);
    let check = r
        .checks
        .iter()
        .find(|c| c.labels.contains("quantile"))
        .expect("latency check");
    assert!(!check.passed && check.observed == 10.0, "{check}");
}

/// Adds to `snaps` (gateway, engine) what `streams` subscriptions did: each upgraded and ended
/// CANCELLED, `sent` updates written and `dropped` counted as dropped, `engine_sent` sent.
fn with_streams(snaps: &mut [Snapshot], streams: f64, sent: f64, dropped: f64, engine_sent: f64) {
    let upgrade = [("method", "GET"), ("path", STREAM_ROUTE), ("status", "101")];
    let gateway = &mut snaps[0];
    gateway.samples.extend(
        snapshot(
            "api-gateway",
            &[
                ("http_requests_total", &upgrade, streams),
                ("ws_messages_sent_total", &[("symbol", "AAPL")], sent),
                (
                    "ws_messages_dropped_total",
                    &[("reason", "slow_client")],
                    dropped,
                ),
            ],
        )
        .samples,
    );
    for name in ["requests_total", "request_duration_seconds_count"] {
        let sample = gateway
            .samples
            .iter_mut()
            .find(|s| s.name == name && s.labels.is_empty())
            .expect("gateway total");
        sample.value += streams;
    }
    let engine = &mut snaps[1];
    let cancelled = [STREAM_RPC, ("status", "CANCELLED")];
    engine.samples.extend(
        snapshot(
            "core-engine",
            &[
                ("grpc_requests_total", &cancelled, streams),
                (
                    "grpc_errors_total",
                    &[STREAM_RPC, ("error_type", "cancelled")],
                    streams,
                ),
                (
                    "stream_updates_sent_total",
                    &[("symbol", "AAPL")],
                    engine_sent,
                ),
            ],
        )
        .samples,
    );
    for name in ["requests_total", "errors_total"] {
        let sample = engine
            .samples
            .iter_mut()
            .find(|s| s.name == name && s.labels.is_empty())
            .expect("engine total");
        sample.value += streams;
    }
}

#[test]
fn streams_beside_fetches_reconcile_by_method() {
    // A mixed run: the fetches as before, and streams the harness did not drive.
    let mut after = after();
    with_streams(&mut after, 4.0, 100.0, 0.0, 110.0);
    let r = reconcile(&before(), &after, &received());
    assert!(r.passed, "{:#?}", failures_of(&r));
}

#[test]
fn a_stream_run_reconciles_its_updates_and_drops() {
    let mut before = before();
    with_streams(&mut before, 0.0, 0.0, 0.0, 0.0);
    let mut after = before.clone();
    // Five subscriptions: 900 updates received, 40 missing, 55 counted as dropped (the last
    // ones after the final update received are no gap), 1,000 sent by the engine.
    with_streams(&mut after, 5.0, 900.0, 55.0, 1000.0);
    let stream = StreamReceived {
        connected: 5,
        updates: 900,
        lost: 40,
    };
    let received = Received {
        stream: Some(stream.clone()),
        ..Received::default()
    };
    let r = reconcile(&before, &after, &received);
    assert!(r.passed, "{:#?}", failures_of(&r));
    for metric in [
        "ws_messages_sent_total",
        "ws_messages_dropped_total",
        "stream_updates_sent_total",
    ] {
        assert!(r.checks.iter().any(|c| c.metric == metric), "{metric}");
    }
    // Updates missing that the gateway never counted as dropped: silently lost.
    let silent = Received {
        stream: Some(StreamReceived { lost: 80, ..stream }),
        ..Received::default()
    };
    let failed: Vec<String> = reconcile(&before, &after, &silent)
        .failures()
        .iter()
        .map(|c| c.metric.clone())
        .collect();
    assert_eq!(failed, ["ws_messages_dropped_total"]);
}
