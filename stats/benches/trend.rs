//! What the growth estimate costs at the end of a long run: the Theil–Sen slope of the most
//! points a run's memory series is thinned to (1,000), a page-quantised series of resident bytes
//! that grows slowly under noise. One iteration is one estimate with its interval.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

/// Resident bytes sampled every 2.88 s of an hour's steady part: 7 KB/min of growth, 200 KB of
/// noise, whole 4 KiB pages; the noise from a fixed linear congruential sequence.
fn memory_series(n: usize) -> Vec<(f64, f64)> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
            let t = 720.0 + i as f64 * 2.88;
            let rss = 19e6 + 115.0 * t + 200e3 * noise;
            (t, (rss / 4096.0).round() * 4096.0)
        })
        .collect()
}

fn trend(c: &mut Criterion) {
    let mut group = c.benchmark_group("trend");
    for n in [100, 1000] {
        let points = memory_series(n);
        group.bench_function(format!("slope_{n}"), |b| {
            b.iter(|| stats::trend::slope(black_box(&points)))
        });
    }
    group.finish();
}

criterion_group!(benches, trend);
criterion_main!(benches);
