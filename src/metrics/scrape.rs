//! Snapshots read straight from the services' Prometheus endpoints: no Prometheus server needed,
//! and the numbers are those of the moment of the request.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::{
    MetricsError, MetricsSource, Sample, Snapshot, describe_request_error, excerpt, read_body,
};
use crate::tls::TlsSpec;

/// What a scrape must answer with.
const EXPECTED_CONTENT: &str = "the Prometheus text format (text/plain; version=0.0.4)";

/// Reads each service's metrics endpoint over HTTP.
#[derive(Debug, Clone)]
pub struct ScrapeSource {
    targets: Vec<(String, reqwest::Url)>,
    client: reqwest::Client,
    timeout: Duration,
}

impl ScrapeSource {
    /// Long enough for a busy 2-core machine, short enough that a hung service fails the run.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// `targets` are `(service, URL of its metrics endpoint)`.
    pub fn new(targets: Vec<(String, String)>) -> Result<Self, MetricsError> {
        let targets = targets
            .into_iter()
            .map(|(service, url)| {
                let parsed = reqwest::Url::parse(&url).map_err(|e| MetricsError::BadUrl {
                    url: url.clone(),
                    detail: e.to_string(),
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(MetricsError::BadUrl {
                        url,
                        detail: "the scheme must be http or https".into(),
                    });
                }
                Ok((service, parsed))
            })
            .collect::<Result<_, _>>()?;
        let client = crate::tls::api_client(&TlsSpec::default(), HeaderMap::new())
            .map_err(|e| MetricsError::Client(e.to_string()))?
            .build()
            .map_err(|e| MetricsError::Client(e.to_string()))?;
        Ok(ScrapeSource {
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

    /// How long each scrape may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn scrape(&self, service: &str, url: &reqwest::Url) -> Result<Snapshot, MetricsError> {
        let failed = |error: reqwest::Error| MetricsError::Request {
            url: url.to_string(),
            detail: describe_request_error(&error, self.timeout),
        };
        let response = self
            .client
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("text/plain;version=0.0.4"))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = read_body(url.as_str(), response, self.timeout).await?;
        if status != 200 {
            return Err(MetricsError::Status {
                url: url.to_string(),
                status,
                expected: EXPECTED_CONTENT,
                excerpt: excerpt(&body),
            });
        }
        // No content type at all is tolerated (some exporters omit it); a different one is not.
        if let Some(content_type) = content_type
            && !content_type.trim_start().starts_with("text/plain")
        {
            return Err(MetricsError::Content {
                url: url.to_string(),
                content_type,
                expected: EXPECTED_CONTENT,
                excerpt: excerpt(&body),
            });
        }
        let text = std::str::from_utf8(&body).map_err(|_| MetricsError::Content {
            url: url.to_string(),
            content_type: "(not UTF-8)".into(),
            expected: EXPECTED_CONTENT,
            excerpt: excerpt(&body),
        })?;
        parse_exposition(service, url.as_str(), text)
    }
}

impl MetricsSource for ScrapeSource {
    fn describe(&self) -> String {
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|(service, url)| format!("{service} at {url}"))
            .collect();
        format!("direct scrape of {}", targets.join(", "))
    }

    async fn snapshot(&self) -> Result<Vec<Snapshot>, MetricsError> {
        let mut snapshots = Vec::with_capacity(self.targets.len());
        for (service, url) in &self.targets {
            snapshots.push(self.scrape(service, url).await?);
        }
        Ok(snapshots)
    }
}

/// Parses a text-format exposition into flat samples, in the order of the page.
///
/// The text format is already flat (histograms as `_bucket`/`_sum`/`_count` lines), so each sample
/// line becomes one [`Sample`] as written, `le` and `quantile` labels included. Lines are split
/// here rather than by `prometheus_parse`, whose reader cuts label values at commas, does not
/// unescape, and refuses a `}` inside a value. A line that is neither a comment nor a readable sample is an error rather
/// than something to skip: a silently lost series would turn into a false verdict later.
pub fn parse_exposition(service: &str, url: &str, text: &str) -> Result<Snapshot, MetricsError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let error = |detail| MetricsError::Exposition {
            url: url.to_owned(),
            line: index + 1,
            detail,
            text: line.to_owned(),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (metric_name, labels, value) =
            split_sample(trimmed).ok_or_else(|| error("not a sample line"))?;
        let value = super::parse_value(value).ok_or_else(|| error("unreadable value"))?;
        let labels = match labels {
            Some(text) => parse_labels(text).map_err(error)?,
            None => BTreeMap::new(),
        };
        samples.push(Sample {
            name: metric_name.to_owned(),
            labels,
            value,
        });
    }
    Ok(Snapshot {
        service: service.to_owned(),
        samples,
    })
}

