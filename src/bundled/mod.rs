//! The bundled system, the one this harness ships with: its service names, routes, request shape
//! and metrics rules. The rest of the harness takes these as data, so that it can serve any other
//! system.

pub mod metrics;
pub mod spans;
pub mod stream;

use hyper::Uri;

use crate::exit::RunError;
use crate::scenario::template::CanaryKind;

/// The gateway's service name, as its spans, logs and metrics name it.
pub const GATEWAY_SERVICE: &str = engine::gateway::DEFAULT_SERVICE_NAME;
/// The engine's service name.
pub const ENGINE_SERVICE: &str = engine::core_engine::DEFAULT_SERVICE_NAME;
/// Where the gateway serves its Prometheus metrics.
pub const GATEWAY_METRICS_ROUTE: &str = engine::gateway::METRICS_ROUTE;
/// The gateway's stream route (WebSocket upgrades).
pub(crate) const STREAM_ROUTE: &str = engine::gateway::STREAM_ROUTE;
/// The gateway's fetch route, the one the load drives.
pub(crate) const FETCH_ROUTE: &str = engine::gateway::FETCH_ROUTE;
/// The JSON fields of the gateway's stream updates (docs/streaming.md): a `websocket:` kind reads
/// these unless its `fields:` say otherwise.
pub(crate) const STREAM_EVENT_TIME_FIELD: &str = "event_time_unix_nanos";
/// The update's sequence, one more for each update of the connection's stream.
pub(crate) const STREAM_SEQUENCE_FIELD: &str = "sequence";
/// The update's CONSUMER span at the gateway, empty when the update is not traced.
pub(crate) const STREAM_TRACEPARENT_FIELD: &str = "traceparent";

/// The subscription's trace id, in the gateway's `subscribed` message.
pub(crate) const STREAM_SUBSCRIPTION_TRACE_FIELD: &str = "trace_id";

/// The engine's fetch method, as a gRPC request path.
pub(crate) const FETCH_METHOD_PATH: &str = "/core_engine.v1.CoreEngineService/FetchMarketData";

/// A `body:` request of the bundled shorthand, as the engine's protobuf message: the gateway's
/// JSON fields mapped as the gateway maps them.
pub(crate) fn fetch_message(body: serde_json::Value) -> Result<bytes::Bytes, serde_json::Error> {
    use prost::Message as _;
    let request: engine::gateway::FetchRequest = serde_json::from_value(body)?;
    Ok(engine::proto::FetchMarketDataRequest::from(request)
        .encode_to_vec()
        .into())
}

/// The canaries every bundled HTTP request carries, as real clients of the gateway send their
/// credentials and identity: `Authorization: Bearer <token>`, and the client's identifier in
/// `X-Client-Id` and the body's `client_id`.
pub(crate) const CLIENT_CANARIES: [CanaryKind; 2] = [CanaryKind::Token, CanaryKind::Account];

/// The body with `client_id` set to the account canary, unless the scenario sets it.
pub(crate) fn with_client_id(body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields
            .entry("client_id")
            .or_insert_with(|| format!("{{{{{}}}}}", CanaryKind::Account.var()).into());
    }
    body
}

/// `Authorization` and `X-Client-Id` from the draw's canaries, marked sensitive.
pub(crate) fn add_client_headers(
    headers: &mut hyper::HeaderMap,
    draw: &crate::scenario::template::Draw,
) -> Result<(), hyper::header::InvalidHeaderValue> {
    let canary = |kind: CanaryKind| draw.get(&kind.var()).cloned().unwrap_or_default();
    for (name, value) in [
        (
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", canary(CanaryKind::Token)),
        ),
        (
            hyper::header::HeaderName::from_static("x-client-id"),
            canary(CanaryKind::Account),
        ),
    ] {
        let mut value = hyper::header::HeaderValue::from_str(&value)?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(())
}

/// The gateway's fetch endpoint under a base URL.
pub fn fetch_url(base: Uri) -> Result<Uri, RunError> {
    let text = base.to_string();
    format!("{}{FETCH_ROUTE}", text.trim_end_matches('/'))
        .parse()
        .map_err(|e| RunError::BadInput(format!("gateway URL {text}: {e}")))
}
