//! Webhooks: a site registers URLs, each with the messages it wants (track event names such
//! as `Stage Changed` or `Cart Abandoned`, or every message), and every matching message
//! stored from then on is POSTed to it, signed, with an idempotency key, and retried with
//! backoff for up to 24 hours from a queue kept in the database.
//!
//! - this module: registrations (`webhooks` table), shared by the API and the CLI;
//! - [`api`]: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`,
//!   `GET /v1/webhooks/{id}/deliveries` (secret key);
//! - [`queue`]: following the change feed into delivery rows, claiming due ones, recording
//!   outcomes and the retry schedule;
//! - [`worker`]: the loop every `serve` process runs, and the HTTP POST;
//! - [`signing`]: the `Nudge-Signature` and `Nudge-Idempotency-Key` headers.

pub mod api;
pub mod queue;
pub mod signing;
pub mod worker;

use serde_json::{json, Value};
use sqlx::Row;

use crate::config::Database;
use crate::feed::Cursor;
use crate::store::{on_db, Db, Store, StoreError};

/// The filter entry that matches every message (of every type).
pub const ALL_EVENTS: &str = "*";
/// Most webhooks one site may have.
pub const MAX_PER_SITE: i64 = 50;
/// Most event names in one filter.
pub const MAX_EVENTS: usize = 100;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2_000;

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `wh_` and 20 hex digits.
    pub id: String,
    /// The site whose messages it receives.
    pub site_id: String,
    /// Where deliveries are POSTed (`http` or `https`).
    pub url: String,
    /// Track event names it wants, or `["*"]` for every message.
    pub events: Vec<String>,
    /// The key deliveries are signed with (`whsec_...`); shown once, at registration.
    pub secret: String,
    /// Registration time, ms.
    pub created_ms: i64,
}

/// Whether a webhook with `events` wants a message of type `kind` named `event`: `*`
/// matches every message; a name matches track messages with that event name.
pub fn wants(events: &[String], kind: &str, event: Option<&str>) -> bool {
    events.iter().any(|e| e == ALL_EVENTS || (kind == "track" && Some(e.as_str()) == event))
}

