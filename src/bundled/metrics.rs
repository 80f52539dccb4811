//! The bundled system's metrics rules: which of the gateway's and the engine's series must move
//! with which of the harness's counts, and which metrics their platform report names. The generic
//! machinery (snapshot pairs, checks, presence, latency) is in [`crate::metrics::reconcile`]; this
//! module only says what holds for these two services.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use engine::core_engine::{FETCH_METHOD, STREAM_METHOD};
use engine::status::{code_from_name, code_name, http_status};
use tonic::Code;

use super::{ENGINE_SERVICE, FETCH_ROUTE, GATEWAY_SERVICE};
use crate::metrics::Snapshot;
use crate::metrics::reconcile::{
    Out, Pair, Reconciliation, Required, by_service, latency, matchers, presence,
};
use crate::scenario::Protocol;

mod stream;

pub use stream::StreamReceived;

/// The gateway's fetch route, as its per-route series label it.
const FETCH: [(&str, &str); 2] = [("method", "POST"), ("path", FETCH_ROUTE)];
/// The engine's fetch method, as its per-method series label it: its streams
/// (`method="StreamMarketData"`) count in the same families.
const FETCH_RPC: (&str, &str) = ("method", FETCH_METHOD);
/// The engine's stream method.
const STREAM_RPC: (&str, &str) = ("method", STREAM_METHOD);

/// What the harness counted between the two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Responses from the gateway's fetch route, by HTTP status.
    pub http: BTreeMap<u16, u64>,
    /// Responses straight from the engine, by gRPC code name (`OK`, `INVALID_ARGUMENT`, …).
    pub grpc: BTreeMap<String, u64>,
    /// The client-side p99 service time (from actual send), over all of those responses.
    pub client_p99: Option<Duration>,
    /// The gateway's service name, as its snapshots name it.
    pub gateway_service: String,
    /// The engine's service name, as its snapshots name it.
    pub engine_service: String,
    /// What a stream load received, if the run was one.
    pub stream: Option<StreamReceived>,
}

impl Received {
    /// Adds a load's outcomes by their labels: an HTTP status over HTTP, a gRPC code name over
    /// gRPC. Other labels (transport errors, timeouts) reached no service's counters.
    pub fn add_outcomes<'a>(
        &mut self,
        protocol: Protocol,
        outcomes: impl IntoIterator<Item = (&'a String, &'a u64)>,
    ) {
        for (label, &count) in outcomes {
            match protocol {
                Protocol::Http | Protocol::WebSocket => {
                    if let Ok(status) = label.parse::<u16>() {
                        *self.http.entry(status).or_default() += count;
                    }
                }
                Protocol::Grpc => {
                    if code_from_name(label).is_some() {
                        *self.grpc.entry(label.clone()).or_default() += count;
                    }
                }
            }
        }
    }
}

impl Default for Received {
    fn default() -> Self {
        Received {
            http: BTreeMap::new(),
            grpc: BTreeMap::new(),
            client_p99: None,
            gateway_service: GATEWAY_SERVICE.to_owned(),
            engine_service: ENGINE_SERVICE.to_owned(),
            stream: None,
        }
    }
}

/// Compares the deltas between `before` and `after` with `received`: the gateway's fetch route and
/// totals, the engine's codes and totals, the metrics each names, and each one's p99.
pub fn reconcile(before: &[Snapshot], after: &[Snapshot], received: &Received) -> Reconciliation {
    let expected = EngineExpectation::new(received);
    let gateway_rules = |out: &mut Out<'_>, pair: &Pair<'_>| {
        presence(out, pair, &gateway_required(received));
        gateway(out, pair, received);
        if let Some(stream) = &received.stream {
            stream::gateway(out, pair, stream);
        }
        latency(
            out,
            pair,
            "http_request_duration_seconds",
            &FETCH,
            received.client_p99,
        );
    };
    let engine_rules = |out: &mut Out<'_>, pair: &Pair<'_>| {
        presence(out, pair, &engine_required(&expected));
        engine(out, pair, &expected);
        if let Some(stream) = &received.stream {
            stream::engine(out, pair, stream);
        }
        latency(
            out,
            pair,
            "grpc_request_duration_seconds",
            &[],
            received.client_p99,
        );
    };
    by_service(
        before,
        after,
        &[
            (&received.gateway_service, &gateway_rules),
            (&received.engine_service, &engine_rules),
        ],
    )
}

/// Why a metric without labels must exist whatever the traffic.
const ALWAYS: Option<&str> = Some("an unlabelled metric exists from the start");

/// The gateway's metrics of the platform report, and which this run needed.
fn gateway_required(received: &Received) -> Vec<Required> {
    let traffic =
        (received.http.values().sum::<u64>() > 0).then_some("the harness received fetch responses");
    let errors = received
        .http
        .iter()
        .any(|(status, n)| *status >= 400 && *n > 0)
        .then_some("the harness received fetch responses with status 400 or above");
    let required = |name, histogram, needed| Required {
        name,
        histogram,
        needed,
    };
    vec![
        required("requests_total", false, ALWAYS),
        required("errors_total", false, ALWAYS),
        required("request_duration_seconds", true, ALWAYS),
        required("http_requests_total", false, traffic),
        required("http_request_duration_seconds", true, traffic),
        required("http_errors_total", false, errors),
        required("http_connections_active", false, ALWAYS),
    ]
}

