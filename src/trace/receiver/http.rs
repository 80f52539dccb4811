//! The OTLP/HTTP listener: `POST /v1/traces` in protobuf or JSON, optionally gzipped, answered in
//! the request's encoding, with the `google.rpc.Status` bodies OTLP prescribes for errors. Every
//! refused request is counted, since the exporter's log is not part of the report. Bodies held at
//! once are bounded (twice the largest request); past that an export is told to retry (429).

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::sync::Semaphore;

use super::store::{Store, export_response};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// `google.rpc.Code` values used in OTLP/HTTP error bodies.
pub(super) const RPC_INVALID_ARGUMENT: i32 = 3;
const RPC_RESOURCE_EXHAUSTED: i32 = 8;
/// How long a request waits for room among the bodies being read before it is refused with 429
/// (an exporter retries it later).
const BUDGET_WAIT: Duration = Duration::from_secs(1);

/// The `/v1/traces` route; anything else is refused, and counted.
pub(super) fn router(store: Arc<Store>, max_message_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(http_export).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(HttpState {
            store,
            max_message_bytes,
            // Two of the largest bodies at once: many exports may arrive together, but the
            // memory their bodies take is bounded whatever their number.
            body_budget: Arc::new(Semaphore::new(budget_units(max_message_bytes) as usize * 2)),
        })
}

#[derive(Clone)]
struct HttpState {
    store: Arc<Store>,
    max_message_bytes: usize,
    /// Bytes of request bodies that may be held at once, as permits.
    body_budget: Arc<Semaphore>,
}

/// A body's share of the budget: its size, at most what one permit count holds.
fn budget_units(bytes: usize) -> u32 {
    u32::try_from(bytes)
        .unwrap_or(u32::MAX / 2)
        .clamp(1, u32::MAX / 2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body OTLP/HTTP prescribes for errors.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(super) code: i32,
    #[prost(string, tag = "2")]
    pub(super) message: String,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }

    fn decode(self, body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
        match self {
            Encoding::Protobuf => {
                ExportTraceServiceRequest::decode(body).map_err(|e| format!("bad protobuf: {e}"))
            }
            Encoding::Json => {
                serde_json::from_slice(body).map_err(|e| format!("bad OTLP/JSON: {e}"))
            }
        }
    }

    fn response(self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type()),
        );
        response
    }

    fn success(self, message: &ExportTraceServiceResponse) -> Response {
        let body = match self {
            Encoding::Protobuf => message.encode_to_vec(),
            // Serializing a derived struct into memory has no failure mode left.
            Encoding::Json => serde_json::to_vec(message).unwrap_or_default(),
        };
        self.response(StatusCode::OK, body)
    }

    fn error(self, status: StatusCode, message: String) -> Response {
        let code =
            if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::TOO_MANY_REQUESTS {
                RPC_RESOURCE_EXHAUSTED
            } else {
                RPC_INVALID_ARGUMENT
            };
        let body = match self {
            Encoding::Protobuf => RpcStatus { code, message }.encode_to_vec(),
            Encoding::Json => serde_json::json!({ "code": code, "message": message })
                .to_string()
                .into_bytes(),
        };
        self.response(status, body)
    }
}

async fn http_export(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let reject = || state.store.reject_request();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = match media_type(content_type).as_str() {
        PROTOBUF => Encoding::Protobuf,
        JSON => Encoding::Json,
        _ => {
            reject();
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content type {content_type:?}; send {PROTOBUF} or {JSON}\n"),
            );
        }
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().map(|s| s.trim().to_ascii_lowercase()))
    {
        None => false,
        Some(Ok(value)) if value.is_empty() || value == "identity" => false,
        Some(Ok(value)) if value == "gzip" => true,
        Some(other) => {
            reject();
            let named = other.unwrap_or_else(|_| "(not text)".to_owned());
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {named:?}; send gzip or none\n"),
            );
        }
    };

    let limit = state.max_message_bytes;
    // A plain body is held at its declared length; a gzipped or unannounced one may grow to the
    // limit. Held until the request is answered.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let holds = match declared {
        Some(length) if !gzip => length.min(limit),
        _ => limit,
    };
    let reserve = state
        .body_budget
        .clone()
        .acquire_many_owned(budget_units(holds));
    let Ok(Ok(_held)) = tokio::time::timeout(BUDGET_WAIT, reserve).await else {
        reject();
        let mut response = encoding.error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many large exports at once; retry later".to_owned(),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let body = match read_body(body, limit, gzip).await {
        Ok(body) => body,
        Err((status, message)) => {
            reject();
            return encoding.error(status, message);
        }
    };
    match encoding.decode(&body) {
        Ok(request) => encoding.success(&export_response(state.store.ingest(request))),
        Err(message) => {
            reject();
            encoding.error(StatusCode::BAD_REQUEST, message)
        }
    }
}

