//! The arithmetic of a merge: shards' results added into the fleet's.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{Shard, state};
use crate::exit::RunError;
use crate::load::recorder::new_histogram;
use crate::result::{
    self, FleetResult, FleetShard, KindResult, LoadSummary, Percentiles, PiiReport, RunResult,
    RunStatus, SecondResult, TraceReport, VerificationResult,
};
use crate::threshold::{self, Scoped, Threshold};

/// The most failing traces a merged result lists, as a run's does.
const LISTED_FAILURES: usize = 50;
/// The most transport errors a merged kind keeps, as a run's does.
const KEPT_TRANSPORT_ERRORS: usize = 5;

/// A merged result before its thresholds are judged: what judging them needs besides.
pub(super) struct Combined {
    pub(super) result: RunResult,
    /// The thresholds to judge, as the shards judged them.
    pub(super) thresholds: Vec<Scoped>,
    histograms: Vec<(Histogram<u64>, Histogram<u64>)>,
    all: (Histogram<u64>, Histogram<u64>),
}

impl Combined {
    /// The merged result with its thresholds judged on the fleet.
    pub(super) fn judge(mut self) -> RunResult {
        self.result.thresholds = threshold::evaluate_stored(
            &self.thresholds,
            &self.histograms,
            (&self.all.0, &self.all.1),
            &self.result,
        );
        self.result
    }
}

/// The fleet's result, judged: `shards` checked to be one whole fleet, in any order.
#[cfg(test)]
pub(super) fn fleet(shards: &[Shard]) -> Result<RunResult, RunError> {
    combined(shards).map(Combined::judge)
}

/// The fleet's result, its thresholds not yet judged.
pub(super) fn combined(shards: &[Shard]) -> Result<Combined, RunError> {
    let mut shards: Vec<&Shard> = shards.iter().collect();
    shards.sort_by_key(|s| s.identity.index);
    let first = &shards[0].result;
    let histogram = |shard: &Shard, what: &str, text: &str| {
        result::decode_histogram(text)
            .map_err(|e| RunError::BadInput(format!("{}: {what}: {e}", shard.path.display())))
    };
    let add = |into: &mut Histogram<u64>, from: &Histogram<u64>, shard: &Shard| {
        into.add(from).map_err(|e| {
            RunError::BadInput(format!(
                "{}: a histogram beyond the harness's bounds: {e}",
                shard.path.display()
            ))
        })
    };

    // Kinds by position: one scenario, so the same kinds in the same order.
    let mut kinds: Vec<KindResult> = Vec::new();
    let mut histograms: Vec<(Histogram<u64>, Histogram<u64>)> = Vec::new();
    let (mut all_latency, mut all_service, mut send_lag) =
        (new_histogram(), new_histogram(), new_histogram());
    for shard in &shards {
        if shard.result.kinds.len() != first.kinds.len() {
            return Err(RunError::BadInput(format!(
                "{}: {} request kinds where shard {} has {}",
                shard.path.display(),
                shard.result.kinds.len(),
                shards[0].identity.index,
                first.kinds.len()
            )));
        }
        for (k, kind) in shard.result.kinds.iter().enumerate() {
            let latency = histogram(shard, &kind.name, &kind.latency_histogram)?;
            let service = histogram(shard, &kind.name, &kind.service_time_histogram)?;
            add(&mut all_latency, &latency, shard)?;
            add(&mut all_service, &service, shard)?;
            if k == kinds.len() {
                kinds.push(KindResult {
                    sent: 0,
                    dropped: 0,
                    completed: 0,
                    unexpected: 0,
                    outcomes: BTreeMap::new(),
                    transport_errors: Vec::new(),
                    ..kind.clone()
                });
                histograms.push((new_histogram(), new_histogram()));
            }
            let (into, (into_latency, into_service)) = (&mut kinds[k], &mut histograms[k]);
            into.sent += kind.sent;
            into.dropped += kind.dropped;
            into.completed += kind.completed;
            into.unexpected += kind.unexpected;
            for (outcome, count) in &kind.outcomes {
                *into.outcomes.entry(outcome.clone()).or_default() += count;
            }
            for error in &kind.transport_errors {
                if into.transport_errors.len() < KEPT_TRANSPORT_ERRORS {
                    into.transport_errors.push(error.clone());
                }
            }
            add(into_latency, &latency, shard)?;
            add(into_service, &service, shard)?;
        }
        if let Some(text) = &shard.identity.send_lag_histogram {
            add(&mut send_lag, &histogram(shard, "send lag", text)?, shard)?;
        }
    }
    for (kind, (latency, service)) in kinds.iter_mut().zip(&histograms) {
        kind.latency = Percentiles::of(latency);
        kind.service_time = Percentiles::of(service);
        kind.latency_histogram = result::encode_histogram(latency);
        kind.service_time_histogram = result::encode_histogram(service);
    }

    let load = load_summary(&shards, &all_latency, &all_service, &send_lag);
    let fleet = FleetResult {
        count: shards[0].identity.count,
        scenario_sha256: shards[0].identity.scenario_sha256.clone(),
        shards: shards
            .iter()
            .map(|shard| {
                let (state, reason) = state(&shard.result.status);
                FleetShard {
                    index: shard.identity.index,
                    path: shard.path.display().to_string(),
                    state: state.to_owned(),
                    reason,
                    sent: shard.result.load.sent,
                    achieved_rate: shard.result.load.achieved_rate,
                    start_lag_ms: shard.identity.start_lag_ms,
                }
            })
            .collect(),
        metrics_not_reconciled: shards.iter().any(|s| s.identity.metrics_checks).then(|| {
            "the services' metrics were not reconciled fleet-wide: each shard sees only its \
             own share of the requests the services count, and no fleet-wide metrics source \
             was read (`harness merge --prometheus URL` reads one)"
                .to_owned()
        }),
    };
    let merged = RunResult {
        status: status(&shards),
        started_at_unix_ms: shards
            .iter()
            .map(|s| s.result.started_at_unix_ms)
            .min()
            .unwrap_or(first.started_at_unix_ms),
        load,
        kinds,
        timeline: timeline(&shards),
        thresholds: Vec::new(),
        verification: VerificationResult {
            traces: traces(&shards)?,
            metrics: None,
            pii: pii(&shards),
            // Stream loads are not sharded (`harness run --shard` refuses them).
            streams: None,
        },
        // Each process's memory is its own: a shard's is not the fleet's.
        memory: None,
        shard: None,
        fleet: Some(fleet),
        ..first.clone()
    };
    Ok(Combined {
        result: merged,
        thresholds: thresholds(&shards)?,
        histograms,
        all: (all_latency, all_service),
    })
}

