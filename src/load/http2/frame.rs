//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, parsing what the server sends into borrowed
//! views of the read buffer, and encoding what the client sends straight into the write buffer.

/// The frame header's length.
pub(super) const HEADER_LEN: usize = 9;
/// The largest frame payload either side may send until told otherwise, and the one this client
/// accepts: it advertises no other.
pub(super) const DEFAULT_MAX_FRAME: usize = 16_384;
/// The largest flow-control window RFC 9113 allows.
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const PRIORITY: u8 = 0x2;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const PING: u8 = 0x6;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const WINDOW_UPDATE: u8 = 0x8;
pub(super) const CONTINUATION: u8 = 0x9;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY_FLAG: u8 = 0x20;

pub(super) const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub(super) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub(super) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(super) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub(super) const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The client connection preface.
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 error code (RFC 9113 §7), named when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::load) struct ErrorCode(pub(super) u32);

impl ErrorCode {
    pub(super) const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub(super) const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub(super) const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub(super) const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub(super) const CANCEL: ErrorCode = ErrorCode(0x8);
    pub(super) const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);

    fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        NAMES.get(usize::try_from(self.0).ok()?).copied()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "error code {:#x}", self.0),
        }
    }
}

/// A frame the server sent that breaks the protocol: the connection ends with `code`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} ({code})")]
pub(super) struct ConnectionError {
    pub(super) code: ErrorCode,
    pub(super) what: &'static str,
}

pub(super) fn protocol(what: &'static str) -> ConnectionError {
    ConnectionError {
        code: ErrorCode::PROTOCOL_ERROR,
        what,
    }
}

/// One frame, borrowing its payload from the read buffer. Padding and priority fields are removed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// The whole payload's length, padding included: what flow control counts.
        flow_len: usize,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: &'a [u8],
    },
    RstStream {
        stream: u32,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        /// Six bytes per setting.
        params: &'a [u8],
    },
    PushPromise,
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// PRIORITY, and frame types this client does not know (which it must ignore).
    Ignored,
}

/// Parses the frame at the start of `buf`: `Ok(None)` until it is all there, else the frame and
/// how many bytes it took. A payload over `max_frame` is a connection error.
pub(super) fn parse(
    buf: &[u8],
    max_frame: usize,
) -> Result<Option<(Frame<'_>, usize)>, ConnectionError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    if len > max_frame {
        return Err(ConnectionError {
            code: ErrorCode::FRAME_SIZE_ERROR,
            what: "a frame larger than the advertised maximum",
        });
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let (kind, flags) = (header[3], header[4]);
    let stream = u32_at(&header[5..]) & 0x7fff_ffff;
    let frame = match kind {
        DATA => {
            need_stream(stream)?;
            Frame::Data {
                stream,
                end_stream: flags & END_STREAM != 0,
                data: unpad(payload, flags)?,
                flow_len: len,
            }
        }
        HEADERS => {
            need_stream(stream)?;
            let mut block = unpad(payload, flags)?;
            if flags & PRIORITY_FLAG != 0 {
                block = block
                    .get(5..)
                    .ok_or(protocol("a HEADERS priority past its end"))?;
            }
            Frame::Headers {
                stream,
                end_stream: flags & END_STREAM != 0,
                end_headers: flags & END_HEADERS != 0,
                block,
            }
        }
        PRIORITY => {
            need_stream(stream)?;
            sized(payload, 5)?;
            Frame::Ignored
        }
        RST_STREAM => {
            need_stream(stream)?;
            Frame::RstStream {
                stream,
                code: ErrorCode(u32_at(sized(payload, 4)?)),
            }
        }
        SETTINGS => {
            no_stream(stream)?;
            let ack = flags & ACK != 0;
            if payload.len() % 6 != 0 || (ack && !payload.is_empty()) {
                return Err(size_error("a SETTINGS frame of the wrong length"));
            }
            Frame::Settings {
                ack,
                params: payload,
            }
        }
        PUSH_PROMISE => Frame::PushPromise,
        PING => {
            no_stream(stream)?;
            let mut bytes = [0; 8];
            bytes.copy_from_slice(sized(payload, 8)?);
            Frame::Ping {
                ack: flags & ACK != 0,
                payload: bytes,
            }
        }
        GOAWAY => {
            no_stream(stream)?;
            if payload.len() < 8 {
                return Err(size_error("a GOAWAY frame too short"));
            }
            Frame::GoAway {
                last_stream: u32_at(payload) & 0x7fff_ffff,
                code: ErrorCode(u32_at(&payload[4..])),
            }
        }
        WINDOW_UPDATE => Frame::WindowUpdate {
            stream,
            increment: u32_at(sized(payload, 4)?) & 0x7fff_ffff,
        },
        CONTINUATION => {
            need_stream(stream)?;
            Frame::Continuation {
                stream,
                end_headers: flags & END_HEADERS != 0,
                block: payload,
            }
        }
        _ => Frame::Ignored,
    };
    Ok(Some((frame, HEADER_LEN + len)))
}

