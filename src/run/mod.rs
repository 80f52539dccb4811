//! `harness run`: a scenario from file to exit code. Launch (or reach) the system, warm up, run the
//! measured load, stop the system, evaluate thresholds, and always write `result.json`.

use std::path::{Path, PathBuf};

use hyper::Uri;
use tokio_util::sync::CancellationToken;

use crate::exit::RunError;
use crate::load::{RunReport, Stop};
use crate::result::memory::{HARNESS_PROCESS, MemoryResult};
use crate::result::{PhaseResult, RunResult};
use crate::scenario::{self, Scenario, System};
use crate::system::jaeger::JaegerProcess;
use crate::system::rss::{RssSampler, Watched};
use crate::system::{ManagedSystem, MetricsTokenFile};
use crate::threshold;

mod measure;
mod outputs;
mod resolve;
pub mod shard;
mod target;
mod watch;

use crate::bundled;
use crate::plan;
use crate::verify::{LogFiles, QueryApis, Verifier};
use measure::drive;
use outputs::Outputs;
use target::{start_jaeger, start_system};

/// The flags of `harness run` besides the scenario path.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--out`: each scenario writes into its own directory below it.
    pub out_dir: PathBuf,
    /// `--set KEY=VALUE`, in order, as given.
    pub overrides: Vec<String>,
    /// `--target URL`: load an external system at this URL instead of launching one.
    pub target: Option<Uri>,
    /// `--gateway URL`: load an external gateway instead of launching the system.
    pub gateway: Option<Uri>,
    /// `--engine URL`: load an external engine instead of launching the system.
    pub engine: Option<Uri>,
    /// `--quiet`: no progress lines.
    pub quiet: bool,
    /// `--jaeger`, `--prometheus`: query APIs of a real deployment.
    pub apis: QueryApis,
    /// `--junit FILE`: JUnit XML written beside every `result.json`.
    pub junit: Option<PathBuf>,
    /// `--summary-json FILE`: the outcome as a small JSON document (`-`: standard output),
    /// written last, from every result the run writes.
    pub summary_json: Option<PathBuf>,
    /// `--jaeger-bin PATH`: the Jaeger v2 binary for `system.managed.jaeger` (else found as
    /// [`crate::system::jaeger::find_binary`] says).
    pub jaeger_bin: Option<PathBuf>,
    /// `--shard I/N`: run one shard of a fleet, into `OUT/<scenario>/shard-I/`.
    pub shard: Option<shard::Shard>,
    /// `--start-at`: the fleet's common start (else the first shard's, see [`shard`]).
    pub start_at: Option<std::time::SystemTime>,
}

/// What became of a run.
pub struct Finished {
    /// What the run measured and how it ended.
    pub result: RunResult,
    /// Where `result.json` was written.
    pub result_path: PathBuf,
}

impl Finished {
    /// Every threshold passed and, in an overhead experiment, the claim held.
    pub fn passed(&self) -> bool {
        self.result.passed()
    }
}

