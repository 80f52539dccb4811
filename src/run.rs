//! `harness run`: a scenario from file to exit code. Launch (or reach) the system, warm up, run the
//! measured load, stop the system, evaluate thresholds, and always write `result.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Uri;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use crate::load::{
    self, Driver, GrpcDriver, HttpDriver, LoadKind, LoadPlan, Outcome, RatePhase, RunReport,
};
use crate::progress::Progress;
use crate::result::{PhaseResult, RunResult, ScenarioEcho, ThresholdResult};
use crate::scenario::{self, Phase, Protocol, Scenario, System};
use crate::system::{ManagedSystem, ServiceLaunch};
use crate::threshold::{Metric, Threshold};
use crate::verification::{LogFiles, QueryApis, Verifier};

/// Payload variants rendered per request kind whose body draws from `vars`.
const VARIANTS_PER_KIND: usize = 64;
/// How long requests still in flight after the last send may take, past their own timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Where a run goes wrong, by the exit code it calls for.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit 2: the scenario or flags are wrong.
    #[error("{0}")]
    BadInput(String),
    /// Exit 3: the run could not be completed.
    #[error("{0:#}")]
    Incomplete(anyhow::Error),
}

/// The flags of `harness run` besides the scenario path.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub overrides: Vec<String>,
    pub gateway: Option<Uri>,
    pub engine: Option<Uri>,
    pub quiet: bool,
    /// `--jaeger`, `--prometheus`: query APIs of a real deployment.
    pub apis: QueryApis,
    /// `--junit FILE`: JUnit XML written beside every `result.json`.
    pub junit: Option<PathBuf>,
}

/// What became of a run.
pub struct Finished {
    pub result: RunResult,
    pub result_path: PathBuf,
}

