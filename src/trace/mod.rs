//! Trace verification: where traces come from (the embedded OTLP receiver or Jaeger's query API),
//! one normalised shape for them, and the checks run on every sampled request's trace.

pub mod jaeger;
pub mod logs;
pub mod model;
pub mod poll;
pub mod receiver;

pub use jaeger::{JaegerApi, JaegerSource};
pub(crate) use model::{AttrValue, SpanDetails, SpanEvent, SpanStatus};
pub use model::{Span, SpanId, SpanKind, Trace, TraceId};
pub use poll::{Polled, wait_for};
pub use receiver::{Receiver, ReceiverConfig, ReceiverError, ReceiverHandle, ReceiverStats};

use std::future::Future;

/// Where finished traces can be looked up by id. Two implementations: the harness's own OTLP
/// receiver and a Jaeger query API.
pub trait TraceSource: Send + Sync {
    /// What the report calls this source: `embedded OTLP receiver`, `jaeger v3 http://…`.
    fn describe(&self) -> String;

    /// The spans stored so far for `id`, or `None` when the source knows nothing of it yet. A trace
    /// still being exported comes back partial: callers poll until it is complete.
    fn fetch(&self, id: TraceId)
    -> impl Future<Output = Result<Option<Trace>, SourceError>> + Send;

    /// The caller is done with `id`. A source that keeps traces on the caller's behalf (the
    /// embedded receiver) drops its spans here, so that what it holds is bounded by the traces
    /// still awaited rather than by the run's length; a query API keeps nothing and ignores it.
    fn release(&self, _id: TraceId) {}
}

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No answer: refused, timed out or cut off.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why there was no answer (`no answer within 200ms`).
        reason: String,
    },
    /// An answer that is not the API's: a status it does not give for a trace it has or lacks, its
    /// own error object, or, when detecting the API, no Jaeger JSON on either path.
    #[error("{url} answered HTTP {status}, expected {expected}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status of the answer.
        status: u16,
        /// What the API should have answered, for the reader to tell which API was asked.
        expected: &'static str,
        /// The start of the body, or Jaeger's own error message, shortened to be quoted.
        body: String,
    },
    /// A success status with a body that is not the API's JSON, or has a field that does not fit.
    #[error("{url}: unexpected response: {detail}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What did not fit, with its JSON path.
        detail: String,
    },
}
