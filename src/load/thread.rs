//! The load thread: one thread with a single-threaded runtime that times the sends, sends, and
//! reads the answers. On a machine shared with the system under test, every wake-up of a second
//! thread per request is CPU taken from the services; here a request costs its own thread no
//! hand-over at all. Connections opened by a run live on this thread and serve the next run too
//! (a warm-up's connections serve the measured load).

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;

/// Runs `work` on the load thread and waits for it, or in place where that is impossible or
/// needless: on a single-threaded runtime (the caller's thread already is one, and tests on
/// paused time must stay on it). The flag given to `work` says whether it runs on the load thread.
pub(super) async fn on_load_thread<T, F>(work: impl FnOnce(bool) -> F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = (Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread)
        .then(load_thread)
        .flatten();
    let Some(handle) = handle else {
        return work(false).await;
    };
    let mut task = AbortOnDrop(handle.spawn(work(true)));
    match (&mut task.0).await {
        Ok(value) => value,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only aborting cancels it, and only dropping the caller's future aborts.
            Err(error) => unreachable!("load task cancelled while awaited: {error}"),
        },
    }
}

/// The one load thread of the process, started on first use; `None` if the system refused a
/// thread or a runtime (the load then runs on the caller's runtime).
fn load_thread() -> Option<Handle> {
    static LOAD: OnceLock<Option<Handle>> = OnceLock::new();
    LOAD.get_or_init(start).clone()
}

fn start() -> Option<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("harness-load".into())
        .spawn(move || {
            // Linux's default 50 µs of timer slack would be most of the remaining send lag.
            let _ = nix::sys::prctl::set_timerslack(1);
            let _ = ask_for_slice(SLICE);
            runtime.block_on(std::future::pending::<()>());
        })
        .ok()?;
    Some(handle)
}

/// The scheduler slice the load thread asks for. Its work per wake-up is tens of microseconds, so
/// it gives nothing up; what it gains is the next send's time. With the default slice (1.4 ms on
/// a 2-core machine), a wake-up on a CPU busy with the system under test may wait for the running thread's slice to
/// end, and that wait is send lag: with both cores of a 2-core machine busy, a 100 µs slice
/// lowered a sleeping thread's lateness and the harness's send lag p99 (docs/measurements.md,
/// "Wake-ups").
const SLICE: Duration = Duration::from_micros(100);

/// Asks the scheduler to give the calling thread `slice` (Linux's custom slices, 6.12 on; no
/// privilege needed), keeping its policy and nice value; whether the request was taken. Best
/// effort: an older kernel ignores it, and a policy other than the normal one (a user's `chrt`)
/// is left alone. Public so that `examples/wake_cost.rs` measures the load thread's own request.
pub fn ask_for_slice(slice: Duration) -> bool {
    let Some(mut attr) = scheduling() else {
        return false;
    };
    if attr.sched_policy != libc::SCHED_OTHER as u32 {
        return false;
    }
    attr.sched_flags = 0;
    attr.sched_runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    // SAFETY: `attr` is a valid `sched_attr` of the size it states; pid 0 is the calling thread.
    unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) == 0 }
}

/// The calling thread's scheduling attributes, as `sched_getattr` reads them.
fn scheduling() -> Option<libc::sched_attr> {
    let size = std::mem::size_of::<libc::sched_attr>();
    // SAFETY: `sched_attr` is plain integers, for which all zeroes is a valid value.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is a writable `sched_attr` of the size passed; pid 0 is the calling thread.
    let got = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
    attr.size = size as u32;
    (got == 0).then_some(attr)
}

/// A task that is cancelled when whoever awaits it gives up (a run's future dropped on error).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_thread_asks_for_a_short_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // A nice value of its own (raising it needs no privilege; on Linux, who 0 is the
            // calling thread), which asking for a slice must keep.
            // SAFETY: a plain system call on the calling thread.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 5) }, 0);
            let before = scheduling().expect("sched_getattr");
            let _ = ask_for_slice(SLICE);
            let after = scheduling().expect("sched_getattr");
            assert_eq!(after.sched_nice, 5);
            assert_eq!(after.sched_policy, libc::SCHED_OTHER as u32);
            // Kernels before 6.12 have no custom slices, and report none.
            if before.sched_runtime != 0 {
                assert_eq!(after.sched_runtime, SLICE.as_nanos() as u64);
            }
        })
        .join()
        .expect("the test thread");
    }
}
