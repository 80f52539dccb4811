//! Whether a URL serves Jaeger's query API at all, asked once before a run: the service list is the
//! cheapest answer that only a Jaeger query service gives, so a wrong port or another server is
//! caught before any load instead of as a run of missing traces.

use std::time::Duration;

use serde_json::Value;

use super::{JaegerSource, Version, causes, snippet};
use crate::trace::SourceError;

/// The most of a service list read; a real one is a few kilobytes.
const MAX_BODY: usize = 1 << 20;

impl Version {
    fn services_url(self, base: &str) -> String {
        match self {
            Version::V3 => format!("{base}/api/v3/services"),
            Version::V1 => format!("{base}/api/services"),
        }
    }

    fn services_expected(self) -> &'static str {
        match self {
            Version::V3 => "HTTP 200 with a Jaeger v3 services object, {\"services\": [...]}",
            Version::V1 => "HTTP 200 with a Jaeger v1 envelope, {\"data\": [...], ...}",
        }
    }

    /// Whether `body` is this API's answer to the service list.
    pub(super) fn is_services(self, body: &[u8]) -> bool {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return false;
        };
        let names = |value: Option<&Value>| match value {
            Some(Value::Array(items)) => items.iter().all(Value::is_string),
            _ => false,
        };
        match self {
            // An empty list may be left out entirely, as protobuf JSON does.
            Version::V3 => {
                object.is_empty() || (object.len() == 1 && names(object.get("services")))
            }
            Version::V1 => {
                matches!(object.get("data"), Some(Value::Null)) || names(object.get("data"))
            }
        }
    }
}

impl JaegerSource {
    /// Asks the service list of the chosen API (v3, then v1 when detecting), each request within
    /// `timeout`. `Ok` once an answer is that API's JSON; otherwise the error names every URL
    /// asked, what it answered and what was expected.
    pub async fn probe(&self, timeout: Duration) -> Result<(), SourceError> {
        let versions = match self.version.get() {
            Some(version) => vec![*version],
            None => vec![Version::V3, Version::V1],
        };
        let mut answers = Vec::new();
        for version in versions {
            let url = version.services_url(&self.base);
            let (status, body) = self.get_bounded(&url, timeout).await?;
            if status == 200 && version.is_services(&body) {
                return Ok(());
            }
            let found = if body.iter().all(u8::is_ascii_whitespace) {
                "an empty body".to_owned()
            } else {
                snippet(&body)
            };
            answers.push(format!(
                "GET {url} answered HTTP {status} with {found:?}, expected {}",
                version.services_expected()
            ));
        }
        Err(SourceError::Malformed {
            url: self.base.clone(),
            detail: format!("not a Jaeger query API: {}", answers.join("; ")),
        })
    }

    /// The status and at most [`MAX_BODY`] bytes of the body of `GET url`.
    async fn get_bounded(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), SourceError> {
        let unreachable = |error: reqwest::Error| SourceError::Unreachable {
            url: url.to_owned(),
            reason: if error.is_timeout() {
                format!("no answer within {timeout:?}")
            } else {
                causes(&error.without_url())
            },
        };
        // The timeout covers connecting, the headers and the body.
        let mut response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            let room = MAX_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == MAX_BODY {
                break;
            }
        }
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::serve;
    use crate::trace::JaegerApi;
    use axum::Router;
    use axum::routing::get;

    fn source(base: &str, api: JaegerApi) -> JaegerSource {
        JaegerSource::new(base, api, Duration::from_secs(5)).expect("source")
    }

    const PROBE: Duration = Duration::from_secs(3);

    #[tokio::test]
    async fn jaeger_of_either_api_answers_the_probe() {
        let v3 = serve(Router::new().route(
            "/api/v3/services",
            get(|| async { r#"{"services":["api-gateway","core-engine"]}"# }),
        ))
        .await;
        let empty_v3 = serve(Router::new().route("/api/v3/services", get(|| async { "{}" }))).await;
        let v1 = serve(Router::new().route(
            "/api/services",
            get(|| async { r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":null}"# }),
        ))
        .await;
        for (base, api) in [
            (&v3, JaegerApi::Auto),
            (&v3, JaegerApi::V3),
            (&empty_v3, JaegerApi::V3),
            (&v1, JaegerApi::Auto),
            (&v1, JaegerApi::V1),
        ] {
            let probed = source(base, api).probe(PROBE).await;
            assert!(probed.is_ok(), "{api} at {base}: {probed:?}");
        }
        // The API chosen is the one asked: a v1-only Jaeger is not a v3 one.
        let error = source(&v1, JaegerApi::V3)
            .probe(PROBE)
            .await
            .expect_err("no v3 there")
            .to_string();
        assert!(error.contains(&format!("{v1}/api/v3/services")), "{error}");
        assert!(!error.contains("/api/services "), "{error}");
    }

    #[tokio::test]
    async fn another_server_is_named_with_what_it_answered() {
        let base = serve(Router::new().fallback(|| async { "<html>welcome</html>" })).await;
        let error = source(&base, JaegerApi::Auto)
            .probe(PROBE)
            .await
            .expect_err("not Jaeger")
            .to_string();
        for part in [
            format!("{base}/api/v3/services answered HTTP 200"),
            format!("{base}/api/services answered HTTP 200"),
            "<html>welcome</html>".to_owned(),
            "expected HTTP 200 with a Jaeger v1 envelope".to_owned(),
        ] {
            assert!(error.contains(&part), "{part:?} not in {error}");
        }
        // JSON of another shape is no Jaeger either.
        let base = serve(Router::new().fallback(|| async { r#"{"status":"success"}"# })).await;
        assert!(source(&base, JaegerApi::Auto).probe(PROBE).await.is_err());
    }

    #[tokio::test]
    async fn a_closed_port_or_a_silent_server_is_unreachable() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}", listener.local_addr().expect("address"))
        };
        let error = source(&closed, JaegerApi::Auto).probe(PROBE).await;
        assert!(
            matches!(&error, Err(SourceError::Unreachable { url, .. }) if url.ends_with("/api/v3/services")),
            "{error:?}"
        );
        let silent = serve(Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "{}"
        }))
        .await;
        let started = std::time::Instant::now();
        let error = source(&silent, JaegerApi::V3)
            .probe(Duration::from_millis(300))
            .await
            .expect_err("no answer")
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(2), "{error}");
        assert!(error.contains("no answer within 300ms"), "{error}");
    }
}