/// A sample line as `(name, inside of the braces, value)`, the timestamp left out. The label
/// set ends at the first `}` outside a quoted value, so values may hold braces (Jaeger labels a
/// route `/api/v3/traces/{trace_id}`).
fn split_sample(line: &str) -> Option<(&str, Option<&str>, &str)> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let valid = |(i, c): (usize, char)| {
        c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
    };
    if name.is_empty() || !name.chars().enumerate().all(valid) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = None;
    if let Some(inside) = rest.strip_prefix('{') {
        let (mut quoted, mut escaped, mut close) = (false, false, None);
        for (i, c) in inside.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let close = close?;
        labels = Some(&inside[..close]);
        rest = &inside[close + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next()?;
    // At most a timestamp may follow.
    match (fields.next(), fields.next()) {
        (None, _) => Some((name, labels, value)),
        (Some(timestamp), None) if timestamp.parse::<i64>().is_ok() => Some((name, labels, value)),
        _ => None,
    }
}

/// Reads `a="1",b="x\"y"` (the inside of the braces), undoing the format's three escapes.
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, &'static str> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (name, after_name) = rest
            .split_once('=')
            .ok_or("a label without '=' in the label set")?;
        let name = name.trim();
        let valid_name = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if name.is_empty() || !valid_name {
            return Err("an invalid label name in the label set");
        }
        let mut chars = after_name.trim_start().char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("a label value without quotes in the label set");
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    _ => return Err("an invalid escape in a label value"),
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or("an unterminated label value")?;
        if labels.insert(name.to_owned(), value).is_some() {
            return Err("a label named twice in the label set");
        }
        rest = after_name.trim_start()[end + 1..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(more) => more.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err("no comma between labels"),
        };
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn fixture(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/prometheus/");
        std::fs::read_to_string(format!("{path}{name}")).expect("fixture")
    }

    fn value(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = snapshot
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels.len() == labels.len() && s.matches(labels))
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    #[test]
    fn small_exposition_flattens_every_type() {
        let snapshot =
            parse_exposition("prometheus", "fixture", &fixture("exposition.txt")).expect("parses");
        assert_eq!(snapshot.service, "prometheus");
        // 5 quantiles + sum + count, 13 buckets + sum + count, 4 counters, 1 gauge.
        assert_eq!(snapshot.samples.len(), 7 + 15 + 4 + 1);
        let gc = "go_gc_duration_seconds";
        assert_eq!(value(&snapshot, gc, &[("quantile", "0")]), 2.391e-05);
        assert_eq!(value(&snapshot, gc, &[("quantile", "0.5")]), 0.000118953);
        assert_eq!(
            value(&snapshot, "go_gc_duration_seconds_sum", &[]),
            0.036134048
        );
        assert_eq!(value(&snapshot, "go_gc_duration_seconds_count", &[]), 232.0);
        let chunks = "prometheus_tsdb_compaction_chunk_size_bytes";
        let bucket = format!("{chunks}_bucket");
        assert_eq!(value(&snapshot, &bucket, &[("le", "32")]), 662.0);
        assert_eq!(value(&snapshot, &bucket, &[("le", "1230.1875")]), 13699.0);
        assert_eq!(value(&snapshot, &bucket, &[("le", "+Inf")]), 13867.0);
        assert_eq!(value(&snapshot, &format!("{chunks}_sum"), &[]), 3_886_707.0);
        assert_eq!(value(&snapshot, &format!("{chunks}_count"), &[]), 13867.0);
        let dialer = "net_conntrack_dialer_conn_attempted_total";
        assert_eq!(
            value(&snapshot, dialer, &[("dialer_name", "blackbox")]),
            5210.0
        );
        assert_eq!(value(&snapshot, dialer, &[("dialer_name", "default")]), 0.0);
        assert_eq!(snapshot.sum(dialer, &[]), 5252.0);
        assert_eq!(value(&snapshot, "go_info", &[("version", "go1.17")]), 1.0);
    }

    #[test]
    fn full_page_keeps_every_sample_and_label() {
        let snapshot = parse_exposition(
            "prometheus",
            "fixture",
            &fixture("exposition-alltypes-237mfs.txt"),
        )
        .expect("parses");
        assert_eq!(snapshot.samples.len(), 1857);
        // A label value with commas, which a comma-splitting reader would cut short.
        let build = snapshot
            .select("prometheus_build_info", &[])
            .next()
            .expect("build info");
        assert_eq!(build.labels["tags"], "netgo,builtinassets,stringlabels");
        assert_eq!(build.labels["version"], "3.1.0");
        assert_eq!(build.labels.len(), 7);
        // Every histogram ends with a +Inf bucket equal to its count.
        let histograms: Vec<&str> = snapshot
            .samples
            .iter()
            .filter_map(|s| s.name.strip_suffix("_bucket"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(histograms.len(), 15, "{histograms:?}");
        for name in histograms {
            let count_name = format!("{name}_count");
            for count in snapshot.select(&count_name, &[]) {
                let mut labels: Vec<(&str, &str)> = count
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                labels.push(("le", "+Inf"));
                assert_eq!(
                    value(&snapshot, &format!("{name}_bucket"), &labels),
                    count.value,
                    "{count}"
                );
            }
        }
    }

    #[test]
    fn label_values_may_hold_braces_and_a_timestamp_may_follow() {
        // As Jaeger v2 exposes its query API's routes.
        let text = concat!(
            "http_server_request_body_size_bytes_bucket{http_route=\"/api/v3/traces/{trace_id}\",le=\"0\"} 73\n",
            "odd{a=\"x\\\"}\",b=\"}{\"} 2 1700000000000\n",
            "bare 3\n",
        );
        let snapshot = parse_exposition("jaeger", "u", text).expect("parses");
        assert_eq!(snapshot.samples.len(), 3, "{snapshot:?}");
        assert_eq!(
            snapshot.samples[0].labels["http_route"],
            "/api/v3/traces/{trace_id}"
        );
        assert_eq!(snapshot.samples[0].value, 73.0);
        assert_eq!(snapshot.samples[1].labels["a"], "x\"}");
        assert_eq!(snapshot.samples[1].labels["b"], "}{");
        assert_eq!(snapshot.samples[1].value, 2.0);
        for bad in [
            "x{a=\"1\" 2",
            "x{a=\"1\"} 2 3 4",
            "x{a=\"1\"} 2 later",
            "{a=\"1\"} 2",
            "x",
        ] {
            assert!(parse_exposition("s", "u", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unreadable_lines_are_errors_naming_url_and_line() {
        let page = "# HELP a An A\n# TYPE a counter\na_total 1\n<html>oops</html>\n";
        let error = parse_exposition("svc", "http://127.0.0.1:1/metrics", page)
            .expect_err("html is not exposition");
        let text = error.to_string();
        assert!(
            text.contains("http://127.0.0.1:1/metrics, line 4: not a sample line"),
            "{text}"
        );
        let error = parse_exposition("svc", "u", "a_total one\n").expect_err("bad value");
        assert!(
            error.to_string().contains("line 1: unreadable value"),
            "{error}"
        );
    }

    #[test]
    fn label_sets_are_unescaped_and_checked() {
        let labels = parse_labels(r#"a="x\"y",b = "c\\d\ne" , c="",d="}{=,""#).expect("valid");
        assert_eq!(labels["a"], "x\"y");
        assert_eq!(labels["b"], "c\\d\ne");
        assert_eq!(labels["c"], "");
        assert_eq!(labels["d"], "}{=,");
        assert_eq!(parse_labels(r#"a="1","#).expect("trailing comma")["a"], "1");
        for (bad, why) in [
            (r#"a="1" b="2""#, "no comma"),
            (r#"a=1"#, "without quotes"),
            (r#"a="1"#, "unterminated"),
            (r#"a="\t""#, "invalid escape"),
            (r#"a="1",a="2""#, "named twice"),
            (r#"1a="1""#, "invalid label name"),
            (r#"a"#, "without '='"),
        ] {
            let error = parse_labels(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    async fn render<B>(response: hyper::Response<B>) -> String
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        use http_body_util::BodyExt;
        let body = response.into_body().collect().await.expect("body");
        String::from_utf8(body.to_bytes().to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn the_services_own_renderers_parse() {
        use engine::metrics::{EngineMetrics, GatewayMetrics};
        use std::time::Duration;

        let gateway = GatewayMetrics::default();
        let fetch = engine::gateway::FETCH_ROUTE;
        gateway.observe("POST", fetch, 200, Duration::from_micros(800));
        gateway.observe("POST", fetch, 200, Duration::from_millis(4));
        gateway.observe("POST", fetch, 400, Duration::from_micros(80));
        let text = render(gateway.response()).await;
        let snapshot = parse_exposition("api-gateway", "gateway", &text).expect("parses");
        let route = [("method", "POST"), ("path", fetch)];
        let status = |s| [route[0], route[1], ("status", s)];
        assert_eq!(value(&snapshot, "http_requests_total", &status("200")), 2.0);
        assert_eq!(value(&snapshot, "http_errors_total", &status("400")), 1.0);
        assert_eq!(value(&snapshot, "requests_total", &[]), 3.0);
        assert_eq!(value(&snapshot, "errors_total", &[]), 1.0);
        let bucket = |le| [route[0], route[1], ("le", le)];
        let buckets = "http_request_duration_seconds_bucket";
        assert_eq!(value(&snapshot, buckets, &bucket("0.0001")), 1.0);
        assert_eq!(value(&snapshot, buckets, &bucket("0.001")), 2.0);
        assert_eq!(value(&snapshot, buckets, &bucket("0.005")), 3.0);
        assert_eq!(value(&snapshot, buckets, &bucket("+Inf")), 3.0);
        assert_eq!(
            value(&snapshot, "http_request_duration_seconds_count", &route),
            3.0
        );
        assert_eq!(value(&snapshot, "http_connections_active", &[]), 0.0);

        let engine = Arc::new(EngineMetrics::default());
        let rpc = engine.rpc("FetchMarketData");
        for code in [tonic::Code::Ok, tonic::Code::Unavailable] {
            rpc.started();
            rpc.finished(code, Duration::from_millis(2));
        }
        let text = render(engine.response()).await;
        let snapshot = parse_exposition("core-engine", "engine", &text).expect("parses");
        let method = ("method", "FetchMarketData");
        assert_eq!(
            value(
                &snapshot,
                "grpc_requests_total",
                &[method, ("status", "UNAVAILABLE")]
            ),
            1.0
        );
        assert_eq!(
            value(
                &snapshot,
                "grpc_errors_total",
                &[method, ("error_type", "unavailable")]
            ),
            1.0
        );
        assert_eq!(
            value(&snapshot, "grpc_request_duration_seconds_count", &[method]),
            2.0
        );
        assert_eq!(value(&snapshot, "request_duration_seconds_count", &[]), 2.0);
        assert_eq!(value(&snapshot, "requests_in_flight", &[]), 0.0);
    }
}
