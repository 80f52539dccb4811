//! Reading one HTTP/1.1 response from the bytes of a connection, without doing I/O itself: the
//! head parsed by `httparse`, the body framed by Content-Length, chunked transfer coding or the
//! end of the connection, counted and dropped as it comes. Every read of the server's bytes is
//! bounded: the head, each chunk-size line, the trailers and the body.

use std::mem::MaybeUninit;

use httparse::Status;

use super::MAX_RESPONSE_BYTES;

/// The largest response head (status line and headers) read, and the largest trailer section.
pub(super) const MAX_HEAD_BYTES: usize = 64 << 10;

/// The most header fields a response head (or its trailer section) may have.
pub(super) const MAX_HEADERS: usize = 100;

/// The longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4 << 10;

/// The most informational (1xx) answers read before the final one.
const MAX_INFORMATIONAL: u32 = 16;

/// What was wrong with a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResponseError {
    #[error("malformed response head: {0}")]
    MalformedHead(httparse::Error),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("more than {MAX_HEADERS} response header fields")]
    TooManyHeaders,
    #[error("more than {MAX_INFORMATIONAL} informational (1xx) responses")]
    TooManyInformational,
    #[error("101 Switching Protocols: the load does not upgrade connections")]
    SwitchingProtocols,
    #[error("malformed Content-Length {0:?}")]
    BadContentLength(String),
    #[error("malformed chunk size line")]
    BadChunkSize,
    #[error("chunk size line longer than {MAX_CHUNK_LINE} bytes")]
    ChunkLineTooLong,
    #[error("chunk data not followed by CRLF")]
    BadChunkEnd,
    #[error("malformed trailer section: {0}")]
    MalformedTrailers(httparse::Error),
    #[error("trailer section larger than {MAX_HEAD_BYTES} bytes")]
    TrailersTooLarge,
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("connection closed before the response ended")]
    ClosedEarly,
}

/// The part of a response the load keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// The connection may carry another exchange: HTTP/1.1 without `Connection: close`, and a
    /// body whose end was known without the connection ending.
    pub(crate) keep_alive: bool,
    /// The trace id response header, when one was asked for.
    pub(crate) trace_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// Body bytes still due under Content-Length.
    Length(u64),
    ChunkSize,
    /// Bytes of the current chunk still due.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    /// The body runs to the end of the connection.
    UntilClose,
    Done,
}