/// The engine's metrics of the platform report, and which this run needed.
fn engine_required(expected: &EngineExpectation) -> Vec<Required> {
    let traffic = (expected.total() > 0).then_some("the engine was expected to answer RPCs");
    let errors =
        (expected.errors() > 0).then_some("the engine was expected to answer RPCs with errors");
    let required = |name, histogram, needed| Required {
        name,
        histogram,
        needed,
    };
    vec![
        required("requests_total", false, ALWAYS),
        required("errors_total", false, ALWAYS),
        required("request_duration_seconds", true, ALWAYS),
        required("grpc_requests_total", false, traffic),
        required("grpc_request_duration_seconds", true, traffic),
        required("grpc_errors_total", false, errors),
    ]
}

/// The fetch route's counters by status against the harness's, and the totals against the
/// per-route counters.
fn gateway(out: &mut Out<'_>, pair: &Pair<'_>, received: &Received) {
    let route = FETCH;
    let received_with = |status: &str| {
        status
            .parse::<u16>()
            .ok()
            .and_then(|s| received.http.get(&s))
            .copied()
            .unwrap_or(0) as f64
    };
    let mut statuses: BTreeSet<String> = received.http.keys().map(u16::to_string).collect();
    statuses.extend(pair.label_values("http_requests_total", "status", &route));
    statuses.extend(pair.label_values("http_errors_total", "status", &route));
    for status in &statuses {
        let matching = [route[0], route[1], ("status", status.as_str())];
        let expected = received_with(status);
        let observed = pair.delta("http_requests_total", &matching);
        if expected != 0.0 || observed != 0.0 {
            out.compare(
                "http_requests_total",
                matchers(&matching),
                expected,
                observed,
                format!("fetch responses the harness received with status {status}"),
            );
        }
        if status.parse::<u16>().is_ok_and(|s| s >= 400) {
            let observed = pair.delta("http_errors_total", &matching);
            if expected != 0.0 || observed != 0.0 {
                out.compare(
                    "http_errors_total",
                    matchers(&matching),
                    expected,
                    observed,
                    format!("fetch responses the harness received with error status {status}"),
                );
            }
        }
    }
    let total = received.http.values().sum::<u64>() as f64;
    out.compare(
        "http_request_duration_seconds_count",
        matchers(&route),
        total,
        pair.delta("http_request_duration_seconds_count", &route),
        "fetch responses the harness received, all statuses".into(),
    );

    // Every request through the API router (the fetch route, unknown routes; not the metrics and
    // health endpoints) is counted once in each of these; they must agree whatever the traffic.
    let all_routes = pair.delta("http_requests_total", &[]);
    let all_errors: f64 = pair
        .label_values("http_requests_total", "status", &[])
        .iter()
        .filter(|s| s.parse::<u16>().is_ok_and(|s| s >= 400))
        .map(|s| pair.delta("http_requests_total", &[("status", s.as_str())]))
        .sum();
    let sum_note = "the sum of the http_requests_total deltas over all routes and statuses";
    out.compare(
        "requests_total",
        String::new(),
        all_routes,
        pair.delta("requests_total", &[]),
        sum_note.into(),
    );
    out.compare(
        "request_duration_seconds_count",
        String::new(),
        all_routes,
        pair.delta("request_duration_seconds_count", &[]),
        sum_note.into(),
    );
    out.compare(
        "errors_total",
        String::new(),
        all_errors,
        pair.delta("errors_total", &[]),
        "the sum of the http_requests_total deltas with status 400 or above, over all routes"
            .into(),
    );
}

/// What the engine should have answered, grouped by the HTTP status the gateway turns each code
/// into: a fetch answered 400 by the gateway is an engine INVALID_ARGUMENT, a 500 any of several
/// codes. This assumes every fetch response with such a status came from the engine; statuses
/// the gateway only makes itself (405, 413, 415, 499) are left out, but a malformed-JSON 400 or a
/// 503 for an unreachable engine would be counted against it, and show as a mismatch.
struct EngineExpectation {
    groups: BTreeMap<u16, Group>,
    /// Code names in `received.grpc` that are no gRPC code: compared one by one, expecting them.
    unknown: BTreeMap<String, u64>,
    /// Fetch responses with statuses no engine code maps to, by status.
    gateway_only: BTreeMap<u16, u64>,
}

#[derive(Default)]
struct Group {
    codes: Vec<&'static str>,
    http: u64,
    grpc: u64,
}

