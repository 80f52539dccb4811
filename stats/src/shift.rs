//! Two-sample statistics: the shift between two sets of repeated measurements (Hodges-Lehmann,
//! with the interval that inverts the Mann-Whitney test) and the two-proportion test.
//!
//! The shift needs no assumption about the shape of either sample, only that both have the same
//! shape up to the shift; on log values that means "the second sample is the first scaled by a
//! factor", which is how latency regressions usually look.

use crate::{Estimate, TAIL, Z_95, median};

/// Up to this many pairs (m·n) the Mann-Whitney critical value comes from the statistic's exact
/// distribution; beyond, from its normal approximation, which is then accurate to a rank or so.
const EXACT_PAIRS: usize = 2_500;

/// Samples longer than this are summarised in blocks (the median of each), so that the m·n
/// differences stay a few megabytes however long the runs were.
const MAX_POINTS: usize = 1_000;

/// Fewer repeats than this on either side say nothing about how a run spreads, however many the
/// other side has (one against 39 still gives a formal 95% interval: its extremes). With three
/// or more each, an interval exists from four against four, or three against five.
const MIN_REPEATS: usize = 3;

/// How far `after` lies from `before`, in the samples' own units: the median of every difference
/// `after[j] − before[i]` (Hodges-Lehmann), with the distribution-free 95% interval that inverts
/// the Mann-Whitney test. Non-finite values are ignored. `None` with fewer than four values on
/// either side, unless three stand against five or more.
pub fn between(before: &[f64], after: &[f64]) -> Option<Estimate> {
    let x = blocks(finite(before));
    let y = blocks(finite(after));
    if x.len().min(y.len()) < MIN_REPEATS {
        return None;
    }
    let k = mann_whitney_critical(x.len(), y.len())?;
    let mut differences: Vec<f64> = y
        .iter()
        .flat_map(|b| x.iter().map(move |a| b - a))
        .collect();
    differences.sort_by(f64::total_cmp);
    let estimate = median(differences.iter().copied())?;
    let mn = differences.len();
    Some(Estimate {
        estimate,
        low: differences[k - 1],
        high: differences[mn - k],
    })
}

fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// At most [`MAX_POINTS`] values: consecutive runs of values replaced by their median.
fn blocks(values: Vec<f64>) -> Vec<f64> {
    if values.len() <= MAX_POINTS {
        return values;
    }
    let size = values.len().div_ceil(MAX_POINTS);
    values
        .chunks(size)
        .filter_map(|chunk| median(chunk.iter().copied()))
        .collect()
}

/// The largest `k ≥ 1` with `P(U ≤ k − 1) ≤ 2.5%`, where `U` is the Mann-Whitney statistic of
/// samples of `m` and `n` under the null hypothesis: the interval then runs from the k-th smallest
/// to the k-th largest of the m·n differences. `None` when even `P(U = 0)` is above 2.5%.
fn mann_whitney_critical(m: usize, n: usize) -> Option<usize> {
    if m == 0 || n == 0 {
        return None;
    }
    let mn = m * n;
    let k = if mn <= EXACT_PAIRS {
        exact_critical(m, n)
    } else {
        approximate_critical(m, n)
    };
    (k >= 1).then_some(k.min(mn.div_ceil(2)))
}

/// The critical `k` from the exact distribution of `U` (0 when there is none).
fn exact_critical(m: usize, n: usize) -> usize {
    let mut cumulative = 0.0;
    let mut k = 0;
    for (u, probability) in mann_whitney_distribution(m, n).iter().enumerate() {
        cumulative += probability;
        // Allow for rounding: the exact tail values are multiples of 1 / C(m + n, m).
        if cumulative > TAIL * (1.0 + 1e-9) {
            break;
        }
        k = u + 1;
    }
    k
}

/// The critical `k` from the normal approximation of `U`, with a continuity correction:
/// P(U ≤ k − 1) ≈ Φ((k − 1 + ½ − mn/2) / σ) ≤ 2.5% (0 when there is none).
fn approximate_critical(m: usize, n: usize) -> usize {
    let mn = (m * n) as f64;
    let sigma = (mn * (m + n + 1) as f64 / 12.0).sqrt();
    let k = (mn / 2.0 + 0.5 - Z_95 * sigma).floor();
    if k < 1.0 { 0 } else { k as usize }
}

