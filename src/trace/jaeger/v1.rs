//! The v1 query API (`GET /api/traces/{id}`), the JSON model of Jaeger's own UI: processes in a
//! map beside the spans, parents as references, kind and status as tags, times in microseconds.

use std::collections::BTreeMap;

use serde_json::Value;

use super::json::{Node, ParseError};
use super::{Answer, Refusal};
use crate::trace::model::{
    AttrValue, MAX_LINKS, Span, SpanDetails, SpanEvent, SpanId, SpanKind, SpanStatus, TraceId,
};

const SHAPE: &str = r#"a Jaeger v1 envelope ({"data": …, "errors": …})"#;
const TRACE_ID: &str = "a trace id: 1 to 32 hex digits";
const SPAN_ID: &str = "a span id: 1 to 16 hex digits";

/// Reads a whole v1 body.
pub fn parse(body: &[u8]) -> Result<Answer, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(document) => answer(&document),
        Err(_) => Err(Refusal::foreign(SHAPE, body)),
    }
}

/// Reads one v1 envelope: the spans of every trace in `data`, or else the `errors` it carries.
pub fn answer(document: &Value) -> Result<Answer, Refusal> {
    let is_envelope = document
        .as_object()
        .is_some_and(|object| object.contains_key("data") || object.contains_key("errors"));
    if !is_envelope {
        return Err(Refusal::foreign_value(SHAPE, document));
    }
    let root = Node::root(document);
    let mut spans = Vec::new();
    for trace in root.get("data").items("an array of traces")? {
        read_trace(&trace, &mut spans)?;
    }
    if spans.is_empty()
        && let Some(error) = errors(&root.get("errors"))?
    {
        return Ok(error);
    }
    Ok(Answer::Spans(spans))
}

/// `[{"code": 404, "msg": "trace not found"}]` as one error; `None` for `null` or `[]`.
fn errors(node: &Node) -> Result<Option<Answer>, ParseError> {
    let mut code = None;
    let mut messages = Vec::new();
    for error in node.items("null or an array of errors")? {
        let this_code = error.get("code").opt_u64("an HTTP status code")?;
        code = code.or(this_code.and_then(|c| u16::try_from(c).ok()));
        if let Some(message) = error.get("msg").opt_str("an error message")? {
            messages.push(message);
        }
    }
    if code.is_none() && messages.is_empty() {
        return Ok(None);
    }
    Ok(Some(Answer::Error {
        code,
        message: messages.join("; "),
    }))
}

fn read_trace(trace: &Node, spans: &mut Vec<Span>) -> Result<(), ParseError> {
    let trace_id = trace.get("traceID");
    let trace_id = match trace_id.opt_str(TRACE_ID)? {
        Some(_) => Some(hex_trace_id(&trace_id)?),
        None => None,
    };
    let processes = trace.get("processes");
    for span in trace.get("spans").items("an array of spans")? {
        spans.push(read_span(&span, trace_id, &processes)?);
    }
    Ok(())
}

fn read_span(
    span: &Node,
    trace_level_id: Option<TraceId>,
    processes: &Node,
) -> Result<Span, ParseError> {
    let trace_id = match (span.get("traceID").is_absent(), trace_level_id) {
        (true, Some(id)) => id,
        _ => hex_trace_id(&span.get("traceID"))?,
    };
    let start = micros_to_nanos(&span.get("startTime"))?;
    let duration = micros_to_nanos(&span.get("duration"))?;
    let end = start.checked_add(duration).ok_or_else(|| {
        span.get("duration")
            .fail("a duration that ends before 2554")
    })?;
    let tags = tags(&span.get("tags"))?;
    Ok(Span {
        trace_id,
        span_id: hex_span_id(&span.get("spanID"))?,
        parent: parent(&span.get("references"), trace_id)?,
        service: service(span, processes)?,
        name: span
            .get("operationName")
            .opt_str("an operation name")?
            .unwrap_or_default()
            .to_owned(),
        kind: tags.kind,
        status: tags.status,
        attributes: tags.attributes,
        start_unix_nanos: start,
        end_unix_nanos: end,
        links: links(&span.get("references"), trace_id)?,
        details: details(span, processes)?,
    })
}

fn micros_to_nanos(node: &Node) -> Result<u64, ParseError> {
    const MICROS: &str = "whole microseconds";
    node.u64(MICROS)?
        .checked_mul(1_000)
        .ok_or_else(|| node.fail(MICROS))
}

