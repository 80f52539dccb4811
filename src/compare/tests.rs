//! The comparison on synthetic runs: known shifts, known sample sizes, known error counts.

use std::path::PathBuf;

use hdrhistogram::Histogram;

use super::*;
use crate::load::recorder::new_histogram;
use crate::result::{SecondResult, encode_histogram};

fn template() -> RunResult {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/results/smoke.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_json::from_str(&text).expect("a result")
}

/// `n` latencies spread evenly on a log scale over a decade from `from` µs, as real latencies
/// spread more than linearly.
fn latencies(n: u64, from: f64) -> Histogram<u64> {
    let mut h = new_histogram();
    for i in 0..n {
        let v = from * 10f64.powf((i as f64 + 0.5) / n as f64);
        h.record(v.round() as u64).expect("in range");
    }
    h
}

struct Kind {
    name: &'static str,
    latency: Histogram<u64>,
    errors: u64,
}

fn kind(name: &'static str, latency: Histogram<u64>) -> Kind {
    Kind {
        name,
        latency,
        errors: 0,
    }
}

fn run(kinds: Vec<Kind>, timeline: &[u64]) -> StoredRun {
    let mut result = template();
    let model = result.kinds[0].clone();
    result.kinds = kinds
        .iter()
        .map(|k| KindResult {
            name: k.name.to_owned(),
            sent: k.latency.len(),
            completed: k.latency.len(),
            unexpected: k.errors,
            latency_histogram: encode_histogram(&k.latency),
            ..model.clone()
        })
        .collect();
    result.timeline = timeline
        .iter()
        .enumerate()
        .map(|(i, &p50)| SecondResult {
            second: i as u64,
            sent: 100,
            completed: 100,
            unexpected: 0,
            dropped: 0,
            p50_us: Some(p50),
            p95_us: Some(p50 * 2),
            p99_us: Some(p50 * 3),
        })
        .collect();
    StoredRun {
        path: PathBuf::from(format!("/runs/{}.json", kinds[0].name)),
        result,
        latency: kinds.into_iter().map(|k| k.latency).collect(),
    }
}

fn tolerance(text: &str) -> Tolerance {
    text.parse().expect("valid")
}

fn decisions(comparison: &Comparison) -> Vec<(Percentile, Decision)> {
    comparison.kinds[0]
        .percentiles
        .iter()
        .map(|row| (row.percentile, row.decision))
        .collect()
}

const NO_TIMELINE: &[u64] = &[];

#[test]
fn identical_runs_are_never_a_regression() {
    for n in [20, 200, 2_000, 100_000] {
        let base = run(vec![kind("quote", latencies(n, 1_000.0))], NO_TIMELINE);
        let new = run(vec![kind("quote", latencies(n, 1_000.0))], NO_TIMELINE);
        let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
        assert!(!comparison.regressed(), "n = {n}: {comparison:#?}");
        for row in &comparison.kinds[0].percentiles {
            assert!(
                matches!(
                    row.decision,
                    Decision::Unchanged | Decision::WithinNoise | Decision::NotEnoughData
                ),
                "n = {n}: {row:?}"
            );
            if let Some(change) = row.change {
                assert_eq!(change.estimate, 0.0);
            }
        }
    }
    // With plenty of data the interval is narrow enough to say so.
    let base = run(
        vec![kind("quote", latencies(100_000, 1_000.0))],
        NO_TIMELINE,
    );
    let comparison = compare(&base, &base, tolerance("5%")).expect("comparable");
    assert_eq!(
        decisions(&comparison),
        [
            (Percentile::P50, Decision::Unchanged),
            (Percentile::P90, Decision::Unchanged),
            (Percentile::P99, Decision::Unchanged),
            (Percentile::P999, Decision::Unchanged),
        ]
    );
}

#[test]
fn half_again_slower_with_enough_samples_is_a_regression() {
    let base = run(vec![kind("quote", latencies(2_000, 1_000.0))], NO_TIMELINE);
    let new = run(vec![kind("quote", latencies(2_000, 1_500.0))], NO_TIMELINE);
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    assert_eq!(
        decisions(&comparison),
        [
            (Percentile::P50, Decision::Regression),
            (Percentile::P90, Decision::Regression),
            (Percentile::P99, Decision::Regression),
            // 2,000 requests are too few for the p99.9.
            (Percentile::P999, Decision::NotEnoughData),
        ]
    );
    assert_eq!(
        comparison.regressions,
        ["quote p50", "quote p90", "quote p99"]
    );
    let p50 = &comparison.kinds[0].percentiles[0];
    let change = p50.change.expect("a change");
    assert!((change.estimate - 0.5).abs() < 0.01, "{change:?}");
    assert!(change.low < 0.5 && change.high > 0.5, "{change:?}");
    assert_eq!(comparison.kinds[0].percentiles[3].needed, Some(10_000));
}

