//! The stream load: open-loop WebSocket subscriptions. The phases' rate is the rate of connects,
//! each due at its intended time whatever became of the others (one that cannot start on time is
//! counted late, never silently delayed; one due while the most connections are open is dropped
//! and counted). Each connection subscribes, is held until the phases end (or for its `hold`,
//! which may outlast them: connects at 10/s for 5 s, each held 20 s), then
//! unsubscribes and closes, and every message it reads is measured ([`stats`]). A subscription is
//! no request and answer, so this is no [`super::Driver`]; it runs on the load thread all the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::Uri;
use hyper::header::HeaderMap;
use rand::SeedableRng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::recorder::Recorder;
use super::runner::{PlanError, RunReport, Stop};
use super::sample::Announce;
use super::schedule::{Arrivals, RatePhase, Schedule};
use super::thread::on_load_thread;

mod conn;
pub mod stats;

pub use stats::{StreamKindStats, StreamStats, TracedUpdate};

/// A connect that starts more than this after its intended time is counted late.
pub const LATE: Duration = Duration::from_millis(10);

/// One subscription, rendered before the run.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// `ws://` or `wss://`, or a path below the target.
    pub url: String,
    /// Sent with the upgrade request.
    pub headers: HeaderMap,
    /// The first message, once connected.
    pub subscribe: Option<String>,
    /// Sent before closing.
    pub unsubscribe: Option<String>,
}

/// Which JSON fields of a message carry what is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// Nanoseconds since the epoch at which the update was produced; a message without it is not
    /// an update.
    pub event_time: String,
    /// The stream's sequence number, if it has one.
    pub sequence: Option<String>,
    /// A W3C `traceparent`, if the messages carry one.
    pub traceparent: Option<String>,
    /// The subscription's trace id (32 hex digits) in a message that is no update, if the
    /// server says it (the bundled gateway's `subscribed` does).
    pub subscription_trace: Option<String>,
}

/// One kind of subscriber in the mix.
#[derive(Debug, Clone)]
pub struct StreamKind {
    /// Its name, in results.
    pub name: String,
    /// Its share of the connects is `weight / sum of weights`.
    pub weight: u32,
    /// Rendered variants; each connect picks one uniformly.
    pub payloads: Vec<Arc<Subscription>>,
    /// What its messages carry where.
    pub fields: Fields,
    /// How long each connection is held; `None`: until the phases end.
    pub hold: Option<Duration>,
    /// A pause after each message read: a slow consumer.
    pub read_delay: Duration,
    /// The largest message accepted; a larger one ends the connection.
    pub max_message_bytes: usize,
    /// The socket's receive buffer, bytes; `None`: the kernel's default (which grows to MBs).
    pub receive_buffer: Option<u32>,
}

/// Everything the stream load needs.
#[derive(Clone)]
pub struct StreamPlan {
    /// The mix of subscribers.
    pub kinds: Vec<StreamKind>,
    /// The connect rate over time.
    pub phases: Vec<RatePhase>,
    /// How connects are spread within the rate.
    pub arrivals: Arrivals,
    /// Seeds the mix.
    pub seed: u64,
    /// A connect due while this many connections are open is dropped, never delayed.
    pub max_connections: usize,
    /// How long a connect and its upgrade may take; also how long a close may take.
    pub timeout: Duration,
    /// Told the trace id of each traced update kept and of each subscription, so that a trace
    /// source that keeps only the traces it was told of keeps theirs.
    pub announce: Option<Announce>,
}

/// Where the connections go: the target's base URL (`http(s)://host:port[/prefix]`, its scheme
/// made `ws`/`wss`) and the one TLS configuration of the harness.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    /// The system's target.
    pub base: Uri,
    /// For `wss://`.
    pub tls: rustls::ClientConfig,
}

/// What the connections share: the recorder of connects and the stream measurements.
struct Shared {
    recorder: Mutex<Recorder>,
    stats: Mutex<StreamStats>,
    open: AtomicUsize,
    t0: Instant,
    announce: Option<Announce>,
}

