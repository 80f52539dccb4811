//! The query APIs a run reaches: `--jaeger`, `--prometheus` and `--jaeger-metrics` applied to the
//! scenario, and the headers (`${NAME}` from the environment) sent with every request to them.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::exit::RunError;
use crate::scenario::{Access, MetricsChecks, PrometheusSpec, Scenario, System, TraceSourceSpec};

/// `--jaeger` and `--prometheus`: a real deployment's query APIs, overriding the scenario.
#[derive(Debug, Clone, Default)]
pub struct QueryApis {
    /// `--jaeger URL`: the Jaeger query service.
    pub jaeger: Option<String>,
    /// `--jaeger-api v1|v3`: which of its APIs to query.
    pub jaeger_api: Option<String>,
    /// `--prometheus URL`: the Prometheus HTTP API.
    pub prometheus: Option<String>,
    /// `--jaeger-metrics URL`: Jaeger v2's own metrics (an OpenTelemetry Collector's), whose
    /// span counters the services' exports are reconciled with.
    pub jaeger_metrics: Option<String>,
}

impl QueryApis {
    /// Applies the flags: each switches its checks on with the bundled system's defaults. A URL
    /// that is not http(s), or `--jaeger-api` with no Jaeger URL in the flags or the scenario, is
    /// bad input.
    pub fn apply(&self, scenario: &mut Scenario) -> Result<(), RunError> {
        for (flag, url, example) in [
            ("--jaeger", &self.jaeger, "http://127.0.0.1:16686"),
            ("--prometheus", &self.prometheus, "http://127.0.0.1:9090"),
            (
                "--jaeger-metrics",
                &self.jaeger_metrics,
                "http://127.0.0.1:8888/metrics",
            ),
        ] {
            if let Some(url) = url {
                super::preflight::flag_url(flag, url, example)?;
            }
        }
        let managed = matches!(scenario.system, System::Managed(_));
        if let (Some(url), System::Managed(m)) = (&self.jaeger, &scenario.system)
            && m.jaeger.is_some()
        {
            return Err(RunError::BadInput(format!(
                "--jaeger {url}: scenario {} launches its own Jaeger (system.managed.jaeger), to \
                 which the services export; --jaeger-api chooses its query API",
                scenario.name
            )));
        }
        if let Some(url) = &self.jaeger {
            let traces = scenario.verify.traces.get_or_insert_with(|| {
                crate::scenario::bundled_trace_checks(scenario.load.protocol, managed)
            });
            traces.source = TraceSourceSpec::Jaeger {
                url: url.trim_end_matches('/').to_owned(),
                api: self.jaeger_api.clone().unwrap_or_else(|| "auto".to_owned()),
                access: Access::default(),
            };
        }
        if let Some(url) = &self.prometheus {
            let metrics = scenario
                .verify
                .metrics
                .get_or_insert_with(|| MetricsChecks {
                    scrape: managed,
                    ..MetricsChecks::default()
                });
            let url = url.trim_end_matches('/').to_owned();
            match &mut metrics.prometheus {
                Some(spec) => spec.url = url,
                None => metrics.prometheus = Some(PrometheusSpec::bundled(url)),
            }
        }
        if let (Some(api), None) = (&self.jaeger_api, &self.jaeger) {
            // The scenario names the Jaeger query service; the flag only picks its API.
            match scenario.verify.traces.as_mut().map(|t| &mut t.source) {
                Some(
                    TraceSourceSpec::Jaeger { api: chosen, .. }
                    | TraceSourceSpec::ManagedJaeger { api: chosen },
                ) => *chosen = api.clone(),
                _ => {
                    return Err(RunError::BadInput(format!(
                        "--jaeger-api {api}: there is no Jaeger query service to use it with; \
                         expected --jaeger URL, or verify.traces.source: jaeger with \
                         verify.traces.jaeger.url in scenario {}",
                        scenario.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The headers `access` sends, each `${NAME}` read from the environment now. An unset variable
/// names where the header was written.
pub(crate) fn headers(access: &Access) -> Result<HeaderMap, HeaderError> {
    let mut map = HeaderMap::new();
    for (name, value) in &access.headers {
        let text = crate::scenario::template::render(&value.text, &Default::default(), &|n| {
            std::env::var(n).ok()
        })
        .map_err(|e| HeaderError(format!("{}: {e}", value.at)))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| HeaderError(format!("{}: {e}", value.at)))?;
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| HeaderError(format!("{}: not a valid header value", value.at)))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// A header of a query API or scrape that cannot be sent (e.g. `${NAME}` unset).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HeaderError(String);
