//! The persisted delivery queue (`webhook_deliveries`).
//!
//! Enqueueing follows each webhook through its site's change feed (`crate::feed`: commit
//! ordered, `Stage Changed` messages included): under a lock on the webhook's row
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the writer lock on SQLite), one transaction
//! reads the next page of the feed after the webhook's cursor, inserts a delivery for each
//! message the webhook wants and moves the cursor past the page. Another node skips the
//! locked row, and the unique key `(webhook_id, message_id)` is a second guard, so each
//! (webhook, message) is enqueued exactly once however many nodes run.
//!
//! Claiming takes due `pending` rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and, in the
//! same statement, counts the attempt and pushes `next_attempt_ms` a lease ahead, so no
//! other node takes them while the POST is under way; a node that dies mid-POST leaves
//! the row to be retried when the lease ends. Outcomes are recorded only if the row is
//! still at the attempt that was claimed (the attempt count is the fencing token).

use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::Row;

use super::signing::idempotency_key;
use super::wants;
use crate::feed::Cursor;
use crate::store::{on_db, Db, Dialect, Store, StoreError};

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The first retry waits about this long; each later one twice as long as the one
    /// before, up to `backoff_max_ms`.
    pub backoff_base_ms: i64,
    /// The longest wait between attempts.
    pub backoff_max_ms: i64,
    /// No attempt is made more than this long after the first; the delivery is then failed.
    pub give_up_after_ms: i64,
    /// How long a claimed delivery is left to its node before another may take it.
    pub lease_ms: i64,
}

/// When to try again after attempt number `attempts` (1 for the first) failed at `now_ms`,
/// or `None` to give up. The wait doubles from `backoff_base_ms` up to `backoff_max_ms`,
/// with jitter (`unit` in [0, 1) picks a point in its upper half, so nodes that failed
/// together spread out without ever retrying at once), and never goes past 24 hours
/// (`give_up_after_ms`) from the first attempt: the last attempt is made at that deadline.
pub fn next_attempt(policy: &Policy, first_attempt_ms: i64, now_ms: i64, attempts: i64, unit: f64) -> Option<i64> {
    let deadline = first_attempt_ms.saturating_add(policy.give_up_after_ms);
    if now_ms >= deadline {
        return None;
    }
    let doublings = (attempts - 1).clamp(0, 40) as u32;
    let delay =
        policy.backoff_base_ms.max(1).saturating_mul(1i64 << doublings.min(40)).min(policy.backoff_max_ms.max(1));
    let half = delay / 2;
    let wait = half + ((delay - half) as f64 * unit.clamp(0.0, 1.0)) as i64;
    Some(now_ms.saturating_add(wait.max(1)).min(deadline))
}

/// A random number in [0, 1) from the operating system (0.5 if it has none).
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// Moves every webhook forward through its site's feed, enqueueing at most `page`
/// messages per webhook. Returns how many deliveries were enqueued.
pub async fn enqueue(store: &Store, now_ms: i64, page: i64) -> Result<usize, StoreError> {
    let hooks: Vec<(String, String, i64, i64)> = {
        let mut conn = store.connection().await?;
        let mut db = conn.db();
        on_db!(&mut db, |c, _d| {
            sqlx::query_as("SELECT id, site_id, cursor_tx, cursor_seq FROM webhooks ORDER BY id")
                .fetch_all(&mut *c)
                .await?
        })
    };
    let mut enqueued = 0;
    for (id, site_id, tx, seq) in hooks {
        // A read without locks first, so that idle webhooks cost no write transaction.
        let cursor = Cursor { tx: tx as u64, seq };
        let waiting = {
            let mut conn = store.connection().await?;
            !feed_page(&mut conn.db(), &site_id, cursor, 1).await?.is_empty()
        };
        if waiting {
            enqueued += enqueue_one(store, &id, now_ms, page).await?;
        }
    }
    Ok(enqueued)
}

/// One feed entry, as enqueueing needs it.
struct Entry {
    cursor: Cursor,
    message_id: String,
    kind: String,
    event: Option<String>,
}

