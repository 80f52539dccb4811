//! What the load produced: HdrHistograms per request kind (latency from the intended send time and
//! service time from the actual send), counts by outcome, and a per-second timeline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::outcome::Outcome;
use super::sample::TraceParent;

/// Longest latency a histogram holds; longer ones are recorded as this (an hour, in µs).
const MAX_LATENCY_US: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds, from 1 µs to an hour at three significant digits: the
/// one shape of every histogram that merges (per kind, across kinds, shards and trials).
pub fn new_histogram() -> Histogram<u64> {
    latency_histogram(SIGNIFICANT_DIGITS)
}

fn latency_histogram(significant_digits: u8) -> Histogram<u64> {
    // Bounds and precision are constants known to be valid.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, significant_digits)
        .expect("constant histogram bounds are valid")
}

/// One finished request, as the driver task reports it.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Index of the request kind in the plan.
    pub kind: usize,
    /// When the schedule wanted it sent: latency is measured from here (no coordinated omission).
    pub intended: Instant,
    /// When it actually left.
    pub sent: Instant,
    /// When its answer (or failure) was complete.
    pub finished: Instant,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the outcome is what the kind expects.
    pub expected: bool,
    /// For a sampled request: its trace context and the trace id header that came back.
    pub trace: Option<(TraceParent, Option<String>)>,
}

/// Counts and histograms of one request kind.
#[derive(Debug, Clone)]
pub struct KindStats {
    /// The kind's name, as the scenario gives it.
    pub name: String,
    /// From the intended send time to the answer, µs.
    pub latency: Histogram<u64>,
    /// From the actual send to the answer, µs.
    pub service_time: Histogram<u64>,
    /// Requests sent.
    pub sent: u64,
    /// Sends due while `max_in_flight` requests were in flight, so never sent.
    pub dropped: u64,
    /// Requests that ended (answered, timed out or failed in transport).
    pub completed: u64,
    /// Completed with an outcome other than the expected one, including timeouts and transport errors.
    pub unexpected: u64,
    /// Completed requests by outcome label (`200`, `OK`, `timeout`, `transport`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// The first few transport errors, verbatim, for diagnosis.
    pub transport_errors: Vec<String>,
}

impl KindStats {
    fn new(name: String) -> Self {
        KindStats {
            name,
            latency: new_histogram(),
            service_time: new_histogram(),
            sent: 0,
            dropped: 0,
            completed: 0,
            unexpected: 0,
            outcomes: BTreeMap::new(),
            transport_errors: Vec::new(),
        }
    }
}

/// A second of the timeline keeps three percentiles, which two significant digits give within
/// 1%: its histogram is then 27 KB rather than 188, and a run allocates one a second.
const SECOND_SIGNIFICANT_DIGITS: u8 = 2;

/// Seconds of the timeline whose latencies are still kept whole: completions reach the recorder
/// in about the order they finish, so a second this far behind the newest is complete.
const OPEN_SECONDS: usize = 4;

/// One second of the run, by completion time (sends and drops by their own time).
#[derive(Debug, Clone)]
pub struct Second {
    /// Requests sent in this second.
    pub sent: u64,
    /// Requests that ended in this second.
    pub completed: u64,
    /// Of those, the ones with an outcome their kind does not expect.
    pub unexpected: u64,
    /// Sends due in this second that were dropped.
    pub dropped: u64,
    /// Latencies of the requests that ended in this second: whole while the second is recent,
    /// then only its percentiles, so that memory stays flat however long the run.
    latency: SecondLatency,
}

/// The latency percentiles of one second, µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondPercentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

#[derive(Debug, Clone)]
enum SecondLatency {
    /// Nothing completed (yet).
    Empty,
    /// Still recent: every latency, boxed, at [`SECOND_SIGNIFICANT_DIGITS`].
    Open(Box<Histogram<u64>>),
    /// Past: its percentiles.
    Sealed(SecondPercentiles),
}

impl Second {
    fn new() -> Self {
        Second {
            sent: 0,
            completed: 0,
            unexpected: 0,
            dropped: 0,
            latency: SecondLatency::Empty,
        }
    }

