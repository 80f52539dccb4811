//! The arms' processes: one managed system per arm, launched, probed and stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use hyper::Uri;
use tokio_util::sync::CancellationToken;

use super::callgrind::Callgrind;
use super::process::{ProcessProbe, Usage};
use super::{ArmName, ArmResult, ProbeError};
use crate::exit::RunError;
use crate::scenario::{Arm, Managed, Overhead, Relaunch, ServiceSpec};
use crate::system::http_uri;
use crate::system::{ManagedSystem, ServiceLaunch};

/// One arm's running services and what is known about them.
pub(super) struct ArmProcess {
    pub(super) name: ArmName,
    system: ManagedSystem,
    /// The gateway's fetch URL and the engine's gRPC URL.
    pub(super) http: Uri,
    pub(super) grpc: Uri,
    /// Each service's name and probe.
    pub(super) probes: Vec<(String, ProcessProbe)>,
    /// Each service's name, process id and callgrind output, when it runs under callgrind.
    pub(super) counted: Vec<(String, u32, PathBuf)>,
}

impl ArmProcess {
    /// Why the arm can no longer be measured: a service exited.
    pub(super) fn crashed(&mut self) -> Option<String> {
        let name = self.name;
        self.system
            .exited()
            .map(|reason| format!("{} arm: {reason}", name.label()))
    }

    /// Starts a trial's window: restarts each service's peak memory and returns what each has
    /// used so far.
    pub(super) fn begin_trial(&self) -> Result<Vec<Usage>, ProbeError> {
        for (_, probe) in &self.probes {
            probe.reset_peak_rss();
        }
        self.usage()
    }

    pub(super) fn usage(&self) -> Result<Vec<Usage>, ProbeError> {
        self.probes.iter().map(|(_, probe)| probe.usage()).collect()
    }
}

/// The arms' processes, in the chain's order (control, the steps' arms, treatment): launched for
/// the first pair and, unless the experiment keeps them, afresh for every pair after.
pub(super) struct Arms<'a> {
    pub(super) managed: &'a Managed,
    pub(super) overhead: &'a Overhead,
    pub(super) endpoint: Option<String>,
    pub(super) out_dir: &'a Path,
    pub(super) running: Option<Vec<ArmProcess>>,
    /// When set, launches are for counting instructions: only control and treatment, each
    /// service under callgrind.
    pub(super) counting: Option<Callgrind>,
}

impl Arms<'_> {
    /// The arms for `pair`, and whether they were just launched (and so need warming up); `None`
    /// when the run was interrupted meanwhile. Every pair (of every sweep point) gets new
    /// processes unless `relaunch: never`; the arm launched first rotates from pair to pair.
    pub(super) async fn for_pair(
        &mut self,
        pair: usize,
        stop: &CancellationToken,
    ) -> Result<Option<(&mut Vec<ArmProcess>, bool)>, String> {
        if self.overhead.relaunch == Relaunch::EveryPair {
            self.stop().await;
        }
        if stop.is_cancelled() {
            return Ok(None);
        }
        let fresh = self.running.is_none();
        if fresh {
            let endpoint = self.endpoint.as_deref();
            let names = if self.counting.is_some() {
                vec![ArmName::Control, ArmName::Treatment]
            } else {
                ArmName::chain(self.overhead.steps.len())
            };
            let mut launched: Vec<Option<ArmProcess>> = names.iter().map(|_| None).collect();
            for k in 0..names.len() {
                let i = (pair + k) % names.len();
                match self.launch(names[i], endpoint).await {
                    Ok(arm) => launched[i] = Some(arm),
                    Err(error) => {
                        for arm in launched.into_iter().flatten() {
                            arm.system.stop().await;
                        }
                        return Err(error);
                    }
                }
            }
            self.running = Some(launched.into_iter().flatten().collect());
        }
        match &mut self.running {
            Some(arms) => Ok(Some((arms, fresh))),
            None => Err("the arms were not launched".to_owned()),
        }
    }

    async fn launch(&self, name: ArmName, endpoint: Option<&str>) -> Result<ArmProcess, String> {
        let arm = match name {
            ArmName::Control => Some(&self.overhead.control),
            ArmName::Step(n) => self.overhead.steps.get(n).map(|step| &step.arm),
            ArmName::Treatment => Some(&self.overhead.treatment),
        };
        let Some(arm) = arm else {
            return Err(format!("the experiment has no arm {}", name.label()));
        };
        launch(
            self.managed,
            arm,
            name,
            endpoint,
            self.overhead.settle,
            self.out_dir,
            self.counting.as_ref(),
        )
        .await
        .map_err(|e| format!("launching the {} arm: {e}", name.label()))
    }

    pub(super) async fn stop(&mut self) {
        if let Some(arms) = self.running.take() {
            for arm in arms {
                arm.system.stop().await;
            }
        }
    }
}

