//! What the experiment's statistics mean for it: an effect as `result.json` records it (the
//! estimate of the per-pair difference between the arms with the pairs behind it), and the
//! verdict its interval gives against a claim's bound. The statistics themselves are
//! [`stats::paired`]'s.

use std::ops::Deref;

use serde::{Deserialize, Serialize};
use stats::{Estimate, paired};

/// A difference between the arms, with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The Hodges-Lehmann estimate and its 95% interval; flattened, so that `result.json` has
    /// `estimate`, `low` and `high` beside the fields below.
    #[serde(flatten)]
    pub interval: Estimate,
    /// Half the interval's width: an effect smaller than this would have left zero inside the
    /// interval, so the run could not have told it from no effect at all. Recorded for readers of
    /// `result.json`.
    pub resolution: f64,
    /// Pairs the estimate is made from.
    pub pairs: usize,
}

impl Effect {
    /// The estimate and interval of the centre of `differences`, one per pair; `None` with fewer
    /// than [`paired::MIN_PAIRS`] finite ones.
    pub fn of(differences: &[f64]) -> Option<Effect> {
        let interval = paired::centre(differences)?;
        Some(Effect {
            interval,
            resolution: interval.half_width(),
            pairs: differences.iter().filter(|d| d.is_finite()).count(),
        })
    }
}

/// An effect reads as its estimate and interval (`effect.low`, `effect.contains(0.0)`): tables,
/// charts and verdicts want nothing else from it.
impl Deref for Effect {
    type Target = Estimate;

    fn deref(&self) -> &Estimate {
        &self.interval
    }
}

/// What the interval says about a claim that the effect stays below a bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The whole interval is below the bound: the claim holds.
    Pass,
    /// The whole interval is above the bound: the claim is false.
    Fail,
    /// The interval straddles the bound (or nothing could be estimated): more or longer trials
    /// are needed to tell.
    #[default]
    Inconclusive,
}

impl Verdict {
    /// A claim holds only when the whole interval says so: the estimate alone would pass a run
    /// too short to tell.
    pub fn judge(effect: Option<&Effect>, bound: f64) -> Verdict {
        match effect {
            Some(e) if e.high < bound => Verdict::Pass,
            Some(e) if e.low > bound => Verdict::Fail,
            _ => Verdict::Inconclusive,
        }
    }

    /// The verdict over several judgements (a sweep): any failure fails the claim, and it passes
    /// only where every one passes.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut all = Verdict::Pass;
        for verdict in verdicts {
            match verdict {
                Verdict::Fail => return Verdict::Fail,
                Verdict::Inconclusive => all = Verdict::Inconclusive,
                Verdict::Pass => {}
            }
        }
        all
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_record_their_resolution_and_finite_pairs() {
        let e = Effect::of(&[0.03, 0.01, 0.02, 0.05, 0.04, 0.06]).expect("six pairs");
        assert!((e.estimate - 0.035).abs() < 1e-12);
        assert_eq!((e.low, e.high), (0.01, 0.06));
        assert!((e.resolution - 0.025).abs() < 1e-12);
        assert_eq!(e.pairs, 6);
        assert_eq!(Effect::of(&[0.1, 0.2, 0.3, 0.4, 0.5, f64::NAN]), None);
        let with_gap = Effect::of(&[0.03, 0.01, f64::NAN, 0.02, 0.05, 0.04, 0.06]);
        assert_eq!(with_gap.map(|e| e.pairs), Some(6));
    }

    /// `result.json` records an effect as these five fields, in this order.
    #[test]
    fn effects_keep_their_stored_shape() {
        let e = Effect {
            interval: Estimate {
                estimate: 0.5,
                low: 0.25,
                high: 1.0,
            },
            resolution: 0.375,
            pairs: 8,
        };
        let json = serde_json::to_string(&e).expect("serialises");
        assert_eq!(
            json,
            r#"{"estimate":0.5,"low":0.25,"high":1.0,"resolution":0.375,"pairs":8}"#
        );
        assert_eq!(serde_json::from_str::<Effect>(&json).ok(), Some(e));
        // Whole numbers as older results may hold them.
        let whole = r#"{"estimate":1,"low":0,"high":2,"resolution":1,"pairs":6}"#;
        let read: Effect = serde_json::from_str(whole).expect("deserialises");
        assert_eq!((read.low, read.high, read.pairs), (0.0, 2.0, 6));
    }

    #[test]
    fn verdicts_follow_the_interval_against_the_bound() {
        let e = |low, high| Effect {
            interval: Estimate {
                estimate: (low + high) / 2.0,
                low,
                high,
            },
            resolution: (high - low) / 2.0,
            pairs: 8,
        };
        assert_eq!(Verdict::judge(Some(&e(-0.004, 0.008)), 0.01), Verdict::Pass);
        assert_eq!(Verdict::judge(Some(&e(0.02, 0.05)), 0.01), Verdict::Fail);
        assert_eq!(
            Verdict::judge(Some(&e(0.005, 0.02)), 0.01),
            Verdict::Inconclusive
        );
        assert_eq!(Verdict::judge(None, 0.01), Verdict::Inconclusive);
        use Verdict::*;
        assert_eq!(Verdict::combine([Pass, Pass]), Pass);
        assert_eq!(Verdict::combine([Pass, Inconclusive]), Inconclusive);
        assert_eq!(Verdict::combine([Inconclusive, Fail, Pass]), Fail);
    }
}