impl Finished {
    /// Every threshold passed and, in an overhead experiment, the claim held.
    pub fn passed(&self) -> bool {
        self.result.passed()
    }
}

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
    let apis = &options.apis;
    let elsewhere = options.gateway.is_some() || options.engine.is_some();
    if scenario.overhead.is_some()
        && (elsewhere || apis.jaeger.is_some() || apis.prometheus.is_some())
    {
        return Err(RunError::BadInput(format!(
            "{}: the overhead experiment launches its own two systems and verifies nothing; \
             --gateway, --engine, --jaeger and --prometheus do not apply",
            scenario.name
        )));
    }
    // --gateway / --engine switch to an external system whatever the file says, before anything
    // (the trace checks, the receiver's ports, the metrics sources) is chosen for the system.
    if options.gateway.is_some() || options.engine.is_some() {
        let (file_gateway, file_engine) = match &scenario.system {
            System::External { gateway, engine } => (gateway.clone(), engine.clone()),
            System::Managed(_) => (None, None),
        };
        scenario.system = System::External {
            gateway: options.gateway.clone().or(file_gateway),
            engine: options.engine.clone().or(file_engine),
        };
    }
    options.apis.apply(&mut scenario);
    let mut thresholds = parse_thresholds(&scenario)?;
    thresholds.extend(implicit_thresholds(&scenario, &thresholds));
    let mix = prepare(&scenario)?;
    let echo = ScenarioEcho {
        name: scenario.name.clone(),
        path: path.display().to_string(),
        source: std::fs::read_to_string(path).unwrap_or_default(),
        overrides: options.overrides.clone(),
    };
    let out_dir = options.out_dir.join(&scenario.name);
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("creating the output directory {}", out_dir.display()))
        .map_err(RunError::Incomplete)?;

    let started = SystemTime::now();
    let target_rate = target_rate(&scenario.load.phases);
    let write = |result: &RunResult| -> Result<PathBuf, RunError> {
        let path = out_dir.join("result.json");
        let json = serde_json::to_string_pretty(result)
            .context("serializing the result")
            .map_err(RunError::Incomplete)?;
        std::fs::write(&path, json)
            .with_context(|| format!("writing {}", path.display()))
            .map_err(RunError::Incomplete)?;
        if let Some(junit) = &options.junit {
            crate::report::junit::write(junit, &crate::report::junit::render(result))
                .map_err(|e| RunError::Incomplete(e.into()))?;
        }
        // After result.json, so that a report that cannot be written loses no measurement.
        crate::report::page::write(
            result,
            "result.json",
            &out_dir.join(crate::report::page::FILE_NAME),
        )
        .context("the HTML report")
        .map_err(RunError::Incomplete)?;
        Ok(path)
    };
    let kind_names: Vec<String> = scenario.requests.iter().map(|k| k.name.clone()).collect();
    if scenario.overhead.is_some() {
        let points = crate::overhead::points(path, &overrides, &scenario)?;
        drop(mix);
        let measured =
            crate::overhead::run(&scenario, points, &out_dir, options.quiet, &stop).await;
        let measured = match measured {
            Ok(measured) => measured,
            Err(error) => {
                let empty = RunReport::empty(kind_names);
                let result =
                    RunResult::new(echo, started, target_rate, &empty, Some(error.to_string()));
                write(&result)?;
                return Err(error);
            }
        };
        let mut result = RunResult::new(
            echo,
            started,
            target_rate,
            &measured.treatment,
            measured.failure,
        );
        result.overhead = Some(measured.result);
        result.thresholds = evaluate(&thresholds, &measured.treatment, &result);
        let result_path = write(&result)?;
        return Ok(Finished {
            result,
            result_path,
        });
    }
    let started_system = match Verifier::prepare(&scenario) {
        Ok(verifier) => start_system(&scenario, &out_dir, &verifier)
            .await
            .map(|system| (verifier, system)),
        Err(error) => Err(error),
    };
    let (mut verifier, (managed, target, scrape_targets)) = match started_system {
        Ok(started) => started,
        Err(error) => {
            // Nothing was measured, but CI still gets a result saying why.
            let empty = RunReport::empty(kind_names.iter().cloned());
            let result =
                RunResult::new(echo, started, target_rate, &empty, Some(error.to_string()));
            write(&result)?;
            return Err(error);
        }
    };
    let outcome = drive(
        &scenario,
        mix,
        &target,
        &stop,
        options.quiet,
        &mut verifier,
        scrape_targets,
    )
    .await;
    let metrics = match &outcome {
        Ok(report) => verifier.after_load(report, &stop).await,
        Err(_) => None,
    };
    let log_files: Vec<(&str, PathBuf)> = managed
        .iter()
        .flat_map(|system| {
            [
                (
                    engine::core_engine::DEFAULT_SERVICE_NAME,
                    system.engine.log.clone(),
                ),
                (
                    engine::gateway::DEFAULT_SERVICE_NAME,
                    system.gateway.log.clone(),
                ),
            ]
        })
        .collect();
    let log_refs: Vec<(&str, &Path)> = log_files.iter().map(|(s, p)| (*s, p.as_path())).collect();
    let logs = LogFiles {
        services: &log_refs,
    };
    let traces = verifier
        .finish_traces(&kind_names, managed.is_some().then_some(&logs))
        .await;
    let mut managed = managed;
    let crashed = managed.as_mut().and_then(ManagedSystem::exited);
    if let Some(system) = managed {
        system.stop().await;
    }
    verifier.shutdown().await;
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            let empty = RunReport::empty(kind_names.iter().cloned());
            write(&RunResult::new(
                echo,
                started,
                target_rate,
                &empty,
                Some(error.to_string()),
            ))?;
            return Err(error);
        }
    };
    let crashed = crashed.or_else(|| unanswered(&report));
    let mut result = RunResult::new(echo, started, target_rate, &report, crashed);
    result.phases = PhaseResult::of(&scenario.load.phases);
    result.verification.traces = traces;
    result.verification.metrics = metrics;
    result.thresholds = evaluate(&thresholds, &report, &result);
    let result_path = write(&result)?;
    Ok(Finished {
        result,
        result_path,
    })
}

/// Everything `harness validate` checks of a scenario file short of running it: the file, its
/// thresholds, its overhead sweep, and every request body for its protocol.
pub fn check(path: &Path) -> Result<Scenario, RunError> {
    let scenario = scenario::load(path, &[]).map_err(|e| RunError::BadInput(e.to_string()))?;
    parse_thresholds(&scenario)?;
    for point in crate::overhead::points(path, &[], &scenario)? {
        prepare(&point.scenario)?;
    }
    Ok(scenario)
}

/// The address the load goes to.
enum Target {
    Http(Uri),
    Grpc(Uri),
}

/// The managed system (if the harness launched one), where the load goes, and where the services'
/// metrics can be scraped (gateway, engine) when the harness knows.
type Started = (Option<ManagedSystem>, Target, Option<(String, String)>);