/// Up to `limit` messages of `site_id` after `after`, in feed order (see `crate::feed`).
async fn feed_page(db: &mut Db<'_>, site_id: &str, after: Cursor, limit: i64) -> Result<Vec<Entry>, StoreError> {
    let rows: Vec<(String, i64, String, String, Option<String>)> = on_db!(db, |c, d| {
        let query = match d {
            Dialect::Sqlite => sqlx::query_as(
                "SELECT '0', seq, message_id, type, event FROM events WHERE site_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(site_id)
            .bind(after.seq)
            .bind(limit),
            Dialect::Postgres => sqlx::query_as(
                "SELECT tx::text, seq, message_id, type, event FROM events WHERE site_id = $1 \
                 AND (tx, seq) > ($2::text::xid8, $3) AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY tx, seq LIMIT $4",
            )
            .bind(site_id)
            .bind(after.tx.to_string())
            .bind(after.seq)
            .bind(limit),
        };
        query.fetch_all(&mut *c).await?
    });
    Ok(rows
        .into_iter()
        .map(|(tx, seq, message_id, kind, event)| Entry {
            cursor: Cursor { tx: tx.parse().unwrap_or(0), seq },
            message_id,
            kind,
            event,
        })
        .collect())
}

/// Enqueues the next page of webhook `id`'s feed, unless another node holds it.
async fn enqueue_one(store: &Store, id: &str, now_ms: i64, page: i64) -> Result<usize, StoreError> {
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let hook: Option<(String, String, i64, i64)> = on_db!(&mut db, |c, d| {
        let sql = match d {
            Dialect::Sqlite => "SELECT site_id, events, cursor_tx, cursor_seq FROM webhooks WHERE id = $1",
            Dialect::Postgres => {
                "SELECT site_id, events, cursor_tx, cursor_seq FROM webhooks WHERE id = $1 FOR UPDATE SKIP LOCKED"
            }
        };
        sqlx::query_as(sql).bind(id).fetch_optional(&mut *c).await?
    });
    // Every way out ends the transaction at once: one left to be rolled back when the
    // pooled connection is next used would, on PostgreSQL, keep the row lock's transaction
    // id open and so hold back the change feed's horizon for every reader.
    let Some((site_id, events, cursor_tx, cursor_seq)) = hook else {
        tx.commit().await?;
        return Ok(0); // removed, or another node is on it
    };
    let filter: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    let entries = feed_page(&mut db, &site_id, Cursor { tx: cursor_tx as u64, seq: cursor_seq }, page).await?;
    let Some(last) = entries.last().map(|e| e.cursor) else {
        tx.commit().await?;
        return Ok(0);
    };
    let wanted: Vec<(&str, Option<&str>)> = entries
        .iter()
        .filter(|e| wants(&filter, &e.kind, e.event.as_deref()))
        .map(|e| (e.message_id.as_str(), e.event.as_deref()))
        .collect();
    let list = crate::store::json_list(&wanted);
    let inserted = on_db!(&mut db, |c, d| {
        if !wanted.is_empty() {
            let sql = match d {
                Dialect::Sqlite => {
                    "INSERT INTO webhook_deliveries \
                     (webhook_id, site_id, message_id, event, status, attempts, created_ms, next_attempt_ms) \
                     SELECT $1, $2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'pending', 0, $3, $3 \
                     FROM json_each($4) WHERE true ON CONFLICT (webhook_id, message_id) DO NOTHING"
                }
                Dialect::Postgres => {
                    "INSERT INTO webhook_deliveries \
                     (webhook_id, site_id, message_id, event, status, attempts, created_ms, next_attempt_ms) \
                     SELECT $1, $2, v->>0, v->>1, 'pending', 0, $3, $3 \
                     FROM jsonb_array_elements($4::jsonb) AS j(v) ON CONFLICT (webhook_id, message_id) DO NOTHING"
                }
            };
            sqlx::query(sql).bind(id).bind(&site_id).bind(now_ms).bind(&list).execute(&mut *c).await?.rows_affected()
        } else {
            0
        }
    });
    on_db!(&mut db, |c, _d| {
        sqlx::query("UPDATE webhooks SET cursor_tx = $1, cursor_seq = $2 WHERE id = $3")
            .bind(last.tx as i64)
            .bind(last.seq)
            .bind(id)
            .execute(&mut *c)
            .await?;
    });
    tx.commit().await?;
    Ok(inserted as usize)
}

/// A claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The row.
    pub id: i64,
    /// Its webhook.
    pub webhook_id: String,
    /// The webhook's site.
    pub site_id: String,
    /// The message to deliver.
    pub message_id: String,
    /// Attempts so far, this one included (the fencing token for [`record`]).
    pub attempts: i64,
    /// When the first attempt was made, ms.
    pub first_attempt_ms: i64,
}