    /// Its latency percentiles; `None` when nothing completed in it (a stall, not a zero).
    pub fn percentiles(&self) -> Option<SecondPercentiles> {
        match &self.latency {
            SecondLatency::Empty => None,
            SecondLatency::Open(histogram) => Some(percentiles_of(histogram)),
            SecondLatency::Sealed(percentiles) => Some(*percentiles),
        }
    }

    fn record(&mut self, latency: u64) {
        match &mut self.latency {
            SecondLatency::Empty => {
                let mut histogram = Box::new(latency_histogram(SECOND_SIGNIFICANT_DIGITS));
                histogram.saturating_record(latency);
                self.latency = SecondLatency::Open(histogram);
            }
            SecondLatency::Open(histogram) => histogram.saturating_record(latency),
            // A completion this late is counted, but cannot move the stored percentiles.
            SecondLatency::Sealed(_) => {}
        }
    }

    fn seal(&mut self) {
        if let SecondLatency::Open(histogram) = &self.latency {
            self.latency = SecondLatency::Sealed(percentiles_of(histogram));
        }
    }
}

fn percentiles_of(histogram: &Histogram<u64>) -> SecondPercentiles {
    SecondPercentiles {
        p50: histogram.value_at_quantile(0.5),
        p95: histogram.value_at_quantile(0.95),
        p99: histogram.value_at_quantile(0.99),
    }
}

/// Accumulates a run. Owned by the schedule task, which takes each completion in as it polls the
/// requests in flight, so no histogram is ever shared or locked.
#[derive(Debug)]
pub struct Recorder {
    t0: Instant,
    /// Per request kind, in the plan's order.
    pub kinds: Vec<KindStats>,
    /// How late requests left against their intended time: the harness's own scheduling error,
    /// included in every latency (which is measured from the intended time).
    pub send_lag: Histogram<u64>,
    /// The run second by second from its start.
    pub timeline: Vec<Second>,
}

