//! The `email_jobs` table: one row per (site, kind, message that caused it), enqueued from
//! the change feed in the transaction that moves the feed cursor (so exactly once however
//! many nodes follow it), claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
//! the attempt count fences a node whose lease ran out) and recorded after each attempt.

use crate::follow::Page;
use crate::store::{on_db, Dialect, Store, StoreError};
use crate::webhooks::queue::{next_attempt, Policy};

use super::person::COUPON_ISSUED;

/// The coupon email, at once after `Coupon Issued`.
pub const COUPON: &str = "coupon";
/// The coupon reminder, if no order follows the coupon.
pub const COUPON_REMINDER: &str = "coupon_reminder";
/// The cart reminder, at once after `Cart Abandoned`.
pub const CART_REMINDER: &str = "cart_reminder";
/// The evaluation email after `Order Completed`.
pub const EVALUATION: &str = "evaluation";
/// Messages older than this when first read cause no email (a worker switched on late
/// does not mail last month's shoppers).
const STALE_MS: i64 = 7 * 24 * 3_600_000;

/// The jobs a page of the feed brings: `(kind, source messageId, person key, due ms)`.
pub async fn enqueue(page: &mut Page<'_>, reminder_ms: i64, review_ms: i64, now_ms: i64) -> Result<usize, StoreError> {
    let site_id = page.site_id.clone();
    let mut jobs: Vec<(&'static str, String, String, i64)> = Vec::new();
    let entries = std::mem::take(&mut page.entries);
    for entry in &entries {
        let e = &entry.stored.event;
        if e.kind != "track" || e.received_ms < now_ms - STALE_MS {
            continue;
        }
        let kinds: &[(&'static str, i64)] = match e.event.as_deref() {
            Some(COUPON_ISSUED) => &[(COUPON, 0), (COUPON_REMINDER, reminder_ms)],
            Some(crate::abandon::CART_ABANDONED) => &[(CART_REMINDER, 0)],
            Some(crate::abandon::ORDER_COMPLETED) => &[(EVALUATION, review_ms)],
            _ => continue,
        };
        let Some(person) = super::person::person_of(&mut page.db(), &site_id, &entry.stored).await? else { continue };
        for (kind, delay) in kinds {
            jobs.push((kind, e.message_id.clone(), person.key(), e.received_ms.saturating_add(*delay)));
        }
    }
    page.entries = entries;
    let mut db = page.db();
    let mut inserted = 0;
    for (kind, source, person, due) in jobs {
        inserted += on_db!(&mut db, |c, _d| {
            sqlx::query(
                "INSERT INTO email_jobs (site_id, kind, source_message_id, person_key, status, attempts, created_ms, \
                 next_attempt_ms) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6) \
                 ON CONFLICT (site_id, kind, source_message_id) DO NOTHING",
            )
            .bind(&site_id)
            .bind(kind)
            .bind(&source)
            .bind(&person)
            .bind(now_ms)
            .bind(due)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
    }
    Ok(inserted as usize)
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The row.
    pub id: i64,
    /// The site.
    pub site_id: String,
    /// Which email.
    pub kind: String,
    /// The message that caused it.
    pub source_message_id: String,
    /// Attempts so far, this one included (the fencing token).
    pub attempts: i64,
    /// When it was enqueued, ms.
    pub created_ms: i64,
    /// When the first attempt was made, ms.
    pub first_attempt_ms: i64,
}

/// Claims up to `limit` due jobs, counting an attempt for each and leasing them.
pub async fn claim(store: &Store, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<Claimed>, StoreError> {
    if !store
        .any_due(
            "SELECT CAST(1 AS BIGINT) FROM email_jobs WHERE status = 'pending' AND next_attempt_ms <= $1 LIMIT 1",
            now_ms,
        )
        .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    type Row = (i64, String, String, String, i64, i64, Option<i64>);
    let rows: Vec<Row> = on_db!(&mut db, |c, d| {
        let lock = match d {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE email_jobs SET attempts = attempts + 1, first_attempt_ms = COALESCE(first_attempt_ms, $1), \
             next_attempt_ms = $2 WHERE id IN (SELECT id FROM email_jobs WHERE status = 'pending' \
             AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $3{lock}) \
             RETURNING id, site_id, kind, source_message_id, attempts, created_ms, first_attempt_ms"
        );
        sqlx::query_as(&sql).bind(now_ms).bind(now_ms.saturating_add(lease_ms)).bind(limit).fetch_all(&mut *c).await?
    });
    tx.commit().await?;
    let mut claimed: Vec<Claimed> = rows
        .into_iter()
        .map(|(id, site_id, kind, source_message_id, attempts, created_ms, first)| Claimed {
            id,
            site_id,
            kind,
            source_message_id,
            attempts,
            created_ms,
            first_attempt_ms: first.unwrap_or(now_ms),
        })
        .collect();
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The SMTP server accepted it, for this address.
    Sent(String),
    /// Not to be sent (no consent, no address, bought already, erased...).
    Skipped(String),
    /// Not yet: try again at this time (ms), without counting a failure.
    Later(i64, String),
    /// The send failed; `permanent` when retrying cannot help.
    Failed {
        /// A 5xx answer.
        permanent: bool,
        /// Why.
        error: String,
    },
}

/// What became of the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Sent.
    Sent,
    /// Skipped.
    Skipped,
    /// To be tried again at this time, ms.
    Retry(i64),
    /// Given up.
    Failed,
    /// The row had moved on (its lease ran out and another node took it).
    Stale,
}

/// Records an attempt's outcome, only if the row is still at the claimed attempt.
pub async fn record(
    store: &Store,
    job: &Claimed,
    outcome: &Outcome,
    policy: &Policy,
    now_ms: i64,
    unit: f64,
) -> Result<Recorded, StoreError> {
    let (recorded, status, next, recipient, error) = match outcome {
        Outcome::Sent(to) => (Recorded::Sent, "sent", now_ms, Some(to.as_str()), None),
        Outcome::Skipped(why) => (Recorded::Skipped, "skipped", now_ms, None, Some(why.as_str())),
        Outcome::Later(at, why) => (Recorded::Retry(*at), "pending", *at, None, Some(why.as_str())),
        Outcome::Failed { permanent: true, error } => (Recorded::Failed, "failed", now_ms, None, Some(error.as_str())),
        Outcome::Failed { permanent: false, error } => {
            match next_attempt(policy, job.first_attempt_ms, now_ms, job.attempts, unit) {
                Some(at) => (Recorded::Retry(at), "pending", at, None, Some(error.as_str())),
                None => (Recorded::Failed, "failed", now_ms, None, Some(error.as_str())),
            }
        }
    };
    let done = (status != "pending").then_some(now_ms);
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let changed = on_db!(&mut db, |c, _d| {
        sqlx::query(
            "UPDATE email_jobs SET status = $1, next_attempt_ms = $2, recipient = COALESCE($3, recipient), \
             last_error = $4, done_ms = $5 WHERE id = $6 AND attempts = $7 AND status = 'pending'",
        )
        .bind(status)
        .bind(next)
        .bind(recipient)
        .bind(error)
        .bind(done)
        .bind(job.id)
        .bind(job.attempts)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    tx.commit().await?;
    Ok(if changed == 0 { Recorded::Stale } else { recorded })
}

/// A job as listed (tests and operators): `(kind, source messageId, status, recipient,
/// attempts, last error)`, oldest first.
pub type Listed = (String, String, String, Option<String>, i64, Option<String>);

/// A site's jobs, oldest first.
pub async fn list(store: &Store, site_id: &str) -> Result<Vec<Listed>, StoreError> {
    let mut conn = store.connection().await?;
    let mut db = conn.db();
    Ok(on_db!(&mut db, |c, _d| {
        sqlx::query_as(
            "SELECT kind, source_message_id, status, recipient, attempts, last_error FROM email_jobs \
             WHERE site_id = $1 ORDER BY id",
        )
        .bind(site_id)
        .fetch_all(&mut *c)
        .await?
    }))
}

/// Erasure: drops every job of these people ([`crate::identity::Person::key`]s), sent
/// ones included (they hold the address).
pub async fn forget(db: &mut crate::store::Db<'_>, site_id: &str, person_keys: &[String]) -> Result<(), StoreError> {
    on_db!(db, |c, d| {
        let sql = format!("DELETE FROM email_jobs WHERE site_id = $1 AND {}", d.is_in("person_key", "$2"));
        sqlx::query(&sql).bind(site_id).bind(crate::store::json_list(person_keys)).execute(&mut *c).await?;
    });
    Ok(())
}
