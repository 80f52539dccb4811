//! HTTP/2 (h2c by prior knowledge, h2 by ALPN) over hyper's connection API: every request on the
//! pool's one shared connection.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http2;
use hyper::header::{HeaderName, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, Uri};

use super::super::driver::TRACEPARENT;
use super::super::sample::TraceParent;
use super::pool::{Connection, Opener, Pool};
use super::{Error, HttpRequest, MAX_RESPONSE_BYTES};

/// One exchange on the shared connection of `generation`: the status and, for a sampled
/// request, the trace id header.
pub(super) async fn exchange(
    pool: &Pool,
    opener: &Opener<'_>,
    (generation, mut sender): (u64, http2::SendRequest<Full<Bytes>>),
    payload: &HttpRequest,
    path: &PathAndQuery,
    trace: Option<&TraceParent>,
    trace_header: &HeaderName,
) -> Result<(u16, Option<String>), Error> {
    let request = request(pool, payload, path, trace)?;
    let response = match sender.try_send_request(request).await {
        Ok(response) => response,
        // The shared connection is going away (GOAWAY, or closed) and the request never left:
        // it goes on the connection that replaces it.
        Err(mut failed) => {
            let Some(request) = failed.take_message() else {
                return Err(failed.into_error().into());
            };
            pool.forget_shared(generation);
            match pool.checkout(opener).await? {
                Connection::Http2(_, mut fresh) => fresh.send_request(request).await?,
                Connection::Http1(_) => return Err(failed.into_error().into()),
            }
        }
    };
    read(response, trace, trace_header).await
}

/// The request, with the origin in its pseudo-headers.
fn request(
    pool: &Pool,
    payload: &HttpRequest,
    path: &PathAndQuery,
    trace: Option<&TraceParent>,
) -> Result<Request<Full<Bytes>>, Error> {
    let mut request = Request::new(Full::new(payload.body.clone()));
    *request.method_mut() = payload.method.clone();
    *request.headers_mut() = payload.headers.clone();
    *request.uri_mut() = Uri::builder()
        .scheme(pool.origin.scheme.clone())
        .authority(pool.origin.authority.clone())
        .path_and_query(path.clone())
        .build()?;
    if let Some(trace) = trace
        && let Ok(value) = HeaderValue::try_from(trace.header())
    {
        request.headers_mut().insert(TRACEPARENT, value);
    }
    Ok(request)
}

/// Reads a response through: its status, the trace id header if the request was sampled, and the
/// whole body, counted (not kept) and bounded.
async fn read(
    response: Response<hyper::body::Incoming>,
    trace: Option<&TraceParent>,
    trace_header: &HeaderName,
) -> Result<(u16, Option<String>), Error> {
    let status = response.status().as_u16();
    let trace_id = trace
        .and_then(|_| response.headers().get(trace_header))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    // Read the whole body: the exchange is not over before.
    let mut body = response.into_body();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            received += data.len();
            if received > MAX_RESPONSE_BYTES {
                return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes").into());
            }
        }
    }
    Ok((status, trace_id))
}