/// Claims up to `limit` deliveries due at `now_ms`, counting an attempt for each and
/// leasing them for `lease_ms`.
pub async fn claim(store: &Store, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<Claimed>, StoreError> {
    if !store
        .any_due(
            "SELECT CAST(1 AS BIGINT) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
                 LIMIT 1",
            now_ms,
        )
        .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let rows: Vec<(i64, String, String, String, i64, Option<i64>)> = on_db!(&mut db, |c, d| {
        let lock = match d {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, \
             first_attempt_ms = COALESCE(first_attempt_ms, $1), last_attempt_ms = $1, next_attempt_ms = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms, id LIMIT $3{lock}) \
             RETURNING id, webhook_id, site_id, message_id, attempts, first_attempt_ms"
        );
        sqlx::query_as(&sql).bind(now_ms).bind(now_ms.saturating_add(lease_ms)).bind(limit).fetch_all(&mut *c).await?
    });
    tx.commit().await?;
    let mut claimed: Vec<Claimed> = rows
        .into_iter()
        .map(|(id, webhook_id, site_id, message_id, attempts, first)| Claimed {
            id,
            webhook_id,
            site_id,
            message_id,
            attempts,
            first_attempt_ms: first.unwrap_or(now_ms),
        })
        .collect();
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// What to send for a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Where.
    pub url: String,
    /// The signing secret.
    pub secret: String,
    /// `Nudge-Idempotency-Key`.
    pub idempotency_key: String,
    /// The JSON body (the same on every attempt).
    pub body: String,
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Payload<'a> {
    /// The idempotency key again, for receivers that keep the body only.
    id: &'a str,
    #[serde(rename = "webhookId")]
    webhook_id: &'a str,
    #[serde(rename = "siteId")]
    site_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    event: Option<&'a str>,
    #[serde(rename = "messageId")]
    message_id: &'a str,
    #[serde(rename = "receivedAt")]
    received_at: String,
    message: &'a RawValue,
}

/// What a claimed delivery needs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Send this.
    Send(Ready),
    /// The message was erased (or the webhook removed): nothing to send, ever.
    Gone,
}

/// Builds the request for a claimed delivery from the webhook and the stored message.
pub async fn prepare(store: &Store, due: &Claimed) -> Result<Prepared, StoreError> {
    let mut conn = store.connection().await?;
    let mut db = conn.db();
    let row = on_db!(&mut db, |c, _d| {
        let row = sqlx::query(
            "SELECT w.url, w.secret, e.type, e.event, e.received_ms, e.body FROM webhooks w \
             LEFT JOIN events e ON e.site_id = w.site_id AND e.message_id = $2 WHERE w.id = $1",
        )
        .bind(&due.webhook_id)
        .bind(&due.message_id)
        .fetch_optional(&mut *c)
        .await?;
        match row {
            None => None,
            Some(r) => {
                let body: Option<String> = r.try_get(5)?;
                match body {
                    None => None,
                    Some(body) => Some((
                        r.try_get::<String, _>(0)?,
                        r.try_get::<String, _>(1)?,
                        r.try_get::<String, _>(2)?,
                        r.try_get::<Option<String>, _>(3)?,
                        r.try_get::<i64, _>(4)?,
                        body,
                    )),
                }
            }
        }
    });
    let Some((url, secret, kind, event, received_ms, message)) = row else {
        return Ok(Prepared::Gone);
    };
    let key = idempotency_key(&due.webhook_id, &due.message_id);
    let raw = RawValue::from_string(message).or_else(|_| RawValue::from_string("null".into()));
    let Ok(raw) = raw else { return Ok(Prepared::Gone) };
    let payload = Payload {
        id: &key,
        webhook_id: &due.webhook_id,
        site_id: &due.site_id,
        kind: &kind,
        event: event.as_deref(),
        message_id: &due.message_id,
        received_at: nudge::time::to_iso(received_ms.max(0) as u64),
        message: &raw,
    };
    let body = serde_json::to_string(&payload).unwrap_or_default();
    Ok(Prepared::Send(Ready { url, secret, idempotency_key: key, body }))
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Delivered {
        /// Its status.
        status: u16,
    },
    /// Any other answer, or none.
    Failed {
        /// The status, if there was an answer.
        status: Option<u16>,
        /// What went wrong, briefly.
        error: String,
    },
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Done.
    Delivered,
    /// To be tried again at this time, ms.
    Retry(i64),
    /// Given up.
    Failed,
    /// The row had moved on (removed, or its lease ran out and another node took it).
    Stale,
}

/// Records an attempt's outcome for a claimed delivery.
pub async fn record(
    store: &Store,
    due: &Claimed,
    attempt: &Attempt,
    policy: &Policy,
    now_ms: i64,
    unit: f64,
) -> Result<Recorded, StoreError> {
    let (recorded, status, next, last_status, error) = match attempt {
        Attempt::Delivered { status } => (Recorded::Delivered, "delivered", now_ms, Some(*status), None),
        Attempt::Failed { status, error } => {
            match next_attempt(policy, due.first_attempt_ms, now_ms, due.attempts, unit) {
                Some(at) => (Recorded::Retry(at), "pending", at, *status, Some(error.as_str())),
                None => (Recorded::Failed, "failed", now_ms, *status, Some(error.as_str())),
            }
        }
    };
    let done = (status != "pending").then_some(now_ms);
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let changed = on_db!(&mut db, |c, _d| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_ms = $2, last_status = $3, last_error = $4, \
             done_ms = $5 WHERE id = $6 AND attempts = $7 AND status = 'pending'",
        )
        .bind(status)
        .bind(next)
        .bind(last_status.map(i64::from))
        .bind(error)
        .bind(done)
        .bind(due.id)
        .bind(due.attempts)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    tx.commit().await?;
    Ok(if changed == 0 { Recorded::Stale } else { recorded })
}

