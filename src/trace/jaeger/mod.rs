//! Jaeger's query API as a [`TraceSource`]: the stable v3 API (`/api/v3/traces/{id}`) or the v1
//! API of Jaeger's own UI (`/api/traces/{id}`), chosen by the user or detected once per source.
//!
//! Parsing is kept apart from HTTP ([`v3::parse`], [`v1::parse`]) so that every response shape
//! Jaeger has produced can be tested from captured bodies.

mod json;
mod probe;
pub mod v1;
pub mod v3;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderMap;

pub use json::ParseError;

use super::{SourceError, Span, Trace, TraceId, TraceSource};
use crate::tls::{BodyError, MAX_API_BODY, TlsSpec};

/// Which query API to use. `Auto` asks v3 first, since v1 is internal to Jaeger's UI and
/// losing endpoints, and falls back to v1 for Jaeger versions without v3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JaegerApi {
    /// v3, falling back to v1 when the first answer shows no v3 there.
    #[default]
    Auto,
    /// `/api/v3/traces/{id}`: the stable API, OTLP JSON.
    V3,
    /// `/api/traces/{id}`: the UI's internal API, for Jaeger versions without v3.
    V1,
}

/// A `--jaeger-api` value that is not `auto`, `v3` or `v1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Jaeger query API {0:?}: expected auto, v3 or v1")]
pub struct UnknownApi(pub String);

impl FromStr for JaegerApi {
    type Err = UnknownApi;
    fn from_str(text: &str) -> Result<Self, UnknownApi> {
        match text {
            "auto" => Ok(JaegerApi::Auto),
            "v3" => Ok(JaegerApi::V3),
            "v1" => Ok(JaegerApi::V1),
            _ => Err(UnknownApi(text.to_owned())),
        }
    }
}

impl fmt::Display for JaegerApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JaegerApi::Auto => "auto",
            JaegerApi::V3 => "v3",
            JaegerApi::V1 => "v1",
        })
    }
}

/// Why a [`JaegerSource`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum JaegerError {
    /// The Jaeger URL (`--jaeger` or the scenario's) is not an `http://` base URL (exit 2).
    #[error("Jaeger query URL {url:?}: {problem}; expected http(s)://HOST[:PORT][/BASE-PATH]")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for Jaeger: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot set up TLS for Jaeger: {0}")]
    /// The TLS files given for Jaeger could not be used (exit 2).
    Tls(#[source] crate::tls::TlsError),
}

/// What one answer of a query API says, once its JSON is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The spans in the answer, of every trace it holds: a v3 result may hold several.
    Spans(Vec<Span>),
    /// Jaeger's own error object (v3) or `errors` list (v1); `code` is the HTTP status it states.
    Error {
        /// The status Jaeger states in the body, which may differ from the response's.
        code: Option<u16>,
        /// Jaeger's message, shown as it is.
        message: String,
    },
}

/// Why a body was not read as an answer of an API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not that API's JSON at all (an HTML page, `404 page not found`): another API, or no
    /// Jaeger, serves that path. This is what detection falls back on.
    #[error("expected {expected}, found {found}")]
    Foreign {
        /// The API that was expected, as the error names it.
        expected: &'static str,
        /// What came instead: `an empty body`, or the start of the body (at most 200 characters).
        found: String,
    },
    /// That API's JSON, with a field that does not fit.
    #[error(transparent)]
    Field(#[from] ParseError),
}

impl Refusal {
    fn foreign(expected: &'static str, body: &[u8]) -> Self {
        let found = if body.iter().all(u8::is_ascii_whitespace) {
            "an empty body".to_owned()
        } else {
            format!("a body that is not JSON: {}", snippet(body))
        };
        Refusal::Foreign { expected, found }
    }

    fn foreign_value(expected: &'static str, value: &serde_json::Value) -> Self {
        let found = match value {
            serde_json::Value::Object(object) => {
                let keys: Vec<&str> = object.keys().map(String::as_str).take(5).collect();
                format!("an object with keys {keys:?}")
            }
            other => format!("JSON {}", json::shorten(&other.to_string(), 60)),
        };
        Refusal::Foreign { expected, found }
    }
}

