//! The `requests:` section, validated: each kind's call, the values its placeholders draw from, and the outcome it expects.

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::Value;

use super::{Located, Protocol, SampleShare};

impl Call {
    /// The protocol an explicit call speaks; `None` for the bundled shorthand, which speaks
    /// `load.protocol`.
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            Call::Bundled(_) => None,
            Call::Http(_) => Some(Protocol::Http),
            Call::Grpc(_) => Some(Protocol::Grpc),
            Call::WebSocket(_) => Some(Protocol::WebSocket),
        }
    }
}

/// One kind of request in the weighted mix.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestKind {
    /// `[a-z0-9_]+`, unique within the scenario.
    pub name: String,
    /// > 0; the kind's share is `weight / sum of weights`.
    pub weight: u32,
    /// What the kind sends.
    pub call: Call,
    /// Values to draw from for each `{{var}}`. Every placeholder in `call` has values here and
    /// every variable is used.
    pub vars: Vars,
    pub expect: Expect,
    /// Threshold expressions for this kind only, unparsed, each with where it was written.
    pub thresholds: Vec<Located<String>>,
    /// This kind's trace sampling, instead of `verify.traces.sample`.
    pub trace_sample: Option<SampleShare>,
    /// Each `${NAME}` of the kind and where it is written (`file:line:col: key`), in order: an
    /// unset one is reported there when the run starts, inside a JSON body as anywhere else.
    pub env: Vec<(String, String)>,
}

/// What one request kind sends. Every string in it is a template (`scenario::template`).
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// The bundled API's shorthand (`body:`): a fetch request as JSON, sent to the gateway's
    /// route or the engine's method as `load.protocol` says.
    Bundled(Value),
    /// Any HTTP request (`http:`).
    Http(HttpCall),
    /// Any unary gRPC method (`grpc:`).
    Grpc(GrpcCall),
    /// A WebSocket subscription (`websocket:`), held open while its messages are measured.
    WebSocket(WebSocketCall),
}

/// A `websocket:` subscription: connect, send `subscribe`, read messages until the phase ends (or
/// `hold` passes), send `unsubscribe`, close.
#[derive(Clone, Debug, PartialEq)]
pub struct WebSocketCall {
    /// `ws://` or `wss://`, or a path relative to the system's target.
    pub url: Template,
    /// Sent with the upgrade request; names lower case.
    pub headers: Vec<(String, Template)>,
    /// The first message sent once connected, if any.
    pub subscribe: Option<WsMessage>,
    /// Sent before closing, if any; the connection closes with 1000 either way.
    pub unsubscribe: Option<WsMessage>,
    /// The JSON fields of a message that the measurements read; `None`: the bundled gateway's.
    pub fields: MessageFields,
    /// How long each connection is held; `None`: until the load's phases end.
    pub hold: Option<std::time::Duration>,
    /// A pause after reading each message: a slow consumer, to show a server's drop policy.
    pub read_delay: std::time::Duration,
    /// The largest message accepted, in bytes; a larger one ends the connection.
    pub max_message_bytes: usize,
    /// The client socket's receive buffer, in bytes; `None`: the kernel's default. A small one
    /// keeps a slow consumer's backlog out of the kernel, so that the server's policy shows.
    pub receive_buffer_bytes: Option<u32>,
}

/// A message a `websocket:` kind sends: a JSON value (its strings templates) or a text template.
#[derive(Clone, Debug, PartialEq)]
pub enum WsMessage {
    Json(Value),
    Text(Template),
}

/// Which top-level JSON fields of a received message carry what the measurements read. A message
/// without the event-time field is not counted as an update (an acknowledgement, say).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageFields {
    /// Nanoseconds since the Unix epoch at which the update was produced.
    pub event_time: Option<String>,
    /// A number one higher for each update of the connection's stream.
    pub sequence: Option<String>,
    /// A W3C `traceparent`, empty when the update is not traced.
    pub traceparent: Option<String>,
}

/// An `http:` request.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpCall {
    /// An HTTP method token, upper case as written (`GET`, `POST`, ...).
    pub method: String,
    /// Relative to the system's target URL, or absolute.
    pub url: Template,
    /// In the order written; names lower case.
    pub headers: Vec<(String, Template)>,
    pub body: HttpBody,
}

