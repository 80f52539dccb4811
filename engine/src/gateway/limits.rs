//! Limits on a request's body, applied before a handler reads it: a declared length over the
//! limit is answered 413 without reading a byte, and a body must arrive whole within the body read
//! timeout or the request is answered 408.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::Gateway;
use super::api::ApiError;
use crate::metrics::Refusal;

/// The body limits of the API routes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// The middleware enforcing [`BodyLimits`], inside `observe` so that what it refuses is measured
/// and traced as the request it was.
pub async fn enforce(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let limits = gateway.body_limits;
    // hyper gives a body of declared length an exact size hint: the Content-Length.
    let declared = request.body().size_hint().lower();
    if declared > limits.max_bytes as u64 {
        gateway.metrics.refused(Refusal::TooLarge);
        return closing(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!(
                "the body is {declared} bytes; the limit is {} bytes",
                limits.max_bytes
            ),
        ));
    }
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limits.read_timeout;
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline,
            timeout: limits.read_timeout,
            sleep: None,
            timed_out: Arc::clone(&timed_out),
        })
    });
    let response = next.run(request).await;
    // The handler saw the timeout as a failed read, which it cannot tell from a broken body.
    if timed_out.load(Ordering::Relaxed) {
        gateway.metrics.refused(Refusal::BodyTimeout);
        return closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            format!(
                "the request body did not arrive within {:?}",
                limits.read_timeout
            ),
        ));
    }
    // A body without a declared length found over the limit while it was read.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        gateway.metrics.refused(Refusal::TooLarge);
    }
    response
}

/// The error answered with `Connection: close`: the rest of the body, unread, must not be taken
/// for the next request.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a [`DeadlineBody`] yields once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTimedOut(Duration);

/// A body that must end by a deadline: unlike a timeout between frames, a client dribbling a byte
/// at a time cannot stretch it.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    timeout: Duration,
    /// Made on the first wait only: a body already received costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.timeout)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    fn deadline_body(inner: Body, timeout: Duration) -> (Body, Arc<AtomicBool>) {
        let timed_out = Arc::new(AtomicBool::new(false));
        let body = Body::new(DeadlineBody {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            sleep: None,
            timed_out: Arc::clone(&timed_out),
        });
        (body, timed_out)
    }

    /// One byte every `gap`, `left` times.
    struct Dribble {
        left: usize,
        gap: Duration,
        sleep: Pin<Box<Sleep>>,
    }

    fn dribble(left: usize, gap: Duration) -> Body {
        Body::new(Dribble {
            left,
            gap,
            sleep: Box::pin(tokio::time::sleep(gap)),
        })
    }

    impl HttpBody for Dribble {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            ready!(self.sleep.as_mut().poll(cx));
            self.left -= 1;
            let next = Instant::now() + self.gap;
            self.sleep.as_mut().reset(next);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dribbled_body_fails_at_the_deadline_though_bytes_keep_coming() {
        // A byte every 100 ms never leaves a gap of 1 s, yet the whole body takes 10 s.
        let (body, timed_out) = deadline_body(
            dribble(100, Duration::from_millis(100)),
            Duration::from_secs(1),
        );
        let started = Instant::now();
        let error = to_bytes(body, usize::MAX).await.expect_err("timed out");
        assert!(
            error.to_string().contains("did not arrive within 1s"),
            "{error}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(timed_out.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_within_the_deadline_is_passed_whole() {
        let (body, timed_out) = deadline_body(
            dribble(5, Duration::from_millis(100)),
            Duration::from_secs(1),
        );
        assert_eq!(to_bytes(body, usize::MAX).await.expect("body"), "xxxxx");
        assert!(!timed_out.load(Ordering::Relaxed));
    }
}
