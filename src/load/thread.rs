//! The load thread: one thread with a single-threaded runtime that times the sends, sends, and
//! reads the answers. On a machine shared with the system under test, every wake-up of a second
//! thread per request is CPU taken from the services; here a request costs its own thread no
//! hand-over at all. Connections opened by a run live on this thread and serve the next run too
//! (a warm-up's connections serve the measured load).

use std::future::Future;
use std::sync::OnceLock;

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
            runtime.block_on(std::future::pending::<()>());
        })
        .ok()?;
    Some(handle)
}

/// A task that is cancelled when whoever awaits it gives up (a run's future dropped on error).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
