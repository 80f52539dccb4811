use super::*;
use crate::load::recorder::new_histogram;
use crate::result::{Evaluation, ThresholdResult, scenario_hash};

/// Shard `index` of `count`, made from a stored run: its latencies are `values` (µs), split
/// between the two kinds, and its thresholds are `thresholds`.
fn shard(index: u64, count: u64, values: &[u64], thresholds: &[&str]) -> Shard {
    let mut result: RunResult =
        serde_json::from_str(include_str!("../../tests/fixtures/results/smoke.json"))
            .expect("fixture");
    for (k, kind) in result.kinds.iter_mut().enumerate() {
        let mut h = new_histogram();
        for v in values.iter().skip(k).step_by(2) {
            h.record(*v).expect("in range");
        }
        kind.sent = h.len();
        kind.completed = h.len();
        kind.unexpected = 0;
        kind.dropped = 0;
        kind.latency_histogram = result::encode_histogram(&h);
        kind.service_time_histogram = result::encode_histogram(&h);
    }
    result.load.sent = values.len() as u64;
    result.load.target_rate = 50.0 / count as f64;
    result.load.send_duration_s = 2.0;
    result.thresholds = thresholds
        .iter()
        .map(|t| ThresholdResult {
            scope: "overall".to_owned(),
            evaluation: Evaluation {
                expression: (*t).to_owned(),
                measured: None,
                bound: 0.0,
                unit: crate::threshold::Unit::Micros,
                passed: None,
            },
        })
        .collect();
    let identity = ShardResult {
        index,
        count,
        scenario_sha256: scenario_hash(&result.scenario.source, &result.scenario.overrides),
        planned_start_unix_ms: Some(1_000_000),
        // Shard 2 began 1.5 s late: its second 0 is the fleet's second 1.
        load_started_at_unix_us: Some(1_000_000_000 + if index == 2 { 1_500_000 } else { 0 }),
        start_lag_ms: if index == 2 { 1_500 } else { 0 },
        send_lag_histogram: None,
        metrics_checks: false,
        warmed_up_at_unix_us: None,
        load_ended_at_unix_us: None,
    };
    result.shard = Some(identity.clone());
    Shard {
        path: PathBuf::from(format!("shard-{index}/result.json")),
        result,
        identity,
    }
}

fn refused(shards: &[Shard]) -> String {
    match check_fleet(shards) {
        Err(RunError::BadInput(message)) => message,
        other => panic!("expected bad input, got {:?}", other.map(|()| "accepted")),
    }
}

#[test]
fn the_fleets_percentiles_are_those_of_every_request_bit_for_bit() {
    let values: [&[u64]; 3] = [
        &[1_000, 1_200, 90_000, 1_100],
        &[5_000, 5_500, 6_000],
        &[700, 800, 250_000, 900, 1_000, 1_050],
    ];
    let shards: Vec<Shard> = values
        .iter()
        .enumerate()
        .map(|(i, v)| shard(i as u64 + 1, 3, v, &["p(99) < 100ms"]))
        .collect();
    check_fleet(&shards).expect("one fleet");
    let merged = combine::fleet(&shards).expect("merges");
    let mut union = new_histogram();
    for v in values.iter().flat_map(|v| v.iter()) {
        union.record(*v).expect("in range");
    }
    assert_eq!(merged.load.sent, 13);
    assert_eq!(merged.load.latency, result::Percentiles::of(&union));
    let kinds_total: u64 = merged.kinds.iter().map(|k| k.sent).sum();
    assert_eq!(kinds_total, 13);
    let mut from_kinds = new_histogram();
    for kind in &merged.kinds {
        from_kinds
            .add(result::decode_histogram(&kind.latency_histogram).expect("decodes"))
            .expect("adds");
    }
    assert_eq!(
        from_kinds, union,
        "the stored histograms are the union, count for count"
    );
    // Judged on the fleet: the 250 ms request is beyond p(99) of 13 requests.
    assert_eq!(merged.thresholds.len(), 1);
    assert_eq!(merged.thresholds[0].evaluation.passed, Some(false));
    assert_eq!(
        merged.thresholds[0].evaluation.measured,
        Some(union.value_at_quantile(0.99) as f64)
    );
    assert_eq!(merged.exit_code(), crate::exit::EXIT_FAILED);
    // Timelines by wall-clock second: shard 2's seconds land one later.
    let sent: Vec<u64> = merged.timeline.iter().map(|s| s.sent).collect();
    let one = &shards[0].result.timeline;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0], 2 * one[0].sent);
    assert_eq!(sent[2], one[1].sent);
    let fleet = merged.fleet.as_ref().expect("fleet");
    assert_eq!(fleet.shards.len(), 3);
    assert_eq!(merged.load.target_rate, 50.0);
    assert!(merged.shard.is_none());
}

