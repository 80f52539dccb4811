//! The gateway's middleware: a SERVER span continuing the caller's `traceparent`, the HTTP metrics,
//! the `X-Trace-ID` response header and one access-log line per request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Version};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{FutureExt, SpanKind, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};

use super::{Gateway, ROUTES, Route, STREAM_ROUTE};
use crate::metrics::http_method_label;
use crate::telemetry::{self, semconv};

pub static X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");

/// Route label for requests that matched no route, so that unknown URLs cannot grow label sets.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Status recorded for a request whose client went away before the answer (nginx's convention).
const CLIENT_CLOSED_REQUEST: u16 = 499;

pub async fn observe(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let method = http_method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| ROUTES.iter().find(|r| r.template == matched.as_str()));
    // A subscription measures and traces itself: its SERVER span outlives the response.
    if route.is_some_and(|r| r.template == STREAM_ROUTE) && request.method() == Method::GET {
        return next.run(request).await;
    }
    let span = start_server_span(&gateway, &request, method, route);
    let mut exchange = Exchange {
        gateway: &gateway,
        span,
        method,
        path: route.map_or(UNMATCHED_ROUTE, |r| r.template),
        started: Instant::now(),
        finished: false,
    };
    let mut response = match &exchange.span {
        Some(cx) => next.run(request).with_context(cx.clone()).await,
        None => next.run(request).await,
    };
    if let Some(id) = exchange
        .span
        .as_ref()
        .and_then(telemetry::trace_id)
        .and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
    {
        response.headers_mut().insert(X_TRACE_ID.clone(), id);
    }
    exchange.finish(response.status().as_u16());
    response
}

/// Records one request's outcome exactly once: when its response is ready, or, if the client
/// disconnects first and the future is dropped, as status 499, so that every request is counted.
struct Exchange<'a> {
    gateway: &'a Gateway,
    span: Option<Context>,
    method: &'static str,
    path: &'static str,
    started: Instant,
    finished: bool,
}

impl Exchange<'_> {
    fn finish(&mut self, status: u16) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        if let Some(cx) = &self.span {
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
        self.gateway
            .metrics
            .observe(self.method, self.path, status, elapsed);
        let _attached = self.span.clone().map(Context::attach);
        tracing::info!(
            http.method = self.method,
            http.route = self.path,
            http.status = status,
            elapsed_us = elapsed.as_micros() as u64,
            "request completed"
        );
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(CLIENT_CLOSED_REQUEST);
        }
    }
}

fn start_server_span(
    gateway: &Gateway,
    request: &Request,
    method: &'static str,
    route: Option<&'static Route>,
) -> Option<Context> {
    let parent = gateway.telemetry.extract(request.headers())?;
    let path = request.uri().path();
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, method),
        // A matched route has no parameters: its template is the path, with no copy to make.
        match route {
            Some(route) => KeyValue::new(semconv::URL_PATH, route.template),
            None => KeyValue::new(semconv::URL_PATH, path.to_owned()),
        },
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(
            semconv::NETWORK_PROTOCOL_VERSION,
            protocol_version(request.version()),
        ),
    ];
    if let Some(route) = route {
        attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.template));
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
    if let Some(copied) = gateway
        .copy_header_to_span
        .as_ref()
        .and_then(|name| super::calibration::copied_header(name, request.headers()))
    {
        attributes.push(copied);
    }
    // `{method} {route}`, or the method alone when no route matched (HTTP span-name convention).
    let name: std::borrow::Cow<'static, str> = match route {
        Some(route) if request.method() == route.method => route.span_name.into(),
        Some(route) => format!("{method} {}", route.template).into(),
        None => method.into(),
    };
    gateway
        .telemetry
        .start_span(&parent, name, SpanKind::Server, attributes)
}

pub(super) fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
