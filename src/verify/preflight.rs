//! Before any load: every trace and metrics source the run will read must answer as the API it is
//! taken for. One that is down, or is some other server, ends the run at once as incomplete
//! (exit 3), naming the URL and what was expected, rather than failing its checks after the whole
//! load as if the system were at fault.

use std::time::Duration;

use super::{Source, Traces, Verifier};
use crate::exit::RunError;
use crate::metrics::prometheus::{PrometheusSource, QueryData};
use crate::metrics::scrape::ScrapeSource;
use crate::metrics::{MetricsError, MetricsSource};
use crate::scenario::Access;

/// How long each preflight request may take: an API that is there answers these at once.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A `--jaeger` or `--prometheus` value that is not an http(s) URL with a host is bad input.
pub(super) fn flag_url(flag: &str, url: &str, example: &str) -> Result<(), RunError> {
    let problem = match reqwest::Url::parse(url.trim()) {
        Err(error) => Some(error.to_string()),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
            Some(format!("the scheme is {:?}", parsed.scheme()))
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
            Some("it names no host".to_owned())
        }
        Ok(_) => None,
    };
    match problem {
        Some(problem) => Err(RunError::BadInput(format!(
            "{flag} {url}: {problem}; expected an http:// or https:// URL such as {example}"
        ))),
        None => Ok(()),
    }
}

impl Verifier {
    /// Asks the trace source and every metrics source known before the system starts (Jaeger,
    /// Prometheus, an external system's metrics endpoints) whether it is there.
    pub async fn preflight(&self) -> Result<(), RunError> {
        if let Some(Traces {
            source: Source::Jaeger(jaeger),
            ..
        }) = &self.traces
        {
            jaeger.probe(TIMEOUT).await.map_err(|error| {
                incomplete(format!(
                    "the trace source is not ready: expected Jaeger's query API at {}: {error}",
                    jaeger.base()
                ))
            })?;
        }
        let Some(spec) = &self.metrics_spec else {
            return Ok(());
        };
        if let Some(prometheus) = &spec.prometheus {
            probe_prometheus(&prometheus.url, &prometheus.access).await?;
        }
        if spec.scrape && !self.managed && !spec.targets.is_empty() {
            probe_scrape(&spec.targets, &spec.access, None).await?;
        }
        Ok(())
    }

    /// Asks the managed services' metrics endpoints, known once they listen, before any load.
    pub async fn preflight_scrape(&self, targets: &[(String, String)]) -> Result<(), RunError> {
        match &self.metrics_spec {
            Some(spec) if spec.scrape => {
                probe_scrape(targets, &spec.access, self.scrape_authorization.as_ref()).await
            }
            _ => Ok(()),
        }
    }
}

/// `GET api/v1/query?query=1` must answer the scalar 1, as every Prometheus-compatible API does.
async fn probe_prometheus(url: &str, access: &Access) -> Result<(), RunError> {
    let failed = |error: MetricsError| {
        let message = format!(
            "the metrics source is not ready: expected the Prometheus HTTP API at {url} \
             (api/v1/query?query=1 answering the scalar 1): {error}"
        );
        match error {
            MetricsError::BadUrl { .. } => RunError::BadInput(message),
            _ => incomplete(message),
        }
    };
    let headers = super::headers(access).map_err(|e| RunError::BadInput(e.to_string()))?;
    let source = PrometheusSource::new(url, Vec::new())
        .and_then(|s| s.with_access(&access.tls, headers))
        .map_err(failed)?
        .with_timeout(TIMEOUT);
    let answer = source.query("1").await.map_err(failed)?;
    match answer.data {
        QueryData::Scalar(point) if point.value == 1.0 => Ok(()),
        other => Err(failed(MetricsError::Shape {
            url: url.to_owned(),
            detail: format!("the query 1 answered {other:?}"),
        })),
    }
}

/// Each metrics endpoint must answer a Prometheus text exposition; `authorization` goes over any
/// header of that name in `access`.
async fn probe_scrape(
    targets: &[(String, String)],
    access: &Access,
    authorization: Option<&reqwest::header::HeaderValue>,
) -> Result<(), RunError> {
    let urls: Vec<&str> = targets.iter().map(|(_, url)| url.as_str()).collect();
    let failed = |error: MetricsError| {
        incomplete(format!(
            "the metrics source is not ready: expected a Prometheus text exposition from the \
             services' metrics endpoints ({}): {error}",
            urls.join(", ")
        ))
    };
    let mut headers = super::headers(access).map_err(|e| RunError::BadInput(e.to_string()))?;
    if let Some(value) = authorization {
        headers.insert(reqwest::header::AUTHORIZATION, value.clone());
    }
    let source = ScrapeSource::new(targets.to_vec())
        .and_then(|s| s.with_access(&access.tls, headers))
        .map_err(failed)?
        .with_timeout(TIMEOUT);
    source.snapshot().await.map_err(failed)?;
    Ok(())
}

