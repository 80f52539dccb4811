//! The slope of a series over time: Theil and Sen's estimate (the median of the slopes between
//! every pair of points) with the interval that inverts Kendall's rank correlation test (Sen,
//! 1968), the test's null distribution computed exactly for short series.
//!
//! A few outliers (a burst of allocation, a page reclaimed under pressure) move a least-squares
//! line at will; they move the median of the pairwise slopes by little. The interval assumes that
//! the deviations from the line are independent; a series whose deviations are correlated in time
//! (a plateau, then a step) gets an interval narrower than it should, so that its readers should
//! judge long series rather than short ones.

use crate::{Estimate, TAIL, Z_95};

/// Fewer points than this cannot give a 95% interval: with four, even the widest interval (the
/// smallest to the largest slope) covers only 1 − 2/4! ≈ 91.7%.
pub const MIN_POINTS: usize = 5;

/// Up to this many points the interval comes from the exact distribution of Kendall's statistic;
/// above it from the statistic's normal approximation, which is then within a rank of it.
const EXACT_UP_TO: usize = 100;

/// The slope of `y` against `x` (in y's unit per x's unit), with its interval; `None` with fewer
/// than [`MIN_POINTS`] points with finite coordinates, or when every `x` is the same.
///
/// Pairs with equal `x` give no slope and are left out. The n² / 2 slopes are never held at once
/// (a thousand points have half a million: 4 MB, at the end of a long run): each order statistic
/// is found in passes that count them, in 32 KB of counters and a few slopes per point. Time is
/// n² / 2 divisions a pass, so callers bound `n` (a few thousand points at most).
pub fn slope(points: &[(f64, f64)]) -> Option<Estimate> {
    let p: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if p.len() < MIN_POINTS {
        return None;
    }
    let slopes = Slopes::of(&p)?;
    let m = slopes.count;
    let estimate = if m % 2 == 1 {
        slopes.select(m / 2)
    } else {
        (slopes.select(m / 2 - 1) + slopes.select(m / 2)) / 2.0
    };
    let c = kendall_critical(p.len(), TAIL).min(m.div_ceil(2)).max(1);
    Some(Estimate {
        estimate,
        low: slopes.select(c - 1),
        high: slopes.select(m - c),
    })
}

/// The slopes between every pair of points with distinct `x`, computed again on each walk rather
/// than stored, and ranked in the order of [`f64::total_cmp`].
struct Slopes<'a> {
    points: &'a [(f64, f64)],
    /// How many there are.
    count: usize,
}

impl<'a> Slopes<'a> {
    /// `None` when every `x` is the same.
    fn of(points: &'a [(f64, f64)]) -> Option<Self> {
        let mut slopes = Slopes { points, count: 0 };
        let mut count = 0;
        slopes.each(|_| count += 1);
        slopes.count = count;
        (count > 0).then_some(slopes)
    }

    fn each(&self, mut visit: impl FnMut(f64)) {
        for (i, a) in self.points.iter().enumerate() {
            for b in &self.points[i + 1..] {
                let dx = b.0 - a.0;
                if dx != 0.0 {
                    visit((b.1 - a.1) / dx);
                }
            }
        }
    }

    /// The `k`-th smallest (from 0), by its [`order_key`] a dozen bits at a time: each pass
    /// counts the slopes that share the key's known leading bits by their next bits, until few
    /// enough share them to keep and select among. A pass finds the sign and exponent, a second
    /// or third narrows a cluster to a few slopes per point.
    fn select(&self, k: usize) -> f64 {
        let keep = WINDOW_PER_POINT * self.points.len();
        // The key's leading `known` bits are `prefix`; `below` slopes have smaller keys, and
        // `inside` share the prefix.
        let (mut prefix, mut known, mut below, mut inside) = (0u64, 0u32, 0, self.count);
        let shares =
            |key: u64, prefix: u64, known: u32| key.checked_shr(64 - known).unwrap_or(0) == prefix;
        let mut counts = vec![0usize; 1 << RADIX_BITS];
        while inside > keep && known < 64 {
            let bits = RADIX_BITS.min(64 - known);
            let shift = 64 - known - bits;
            counts.fill(0);
            self.each(|s| {
                let key = order_key(s);
                if shares(key, prefix, known) {
                    counts[((key >> shift) & ((1 << bits) - 1)) as usize] += 1;
                }
            });
            let mut digit = 0;
            for (d, &count) in counts.iter().enumerate() {
                if k < below + count {
                    (digit, inside) = (d as u64, count);
                    break;
                }
                below += count;
            }
            (prefix, known) = (prefix << bits | digit, known + bits);
        }
        if known == 64 {
            return from_order_key(prefix);
        }
        let mut window = Vec::with_capacity(inside);
        self.each(|s| {
            if shares(order_key(s), prefix, known) {
                window.push(s);
            }
        });
        *window.select_nth_unstable_by(k - below, f64::total_cmp).1
    }
}

