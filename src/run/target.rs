//! Where a run's load goes: the managed system the harness launches, or an external one that must
//! answer before any load is sent.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hyper::Uri;

use crate::bundled;
use crate::exit::RunError;
use crate::load::HttpVersion;
use crate::scenario::{self, Protocol, Scenario, System, TraceSourceSpec};
use crate::system::jaeger::{JaegerProcess, find_binary};
use crate::system::{ManagedSystem, MetricsTokenFile, ServiceLaunch, http_uri};
use crate::tls::{TlsSpec, client_config};
use crate::verify::Verifier;

/// Where the load goes and how to connect to it.
pub(super) struct Target {
    /// `http(s)://host:port[/prefix]`: relative request URLs go below it; gRPC connects to it.
    pub(super) base: Uri,
    /// What `https://` connections trust and present.
    pub(super) tls: rustls::ClientConfig,
    /// Which HTTP versions to speak.
    pub(super) http: HttpVersion,
}

/// The managed system (if the harness launched one), where the load goes, and where the services'
/// metrics can be scraped (gateway, engine) when the harness knows.
pub(super) type Started = (Option<ManagedSystem>, Target, Option<Vec<(String, String)>>);

/// Launches the Jaeger of `system.managed.jaeger`, if the scenario has one, and points the trace
/// checks at its query API: it must be ready before the verification asks it anything and before
/// the services export to it.
pub(super) async fn start_jaeger(
    scenario: &mut Scenario,
    out_dir: &Path,
    binary: Option<&Path>,
) -> Result<Option<JaegerProcess>, RunError> {
    let System::Managed(scenario::Managed {
        jaeger: Some(spec), ..
    }) = &scenario.system
    else {
        return Ok(None);
    };
    let binary = find_binary(binary).map_err(|e| RunError::Incomplete(e.into()))?;
    let jaeger = JaegerProcess::start(&binary, spec.config.as_deref(), out_dir)
        .await
        .map_err(|e| RunError::Incomplete(e.into()))?;
    if let Some(checks) = &mut scenario.verify.traces
        && let TraceSourceSpec::ManagedJaeger { api } = &checks.source
    {
        checks.source = TraceSourceSpec::Jaeger {
            url: jaeger.ports.query_url(),
            api: api.clone(),
            access: scenario::Access::default(),
        };
    }
    Ok(Some(jaeger))
}

/// Starts the managed services (exporting to the embedded receiver or to `jaeger`) or checks that
/// the external system answers.
/// With `metrics_token`, both services require it on their metrics endpoints.
pub(super) async fn start_system(
    scenario: &Scenario,
    out_dir: &Path,
    verifier: &Verifier,
    jaeger: Option<&JaegerProcess>,
    metrics_token: Option<&MetricsTokenFile>,
) -> Result<Started, RunError> {
    let protocol = scenario.load.protocol;
    let managed = match &scenario.system {
        System::Managed(managed) => managed,
        System::External(external) => {
            let base = external.base(protocol).cloned().ok_or_else(|| {
                RunError::BadInput(format!(
                    "protocol {} needs a target URL (--target or system.external.target)",
                    protocol.name()
                ))
            })?;
            let tls = client_config(&external.tls)
                .map_err(|e| RunError::BadInput(format!("system.external.tls: {e}")))?;
            reachable(&base).await?;
            let target = Target {
                base,
                tls,
                http: external.http,
            };
            return Ok((None, target, None));
        }
    };
    let exe = std::env::current_exe()
        .context("finding the harness executable to launch the services")
        .map_err(RunError::Incomplete)?;
    let mut env = std::collections::BTreeMap::new();
    if !managed.tracing {
        env.insert("OTEL_SDK_DISABLED".to_owned(), "true".to_owned());
    } else if let Some(endpoint) = verifier
        .otlp_endpoint()
        .or_else(|| jaeger.map(|j| j.ports.otlp_grpc_endpoint()))
    {
        env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint);
    }
    let launch = |spec: &scenario::ServiceSpec, token_variable: &str| {
        let mut env = spec.env.clone();
        if let Some(token) = metrics_token {
            env.insert(
                token_variable.to_owned(),
                token.path().display().to_string(),
            );
        }
        ServiceLaunch {
            args: spec.args.clone(),
            env,
            wrapper: Vec::new(),
        }
    };
    let system = ManagedSystem::start(
        &exe,
        &env,
        &launch(&managed.engine, "ENGINE_METRICS_TOKEN_FILE"),
        &launch(&managed.gateway, "GATEWAY_METRICS_TOKEN_FILE"),
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
    let base = match protocol {
        Protocol::Http | Protocol::WebSocket => http_uri(gateway_http)?,
        Protocol::Grpc => http_uri(address(&system.engine, "grpc")?)?,
    };
    // The managed services listen on loopback without TLS.
    let target = Target {
        base,
        tls: client_config(&TlsSpec::default()).map_err(|e| RunError::Incomplete(e.into()))?,
        http: HttpVersion::Auto,
    };
    let scrape = vec![
        (
            bundled::GATEWAY_SERVICE.to_owned(),
            format!("http://{gateway_http}{}", bundled::GATEWAY_METRICS_ROUTE),
        ),
        (
            bundled::ENGINE_SERVICE.to_owned(),
            format!("http://{}/metrics", address(&system.engine, "metrics")?),
        ),
    ];
    Ok((Some(system), target, Some(scrape)))
}

/// Fails fast, before any load, when nothing listens at the target.
async fn reachable(uri: &Uri) -> Result<(), RunError> {
    let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let port = uri.port_u16().unwrap_or(default_port);
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
