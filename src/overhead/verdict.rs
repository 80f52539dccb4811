//! What the experiment's statistics mean for it: an effect (the estimate of the per-pair
//! difference between the arms, with the pairs behind it) and the verdict its interval gives
//! against a claim's bound. Both types are `result.json`'s, in [`crate::result::overhead`]. The statistics themselves are
//! [`stats::paired`]'s.

use stats::paired;

use crate::result::overhead::{Effect, Verdict};

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

#[cfg(test)]
mod tests {
    use super::*;
    use stats::Estimate;

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
