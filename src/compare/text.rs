//! The comparison as plain text on stdout: the table a CI log shows.

use std::fmt::Write as _;

use super::Comparison;
use super::view::{RowView, View};

/// The comparison as `harness compare` prints it: both runs, the bounds, the noise, and a table
/// per request kind with each row's change, interval and decision.
pub fn render(comparison: &Comparison) -> String {
    let view = View::of(comparison);
    let mut out = String::new();
    for (which, run) in [("base", &view.base), ("new ", &view.new)] {
        let _ = writeln!(
            out,
            "{which}: {} (scenario {}, {}; {})",
            run.path, run.scenario, run.status, run.rate
        );
    }
    let _ = writeln!(
        out,
        "regression: the whole 95% interval of a change above {}; improvement: below {}",
        view.regression_bound, view.improvement_bound
    );
    let _ = writeln!(out, "noise: {}", view.noise);
    if let Some(note) = view.noise_note {
        let _ = writeln!(out, "note: {note}");
    }
    for warning in view.warnings {
        let _ = writeln!(out, "WARNING: {warning}");
    }
    for kind in &view.kinds {
        let _ = writeln!(out, "\n{}: {}", kind.name, kind.requests);
        let header = RowView {
            label: "".to_owned(),
            base: "base".to_owned(),
            new: "new".to_owned(),
            change: "change".to_owned(),
            interval: "95% interval".to_owned(),
            decision: "decision",
            class: "",
            note: String::new(),
        };
        for row in std::iter::once(&header).chain(&kind.rows) {
            let line = format!(
                "  {:<8} {:>10} {:>10} {:>9}  {:<22} {}",
                row.label, row.base, row.new, row.change, row.interval, row.decision
            );
            let _ = if row.note.is_empty() {
                writeln!(out, "{}", line.trim_end())
            } else {
                writeln!(out, "{line} ({})", row.note)
            };
        }
    }
    if !view.only_in_base.is_empty() {
        let _ = writeln!(
            out,
            "\nonly in base, not compared: {}",
            view.only_in_base.join(", ")
        );
    }
    if !view.only_in_new.is_empty() {
        let _ = writeln!(
            out,
            "{}only in new, not compared: {}",
            if view.only_in_base.is_empty() {
                "\n"
            } else {
                ""
            },
            view.only_in_new.join(", ")
        );
    }
    let _ = writeln!(out, "\n{}: {}", view.verdict.word, view.verdict.detail);
    out
}
