//! A connection's state, shared by its calls and its I/O task under one uncontended lock: the
//! calls, their streams and windows, the peer's settings, and the frames waiting to be written.
//! Calls append their frames here; the task writes whatever has gathered in one write.

use std::collections::VecDeque;
use std::task::Waker;

use bytes::Bytes;

use super::frame::{self, ErrorCode, MAX_WINDOW};
use super::{CallError, Response};
use crate::load::intmap::IntMap;

/// Each stream's receive window this client advertises.
pub(super) const STREAM_WINDOW: u32 = 1 << 20;
/// The connection's receive window this client keeps.
pub(super) const CONNECTION_WINDOW: u32 = 1 << 24;

/// One call, from its first poll to its end.
pub(super) struct Call {
    /// 0 until its stream is opened.
    pub(super) stream: u32,
    /// The request header block and its per-call never-indexed field, until sent.
    pub(super) head: Bytes,
    pub(super) extra: Bytes,
    /// The request body, and how much of it has been sent.
    pub(super) body: Bytes,
    pub(super) sent: usize,
    /// END_STREAM has been sent (or the stream closed).
    pub(super) ended: bool,
    pub(super) send_window: i64,
    /// Received on the stream since its window was last replenished.
    pub(super) unacked: u32,
    pub(super) response: Response,
    /// The response head (a final status) has arrived.
    pub(super) has_head: bool,
    pub(super) wants_trace: bool,
    pub(super) result: Option<Result<Response, CallError>>,
    pub(super) waker: Option<Waker>,
}

impl Call {
    pub(super) fn new(head: Bytes, extra: Bytes, body: Bytes, wants_trace: bool) -> Self {
        Call {
            stream: 0,
            head,
            extra,
            body,
            sent: 0,
            ended: false,
            send_window: 0,
            unacked: 0,
            response: Response::default(),
            has_head: false,
            wants_trace,
            result: None,
            waker: None,
        }
    }
}

/// What the peer's SETTINGS said, with RFC 9113's defaults until then.
pub(super) struct Peer {
    pub(super) max_concurrent: usize,
    pub(super) initial_window: i64,
    pub(super) max_frame: usize,
}

pub(super) struct State {
    /// Frames waiting to be written.
    pub(super) out: Vec<u8>,
    /// The I/O task, woken when `out` gains its first bytes.
    pub(super) task: Option<Waker>,
    calls: Vec<Option<Call>>,
    free: Vec<usize>,
    /// Open streams to their calls.
    streams: IntMap<u32, usize>,
    /// Calls waiting for a stream (the peer's concurrency limit).
    waiting: VecDeque<usize>,
    /// Calls with body left that wait for send window.
    blocked: VecDeque<usize>,
    next_stream: u32,
    pub(super) peer: Peer,
    pub(super) send_window: i64,
    /// Received on the connection since its window was last replenished.
    unacked: u32,
    /// The last stream id of the peer's GOAWAY: no stream opens any more.
    pub(super) going_away: Option<u32>,
    /// Why the connection ended; no call starts or continues then.
    pub(super) closed: Option<String>,
    /// Every handle to the connection is gone: the task ends once no call is left.
    pub(super) dropped: bool,
    /// Calls to wake once the lock is released.
    pub(super) wake: Vec<Waker>,
}

impl State {
    pub(super) fn new() -> Self {
        State {
            out: Vec::with_capacity(16 << 10),
            task: None,
            calls: Vec::new(),
            free: Vec::new(),
            streams: IntMap::default(),
            waiting: VecDeque::new(),
            blocked: VecDeque::new(),
            next_stream: 1,
            peer: Peer {
                max_concurrent: usize::MAX,
                initial_window: 65_535,
                max_frame: frame::DEFAULT_MAX_FRAME,
            },
            send_window: 65_535,
            unacked: 0,
            going_away: None,
            closed: None,
            dropped: false,
            wake: Vec::new(),
        }
    }

