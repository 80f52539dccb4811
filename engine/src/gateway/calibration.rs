//! Calibration faults that leak request data into telemetry, so that a checker of spans and logs
//! for personal data can be shown to catch a leak: never on unless a flag asks for it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;

use super::Gateway;
use super::api::ApiError;

/// The span attribute a copied request header is written to, as the HTTP semantic conventions
/// name captured headers: `http.request.header.<name>`.
pub(super) fn copied_header(name: &HeaderName, headers: &HeaderMap) -> Option<KeyValue> {
    let value = headers.get(name)?;
    Some(KeyValue::new(
        format!("http.request.header.{}", name.as_str()),
        String::from_utf8_lossy(value.as_bytes()).into_owned(),
    ))
}

/// Logs every API request's body at info, inside the body limits (which have already refused
/// what is too large or too slow).
pub(super) async fn log_request_body(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, gateway.body_limits.max_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("reading the body: {error}"),
            )
            .into_response();
        }
    };
    tracing::info!(body = %String::from_utf8_lossy(&bytes), "calibration: request body");
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
