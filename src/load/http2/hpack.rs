//! Header blocks (RFC 7541). Requests are encoded here without the encoder's dynamic table
//! (static-table indexes and literals without indexing), so a call shape's block is made once and
//! reused verbatim on every connection. Responses are decoded here too, with the dynamic table
//! and Huffman code the server may use, borrowing every field it can; only the fields a call
//! needs are kept. (`loona-hpack`, the maintained crate, builds a Huffman table of hash maps for
//! every Huffman-coded string, about 200,000 instructions each: a server sending a fresh trace id
//! in every answer would cost more than the rest of the call ten times over.)

use std::collections::VecDeque;

use super::huffman;

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
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum DecodeError {
    #[error("a header block cut short")]
    Truncated,
    #[error("an integer too large")]
    Integer,
    #[error("an index past the tables")]
    Index,
    #[error("a table size over the allowed one, or after a field")]
    SizeUpdate,
    #[error(transparent)]
    Huffman(#[from] huffman::HuffmanError),
}

/// The static table (RFC 7541 Appendix A), indexes 1 to 61.
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The decoder's state across a connection's header blocks: the dynamic table, newest first.
struct Table {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl Table {
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        match index {
            0 => Err(DecodeError::Index),
            1..=61 => Ok(STATIC[index - 1]),
            _ => self
                .entries
                .get(index - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or(DecodeError::Index),
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        self.evict(self.max.saturating_sub(size));
        if size <= self.max {
            self.entries.push_front((name.into(), value.into()));
            self.size += size;
        }
    }

    /// Evicts the oldest entries until the table holds at most `limit`.
    fn evict(&mut self, limit: usize) {
        while self.size > limit {
            let Some((name, value)) = self.entries.pop_back() else {
                self.size = 0;
                return;
            };
            self.size -= name.len() + value.len() + 32;
        }
    }
}

/// The connection's HPACK decoder, with the name of the response header that carries a trace id.
pub(super) struct ResponseDecoder {
    table: Table,
    trace_name: Option<Box<[u8]>>,
    trace: Vec<u8>,
    /// Huffman-decoded names and values, reused.
    name: Vec<u8>,
    value: Vec<u8>,
}

impl ResponseDecoder {
    pub(super) fn new(trace_name: Option<Box<[u8]>>) -> Self {
        ResponseDecoder {
            table: Table {
                entries: VecDeque::new(),
                size: 0,
                max: HEADER_TABLE_SIZE,
            },
            trace_name,
            trace: Vec::new(),
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Decodes a whole header block (HEADERS and its CONTINUATIONs joined).
    pub(super) fn decode(&mut self, block: &[u8]) -> Result<Fields, DecodeError> {
        let mut fields = Fields::default();
        let mut trace = std::mem::take(&mut self.trace);
        let trace_name = self.trace_name.take();
        let result = self.each(block, |name, value| {
            keep(&mut fields, &mut trace, trace_name.as_deref(), name, value)
        });
        (self.trace, self.trace_name) = (trace, trace_name);
        result.map(|()| fields)
    }

    /// Gives each field of `block` to `field`, in order.
    fn each(&mut self, block: &[u8], field: impl FnMut(&[u8], &[u8])) -> Result<(), DecodeError> {
        let mut name = std::mem::take(&mut self.name);
        let mut value = std::mem::take(&mut self.value);
        let result = decode_block(&mut self.table, block, &mut name, &mut value, field);
        (self.name, self.value) = (name, value);
        result
    }

    /// The trace header's value in the last block that had one.
    pub(super) fn trace(&self) -> String {
        String::from_utf8_lossy(&self.trace).into_owned()
    }
}

/// Decodes `block` against `table`, giving each field to `field`.
fn decode_block(
    table: &mut Table,
    block: &[u8],
    name_buf: &mut Vec<u8>,
    value_buf: &mut Vec<u8>,
    mut field: impl FnMut(&[u8], &[u8]),
) -> Result<(), DecodeError> {
    let mut src = block;
    let mut any_field = false;
    while let Some(&first) = src.first() {
        if first & 0x80 != 0 {
            let index = read_integer(&mut src, 7)?;
            let (name, value) = table.get(index)?;
            field(name, value);
        } else if first & 0xe0 == 0x20 {
            // A dynamic table size update: only before the block's first field.
            let size = read_integer(&mut src, 5)?;
            if any_field || size > HEADER_TABLE_SIZE {
                return Err(DecodeError::SizeUpdate);
            }
            table.max = size;
            table.evict(size);
            continue;
        } else {
            // Literals: with incremental indexing (01), without (0000) or never indexed (0001).
            let indexing = first & 0x40 != 0;
            let index = read_integer(&mut src, if indexing { 6 } else { 4 })?;
            let raw_name = if index == 0 {
                read_string(&mut src, name_buf)?
            } else {
                let (name, _) = table.get(index)?;
                name_buf.clear();
                name_buf.extend_from_slice(name);
                None
            };
            let raw_value = read_string(&mut src, value_buf)?;
            let name = raw_name.unwrap_or(&name_buf[..]);
            let value = raw_value.unwrap_or(&value_buf[..]);
            field(name, value);
            if indexing {
                table.insert(name, value);
            }
        }
        any_field = true;
    }
    Ok(())
}

/// Notes what a call needs of one decoded field.
fn keep(
    fields: &mut Fields,
    trace: &mut Vec<u8>,
    trace_name: Option<&[u8]>,
    name: &[u8],
    value: &[u8],
) {
    fields.size += name.len() + value.len() + 32;
    match name {
        b":status" => fields.status = number(value),
        b"grpc-status" => fields.grpc_status = number(value),
        name if Some(name) == trace_name => {
            trace.clear();
            trace.extend_from_slice(value);
            fields.has_trace = true;
        }
        _ => {}
    }
}

/// An HPACK integer with a `prefix`-bit prefix, advancing `src` past it. Values this client can
/// use are small: past 2^28 is an error.
fn read_integer(src: &mut &[u8], prefix: u32) -> Result<usize, DecodeError> {
    let (&first, mut rest) = src.split_first().ok_or(DecodeError::Truncated)?;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value == max {
        let mut shift = 0;
        loop {
            let (&byte, after) = rest.split_first().ok_or(DecodeError::Truncated)?;
            rest = after;
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
            if shift > 21 {
                return Err(DecodeError::Integer);
            }
        }
    }
    *src = rest;
    Ok(value)
}

/// A string literal, advancing `src` past it: `Some` borrowed from the block, or `None` when it
/// was Huffman-coded and is decoded in `buf`.
fn read_string<'a>(src: &mut &'a [u8], buf: &mut Vec<u8>) -> Result<Option<&'a [u8]>, DecodeError> {
    let huffman = src.first().ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let len = read_integer(src, 7)?;
    let (bytes, rest) = src.split_at_checked(len).ok_or(DecodeError::Truncated)?;
    *src = rest;
    if !huffman {
        return Ok(Some(bytes));
    }
    buf.clear();
    huffman::decode(bytes, buf)?;
    Ok(None)
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

    fn decode_all(decoder: &mut ResponseDecoder, block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut fields = Vec::new();
        decoder
            .each(block, |n, v| fields.push((n.to_vec(), v.to_vec())))
            .unwrap();
        fields
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|d| u8::from_str_radix(std::str::from_utf8(d).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_7541_requests_with_huffman_decode_through_the_dynamic_table() {
        // C.4.1 to C.4.3: one connection's three requests.
        let mut decoder = ResponseDecoder::new(None);
        let pairs = |fields: Vec<(Vec<u8>, Vec<u8>)>| {
            fields
                .into_iter()
                .map(|(n, v)| {
                    format!(
                        "{}: {}",
                        String::from_utf8(n).unwrap(),
                        String::from_utf8(v).unwrap()
                    )
                })
                .collect::<Vec<_>>()
        };
        let first = decode_all(
            &mut decoder,
            &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
        );
        assert_eq!(
            pairs(first),
            [
                ":method: GET",
                ":scheme: http",
                ":path: /",
                ":authority: www.example.com"
            ]
        );
        assert_eq!(decoder.table.size, 57);
        let second = decode_all(&mut decoder, &hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(
            pairs(second),
            [
                ":method: GET",
                ":scheme: http",
                ":path: /",
                ":authority: www.example.com",
                "cache-control: no-cache"
            ]
        );
        assert_eq!(decoder.table.size, 110);
        let third = decode_all(
            &mut decoder,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        );
        assert_eq!(
            pairs(third),
            [
                ":method: GET",
                ":scheme: https",
                ":path: /index.html",
                ":authority: www.example.com",
                "custom-key: custom-value"
            ]
        );
        assert_eq!(decoder.table.size, 164);
    }

    #[test]
    fn the_table_evicts_its_oldest_entries_and_bounds_its_size() {
        let mut decoder = ResponseDecoder::new(None);
        // Size update to 100 (31 + 69), then two entries of 32 + 2 + 30 = 64 bytes: the first goes.
        let mut block = vec![0x3f, 0x45];
        for value in [[b'a'; 30], [b'b'; 30]] {
            block.push(0x40);
            string(&mut block, b"k1");
            string(&mut block, &value);
        }
        decode_all(&mut decoder, &block);
        assert_eq!(decoder.table.entries.len(), 1);
        assert_eq!(decode_all(&mut decoder, &[0xbe])[0].1, [b'b'; 30]);
        assert_eq!(decoder.decode(&[0xbf]), Err(DecodeError::Index));
        // Past the allowed size, or after a field, a size update is an error.
        assert_eq!(
            decoder.decode(&[0x3f, 0xe2, 0x1f]),
            Err(DecodeError::SizeUpdate)
        );
        assert_eq!(decoder.decode(&[0x88, 0x20]), Err(DecodeError::SizeUpdate));
        // Cut short anywhere.
        assert_eq!(
            decoder.decode(&[0x40, 0x02, b'k']),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decoder.decode(&[0xff]), Err(DecodeError::Truncated));
        assert_eq!(
            decoder.decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::Integer)
        );
    }

    #[test]
    fn a_request_block_decodes_to_its_fields() {
        let mut block = Vec::new();
        request_start(&mut block, true, b"example.com:443", b"/pkg.Svc/Method");
        literal_indexed_name(&mut block, CONTENT_TYPE, b"application/grpc");
        literal(&mut block, b"te", b"trailers");
        never_indexed(&mut block, b"traceparent", &[b'a'; 300]);
        let decoded = decode_all(&mut ResponseDecoder::new(None), &block);
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
