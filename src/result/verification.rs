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
}

/// Metrics reconciliation, per source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Every source agreed with the harness's counts.
    pub reconciled: bool,
    pub(crate) sources: Vec<SourceReport>,
}

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
    /// Sampled requests that failed in transport: not judged (they may never have reached the
    /// system).
    #[serde(default)]
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

/// Which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
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
