//! The bundled system, the one this harness ships with: its service names, routes, request shape
//! and metrics rules. The rest of the harness takes these as data, so that it can serve any other
//! system.

pub mod metrics;
pub mod spans;
pub mod stream;

use hyper::Uri;

use crate::exit::RunError;

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

/// The gateway's fetch endpoint under a base URL.
pub fn fetch_url(base: Uri) -> Result<Uri, RunError> {
    let text = base.to_string();
    format!("{}{FETCH_ROUTE}", text.trim_end_matches('/'))
        .parse()
        .map_err(|e| RunError::BadInput(format!("gateway URL {text}: {e}")))
}
