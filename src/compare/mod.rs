//! `harness compare`: a run's result against a stored baseline's, per request kind and percentile,
//! with a decision that does not call a change smaller than the noise a regression.
//!
//! Each percentile's change carries a 95% interval made of two parts: the sampling error of each
//! run's percentile (order statistics of its stored histogram, [`quantile`]) and how far each run
//! wandered while it ran (its trials or its timeline, [`Wander`]); the wider of the two, side by
//! side, is the interval judged against the tolerance ([`Decision`]). Error rates are compared with
//! a two-proportion test. Everything here is a pure function of the two results; the command line
//! only loads, prints and writes.

mod decision;
mod input;
mod text;
mod view;
mod wander;

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

pub use decision::{Change, Decision, Tolerance, ToleranceError, smallest_detectable};
#[cfg(fuzzing)]
pub(crate) use input::from_text;
pub use input::{LoadError, StoredRun, load};
pub use text::render as text;
pub use view::html;
pub(crate) use wander::Source as WanderSource;
pub use wander::Wander;

use crate::result::{KindResult, RunResult, RunStatus};
use decision::widened;
use stats::{Z_95, quantile, shift};

/// An increase in a kind's error rate smaller than this (0.1 percentage points) is never a
/// regression, however significant: a few more failures in a very long run are not worth a red
/// build.
pub const ERROR_RATE_FLOOR: f64 = 0.001;

/// A run that achieved less than this share of its target rate gets a warning, as in its summary.
const RATE_HELD: f64 = 0.99;

/// The percentiles compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Percentile {
    #[serde(rename = "p50")]
    P50,
    #[serde(rename = "p90")]
    P90,
    #[serde(rename = "p99")]
    P99,
    #[serde(rename = "p99.9")]
    P999,
}

impl Percentile {
    pub(crate) const ALL: [Percentile; 4] = [
        Percentile::P50,
        Percentile::P90,
        Percentile::P99,
        Percentile::P999,
    ];

    pub(crate) fn quantile(self) -> f64 {
        match self {
            Percentile::P50 => 0.5,
            Percentile::P90 => 0.9,
            Percentile::P99 => 0.99,
            Percentile::P999 => 0.999,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P99 => "p99",
            Percentile::P999 => "p99.9",
        }
    }
}

/// The whole comparison, as `--json` writes it and the reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub(crate) base: RunInfo,
    pub(crate) new: RunInfo,
    /// The largest slowdown tolerated, as a ratio.
    pub max_regression: f64,
    /// The change below which a speed-up is an improvement (negative).
    pub min_improvement: f64,
    pub(crate) wander: Wander,
    /// Things that make the comparison less like for like; it is made all the same.
    pub warnings: Vec<String>,
    /// Kinds present in both runs, in the new run's order.
    pub kinds: Vec<KindComparison>,
    /// Kinds present in one run only: listed, not compared.
    pub only_in_base: Vec<String>,
    pub(crate) only_in_new: Vec<String>,
    /// `kind percentile` (or `kind errors`) of every row that regressed.
    pub regressions: Vec<String>,
    /// The verdict, which the exit code follows.
    pub conclusion: Conclusion,
}

impl Comparison {
    /// Whether any row regressed: the exit code of `harness compare` is 1 exactly when it did.
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }
}

/// What the comparison concludes: a regression if any row regressed; otherwise, if no latency
/// percentile of any kind had the requests to be judged, nothing, so that a run that measured
/// nothing cannot pass as one that did not regress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Conclusion {
    /// At least one row regressed beyond the noise (exit 1).
    Regression,
    /// Nothing regressed, but no latency percentile had the requests to be judged (exit 3).
    CouldNotJudge {
        /// Why, as the report prints it.
        reason: String,
    },
    /// Nothing regressed, and at least one percentile was judged (exit 0).
    NoRegression,
}

/// What a report says about each run.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub(crate) path: String,
    pub(crate) scenario: String,
    /// `completed`, or what stopped it.
    pub status: String,
    pub(crate) started_at_unix_ms: u64,
    pub(crate) target_rate: f64,
    pub(crate) achieved_rate: f64,
    pub(crate) sent: u64,
}