/// How many slopes per point a selection keeps to select among once it has narrowed their keys.
const WINDOW_PER_POINT: usize = 8;

/// Bits of a key one counting pass resolves: 4,096 counters.
const RADIX_BITS: u32 = 12;

/// A key whose unsigned order is [`f64::total_cmp`]'s: the sign bit flipped for positives, every
/// bit for negatives.
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// The largest `c ≥ 1` with `P(D ≤ c − 1) ≤ tail`, where `D`, the number of discordant pairs of
/// `n` points, is under the null hypothesis the number of inversions of a random permutation.
/// The slope β is inside the interval when at least `c` of the pairwise slopes lie on each side
/// of it, which is Kendall's test of the residuals `y − βx` not rejecting.
fn kendall_critical(n: usize, tail: f64) -> usize {
    let pairs = n * (n - 1) / 2;
    if n > EXACT_UP_TO {
        // D has mean N/2 and variance n(n − 1)(2n + 5)/72; rounded down, the interval only widens.
        let sd = ((n * (n - 1) * (2 * n + 5)) as f64 / 72.0).sqrt();
        let c = (pairs as f64 / 2.0 - Z_95 * sd).floor();
        return if c >= 1.0 { c as usize } else { 1 };
    }
    let p = inversions(n);
    let mut cumulative = 0.0;
    let mut c = 1;
    for (d, probability) in p.iter().enumerate() {
        cumulative += probability;
        // Allow for rounding in the sums.
        if cumulative > tail * (1.0 + 1e-9) {
            break;
        }
        c = d + 1;
    }
    c
}