/// The settings in a SETTINGS payload, as (identifier, value).
pub(super) fn settings(params: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    params
        .chunks_exact(6)
        .map(|p| (u16::from_be_bytes([p[0], p[1]]), u32_at(&p[2..])))
}

fn u32_at(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn unpad(payload: &[u8], flags: u8) -> Result<&[u8], ConnectionError> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or(protocol("a padded frame without its pad length"))?;
    rest.len()
        .checked_sub(usize::from(pad))
        .map(|end| &rest[..end])
        .ok_or(protocol("padding longer than the frame"))
}

fn sized(payload: &[u8], len: usize) -> Result<&[u8], ConnectionError> {
    if payload.len() == len {
        Ok(payload)
    } else {
        Err(size_error("a frame of the wrong length for its type"))
    }
}

fn size_error(what: &'static str) -> ConnectionError {
    ConnectionError {
        code: ErrorCode::FRAME_SIZE_ERROR,
        what,
    }
}

fn need_stream(stream: u32) -> Result<(), ConnectionError> {
    if stream == 0 {
        Err(protocol("a stream frame on stream 0"))
    } else {
        Ok(())
    }
}

fn no_stream(stream: u32) -> Result<(), ConnectionError> {
    if stream == 0 {
        Ok(())
    } else {
        Err(protocol("a connection frame on a stream"))
    }
}

/// Appends a frame header. `len` never exceeds a frame size this client allows itself.
pub(super) fn put_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Appends a SETTINGS frame with `params`.
pub(super) fn put_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    put_header(out, params.len() * 6, SETTINGS, 0, 0);
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub(super) fn put_settings_ack(out: &mut Vec<u8>) {
    put_header(out, 0, SETTINGS, ACK, 0);
}

pub(super) fn put_ping_ack(out: &mut Vec<u8>, payload: [u8; 8]) {
    put_header(out, 8, PING, ACK, 0);
    out.extend_from_slice(&payload);
}

pub(super) fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_header(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

pub(super) fn put_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    put_header(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&code.0.to_be_bytes());
}

pub(super) fn put_goaway(out: &mut Vec<u8>, code: ErrorCode) {
    put_header(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&code.0.to_be_bytes());
}

/// Appends one DATA frame; the caller keeps `data` within the peer's frame size and windows.
pub(super) fn put_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    put_header(
        out,
        data.len(),
        DATA,
        if end_stream { END_STREAM } else { 0 },
        stream,
    );
    out.extend_from_slice(data);
}