/// One request kind present in both runs: its percentile rows, error row and spectra.
#[derive(Debug, Clone, Serialize)]
pub struct KindComparison {
    pub(crate) name: String,
    /// Completed requests: the latency histograms' counts.
    pub base_completed: u64,
    pub(crate) new_completed: u64,
    pub(crate) percentiles: Vec<PercentileRow>,
    pub(crate) errors: ErrorRow,
    /// Each run's percentile spectrum (HdrHistogram's, by halving distances to 100%), for plots.
    pub spectrum: Spectrum,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PercentileRow {
    pub(crate) percentile: Percentile,
    /// As each run reported it, µs; `None` when it completed nothing.
    pub base_us: Option<u64>,
    pub(crate) new_us: Option<u64>,
    /// The change with its interval from sampling error alone.
    pub sampling: Option<Change>,
    /// The change judged: the sampling interval widened by the runs' wander.
    pub change: Option<Change>,
    pub(crate) decision: Decision,
    /// With `within noise`: the smallest slowdown these runs would have called a regression.
    pub smallest_detectable: Option<f64>,
    /// With `not enough data`: the requests each run needs for this percentile.
    pub needed: Option<u64>,
}

/// A kind's error rate: unexpected outcomes and requests never answered, over requests sent.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRow {
    pub(crate) base_errors: u64,
    pub(crate) base_sent: u64,
    pub(crate) new_errors: u64,
    pub(crate) new_sent: u64,
    /// The two-proportion z statistic, positive when the new rate is higher; `None` when there is
    /// nothing to test (no errors in either run, or nothing sent).
    pub z: Option<f64>,
    pub(crate) decision: Decision,
}

impl ErrorRow {
    pub(crate) fn base_rate(&self) -> Option<f64> {
        (self.base_sent > 0).then(|| self.base_errors as f64 / self.base_sent as f64)
    }

    pub(crate) fn new_rate(&self) -> Option<f64> {
        (self.new_sent > 0).then(|| self.new_errors as f64 / self.new_sent as f64)
    }
}

/// The latency spectra of a kind in both runs, for the report's percentile plot.
#[derive(Debug, Clone, Serialize)]
pub struct Spectrum {
    pub(crate) base: Vec<SpectrumPoint>,
    pub(crate) new: Vec<SpectrumPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct SpectrumPoint {
    pub(crate) quantile: f64,
    pub(crate) us: u64,
}

/// The two results share no request kind, so nothing can be compared (`harness compare` exits 2).
#[derive(Debug, thiserror::Error)]
#[error(
    "no request kind in common: {base} has {}, {new} has {}",
    list(base_kinds),
    list(new_kinds)
)]
pub struct NoCommonKind {
    pub(crate) base: String,
    pub(crate) base_kinds: Vec<String>,
    pub(crate) new: String,
    pub(crate) new_kinds: Vec<String>,
}

fn list(kinds: &[String]) -> String {
    if kinds.is_empty() {
        "none".to_owned()
    } else {
        kinds.join(", ")
    }
}

/// Where the HTML report goes unless told: beside the new result, which is what it describes.
pub fn default_html_path(new: &Path) -> PathBuf {
    new.parent()
        .unwrap_or_else(|| Path::new(""))
        .join("comparison.html")
}