/// `P(U = u)` for `u` in `0..=m·n`, exactly (up to rounding), from the recurrence on the largest
/// observation: it belongs to the second sample with probability n / (m + n), and then beats all
/// m of the first.
fn mann_whitney_distribution(m: usize, n: usize) -> Vec<f64> {
    // previous[j]: the distribution for sizes (i − 1, j); current[j]: for (i, j).
    let mut previous: Vec<Vec<f64>> = vec![vec![1.0]; n + 1];
    for i in 1..=m {
        let mut current: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
        current.push(vec![1.0]);
        for j in 1..=n {
            let total = (i + j) as f64;
            let mut p = vec![0.0; i * j + 1];
            // The largest is one of the first sample's: it adds nothing to U.
            for (u, q) in previous[j].iter().enumerate() {
                p[u] += q * i as f64 / total;
            }
            // The largest is one of the second's: it beats all i of the first.
            for (u, q) in current[j - 1].iter().enumerate() {
                p[u + i] += q * j as f64 / total;
            }
            current.push(p);
        }
        previous = current;
    }
    previous.pop().expect("sizes 0..=n were all built")
}

/// The pooled two-proportion z statistic of `after` against `before` (positive when `after`'s
/// proportion is higher). `None` when either sample is empty, or when the pooled proportion is 0
/// or 1: both samples then agree exactly and there is nothing to test.
pub fn two_proportion_z(
    before_hits: u64,
    before_total: u64,
    after_hits: u64,
    after_total: u64,
) -> Option<f64> {
    if before_total == 0 || after_total == 0 {
        return None;
    }
    // In floating point throughout: counts come from files, and their sums may not fit a u64.
    let (n1, n2) = (before_total as f64, after_total as f64);
    let (h1, h2) = (before_hits as f64, after_hits as f64);
    let (p1, p2) = (h1 / n1, h2 / n2);
    let pooled = (h1 + h2) / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    (variance > 0.0).then(|| (p2 - p1) / variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `P(U ≤ u)` by enumerating every way of choosing which ranks belong to the first sample.
    fn brute_force_cdf(m: usize, n: usize, u_max: usize) -> f64 {
        let total = m + n;
        let (mut hits, mut all) = (0u64, 0u64);
        for mask in 0u32..(1 << total) {
            if mask.count_ones() as usize != m {
                continue;
            }
            all += 1;
            // U counts (first, second) pairs in which the second-sample value is larger.
            let mut u = 0;
            let mut firsts_below = 0;
            for rank in 0..total {
                if mask & (1 << rank) != 0 {
                    firsts_below += 1;
                } else {
                    u += firsts_below;
                }
            }
            if u <= u_max {
                hits += 1;
            }
        }
        hits as f64 / all as f64
    }

    #[test]
    fn the_exact_distribution_matches_enumeration() {
        for (m, n) in [(1, 1), (2, 3), (3, 5), (4, 4), (5, 7), (6, 6)] {
            let p = mann_whitney_distribution(m, n);
            assert_eq!(p.len(), m * n + 1);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let mut cumulative = 0.0;
            for (u, q) in p.iter().enumerate() {
                cumulative += q;
                let expected = brute_force_cdf(m, n, u);
                assert!((cumulative - expected).abs() < 1e-12, "m {m} n {n} u {u}");
            }
        }
    }

    #[test]
    fn critical_values_match_the_published_table() {
        // Two-sided 5% critical U (reject when U ≤ it); k is that plus one.
        for (m, n, u) in [
            (4, 4, 0),
            (5, 5, 2),
            (6, 6, 5),
            (7, 7, 8),
            (8, 8, 13),
            (10, 10, 23),
            (5, 10, 8),
            (3, 5, 0),
            (20, 20, 127),
        ] {
            assert_eq!(mann_whitney_critical(m, n), Some(u + 1), "m {m} n {n}");
        }
        assert_eq!(mann_whitney_critical(3, 3), None);
        assert_eq!(mann_whitney_critical(3, 4), None);
        assert_eq!(mann_whitney_critical(0, 10), None);
    }

    #[test]
    fn the_normal_approximation_agrees_with_the_exact_distribution() {
        // 60 × 60 is past the exact range, so the critical value comes from the approximation.
        const { assert!(60 * 60 > EXACT_PAIRS) };
        let approximate = mann_whitney_critical(60, 60).expect("interval");
        let exact = exact_critical(60, 60);
        assert!(exact > 1_000, "{exact}");
        assert!(exact.abs_diff(approximate) <= 1, "{exact} vs {approximate}");
        // Unbalanced samples too.
        let approximate = mann_whitney_critical(30, 100).expect("interval");
        let exact = exact_critical(30, 100);
        assert!(exact.abs_diff(approximate) <= 1, "{exact} vs {approximate}");
    }

    #[test]
    fn a_known_shift_is_estimated_and_covered() {
        // Five values each, the second shifted by exactly 10: every difference is 10 ± 4.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [11.0, 12.0, 13.0, 14.0, 15.0];
        let shift = between(&x, &y).expect("interval");
        assert_eq!(shift.estimate, 10.0);
        // k = 3: the 3rd smallest and 3rd largest of the 25 differences (6 7 7 8 8 8 ... 14).
        assert_eq!((shift.low, shift.high), (7.0, 13.0));
        let back = between(&y, &x).expect("interval");
        assert_eq!((back.estimate, back.low, back.high), (-10.0, -13.0, -7.0));
    }

    #[test]
    fn identical_samples_give_an_interval_around_zero() {
        let x = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0];
        let shift = between(&x, &x).expect("interval");
        assert_eq!(shift.estimate, 0.0);
        assert!(shift.low < 0.0 && shift.high > 0.0, "{shift:?}");
    }

    #[test]
    fn too_small_samples_give_no_interval() {
        assert_eq!(between(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), None);
        assert_eq!(
            between(&[1.0, 2.0, f64::NAN, 3.0], &[4.0, 5.0, 6.0, 7.0]),
            None
        );
        assert_eq!(between(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0, 7.0]), None);
        // Two against eight and one against 39 have a formal interval (their extremes), but say
        // nothing about a spread.
        let many: Vec<f64> = (0..39).map(f64::from).collect();
        assert!(mann_whitney_critical(2, 8).is_some() && mann_whitney_critical(1, 39).is_some());
        assert_eq!(between(&[1.0, 2.0], &many[..8]), None);
        assert_eq!(between(&many, &[1.0]), None);
        // Three against five and four against four are the smallest that give one.
        assert!(between(&[1.0, 2.0, 3.0], &many[..5]).is_some());
        assert!(between(&many[..4], &many[10..14]).is_some());
    }

    #[test]
    fn long_samples_are_summarised_in_blocks_of_consecutive_values() {
        let short: Vec<f64> = (0..MAX_POINTS).map(|i| i as f64).collect();
        assert_eq!(blocks(short.clone()), short);
        // 2,500 values: blocks of three (the last one short), each replaced by its median.
        let long: Vec<f64> = (0..2_500).map(f64::from).collect();
        let summary = blocks(long);
        assert_eq!(summary.len(), 834);
        for (i, median) in summary[..833].iter().enumerate() {
            assert_eq!(*median, (3 * i + 1) as f64, "block {i}");
        }
        assert_eq!(summary[833], 2_499.0);
        // However long, never more than MAX_POINTS.
        let longer: Vec<f64> = (0..1_000_001).map(f64::from).collect();
        // Blocks of 1,001: 999 full ones and a last of two.
        assert_eq!(blocks(longer).len(), MAX_POINTS);
    }

    #[test]
    fn two_proportions() {
        // 10/1000 against 30/1000: pooled 2%, z = 0.02 / sqrt(0.02 · 0.98 · 0.002) ≈ 3.194.
        let z = two_proportion_z(10, 1000, 30, 1000).expect("a statistic");
        assert!((z - 3.194).abs() < 1e-3, "{z}");
        assert_eq!(two_proportion_z(30, 1000, 10, 1000), Some(-z));
        // Nothing failed anywhere, or one side is empty: nothing to test.
        assert_eq!(two_proportion_z(0, 300, 0, 300), None);
        assert_eq!(two_proportion_z(0, 0, 5, 300), None);
        // 0 of 300 against 2 of 300 is not significant; against 5 of 300 it is.
        assert!(two_proportion_z(0, 300, 2, 300).expect("z") < Z_95);
        assert!(two_proportion_z(0, 300, 5, 300).expect("z") > Z_95);
        // Counts too large to add as integers.
        let huge = 1u64 << 63;
        let z = two_proportion_z(huge, huge, huge, huge);
        assert_eq!(z, None);
        assert!(two_proportion_z(huge / 2, huge, huge, huge).is_some());
    }
}
