//! The trace and metrics checks: what was sampled and what failed, with links into Jaeger when
//! the traces came from there, and every metrics comparison.

use serde::Serialize;

use super::{Fact, PercentileRow, fact, percentile_row};
use crate::format::{count, percent, significant};
use crate::result::MetricsReport;
use crate::result::TraceReport;

#[derive(Debug, Serialize)]
pub(super) struct TracesView {
    source: String,
    facts: Vec<Fact>,
    visible: Option<PercentileRow>,
    failed_checks: Vec<Fact>,
    failing: Vec<FailingTraceView>,
    /// Failing traces that were counted but not listed in the result.
    unlisted: u64,
    source_stats: Vec<Fact>,
}

#[derive(Debug, Serialize)]
struct FailingTraceView {
    trace_id: String,
    /// `{jaeger_ui}/trace/{id}` when the traces came from Jaeger.
    link: Option<String>,
    kind: String,
    outcome: String,
    failures: Vec<Fact>,
}

#[derive(Debug, Serialize)]
pub(super) struct MetricsView {
    reconciled: bool,
    sources: Vec<SourceView>,
}

#[derive(Debug, Serialize)]
struct SourceView {
    source: String,
    error: Option<String>,
    passed: bool,
    summary: String,
    /// Each failed check in one line, with the expected and the observed value.
    failures: Vec<String>,
    checks: Vec<CheckRow>,
}

#[derive(Debug, Serialize)]
struct CheckRow {
    service: String,
    metric: String,
    labels: String,
    expected: String,
    observed: String,
    /// `passed`, `skipped` or `failed`.
    outcome: &'static str,
    detail: String,
}

pub(super) fn traces(report: &TraceReport) -> TracesView {
    let listed = report.failing.len() as u64;
    let failed = report.sampled - report.passed.min(report.sampled);
    // Only a web address gets a link: a result could carry anything in `jaeger_ui`.
    let jaeger = report
        .jaeger_ui
        .as_deref()
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(|url| url.trim_end_matches('/'));
    let mut facts = vec![
        fact("sampled", count(report.sampled)),
        fact("complete", count(report.complete)),
        fact(
            "completeness",
            report
                .completeness
                .map_or_else(|| "n/a (nothing sampled)".to_owned(), percent),
        ),
        fact("passed every check", count(report.passed)),
        fact("failed a check", count(failed)),
        fact("got no response (failed)", count(report.unanswered)),
    ];
    // Only results written before unanswered requests were judged have these.
    if report.not_judged > 0 {
        facts.push(fact(
            "not judged (failed in transport)",
            count(report.not_judged),
        ));
    }
    TracesView {
        source: report.source.clone(),
        facts,
        visible: report
            .visible
            .as_ref()
            .map(|p| percentile_row("visible after (send to complete trace)", p)),
        failed_checks: report
            .failed_checks
            .iter()
            .map(|(check, n)| fact(check.to_string(), count(*n)))
            .collect(),
        failing: report
            .failing
            .iter()
            .map(|t| FailingTraceView {
                trace_id: t.trace_id.clone(),
                link: jaeger.map(|base| format!("{base}/trace/{}", t.trace_id)),
                kind: t.kind.clone(),
                outcome: t.outcome.clone(),
                failures: t
                    .failures
                    .iter()
                    .map(|f| fact(f.check.to_string(), f.detail.clone()))
                    .collect(),
            })
            .collect(),
        unlisted: failed.saturating_sub(listed),
        source_stats: match &report.source_stats {
            Some(serde_json::Value::Object(stats)) => stats
                .iter()
                .map(|(key, value)| {
                    let shown = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => {
                            n.as_u64().map_or_else(|| n.to_string(), count)
                        }
                        other => other.to_string(),
                    };
                    fact(key.replace('_', " "), shown)
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// A metric's value as read: whole numbers as counts, the rest to four significant digits.
fn observed(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", count(value.abs() as u64))
    } else {
        significant(value, 4)
    }
}

pub(super) fn metrics(report: &MetricsReport) -> MetricsView {
    MetricsView {
        reconciled: report.reconciled,
        sources: report
            .sources
            .iter()
            .map(|source| {
                let passed = source.checks.iter().filter(|c| c.passed).count();
                SourceView {
                    source: source.source.clone(),
                    error: source.error.clone(),
                    passed: source.passed,
                    summary: format!("{passed} of {} checks passed", source.checks.len()),
                    failures: source
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| format!("{}: {}", c.subject(), c.comparison()))
                        .collect(),
                    checks: source
                        .checks
                        .iter()
                        .map(|c| CheckRow {
                            service: c.service.clone(),
                            metric: c.metric.clone(),
                            labels: c.labels.clone(),
                            expected: observed(c.expected),
                            observed: observed(c.observed),
                            outcome: match (c.passed, c.skipped) {
                                (_, true) => "skipped",
                                (true, false) => "passed",
                                (false, false) => "failed",
                            },
                            detail: c.detail.clone(),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::page::samples::sample;

    #[test]
    fn metric_values_read_as_counts_or_to_four_digits() {
        assert_eq!(observed(196.0), "196");
        assert_eq!(observed(1_234_567.0), "1,234,567");
        assert_eq!(observed(-3.0), "-3");
        assert_eq!(observed(0.006_832_7), "0.006833");
        assert_eq!(observed(f64::NAN), "NaN");
    }

    #[test]
    fn a_failed_metrics_check_is_listed_with_expected_and_observed() {
        let mut report = sample("verify")
            .verification
            .metrics
            .expect("the verify sample checks metrics");
        assert!(
            metrics(&report)
                .sources
                .iter()
                .all(|s| s.failures.is_empty()),
            "nothing failed, nothing listed"
        );
        let check = report.sources[0]
            .checks
            .iter_mut()
            .find(|c| c.metric == "requests_total" && c.detail.starts_with("the sum"))
            .expect("the sample reconciles requests_total");
        check.observed = check.expected * 2.0;
        check.passed = false;
        let expected = check.expected;
        let view = metrics(&report);
        assert_eq!(
            view.sources[0].failures,
            [format!(
                "api-gateway requests_total: expected {expected} (the sum of the \
                 http_requests_total deltas over all routes and statuses), observed {}",
                expected * 2.0
            )]
        );
    }

    #[test]
    fn unanswered_requests_are_a_fact_and_old_results_keep_theirs() {
        let mut report = sample("verify")
            .verification
            .traces
            .expect("the verify sample checks traces");
        report.unanswered = 2;
        let shown = |report: &TraceReport, label: &str| {
            traces(report)
                .facts
                .iter()
                .find(|f| f.label == label)
                .map(|f| f.value.clone())
        };
        assert_eq!(
            shown(&report, "got no response (failed)").as_deref(),
            Some("2")
        );
        assert_eq!(shown(&report, "not judged (failed in transport)"), None);
        report.not_judged = 3;
        assert_eq!(
            shown(&report, "not judged (failed in transport)").as_deref(),
            Some("3")
        );
    }

    #[test]
    fn failing_traces_beyond_the_listed_ones_are_counted() {
        let mut report = sample("verify")
            .verification
            .traces
            .expect("the verify sample checks traces");
        report.passed = report.sampled - 3;
        let view = traces(&report);
        assert_eq!(view.unlisted, 3, "three failed, none listed");
        assert!(
            view.facts
                .iter()
                .any(|f| f.label == "failed a check" && f.value == "3")
        );
        assert!(
            view.source_stats
                .iter()
                .any(|f| f.label == "spans received")
        );
    }
}
