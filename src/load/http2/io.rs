//! The connection's task: writes what calls gathered in the write buffer in one write, reads in
//! large chunks, and handles every frame a read brought under one lock of the state.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use super::frame::{self, ConnectionError, ErrorCode, Frame};
use super::hpack::{MAX_HEADER_LIST, ResponseDecoder};
use super::state::{CONNECTION_WINDOW, STREAM_WINDOW, State};
use super::{Shared, unlock_and_wake};
use crate::load::connect::Io;

/// The read buffer: many answers per read, and room for the largest frame accepted.
const READ_BUFFER: usize = 64 << 10;
/// Reads handled in one poll before the task lets others run.
const READS_PER_POLL: usize = 16;

/// A header block still arriving in CONTINUATION frames.
struct Partial {
    stream: u32,
    end_stream: bool,
    block: Vec<u8>,
}

pub(super) struct Task {
    io: Box<dyn Io>,
    shared: Arc<Shared>,
    read: Box<[u8]>,
    start: usize,
    end: usize,
    /// What is being written, and how much of it is.
    writing: Vec<u8>,
    written: usize,
    flush: bool,
    decoder: ResponseDecoder,
    partial: Option<Partial>,
}

impl Task {
    /// Sends the preface and settings, then reads until the server's SETTINGS are applied.
    pub(super) async fn handshake(
        mut io: Box<dyn Io>,
        shared: Arc<Shared>,
        trace_name: Option<Box<[u8]>>,
    ) -> Result<Task, String> {
        let mut hello = frame::PREFACE.to_vec();
        frame::put_settings(
            &mut hello,
            &[
                (frame::SETTINGS_ENABLE_PUSH, 0),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (
                    frame::SETTINGS_MAX_HEADER_LIST_SIZE,
                    u32::try_from(MAX_HEADER_LIST).unwrap_or(u32::MAX),
                ),
            ],
        );
        frame::put_window_update(&mut hello, 0, CONNECTION_WINDOW - 65_535);
        io.write_all(&hello).await.map_err(|e| e.to_string())?;
        io.flush().await.map_err(|e| e.to_string())?;
        let mut task = Task {
            io,
            shared,
            read: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            writing: Vec::with_capacity(16 << 10),
            written: 0,
            flush: false,
            decoder: ResponseDecoder::new(trace_name),
            partial: None,
        };
        loop {
            let parsed = frame::parse(&task.read[..task.end], frame::DEFAULT_MAX_FRAME)
                .map_err(|e| e.to_string())?;
            if let Some((frame, used)) = parsed {
                let Frame::Settings { ack: false, params } = frame else {
                    return Err("the server's first frame is not SETTINGS".into());
                };
                task.shared
                    .lock()
                    .settings(params)
                    .map_err(|e| e.to_string())?;
                task.start = used;
                return Ok(task);
            }
            let n = tokio::io::AsyncReadExt::read(&mut task.io, &mut task.read[task.end..])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed by the server".into());
            }
            task.end += n;
        }
    }

    /// Writes the write buffer's frames until done or the socket is full. `Ready(Ok(true))` when
    /// the task should end (every handle and call gone).
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            if self.written == self.writing.len() {
                if self.flush {
                    ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                    self.flush = false;
                }
                self.writing.clear();
                self.written = 0;
                let mut state = self.shared.lock();
                std::mem::swap(&mut state.out, &mut self.writing);
                match &state.task {
                    Some(task) if task.will_wake(cx.waker()) => {}
                    _ => state.task = Some(cx.waker().clone()),
                }
                if self.writing.is_empty() {
                    return Poll::Ready(Ok(
                        state.closed.is_some() || (state.dropped && state.idle())
                    ));
                }
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.writing[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
            self.flush = true;
        }
    }

    /// Reads once, and handles every whole frame read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.read.len() - self.end < frame::HEADER_LEN + frame::DEFAULT_MAX_FRAME {
            self.read.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let mut buf = ReadBuf::new(&mut self.read[self.end..]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)).map_err(|e| e.to_string())?;
        let n = buf.filled().len();
        if n == 0 {
            return Poll::Ready(Err("closed by the server".into()));
        }
        self.end += n;
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let result = self.handle_all(&mut state);
        if let Err(error) = &result {
            frame::put_goaway(&mut state.out, error.code);
            state.fail(&error.to_string());
        }
        unlock_and_wake(state);
        Poll::Ready(result.map_err(|e| e.to_string()))
    }

    fn handle_all(&mut self, state: &mut State) -> Result<(), ConnectionError> {
        while let Some((frame, used)) =
            frame::parse(&self.read[self.start..self.end], frame::DEFAULT_MAX_FRAME)?
        {
            handle(frame, &mut self.decoder, &mut self.partial, state)?;
            self.start += used;
        }
        Ok(())
    }

    /// The connection failed: calls end with `error`, and the GOAWAY saying so is sent if it can be.
    fn fail(&mut self, cx: &mut Context<'_>, error: &str) {
        let mut state = self.shared.lock();
        state.fail(error);
        unlock_and_wake(state);
        let _ = self.poll_write(cx);
    }
}

