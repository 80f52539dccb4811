//! The verification section of `result.json`: what the trace and metrics checks found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Percentiles;
use crate::metrics::reconcile::Check;

/// What the checks found, as `result.json` holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerificationResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traces: Option<TraceReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metrics: Option<MetricsReport>,
    /// The trace checks of a stream load's updates (`verify.streams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) streams: Option<super::StreamTraceReport>,
    /// The search for personal data (`verify.pii`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pii: Option<super::PiiReport>,
}

/// Metrics reconciliation, per source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Every source agreed with the harness's counts.
    pub reconciled: bool,
    pub(crate) sources: Vec<SourceReport>,
}

/// How the span accounting's source description starts: it is one more metrics source, which
/// printers may set apart.
pub(crate) const SPAN_COUNTS: &str = "span counts";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SourceReport {
    pub(crate) source: String,
    /// Why the source could not be read; its checks are then empty and it does not reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub(crate) passed: bool,
    pub(crate) checks: Vec<Check>,
}

/// The trace verification of a run, as `result.json` holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceReport {
    /// Where the traces were looked up.
    pub source: String,
    pub(crate) sampled: u64,
    /// Traces that arrived with every expected service and the whole chain.
    pub complete: u64,
    /// Traces that passed every check.
    pub passed: u64,
    /// `complete / sampled`; absent when nothing was sampled.
    pub completeness: Option<f64>,
    /// Time from sending a sampled request until its trace was complete, over complete traces.
    pub visible: Option<Percentiles>,
    /// The same as an HdrHistogram (V2, base64), for any other percentile.
    pub visible_histogram: Option<String>,
    /// The checks made of every sampled trace, failed or not; empty in results written before
    /// they were recorded.
    #[serde(default)]
    pub checks: Vec<CheckKind>,
    /// How many traces failed each check.
    pub failed_checks: BTreeMap<CheckKind, u64>,
    /// The first failing traces, with every failed check.
    pub failing: Vec<FailingTrace>,
    /// Sampled requests that got no response (transport error, reset, timeout): counted among
    /// the sampled traces, each failing the `response` check.
    #[serde(default)]
    pub unanswered: u64,
    /// In results written before unanswered requests were judged: sampled requests that failed in
    /// transport and were left out of the counts. Always 0 (and not written) since.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_judged: u64,
    /// Counters of the trace source, e.g. the embedded receiver's span counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_stats: Option<serde_json::Value>,
    /// The Jaeger UI's base URL when traces were looked up in Jaeger: reports link each failing
    /// trace to `{jaeger_ui}/trace/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jaeger_ui: Option<String>,
}

/// A sampled request whose trace failed a check, with every failure found: what the report lists
/// so that the trace can be looked up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FailingTrace {
    pub(crate) trace_id: String,
    pub(crate) kind: String,
    pub(crate) outcome: String,
    pub(crate) failures: Vec<Failure>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// Which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The sampled request got a response: without one, nothing the system did can be seen.
    Response,
    /// The source has no span of the trace.
    Exists,
    /// An expected service contributed no span.
    Services,
    /// The expected chain of spans is broken.
    Chain,
    /// A span's parent is not in the trace.
    Orphans,
    /// A span of the chain lacks an expected attribute or has the wrong value.
    Attributes,
    /// A span's status disagrees with the outcome the harness received (error for a failure).
    ErrorStatus,
    /// The response's trace id header is missing or names another trace.
    ResponseHeader,
    /// A service logged no line with the trace's id, or its log could not be read.
    Logs,
}

/// A failed check, with what was wrong in words a reader can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub(crate) check: CheckKind,
    pub(crate) detail: String,
}

/// As scenario files and `result.json` spell it: `chain`, `error_status`.
impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckKind::Response => "response",
            CheckKind::Exists => "exists",
            CheckKind::Services => "services",
            CheckKind::Chain => "chain",
            CheckKind::Orphans => "orphans",
            CheckKind::Attributes => "attributes",
            CheckKind::ErrorStatus => "error_status",
            CheckKind::ResponseHeader => "response_header",
            CheckKind::Logs => "logs",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_from_before_unanswered_requests_were_judged_still_read() {
        let old = r#"{"source": "embedded OTLP receiver", "sampled": 8, "complete": 8,
            "passed": 8, "completeness": 1.0, "visible": null, "visible_histogram": null,
            "failed_checks": {}, "failing": [], "not_judged": 2}"#;
        let report: TraceReport = serde_json::from_str(old).expect("an old result reads");
        assert_eq!((report.unanswered, report.not_judged), (0, 2));
        let written = serde_json::to_value(&report).expect("serializes");
        assert_eq!(written["not_judged"], 2, "kept while it says something");
        let new = TraceReport {
            not_judged: 0,
            unanswered: 3,
            ..report
        };
        let written = serde_json::to_value(&new).expect("serializes");
        assert_eq!(written["unanswered"], 3);
        assert!(written.get("not_judged").is_none(), "{written}");
    }
}
