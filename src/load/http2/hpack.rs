//! Header blocks. Requests are encoded here without the encoder's dynamic table (static-table
//! indexes and literals without indexing), so a call shape's block is made once and reused
//! verbatim on every connection. Responses are decoded by `loona-hpack`, which keeps the dynamic
//! table and Huffman code the server may use; only the fields a call needs are kept.

use loona_hpack::Decoder;

/// The most of a header list this client accepts, as RFC 9113 §6.5.2 counts it (each field's
/// name and value plus 32). Advertised to the server; a larger list fails its call.
pub(super) const MAX_HEADER_LIST: usize = 64 << 10;

/// The encoder's dynamic table size this client assumes of the server (the default); a larger
/// size update in a block is a compression error.
const HEADER_TABLE_SIZE: usize = 4_096;

/// Appends the start of a request header block: the pseudo-headers of a POST to `path`.
pub(in crate::load) fn request_start(
    out: &mut Vec<u8>,
    https: bool,
    authority: &[u8],
    path: &[u8],
) {
    // Static table: 3 is `:method: POST`, 6 `:scheme: http`, 7 `:scheme: https`.
    out.push(0x83);
    out.push(if https { 0x87 } else { 0x86 });
    literal_indexed_name(out, 4, path); // :path
    literal_indexed_name(out, 1, authority); // :authority
}

/// Appends a header field as a literal without indexing, with a literal name of its own.
pub(in crate::load) fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    string(out, name);
    string(out, value);
}

/// Appends a header field as a literal never indexed (a value unique to one request, such as its
/// `traceparent`, that no intermediary should keep in a table).
pub(in crate::load) fn never_indexed(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x10);
    string(out, name);
    string(out, value);
}

/// Appends a literal without indexing whose name is static-table entry `index`.
pub(in crate::load) fn literal_indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    integer(out, 4, 0x00, index);
    string(out, value);
}

/// The static-table index of `content-type`.
pub(in crate::load) const CONTENT_TYPE: usize = 31;

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    integer(out, 7, 0x00, bytes.len());
    out.extend_from_slice(bytes);
}

/// An HPACK integer (RFC 7541 §5.1) with a `prefix`-bit prefix after the `flags` bits.
fn integer(out: &mut Vec<u8>, prefix: u32, flags: u8, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// What one response header block says, for a unary call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Fields {
    pub(super) status: Option<u16>,
    pub(super) grpc_status: Option<i32>,
    /// Whether the trace header was present; its value is in [`ResponseDecoder::trace`].
    pub(super) has_trace: bool,
    /// The list's size as RFC 9113 counts it.
    pub(super) size: usize,
}

/// A malformed header block: HPACK state is then lost, so the connection ends.
#[derive(Debug, thiserror::Error)]
#[error("undecodable header block: {0}")]
pub(super) struct DecodeError(String);

/// The connection's HPACK decoder, with the name of the response header that carries a trace id.
pub(super) struct ResponseDecoder {
    decoder: Decoder<'static>,
    trace_name: Option<Box<[u8]>>,
    trace: Vec<u8>,
}

impl ResponseDecoder {
    pub(super) fn new(trace_name: Option<Box<[u8]>>) -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        ResponseDecoder {
            decoder,
            trace_name,
            trace: Vec::new(),
        }
    }

    /// Decodes a whole header block (HEADERS and its CONTINUATIONs joined).
    pub(super) fn decode(&mut self, block: &[u8]) -> Result<Fields, DecodeError> {
        let mut fields = Fields::default();
        let trace_name = self.trace_name.as_deref();
        let trace = &mut self.trace;
        self.decoder
            .decode_with_cb(block, |name, value| {
                fields.size += name.len() + value.len() + 32;
                match &*name {
                    b":status" => fields.status = number(&value),
                    b"grpc-status" => fields.grpc_status = number(&value),
                    name if Some(name) == trace_name => {
                        trace.clear();
                        trace.extend_from_slice(&value);
                        fields.has_trace = true;
                    }
                    _ => {}
                }
            })
            .map_err(|e| DecodeError(e.to_string()))?;
        Ok(fields)
    }

    /// The trace header's value in the last block that had one.
    pub(super) fn trace(&self) -> String {
        String::from_utf8_lossy(&self.trace).into_owned()
    }
}

/// A decimal number of at most 9 digits (statuses), else `None`.
fn number<T: TryFrom<u32>>(digits: &[u8]) -> Option<T> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut value = 0u32;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(d - b'0');
    }
    T::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_their_prefix_then_continuation_bytes() {
        // RFC 7541 C.1: 10 in a 5-bit prefix, 1337 in a 5-bit prefix.
        let mut out = Vec::new();
        integer(&mut out, 5, 0, 10);
        integer(&mut out, 5, 0, 1337);
        assert_eq!(out, [0x0a, 0x1f, 0x9a, 0x0a]);
    }

    #[test]
    fn a_request_block_decodes_to_its_fields() {
        let mut block = Vec::new();
        request_start(&mut block, true, b"example.com:443", b"/pkg.Svc/Method");
        literal_indexed_name(&mut block, CONTENT_TYPE, b"application/grpc");
        literal(&mut block, b"te", b"trailers");
        never_indexed(&mut block, b"traceparent", &[b'a'; 300]);
        let decoded = Decoder::new().decode(&block).unwrap();
        let decoded: Vec<(&[u8], &[u8])> = decoded.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(
            decoded,
            [
                (&b":method"[..], &b"POST"[..]),
                (b":scheme", b"https"),
                (b":path", b"/pkg.Svc/Method"),
                (b":authority", b"example.com:443"),
                (b"content-type", b"application/grpc"),
                (b"te", b"trailers"),
                (b"traceparent", &[b'a'; 300]),
            ]
        );
    }

    #[test]
    fn a_response_block_gives_status_grpc_status_and_trace() {
        let mut decoder = ResponseDecoder::new(Some(b"x-trace-id"[..].into()));
        // `:status: 200` indexed, then `grpc-status: 7` and `x-trace-id` with incremental indexing,
        // then the same two again from the dynamic table (indexes 63 and 62).
        let mut block = vec![0x88, 0x40];
        string(&mut block, b"grpc-status");
        string(&mut block, b"7");
        block.push(0x40);
        string(&mut block, b"x-trace-id");
        string(&mut block, b"abc");
        let fields = decoder.decode(&block).unwrap();
        assert_eq!(
            (fields.status, fields.grpc_status, fields.has_trace),
            (Some(200), Some(7), true)
        );
        assert_eq!(decoder.trace(), "abc");
        let fields = decoder.decode(&[0xbf, 0xbe]).unwrap();
        assert_eq!((fields.grpc_status, fields.has_trace), (Some(7), true));
        assert!(
            decoder.decode(&[0xff, 0x7f]).is_err(),
            "an index past the tables"
        );
        assert_eq!(number::<u16>(b"204"), Some(204));
        assert_eq!(number::<u16>(b"2x4"), None);
        assert_eq!(number::<u16>(b"99999999"), None);
    }
}