/// Compares `new` against `base`.
pub fn compare(
    base: &StoredRun,
    new: &StoredRun,
    tolerance: Tolerance,
) -> Result<Comparison, NoCommonKind> {
    let names = |run: &StoredRun| -> Vec<String> {
        run.result.kinds.iter().map(|k| k.name.clone()).collect()
    };
    let wander = Wander::between(&base.result, &new.result);
    let kinds: Vec<KindComparison> = new
        .result
        .kinds
        .iter()
        .zip(&new.latency)
        .filter_map(|(new_kind, new_latency)| {
            let (base_kind, base_latency) = find(base, &new_kind.name)?;
            Some(compare_kind(
                (base_kind, base_latency),
                (new_kind, new_latency),
                &wander,
                tolerance,
            ))
        })
        .collect();
    if kinds.is_empty() {
        return Err(NoCommonKind {
            base: base.path.display().to_string(),
            base_kinds: names(base),
            new: new.path.display().to_string(),
            new_kinds: names(new),
        });
    }
    let only_in = |run: &StoredRun, other: &StoredRun| -> Vec<String> {
        names(run)
            .into_iter()
            .filter(|name| find(other, name).is_none())
            .collect()
    };
    let regressions = kinds
        .iter()
        .flat_map(|kind| {
            let latency = kind
                .percentiles
                .iter()
                .filter(|row| row.decision == Decision::Regression)
                .map(|row| format!("{} {}", kind.name, row.percentile.label()));
            let errors = (kind.errors.decision == Decision::Regression)
                .then(|| format!("{} errors", kind.name));
            latency.chain(errors)
        })
        .collect::<Vec<String>>();
    let conclusion = if !regressions.is_empty() {
        Conclusion::Regression
    } else if let Some(reason) = unjudged(&kinds) {
        Conclusion::CouldNotJudge { reason }
    } else {
        Conclusion::NoRegression
    };
    Ok(Comparison {
        base: RunInfo::of(base),
        new: RunInfo::of(new),
        max_regression: tolerance.ratio(),
        min_improvement: tolerance.improvement(),
        warnings: warnings(&base.result, &new.result),
        wander,
        only_in_base: only_in(base, new),
        only_in_new: only_in(new, base),
        kinds,
        regressions,
        conclusion,
    })
}

/// Why no latency percentile could be judged, naming the runs and kinds with too few requests;
/// `None` when at least one was.
fn unjudged(kinds: &[KindComparison]) -> Option<String> {
    let judged = kinds
        .iter()
        .flat_map(|kind| &kind.percentiles)
        .any(|row| row.decision != Decision::NotEnoughData);
    if judged {
        return None;
    }
    // The p50 needs the fewest; a kind without one had fewer than that in one run or both.
    let least = quantile::needed(Percentile::P50.quantile());
    let short = |which: &str, completed: fn(&KindComparison) -> u64| {
        let kinds: Vec<String> = kinds
            .iter()
            .filter(|kind| completed(kind) < least)
            .map(|kind| format!("{} {}", kind.name, completed(kind)))
            .collect();
        (!kinds.is_empty()).then(|| format!("the {which} run ({} completed)", kinds.join(", ")))
    };
    let runs: Vec<String> = [
        short("base", |kind| kind.base_completed),
        short("new", |kind| kind.new_completed),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(format!(
        "too few requests in {}: a percentile needs at least {least} completed requests of its \
         kind in each run",
        runs.join(" and ")
    ))
}

impl RunInfo {
    fn of(run: &StoredRun) -> RunInfo {
        let result = &run.result;
        RunInfo {
            path: run.path.display().to_string(),
            scenario: result.scenario.name.clone(),
            status: match &result.status {
                RunStatus::Completed => "completed".to_owned(),
                RunStatus::Interrupted { reason } => format!("interrupted: {reason}"),
                RunStatus::Failed { reason } => format!("failed: {reason}"),
            },
            started_at_unix_ms: result.started_at_unix_ms,
            target_rate: result.load.target_rate,
            achieved_rate: result.load.achieved_rate,
            sent: result.load.sent,
        }
    }
}

/// A kind of `run` by name, with its latency histogram.
fn find<'a>(run: &'a StoredRun, name: &str) -> Option<(&'a KindResult, &'a Histogram<u64>)> {
    run.result
        .kinds
        .iter()
        .position(|k| k.name == name)
        .map(|i| (&run.result.kinds[i], &run.latency[i]))
}

fn compare_kind(
    (base_kind, base_latency): (&KindResult, &Histogram<u64>),
    (new_kind, new_latency): (&KindResult, &Histogram<u64>),
    wander: &Wander,
    tolerance: Tolerance,
) -> KindComparison {
    let percentiles = Percentile::ALL
        .into_iter()
        .map(|p| compare_percentile(p, base_latency, new_latency, wander.of(p), tolerance))
        .collect();
    KindComparison {
        name: new_kind.name.clone(),
        base_completed: base_latency.len(),
        new_completed: new_latency.len(),
        percentiles,
        errors: compare_errors(base_kind, new_kind),
        spectrum: Spectrum {
            base: spectrum(base_latency),
            new: spectrum(new_latency),
        },
    }
}