/// Reads one response as its bytes are fed in: [`Reader::advance`] with what has arrived,
/// [`Reader::finish`] when the connection ends.
pub(crate) struct Reader<'a> {
    state: State,
    /// The request was HEAD: whatever the headers say, no body follows.
    head_request: bool,
    /// The header whose value to keep (the trace id), if any.
    trace_header: Option<&'a str>,
    informational: u32,
    body_bytes: u64,
    head: Option<Head>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(head_request: bool, trace_header: Option<&'a str>) -> Self {
        Reader {
            state: State::Head,
            head_request,
            trace_header,
            informational: 0,
            body_bytes: 0,
            head: None,
        }
    }

    /// The response, once it has been read whole.
    pub(crate) fn done(&self) -> Option<&Head> {
        match self.state {
            State::Done => self.head.as_ref(),
            _ => None,
        }
    }

    /// Takes in what it can of `input` (the bytes after those already taken) and says how many
    /// it took; what it left is the start of something it needs more of to read, or bytes after
    /// the response.
    pub(crate) fn advance(&mut self, input: &[u8]) -> Result<usize, ResponseError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                State::Done => return Ok(used),
                State::Head => match self.head(rest)? {
                    Some(n) => used += n,
                    None => return Ok(used),
                },
                State::Length(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let take = left.min(rest.len() as u64);
                    // At most `rest.len()`, so it fits.
                    used += take as usize;
                    let left = left - take;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(Status::Complete((n, size))) => {
                        used += n;
                        self.count(size)?;
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    Ok(Status::Partial) if rest.len() > MAX_CHUNK_LINE => {
                        return Err(ResponseError::ChunkLineTooLong);
                    }
                    Ok(Status::Partial) => return Ok(used),
                    Err(httparse::InvalidChunkSize) => return Err(ResponseError::BadChunkSize),
                },
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        return Ok(used);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ResponseError::BadChunkEnd);
                    }
                    used += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(rest, &mut fields) {
                        Ok(Status::Complete((n, _))) if n > MAX_HEAD_BYTES => {
                            return Err(ResponseError::TrailersTooLarge);
                        }
                        Ok(Status::Complete((n, _))) => {
                            used += n;
                            self.state = State::Done;
                        }
                        Ok(Status::Partial) if rest.len() > MAX_HEAD_BYTES => {
                            return Err(ResponseError::TrailersTooLarge);
                        }
                        Ok(Status::Partial) => return Ok(used),
                        Err(error) => return Err(ResponseError::MalformedTrailers(error)),
                    }
                }
                State::UntilClose => {
                    self.count(rest.len() as u64)?;
                    return Ok(input.len());
                }
            }
        }
    }

    /// The connection ended: the response is whole only if its body ran to the end.
    pub(crate) fn finish(&mut self) -> Result<(), ResponseError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(ResponseError::ClosedEarly),
        }
    }

    /// Counts `n` more body bytes against the bound.
    fn count(&mut self, n: u64) -> Result<(), ResponseError> {
        self.body_bytes = self.body_bytes.saturating_add(n);
        if self.body_bytes > MAX_RESPONSE_BYTES as u64 {
            return Err(ResponseError::TooLarge);
        }
        Ok(())
    }

    /// Reads a head from the start of `input`: `None` if it is not all there yet, else its length
    /// (an informational answer's head is read and passed over).
    fn head(&mut self, input: &[u8]) -> Result<Option<usize>, ResponseError> {
        // Left uninitialised: the parser writes only the fields it finds.
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            input,
            &mut fields,
        );
        let n = match parsed {
            Ok(Status::Complete(n)) if n > MAX_HEAD_BYTES => {
                return Err(ResponseError::HeadTooLarge);
            }
            Ok(Status::Complete(n)) => n,
            Ok(Status::Partial) if input.len() > MAX_HEAD_BYTES => {
                return Err(ResponseError::HeadTooLarge);
            }
            Ok(Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
            Err(error) => return Err(ResponseError::MalformedHead(error)),
        };
        // A complete head has both.
        let (status, minor) = (response.code.unwrap_or(0), response.version.unwrap_or(0));
        if status == 101 {
            return Err(ResponseError::SwitchingProtocols);
        }
        if (100..200).contains(&status) {
            self.informational += 1;
            if self.informational > MAX_INFORMATIONAL {
                return Err(ResponseError::TooManyInformational);
            }
            return Ok(Some(n));
        }
        let mut keep_alive = minor >= 1;
        let mut length: Option<u64> = None;
        let mut transfer_coding = false;
        let mut chunked = false;
        let mut trace_id = None;
        for field in response.headers.iter() {
            let name = field.name;
            if name.eq_ignore_ascii_case("content-length") {
                let value = content_length(field.value)?;
                if length.is_some_and(|earlier| earlier != value) {
                    return Err(ResponseError::BadContentLength(
                        String::from_utf8_lossy(field.value).into_owned(),
                    ));
                }
                length = Some(value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_coding = true;
                // The last coding applied decides how the body ends.
                chunked = tokens(field.value)
                    .last()
                    .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                if tokens(field.value).any(|token| token.eq_ignore_ascii_case(b"close")) {
                    keep_alive = false;
                }
            } else if trace_id.is_none()
                && self
                    .trace_header
                    .is_some_and(|wanted| name.eq_ignore_ascii_case(wanted))
            {
                trace_id = Some(String::from_utf8_lossy(field.value).into_owned());
            }
        }
        // RFC 9112, section 6.3.
        self.state = if self.head_request || status == 204 || status == 304 {
            State::Done
        } else if transfer_coding {
            if length.is_some() {
                // Both: a message a proxy may have mangled; do not trust what follows it.
                keep_alive = false;
            }
            if chunked {
                State::ChunkSize
            } else {
                keep_alive = false;
                State::UntilClose
            }
        } else if let Some(length) = length {
            if length > MAX_RESPONSE_BYTES as u64 {
                return Err(ResponseError::TooLarge);
            }
            if length == 0 {
                State::Done
            } else {
                State::Length(length)
            }
        } else {
            keep_alive = false;
            State::UntilClose
        };
        self.head = Some(Head {
            status,
            keep_alive,
            trace_id,
        });
        Ok(Some(n))
    }
}

