//! Protocol drivers: send one prepared request and report how it ended. Two implementations, HTTP
//! ([`super::http`]) and gRPC ([`super::grpc`]); the load core is generic over them.

use super::outcome::Outcome;
use super::sample::TraceParent;
use std::future::Future;

/// Sends one request of the load and reports how it ended.
pub trait Driver: Send + Sync + 'static {
    /// A request ready to send, prepared before the run so that sending does no rendering.
    type Payload: Send + Sync + 'static;

    /// Sends `payload`, with a `traceparent` when the request is sampled.
    fn send(
        &self,
        payload: &Self::Payload,
        trace: Option<&TraceParent>,
    ) -> impl Future<Output = Reply> + Send;
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// How the request ended.
    pub outcome: Outcome,
    /// The trace id response header, read only for sampled requests.
    pub trace_header: Option<String>,
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Self {
        Reply {
            outcome,
            trace_header: None,
        }
    }
}

/// The W3C trace context header, in HTTP headers and gRPC metadata alike.
pub(super) const TRACEPARENT: &str = "traceparent";
