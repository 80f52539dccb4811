//! The fixture files as a whole (coverage, v1/v3 parity), and [`JaegerSource`] against a local
//! HTTP server that answers as Jaeger versions do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::testing::dribble;
use crate::trace::poll::wait_for;
use crate::trace::{AttrValue, SpanId, SpanKind, SpanStatus};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jaeger/");

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

pub(super) fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn spans(answer: Result<Answer, Refusal>) -> Vec<Span> {
    match answer {
        Ok(Answer::Spans(spans)) => spans,
        other => panic!("expected spans, got {other:?}"),
    }
}

#[test]
fn every_fixture_file_has_its_test() {
    // Each of these is read by a test in v1.rs, v3.rs or here; a new file must join them.
    const TESTED: [&str; 8] = [
        "v1-fixture_otlp2jaeger-out.json",
        "v1-uimodel_ui_01.json",
        "v1v3-jaeger-ui_parser-parity-capture.json",
        "v3-jaeger-ui_getTrace-response.json",
        "v3-jaeger-ui_v3-trace-local-2.21.0.json",
        "v3-snapshots-v1.53.0_GetTrace.json",
        "v3-snapshots_GetServices.json",
        "v3-snapshots_GetTrace.json",
    ];
    let mut found: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixtures directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(found, TESTED);
}

#[test]
fn v1_and_v3_build_the_same_tree_from_the_same_stored_trace() {
    let capture = fixture_json("v1v3-jaeger-ui_parser-parity-capture.json");
    let mut legacy = spans(v1::answer(&capture["legacy"]));
    let mut current = spans(v3::answer(&capture["v3"]));
    legacy.sort_by_key(|span| span.span_id);
    current.sort_by_key(|span| span.span_id);
    assert_eq!(legacy.len(), 2);
    assert_eq!(current.len(), 2);
    for (old, new) in legacy.iter().zip(&current) {
        assert_eq!(old.trace_id, new.trace_id);
        assert_eq!(old.span_id, new.span_id);
        assert_eq!(old.parent, new.parent);
        assert_eq!(old.service, new.service);
        assert_eq!(old.name, new.name);
        assert_eq!(old.kind, new.kind);
        assert_eq!(old.start_unix_nanos, new.start_unix_nanos);
        assert_eq!(old.end_unix_nanos, new.end_unix_nanos);
        assert_eq!(old.attributes, new.attributes);
    }
    let root_id: SpanId = "d4dcb46e95b781f5".parse().expect("hex");
    let (child, root) = (&current[0], &current[1]);
    assert_eq!(root.span_id, root_id);
    assert_eq!(root.parent, None);
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.service, "test-service");
    assert_eq!(child.span_id, "41f71485ed2593e4".parse().expect("hex"));
    assert_eq!(child.parent, Some(root_id));
    assert_eq!(child.kind, SpanKind::Unspecified);
    assert_eq!(
        root.attributes.get("error"),
        Some(&AttrValue::String("true".to_owned()))
    );
    // The one difference: v1 reads the string `error` = "true" as an error, as Jaeger's UI does,
    // while Jaeger's own v3 conversion leaves the status unset.
    assert_eq!(legacy[1].status, SpanStatus::Error);
    assert_eq!(root.status, SpanStatus::Unset);
    assert_eq!(child.status, SpanStatus::Unset);
    assert_eq!(legacy[0].status, SpanStatus::Unset);
}

#[test]
fn api_names() {
    assert_eq!("auto".parse(), Ok(JaegerApi::Auto));
    assert_eq!("v3".parse(), Ok(JaegerApi::V3));
    assert_eq!("v1".parse(), Ok(JaegerApi::V1));
    let error = "V2".parse::<JaegerApi>().expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "unknown Jaeger query API \"V2\": expected auto, v3 or v1"
    );
    assert_eq!(JaegerApi::V3.to_string(), "v3");
}

