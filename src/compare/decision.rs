//! What a change with its interval means against the tolerance: regression, improvement,
//! unchanged, or within noise.

use std::str::FromStr;

use serde::Serialize;
use stats::Estimate;

/// A relative change, new / base − 1, with its 95% interval.
pub type Change = Estimate;

/// A shift of log values as a relative change.
pub(super) fn from_log(shift: Estimate) -> Change {
    shift.map(f64::exp_m1)
}

/// `change` with each side of its interval at least as wide, on a log scale, as the same side of
/// `noise`'s: the estimate stays, the uncertainty is the larger of the two.
pub(super) fn widened(change: Change, noise: Change) -> Change {
    from_log(change.map(f64::ln_1p).widened_by(noise.map(f64::ln_1p)))
}

/// The largest slowdown tolerated, as a ratio (0.05 for 5%). An improvement is its mirror image,
/// a speed-up by the same factor (−4.76% for 5%), so that the decision reads the same whichever
/// run is called the base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance(f64);

impl Tolerance {
    /// Ratios from here up are refused: a tolerance of ×11 tolerates anything.
    pub const LIMIT: f64 = 10.0;

    pub(crate) fn ratio(self) -> f64 {
        self.0
    }

    /// The change below which a speed-up counts as an improvement (negative).
    pub fn improvement(self) -> f64 {
        1.0 / (1.0 + self.0) - 1.0
    }
}

/// Why a `--max-regression` value was refused; each carries the text as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToleranceError {
    /// Neither a percentage nor a finite number.
    #[error("expected a percentage such as 5% or a ratio such as 0.05, got {0:?}")]
    Syntax(String),
    /// A bare number of 1 or more, ambiguous between a ratio and a forgotten `%`.
    #[error("{0:?} is a ratio of 1 or more; write a percentage (e.g. 150%) to mean that much")]
    BareNumber(String),
    /// Not above 0% or not below 1000% (`Tolerance::LIMIT`).
    #[error("expected more than 0% and less than 1000%, got {0:?}")]
    Range(String),
}

impl FromStr for Tolerance {
    type Err = ToleranceError;

    /// `5%` or `0.05`. A bare number of 1 or more is refused: `5` more likely means 5% than 500%.
    fn from_str(text: &str) -> Result<Tolerance, ToleranceError> {
        let trimmed = text.trim();
        let (number, scale) = match trimmed.strip_suffix('%') {
            Some(percent) => (percent.trim(), 100.0),
            None => (trimmed, 1.0),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| ToleranceError::Syntax(text.to_owned()))?;
        if !value.is_finite() {
            return Err(ToleranceError::Syntax(text.to_owned()));
        }
        if scale == 1.0 && value >= 1.0 {
            return Err(ToleranceError::BareNumber(text.to_owned()));
        }
        let ratio = value / scale;
        if ratio <= 0.0 || ratio >= Tolerance::LIMIT {
            return Err(ToleranceError::Range(text.to_owned()));
        }
        Ok(Tolerance(ratio))
    }
}

/// The verdict on one row of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The whole interval is above the tolerance: slower beyond doubt and beyond what is allowed.
    Regression,
    /// The whole interval is below the improvement bound.
    Improvement,
    /// The whole interval lies within the tolerance: any change is smaller than what is allowed.
    Unchanged,
    /// The interval reaches past the tolerance on at least one side but not entirely: these two
    /// runs cannot tell.
    WithinNoise,
    /// Too few requests for this percentile in one of the runs; never a regression.
    NotEnoughData,
}

impl Decision {
    pub(crate) fn judge(change: Change, tolerance: Tolerance) -> Decision {
        if change.low > tolerance.ratio() {
            Decision::Regression
        } else if change.high < tolerance.improvement() {
            Decision::Improvement
        } else if change.low >= tolerance.improvement() && change.high <= tolerance.ratio() {
            Decision::Unchanged
        } else {
            Decision::WithinNoise
        }
    }

    /// The word a report shows.
    pub fn word(self) -> &'static str {
        match self {
            Decision::Regression => "regression",
            Decision::Improvement => "improvement",
            Decision::Unchanged => "unchanged",
            Decision::WithinNoise => "within noise",
            Decision::NotEnoughData => "not enough data",
        }
    }
}