impl Future for Task {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let task = &mut *self;
        for _ in 0..READS_PER_POLL {
            match task.poll_write(cx) {
                Poll::Ready(Ok(true)) => return Poll::Ready(()),
                Poll::Ready(Err(error)) => {
                    task.fail(cx, &error.to_string());
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(false)) | Poll::Pending => {}
            }
            match task.poll_read(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    task.fail(cx, &error);
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Bytes from a server, handled frame by frame as the task handles what it reads, with four
/// calls in flight (one with more body than the initial window), for the fuzz target in `fuzz/`:
/// whatever the bytes, a frame is handled or the connection fails, and nothing panics.
#[cfg(fuzzing)]
pub(crate) fn fuzz_server_bytes(data: &[u8]) {
    use super::state::Call;
    use bytes::Bytes;

    let mut state = State::new();
    for i in 0..4 {
        let body = Bytes::from(vec![0; if i == 0 { 100_000 } else { 10 }]);
        state.add(Call::new(
            Bytes::from_static(b"\x83\x86"),
            Bytes::new(),
            body,
            i % 2 == 0,
        ));
    }
    let mut decoder = ResponseDecoder::new(Some(Box::from(&b"x-trace-id"[..])));
    let mut partial = None;
    let mut rest = data;
    while let Ok(Some((frame, used))) = frame::parse(rest, frame::DEFAULT_MAX_FRAME) {
        if let Err(error) = handle(frame, &mut decoder, &mut partial, &mut state) {
            state.fail(&error.to_string());
            break;
        }
        // What the task would write and whom it would wake: not kept across frames.
        state.out.clear();
        state.wake.clear();
        rest = &rest[used..];
    }
}

/// Handles one frame from the server.
fn handle(
    frame: Frame<'_>,
    decoder: &mut ResponseDecoder,
    partial: &mut Option<Partial>,
    state: &mut State,
) -> Result<(), ConnectionError> {
    if let Some(open) = partial {
        let Frame::Continuation {
            stream,
            end_headers,
            block,
        } = frame
        else {
            return Err(frame::protocol("a header block interrupted"));
        };
        if stream != open.stream {
            return Err(frame::protocol("a CONTINUATION on another stream"));
        }
        if open.block.len() + block.len() > MAX_HEADER_LIST {
            return Err(ConnectionError {
                code: ErrorCode::PROTOCOL_ERROR,
                what: "a header block over the header list bound",
            });
        }
        open.block.extend_from_slice(block);
        if end_headers {
            let Some(open) = partial.take() else {
                return Ok(());
            };
            headers(decoder, state, open.stream, &open.block, open.end_stream)?;
        }
        return Ok(());
    }
    match frame {
        Frame::Data {
            stream,
            end_stream,
            data,
            flow_len,
        } => state.data(stream, data.len(), flow_len, end_stream),
        Frame::Headers {
            stream,
            end_stream,
            end_headers,
            block,
        } => {
            if end_headers {
                headers(decoder, state, stream, block, end_stream)?;
            } else {
                *partial = Some(Partial {
                    stream,
                    end_stream,
                    block: block.to_vec(),
                });
            }
        }
        Frame::Continuation { .. } => {
            return Err(frame::protocol("a CONTINUATION after a whole block"));
        }
        Frame::RstStream { stream, code } => state.reset(stream, code),
        Frame::Settings { ack: true, .. } => {}
        Frame::Settings { ack: false, params } => state.settings(params)?,
        Frame::PushPromise => return Err(frame::protocol("PUSH_PROMISE with push disabled")),
        Frame::Ping {
            ack: false,
            payload,
        } => frame::put_ping_ack(&mut state.out, payload),
        Frame::Ping { ack: true, .. } => {}
        Frame::GoAway { last_stream, .. } => state.go_away(last_stream),
        Frame::WindowUpdate { stream, increment } => state.window_update(stream, increment)?,
        Frame::Ignored => {}
    }
    Ok(())
}

/// Decodes a whole header block (always: the decoder's table depends on every block) and gives
/// it to its stream.
fn headers(
    decoder: &mut ResponseDecoder,
    state: &mut State,
    stream: u32,
    block: &[u8],
    end_stream: bool,
) -> Result<(), ConnectionError> {
    let fields = decoder.decode(block).map_err(|_| ConnectionError {
        code: ErrorCode::COMPRESSION_ERROR,
        what: "an undecodable header block",
    })?;
    state.headers(stream, &fields, || decoder.trace(), end_stream);
    Ok(())
}
