//! The v3 query API (`GET /api/v3/traces/{id}`): OTLP JSON in a `result` wrapper, in each encoding
//! Jaeger has used for it: hex ids (v1.54 and later) or base64 ids, enums as numbers or as names,
//! 64-bit integers as strings, and default values left out.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use super::json::{Node, ParseError};
use super::{Answer, Refusal};
use crate::trace::model::{
    AttrValue, MAX_LINKS, Span, SpanDetails, SpanEvent, SpanId, SpanKind, SpanStatus, TraceId,
};

const SHAPE: &str = r#"a Jaeger v3 body ({"result": …} or {"error": …})"#;

/// Reads a whole v3 body. Jaeger up to v1.53 streamed one `{"result": …}` object per chunk, so
/// several concatenated objects are accepted and their spans joined.
pub fn parse(body: &[u8]) -> Result<Answer, Refusal> {
    let mut spans = Vec::new();
    let mut documents = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let first = match documents.next() {
        Some(Ok(document)) => document,
        _ => return Err(Refusal::foreign(SHAPE, body)),
    };
    match answer(&first)? {
        Answer::Spans(more) => spans.extend(more),
        error @ Answer::Error { .. } => return Ok(error),
    }
    for document in documents {
        let document = document.map_err(|error| ParseError {
            path: "$".to_owned(),
            expected: "a further JSON object of a streamed answer",
            found: error.to_string(),
        })?;
        match answer(&document) {
            Ok(Answer::Spans(more)) => spans.extend(more),
            Ok(error @ Answer::Error { .. }) => return Ok(error),
            Err(Refusal::Foreign { .. }) => {
                return Err(Node::root(&document).fail(SHAPE).into());
            }
            Err(refusal) => return Err(refusal),
        }
    }
    Ok(Answer::Spans(spans))
}

/// Reads one v3 JSON object: the spans of its `result` (of every trace in it), or its `error`.
pub fn answer(document: &Value) -> Result<Answer, Refusal> {
    let Some(object) = document.as_object() else {
        return Err(Refusal::foreign_value(SHAPE, document));
    };
    let root = Node::root(document);
    if let Some(Value::Object(_)) = object.get("error") {
        return Ok(error(&root.get("error"))?);
    }
    let result = if object.contains_key("result") {
        root.get("result")
    } else if object.contains_key("resourceSpans") {
        root
    } else {
        return Err(Refusal::foreign_value(SHAPE, document));
    };
    Ok(Answer::Spans(spans(&result)?))
}

fn error(node: &Node) -> Result<Answer, ParseError> {
    const CODE: &str = "an HTTP status code";
    // v2 writes camelCase, the grpc-gateway of v1.53 and before snake_case.
    let code = match node.get("httpCode").opt_u64(CODE)? {
        Some(code) => Some(code),
        None => node.get("http_code").opt_u64(CODE)?,
    };
    let message = node.get("message").opt_str("an error message")?;
    Ok(Answer::Error {
        code: code.and_then(|code| u16::try_from(code).ok()),
        message: message.unwrap_or_default().to_owned(),
    })
}

fn spans(result: &Node) -> Result<Vec<Span>, ParseError> {
    if !result.is_absent() && !result.value().is_some_and(Value::is_object) {
        return Err(result.fail("an object with resourceSpans"));
    }
    let mut spans = Vec::new();
    for resource_spans in result
        .get("resourceSpans")
        .items("an array of resource spans")?
    {
        let service = service_name(&resource_spans.get("resource").get("attributes"))?;
        let resource: std::sync::Arc<[(String, AttrValue)]> =
            attributes(&resource_spans.get("resource").get("attributes"))?
                .into_iter()
                .collect();
        for scope_spans in resource_spans
            .get("scopeSpans")
            .items("an array of scope spans")?
        {
            for span in scope_spans.get("spans").items("an array of spans")? {
                let mut read = read_span(&span, &service)?;
                read.details = details(&span, &resource)?;
                spans.push(read);
            }
        }
    }
    Ok(spans)
}

