//! The `verify:` section and each kind's `trace_sample`, with the defaults that fit the bundled
//! engine and gateway: a scenario that writes `verify: {traces: {}}` checks the full chain.

mod metrics;
mod pii;
mod streams;
mod traces;

use super::model::{Protocol, Verify};
use super::read::{Cx, mapping};
use super::tree::Node;

pub(crate) use traces::bundled_trace_checks;
pub(super) use traces::sample_share;

/// What an expected attribute or label value may stand for: the outcome the harness received.
const PLACEHOLDERS: &[&str] = &["{status}", "{code}"];

/// `bundled` says whether every request kind is the bundled API's shorthand: only then do the
/// bundled system's chain and services apply by default.
pub(super) fn verify(
    cx: &mut Cx,
    node: &Node,
    protocol: Protocol,
    system: Declared<'_>,
) -> Option<Verify> {
    let (managed, bundled) = (system.managed, system.bundled);
    let fields = mapping(
        cx,
        node,
        "verify",
        Some(&["traces", "metrics", "pii", "streams"]),
    )?;
    let before = cx.problems.len();
    let traces = fields
        .has("traces")
        .then(|| {
            let at = fields
                .entries
                .iter()
                .find(|e| e.1 == "traces")
                .map(|e| e.0.origin);
            traces::traces(
                cx,
                fields.get("traces"),
                at.unwrap_or(node.origin),
                protocol,
                managed,
                bundled,
                system.jaeger,
            )
        })
        .flatten();
    let metrics = fields
        .has("metrics")
        .then(|| metrics::metrics(cx, fields.get("metrics"), node.origin, system))
        .flatten();
    let streams = fields
        .has("streams")
        .then(|| {
            let at = fields
                .entries
                .iter()
                .find(|e| e.1 == "streams")
                .map_or(node.origin, |e| e.0.origin);
            streams::streams(cx, fields.get("streams"), at, protocol)
        })
        .flatten();
    let pii = fields
        .has("pii")
        .then(|| pii::pii(cx, fields.get("pii")))
        .flatten();
    (cx.problems.len() == before).then_some(Verify {
        traces,
        metrics,
        streams,
        pii,
    })
}

/// What the metrics defaults depend on.
#[derive(Clone, Copy)]
pub(super) struct Declared<'a> {
    /// The harness launches the bundled services.
    pub(super) managed: bool,
    /// It launches a Jaeger too (`system.managed.jaeger`), the trace source by default.
    pub(super) jaeger: bool,
    /// Every request kind is the bundled API's shorthand.
    pub(super) bundled: bool,
    /// The request kinds' names.
    pub(super) kinds: &'a [String],
}
