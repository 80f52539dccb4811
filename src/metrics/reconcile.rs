//! Do the services' metrics agree with what the harness sent and received?
//!
//! Two snapshots bracket the load; the deltas between them must match the harness's own counts,
//! status by status, and the services' latency histograms must not claim more time than the client
//! measured. Labels a matcher does not name (such as `job` and `instance` from Prometheus) are summed
//! over, so the same rules hold for a direct scrape and for Prometheus.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use engine::gateway::FETCH_ROUTE;
use engine::status::{code_from_name, code_name, http_status};
use serde::Serialize;
use tonic::Code;

use super::{Snapshot, parse_value};

pub const DEFAULT_GATEWAY_SERVICE: &str = "api-gateway";
pub const DEFAULT_ENGINE_SERVICE: &str = "core-engine";

/// The quantile compared with the client's.
const QUANTILE: f64 = 0.99;

/// What the harness counted between the two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Responses from the gateway's fetch route, by HTTP status.
    pub http: BTreeMap<u16, u64>,
    /// Responses straight from the engine, by gRPC code name (`OK`, `INVALID_ARGUMENT`, …).
    pub grpc: BTreeMap<String, u64>,
    /// The client-side p99 service time (from actual send), over all of those responses.
    pub client_p99: Option<Duration>,
    pub gateway_service: String,
    pub engine_service: String,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            http: BTreeMap::new(),
            grpc: BTreeMap::new(),
            client_p99: None,
            gateway_service: DEFAULT_GATEWAY_SERVICE.to_owned(),
            engine_service: DEFAULT_ENGINE_SERVICE.to_owned(),
        }
    }
}

/// One comparison, with enough context to read on its own in a report.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Check {
    pub service: String,
    pub metric: String,
    /// The label matchers of the series compared, PromQL style.
    pub labels: String,
    pub expected: f64,
    pub observed: f64,
    pub passed: bool,
    /// The check could not be made (no data to judge); it counts as passed, and `detail` says why.
    pub skipped: bool,
    pub detail: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.passed, self.skipped) {
            (_, true) => "SKIPPED",
            (true, false) => "ok",
            (false, false) => "FAILED",
        };
        write!(f, "{verdict} {} {}", self.service, self.metric)?;
        if !self.labels.is_empty() {
            write!(f, "{{{}}}", self.labels)?;
        }
        write!(
            f,
            ": expected {}, observed {} ({})",
            self.expected, self.observed, self.detail
        )
    }
}

/// Every check made, and whether all passed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl Reconciliation {
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

/// Compares the deltas between `before` and `after` with `received`. See the module docs.
pub fn reconcile(before: &[Snapshot], after: &[Snapshot], received: &Received) -> Reconciliation {
    let mut checks = Vec::new();
    let expected = EngineExpectation::new(received);
    for (service, role) in [
        (&received.gateway_service, Role::Gateway),
        (&received.engine_service, Role::Engine),
    ] {
        let pair = match Pair::find(service, before, after) {
            Ok(pair) => pair,
            Err(check) => {
                checks.push(check);
                continue;
            }
        };
        let mut out = Out {
            service,
            checks: &mut checks,
        };
        match role {
            Role::Gateway => {
                presence(&mut out, &pair, &gateway_required(received));
                gateway(&mut out, &pair, received);
                latency(
                    &mut out,
                    &pair,
                    "http_request_duration_seconds",
                    &[("method", "POST"), ("path", FETCH_ROUTE)],
                    received.client_p99,
                );
            }
            Role::Engine => {
                presence(&mut out, &pair, &engine_required(&expected));
                engine(&mut out, &pair, &expected);
                latency(
                    &mut out,
                    &pair,
                    "grpc_request_duration_seconds",
                    &[],
                    received.client_p99,
                );
            }
        }
    }
    let passed = checks.iter().all(|c| c.passed);
    Reconciliation { checks, passed }
}

#[derive(Clone, Copy)]
enum Role {
    Gateway,
    Engine,
}

/// The two snapshots of one service.
struct Pair<'a> {
    before: &'a Snapshot,
    after: &'a Snapshot,
}