    /// Whether a new call may use this connection.
    pub(super) fn usable(&self) -> bool {
        self.closed.is_none() && self.going_away.is_none()
    }

    pub(super) fn idle(&self) -> bool {
        self.calls.len() == self.free.len()
    }

    /// Starts `call`, or queues it behind the peer's concurrency limit; its key.
    pub(super) fn add(&mut self, call: Call) -> usize {
        let key = match self.free.pop() {
            Some(key) => {
                self.calls[key] = Some(call);
                key
            }
            None => {
                self.calls.push(Some(call));
                self.calls.len() - 1
            }
        };
        if self.streams.len() < self.peer.max_concurrent && self.waiting.is_empty() {
            self.open(key);
        } else {
            self.waiting.push_back(key);
        }
        key
    }

    /// Takes the call's result if it has one, else keeps `waker` to be woken with it.
    pub(super) fn poll_call(
        &mut self,
        key: usize,
        waker: &Waker,
    ) -> Option<Result<Response, CallError>> {
        let call = self.calls.get_mut(key)?.as_mut()?;
        if let Some(result) = call.result.take() {
            self.remove(key);
            return Some(result);
        }
        match &mut call.waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        None
    }

    /// A call given up before its end: its stream is reset, its slot freed.
    pub(super) fn cancel(&mut self, key: usize) {
        let Some(call) = self.calls.get(key).and_then(Option::as_ref) else {
            return;
        };
        if call.result.is_none() {
            if call.stream != 0 && self.closed.is_none() {
                frame::put_rst_stream(&mut self.out, call.stream, ErrorCode::CANCEL);
            }
            self.close_stream(key);
            self.waiting.retain(|&k| k != key);
        }
        self.remove(key);
        self.start_waiting();
    }

    fn remove(&mut self, key: usize) {
        if let Some(slot) = self.calls.get_mut(key)
            && slot.take().is_some()
        {
            self.free.push(key);
        }
    }

    fn open(&mut self, key: usize) {
        let Some(call) = self.calls[key].as_mut() else {
            return;
        };
        let stream = self.next_stream;
        self.next_stream += 2;
        call.stream = stream;
        call.send_window = self.peer.initial_window;
        let head = std::mem::take(&mut call.head);
        let extra = std::mem::take(&mut call.extra);
        frame::put_headers(
            &mut self.out,
            stream,
            &[&head, &extra],
            false,
            self.peer.max_frame,
        );
        self.streams.insert(stream, key);
        self.send_body(key);
    }

    /// Sends as much of the call's body as the windows allow; the rest waits in `blocked`.
    fn send_body(&mut self, key: usize) {
        let Some(call) = self.calls[key].as_mut() else {
            return;
        };
        while !call.ended {
            let left = call.body.len() - call.sent;
            let window = call.send_window.min(self.send_window).max(0);
            let n = left
                .min(self.peer.max_frame)
                .min(usize::try_from(window).unwrap_or(0));
            if n == 0 && left > 0 {
                self.blocked.push_back(key);
                return;
            }
            let end = call.sent + n;
            call.ended = end == call.body.len();
            frame::put_data(
                &mut self.out,
                call.stream,
                &call.body[call.sent..end],
                call.ended,
            );
            call.sent = end;
            // `n` is at most a frame's size.
            call.send_window -= n as i64;
            self.send_window -= n as i64;
        }
    }

    fn start_waiting(&mut self) {
        while self.streams.len() < self.peer.max_concurrent && self.going_away.is_none() {
            let Some(key) = self.waiting.pop_front() else {
                return;
            };
            self.open(key);
        }
    }

    fn unblock(&mut self) {
        for _ in 0..self.blocked.len() {
            let Some(key) = self.blocked.pop_front() else {
                return;
            };
            if self.calls[key]
                .as_ref()
                .is_some_and(|c| c.stream != 0 && !c.ended && c.result.is_none())
            {
                self.send_body(key);
            }
        }
    }

