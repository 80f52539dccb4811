//! What a stream load measured, per request kind: the connects, every update received (latency
//! from its event time, its sequence, its trace context) and how each connection ended. Counted
//! as messages arrive, so that nothing per message is kept but histograms and counts.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::super::recorder::new_histogram;

/// How many traced updates are kept for trace checks, whatever the run's length.
pub const KEPT_TRACED: usize = 10_000;
/// How many seconds the per-second message counts cover at most: a day.
const MAX_SECONDS: usize = 86_400;
/// How many distinct connection-failure reasons are kept (the rest count as `other`).
const MAX_REASONS: usize = 32;

/// One kind's measurements.
#[derive(Debug, Clone)]
pub struct StreamKindStats {
    /// The kind's name.
    pub name: String,
    /// Connects attempted.
    pub connects: u64,
    /// Connects whose upgrade succeeded.
    pub connected: u64,
    /// Connects that failed, by reason (`connect`, `timeout`, `status 403`, `handshake`, ...).
    pub connect_failures: BTreeMap<String, u64>,
    /// Connects started later than their intended time by more than [`super::LATE`].
    pub late_connects: u64,
    /// Connects due while the most connections were open: not made, counted.
    pub dropped_connects: u64,
    /// Updates received: messages with the event-time field.
    pub updates: u64,
    /// Other messages received (acknowledgements, say).
    pub other_messages: u64,
    /// Messages that were no JSON object, or whose event time or sequence was no number.
    pub unreadable: u64,
    /// Updates missing from a connection's sequence (a gap of n counts n).
    pub lost: u64,
    /// Updates whose sequence was not above the one before (repeated or out of order).
    pub sequence_errors: u64,
    /// Updates that carried a non-empty trace context.
    pub traced: u64,
    /// From the update's event time to its receipt, µs.
    pub latency: Histogram<u64>,
    /// From the subscribe sent to the first update of the connection, µs.
    pub first_message: Histogram<u64>,
    /// How connections ended: `1000`, `1008`, `1011`, `other` (another close code), `none` (no
    /// close frame: reset, or the stream ended), `error` (a read failed, e.g. a message too large).
    pub closes: BTreeMap<String, u64>,
    /// Up to a few error texts, the first ones seen.
    pub errors: Vec<String>,
}

impl StreamKindStats {
    /// An empty record for kind `name`.
    pub fn new(name: String) -> Self {
        StreamKindStats {
            name,
            connects: 0,
            connected: 0,
            connect_failures: BTreeMap::new(),
            late_connects: 0,
            dropped_connects: 0,
            updates: 0,
            other_messages: 0,
            unreadable: 0,
            lost: 0,
            sequence_errors: 0,
            traced: 0,
            latency: new_histogram(),
            first_message: new_histogram(),
            closes: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// Adds another kind's counts (for the totals over all kinds).
    pub fn add(&mut self, other: &StreamKindStats) {
        self.connects += other.connects;
        self.connected += other.connected;
        for (reason, n) in &other.connect_failures {
            *self.connect_failures.entry(reason.clone()).or_default() += n;
        }
        self.late_connects += other.late_connects;
        self.dropped_connects += other.dropped_connects;
        self.updates += other.updates;
        self.other_messages += other.other_messages;
        self.unreadable += other.unreadable;
        self.lost += other.lost;
        self.sequence_errors += other.sequence_errors;
        self.traced += other.traced;
        // Both histograms have the same bounds: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.first_message.add(&other.first_message);
        for (code, n) in &other.closes {
            *self.closes.entry(code.clone()).or_default() += n;
        }
        for error in &other.errors {
            self.error(error);
        }
    }

    pub(super) fn connect_failed(&mut self, reason: &str) {
        let reason = if self.connect_failures.len() >= MAX_REASONS
            && !self.connect_failures.contains_key(reason)
        {
            "other"
        } else {
            reason
        };
        *self.connect_failures.entry(reason.to_owned()).or_default() += 1;
    }

    pub(super) fn closed(&mut self, code: &str) {
        *self.closes.entry(code.to_owned()).or_default() += 1;
    }

    pub(super) fn error(&mut self, text: &str) {
        if self.errors.len() < 5 && !self.errors.iter().any(|e| e == text) {
            self.errors.push(text.to_owned());
        }
    }
}

/// A traced update as received: enough to look its trace up later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedUpdate {
    /// The request kind.
    pub kind: usize,
    /// The `traceparent` the message carried.
    pub traceparent: String,
    /// Its sequence, if the message had one.
    pub sequence: Option<u64>,
}

/// Everything a stream load measured.
#[derive(Debug, Clone)]
pub struct StreamStats {
    /// One entry per kind, in the plan's order.
    pub kinds: Vec<StreamKindStats>,
    /// Updates received in each second from the start of the load.
    pub per_second: Vec<u64>,
    /// The first traced updates received, up to [`KEPT_TRACED`].
    pub traced: Vec<TracedUpdate>,
}

impl StreamStats {
    /// An empty record with one entry per kind.
    pub fn new(kind_names: impl IntoIterator<Item = String>) -> Self {
        StreamStats {
            kinds: kind_names.into_iter().map(StreamKindStats::new).collect(),
            per_second: Vec::new(),
            traced: Vec::new(),
        }
    }

