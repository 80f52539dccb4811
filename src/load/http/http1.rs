//! HTTP/1.1 for the load: a request's rendered bytes written to the connection and its answer
//! read back, both from the request's own future. No task per connection, no channel, no
//! per-request allocation beyond a sampled request's `traceparent`: a connection is a byte
//! stream and the read buffer it keeps between exchanges.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead as _, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};

use super::super::connect::Io;
use super::response::{Head, Reader, ResponseError};

/// How much room a read is given at least.
const READ_ROOM: usize = 8 << 10;

/// One HTTP/1.1 connection, open and idle between exchanges.
pub(super) struct Http1Conn {
    io: Box<dyn Io>,
    /// Bytes read and not yet taken: `buffer[start..]`.
    buffer: Vec<u8>,
    start: usize,
    /// Exchanges completed on it: a kept connection has served at least one.
    served: u64,
}

/// An exchange that failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    /// The request could not be written: the connection was dead before it left (on a kept
    /// one, closed by the server since its last exchange), so it may go again on a new one.
    #[error("sending the request: {0}")]
    Unsent(std::io::Error),
    /// The request left and no whole answer came back. It is not sent again: the server may
    /// have acted on it, and an answer that never came is what the run must see.
    #[error("{0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Response(#[from] ResponseError),
}

impl Http1Conn {
    pub(super) fn new(io: Box<dyn Io>) -> Self {
        Http1Conn {
            io,
            buffer: Vec::new(),
            start: 0,
            served: 0,
        }
    }

    /// It has served an exchange before (it was kept between requests).
    pub(super) fn kept(&self) -> bool {
        self.served > 0
    }

    /// Whether the server closed this idle connection, or sent something no request asked for:
    /// either way it cannot carry the next request. Costs no system call while the reactor has
    /// seen nothing arrive on the socket.
    pub(super) fn closed_while_idle(&mut self) -> bool {
        if self.start < self.buffer.len() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        !matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// Sends `request` and reads its answer whole; `Ok` with whether the connection may carry
    /// another request.
    pub(super) async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        trace_header: Option<&str>,
    ) -> Result<(Head, bool), Failure> {
        let sent = async {
            self.io.write_all(request).await?;
            self.io.flush().await
        };
        sent.await.map_err(Failure::Unsent)?;
        let mut reader = Reader::new(head_request, trace_header);
        let mut answered = false;
        loop {
            if self.start < self.buffer.len() {
                self.start += reader.advance(&self.buffer[self.start..])?;
            }
            if reader.done().is_some() {
                break;
            }
            self.make_room();
            match self.io.read_buf(&mut self.buffer).await {
                Ok(0) => {
                    if !answered {
                        return Err(Failure::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "connection closed before the response",
                        )));
                    }
                    reader.finish()?;
                    break;
                }
                Ok(_) => answered = true,
                Err(error) => return Err(Failure::Io(error)),
            }
        }
        let head = reader.done().cloned().ok_or(ResponseError::ClosedEarly)?;
        // Bytes past the answer belong to no request: the connection is out of step.
        let reusable = head.keep_alive && self.start == self.buffer.len();
        self.buffer.clear();
        self.start = 0;
        self.served += 1;
        Ok((head, reusable))
    }

    /// Drops what was taken and makes room for the next read; the buffer stays within the
    /// bounds of what the reader leaves untaken (a partial head or line) plus one read.
    fn make_room(&mut self) {
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        if self.buffer.capacity() - self.buffer.len() < READ_ROOM {
            self.buffer.reserve(READ_ROOM);
        }
    }
}

impl Failure {
    /// The request never left: it may be sent once more on a new connection.
    pub(super) fn retryable(&self) -> bool {
        matches!(self, Failure::Unsent(_))
    }
}