const KEPT_TRANSPORT_ERRORS: usize = 5;

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("histograms with the same bounds always add");
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Recorder {
    /// An empty record of a run started at `t0`, with one entry per kind.
    pub fn new(t0: Instant, kind_names: impl IntoIterator<Item = String>) -> Self {
        Recorder {
            t0,
            kinds: kind_names.into_iter().map(KindStats::new).collect(),
            send_lag: new_histogram(),
            timeline: Vec::new(),
        }
    }

    /// When the run started: second 0 of its timeline, from which other series of the run (the
    /// processes' memory) are timed too.
    pub fn started(&self) -> Instant {
        self.t0
    }

    fn second(&mut self, at: Instant) -> &mut Second {
        let index = at.saturating_duration_since(self.t0).as_secs() as usize;
        if self.timeline.len() <= index {
            let sealed = self.timeline.len().saturating_sub(OPEN_SECONDS);
            self.timeline.resize_with(index + 1, Second::new);
            let recent = (index + 1).saturating_sub(OPEN_SECONDS);
            for second in &mut self.timeline[sealed..recent] {
                second.seal();
            }
        }
        &mut self.timeline[index]
    }

    /// Counts a request of `kind` sent at `at`.
    pub fn sent(&mut self, kind: usize, at: Instant) {
        self.kinds[kind].sent += 1;
        self.second(at).sent += 1;
    }

    /// Counts a send of `kind` due at `due` that was dropped.
    pub fn dropped(&mut self, kind: usize, due: Instant) {
        self.kinds[kind].dropped += 1;
        self.second(due).dropped += 1;
    }

    /// Records how a request ended: its latency, service time, outcome and second.
    pub fn completed(&mut self, c: Completion) {
        let latency = micros(c.finished.saturating_duration_since(c.intended)).max(1);
        let service = micros(c.finished.saturating_duration_since(c.sent)).max(1);
        let lag = micros(c.sent.saturating_duration_since(c.intended)).max(1);
        self.send_lag.saturating_record(lag);
        let stats = &mut self.kinds[c.kind];
        stats.completed += 1;
        stats.latency.saturating_record(latency);
        stats.service_time.saturating_record(service);
        *stats.outcomes.entry(c.outcome.label()).or_default() += 1;
        if !c.expected {
            stats.unexpected += 1;
        }
        if let Outcome::Transport(error) = &c.outcome
            && stats.transport_errors.len() < KEPT_TRANSPORT_ERRORS
        {
            stats.transport_errors.push(error.clone());
        }
        let second = self.second(c.finished);
        second.completed += 1;
        second.record(latency);
        if !c.expected {
            second.unexpected += 1;
        }
    }

    /// Adds a later run of the same kinds (another trial of an experiment): counts add,
    /// histograms merge, and its seconds follow this run's on the timeline.
    pub fn absorb(&mut self, later: Recorder) {
        for (mine, theirs) in self.kinds.iter_mut().zip(later.kinds) {
            debug_assert_eq!(mine.name, theirs.name, "runs of the same kinds");
            add(&mut mine.latency, &theirs.latency);
            add(&mut mine.service_time, &theirs.service_time);
            mine.sent += theirs.sent;
            mine.dropped += theirs.dropped;
            mine.completed += theirs.completed;
            mine.unexpected += theirs.unexpected;
            for (label, count) in theirs.outcomes {
                *mine.outcomes.entry(label).or_default() += count;
            }
            let room = KEPT_TRANSPORT_ERRORS.saturating_sub(mine.transport_errors.len());
            mine.transport_errors
                .extend(theirs.transport_errors.into_iter().take(room));
        }
        add(&mut self.send_lag, &later.send_lag);
        self.timeline.extend(later.timeline);
    }

    /// All kinds' latency merged: percentiles of the whole run, never averaged.
    pub fn merged_latency(&self) -> Histogram<u64> {
        self.merged(|k| &k.latency)
    }

    /// Every kind's service time in one histogram, µs.
    pub fn merged_service_time(&self) -> Histogram<u64> {
        self.merged(|k| &k.service_time)
    }

    fn merged(&self, pick: impl Fn(&KindStats) -> &Histogram<u64>) -> Histogram<u64> {
        let mut all = new_histogram();
        for kind in &self.kinds {
            all.add(pick(kind))
                .expect("histograms with the same bounds always add");
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(
        kind: usize,
        t0: Instant,
        intended_ms: u64,
        sent_ms: u64,
        finished_ms: u64,
        outcome: Outcome,
        expected: bool,
    ) -> Completion {
        let at = |ms| t0 + Duration::from_millis(ms);
        Completion {
            kind,
            intended: at(intended_ms),
            sent: at(sent_ms),
            finished: at(finished_ms),
            outcome,
            expected,
            trace: None,
        }
    }

    #[test]
    fn latency_counts_from_the_intended_time_and_service_time_from_the_send() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0, ["quote".to_owned()]);
        recorder.sent(0, t0 + Duration::from_millis(900));
        // Due at 0, held up until 900 ms (a stalled sender or server), answered at 1000 ms.
        recorder.completed(completion(0, t0, 0, 900, 1_000, Outcome::Status(200), true));
        let stats = &recorder.kinds[0];
        assert_eq!(
            stats.latency.max(),
            stats.latency.highest_equivalent(1_000_000)
        );
        assert_eq!(
            stats.service_time.max(),
            stats.service_time.highest_equivalent(100_000)
        );
        assert_eq!(recorder.timeline.len(), 2);
        assert_eq!(
            (recorder.timeline[0].sent, recorder.timeline[1].completed),
            (1, 1)
        );
    }

    #[test]
    fn a_later_run_adds_its_counts_histograms_and_seconds() {
        let t0 = Instant::now();
        let run = |finished_ms, outcome, expected| {
            let mut recorder = Recorder::new(t0, ["quote".to_owned()]);
            recorder.sent(0, t0);
            recorder.completed(completion(0, t0, 0, 0, finished_ms, outcome, expected));
            recorder
        };
        let mut first = run(10, Outcome::Status(200), true);
        first.absorb(run(1_500, Outcome::Status(503), false));
        let stats = &first.kinds[0];
        assert_eq!((stats.sent, stats.completed, stats.unexpected), (2, 2, 1));
        assert_eq!(stats.latency.len(), 2);
        assert_eq!(stats.outcomes.get("503"), Some(&1));
        assert_eq!(stats.outcomes.get("200"), Some(&1));
        // One second from the first run, then the later run's two.
        assert_eq!(first.timeline.len(), 3);
        assert_eq!(first.send_lag.len(), 2);
    }

    #[test]
    fn outcomes_are_counted_by_label_and_expectation() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0, ["ok".to_owned(), "bad".to_owned()]);
        recorder.completed(completion(0, t0, 0, 0, 5, Outcome::Status(200), true));
        recorder.completed(completion(0, t0, 0, 0, 5, Outcome::Status(503), false));
        recorder.completed(completion(
            1,
            t0,
            0,
            0,
            5,
            Outcome::Code(tonic::Code::InvalidArgument),
            true,
        ));
        recorder.completed(completion(1, t0, 0, 0, 5, Outcome::Timeout, false));
        recorder.completed(completion(
            1,
            t0,
            0,
            0,
            5,
            Outcome::Transport("refused".into()),
            false,
        ));
        recorder.dropped(1, t0);
        let [ok, bad] = &recorder.kinds[..] else {
            panic!("two kinds")
        };
        assert_eq!((ok.completed, ok.unexpected), (2, 1));
        assert_eq!(
            ok.outcomes,
            BTreeMap::from([("200".into(), 1), ("503".into(), 1)])
        );
        assert_eq!((bad.completed, bad.unexpected, bad.dropped), (3, 2, 1));
        assert_eq!(bad.outcomes["INVALID_ARGUMENT"], 1);
        assert_eq!(bad.transport_errors, ["refused"]);
        assert_eq!(recorder.merged_latency().len(), 5);
        assert_eq!(recorder.timeline[0].unexpected, 3);
    }

    #[test]
    fn past_seconds_keep_their_percentiles_not_their_histograms() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0, ["quote".to_owned()]);
        // Second s: latencies 1..=100 ms plus s ms, so each second's percentiles differ.
        for s in 0..60u64 {
            for ms in 1..=100 {
                let finished = s * 1000 + 500;
                let c = completion(
                    0,
                    t0,
                    finished - ms - s,
                    finished - ms - s,
                    finished,
                    Outcome::Status(200),
                    true,
                );
                recorder.completed(c);
            }
        }
        let open = recorder
            .timeline
            .iter()
            .filter(|s| matches!(s.latency, SecondLatency::Open(_)))
            .count();
        assert!(
            open <= OPEN_SECONDS,
            "{open} seconds hold a whole histogram"
        );
        for (s, second) in recorder.timeline.iter().enumerate() {
            let p = second
                .percentiles()
                .expect("every second completed requests");
            let s = s as u64;
            // A second's precision: two significant digits, within 1%.
            let near = |got: u64, ms: u64| got.abs_diff((ms + s) * 1000) <= (ms + s) * 1000 / 100;
            assert!(
                near(p.p50, 50) && near(p.p95, 95) && near(p.p99, 99),
                "second {s}: {p:?}"
            );
        }
    }

    #[test]
    fn a_completion_for_a_sealed_second_is_counted_but_leaves_its_percentiles() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0, ["quote".to_owned()]);
        recorder.completed(completion(0, t0, 0, 0, 10, Outcome::Status(200), true));
        recorder.completed(completion(
            0,
            t0,
            10_000,
            10_000,
            10_010,
            Outcome::Status(200),
            true,
        ));
        let before = recorder.timeline[0].percentiles();
        recorder.completed(completion(0, t0, 0, 0, 900, Outcome::Status(200), true));
        assert_eq!(recorder.timeline[0].completed, 2);
        assert_eq!(recorder.timeline[0].percentiles(), before);
        assert_eq!(
            recorder.timeline[5].percentiles(),
            None,
            "a second without completions"
        );
    }
}
