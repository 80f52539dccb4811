//! The fleet's metrics verification. The services count every shard's requests, so their
//! counters are read once for the whole fleet: from a Prometheus that scraped them while the
//! fleet ran, at two past instants, as one run reads them before and after its load. Before: the
//! last scrape before the fleet's first send, which must have come after every shard's warm-up.
//! After: the first scrape of every target after the last shard's load ended. The difference is
//! reconciled with the fleet's merged counts by the rules one run uses (the bundled system's, or
//! the scenario's declared `verify.metrics.rules`).

use std::time::{Duration, SystemTime};

use super::Shard;
use super::combine::Combined;
use crate::bundled::metrics::{Received, reconcile as bundled};
use crate::exit::RunError;
use crate::metrics::declared::{self, Outcomes};
use crate::metrics::{MetricsSource, PrometheusSource, Snapshot};
use crate::result::{MetricsReport, SourceReport};
use crate::scenario::{self, MetricsChecks, PrometheusSpec, Protocol};

/// How long after the fleet's end to wait for Prometheus to scrape the services, as a run waits.
const SCRAPE_WAIT: Duration = Duration::from_secs(60);

/// Reconciles the fleet's metrics when the scenario asks for metrics checks or `--prometheus`
/// names a server, and a Prometheus is known; otherwise leaves the merge saying that they were
/// not reconciled (a shard's own scrapes see its share only).
pub(super) fn reconcile(
    shards: &[Shard],
    combined: &mut Combined,
    prometheus: Option<&str>,
) -> Result<(), RunError> {
    let asked = shards.iter().any(|s| s.identity.metrics_checks);
    let Some(first) = shards.first() else {
        return Ok(());
    };
    if !asked && prometheus.is_none() {
        return Ok(());
    }
    let echo = &first.result.scenario;
    let overrides = echo
        .overrides
        .iter()
        .map(|o| o.parse::<scenario::Override>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RunError::BadInput(format!("{}: {e}", first.path.display())))?;
    let mut scenario = scenario::parse(&echo.path, &echo.source, &overrides).map_err(|e| {
        RunError::BadInput(format!(
            "{}: the scenario it holds: {e}",
            first.path.display()
        ))
    })?;
    let checks = scenario
        .verify
        .metrics
        .get_or_insert_with(|| MetricsChecks {
            scrape: false,
            ..MetricsChecks::default()
        });
    let spec = match (prometheus, &checks.prometheus) {
        (Some(url), Some(spec)) => PrometheusSpec {
            url: url.trim_end_matches('/').to_owned(),
            ..spec.clone()
        },
        (Some(url), None) => PrometheusSpec::bundled(url.trim_end_matches('/').to_owned()),
        (None, Some(spec)) => spec.clone(),
        (None, None) => return Ok(()),
    };
    if let Some(url) = prometheus {
        PrometheusSource::new(url, Vec::new())
            .map_err(|e| RunError::BadInput(format!("--prometheus {url}: {e}")))?;
    }
    let rules = checks.rules.clone();
    let result = &combined.result;
    let outcomes: Outcomes = result
        .kinds
        .iter()
        .map(|k| (k.name.clone(), k.outcomes.clone()))
        .collect();
    let received = received(combined, scenario.load.protocol);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Incomplete(anyhow::anyhow!("starting the async runtime: {e}")))?;
    let (description, read) = runtime.block_on(read(&spec, shards));
    let report = match read {
        Ok((before, after)) => {
            let reconciliation = if rules.is_empty() {
                bundled(&before, &after, &received)
            } else {
                declared::reconcile(&before, &after, &rules, &outcomes)
            };
            SourceReport {
                source: description,
                error: None,
                passed: reconciliation.passed,
                checks: reconciliation.checks,
            }
        }
        Err(error) => SourceReport {
            source: description,
            error: Some(error),
            passed: false,
            checks: Vec::new(),
        },
    };
    let result = &mut combined.result;
    result.verification.metrics = Some(MetricsReport {
        reconciled: report.passed,
        sources: vec![report],
    });
    if let Some(fleet) = &mut result.fleet {
        fleet.metrics_not_reconciled = None;
    }
    // The shards judged no metrics: the implicit gate comes back with the fleet's checks.
    let implicit = crate::threshold::implicit(&scenario, &combined.thresholds);
    combined.thresholds.extend(implicit);
    Ok(())
}

/// What the fleet received, by HTTP status or gRPC code, and its p99 service time.
fn received(combined: &Combined, protocol: Protocol) -> Received {
    let mut received = Received::default();
    for kind in &combined.result.kinds {
        received.add_outcomes(protocol, &kind.outcomes);
    }
    let service = &combined.result.load.service_time;
    received.client_p99 = (service.count > 0).then(|| Duration::from_micros(service.p99));
    received
}

/// The source's description, and the services' snapshots before and after the fleet's load.
async fn read(
    spec: &PrometheusSpec,
    shards: &[Shard],
) -> (String, Result<(Vec<Snapshot>, Vec<Snapshot>), String>) {
    let source = crate::verify::headers(&spec.access)
        .map_err(|e| e.to_string())
        .and_then(|headers| {
            PrometheusSource::new(&spec.url, spec.selectors.clone())
                .and_then(|s| s.with_access(&spec.access.tls, headers))
                .map_err(|e| e.to_string())
        });
    let source = match source {
        Ok(source) => source,
        Err(error) => return (format!("prometheus {}", spec.url), Err(error)),
    };
    let description = source.describe();
    (description, snapshots(&source, shards).await)
}

async fn snapshots(
    source: &PrometheusSource,
    shards: &[Shard],
) -> Result<(Vec<Snapshot>, Vec<Snapshot>), String> {
    let (warmed_up, first_send, ended) = window(shards)?;
    let at = |us: u64| SystemTime::UNIX_EPOCH + Duration::from_micros(us);
    // Prometheus's timestamps are milliseconds: the last one strictly before the first send.
    let before_at = (first_send / 1000).saturating_sub(1) as f64 / 1e3;
    source
        .scraped_between(at(warmed_up), before_at)
        .await
        .map_err(|e| {
            format!(
                "the fleet's baseline: {e} (no scrape fell between the shards' warm-up and the \
                 first send: give the fleet a later --start-at, or scrape more often)"
            )
        })?;
    let before = source
        .snapshot_at(before_at)
        .await
        .map_err(|e| e.to_string())?;
    let after_at = source
        .first_scrape_after(at(ended), SCRAPE_WAIT)
        .await
        .map_err(|e| format!("after the fleet's load: {e}"))?;
    let after = source
        .snapshot_at(after_at)
        .await
        .map_err(|e| e.to_string())?;
    Ok((before, after))
}

/// The fleet's load window (Unix µs): the last warm-up's end, the first send and the last
/// shard's end. A shard that did not record its own (it failed first) leaves the window unknown.
pub(super) fn window(shards: &[Shard]) -> Result<(u64, u64, u64), String> {
    let mut window: Option<(u64, u64, u64)> = None;
    for shard in shards {
        let id = &shard.identity;
        let (Some(warmed), Some(started), Some(ended)) = (
            id.warmed_up_at_unix_us,
            id.load_started_at_unix_us,
            id.load_ended_at_unix_us,
        ) else {
            return Err(format!(
                "shard {}/{} ({}) recorded no load window: it did not complete its load",
                id.index,
                id.count,
                shard.path.display()
            ));
        };
        window = Some(match window {
            None => (warmed, started, ended),
            Some((w, s, e)) => (w.max(warmed), s.min(started), e.max(ended)),
        });
    }
    window.ok_or_else(|| "no shards".to_owned())
}
