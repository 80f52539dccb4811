//! The open-loop run: send each request when it is due, whatever became of the earlier ones.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use rand::SeedableRng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::alarm::{Alarm, Timing};
use super::deadline::Deadlines;
use super::driver::Driver;
use super::outcome::Outcome;
use super::recorder::{Completion, Recorder};
use super::sample::{Announce, SampleSink, SampledRequest, Sampler, Sampling, TraceParent};
use super::schedule::{Arrivals, RatePhase, Schedule, Segment};
use super::thread::on_load_thread;

/// How far past the schedule's end the harness may still be sending what fell due before it. A
/// harness that cannot keep up with the rate stops there instead of working through every late
/// arrival (which, at a rate far beyond it, would take longer than the run itself, or forever).
const LATE_END: Duration = Duration::from_millis(250);

/// How long requests still in flight are waited for once the run is interrupted: long enough
/// for any healthy answer, short enough that a signal is honoured within a second.
const INTERRUPTED_DRAIN: Duration = Duration::from_millis(250);

/// One kind of request in the mix.
#[derive(Clone)]
pub struct LoadKind<P> {
    /// Its name, in results.
    pub name: String,
    /// Its share of the mix is `weight / sum of weights`.
    pub weight: u32,
    /// Prepared variants (e.g. one per symbol drawn); each send picks one uniformly.
    pub payloads: Vec<P>,
    /// The outcome that counts as success for this kind.
    pub expect: Outcome,
    /// Which of this kind's requests carry the harness's own `traceparent`.
    pub sampling: Sampling,
}

/// Everything the load core needs; nothing about where it came from.
pub struct LoadPlan<P> {
    /// The weighted mix.
    pub kinds: Vec<LoadKind<P>>,
    /// The target rate over time, run in order.
    pub phases: Vec<RatePhase>,
    /// How sends are spread within the rate.
    pub arrivals: Arrivals,
    /// Seeds the request mix and the choice of payload variants.
    pub seed: u64,
    /// A request due while this many are in flight is dropped, never delayed.
    pub max_in_flight: usize,
    /// A request unanswered this long after it was sent ends as a timeout.
    pub timeout: Duration,
    /// The shortest time between two wake-ups of the schedule: what falls due within it is sent
    /// together, each request at most this late (its send lag shows it), rather than with a
    /// wake-up of its own. On a shared machine a wake-up costs more CPU than a request's own
    /// work; at 1/window requests a second and above, batching saves it.
    pub batch_window: Duration,
    /// How long to wait for requests still in flight after the last send.
    pub drain_timeout: Duration,
    /// Told each sampled trace id before its request is sent.
    pub announce: Option<Announce>,
    /// Receives each sampled request when it completes.
    pub samples: Option<SampleSink>,
    /// Send only this shard's arrivals of the schedule (`None`: all of them). The request mix
    /// is drawn for every arrival all the same, so that each arrival is the same request in
    /// every shard as in an unsharded run; sampling caps are this shard's share.
    pub segment: Option<Segment>,
}

/// A plan the load core cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Nothing to send.
    #[error("the plan has no request kinds")]
    NoKinds,
    /// A kind with nothing prepared to send (its name).
    #[error("request kind {0:?} has no payloads")]
    NoPayloads(String),
    /// No kind has a positive weight.
    #[error("request weights must be positive and sum to more than zero")]
    Weights,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Every phase ran to its end.
    Completed,
    /// Cancelled (SIGINT or SIGTERM) before the end.
    Interrupted,
}

/// A finished (or interrupted) run.
#[derive(Debug)]
pub struct RunReport {
    /// What came back.
    pub recorder: Recorder,
    /// From the first request dispatched to the last.
    pub send_duration: Duration,
    /// Requests the schedule asked for in that time.
    pub scheduled: u64,
    /// Whether it ran to the end.
    pub stop: Stop,
    /// Requests that never completed, even after the drain timeout.
    pub abandoned: u64,
    /// What a stream load measured of its messages; `None` for a request load.
    pub stream: Option<Box<super::stream::stats::StreamStats>>,
}

