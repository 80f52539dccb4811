//! The gateway's JSON API and its translation to and from the engine's gRPC.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::{SpanKind, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use serde::{Deserialize, Serialize};
use tonic::Code;

use super::Gateway;
use crate::core_engine::{FETCH_METHOD, FETCH_SPAN_NAME, SERVICE_NAME};
use crate::proto;
use crate::status::{code_name, http_status};
use crate::telemetry::{self, semconv};

/// Body of `POST /api/v1/market-data/fetch`; optional fields take the engine's defaults.
#[derive(Debug, Deserialize)]
pub struct FetchRequest {
    #[serde(default)]
    pub symbols: Vec<String>,
    #[serde(default)]
    pub source_id: String,
    #[serde(default)]
    pub window: u32,
    #[serde(default)]
    pub ma_periods: Vec<u32>,
    #[serde(default)]
    pub as_of_unix_ms: i64,
    #[serde(default)]
    pub request_id: String,
    /// The calling client, as real clients send it. Accepted and never recorded: it is not passed
    /// to the engine, and its `Debug` form is redacted.
    #[serde(default)]
    pub client_id: Option<Identifier>,
    /// The account the request is made for; treated like `client_id`.
    #[serde(default)]
    pub account_id: Option<Identifier>,
}

/// A client's or account's identifier: personal data, which must stay out of spans, logs and
/// metric labels. It can be read on purpose, never printed by accident.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Identifier(String);

impl Identifier {
    /// The identifier itself, for code that has a reason to read it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identifier(<redacted>)")
    }
}