impl EngineExpectation {
    fn new(received: &Received) -> Self {
        let mut groups: BTreeMap<u16, Group> = BTreeMap::new();
        for i in 0..=16 {
            let code = Code::from_i32(i);
            groups
                .entry(http_status(code).as_u16())
                .or_default()
                .codes
                .push(code_name(code));
        }
        let mut gateway_only = BTreeMap::new();
        for (&status, &n) in &received.http {
            match groups.get_mut(&status) {
                Some(group) => group.http += n,
                None => {
                    gateway_only.insert(status, n);
                }
            }
        }
        let mut unknown = BTreeMap::new();
        for (name, &n) in &received.grpc {
            match code_from_name(name) {
                Some(code) => {
                    if let Some(group) = groups.get_mut(&http_status(code).as_u16()) {
                        group.grpc += n;
                    }
                }
                None => {
                    unknown.insert(name.clone(), n);
                }
            }
        }
        EngineExpectation {
            groups,
            unknown,
            gateway_only,
        }
    }

    fn total(&self) -> u64 {
        self.groups.values().map(|g| g.http + g.grpc).sum::<u64>()
            + self.unknown.values().sum::<u64>()
    }

    fn errors(&self) -> u64 {
        let ok = self.groups.get(&200).map_or(0, |g| g.http + g.grpc);
        self.total() - ok
    }

    fn note(&self) -> String {
        if self.gateway_only.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .gateway_only
            .iter()
            .map(|(s, n)| format!("{n} × HTTP {s}"))
            .collect();
        format!(
            "; left out: fetch responses the gateway answers itself ({})",
            parts.join(", ")
        )
    }
}

/// The engine's codes by the gateway's status groups, its totals, and its error types.
fn engine(out: &mut Out<'_>, pair: &Pair<'_>, expected: &EngineExpectation) {
    let note = expected.note();
    let code_delta = |code: &str| pair.delta("grpc_requests_total", &[FETCH_RPC, ("status", code)]);
    for (status, group) in &expected.groups {
        let wanted = (group.http + group.grpc) as f64;
        let observed: f64 = group.codes.iter().map(|c| code_delta(c)).sum();
        if wanted != 0.0 || observed != 0.0 {
            out.compare(
                "grpc_requests_total",
                format!("status=~\"{}\"", group.codes.join("|")),
                wanted,
                observed,
                format!(
                    "codes the gateway answers as HTTP {status}: {} fetch responses with HTTP {status} plus {} direct gRPC responses{note}",
                    group.http, group.grpc
                ),
            );
        }
    }
    let known: BTreeSet<&str> = expected
        .groups
        .values()
        .flat_map(|g| g.codes.clone())
        .collect();
    let mut strange: BTreeSet<String> = expected.unknown.keys().cloned().collect();
    strange.extend(
        pair.label_values("grpc_requests_total", "status", &[FETCH_RPC])
            .into_iter()
            .filter(|s| !known.contains(s.as_str())),
    );
    for name in strange {
        out.compare(
            "grpc_requests_total",
            matchers(&[("status", name.as_str())]),
            expected.unknown.get(&name).copied().unwrap_or(0) as f64,
            code_delta(&name),
            "a status that is no gRPC code name".into(),
        );
    }

    let total = expected.total() as f64;
    let errors = expected.errors() as f64;
    // Streams count in the totals (not in the durations) once they end, whatever the harness
    // expected of them: the stream rules compare their count with the harness's.
    let streams = pair.delta("grpc_requests_total", &[STREAM_RPC]);
    let stream_errors =
        streams - pair.delta("grpc_requests_total", &[STREAM_RPC, ("status", "OK")]);
    let with_streams = if streams > 0.0 {
        format!(", plus {streams} streams ended as the engine counted them")
    } else {
        String::new()
    };
    for (metric, wanted, what, extra) in [
        (
            "grpc_request_duration_seconds_count",
            total,
            "all RPCs",
            0.0,
        ),
        ("requests_total", total, "all RPCs", streams),
        ("request_duration_seconds_count", total, "all RPCs", 0.0),
        (
            "errors_total",
            errors,
            "RPCs answered with a code other than OK",
            stream_errors,
        ),
        (
            "grpc_errors_total",
            errors,
            "RPCs answered with a code other than OK",
            stream_errors,
        ),
    ] {
        let streams_note = if extra > 0.0 {
            with_streams.as_str()
        } else {
            ""
        };
        out.compare(
            metric,
            String::new(),
            wanted + extra,
            pair.delta(metric, &[]),
            format!(
                "{what}: fetches forwarded by the gateway plus direct gRPC calls{note}{streams_note}"
            ),
        );
    }
    // Each error type is the lower-case code name; it must move with that code's request count
    // (over every method: streams count their errors too).
    for code in (1..=16).map(Code::from_i32) {
        let name = code_name(code);
        let error_type = name.to_ascii_lowercase();
        let requests = pair.delta("grpc_requests_total", &[("status", name)]);
        let errors = pair.delta("grpc_errors_total", &[("error_type", error_type.as_str())]);
        if requests != 0.0 || errors != 0.0 {
            out.compare(
                "grpc_errors_total",
                matchers(&[("error_type", error_type.as_str())]),
                requests,
                errors,
                format!("the grpc_requests_total delta with status {name}"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