/// The smallest slowdown that this pair of runs would have called a regression: one whose interval,
/// as wide as this one on a log scale, would lie entirely above the tolerance.
pub fn smallest_detectable(change: Change, tolerance: Tolerance) -> f64 {
    (1.0 + tolerance.ratio()) * (1.0 + change.estimate) / (1.0 + change.low) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerance(text: &str) -> Tolerance {
        text.parse().expect("valid")
    }

    fn change(low: f64, high: f64) -> Change {
        Change {
            estimate: (low + high) / 2.0,
            low,
            high,
        }
    }

    #[test]
    fn tolerances_parse_as_percentages_or_ratios() {
        assert_eq!(tolerance("5%").ratio(), 0.05);
        assert_eq!(tolerance(" 12.5 % ").ratio(), 0.125);
        assert_eq!(tolerance("0.05").ratio(), 0.05);
        assert_eq!(tolerance("150%").ratio(), 1.5);
        assert!((tolerance("5%").improvement() - (1.0 / 1.05 - 1.0)).abs() < 1e-15);
        for (text, error) in [
            ("five", ToleranceError::Syntax("five".into())),
            ("", ToleranceError::Syntax(String::new())),
            ("%", ToleranceError::Syntax("%".into())),
            ("NaN", ToleranceError::Syntax("NaN".into())),
            ("inf%", ToleranceError::Syntax("inf%".into())),
            ("5", ToleranceError::BareNumber("5".into())),
            ("1", ToleranceError::BareNumber("1".into())),
            ("0", ToleranceError::Range("0".into())),
            ("0%", ToleranceError::Range("0%".into())),
            ("-5%", ToleranceError::Range("-5%".into())),
            ("1000%", ToleranceError::Range("1000%".into())),
        ] {
            assert_eq!(text.parse::<Tolerance>(), Err(error), "{text:?}");
        }
        assert_eq!(
            ToleranceError::BareNumber("5".into()).to_string(),
            "\"5\" is a ratio of 1 or more; write a percentage (e.g. 150%) to mean that much"
        );
    }

    #[test]
    fn decisions_follow_the_interval_against_the_tolerance() {
        let t = tolerance("5%");
        assert_eq!(Decision::judge(change(0.06, 0.2), t), Decision::Regression);
        assert_eq!(
            Decision::judge(change(-0.2, -0.06), t),
            Decision::Improvement
        );
        assert_eq!(Decision::judge(change(-0.03, 0.04), t), Decision::Unchanged);
        assert_eq!(
            Decision::judge(change(-0.03, 0.08), t),
            Decision::WithinNoise
        );
        assert_eq!(
            Decision::judge(change(0.02, 0.08), t),
            Decision::WithinNoise
        );
        assert_eq!(Decision::judge(change(-0.5, 0.5), t), Decision::WithinNoise);
        // Mirror images: −4.76% is the improvement bound for 5%.
        assert_eq!(
            Decision::judge(change(-0.2, -0.048), t),
            Decision::Improvement
        );
        assert_eq!(
            Decision::judge(change(-0.2, -0.047), t),
            Decision::WithinNoise
        );
        // A tolerance of 100% still allows improvements (twice as fast).
        let loose = tolerance("100%");
        assert_eq!(
            Decision::judge(change(-0.9, -0.6), loose),
            Decision::Improvement
        );
    }

    #[test]
    fn widening_keeps_the_estimate_and_takes_the_wider_side() {
        let own = Change {
            estimate: 0.10,
            low: 0.05,
            high: 0.15,
        };
        let noise = Change {
            estimate: 0.0,
            low: -0.20,
            high: 0.01,
        };
        let wide = widened(own, noise);
        assert!((wide.estimate - 0.10).abs() < 1e-12);
        // Low side from the noise: 1.1 × 0.8 − 1; high side its own.
        assert!((wide.low - (1.1 * 0.8 - 1.0)).abs() < 1e-12, "{wide:?}");
        assert!((wide.high - 0.15).abs() < 1e-12, "{wide:?}");
        // Narrower noise changes nothing.
        let tight = Change {
            estimate: 0.3,
            low: 0.29,
            high: 0.31,
        };
        let same = widened(own, tight);
        assert!((same.low - own.low).abs() < 1e-12 && (same.high - own.high).abs() < 1e-12);
    }

    #[test]
    fn the_smallest_detectable_change_clears_the_tolerance_by_the_interval() {
        let t = tolerance("5%");
        let c = Change {
            estimate: 0.0,
            low: -0.10,
            high: 0.11,
        };
        let detectable = smallest_detectable(c, t);
        // A change of that size, with the same interval, would just be judged a regression.
        let shifted = Change {
            estimate: detectable,
            low: (1.0 + detectable) * 0.9 - 1.0,
            high: (1.0 + detectable) * 1.11 - 1.0,
        };
        assert!((shifted.low - 0.05).abs() < 1e-12, "{shifted:?}");
        assert!(detectable > 0.16 && detectable < 0.17, "{detectable}");
    }
}