impl<'a> Pair<'a> {
    fn find(service: &str, before: &'a [Snapshot], after: &'a [Snapshot]) -> Result<Self, Check> {
        let pick = |set: &'a [Snapshot], which: &str| {
            set.iter().find(|s| s.service == service).ok_or_else(|| {
                let present: Vec<&str> = set.iter().map(|s| s.service.as_str()).collect();
                Check {
                    service: service.to_owned(),
                    metric: String::new(),
                    labels: String::new(),
                    expected: 1.0,
                    observed: 0.0,
                    passed: false,
                    skipped: false,
                    detail: format!(
                        "no {which} snapshot of {service} (there are: {}); none of its metrics can be checked",
                        present.join(", ")
                    ),
                }
            })
        };
        Ok(Pair {
            before: pick(before, "before")?,
            after: pick(after, "after")?,
        })
    }

    /// How much the sum over the matching series grew. A series first seen in `after` grew from 0.
    fn delta(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.after.sum(name, matching) - self.before.sum(name, matching)
    }

    /// The values `label` takes among the matching series of either snapshot.
    fn label_values(&self, name: &str, label: &str, matching: &[(&str, &str)]) -> BTreeSet<String> {
        [self.before, self.after]
            .iter()
            .flat_map(|s| s.select(name, matching))
            .filter_map(|s| s.labels.get(label).cloned())
            .collect()
    }
}

/// Where checks of one service go.
struct Out<'a> {
    service: &'a str,
    checks: &'a mut Vec<Check>,
}

impl Out<'_> {
    fn compare(&mut self, metric: &str, labels: String, expected: f64, observed: f64, why: String) {
        self.push(
            metric,
            labels,
            expected,
            observed,
            same(expected, observed),
            why,
        );
    }

    fn push(
        &mut self,
        metric: &str,
        labels: String,
        expected: f64,
        observed: f64,
        passed: bool,
        detail: String,
    ) {
        self.checks.push(Check {
            service: self.service.to_owned(),
            metric: metric.to_owned(),
            labels,
            expected,
            observed,
            passed,
            skipped: false,
            detail,
        });
    }

    fn skip(&mut self, metric: &str, labels: String, detail: String) {
        self.checks.push(Check {
            service: self.service.to_owned(),
            metric: metric.to_owned(),
            labels,
            expected: 0.0,
            observed: 0.0,
            passed: true,
            skipped: true,
            detail,
        });
    }
}

/// Counter values are integers carried as floats; allow only for float rounding.
fn same(expected: f64, observed: f64) -> bool {
    (expected - observed).abs() <= 1e-9 * expected.abs().max(observed.abs()).max(1.0)
}

fn matchers(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    parts.join(",")
}

/// A metric the platform report names, and whether it has to exist after this run.
struct Required {
    name: &'static str,
    histogram: bool,
    /// Labelled families have no series until first used; `Some(reason)` when this run used it.
    needed: Option<&'static str>,
}

const ALWAYS: Option<&str> = Some("an unlabelled metric exists from the start");

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

/// Every metric of the platform report exists in the after snapshot, as a histogram's three parts
/// where it is one.
fn presence(out: &mut Out<'_>, pair: &Pair<'_>, required: &[Required]) {
    for metric in required {
        let names: Vec<String> = if metric.histogram {
            ["_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{}{suffix}", metric.name))
                .collect()
        } else {
            vec![metric.name.to_owned()]
        };
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !pair.after.has(n))
            .map(String::as_str)
            .collect();
        let found = (names.len() - missing.len()) as f64;
        let expected = names.len() as f64;
        let needed = metric.needed.or_else(|| {
            names
                .iter()
                .any(|n| pair.before.has(n))
                .then_some("it existed before the load")
        });
        match (missing.is_empty(), needed) {
            (true, _) => out.push(
                metric.name,
                String::new(),
                expected,
                found,
                true,
                "named in the platform report; present".into(),
            ),
            (false, Some(reason)) => out.push(
                metric.name,
                String::new(),
                expected,
                found,
                false,
                format!(
                    "named in the platform report, but {} missing from the after snapshot of {}, although {reason}",
                    missing.join(", "),
                    out.service
                ),
            ),
            (false, None) => out.skip(
                metric.name,
                String::new(),
                format!(
                    "{} not exposed yet: a labelled family has no series before its first use, and this run did not use it",
                    missing.join(", ")
                ),
            ),
        }
    }
}