/// Appends a header block made of `parts` as HEADERS and, past `max_frame`, CONTINUATION frames.
pub(super) fn put_headers(
    out: &mut Vec<u8>,
    stream: u32,
    parts: &[&[u8]],
    end_stream: bool,
    max_frame: usize,
) {
    let end = if end_stream { END_STREAM } else { 0 };
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= max_frame {
        put_header(out, total, HEADERS, end | END_HEADERS, stream);
        for part in parts {
            out.extend_from_slice(part);
        }
        return;
    }
    let block = parts.concat();
    let mut chunks = block.chunks(max_frame.max(1)).peekable();
    let mut kind = (HEADERS, end);
    while let Some(chunk) = chunks.next() {
        let last = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        put_header(out, chunk.len(), kind.0, kind.1 | last, stream);
        out.extend_from_slice(chunk);
        kind = (CONTINUATION, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_frame_is_parsed_only_once_whole() {
        let bytes = frame(DATA, END_STREAM, 3, b"hello");
        for cut in 0..bytes.len() {
            assert_eq!(
                parse(&bytes[..cut], DEFAULT_MAX_FRAME),
                Ok(None),
                "cut at {cut}"
            );
        }
        let (parsed, used) = parse(&bytes, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            parsed,
            Frame::Data {
                stream: 3,
                end_stream: true,
                data: b"hello",
                flow_len: 5
            }
        );
    }

    #[test]
    fn padding_and_priority_are_removed_and_counted() {
        let bytes = frame(DATA, PADDED, 1, b"\x03abc\0\0\0");
        let (parsed, _) = parse(&bytes, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(
            parsed,
            Frame::Data {
                stream: 1,
                end_stream: false,
                data: b"abc",
                flow_len: 7
            }
        );
        let bytes = frame(
            HEADERS,
            PADDED | PRIORITY_FLAG | END_HEADERS,
            1,
            b"\x02\0\0\0\x03\x10\x88\0\0",
        );
        let (parsed, _) = parse(&bytes, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(
            parsed,
            Frame::Headers {
                stream: 1,
                end_stream: false,
                end_headers: true,
                block: b"\x88"
            }
        );
        let too_much = frame(DATA, PADDED, 1, b"\x05ab");
        assert_eq!(
            parse(&too_much, DEFAULT_MAX_FRAME).unwrap_err().code,
            ErrorCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn a_frame_over_the_maximum_is_a_connection_error() {
        let bytes = frame(DATA, 0, 1, &[0; DEFAULT_MAX_FRAME + 1]);
        let error = parse(&bytes[..HEADER_LEN], DEFAULT_MAX_FRAME).unwrap_err();
        assert_eq!(error.code, ErrorCode::FRAME_SIZE_ERROR);
        assert!(
            parse(
                &frame(DATA, 0, 1, &[0; DEFAULT_MAX_FRAME]),
                DEFAULT_MAX_FRAME
            )
            .unwrap()
            .is_some()
        );
    }

    #[test]
    fn unknown_types_are_ignored_and_malformed_control_frames_refused() {
        let unknown = frame(0xfa, 0, 7, b"whatever");
        let (parsed, used) = parse(&unknown, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!((parsed, used), (Frame::Ignored, HEADER_LEN + 8));
        assert!(parse(&frame(PING, 0, 0, b"short"), DEFAULT_MAX_FRAME).is_err());
        assert!(parse(&frame(SETTINGS, 0, 1, b""), DEFAULT_MAX_FRAME).is_err());
        assert!(
            parse(
                &frame(SETTINGS, ACK, 0, b"\0\x01\0\0\0\0"),
                DEFAULT_MAX_FRAME
            )
            .is_err()
        );
        assert!(parse(&frame(DATA, 0, 0, b"x"), DEFAULT_MAX_FRAME).is_err());
    }

    #[test]
    fn control_frames_round_trip() {
        let mut out = Vec::new();
        put_settings(
            &mut out,
            &[
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),
            ],
        );
        let (parsed, used) = parse(&out, DEFAULT_MAX_FRAME).unwrap().unwrap();
        let Frame::Settings { ack: false, params } = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            settings(params).collect::<Vec<_>>(),
            [
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)
            ]
        );
        let mut rest = out.split_off(used);
        put_ping_ack(&mut rest, *b"12345678");
        put_window_update(&mut rest, 5, 1000);
        put_rst_stream(&mut rest, 5, ErrorCode::CANCEL);
        put_goaway(&mut rest, ErrorCode(0));
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some((frame, used)) = parse(&rest[at..], DEFAULT_MAX_FRAME).unwrap() {
            frames.push(frame);
            at += used;
        }
        assert_eq!(
            frames,
            [
                Frame::Ping {
                    ack: true,
                    payload: *b"12345678"
                },
                Frame::WindowUpdate {
                    stream: 5,
                    increment: 1000
                },
                Frame::RstStream {
                    stream: 5,
                    code: ErrorCode::CANCEL
                },
                Frame::GoAway {
                    last_stream: 0,
                    code: ErrorCode(0)
                },
            ]
        );
    }

    #[test]
    fn a_long_header_block_continues_in_continuation_frames() {
        let long = vec![b'x'; 40];
        let mut out = Vec::new();
        put_headers(&mut out, 9, &[b"head", &long], true, 16);
        let mut blocks = Vec::new();
        let mut at = 0;
        while let Some((frame, used)) = parse(&out[at..], DEFAULT_MAX_FRAME).unwrap() {
            blocks.push(frame);
            at += used;
        }
        assert_eq!(blocks.len(), 3);
        let Frame::Headers {
            stream: 9,
            end_stream: true,
            end_headers: false,
            block,
        } = &blocks[0]
        else {
            panic!("{:?}", blocks[0])
        };
        assert_eq!(block.len(), 16);
        assert!(matches!(
            blocks[1],
            Frame::Continuation {
                end_headers: false,
                ..
            }
        ));
        assert!(
            matches!(blocks[2], Frame::Continuation { end_headers: true, block, .. } if block.len() == 12)
        );
        assert_eq!(ErrorCode(7).to_string(), "REFUSED_STREAM");
        assert_eq!(ErrorCode(0x99).to_string(), "error code 0x99");
    }
}