/// Hex, compared as a number: v1 writes 16 digits when the high half is zero, and before v1.16 it
/// dropped leading zeros.
fn hex_trace_id(node: &Node) -> Result<TraceId, ParseError> {
    node.str(TRACE_ID)?.parse().map_err(|_| node.fail(TRACE_ID))
}

fn hex_span_id(node: &Node) -> Result<SpanId, ParseError> {
    node.str(SPAN_ID)?.parse().map_err(|_| node.fail(SPAN_ID))
}

/// The first same-trace `CHILD_OF`, else the first same-trace `FOLLOWS_FROM`, as Jaeger's UI
/// does. References to other traces (links, in OTLP terms) are not parents.
fn parent(references: &Node, trace_id: TraceId) -> Result<Option<SpanId>, ParseError> {
    const REF_TYPE: &str = "CHILD_OF or FOLLOWS_FROM";
    let mut follows_from = None;
    for reference in references.items("an array of references")? {
        let ref_type = reference.get("refType");
        let child_of = match ref_type.str(REF_TYPE)? {
            "CHILD_OF" => true,
            "FOLLOWS_FROM" => false,
            _ => return Err(ref_type.fail(REF_TYPE)),
        };
        if hex_trace_id(&reference.get("traceID"))? != trace_id {
            continue;
        }
        let span_id = hex_span_id(&reference.get("spanID"))?;
        if child_of {
            return Ok(Some(span_id));
        }
        follows_from = follows_from.or(Some(span_id));
    }
    Ok(follows_from)
}

/// References into other traces: OTLP links, as Jaeger v1 shows them.
fn links(references: &Node, trace_id: TraceId) -> Result<Vec<(TraceId, SpanId)>, ParseError> {
    let mut links = Vec::new();
    for reference in references.items("an array of references")? {
        let other = hex_trace_id(&reference.get("traceID"))?;
        if other != trace_id && links.len() < MAX_LINKS {
            links.push((other, hex_span_id(&reference.get("spanID"))?));
        }
    }
    Ok(links)
}

/// From the trace's `processes` map by `processID`, or from a `process` embedded in the span (as
/// some dumps have it); empty when the span names no process at all.
fn service(span: &Node, processes: &Node) -> Result<String, ParseError> {
    const SERVICE: &str = "a service name";
    let process_id = span.get("processID");
    if let Some(id) = process_id.opt_str("a process id")? {
        let process = processes.get(id);
        if !process.is_absent() {
            return Ok(process.get("serviceName").str(SERVICE)?.to_owned());
        }
    }
    let embedded = span.get("process");
    if !embedded.is_absent() {
        return Ok(embedded.get("serviceName").str(SERVICE)?.to_owned());
    }
    if process_id.is_absent() {
        Ok(String::new())
    } else {
        Err(process_id.fail("the key of an entry of the trace's processes"))
    }
}

/// What v1 gives of the rest of a span: the status message (a tag), the span's logs (its
/// events: the name in the `event` field) and its process (the resource). Links' attributes
/// are not in the v1 model.
fn details(span: &Node, processes: &Node) -> Result<SpanDetails, ParseError> {
    let list = |node: &Node| -> Result<Vec<(String, AttrValue)>, ParseError> {
        let mut items = Vec::new();
        for tag in node.items("an array of tags")? {
            items.push((
                tag.get("key").str("a tag key")?.to_owned(),
                tag_value(&tag)?,
            ));
        }
        Ok(items)
    };
    let status_message = list(&span.get("tags"))?
        .into_iter()
        .find(|(key, _)| key == "otel.status_description")
        .map(|(_, value)| value.to_string())
        .unwrap_or_default();
    let mut events = Vec::new();
    for log in span.get("logs").items("an array of logs")? {
        let mut attributes = list(&log.get("fields"))?;
        let name = attributes
            .iter()
            .position(|(key, _)| key == "event")
            .map(|i| attributes.remove(i).1.to_string())
            .unwrap_or_default();
        events.push(SpanEvent { name, attributes });
    }
    let process = match span.get("processID").opt_str("a process id")? {
        Some(id) if !processes.get(id).is_absent() => processes.get(id),
        _ => span.get("process"),
    };
    // Jaeger keeps the resource's `service.name` as the process's `serviceName`, out of its tags.
    let mut resource = list(&process.get("tags"))?;
    if let Some(service) = process.get("serviceName").opt_str("a service name")?
        && !resource.iter().any(|(key, _)| key == "service.name")
    {
        resource.insert(
            0,
            (
                "service.name".to_owned(),
                AttrValue::String(service.to_owned()),
            ),
        );
    }
    Ok(SpanDetails {
        status_message,
        resource: resource.into(),
        events,
        links: Vec::new(),
    })
}

