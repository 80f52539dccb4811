//! Rendering `websocket:` kinds for the stream load: each subscription's URL, headers and
//! messages from its templates, and the fields its messages are read by (the bundled gateway's
//! where the scenario names none).

use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use super::{Env, bad, render};
use crate::bundled;
use crate::exit::RunError;
use crate::load::LoadKind;
use crate::load::stream::{Fields, StreamKind, Subscription};
use crate::scenario::template::{self as tpl, Draw};
use crate::scenario::{Call, RequestKind, Scenario, WsMessage};

pub(super) fn subscription(
    kind: &RequestKind,
    draw: &Draw,
    env: Env<'_>,
) -> Result<Subscription, RunError> {
    let Call::WebSocket(call) = &kind.call else {
        return Err(bad(
            kind,
            "",
            "an http: or grpc: request in a websocket scenario",
        ));
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &call.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(kind, &value.at, e))?;
        let mut rendered = HeaderValue::from_str(&render(kind, value, draw, env)?)
            .map_err(|e| bad(kind, &value.at, e))?;
        // Header values may hold secrets: keep them out of debug output.
        rendered.set_sensitive(true);
        headers.append(name, rendered);
    }
    let message = |message: &Option<WsMessage>| -> Result<Option<String>, RunError> {
        Ok(match message {
            None => None,
            Some(WsMessage::Text(text)) => Some(render(kind, text, draw, env)?),
            Some(WsMessage::Json(value)) => {
                let value = tpl::render_json(value, draw, env).map_err(|e| bad(kind, "", e))?;
                Some(serde_json::to_string(&value).map_err(|e| bad(kind, "", e))?)
            }
        })
    };
    Ok(Subscription {
        url: render(kind, &call.url, draw, env)?,
        headers,
        subscribe: message(&call.subscribe)?,
        unsubscribe: message(&call.unsubscribe)?,
    })
}

/// The stream load's kinds: the rendered subscriptions with each kind's options.
pub(super) fn kinds(
    rendered: Vec<LoadKind<Arc<Subscription>>>,
    scenario: &Scenario,
) -> Result<Vec<StreamKind>, RunError> {
    rendered
        .into_iter()
        .zip(&scenario.requests)
        .map(|(load_kind, kind)| {
            let Call::WebSocket(call) = &kind.call else {
                return Err(bad(kind, "", "not a websocket: kind"));
            };
            let fields = &call.fields;
            Ok(StreamKind {
                name: load_kind.name,
                weight: load_kind.weight,
                payloads: load_kind.payloads,
                fields: Fields {
                    event_time: fields
                        .event_time
                        .clone()
                        .unwrap_or_else(|| bundled::STREAM_EVENT_TIME_FIELD.to_owned()),
                    sequence: Some(
                        fields
                            .sequence
                            .clone()
                            .unwrap_or_else(|| bundled::STREAM_SEQUENCE_FIELD.to_owned()),
                    ),
                    traceparent: Some(
                        fields
                            .traceparent
                            .clone()
                            .unwrap_or_else(|| bundled::STREAM_TRACEPARENT_FIELD.to_owned()),
                    ),
                    subscription_trace: Some(bundled::STREAM_SUBSCRIPTION_TRACE_FIELD.to_owned()),
                },
                hold: call.hold,
                read_delay: call.read_delay,
                max_message_bytes: call.max_message_bytes,
                receive_buffer: call.receive_buffer_bytes,
            })
        })
        .collect()
}
