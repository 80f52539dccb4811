//! A quantile read from an HdrHistogram, with the distribution-free 95% interval that its order
//! statistics give: the sampling error of one recorded sample's percentile.

use hdrhistogram::Histogram;

use crate::{Estimate, Z_95};

/// A quantile needs this many observations beyond it (10 above the p99, so 1,000 in all) before
/// its interval means anything.
const BEYOND: f64 = 10.0;

/// How many observations a quantile `q` needs: enough that at least ten lie above it.
pub fn needed(q: f64) -> u64 {
    (BEYOND / (1.0 - q)).round() as u64
}

/// The `q` quantile of `h` with its interval, from the ranks n·q ∓ 1.96·√(n·q·(1−q)) (the
/// binomial distribution of the count below the true quantile, in its normal form). The estimate
/// is HdrHistogram's own (the top of its bucket), so that it matches what was reported; the
/// interval is widened to whole buckets, because the histogram cannot tell values within one
/// apart. Nothing is below 1, so that ratios of two quantiles stay finite. `None` with fewer than
/// [`needed`] observations.
pub fn of(h: &Histogram<u64>, q: f64) -> Option<Estimate<u64>> {
    let n = h.len();
    if n == 0 || n < needed(q) {
        return None;
    }
    let centre = n as f64 * q;
    let spread = Z_95 * (n as f64 * q * (1.0 - q)).sqrt();
    let rank = |r: f64| (r.max(1.0) as u64).clamp(1, n);
    let low = value_at_rank(h, rank((centre - spread).floor()));
    let high = value_at_rank(h, rank((centre + spread).ceil()));
    Some(Estimate {
        estimate: h.value_at_quantile(q).max(1),
        low: h.lowest_equivalent(low).max(1),
        high: h.highest_equivalent(high).max(1),
    })
}

/// The value of the `rank`-th smallest observation (1-based), as recorded.
fn value_at_rank(h: &Histogram<u64>, rank: u64) -> u64 {
    let mut seen = 0;
    for bucket in h.iter_recorded() {
        seen += bucket.count_at_value();
        if seen >= rank {
            return bucket.value_iterated_to();
        }
    }
    h.max()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As runs record latency: 1 µs to an hour, three significant digits.
    fn new_histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
    }

    fn uniform(from: u64, to: u64) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in from..=to {
            h.record(v).expect("in range");
        }
        h
    }

    #[test]
    fn needs_ten_observations_beyond_the_quantile() {
        assert_eq!(needed(0.5), 20);
        assert_eq!(needed(0.9), 100);
        assert_eq!(needed(0.99), 1_000);
        assert_eq!(needed(0.999), 10_000);
        assert_eq!(of(&uniform(1, 99), 0.9), None);
        assert!(of(&uniform(1, 100), 0.9).is_some());
        assert_eq!(of(&new_histogram(), 0.5), None);
    }

    #[test]
    fn the_median_of_1_to_1000_has_the_binomial_interval() {
        // n = 1000: ranks 500 ∓ 1.96·√250 = 500 ∓ 30.99, i.e. 469 and 531; values below 2048
        // are exact in a 3-digit histogram.
        let q = of(&uniform(1, 1000), 0.5).expect("enough");
        assert_eq!(
            q,
            Estimate {
                estimate: 500,
                low: 469,
                high: 531
            }
        );
    }

    #[test]
    fn bounds_cover_whole_buckets() {
        // Values above 2048 share buckets of 2 µs (and 4 µs above 4096): the interval spans them.
        let mut h = new_histogram();
        for v in 0..2_000 {
            h.record(10_000 + v * 3).expect("in range");
        }
        let q = of(&h, 0.5).expect("enough");
        assert!(q.low <= q.estimate && q.estimate <= q.high, "{q:?}");
        assert_eq!(q.low, h.lowest_equivalent(q.low));
        assert_eq!(q.high, h.highest_equivalent(q.high));
    }

    #[test]
    fn intervals_narrow_as_samples_grow() {
        let width = |n: u64| {
            let mut h = new_histogram();
            for i in 0..n {
                // Uniform on 1000..2000 µs, evenly spread whatever n is.
                h.record(1_000 + i * 1_000 / n).expect("in range");
            }
            let q = of(&h, 0.9).expect("enough");
            q.high - q.low
        };
        assert!(width(10_000) < width(1_000) && width(1_000) < width(100));
    }
}
