//! What the services' Prometheus metrics cost per request: the engine's and the gateway's update
//! as their request paths make it, and the prometheus-client counter and histogram underneath.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::metrics::{EngineMetrics, GatewayMetrics, LATENCY_BUCKETS};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

/// Request durations spread over the buckets, so that the histogram's bucket search varies.
fn durations() -> Vec<Duration> {
    (0..64u64)
        .map(|i| Duration::from_micros(50 + i * i * 250))
        .collect()
}

fn metrics(c: &mut Criterion) {
    let durations = durations();
    let mut group = c.benchmark_group("metrics");

    group.bench_function("counter_inc", |b| {
        let counter: Counter = Counter::default();
        b.iter(|| black_box(&counter).inc());
    });
    group.bench_function("histogram_observe", |b| {
        let histogram = Histogram::new(LATENCY_BUCKETS);
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % durations.len();
            black_box(&histogram).observe(durations[i].as_secs_f64());
        });
    });

    // The engine's per-RPC update: in-flight gauge up and down, two counters, two histograms and
    // a status-code counter cached after its first use.
    group.bench_function("engine_rpc", |b| {
        let metrics = Arc::new(EngineMetrics::default());
        let rpc = metrics.rpc("FetchMarketData");
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % durations.len();
            rpc.started();
            rpc.finished(tonic::Code::Ok, black_box(durations[i]));
        });
    });

    // The gateway's per-request update, which looks its labelled series up in the families on
    // every request.
    group.bench_function("gateway_request", |b| {
        let metrics = GatewayMetrics::default();
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % durations.len();
            metrics.observe(
                "POST",
                "/api/v1/market-data/fetch",
                200,
                black_box(durations[i]),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
