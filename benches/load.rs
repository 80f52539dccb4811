//! What the harness's load core costs per request, apart from the protocol: the next due time of
//! the open-loop schedule, an HdrHistogram record, the recorder's bookkeeping of a request, and
//! the whole runner (schedule, dispatch, completion, recording) against a driver that answers at
//! once.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use harness::load::recorder::new_histogram;
use harness::load::{
    Arrivals, Completion, Driver, LoadKind, LoadPlan, Outcome, RatePhase, Recorder, Reply,
    Sampling, Schedule, TraceParent,
};
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

/// Long enough never to run out during a benchmark.
const FOREVER: Duration = Duration::from_secs(1_000_000);

/// Latencies in microseconds, log-spread over 100 µs to 100 ms, so that records land in many
/// buckets as a real run's do.
fn latencies_us() -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..4096)
        .map(|_| 10f64.powf(rng.random_range(2.0..5.0)) as u64)
        .collect()
}

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule_next");
    let constant = RatePhase::constant(10_000.0, FOREVER);
    let ramp = RatePhase {
        from: 100.0,
        to: 20_000.0,
        duration: FOREVER,
    };
    for (name, phase, arrivals) in [
        ("uniform", constant, Arrivals::Uniform),
        ("poisson", constant, Arrivals::Poisson { seed: 7 }),
        ("uniform_ramp", ramp, Arrivals::Uniform),
        ("poisson_ramp", ramp, Arrivals::Poisson { seed: 7 }),
    ] {
        group.bench_function(name, |b| {
            let mut schedule = Schedule::new(vec![phase], arrivals);
            b.iter(|| schedule.next().expect("the schedule runs for 11 days"));
        });
    }
    group.finish();
}

fn record(c: &mut Criterion) {
    let latencies = latencies_us();
    let mut group = c.benchmark_group("recorder");

    // As the recorder keeps every histogram: 1 µs to an hour, 3 significant digits.
    group.bench_function("hdr_record", |b| {
        let mut histogram = new_histogram();
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % latencies.len();
            histogram.saturating_record(black_box(latencies[i]));
        });
    });

    // One request's bookkeeping: `sent` at dispatch, `completed` with its outcome (three histogram
    // records, the outcome count, the per-second timeline) over a minute of timeline.
    group.bench_function("request", |b| {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0, ["fetch".to_owned()]);
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let intended = t0 + Duration::from_micros(i % 60_000_000);
            let sent = intended + Duration::from_micros(20);
            let finished = sent + Duration::from_micros(latencies[(i % 4096) as usize]);
            recorder.sent(0, sent);
            recorder.completed(Completion {
                kind: 0,
                intended,
                sent,
                finished,
                outcome: Outcome::Status(200),
                expected: true,
                trace: None,
            });
        });
        black_box(&recorder);
    });
    group.finish();
}

/// Answers every request at once: what is left is the runner's own work.
struct Instant200;

impl Driver for Instant200 {
    type Payload = u16;

    async fn send(&self, status: &u16, _: Option<&TraceParent>) -> Reply {
        Outcome::Status(*status).into()
    }
}

/// CPU time used by every thread of this process so far.
fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("the process CPU clock is readable on Linux")
        .into()
}

/// The whole runner per request, as whole-process CPU time (its tasks run on the runtime's
/// workers, where the calling thread's wall time would not see them). Every request is due at
/// once (a billion per second), so this is the floor, without the timer wake-ups and short sleeps
/// that pacing adds at real rates.
fn runner(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built");
    let driver = Arc::new(Instant200);
    let mut group = c.benchmark_group("runner_process_cpu");
    group.bench_function("unpaced", |b| {
        b.iter_custom(|iters| {
            const RATE: f64 = 1e9;
            let plan = LoadPlan {
                kinds: vec![LoadKind {
                    name: "fetch".into(),
                    weight: 1,
                    payloads: vec![200],
                    expect: Outcome::Status(200),
                    sampling: Sampling::NONE,
                }],
                phases: vec![RatePhase::constant(
                    RATE,
                    Duration::from_secs_f64(iters as f64 / RATE),
                )],
                arrivals: Arrivals::Uniform,
                seed: 1,
                max_in_flight: usize::MAX,
                timeout: Duration::from_secs(60),
                batch_window: Duration::ZERO,
                drain_timeout: Duration::from_secs(60),
                announce: None,
                samples: None,
                segment: None,
            };
            let start = process_cpu();
            let report = runtime
                .block_on(harness::load::run(
                    Arc::clone(&driver),
                    plan,
                    CancellationToken::new(),
                    |_, _| {},
                ))
                .expect("the plan is valid");
            let cpu = process_cpu().saturating_sub(start);
            let stats = &report.recorder.kinds[0];
            assert_eq!(stats.completed, report.scheduled, "every request completed");
            // The schedule's count can differ from `iters` by one through rounding.
            cpu.mul_f64(iters as f64 / report.scheduled.max(1) as f64)
        });
    });
    group.finish();
}

criterion_group!(benches, schedule, record, runner);
criterion_main!(benches);