/// What an HTTP request carries.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpBody {
    Empty,
    /// A mapping or sequence, sent as JSON (`content-type: application/json` unless a header
    /// says otherwise); its strings are templates.
    Json(Value),
    /// A string, sent as written after rendering.
    Text(Template),
    /// `body_file:` read when the scenario is, sent as is.
    File(bytes::Bytes),
}

/// A `grpc:` call.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcCall {
    /// The method: described by a `.proto`, or still to be asked of the server.
    pub method: GrpcMethod,
    /// The request message as JSON (proto3 JSON mapping); its strings are templates.
    pub message: Value,
    /// Request metadata, names lower case.
    pub metadata: Vec<(String, Template)>,
}

/// Where a `grpc:` method's descriptors come from. Its request message can only be encoded once
/// they are known, so every stage that renders a call must say what it does with each case.
#[derive(Clone, Debug, PartialEq)]
pub enum GrpcMethod {
    /// Found in the `.proto` files compiled when the scenario was read (`proto:`), or fetched from
    /// the server's reflection service when the run started.
    Resolved(prost_reflect::MethodDescriptor),
    /// `package.Service/Method` (`reflection: true`), with where it was written: the run asks
    /// the target's reflection service for it once the system is reachable.
    Reflection(Located<String>),
}

impl GrpcMethod {
    /// `package.Service/Method`, however it is known.
    pub fn full_name(&self) -> String {
        match self {
            GrpcMethod::Resolved(method) => {
                format!("{}/{}", method.parent_service().full_name(), method.name())
            }
            GrpcMethod::Reflection(name) => name.value.clone(),
        }
    }

    /// The method's descriptors, once resolved.
    pub fn descriptor(&self) -> Option<&prost_reflect::MethodDescriptor> {
        match self {
            GrpcMethod::Resolved(method) => Some(method),
            GrpcMethod::Reflection(_) => None,
        }
    }
}

/// A string with `{{var}}` and `${NAME}` parts, and where it was written, for errors found when
/// the run renders it (an unset environment variable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    /// `file:line:col: key.path`.
    pub at: String,
}

/// The values `{{var}}` placeholders draw from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Vars {
    #[default]
    None,
    /// `vars:`: each variable drawn on its own from its list.
    Lists(BTreeMap<String, Vec<String>>),
    /// `vars_file:` (CSV with a header row, or JSON lines): one row per request, in order.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// The outcome that counts as success for a kind; anything else is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// For protocol http; 100..=599.
    pub status: u16,
    /// For protocol grpc.
    pub code: tonic::Code,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            status: 200,
            code: tonic::Code::Ok,
        }
    }
}

impl Vars {
    /// How many distinct draws are worth rendering ahead: every row of a table (up to `cap`),
    /// `cap` for lists, one when there is nothing to draw.
    pub fn variants(&self, cap: usize) -> usize {
        match self {
            Vars::None => 1,
            Vars::Lists(_) => cap,
            Vars::Rows { rows, .. } => rows.len().clamp(1, cap),
        }
    }

    /// The values of draw number `i`: row `i` of a table, or one uniform pick per list.
    pub fn draw(&self, i: usize, rng: &mut impl Rng) -> BTreeMap<String, String> {
        match self {
            Vars::None => BTreeMap::new(),
            Vars::Lists(lists) => lists
                .iter()
                .filter_map(|(name, values)| Some((name.clone(), values.choose(rng)?.clone())))
                .collect(),
            Vars::Rows { columns, rows } => rows
                .get(i % rows.len().max(1))
                .map(|row| columns.iter().cloned().zip(row.iter().cloned()).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether `name` has values.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Vars::None => false,
            Vars::Lists(lists) => lists.contains_key(name),
            Vars::Rows { columns, .. } => columns.iter().any(|c| c == name),
        }
    }
}

/// `[A-Za-z0-9_]`: variable names.
pub(crate) fn is_var_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[a-z0-9_]`: request and variable names.
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}