/// Starts one arm's engine and gateway, logging into `out_dir/<arm>/`.
async fn launch(
    managed: &Managed,
    arm: &Arm,
    name: ArmName,
    endpoint: Option<&str>,
    settle: Duration,
    out_dir: &Path,
    callgrind: Option<&Callgrind>,
) -> Result<ArmProcess, RunError> {
    let incomplete = |e: anyhow::Error| RunError::Incomplete(e);
    let exe = std::env::current_exe()
        .context("finding the harness executable to launch the services")
        .map_err(incomplete)?;
    let log_dir = out_dir.join(name.label());
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("creating {}", log_dir.display()))
        .map_err(incomplete)?;
    let mut env = BTreeMap::new();
    if arm.tracing {
        // Every request traced: the claim is about tracing as configured to keep everything.
        env.insert("OTEL_SDK_DISABLED".to_owned(), "false".to_owned());
        env.insert("OTEL_TRACES_SAMPLER".to_owned(), "always_on".to_owned());
        // Batches leave within the settle time, so that a trial's window holds their export
        // (a scenario's own setting wins).
        let delay = (settle / 2).max(Duration::from_millis(10));
        env.insert(
            "OTEL_BSP_SCHEDULE_DELAY".to_owned(),
            delay.as_millis().to_string(),
        );
        if let Some(endpoint) = endpoint {
            env.insert(
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                endpoint.to_owned(),
            );
        }
    } else {
        env.insert("OTEL_SDK_DISABLED".to_owned(), "true".to_owned());
    }
    let counts = |service: &str| log_dir.join(format!("{service}.callgrind.out"));
    let mut engine_launch = combined(&managed.engine, &arm.engine);
    let mut gateway_launch = combined(&managed.gateway, &arm.gateway);
    if let Some(callgrind) = callgrind {
        engine_launch.wrapper = callgrind.wrapper(&counts("engine"));
        gateway_launch.wrapper = callgrind.wrapper(&counts("gateway"));
    }
    let system = ManagedSystem::start(&exe, &env, &engine_launch, &gateway_launch, &log_dir)
        .await
        .map_err(|e| incomplete(e.into()))?;
    // The services say in their ready line whether they trace: an environment that overrode the
    // arm would otherwise go unnoticed.
    let mismatch = [&system.engine, &system.gateway]
        .into_iter()
        .find(|service| service.ready.tracing != arm.tracing)
        .map(|service| service.name());
    if let Some(service) = mismatch {
        system.stop().await;
        let state = |on: bool| if on { "on" } else { "off" };
        return Err(incomplete(anyhow::anyhow!(
            "the {} started with tracing {}, but the arm asks for tracing {} (is \
             OTEL_SDK_DISABLED set in the arm's environment?)",
            service,
            state(!arm.tracing),
            state(arm.tracing)
        )));
    }
    let address = |service: &crate::system::ServiceProcess, listener| {
        service.address(listener).map_err(|e| incomplete(e.into()))
    };
    let http = http_uri(address(&system.gateway, "http")?)?;
    let grpc = http_uri(address(&system.engine, "grpc")?)?;
    let mut probes = Vec::new();
    let mut counted = Vec::new();
    for (service, process, subcommand) in [
        (crate::bundled::ENGINE_SERVICE, &system.engine, "engine"),
        (crate::bundled::GATEWAY_SERVICE, &system.gateway, "gateway"),
    ] {
        if let Some(pid) = process.pid() {
            probes.push((service.to_owned(), ProcessProbe::new(pid)));
            if callgrind.is_some() {
                counted.push((service.to_owned(), pid, counts(subcommand)));
            }
        }
    }
    Ok(ArmProcess {
        name,
        system,
        http,
        grpc,
        probes,
        counted,
    })
}

/// `system.managed`'s settings for a service with the arm's on top.
fn combined(base: &ServiceSpec, arm: &ServiceSpec) -> ServiceLaunch {
    let mut env = base.env.clone();
    env.extend(arm.env.clone());
    ServiceLaunch {
        args: base.args.iter().chain(&arm.args).cloned().collect(),
        env,
        wrapper: Vec::new(),
    }
}

pub(super) fn arm_result(arm: &Arm) -> ArmResult {
    let mut extras = Vec::new();
    for (service, spec) in [("engine", &arm.engine), ("gateway", &arm.gateway)] {
        if !spec.args.is_empty() {
            extras.push(format!("{service}: {}", spec.args.join(" ")));
        }
        for (key, value) in &spec.env {
            extras.push(format!("{service}: {key}={value}"));
        }
    }
    ArmResult {
        tracing: arm.tracing,
        extras,
    }
}
