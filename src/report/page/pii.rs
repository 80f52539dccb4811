//! The report's section on the search for personal data.

use serde::Serialize;

use crate::result::{PiiFinding, PiiReport};

#[derive(Debug, Serialize)]
pub(super) struct PiiView {
    passed: bool,
    headline: String,
    /// Whether a pattern find fails the check, or only warns.
    patterns: String,
    findings: Vec<PiiFinding>,
    not_searched: Vec<String>,
}

pub(super) fn pii(report: &PiiReport) -> PiiView {
    PiiView {
        passed: report.passed,
        headline: report.headline(),
        patterns: report.patterns.clone(),
        findings: report.findings.clone(),
        not_searched: report.not_searched.clone(),
    }
}