#[test]
fn mixed_missing_duplicate_and_unsharded_results_are_refused_by_name() {
    let a = shard(1, 2, &[1_000], &[]);
    let mut b = shard(2, 2, &[1_000], &[]);
    b.result.scenario.overrides = vec!["load.seed=9".to_owned()];
    b.identity.scenario_sha256 =
        scenario_hash(&b.result.scenario.source, &b.result.scenario.overrides);
    let message = refused(&[a, b]);
    assert!(message.contains("not of one fleet"), "{message}");
    assert!(message.contains("shard-1/result.json") && message.contains("shard-2/result.json"));

    let message = refused(&[shard(1, 3, &[1], &[]), shard(3, 3, &[1], &[])]);
    assert!(message.contains("shard 2/3 missing"), "{message}");

    let message = refused(&[
        shard(1, 2, &[1], &[]),
        shard(1, 2, &[1], &[]),
        shard(2, 2, &[1], &[]),
    ]);
    assert!(
        message.contains("shard 1/2 given more than once"),
        "{message}"
    );

    let message = refused(&[shard(1, 2, &[1], &[]), shard(3, 2, &[1], &[])]);
    assert!(
        message.contains("shard 3/2 is not a shard of a fleet"),
        "{message}"
    );

    let mut edited = shard(2, 2, &[1], &[]);
    edited.result.scenario.source.push_str("# edited\n");
    let message = refused(&[shard(1, 2, &[1], &[]), edited]);
    assert!(
        message.contains("not the hash of the scenario it holds"),
        "{message}"
    );

    let dir = std::env::temp_dir().join(format!("harness-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let plain = dir.join("plain.json");
    std::fs::write(
        &plain,
        include_str!("../../tests/fixtures/results/smoke.json"),
    )
    .expect("write");
    match read_all(std::slice::from_ref(&plain)) {
        Err(RunError::BadInput(message)) => {
            assert!(message.contains("not a shard's result"), "{message}");
            assert!(message.contains("plain.json"), "{message}");
        }
        other => panic!("{:?}", other.map(|s| s.len())),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shard_that_failed_makes_the_fleet_incomplete() {
    let mut failed = shard(2, 2, &[], &["error_rate < 1%"]);
    failed.result.status = RunStatus::Failed {
        reason: "the gateway was unreachable".to_owned(),
    };
    let shards = [shard(1, 2, &[1_000, 2_000], &["error_rate < 1%"]), failed];
    check_fleet(&shards).expect("one whole fleet");
    let merged = combine::fleet(&shards).expect("merges what there is");
    assert_eq!(merged.exit_code(), crate::exit::EXIT_INCOMPLETE);
    let RunStatus::Failed { reason } = &merged.status else {
        panic!("{:?}", merged.status)
    };
    assert!(reason.contains("incomplete fleet"), "{reason}");
    assert!(
        reason.contains("shard 2/2 failed: the gateway was unreachable"),
        "{reason}"
    );
    assert_eq!(merged.load.sent, 2);
}

#[test]
fn trace_verification_adds_up_and_metrics_are_not_claimed() {
    let report = |sampled: u64, passed: u64, visible: &[u64]| {
        let mut h = new_histogram();
        for v in visible {
            h.record(*v).expect("in range");
        }
        TraceReportFixture { sampled, passed, h }.report()
    };
    let mut one = shard(1, 2, &[1_000], &["traces.passed >= 100%"]);
    let mut two = shard(2, 2, &[1_000], &["traces.passed >= 100%"]);
    one.result.verification.traces = Some(report(4, 4, &[10_000, 20_000]));
    two.result.verification.traces = Some(report(5, 3, &[30_000]));
    two.identity.metrics_checks = true;
    let merged = combine::fleet(&[one, two]).expect("merges");
    let traces = merged.verification.traces.as_ref().expect("traces");
    assert_eq!((traces.sampled, traces.passed, traces.complete), (9, 7, 7));
    assert_eq!(traces.visible.as_ref().map(|v| v.count), Some(3));
    assert_eq!(merged.thresholds[0].evaluation.passed, Some(false));
    assert!(merged.verification.metrics.is_none());
    let fleet = merged.fleet.as_ref().expect("fleet");
    assert!(
        fleet
            .metrics_not_reconciled
            .as_deref()
            .is_some_and(|n| n.contains("not reconciled fleet-wide")),
        "{fleet:?}"
    );
}

struct TraceReportFixture {
    sampled: u64,
    passed: u64,
    h: hdrhistogram::Histogram<u64>,
}

impl TraceReportFixture {
    fn report(self) -> crate::result::TraceReport {
        crate::result::TraceReport {
            source: "embedded OTLP receiver".to_owned(),
            sampled: self.sampled,
            complete: self.passed,
            passed: self.passed,
            completeness: None,
            visible: Some(result::Percentiles::of(&self.h)),
            visible_histogram: Some(result::encode_histogram(&self.h)),
            checks: Vec::new(),
            failed_checks: BTreeMap::new(),
            failing: Vec::new(),
            unanswered: 0,
            not_judged: 0,
            source_stats: None,
            jaeger_ui: None,
        }
    }
}

#[test]
fn the_merged_report_and_summary_show_the_fleet() {
    let mut failed = shard(2, 2, &[], &[]);
    failed.result.status = RunStatus::Failed {
        reason: "<the gateway> was unreachable".to_owned(),
    };
    failed.identity.metrics_checks = true;
    let merged = combine::fleet(&[shard(1, 2, &[1_000], &[]), failed]).expect("merges");
    let page = crate::report::page::render(&merged, "result.json").expect("renders");
    assert!(page.contains("<section id=\"fleet\">"), "no fleet section");
    assert!(
        page.contains("shard-2&#x2f;result.json"),
        "the shard's file, escaped"
    );
    assert!(page.contains("failed: &lt;the gateway&gt; was unreachable"));
    assert!(page.contains("not reconciled fleet-wide"));
    let summary = crate::summary::render(&merged);
    assert!(summary.contains("fleet: 2 shards merged"), "{summary}");
    assert!(summary.contains("incomplete fleet"), "{summary}");
    // A shard's own page says which shard it is; an unsharded run's has no such section.
    let one = shard(1, 2, &[1_000], &[]);
    let page = crate::report::page::render(&one.result, "result.json").expect("renders");
    assert!(page.contains("1 of 2"));
    let mut plain = one.result;
    plain.shard = None;
    let page = crate::report::page::render(&plain, "result.json").expect("renders");
    assert!(!page.contains("<section id=\"fleet\">"));
}

#[test]
fn without_a_prometheus_the_fleet_s_metrics_stay_unreconciled() {
    let mut one = shard(1, 2, &[1_000], &["error_rate < 1%"]);
    let two = shard(2, 2, &[1_000], &["error_rate < 1%"]);
    one.identity.metrics_checks = true;
    let shards = [one, two];
    let mut combined = combine::combined(&shards).expect("merges");
    // The fixture's scenario names no Prometheus, and no flag does.
    metrics::reconcile(&shards, &mut combined, None).expect("nothing to read");
    assert!(combined.result.verification.metrics.is_none());
    assert_eq!(combined.thresholds.len(), 1, "no gate added");
    let note = combined
        .result
        .fleet
        .as_ref()
        .and_then(|f| f.metrics_not_reconciled.clone());
    assert!(note.is_some_and(|n| n.contains("--prometheus")));
    // A --prometheus that is no URL is bad input, named.
    match metrics::reconcile(&shards, &mut combined, Some("ftp://prometheus")) {
        Err(RunError::BadInput(message)) => assert!(message.contains("--prometheus"), "{message}"),
        other => panic!("expected bad input, got {:?}", other.map(|()| "accepted")),
    }
}

#[test]
fn the_fleet_s_load_window_spans_every_shard_or_is_unknown() {
    let timed = |index: u64, window: (u64, u64, u64)| {
        let mut shard = shard(index, 2, &[1_000], &[]);
        shard.identity.warmed_up_at_unix_us = Some(window.0);
        shard.identity.load_started_at_unix_us = Some(window.1);
        shard.identity.load_ended_at_unix_us = Some(window.2);
        shard
    };
    let (one, two) = ((900, 1_000, 5_000), (950, 1_100, 4_000));
    assert_eq!(
        metrics::window(&[timed(1, one), timed(2, two)]),
        Ok((950, 1_000, 5_000))
    );
    let mut failed = timed(1, one);
    failed.identity.load_ended_at_unix_us = None;
    let error = metrics::window(&[failed, timed(2, two)]).expect_err("no window");
    assert!(
        error.contains("shard 1/2") && error.contains("no load window"),
        "{error}"
    );
}