/// The `service.name` resource attribute, empty when there is none.
fn service_name(attributes: &Node) -> Result<String, ParseError> {
    for attribute in attributes.items("an array of resource attributes")? {
        if attribute.get("key").str("an attribute key")? == "service.name" {
            return Ok(any_value(&attribute.get("value"))?.to_string());
        }
    }
    Ok(String::new())
}

fn read_span(span: &Node, service: &str) -> Result<Span, ParseError> {
    const NANOS: &str = "nanoseconds since the Unix epoch as a decimal string";
    let parent = span.get("parentSpanId");
    let parent = match parent.opt_str(SPAN_ID)? {
        None | Some("") => None,
        Some(_) => Some(span_id(&parent)?).filter(|id| id.0 != 0),
    };
    Ok(Span {
        trace_id: trace_id(&span.get("traceId"))?,
        span_id: span_id(&span.get("spanId"))?,
        parent,
        service: service.to_owned(),
        name: span
            .get("name")
            .opt_str("a span name")?
            .unwrap_or_default()
            .to_owned(),
        kind: kind(&span.get("kind"))?,
        status: status(&span.get("status").get("code"))?,
        attributes: attributes(&span.get("attributes"))?,
        start_unix_nanos: span.get("startTimeUnixNano").opt_u64(NANOS)?.unwrap_or(0),
        end_unix_nanos: span.get("endTimeUnixNano").opt_u64(NANOS)?.unwrap_or(0),
        links: links(&span.get("links"))?,
        details: SpanDetails::default(),
    })
}

const TRACE_ID: &str = "a trace id: 32 hex digits, or base64 of 16 bytes";
const SPAN_ID: &str = "a span id: 16 hex digits, or base64 of 8 bytes";

/// Hex since v1.54, base64 before: 32 characters against 24, so the length tells them apart.
/// A span's `links`, up to the model's bound.
fn links(node: &Node) -> Result<Vec<(TraceId, SpanId)>, ParseError> {
    let mut links = Vec::new();
    for link in node.items("an array of links")? {
        if links.len() < MAX_LINKS {
            links.push((
                trace_id(&link.get("traceId"))?,
                span_id(&link.get("spanId"))?,
            ));
        }
    }
    Ok(links)
}

fn trace_id(node: &Node) -> Result<TraceId, ParseError> {
    let text = node.str(TRACE_ID)?;
    let id = if text.len() == 32 {
        text.parse().ok()
    } else {
        BASE64
            .decode(text)
            .ok()
            .and_then(|bytes| TraceId::from_bytes(&bytes))
    };
    id.ok_or_else(|| node.fail(TRACE_ID))
}

/// 16 hex characters against 12 of base64.
fn span_id(node: &Node) -> Result<SpanId, ParseError> {
    let text = node.str(SPAN_ID)?;
    let id = if text.len() == 16 {
        text.parse().ok()
    } else {
        BASE64
            .decode(text)
            .ok()
            .and_then(|bytes| SpanId::from_bytes(&bytes))
    };
    id.ok_or_else(|| node.fail(SPAN_ID))
}

fn kind(node: &Node) -> Result<SpanKind, ParseError> {
    let kind = match node.value() {
        None | Some(Value::Null) => Some(SpanKind::Unspecified),
        Some(Value::Number(number)) => number.as_u64().and_then(|number| match number {
            0 => Some(SpanKind::Unspecified),
            1 => Some(SpanKind::Internal),
            2 => Some(SpanKind::Server),
            3 => Some(SpanKind::Client),
            4 => Some(SpanKind::Producer),
            5 => Some(SpanKind::Consumer),
            _ => None,
        }),
        Some(Value::String(name)) => match name.as_str() {
            "SPAN_KIND_UNSPECIFIED" => Some(SpanKind::Unspecified),
            "SPAN_KIND_INTERNAL" => Some(SpanKind::Internal),
            "SPAN_KIND_SERVER" => Some(SpanKind::Server),
            "SPAN_KIND_CLIENT" => Some(SpanKind::Client),
            "SPAN_KIND_PRODUCER" => Some(SpanKind::Producer),
            "SPAN_KIND_CONSUMER" => Some(SpanKind::Consumer),
            _ => None,
        },
        Some(_) => None,
    };
    kind.ok_or_else(|| node.fail("a span kind: 0 to 5, or SPAN_KIND_*"))
}

