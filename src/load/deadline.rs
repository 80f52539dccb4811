//! Request timeouts kept by the schedule loop itself. A runtime timer per request costs a wake-up
//! of the runtime's driver each time one is set with no other timer pending (every request, at
//! any rate the system keeps up with); here every request's deadline is one entry in a queue, and
//! the loop's own alarm wakes for the earliest.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::time::Instant;

/// The deadlines of the requests in flight, in the order they were sent. With one timeout for
/// the whole load, that is also the order in which they fall due.
#[derive(Default)]
pub(super) struct Deadlines {
    queue: VecDeque<(Instant, Arc<Expiry>)>,
}

/// Shared between the queue and a request: set when its deadline has passed.
#[derive(Default)]
struct Expiry {
    expired: AtomicBool,
    waker: AtomicWaker,
}

impl Deadlines {
    /// Starts the clock of a request due to end by `deadline`; what it returns resolves then.
    pub(super) fn start(&mut self, deadline: Instant) -> Expired {
        let expiry = Arc::new(Expiry::default());
        self.queue.push_back((deadline, Arc::clone(&expiry)));
        Expired(expiry)
    }

    /// Expires the requests whose deadline is past (at `now`), and forgets those already over;
    /// returns the earliest deadline still pending. Entries of finished requests behind an
    /// unfinished one stay until it is over, so the queue holds at most the requests sent within
    /// one timeout.
    pub(super) fn expire(&mut self, now: Instant) -> Option<Instant> {
        while let Some((deadline, expiry)) = self.queue.front() {
            // The request's own handle is gone: it ended, by answer or otherwise.
            let over = Arc::strong_count(expiry) == 1;
            if !over && *deadline > now {
                return Some(*deadline);
            }
            if !over {
                expiry.expired.store(true, Ordering::Release);
                expiry.waker.wake();
            }
            self.queue.pop_front();
        }
        None
    }
}

/// Resolves when the request's deadline has passed.
pub(super) struct Expired(Arc<Expiry>);

impl Future for Expired {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.expired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.0.waker.register(cx.waker());
        // Expired between the first look and the registration: the wake may have been missed.
        if self.0.expired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;
    use std::time::Duration;

    #[test]
    fn a_request_expires_at_its_deadline_and_not_before() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::default();
        let mut first = deadlines.start(t0 + Duration::from_secs(1));
        let mut second = deadlines.start(t0 + Duration::from_secs(2));
        assert_eq!(deadlines.expire(t0), Some(t0 + Duration::from_secs(1)));
        assert!((&mut first).now_or_never().is_none());
        assert_eq!(
            deadlines.expire(t0 + Duration::from_secs(1)),
            Some(t0 + Duration::from_secs(2))
        );
        assert!((&mut first).now_or_never().is_some());
        assert!((&mut second).now_or_never().is_none());
        assert_eq!(deadlines.expire(t0 + Duration::from_secs(3)), None);
        assert!(second.now_or_never().is_some());
    }

    #[test]
    fn finished_requests_leave_the_queue_without_expiring() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::default();
        let first = deadlines.start(t0 + Duration::from_secs(1));
        let second = deadlines.start(t0 + Duration::from_secs(2));
        drop(first);
        // The first is over: the next deadline pending is the second's.
        assert_eq!(deadlines.expire(t0), Some(t0 + Duration::from_secs(2)));
        drop(second);
        assert_eq!(deadlines.expire(t0), None);
        assert!(deadlines.queue.is_empty());
    }
}