/// Completed when every shard completed; otherwise an incomplete fleet, naming each shard that
/// was not.
fn status(shards: &[&Shard]) -> RunStatus {
    let count = shards.first().map_or(0, |s| s.identity.count);
    let unfinished: Vec<String> = shards
        .iter()
        .filter_map(|shard| {
            let (state, reason) = state(&shard.result.status);
            reason.map(|reason| format!("shard {}/{count} {state}: {reason}", shard.identity.index))
        })
        .collect();
    if unfinished.is_empty() {
        RunStatus::Completed
    } else {
        RunStatus::Failed {
            reason: format!("incomplete fleet: {}", unfinished.join("; ")),
        }
    }
}

/// The fleet's counts, its percentiles from the added histograms, and its achieved rate over
/// the fleet's send window: from the earliest shard's start to the latest shard's last send.
fn load_summary(
    shards: &[&Shard],
    latency: &Histogram<u64>,
    service: &Histogram<u64>,
    send_lag: &Histogram<u64>,
) -> LoadSummary {
    let sum = |f: fn(&LoadSummary) -> u64| shards.iter().map(|s| f(&s.result.load)).sum::<u64>();
    let sent = sum(|l| l.sent);
    let window: Vec<(f64, f64)> = shards
        .iter()
        .filter_map(|s| {
            let start = s.identity.load_started_at_unix_us? as f64 / 1e6;
            Some((start, start + s.result.load.send_duration_s))
        })
        .collect();
    let first = window.iter().map(|w| w.0).fold(f64::INFINITY, f64::min);
    let last = window.iter().map(|w| w.1).fold(f64::NEG_INFINITY, f64::max);
    let seconds = if last > first { last - first } else { 0.0 };
    LoadSummary {
        target_rate: shards.iter().map(|s| s.result.load.target_rate).sum(),
        achieved_rate: if seconds > 0.0 {
            sent.saturating_sub(1) as f64 / seconds
        } else {
            0.0
        },
        scheduled: sum(|l| l.scheduled),
        sent,
        dropped: sum(|l| l.dropped),
        completed: sum(|l| l.completed),
        unexpected: sum(|l| l.unexpected),
        abandoned: sum(|l| l.abandoned),
        send_duration_s: seconds,
        latency: Percentiles::of(latency),
        service_time: Percentiles::of(service),
        send_lag: Percentiles::of(send_lag),
    }
}

/// The shards' timelines added by wall-clock second: each shard's second goes into the fleet
/// second in which it began, counted from the earliest shard's start. Counts add exactly; a
/// second's percentiles cannot be added (the timeline keeps no histogram per second), so the
/// fleet's are the highest of the shards' in that second: an upper bound, as the report says.
fn timeline(shards: &[&Shard]) -> Vec<SecondResult> {
    let start = shards
        .iter()
        .filter_map(|s| s.identity.load_started_at_unix_us)
        .min()
        .unwrap_or(0);
    let mut seconds: Vec<SecondResult> = Vec::new();
    let max = |a: Option<u64>, b: Option<u64>| a.max(b);
    for shard in shards {
        let Some(began) = shard.identity.load_started_at_unix_us else {
            continue;
        };
        let offset_us = began - start;
        for second in &shard.result.timeline {
            let at = offset_us.saturating_add(second.second.saturating_mul(1_000_000)) / 1_000_000;
            // A timeline is as long as its run: a forged second far away is not followed.
            let Ok(at) = usize::try_from(at) else {
                continue;
            };
            if at > 10 * 24 * 3600 {
                continue;
            }
            while seconds.len() <= at {
                seconds.push(SecondResult {
                    second: seconds.len() as u64,
                    sent: 0,
                    completed: 0,
                    unexpected: 0,
                    dropped: 0,
                    p50_us: None,
                    p95_us: None,
                    p99_us: None,
                });
            }
            let into = &mut seconds[at];
            into.sent += second.sent;
            into.completed += second.completed;
            into.unexpected += second.unexpected;
            into.dropped += second.dropped;
            into.p50_us = max(into.p50_us, second.p50_us);
            into.p95_us = max(into.p95_us, second.p95_us);
            into.p99_us = max(into.p99_us, second.p99_us);
        }
    }
    seconds
}

