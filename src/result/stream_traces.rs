//! `verification.streams` in `result.json`: the trace checks of a stream load's traced updates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many failing updates are kept, with their failures, for the reader to look up.
pub(crate) const KEPT_FAILING: usize = 20;

/// What the trace checks of the sampled updates found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamTraceReport {
    /// Where the spans were looked up.
    pub source: String,
    /// Traced updates the load kept (their `traceparent`s), of which `sampled` were checked.
    pub kept: u64,
    /// Updates checked.
    pub sampled: u64,
    /// Updates whose CONSUMER and PRODUCER spans were both found.
    pub found: u64,
    /// Updates traced end to end: every check held.
    pub passed: u64,
    /// Failed updates by check (`consumer`, `producer`, `message id`, `links`).
    pub failed_checks: BTreeMap<String, u64>,
    /// The first failing updates.
    pub failing: Vec<FailingUpdate>,
}

/// One update that failed a check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailingUpdate {
    /// The request kind that received it.
    pub kind: String,
    /// The `traceparent` it carried.
    pub traceparent: String,
    /// Its sequence, if it had one.
    pub sequence: Option<u64>,
    /// `(check, detail)`.
    pub failures: Vec<(String, String)>,
}

impl StreamTraceReport {
    /// Updates traced end to end / updates checked; `None` when none were.
    pub fn passed_ratio(&self) -> Option<f64> {
        (self.sampled > 0).then(|| self.passed as f64 / self.sampled as f64)
    }
}
