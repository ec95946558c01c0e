//! The delivery worker that every `nudge-server serve` process runs: every `poll` it
//! enqueues what the change feed brought (see [`super::queue`]), claims the deliveries
//! that are due, POSTs them (several at once, each with a timeout) and records how each
//! went. Nodes share nothing but the database, so any number can run.
//!
//! Time comes from a [`Clock`] (the system's in production) so that tests can move it past
//! backoff waits and the 24-hour limit without sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use super::queue::{self, Attempt, Claimed, Policy, Prepared};
use super::signing::{self, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use crate::background::spawn_rounds;
pub use crate::background::WorkerHandle;
use crate::store::{Store, StoreError};

/// Milliseconds since the epoch, as the worker sees them.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::state::now_ms)
}

/// Feed entries enqueued per webhook per round.
const PAGE: i64 = 1_000;
/// Finished deliveries are kept this long for the deliveries listing, then pruned.
const KEEP_FINISHED_MS: i64 = 30 * 24 * 3_600_000;
/// How often finished deliveries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// The worker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether `serve` runs the worker at all.
    pub enabled: bool,
    /// Pause between rounds when there is nothing to do.
    pub poll: Duration,
    /// The first retry's wait (about; doubled for each later one).
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// Retries stop this long after the first attempt.
    pub give_up_after: Duration,
    /// Each POST, connection included, must finish within this.
    pub timeout: Duration,
    /// Most deliveries claimed (and sent at once) per round.
    pub batch: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: true,
            poll: Duration::from_millis(250),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3_600),
            give_up_after: Duration::from_secs(24 * 3_600),
            timeout: Duration::from_secs(10),
            batch: 32,
        }
    }
}

impl Settings {
    /// The retry policy these settings give; a claim's lease outlasts the POST's timeout.
    pub fn policy(&self) -> Policy {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Policy {
            backoff_base_ms: ms(self.backoff_base),
            backoff_max_ms: ms(self.backoff_max),
            give_up_after_ms: ms(self.give_up_after),
            lease_ms: ms(self.timeout).saturating_add(30_000),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Deliveries enqueued from the feed.
    pub enqueued: usize,
    /// Deliveries claimed and attempted.
    pub attempted: usize,
}

/// The worker (cheap to clone).
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: Settings,
    clock: Clock,
    client: reqwest::Client,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker on `store`.
    pub fn new(store: Store, settings: Settings, clock: Clock) -> Result<Worker, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("nudge-server/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot make the webhook HTTP client: {e}"))?;
        Ok(Worker { inner: Arc::new(Inner { store, settings, clock, client }) })
    }

    /// One round: enqueue from the feed, then claim what is due and deliver it, waiting
    /// for every POST of the round to finish.
    pub async fn round(&self) -> Result<Round, StoreError> {
        let inner = &self.inner;
        let policy = inner.settings.policy();
        let now = (inner.clock)();
        let enqueued = queue::enqueue(&inner.store, now, PAGE).await?;
        let limit = inner.settings.batch.max(1) as i64;
        let claimed = queue::claim(&inner.store, now, policy.lease_ms, limit).await?;
        let attempted = claimed.len();
        let mut sending = JoinSet::new();
        for due in claimed {
            let inner = Arc::clone(&self.inner);
            sending.spawn(async move { inner.deliver(&due).await });
        }
        while let Some(done) = sending.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("nudge-server: webhooks: {e}"),
                Err(e) => eprintln!("nudge-server: webhooks: a delivery task failed: {e}"),
            }
        }
        Ok(Round { enqueued, attempted })
    }

    /// Runs rounds until [`WorkerHandle::stop`].
    pub fn spawn(self) -> WorkerHandle {
        let poll = self.inner.settings.poll;
        let last_prune = Arc::new(Mutex::new(None::<tokio::time::Instant>));
        spawn_rounds("webhooks", poll, move || {
            let (worker, last_prune) = (self.clone(), last_prune.clone());
            async move {
                let round = worker.round().await;
                worker.prune_if_due(&last_prune).await;
                round.map(|r| r.attempted >= worker.inner.settings.batch.max(1))
            }
        })
    }

    /// Prunes finished deliveries once per [`PRUNE_EVERY`].
    async fn prune_if_due(&self, last_prune: &Mutex<Option<tokio::time::Instant>>) {
        let due = {
            let mut last = last_prune.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
            if due {
                *last = Some(tokio::time::Instant::now());
            }
            due
        };
        if due {
            let before = (self.inner.clock)().saturating_sub(KEEP_FINISHED_MS);
            if let Err(e) = queue::prune(&self.inner.store, before).await {
                eprintln!("nudge-server: webhooks: pruning: {e}");
            }
        }
    }
}

impl Inner {
    /// Sends one claimed delivery and records the outcome.
    async fn deliver(&self, due: &Claimed) -> Result<(), StoreError> {
        let ready = match queue::prepare(&self.store, due).await? {
            Prepared::Send(ready) => ready,
            Prepared::Gone => return queue::drop_delivery(&self.store, due.id).await,
        };
        let sent_at = (self.clock)();
        let signature = signing::signature(&ready.secret, sent_at.div_euclid(1_000), ready.body.as_bytes());
        let result = self
            .client
            .post(&ready.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(IDEMPOTENCY_HEADER, &ready.idempotency_key)
            .header("Nudge-Webhook-Id", &due.webhook_id)
            .header("Nudge-Attempt", due.attempts.to_string())
            .body(ready.body)
            .send()
            .await;
        let attempt = match result {
            Ok(response) if response.status().is_success() => Attempt::Delivered { status: response.status().as_u16() },
            Ok(response) => {
                let status = response.status();
                Attempt::Failed { status: Some(status.as_u16()), error: format!("HTTP {status}") }
            }
            Err(e) => Attempt::Failed { status: None, error: describe(&e) },
        };
        let policy = self.settings.policy();
        queue::record(&self.store, due, &attempt, &policy, (self.clock)(), queue::random_unit()).await?;
        Ok(())
    }
}

/// A request error with its causes, briefly (without the URL, which the site knows).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(300).collect()
}

/// Starts the worker `serve` runs, unless the settings turn it off.
pub fn start(store: &Store, settings: &Settings) -> Result<Option<WorkerHandle>, String> {
    if !settings.enabled {
        return Ok(None);
    }
    Ok(Some(Worker::new(store.clone(), settings.clone(), system_clock())?.spawn()))
}
