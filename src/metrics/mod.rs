//! Metrics verification: what the services' own Prometheus metrics say about a run, read straight
//! from their endpoints or through a Prometheus server, and reconciled with what the harness saw.
//!
//! Both sources produce the same flat [`Snapshot`]s, so the reconciliation cannot tell (and need not
//! know) how the numbers were collected.

pub mod declared;
pub mod prometheus;
pub mod reconcile;
pub mod scrape;
pub mod spans;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

pub use prometheus::{ApiErrorType, PrometheusSource};
pub use reconcile::{Check, Reconciliation};
pub use scrape::ScrapeSource;

/// One series' value, flattened the way Prometheus stores it: a histogram is its `X_bucket{le=…}`,
/// `X_sum` and `X_count` series; a counter goes by its exposed name, `_total` included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// Whether every `(label, value)` pair of `matching` is among this sample's labels. Labels not
    /// named (such as the `job` and `instance` that Prometheus adds) do not matter.
    pub fn matches(&self, matching: &[(&str, &str)]) -> bool {
        matching
            .iter()
            .all(|(label, value)| self.labels.get(*label).is_some_and(|v| v == value))
    }
}

/// All samples of one service at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub service: String,
    pub samples: Vec<Sample>,
}

impl Snapshot {
    /// The samples named `name` whose labels include `matching`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        matching: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && s.matches(matching))
    }

    /// The sum over every series `select` yields: 0 when there is none, as for a labelled counter
    /// that has not been incremented yet.
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.select(name, matching).map(|s| s.value).sum()
    }

    /// Whether any series of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

/// Where snapshots of the services' metrics come from.
pub trait MetricsSource {
    /// A short description for reports and errors, e.g. the URLs read.
    fn describe(&self) -> String;

    /// One snapshot per service, in the order the source was given its targets.
    fn snapshot(&self) -> impl Future<Output = Result<Vec<Snapshot>, MetricsError>> + Send;
}

/// Why a snapshot (or a wait for one) failed. Every variant names the URL involved.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{url:?} is not a usable URL: {detail}")]
    BadUrl { url: String, detail: String },
    #[error(
        "the selector {selector:?} for {service} is not a label matcher set in braces such as {{job=\"api-gateway\"}}"
    )]
    BadSelector { service: String, selector: String },
    #[error("building the HTTP client: {0}")]
    Client(String),
    #[error("GET {url} failed: {detail}")]
    Request { url: String, detail: String },
    #[error(
        "GET {url} answered HTTP {status}, expected 200 with {expected}; the body starts {excerpt:?}"
    )]
    Status {
        url: String,
        status: u16,
        expected: &'static str,
        excerpt: String,
    },
    #[error(
        "GET {url} answered with content type {content_type:?}, expected {expected}; the body starts {excerpt:?}"
    )]
    Content {
        url: String,
        content_type: String,
        expected: &'static str,
        excerpt: String,
    },
    #[error("{url}, line {line}: {detail}: {text:?}")]
    Exposition {
        url: String,
        line: usize,
        detail: &'static str,
        text: String,
    },
    #[error(
        "Prometheus at {url} answered HTTP {status} with an error of type {error_type}: {message}"
    )]
    Api {
        url: String,
        status: u16,
        error_type: ApiErrorType,
        message: String,
    },
    #[error(
        "{url} answered HTTP {status} with a body that is not Prometheus API JSON ({detail}); the body starts {excerpt:?}"
    )]
    NotJson {
        url: String,
        status: u16,
        detail: String,
        excerpt: String,
    },
    #[error(
        "GET {url} answered HTTP {status} with more than {limit} bytes, the most read of one answer; the body starts {excerpt:?}"
    )]
    TooLarge {
        url: String,
        status: u16,
        limit: usize,
        excerpt: String,
    },
    #[error("{url} answered something other than expected: {detail}")]
    Shape { url: String, detail: String },
    #[error(
        "Prometheus at {url} holds no successful scrape of {selector} between Unix time {after:.3} and {before:.3}: {detail}"
    )]
    NoScrapeInWindow {
        url: String,
        selector: String,
        after: f64,
        before: f64,
        detail: String,
    },
    #[error(
        "Prometheus at {url} had not scraped {selector} successfully after the mark within {timeout:?}: {last}"
    )]
    ScrapeWait {
        url: String,
        selector: String,
        timeout: Duration,
        last: String,
    },
}

/// Parses a sample value as Prometheus writes it, Go style: `NaN`, `+Inf`, `-Inf`, `1.5e-05`, `3`.
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust also reads `inf`/`nan` in any case; Go never writes those, so they are refused.
        _ if text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => text.parse().ok(),
    }
}

/// The start of a response body, for error messages that show what came back instead.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}

/// The body of an answer to `GET url`, at most [`crate::tls::MAX_API_BODY`] bytes.
pub(crate) async fn read_body(
    url: &str,
    response: reqwest::Response,
    timeout: Duration,
) -> Result<bytes::Bytes, MetricsError> {
    let status = response.status().as_u16();
    crate::tls::read_body(response, crate::tls::MAX_API_BODY)
        .await
        .map_err(|error| match error {
            crate::tls::BodyError::TooLarge { limit, start } => MetricsError::TooLarge {
                url: url.to_owned(),
                status,
                limit,
                excerpt: excerpt(&start),
            },
            crate::tls::BodyError::Read(error) => MetricsError::Request {
                url: url.to_owned(),
                detail: describe_request_error(&error, timeout),
            },
        })
}

/// A reqwest error with its causes, which its own message leaves out (e.g. "connection refused").
pub(crate) fn describe_request_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} {}",
            self.name,
            format_labels(&self.labels),
            self.value
        )
    }
}

/// `{a="1",b="2"}`, or nothing for no labels.
pub(crate) fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod http_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_go_style() {
        assert_eq!(parse_value("1"), Some(1.0));
        assert_eq!(parse_value("2.391e-05"), Some(2.391e-05));
        assert_eq!(parse_value("3.886707e+06"), Some(3_886_707.0));
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_value("inf"), None);
        assert_eq!(parse_value("one"), None);
        assert_eq!(parse_value(""), None);
    }

    #[test]
    fn selection_ignores_labels_it_does_not_name() {
        let sample = |status: &str, job: &str, value| Sample {
            name: "http_requests_total".into(),
            labels: BTreeMap::from([
                ("status".to_owned(), status.to_owned()),
                ("job".to_owned(), job.to_owned()),
            ]),
            value,
        };
        let snapshot = Snapshot {
            service: "api-gateway".into(),
            samples: vec![
                sample("200", "a", 3.0),
                sample("200", "b", 4.0),
                sample("400", "a", 1.0),
            ],
        };
        assert_eq!(
            snapshot.sum("http_requests_total", &[("status", "200")]),
            7.0
        );
        assert_eq!(snapshot.sum("http_requests_total", &[]), 8.0);
        assert_eq!(
            snapshot.sum("http_requests_total", &[("status", "500")]),
            0.0
        );
        assert_eq!(snapshot.sum("requests_total", &[]), 0.0);
        assert!(snapshot.has("http_requests_total") && !snapshot.has("requests_total"));
        assert_eq!(
            snapshot.samples[2].to_string(),
            "http_requests_total{job=\"a\",status=\"400\"} 1"
        );
    }
}
