//! Both metrics sources against a local server that answers too much, too slowly or the wrong
//! thing: every read is bounded in size and time, and the error names the URL and what came.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::{MetricsError, MetricsSource, PrometheusSource, ScrapeSource};
use crate::testing::{dribble, serve};
use crate::tls::MAX_API_BODY;

/// A server answering every path with `status`, `content_type` and `body`, the body streamed in
/// 64 KiB chunks (no length announced) each after `pause`.
async fn answering(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    pause: Duration,
) -> String {
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                status,
                [(header::CONTENT_TYPE, content_type)],
                dribble(body, pause),
            )
                .into_response()
        }
    });
    serve(app).await
}

const TEXT: &str = "text/plain; version=0.0.4";
const JSON: &str = "application/json";

/// An exposition of valid lines, just past the limit.
fn huge_exposition() -> Vec<u8> {
    let mut body = Vec::new();
    let mut i = 0;
    while body.len() <= MAX_API_BODY {
        body.extend_from_slice(format!("series_{i} 1\n").as_bytes());
        i += 1;
    }
    body
}

fn scrape(url: &str, timeout: Duration) -> ScrapeSource {
    ScrapeSource::new(vec![("svc".to_owned(), url.to_owned())])
        .expect("source")
        .with_timeout(timeout)
}

#[tokio::test]
async fn an_exposition_over_the_limit_is_refused_naming_url_and_limit() {
    let base = answering(StatusCode::OK, TEXT, huge_exposition(), Duration::ZERO).await;
    let url = format!("{base}/metrics");
    let error = scrape(&url, Duration::from_secs(10))
        .snapshot()
        .await
        .expect_err("too large");
    assert!(matches!(error, MetricsError::TooLarge { .. }), "{error}");
    let text = error.to_string();
    for part in [
        format!("GET {url} answered HTTP 200"),
        format!("more than {MAX_API_BODY} bytes"),
        "series_0 1".to_owned(),
    ] {
        assert!(text.contains(&part), "{part:?} not in {text}");
    }
    assert!(text.len() < 600, "only the start is quoted: {text}");
    // Within the limit, the same server's answer is read whole.
    let base = answering(
        StatusCode::OK,
        TEXT,
        b"series_0 1\n".to_vec(),
        Duration::ZERO,
    )
    .await;
    let snapshot = scrape(&format!("{base}/metrics"), Duration::from_secs(10))
        .snapshot()
        .await
        .expect("small exposition");
    assert_eq!(snapshot[0].sum("series_0", &[]), 1.0);
}

#[tokio::test]
async fn a_prometheus_answer_over_the_limit_is_refused() {
    let mut body =
        br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pad":""#
            .to_vec();
    body.resize(body.len() + MAX_API_BODY, b'x');
    body.extend_from_slice(br#""},"value":[1,"1"]}]}}"#);
    let base = answering(StatusCode::OK, JSON, body, Duration::ZERO).await;
    let error = PrometheusSource::new(&base, Vec::new())
        .expect("source")
        .query("up")
        .await
        .expect_err("too large");
    let text = error.to_string();
    assert!(
        matches!(error, MetricsError::TooLarge { status: 200, .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("GET {base}/api/v1/query?query=up")),
        "{text}"
    );
    assert!(text.contains("resultType"), "{text}");
}

#[tokio::test]
async fn a_body_that_trickles_past_the_timeout_fails_in_time() {
    let body = vec![b'#'; 20 * 64 * 1024];
    let base = answering(
        StatusCode::OK,
        TEXT,
        body.clone(),
        Duration::from_millis(100),
    )
    .await;
    let started = Instant::now();
    let error = scrape(&format!("{base}/metrics"), Duration::from_millis(300))
        .snapshot()
        .await
        .expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "{error}");
    assert!(
        error.to_string().contains("no answer within 300ms") && error.to_string().contains(&base),
        "{error}"
    );
    let base = answering(StatusCode::OK, JSON, body, Duration::from_millis(100)).await;
    let started = Instant::now();
    let error = PrometheusSource::new(&base, Vec::new())
        .expect("source")
        .with_timeout(Duration::from_millis(300))
        .query("1")
        .await
        .expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "{error}");
    assert!(
        error.to_string().contains("no answer within 300ms"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_answer_names_the_url_status_and_start() {
    let base = answering(
        StatusCode::BAD_GATEWAY,
        "text/html",
        b"<html>upstream down</html>".to_vec(),
        Duration::ZERO,
    )
    .await;
    let url = format!("{base}/metrics");
    let error = scrape(&url, Duration::from_secs(5))
        .snapshot()
        .await
        .expect_err("502");
    let text = error.to_string();
    assert!(
        text.contains(&format!("GET {url} answered HTTP 502")),
        "{text}"
    );
    assert!(text.contains("upstream down"), "{text}");
    let error = PrometheusSource::new(&base, Vec::new())
        .expect("source")
        .query("1")
        .await
        .expect_err("502");
    let text = error.to_string();
    assert!(
        text.contains("HTTP 502") && text.contains("upstream down"),
        "{text}"
    );
}
