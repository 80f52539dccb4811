//! `verify.streams`: trace checks for a stream load's updates. The updates are traces of their
//! own (the engine's PRODUCER span, the gateway's CONSUMER span), which the load learns of only as
//! they arrive, so the checks sample the traced updates it kept rather than requests it sends.

use std::time::Duration;

use super::super::model::{Protocol, StreamChecks};
use super::super::read::{Cx, count, duration_at_most, mapping};
use super::super::tree::{Node, Origin};

/// The most updates one run checks: each is one lookup, or a few, in the trace source.
const MAX_SAMPLE: usize = 10_000;
/// The longest wait for the sampled updates' spans: as long as any duration of a scenario.
const MAX_TIMEOUT: (Duration, &str) = (Duration::from_secs(86_400), "1440m");

/// `streams: {sample: 100, timeout: 10s}`, each optional (`streams: {}` takes both defaults).
pub(super) fn streams(
    cx: &mut Cx,
    node: Option<&Node>,
    at: Origin,
    protocol: Protocol,
) -> Option<StreamChecks> {
    if protocol != Protocol::WebSocket {
        cx.err(
            at,
            "verify.streams",
            "applies to websocket: kinds only; a request load's traces are verify.traces",
        );
        return None;
    }
    let defaults = StreamChecks::default();
    let Some(node) = node else {
        return Some(defaults);
    };
    let fields = mapping(cx, node, "verify.streams", Some(&["sample", "timeout"]))?;
    let sample = fields.read_or(cx, "sample", defaults.sample, |cx, n, at| {
        count(cx, n, at, MAX_SAMPLE)
    });
    let timeout = fields.read_or(cx, "timeout", defaults.timeout, |cx, n, at| {
        duration_at_most(cx, n, at, true, MAX_TIMEOUT)
    });
    Some(StreamChecks {
        sample: sample?,
        timeout: timeout?,
    })
}