struct Tags {
    kind: SpanKind,
    status: SpanStatus,
    attributes: BTreeMap<String, AttrValue>,
}

/// Span kind and status out of their tags; every other tag is an attribute. The tags the model
/// carries as fields (`span.kind`, `otel.status_code`, a boolean `error`) are not kept twice. A
/// string `error` = `"true"` (from spans ingested through v1) counts as an error as in Jaeger's UI,
/// and stays an attribute as in the v3 API. The tags v1 makes of what OTLP keeps outside the
/// attributes (the status message, the instrumentation scope) are dropped, so that a span reads
/// the same through v1 as through v3 and the embedded receiver.
fn tags(node: &Node) -> Result<Tags, ParseError> {
    let mut kind = SpanKind::Unspecified;
    let mut error = false;
    let mut ok = false;
    let mut attributes = BTreeMap::new();
    for tag in node.items("an array of tags")? {
        let key = tag.get("key").str("a tag key")?;
        let value = tag_value(&tag)?;
        match (key, &value) {
            ("span.kind", AttrValue::String(name)) => {
                if let Some(named) = kind_named(name) {
                    kind = named;
                    continue;
                }
            }
            ("error", AttrValue::Bool(flag)) => {
                error |= *flag;
                continue;
            }
            ("error", AttrValue::String(flag)) => error |= flag == "true",
            ("otel.status_code", AttrValue::String(code)) if code == "ERROR" => {
                error = true;
                continue;
            }
            ("otel.status_code", AttrValue::String(code)) if code == "OK" => {
                ok = true;
                continue;
            }
            ("otel.status_description" | "otel.scope.name" | "otel.scope.version", _) => continue,
            _ => {}
        }
        attributes.insert(key.to_owned(), value);
    }
    let status = if error {
        SpanStatus::Error
    } else if ok {
        SpanStatus::Ok
    } else {
        SpanStatus::Unset
    };
    Ok(Tags {
        kind,
        status,
        attributes,
    })
}

fn kind_named(name: &str) -> Option<SpanKind> {
    match name {
        "server" => Some(SpanKind::Server),
        "client" => Some(SpanKind::Client),
        "producer" => Some(SpanKind::Producer),
        "consumer" => Some(SpanKind::Consumer),
        "internal" => Some(SpanKind::Internal),
        _ => None,
    }
}

