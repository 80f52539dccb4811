//! The `stream` section of `result.json`: what a stream load measured of its messages, per kind
//! and over all kinds, with its histograms stored whole as the request latencies are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Percentiles, encode_histogram};
use crate::load::stream::{StreamKindStats, StreamStats};

/// A stream load's messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamResult {
    /// Over all kinds.
    pub total: StreamKindResult,
    /// One entry per kind, in the scenario's order.
    pub kinds: Vec<StreamKindResult>,
    /// Updates received in each second from the start of the load.
    pub updates_per_second: Vec<u64>,
}

/// One kind's messages (or all kinds').
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamKindResult {
    pub(crate) name: String,
    pub(crate) connects: u64,
    pub(crate) connected: u64,
    /// Failed connects by reason.
    pub(crate) connect_failures: BTreeMap<String, u64>,
    pub(crate) late_connects: u64,
    pub(crate) dropped_connects: u64,
    pub(crate) updates: u64,
    pub(crate) other_messages: u64,
    pub(crate) unreadable: u64,
    pub(crate) lost: u64,
    pub(crate) sequence_errors: u64,
    pub(crate) traced: u64,
    /// From each update's event time to its receipt, µs.
    pub(crate) latency: Percentiles,
    pub(crate) latency_histogram: String,
    /// From the subscribe to the connection's first update, µs.
    pub(crate) first_message: Percentiles,
    pub(crate) first_message_histogram: String,
    /// How connections ended: `1000`, `1008`, `1011`, `other`, `none` (no close frame), `error`.
    pub(crate) closes: BTreeMap<String, u64>,
    pub(crate) errors: Vec<String>,
}

impl StreamKindResult {
    fn of(stats: &StreamKindStats) -> Self {
        StreamKindResult {
            name: stats.name.clone(),
            connects: stats.connects,
            connected: stats.connected,
            connect_failures: stats.connect_failures.clone(),
            late_connects: stats.late_connects,
            dropped_connects: stats.dropped_connects,
            updates: stats.updates,
            other_messages: stats.other_messages,
            unreadable: stats.unreadable,
            lost: stats.lost,
            sequence_errors: stats.sequence_errors,
            traced: stats.traced,
            latency: Percentiles::of(&stats.latency),
            latency_histogram: encode_histogram(&stats.latency),
            first_message: Percentiles::of(&stats.first_message),
            first_message_histogram: encode_histogram(&stats.first_message),
            closes: stats.closes.clone(),
            errors: stats.errors.clone(),
        }
    }

    /// Updates missing from their connection's sequence, over those received and missing.
    pub fn lost_rate(&self) -> f64 {
        let expected = self.updates + self.lost;
        if expected == 0 {
            0.0
        } else {
            self.lost as f64 / expected as f64
        }
    }

    /// Connects that failed.
    pub fn connect_errors(&self) -> u64 {
        self.connect_failures.values().sum()
    }

    /// The kind's name (`all` for the totals).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The update latency percentiles, µs.
    pub fn latency(&self) -> &Percentiles {
        &self.latency
    }

    /// The time-to-first-update percentiles, µs.
    pub fn first_message(&self) -> &Percentiles {
        &self.first_message
    }
}

impl StreamResult {
    pub(crate) fn of(stats: &StreamStats) -> Self {
        StreamResult {
            total: StreamKindResult::of(&stats.total()),
            kinds: stats.kinds.iter().map(StreamKindResult::of).collect(),
            updates_per_second: stats.per_second.clone(),
        }
    }
}