#[derive(Debug, Serialize)]
pub struct FetchResponse {
    pub quotes: Vec<Quote>,
    pub source_id: String,
    pub window: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

#[derive(Debug, Serialize)]
pub struct Quote {
    pub symbol: String,
    pub currency: String,
    pub last: f64,
    pub bid: f64,
    pub ask: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub vwap: f64,
    pub volume: u64,
    pub change_percent: f64,
    pub moving_averages: Vec<MovingAverage>,
    pub tick_count: u32,
    pub window_start_unix_ms: i64,
    pub window_end_unix_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct MovingAverage {
    pub period: u32,
    pub sma: f64,
    pub ema: f64,
}

impl From<FetchRequest> for proto::FetchMarketDataRequest {
    fn from(body: FetchRequest) -> Self {
        proto::FetchMarketDataRequest {
            symbols: body.symbols,
            source_id: body.source_id,
            window: body.window,
            ma_periods: body.ma_periods,
            as_of_unix_ms: body.as_of_unix_ms,
            request_id: body.request_id,
        }
    }
}

impl From<proto::FetchMarketDataResponse> for FetchResponse {
    fn from(response: proto::FetchMarketDataResponse) -> Self {
        FetchResponse {
            quotes: response.quotes.into_iter().map(Quote::from).collect(),
            source_id: response.source_id,
            window: response.window,
            request_id: response.request_id,
        }
    }
}

impl From<proto::Quote> for Quote {
    fn from(q: proto::Quote) -> Self {
        let ohlc = q.ohlc.unwrap_or_default();
        Quote {
            symbol: q.symbol,
            currency: q.currency,
            last: q.last,
            bid: q.bid,
            ask: q.ask,
            open: ohlc.open,
            high: ohlc.high,
            low: ohlc.low,
            close: ohlc.close,
            vwap: q.vwap,
            volume: q.volume,
            change_percent: q.change_percent,
            moving_averages: q
                .moving_averages
                .into_iter()
                .map(|ma| MovingAverage {
                    period: ma.period,
                    sma: ma.sma,
                    ema: ma.ema,
                })
                .collect(),
            tick_count: q.tick_count,
            window_start_unix_ms: q.window_start_unix_ms,
            window_end_unix_ms: q.window_end_unix_ms,
        }
    }
}

/// An error answered as `{"error": {"code": ..., "message": ...}}` with a matching HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn from_grpc(status: &tonic::Status) -> Self {
        ApiError::new(
            http_status(status.code()),
            code_name(status.code()),
            status.message(),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
            }
            rejection if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
            }
            // Syntax and shape errors alike are the client's malformed JSON.
            _ => (StatusCode::BAD_REQUEST, "INVALID_JSON"),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub async fn fetch_market_data(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Json<FetchRequest>, JsonRejection>,
) -> Result<Json<FetchResponse>, ApiError> {
    let Json(body) = body?;
    let mut request = tonic::Request::new(proto::FetchMarketDataRequest::from(body));
    // Tell the engine the deadline too, so that it stops working on an answer nobody awaits.
    request.set_timeout(gateway.engine_timeout);
    let span = start_client_span(&gateway);
    if let Some(cx) = &span {
        if gateway.drop_trace_context {
            tracing::debug!("calibration: trace context withheld from the engine");
        } else {
            gateway.telemetry.inject(cx, request.metadata_mut());
        }
    }
    let mut engine = gateway.engine.clone();
    let call = engine.fetch_market_data(request);
    let called = std::time::Instant::now();
    let result = match tokio::time::timeout(gateway.engine_timeout, call).await {
        // The engine enforces the same deadline and may answer CANCELLED just before ours fires:
        // either way the deadline passed.
        Err(_) => Err(deadline_exceeded(gateway.engine_timeout)),
        Ok(Err(status))
            if status.code() == Code::Cancelled && called.elapsed() >= gateway.engine_timeout =>
        {
            Err(deadline_exceeded(gateway.engine_timeout))
        }
        Ok(result) => result,
    };
    if let Some(cx) = &span {
        let code = result
            .as_ref()
            .map_or_else(tonic::Status::code, |_| Code::Ok);
        // A client span is an error for every status but OK (RPC conventions).
        let status = match &result {
            Err(status) => SpanStatus::error(status.message().to_owned()),
            Ok(_) => SpanStatus::Unset,
        };
        telemetry::end_span(
            cx,
            [KeyValue::new(semconv::RPC_GRPC_STATUS_CODE, code as i64)],
            status,
        );
    }
    match result {
        Ok(response) => Ok(Json(response.into_inner().into())),
        Err(status) => Err(ApiError::from_grpc(&status)),
    }
}

fn deadline_exceeded(timeout: std::time::Duration) -> tonic::Status {
    tonic::Status::deadline_exceeded(format!("the engine did not answer within {timeout:?}"))
}

/// The CLIENT span around the engine call, child of the SERVER span the middleware made current.
fn start_client_span(gateway: &Gateway) -> Option<Context> {
    if !gateway.telemetry.is_enabled() {
        return None;
    }
    let mut attributes = Vec::with_capacity(3 + gateway.engine_peer.len());
    attributes.extend([
        KeyValue::new(semconv::RPC_SYSTEM, "grpc"),
        KeyValue::new(semconv::RPC_SERVICE, SERVICE_NAME),
        KeyValue::new(semconv::RPC_METHOD, FETCH_METHOD),
    ]);
    attributes.extend(gateway.engine_peer.iter().cloned());
    gateway.telemetry.start_span(
        &Context::current(),
        FETCH_SPAN_NAME,
        SpanKind::Client,
        attributes,
    )
}

/// `server.address` and `server.port` of the engine, computed once.
pub(super) fn peer_attributes(engine_url: &axum::http::Uri) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    if let Some(host) = engine_url.host() {
        attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, host.to_owned()));
    }
    if let Some(port) = engine_url.port_u16() {
        attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
    }
    attributes
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route takes POST",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identifiers_are_accepted_never_passed_on_and_never_printed() {
        let body = r#"{"symbols":["AAPL"],"client_id":"acct-42","account_id":"acct-43"}"#;
        let request: FetchRequest = serde_json::from_str(body).expect("accepted");
        assert_eq!(
            request.client_id.as_ref().map(Identifier::expose),
            Some("acct-42")
        );
        let printed = format!("{request:?}");
        assert!(!printed.contains("acct-4"), "{printed}");
        let message = format!("{:?}", proto::FetchMarketDataRequest::from(request));
        assert!(
            !message.contains("acct-4"),
            "not passed to the engine: {message}"
        );
        let plain: FetchRequest = serde_json::from_str(r#"{"symbols":["AAPL"]}"#).expect("ok");
        assert_eq!((plain.client_id, plain.account_id), (None, None));
    }
}
