//! Waiting for the next send time. The runtime's own timers fire up to a millisecond late, which
//! would be most of the send lag at thousands of requests a second; a `timerfd` registered with
//! the runtime's reactor wakes the load thread within microseconds, without blocking it (answers
//! keep being read while it waits).

use std::os::fd::{AsFd as _, AsRawFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// How the schedule waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timing {
    /// The runtime's timers: millisecond precision, and the only kind that honours paused time
    /// (the load core's own tests).
    Runtime,
    /// A high-resolution timer on the thread's reactor.
    Precise,
}

/// Wakes the schedule at a due time.
pub(super) enum Alarm {
    Runtime,
    Precise {
        timer: AsyncFd<Timer>,
        /// The due time the timer is set for, so that a wait resumed after other work does not
        /// set it again.
        armed: Option<Instant>,
    },
}

impl Alarm {
    /// An alarm of the given kind; a precise one the system refuses falls back to the runtime's
    /// timers. Must be made on the runtime that will wait on it.
    pub(super) fn new(timing: Timing) -> Self {
        if timing == Timing::Runtime {
            return Alarm::Runtime;
        }
        TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()
        // SAFETY: the descriptor is the TimerFd's own, open until the TimerFd (owned by the
        // AsyncFd) is dropped, and `as_raw_fd` always returns it.
        .and_then(|timer| {
            unsafe { AsyncFd::register_with_interest(Timer(timer), Interest::READABLE) }.ok()
        })
        .map_or(Alarm::Runtime, |timer| Alarm::Precise {
            timer,
            armed: None,
        })
    }

    /// Returns at `due` or just after. Cancel-safe: dropped before `due`, it can be awaited again.
    pub(super) async fn until(&mut self, due: Instant) {
        let (timer, armed) = match self {
            Alarm::Runtime => return tokio::time::sleep_until(due).await,
            Alarm::Precise { timer, armed } => (timer, armed),
        };
        loop {
            let now = Instant::now();
            if now >= due {
                return;
            }
            if *armed != Some(due) {
                // A zero expiration would disarm the timer: wait at least a nanosecond.
                let wait = (due - now).max(Duration::from_nanos(1));
                let set = timer.get_ref().0.set(
                    Expiration::OneShot(TimeSpec::from_duration(wait)),
                    TimerSetTimeFlags::empty(),
                );
                if set.is_err() {
                    return tokio::time::sleep_until(due).await;
                }
                *armed = Some(due);
            }
            let Ok(mut ready) = timer.readable().await else {
                return tokio::time::sleep_until(due).await;
            };
            // Reads the expiry count; not yet expired (a readiness left from an earlier setting)
            // reads EAGAIN.
            match ready.get_inner().0.wait() {
                // The expiry read, the descriptor is no longer readable: forgetting its readiness
                // now spares the next wait a read that would only fail.
                Ok(()) => {
                    *armed = None;
                    ready.clear_ready();
                }
                Err(Errno::EAGAIN) => ready.clear_ready(),
                Err(_) => return tokio::time::sleep_until(due).await,
            }
        }
    }
}

/// The timer as the reactor registers it: by its raw descriptor.
pub(super) struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_precise_alarm_never_wakes_early_and_can_be_resumed() {
        let mut alarm = Alarm::new(Timing::Precise);
        assert!(matches!(alarm, Alarm::Precise { .. }));
        let due = Instant::now() + Duration::from_millis(3);
        // Abandoned half way, then resumed: still not early.
        let _ = tokio::time::timeout(Duration::from_millis(1), alarm.until(due)).await;
        alarm.until(due).await;
        assert!(Instant::now() >= due);
        // A time already past returns at once.
        alarm.until(due).await;
        let later = Instant::now() + Duration::from_micros(300);
        alarm.until(later).await;
        assert!(Instant::now() >= later);
    }
}
