//! The bundled system's trace chain for a streamed update (docs/streaming.md): the gateway's
//! CONSUMER span, child of the engine's PRODUCER span, each carrying the update's sequence as its
//! message id and linking to its service's SERVER span of the subscription.

use engine::core_engine::{CONSUMER_SPAN_NAME, PRODUCER_SPAN_NAME, STREAM_SPAN_NAME};
use engine::gateway::STREAM_ROUTE;
use engine::telemetry::semconv::MESSAGING_MESSAGE_ID;

use super::{ENGINE_SERVICE, GATEWAY_SERVICE};

/// One span of the chain: which service ends it, under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpan {
    /// The service, as its spans name it.
    pub service: String,
    /// The span's name.
    pub name: String,
}

/// What a traced update's spans must be, as data for the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChain {
    /// The CONSUMER span whose id the update's `traceparent` carries.
    pub consumer: StreamSpan,
    /// Its parent, the PRODUCER span, in the same trace.
    pub producer: StreamSpan,
    /// The SERVER span of the subscription the consumer links to.
    pub consumer_link: StreamSpan,
    /// The SERVER span of the subscription the producer links to.
    pub producer_link: StreamSpan,
    /// The attribute that carries the update's sequence on both message spans.
    pub message_id: String,
}

/// The bundled gateway's and engine's chain.
pub fn chain() -> StreamChain {
    let span = |service: &str, name: String| StreamSpan {
        service: service.to_owned(),
        name,
    };
    StreamChain {
        consumer: span(GATEWAY_SERVICE, CONSUMER_SPAN_NAME.to_owned()),
        producer: span(ENGINE_SERVICE, PRODUCER_SPAN_NAME.to_owned()),
        consumer_link: span(GATEWAY_SERVICE, format!("GET {STREAM_ROUTE}")),
        producer_link: span(ENGINE_SERVICE, STREAM_SPAN_NAME.to_owned()),
        message_id: MESSAGING_MESSAGE_ID.to_owned(),
    }
}
