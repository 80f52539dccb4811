//! The `load:` section: the protocol, the rate phases and how arrivals are spread over them,
//! with the limits the load generator works within.

use std::time::Duration;

use super::model::{Arrivals, Load, Phase, Protocol};
use super::read::{Cx, count, duration_at_most, index, integer, mapping, rate, sequence, word};
use super::tree::{Node, Value};

/// The longest a phase, the warm-up or a request's timeout may be: a day, so that any sum of them
/// stays far inside what durations and their float forms hold.
const MAX_DURATION: (Duration, &str) = (Duration::from_secs(24 * 3600), "1440m (a day)");
/// Connections (or gRPC channels) the load may open: each costs memory and a file descriptor.
const MAX_CONNECTIONS: usize = 10_000;
/// Requests in flight at once: each holds a task and its buffers.
const MAX_IN_FLIGHT: usize = 1_000_000;
/// The longest batch window: beyond it, batching is a different load shape, not a cheaper send.
const MAX_BATCH_WINDOW: (Duration, &str) = (Duration::from_millis(10), "10ms");
/// 50 µs: a request at most 50 µs late (send lag p99 under 100 µs), and batches only above
/// 20,000 requests a second.
const DEFAULT_BATCH_WINDOW: Duration = Duration::from_micros(50);

/// `implied` is the protocol the explicit request kinds speak, if any; `load.protocol` may then
/// be left out. `known` says whether the requests were read (else a missing protocol is not
/// reported, since the requests' own errors explain more).
pub(super) fn load(
    cx: &mut Cx,
    node: &Node,
    implied: Option<Protocol>,
    known: bool,
) -> Option<Load> {
    const KEYS: &[&str] = &[
        "protocol",
        "warmup",
        "phases",
        "arrivals",
        "seed",
        "max_in_flight",
        "timeout",
        "connections",
        "batch_window",
    ];
    let fields = mapping(cx, node, "load", Some(KEYS))?;
    let written = fields.get("protocol").map(|n| {
        let protocol = word(
            cx,
            n,
            "load.protocol",
            &[
                ("http", Protocol::Http),
                ("grpc", Protocol::Grpc),
                ("websocket", Protocol::WebSocket),
            ],
        )?;
        if let Some(implied) = implied
            && implied != protocol
        {
            return cx.err_none(
                n.origin,
                "load.protocol",
                format!(
                    "{} does not match the request kinds, which are {}",
                    protocol.name(),
                    implied.name()
                ),
            );
        }
        Some(protocol)
    });
    let protocol = match (written, implied) {
        (Some(written), _) => written,
        (None, Some(implied)) => Some(implied),
        (None, None) => {
            if known {
                fields.required(cx, "protocol");
            }
            None
        }
    };
    let warmup = fields.get("warmup").map_or(Some(Duration::ZERO), |n| {
        duration_at_most(cx, n, "load.warmup", false, MAX_DURATION)
    });
    let phases = fields.required(cx, "phases").and_then(|n| phases(cx, n));
    let arrivals = fields.get("arrivals").map_or(Some(Arrivals::Uniform), |n| {
        word(
            cx,
            n,
            "load.arrivals",
            &[
                ("uniform", Arrivals::Uniform),
                ("poisson", Arrivals::Poisson),
            ],
        )
    });
    let seed = fields.get("seed").map_or(Some(1), |n| {
        integer(cx, n, "load.seed", 0, u64::MAX.into()).and_then(|i| u64::try_from(i).ok())
    });
    let max_in_flight = fields.get("max_in_flight").map_or(Some(1000), |n| {
        count(cx, n, "load.max_in_flight", MAX_IN_FLIGHT)
    });
    let timeout = fields
        .get("timeout")
        .map_or(Some(Duration::from_secs(5)), |n| {
            duration_at_most(cx, n, "load.timeout", true, MAX_DURATION)
        });
    let connections = fields.get("connections").map_or(Some(2), |n| {
        count(cx, n, "load.connections", MAX_CONNECTIONS)
    });
    let batch_window = fields
        .get("batch_window")
        .map_or(Some(DEFAULT_BATCH_WINDOW), |n| {
            duration_at_most(cx, n, "load.batch_window", false, MAX_BATCH_WINDOW)
        });
    Some(Load {
        protocol: protocol?,
        warmup: warmup?,
        phases: phases?,
        arrivals: arrivals?,
        seed: seed?,
        max_in_flight: max_in_flight?,
        timeout: timeout?,
        connections: connections?,
        batch_window: batch_window?,
    })
}

fn phases(cx: &mut Cx, node: &Node) -> Option<Vec<Phase>> {
    let items = sequence(cx, node, "load.phases")?;
    if items.is_empty() {
        return cx.expected(node, "load.phases", "at least one phase");
    }
    let before = cx.problems.len();
    let phases: Vec<Phase> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| phase(cx, item, &index("load.phases", i)))
        .collect();
    (cx.problems.len() == before).then_some(phases)
}

fn phase(cx: &mut Cx, node: &Node, path: &str) -> Option<Phase> {
    let fields = mapping(cx, node, path, Some(&["constant", "ramp"]))?;
    let kinds: Vec<_> = fields.entries.iter().map(|e| e.1).collect();
    match kinds.as_slice() {
        ["constant"] => {
            let path = fields.path("constant");
            let node = fields.entries[0].2;
            let f = mapping(cx, node, &path, Some(&["rate", "duration"]))?;
            let rate = f
                .required(cx, "rate")
                .and_then(|n| rate(cx, n, &f.path("rate")));
            let duration = f
                .required(cx, "duration")
                .and_then(|n| duration_at_most(cx, n, &f.path("duration"), true, MAX_DURATION));
            Some(Phase::Constant {
                rate: rate?,
                duration: duration?,
            })
        }
        ["ramp"] => {
            let path = fields.path("ramp");
            let node = fields.entries[0].2;
            let f = mapping(cx, node, &path, Some(&["from", "to", "duration"]))?;
            let from = f
                .required(cx, "from")
                .and_then(|n| rate(cx, n, &f.path("from")));
            let to = f
                .required(cx, "to")
                .and_then(|n| rate(cx, n, &f.path("to")));
            let duration = f
                .required(cx, "duration")
                .and_then(|n| duration_at_most(cx, n, &f.path("duration"), true, MAX_DURATION));
            Some(Phase::Ramp {
                from: from?,
                to: to?,
                duration: duration?,
            })
        }
        // An unknown key was already reported by `mapping`.
        [] if matches!(&node.value, Value::Map(m) if !m.is_empty()) => None,
        _ => {
            cx.err(node.origin, path, "expected exactly one of constant, ramp");
            None
        }
    }
}