#[test]
fn base_urls_are_checked() {
    let timeout = Duration::from_secs(1);
    let source = JaegerSource::new("http://127.0.0.1:16686/", JaegerApi::V3, timeout)
        .expect("valid base URL");
    assert_eq!(source.describe(), "jaeger v3 http://127.0.0.1:16686");
    let source = JaegerSource::new("http://jaeger.internal/jaeger/", JaegerApi::Auto, timeout)
        .expect("valid base URL with a path");
    assert_eq!(
        source.describe(),
        "jaeger auto http://jaeger.internal/jaeger"
    );
    JaegerSource::new("https://jaeger:16686", JaegerApi::Auto, timeout).expect("https is valid");
    for (url, problem) in [
        ("127.0.0.1:16686", "relative URL without a base"),
        ("localhost:16686", "the scheme is \"localhost\", not http"),
        ("ftp://jaeger:16686", "the scheme is \"ftp\", not http"),
        ("http://", "empty host"),
        ("not a url", "relative URL without a base"),
        ("http://jaeger:16686/?x=1", "a query or fragment"),
    ] {
        let error = JaegerSource::new(url, JaegerApi::Auto, timeout)
            .expect_err(url)
            .to_string();
        assert!(error.contains(&format!("{url:?}")), "{error}");
        assert!(error.contains(problem), "{error}");
        assert!(error.contains("expected http(s)://HOST[:PORT]"), "{error}");
    }
}

/// One canned HTTP answer.
#[derive(Clone)]
struct Canned {
    status: u16,
    content_type: &'static str,
    body: String,
    delay: Duration,
}