impl RunReport {
    /// A run that sent nothing (the system never came up), for results that must still be written.
    pub fn empty(kind_names: impl IntoIterator<Item = String>) -> Self {
        RunReport {
            recorder: Recorder::new(std::time::Instant::now(), kind_names),
            send_duration: Duration::ZERO,
            scheduled: 0,
            stop: Stop::Completed,
            abandoned: 0,
            stream: None,
        }
    }
}

impl RunReport {
    /// Adds a later run of the same plan's kinds: an experiment's trials of one arm, as one run.
    pub fn absorb(&mut self, later: RunReport) {
        self.recorder.absorb(later.recorder);
        self.send_duration += later.send_duration;
        self.scheduled += later.scheduled;
        self.abandoned += later.abandoned;
        if later.stop == Stop::Interrupted {
            self.stop = Stop::Interrupted;
        }
    }
}

/// Runs `plan` against `driver` until the schedule ends or `stop` is cancelled. `on_tick` is
/// called about once a second with the recorder, for progress output. Called on a multi-threaded
/// runtime, the load runs on the process's load thread ([`super::thread`]), timed to microseconds;
/// on a single-threaded one, in place on the runtime's timers (and so on paused time in tests).
pub async fn run<D: Driver>(
    driver: Arc<D>,
    plan: LoadPlan<D::Payload>,
    stop: CancellationToken,
    on_tick: impl FnMut(&Recorder, Duration) + Send + 'static,
) -> Result<RunReport, PlanError> {
    let mut reports =
        on_load_thread(move |precise| drive(vec![driver], plan, stop, on_tick, timing(precise)))
            .await?;
    Ok(reports.remove(0))
}

/// Runs one schedule against several targets at once: every arrival is sent to each of them, in
/// an order that rotates from one arrival to the next, so that no target is always served first.
/// One report per target, in the order given. This is how two systems are measured under the very
/// same load at the very same time (a duet), so that whatever else the machine does hits both.
/// Each target has its own in-flight cap; a sampled arrival is sampled at every target (each
/// with its own trace id), and every target's sampled requests go to the plan's one sink.
pub async fn run_together<D: Driver>(
    drivers: Vec<Arc<D>>,
    plan: LoadPlan<D::Payload>,
    stop: CancellationToken,
) -> Result<Vec<RunReport>, PlanError> {
    on_load_thread(move |precise| drive(drivers, plan, stop, |_, _| {}, timing(precise))).await
}

fn timing(on_load_thread: bool) -> Timing {
    if on_load_thread {
        Timing::Precise
    } else {
        Timing::Runtime
    }
}

/// What the schedule loop keeps for one target.
struct Target {
    recorder: Recorder,
    in_flight: usize,
    /// When the first and the last request were dispatched: the achieved rate is measured over
    /// what really happened, so a harness that falls behind shows it.
    dispatched: Option<(Instant, Instant)>,
}