fn status(code: &Node) -> Result<SpanStatus, ParseError> {
    let status = match code.value() {
        None | Some(Value::Null) => Some(SpanStatus::Unset),
        Some(Value::Number(number)) => number.as_u64().and_then(|number| match number {
            0 => Some(SpanStatus::Unset),
            1 => Some(SpanStatus::Ok),
            2 => Some(SpanStatus::Error),
            _ => None,
        }),
        Some(Value::String(name)) => match name.as_str() {
            "STATUS_CODE_UNSET" => Some(SpanStatus::Unset),
            "STATUS_CODE_OK" => Some(SpanStatus::Ok),
            "STATUS_CODE_ERROR" => Some(SpanStatus::Error),
            _ => None,
        },
        Some(_) => None,
    };
    status.ok_or_else(|| code.fail("a status code: 0 to 2, or STATUS_CODE_*"))
}

/// The status message, events and links of an OTLP/JSON span, for the search for personal data.
fn details(
    span: &Node,
    resource: &std::sync::Arc<[(String, AttrValue)]>,
) -> Result<SpanDetails, ParseError> {
    let list = |node: &Node| -> Result<Vec<(String, AttrValue)>, ParseError> {
        Ok(attributes(node)?.into_iter().collect())
    };
    let mut events = Vec::new();
    for event in span.get("events").items("an array of span events")? {
        events.push(SpanEvent {
            name: event
                .get("name")
                .opt_str("an event name")?
                .unwrap_or_default()
                .to_owned(),
            attributes: list(&event.get("attributes"))?,
        });
    }
    let mut links = Vec::new();
    for link in span.get("links").items("an array of span links")? {
        links.push(list(&link.get("attributes"))?);
    }
    Ok(SpanDetails {
        status_message: span
            .get("status")
            .get("message")
            .opt_str("a status message")?
            .unwrap_or_default()
            .to_owned(),
        resource: std::sync::Arc::clone(resource),
        events,
        links,
    })
}

fn attributes(node: &Node) -> Result<BTreeMap<String, AttrValue>, ParseError> {
    let mut attributes = BTreeMap::new();
    for attribute in node.items("an array of attributes")? {
        let key = attribute.get("key").str("an attribute key")?;
        attributes.insert(key.to_owned(), any_value(&attribute.get("value"))?);
    }
    Ok(attributes)
}

/// The members an OTLP `AnyValue` may have; exactly one is set, none for an empty value.
#[derive(Clone, Copy)]
enum Any {
    String,
    Bool,
    Int,
    Double,
    Bytes,
    Array,
    KvList,
}

const ANY_VALUE: &str = "an AnyValue object (stringValue, boolValue, intValue, doubleValue, \
                         bytesValue, arrayValue or kvlistValue)";
const INT: &str = "an int64 as a decimal string";
const DOUBLE: &str = "a number";
const BYTES: &str = "base64 text";

fn which<'a, 'q>(node: &'q Node<'a, '_>) -> Result<Option<(Any, Node<'a, 'q>)>, ParseError> {
    const MEMBERS: [(&str, Any); 7] = [
        ("stringValue", Any::String),
        ("boolValue", Any::Bool),
        ("intValue", Any::Int),
        ("doubleValue", Any::Double),
        ("bytesValue", Any::Bytes),
        ("arrayValue", Any::Array),
        ("kvlistValue", Any::KvList),
    ];
    let Some(Value::Object(members)) = node.value() else {
        return if node.is_absent() {
            Ok(None)
        } else {
            Err(node.fail(ANY_VALUE))
        };
    };
    Ok(MEMBERS
        .into_iter()
        .find(|(name, _)| members.contains_key(*name))
        .map(|(name, any)| (any, node.get(name))))
}

