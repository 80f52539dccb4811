//! One subscription: connect and upgrade (TLS through the harness's configuration for `wss://`),
//! subscribe, read and measure every message until the connection's time is up, then unsubscribe
//! (or close) and wait, bounded, for the server's close.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hyper::Uri;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::super::connect::{Io, open_sized, tls_connector};
use super::super::outcome::Outcome;
use super::super::recorder::Completion;
use super::stats::{KEPT_TRACED, Sequence, Step};
use super::{Options, Shared, StreamTarget, Subscription};

/// Everything one connection task owns.
pub(super) struct Connection {
    pub(super) shared: Arc<Shared>,
    pub(super) target: Arc<StreamTarget>,
    pub(super) kind: usize,
    pub(super) options: Arc<Options>,
    pub(super) subscription: Arc<Subscription>,
    pub(super) timeout: Duration,
    pub(super) intended: Instant,
    pub(super) sent: Instant,
    pub(super) until: Instant,
    pub(super) closing: CancellationToken,
}

/// Counts the connection as open until it is dropped, however the task ends.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

type Ws = WebSocketStream<Box<dyn Io>>;

pub(super) async fn connection(c: Connection) {
    let _open = Open(Arc::clone(&c.shared));
    let connected = tokio::time::timeout(c.timeout, connect(&c)).await;
    let finished = Instant::now();
    let (outcome, reason) = match &connected {
        Ok(Ok(_)) => (Outcome::Status(101), None),
        Ok(Err(Failure { reason, outcome })) => (outcome.clone(), Some(reason.clone())),
        Err(_) => (Outcome::Timeout, Some("timeout".to_owned())),
    };
    let expected = reason.is_none();
    c.shared.recorder().completed(Completion {
        kind: c.kind,
        intended: c.intended.into_std(),
        sent: c.sent.into_std(),
        finished: finished.into_std(),
        outcome: outcome.clone(),
        expected,
        trace: None,
    });
    let mut ws = match connected {
        Ok(Ok(ws)) => {
            c.shared.stats().kinds[c.kind].connected += 1;
            ws
        }
        _ => {
            let mut stats = c.shared.stats();
            let kind = &mut stats.kinds[c.kind];
            kind.connect_failed(reason.as_deref().unwrap_or("other"));
            if let Outcome::Transport(text) = &outcome {
                kind.error(text);
            }
            return;
        }
    };
    let mut reader = Reader {
        c: &c,
        sequence: Sequence::default(),
        subscribed: Instant::now(),
        first: true,
        closing: false,
    };
    if let Some(subscribe) = &c.subscription.subscribe
        && let Err(error) = ws.send(Message::text(subscribe.as_str())).await
    {
        reader.ended(&End::Error(format!("sending the subscribe: {error}")));
        return;
    }
    reader.subscribed = Instant::now();
    let end = loop {
        tokio::select! {
            biased;
            () = c.closing.cancelled() => break None,
            () = tokio::time::sleep_until(c.until) => break None,
            message = ws.next() => {
                if let Some(end) = reader.read(message).await {
                    break Some(end);
                }
            }
        }
    };
    let end = match end {
        Some(end) => end,
        None => close(&mut ws, &mut reader).await,
    };
    reader.ended(&end);
}

/// Sends the unsubscribe (or a close), then reads, still measuring, until the server closes.
async fn close(ws: &mut Ws, reader: &mut Reader<'_>) -> End {
    let c = reader.c;
    reader.closing = true;
    let sent = match &c.subscription.unsubscribe {
        Some(text) => ws.send(Message::text(text.as_str())).await,
        None => {
            ws.close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "done".into(),
            }))
            .await
        }
    };
    if let Err(error) = sent {
        return End::Error(format!("closing: {error}"));
    }
    let read = async {
        loop {
            if let Some(end) = reader.read(ws.next().await).await {
                return end;
            }
        }
    };
    tokio::time::timeout(c.timeout, read)
        .await
        .unwrap_or(End::NoClose)
}

/// How a connection ended.
enum End {
    Closed(u16),
    NoClose,
    Error(String),
}

