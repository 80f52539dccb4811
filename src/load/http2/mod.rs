//! An HTTP/2 client made for unary calls: a call is one HEADERS (its block encoded ahead) and
//! DATA with END_STREAM out, and the response's status fields and body size in. Calls append their
//! frames to the connection's write buffer under one lock; the connection's task writes all that
//! has gathered in one write, reads in large chunks, and handles every frame of a read under one
//! lock. No task, channel or stream object per call, no prioritisation, no encoder table.

mod frame;
pub(super) mod hpack;
mod huffman;
mod io;
mod state;
#[cfg(fuzzing)]
pub(crate) use io::fuzz_server_bytes;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;

use frame::ErrorCode;
use state::{Call, State};

use super::connect::Io;

/// The most of one answer's body a call reads; past it the call fails rather than fill memory.
const MAX_ANSWER: usize = super::http::MAX_RESPONSE_BYTES;

/// How a call's answer ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Response {
    /// The HTTP status.
    pub(super) status: u16,
    /// `grpc-status` in the response headers (a trailers-only answer), and in the trailers.
    pub(super) head_grpc_status: Option<i32>,
    pub(super) trailer_grpc_status: Option<i32>,
    /// The trace header's value, for calls that asked for it.
    pub(super) trace: Option<String>,
    pub(super) body_len: usize,
}

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CallError {
    /// The server will not have processed the call (GOAWAY above it, REFUSED_STREAM, or the
    /// connection ended before it left): it may be sent again on another connection.
    #[error("the connection went away before the call was processed")]
    Refused,
    #[error("stream reset by the server: {0}")]
    Reset(ErrorCode),
    #[error("HTTP/2 connection: {0}")]
    Connection(String),
    #[error("response larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state completes before anything that could panic runs.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Wakes the calls and task collected while `state` was locked, after unlocking it.
fn unlock_and_wake(mut state: MutexGuard<'_, State>) {
    if state.wake.is_empty() {
        return;
    }
    let wake = std::mem::take(&mut state.wake);
    drop(state);
    for waker in wake {
        waker.wake();
    }
}

/// One HTTP/2 connection. Its task ends once every handle and call is gone, or it fails.
pub(super) struct Connection {
    shared: Arc<Shared>,
}

impl Connection {
    /// Sends the connection preface and settings on `io`, reads the server's SETTINGS (so its
    /// limits hold from the first call), and starts the connection's task. `trace_name` is the
    /// response header whose value calls may ask for.
    pub(super) async fn handshake(
        io: Box<dyn Io>,
        trace_name: Option<Box<[u8]>>,
    ) -> Result<Connection, String> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
        });
        let task = io::Task::handshake(io, shared.clone(), trace_name)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(task);
        Ok(Connection { shared })
    }

    /// Whether new calls may go on this connection: it has neither failed nor been told to go away.
    pub(super) fn usable(&self) -> bool {
        self.shared.lock().usable()
    }

    /// Sends a call: `head` is its header block, `extra` more fields for this call alone, `body`
    /// its DATA. The trace header is kept only `wants_trace`.
    pub(super) fn call(
        self: &Arc<Self>,
        head: Bytes,
        extra: Bytes,
        body: Bytes,
        wants_trace: bool,
    ) -> CallFuture {
        let mut state = self.shared.lock();
        if !state.usable() {
            return CallFuture {
                connection: self.clone(),
                key: Err(Some(CallError::Refused)),
            };
        }
        let was_empty = state.out.is_empty();
        let key = state.add(Call::new(head, extra, body, wants_trace));
        if was_empty
            && !state.out.is_empty()
            && let Some(task) = &state.task
        {
            task.wake_by_ref();
        }
        drop(state);
        CallFuture {
            connection: self.clone(),
            key: Ok(key),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.dropped = true;
        if let Some(task) = state.task.take() {
            state.wake.push(task);
        }
        unlock_and_wake(state);
    }
}

/// A call in flight; dropping it before its end resets its stream.
pub(super) struct CallFuture {
    connection: Arc<Connection>,
    /// The call's key in the connection's state, or why it could not start.
    key: Result<usize, Option<CallError>>,
}

impl Future for CallFuture {
    type Output = Result<Response, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let key = match &mut self.key {
            Ok(key) => *key,
            Err(error) => return Poll::Ready(Err(error.take().unwrap_or(CallError::Refused))),
        };
        let result = self.connection.shared.lock().poll_call(key, cx.waker());
        match result {
            Some(result) => {
                self.key = Err(None);
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for CallFuture {
    fn drop(&mut self) {
        if let Ok(key) = self.key {
            let mut state = self.connection.shared.lock();
            let was_empty = state.out.is_empty();
            state.cancel(key);
            if was_empty
                && !state.out.is_empty()
                && let Some(task) = state.task.clone()
            {
                state.wake.push(task);
            }
            unlock_and_wake(state);
        }
    }
}