async fn start_system(
    scenario: &Scenario,
    out_dir: &Path,
    verifier: &Verifier,
) -> Result<Started, RunError> {
    let protocol = scenario.load.protocol;
    let managed = match &scenario.system {
        System::Managed(managed) => managed,
        System::External {
            gateway: file_gateway,
            engine: file_engine,
        } => {
            let target = match protocol {
                Protocol::Http => {
                    let base = file_gateway.clone().ok_or_else(|| {
                        RunError::BadInput(
                            "protocol http needs a gateway URL (--gateway or system.external.gateway)".into(),
                        )
                    })?;
                    Target::Http(fetch_url(base)?)
                }
                Protocol::Grpc => Target::Grpc(file_engine.clone().ok_or_else(|| {
                    RunError::BadInput(
                        "protocol grpc needs an engine URL (--engine or system.external.engine)"
                            .into(),
                    )
                })?),
            };
            reachable(&target).await?;
            return Ok((None, target, None));
        }
    };
    let exe = std::env::current_exe()
        .context("finding the harness executable to launch the services")
        .map_err(RunError::Incomplete)?;
    let mut env = std::collections::BTreeMap::new();
    if !managed.tracing {
        env.insert("OTEL_SDK_DISABLED".to_owned(), "true".to_owned());
    } else if let Some(endpoint) = verifier.otlp_endpoint() {
        env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint);
    }
    let launch = |spec: &scenario::ServiceSpec| ServiceLaunch {
        args: spec.args.clone(),
        env: spec.env.clone(),
        wrapper: Vec::new(),
    };
    let system = ManagedSystem::start(
        &exe,
        &env,
        &launch(&managed.engine),
        &launch(&managed.gateway),
        out_dir,
    )
    .await
    .map_err(|e| RunError::Incomplete(e.into()))?;
    let address = |service: &crate::system::ServiceProcess, listener| {
        service
            .address(listener)
            .map_err(|e| RunError::Incomplete(e.into()))
    };
    let gateway_http = address(&system.gateway, "http")?;
    let target = match protocol {
        Protocol::Http => Target::Http(fetch_url(http_uri(gateway_http)?)?),
        Protocol::Grpc => Target::Grpc(http_uri(address(&system.engine, "grpc")?)?),
    };
    let scrape = (
        format!("http://{gateway_http}{}", engine::gateway::METRICS_ROUTE),
        format!("http://{}/metrics", address(&system.engine, "metrics")?),
    );
    Ok((Some(system), target, Some(scrape)))
}

/// Fails fast, before any load, when nothing listens at the target.
async fn reachable(target: &Target) -> Result<(), RunError> {
    let uri = match target {
        Target::Http(uri) | Target::Grpc(uri) => uri,
    };
    let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(RunError::Incomplete(anyhow::anyhow!(
            "cannot reach {uri}: {error}"
        ))),
        Err(_) => Err(RunError::Incomplete(anyhow::anyhow!(
            "cannot reach {uri}: no answer within 3 s"
        ))),
    }
}