    /// Ends `key`'s call with `result`, closing its stream.
    fn finish(&mut self, key: usize, result: Result<Response, CallError>) {
        self.close_stream(key);
        if let Some(call) = self.calls[key].as_mut() {
            call.result = Some(result);
            if let Some(waker) = call.waker.take() {
                self.wake.push(waker);
            }
        }
    }

    fn close_stream(&mut self, key: usize) {
        if let Some(call) = self.calls[key].as_mut()
            && call.stream != 0
        {
            self.streams.remove(&call.stream);
            call.body = Bytes::new();
            call.ended = true;
        }
    }

    /// The connection failed: every call ends with `error`, none starts again.
    pub(super) fn fail(&mut self, error: &str) {
        if self.closed.is_none() {
            self.closed = Some(error.to_owned());
        }
        for key in 0..self.calls.len() {
            if self.calls[key].as_ref().is_some_and(|c| c.result.is_none()) {
                // A call that never left can go on another connection.
                let sent = self.calls[key].as_ref().is_some_and(|c| c.stream != 0);
                let result = if sent {
                    CallError::Connection(error.to_owned())
                } else {
                    CallError::Refused
                };
                self.finish(key, Err(result));
            }
        }
        self.waiting.clear();
        self.blocked.clear();
        if let Some(task) = &self.task {
            self.wake.push(task.clone());
        }
    }

    // What the peer sent.

