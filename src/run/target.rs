//! Where a run's load goes: the managed system the harness launches, or an external one that must
//! answer before any load is sent.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hyper::Uri;

use crate::bundled::{self, fetch_url};
use crate::exit::RunError;
use crate::scenario::{self, Protocol, Scenario, System};
use crate::system::{ManagedSystem, ServiceLaunch, http_uri};
use crate::verify::Verifier;

/// The address the load goes to.
pub(super) enum Target {
    Http(Uri),
    Grpc(Uri),
}

/// The managed system (if the harness launched one), where the load goes, and where the services'
/// metrics can be scraped (gateway, engine) when the harness knows.
pub(super) type Started = (Option<ManagedSystem>, Target, Option<(String, String)>);

pub(super) async fn start_system(
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
        format!("http://{gateway_http}{}", bundled::GATEWAY_METRICS_ROUTE),
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
