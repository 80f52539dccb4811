//! The `pii` section of `result.json`: where the search for personal data looked and what it
//! found. A found value is kept only in a redacted form for the secret kinds.

use serde::{Deserialize, Serialize};

/// The search of spans, log lines and metric labels for the run's canaries and for generic
/// patterns of personal data.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PiiReport {
    /// No canary was found, and no pattern either when patterns are fatal.
    pub passed: bool,
    /// `off`, `warn` or `fail`: what a pattern found does to the verdict.
    pub patterns: String,
    /// The canary kinds the requests carried (`token`, `account`, ...); empty when they carried
    /// none, and the canary search then had nothing to look for.
    pub canary_kinds: Vec<String>,
    /// What was searched.
    pub searched: Searched,
    /// Places where a canary was found.
    pub canaries_found: u64,
    /// Places where a pattern matched (warnings unless `patterns` is `fail`).
    pub patterns_found: u64,
    /// The first finds, canaries first.
    pub findings: Vec<PiiFinding>,
    /// Sources that could not be searched, and why (an unreadable log, no traces fetched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_searched: Vec<String>,
}

/// Counts of what the search read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Searched {
    /// Traces fetched by the trace verification.
    pub traces: u64,
    /// Their spans (attributes, events, links, status messages and resources).
    pub spans: u64,
    /// Log files of the managed services.
    pub log_files: u64,
    /// Lines of those files.
    pub log_lines: u64,
    /// Metric series scraped after the load (their label values).
    pub series: u64,
}

/// One find.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PiiFinding {
    /// A canary of this run (always a failure), or a generic pattern.
    pub canary: bool,
    /// `email`, `account`, `card`, `token`, `phone`, `bearer`, `credential_header`, or
    /// `canary_tag` for a canary's tag found without the rest of it.
    pub kind: String,
    /// Where: `trace <id> span "<name>" (<service>) attribute <key>`, `<file>:<line>`, or
    /// `series <name>{...} label <label>`.
    pub place: String,
    /// What was found, redacted for secret kinds (kind, first and last characters).
    pub value: String,
}

impl PiiReport {
    /// One line for every printer: the verdict, what was searched and what was found.
    pub fn headline(&self) -> String {
        let s = &self.searched;
        let canaries = if self.canary_kinds.is_empty() {
            "no canaries sent".to_owned()
        } else {
            format!("canaries sent: {}", self.canary_kinds.join(", "))
        };
        format!(
            "{}: searched {} spans of {} traces, {} lines of {} log files, {} series; {canaries}; \
             {} canary find(s), {} pattern find(s) ({})",
            if self.passed {
                "clean"
            } else {
                "FOUND personal data"
            },
            s.spans,
            s.traces,
            s.log_lines,
            s.log_files,
            s.series,
            self.canaries_found,
            self.patterns_found,
            if self.patterns == "fail" {
                "fatal"
            } else {
                "warnings"
            },
        )
    }
}