/// Checks a webhook URL: absolute `http://` or `https://` with a host, no credentials.
pub fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.len() > MAX_URL_LEN {
        return Err(format!("url may be at most {MAX_URL_LEN} characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("url {url:?} must be http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("url {url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url must not carry credentials; verify the Nudge-Signature header instead".into());
    }
    Ok(parsed.to_string())
}

/// Checks an event filter: absent or empty means every message (`["*"]`); otherwise up to
/// [`MAX_EVENTS`] non-empty names, trimmed, sorted and without repeats.
pub fn check_events(events: &[String]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = events.iter().map(|e| e.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err("event names must not be empty".into());
    }
    if names.iter().any(|e| e.len() > 200) {
        return Err("event names may be at most 200 characters".into());
    }
    if names.is_empty() || names.iter().any(|e| e == ALL_EVENTS) {
        return Ok(vec![ALL_EVENTS.to_string()]);
    }
    names.sort();
    names.dedup();
    if names.len() > MAX_EVENTS {
        return Err(format!("a webhook may name at most {MAX_EVENTS} events"));
    }
    Ok(names)
}

/// Why a registration failed.
#[derive(Debug)]
pub enum RegisterError {
    /// Bad input, or the site has too many webhooks, or no such site.
    Invalid(String),
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> RegisterError {
        RegisterError::Store(e)
    }
}

impl From<sqlx::Error> for RegisterError {
    fn from(e: sqlx::Error) -> RegisterError {
        RegisterError::Store(e.into())
    }
}

/// Registers a webhook for `site_id`. It receives the messages stored after this moment:
/// its feed cursor starts at the end of the site's feed.
pub async fn register(
    store: &Store,
    site_id: &str,
    url: &str,
    events: &[String],
    now_ms: i64,
) -> Result<Webhook, RegisterError> {
    let url = check_url(url).map_err(RegisterError::Invalid)?;
    let events = check_events(events).map_err(RegisterError::Invalid)?;
    let random = |n| crate::sites::random_hex(n).map_err(|e| RegisterError::Invalid(format!("no randomness: {e}")));
    let webhook = Webhook {
        id: format!("wh_{}", random(10)?),
        site_id: site_id.to_string(),
        url,
        events,
        secret: signing::new_secret().map_err(RegisterError::Invalid)?,
        created_ms: now_ms,
    };
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let (site_exists, count): (Option<i64>, i64) = on_db!(&mut db, |c, _d| {
        let exists = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM sites WHERE id = $1")
            .bind(site_id)
            .fetch_optional(&mut *c)
            .await?;
        let count = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE site_id = $1")
            .bind(site_id)
            .fetch_one(&mut *c)
            .await?;
        (exists, count)
    });
    if site_exists.is_none() {
        return Err(RegisterError::Invalid(format!("no site {site_id}")));
    }
    if count >= MAX_PER_SITE {
        return Err(RegisterError::Invalid(format!("a site may have at most {MAX_PER_SITE} webhooks")));
    }
    let head = feed_head(&mut db, site_id).await?;
    let events_json = serde_json::to_string(&webhook.events).unwrap_or_else(|_| "[\"*\"]".into());
    on_db!(&mut db, |c, _d| {
        sqlx::query(
            "INSERT INTO webhooks (id, site_id, url, events, secret, created_ms, cursor_tx, cursor_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&webhook.id)
        .bind(&webhook.site_id)
        .bind(&webhook.url)
        .bind(&events_json)
        .bind(&webhook.secret)
        .bind(webhook.created_ms)
        .bind(head.tx as i64)
        .bind(head.seq)
        .execute(&mut *c)
        .await?;
    });
    tx.commit().await?;
    Ok(webhook)
}

/// The position of the last message of `site_id` stored so far: a new webhook starts there,
/// so it gets what is stored after it was created. On PostgreSQL this is the last committed
/// row, not the feed's own horizon (`tx < xmin`), which stays back while any transaction is
/// open and would hand a new webhook messages stored before it. A message whose transaction
/// was still open at that moment and sorts before the head is not sent to the new webhook.
async fn feed_head(db: &mut Db<'_>, site_id: &str) -> Result<Cursor, StoreError> {
    let row: Option<(String, i64)> = on_db!(db, |c, d| {
        let sql = match d {
            crate::store::Dialect::Sqlite => "SELECT '0', seq FROM events WHERE site_id = $1 ORDER BY seq DESC LIMIT 1",
            crate::store::Dialect::Postgres => {
                "SELECT tx::text, seq FROM events WHERE site_id = $1 ORDER BY tx DESC, seq DESC LIMIT 1"
            }
        };
        sqlx::query_as(sql).bind(site_id).fetch_optional(&mut *c).await?
    });
    Ok(row.map_or(Cursor::default(), |(tx, seq)| Cursor { tx: tx.parse().unwrap_or(0), seq }))
}

/// A webhook as listed (without its secret), with its queue's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The webhook, `secret` empty.
    pub webhook: Webhook,
    /// Deliveries waiting or being retried.
    pub pending: i64,
    /// Deliveries that got a 2xx.
    pub delivered: i64,
    /// Deliveries given up after 24 hours of failures.
    pub failed: i64,
}

impl Listed {
    /// The API's JSON form.
    pub fn to_json(&self) -> Value {
        let w = &self.webhook;
        json!({
            "id": w.id,
            "url": w.url,
            "events": w.events,
            "createdAt": nudge::time::to_iso(w.created_ms.max(0) as u64),
            "deliveries": { "pending": self.pending, "delivered": self.delivered, "failed": self.failed },
        })
    }
}

/// The site's webhooks, oldest first.
pub async fn list(db: &mut Db<'_>, site_id: &str) -> Result<Vec<Listed>, StoreError> {
    let rows = on_db!(db, |c, _d| {
        let rows = sqlx::query(
            "SELECT w.id, w.url, w.events, w.created_ms, \
             (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending'), \
             (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'delivered'), \
             (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'failed') \
             FROM webhooks w WHERE w.site_id = $1 ORDER BY w.created_ms, w.id",
        )
        .bind(site_id)
        .fetch_all(&mut *c)
        .await?;
        rows.iter()
            .map(|r| {
                let events: String = r.try_get(2)?;
                Ok(Listed {
                    webhook: Webhook {
                        id: r.try_get(0)?,
                        site_id: site_id.to_string(),
                        url: r.try_get(1)?,
                        events: serde_json::from_str(&events).unwrap_or_default(),
                        secret: String::new(),
                        created_ms: r.try_get(3)?,
                    },
                    pending: r.try_get(4)?,
                    delivered: r.try_get(5)?,
                    failed: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

/// Removes a webhook of `site_id` and its queue; false when it has no such webhook.
pub async fn remove(store: &Store, site_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let removed = on_db!(&mut db, |c, _d| {
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND site_id = $2")
            .bind(webhook_id)
            .bind(site_id)
            .execute(&mut *c)
            .await?;
        sqlx::query("DELETE FROM webhooks WHERE id = $1 AND site_id = $2")
            .bind(webhook_id)
            .bind(site_id)
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    tx.commit().await?;
    Ok(removed > 0)
}

/// What `nudge-server webhook ...` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliAction {
    /// `webhook add --site ID --url URL [--event NAME]...`
    Add {
        /// The URL.
        url: String,
        /// The filter (empty: every message).
        events: Vec<String>,
    },
    /// `webhook list --site ID`
    List,
    /// `webhook remove --site ID --id WEBHOOK`
    Remove {
        /// The webhook's id.
        id: String,
    },
}

/// Runs a `webhook` command against `database` and returns the JSON it prints.
pub async fn cli(database: &Database, site_id: &str, action: &CliAction) -> Result<String, String> {
    let store = Store::open(database, 1).await.map_err(|e| format!("cannot open {}: {e}", database.describe()))?;
    let result = async {
        match action {
            CliAction::Add { url, events } => {
                let w = register(&store, site_id, url, events, crate::state::now_ms()).await.map_err(|e| match e {
                    RegisterError::Invalid(m) => m,
                    RegisterError::Store(e) => format!("database: {e}"),
                })?;
                Ok(json!({
                    "id": w.id,
                    "siteId": w.site_id,
                    "url": w.url,
                    "events": w.events,
                    "secret": w.secret,
                    "createdAt": nudge::time::to_iso(w.created_ms.max(0) as u64),
                }))
            }
            CliAction::List => {
                let mut conn = store.connection().await.map_err(|e| format!("database: {e}"))?;
                let listed = list(&mut conn.db(), site_id).await.map_err(|e| format!("database: {e}"))?;
                Ok(json!({ "siteId": site_id, "webhooks": listed.iter().map(Listed::to_json).collect::<Vec<_>>() }))
            }
            CliAction::Remove { id } => match remove(&store, site_id, id).await {
                Ok(true) => Ok(json!({ "id": id, "deleted": true })),
                Ok(false) => Err(format!("site {site_id} has no webhook {id}")),
                Err(e) => Err(format!("database: {e}")),
            },
        }
    }
    .await;
    store.close().await;
    result.map(|out: Value| format!("{out:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_match_track_names_or_everything() {
        let stage = names(&["Stage Changed"]);
        assert!(wants(&stage, "track", Some("Stage Changed")));
        assert!(!wants(&stage, "track", Some("Product Viewed")));
        assert!(!wants(&stage, "page", Some("Stage Changed")), "names match track events only");
        let all = names(&["*"]);
        assert!(wants(&all, "identify", None) && wants(&all, "track", Some("x")));
    }

    #[test]
    fn events_and_urls_are_checked() {
        assert_eq!(check_events(&[]).unwrap(), ["*"]);
        assert_eq!(check_events(&names(&["b", " a", "b"])).unwrap(), ["a", "b"]);
        assert_eq!(check_events(&names(&["a", "*"])).unwrap(), ["*"]);
        assert!(check_events(&names(&[""])).is_err());
        assert_eq!(check_url("https://hooks.example/nudge?x=1").unwrap(), "https://hooks.example/nudge?x=1");
        assert_eq!(check_url("http://127.0.0.1:9000").unwrap(), "http://127.0.0.1:9000/");
        assert!(check_url("ftp://hooks.example/").is_err());
        assert!(check_url("hooks.example/x").is_err());
        assert!(check_url("https://user:pw@hooks.example/").is_err());
    }
}
