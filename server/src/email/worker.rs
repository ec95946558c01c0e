//! The email worker `serve` runs when SMTP is configured: every `poll` it enqueues jobs
//! from the change feed, claims the due ones, decides at that moment whether each is still
//! to be sent (consent, address, no order since the coupon, cart still there), sends it
//! over SMTP and records how it went. Nodes share nothing but the database.
//!
//! Exactly once, but for one edge: a job is marked sent in the step right after the SMTP
//! server accepted it (`250` after `DATA`). If the process dies, or the database cannot be
//! reached, between that answer and the mark, the job's lease runs out and it is sent
//! again: at least once. The message then has the same `Message-ID` (derived from the site,
//! the kind and the message that caused it), which lets mail systems and clients drop the
//! repeat. An SMTP server that is down, or answers 4xx, only delays the job (backoff up to
//! an hour, for a week); a 5xx answer fails it for good.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use nudge::recommend::Strategy;
use sha2::{Digest, Sha256};

use super::compose::{self, Coupon, Frame};
use super::jobs::{self, Claimed, Outcome};
use super::person::{self, Message};
use super::products;
use super::smtp::Mailer;
use super::unsubscribe;
use super::Settings;
use crate::background::spawn_rounds;
pub use crate::background::WorkerHandle;
use crate::follow;
use crate::hmac::hex;
use crate::store::{Store, StoreError};
use crate::webhooks::queue::{random_unit, Policy};
use crate::webhooks::worker::Clock;

/// The feed consumer's name in `feed_cursors`.
const CONSUMER: &str = "email";
/// Feed messages read per page.
const PAGE: i64 = 500;
/// Jobs claimed per round.
const BATCH: i64 = 16;
/// Failed sends are retried for this long from the first attempt.
const GIVE_UP_AFTER: Duration = Duration::from_secs(7 * 24 * 3_600);

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Jobs enqueued from the feed.
    pub enqueued: usize,
    /// Jobs claimed and decided.
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
    mailer: Mailer,
    public_url: String,
    clock: Clock,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("mailer", &self.inner.mailer).finish_non_exhaustive()
    }
}

/// What to do with a claimed job.
enum Prepared {
    /// Send this to this address.
    Send(String, Box<lettre::Message>),
    /// Record this without sending.
    Record(Outcome),
}

impl Worker {
    /// A worker sending with `settings` (which must name an SMTP server), with links under
    /// `public_url`.
    pub fn new(store: Store, settings: Settings, public_url: String, clock: Clock) -> Result<Worker, String> {
        let url = settings.smtp_url.clone().ok_or("no --smtp-url")?;
        let mailer = Mailer::new(&url, settings.from.as_deref().unwrap_or(""), settings.timeout)?;
        Ok(Worker { inner: Arc::new(Inner { store, settings, mailer, public_url, clock }) })
    }

    /// The SMTP server, for the serve output.
    pub fn describe(&self) -> &str {
        &self.inner.mailer.describe
    }

    fn policy(&self) -> Policy {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let s = &self.inner.settings;
        Policy {
            backoff_base_ms: ms(s.backoff_base),
            backoff_max_ms: 3_600_000,
            give_up_after_ms: ms(GIVE_UP_AFTER),
            lease_ms: ms(s.timeout).saturating_mul(4).saturating_add(30_000),
        }
    }

    /// One round: enqueue from the feed, then decide, send and record the due jobs.
    pub async fn round(&self) -> Result<Round, StoreError> {
        let inner = &self.inner;
        let now = (inner.clock)();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let mut out = Round::default();
        for site_id in follow::sites_with_news(&inner.store, CONSUMER).await? {
            while let Some(mut page) = follow::next_page(&inner.store, CONSUMER, &site_id, PAGE).await? {
                let (reminder, review) = (ms(inner.settings.reminder_after), ms(inner.settings.review_after));
                out.enqueued += jobs::enqueue(&mut page, reminder, review, now).await?;
                page.commit().await?;
            }
        }
        let policy = self.policy();
        // Each site's catalogue is read once a round, however many of its emails are due.
        let mut catalogues: HashMap<String, Arc<products::SiteCatalogue>> = HashMap::new();
        for job in jobs::claim(&inner.store, now, policy.lease_ms, BATCH).await? {
            out.attempted += 1;
            let outcome = match self.prepare(&job, &mut catalogues).await {
                Ok(Prepared::Record(outcome)) => outcome,
                Ok(Prepared::Send(to, message)) => match inner.mailer.send(*message).await {
                    Ok(()) => Outcome::Sent(to),
                    Err(e) => Outcome::Failed { permanent: e.permanent, error: e.text },
                },
                Err(e) => Outcome::Failed { permanent: false, error: format!("preparing: {e}") },
            };
            if let Outcome::Failed { error, .. } = &outcome {
                eprintln!("nudge-server: email {} ({}): {error}", job.id, job.kind);
            }
            jobs::record(&inner.store, &job, &outcome, &policy, (inner.clock)(), random_unit()).await?;
        }
        Ok(out)
    }

