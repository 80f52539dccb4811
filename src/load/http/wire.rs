//! An HTTP/1.1 request as the bytes that go on the connection, rendered once per request of the
//! plan: sending one is a single write, and a sampled one only adds its `traceparent` line.

use bytes::{BufMut as _, Bytes, BytesMut};
use hyper::Method;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderMap, TRANSFER_ENCODING};
use hyper::http::uri::{Authority, PathAndQuery};

use super::super::driver::TRACEPARENT;

/// A request's bytes: the request line, the headers, the blank line and the body.
#[derive(Debug)]
pub(super) struct Wire {
    /// The whole request as sent unsampled.
    whole: Bytes,
    /// Where the headers a sampled request replaces (its own `traceparent`, usually none) start
    /// and end; the blank line and the body follow.
    trace_at: usize,
    tail_at: usize,
    /// A HEAD request, whose answer has no body.
    pub(super) head_request: bool,
}

impl Wire {
    /// Renders a request with the origin in `Host` (unless it sets its own) and the body framed
    /// by Content-Length (the request's own Content-Length and Transfer-Encoding are replaced).
    pub(super) fn render(
        method: &Method,
        path: &PathAndQuery,
        authority: &Authority,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Wire {
        let mut out = BytesMut::with_capacity(256 + body.len());
        out.put_slice(method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(path.as_str().as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        if !headers.contains_key(HOST) {
            field(&mut out, "host", authority.as_str().as_bytes());
        }
        let mut own_trace = Vec::new();
        for (name, value) in headers {
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                continue;
            }
            if name == TRACEPARENT {
                own_trace.push(value);
                continue;
            }
            field(&mut out, name.as_str(), value.as_bytes());
        }
        // RFC 9110, section 8.6: a length wherever the method gives content a meaning.
        if !body.is_empty() || [Method::POST, Method::PUT, Method::PATCH].contains(method) {
            field(
                &mut out,
                "content-length",
                body.len().to_string().as_bytes(),
            );
        }
        let trace_at = out.len();
        for value in own_trace {
            field(&mut out, TRACEPARENT, value.as_bytes());
        }
        let tail_at = out.len();
        out.put_slice(b"\r\n");
        out.put_slice(body);
        Wire {
            whole: out.freeze(),
            trace_at,
            tail_at,
            head_request: method == Method::HEAD,
        }
    }

    /// The request as sent unsampled.
    pub(super) fn unsampled(&self) -> &[u8] {
        &self.whole
    }

    /// The request with `traceparent` set to `value` (in place of any of its own).
    pub(super) fn sampled(&self, value: &str) -> Vec<u8> {
        let (head, tail) = (&self.whole[..self.trace_at], &self.whole[self.tail_at..]);
        let mut out = Vec::with_capacity(self.whole.len() + value.len() + 16);
        out.extend_from_slice(head);
        out.extend_from_slice(TRACEPARENT.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(tail);
        out
    }
}

/// One header line. Names and values are valid already (`HeaderName`, `HeaderValue`: no CR or LF).
fn field(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn render(
        method: Method,
        headers: &[(&'static str, &'static str)],
        body: &'static str,
    ) -> Wire {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        Wire::render(
            &method,
            &PathAndQuery::from_static("/api/v1/x?a=1"),
            &Authority::from_static("example.test:8080"),
            &map,
            &Bytes::from_static(body.as_bytes()),
        )
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("ASCII")
    }

    #[test]
    fn a_request_is_rendered_with_host_length_and_body() {
        let wire = render(Method::POST, &[("content-type", "application/json")], "{}");
        assert_eq!(
            text(wire.unsampled()),
            "POST /api/v1/x?a=1 HTTP/1.1\r\nhost: example.test:8080\r\n\
             content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        assert!(!wire.head_request);
        // No length on a GET without a body; a POST without one says 0.
        let get = render(Method::GET, &[("host", "other.test")], "");
        assert_eq!(
            text(get.unsampled()),
            "GET /api/v1/x?a=1 HTTP/1.1\r\nhost: other.test\r\n\r\n"
        );
        let empty_post = render(Method::POST, &[], "");
        assert!(text(empty_post.unsampled()).ends_with("content-length: 0\r\n\r\n"));
        assert!(render(Method::HEAD, &[], "").head_request);
    }

    #[test]
    fn the_request_frames_its_own_body() {
        let wire = render(
            Method::PUT,
            &[("transfer-encoding", "chunked"), ("content-length", "99")],
            "abc",
        );
        assert_eq!(
            text(wire.unsampled()),
            "PUT /api/v1/x?a=1 HTTP/1.1\r\nhost: example.test:8080\r\ncontent-length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn a_sampled_request_carries_the_harness_traceparent_in_place_of_its_own() {
        let wire = render(
            Method::POST,
            &[("traceparent", "00-old-01"), ("x-a", "1")],
            "b",
        );
        assert!(text(wire.unsampled()).contains("traceparent: 00-old-01\r\n\r\nb"));
        assert_eq!(
            text(&wire.sampled("00-new-01")),
            "POST /api/v1/x?a=1 HTTP/1.1\r\nhost: example.test:8080\r\nx-a: 1\r\n\
             content-length: 1\r\ntraceparent: 00-new-01\r\n\r\nb"
        );
    }
}
