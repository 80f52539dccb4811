//! The stream rules: what a stream load received against the gateway's WebSocket counters and
//! the engine's stream counters. An update the harness missed (a gap in its sequence) must have
//! been dropped by the gateway and counted as such; one dropped silently shows as a mismatch.

use super::STREAM_RPC;
use crate::bundled::STREAM_ROUTE;
use crate::metrics::reconcile::{Out, Pair, matchers};

/// What a stream load received, over all its kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReceived {
    /// Connections upgraded (101).
    pub connected: u64,
    /// Updates received.
    pub updates: u64,
    /// Updates missing from the connections' sequences.
    pub lost: u64,
}

/// The upgrades, the updates written and the updates dropped.
pub(super) fn gateway(out: &mut Out<'_>, pair: &Pair<'_>, stream: &StreamReceived) {
    let upgrade = [("method", "GET"), ("path", STREAM_ROUTE), ("status", "101")];
    out.compare(
        "http_requests_total",
        matchers(&upgrade),
        stream.connected as f64,
        pair.delta("http_requests_total", &upgrade),
        "stream connections the harness saw upgraded".into(),
    );
    out.compare(
        "ws_messages_sent_total",
        String::new(),
        stream.updates as f64,
        pair.delta("ws_messages_sent_total", &[]),
        "updates the harness received".into(),
    );
    out.at_least(
        "ws_messages_dropped_total",
        String::new(),
        stream.lost as f64,
        pair.delta("ws_messages_dropped_total", &[]),
        "updates missing from the harness's sequences, each dropped and counted".into(),
    );
}

/// The streams opened and the updates sent.
pub(super) fn engine(out: &mut Out<'_>, pair: &Pair<'_>, stream: &StreamReceived) {
    out.compare(
        "grpc_requests_total",
        matchers(&[STREAM_RPC]),
        stream.connected as f64,
        pair.delta("grpc_requests_total", &[STREAM_RPC]),
        "one stream per subscription the harness held, counted when it ended".into(),
    );
    out.at_least(
        "stream_updates_sent_total",
        String::new(),
        (stream.updates + stream.lost) as f64,
        pair.delta("stream_updates_sent_total", &[]),
        "updates the harness received or missed".into(),
    );
}