/// Scalars as themselves; bytes as their base64 text; arrays and maps as plain JSON text
/// (`["a",1]`, `{"k":"v"}`); an empty value as an empty [`AttrValue::Other`].
fn any_value(node: &Node) -> Result<AttrValue, ParseError> {
    Ok(match which(node)? {
        None => AttrValue::Other(String::new()),
        Some((Any::String, value)) => AttrValue::String(value.str("a string")?.to_owned()),
        Some((Any::Bool, value)) => AttrValue::Bool(value.bool("true or false")?),
        Some((Any::Int, value)) => AttrValue::Int(value.i64(INT)?),
        Some((Any::Double, value)) => AttrValue::Double(value.f64(DOUBLE)?),
        Some((Any::Bytes, value)) => AttrValue::Other(value.str(BYTES)?.to_owned()),
        Some((Any::Array | Any::KvList, _)) => AttrValue::Other(plain(node)?.to_string()),
    })
}

/// An `AnyValue` as the JSON it stands for.
fn plain(node: &Node) -> Result<Value, ParseError> {
    Ok(match which(node)? {
        None => Value::Null,
        Some((Any::String, value)) => Value::String(value.str("a string")?.to_owned()),
        Some((Any::Bool, value)) => Value::Bool(value.bool("true or false")?),
        Some((Any::Int, value)) => Value::from(value.i64(INT)?),
        Some((Any::Double, value)) => {
            let double = value.f64(DOUBLE)?;
            Number::from_f64(double)
                .map_or_else(|| Value::String(double.to_string()), Value::Number)
        }
        Some((Any::Bytes, value)) => Value::String(value.str(BYTES)?.to_owned()),
        Some((Any::Array, value)) => Value::Array(
            value
                .get("values")
                .items("an array of AnyValues")?
                .map(|item| plain(&item))
                .collect::<Result<_, _>>()?,
        ),
        Some((Any::KvList, value)) => {
            let mut map = Map::new();
            for pair in value.get("values").items("an array of key-value pairs")? {
                let key = pair.get("key").str("a key")?;
                map.insert(key.to_owned(), plain(&pair.get("value"))?);
            }
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::trace::jaeger::tests::{fixture, fixture_json};

    fn spans_of(body: &[u8]) -> Vec<Span> {
        match parse(body) {
            Ok(Answer::Spans(spans)) => spans,
            other => panic!("expected spans, got {other:?}"),
        }
    }

    fn by_id(spans: &[Span], id: &str) -> Span {
        let id: SpanId = id.parse().expect("hex span id");
        let mut found = spans.iter().filter(|span| span.span_id == id);
        let span = found.next().unwrap_or_else(|| panic!("no span {id}"));
        assert!(found.next().is_none(), "span {id} twice");
        span.clone()
    }

    #[test]
    fn current_snapshot_hex_ids_integer_enums_root_without_parent_key() {
        let spans = spans_of(&fixture("v3-snapshots_GetTrace.json"));
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.trace_id, TraceId(1));
        assert_eq!(span.span_id, SpanId(2));
        assert_eq!(span.parent, None);
        assert_eq!(span.name, "foobar");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(span.service, "", "the resource has no attributes");
        assert_eq!((span.start_unix_nanos, span.end_unix_nanos), (0, 0));
        assert!(span.attributes.is_empty());
    }

    #[test]
    fn legacy_snapshot_base64_ids_enum_names_empty_parent() {
        let spans = spans_of(&fixture("v3-snapshots-v1.53.0_GetTrace.json"));
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        // "AAAAAAAAAJYAAAAAAAAAoA==" is 0x96 in the high half and 0xa0 in the low half.
        assert_eq!(span.trace_id, TraceId((0x96 << 64) | 0xa0));
        assert_eq!(span.span_id, SpanId(0xb4));
        assert_eq!(span.parent, None);
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(span.start_unix_nanos, 11_651_379_494_838_206_464);
    }

    #[test]
    fn hotrod_trace_of_forty_spans_and_six_services() {
        let spans = spans_of(&fixture("v3-jaeger-ui_getTrace-response.json"));
        assert_eq!(spans.len(), 40);
        let trace: TraceId = "2ea75461946a7dd10f2c15ab36a076cb".parse().expect("hex");
        assert!(spans.iter().all(|span| span.trace_id == trace));
        let services: std::collections::BTreeSet<&str> =
            spans.iter().map(|span| span.service.as_str()).collect();
        assert_eq!(
            services.into_iter().collect::<Vec<_>>(),
            [
                "customer",
                "driver",
                "frontend",
                "mysql",
                "redis-manual",
                "route"
            ]
        );
        let roots: Vec<&Span> = spans.iter().filter(|span| span.parent.is_none()).collect();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].span_id, "c8d93156b47cd010".parse().expect("hex"));
        assert_eq!(roots[0].name, "GET /dispatch");
        assert_eq!(roots[0].service, "frontend");
        assert_eq!(roots[0].kind, SpanKind::Server);
        // Every other span's parent is in the trace, although 12 come before their parent.
        for span in &spans {
            if let Some(parent) = span.parent {
                assert!(
                    spans.iter().any(|other| other.span_id == parent),
                    "{span:?}"
                );
            }
        }
        let errors: Vec<String> = spans
            .iter()
            .filter(|span| span.status == SpanStatus::Error)
            .map(|span| span.span_id.to_string())
            .collect();
        assert_eq!(
            errors,
            ["515f970d6a704d52", "07ec899a462aa19a", "86be964c30cd8888"]
        );

        let customer = by_id(&spans, "2947f6da1a6168d0");
        assert_eq!(
            customer.parent,
            Some("9082d67808fc8870".parse().expect("hex"))
        );
        assert_eq!(customer.service, "customer");
        assert_eq!(customer.kind, SpanKind::Server);
        assert_eq!(customer.status, SpanStatus::Unset);

        let client = by_id(&spans, "9082d67808fc8870");
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(client.name, "HTTP GET");
        assert_eq!(client.start_unix_nanos, 1_782_036_644_636_668_325);
        assert_eq!(client.end_unix_nanos, 1_782_036_644_898_226_779);
        assert_eq!(
            client.attributes.get("http.response.status_code"),
            Some(&AttrValue::Int(200))
        );
        assert_eq!(
            client.attributes.get("http.request.method"),
            Some(&AttrValue::String("GET".to_owned()))
        );
    }

    #[test]
    fn every_kind_of_attribute_value_and_unset_defaults() {
        let spans = spans_of(&fixture("v3-jaeger-ui_v3-trace-local-2.21.0.json"));
        assert_eq!(spans.len(), 3);
        let links: Vec<&(TraceId, SpanId)> = spans.iter().flat_map(|s| &s.links).collect();
        assert_eq!(
            links,
            [&(
                TraceId(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210),
                SpanId(0xfedc_ba98_7654_3210)
            )],
            "the one span link, read as trace and span id"
        );
        let root = by_id(&spans, "0123456789abcdef");
        assert_eq!(root.parent, None);
        assert_eq!(root.service, "lfx-wire-probe");
        assert_eq!(root.kind, SpanKind::Unspecified);
        assert_eq!(root.status, SpanStatus::Error);
        assert_eq!(
            root.end_unix_nanos - root.start_unix_nanos,
            1_000_000,
            "1 ms"
        );
        let attribute = |key: &str| root.attributes.get(key).cloned();
        let other = |text: &str| Some(AttrValue::Other(text.to_owned()));
        assert_eq!(
            attribute("array"),
            other(r#"["first",false,9223372036854775807]"#)
        );
        assert_eq!(attribute("bytes"), other("AQID"));
        assert_eq!(attribute("empty"), Some(AttrValue::String(String::new())));
        assert_eq!(attribute("false"), Some(AttrValue::Bool(false)));
        assert_eq!(attribute("float"), Some(AttrValue::Double(1.5)));
        assert_eq!(attribute("integer"), Some(AttrValue::Int(0)));
        assert_eq!(attribute("nested"), other(r#"{"child":["value"]}"#));
        assert_eq!(root.attributes.len(), 7);
        // The link to another trace is not a parent.
        let unset = by_id(&spans, "1111111111111111");
        assert_eq!(unset.parent, Some(root.span_id));
        assert_eq!(
            (unset.kind, unset.status),
            (SpanKind::Unspecified, SpanStatus::Unset)
        );
        let numeric = by_id(&spans, "2222222222222222");
        assert_eq!(numeric.parent, Some(root.span_id));
        assert_eq!(
            (numeric.kind, numeric.status),
            (SpanKind::Server, SpanStatus::Ok)
        );
    }

    #[test]
    fn a_services_body_is_not_taken_for_a_trace() {
        let refused = parse(&fixture("v3-snapshots_GetServices.json"));
        assert!(
            matches!(&refused, Err(Refusal::Foreign { found, .. }) if found == r#"an object with keys ["services"]"#),
            "{refused:?}"
        );
    }

    #[test]
    fn not_found_and_empty_results() {
        let not_found = br#"{"error":{"httpCode":404,"message":"No traces found"}}"#;
        assert_eq!(
            parse(not_found),
            Ok(Answer::Error {
                code: Some(404),
                message: "No traces found".to_owned()
            })
        );
        let grpc_gateway = br#"{"error":{"grpc_code":5,"http_code":404,"message":"trace not found","http_status":"Not Found"}}"#;
        assert!(matches!(
            parse(grpc_gateway),
            Ok(Answer::Error {
                code: Some(404),
                ..
            })
        ));
        for empty in [
            &br#"{"result":{}}"#[..],
            br#"{"result":{"resourceSpans":[]}}"#,
            br#"{"result":null}"#,
        ] {
            assert_eq!(parse(empty), Ok(Answer::Spans(vec![])));
        }
    }

    #[test]
    fn streamed_chunks_and_a_bare_result_are_read() {
        let body = fixture_json("v3-snapshots_GetTrace.json");
        let mut other = body.clone();
        other["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] =
            json!("0000000000000003");
        let stream = format!("{body}\n{other}\n");
        let spans = spans_of(stream.as_bytes());
        assert_eq!(
            spans.iter().map(|s| s.span_id).collect::<Vec<_>>(),
            [SpanId(2), SpanId(3)]
        );
        let bare = body["result"].to_string();
        assert_eq!(spans_of(bare.as_bytes()).len(), 1);
    }

    #[test]
    fn what_is_not_v3_is_foreign() {
        for body in [
            &b"<!doctype html><html><body>Jaeger UI</body></html>"[..],
            b"404 page not found\n",
            b"",
            br#"{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}"#,
            b"[]",
        ] {
            let refused = parse(body);
            assert!(
                matches!(refused, Err(Refusal::Foreign { .. })),
                "{:?}: {refused:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_wrong_field_is_refused_with_its_path() {
        let mut body = fixture_json("v3-jaeger-ui_getTrace-response.json");
        body["result"]["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["spanId"] = json!(123);
        let refused = parse(body.to_string().as_bytes());
        assert_eq!(
            refused.map_err(|r| r.to_string()),
            Err(
                "at $.result.resourceSpans[1].scopeSpans[0].spans[0].spanId: expected a span \
                 id: 16 hex digits, or base64 of 8 bytes, found 123"
                    .to_owned()
            )
        );
        let mut body = fixture_json("v3-snapshots_GetTrace.json");
        body["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] = json!(9);
        let refused = parse(body.to_string().as_bytes());
        assert!(
            matches!(&refused, Err(Refusal::Field(e)) if e.path.ends_with("spans[0].kind") && e.found == "9"),
            "{refused:?}"
        );
        let mut body = fixture_json("v3-snapshots_GetTrace.json");
        body["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] =
            json!("12x");
        assert!(matches!(
            parse(body.to_string().as_bytes()),
            Err(Refusal::Field(_))
        ));
    }

    #[test]
    fn ids_of_the_wrong_length_are_refused() {
        for (trace, span) in [
            ("0000000000000000000000000000001", "0000000000000002"),
            ("00000000000000000000000000000001", "000000000000002"),
            ("AAAAAAAAALQ=", "AAAAAAAAALQ="),
            ("00000000000000000000000000000001", "AAAAAAAAAAAAALQ="),
        ] {
            let body = json!({"result": {"resourceSpans": [{"scopeSpans": [{"spans": [
                {"traceId": trace, "spanId": span}
            ]}]}]}});
            assert!(
                matches!(parse(body.to_string().as_bytes()), Err(Refusal::Field(_))),
                "{trace} {span}"
            );
        }
    }
}