impl Shared {
    fn recorder(&self) -> MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn stats(&self) -> MutexGuard<'_, StreamStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs `plan` against `target` until the phases end or `stop` is cancelled; `on_tick` is called
/// about once a second with the recorder of connects, for progress output.
pub async fn run(
    target: StreamTarget,
    plan: StreamPlan,
    stop: CancellationToken,
    on_tick: impl FnMut(&Recorder, Duration) + Send + 'static,
) -> Result<RunReport, PlanError> {
    on_load_thread(move |_| drive(target, plan, stop, on_tick)).await
}

async fn drive(
    target: StreamTarget,
    plan: StreamPlan,
    stop: CancellationToken,
    mut on_tick: impl FnMut(&Recorder, Duration) + Send + 'static,
) -> Result<RunReport, PlanError> {
    if plan.kinds.is_empty() {
        return Err(PlanError::NoKinds);
    }
    if let Some(kind) = plan.kinds.iter().find(|k| k.payloads.is_empty()) {
        return Err(PlanError::NoPayloads(kind.name.clone()));
    }
    let mix =
        WeightedIndex::new(plan.kinds.iter().map(|k| k.weight)).map_err(|_| PlanError::Weights)?;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let names = || plan.kinds.iter().map(|k| k.name.clone());
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder::new(t0.into_std(), names())),
        stats: Mutex::new(StreamStats::new(names())),
        open: AtomicUsize::new(0),
        t0,
        announce: plan.announce.clone(),
    });
    let total: Duration = plan.phases.iter().map(|p| p.duration).sum();
    let end = t0 + total;
    // Cancelled when the phases end or the run is stopped: every connection then closes.
    let closing = stop.child_token();
    let target = Arc::new(target);
    let mut tasks = JoinSet::new();
    let mut scheduled = 0u64;
    let (mut first_send, mut last_send) = (None, None);
    let mut next_tick = t0 + Duration::from_secs(1);
    // The load lasts until the phases end and every `hold` has passed.
    let mut last_until = end;
    let mut tick = |shared: &Shared, now: Instant, next_tick: &mut Instant| {
        if now >= *next_tick {
            on_tick(&shared.recorder(), now - t0);
            *next_tick += Duration::from_secs(1);
        }
    };
    'schedule: for arrival in Schedule::new(plan.phases.clone(), plan.arrivals) {
        let due = t0 + arrival.offset;
        loop {
            let now = Instant::now();
            tick(&shared, now, &mut next_tick);
            if now >= due {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due.min(next_tick)) => {}
                () = stop.cancelled() => break 'schedule,
            }
        }
        while tasks.try_join_next().is_some() {}
        scheduled += 1;
        let k = mix.sample(&mut rng);
        let kind = &plan.kinds[k];
        let payload =
            Arc::clone(&kind.payloads[rand::Rng::random_range(&mut rng, 0..kind.payloads.len())]);
        if shared.open.load(Ordering::Relaxed) >= plan.max_connections {
            shared.recorder().dropped(k, due.into_std());
            shared.stats().kinds[k].dropped_connects += 1;
            continue;
        }
        let now = Instant::now();
        first_send.get_or_insert(now);
        last_send = Some(now);
        {
            let mut stats = shared.stats();
            stats.kinds[k].connects += 1;
            if now.saturating_duration_since(due) > LATE {
                stats.kinds[k].late_connects += 1;
            }
        }
        shared.recorder().sent(k, now.into_std());
        shared.open.fetch_add(1, Ordering::Relaxed);
        let until = kind.hold.map_or(end, |hold| due + hold);
        last_until = last_until.max(until);
        tasks.spawn(conn::connection(conn::Connection {
            shared: Arc::clone(&shared),
            target: Arc::clone(&target),
            kind: k,
            options: kind.clone_options(),
            subscription: payload,
            timeout: plan.timeout,
            intended: due,
            sent: now,
            until,
            closing: closing.clone(),
        }));
    }
    // Held until the phases end and every hold has passed (or a stop), ticking as before.
    let end = last_until;
    loop {
        let now = Instant::now();
        tick(&shared, now, &mut next_tick);
        if now >= end || stop.is_cancelled() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(end.min(next_tick)) => {}
            () = stop.cancelled() => {}
        }
    }
    closing.cancel();
    // Each connection closes within its own timeout; one that does not by then is abandoned.
    let drained = tokio::time::timeout(plan.timeout * 2 + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let abandoned = if drained.is_err() {
        let left = tasks.len() as u64;
        tasks.abort_all();
        left
    } else {
        0
    };
    while tasks.join_next().await.is_some() {}
    // Every connection has ended: what it recorded is taken whole.
    let recorder = std::mem::replace(
        &mut *shared.recorder(),
        Recorder::new(t0.into_std(), names()),
    );
    let stats = std::mem::replace(&mut *shared.stats(), StreamStats::new(names()));
    Ok(RunReport {
        recorder,
        send_duration: match (first_send, last_send) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        },
        scheduled,
        stop: if stop.is_cancelled() {
            Stop::Interrupted
        } else {
            Stop::Completed
        },
        abandoned,
        stream: Some(Box::new(stats)),
    })
}

/// What a connection needs of its kind.
#[derive(Debug, Clone)]
struct Options {
    fields: Fields,
    read_delay: Duration,
    max_message_bytes: usize,
    receive_buffer: Option<u32>,
}

impl StreamKind {
    fn clone_options(&self) -> Arc<Options> {
        Arc::new(Options {
            fields: self.fields.clone(),
            read_delay: self.read_delay,
            max_message_bytes: self.max_message_bytes,
            receive_buffer: self.receive_buffer,
        })
    }
}
