//! The `websocket:` request kind: a subscription held open while its messages are measured. Its
//! URL, headers and messages are templates as an `http:` call's are; which fields of a received
//! message carry the event time, the sequence and the trace context is said here or left to the
//! bundled gateway's defaults (applied when the plan is made).

use std::time::Duration;

use super::calls::{Placeholder, json, named_templates, template_text};
use super::model::{MessageFields, Template, WebSocketCall, WsMessage};
use super::read::{Cx, duration_at_most, integer, mapping, string};
use super::tree::{Node, Value};

/// The default largest message: far above any update, far below what would threaten memory.
pub(super) const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 10;
/// The largest `max_message_bytes` accepted.
const MAX_MESSAGE_BYTES: i128 = 16 << 20;
/// The bounds of `receive_buffer_bytes`: below 1 KiB the kernel rounds up anyway; above 64 MiB
/// it is no longer a small buffer.
const MIN_RECEIVE_BUFFER: i128 = 1 << 10;
const MAX_RECEIVE_BUFFER: i128 = 64 << 20;
/// The longest `hold` or `read_delay`, as the other durations of a scenario: a day.
const DAY: (Duration, &str) = (Duration::from_secs(86_400), "1440m");

pub(super) fn websocket(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
) -> Option<WebSocketCall> {
    const KEYS: &[&str] = &[
        "url",
        "headers",
        "subscribe",
        "unsubscribe",
        "fields",
        "hold",
        "read_delay",
        "max_message_bytes",
        "receive_buffer_bytes",
    ];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let url = fields.required(cx, "url").and_then(|n| {
        let at = fields.path("url");
        let text = template_text(cx, n, &at, placeholders)?;
        let absolute = text.starts_with("ws://") || text.starts_with("wss://");
        if !(absolute || text.starts_with('/')) {
            return cx.expected(
                n,
                &at,
                "a path such as /api/v1/market-data/stream (relative to the system's target) or a \
                 ws:// or wss:// URL",
            );
        }
        Some(Template {
            at: cx.position(n.origin, &at),
            text,
        })
    });
    let headers = fields.get("headers").map_or(Some(Vec::new()), |n| {
        named_templates(cx, n, &fields.path("headers"), placeholders, |name| {
            hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
        })
    });
    let mut message = |key: &str| match fields.get(key) {
        None => Some(None),
        Some(n) => {
            let at = fields.path(key);
            match &n.value {
                Value::Map(_) | Value::Seq(_) => {
                    json(cx, n, &at, placeholders).map(|v| Some(WsMessage::Json(v)))
                }
                _ => template_text(cx, n, &at, placeholders).map(|text| {
                    Some(WsMessage::Text(Template {
                        at: cx.position(n.origin, &at),
                        text,
                    }))
                }),
            }
        }
    };
    let subscribe = message("subscribe");
    let unsubscribe = message("unsubscribe");
    let message_fields = fields
        .get("fields")
        .map_or(Some(MessageFields::default()), |n| {
            message_fields(cx, n, &fields.path("fields"))
        });
    let hold = match fields.get("hold") {
        None => Some(None),
        Some(n) => duration_at_most(cx, n, &fields.path("hold"), true, DAY).map(Some),
    };
    let read_delay = fields.read_or(cx, "read_delay", Duration::ZERO, |cx, n, at| {
        duration_at_most(cx, n, at, false, DAY)
    });
    let max_message_bytes = fields.read_or(
        cx,
        "max_message_bytes",
        DEFAULT_MAX_MESSAGE_BYTES,
        |cx, n, at| integer(cx, n, at, 16, MAX_MESSAGE_BYTES).and_then(|i| usize::try_from(i).ok()),
    );
    let receive_buffer_bytes = match fields.get("receive_buffer_bytes") {
        None => Some(None),
        Some(n) => integer(
            cx,
            n,
            &fields.path("receive_buffer_bytes"),
            MIN_RECEIVE_BUFFER,
            MAX_RECEIVE_BUFFER,
        )
        .and_then(|i| u32::try_from(i).ok())
        .map(Some),
    };
    Some(WebSocketCall {
        url: url?,
        headers: headers?,
        subscribe: subscribe?,
        unsubscribe: unsubscribe?,
        fields: message_fields?,
        hold: hold?,
        read_delay: read_delay?,
        max_message_bytes: max_message_bytes?,
        receive_buffer_bytes: receive_buffer_bytes?,
    })
}