/// The body, decompressed, refused past `limit` bytes either way so that a small gzip bomb
/// cannot inflate into memory.
async fn read_body(body: Body, limit: usize, gzip: bool) -> Result<Vec<u8>, (StatusCode, String)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request larger than {limit} bytes"),
        )
    };
    let raw: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}"),
            ));
        }
    };
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut inflated = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(raw.as_ref())
        .take(cap)
        .read_to_end(&mut inflated)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad gzip body: {e}")))?;
    if inflated.len() > limit {
        return Err(too_large());
    }
    Ok(inflated)
}

/// `Application/JSON; charset=utf-8` -> `application/json`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn plain(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

async fn method_not_allowed(State(state): State<HttpState>) -> Response {
    state.store.reject_request();
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "OTLP/HTTP traces are POSTed\n".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found(State(state): State<HttpState>) -> Response {
    state.store.reject_request();
    plain(
        StatusCode::NOT_FOUND,
        "this receiver takes traces only, at POST /v1/traces\n".to_owned(),
    )
}

/// One OTLP/HTTP export body taken in as the listener takes it (`json` picks the encoding, `gzip`
/// the content encoding), for the fuzz targets in `fuzz/`. Every trace the request names is wanted
/// first, so that its spans go through conversion and the store's limits too. Panics only when a
/// bound or a count does not hold.
#[cfg(fuzzing)]
pub(crate) fn fuzz_export(body: &[u8], json: bool, gzip: bool) {
    use super::super::TraceId;
    use std::sync::OnceLock;
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    const LIMIT: usize = 1 << 20;
    const MAX_SPANS: usize = 4;
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    });
    let encoding = if json {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    let body = match runtime.block_on(read_body(Body::from(body.to_vec()), LIMIT, gzip)) {
        Ok(body) => body,
        Err((status, message)) => {
            drop(encoding.error(status, message));
            return;
        }
    };
    assert!(body.len() <= LIMIT, "a body past the limit was taken in");
    let request = match encoding.decode(&body) {
        Ok(request) => request,
        Err(message) => {
            drop(encoding.error(StatusCode::BAD_REQUEST, message));
            return;
        }
    };
    let config = super::ReceiverConfig {
        max_spans_per_trace: MAX_SPANS,
        max_traces: 8,
        ..super::ReceiverConfig::default()
    };
    let store = Store::new(&config, config.grpc_addr, config.http_addr);
    let ids: Vec<TraceId> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter_map(|span| TraceId::from_bytes(&span.trace_id))
        .collect();
    for &id in &ids {
        store.want(id);
    }
    drop(encoding.success(&export_response(store.ingest(request))));
    let stats = store.stats();
    assert_eq!(
        stats.spans_received,
        stats.spans_kept + stats.spans_unwanted + stats.spans_over_limit + stats.spans_rejected,
        "every span received is accounted for once"
    );
    for id in ids {
        if let Some(trace) = store.lookup(id) {
            assert!(
                trace.spans.len() <= MAX_SPANS,
                "a trace grew past its limit"
            );
            assert!(trace.spans.iter().all(|span| span.trace_id == id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(media_type("Application/JSON; charset=utf-8"), JSON);
        assert_eq!(media_type(" application/x-protobuf "), PROTOBUF);
        assert_eq!(media_type(""), "");
    }
}
