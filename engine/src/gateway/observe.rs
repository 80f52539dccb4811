//! The gateway's middleware: a SERVER span continuing the caller's `traceparent`, the HTTP metrics,
//! the `X-Trace-ID` response header and one access-log line per request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{FutureExt, SpanKind, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::HeaderExtractor;

use super::Gateway;
use crate::metrics::http_method_label;
use crate::telemetry::{self, semconv};

pub static X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");

/// Route label for requests that matched no route, so that unknown URLs cannot grow label sets.
const UNMATCHED_ROUTE: &str = "unmatched";

pub async fn observe(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = http_method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| {
            super::ROUTES
                .iter()
                .copied()
                .find(|r| *r == matched.as_str())
        });
    let span = start_server_span(&gateway, &request, method, route);

    let mut response = match &span {
        Some(cx) => next.run(request).with_context(cx.clone()).await,
        None => next.run(request).await,
    };

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(cx) = &span {
        if let Some(id) = telemetry::trace_id(cx).and_then(|id| HeaderValue::from_str(&id).ok()) {
            response.headers_mut().insert(X_TRACE_ID.clone(), id);
        }
        // Per the HTTP conventions a server span is an error for 5xx only: 4xx is the caller's.
        let span_status = if status >= 500 {
            SpanStatus::error(format!("HTTP {status}"))
        } else {
            SpanStatus::Unset
        };
        telemetry::end_span(
            cx,
            [KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            )],
            span_status,
        );
    }
    let path = route.unwrap_or(UNMATCHED_ROUTE);
    gateway.metrics.observe(method, path, status, elapsed);
    let _attached = span.map(Context::attach);
    tracing::info!(
        http.method = method,
        http.route = path,
        http.status = status,
        elapsed_us = elapsed.as_micros() as u64,
        "request completed"
    );
    response
}

fn start_server_span(
    gateway: &Gateway,
    request: &Request,
    method: &'static str,
    route: Option<&'static str>,
) -> Option<Context> {
    let parent = gateway
        .telemetry
        .extract(&HeaderExtractor(request.headers()))?;
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, method),
        KeyValue::new(semconv::URL_PATH, request.uri().path().to_owned()),
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(
            semconv::NETWORK_PROTOCOL_VERSION,
            protocol_version(request.version()),
        ),
    ];
    if let Some(route) = route {
        attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route));
    }
    if let Some(agent) = request
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            agent.to_owned(),
        ));
    }
    // `{method} {route}`, or the method alone when no route matched (HTTP span-name convention).
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    gateway
        .telemetry
        .start_span(&parent, name, SpanKind::Server, attributes)
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