/// The shards' searches for personal data added up: the fleet is clean only when every shard
/// searched and found nothing that fails it; the finds are listed up to the usual number.
fn pii(shards: &[&Shard]) -> Option<PiiReport> {
    let mut merged: Option<PiiReport> = None;
    for report in shards
        .iter()
        .filter_map(|s| s.result.verification.pii.as_ref())
    {
        let Some(into) = &mut merged else {
            merged = Some(report.clone());
            continue;
        };
        into.passed &= report.passed;
        for kind in &report.canary_kinds {
            if !into.canary_kinds.contains(kind) {
                into.canary_kinds.push(kind.clone());
            }
        }
        let (to, from) = (&mut into.searched, &report.searched);
        to.traces += from.traces;
        to.spans += from.spans;
        to.log_files += from.log_files;
        to.log_lines += from.log_lines;
        to.series += from.series;
        into.canaries_found += report.canaries_found;
        into.patterns_found += report.patterns_found;
        let room = LISTED_FAILURES.saturating_sub(into.findings.len());
        into.findings
            .extend(report.findings.iter().take(room).cloned());
        into.not_searched
            .extend(report.not_searched.iter().cloned());
    }
    merged
}

/// The shards' trace verification added up: counts summed, the time-to-visible histograms
/// added, the failing traces listed up to the usual number.
fn traces(shards: &[&Shard]) -> Result<Option<TraceReport>, RunError> {
    let mut merged: Option<TraceReport> = None;
    let mut visible = new_histogram();
    for shard in shards {
        let Some(report) = &shard.result.verification.traces else {
            continue;
        };
        if let Some(text) = &report.visible_histogram {
            let h = result::decode_histogram(text).map_err(|e| {
                RunError::BadInput(format!("{}: trace visibility: {e}", shard.path.display()))
            })?;
            visible.add(&h).map_err(|e| {
                RunError::BadInput(format!("{}: trace visibility: {e}", shard.path.display()))
            })?;
        }
        let Some(into) = &mut merged else {
            merged = Some(TraceReport {
                source_stats: None,
                failing: report
                    .failing
                    .iter()
                    .take(LISTED_FAILURES)
                    .cloned()
                    .collect(),
                ..report.clone()
            });
            continue;
        };
        into.sampled += report.sampled;
        into.complete += report.complete;
        into.passed += report.passed;
        into.unanswered += report.unanswered;
        into.not_judged += report.not_judged;
        for check in &report.checks {
            if !into.checks.contains(check) {
                into.checks.push(*check);
            }
        }
        for (check, count) in &report.failed_checks {
            *into.failed_checks.entry(*check).or_default() += count;
        }
        let room = LISTED_FAILURES.saturating_sub(into.failing.len());
        into.failing
            .extend(report.failing.iter().take(room).cloned());
    }
    if let Some(report) = &mut merged {
        report.completeness =
            (report.sampled > 0).then(|| report.complete as f64 / report.sampled as f64);
        report.visible = (!visible.is_empty()).then(|| Percentiles::of(&visible));
        report.visible_histogram =
            (!visible.is_empty()).then(|| result::encode_histogram(&visible));
    }
    Ok(merged)
}

/// The thresholds the shards judged, to be judged again on the fleet: the same list in every
/// shard of one scenario, implicit ones included; a shard that failed before judging any lends
/// its list to none.
fn thresholds(shards: &[&Shard]) -> Result<Vec<Scoped>, RunError> {
    let Some(judged) = shards
        .iter()
        .find(|s| !s.result.thresholds.is_empty())
        .map(|s| (&s.result, &s.path))
    else {
        return Ok(Vec::new());
    };
    let (result, path) = judged;
    result
        .thresholds
        .iter()
        .map(|t| {
            let threshold = Threshold::parse(&t.evaluation.expression).map_err(|e| {
                RunError::BadInput(format!(
                    "{}: threshold {:?}: {e}",
                    path.display(),
                    t.evaluation.expression
                ))
            })?;
            let kind = match t.scope.as_str() {
                "overall" => None,
                name => Some(
                    result
                        .kinds
                        .iter()
                        .position(|k| k.name == name)
                        .ok_or_else(|| {
                            RunError::BadInput(format!(
                                "{}: threshold {:?} on a request kind {name:?} it does not have",
                                path.display(),
                                t.evaluation.expression
                            ))
                        })?,
                ),
            };
            Ok(Scoped { kind, threshold })
        })
        .collect()
}
