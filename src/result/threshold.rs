//! The thresholds section of `result.json`: each threshold with what was measured against it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::format;

/// The unit a metric's bound and measurement are in; also written to `result.json` so a reader
/// knows what `measured` and `bound` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Unit {
    #[serde(rename = "us")]
    Micros,
    #[serde(rename = "ratio")]
    Ratio,
    #[serde(rename = "req/s")]
    PerSecond,
    /// 1 for true, 0 for false.
    #[serde(rename = "bool")]
    Bool,
    /// Memory growth.
    #[serde(rename = "B/s")]
    BytesPerSecond,
}

/// The outcome of one threshold, as reported and written to `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub(crate) expression: String,
    /// In `unit`; `None` when nothing was measured.
    pub measured: Option<f64>,
    /// In `unit`.
    pub bound: f64,
    pub(crate) unit: Unit,
    /// `None` when nothing was measured: cannot tell, never a silent pass.
    pub passed: Option<bool>,
}

impl Evaluation {
    /// Whether the threshold definitely passed; cannot-tell counts as a failure.
    pub fn is_pass(&self) -> bool {
        self.passed == Some(true)
    }

    /// The measurement for people (`43.2ms`, `2.35%`), or `no data`.
    pub fn measured_text(&self) -> String {
        match self.measured {
            Some(value) => match self.unit {
                Unit::Micros => format::duration_ascii(value),
                Unit::Ratio => format!("{}%", format::decimals(value * 100.0)),
                Unit::PerSecond => format::decimals(value),
                Unit::Bool => (if value == 1.0 { "true" } else { "false" }).to_owned(),
                Unit::BytesPerSecond => super::memory::growth_text(value),
            },
            None => "no data".to_owned(),
        }
    }
}

/// `p(99) < 50ms: 43.2ms ✓`, `error_rate < 1%: 2.35% ✗`, `p(99) < 50ms: no data ✗`.
impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.is_pass() { "✓" } else { "✗" };
        write!(f, "{}: {} {mark}", self.expression, self.measured_text())
    }
}
