//! The comparison as people read it: every number formatted once, for the text on stdout and the
//! HTML report alike.

use serde::Serialize;

use super::{
    Comparison, Conclusion, Decision, ErrorRow, KindComparison, PercentileRow, Spectrum,
    SpectrumPoint, WanderSource,
};
use crate::format::{duration_terse, percent_fixed, signed_percent_fixed};
use crate::report::{self, ReportError};

/// What the text and the HTML show.
#[derive(Debug, Serialize)]
pub(super) struct View<'a> {
    pub title: String,
    pub verdict: Verdict,
    pub base: RunView<'a>,
    pub new: RunView<'a>,
    /// `+5.0%`: the tolerance, and its mirror for improvements.
    pub regression_bound: String,
    pub improvement_bound: String,
    /// Where the intervals come from.
    pub noise: String,
    pub noise_note: Option<&'a str>,
    pub warnings: &'a [String],
    /// `0.1pp`: the smallest increase in an error rate that can be a regression.
    pub error_floor: String,
    pub kinds: Vec<KindView<'a>>,
    pub only_in_base: &'a [String],
    pub only_in_new: &'a [String],
}

#[derive(Debug, Serialize)]
pub(super) struct Verdict {
    /// `fail`, `inconclusive` or `pass`: the CSS class.
    pub class: &'static str,
    pub word: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub(super) struct RunView<'a> {
    pub path: &'a str,
    pub scenario: &'a str,
    pub status: &'a str,
    pub rate: String,
}

#[derive(Debug, Serialize)]
pub(super) struct KindView<'a> {
    pub name: &'a str,
    pub requests: String,
    pub rows: Vec<RowView>,
    /// Each run's decoded percentile spectrum, for a chart.
    pub spectrum: &'a Spectrum,
    /// Both spectra on one chart (inline SVG), when either run completed a request.
    pub chart: Option<String>,
}

/// One line of a kind's table.
#[derive(Debug, Serialize)]
pub(super) struct RowView {
    pub label: String,
    pub base: String,
    pub new: String,
    pub change: String,
    pub interval: String,
    /// The decision's word and CSS class.
    pub decision: &'static str,
    pub class: &'static str,
    /// What qualifies the decision: the smallest detectable change, the data needed.
    pub note: String,
}