impl Canned {
    fn json(status: u16, body: impl ToString) -> Self {
        Canned {
            status,
            content_type: "application/json",
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// How Go's `http.Error` writes Jaeger's error bodies.
    fn text(status: u16, body: impl ToString) -> Self {
        Canned {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// The UI's page, which Jaeger serves for paths it does not know.
    fn ui_page() -> Self {
        Canned {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: "<!doctype html><html><head><title>Jaeger UI</title></head></html>".to_owned(),
            delay: Duration::ZERO,
        }
    }

    fn v3_not_found() -> Self {
        Canned::text(
            404,
            r#"{"error":{"httpCode":404,"message":"No traces found"}}"#,
        )
    }

    fn v1_not_found() -> Self {
        Canned::text(
            404,
            "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":404,\"msg\":\"trace not found\"}]}\n",
        )
    }
}

/// Answers per API, in order, the last one repeated; every request's path is recorded.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<HashMap<&'static str, VecDeque<Canned>>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn on(self, api: &'static str, answers: Vec<Canned>) -> Self {
        self.answers
            .lock()
            .expect("lock")
            .insert(api, answers.into());
        self
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    /// Serves on an ephemeral loopback port; returns the base URL.
    async fn serve(&self) -> String {
        crate::testing::serve(Router::new().fallback(answer).with_state(self.clone())).await
    }
}

async fn answer(State(script): State<Script>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    let asked = uri
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    script.requests.lock().expect("lock").push(asked);
    let api = if path.starts_with("/api/v3/traces/") {
        "v3"
    } else if path.starts_with("/api/traces/") {
        "v1"
    } else {
        "other"
    };
    let canned = {
        let mut answers = script.answers.lock().expect("lock");
        let queue = answers.entry(api).or_default();
        if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
    };
    let canned = canned.unwrap_or_else(|| Canned::text(404, "404 page not found\n"));
    tokio::time::sleep(canned.delay).await;
    let status = StatusCode::from_u16(canned.status).expect("status");
    (
        status,
        [(header::CONTENT_TYPE, canned.content_type)],
        canned.body,
    )
        .into_response()
}

const HOTROD: &str = "2ea75461946a7dd10f2c15ab36a076cb";

fn hotrod_id() -> TraceId {
    HOTROD.parse().expect("hex")
}

/// The HotROD trace with only its first resource (the frontend's 13 spans), as when the other
/// services' batches have not been exported yet.
fn hotrod_partial() -> Value {
    let mut body = fixture_json("v3-jaeger-ui_getTrace-response.json");
    let resources = body["result"]["resourceSpans"]
        .as_array_mut()
        .expect("resourceSpans");
    resources.truncate(1);
    body
}

/// `ui_01` in its envelope, with the trace id rewritten to a full 128-bit one, and only the first
/// `spans` spans.
fn ui_01_as(id: &str, spans: usize) -> String {
    let mut trace = fixture_json("v1-uimodel_ui_01.json");
    trace["spans"]
        .as_array_mut()
        .expect("spans")
        .truncate(spans);
    json!({"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": null})
        .to_string()
        .replace("\"0000000000000001\"", &format!("\"{id}\""))
}

fn jaeger_at(base: &str, api: JaegerApi) -> JaegerSource {
    JaegerSource::new(base, api, Duration::from_secs(5)).expect("source")
}

fn in_ten_seconds() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn v3_polling_sees_not_found_then_partial_then_complete() {
    let script = Script::default().on(
        "v3",
        vec![
            Canned::v3_not_found(),
            Canned::v3_not_found(),
            Canned::json(200, hotrod_partial()),
            Canned::json(200, fixture_json("v3-jaeger-ui_getTrace-response.json")),
        ],
    );
    let source = jaeger_at(&script.serve().await, JaegerApi::V3);
    let seen = Mutex::new(Vec::new());
    let polled = wait_for(&source, hotrod_id(), in_ten_seconds(), |trace| {
        seen.lock().expect("lock").push(trace.spans.len());
        trace.spans.len() == 40
    })
    .await;
    assert!(polled.complete_at.is_some(), "{:?}", polled.last_error);
    assert_eq!(polled.attempts, 4);
    assert!(polled.last_error.is_none());
    assert_eq!(*seen.lock().expect("lock"), [13, 40]);
    let trace = polled.trace.expect("trace");
    assert!(trace.spans.iter().all(|span| span.trace_id == hotrod_id()));
    assert_eq!(
        script.requests(),
        vec![format!("/api/v3/traces/{HOTROD}?raw_traces=true"); 4]
    );
}

#[tokio::test]
async fn v1_polling_sees_not_found_then_partial_then_complete() {
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let script = Script::default().on(
        "v1",
        vec![
            Canned::v1_not_found(),
            Canned::json(200, ui_01_as(id, 2)),
            Canned::json(200, ui_01_as(id, 5)),
        ],
    );
    let source = jaeger_at(&script.serve().await, JaegerApi::V1);
    let polled = wait_for(
        &source,
        id.parse().expect("hex"),
        in_ten_seconds(),
        |trace| trace.spans.len() == 5,
    )
    .await;
    assert!(polled.complete_at.is_some(), "{:?}", polled.last_error);
    assert_eq!(polled.attempts, 3);
    let trace = polled.trace.expect("trace");
    let child = &trace.spans[4];
    assert_eq!(child.parent, Some(SpanId(4)));
    assert_eq!(child.service, "service-y");
    assert_eq!(
        script.requests(),
        vec![format!("/api/traces/{id}?raw=true"); 3]
    );
}

#[tokio::test]
async fn a_trace_that_stays_partial_is_returned_at_the_deadline() {
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let script = Script::default().on("v1", vec![Canned::json(200, ui_01_as(id, 2))]);
    let source = jaeger_at(&script.serve().await, JaegerApi::V1);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let polled = wait_for(&source, id.parse().expect("hex"), deadline, |trace| {
        trace.spans.len() == 5
    })
    .await;
    assert!(polled.complete_at.is_none());
    assert!(tokio::time::Instant::now() >= deadline);
    assert_eq!(polled.trace.map(|trace| trace.spans.len()), Some(2));
}

#[tokio::test]
async fn only_the_asked_trace_is_kept() {
    let other = "00000000000000000000000000000abc";
    let mut body = fixture_json("v3-jaeger-ui_getTrace-response.json");
    let foreign = hotrod_partial()["result"]["resourceSpans"][0]
        .to_string()
        .replace(HOTROD, other);
    let foreign: Value = serde_json::from_str(&foreign).expect("json");
    body["result"]["resourceSpans"]
        .as_array_mut()
        .expect("resourceSpans")
        .push(foreign);
    let script = Script::default().on("v3", vec![Canned::json(200, body)]);
    let source = jaeger_at(&script.serve().await, JaegerApi::V3);
    let asked = source
        .fetch(hotrod_id())
        .await
        .expect("answer")
        .expect("trace");
    assert_eq!(asked.spans.len(), 40);
    let other_id: TraceId = other.parse().expect("hex");
    let rewritten = source
        .fetch(other_id)
        .await
        .expect("answer")
        .expect("trace");
    assert_eq!(rewritten.spans.len(), 13);
    assert!(rewritten.spans.iter().all(|span| span.trace_id == other_id));
    assert_eq!(source.fetch(TraceId(7)).await.expect("answer"), None);
}

#[tokio::test]
async fn auto_keeps_v3_when_it_answers_as_jaeger() {
    let script = Script::default()
        .on("v3", vec![Canned::v3_not_found()])
        .on("v1", vec![Canned::v1_not_found()]);
    let base = script.serve().await;
    let source = jaeger_at(&base, JaegerApi::Auto);
    assert_eq!(source.describe(), format!("jaeger auto {base}"));
    assert_eq!(source.fetch(TraceId(1)).await.expect("answer"), None);
    assert_eq!(source.describe(), format!("jaeger v3 {base}"));
    assert_eq!(source.fetch(TraceId(1)).await.expect("answer"), None);
    let v3_path = "/api/v3/traces/00000000000000000000000000000001?raw_traces=true";
    assert_eq!(script.requests(), [v3_path, v3_path]);
}

#[tokio::test]
async fn auto_falls_back_to_v1_when_v3_is_not_there() {
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    for v3_answer in [Canned::ui_page(), Canned::text(404, "404 page not found\n")] {
        let script = Script::default()
            .on("v3", vec![v3_answer])
            .on("v1", vec![Canned::json(200, ui_01_as(id, 5))]);
        let base = script.serve().await;
        let source = jaeger_at(&base, JaegerApi::Auto);
        let trace = source
            .fetch(id.parse().expect("hex"))
            .await
            .expect("answer");
        assert_eq!(trace.map(|trace| trace.spans.len()), Some(5));
        assert_eq!(source.describe(), format!("jaeger v1 {base}"));
        // Detected once: the second fetch goes straight to v1.
        source
            .fetch(id.parse().expect("hex"))
            .await
            .expect("answer");
        // The stored trace, not the one Jaeger's adjusters rewrite.
        let v3_path = format!("/api/v3/traces/{id}?raw_traces=true");
        let v1_path = format!("/api/traces/{id}?raw=true");
        assert_eq!(script.requests(), [v3_path, v1_path.clone(), v1_path]);
    }
}

#[tokio::test]
async fn auto_without_jaeger_says_so_and_asks_again_next_time() {
    let script = Script::default()
        .on("v3", vec![Canned::ui_page()])
        .on("v1", vec![Canned::ui_page()]);
    let base = script.serve().await;
    let source = jaeger_at(&base, JaegerApi::Auto);
    let error = source.fetch(TraceId(1)).await.expect_err("no Jaeger");
    let id = "00000000000000000000000000000001";
    let message = error.to_string();
    assert!(matches!(error, SourceError::Malformed { .. }), "{message}");
    assert!(
        message.contains(&format!("{base}/api/traces/{id}?raw=true")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "{base}/api/v3/traces/{id}?raw_traces=true (HTTP 200)"
        )),
        "{message}"
    );
    assert!(message.contains("<!doctype html>"), "{message}");
    assert_eq!(source.describe(), format!("jaeger auto {base}"));
    source.fetch(TraceId(1)).await.expect_err("no Jaeger");
    assert_eq!(script.requests().len(), 4);

    let nothing = Script::default();
    let base = nothing.serve().await;
    let error = jaeger_at(&base, JaegerApi::Auto)
        .fetch(TraceId(1))
        .await
        .expect_err("404s");
    assert!(
        matches!(&error, SourceError::Status { status: 404, url, .. } if *url == format!("{base}/api/traces/{id}?raw=true")),
        "{error}"
    );
    assert!(error.to_string().ends_with(
        "expected a Jaeger query API: /api/v3/traces did not answer with Jaeger JSON either: \
         404 page not found"
    ));
}

#[tokio::test]
async fn errors_name_the_url_what_was_expected_and_what_came() {
    let script = Script::default()
        .on("v3", vec![Canned::text(500, "upstream storage failed\n")])
        .on(
            "v1",
            vec![Canned::text(
                503,
                r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":503,"msg":"storage down"}]}"#,
            )],
        );
    let base = script.serve().await;
    let url = format!("{base}/api/v3/traces/{HOTROD}?raw_traces=true");
    let error = jaeger_at(&base, JaegerApi::V3)
        .fetch(hotrod_id())
        .await
        .expect_err("500");
    assert!(
        matches!(&error, SourceError::Status { status: 500, url: u, .. } if *u == url),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{url} answered HTTP 500, expected 200 with a Jaeger v3 result, or 404 with a Jaeger \
             v3 error object: upstream storage failed"
        )
    );
    let error = jaeger_at(&base, JaegerApi::V1)
        .fetch(hotrod_id())
        .await
        .expect_err("503");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "{base}/api/traces/{HOTROD}?raw=true answered HTTP 503"
        )),
        "{message}"
    );
    assert!(
        message.ends_with("Jaeger error 503: storage down"),
        "{message}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_the_api_json_is_malformed() {
    let mut wrong_field = fixture_json("v3-snapshots_GetTrace.json");
    wrong_field["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] =
        json!("xyz");
    let script = Script::default().on(
        "v3",
        vec![Canned::ui_page(), Canned::json(200, wrong_field)],
    );
    let base = script.serve().await;
    let source = jaeger_at(&base, JaegerApi::V3);
    let url = format!("{base}/api/v3/traces/00000000000000000000000000000001?raw_traces=true");
    let error = source.fetch(TraceId(1)).await.expect_err("HTML");
    assert_eq!(
        error.to_string(),
        format!(
            "{url}: unexpected response: expected a Jaeger v3 body ({{\"result\": …}} or \
             {{\"error\": …}}), found a body that is not JSON: <!doctype html><html><head>\
             <title>Jaeger UI</title></head></html>"
        )
    );
    let error = source.fetch(TraceId(1)).await.expect_err("bad trace id");
    assert_eq!(
        error.to_string(),
        format!(
            "{url}: unexpected response: at $.result.resourceSpans[0].scopeSpans[0].spans[0].\
             traceId: expected a trace id: 32 hex digits, or base64 of 16 bytes, found \"xyz\""
        )
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    for api in [JaegerApi::V3, JaegerApi::V1, JaegerApi::Auto] {
        let source = jaeger_at(&base, api);
        let error = source.fetch(TraceId(1)).await.expect_err("closed port");
        let SourceError::Unreachable { url, reason } = &error else {
            panic!("{api}: {error}");
        };
        assert!(url.starts_with(&format!("{base}/api/")), "{url}");
        assert!(reason.contains("connect"), "{reason}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot reach {base}/api/"))
        );
        assert_eq!(
            source.describe(),
            format!("jaeger {api} {base}"),
            "not detected"
        );
    }
}

