//! The statistics of the experiment: a rank-based estimate of the per-pair difference between the
//! arms, its distribution-free 95% interval, and the verdict against a claim's bound.
//!
//! The estimator is Hodges-Lehmann's (the median of the Walsh averages of the pairs' differences)
//! with the interval that inverts Wilcoxon's signed-rank test, computed from the statistic's exact
//! distribution. It assumes only that the differences are symmetric about their centre, which
//! paired, interleaved trials make plausible, and it is not thrown by one disturbed trial the way a
//! mean is. Bootstrapping a handful of pairs, by contrast, gives intervals that are too narrow.

use serde::{Deserialize, Serialize};

/// Two-sided confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// Fewer pairs than this cannot give a 95% signed-rank interval: with five, even the widest
/// interval (the smallest to the largest Walsh average) covers only 1 − 2/2⁵ = 93.75%.
pub const MIN_PAIRS: usize = 6;

/// A difference between the arms, with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The Hodges-Lehmann estimate.
    pub estimate: f64,
    /// The 95% interval.
    pub low: f64,
    pub high: f64,
    /// Half the interval's width: an effect smaller than this would have left zero inside the
    /// interval, so the run could not have told it from no effect at all.
    pub resolution: f64,
    /// Pairs the estimate is made from.
    pub pairs: usize,
}

impl Effect {
    /// The estimate and interval of the centre of `differences`, one per pair; `None` with fewer
    /// than [`MIN_PAIRS`] finite ones.
    pub fn of(differences: &[f64]) -> Option<Effect> {
        let d: Vec<f64> = differences
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        let n = d.len();
        if n < MIN_PAIRS {
            return None;
        }
        let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
        for i in 0..n {
            for j in i..n {
                walsh.push((d[i] + d[j]) / 2.0);
            }
        }
        walsh.sort_by(f64::total_cmp);
        let m = walsh.len();
        let estimate = if m % 2 == 1 {
            walsh[m / 2]
        } else {
            (walsh[m / 2 - 1] + walsh[m / 2]) / 2.0
        };
        // The interval runs from the c-th smallest to the c-th largest Walsh average.
        let c = signed_rank_critical(n, (1.0 - CONFIDENCE) / 2.0);
        let (low, high) = (walsh[c - 1], walsh[m - c]);
        Some(Effect {
            estimate,
            low,
            high,
            resolution: (high - low) / 2.0,
            pairs: n,
        })
    }

    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The largest `c ≥ 1` with `P(T ≤ c − 1) ≤ tail`, where `T` is the signed-rank statistic of `n`
/// pairs under the null hypothesis. Exact, from the distribution's recurrence (in probabilities,
/// so that any `n` fits).
fn signed_rank_critical(n: usize, tail: f64) -> usize {
    let max = n * (n + 1) / 2;
    // p[s] = P(T = s) over ranks 1..=k, built up one rank at a time: each rank is in the sum or
    // not with probability 1/2.
    let mut p = vec![0.0f64; max + 1];
    p[0] = 1.0;
    for rank in 1..=n {
        for s in (0..=max).rev() {
            let with = if s >= rank { p[s - rank] } else { 0.0 };
            p[s] = (p[s] + with) / 2.0;
        }
    }
    let mut cumulative = 0.0;
    let mut c = 1;
    for (s, probability) in p.iter().enumerate() {
        cumulative += probability;
        // Allow for rounding in the sums: the exact tail values are multiples of 2^-n.
        if cumulative > tail * (1.0 + 1e-9) {
            break;
        }
        c = s + 1;
    }
    c.clamp(1, max.div_ceil(2).max(1))
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

/// The median of finite values; `None` when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    Some(if m % 2 == 1 {
        v[m / 2]
    } else {
        (v[m / 2 - 1] + v[m / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn critical_values_match_the_published_table() {
        // Two-sided 5%: the table's critical T is c − 1 (n = 6 → 0, 8 → 3, 10 → 8, 20 → 52,
        // 30 → 137).
        for (n, t) in [
            (6, 0),
            (7, 2),
            (8, 3),
            (10, 8),
            (12, 13),
            (20, 52),
            (30, 137),
        ] {
            assert_eq!(signed_rank_critical(n, 0.025) - 1, t, "n = {n}");
        }
    }

    #[test]
    fn too_few_pairs_give_no_interval() {
        assert_eq!(Effect::of(&[0.1, 0.2, 0.3, 0.4, 0.5]), None);
        assert_eq!(Effect::of(&[0.1, 0.2, 0.3, 0.4, 0.5, f64::NAN]), None);
    }

    #[test]
    fn six_pairs_span_from_the_smallest_to_the_largest() {
        let e = Effect::of(&[0.03, 0.01, 0.02, 0.05, 0.04, 0.06]).expect("six pairs");
        assert!((e.estimate - 0.035).abs() < 1e-12);
        assert_eq!((e.low, e.high), (0.01, 0.06));
        assert!((e.resolution - 0.025).abs() < 1e-12);
    }

    #[test]
    fn the_estimate_resists_one_wild_pair() {
        let mut d = vec![0.10, 0.11, 0.09, 0.10, 0.12, 0.08, 0.10, 0.11];
        d.push(5.0);
        let e = Effect::of(&d).expect("nine pairs");
        // The mean would be 0.65.
        assert!((e.estimate - 0.105).abs() < 0.01, "{e:?}");
        assert!(e.contains(0.105), "{e:?}");
    }

    /// Coverage by simulation: the interval holds the true centre in about 95% of experiments.
    #[test]
    fn intervals_cover_the_true_centre_about_95_percent_of_the_time() {
        let mut rng = StdRng::seed_from_u64(7);
        let experiments = 2000;
        let covered = (0..experiments)
            .filter(|_| {
                let d: Vec<f64> = (0..10)
                    .map(|_| 0.2 + rng.random_range(-1.0..1.0) * rng.random_range(0.0..0.5))
                    .collect();
                Effect::of(&d).expect("ten pairs").contains(0.2)
            })
            .count();
        let coverage = covered as f64 / experiments as f64;
        // Exact signed-rank intervals are slightly conservative (≥ 95%) for discrete n.
        assert!((0.94..=0.985).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn verdicts_follow_the_interval_against_the_bound() {
        let e = |low, high| Effect {
            estimate: (low + high) / 2.0,
            low,
            high,
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

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median([f64::NAN]), None);
    }
}