/// `P(I = k)` for `k` in `0..=n(n − 1)/2`, where `I` is the number of inversions of a uniformly
/// random permutation of `n` items: the k-th item inserted adds 0 to k − 1 inversions, each with
/// probability 1/k (a window sum over the previous distribution).
fn inversions(n: usize) -> Vec<f64> {
    let max = n * n.saturating_sub(1) / 2;
    let mut p = vec![0.0f64; max + 1];
    p[0] = 1.0;
    for k in 2..=n {
        let mut next = vec![0.0f64; max + 1];
        let mut window = 0.0;
        for (s, slot) in next.iter_mut().enumerate() {
            window += p[s];
            if s >= k {
                window -= p[s - k];
            }
            *slot = window / k as f64;
        }
        p = next;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The number of permutations of `n` items with each count of inversions, by enumeration.
    fn enumerate_inversions(n: usize) -> Vec<u64> {
        fn permute(items: &mut Vec<usize>, k: usize, counts: &mut Vec<u64>) {
            if k == items.len() {
                let mut inv = 0;
                for i in 0..items.len() {
                    for j in i + 1..items.len() {
                        if items[i] > items[j] {
                            inv += 1;
                        }
                    }
                }
                counts[inv] += 1;
                return;
            }
            for i in k..items.len() {
                items.swap(k, i);
                permute(items, k + 1, counts);
                items.swap(k, i);
            }
        }
        let mut counts = vec![0; n * (n - 1) / 2 + 1];
        permute(&mut (0..n).collect(), 0, &mut counts);
        counts
    }

    #[test]
    fn the_inversion_distribution_is_mahonian() {
        // OEIS A008302, row 4: 1, 3, 5, 6, 5, 3, 1 (out of 4! = 24).
        let p = inversions(4);
        let counts: Vec<f64> = p.iter().map(|q| (q * 24.0).round()).collect();
        assert_eq!(counts, [1.0, 3.0, 5.0, 6.0, 5.0, 3.0, 1.0]);
        for n in 2..=8 {
            let total: u64 = (1..=n as u64).product();
            let exact = enumerate_inversions(n);
            for (k, (q, count)) in inversions(n).iter().zip(&exact).enumerate() {
                assert!(
                    (q - *count as f64 / total as f64).abs() < 1e-12,
                    "n = {n}, k = {k}"
                );
            }
        }
    }

    #[test]
    fn critical_values_match_the_published_table() {
        // Kendall's S at two-sided 5%: |S| ≥ s rejects, for n = 5..=10: 10, 13, 15, 18, 20, 23.
        // S = N − 2D, so the largest rejected D is (N − s) / 2, which is c − 1.
        for (n, s) in [(5, 10), (6, 13), (7, 15), (8, 18), (9, 20), (10, 23)] {
            let pairs = n * (n - 1) / 2;
            assert_eq!(kendall_critical(n, TAIL) - 1, (pairs - s) / 2, "n = {n}");
        }
    }

    #[test]
    fn the_normal_approximation_takes_over_within_a_rank() {
        for n in [60, 80, EXACT_UP_TO] {
            let exact = kendall_critical(n, TAIL) as f64;
            let pairs = (n * (n - 1) / 2) as f64;
            let sd = ((n * (n - 1) * (2 * n + 5)) as f64 / 72.0).sqrt();
            let approx = (pairs / 2.0 - Z_95 * sd).floor();
            assert!(
                (exact - approx).abs() <= 1.0,
                "n = {n}: {exact} vs {approx}"
            );
        }
    }

    #[test]
    fn five_points_span_from_the_smallest_to_the_largest_slope() {
        // Slopes: 1, 2, 1.5, 1.25 | 3, 1.75, 1.333 | 0.5, 0.5 | 0.5; the median of the ten is
        // (1.25 + 1.333) / 2.
        let e = slope(&[(0.0, 0.0), (1.0, 1.0), (2.0, 4.0), (3.0, 4.5), (4.0, 5.0)])
            .expect("five points");
        assert!((e.estimate - 1.29166).abs() < 1e-4, "{e:?}");
        assert_eq!((e.low, e.high), (0.5, 3.0));
    }

    #[test]
    fn too_few_points_or_one_instant_give_no_estimate() {
        assert_eq!(
            slope(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]),
            None
        );
        assert_eq!(slope(&[(1.0, 1.0); 8]), None);
        let with_gap = [
            (0.0, 0.0),
            (1.0, 1.0),
            (2.0, f64::NAN),
            (3.0, 3.0),
            (4.0, 4.0),
        ];
        assert_eq!(slope(&with_gap), None);
    }

    /// The interval is exactly the set of slopes that Kendall's test, computed from scratch on the
    /// residuals, does not reject.
    #[test]
    fn the_interval_inverts_kendalls_test() {
        let mut rng = StdRng::seed_from_u64(11);
        for n in [6, 9, 14] {
            let points: Vec<(f64, f64)> = (0..n)
                .map(|i| (i as f64, 0.3 * i as f64 + rng.random_range(-2.0..2.0)))
                .collect();
            let e = slope(&points).expect("enough points");
            let c = kendall_critical(n, TAIL);
            let pairs = n * (n - 1) / 2;
            // Discordant pairs of (x, y − βx): pairs whose slope is below β.
            let accepted = |beta: f64| {
                let mut discordant = 0;
                for i in 0..n {
                    for j in i + 1..n {
                        let r = |k: usize| points[k].1 - beta * points[k].0;
                        if r(j) < r(i) {
                            discordant += 1;
                        }
                    }
                }
                discordant >= c && discordant <= pairs - c
            };
            let (lo, hi) = (e.low, e.high);
            let span = hi - lo;
            for step in 1..100 {
                let beta = lo + span * step as f64 / 100.0;
                assert!(accepted(beta), "n = {n}: {beta} inside {e:?} is rejected");
            }
            assert!(!accepted(lo - span * 0.01 - 1e-9), "n = {n}: below {e:?}");
            assert!(!accepted(hi + span * 0.01 + 1e-9), "n = {n}: above {e:?}");
        }
    }

    /// The slope and interval as they were computed before selection: every pairwise slope,
    /// sorted.
    fn sorted_slopes(points: &[(f64, f64)]) -> Option<Estimate> {
        let mut slopes = Vec::new();
        for i in 0..points.len() {
            for j in i + 1..points.len() {
                let (dx, dy) = (points[j].0 - points[i].0, points[j].1 - points[i].1);
                if dx != 0.0 {
                    slopes.push(dy / dx);
                }
            }
        }
        slopes.sort_by(f64::total_cmp);
        let estimate = crate::sorted_median(&slopes)?;
        let m = slopes.len();
        let c = kendall_critical(points.len(), TAIL)
            .min(m.div_ceil(2))
            .max(1);
        Some(Estimate {
            estimate,
            low: slopes[c - 1],
            high: slopes[m - c],
        })
    }

    #[test]
    fn selection_finds_what_sorting_every_slope_finds() {
        let mut rng = StdRng::seed_from_u64(17);
        for n in [5, 6, 17, 18, 41, 120, 301] {
            let continuous: Vec<(f64, f64)> = (0..n)
                .map(|i| (i as f64, 0.7 * i as f64 + rng.random_range(-3.0..3.0)))
                .collect();
            // Whole-page readings: most slopes tie.
            let quantised: Vec<(f64, f64)> = (0..n)
                .map(|i| (i as f64, (4096 * rng.random_range(0..4u64)) as f64))
                .collect();
            // Repeated instants (pairs left out) and slopes of every sign and size.
            let wild: Vec<(f64, f64)> = (0..n)
                .map(|i| {
                    let y: f64 = rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-6..9));
                    ((i / 3) as f64, y)
                })
                .collect();
            for (name, points) in [
                ("continuous", continuous),
                ("quantised", quantised),
                ("wild", wild),
            ] {
                let bits =
                    |e: Option<Estimate>| e.map(|e| [e.estimate, e.low, e.high].map(f64::to_bits));
                assert_eq!(
                    bits(slope(&points)),
                    bits(sorted_slopes(&points)),
                    "{name}, n = {n}"
                );
            }
        }
    }

    #[test]
    fn the_order_key_orders_as_total_cmp() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            1e300,
            f64::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) < order_key(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(from_order_key(order_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn a_flat_series_has_a_zero_slope_and_an_interval_holding_zero() {
        let mut rng = StdRng::seed_from_u64(3);
        let flat: Vec<(f64, f64)> = (0..120)
            .map(|i| (i as f64, 100.0 + rng.random_range(-1.0..1.0)))
            .collect();
        let e = slope(&flat).expect("120 points");
        assert!(e.contains(0.0), "{e:?}");
        assert!(e.estimate.abs() < 0.01, "{e:?}");
        // Quantised readings, most of them equal: slope 0, interval [0, 0].
        let steps: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 7.0)).collect();
        let e = slope(&steps).expect("30 points");
        assert_eq!((e.estimate, e.low, e.high), (0.0, 0.0, 0.0));
    }

    #[test]
    fn outliers_barely_move_the_estimate() {
        let mut points: Vec<(f64, f64)> = (0..60).map(|i| (i as f64, 2.0 * i as f64)).collect();
        let clean = slope(&points).expect("60 points");
        assert_eq!(clean.estimate, 2.0);
        // A tenth of the points thrown far off, upwards, late in the series: least squares would
        // be pulled by hundreds.
        for k in [50, 52, 54, 55, 57, 59] {
            points[k].1 += 10_000.0;
        }
        let disturbed = slope(&points).expect("60 points");
        assert!((disturbed.estimate - 2.0).abs() < 0.25, "{disturbed:?}");
        assert!(disturbed.contains(2.0), "{disturbed:?}");
    }

    /// Coverage by simulation: the interval holds the true slope in about 95% of series.
    #[test]
    fn intervals_cover_the_true_slope_about_95_percent_of_the_time() {
        let mut rng = StdRng::seed_from_u64(5);
        let experiments = 1000;
        let covered = (0..experiments)
            .filter(|_| {
                let points: Vec<(f64, f64)> = (0..20)
                    .map(|i| (i as f64, 1.5 * i as f64 + rng.random_range(-5.0..5.0)))
                    .collect();
                slope(&points).expect("20 points").contains(1.5)
            })
            .count();
        let coverage = covered as f64 / experiments as f64;
        assert!((0.93..=0.98).contains(&coverage), "coverage {coverage}");
    }
}