    pub(super) fn settings(&mut self, params: &[u8]) -> Result<(), frame::ConnectionError> {
        for (id, value) in frame::settings(params) {
            match id {
                frame::SETTINGS_MAX_CONCURRENT_STREAMS => {
                    self.peer.max_concurrent = usize::try_from(value).unwrap_or(usize::MAX);
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > MAX_WINDOW {
                        return Err(frame::ConnectionError {
                            code: ErrorCode::FLOW_CONTROL_ERROR,
                            what: "an initial window over the maximum",
                        });
                    }
                    let delta = value - self.peer.initial_window;
                    self.peer.initial_window = value;
                    for &key in self.streams.values() {
                        if let Some(call) = self.calls[key].as_mut() {
                            call.send_window += delta;
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    let value = usize::try_from(value).unwrap_or(usize::MAX);
                    if !(frame::DEFAULT_MAX_FRAME..=(1 << 24) - 1).contains(&value) {
                        return Err(frame::protocol("a maximum frame size out of range"));
                    }
                    self.peer.max_frame = value;
                }
                _ => {}
            }
        }
        frame::put_settings_ack(&mut self.out);
        self.start_waiting();
        self.unblock();
        Ok(())
    }

    pub(super) fn window_update(
        &mut self,
        stream: u32,
        increment: u32,
    ) -> Result<(), frame::ConnectionError> {
        let increment = i64::from(increment);
        if stream == 0 {
            if increment == 0 {
                return Err(frame::protocol("a connection WINDOW_UPDATE of 0"));
            }
            self.send_window += increment;
            if self.send_window > MAX_WINDOW {
                return Err(frame::ConnectionError {
                    code: ErrorCode::FLOW_CONTROL_ERROR,
                    what: "the connection window past its maximum",
                });
            }
        } else if let Some(&key) = self.streams.get(&stream) {
            let call = self.calls[key].as_mut().map(|c| {
                c.send_window += increment;
                c.send_window
            });
            if increment == 0 || call.is_some_and(|w| w > MAX_WINDOW) {
                frame::put_rst_stream(&mut self.out, stream, ErrorCode::FLOW_CONTROL_ERROR);
                self.finish(
                    key,
                    Err(CallError::Malformed("a stream window update out of range")),
                );
                return Ok(());
            }
        }
        self.unblock();
        Ok(())
    }

    /// DATA on `stream`: `flow_len` counts against the windows, `data` against the answer bound.
    pub(super) fn data(&mut self, stream: u32, data: usize, flow_len: usize, end_stream: bool) {
        let flow = u32::try_from(flow_len).unwrap_or(u32::MAX);
        self.unacked += flow;
        if self.unacked >= CONNECTION_WINDOW / 2 {
            frame::put_window_update(&mut self.out, 0, self.unacked);
            self.unacked = 0;
        }
        let Some(&key) = self.streams.get(&stream) else {
            // A stream this side reset or already ended: only the connection window counts it.
            return;
        };
        let Some(call) = self.calls[key].as_mut() else {
            return;
        };
        if !call.has_head {
            frame::put_rst_stream(&mut self.out, stream, ErrorCode::PROTOCOL_ERROR);
            self.finish(
                key,
                Err(CallError::Malformed("DATA before the response headers")),
            );
            return;
        }
        call.response.body_len += data;
        if call.response.body_len > super::MAX_ANSWER {
            frame::put_rst_stream(&mut self.out, stream, ErrorCode::CANCEL);
            self.finish(key, Err(CallError::TooLarge));
            return;
        }
        if end_stream {
            self.end(key);
            return;
        }
        call.unacked += flow;
        if call.unacked >= STREAM_WINDOW / 2 {
            frame::put_window_update(&mut self.out, stream, call.unacked);
            call.unacked = 0;
        }
    }

    /// A whole header block on `stream`, decoded into `fields` (`trace` is read only if wanted).
    pub(super) fn headers(
        &mut self,
        stream: u32,
        fields: &super::hpack::Fields,
        trace: impl FnOnce() -> String,
        end_stream: bool,
    ) {
        let Some(&key) = self.streams.get(&stream) else {
            return;
        };
        let Some(call) = self.calls[key].as_mut() else {
            return;
        };
        if fields.size > super::hpack::MAX_HEADER_LIST {
            frame::put_rst_stream(&mut self.out, stream, ErrorCode::CANCEL);
            self.finish(
                key,
                Err(CallError::Malformed("a header list over its bound")),
            );
            return;
        }
        if fields.has_trace && call.wants_trace && call.response.trace.is_none() {
            call.response.trace = Some(trace());
        }
        if !call.has_head {
            match fields.status {
                // Informational: the final head is still to come.
                Some(status) if (100..200).contains(&status) && !end_stream => return,
                Some(status) => {
                    call.has_head = true;
                    call.response.status = status;
                    call.response.head_grpc_status = fields.grpc_status;
                }
                None => {
                    frame::put_rst_stream(&mut self.out, stream, ErrorCode::PROTOCOL_ERROR);
                    self.finish(
                        key,
                        Err(CallError::Malformed("response headers without :status")),
                    );
                    return;
                }
            }
        } else {
            call.response.trailer_grpc_status = fields.grpc_status;
        }
        if end_stream {
            self.end(key);
        }
    }

    /// The peer ended its side: the call is answered. A body not yet all sent is abandoned.
    fn end(&mut self, key: usize) {
        let Some(call) = self.calls[key].as_mut() else {
            return;
        };
        if !call.ended {
            frame::put_rst_stream(&mut self.out, call.stream, ErrorCode::CANCEL);
        }
        let response = std::mem::take(&mut call.response);
        self.finish(key, Ok(response));
        self.start_waiting();
    }

    pub(super) fn reset(&mut self, stream: u32, code: ErrorCode) {
        if let Some(&key) = self.streams.get(&stream) {
            let error = if code == ErrorCode::REFUSED_STREAM {
                CallError::Refused
            } else {
                CallError::Reset(code)
            };
            self.finish(key, Err(error));
            self.start_waiting();
        }
    }

    /// GOAWAY: streams above `last_stream` were not processed and go elsewhere, as does every call
    /// still waiting; the rest finish here.
    pub(super) fn go_away(&mut self, last_stream: u32) {
        self.going_away = Some(self.going_away.map_or(last_stream, |l| l.min(last_stream)));
        let refused: Vec<usize> = self
            .streams
            .iter()
            .filter(|&(&id, _)| id > last_stream)
            .map(|(_, &key)| key)
            .chain(self.waiting.drain(..))
            .collect();
        for key in refused {
            self.finish(key, Err(CallError::Refused));
        }
    }
}