fn incomplete(message: String) -> RunError {
    RunError::Incomplete(anyhow::anyhow!(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::serve;
    use axum::Router;
    use axum::routing::get;

    #[test]
    fn flag_urls_must_be_http_or_https_with_a_host() {
        for good in ["http://127.0.0.1:9090", "https://prometheus.example/prom/"] {
            assert!(flag_url("--prometheus", good, "x").is_ok(), "{good}");
        }
        for (bad, why) in [
            ("ftp://127.0.0.1:9090", "the scheme is \"ftp\""),
            ("127.0.0.1:9090", "relative URL without a base"),
            ("http://", "empty host"),
        ] {
            let error = flag_url("--prometheus", bad, "http://127.0.0.1:9090")
                .expect_err(bad)
                .to_string();
            assert!(
                error.starts_with(&format!("--prometheus {bad}: "))
                    && error.contains(why)
                    && error.ends_with(
                        "expected an http:// or https:// URL such as http://127.0.0.1:9090"
                    ),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn prometheus_must_answer_the_scalar_one() {
        let prometheus = serve(Router::new().route(
            "/api/v1/query",
            get(|| async {
                r#"{"status":"success","data":{"resultType":"scalar","result":[1733400000.1,"1"]}}"#
            }),
        ))
        .await;
        probe_prometheus(&prometheus, &Access::default())
            .await
            .expect("Prometheus answers");
        // A path prefix, as behind a proxy, is kept.
        let prefixed = serve(Router::new().route(
            "/prom/api/v1/query",
            get(|| async {
                r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"1"]}}"#
            }),
        ))
        .await;
        probe_prometheus(&format!("{prefixed}/prom"), &Access::default())
            .await
            .expect("Prometheus under a prefix answers");

        let html = serve(Router::new().fallback(|| async { "<html>welcome</html>" })).await;
        let wrong = serve(Router::new().fallback(|| async {
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
        }))
        .await;
        for base in [html, wrong] {
            let error = probe_prometheus(&base, &Access::default())
                .await
                .expect_err("not Prometheus");
            assert!(matches!(error, RunError::Incomplete(_)), "{error}");
            let error = error.to_string();
            assert!(
                error.contains(&format!("expected the Prometheus HTTP API at {base}")),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn the_managed_services_token_is_sent_over_any_header_of_that_name() {
        use axum::http::{HeaderMap, StatusCode};
        let guarded = serve(Router::new().route(
            "/metrics",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").map(|v| v.as_bytes()) {
                    Some(b"Bearer right") => (StatusCode::OK, "requests_total 3\n"),
                    _ => (StatusCode::UNAUTHORIZED, "no\n"),
                }
            }),
        ))
        .await;
        let targets = vec![("a".to_owned(), format!("{guarded}/metrics"))];
        let right = reqwest::header::HeaderValue::from_static("Bearer right");
        probe_scrape(&targets, &Access::default(), Some(&right))
            .await
            .expect("the token is sent");
        let error = probe_scrape(&targets, &Access::default(), None)
            .await
            .expect_err("no token, no exposition")
            .to_string();
        assert!(error.contains("HTTP 401"), "{error}");
        // A scenario's own authorization header gives way to the harness's token.
        let mut access = Access::default();
        access.headers.push((
            "authorization".to_owned(),
            crate::scenario::Template {
                text: "Bearer wrong".to_owned(),
                at: "x.yaml:1:1: verify.metrics.headers.authorization".to_owned(),
            },
        ));
        probe_scrape(&targets, &access, Some(&right))
            .await
            .expect("the token wins");
        assert!(probe_scrape(&targets, &access, None).await.is_err());
    }

    #[tokio::test]
    async fn metrics_endpoints_must_answer_an_exposition() {
        let exposition = serve(Router::new().route(
            "/metrics",
            get(|| async { "# TYPE requests_total counter\nrequests_total 3\n" }),
        ))
        .await;
        let metrics = format!("{exposition}/metrics");
        let target = |url: &str| {
            vec![
                ("a".to_owned(), metrics.clone()),
                ("b".to_owned(), url.to_owned()),
            ]
        };
        probe_scrape(&target(&metrics), &Access::default(), None)
            .await
            .expect("an exposition answers");
        let missing = format!("{exposition}/nothing-here");
        let error = probe_scrape(&target(&missing), &Access::default(), None)
            .await
            .expect_err("a 404 is no exposition")
            .to_string();
        assert!(
            error.contains(&missing) && error.contains("HTTP 404"),
            "{error}"
        );
    }
}