/// The API a source speaks, once chosen or detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V3,
    V1,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::V3 => "v3",
            Version::V1 => "v1",
        }
    }

    /// The trace as stored ("raw"): without it, Jaeger's query service adjusts a trace before
    /// answering (drops duplicate spans, may shift clock-skewed ones, adds `@jaeger@warnings`
    /// attributes), which would hide from the checks what the services sent. Versions that do
    /// not know the parameter ignore it.
    fn trace_url(self, base: &str, id: TraceId) -> String {
        match self {
            Version::V3 => format!("{base}/api/v3/traces/{id}?raw_traces=true"),
            Version::V1 => format!("{base}/api/traces/{id}?raw=true"),
        }
    }

    fn parse(self, body: &[u8]) -> Result<Answer, Refusal> {
        match self {
            Version::V3 => v3::parse(body),
            Version::V1 => v1::parse(body),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Version::V3 => "200 with a Jaeger v3 result, or 404 with a Jaeger v3 error object",
            Version::V1 => {
                "200 with a Jaeger v1 envelope, or 404 with its \"trace not found\" error"
            }
        }
    }
}

/// Jaeger's query service (port 16686 by default) as a trace source.
#[derive(Debug)]
pub struct JaegerSource {
    /// Scheme, host, port and base path, without a trailing slash.
    base: String,
    client: reqwest::Client,
    request_timeout: Duration,
    /// Set at construction when the user chose, else on the first answer that tells.
    version: OnceLock<Version>,
}

impl JaegerSource {
    /// Where Jaeger's UI (and query API) is served, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `base_url` is where Jaeger's UI is served, including its base path if it has one
    /// (`http://jaeger:16686`, `http://host/jaeger`). Each request may take `request_timeout`.
    pub fn new(
        base_url: &str,
        api: JaegerApi,
        request_timeout: Duration,
    ) -> Result<Self, JaegerError> {
        let base = checked_base(base_url)?;
        let client = crate::tls::api_client(&TlsSpec::default(), HeaderMap::new())
            .map_err(JaegerError::Tls)?
            .timeout(request_timeout)
            .build()
            .map_err(JaegerError::Client)?;
        let version = match api {
            JaegerApi::Auto => OnceLock::new(),
            JaegerApi::V3 => OnceLock::from(Version::V3),
            JaegerApi::V1 => OnceLock::from(Version::V1),
        };
        Ok(JaegerSource {
            base,
            client,
            request_timeout,
            version,
        })
    }

    /// The same source over a client that trusts what `tls` says and sends `headers` (e.g. a
    /// bearer token) with every query.
    pub fn with_access(mut self, tls: &TlsSpec, headers: HeaderMap) -> Result<Self, JaegerError> {
        self.client = crate::tls::api_client(tls, headers)
            .map_err(JaegerError::Tls)?
            .timeout(self.request_timeout)
            .build()
            .map_err(JaegerError::Client)?;
        Ok(self)
    }

    async fn get(&self, version: Version, id: TraceId) -> Result<Reply, SourceError> {
        let url = version.trace_url(&self.base, id);
        let unreachable = |error: reqwest::Error| {
            let reason = if error.is_timeout() {
                format!("no answer within {:?}", self.request_timeout)
            } else {
                causes(&error.without_url())
            };
            SourceError::Unreachable {
                url: url.clone(),
                reason,
            }
        };
        let response = self.client.get(&url).send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = match crate::tls::read_body(response, MAX_API_BODY).await {
            Ok(body) => body,
            Err(BodyError::Read(error)) => return Err(unreachable(error)),
            Err(BodyError::TooLarge { limit, start }) => {
                return Err(SourceError::Malformed {
                    detail: format!(
                        "HTTP {status} with an answer larger than the limit of {limit} bytes, \
                         which no trace the harness checks comes near; it starts {}",
                        snippet(&start)
                    ),
                    url,
                });
            }
        };
        Ok(Reply { url, status, body })
    }

    /// Asks v3; if what answers is not Jaeger v3 JSON, asks v1. The API that answers as Jaeger
    /// is kept for later fetches; when neither does, the next fetch asks again.
    async fn detect(&self, id: TraceId) -> Result<Option<Trace>, SourceError> {
        let v3 = self.get(Version::V3, id).await?;
        let parsed = Version::V3.parse(&v3.body);
        if !matches!(parsed, Err(Refusal::Foreign { .. })) {
            // A concurrent fetch may have set it first, from the same server: either will do.
            let _ = self.version.set(Version::V3);
            return conclude(Version::V3, &v3, parsed, id);
        }
        let v1 = self.get(Version::V1, id).await?;
        match Version::V1.parse(&v1.body) {
            Err(Refusal::Foreign { found, .. }) if v1.status == 200 => {
                Err(SourceError::Malformed {
                    detail: format!(
                        "expected a Jaeger query API: neither this URL nor {} (HTTP {}) \
                         answered with Jaeger JSON; found {found}",
                        v3.url, v3.status
                    ),
                    url: v1.url,
                })
            }
            Err(Refusal::Foreign { .. }) => Err(SourceError::Status {
                status: v1.status,
                expected: "a Jaeger query API: /api/v3/traces did not answer with Jaeger JSON either",
                body: snippet(&v1.body),
                url: v1.url,
            }),
            parsed => {
                let _ = self.version.set(Version::V1);
                conclude(Version::V1, &v1, parsed, id)
            }
        }
    }
}