#[test]
fn half_again_slower_with_20_samples_is_not_a_regression() {
    let base = run(vec![kind("quote", latencies(20, 1_000.0))], NO_TIMELINE);
    let new = run(vec![kind("quote", latencies(20, 1_500.0))], NO_TIMELINE);
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    assert!(!comparison.regressed(), "{comparison:#?}");
    let p50 = &comparison.kinds[0].percentiles[0];
    assert_eq!(p50.decision, Decision::WithinNoise);
    let detectable = p50.smallest_detectable.expect("said");
    assert!(detectable > 0.5, "{detectable}");
    for row in &comparison.kinds[0].percentiles[1..] {
        assert_eq!(row.decision, Decision::NotEnoughData, "{row:?}");
    }
    // With 19 there is no p50 interval at all.
    let base = run(vec![kind("quote", latencies(19, 1_000.0))], NO_TIMELINE);
    let new = run(vec![kind("quote", latencies(19, 1_500.0))], NO_TIMELINE);
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    assert_eq!(
        comparison.kinds[0].percentiles[0].decision,
        Decision::NotEnoughData
    );
}

#[test]
fn a_third_faster_is_an_improvement_and_not_a_failure() {
    let base = run(vec![kind("quote", latencies(2_000, 1_500.0))], NO_TIMELINE);
    let new = run(vec![kind("quote", latencies(2_000, 1_000.0))], NO_TIMELINE);
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    assert!(!comparison.regressed());
    assert_eq!(
        comparison.kinds[0].percentiles[0].decision,
        Decision::Improvement
    );
}

#[test]
fn a_wandering_run_is_not_judged_on_its_sampling_error_alone() {
    let steady = [2_000, 2_010, 1_990, 2_005, 1_995, 2_000, 2_002, 1_998];
    let wandering = [2_000, 6_000, 1_800, 9_000, 2_200, 1_600, 7_000, 2_100];
    let base = run(vec![kind("quote", latencies(20_000, 1_000.0))], &steady);
    let steady_new = run(vec![kind("quote", latencies(20_000, 1_150.0))], &steady);
    let wandering_new = run(vec![kind("quote", latencies(20_000, 1_150.0))], &wandering);

    let judged = compare(&base, &steady_new, tolerance("5%")).expect("comparable");
    assert_eq!(
        judged.kinds[0].percentiles[0].decision,
        Decision::Regression
    );

    let widened = compare(&base, &wandering_new, tolerance("5%")).expect("comparable");
    let p50 = &widened.kinds[0].percentiles[0];
    assert_eq!(p50.decision, Decision::WithinNoise, "{p50:?}");
    let (sampling, change) = (p50.sampling.expect("some"), p50.change.expect("some"));
    assert_eq!(sampling.estimate, change.estimate);
    assert!(change.low < sampling.low && change.high > sampling.high);
    assert!(widened.wander.note.is_none());
}