/// A Content-Length value: decimal digits, nothing else (surrounding whitespace aside).
fn content_length(value: &[u8]) -> Result<u64, ResponseError> {
    let digits = value.trim_ascii();
    let bad = || ResponseError::BadContentLength(String::from_utf8_lossy(value).into_owned());
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    digits
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or_else(bad)
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

/// An answer as a server sends it, for the fuzz target in `fuzz/`: the first byte says whether the
/// request was HEAD and in pieces of what size the rest arrives; the reader takes them in as a
/// connection does, then the connection ends. Whatever the bytes, no panic.
#[cfg(fuzzing)]
pub(crate) fn fuzz_answer(data: &[u8]) {
    let Some((&flags, wire)) = data.split_first() else {
        return;
    };
    let step = usize::from(flags >> 1).max(1);
    let mut reader = Reader::new(flags & 1 == 1, Some("x-trace-id"));
    let mut buffer = Vec::new();
    for piece in wire.chunks(step) {
        buffer.extend_from_slice(piece);
        match reader.advance(&buffer) {
            Ok(used) => drop(buffer.drain(..used)),
            Err(error) => return drop(error.to_string()),
        }
        if reader.done().is_some() {
            return;
        }
    }
    if let Err(error) = reader.finish() {
        drop(error.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a reader `step` bytes at a time, as a connection would deliver it, keeping
    /// what the reader left for the next read; then the end of the connection if `closes`.
    fn read_in(
        wire: &[u8],
        step: usize,
        head_request: bool,
        closes: bool,
    ) -> Result<(Head, usize), ResponseError> {
        let mut reader = Reader::new(head_request, Some("x-trace-id"));
        let mut buffer = Vec::new();
        let mut fed = 0;
        while reader.done().is_none() && fed < wire.len() {
            let end = (fed + step).min(wire.len());
            buffer.extend_from_slice(&wire[fed..end]);
            fed = end;
            let used = reader.advance(&buffer)?;
            buffer.drain(..used);
        }
        if reader.done().is_none() && closes {
            reader.finish()?;
        }
        let head = reader.done().cloned().ok_or(ResponseError::ClosedEarly)?;
        Ok((head, buffer.len() + wire.len() - fed))
    }

    fn read(wire: &[u8]) -> Result<(Head, usize), ResponseError> {
        read_in(wire, wire.len().max(1), false, false)
    }

    fn ok(status: u16, keep_alive: bool) -> Head {
        Head {
            status,
            keep_alive,
            trace_id: None,
        }
    }

    #[test]
    fn a_content_length_body_is_read_to_its_length_and_nothing_after() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Trace-ID: abc\r\n\r\nhelloHTTP";
        let (head, left) = read(wire).expect("read");
        assert_eq!(head.status, 200);
        assert!(head.keep_alive);
        assert_eq!(head.trace_id.as_deref(), Some("abc"));
        // The bytes after the body are not the response's.
        assert_eq!(left, 4);
    }

    #[test]
    fn a_chunked_body_with_extensions_and_trailers_is_read_through() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
            5;name=value\r\nhello\r\n\
            0A\r\n0123456789\r\n\
            0\r\nGrpc-Status: 0\r\nX-Other: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let (head, left) = read_in(wire, step, false, false).expect("read");
            assert_eq!(
                (head.status, head.keep_alive, left),
                (200, true, 0),
                "step {step}"
            );
        }
        // Without its last blank line the trailer section is not over.
        let cut = &wire[..wire.len() - 2];
        assert_eq!(read(cut), Err(ResponseError::ClosedEarly));
    }

    #[test]
    fn a_body_without_length_runs_to_the_end_of_the_connection() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this";
        let (head, _) = read_in(wire, 4, false, true).expect("read");
        assert_eq!(head, ok(200, false));
        // Until the connection ends it is not over.
        assert_eq!(read(wire), Err(ResponseError::ClosedEarly));
        // A transfer coding other than chunked ends the same way.
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz";
        assert_eq!(
            read_in(wire, 3, false, true).expect("read").0,
            ok(200, false)
        );
    }

    #[test]
    fn head_204_and_304_answers_have_no_body_whatever_their_headers_say() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        assert_eq!(
            read_in(wire, 5, true, false).expect("HEAD"),
            (ok(200, true), 0)
        );
        assert_eq!(read(wire), Err(ResponseError::ClosedEarly));
        for status in ["204 No Content", "304 Not Modified"] {
            let wire = format!("HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n");
            let (head, left) = read(wire.as_bytes()).expect(status);
            assert_eq!((head.status, left), (status[..3].parse().expect("code"), 0));
        }
    }

    #[test]
    fn informational_answers_are_passed_over() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
            HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        for step in [1, 10, wire.len()] {
            assert_eq!(
                read_in(wire, step, false, false).expect("read"),
                (ok(201, true), 0)
            );
        }
        let endless = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INFORMATIONAL as usize + 1);
        assert_eq!(read(&endless), Err(ResponseError::TooManyInformational));
    }

    #[test]
    fn connection_close_and_http_1_0_answers_end_the_connection() {
        let wire = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read(wire).expect("read").0, ok(200, false));
        let wire = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read(wire).expect("read").0, ok(200, false));
    }

    #[test]
    fn an_oversized_head_is_refused() {
        let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
        let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..70 {
            wire.extend_from_slice(filler.as_bytes());
        }
        // Refused before the head ends, however it arrives.
        assert_eq!(
            read_in(&wire, 4096, false, false),
            Err(ResponseError::HeadTooLarge)
        );
        wire.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert_eq!(read(&wire), Err(ResponseError::HeadTooLarge));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(read(&many), Err(ResponseError::TooManyHeaders));
    }

    #[test]
    fn an_oversized_body_is_refused() {
        let wire = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE_BYTES + 1
        );
        assert_eq!(read(wire.as_bytes()), Err(ResponseError::TooLarge));
        let wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_RESPONSE_BYTES}\r\n\r\n");
        let mut wire = wire.into_bytes();
        wire.resize(wire.len() + MAX_RESPONSE_BYTES, b'x');
        assert_eq!(
            read_in(&wire, 1 << 16, false, false)
                .expect("read")
                .0
                .status,
            200
        );
        // Chunks and close-delimited bodies are counted as they come.
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_RESPONSE_BYTES / 2 + 1
        );
        let mut reader = Reader::new(false, None);
        let used = reader.advance(chunked.as_bytes()).expect("first chunk");
        assert_eq!(used, chunked.len());
        let mut rest = vec![b'x'; MAX_RESPONSE_BYTES / 2 + 1];
        rest.extend_from_slice(format!("\r\n{:x}\r\n", MAX_RESPONSE_BYTES / 2).as_bytes());
        assert_eq!(reader.advance(&rest), Err(ResponseError::TooLarge));
        let mut reader = Reader::new(false, None);
        let head = b"HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(reader.advance(head), Ok(head.len()));
        let block = vec![0u8; 1 << 20];
        for _ in 0..16 {
            assert_eq!(reader.advance(&block), Ok(block.len()));
        }
        assert_eq!(reader.advance(b"!"), Err(ResponseError::TooLarge));
    }

    #[test]
    fn malformed_answers_are_refused_with_what_was_wrong() {
        let cases: [(&[u8], ResponseError); 7] = [
            (
                b"HTTP/1.1 2x0 OK\r\n\r\n",
                ResponseError::MalformedHead(httparse::Error::Status),
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                ResponseError::MalformedHead(httparse::Error::Version),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                ResponseError::BadContentLength("1x".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::BadContentLength("2".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ResponseError::BadChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
                ResponseError::BadChunkEnd,
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                ResponseError::SwitchingProtocols,
            ),
        ];
        for (wire, error) in cases {
            assert_eq!(read(wire), Err(error), "{}", String::from_utf8_lossy(wire));
        }
        let long = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;{}",
            "x".repeat(MAX_CHUNK_LINE)
        );
        assert_eq!(read(long.as_bytes()), Err(ResponseError::ChunkLineTooLong));
        assert_eq!(
            ResponseError::BadChunkSize.to_string(),
            "malformed chunk size line"
        );
    }

    #[test]
    fn the_trace_header_is_read_only_when_asked_for() {
        let wire = b"HTTP/1.1 200 OK\r\nx-trace-id: 0af7\r\nContent-Length: 0\r\n\r\n";
        let mut reader = Reader::new(false, None);
        assert_eq!(reader.advance(wire), Ok(wire.len()));
        assert_eq!(reader.done(), Some(&ok(200, true)));
        let (head, _) = read_in(wire, 1, false, false).expect("read");
        assert_eq!(head.trace_id.as_deref(), Some("0af7"));
    }
}