/// By the tag's `type`; a missing or unknown type is read from the JSON value itself.
fn tag_value(tag: &Node) -> Result<AttrValue, ParseError> {
    let value = tag.get("value");
    Ok(match tag.get("type").opt_str("a tag type")? {
        Some("string") => AttrValue::String(value.str("a string")?.to_owned()),
        Some("bool") => AttrValue::Bool(value.bool("true or false")?),
        Some("int64") => {
            AttrValue::Int(value.i64("an int64: a number, or a decimal string beyond 2^53")?)
        }
        Some("float64") => AttrValue::Double(value.f64("a number")?),
        Some("binary") => AttrValue::Other(value.str("base64 text")?.to_owned()),
        _ => match value.value() {
            Some(Value::String(text)) => AttrValue::String(text.clone()),
            Some(Value::Bool(flag)) => AttrValue::Bool(*flag),
            Some(Value::Number(number)) => match number.as_i64() {
                Some(int) => AttrValue::Int(int),
                None => AttrValue::Double(value.f64("a number")?),
            },
            Some(other) => AttrValue::Other(other.to_string()),
            None => AttrValue::Other(String::new()),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::trace::jaeger::tests::{fixture, fixture_json};

    fn spans_of(document: &Value) -> Vec<Span> {
        match parse(document.to_string().as_bytes()) {
            Ok(Answer::Spans(spans)) => spans,
            other => panic!("expected spans, got {other:?}"),
        }
    }

    /// `ui_01.json` is one element of `data`.
    fn ui_01() -> Value {
        json!({"data": [fixture_json("v1-uimodel_ui_01.json")], "total": 0, "limit": 0,
               "offset": 0, "errors": null})
    }

    #[test]
    fn complete_envelope_from_the_otlp_transform() {
        let spans = match parse(&fixture("v1-fixture_otlp2jaeger-out.json")) {
            Ok(Answer::Spans(spans)) => spans,
            other => panic!("expected spans, got {other:?}"),
        };
        // The fixture holds the same span twice; both are kept, as the store returned them.
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0], spans[1]);
        let span = &spans[0];
        assert_eq!(
            span.trace_id,
            "83a9efd15c1c98a977e0711cc93ee28b".parse().expect("hex")
        );
        assert_eq!(span.span_id, "e127af99e3b3e074".parse().expect("hex"));
        assert_eq!(span.parent, Some("909541b92cf05311".parse().expect("hex")));
        assert_eq!(span.service, "telemetrygen");
        assert_eq!(span.name, "okey-dokey-0");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status, SpanStatus::Unset);
        assert_eq!(span.start_unix_nanos, 1_706_678_909_209_712_000);
        assert_eq!(span.end_unix_nanos - span.start_unix_nanos, 123_000);
        assert_eq!(
            span.attributes.get("peer.service"),
            Some(&AttrValue::String("telemetrygen-client".to_owned()))
        );
        assert_eq!(
            span.attributes.keys().collect::<Vec<_>>(),
            ["net.peer.ip", "peer.service"],
            "span.kind is the kind and otel.scope.name the scope, not attributes"
        );
    }

    #[test]
    fn ui_model_references_processes_and_typed_tags() {
        let spans = spans_of(&ui_01());
        assert_eq!(spans.len(), 5);
        assert!(spans.iter().all(|span| span.trace_id == TraceId(1)));
        let ids: Vec<u64> = spans.iter().map(|span| span.span_id.0).collect();
        assert_eq!(ids, [2, 2, 3, 4, 5], "a span id can repeat");

        let (first, second) = (&spans[0], &spans[1]);
        assert_eq!(first.service, "service-x");
        assert_eq!(first.parent, None);
        assert_eq!(first.status, SpanStatus::Unset);
        assert_eq!(second.name, "some-operation");
        assert_eq!(second.status, SpanStatus::Error, "error tag true");
        assert_eq!(second.kind, SpanKind::Unspecified);
        let attribute = |key: &str| second.attributes.get(key).cloned();
        assert_eq!(attribute("peer.ipv4"), Some(AttrValue::Int(23456)));
        assert_eq!(
            attribute("javascript_limit"),
            Some(AttrValue::Int(9_223_372_036_854_775_222)),
            "int64 beyond 2^53 comes as a string"
        );
        assert_eq!(attribute("temperature"), Some(AttrValue::Double(72.5)));
        assert_eq!(
            attribute("blob"),
            Some(AttrValue::Other("AAAwOQ==".to_owned()))
        );
        assert_eq!(attribute("error"), None, "the status carries it");

        assert_eq!(spans[2].parent, Some(SpanId(2)));
        assert_eq!(spans[2].service, "service-y");
        // A reference to another trace comes first and is skipped; CHILD_OF beats FOLLOWS_FROM.
        assert_eq!(spans[3].parent, Some(SpanId(2)));
        assert_eq!(spans[4].parent, Some(SpanId(4)));
        assert_eq!(spans[4].end_unix_nanos - spans[4].start_unix_nanos, 4_000);
    }

    #[test]
    fn logs_process_tags_and_the_status_message_are_kept_as_details() {
        let mut document = ui_01();
        document["data"][0]["processes"]["p1"]["tags"] =
            json!([{"key": "host.name", "type": "string", "value": "h1"}]);
        document["data"][0]["spans"][0]["tags"] =
            json!([{"key": "otel.status_description", "type": "string", "value": "boom"}]);
        let spans = spans_of(&document);
        let details = &spans[0].details;
        assert_eq!(details.status_message, "boom");
        // The process's service name is the resource's `service.name`, as in OTLP.
        let resource =
            |key: &str, value: &str| (key.to_owned(), AttrValue::String(value.to_owned()));
        assert_eq!(
            details.resource.to_vec(),
            [
                resource("service.name", "service-x"),
                resource("host.name", "h1")
            ]
        );
        let events: Vec<(&str, usize)> = details
            .events
            .iter()
            .map(|e| (e.name.as_str(), e.attributes.len()))
            .collect();
        assert_eq!(events, [("some-event", 0), ("", 1)]);
    }

    #[test]
    fn follows_from_is_the_parent_when_there_is_no_child_of() {
        let mut document = ui_01();
        document["data"][0]["spans"][3]["references"] = json!([
            {"refType": "CHILD_OF", "traceID": "00000000000000ff", "spanID": "00000000000000ff"},
            {"refType": "FOLLOWS_FROM", "traceID": "0000000000000001", "spanID": "0000000000000003"},
            {"refType": "FOLLOWS_FROM", "traceID": "0000000000000001", "spanID": "0000000000000002"}
        ]);
        assert_eq!(spans_of(&document)[3].parent, Some(SpanId(3)));
        document["data"][0]["spans"][3]["references"] = json!([
            {"refType": "FOLLOWS_FROM", "traceID": "0000000000000001", "spanID": "0000000000000003"},
            {"refType": "CHILD_OF", "traceID": "0000000000000001", "spanID": "0000000000000002"}
        ]);
        assert_eq!(
            spans_of(&document)[3].parent,
            Some(SpanId(2)),
            "CHILD_OF comes first"
        );
        document["data"][0]["spans"][3]["references"] = json!([
            {"refType": "CHILD_OF", "traceID": "00000000000000ff", "spanID": "00000000000000ff"}
        ]);
        assert_eq!(spans_of(&document)[3].parent, None, "only another trace");
        // References into other traces are its links.
        assert_eq!(
            spans_of(&document)[3].links,
            [(crate::trace::TraceId(0xff), SpanId(0xff))]
        );
    }

    #[test]
    fn embedded_process_long_ids_and_otel_status_tags() {
        let mut document = ui_01();
        let span = &mut document["data"][0]["spans"][2];
        span.as_object_mut().expect("object").remove("processID");
        span["process"] = json!({"serviceName": "embedded", "tags": []});
        span["traceID"] = json!("00000000000000000000000000000001");
        span["tags"] = json!([
            {"key": "otel.status_code", "type": "string", "value": "OK"},
            {"key": "span.kind", "type": "string", "value": "client"}
        ]);
        document["data"][0]["spans"][3]["tags"] = json!([
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "otel.status_description", "type": "string", "value": "boom"}
        ]);
        let spans = spans_of(&document);
        assert_eq!(spans[2].service, "embedded");
        assert_eq!(spans[2].trace_id, TraceId(1));
        assert_eq!(
            (spans[2].kind, spans[2].status),
            (SpanKind::Client, SpanStatus::Ok)
        );
        assert!(spans[2].attributes.is_empty());
        assert_eq!(spans[3].status, SpanStatus::Error);
        assert!(
            spans[3].attributes.is_empty(),
            "the status message is the status's, as in v3: {:?}",
            spans[3].attributes
        );
    }

    #[test]
    fn not_found_envelope_is_an_error_answer() {
        let body = b"{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":404,\"msg\":\"trace not found\"}]}\n";
        assert_eq!(
            parse(body),
            Ok(Answer::Error {
                code: Some(404),
                message: "trace not found".to_owned()
            })
        );
        let empty = br#"{"data":[],"total":0,"limit":0,"offset":0,"errors":null}"#;
        assert_eq!(parse(empty), Ok(Answer::Spans(vec![])));
    }

    #[test]
    fn what_is_not_v1_is_foreign() {
        for body in [
            &b"<!doctype html><html></html>"[..],
            b"404 page not found",
            br#"{"result":{"resourceSpans":[]}}"#,
            br#"{"error":{"httpCode":404,"message":"No traces found"}}"#,
        ] {
            assert!(
                matches!(parse(body), Err(Refusal::Foreign { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_wrong_field_is_refused_with_its_path() {
        let mut document = ui_01();
        document["data"][0]["spans"][1]["tags"][1]["value"] = json!("23x");
        assert_eq!(
            parse(document.to_string().as_bytes()).map_err(|r| r.to_string()),
            Err(
                "at $.data[0].spans[1].tags[1].value: expected an int64: a number, or a decimal \
                 string beyond 2^53, found \"23x\""
                    .to_owned()
            )
        );
        let mut document = ui_01();
        document["data"][0]["spans"][2]["processID"] = json!("p9");
        let refused = parse(document.to_string().as_bytes());
        assert!(
            matches!(&refused, Err(Refusal::Field(e)) if e.path == "$.data[0].spans[2].processID" && e.found == "\"p9\""),
            "{refused:?}"
        );
        let mut document = ui_01();
        document["data"][0]["spans"][4]["references"][0]["refType"] = json!("PARENT");
        let refused = parse(document.to_string().as_bytes());
        assert!(
            matches!(&refused, Err(Refusal::Field(e)) if e.path == "$.data[0].spans[4].references[0].refType"),
            "{refused:?}"
        );
        let mut document = ui_01();
        document["data"][0]["spans"][0]["startTime"] = json!(-1);
        assert!(matches!(
            parse(document.to_string().as_bytes()),
            Err(Refusal::Field(_))
        ));
    }
}
