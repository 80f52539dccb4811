//! Snapshots read through a Prometheus server's HTTP API, as dashboards and alerts see the services.
//!
//! Prometheus only knows what it last scraped, so a snapshot is only as recent as the latest scrape:
//! [`PrometheusSource::wait_for_scrape_after`] is how a caller makes sure that scrape came after the
//! moment it cares about.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::{
    MetricsError, MetricsSource, Sample, Snapshot, describe_request_error, excerpt, read_body,
};
use crate::tls::TlsSpec;

mod past;

/// Series Prometheus writes for each scrape itself; they describe the scrape, not the service.
fn is_scrape_bookkeeping(name: &str) -> bool {
    name == "up" || name.starts_with("scrape_")
}

/// Prometheus may move a scrape's timestamp to its scheduled time by a couple of milliseconds
/// (`scrape.timestamp-tolerance`, 2 ms by default); a scrape counts as "after" only beyond this.
const TIMESTAMP_SLACK: Duration = Duration::from_millis(25);
/// How often [`PrometheusSource::wait_for_scrape_after`] asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The `errorType` of an API error, which says more than the HTTP code (that varies by version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorType {
    /// The query or its parameters are invalid (HTTP 400).
    BadData,
    /// The query could not run, e.g. many-to-many matching (HTTP 422).
    Execution,
    /// The query ran out of time (HTTP 503).
    Timeout,
    /// The query was cancelled (HTTP 503, 499 in later versions).
    Canceled,
    Internal,
    NotFound,
    NotAcceptable,
    /// Prometheus cannot answer now, e.g. while starting.
    Unavailable,
    /// A type this client does not know; kept verbatim.
    Other(String),
}

impl ApiErrorType {
    fn from_wire(text: &str) -> Self {
        match text {
            "bad_data" => ApiErrorType::BadData,
            "execution" => ApiErrorType::Execution,
            "timeout" => ApiErrorType::Timeout,
            "canceled" => ApiErrorType::Canceled,
            "internal" => ApiErrorType::Internal,
            "not_found" => ApiErrorType::NotFound,
            "not_acceptable" => ApiErrorType::NotAcceptable,
            "unavailable" => ApiErrorType::Unavailable,
            other => ApiErrorType::Other(other.to_owned()),
        }
    }

    /// Whether asking again later may succeed: the server was busy, not the question wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiErrorType::Timeout | ApiErrorType::Canceled | ApiErrorType::Unavailable
        )
    }
}

impl fmt::Display for ApiErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiErrorType::BadData => "bad_data",
            ApiErrorType::Execution => "execution",
            ApiErrorType::Timeout => "timeout",
            ApiErrorType::Canceled => "canceled",
            ApiErrorType::Internal => "internal",
            ApiErrorType::NotFound => "not_found",
            ApiErrorType::NotAcceptable => "not_acceptable",
            ApiErrorType::Unavailable => "unavailable",
            ApiErrorType::Other(other) => other,
        })
    }
}

/// One point of a series: timestamp in seconds since the epoch, and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub timestamp: f64,
    pub value: f64,
}

/// One series of an instant vector. `__name__` stays among the labels, when the query kept it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: BTreeMap<String, String>,
    pub point: Point,
}

/// One series of a range matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<Point>,
}

/// The `data` of a query answer, by `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
    Scalar(Point),
    String { timestamp: f64, value: String },
}

/// A successful query answer with the notes Prometheus attached to it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// A scrape target's health as Prometheus last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
    Unknown,
}

/// One active scrape target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    pub scrape_url: String,
    /// Empty when the last scrape succeeded.
    #[serde(default)]
    pub last_error: String,
    /// RFC 3339 with nanoseconds, as Prometheus sends it.
    pub last_scrape: String,
    /// Seconds.
    pub last_scrape_duration: f64,
    pub health: Health,
}

/// `/api/v1/targets`: the active targets, and the discovered labels of the dropped ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    pub active: Vec<Target>,
    pub dropped: Vec<BTreeMap<String, String>>,
}

