//! Do a system's metrics agree with what the harness sent and received?
//!
//! This is the machinery every system's rules share: two snapshots bracket the load, and the rules
//! of each service compare the deltas between them with the harness's own counts, check that the
//! metrics its platform report names exist, and that its latency histograms do not claim more time
//! than the client measured. Which series must match which counts belongs to the system under test,
//! whose rules are passed in. Labels a matcher does not name (such as `job` and `instance` from
//! Prometheus) are summed over, so the same rules hold for a direct scrape and for Prometheus.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{Snapshot, parse_value};

/// The quantile compared with the client's.
const QUANTILE: f64 = 0.99;

/// One comparison, with enough context to read on its own in a report.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Check {
    /// The service whose metric this is.
    pub service: String,
    /// The metric (family or series name) compared.
    pub metric: String,
    /// The label matchers of the series compared, PromQL style.
    pub labels: String,
    /// What the harness's own counts say the value should be.
    pub expected: f64,
    /// What the service's metrics say.
    pub observed: f64,
    /// Whether the two agree.
    pub passed: bool,
    /// The check could not be made (no data to judge); it counts as passed, and `detail` says why.
    pub skipped: bool,
    pub detail: String,
}

impl Check {
    /// What was compared: `api-gateway http_requests_total{status="200"}`.
    pub fn subject(&self) -> String {
        let mut subject = format!("{} {}", self.service, self.metric);
        if !self.labels.is_empty() {
            subject.push_str(&format!("{{{}}}", self.labels));
        }
        subject
    }

    /// Both values, with what the expected one stands for: `expected 1200 (fetch responses the
    /// harness received with status 200), observed 2400`. A failed check says no less.
    pub fn comparison(&self) -> String {
        format!(
            "expected {} ({}), observed {}",
            value(self.expected),
            self.detail,
            value(self.observed)
        )
    }
}

/// A metric's value as people read it: whole numbers as such, others to six significant digits.
fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        crate::format::significant(v, 6)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.passed, self.skipped) {
            (_, true) => "SKIPPED",
            (true, false) => "ok",
            (false, false) => "FAILED",
        };
        write!(f, "{verdict} {}: {}", self.subject(), self.comparison())
    }
}

/// Every check made, and whether all passed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// Every check, in the order made: service by service.
    pub checks: Vec<Check>,
    /// Whether every check passed.
    pub passed: bool,
}

impl Reconciliation {
    /// The checks that did not pass.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

/// The checks of one service, made on its two snapshots: pushed to `Out`, read from `Pair`.
pub(crate) type Rules<'r> = dyn Fn(&mut Out<'_>, &Pair<'_>) + 'r;

/// Runs each service's rules on its snapshots in `before` and `after`, in the order given. A
/// service missing from either is one failed check, and none of its rules run.
pub(crate) fn by_service(
    before: &[Snapshot],
    after: &[Snapshot],
    services: &[(&str, &Rules<'_>)],
) -> Reconciliation {
    let mut checks = Vec::new();
    for &(service, rules) in services {
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
        rules(&mut out, &pair);
    }
    let passed = checks.iter().all(|c| c.passed);
    Reconciliation { checks, passed }
}

/// The two snapshots of one service.
pub(crate) struct Pair<'a> {
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
    pub(crate) fn delta(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.after.sum(name, matching) - self.before.sum(name, matching)
    }

    /// The values `label` takes among the matching series of either snapshot.
    pub(crate) fn label_values(
        &self,
        name: &str,
        label: &str,
        matching: &[(&str, &str)],
    ) -> BTreeSet<String> {
        [self.before, self.after]
            .iter()
            .flat_map(|s| s.select(name, matching))
            .filter_map(|s| s.labels.get(label).cloned())
            .collect()
    }
}

/// Where checks of one service go.
pub(crate) struct Out<'a> {
    service: &'a str,
    checks: &'a mut Vec<Check>,
}

impl Out<'_> {
    /// A check that passes when `observed` is `expected`, give or take float rounding.
    pub(crate) fn compare(
        &mut self,
        metric: &str,
        labels: String,
        expected: f64,
        observed: f64,
        why: String,
    ) {
        self.push(
            metric,
            labels,
            expected,
            observed,
            same(expected, observed),
            why,
        );
    }

    /// As [`Out::compare`], passing when `observed` is at least `expected`: for counts the
    /// harness sees only part of (a stream's updates after its last one received, say).
    pub(crate) fn at_least(
        &mut self,
        metric: &str,
        labels: String,
        expected: f64,
        observed: f64,
        why: String,
    ) {
        let passed = observed >= expected || same(expected, observed);
        self.push(
            metric,
            labels,
            expected,
            observed,
            passed,
            format!("at least: {why}"),
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
pub(crate) fn same(expected: f64, observed: f64) -> bool {
    (expected - observed).abs() <= 1e-9 * expected.abs().max(observed.abs()).max(1.0)
}

/// `pairs` as PromQL label matchers: `a="x",b="y"`.
pub(crate) fn matchers(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    parts.join(",")
}

/// A metric the platform report names, and whether it has to exist after this run.
pub(crate) struct Required {
    pub(crate) name: &'static str,
    pub(crate) histogram: bool,
    /// Labelled families have no series until first used; `Some(reason)` when this run used it.
    pub(crate) needed: Option<&'static str>,
}

/// Every metric of the platform report exists in the after snapshot, as a histogram's three parts
/// where it is one.
pub(crate) fn presence(out: &mut Out<'_>, pair: &Pair<'_>, required: &[Required]) {
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
pub(crate) fn latency(
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
mod tests;
