//! From OTLP's protobuf spans to the harness's [`Span`]: ids validated as OTLP defines them,
//! kinds and statuses by their protocol numbers, and attribute values that have no model
//! counterpart (arrays, maps, bytes) kept as JSON text.

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

use std::sync::Arc;

use super::super::model::MAX_LINKS;
use super::super::{
    AttrValue, Span, SpanDetails, SpanEvent, SpanId, SpanKind, SpanStatus, TraceId,
};

/// The ids of a span, validated as OTLP defines them: exact lengths, not all zeroes. An empty
/// parent marks a root; some exporters send eight zero bytes for it instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpanIds {
    pub(super) trace: TraceId,
    pub(super) span: SpanId,
    pub(super) parent: Option<SpanId>,
}

impl SpanIds {
    pub(super) fn of(span: &opentelemetry_proto::tonic::trace::v1::Span) -> Option<SpanIds> {
        let trace = TraceId::from_bytes(&span.trace_id).filter(|id| id.0 != 0)?;
        let id = SpanId::from_bytes(&span.span_id).filter(|id| id.0 != 0)?;
        let parent = if span.parent_span_id.is_empty() {
            None
        } else {
            Some(SpanId::from_bytes(&span.parent_span_id)?).filter(|id| id.0 != 0)
        };
        Some(SpanIds {
            trace,
            span: id,
            parent,
        })
    }
}

pub(super) fn service_name(resource: Option<&Resource>) -> String {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            any_value::Value::StringValue(name) => name.clone(),
            other => attr_value(Some(other.clone())).to_string(),
        })
        .unwrap_or_default()
}

/// A resource's attributes, once per batch, for every span it sent.
pub(super) fn resource_attributes(resource: Option<&Resource>) -> Arc<[(String, AttrValue)]> {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .map(|kv| key_value(kv.clone()))
        .collect()
}

fn key_value(kv: KeyValue) -> (String, AttrValue) {
    (kv.key, attr_value(kv.value.and_then(|v| v.value)))
}

pub(super) fn convert(
    span: opentelemetry_proto::tonic::trace::v1::Span,
    ids: SpanIds,
    service: &str,
    resource: &Arc<[(String, AttrValue)]>,
) -> Span {
    let links = span
        .links
        .iter()
        .filter_map(|link| {
            Some((
                TraceId::from_bytes(&link.trace_id)?,
                SpanId::from_bytes(&link.span_id)?,
            ))
        })
        .take(MAX_LINKS)
        .collect();
    let details = SpanDetails {
        status_message: span
            .status
            .as_ref()
            .map(|s| s.message.clone())
            .unwrap_or_default(),
        resource: Arc::clone(resource),
        events: span
            .events
            .into_iter()
            .map(|event| SpanEvent {
                name: event.name,
                attributes: event.attributes.into_iter().map(key_value).collect(),
            })
            .collect(),
        links: span
            .links
            .into_iter()
            .map(|link| link.attributes.into_iter().map(key_value).collect())
            .collect(),
    };
    Span {
        trace_id: ids.trace,
        span_id: ids.span,
        parent: ids.parent,
        service: service.to_owned(),
        name: span.name,
        kind: span_kind(span.kind),
        status: span_status(span.status.map_or(0, |status| status.code)),
        attributes: span
            .attributes
            .into_iter()
            .map(|kv| (kv.key, attr_value(kv.value.and_then(|v| v.value))))
            .collect(),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        links,
        details,
    }
}

/// Numbers from `opentelemetry.proto.trace.v1.Span.SpanKind`; unknown values read as unspecified.
pub(super) fn span_kind(kind: i32) -> SpanKind {
    match kind {
        1 => SpanKind::Internal,
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        4 => SpanKind::Producer,
        5 => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

/// Numbers from `opentelemetry.proto.trace.v1.Status.StatusCode`.
pub(super) fn span_status(code: i32) -> SpanStatus {
    match code {
        1 => SpanStatus::Ok,
        2 => SpanStatus::Error,
        _ => SpanStatus::Unset,
    }
}

pub(super) fn attr_value(value: Option<any_value::Value>) -> AttrValue {
    match value {
        Some(any_value::Value::StringValue(s)) => AttrValue::String(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        other => AttrValue::Other(json_text(other.as_ref()).to_string()),
    }
}

/// Composite values as JSON, the way OTLP/JSON spells their leaves (bytes in base64).
fn json_text(value: Option<&any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    let nested = |any: &AnyValue| json_text(any.value.as_ref());
    match value {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => J::from(s.as_str()),
        Some(any_value::Value::BoolValue(b)) => J::from(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => J::from(*d),
        Some(any_value::Value::ArrayValue(array)) => array.values.iter().map(nested).collect(),
        Some(any_value::Value::KvlistValue(list)) => J::Object(
            list.values
                .iter()
                .map(|kv: &KeyValue| {
                    let value = kv.value.as_ref().map_or(J::Null, nested);
                    (kv.key.clone(), value)
                })
                .collect(),
        ),
        Some(any_value::Value::BytesValue(bytes)) => {
            J::from(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Some(any_value::Value::StringValueStrindex(index)) => {
            serde_json::json!({ "stringValueStrindex": index })
        }
    }
}