/// Reads the services' series from a Prometheus server, one label selector per service.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    base: reqwest::Url,
    targets: Vec<(String, String)>,
    client: reqwest::Client,
    timeout: Duration,
}

impl PrometheusSource {
    /// Per API call; Prometheus's own query timeout is two minutes, but these queries are tiny.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// `targets` are `(service, selector)`, the selector a label matcher set in braces that picks
    /// exactly that service's series, such as `{job="api-gateway"}`.
    pub fn new(base_url: &str, targets: Vec<(String, String)>) -> Result<Self, MetricsError> {
        let bad_url = |detail: String| MetricsError::BadUrl {
            url: base_url.to_owned(),
            detail,
        };
        // A trailing slash makes `join` keep a path prefix such as `/prometheus`.
        let mut base = reqwest::Url::parse(base_url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad_url("the scheme must be http or https".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        for (service, selector) in &targets {
            let selector = selector.trim();
            if selector.len() < 3 || !selector.starts_with('{') || !selector.ends_with('}') {
                return Err(MetricsError::BadSelector {
                    service: service.clone(),
                    selector: selector.to_owned(),
                });
            }
        }
        let targets = targets
            .into_iter()
            .map(|(service, selector)| (service, selector.trim().to_owned()))
            .collect();
        let client = crate::tls::api_client(&TlsSpec::default(), HeaderMap::new())
            .map_err(|e| MetricsError::Client(e.to_string()))?
            .build()
            .map_err(|e| MetricsError::Client(e.to_string()))?;
        Ok(PrometheusSource {
            base,
            targets,
            client,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The same source over a client that trusts what `tls` says and sends `headers` (e.g. a
    /// bearer token) with every request.
    pub fn with_access(mut self, tls: &TlsSpec, headers: HeaderMap) -> Result<Self, MetricsError> {
        self.client = crate::tls::api_client(tls, headers)
            .map_err(|e| MetricsError::Client(e.to_string()))?
            .build()
            .map_err(|e| MetricsError::Client(e.to_string()))?;
        Ok(self)
    }

    /// How long each API call may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn endpoint(&self, path: &str) -> Result<reqwest::Url, MetricsError> {
        self.base.join(path).map_err(|e| MetricsError::BadUrl {
            url: format!("{}{path}", self.base),
            detail: e.to_string(),
        })
    }

    async fn get(&self, url: reqwest::Url) -> Result<(u16, bytes::Bytes), MetricsError> {
        let failed = |error: reqwest::Error| MetricsError::Request {
            url: url.to_string(),
            detail: describe_request_error(&error, self.timeout),
        };
        let response = self
            .client
            .get(url.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let body = read_body(url.as_str(), response, self.timeout).await?;
        Ok((status, body))
    }

    /// An instant query evaluated at the server's current time.
    pub async fn query(&self, promql: &str) -> Result<QueryResponse, MetricsError> {
        self.query_at(promql, None).await
    }

    /// An instant query evaluated at `time` (`time=`, Unix seconds to the millisecond, as
    /// Prometheus stores its timestamps), or at the server's current time.
    pub async fn query_at(
        &self,
        promql: &str,
        time: Option<f64>,
    ) -> Result<QueryResponse, MetricsError> {
        let mut url = self.endpoint("api/v1/query")?;
        url.query_pairs_mut().append_pair("query", promql);
        if let Some(time) = time {
            url.query_pairs_mut()
                .append_pair("time", &format!("{time:.3}"));
        }
        let (status, body) = self.get(url.clone()).await?;
        parse_query(url.as_str(), status, &body)
    }

    /// The server's scrape targets, for diagnosis (last error, health).
    pub async fn targets(&self) -> Result<Targets, MetricsError> {
        let url = self.endpoint("api/v1/targets")?;
        let (status, body) = self.get(url.clone()).await?;
        parse_targets(url.as_str(), status, &body)
    }

    /// Waits until every target of every service has been scraped successfully, by a scrape that
    /// started after `t`; the next snapshot then reflects the services at `t` or later. The clocks
    /// of the caller and the server are assumed to agree (the same machine, or NTP).
    pub async fn wait_for_scrape_after(
        &self,
        t: SystemTime,
        timeout: Duration,
    ) -> Result<(), MetricsError> {
        let mark = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(TIMESTAMP_SLACK)
            .as_secs_f64();
        let deadline = tokio::time::Instant::now() + timeout;
        for (_, selector) in &self.targets {
            // `timestamp(up)` is when the latest scrape started; multiplied by `up`, it is 0 for a
            // target whose latest scrape failed, so one query tells both.
            let promql = format!("timestamp(up{selector}) * up{selector}");
            loop {
                let last = match self.query(&promql).await {
                    Ok(response) => match scrape_state(&response.data, mark) {
                        Ok(()) => break,
                        Err(state) => state,
                    },
                    Err(MetricsError::Api { error_type, .. }) if error_type.is_transient() => {
                        format!("the last query failed with {error_type}")
                    }
                    Err(error @ MetricsError::Api { .. }) => return Err(error),
                    Err(error) => format!("the last query failed: {error}"),
                };
                if tokio::time::Instant::now() + POLL_INTERVAL > deadline {
                    return Err(MetricsError::ScrapeWait {
                        url: self.base.to_string(),
                        selector: selector.clone(),
                        timeout,
                        last,
                    });
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        Ok(())
    }

    async fn series(
        &self,
        service: &str,
        selector: &str,
        time: Option<f64>,
    ) -> Result<Snapshot, MetricsError> {
        let response = self.query_at(selector, time).await?;
        for warning in &response.warnings {
            tracing::warn!(
                service,
                selector,
                warning,
                "Prometheus warned about a query"
            );
        }
        let url = format!("{}api/v1/query?query={selector}", self.base);
        snapshot_of(service, url, response.data)
    }
}

/// A service's snapshot from its selector's answer (asked at `url`): every series but the
/// scrape's own bookkeeping, sorted by name and labels.
fn snapshot_of(service: &str, url: String, data: QueryData) -> Result<Snapshot, MetricsError> {
    let QueryData::Vector(series) = data else {
        return Err(MetricsError::Shape {
            url,
            detail: "a selector's answer is not an instant vector".into(),
        });
    };
    let mut samples = Vec::with_capacity(series.len());
    for InstantSample { mut labels, point } in series {
        let Some(name) = labels.remove("__name__") else {
            return Err(MetricsError::Shape {
                url,
                detail: format!("a series without __name__: {labels:?}"),
            });
        };
        if !is_scrape_bookkeeping(&name) {
            samples.push(Sample {
                name,
                labels,
                value: point.value,
            });
        }
    }
    samples.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    Ok(Snapshot {
        service: service.to_owned(),
        samples,
    })
}

impl MetricsSource for PrometheusSource {
    fn describe(&self) -> String {
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|(service, selector)| format!("{service} as {selector}"))
            .collect();
        format!("Prometheus at {} ({})", self.base, targets.join(", "))
    }

    async fn snapshot(&self) -> Result<Vec<Snapshot>, MetricsError> {
        let mut snapshots = Vec::with_capacity(self.targets.len());
        for (service, selector) in &self.targets {
            snapshots.push(self.series(service, selector, None).await?);
        }
        Ok(snapshots)
    }
}

/// `Ok` when every series of `timestamp(up) * up` is past `mark`; otherwise what is still missing.
fn scrape_state(data: &QueryData, mark: f64) -> Result<(), String> {
    let QueryData::Vector(series) = data else {
        return Err("the scrape-time query did not answer a vector".into());
    };
    if series.is_empty() {
        return Err("no target matches yet (no `up` series)".into());
    }
    let behind: Vec<String> = series
        .iter()
        .filter(|s| s.point.value.is_nan() || s.point.value <= mark)
        .map(|s| {
            let instance = s.labels.get("instance").map_or("?", String::as_str);
            if s.point.value == 0.0 {
                format!("{instance}: the latest scrape failed (up = 0)")
            } else {
                format!(
                    "{instance}: the latest scrape started {:.3} s before the mark",
                    mark - s.point.value
                )
            }
        })
        .collect();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(behind.join("; "))
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

/// The `data` of a successful answer, and its warnings and infos; an error answer as the error
/// its `errorType` names, whatever the HTTP status.
fn parse_envelope(
    url: &str,
    status: u16,
    body: &[u8],
) -> Result<(serde_json::Value, Vec<String>, Vec<String>), MetricsError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| MetricsError::NotJson {
        url: url.to_owned(),
        status,
        detail: e.to_string(),
        excerpt: excerpt(body),
    })?;
    let shape = |detail: String| MetricsError::Shape {
        url: url.to_owned(),
        detail,
    };
    match envelope.status.as_str() {
        "error" => Err(MetricsError::Api {
            url: url.to_owned(),
            status,
            error_type: ApiErrorType::from_wire(envelope.error_type.as_deref().unwrap_or("")),
            message: envelope.error.unwrap_or_default(),
        }),
        "success" if !(200..300).contains(&status) => {
            Err(shape(format!("status \"success\" with HTTP {status}")))
        }
        "success" => match envelope.data {
            Some(data) => Ok((data, envelope.warnings, envelope.infos)),
            None => Err(shape("status \"success\" without data".into())),
        },
        other => Err(shape(format!(
            "status {other:?}, expected \"success\" or \"error\""
        ))),
    }
}

#[derive(Deserialize)]
struct RawQueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawInstant {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
}

fn parse_query(url: &str, status: u16, body: &[u8]) -> Result<QueryResponse, MetricsError> {
    let (data, warnings, infos) = parse_envelope(url, status, body)?;
    let shape = |detail: String| MetricsError::Shape {
        url: url.to_owned(),
        detail,
    };
    let raw: RawQueryData =
        serde_json::from_value(data).map_err(|e| shape(format!("query data: {e}")))?;
    let point = |(timestamp, value): (f64, String)| match super::parse_value(&value) {
        Some(value) => Ok(Point { timestamp, value }),
        None => Err(shape(format!("sample value {value:?} is not a number"))),
    };
    let result = |what: &str| shape(format!("{what} result: the shape does not match"));
    let data = match raw.result_type.as_str() {
        "vector" => {
            let series: Vec<RawInstant> =
                serde_json::from_value(raw.result).map_err(|_| result("vector"))?;
            let series = series
                .into_iter()
                .map(|s| match s.value {
                    Some(value) => Ok(InstantSample {
                        labels: s.metric,
                        point: point(value)?,
                    }),
                    None => Err(shape(format!(
                        "a sample without a float value (native histograms are not supported): {:?}",
                        s.metric
                    ))),
                })
                .collect::<Result<_, _>>()?;
            QueryData::Vector(series)
        }
        "matrix" => {
            let series: Vec<RawRange> =
                serde_json::from_value(raw.result).map_err(|_| result("matrix"))?;
            let series = series
                .into_iter()
                .map(|s| match s.values {
                    Some(values) => Ok(RangeSeries {
                        labels: s.metric,
                        points: values.into_iter().map(point).collect::<Result<_, _>>()?,
                    }),
                    None => Err(shape(format!(
                        "a series without float values (native histograms are not supported): {:?}",
                        s.metric
                    ))),
                })
                .collect::<Result<_, _>>()?;
            QueryData::Matrix(series)
        }
        "scalar" => {
            let value: (f64, String) =
                serde_json::from_value(raw.result).map_err(|_| result("scalar"))?;
            QueryData::Scalar(point(value)?)
        }
        "string" => {
            let (timestamp, value): (f64, String) =
                serde_json::from_value(raw.result).map_err(|_| result("string"))?;
            QueryData::String { timestamp, value }
        }
        other => return Err(shape(format!("unknown resultType {other:?}"))),
    };
    Ok(QueryResponse {
        data,
        warnings,
        infos,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTargets {
    active_targets: Vec<Target>,
    #[serde(default)]
    dropped_targets: Vec<RawDropped>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDropped {
    discovered_labels: BTreeMap<String, String>,
}

fn parse_targets(url: &str, status: u16, body: &[u8]) -> Result<Targets, MetricsError> {
    let (data, _, _) = parse_envelope(url, status, body)?;
    let raw: RawTargets = serde_json::from_value(data).map_err(|e| MetricsError::Shape {
        url: url.to_owned(),
        detail: format!("targets: {e}"),
    })?;
    Ok(Targets {
        active: raw.active_targets,
        dropped: raw
            .dropped_targets
            .into_iter()
            .map(|d| d.discovered_labels)
            .collect(),
    })
}

/// One answer body of the Prometheus HTTP API, read as the source reads it, for the fuzz targets
/// in `fuzz/`: as a query's answer (then as the scrape-time query and as a selector's snapshot)
/// and as the target list, under a success and an error status.
#[cfg(fuzzing)]
pub(crate) fn fuzz_answer(body: &[u8]) {
    const URL: &str = "http://127.0.0.1:9090/api/v1/query";
    for status in [200, 422] {
        match parse_query(URL, status, body) {
            Ok(response) => {
                drop(scrape_state(&response.data, 1.7e9));
                if let Ok(snapshot) = snapshot_of("engine", URL.to_owned(), response.data) {
                    let sorted = snapshot.samples.windows(2).all(|pair| {
                        (&pair[0].name, &pair[0].labels) <= (&pair[1].name, &pair[1].labels)
                    });
                    assert!(sorted, "a snapshot's samples are sorted");
                }
            }
            Err(error) => drop(error.to_string()),
        }
        if let Err(error) = parse_targets(URL, status, body) {
            drop(error.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:9090/api/v1/query";

    fn fixture(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/prometheus/");
        std::fs::read(format!("{path}{name}")).expect("fixture")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vector(name: &str) -> Vec<InstantSample> {
        match parse_query(URL, 200, &fixture(name)).expect("parses").data {
            QueryData::Vector(v) => v,
            other => panic!("not a vector: {other:?}"),
        }
    }

    #[test]
    fn documented_vector() {
        let v = vector("docs-api_query-vector.json");
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0].labels,
            labels(&[
                ("__name__", "up"),
                ("job", "prometheus"),
                ("instance", "localhost:9090")
            ])
        );
        assert_eq!(
            v[0].point,
            Point {
                timestamp: 1435781451.781,
                value: 1.0
            }
        );
        assert_eq!(v[1].labels["instance"], "localhost:9100");
        assert_eq!(v[1].point.value, 0.0);
    }

    #[test]
    fn live_vector() {
        let v = vector("live-2.42.0_query-vector_up.json");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].labels["instance"], "127.0.0.1:9090");
        assert_eq!(v[0].point.timestamp, 1795547474.214);
        assert_eq!(v[0].point.value, 1.0);
        assert_eq!(v[1].labels["job"], "node");
        assert_eq!(v[1].point.value, 0.0);
    }

    #[test]
    fn special_floats_and_series_without_a_name() {
        let v = vector("live-2.42.0_query-vector_special-floats.json");
        assert_eq!(v.len(), 2);
        assert!(!v[0].labels.contains_key("__name__"));
        assert_eq!(v[0].point.value, f64::INFINITY);
        assert_eq!(v[0].point.timestamp, 1795547482.312);
        assert!(v[1].point.value.is_nan());
    }

    #[test]
    fn scalar_nan() {
        let response =
            parse_query(URL, 200, &fixture("live-2.42.0_query-scalar_nan.json")).expect("parses");
        let QueryData::Scalar(point) = response.data else {
            panic!("not a scalar: {response:?}")
        };
        assert_eq!(point.timestamp, 1795547482.324);
        assert!(point.value.is_nan());
        assert!(response.warnings.is_empty() && response.infos.is_empty());
    }

    #[test]
    fn matrices_with_fractional_and_integral_timestamps() {
        for (name, first, second_last) in [
            ("docs-api_query_range-matrix.json", 1435781430.781, 1.0),
            ("live-2.42.0_query_range-matrix_up.json", 1795547444.0, 0.0),
        ] {
            let response = parse_query(URL, 200, &fixture(name)).expect(name);
            let QueryData::Matrix(series) = response.data else {
                panic!("{name}: not a matrix")
            };
            assert_eq!(series.len(), 2, "{name}");
            assert_eq!(series[0].points[0].timestamp, first, "{name}");
            assert_eq!(series[0].labels["__name__"], "up");
            let last = series[1].points.last().expect("points");
            assert_eq!(last.value, second_last, "{name}");
        }
        let response = parse_query(URL, 200, &fixture("live-2.42.0_query_range-matrix_up.json"))
            .expect("parses");
        let QueryData::Matrix(series) = response.data else {
            panic!("not a matrix")
        };
        let times: Vec<f64> = series[0].points.iter().map(|p| p.timestamp).collect();
        assert_eq!(
            times,
            [1795547444.0, 1795547454.0, 1795547464.0, 1795547474.0]
        );
    }

    #[test]
    fn errors_are_typed_by_error_type_not_status() {
        for (name, status, expected, message_part) in [
            (
                "live-2.42.0_error-400-bad_data.json",
                400,
                ApiErrorType::BadData,
                "unexpected end of input inside braces",
            ),
            (
                "live-2.42.0_error-422-execution.json",
                422,
                ApiErrorType::Execution,
                "many-to-many matching not allowed",
            ),
            (
                "test-api_error-503-timeout.json",
                503,
                ApiErrorType::Timeout,
                "message",
            ),
        ] {
            let error = parse_query(URL, status, &fixture(name)).expect_err(name);
            let MetricsError::Api {
                status: got_status,
                error_type,
                message,
                url,
            } = &error
            else {
                panic!("{name}: {error}")
            };
            assert_eq!((*got_status, error_type), (status, &expected), "{name}");
            assert!(message.contains(message_part), "{name}: {message}");
            assert_eq!(url, URL);
            assert!(
                error.to_string().contains(&format!("HTTP {status}")),
                "{error}"
            );
        }
        assert!(ApiErrorType::Timeout.is_transient());
        assert!(!ApiErrorType::BadData.is_transient());
        assert_eq!(
            ApiErrorType::from_wire("brand_new"),
            ApiErrorType::Other("brand_new".into())
        );
    }

    #[test]
    fn warnings_and_infos_are_kept() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]},
            "warnings":["w1"],"infos":["i1","i2"]}"#;
        let response = parse_query(URL, 200, body).expect("parses");
        assert_eq!(response.data, QueryData::Vector(vec![]));
        assert_eq!(response.warnings, ["w1"]);
        assert_eq!(response.infos, ["i1", "i2"]);
    }

    #[test]
    fn non_json_and_odd_answers_are_clear_errors() {
        let error =
            parse_query(URL, 502, b"<html><body>Bad Gateway</body></html>").expect_err("html");
        let text = error.to_string();
        assert!(matches!(error, MetricsError::NotJson { status: 502, .. }));
        assert!(text.contains(URL) && text.contains("Bad Gateway"), "{text}");

        let error = parse_query(URL, 200, br#"{"data":{}}"#).expect_err("no status");
        assert!(
            error.to_string().contains("missing field `status`"),
            "{error}"
        );

        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"one"]}]}}"#;
        let error = parse_query(URL, 200, body).expect_err("bad value");
        assert!(
            error.to_string().contains("\"one\" is not a number"),
            "{error}"
        );

        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#;
        let error = parse_query(URL, 200, body).expect_err("native histogram");
        assert!(error.to_string().contains("native histograms"), "{error}");

        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let error = parse_query(URL, 500, body).expect_err("success with 500");
        assert!(error.to_string().contains("HTTP 500"), "{error}");

        let body = br#"{"status":"success","data":{"resultType":"string","result":[1.5,"hi"]}}"#;
        let data = parse_query(URL, 200, body).expect("string").data;
        assert_eq!(
            data,
            QueryData::String {
                timestamp: 1.5,
                value: "hi".into()
            }
        );
    }

    #[test]
    fn documented_targets() {
        let targets = parse_targets(URL, 200, &fixture("docs-api_targets.json")).expect("parses");
        assert_eq!(targets.active.len(), 1);
        let t = &targets.active[0];
        assert_eq!(t.scrape_pool, "prometheus");
        assert_eq!(t.scrape_url, "http://127.0.0.1:9090/metrics");
        assert_eq!(t.health, Health::Up);
        assert_eq!(t.last_error, "");
        assert_eq!(t.last_scrape, "2017-01-17T15:07:44.723715405+01:00");
        assert_eq!(t.last_scrape_duration, 0.050688943);
        assert_eq!(t.labels["job"], "prometheus");
        assert_eq!(targets.dropped.len(), 1);
        assert_eq!(targets.dropped[0]["__address__"], "127.0.0.1:9100");
    }

    #[test]
    fn live_targets() {
        let targets =
            parse_targets(URL, 200, &fixture("live-2.42.0_targets.json")).expect("parses");
        assert_eq!(targets.active.len(), 2);
        let down = &targets.active[0];
        assert_eq!(down.health, Health::Down);
        assert!(down.last_error.contains("connection refused"), "{down:?}");
        assert_eq!(down.last_scrape_duration, 0.000417861);
        let up = &targets.active[1];
        assert_eq!(up.health, Health::Up);
        assert_eq!(up.labels["instance"], "127.0.0.1:9090");
        assert_eq!(up.last_scrape, "2026-11-24T19:11:13.172917521Z");
        assert_eq!(targets.dropped.len(), 1);
        assert_eq!(targets.dropped[0]["__address__"], "127.0.0.1:9192");
        assert!(!targets.dropped[0].contains_key("scrapePool"));
    }

    #[test]
    fn scrape_state_waits_for_every_target() {
        let sample = |instance: &str, value| InstantSample {
            labels: labels(&[("instance", instance), ("job", "api-gateway")]),
            point: Point {
                timestamp: 2000.0,
                value,
            },
        };
        let mark = 1000.0;
        assert_eq!(
            scrape_state(
                &QueryData::Vector(vec![sample("a", 1000.5), sample("b", 1001.0)]),
                mark
            ),
            Ok(())
        );
        let behind = scrape_state(
            &QueryData::Vector(vec![sample("a", 1000.5), sample("b", 999.75)]),
            mark,
        )
        .expect_err("b is behind");
        assert_eq!(
            behind,
            "b: the latest scrape started 0.250 s before the mark"
        );
        let failed =
            scrape_state(&QueryData::Vector(vec![sample("a", 0.0)]), mark).expect_err("a is down");
        assert!(failed.contains("up = 0"), "{failed}");
        let none = scrape_state(&QueryData::Vector(vec![]), mark).expect_err("no series");
        assert!(none.contains("no target"), "{none}");
    }

    #[test]
    fn construction_checks_url_and_selectors() {
        let ok = PrometheusSource::new(
            "http://127.0.0.1:9090/prefix",
            vec![("api-gateway".into(), " {job=\"api-gateway\"} ".into())],
        )
        .expect("valid");
        assert_eq!(
            ok.endpoint("api/v1/query").expect("joins").as_str(),
            "http://127.0.0.1:9090/prefix/api/v1/query"
        );
        assert_eq!(
            ok.describe(),
            "Prometheus at http://127.0.0.1:9090/prefix/ (api-gateway as {job=\"api-gateway\"})"
        );
        let error = PrometheusSource::new(
            "http://127.0.0.1:9090",
            vec![("core-engine".into(), "job=\"core-engine\"".into())],
        )
        .expect_err("no braces");
        assert!(error.to_string().contains("core-engine"), "{error}");
        let error = PrometheusSource::new("127.0.0.1:9090", vec![]).expect_err("no scheme");
        assert!(matches!(error, MetricsError::BadUrl { .. }), "{error}");
    }
}