/// A run in which no request got any answer did not measure the system: it failed.
fn unanswered(report: &RunReport) -> Option<String> {
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

pub(crate) fn http_uri(addr: std::net::SocketAddr) -> Result<Uri, RunError> {
    format!("http://{addr}")
        .parse()
        .map_err(|e| RunError::Incomplete(anyhow::anyhow!("service address {addr}: {e}")))
}

/// The gateway's fetch endpoint under a base URL.
pub(crate) fn fetch_url(base: Uri) -> Result<Uri, RunError> {
    let text = base.to_string();
    format!(
        "{}{}",
        text.trim_end_matches('/'),
        engine::gateway::FETCH_ROUTE
    )
    .parse()
    .map_err(|e| RunError::BadInput(format!("gateway URL {text}: {e}")))
}

/// The request mix rendered for the protocol, before anything starts: a body that does not fit
/// is bad input, found before any service is launched.
pub enum PreparedMix {
    Http(Vec<LoadKind<Bytes>>),
    Grpc(Vec<LoadKind<Arc<engine::proto::FetchMarketDataRequest>>>),
}

pub fn prepare(scenario: &Scenario) -> Result<PreparedMix, RunError> {
    Ok(match scenario.load.protocol {
        Protocol::Http => PreparedMix::Http(kinds(
            scenario,
            |value| Ok(Bytes::from(serde_json::to_vec(value)?)),
            |e| Outcome::Status(e.status),
        )?),
        Protocol::Grpc => PreparedMix::Grpc(kinds(
            scenario,
            |value| {
                let body: engine::gateway::FetchRequest = serde_json::from_value(value.clone())?;
                Ok(Arc::new(engine::proto::FetchMarketDataRequest::from(body)))
            },
            |e| Outcome::Code(e.code),
        )?),
    })
}

async fn drive(
    scenario: &Scenario,
    mix: PreparedMix,
    target: &Target,
    stop: &CancellationToken,
    quiet: bool,
    verifier: &mut Verifier,
    scrape_targets: Option<(String, String)>,
) -> Result<RunReport, RunError> {
    let load = &scenario.load;
    let verify = Verify {
        verifier,
        scrape_targets,
    };
    match (target, mix) {
        (Target::Http(url), PreparedMix::Http(kinds)) => {
            let mut driver = HttpDriver::new(url.clone(), load.connections, load.timeout);
            if let Some(name) = scenario
                .verify
                .traces
                .as_ref()
                .and_then(|t| t.response_header.as_deref())
                .and_then(|h| hyper::header::HeaderName::from_bytes(h.as_bytes()).ok())
            {
                driver = driver.with_trace_header(name);
            }
            warm_up_and_run(scenario, Arc::new(driver), kinds, stop, quiet, verify).await
        }
        (Target::Grpc(uri), PreparedMix::Grpc(kinds)) => {
            let endpoint = tonic::transport::Endpoint::from(uri.clone());
            let driver = Arc::new(GrpcDriver::new(endpoint, load.connections, load.timeout));
            warm_up_and_run(scenario, driver, kinds, stop, quiet, verify).await
        }
        _ => Err(RunError::Incomplete(anyhow::anyhow!(
            "the target and the prepared requests are for different protocols"
        ))),
    }
}

/// Renders each kind's payload variants up front, so that sending does no rendering.
fn kinds<P>(
    scenario: &Scenario,
    prepare: impl Fn(&serde_json::Value) -> Result<P, serde_json::Error>,
    expect: impl Fn(&scenario::Expect) -> Outcome,
) -> Result<Vec<LoadKind<P>>, RunError> {
    let mut rng = StdRng::seed_from_u64(scenario.load.seed);
    scenario
        .requests
        .iter()
        .map(|kind| {
            let variants = if kind.vars.is_empty() {
                1
            } else {
                VARIANTS_PER_KIND
            };
            let payloads = (0..variants)
                .map(|_| {
                    prepare(&kind.render(&mut rng)).map_err(|e| {
                        RunError::BadInput(format!(
                            "requests.{}.body: not a FetchMarketData request: {e}",
                            kind.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LoadKind {
                name: kind.name.clone(),
                weight: kind.weight,
                payloads,
                expect: expect(&kind.expect),
                sampling: load::Sampling::NONE,
            })
        })
        .collect()
}

/// The verifier and what it needs between the warm-up and the measured load.
struct Verify<'a> {
    verifier: &'a mut Verifier,
    scrape_targets: Option<(String, String)>,
}

async fn warm_up_and_run<D: Driver>(
    scenario: &Scenario,
    driver: Arc<D>,
    mut kinds: Vec<LoadKind<D::Payload>>,
    stop: &CancellationToken,
    quiet: bool,
    verify: Verify<'_>,
) -> Result<RunReport, RunError>
where
    D::Payload: Clone,
{
    let load = &scenario.load;
    let plan = |phases, kinds| load_plan(load, phases, kinds);
    let rate_phases: Vec<RatePhase> = load.phases.iter().map(rate_phase).collect();
    let phase_starts = load::schedule::phase_starts(&rate_phases);
    let labels = load
        .phases
        .iter()
        .enumerate()
        .map(|(i, phase)| match phase {
            Phase::Constant { rate, .. } => format!("[phase {} constant {rate}/s]", i + 1),
            Phase::Ramp { from, to, .. } => format!("[phase {} ramp {from}->{to}/s]", i + 1),
        });
    let progress = Progress::new(quiet, phase_starts.into_iter().zip(labels).collect());
    if !load.warmup.is_zero() {
        let rate = load.phases.first().map_or(1.0, Phase::start_rate);
        let warm_kinds = kinds.iter().map(LoadKind::clone).collect();
        progress.note(&format!(
            "warm-up: {:?} at {rate}/s (not recorded)",
            load.warmup
        ));
        load::run(
            Arc::clone(&driver),
            plan(vec![RatePhase::constant(rate, load.warmup)], warm_kinds),
            stop.clone(),
            |_, _| {},
        )
        .await
        .map_err(|e| RunError::BadInput(e.to_string()))?;
    }
    // The metrics baseline is what the warm-up left; sampling starts with the measured load.
    verify
        .verifier
        .before_load(verify.scrape_targets, stop)
        .await;
    for (kind, sampling) in kinds.iter_mut().zip(verify.verifier.sampling(scenario)) {
        kind.sampling = sampling;
    }
    let (announce, samples) = verify.verifier.start_traces(stop);
    let phases = load.phases.iter().map(rate_phase).collect();
    let mut measured = plan(phases, kinds);
    measured.announce = announce;
    measured.samples = samples;
    let report = load::run(driver, measured, stop.clone(), |recorder, elapsed| {
        progress.tick(recorder, elapsed)
    })
    .await
    .map_err(|e| RunError::BadInput(e.to_string()))?;
    progress.finish();
    Ok(report)
}

/// The load core's plan for `phases` of the scenario's load, without trace sampling.
pub(crate) fn load_plan<P>(
    load: &scenario::Load,
    phases: Vec<RatePhase>,
    kinds: Vec<LoadKind<P>>,
) -> LoadPlan<P> {
    LoadPlan {
        kinds,
        phases,
        arrivals: match load.arrivals {
            scenario::Arrivals::Uniform => load::Arrivals::Uniform,
            scenario::Arrivals::Poisson => load::Arrivals::Poisson { seed: load.seed },
        },
        seed: load.seed,
        max_in_flight: load.max_in_flight,
        drain_timeout: load.timeout + DRAIN_GRACE,
        announce: None,
        samples: None,
    }
}

pub(crate) fn rate_phase(phase: &Phase) -> RatePhase {
    match *phase {
        Phase::Constant { rate, duration } => RatePhase::constant(rate, duration),
        Phase::Ramp { from, to, duration } => RatePhase { from, to, duration },
    }
}

/// Requests per second the phases ask for on average.
pub(crate) fn target_rate(phases: &[Phase]) -> f64 {
    let phases: Vec<RatePhase> = phases.iter().map(rate_phase).collect();
    let seconds: f64 = phases.iter().map(|p| p.duration.as_secs_f64()).sum();
    let requests: f64 = phases.iter().map(RatePhase::expected_requests).sum();
    if seconds > 0.0 {
        requests / seconds
    } else {
        0.0
    }
}

/// The scenario's thresholds, parsed: `(scope, threshold)` with scope `None` for the whole run.
pub fn parse_thresholds(scenario: &Scenario) -> Result<Vec<(Option<usize>, Threshold)>, RunError> {
    let overall = scenario
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| (None, format!("thresholds[{i}]"), t));
    let per_kind = scenario.requests.iter().enumerate().flat_map(|(k, kind)| {
        kind.thresholds.iter().enumerate().map(move |(i, t)| {
            (
                Some(k),
                format!("requests.{}.thresholds[{i}]", kind.name),
                t,
            )
        })
    });
    overall
        .chain(per_kind)
        .map(|(scope, key, text)| {
            let threshold = Threshold::parse(text)
                .map_err(|e| RunError::BadInput(format!("{}: {key}: {e}", scenario.name)))?;
            let whole_run = matches!(
                threshold.metric,
                Metric::AchievedRate
                    | Metric::Rps
                    | Metric::TracesComplete
                    | Metric::TracesPassed
                    | Metric::TracesVisible(_)
                    | Metric::MetricsReconciled
            );
            if scope.is_some() && whole_run {
                return Err(RunError::BadInput(format!(
                    "{}: {key}: {} is a property of the whole run; declare it under thresholds",
                    scenario.name, threshold.metric
                )));
            }
            Ok((scope, threshold))
        })
        .collect()
}

/// Checks gate the run even when no threshold names them: a scenario that verifies traces and
/// declares no `traces.*` threshold requires every sampled trace to pass, and one that verifies
/// metrics without `metrics.reconciled` requires them to reconcile.
fn implicit_thresholds(
    scenario: &Scenario,
    declared: &[(Option<usize>, Threshold)],
) -> Vec<(Option<usize>, Threshold)> {
    let declares = |wanted: fn(&Metric) -> bool| declared.iter().any(|(_, t)| wanted(&t.metric));
    let mut implicit = Vec::new();
    // Visibility percentiles count complete traces only: they cannot stand in for completeness.
    let traces = |m: &Metric| matches!(m, Metric::TracesComplete | Metric::TracesPassed);
    if scenario.verify.traces.is_some() && !declares(traces) {
        implicit.push("traces.passed >= 100%");
    }
    if scenario.verify.metrics.is_some()
        && !declares(|m: &Metric| matches!(m, Metric::MetricsReconciled))
    {
        implicit.push("metrics.reconciled");
    }
    implicit
        .into_iter()
        .map(|text| {
            (
                None,
                Threshold::parse(text).expect("implicit thresholds are valid"),
            )
        })
        .collect()
}

fn evaluate(
    thresholds: &[(Option<usize>, Threshold)],
    report: &RunReport,
    result: &RunResult,
) -> Vec<ThresholdResult> {
    let overall_latency = report.recorder.merged_latency();
    let overall_service = report.recorder.merged_service_time();
    thresholds
        .iter()
        .map(|(scope, threshold)| {
            let (name, latency, service, sent, unexpected, dropped) = match scope {
                Some(k) => {
                    let kind = &report.recorder.kinds[*k];
                    (
                        kind.name.clone(),
                        &kind.latency,
                        &kind.service_time,
                        kind.sent,
                        // Never answered counts as unexpected, as for the whole run.
                        kind.unexpected + (kind.sent - kind.completed),
                        kind.dropped,
                    )
                }
                None => (
                    "overall".to_owned(),
                    &overall_latency,
                    &overall_service,
                    result.load.sent,
                    result.load.unexpected + result.load.abandoned,
                    result.load.dropped,
                ),
            };
            let measured = measure(
                &threshold.metric,
                latency,
                service,
                sent,
                unexpected,
                dropped,
                result,
            );
            ThresholdResult {
                scope: name,
                evaluation: threshold.evaluate(measured),
            }
        })
        .collect()
}

fn measure(
    metric: &Metric,
    latency: &Histogram<u64>,
    service: &Histogram<u64>,
    sent: u64,
    unexpected: u64,
    dropped: u64,
    result: &RunResult,
) -> Option<f64> {
    let has = |h: &Histogram<u64>| (!h.is_empty()).then_some(());
    let traces = result.verification.traces.as_ref();
    match *metric {
        Metric::LatencyPercentile(p) => {
            has(latency).map(|()| latency.value_at_quantile(p / 100.0) as f64)
        }
        Metric::ServicePercentile(p) => {
            has(service).map(|()| service.value_at_quantile(p / 100.0) as f64)
        }
        Metric::Avg => has(latency).map(|()| latency.mean()),
        Metric::Min => has(latency).map(|()| latency.min() as f64),
        Metric::Max => has(latency).map(|()| latency.max() as f64),
        Metric::Med => has(latency).map(|()| latency.value_at_quantile(0.5) as f64),
        Metric::ErrorRate => (sent > 0).then(|| unexpected as f64 / sent as f64),
        Metric::DroppedRate => {
            (sent + dropped > 0).then(|| dropped as f64 / (sent + dropped) as f64)
        }
        Metric::AchievedRate => (result.load.target_rate > 0.0)
            .then(|| result.load.achieved_rate / result.load.target_rate),
        Metric::Rps => Some(result.load.achieved_rate),
        Metric::TracesComplete => traces.and_then(|t| t.completeness),
        Metric::TracesPassed => traces
            .filter(|t| t.sampled > 0)
            .map(|t| t.passed as f64 / t.sampled as f64),
        Metric::TracesVisible(p) => traces
            .and_then(|t| t.visible_histogram.as_deref())
            .and_then(|h| crate::result::decode_histogram(h).ok())
            .map(|h| h.value_at_quantile(p / 100.0) as f64),
        Metric::MetricsReconciled => result
            .verification
            .metrics
            .as_ref()
            .map(|m| if m.reconciled { 1.0 } else { 0.0 }),
    }
}