impl TraceSource for JaegerSource {
    fn describe(&self) -> String {
        let api = self.version.get().map_or("auto", |version| version.name());
        format!("jaeger {api} {}", self.base)
    }

    async fn fetch(&self, id: TraceId) -> Result<Option<Trace>, SourceError> {
        match self.version.get().copied() {
            Some(version) => {
                let reply = self.get(version, id).await?;
                conclude(version, &reply, version.parse(&reply.body), id)
            }
            None => self.detect(id).await,
        }
    }
}

/// One HTTP answer, read in full.
struct Reply {
    url: String,
    status: u16,
    body: bytes::Bytes,
}

/// What an answer means for the trace asked for: Jaeger's "not found" is `None`, as is an answer
/// holding only other traces; anything else unexpected is an error naming the URL.
fn conclude(
    version: Version,
    reply: &Reply,
    parsed: Result<Answer, Refusal>,
    id: TraceId,
) -> Result<Option<Trace>, SourceError> {
    match (reply.status, parsed) {
        (200, Ok(Answer::Spans(spans))) => Ok(only_trace(spans, id)),
        (404, Ok(Answer::Error { .. })) => Ok(None),
        (200, Err(refusal)) => Err(SourceError::Malformed {
            url: reply.url.clone(),
            detail: refusal.to_string(),
        }),
        (status, Ok(Answer::Error { code, message })) => Err(SourceError::Status {
            url: reply.url.clone(),
            status,
            expected: version.expected(),
            body: match code {
                Some(code) => format!("Jaeger error {code}: {message}"),
                None => format!("Jaeger error: {message}"),
            },
        }),
        (status, _) => Err(SourceError::Status {
            url: reply.url.clone(),
            status,
            expected: version.expected(),
            body: snippet(&reply.body),
        }),
    }
}

/// The spans of trace `id`, or `None` when there are none.
fn only_trace(spans: Vec<Span>, id: TraceId) -> Option<Trace> {
    let spans: Vec<Span> = spans
        .into_iter()
        .filter(|span| span.trace_id == id)
        .collect();
    (!spans.is_empty()).then_some(Trace { spans })
}

fn checked_base(text: &str) -> Result<String, JaegerError> {
    let bad = |problem: &str| JaegerError::BadUrl {
        url: text.to_owned(),
        problem: problem.to_owned(),
    };
    let url = Url::parse(text.trim()).map_err(|error| bad(&error.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(bad(&format!("the scheme is {other:?}, not http or https"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment has no place in a base URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// An error and its causes on one line, without the repeats that layered clients produce.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The start of a body, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    json::shorten(&text, 200)
}

/// One answer body of the v1 or v3 query API, read as a source reads it, for the fuzz targets in
/// `fuzz/`: parsed, taken as a trace lookup's answer (HTTP 200 and 404) and as a service list.
/// Panics only when the outcome contradicts the parse.
#[cfg(fuzzing)]
pub(crate) fn fuzz_answer(v3: bool, body: &[u8]) {
    let version = if v3 { Version::V3 } else { Version::V1 };
    let parsed = version.parse(body);
    if let Err(refusal) = &parsed {
        drop(refusal.to_string());
    }
    let id = match &parsed {
        Ok(Answer::Spans(spans)) => spans.first().map_or(TraceId(1), |span| span.trace_id),
        _ => TraceId(1),
    };
    for status in [200, 404] {
        let reply = Reply {
            url: "http://127.0.0.1:16686/api/traces".to_owned(),
            status,
            body: bytes::Bytes::copy_from_slice(body),
        };
        match conclude(version, &reply, parsed.clone(), id) {
            Ok(Some(trace)) => {
                assert!(!trace.spans.is_empty());
                assert!(trace.spans.iter().all(|span| span.trace_id == id));
            }
            Ok(None) => {}
            Err(error) => drop(error.to_string()),
        }
    }
    std::hint::black_box(version.is_services(body));
}