struct Reader<'a> {
    c: &'a Connection,
    sequence: Sequence,
    subscribed: Instant,
    first: bool,
    /// Closing: messages are read at once, so that a slow consumer's backlog (in the kernel's
    /// buffers) is read through and the gaps behind it show.
    closing: bool,
}

impl Reader<'_> {
    /// Measures one message; `Some` when the connection has ended.
    async fn read(&mut self, message: Option<Result<Message, WsError>>) -> Option<End> {
        let bytes = match message {
            None => return Some(End::NoClose),
            Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Close(frame))) => {
                return Some(frame.map_or(End::NoClose, |f| End::Closed(f.code.into())));
            }
            Some(Ok(_)) => return None,
            Some(Err(
                WsError::ConnectionClosed
                | WsError::AlreadyClosed
                | WsError::Protocol(
                    tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            )) => return Some(End::NoClose),
            Some(Err(WsError::Io(_))) => return Some(End::NoClose),
            Some(Err(error)) => return Some(End::Error(error.to_string())),
        };
        self.measure(&bytes);
        if !self.closing && !self.c.options.read_delay.is_zero() {
            tokio::time::sleep(self.c.options.read_delay).await;
        }
        None
    }

    fn measure(&mut self, bytes: &[u8]) {
        let received = Instant::now();
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let fields = &self.c.options.fields;
        let mut shared = self.c.shared.stats();
        let stats = &mut *shared;
        let kind = &mut stats.kinds[self.c.kind];
        let Ok(serde_json::Value::Object(object)) =
            serde_json::from_slice::<serde_json::Value>(bytes)
        else {
            kind.unreadable += 1;
            return;
        };
        let Some(event_time) = object.get(&fields.event_time) else {
            kind.other_messages += 1;
            let trace = fields
                .subscription_trace
                .as_ref()
                .and_then(|f| object.get(f))
                .and_then(serde_json::Value::as_str)
                .and_then(|id| u128::from_str_radix(id, 16).ok())
                .filter(|id| *id != 0);
            drop(shared);
            if let (Some(announce), Some(id)) = (&self.c.shared.announce, trace) {
                announce(id);
            }
            return;
        };
        let Some(event_ns) = number(event_time) else {
            kind.unreadable += 1;
            return;
        };
        kind.updates += 1;
        let latency_us = now_ns.saturating_sub(u128::from(event_ns)) / 1000;
        kind.latency
            .saturating_record(u64::try_from(latency_us).unwrap_or(u64::MAX).max(1));
        if self.first {
            self.first = false;
            let first = received.saturating_duration_since(self.subscribed);
            kind.first_message
                .saturating_record(u64::try_from(first.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        let sequence = fields
            .sequence
            .as_ref()
            .and_then(|f| object.get(f))
            .and_then(number);
        if let Some(sequence) = sequence {
            match self.sequence.next(sequence) {
                Step::InOrder => {}
                Step::Gap(missing) => kind.lost += missing,
                Step::Error => kind.sequence_errors += 1,
            }
        }
        let traceparent = fields
            .traceparent
            .as_ref()
            .and_then(|f| object.get(f))
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty());
        let mut kept = None;
        if let Some(traceparent) = traceparent {
            kind.traced += 1;
            if stats.traced.len() < KEPT_TRACED {
                kept = traceparent_trace_id(traceparent);
                stats.traced.push(super::TracedUpdate {
                    kind: self.c.kind,
                    traceparent: traceparent.chars().take(128).collect(),
                    sequence,
                });
            }
        }
        stats.count_second(received.saturating_duration_since(self.c.shared.t0));
        drop(shared);
        if let (Some(announce), Some(id)) = (&self.c.shared.announce, kept) {
            announce(id);
        }
    }

    fn ended(&self, end: &End) {
        let mut stats = self.c.shared.stats();
        let kind = &mut stats.kinds[self.c.kind];
        match end {
            End::Closed(code @ (1000 | 1008 | 1011)) => kind.closed(&code.to_string()),
            End::Closed(_) => kind.closed("other"),
            End::NoClose => kind.closed("none"),
            End::Error(text) => {
                kind.closed("error");
                kind.error(text);
            }
        }
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if it is one.
pub(super) fn traceparent_trace_id(traceparent: &str) -> Option<u128> {
    let mut parts = traceparent.split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32)
        .then(|| u128::from_str_radix(trace, 16).ok())
        .flatten()
        .filter(|id| *id != 0)
}

/// A JSON number, or a string of digits (nanosecond times exceed what some encoders write as
/// numbers).
fn number(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Why a connect failed: a reason to count by, and the outcome for the recorder.
struct Failure {
    reason: String,
    outcome: Outcome,
}

impl Failure {
    fn transport(reason: &str, text: String) -> Self {
        Failure {
            reason: reason.to_owned(),
            outcome: Outcome::Transport(text),
        }
    }
}

/// Opens the connection and upgrades it.
async fn connect(c: &Connection) -> Result<Ws, Failure> {
    let url = url(&c.target.base, &c.subscription.url).map_err(|e| Failure::transport("url", e))?;
    let tls = (url.scheme_str() == Some("wss"))
        .then(|| tls_connector(c.target.tls.clone(), &[b"http/1.1"]));
    let authority = url
        .authority()
        .ok_or_else(|| Failure::transport("url", format!("{url}: no host")))?;
    let connected = open_sized(authority, tls.as_ref(), c.options.receive_buffer)
        .await
        .map_err(|e| Failure::transport("connect", e))?;
    let mut request = url
        .to_string()
        .into_client_request()
        .map_err(|e| Failure::transport("url", e.to_string()))?;
    for (name, value) in &c.subscription.headers {
        request.headers_mut().append(name, value.clone());
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(c.options.max_message_bytes))
        .max_frame_size(Some(c.options.max_message_bytes));
    match tokio_tungstenite::client_async_with_config(request, connected.io, Some(config)).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(Failure {
            reason: format!("status {}", response.status().as_u16()),
            outcome: Outcome::Status(response.status().as_u16()),
        }),
        Err(error) => Err(Failure::transport("handshake", error.to_string())),
    }
}

/// The connection's URL: as written when absolute, else below the target with its scheme made
/// `ws` or `wss`.
fn url(base: &Uri, path: &str) -> Result<Uri, String> {
    let text = if path.starts_with("ws://") || path.starts_with("wss://") {
        path.to_owned()
    } else {
        let scheme = match base.scheme_str() {
            Some("https") => "wss",
            _ => "ws",
        };
        let authority = base.authority().ok_or_else(|| format!("{base}: no host"))?;
        let prefix = base.path().trim_end_matches('/');
        format!("{scheme}://{authority}{prefix}{path}")
    };
    text.parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_go_below_the_target_with_its_scheme() {
        let base: Uri = "http://127.0.0.1:8080".parse().expect("uri");
        assert_eq!(
            url(&base, "/api/v1/market-data/stream")
                .expect("url")
                .to_string(),
            "ws://127.0.0.1:8080/api/v1/market-data/stream"
        );
        let base: Uri = "https://example.test/prefix/".parse().expect("uri");
        assert_eq!(
            url(&base, "/s").expect("url").to_string(),
            "wss://example.test/prefix/s"
        );
        assert_eq!(
            url(&base, "ws://127.0.0.1:9/x").expect("url").to_string(),
            "ws://127.0.0.1:9/x"
        );
    }

    #[test]
    fn a_traceparent_gives_its_trace_id() {
        assert_eq!(
            traceparent_trace_id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some(0x0af7651916cd43dd8448eb211c80319c)
        );
        for bad in ["", "00", "00-xyz-b7ad6b7169203331-01", "00-0-b7-01"] {
            assert_eq!(traceparent_trace_id(bad), None, "{bad}");
        }
        assert_eq!(
            traceparent_trace_id("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
            None
        );
    }

    #[test]
    fn numbers_may_be_strings_of_digits() {
        assert_eq!(number(&serde_json::json!(17)), Some(17));
        assert_eq!(
            number(&serde_json::json!("1733000000000000000")),
            Some(1_733_000_000_000_000_000)
        );
        assert_eq!(number(&serde_json::json!(-1)), None);
        assert_eq!(number(&serde_json::json!("x")), None);
    }
}