    /// The totals over all kinds.
    pub fn total(&self) -> StreamKindStats {
        let mut total = StreamKindStats::new("all".to_owned());
        for kind in &self.kinds {
            total.add(kind);
        }
        total
    }

    /// Counts an update received `since_start` into the load.
    pub(super) fn count_second(&mut self, since_start: Duration) {
        let second = since_start.as_secs() as usize;
        if second >= MAX_SECONDS {
            return;
        }
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }
}

/// A connection's place in its stream's sequence.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sequence {
    last: Option<u64>,
}

/// What one sequence number says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The next one, or the first seen.
    InOrder,
    /// This many are missing before it.
    Gap(u64),
    /// Not above the one before: repeated, or out of order.
    Error,
}

impl Sequence {
    /// The first number seen is the baseline: a stream may start anywhere.
    pub(super) fn next(&mut self, sequence: u64) -> Step {
        match self.last {
            None => {
                self.last = Some(sequence);
                Step::InOrder
            }
            Some(last) if sequence <= last => Step::Error,
            Some(last) => {
                self.last = Some(sequence);
                match sequence - last - 1 {
                    0 => Step::InOrder,
                    missing => Step::Gap(missing),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_what_is_missing_and_going_back_is_an_error() {
        let mut s = Sequence::default();
        let steps: Vec<Step> = [5, 6, 9, 9, 7, 10].into_iter().map(|n| s.next(n)).collect();
        assert_eq!(
            steps,
            [
                Step::InOrder,
                Step::InOrder,
                Step::Gap(2),
                Step::Error,
                Step::Error,
                Step::InOrder
            ]
        );
    }

    #[test]
    fn totals_add_every_kind() {
        let mut stats = StreamStats::new(["a".to_owned(), "b".to_owned()]);
        stats.kinds[0].updates = 3;
        stats.kinds[0].latency.saturating_record(10);
        stats.kinds[1].updates = 2;
        stats.kinds[1].lost = 1;
        stats.kinds[1].closed("1000");
        stats.kinds[0].closed("1000");
        let total = stats.total();
        assert_eq!((total.updates, total.lost), (5, 1));
        assert_eq!(total.latency.len(), 1);
        assert_eq!(total.closes["1000"], 2);
    }

    #[test]
    fn seconds_are_bounded() {
        let mut stats = StreamStats::new(["a".to_owned()]);
        stats.count_second(Duration::from_millis(2500));
        stats.count_second(Duration::from_secs(MAX_SECONDS as u64 + 5));
        assert_eq!(stats.per_second, [0, 0, 1]);
    }
}