fn gateway(out: &mut Out<'_>, pair: &Pair<'_>, received: &Received) {
    let route = [("method", "POST"), ("path", FETCH_ROUTE)];
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

fn engine(out: &mut Out<'_>, pair: &Pair<'_>, expected: &EngineExpectation) {
    let note = expected.note();
    let code_delta = |code: &str| pair.delta("grpc_requests_total", &[("status", code)]);
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
        pair.label_values("grpc_requests_total", "status", &[])
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
    for (metric, wanted, what) in [
        ("grpc_request_duration_seconds_count", total, "all RPCs"),
        ("requests_total", total, "all RPCs"),
        ("request_duration_seconds_count", total, "all RPCs"),
        (
            "errors_total",
            errors,
            "RPCs answered with a code other than OK",
        ),
        (
            "grpc_errors_total",
            errors,
            "RPCs answered with a code other than OK",
        ),
    ] {
        out.compare(
            metric,
            String::new(),
            wanted,
            pair.delta(metric, &[]),
            format!("{what}: fetches forwarded by the gateway plus direct gRPC calls{note}"),
        );
    }
    // Each error type is the lower-case code name; it must move with that code's request count.
    for code in (1..=16).map(Code::from_i32) {
        let name = code_name(code);
        let error_type = name.to_ascii_lowercase();
        let requests = code_delta(name);
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

/// A quantile estimated from cumulative buckets, and the bounds of the bucket it fell in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    value: f64,
    lower: f64,
    upper: f64,
}

/// The quantile as Prometheus's `histogram_quantile` estimates it: linear inside the bucket where
/// the rank falls, the highest finite bound when it falls in the `+Inf` bucket. `buckets` are
/// `(upper bound, cumulative count)`, sorted, the last `+Inf`. `None` without observations.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<Estimate> {
    let &(last_bound, total) = buckets.last()?;
    if last_bound != f64::INFINITY || buckets.len() < 2 || total <= 0.0 {
        return None;
    }
    // Cumulative counts can dip when series are read at slightly different moments.
    let mut running = 0.0_f64;
    let buckets: Vec<(f64, f64)> = buckets
        .iter()
        .map(|&(bound, count)| {
            running = running.max(count);
            (bound, running)
        })
        .collect();
    let rank = q * total;
    let index = buckets.iter().position(|&(_, count)| count >= rank)?;
    if index == buckets.len() - 1 {
        let highest = buckets[index - 1].0;
        return Some(Estimate {
            value: highest,
            lower: highest,
            upper: f64::INFINITY,
        });
    }
    let (upper, count) = buckets[index];
    let (lower, below) = match index {
        0 if upper <= 0.0 => {
            return Some(Estimate {
                value: upper,
                lower: upper,
                upper,
            });
        }
        0 => (0.0, 0.0),
        _ => buckets[index - 1],
    };
    let in_bucket = count - below;
    let value = if in_bucket > 0.0 {
        lower + (upper - lower) * (rank - below) / in_bucket
    } else {
        upper
    };
    Some(Estimate {
        value,
        lower,
        upper,
    })
}

/// The server's p99 from its histogram deltas must not exceed the client's p99 by more than the
/// width of the bucket it falls in: the server sees each request for less time than the client.
fn latency(
    out: &mut Out<'_>,
    pair: &Pair<'_>,
    base: &str,
    matching: &[(&str, &str)],
    client_p99: Option<Duration>,
) {
    let bucket_name = format!("{base}_bucket");
    let labels = {
        let mut pairs = matching.to_vec();
        pairs.push(("quantile", "0.99"));
        matchers(&pairs)
    };
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for le in pair.label_values(&bucket_name, "le", matching) {
        let Some(bound) = parse_value(&le) else {
            out.push(
                base,
                labels,
                0.0,
                0.0,
                false,
                format!("bucket bound le={le:?} is not a number"),
            );
            return;
        };
        let mut with_le = matching.to_vec();
        with_le.push(("le", le.as_str()));
        let delta = pair.delta(&bucket_name, &with_le);
        // "1" and "1.0" are the same bound, written by different clients.
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some(entry) => entry.1 += delta,
            None => buckets.push((bound, delta)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(client) = client_p99 else {
        out.skip(
            base,
            labels,
            "no client-side p99 to compare the server's with".into(),
        );
        return;
    };
    let client = client.as_secs_f64();
    if buckets
        .last()
        .is_some_and(|&(b, n)| b == f64::INFINITY && n <= 0.0)
    {
        out.skip(base, labels, "no observations between the snapshots".into());
        return;
    }
    let Some(estimate) = histogram_quantile(QUANTILE, &buckets) else {
        let detail = if buckets.is_empty() {
            "no buckets of this histogram in the snapshots".to_owned()
        } else {
            "the buckets end without le=\"+Inf\"".to_owned()
        };
        out.push(base, labels, client, f64::NAN, false, detail);
        return;
    };
    if estimate.upper == f64::INFINITY {
        out.push(
            base,
            labels,
            client,
            estimate.value,
            estimate.value <= client,
            format!(
                "server p99 lies beyond the highest finite bucket ({} s); the client p99 must be at least that",
                estimate.lower
            ),
        );
        return;
    }
    let width = estimate.upper - estimate.lower;
    let allowed = client + width;
    out.push(
        base,
        labels,
        allowed,
        estimate.value,
        estimate.value <= allowed,
        format!(
            "server p99 (interpolated in bucket {}..{} s) against client p99 {client:.6} s plus that bucket's width {width} s",
            estimate.lower, estimate.upper
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sample;

    const FETCH: [(&str, &str); 2] = [("method", "POST"), ("path", FETCH_ROUTE)];

    /// One series for [`snapshot`]: name, labels, value.
    type Series<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

    fn snapshot(service: &str, series: &[Series<'_>]) -> Snapshot {
        Snapshot {
            service: service.to_owned(),
            samples: series
                .iter()
                .map(|(name, labels, value)| Sample {
                    name: (*name).to_owned(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: *value,
                })
                .collect(),
        }
    }

    /// Histogram series of `base` with `matching` labels: (le, cumulative count) plus _sum, _count.
    fn histogram(
        base: &str,
        matching: &[(&str, &str)],
        buckets: &[(&str, f64)],
        sum: f64,
    ) -> Vec<Sample> {
        let labels = |extra: Option<(&str, &str)>| {
            matching
                .iter()
                .copied()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut samples: Vec<Sample> = buckets
            .iter()
            .map(|(le, n)| Sample {
                name: format!("{base}_bucket"),
                labels: labels(Some(("le", le))),
                value: *n,
            })
            .collect();
        let count = buckets.last().map_or(0.0, |b| b.1);
        samples.push(Sample {
            name: format!("{base}_sum"),
            labels: labels(None),
            value: sum,
        });
        samples.push(Sample {
            name: format!("{base}_count"),
            labels: labels(None),
            value: count,
        });
        samples
    }

    /// The gateway after `ok` 200s and `bad` 400s on the fetch route, plus `unmatched` 404s, with
    /// every duration in the 1–2 ms bucket. `extra_ok` is added to the 200 counter only.
    fn gateway_at(ok: f64, bad: f64, unmatched: f64, extra_ok: f64) -> Snapshot {
        let status = |s| [FETCH[0], FETCH[1], ("status", s)];
        let all = ok + bad + unmatched;
        let errors = bad + unmatched;
        let mut snap = snapshot(
            "api-gateway",
            &[
                ("requests_total", &[], all),
                ("errors_total", &[], errors),
                ("http_requests_total", &status("200"), ok + extra_ok),
                ("http_requests_total", &status("400"), bad),
                ("http_errors_total", &status("400"), bad),
                (
                    "http_requests_total",
                    &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
                    unmatched,
                ),
                (
                    "http_errors_total",
                    &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
                    unmatched,
                ),
                ("http_connections_active", &[], 1.0),
            ],
        );
        let fetch = ok + bad;
        let buckets = [("0.001", 0.0), ("0.002", fetch), ("+Inf", fetch)];
        snap.samples.extend(histogram(
            "http_request_duration_seconds",
            &FETCH,
            &buckets,
            fetch * 0.0015,
        ));
        let all_buckets = [("0.001", 0.0), ("0.002", all), ("+Inf", all)];
        snap.samples.extend(histogram(
            "request_duration_seconds",
            &[],
            &all_buckets,
            all * 0.0015,
        ));
        snap
    }

    /// The engine after `ok` OKs and `invalid` INVALID_ARGUMENTs, durations in the 0.5–1 ms bucket.
    fn engine_at(ok: f64, invalid: f64) -> Snapshot {
        let m = ("method", "FetchMarketData");
        let all = ok + invalid;
        let mut snap = snapshot(
            "core-engine",
            &[
                ("requests_total", &[], all),
                ("errors_total", &[], invalid),
                ("grpc_requests_total", &[m, ("status", "OK")], ok),
                (
                    "grpc_requests_total",
                    &[m, ("status", "INVALID_ARGUMENT")],
                    invalid,
                ),
                (
                    "grpc_errors_total",
                    &[m, ("error_type", "invalid_argument")],
                    invalid,
                ),
                ("requests_in_flight", &[], 0.0),
            ],
        );
        let buckets = [("0.0005", 0.0), ("0.001", all), ("+Inf", all)];
        snap.samples.extend(histogram(
            "grpc_request_duration_seconds",
            &[m],
            &buckets,
            all * 0.0007,
        ));
        snap.samples.extend(histogram(
            "request_duration_seconds",
            &[],
            &buckets,
            all * 0.0007,
        ));
        snap
    }

    /// 30 × 200 and 5 × 400 through the gateway, 7 OK and 2 INVALID_ARGUMENT straight to the
    /// engine, 3 unmatched routes; on top of earlier traffic.
    fn received() -> Received {
        Received {
            http: BTreeMap::from([(200, 30), (400, 5)]),
            grpc: BTreeMap::from([("OK".into(), 7), ("INVALID_ARGUMENT".into(), 2)]),
            client_p99: Some(Duration::from_micros(1_900)),
            ..Received::default()
        }
    }

    fn before() -> Vec<Snapshot> {
        vec![gateway_at(10.0, 1.0, 0.0, 0.0), engine_at(12.0, 1.0)]
    }

    fn after() -> Vec<Snapshot> {
        vec![
            gateway_at(40.0, 6.0, 3.0, 0.0),
            engine_at(12.0 + 37.0, 1.0 + 7.0),
        ]
    }

    fn failures_of(r: &Reconciliation) -> Vec<String> {
        r.failures().iter().map(|c| c.to_string()).collect()
    }

    /// Runs `reconcile` with `after` changed by `fault`, and returns the failed checks' metrics.
    fn failing_metrics(fault: impl FnOnce(&mut Vec<Snapshot>, &mut Received)) -> Vec<String> {
        let mut after = after();
        let mut received = received();
        fault(&mut after, &mut received);
        let r = reconcile(&before(), &after, &received);
        assert!(!r.passed, "the fault went unnoticed");
        r.failures().iter().map(|c| c.metric.clone()).collect()
    }

    fn set(snapshot: &mut Snapshot, name: &str, matching: &[(&str, &str)], value: f64) {
        let sample = snapshot
            .samples
            .iter_mut()
            .find(|s| s.name == name && s.matches(matching))
            .expect("series to change");
        sample.value = value;
    }

    #[test]
    fn consistent_snapshots_pass_every_check() {
        let r = reconcile(&before(), &after(), &received());
        assert!(r.passed, "{:#?}", failures_of(&r));
        let metrics: BTreeSet<&str> = r.checks.iter().map(|c| c.metric.as_str()).collect();
        for m in [
            "http_requests_total",
            "http_errors_total",
            "http_request_duration_seconds_count",
            "requests_total",
            "errors_total",
            "grpc_requests_total",
            "grpc_errors_total",
            "grpc_request_duration_seconds_count",
            "http_request_duration_seconds",
            "grpc_request_duration_seconds",
            "http_connections_active",
        ] {
            assert!(metrics.contains(m), "no check of {m}: {metrics:?}");
        }
        assert!(r.checks.iter().all(|c| !c.skipped), "{:#?}", r.checks);
    }

    #[test]
    fn extra_labels_from_prometheus_are_ignored() {
        let tag = |mut snaps: Vec<Snapshot>| {
            for snap in &mut snaps {
                for s in &mut snap.samples {
                    s.labels.insert("job".into(), snap.service.clone());
                    s.labels.insert("instance".into(), "127.0.0.1:1".into());
                }
            }
            snaps
        };
        let r = reconcile(&tag(before()), &tag(after()), &received());
        assert!(r.passed, "{:#?}", failures_of(&r));
    }

    #[test]
    fn a_double_counted_fetch_fails_http_requests_total() {
        let metrics = failing_metrics(|after, _| after[0] = gateway_at(40.0, 6.0, 3.0, 30.0));
        assert!(
            metrics.contains(&"http_requests_total".to_owned()),
            "{metrics:?}"
        );
        // The unchanged totals no longer add up to the per-route counter either.
        assert!(
            metrics.contains(&"requests_total".to_owned()),
            "{metrics:?}"
        );
    }

    #[test]
    fn a_response_the_harness_missed_fails_per_status() {
        let metrics = failing_metrics(|_, received| {
            received.http.insert(400, 4);
        });
        assert!(
            metrics.contains(&"http_requests_total".to_owned()),
            "{metrics:?}"
        );
        assert!(
            metrics.contains(&"http_errors_total".to_owned()),
            "{metrics:?}"
        );
        assert!(
            metrics.contains(&"grpc_requests_total".to_owned()),
            "{metrics:?}"
        );
    }

    #[test]
    fn an_uncounted_error_fails_http_errors_total() {
        let metrics = failing_metrics(|after, _| {
            set(
                &mut after[0],
                "http_errors_total",
                &[("status", "400")],
                1.0,
            );
        });
        assert_eq!(metrics, ["http_errors_total"]);
    }

    #[test]
    fn a_lost_duration_observation_fails_the_count() {
        let metrics = failing_metrics(|after, _| {
            set(
                &mut after[0],
                "http_request_duration_seconds_count",
                &FETCH,
                45.0,
            );
        });
        assert_eq!(metrics, ["http_request_duration_seconds_count"]);
    }

    #[test]
    fn gateway_totals_must_match_the_per_route_counters() {
        let metrics = failing_metrics(|after, _| {
            set(&mut after[0], "requests_total", &[], 48.0);
            set(&mut after[0], "errors_total", &[], 10.0);
        });
        assert_eq!(metrics, ["requests_total", "errors_total"]);
    }

    #[test]
    fn engine_codes_are_compared_by_the_gateways_status_groups() {
        // Two forwarded 400s answered as INTERNAL by the engine: both groups are off.
        let metrics = failing_metrics(|after, _| {
            let m = ("method", "FetchMarketData");
            let snap = &mut after[1];
            set(
                snap,
                "grpc_requests_total",
                &[("status", "INVALID_ARGUMENT")],
                6.0,
            );
            snap.samples.push(Sample {
                name: "grpc_requests_total".into(),
                labels: [m, ("status", "INTERNAL")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value: 2.0,
            });
        });
        assert_eq!(
            metrics
                .iter()
                .filter(|m| *m == "grpc_requests_total")
                .count(),
            2,
            "{metrics:?}"
        );
        // The error counters did not move with INTERNAL: their per-type check fails too.
        assert!(
            metrics.contains(&"grpc_errors_total".to_owned()),
            "{metrics:?}"
        );
    }

    #[test]
    fn engine_totals_and_error_types_are_checked() {
        let metrics = failing_metrics(|after, _| {
            set(&mut after[1], "requests_total", &[], 0.0);
            set(
                &mut after[1],
                "grpc_request_duration_seconds_count",
                &[],
                0.0,
            );
        });
        assert_eq!(
            metrics,
            ["grpc_request_duration_seconds_count", "requests_total"]
        );
        let metrics = failing_metrics(|after, _| {
            set(&mut after[1], "grpc_errors_total", &[], 1.0);
            set(&mut after[1], "errors_total", &[], 1.0);
        });
        assert_eq!(
            metrics,
            ["errors_total", "grpc_errors_total", "grpc_errors_total"]
        );
    }

    #[test]
    fn statuses_only_the_gateway_makes_are_left_out_of_the_engines_count() {
        let mut after = after();
        let mut received = received();
        received.http.insert(413, 2);
        for (name, value) in [("requests_total", 51.0), ("errors_total", 11.0)] {
            set(&mut after[0], name, &[], value);
        }
        let status = [FETCH[0], FETCH[1], ("status", "413")];
        for name in ["http_requests_total", "http_errors_total"] {
            after[0].samples.push(Sample {
                name: name.into(),
                labels: status
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value: 2.0,
            });
        }
        let fetch_count = [FETCH[0], FETCH[1]];
        set(
            &mut after[0],
            "http_request_duration_seconds_count",
            &fetch_count,
            48.0,
        );
        set(&mut after[0], "request_duration_seconds_count", &[], 51.0);
        let r = reconcile(&before(), &after, &received);
        assert!(r.passed, "{:#?}", failures_of(&r));
        let engine_total = r
            .checks
            .iter()
            .find(|c| c.service == "core-engine" && c.detail.contains("fetches forwarded"))
            .expect("engine total");
        assert!(
            engine_total.detail.contains("2 × HTTP 413"),
            "{engine_total}"
        );
    }

    #[test]
    fn missing_metrics_fail_naming_metric_and_service() {
        let mut after = after();
        after[0]
            .samples
            .retain(|s| s.name != "http_connections_active");
        after[1]
            .samples
            .retain(|s| s.name != "grpc_request_duration_seconds_sum");
        let r = reconcile(&before(), &after, &received());
        let failed: Vec<&Check> = r.failures();
        assert_eq!(failed.len(), 2, "{:#?}", failures_of(&r));
        assert_eq!(
            (failed[0].service.as_str(), failed[0].metric.as_str()),
            ("api-gateway", "http_connections_active")
        );
        assert_eq!(
            (failed[1].service.as_str(), failed[1].metric.as_str()),
            ("core-engine", "grpc_request_duration_seconds")
        );
        assert!(
            failed[1]
                .detail
                .contains("grpc_request_duration_seconds_sum missing"),
            "{}",
            failed[1]
        );
    }

    #[test]
    fn unused_labelled_families_are_skipped_not_failed() {
        // No traffic at all, before or after: the labelled families do not exist yet.
        let quiet = |s: &str| {
            let mut snap = if s == "api-gateway" {
                gateway_at(0.0, 0.0, 0.0, 0.0)
            } else {
                engine_at(0.0, 0.0)
            };
            snap.samples
                .retain(|s| !s.name.starts_with("http_") && !s.name.starts_with("grpc_"));
            snap.samples.push(Sample {
                name: "http_connections_active".into(),
                labels: BTreeMap::new(),
                value: 0.0,
            });
            snap
        };
        let snaps = vec![quiet("api-gateway"), quiet("core-engine")];
        let received = Received {
            client_p99: None,
            ..Received::default()
        };
        let r = reconcile(&snaps, &snaps, &received);
        assert!(r.passed, "{:#?}", failures_of(&r));
        let skipped: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.skipped)
            .map(|c| c.metric.as_str())
            .collect();
        for m in [
            "http_errors_total",
            "grpc_requests_total",
            "http_request_duration_seconds",
        ] {
            assert!(skipped.contains(&m), "{m} not skipped: {skipped:?}");
        }
        // The same absence after traffic is a failure.
        let busy = Received {
            http: BTreeMap::from([(500, 1)]),
            ..Received::default()
        };
        let metrics: Vec<String> = reconcile(&snaps, &snaps, &busy)
            .failures()
            .iter()
            .map(|c| c.metric.clone())
            .collect();
        assert!(
            metrics.contains(&"http_errors_total".to_owned()),
            "{metrics:?}"
        );
        assert!(
            metrics.contains(&"grpc_errors_total".to_owned()),
            "{metrics:?}"
        );
    }

    #[test]
    fn a_missing_service_snapshot_is_a_failure() {
        let r = reconcile(&before(), &after()[..1], &received());
        let failed = r.failures();
        assert_eq!(failed.len(), 1, "{:#?}", failures_of(&r));
        assert_eq!(failed[0].service, "core-engine");
        assert!(
            failed[0].detail.contains("no after snapshot"),
            "{}",
            failed[0]
        );
    }

    #[test]
    fn server_p99_above_the_clients_fails() {
        // The client saw everything within 0.9 ms; the gateway claims 1–2 ms for all of it.
        let mut received = received();
        received.client_p99 = Some(Duration::from_micros(900));
        let r = reconcile(&before(), &after(), &received);
        let failed = r.failures();
        assert_eq!(failed.len(), 1, "{:#?}", failures_of(&r));
        assert_eq!(failed[0].metric, "http_request_duration_seconds");
        assert!(failed[0].observed > 0.0019 && failed[0].expected < 0.0019 + 1e-12);
        // Within a bucket's width of the client's, it passes (the estimate is coarse).
        received.client_p99 = Some(Duration::from_micros(1_000));
        assert!(reconcile(&before(), &after(), &received).passed);
    }

    #[test]
    fn p99_is_skipped_without_client_p99_or_observations() {
        let mut received = received();
        received.client_p99 = None;
        let r = reconcile(&before(), &after(), &received);
        assert!(r.passed);
        let skipped: Vec<&Check> = r.checks.iter().filter(|c| c.skipped).collect();
        assert_eq!(skipped.len(), 2, "{skipped:#?}");
        assert!(
            skipped[0].detail.contains("no client-side p99"),
            "{}",
            skipped[0]
        );

        let snaps = vec![gateway_at(5.0, 0.0, 0.0, 0.0), engine_at(5.0, 0.0)];
        let received = Received {
            client_p99: Some(Duration::from_millis(1)),
            ..Received::default()
        };
        let r = reconcile(&snaps, &snaps, &received);
        let latency: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| c.labels.contains("quantile"))
            .collect();
        assert_eq!(latency.len(), 2);
        assert!(
            latency
                .iter()
                .all(|c| c.skipped && c.detail.contains("no observations")),
            "{latency:#?}"
        );
    }

    #[test]
    fn quantile_estimates_follow_histogram_quantile() {
        let b = [(0.1, 10.0), (0.2, 30.0), (0.4, 40.0), (f64::INFINITY, 40.0)];
        // rank 20 in the (0.1, 0.2] bucket: halfway.
        let e = histogram_quantile(0.5, &b).expect("estimate");
        assert!(
            (e.value - 0.15).abs() < 1e-12 && (e.lower, e.upper) == (0.1, 0.2),
            "{e:?}"
        );
        // rank 4 in the first bucket, interpolated from 0.
        let e = histogram_quantile(0.1, &b).expect("estimate");
        assert!((e.value - 0.04).abs() < 1e-12 && e.lower == 0.0, "{e:?}");
        // A rank in the +Inf bucket gives the highest finite bound.
        let b = [(0.1, 10.0), (f64::INFINITY, 20.0)];
        let e = histogram_quantile(0.99, &b).expect("estimate");
        assert_eq!((e.value, e.upper), (0.1, f64::INFINITY));
        assert_eq!(
            histogram_quantile(0.99, &[(0.1, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.99, &[(0.1, 1.0), (0.2, 1.0)]), None);
        // A dip from reading series at different moments does not break the estimate.
        let b = [(0.1, 5.0), (0.2, 4.0), (f64::INFINITY, 10.0)];
        let e = histogram_quantile(0.5, &b).expect("estimate");
        assert_eq!(e.value, 0.1);
    }

    #[test]
    fn p99_beyond_the_last_bucket_needs_a_slower_client() {
        let stalled = |count: f64| {
            let mut snap = gateway_at(0.0, 0.0, 0.0, 0.0);
            snap.samples
                .retain(|s| !s.name.starts_with("http_request_duration"));
            snap.samples.extend(histogram(
                "http_request_duration_seconds",
                &FETCH,
                &[("10", 0.0), ("+Inf", count)],
                count * 12.0,
            ));
            snap
        };
        let received = Received {
            client_p99: Some(Duration::from_secs(5)),
            ..Received::default()
        };
        let r = reconcile(&[stalled(0.0)], &[stalled(4.0)], &received);
        let check = r
            .checks
            .iter()
            .find(|c| c.labels.contains("quantile"))
            .expect("latency check");
        assert!(!check.passed && check.observed == 10.0, "{check}");
    }
}