/// `fields: {event_time: ..., sequence: ..., traceparent: ...}`: top-level JSON field names.
fn message_fields(cx: &mut Cx, node: &Node, path: &str) -> Option<MessageFields> {
    let fields = mapping(
        cx,
        node,
        path,
        Some(&["event_time", "sequence", "traceparent"]),
    )?;
    let mut one = |key: &str| match fields.get(key) {
        None => Some(None),
        Some(n) => {
            let at = fields.path(key);
            let name = string(cx, n, &at)?;
            if name.is_empty() {
                return cx.expected(n, &at, "a JSON field name");
            }
            Some(Some(name))
        }
    };
    let event_time = one("event_time");
    let sequence = one("sequence");
    let traceparent = one("traceparent");
    Some(MessageFields {
        event_time: event_time?,
        sequence: sequence?,
        traceparent: traceparent?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::model::{Call, WebSocketCall, WsMessage};
    use super::super::parse;

    fn scenario(websocket: &str) -> String {
        format!(
            "name: s
system:
  external: {{target: \"http://127.0.0.1:9\"}}
load:
  phases:
    - constant: {{rate: 5, duration: 1s}}
requests:
  - name: sub
    weight: 1
    websocket:
{websocket}
    vars: {{symbol: [AAPL]}}
"
        )
    }

    fn call(s: &super::super::model::Scenario) -> &WebSocketCall {
        match &s.requests[0].call {
            Call::WebSocket(call) => call,
            other => panic!("a websocket: kind expected, got {other:?}"),
        }
    }

    #[test]
    fn a_subscription_reads_with_its_messages_and_options() {
        let s = parse(
            "x.yaml",
            &scenario(
                "      url: /api/v1/market-data/stream
      headers: {X-Client: \"{{symbol}}\"}
      subscribe: {type: subscribe, symbols: [\"{{symbol}}\"], interval_ms: 100}
      unsubscribe: '{\"type\": \"unsubscribe\"}'
      fields: {event_time: ts, sequence: seq}
      hold: 2s
      read_delay: 50ms
      max_message_bytes: 1024
      receive_buffer_bytes: 4096",
            ),
            &[],
        )
        .expect("valid");
        assert_eq!(s.load.protocol.name(), "websocket");
        let c = call(&s);
        assert_eq!(c.url.text, "/api/v1/market-data/stream");
        assert_eq!(c.headers[0].0, "x-client");
        assert!(
            matches!(&c.subscribe, Some(WsMessage::Json(v)) if v["symbols"][0] == "{{symbol}}")
        );
        assert!(
            matches!(&c.unsubscribe, Some(WsMessage::Text(t)) if t.text.contains("unsubscribe"))
        );
        assert_eq!(c.fields.event_time.as_deref(), Some("ts"));
        assert_eq!(c.fields.sequence.as_deref(), Some("seq"));
        assert_eq!(c.fields.traceparent, None);
        assert_eq!(c.hold, Some(Duration::from_secs(2)));
        assert_eq!(c.read_delay, Duration::from_millis(50));
        assert_eq!(c.max_message_bytes, 1024);
        assert_eq!(c.receive_buffer_bytes, Some(4096));
    }

    #[test]
    fn bad_fields_are_named_with_their_place() {
        let cases = [
            (
                "      url: http://127.0.0.1:8080/stream\n      subscribe: \"{{symbol}}\"",
                "x.yaml:11:12: requests[0].websocket.url: expected a path such as \
                 /api/v1/market-data/stream (relative to the system's target) or a ws:// or \
                 wss:// URL",
            ),
            (
                "      url: /s\n      subscribe: \"{{symbol}}\"\n      hold: 0s",
                "x.yaml:13:13: requests[0].websocket.hold: expected a duration > 0",
            ),
            (
                "      url: /s\n      subscribe: \"{{symbol}}\"\n      max_message_bytes: 1",
                "x.yaml:13:26: requests[0].websocket.max_message_bytes:",
            ),
            (
                "      url: /s\n      subscribe: \"{{symbol}}\"\n      receive_buffer_bytes: 10",
                "x.yaml:13:29: requests[0].websocket.receive_buffer_bytes:",
            ),
            (
                "      url: /s\n      subscribe: \"{{symbol}}\"\n      fields: {time: t}",
                "x.yaml:13:16: requests[0].websocket.fields.time:",
            ),
            (
                "      subscribe: \"{{symbol}}\"",
                "x.yaml:11:7: requests[0].websocket.url: required key is missing",
            ),
        ];
        for (websocket, expected) in cases {
            let error = parse("x.yaml", &scenario(websocket), &[])
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{websocket}\n{error}");
        }
    }

    #[test]
    fn stream_trace_checks_are_verify_streams() {
        let base = scenario("      url: /s\n      subscribe: \"{{symbol}}\"");
        let s = parse(
            "x.yaml",
            &(base.clone() + "verify: {streams: {sample: 20, timeout: 3s}}\n"),
            &[],
        )
        .expect("valid");
        let streams = s.verify.streams.expect("streams");
        assert_eq!(
            (streams.sample, streams.timeout),
            (20, Duration::from_secs(3))
        );
        let s = parse("x.yaml", &(base.clone() + "verify: {streams: }\n"), &[]).expect("valid");
        assert_eq!(s.verify.streams, Some(Default::default()));
        for (verify, expected) in [
            (
                "verify: {traces: {services: [a], chain: [{service: a, kind: server}]}}",
                "checked by verify.streams",
            ),
            ("verify: {streams: {sample: 0}}", "verify.streams.sample"),
            ("verify: {streams: {every: 2}}", "verify.streams.every"),
        ] {
            let error = parse("x.yaml", &(base.clone() + verify + "\n"), &[])
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{verify}\n{error}");
        }
        let http = base.replace(
            "    websocket:\n      url: /s\n      subscribe: \"{{symbol}}\"",
            "    http: {url: \"/q/{{symbol}}\"}",
        ) + "verify: {streams: {}}\n";
        let error = parse("x.yaml", &http, &[])
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("applies to websocket: kinds only"),
            "{error}"
        );
    }

    #[test]
    fn websocket_kinds_do_not_mix_with_http_kinds() {
        let text = scenario("      url: /s\n      subscribe: \"{{symbol}}\"")
            + "  - name: q\n    weight: 1\n    http: {url: /q}\n";
        let error = parse("x.yaml", &text, &[])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("speaks one protocol"), "{error}");
    }
}
