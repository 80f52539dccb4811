//! One shape for a trace, whatever the source: ids as numbers (so that hex, zero-stripped hex and
//! base64 encodings compare equal), span kinds and statuses as enums, attributes as typed values.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A 128-bit W3C trace id. Displayed as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId(pub u128);

/// A 64-bit span id. Displayed as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanId(pub u64);

/// Why an id string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {bits}-bit hex id")]
pub struct BadId {
    pub(crate) text: String,
    pub(crate) bits: u32,
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Hex, 1 to 32 digits, any case: shorter forms are the zero-stripped encodings of old Jaeger.
impl FromStr for TraceId {
    type Err = BadId;
    fn from_str(text: &str) -> Result<Self, BadId> {
        parse_hex(text, 32).map(TraceId).ok_or_else(|| BadId {
            text: text.to_owned(),
            bits: 128,
        })
    }
}

/// Hex, 1 to 16 digits, any case.
impl FromStr for SpanId {
    type Err = BadId;
    fn from_str(text: &str) -> Result<Self, BadId> {
        parse_hex(text, 16)
            .and_then(|value| u64::try_from(value).ok())
            .map(SpanId)
            .ok_or_else(|| BadId {
                text: text.to_owned(),
                bits: 64,
            })
    }
}

fn parse_hex(text: &str, max_digits: usize) -> Option<u128> {
    let valid =
        !text.is_empty() && text.len() <= max_digits && text.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| u128::from_str_radix(text, 16).ok()).flatten()
}

impl TraceId {
    /// From the 16 big-endian bytes of OTLP protobuf (and base64 JSON); `None` for another length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| TraceId(u128::from_be_bytes(b)))
    }
}

impl SpanId {
    /// From the 8 big-endian bytes of OTLP protobuf; `None` for another length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 8]>::try_from(bytes)
            .ok()
            .map(|b| SpanId(u64::from_be_bytes(b)))
    }
}

/// OTLP span kinds (Jaeger v1 spells them as a `span.kind` tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// No kind given; a chain step never expects it.
    Unspecified,
    /// Work inside a service, neither side of a call.
    Internal,
    /// The callee's side of a synchronous call (the gateway's HTTP span, the engine's gRPC span).
    Server,
    /// The caller's side of a synchronous call (the gateway's gRPC call to the engine).
    Client,
    /// The sender's side of an asynchronous message.
    Producer,
    /// The receiver's side of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// Lower case, as scenarios and reports write it.
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SpanStatus {
    Unset,
    Ok,
    Error,
}

/// An attribute value. Arrays, maps and bytes are kept as their JSON text: checks compare
/// scalars only.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Other(String),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::String(s) | AttrValue::Other(s) => f.write_str(s),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
        }
    }
}

/// One span, with its service resolved from the resource (or Jaeger process) it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id, which children name as their parent.
    pub span_id: SpanId,
    /// `None` for a root; a parent in another process is still `Some`.
    pub parent: Option<SpanId>,
    /// The `service.name` resource attribute; empty when the source gave none.
    pub service: String,
    /// The operation, e.g. `POST /v2/quote` or `quotes.v1.Quotes/GetQuote`.
    pub name: String,
    /// Server, client, internal, producer or consumer.
    pub kind: SpanKind,
    pub(crate) status: SpanStatus,
    pub(crate) attributes: BTreeMap<String, AttrValue>,
    pub(crate) start_unix_nanos: u64,
    pub(crate) end_unix_nanos: u64,
    /// The spans it links to (OTLP links; Jaeger v1's references into other traces), up to
    /// [`MAX_LINKS`]: a message's span links to the subscription it came through.
    pub(crate) links: Vec<(TraceId, SpanId)>,
    /// What no check judges but the search for personal data reads.
    pub(crate) details: SpanDetails,
}

/// The rest of what a span carries: its status message, its resource's attributes, its events
/// and its links' attributes. Sources that do not give them leave them empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SpanDetails {
    pub(crate) status_message: String,
    /// Shared by every span the resource sent in one batch.
    pub(crate) resource: Arc<[(String, AttrValue)]>,
    pub(crate) events: Vec<SpanEvent>,
    /// Each link's attributes.
    pub(crate) links: Vec<Vec<(String, AttrValue)>>,
}

/// A span event: a name and attributes (an exception, a log record attached to the span).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SpanEvent {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, AttrValue)>,
}

/// The most links kept of one span; the spans checked here have one or two.
pub(crate) const MAX_LINKS: usize = 16;

/// The spans of one trace, in no particular order (sources do not sort them topologically).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Every span found for the trace id.
    pub spans: Vec<Span>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_as_numbers_whatever_the_encoding() {
        let short: TraceId = "0000000000000001".parse().expect("hex");
        let long: TraceId = "00000000000000000000000000000001".parse().expect("hex");
        let stripped: TraceId = "1".parse().expect("hex");
        assert_eq!(short, long);
        assert_eq!(stripped, long);
        assert_eq!(long.to_string(), "00000000000000000000000000000001");
        let upper: SpanId = "00F067AA0BA902B7".parse().expect("hex");
        assert_eq!(upper.to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn bad_ids_are_refused() {
        for text in ["", "xyz", "0123456789abcdef0123456789abcdef0", "-1", "+1"] {
            assert!(text.parse::<TraceId>().is_err(), "{text:?}");
        }
        assert!("0123456789abcdef0".parse::<SpanId>().is_err());
        assert_eq!(TraceId::from_bytes(&[0; 15]), None);
        assert_eq!(
            SpanId::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 7]),
            Some(SpanId(7))
        );
    }
}
