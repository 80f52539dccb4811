//! Span accounting: every span a service ends must reach the trace backend, or its loss must be
//! named. The services count the spans they end, export, fail to export and drop (exposed as
//! counters); the backend counts what it accepted and refused (the embedded receiver's own
//! counters, or an OpenTelemetry Collector's `otelcol_*` self-metrics, which Jaeger v2 serves).
//! Between two readings taken when no export was in flight, the deltas must agree:
//!
//! ```text
//! ended    ≥ spans the trace chain expects for the requests answered
//! ended    = exported + export_failed + dropped + pending, with dropped = failed = pending = 0
//! accepted = Σ exported over the services, refused = 0, and stored = accepted where known
//! ```
//!
//! This module is the machinery; which counters a system exposes, and how many spans each of its
//! requests makes, belong to that system (see `bundled`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Snapshot;
use super::reconcile::Check;

/// The names a system's services expose their span counters under, as scraped (`_total`
/// included for counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterNames {
    /// Sampled spans ended.
    pub ended: &'static str,
    /// Spans dropped before export; `dropped_reason` is the label of the queue-full drops.
    pub dropped: &'static str,
    /// The `(label, value)` of queue-full drops among `dropped`.
    pub dropped_reason: (&'static str, &'static str),
    /// Spans the exporter delivered.
    pub exported: &'static str,
    /// Spans the exporter failed to deliver.
    pub export_failed: &'static str,
    /// Gauge: spans ended and not yet accounted for (queued or being exported).
    pub pending: &'static str,
    /// Gauge: spans inside an export call right now.
    pub exporting: &'static str,
    /// Gauge: the batch queue's capacity.
    pub capacity: &'static str,
}

/// One service's span counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServiceSpans {
    /// Sampled spans ended.
    pub ended: f64,
    /// Dropped because the batch queue was full.
    pub dropped: f64,
    /// Delivered by the exporter.
    pub exported: f64,
    /// In batches the exporter failed to deliver.
    pub export_failed: f64,
    /// Ended, not yet exported, failed or dropped.
    pub pending: f64,
    /// Inside an export call.
    pub exporting: f64,
    /// The batch queue's capacity.
    pub capacity: f64,
}

impl ServiceSpans {
    /// The counters in `snapshot`, or `None` when the service does not expose them.
    pub fn read(snapshot: &Snapshot, names: &CounterNames) -> Option<ServiceSpans> {
        if !snapshot.has(names.ended) {
            return None;
        }
        Some(ServiceSpans {
            ended: snapshot.sum(names.ended, &[]),
            dropped: snapshot.sum(names.dropped, &[names.dropped_reason]),
            exported: snapshot.sum(names.exported, &[]),
            export_failed: snapshot.sum(names.export_failed, &[]),
            pending: snapshot.sum(names.pending, &[]),
            exporting: snapshot.sum(names.exporting, &[]),
            capacity: snapshot.sum(names.capacity, &[]),
        })
    }

    /// No span is inside an export call, so a backend read now agrees with `exported`.
    pub fn quiet(&self) -> bool {
        self.exporting == 0.0
    }

    /// Nothing ended, exported or failed between `self` and `later`.
    pub fn same_as(&self, later: &ServiceSpans) -> bool {
        self.ended == later.ended
            && self.exported == later.exported
            && self.export_failed == later.export_failed
    }
}

/// What the trace backend counted, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackendSpans {
    /// Spans accepted by its receivers.
    pub accepted: f64,
    /// Spans its receivers refused.
    pub refused: f64,
    /// Spans its exporters (the storage) took, when it says (a Collector does).
    pub stored: Option<f64>,
    /// Spans its exporters failed to store, when it says.
    pub store_failed: Option<f64>,
}

/// The first of `names` present in `snapshot`, summed over its series (a Collector names its
/// counters with `_total` since v0.123, without before).
fn first_of(snapshot: &Snapshot, names: &[&str]) -> Option<f64> {
    names
        .iter()
        .find(|name| snapshot.has(name))
        .map(|name| snapshot.sum(name, &[]))
}

impl BackendSpans {
    /// An OpenTelemetry Collector's own telemetry (Jaeger v2 serves it, by default on
    /// `:8888/metrics`): receiver accepted and refused spans, exporter sent and failed spans,
    /// summed over receivers, transports and exporters. `None` when it has no receiver counters.
    pub fn from_collector(snapshot: &Snapshot) -> Option<BackendSpans> {
        let accepted = first_of(
            snapshot,
            &[
                "otelcol_receiver_accepted_spans_total",
                "otelcol_receiver_accepted_spans",
            ],
        )?;
        Some(BackendSpans {
            accepted,
            refused: first_of(
                snapshot,
                &[
                    "otelcol_receiver_refused_spans_total",
                    "otelcol_receiver_refused_spans",
                ],
            )
            .unwrap_or(0.0),
            stored: first_of(
                snapshot,
                &[
                    "otelcol_exporter_sent_spans_total",
                    "otelcol_exporter_sent_spans",
                ],
            ),
            store_failed: first_of(
                snapshot,
                &[
                    "otelcol_exporter_send_failed_spans_total",
                    "otelcol_exporter_send_failed_spans",
                ],
            ),
        })
    }

    /// Every span accepted has left the pipeline (stored or failed), so that what it stored
    /// can be compared with what it accepted. Always true of a backend that does not say.
    pub fn pipeline_empty(&self) -> bool {
        match self.stored {
            None => true,
            Some(stored) => self.accepted == stored + self.store_failed.unwrap_or(0.0),
        }
    }

