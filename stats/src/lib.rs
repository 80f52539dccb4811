//! Rank-based estimates with distribution-free 95% intervals, and nothing about what is measured:
//! the centre of paired differences ([`paired`]), the shift between two samples ([`shift`]), a
//! quantile of a recorded histogram ([`quantile`]) and the slope of a series over time
//! ([`trend`]) all answer with one [`Estimate`], so that the code that judges them reads every
//! interval the same way.

#![warn(missing_docs)]

pub mod paired;
pub mod quantile;
pub mod shift;
pub mod trend;

use serde::{Deserialize, Serialize};

/// Two-sided confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// The two-sided standard normal quantile of a [`CONFIDENCE`] interval: where an exact
/// distribution is out of reach (long samples, histogram ranks, proportions), its normal
/// approximation uses this.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Tail probability on each side of a [`CONFIDENCE`] interval.
const TAIL: f64 = (1.0 - CONFIDENCE) / 2.0;

/// A point estimate with its [`CONFIDENCE`] interval, `low ≤ estimate ≤ high`.
///
/// Generic because a histogram's quantile is a recorded value (whole microseconds, widened to
/// whole buckets) and stays one until it is compared; everything computed is `f64`, the default.
/// The field names are what serialised results and reports read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate<T = f64> {
    /// The point estimate.
    pub estimate: T,
    /// The lower end of the interval.
    pub low: T,
    /// The upper end of the interval.
    pub high: T,
}

impl<T: PartialOrd> Estimate<T> {
    /// Whether `value` lies inside the interval (ends included): a value the data cannot rule out.
    pub fn contains(&self, value: T) -> bool {
        self.low <= value && value <= self.high
    }
}

impl<T> Estimate<T> {
    /// The same estimate on another scale (a log shift as a ratio, µs as a fraction). `f` must be
    /// increasing, or the ends would swap.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Estimate<U> {
        Estimate {
            estimate: f(self.estimate),
            low: f(self.low),
            high: f(self.high),
        }
    }
}

impl Estimate {
    /// Half the interval's width: an effect smaller than this would have left zero inside the
    /// interval, so it could not have been told from no effect at all.
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }

    /// This estimate with each side of its interval at least as far from the estimate as the same
    /// side of `other`'s: the estimate stays, the uncertainty is the larger of two sources.
    pub fn widened_by(self, other: Estimate) -> Estimate {
        Estimate {
            estimate: self.estimate,
            low: self.estimate - (self.estimate - self.low).max(other.estimate - other.low),
            high: self.estimate + (self.high - self.estimate).max(other.high - other.estimate),
        }
    }
}

/// The median of the finite values; `None` when there are none. Non-finite values (a ratio over
/// a zero, a missing reading) are left out rather than allowed to decide the order.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    sorted_median(&v)
}

/// The median of values already sorted; `None` when there are none.
pub(crate) fn sorted_median(v: &[f64]) -> Option<f64> {
    let m = v.len();
    (m > 0).then(|| {
        if m % 2 == 1 {
            v[m / 2]
        } else {
            (v[m / 2 - 1] + v[m / 2]) / 2.0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median([f64::NAN]), None);
    }

    #[test]
    fn intervals_contain_their_ends_map_and_widen() {
        let e = Estimate {
            estimate: 0.1,
            low: 0.05,
            high: 0.2,
        };
        assert!(e.contains(0.05) && e.contains(0.2) && !e.contains(0.21));
        assert!((e.half_width() - 0.075).abs() < 1e-12);
        assert_eq!(
            e.map(|x| x * 10.0),
            Estimate {
                estimate: 1.0,
                low: 0.5,
                high: 2.0
            }
        );
        let other = Estimate {
            estimate: 0.0,
            low: -0.1,
            high: 0.01,
        };
        let wide = e.widened_by(other);
        assert_eq!(wide.estimate, 0.1);
        assert!(
            (wide.low - 0.0).abs() < 1e-12 && wide.high == 0.2,
            "{wide:?}"
        );
    }

    /// Results and reports read these three names: they are part of the stored format.
    #[test]
    fn serialises_as_estimate_low_high() {
        let e = Estimate {
            estimate: 2,
            low: 1,
            high: 3,
        };
        let json = serde_json::to_string(&e).expect("serialises");
        assert_eq!(json, r#"{"estimate":2,"low":1,"high":3}"#);
        assert_eq!(serde_json::from_str::<Estimate<u64>>(&json).ok(), Some(e));
    }
}