/// Drops a delivery whose message is gone (erased).
pub async fn drop_delivery(store: &Store, id: i64) -> Result<(), StoreError> {
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    on_db!(&mut db, |c, _d| {
        sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1").bind(id).execute(&mut *c).await?;
    });
    tx.commit().await
}

/// Deletes up to 1,000 finished deliveries (delivered or failed) that finished before
/// `before_ms`. Their webhooks' cursors are past them, so they are never enqueued again.
pub async fn prune(store: &Store, before_ms: i64) -> Result<u64, StoreError> {
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let n = on_db!(&mut db, |c, _d| {
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE status <> 'pending' AND done_ms < $1 LIMIT 1000)",
        )
        .bind(before_ms)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    tx.commit().await?;
    Ok(n)
}

/// A delivery as listed by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The row id (the listing's cursor).
    pub id: i64,
    /// The message.
    pub message_id: String,
    /// Its event name, if any.
    pub event: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Enqueued, ms.
    pub created_ms: i64,
    /// Last attempt, ms.
    pub last_attempt_ms: Option<i64>,
    /// Next attempt (pending only), ms.
    pub next_attempt_ms: i64,
    /// HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Delivered or given up, ms.
    pub done_ms: Option<i64>,
}

impl Delivery {
    /// The API's JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let iso = |ms: i64| nudge::time::to_iso(ms.max(0) as u64);
        serde_json::json!({
            "id": self.id,
            "messageId": self.message_id,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "createdAt": iso(self.created_ms),
            "lastAttemptAt": self.last_attempt_ms.map(iso),
            "nextAttemptAt": (self.status == "pending").then(|| iso(self.next_attempt_ms)),
            "lastStatus": self.last_status,
            "lastError": self.last_error,
            "doneAt": self.done_ms.map(iso),
        })
    }
}

/// A webhook's deliveries, newest first: with `status`, only those; with `before`, only
/// rows with a smaller id.
pub async fn deliveries(
    db: &mut Db<'_>,
    webhook_id: &str,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = on_db!(db, |c, _d| {
        let rows = sqlx::query(
            "SELECT id, message_id, event, status, attempts, created_ms, last_attempt_ms, next_attempt_ms, \
             last_status, last_error, done_ms FROM webhook_deliveries \
             WHERE webhook_id = $1 AND ($2 = '' OR status = $2) AND id < $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(webhook_id)
        .bind(status.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&mut *c)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get(0)?,
                    message_id: r.try_get(1)?,
                    event: r.try_get(2)?,
                    status: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                    created_ms: r.try_get(5)?,
                    last_attempt_ms: r.try_get(6)?,
                    next_attempt_ms: r.try_get(7)?,
                    last_status: r.try_get(8)?,
                    last_error: r.try_get(9)?,
                    done_ms: r.try_get(10)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn policy() -> Policy {
        Policy { backoff_base_ms: 10_000, backoff_max_ms: HOUR, give_up_after_ms: 24 * HOUR, lease_ms: 60_000 }
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let p = policy();
        let wait = |attempts, unit| next_attempt(&p, 0, 1_000, attempts, unit).unwrap() - 1_000;
        assert_eq!((wait(1, 0.0), wait(1, 0.999_999)), (5_000, 9_999));
        assert_eq!((wait(2, 0.0), wait(3, 0.0)), (10_000, 20_000));
        assert_eq!(wait(30, 0.0), HOUR / 2);
        assert!(wait(30, 0.999) <= HOUR);
    }

    #[test]
    fn nothing_is_tried_past_24_hours_from_the_first_attempt() {
        let p = policy();
        // Close to the deadline, the next attempt is at the deadline, not after it.
        assert_eq!(next_attempt(&p, 0, 24 * HOUR - 1_000, 20, 0.5), Some(24 * HOUR));
        // At or after it, give up.
        assert_eq!(next_attempt(&p, 0, 24 * HOUR, 21, 0.5), None);
        assert_eq!(next_attempt(&p, 0, 48 * HOUR, 2, 0.5), None);
        // A whole day of failures is a bounded number of attempts.
        let (mut now, mut attempts) = (0, 1);
        while let Some(at) = next_attempt(&p, 0, now, attempts, random_unit()) {
            (now, attempts) = (at, attempts + 1);
        }
        assert!((20..=60).contains(&attempts), "{attempts} attempts");
        assert_eq!(now, 24 * HOUR);
    }

    #[test]
    fn random_units_are_in_range() {
        for _ in 0..100 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