#[test]
fn a_run_that_measured_nothing_is_not_judged_a_pass() {
    let base = run(
        vec![
            kind("quote", latencies(1_000, 1_000.0)),
            kind("history", latencies(1_000, 1_000.0)),
        ],
        NO_TIMELINE,
    );
    let empty = run(
        vec![
            kind("quote", new_histogram()),
            kind("history", latencies(5, 1_000.0)),
        ],
        NO_TIMELINE,
    );
    let comparison = compare(&base, &empty, tolerance("5%")).expect("comparable");
    assert!(!comparison.regressed());
    let reason = "too few requests in the new run (quote 0, history 5 completed): a percentile \
                  needs at least 20 completed requests of its kind in each run";
    assert_eq!(
        comparison.conclusion,
        Conclusion::CouldNotJudge {
            reason: reason.to_owned()
        }
    );
    assert!(
        text(&comparison)
            .trim_end()
            .ends_with(&format!("COULD NOT JUDGE: {reason}")),
        "{}",
        text(&comparison)
    );
    let page = html(&comparison).expect("renders");
    assert!(
        page.contains(r#"<div id="verdict" class="verdict inconclusive">"#),
        "{page}"
    );

    // Either run, or both, may be the one short of requests.
    let short = run(vec![kind("quote", latencies(19, 1_000.0))], NO_TIMELINE);
    let reason = |comparison: Comparison| match comparison.conclusion {
        Conclusion::CouldNotJudge { reason } => reason,
        other => panic!("{other:?}"),
    };
    let backwards = reason(compare(&short, &base, tolerance("5%")).expect("comparable"));
    assert!(
        backwards.starts_with("too few requests in the base run (quote 19 completed):"),
        "{backwards}"
    );
    let both = reason(compare(&short, &empty, tolerance("5%")).expect("comparable"));
    assert!(
        both.starts_with(
            "too few requests in the base run (quote 19 completed) and the new run (quote 0 \
             completed):"
        ),
        "{both}"
    );

    // One judged percentile of one kind is enough to judge.
    let enough = run(vec![kind("quote", latencies(20, 1_000.0))], NO_TIMELINE);
    let judged = compare(&enough, &enough, tolerance("5%")).expect("comparable");
    assert_eq!(judged.conclusion, Conclusion::NoRegression);

    // A regression needs no latency: a run whose requests all went unanswered regressed.
    let mut unanswered = empty;
    unanswered.result.kinds[0].sent = 1_000;
    let comparison = compare(&base, &unanswered, tolerance("5%")).expect("comparable");
    assert_eq!(comparison.conclusion, Conclusion::Regression);
    assert_eq!(comparison.regressions, ["quote errors"]);
}

#[test]
fn error_rates_regress_only_when_significant_and_above_the_floor() {
    let errors = |base_errors, new_errors, n| {
        let with = |errors| Kind {
            errors,
            ..kind("quote", latencies(n, 1_000.0))
        };
        let comparison = compare(
            &run(vec![with(base_errors)], NO_TIMELINE),
            &run(vec![with(new_errors)], NO_TIMELINE),
            tolerance("5%"),
        )
        .expect("comparable");
        (comparison.kinds[0].errors.decision, comparison.regressed())
    };
    assert_eq!(errors(0, 30, 1_000), (Decision::Regression, true));
    assert_eq!(errors(30, 0, 1_000), (Decision::Improvement, false));
    assert_eq!(errors(0, 0, 1_000), (Decision::Unchanged, false));
    // 2 in 300 after none could be chance; 0.05% more of a million is significant but under
    // the floor.
    assert_eq!(errors(0, 2, 300), (Decision::Unchanged, false));
    assert_eq!(errors(0, 500, 1_000_000), (Decision::Unchanged, false));
    assert_eq!(errors(0, 1_500, 1_000_000), (Decision::Regression, true));
}

#[test]
fn requests_never_answered_count_as_errors() {
    let base = run(vec![kind("quote", latencies(1_000, 1_000.0))], NO_TIMELINE);
    let mut new = run(vec![kind("quote", latencies(1_000, 1_000.0))], NO_TIMELINE);
    new.result.kinds[0].sent += 50;
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    let errors = &comparison.kinds[0].errors;
    assert_eq!((errors.new_errors, errors.new_sent), (50, 1_050));
    assert_eq!(comparison.regressions, ["quote errors"]);
}

#[test]
fn kinds_are_matched_by_name_and_the_rest_listed() {
    let base = run(
        vec![
            kind("quote", latencies(100, 1_000.0)),
            kind("history", latencies(100, 1_000.0)),
        ],
        NO_TIMELINE,
    );
    let new = run(
        vec![
            kind("news", latencies(100, 1_000.0)),
            kind("quote", latencies(100, 1_000.0)),
        ],
        NO_TIMELINE,
    );
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    let names: Vec<&str> = comparison.kinds.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["quote"]);
    assert_eq!(comparison.only_in_base, ["history"]);
    assert_eq!(comparison.only_in_new, ["news"]);

    let other = run(vec![kind("news", latencies(100, 1_000.0))], NO_TIMELINE);
    let error = compare(&base, &other, tolerance("5%")).expect_err("nothing in common");
    assert_eq!(
        error.to_string(),
        "no request kind in common: /runs/quote.json has quote, history, /runs/news.json has news"
    );
}