#[tokio::test]
async fn a_slow_answer_is_unreachable_after_the_request_timeout() {
    let mut slow = Canned::v3_not_found();
    slow.delay = Duration::from_secs(5);
    let script = Script::default().on("v3", vec![slow]);
    let base = script.serve().await;
    let source =
        JaegerSource::new(&base, JaegerApi::V3, Duration::from_millis(200)).expect("source");
    let error = source.fetch(TraceId(1)).await.expect_err("timeout");
    assert!(
        matches!(&error, SourceError::Unreachable { reason, .. } if reason == "no answer within 200ms"),
        "{error}"
    );
}

/// A server whose every answer is `status` with `body`, streamed in 64 KiB chunks without a
/// length when `chunked`, each chunk after `pause`.
async fn streaming(status: StatusCode, body: Vec<u8>, chunked: bool, pause: Duration) -> String {
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move {
            if !chunked {
                return (status, [(header::CONTENT_TYPE, "application/json")], body)
                    .into_response();
            }
            (status, dribble(body, pause)).into_response()
        }
    });
    crate::testing::serve(app).await
}

/// A v3 answer padded past the limit with a huge attribute value: valid JSON, just too much.
fn oversized_answer() -> Vec<u8> {
    let mut body = br#"{"result":{"resourceSpans":[{"resource":{"attributes":[{"key":"pad","value":{"stringValue":""#.to_vec();
    body.resize(body.len() + crate::tls::MAX_API_BODY, b'x');
    body.extend_from_slice(br#""}}]},"scopeSpans":[]}]}}"#);
    body
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_refused_naming_url_and_limit() {
    for chunked in [false, true] {
        let base = streaming(StatusCode::OK, oversized_answer(), chunked, Duration::ZERO).await;
        for api in [JaegerApi::V3, JaegerApi::V1] {
            let error = jaeger_at(&base, api)
                .fetch(TraceId(1))
                .await
                .expect_err("too large");
            let text = error.to_string();
            assert!(
                matches!(&error, SourceError::Malformed { url, .. } if url.starts_with(&format!("{base}/api/"))),
                "chunked {chunked}, {api}: {text}"
            );
            for part in [
                "HTTP 200".to_owned(),
                format!(
                    "larger than the limit of {} bytes",
                    crate::tls::MAX_API_BODY
                ),
                "resourceSpans".to_owned(),
            ] {
                assert!(text.contains(&part), "{part:?} not in {text}");
            }
            assert!(
                text.len() < 1000,
                "the message quotes only the start: {text}"
            );
        }
    }
}

#[tokio::test]
async fn an_answer_within_the_limit_is_read_whole_when_streamed() {
    let body =
        serde_json::to_vec(&json!({"error": {"httpCode": 404, "message": "trace not found"}}))
            .expect("json");
    let base = streaming(StatusCode::NOT_FOUND, body, true, Duration::from_millis(5)).await;
    let fetched = jaeger_at(&base, JaegerApi::V3).fetch(TraceId(1)).await;
    assert!(matches!(fetched, Ok(None)), "{fetched:?}");
}

#[tokio::test]
async fn a_body_that_trickles_past_the_timeout_is_unreachable() {
    // The headers come at once; the body takes 20 × 100 ms.
    let base = streaming(
        StatusCode::OK,
        vec![b' '; 20 * 64 * 1024],
        true,
        Duration::from_millis(100),
    )
    .await;
    let source =
        JaegerSource::new(&base, JaegerApi::V3, Duration::from_millis(300)).expect("source");
    let started = std::time::Instant::now();
    let error = source.fetch(TraceId(1)).await.expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "{error}");
    assert!(
        matches!(&error, SourceError::Unreachable { url, reason } if reason == "no answer within 300ms" && url.starts_with(&base)),
        "{error}"
    );
}