    /// Decides at send time whether and what to send.
    async fn prepare(
        &self,
        job: &Claimed,
        catalogues: &mut HashMap<String, Arc<products::SiteCatalogue>>,
    ) -> Result<Prepared, StoreError> {
        let inner = &self.inner;
        let now = (inner.clock)();
        let skip = |why: &str| Ok(Prepared::Record(Outcome::Skipped(why.to_string())));
        let mut conn = inner.store.connection().await?;
        let mut db = conn.db();
        let Some((shop, secret)) = person::site(&mut db, &job.site_id).await? else { return skip("the site is gone") };
        let Some(source) = person::message(&mut db, &job.site_id, &job.source_message_id).await? else {
            return skip("the message that caused it was erased");
        };
        let Some(who) = person::person_of(&mut db, &job.site_id, &source.stored).await? else {
            return skip("the message names nobody");
        };
        let messages = person::messages(&mut db, &job.site_id, &who).await?;
        match person::marketing(&messages) {
            Some(true) => {}
            Some(false) => return skip("no marketing consent"),
            None => {
                let waited = now.saturating_sub(job.created_ms);
                let wait = i64::try_from(inner.settings.consent_wait.as_millis()).unwrap_or(i64::MAX);
                if waited < wait {
                    let at = now.saturating_add((wait - waited).min(5_000));
                    return Ok(Prepared::Record(Outcome::Later(at, "waiting for a consent choice".into())));
                }
                return skip("no marketing consent recorded");
            }
        }
        let profile = crate::profiles::core_profile(&mut db, &job.site_id, &who).await?;
        let cart = &profile.cart;
        let catalogue = match catalogues.get(&job.site_id) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(products::SiteCatalogue::new(crate::catalog::load(&mut db, &job.site_id).await?));
                catalogues.insert(job.site_id.clone(), c.clone());
                c
            }
        };
        let thresholds = crate::site_config::load(&mut db, &job.site_id).await?.thresholds;
        drop(conn);
        let in_cart: BTreeSet<String> = cart.lines.iter().map(|l| l.product_id.clone()).collect();
        let bought = products::purchased(&messages);
        let mut exclude = bought.clone();
        exclude.extend(in_cart);
        let known = products::known(&messages);
        // Every link in the email says where the visit came from.
        let campaign = job.kind.replace('_', "-");
        let tag = |ps: Vec<products::Product>| -> Vec<products::Product> {
            ps.into_iter().map(|p| products::with_utm(p, &campaign)).collect()
        };
        // Picks from the catalogue when the site has one, else from what the person viewed.
        let picks = |strategy: Strategy, anchor: Option<&str>, categories: Option<&BTreeSet<String>>| {
            tag(if catalogue.products.is_empty() {
                products::recommend(&messages, categories, &exclude)
            } else {
                products::ranked(&catalogue, &profile, &messages, &thresholds, strategy, anchor, now)
            })
        };
        let lines = |props: &serde_json::Value| -> Vec<(products::Product, Option<f64>)> {
            compose::lines(props, &known).into_iter().map(|(p, q)| (products::with_utm(p, &campaign), q)).collect()
        };
        let props = source.props();
        let address = match job.kind.as_str() {
            jobs::COUPON | jobs::COUPON_REMINDER => {
                props.get("email").and_then(|v| v.as_str()).and_then(person::checked_address)
            }
            _ => None,
        }
        .or_else(|| person::address(&messages));
        let Some(to) = address else { return skip("no email address") };
        let token = unsubscribe::token(&secret, &job.site_id, &who);
        let unsubscribe_url = unsubscribe::link(&inner.public_url, &token);
        let frame = Frame { shop: &shop, unsubscribe_url: &unsubscribe_url };
        let email = match job.kind.as_str() {
            jobs::COUPON | jobs::COUPON_REMINDER => {
                let Some(coupon) = Coupon::from_props(props) else { return skip("the coupon event has no code") };
                let reminder = job.kind == jobs::COUPON_REMINDER;
                if reminder {
                    if ordered_since(&messages, source.at()) {
                        return skip("an order followed the coupon");
                    }
                    let expired =
                        coupon.expires_at.as_deref().and_then(crate::message::parse_time).is_some_and(|t| t <= now);
                    if expired {
                        return skip("the coupon expired");
                    }
                }
                compose::coupon(&frame, &coupon, &picks(Strategy::ForYou, None, None), reminder)
            }
            jobs::CART_REMINDER => {
                if cart.lines.is_empty() || ordered_since(&messages, source.at()) {
                    return skip("the cart was bought or emptied");
                }
                let lines = lines(props);
                let value = props.get("cart_value").and_then(|v| v.as_f64());
                let currency = props.get("currency").and_then(|v| v.as_str());
                let picks = picks(Strategy::ForYou, None, None);
                compose::cart(&frame, &lines, value.map(|v| (v, currency)), &picks)
            }
            jobs::EVALUATION => {
                let lines = lines(props);
                let bought_now: Vec<products::Product> = lines.into_iter().map(|(p, _)| p).collect();
                let categories: BTreeSet<String> = bought_now.iter().filter_map(|p| p.category.clone()).collect();
                let anchor =
                    bought_now.iter().map(|p| p.id.as_str()).find(|id| catalogue.products.iter().any(|c| c.id == *id));
                let strategy = if anchor.is_some() { Strategy::Similar } else { Strategy::ForYou };
                let similar = picks(strategy, anchor, (!categories.is_empty()).then_some(&categories));
                compose::evaluation(&frame, &bought_now, &similar)
            }
            other => return skip(&format!("unknown kind {other}")),
        };
        let digest = Sha256::digest(format!("{}\n{}\n{}", job.site_id, job.kind, job.source_message_id).as_bytes());
        let message_id =
            format!("<nudge.{}.{}@{}>", job.kind.replace('_', "-"), hex(&digest[..12]), inner.mailer.domain());
        match inner.mailer.message(&to, &email, &message_id, &unsubscribe_url) {
            Ok(message) => Ok(Prepared::Send(to, Box::new(message))),
            Err(e) => Ok(Prepared::Record(Outcome::Skipped(e))),
        }
    }

    /// Runs rounds until [`WorkerHandle::stop`].
    pub fn spawn(self) -> WorkerHandle {
        let poll = self.inner.settings.poll;
        spawn_rounds("email", poll, move || {
            let worker = self.clone();
            async move { worker.round().await.map(|round| round.attempted as i64 >= BATCH) }
        })
    }
}

/// Whether the person completed an order at or after `at`.
fn ordered_since(messages: &[Message], at: i64) -> bool {
    messages.iter().any(|m| m.track() == Some(crate::abandon::ORDER_COMPLETED) && m.at() >= at)
}

/// A line on stdout; a reader that went away (a closed pipe) is no reason to stop serving.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Starts the worker `serve` runs when SMTP is configured; `None` (and a line saying so on
/// stdout) without it.
pub fn start(store: &Store, settings: &Settings, default_public_url: &str) -> Result<Option<WorkerHandle>, String> {
    if settings.smtp_url.is_none() {
        say("nudge-server: no --smtp-url: no emails are sent (cart abandonment still runs)");
        return Ok(None);
    }
    let public_url = settings.public_url.clone().unwrap_or_else(|| default_public_url.to_string());
    let worker =
        Worker::new(store.clone(), settings.clone(), public_url.clone(), crate::webhooks::worker::system_clock())?;
    say(&format!("nudge-server: emails via {}, unsubscribe links under {public_url}", worker.describe()));
    Ok(Some(worker.spawn()))
}