/// Runs the scenario at `path` and writes what it measured, whatever became of the run.
pub async fn run(
    path: &Path,
    options: &RunOptions,
    stop: CancellationToken,
) -> Result<Finished, RunError> {
    let overrides = options
        .overrides
        .iter()
        .map(|o| {
            o.parse::<scenario::Override>()
                .map_err(|e| RunError::BadInput(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut scenario =
        scenario::load(path, &overrides).map_err(|e| RunError::BadInput(e.to_string()))?;
    apply_flags(&mut scenario, options)?;
    let metrics_checks = scenario.verify.metrics.is_some();
    let sharding = sharded(&mut scenario, options)?;
    let mut thresholds = threshold::parse_all(&scenario)?;
    thresholds.extend(threshold::implicit(&scenario, &thresholds));
    // A method named for the server's reflection is encoded once the target has described it.
    let mix = if !scenario.reflected_methods().is_empty() {
        plan::check(&scenario, &plan::process_env)?;
        None
    } else {
        Some(plan::prepare(&scenario, &plan::process_env)?)
    };
    let outputs = Outputs::create(path, &scenario, options)?.with_fleet_metrics(metrics_checks);
    if scenario.overhead.is_some() {
        let points = crate::overhead::points(path, &overrides, &scenario)?;
        drop(mix);
        let measured =
            crate::overhead::run(&scenario, points, &outputs.dir, options.quiet, &stop).await;
        let measured = measured.map_err(|error| outputs.failed(error))?;
        let mut result = outputs.result(&measured.treatment, measured.failure);
        result.overhead = Some(measured.result);
        result.thresholds = threshold::evaluate(&thresholds, &measured.treatment, &result);
        return outputs.finish(result);
    }
    // A launched Jaeger is ready before anything asks it or exports to it; dropped (killed) on
    // every early return below.
    let jaeger = start_jaeger(&mut scenario, &outputs.dir, options.jaeger_bin.as_deref())
        .await
        .map_err(|error| outputs.failed(error))?;
    // A fresh token for the managed services' metrics, outside the output directory, removed
    // when the run ends however it ends (dropped with this scope).
    let metrics_token = match &scenario.system {
        System::Managed(managed) if managed.metrics_auth => {
            let parent = std::env::temp_dir();
            let token = MetricsTokenFile::create(&parent).map_err(|e| {
                outputs.failed(RunError::Incomplete(anyhow::anyhow!(
                    "creating the metrics token file in {}: {e}",
                    parent.display()
                )))
            })?;
            Some(token)
        }
        _ => None,
    };
    // Every source the verification reads answers before the services start and the load begins.
    let started_system = async {
        let mut verifier = Verifier::prepare(&scenario)?;
        if let Some(token) = &metrics_token {
            verifier.set_scrape_authorization(token.authorization());
        }
        // A launched Jaeger's own metrics count the spans it accepted; a flag names another's.
        if let Some(jaeger) = &jaeger {
            let url = jaeger.ports.metrics_url();
            verifier.set_collector_metrics(&url).map_err(|e| {
                RunError::Incomplete(anyhow::anyhow!("Jaeger's metrics {url}: {e}"))
            })?;
        }
        if let Some(url) = &options.apis.jaeger_metrics {
            verifier
                .set_collector_metrics(url)
                .map_err(|e| RunError::BadInput(format!("--jaeger-metrics {url}: {e}")))?;
        }
        verifier.preflight().await?;
        let system = start_system(
            &scenario,
            &outputs.dir,
            &verifier,
            jaeger.as_ref(),
            metrics_token.as_ref(),
        )
        .await?;
        Ok((verifier, system))
    };
    let (mut verifier, (managed, target, scrape_targets)) = started_system
        .await
        .map_err(|error| outputs.failed(error))?;
    if let Some(targets) = &scrape_targets
        && let Err(error) = verifier.preflight_scrape(targets).await
    {
        if let Some(system) = managed {
            system.stop().await;
        }
        verifier.shutdown().await;
        return Err(outputs.failed(error));
    }
    let mut jaeger = jaeger;
    let log_files: Vec<(&str, PathBuf)> = managed
        .iter()
        .flat_map(|system| {
            [
                (bundled::ENGINE_SERVICE, system.engine.log.clone()),
                (bundled::GATEWAY_SERVICE, system.gateway.log.clone()),
            ]
        })
        .collect();
    let log_refs: Vec<(&str, &Path)> = log_files.iter().map(|(s, p)| (*s, p.as_path())).collect();
    let logs = managed.is_some().then_some(LogFiles {
        services: &log_refs,
    });
    // A signal stops everything below; so does a launched process that exits on its own, which
    // must not read as an interruption.
    let halt = stop.child_token();
    let watched = memory_watch(managed.as_ref());
    let measured = async {
        // Resident memory is sampled while the load runs, on this runtime, not the load's thread.
        let sampler = RssSampler::start(watched);
        let mix = match mix {
            Some(mix) => Ok(mix),
            None => resolve::methods(&mut scenario, &target)
                .await
                .and_then(|()| plan::prepare(&scenario, &plan::process_env)),
        };
        let outcome = match mix {
            Ok(mix) => {
                drive(
                    &scenario,
                    mix,
                    &target,
                    &halt,
                    options.quiet,
                    measure::Verify {
                        verifier: &mut verifier,
                        scrape_targets,
                        sharding: sharding.as_ref(),
                    },
                )
                .await
            }
            Err(error) => Err(error),
        };
        let memory = sampler.finish().await;
        let mut metrics = match &outcome {
            Ok(report) => verifier.after_load(report, &halt).await,
            Err(_) => None,
        };
        let traces = verifier
            .finish_traces(&outputs.kind_names, logs.as_ref())
            .await;
        let streams = match &outcome {
            Ok(report) => {
                verifier
                    .check_streams(report, &outputs.kind_names, &halt)
                    .await
            }
            Err(_) => None,
        };
        if let (Ok(report), Some(metrics)) = (&outcome, &mut metrics)
            && let Some(spans) = verifier.span_counts(report).await
        {
            metrics.reconciled &= spans.passed;
            metrics.sources.push(spans);
        }
        (outcome, metrics, traces, memory, streams)
    };
    let mut managed = managed;
    let ((outcome, metrics, mut traces, memory, streams), crashed) =
        watch::while_running(measured, &halt, || exited(&mut managed, &mut jaeger)).await;
    // A launched Jaeger stops with the run: the report links to no UI that will be gone.
    if let (Some(report), Some(_)) = (&mut traces, &jaeger) {
        report.jaeger_ui = None;
    }
    if let Some(system) = managed {
        system.stop().await;
    }
    // After the services, which send it their last spans as they stop.
    if let Some(jaeger) = jaeger {
        jaeger.stop().await;
    }
    let pii = verifier.finish_pii(logs.as_ref());
    verifier.shutdown().await;
    let mut report = outcome.map_err(|error| outputs.failed(error))?;
    // A signal while the traces and metrics were still being checked interrupts the run as one
    // during the load does: what was verified by then is kept, but no verdict is given.
    if stop.is_cancelled() {
        report.stop = Stop::Interrupted;
    }
    let crashed = crashed.or_else(|| unanswered(&report));
    let mut result = outputs.result(&report, crashed);
    result.phases = PhaseResult::of(&scenario.load.phases);
    result.verification.traces = traces;
    result.verification.metrics = metrics;
    result.verification.streams = streams;
    result.verification.pii = pii;
    result.memory = MemoryResult::of(memory, report.recorder.started());
    result.thresholds = threshold::evaluate(&thresholds, &report, &result);
    if let (Some(identity), Some(sharding)) = (&mut result.shard, &sharding) {
        if let Some((planned, started)) = sharding.times() {
            identity.planned_start_unix_ms = Some(shard::unix_ms(planned));
            identity.load_started_at_unix_us = Some(shard::unix_us(started));
            identity.start_lag_ms = started
                .duration_since(planned)
                .map_or(0, |late| late.as_millis() as u64);
        }
        let (warmed_up, ended) = sharding.load_window();
        identity.warmed_up_at_unix_us = warmed_up.map(shard::unix_us);
        identity.load_ended_at_unix_us = ended.map(shard::unix_us);
        identity.send_lag_histogram =
            Some(crate::result::encode_histogram(&report.recorder.send_lag));
    }
    // The recorder's histograms and timeline are in `result` now: freed before the outputs are
    // written, they leave room for them rather than add to the end-of-run peak.
    drop(report);
    outputs.finish(result)
}

/// A shard's part of the run, when `--shard` asks for one. A shard leaves the services' metrics
/// alone: the services count every shard's requests, which no single shard can match, so the
/// fleet's metrics are the merge's business (see `crate::merge`).
fn sharded(
    scenario: &mut Scenario,
    options: &RunOptions,
) -> Result<Option<shard::Sharding>, RunError> {
    let Some(shard) = options.shard else {
        if options.start_at.is_some() {
            return Err(RunError::BadInput(
                "--start-at is the common start of a fleet of shards; give --shard I/N too"
                    .to_owned(),
            ));
        }
        return Ok(None);
    };
    if scenario.overhead.is_some() {
        return Err(RunError::BadInput(format!(
            "{}: an overhead experiment cannot be sharded: its two arms must share one machine",
            scenario.name
        )));
    }
    if scenario.load.protocol == crate::scenario::Protocol::WebSocket {
        return Err(RunError::BadInput(format!(
            "{}: a websocket scenario cannot be sharded yet: its subscriptions and their \
             messages are not split between shards nor merged",
            scenario.name
        )));
    }
    scenario.verify.metrics = None;
    let length = scenario
        .load
        .phases
        .iter()
        .fold(std::time::Duration::ZERO, |sum, p| {
            sum.saturating_add(p.duration())
        });
    Ok(Some(shard::Sharding::new(
        shard,
        options.start_at,
        &options.out_dir.join(&scenario.name),
        length,
    )))
}

/// `--gateway`, `--engine`, `--jaeger` and `--prometheus` applied to the scenario, or refused
/// where they do not apply.
fn apply_flags(scenario: &mut Scenario, options: &RunOptions) -> Result<(), RunError> {
    let apis = &options.apis;
    let elsewhere =
        options.target.is_some() || options.gateway.is_some() || options.engine.is_some();
    if scenario.overhead.is_some()
        && (elsewhere || apis.jaeger.is_some() || apis.prometheus.is_some())
    {
        return Err(RunError::BadInput(format!(
            "{}: the overhead experiment launches its own two systems and verifies nothing; \
             --target, --gateway, --engine, --jaeger and --prometheus do not apply",
            scenario.name
        )));
    }
    // --gateway / --engine switch to an external system whatever the file says, before anything
    // (the trace checks, the receiver's ports, the metrics sources) is chosen for the system.
    if elsewhere {
        let mut external = match &scenario.system {
            System::External(external) => external.clone(),
            System::Managed(_) => Box::default(),
        };
        if let Some(target) = &options.target {
            external.target = Some(target.clone());
        }
        if let Some(gateway) = &options.gateway {
            external.gateway = Some(gateway.clone());
        }
        if let Some(engine) = &options.engine {
            external.engine = Some(engine.clone());
        }
        scenario.system = System::External(external);
    }
    for (flag, url) in [
        ("--target", &options.target),
        ("--gateway", &options.gateway),
        ("--engine", &options.engine),
    ] {
        if let Some(url) = url
            && !matches!(url.scheme_str(), Some("http" | "https"))
        {
            return Err(RunError::BadInput(format!(
                "{flag} {url}: expected an http:// or https:// URL such as http://127.0.0.1:8080"
            )));
        }
    }
    apis.apply(scenario)?;
    if elsewhere
        && let Some(crate::scenario::TraceChecks {
            source: crate::scenario::TraceSourceSpec::ManagedJaeger { .. },
            ..
        }) = &scenario.verify.traces
    {
        return Err(RunError::BadInput(format!(
            "{}: the trace checks read the Jaeger the harness launches beside its own services \
             (system.managed.jaeger), and --target, --gateway or --engine loads another system; \
             give --jaeger URL, that system's Jaeger",
            scenario.name
        )));
    }
    Ok(())
}

/// Everything `harness validate` checks of a scenario file short of running it: the file, its
/// thresholds, its overhead sweep, and every request body for its protocol (a method named for
/// the server's reflection only as far as it can be without the server).
pub fn check(path: &Path) -> Result<Scenario, RunError> {
    let scenario = scenario::load(path, &[]).map_err(|e| RunError::BadInput(e.to_string()))?;
    threshold::parse_all(&scenario)?;
    // Environment variables are read when the run starts; here any value will do.
    let any = |_: &str| Some(String::new());
    for point in crate::overhead::points(path, &[], &scenario)? {
        plan::check(&point.scenario, &any)?;
    }
    Ok(scenario)
}

/// Why a launched service or Jaeger can no longer serve the run, if one has exited on its own.
fn exited(
    managed: &mut Option<ManagedSystem>,
    jaeger: &mut Option<JaegerProcess>,
) -> Option<String> {
    managed
        .as_mut()
        .and_then(ManagedSystem::exited)
        .or_else(|| {
            let jaeger = jaeger.as_mut()?;
            let status = jaeger.try_exited()?;
            Some(format!(
                "Jaeger exited during the run ({status}); see {}",
                jaeger.log.display()
            ))
        })
}

/// The processes whose memory is sampled: the launched services (named as the bundled system
/// names them) and the harness itself; the harness alone when the system is external.
fn memory_watch(managed: Option<&ManagedSystem>) -> Vec<Watched> {
    let services = managed.into_iter().flat_map(|system| {
        [
            (bundled::ENGINE_SERVICE, system.engine.pid()),
            (bundled::GATEWAY_SERVICE, system.gateway.pid()),
        ]
    });
    services
        .filter_map(|(name, pid)| {
            Some(Watched {
                name: name.to_owned(),
                pid: pid?,
                service: true,
            })
        })
        .chain([Watched {
            name: HARNESS_PROCESS.to_owned(),
            pid: std::process::id(),
            service: false,
        }])
        .collect()
}

/// A run that went to its end with no request answered did not measure the system: it failed.
/// An interrupted one stays interrupted: its first requests may simply not have been answered yet.
fn unanswered(report: &RunReport) -> Option<String> {
    if report.stop == Stop::Interrupted {
        return None;
    }
    let kinds = &report.recorder.kinds;
    let sent: u64 = kinds.iter().map(|k| k.sent).sum();
    let answered = kinds
        .iter()
        .flat_map(|k| k.outcomes.keys())
        .any(|label| label != "timeout" && label != "transport");
    let first_error = kinds.iter().flat_map(|k| k.transport_errors.first()).next();
    (sent > 0 && !answered).then(|| match first_error {
        Some(error) => format!("no request got an answer; the first failed with: {error}"),
        None => "no request got an answer before its timeout".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against an external system the harness can see only itself.
    #[test]
    fn an_external_system_samples_the_harness_alone() {
        let watched = memory_watch(None);
        assert_eq!(watched.len(), 1);
        assert_eq!(watched[0].name, HARNESS_PROCESS);
        assert_eq!(watched[0].pid, std::process::id());
        assert!(!watched[0].service);
    }

    #[test]
    fn a_run_without_answers_fails_unless_it_was_interrupted() {
        let mut report = RunReport::empty(["quote".to_owned()]);
        report.recorder.kinds[0].sent = 3;
        let why = unanswered(&report).expect("a completed run with no answer failed");
        assert_eq!(why, "no request got an answer before its timeout");
        report.stop = Stop::Interrupted;
        assert_eq!(unanswered(&report), None);
    }
}