fn compare_percentile(
    percentile: Percentile,
    base: &Histogram<u64>,
    new: &Histogram<u64>,
    wander: Option<Change>,
    tolerance: Tolerance,
) -> PercentileRow {
    let q = percentile.quantile();
    let reported = |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(q));
    let mut row = PercentileRow {
        percentile,
        base_us: reported(base),
        new_us: reported(new),
        sampling: None,
        change: None,
        decision: Decision::NotEnoughData,
        smallest_detectable: None,
        needed: None,
    };
    let (Some(b), Some(n)) = (quantile::of(base, q), quantile::of(new, q)) else {
        row.needed = Some(quantile::needed(q));
        return row;
    };
    // Conservative: the lowest the new value could be over the highest the base could be, and
    // the other way round.
    let sampling = Change {
        estimate: n.estimate as f64 / b.estimate as f64 - 1.0,
        low: n.low as f64 / b.high as f64 - 1.0,
        high: n.high as f64 / b.low as f64 - 1.0,
    };
    let change = match wander {
        Some(noise) => widened(sampling, noise),
        None => sampling,
    };
    row.sampling = Some(sampling);
    row.change = Some(change);
    row.decision = Decision::judge(change, tolerance);
    if row.decision == Decision::WithinNoise {
        row.smallest_detectable = Some(smallest_detectable(change, tolerance));
    }
    row
}

/// Unexpected outcomes plus requests never answered, as `harness run`'s `error_rate` counts them.
fn errors(kind: &KindResult) -> u64 {
    kind.unexpected
        .saturating_add(kind.sent.saturating_sub(kind.completed))
}

fn compare_errors(base: &KindResult, new: &KindResult) -> ErrorRow {
    let mut row = ErrorRow {
        base_errors: errors(base),
        base_sent: base.sent,
        new_errors: errors(new),
        new_sent: new.sent,
        z: shift::two_proportion_z(errors(base), base.sent, errors(new), new.sent),
        decision: Decision::NotEnoughData,
    };
    if let (Some(before), Some(after)) = (row.base_rate(), row.new_rate()) {
        let difference = after - before;
        row.decision = match row.z {
            Some(z) if z > Z_95 && difference > ERROR_RATE_FLOOR => Decision::Regression,
            Some(z) if z < -Z_95 && difference < -ERROR_RATE_FLOOR => Decision::Improvement,
            _ => Decision::Unchanged,
        };
    }
    row
}

fn spectrum(h: &Histogram<u64>) -> Vec<SpectrumPoint> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(1)
        .map(|v| SpectrumPoint {
            quantile: v.quantile_iterated_to(),
            us: v.value_iterated_to(),
        })
        .collect()
}

fn warnings(base: &RunResult, new: &RunResult) -> Vec<String> {
    let mut warnings = Vec::new();
    if base.scenario.name != new.scenario.name {
        warnings.push(format!(
            "the runs are of different scenarios ({} and {}): compared all the same",
            base.scenario.name, new.scenario.name
        ));
    }
    let (b, n) = (base.load.target_rate, new.load.target_rate);
    if (b - n).abs() > 1e-9 * b.abs().max(n.abs()) {
        warnings.push(format!(
            "the target rates differ ({b:.1}/s and {n:.1}/s): latencies at different loads are \
             not like for like"
        ));
    }
    for (which, result) in [("base", base), ("new", new)] {
        let load = &result.load;
        if load.sent > 1
            && load.target_rate > 0.0
            && load.achieved_rate < RATE_HELD * load.target_rate
        {
            warnings.push(format!(
                "the {which} run did not hold its target rate ({:.1}/s of {:.1}/s, {:.1}%): its \
                 latencies describe a lighter load",
                load.achieved_rate,
                load.target_rate,
                100.0 * load.achieved_rate / load.target_rate
            ));
        }
        match &result.status {
            RunStatus::Completed => {}
            RunStatus::Interrupted { reason } | RunStatus::Failed { reason } => {
                warnings.push(format!(
                    "the {which} run did not complete ({reason}): it measured only part of its load"
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
