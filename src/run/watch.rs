//! Noticing a launched process that exits on its own while the run goes on.
//!
//! A crashed service cannot answer, and its spans will never arrive: without a watch the load
//! would go on sending into errors for the rest of its schedule, and the trace checks would wait
//! their whole timeout for traces that cannot complete, before the crash was reported.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the launched processes are asked whether they are still running: a crash is noticed
/// within this, at the cost of one `waitpid` per process per tick.
const POLL: Duration = Duration::from_millis(100);

/// Runs `work` to its end while polling `exited` (why a launched process has exited, if one has);
/// on the first exit it cancels `halt`, which the load and the verification inside `work` honour,
/// and hands the reason back beside `work`'s output.
pub(super) async fn while_running<T>(
    work: impl Future<Output = T>,
    halt: &CancellationToken,
    mut exited: impl FnMut() -> Option<String>,
) -> (T, Option<String>) {
    let mut work = pin!(work);
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            output = &mut work => return (output, exited()),
            _ = ticks.tick() => {
                if let Some(reason) = exited() {
                    halt.cancel();
                    return (work.await, Some(reason));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_exit_halts_the_work_within_a_tick_and_is_reported() {
        let halt = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let work = {
            let halt = halt.clone();
            async move {
                tokio::select! {
                    () = halt.cancelled() => "halted",
                    () = tokio::time::sleep(Duration::from_secs(60)) => "ran to its end",
                }
            }
        };
        let exits_at = started + Duration::from_secs(2);
        let (output, reason) = while_running(work, &halt, || {
            (tokio::time::Instant::now() >= exits_at).then(|| "the engine exited".to_owned())
        })
        .await;
        assert_eq!(output, "halted");
        assert_eq!(reason.as_deref(), Some("the engine exited"));
        assert!(started.elapsed() <= Duration::from_secs(2) + POLL);
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_with_every_process_running_is_not_halted() {
        let halt = CancellationToken::new();
        let work = tokio::time::sleep(Duration::from_secs(5));
        let ((), reason) = while_running(work, &halt, || None).await;
        assert_eq!(reason, None);
        assert!(!halt.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_exit_at_the_very_end_is_still_reported() {
        let halt = CancellationToken::new();
        let ((), reason) = while_running(async {}, &halt, || Some("gone".to_owned())).await;
        assert_eq!(reason.as_deref(), Some("gone"));
    }
}