#[test]
fn warnings_name_what_is_not_like_for_like() {
    let base = run(vec![kind("quote", latencies(100, 1_000.0))], NO_TIMELINE);
    let same = compare(&base, &base, tolerance("5%")).expect("comparable");
    assert_eq!(same.warnings, Vec::<String>::new());

    let mut new = run(vec![kind("quote", latencies(100, 1_000.0))], NO_TIMELINE);
    new.result.scenario.name = "other".to_owned();
    new.result.load.target_rate = 100.0;
    new.result.load.achieved_rate = 80.0;
    new.result.status = RunStatus::Interrupted {
        reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
    };
    let warnings = compare(&base, &new, tolerance("5%"))
        .expect("comparable")
        .warnings;
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(warnings[0].contains("different scenarios (smoke and other)"));
    assert!(warnings[1].contains("target rates differ (50.0/s and 100.0/s)"));
    assert!(warnings[2].contains("new run did not hold its target rate (80.0/s of 100.0/s"));
    assert!(warnings[3].contains("new run did not complete"));
}

#[test]
fn the_reports_show_every_decision_in_words() {
    let base = run(
        vec![
            kind("quote", latencies(2_000, 1_000.0)),
            kind("history", latencies(2_000, 1_000.0)),
        ],
        NO_TIMELINE,
    );
    let new = run(
        vec![
            kind("quote", latencies(2_000, 1_500.0)),
            kind("history", latencies(2_000, 1_000.0)),
        ],
        NO_TIMELINE,
    );
    let comparison = compare(&base, &new, tolerance("5%")).expect("comparable");
    let printed = text(&comparison);
    assert!(
        printed
            .lines()
            .any(|l| l.trim_start().starts_with("p50") && l.ends_with("regression")),
        "{printed}"
    );
    assert!(
        printed.contains("not enough data (needs 10000 requests in each run)"),
        "{printed}"
    );
    assert!(
        printed.contains("within noise (could detect a slowdown of +"),
        "{printed}"
    );
    assert!(
        printed.contains("note: the timelines are too short"),
        "{printed}"
    );
    assert!(
        printed
            .trim_end()
            .ends_with("REGRESSION: quote p50, quote p90, quote p99"),
        "{printed}"
    );

    let page = html(&comparison).expect("renders");
    assert!(
        page.contains(r#"<div id="verdict" class="verdict fail">"#),
        "{page}"
    );
    assert!(page.contains(r#"<span class="decision regression">regression</span>"#));
    assert!(page.contains(r#"<span class="decision noise">within noise</span>"#));
    assert!(page.contains(r#"<span class="decision nodata">not enough data</span>"#));
    assert!(!page.contains("<script"));

    let fine = compare(&base, &base, tolerance("5%")).expect("comparable");
    assert!(
        text(&fine)
            .trim_end()
            .ends_with("NO REGRESSION: 8 of 10 rows had enough data to judge, over 2 kinds")
    );
    assert!(
        html(&fine)
            .expect("renders")
            .contains(r#"<div id="verdict" class="verdict pass">"#)
    );
}

#[test]
fn the_report_escapes_names_from_the_results() {
    let mut base = run(vec![kind("quote", latencies(100, 1_000.0))], NO_TIMELINE);
    base.result.scenario.name = "<b>bold</b>".to_owned();
    let page = html(&compare(&base, &base, tolerance("5%")).expect("comparable")).expect("renders");
    assert!(!page.contains("<b>bold"), "{page}");
    assert!(page.contains("&lt;b&gt;bold"));
}

#[test]
fn spectra_run_from_the_fastest_to_the_slowest() {
    let base = run(vec![kind("quote", latencies(1_000, 1_000.0))], NO_TIMELINE);
    let comparison = compare(&base, &base, tolerance("5%")).expect("comparable");
    let spectrum = &comparison.kinds[0].spectrum.base;
    assert!(spectrum.len() > 5);
    assert!(
        spectrum
            .windows(2)
            .all(|w| w[0].quantile <= w[1].quantile && w[0].us <= w[1].us)
    );
    assert_eq!(spectrum.last().map(|p| p.quantile), Some(1.0));
}

#[test]
fn the_html_goes_beside_the_new_result_by_default() {
    assert_eq!(
        default_html_path(std::path::Path::new("reports/smoke/result.json")),
        std::path::Path::new("reports/smoke/comparison.html")
    );
    assert_eq!(
        default_html_path(std::path::Path::new("result.json")),
        std::path::Path::new("comparison.html")
    );
}