    fn minus(&self, before: &BackendSpans) -> BackendSpans {
        let both = |a: Option<f64>, b: Option<f64>| Some(a? - b.unwrap_or(0.0));
        BackendSpans {
            accepted: self.accepted - before.accepted,
            refused: self.refused - before.refused,
            stored: both(self.stored, before.stored),
            store_failed: both(self.store_failed, before.store_failed),
        }
    }
}

/// The readings on either side of the load, and what the run leads one to expect.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    /// Each service's counters before the load; a service absent here is not accounted.
    pub before: BTreeMap<String, ServiceSpans>,
    /// Each service's counters once its spans settled; absent: it stopped exposing them.
    pub after: BTreeMap<String, ServiceSpans>,
    /// The backend before and after, and what it is (`embedded OTLP receiver`, a URL).
    pub backend: Option<(String, BackendSpans, BackendSpans)>,
    /// The spans each service should have ended, and why; `Err` says why it cannot be told.
    pub expected: BTreeMap<String, Result<(f64, String), String>>,
    /// Set when the settled reading never came: what was still pending.
    pub unsettled: Option<String>,
    /// Services that must expose their counters (those of a system known to count its spans).
    pub required: Vec<String>,
}

/// The checks: per service, ended against the chain and nothing dropped, failed or pending;
/// then the backend against the services' exports.
pub fn account(readings: &Readings, names: &CounterNames) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut exported = 0.0;
    let services: BTreeSet<&String> = readings.before.keys().chain(&readings.required).collect();
    for service in services {
        let check = |metric: &str, labels: String, expected, observed, detail: String| Check {
            service: service.clone(),
            metric: metric.to_owned(),
            labels,
            expected,
            observed,
            passed: super::reconcile::same(expected, observed),
            skipped: false,
            detail,
        };
        let (Some(before), Some(after)) =
            (readings.before.get(service), readings.after.get(service))
        else {
            let when = match readings.before.contains_key(service) {
                true => "after the load, though it did before",
                false if readings.after.contains_key(service) => "before the load",
                false => "before or after the load",
            };
            checks.push(Check {
                passed: false,
                ..check(
                    names.ended,
                    String::new(),
                    1.0,
                    0.0,
                    format!(
                        "{service} did not expose its span counters {when}: its spans cannot be \
                         accounted for"
                    ),
                )
            });
            continue;
        };
        let delta = |f: fn(&ServiceSpans) -> f64| f(after) - f(before);
        let ended = delta(|s| s.ended);
        match readings.expected.get(service) {
            // The chain names the spans a trace must have; a service may make more.
            Some(Ok((wanted, why))) => checks.push(Check {
                passed: ended >= *wanted,
                ..check(
                    names.ended,
                    String::new(),
                    *wanted,
                    ended,
                    format!("at least the spans the trace chain expects: {why}"),
                )
            }),
            Some(Err(why)) => checks.push(Check {
                skipped: true,
                passed: true,
                ..check(names.ended, String::new(), 0.0, ended, why.clone())
            }),
            None => {}
        }
        let dropped = delta(|s| s.dropped);
        checks.push(check(
            names.dropped,
            super::reconcile::matchers(&[names.dropped_reason]),
            0.0,
            dropped,
            format!(
                "spans dropped in {service}'s batch queue, which holds {} (OTEL_BSP_MAX_QUEUE_SIZE): \
                 they never left the service",
                after.capacity
            ),
        ));
        let failed = delta(|s| s.export_failed);
        checks.push(check(
            names.export_failed,
            String::new(),
            0.0,
            failed,
            format!(
                "spans {service} failed to export: the collector was unreachable, timed out or \
                 refused the batch"
            ),
        ));
        checks.push(check(
            names.pending,
            String::new(),
            0.0,
            after.pending,
            readings.unsettled.clone().unwrap_or_else(|| {
                format!("spans {service} had ended but not yet exported once the run settled")
            }),
        ));
        exported += delta(|s| s.exported);
    }
    if let Some((backend, before, after)) = &readings.backend {
        let delta = after.minus(before);
        let check = |metric: &str, expected: f64, observed: f64, detail: String| Check {
            service: backend.clone(),
            metric: metric.to_owned(),
            labels: String::new(),
            expected,
            observed,
            passed: super::reconcile::same(expected, observed),
            skipped: false,
            detail,
        };
        let lost = exported - delta.accepted - delta.refused;
        let sent = if delta.refused > 0.0 {
            format!(
                "spans the services exported, less the {} refused",
                delta.refused
            )
        } else {
            "spans the services exported".to_owned()
        };
        let accepted_detail = if lost > 0.0 {
            format!(
                "{sent}; {lost} of them never reached the backend: lost between the services \
                 and it"
            )
        } else if lost < 0.0 {
            format!(
                "{sent}; the backend counted {} more than they sent (another exporter, or a \
                 retried batch)",
                -lost
            )
        } else {
            sent
        };
        checks.push(check(
            "spans accepted",
            exported - delta.refused,
            delta.accepted,
            accepted_detail,
        ));
        checks.push(check(
            "spans refused",
            0.0,
            delta.refused,
            "spans the backend refused: the collector received them and would not take them".into(),
        ));
        if let Some(stored) = delta.stored {
            checks.push(check(
                "spans stored",
                delta.accepted,
                stored,
                format!(
                    "spans the backend accepted, to be passed to its storage{}",
                    delta
                        .store_failed
                        .filter(|n| *n > 0.0)
                        .map(|n| format!("; {n} failed to be stored"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    checks
}

#[cfg(test)]
mod tests;