impl<'a> View<'a> {
    pub(super) fn of(comparison: &'a Comparison) -> View<'a> {
        let verdict = match &comparison.conclusion {
            Conclusion::Regression => Verdict {
                class: "fail",
                word: "REGRESSION",
                detail: comparison.regressions.join(", "),
            },
            Conclusion::CouldNotJudge { reason } => Verdict {
                class: "inconclusive",
                word: "COULD NOT JUDGE",
                detail: reason.clone(),
            },
            Conclusion::NoRegression => Verdict::passed(comparison),
        };
        View {
            title: format!(
                "Comparison: {} against {}",
                comparison.new.scenario, comparison.base.scenario
            ),
            verdict,
            base: RunView::of(&comparison.base),
            new: RunView::of(&comparison.new),
            regression_bound: signed_percent_fixed(comparison.max_regression),
            improvement_bound: signed_percent_fixed(comparison.min_improvement),
            noise: noise(comparison),
            noise_note: comparison.wander.note.as_deref(),
            warnings: &comparison.warnings,
            error_floor: format!("{:.1}pp", super::ERROR_RATE_FLOOR * 100.0),
            kinds: comparison.kinds.iter().map(KindView::of).collect(),
            only_in_base: &comparison.only_in_base,
            only_in_new: &comparison.only_in_new,
        }
    }
}

impl Verdict {
    fn passed(comparison: &Comparison) -> Verdict {
        let rows = comparison.kinds.iter().flat_map(|k| {
            k.percentiles
                .iter()
                .map(|row| row.decision)
                .chain([k.errors.decision])
        });
        let total = rows.clone().count();
        let judged = rows.filter(|d| *d != Decision::NotEnoughData).count();
        let kinds = comparison.kinds.len();
        Verdict {
            class: "pass",
            word: "NO REGRESSION",
            detail: format!(
                "{judged} of {total} rows had enough data to judge, over {kinds} kind{}",
                if kinds == 1 { "" } else { "s" }
            ),
        }
    }
}

impl<'a> RunView<'a> {
    fn of(run: &'a super::RunInfo) -> RunView<'a> {
        RunView {
            path: &run.path,
            scenario: &run.scenario,
            status: &run.status,
            rate: format!(
                "{:.1}/s target, {:.1}/s achieved, {} sent",
                run.target_rate, run.achieved_rate, run.sent
            ),
        }
    }
}

impl<'a> KindView<'a> {
    fn of(kind: &'a KindComparison) -> KindView<'a> {
        let mut rows: Vec<RowView> = kind.percentiles.iter().map(RowView::latency).collect();
        rows.push(RowView::errors(&kind.errors));
        KindView {
            name: &kind.name,
            requests: format!(
                "{} and {} requests completed",
                kind.base_completed, kind.new_completed
            ),
            rows,
            spectrum: &kind.spectrum,
            chart: spectrum_chart(kind),
        }
    }
}

/// Both runs' latency by percentile on one log "percentile" axis: where the curves part is where
/// the runs differ, across the whole distribution rather than at four percentiles.
fn spectrum_chart(kind: &KindComparison) -> Option<String> {
    use crate::report::chart::{self, Axis, Chart, Color};

    let top = kind
        .spectrum
        .base
        .iter()
        .chain(&kind.spectrum.new)
        .map(|p| p.us)
        .max()?;
    let decades =
        crate::report::page::latency::spectrum_decades(kind.base_completed.max(kind.new_completed));
    let points = |run: &[SpectrumPoint]| -> Vec<Option<(f64, f64)>> {
        run.iter()
            .filter(|p| p.quantile < 1.0)
            .map(|p| Some((chart::percentile_position(p.quantile), p.us as f64 / 1e3)))
            .collect()
    };
    let mut chart = Chart::new(
        format!("Latency by percentile, {}: base and new", kind.name),
        Axis::percentile("percentile", decades),
        Axis::linear(
            "latency (ms)",
            0.0,
            (top as f64 / 1e3) * crate::report::page::HEADROOM,
        ),
    );
    chart.line("base", Color::S2, &points(&kind.spectrum.base));
    chart.line("new", Color::S1, &points(&kind.spectrum.new));
    Some(chart.render())
}

impl RowView {
    fn latency(row: &PercentileRow) -> RowView {
        let value = |us: Option<u64>| us.map_or_else(|| "-".to_owned(), duration_terse);
        let note = match (row.smallest_detectable, row.needed) {
            (Some(detectable), _) => {
                format!(
                    "could detect a slowdown of {}",
                    signed_percent_fixed(detectable)
                )
            }
            (None, Some(needed)) => format!("needs {needed} requests in each run"),
            (None, None) => String::new(),
        };
        RowView {
            label: row.percentile.label().to_owned(),
            base: value(row.base_us),
            new: value(row.new_us),
            change: row
                .change
                .map_or_else(|| "-".to_owned(), |c| signed_percent_fixed(c.estimate)),
            interval: row.change.map_or_else(
                || "-".to_owned(),
                |c| {
                    format!(
                        "[{}, {}]",
                        signed_percent_fixed(c.low),
                        signed_percent_fixed(c.high)
                    )
                },
            ),
            decision: row.decision.word(),
            class: class(row.decision),
            note,
        }
    }

    fn errors(row: &ErrorRow) -> RowView {
        let rate = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), percent_fixed);
        let change = match (row.base_rate(), row.new_rate()) {
            (Some(before), Some(after)) => {
                format!("{:+.2}pp", (after - before) * 100.0)
            }
            _ => "-".to_owned(),
        };
        RowView {
            label: "errors".to_owned(),
            base: rate(row.base_rate()),
            new: rate(row.new_rate()),
            change,
            interval: row.z.map_or_else(String::new, |z| format!("z = {z:.2}")),
            decision: row.decision.word(),
            class: class(row.decision),
            note: format!(
                "{} of {} and {} of {}",
                row.base_errors, row.base_sent, row.new_errors, row.new_sent
            ),
        }
    }
}

fn class(decision: Decision) -> &'static str {
    match decision {
        Decision::Regression => "regression",
        Decision::Improvement => "improvement",
        Decision::Unchanged => "unchanged",
        Decision::WithinNoise => "noise",
        Decision::NotEnoughData => "nodata",
    }
}

fn noise(comparison: &Comparison) -> String {
    let wander = &comparison.wander;
    let measured = wander.p50.is_some();
    match wander.source {
        WanderSource::Trials { base, new } => format!(
            "sampling error of each percentile, widened by the spread of the experiments' \
             treatment trials ({base} and {new})"
        ),
        WanderSource::Timeline {
            base_seconds,
            new_seconds,
        } if measured => format!(
            "sampling error of each percentile, widened by how the runs wandered second to \
             second ({base_seconds} s and {new_seconds} s of timeline)"
        ),
        WanderSource::Timeline { .. } => "sampling error of each percentile only".to_owned(),
    }
}

/// The self-contained HTML report.
pub fn html(comparison: &Comparison) -> Result<String, ReportError> {
    report::render("compare.html", View::of(comparison))
}
