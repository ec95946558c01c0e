//! Background workers (webhook deliveries, emails, cart abandonment): a loop of rounds that
//! runs until stopped, and the handle that stops it. A round that found a full batch runs
//! again at once; otherwise the loop waits `poll`, or less when told to stop.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops after the round under way (its sends finish or time out and are recorded), so
    /// nothing done is left unrecorded.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Spawns a loop that awaits `round()` until [`WorkerHandle::stop`]. `round` resolves to
/// whether it was busy (a full batch: go again at once); an error is printed with `name`
/// and the loop waits `poll` as after an idle round.
pub fn spawn_rounds<F, Fut, E>(name: &'static str, poll: Duration, mut round: F) -> WorkerHandle
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<bool, E>> + Send,
    E: Display,
{
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        while !*stopped.borrow() {
            let busy = round().await.unwrap_or_else(|e| {
                eprintln!("nudge-server: {name}: {e}");
                false
            });
            if !busy {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    changed = stopped.changed() => if changed.is_err() { break },
                }
            }
        }
    });
    WorkerHandle { stop, task }
}