/// The schedule loop. Requests in flight are futures polled by this one task (no task, channel or
/// thread hand-over per request); their completions are recorded as they come, between sends.
async fn drive<D: Driver>(
    drivers: Vec<Arc<D>>,
    plan: LoadPlan<D::Payload>,
    stop: CancellationToken,
    mut on_tick: impl FnMut(&Recorder, Duration),
    timing: Timing,
) -> Result<Vec<RunReport>, PlanError> {
    if plan.kinds.is_empty() {
        return Err(PlanError::NoKinds);
    }
    if let Some(kind) = plan.kinds.iter().find(|k| k.payloads.is_empty()) {
        return Err(PlanError::NoPayloads(kind.name.clone()));
    }
    if drivers.is_empty() {
        return Ok(Vec::new());
    }
    let mix =
        WeightedIndex::new(plan.kinds.iter().map(|k| k.weight)).map_err(|_| PlanError::Weights)?;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    // Trace ids must be fresh in every run (a store may still hold an earlier run's traces), and
    // drawing them must not disturb the seeded request sequence.
    let mut trace_rng = StdRng::from_os_rng();
    let segment = plan.segment;
    let mut sampler = Sampler::new(plan.kinds.iter().map(|k| match segment {
        Some(segment) => Sampling {
            max: segment.share(k.sampling.max),
            ..k.sampling
        },
        None => k.sampling,
    }));
    let kinds = plan.kinds;
    let mut alarm = Alarm::new(timing);
    let t0 = Instant::now();
    // Stands for "never" where a time would not fit in an `Instant`.
    let far_future = t0 + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut targets: Vec<Target> = drivers
        .iter()
        .map(|_| Target {
            recorder: Recorder::new(t0.into_std(), kinds.iter().map(|k| k.name.clone())),
            in_flight: 0,
            dispatched: None,
        })
        .collect();
    let receive = |targets: &mut [Target], (target, completion): (usize, Completion)| {
        if let Some(target) = targets.get_mut(target) {
            target.in_flight -= 1;
            take_in(&mut target.recorder, plan.samples.as_ref(), completion);
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let mut deadlines = Deadlines::default();
    let mut next_tick = t0 + Duration::from_secs(1);
    let mut last_wake = t0;
    let mut scheduled = 0u64;
    let mut stopped = Stop::Completed;
    let length = plan.phases.iter().fold(Duration::ZERO, |sum, phase| {
        sum.saturating_add(phase.duration)
    });
    let give_up = length
        .checked_add(LATE_END)
        .and_then(|late| t0.checked_add(late));

    'schedule: for arrival in Schedule::new(plan.phases, plan.arrivals) {
        if segment.is_some_and(|segment| !segment.owns(arrival.index)) {
            // Another shard's: drawn as it draws it, so that the sequences stay in step.
            let kind = mix.sample(&mut rng);
            let _ = rand::Rng::random_range(&mut rng, 0..kinds[kind].payloads.len());
            continue;
        }
        let Some(due) = t0.checked_add(arrival.offset) else {
            break;
        };
        // Wait for the due time, taking in completions meanwhile. A due time already past is not
        // waited for: everything due is sent at once.
        if Instant::now() < due {
            let wake = due.max(
                last_wake
                    .checked_add(plan.batch_window)
                    .unwrap_or(far_future),
            );
            while Instant::now() < wake {
                let alarm_at = deadlines
                    .expire(Instant::now())
                    .map_or(wake, |deadline| deadline.min(wake));
                tokio::select! {
                    biased;
                    () = stop.cancelled() => {
                        stopped = Stop::Interrupted;
                        break 'schedule;
                    }
                    Some(completion) = in_flight.next(), if !in_flight.is_empty() => {
                        receive(&mut targets, completion);
                    }
                    () = alarm.until(alarm_at) => {}
                }
            }
            last_wake = Instant::now();
        }
        deadlines.expire(Instant::now());
        // Answers already in: counted before the in-flight cap is looked at.
        while let Some(Some(completion)) = in_flight.next().now_or_never() {
            receive(&mut targets, completion);
        }
        if stop.is_cancelled() {
            stopped = Stop::Interrupted;
            break;
        }
        let now = Instant::now();
        if give_up.is_some_and(|give_up| now >= give_up) {
            // The schedule's time is over: what is still due was never sent nor dropped, and the
            // achieved rate shows the shortfall.
            break;
        }
        if now >= next_tick {
            if let Some(first) = targets.first() {
                on_tick(&first.recorder, now.duration_since(t0));
            }
            next_tick = now + Duration::from_secs(1);
        }
        scheduled += 1;
        // Drawn whether or not the request is dropped, so the sequence of requests is the same
        // for a given seed however the system behaves.
        let kind = mix.sample(&mut rng);
        let variant = rand::Rng::random_range(&mut rng, 0..kinds[kind].payloads.len());
        // Decided at the first target with room: a request dropped everywhere is not sampled,
        // so that sampling counts what was sent.
        let mut traced = None;
        let n = targets.len();
        for k in 0..n {
            let index = (arrival.index as usize).wrapping_add(k) % n;
            let target = &mut targets[index];
            if target.in_flight >= plan.max_in_flight {
                target.recorder.dropped(kind, due.into_std());
                continue;
            }
            let trace = (*traced.get_or_insert_with(|| sampler.decide(kind)))
                .then(|| TraceParent::random(&mut trace_rng));
            if let (Some(trace), Some(announce)) = (&trace, &plan.announce) {
                announce(trace.trace_id);
            }
            target.in_flight += 1;
            target.dispatched = Some((target.dispatched.map_or(now, |(first, _)| first), now));
            target.recorder.sent(kind, now.into_std());
            let (driver, spec) = (&*drivers[index], &kinds[kind]);
            let expired = deadlines.start(now.checked_add(plan.timeout).unwrap_or(far_future));
            in_flight.push(async move {
                // Stamped when first polled, not at dispatch: a request that waits for the
                // harness is the harness being late (send lag), not the system being slow.
                let sent = Instant::now();
                let reply = tokio::select! {
                    biased;
                    reply = driver.send(&spec.payloads[variant], trace.as_ref()) => reply,
                    () = expired => Outcome::Timeout.into(),
                };
                let finished = Instant::now();
                let completion = Completion {
                    kind,
                    intended: due.into_std(),
                    sent: sent.into_std(),
                    finished: finished.into_std(),
                    expected: reply.outcome == spec.expect,
                    outcome: reply.outcome,
                    trace: trace.map(|trace| (trace, reply.trace_header)),
                };
                (index, completion)
            });
        }
    }

    // Let what is in flight finish: its latency belongs to the run.
    let drain = match stopped {
        Stop::Completed => plan.drain_timeout,
        Stop::Interrupted => plan.drain_timeout.min(INTERRUPTED_DRAIN),
    };
    let drain_deadline = Instant::now().checked_add(drain).unwrap_or(far_future);
    while !in_flight.is_empty() {
        let now = Instant::now();
        if now >= drain_deadline {
            break;
        }
        let wake = deadlines
            .expire(now)
            .map_or(drain_deadline, |deadline| deadline.min(drain_deadline));
        tokio::select! {
            biased;
            Some(completion) = in_flight.next() => receive(&mut targets, completion),
            () = alarm.until(wake) => {}
        }
    }
    // What is left is abandoned: dropping it cancels the requests.
    drop(in_flight);
    if let Some(first) = targets.first() {
        on_tick(&first.recorder, t0.elapsed());
    }
    Ok(targets
        .into_iter()
        .map(|target| {
            let (sent, completed) = target
                .recorder
                .kinds
                .iter()
                .fold((0, 0), |(s, c), k| (s + k.sent, c + k.completed));
            RunReport {
                recorder: target.recorder,
                send_duration: target
                    .dispatched
                    .map_or(Duration::ZERO, |(first, last)| last - first),
                scheduled,
                stop: stopped.clone(),
                abandoned: sent - completed,
                stream: None,
            }
        })
        .collect())
}

/// Records a completion, and passes a sampled one on to the sink.
fn take_in(recorder: &mut Recorder, samples: Option<&SampleSink>, mut completion: Completion) {
    if let (Some((trace, trace_header)), Some(sink)) = (completion.trace.take(), samples) {
        // A verifier that stopped listening only loses what it no longer wants.
        let _ = sink.send(SampledRequest {
            kind: completion.kind,
            trace,
            intended: completion.intended,
            sent: completion.sent,
            finished: completion.finished,
            outcome: completion.outcome.clone(),
            trace_header,
        });
    }
    recorder.completed(completion);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::driver::Reply;
    use std::sync::Mutex;

    /// Answers after a fixed delay, remembering when each request was sent (in paused time).
    struct SlowDriver {
        delay: Duration,
        sends: Mutex<Vec<Instant>>,
    }

    impl Driver for SlowDriver {
        type Payload = u16;

        async fn send(&self, status: &u16, _: Option<&TraceParent>) -> Reply {
            self.sends.lock().expect("lock").push(Instant::now());
            tokio::time::sleep(self.delay).await;
            Outcome::Status(*status).into()
        }
    }

    impl SlowDriver {
        fn new(delay: Duration) -> Arc<Self> {
            Arc::new(SlowDriver {
                delay,
                sends: Mutex::new(Vec::new()),
            })
        }
    }

    /// Runs `plan` to its end, with no interruption and no progress output.
    async fn run_alone<D: Driver<Payload = u16>>(driver: Arc<D>, plan: LoadPlan<u16>) -> RunReport {
        run(driver, plan, CancellationToken::new(), |_, _| {})
            .await
            .expect("valid plan")
    }

    fn plan(rate: f64, seconds: u64, max_in_flight: usize) -> LoadPlan<u16> {
        LoadPlan {
            kinds: vec![LoadKind {
                name: "only".into(),
                weight: 1,
                payloads: vec![200],
                expect: Outcome::Status(200),
                sampling: Sampling::NONE,
            }],
            phases: vec![RatePhase::constant(rate, Duration::from_secs(seconds))],
            arrivals: Arrivals::Uniform,
            seed: 1,
            max_in_flight,
            timeout: Duration::from_secs(10),
            batch_window: Duration::ZERO,
            drain_timeout: Duration::from_secs(30),
            announce: None,
            samples: None,
            segment: None,
        }
    }

    /// Sends the payload it is given as the status, remembering each payload and trace id, in
    /// the order sent.
    struct Payloads(Mutex<Vec<(u16, Option<u128>)>>);

    impl Driver for Payloads {
        type Payload = u16;

        async fn send(&self, payload: &u16, trace: Option<&TraceParent>) -> Reply {
            self.0
                .lock()
                .expect("lock")
                .push((*payload, trace.map(|t| t.trace_id)));
            Outcome::Status(200).into()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shards_send_the_whole_runs_requests_between_them_and_share_its_sample() {
        let mixed = || {
            let mut plan = plan(100.0, 2, 1_000);
            plan.kinds[0].payloads = (0..50).collect();
            plan.kinds[0].sampling = Sampling { ratio: 0.1, max: 7 };
            plan
        };
        let whole = Arc::new(Payloads(Mutex::new(Vec::new())));
        run_alone(Arc::clone(&whole), mixed()).await;
        let whole = whole.0.lock().expect("lock").clone();
        assert_eq!(whole.len(), 200);
        let count = 3u64;
        let mut sampled = 0;
        let mut trace_ids = std::collections::BTreeSet::new();
        for index in 0..count {
            let shard = Arc::new(Payloads(Mutex::new(Vec::new())));
            let mut plan = mixed();
            plan.segment = Segment::new(index, count);
            let report = run_alone(Arc::clone(&shard), plan).await;
            let sent = shard.0.lock().expect("lock").clone();
            // Every count-th request of the whole run, the very same one.
            let expected: Vec<u16> = whole
                .iter()
                .skip(index as usize)
                .step_by(count as usize)
                .map(|(payload, _)| *payload)
                .collect();
            let payloads: Vec<u16> = sent.iter().map(|(payload, _)| *payload).collect();
            assert_eq!(payloads, expected, "shard {index}");
            assert_eq!(report.scheduled, expected.len() as u64);
            let traced: Vec<u128> = sent.iter().filter_map(|(_, trace)| *trace).collect();
            // A tenth of the shard's requests, within its share of the cap of 7 (3, 2, 2).
            assert_eq!(
                traced.len() as u64,
                [3, 2, 2][index as usize],
                "shard {index}"
            );
            sampled += traced.len();
            trace_ids.extend(traced);
        }
        assert_eq!(
            sampled, 7,
            "the shards' samples add up to the whole run's cap"
        );
        assert_eq!(trace_ids.len(), 7, "every shard's trace ids are its own");
    }

    #[tokio::test(start_paused = true)]
    async fn sends_on_schedule_however_slow_the_answers() {
        // 100/s for 2 s against a server that takes 1 s to answer: a closed loop of 10 workers
        // would send 20; an open loop sends all 200, each on time.
        let driver = SlowDriver::new(Duration::from_secs(1));
        let start = Instant::now();
        let report = run_alone(Arc::clone(&driver), plan(100.0, 2, 10_000)).await;
        let sends = driver.sends.lock().expect("lock").clone();
        assert_eq!(sends.len(), 200);
        for (i, sent) in sends.iter().enumerate() {
            let due = start + Duration::from_millis(10 * i as u64);
            let late = sent.saturating_duration_since(due);
            assert!(
                late <= Duration::from_millis(1),
                "request {i} sent {late:?} late"
            );
        }
        let stats = &report.recorder.kinds[0];
        assert_eq!(
            (stats.sent, stats.completed, stats.dropped, stats.unexpected),
            (200, 200, 0, 0)
        );
        assert_eq!(report.scheduled, 200);
        assert_eq!(report.stop, Stop::Completed);
        // Every latency is the 1 s service time (to histogram precision), none accumulates.
        assert!(
            stats.latency.value_at_quantile(1.0) <= stats.latency.highest_equivalent(1_002_000)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_request_ends_as_a_timeout_at_its_deadline() {
        // Answers take 30 s, the timeout is 10 s: every request times out 10 s after it was sent.
        let driver = SlowDriver::new(Duration::from_secs(30));
        let report = run_alone(driver, plan(10.0, 1, 1_000)).await;
        let stats = &report.recorder.kinds[0];
        assert_eq!(
            (stats.sent, stats.completed, stats.unexpected),
            (10, 10, 10)
        );
        assert_eq!(stats.outcomes.get("timeout"), Some(&10));
        assert_eq!(report.abandoned, 0);
        let (shortest, longest) = (stats.latency.min(), stats.latency.max());
        assert!(
            shortest >= stats.latency.lowest_equivalent(10_000_000)
                && longest <= stats.latency.highest_equivalent(10_002_000),
            "latencies {shortest}..{longest} µs"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_window_sends_what_falls_due_within_it_together() {
        // 1,000/s with a 10 ms window: the schedule wakes every 10 ms and sends the ten due by
        // then at once, none more than 10 ms late.
        let driver = SlowDriver::new(Duration::from_millis(1));
        let mut plan = plan(1000.0, 1, 10_000);
        plan.batch_window = Duration::from_millis(10);
        let start = Instant::now();
        let report = run(
            Arc::clone(&driver),
            plan,
            CancellationToken::new(),
            |_, _| {},
        )
        .await
        .expect("valid plan");
        let sends = driver.sends.lock().expect("lock").clone();
        assert_eq!(sends.len(), 1000);
        let mut moments = sends.clone();
        moments.dedup();
        assert!(
            (95..=105).contains(&moments.len()),
            "{} distinct send times",
            moments.len()
        );
        for (i, sent) in sends.iter().enumerate() {
            let late = sent.saturating_duration_since(start + Duration::from_millis(i as u64));
            assert!(
                late <= Duration::from_millis(10),
                "request {i} {late:?} late"
            );
        }
        assert!(report.recorder.send_lag.max() <= 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_in_flight_cap_drops_instead_of_delaying() {
        // 100/s for 1 s, each answer takes 1 s, at most 30 in flight: 30 sent, 70 dropped.
        let driver = SlowDriver::new(Duration::from_secs(1));
        let report = run_alone(driver, plan(100.0, 1, 30)).await;
        let stats = &report.recorder.kinds[0];
        assert_eq!((stats.sent, stats.dropped, stats.completed), (30, 70, 30));
        assert_eq!(report.recorder.timeline[0].dropped, 70);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_server_shows_in_latency_not_in_the_send_rate() {
        // The first answer takes 2.05 s, the rest 1 ms; with a cap of 1 in flight the run drops
        // what falls due during the stall (the 20 due from 0.1 s to 2 s) rather than queueing it.
        struct StallOnce(Mutex<bool>);
        impl Driver for StallOnce {
            type Payload = u16;
            async fn send(&self, _: &u16, _: Option<&TraceParent>) -> Reply {
                let first = std::mem::replace(&mut *self.0.lock().expect("lock"), false);
                let delay = if first { 2_050 } else { 1 };
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Outcome::Status(200).into()
            }
        }
        let report = run_alone(Arc::new(StallOnce(Mutex::new(true))), plan(10.0, 3, 1)).await;
        let stats = &report.recorder.kinds[0];
        assert_eq!(stats.sent + stats.dropped, 30);
        assert_eq!(
            stats.dropped, 20,
            "sends due during the 2 s stall are dropped"
        );
        assert!(stats.latency.max() >= 2_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_stops_sending_and_keeps_what_was_measured() {
        let driver = SlowDriver::new(Duration::from_millis(5));
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1_005)).await;
            canceller.cancel();
        });
        let report = run(driver, plan(100.0, 10, 1_000), stop, |_, _| {})
            .await
            .expect("valid plan");
        assert_eq!(report.stop, Stop::Interrupted);
        let stats = &report.recorder.kinds[0];
        assert!((100..=102).contains(&stats.sent), "{}", stats.sent);
        assert_eq!(
            stats.completed, stats.sent,
            "in-flight requests were drained"
        );
    }

    /// A run at a rate far beyond what the harness can send ends when its schedule's time is
    /// over (real time: the point is the harness falling behind).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_beyond_the_harness_still_ends_on_time() {
        let driver = SlowDriver::new(Duration::from_millis(1));
        let started = std::time::Instant::now();
        let report = run_alone(driver, plan(1e8, 1, 100)).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(report.stop, Stop::Completed);
        let stats = &report.recorder.kinds[0];
        assert!(stats.sent > 0);
        assert!(
            report.scheduled < 100_000_000,
            "{} of 10^8 arrivals were worked through",
            report.scheduled
        );
        assert_eq!(stats.sent + stats.dropped, report.scheduled);
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupted_run_waits_only_briefly_for_what_is_in_flight() {
        let driver = SlowDriver::new(Duration::from_secs(10));
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(505)).await;
            canceller.cancel();
        });
        let start = Instant::now();
        let report = run(driver, plan(100.0, 10, 1_000), stop, |_, _| {})
            .await
            .expect("valid plan");
        assert_eq!(report.stop, Stop::Interrupted);
        assert!(start.elapsed() <= Duration::from_millis(505) + INTERRUPTED_DRAIN);
        let stats = &report.recorder.kinds[0];
        assert_eq!(report.abandoned, stats.sent);
    }

    #[tokio::test(start_paused = true)]
    async fn the_mix_follows_the_weights() {
        struct Echo;
        impl Driver for Echo {
            type Payload = u16;
            async fn send(&self, status: &u16, _: Option<&TraceParent>) -> Reply {
                Outcome::Status(*status).into()
            }
        }
        let mut plan = plan(1_000.0, 10, 1_000);
        plan.kinds.push(LoadKind {
            name: "rare".into(),
            weight: 3,
            payloads: vec![400],
            expect: Outcome::Status(400),
            sampling: Sampling::NONE,
        });
        plan.kinds[0].weight = 7;
        let report = run_alone(Arc::new(Echo), plan).await;
        let [common, rare] = &report.recorder.kinds[..] else {
            panic!("two kinds")
        };
        assert_eq!(common.sent + rare.sent, 10_000);
        assert!((2_800..3_200).contains(&rare.sent), "{}", rare.sent);
        assert_eq!(common.unexpected + rare.unexpected, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn sampled_requests_carry_a_traceparent_announced_before_sending() {
        /// Echoes back, as the trace header, the trace id it was sent.
        struct Tracing(Mutex<Vec<Option<TraceParent>>>);
        impl Driver for Tracing {
            type Payload = u16;
            async fn send(&self, status: &u16, trace: Option<&TraceParent>) -> Reply {
                self.0.lock().expect("lock").push(trace.copied());
                Reply {
                    outcome: Outcome::Status(*status),
                    trace_header: trace.map(|t| format!("{:032x}", t.trace_id)),
                }
            }
        }
        let announced = Arc::new(Mutex::new(Vec::new()));
        let mut plan = plan(100.0, 1, 1_000);
        plan.kinds[0].sampling = Sampling {
            ratio: 0.25,
            max: 20,
        };
        let sink = Arc::clone(&announced);
        plan.announce = Some(Arc::new(move |id| sink.lock().expect("lock").push(id)));
        let (samples_tx, mut samples_rx) = tokio::sync::mpsc::unbounded_channel();
        plan.samples = Some(samples_tx);
        let driver = Arc::new(Tracing(Mutex::new(Vec::new())));
        run(
            Arc::clone(&driver),
            plan,
            CancellationToken::new(),
            |_, _| {},
        )
        .await
        .expect("valid plan");
        let sends = driver.0.lock().expect("lock").clone();
        let traced: Vec<u128> = sends.iter().flatten().map(|t| t.trace_id).collect();
        assert_eq!(sends.len(), 100);
        assert_eq!(traced.len(), 20, "25% of 100, capped at 20");
        assert_eq!(*announced.lock().expect("lock"), traced);
        let mut samples = Vec::new();
        while let Ok(sample) = samples_rx.try_recv() {
            samples.push(sample);
        }
        assert_eq!(samples.len(), 20);
        for sample in samples {
            assert_eq!(
                sample.trace_header.as_deref(),
                Some(format!("{:032x}", sample.trace.trace_id).as_str())
            );
            assert_eq!(sample.outcome, Outcome::Status(200));
        }
    }

    /// A driver that logs which target each send went to, in the order the sends ran.
    struct Logged {
        id: usize,
        delay: Duration,
        log: Arc<Mutex<Vec<usize>>>,
    }

    impl Driver for Logged {
        type Payload = u16;

        async fn send(&self, status: &u16, _: Option<&TraceParent>) -> Reply {
            self.log.lock().expect("lock").push(self.id);
            tokio::time::sleep(self.delay).await;
            Outcome::Status(*status).into()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn run_together_sends_every_request_to_each_target_first_in_turn() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let target = |id| {
            Arc::new(Logged {
                id,
                delay: Duration::from_millis(1),
                log: Arc::clone(&log),
            })
        };
        let reports = run_together(
            vec![target(0), target(1)],
            plan(100.0, 1, 10_000),
            CancellationToken::new(),
        )
        .await
        .expect("valid plan");
        assert_eq!(reports.len(), 2);
        for report in &reports {
            let stats = &report.recorder.kinds[0];
            assert_eq!((stats.sent, stats.completed, stats.dropped), (100, 100, 0));
            assert_eq!(report.scheduled, 100);
        }
        // Sends leave in the order they were dispatched: two per arrival, the first alternating.
        let log = log.lock().expect("lock").clone();
        assert_eq!(log.len(), 200);
        let firsts: Vec<usize> = log.chunks(2).map(|pair| pair[0]).collect();
        assert!(log.chunks(2).all(|pair| pair[0] != pair[1]), "{log:?}");
        assert_eq!(firsts.iter().filter(|&&first| first == 0).count(), 50);
        assert!(firsts.windows(2).all(|w| w[0] != w[1]), "{firsts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_target_drops_its_own_requests_only() {
        // 100/s for 1 s, at most 30 in flight per target: the target that takes 1 s per answer
        // drops 70, the quick one none.
        let log = Arc::new(Mutex::new(Vec::new()));
        let target = |id, delay| {
            Arc::new(Logged {
                id,
                delay,
                log: Arc::clone(&log),
            })
        };
        let reports = run_together(
            vec![
                target(0, Duration::from_secs(1)),
                target(1, Duration::from_millis(1)),
            ],
            plan(100.0, 1, 30),
            CancellationToken::new(),
        )
        .await
        .expect("valid plan");
        let counts = |r: &RunReport| {
            let k = &r.recorder.kinds[0];
            (k.sent, k.dropped, k.completed)
        };
        assert_eq!(counts(&reports[0]), (30, 70, 30));
        assert_eq!(counts(&reports[1]), (100, 0, 100));
    }
}
