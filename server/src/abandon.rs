//! Cart abandonment on the server: a cart with no order for the site's
//! `cart_abandon_minutes` after its last activity (`Product Added`, `Product Removed`,
//! `Cart Viewed`, `Checkout Started`) becomes a `Cart Abandoned` track event for that
//! person, once per cart.
//!
//! - Arming: the worker follows each site's change feed (`crate::follow`, consumer
//!   `abandon`). For every person whose cart activity or order a page brings, it reads the
//!   person's folded profile (folding runs in the transaction that stores a message, so the
//!   profile already holds the page's messages): an empty cart deletes the person's timer
//!   (an order, or every line removed, cancels it); a non-empty one arms or pushes back the
//!   timer row in `cart_timers`, in the transaction that moves the feed cursor.
//! - Firing: due rows are claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL) with a lease
//!   and a claim count that fences a node whose lease ran out. The cart is read again from
//!   the profile at that moment (it may have been bought or emptied meanwhile), and the
//!   event goes in through the normal ingest path (stored, folded, in the feed, so webhooks
//!   and the email worker see it) with a `messageId` derived from the person and the
//!   cart's last activity: a retry after a crash cannot store it twice.
//! - Once per cart: a fired row stays `fired` until an order or an emptied cart deletes
//!   it; more activity on the same cart does not fire again. An order followed by new
//!   activity starts a new cart.
//!
//! Timers are rows, so they survive restarts; any number of nodes may run the worker.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::background::spawn_rounds;
pub use crate::background::WorkerHandle;
use crate::follow;
use crate::hmac::hex;
use crate::identity::{self, Person};
use crate::store::{on_db, Db, Dialect, NewEvent, Store, StoreError};

/// The event the timer stores.
pub const CART_ABANDONED: &str = "Cart Abandoned";
/// Track events that count as cart activity.
pub const CART_ACTIVITY: [&str; 4] = ["Product Added", "Product Removed", "Cart Viewed", "Checkout Started"];
/// The event that ends a cart.
pub const ORDER_COMPLETED: &str = "Order Completed";
/// The feed consumer's name in `feed_cursors`.
const CONSUMER: &str = "abandon";
/// Feed messages read per page.
const PAGE: i64 = 500;
/// Timers claimed per round.
const BATCH: i64 = 32;
/// How long a claimed timer is left to its node.
const LEASE_MS: i64 = 60_000;

/// The abandonment worker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether `serve` runs it.
    pub enabled: bool,
    /// Pause between rounds when there is nothing to do.
    pub poll: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { enabled: true, poll: Duration::from_millis(250) }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Feed messages read.
    pub read: usize,
    /// `Cart Abandoned` events stored.
    pub fired: usize,
}

/// One round: follow the feeds into timers, then fire the due ones.
pub async fn round(store: &Store, now_ms: i64) -> Result<Round, StoreError> {
    let mut out = Round::default();
    for site_id in follow::sites_with_news(store, CONSUMER).await? {
        while let Some(mut page) = follow::next_page(store, CONSUMER, &site_id, PAGE).await? {
            out.read += page.entries.len();
            arm(&mut page).await?;
            page.commit().await?;
        }
    }
    for timer in claim(store, now_ms).await? {
        if fire(store, &timer, now_ms).await? {
            out.fired += 1;
        }
    }
    Ok(out)
}

/// The person a message belongs to now (an anonymous id linked to a user is that user).
async fn person_of(
    db: &mut Db<'_>,
    site_id: &str,
    user_id: Option<&str>,
    anonymous_id: Option<&str>,
) -> Result<Option<Person>, StoreError> {
    Ok(match (user_id, anonymous_id) {
        (Some(u), _) => Some(Person::User(u.to_string())),
        (None, Some(a)) => Some(identity::person_of_anonymous(db, site_id, a).await?),
        (None, None) => None,
    })
}

/// The cart in a person's folded profile (empty when there is no profile).
pub async fn cart_of(db: &mut Db<'_>, site_id: &str, person: &Person) -> Result<nudge::cart::Cart, StoreError> {
    Ok(crate::profiles::core_profile(db, site_id, person).await?.cart)
}

/// A site's abandonment wait, ms.
async fn threshold_ms(db: &mut Db<'_>, site_id: &str) -> Result<i64, StoreError> {
    let config = crate::site_config::load(db, site_id).await?;
    Ok(config.thresholds.cart_abandon_after() as i64)
}

/// Arms, pushes back or cancels the timers of the people a page of the feed names.
async fn arm(page: &mut follow::Page<'_>) -> Result<(), StoreError> {
    // person -> (latest cart activity in the page, whether an order came)
    let mut touched: BTreeMap<Person, (Option<i64>, bool)> = BTreeMap::new();
    let site_id = page.site_id.clone();
    let entries = std::mem::take(&mut page.entries);
    for entry in &entries {
        let e = &entry.stored.event;
        let Some(name) = e.event.as_deref().filter(|_| e.kind == "track") else { continue };
        let order = name == ORDER_COMPLETED;
        if !order && !CART_ACTIVITY.contains(&name) {
            continue;
        }
        let mut db = page.db();
        let Some(person) = person_of(&mut db, &site_id, e.user_id.as_deref(), e.anonymous_id.as_deref()).await? else {
            continue;
        };
        let slot = touched.entry(person).or_insert((None, false));
        if order {
            slot.1 = true;
        } else {
            // The message's time (corrected for client clock skew at ingest), the same
            // clock the folded cart's `updated` uses, which `fire` compares with it.
            let at = e.timestamp_ms;
            slot.0 = Some(slot.0.map_or(at, |t: i64| t.max(at)));
        }
    }
    page.entries = entries;
    if touched.is_empty() {
        return Ok(());
    }
    let mut db = page.db();
    let wait = threshold_ms(&mut db, &site_id).await?;
    for (person, (activity, ordered)) in touched {
        let cart = cart_of(&mut db, &site_id, &person).await?;
        let key = person.key();
        match activity {
            _ if cart.lines.is_empty() => {
                on_db!(&mut db, |c, _d| {
                    sqlx::query("DELETE FROM cart_timers WHERE site_id = $1 AND person_key = $2")
                        .bind(&site_id)
                        .bind(&key)
                        .execute(&mut *c)
                        .await?;
                });
            }
            None => {} // an order, and a cart the page did not touch: nothing to change
            Some(at) => {
                // After an order, this is a new cart; otherwise a pending timer moves to
                // the latest activity and a fired one stays fired (once per cart).
                let update = if ordered {
                    "last_activity_ms = excluded.last_activity_ms, due_ms = excluded.due_ms, status = 'pending'"
                } else {
                    "last_activity_ms = CASE WHEN cart_timers.status = 'pending' \
                     AND excluded.last_activity_ms > cart_timers.last_activity_ms \
                     THEN excluded.last_activity_ms ELSE cart_timers.last_activity_ms END, \
                     due_ms = CASE WHEN cart_timers.status = 'pending' \
                     AND excluded.last_activity_ms > cart_timers.last_activity_ms \
                     THEN excluded.due_ms ELSE cart_timers.due_ms END"
                };
                on_db!(&mut db, |c, _d| {
                    let sql = format!(
                        "INSERT INTO cart_timers (site_id, person_key, last_activity_ms, due_ms, status, claims) \
                         VALUES ($1, $2, $3, $4, 'pending', 0) \
                         ON CONFLICT (site_id, person_key) DO UPDATE SET {update}"
                    );
                    sqlx::query(&sql)
                        .bind(&site_id)
                        .bind(&key)
                        .bind(at)
                        .bind(at.saturating_add(wait))
                        .execute(&mut *c)
                        .await?;
                });
            }
        }
    }
    Ok(())
}

/// A claimed timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The site.
    pub site_id: String,
    /// The person it was armed for ([`Person::key`]).
    pub person_key: String,
    /// The cart's last activity, ms.
    pub last_activity_ms: i64,
    /// The claim count after this claim (the fencing token).
    pub claims: i64,
}

/// Claims up to [`BATCH`] due timers, leasing them for [`LEASE_MS`].
async fn claim(store: &Store, now_ms: i64) -> Result<Vec<Claimed>, StoreError> {
    if !store
        .any_due("SELECT CAST(1 AS BIGINT) FROM cart_timers WHERE status = 'pending' AND due_ms <= $1 LIMIT 1", now_ms)
        .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let rows: Vec<(String, String, i64, i64)> = on_db!(&mut db, |c, d| {
        let lock = match d {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE cart_timers SET claims = claims + 1, due_ms = $2 \
             WHERE (site_id, person_key) IN (SELECT site_id, person_key FROM cart_timers \
             WHERE status = 'pending' AND due_ms <= $1 ORDER BY due_ms LIMIT $3{lock}) \
             RETURNING site_id, person_key, last_activity_ms, claims"
        );
        sqlx::query_as(&sql).bind(now_ms).bind(now_ms.saturating_add(LEASE_MS)).bind(BATCH).fetch_all(&mut *c).await?
    });
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(site_id, person_key, last_activity_ms, claims)| Claimed {
            site_id,
            person_key,
            last_activity_ms,
            claims,
        })
        .collect())
}

/// The `messageId` of the `Cart Abandoned` event for a person's cart.
pub fn message_id(site_id: &str, person_key: &str, last_activity_ms: i64) -> String {
    let digest = Sha256::digest(format!("cart-abandoned\n{site_id}\n{person_key}\n{last_activity_ms}").as_bytes());
    format!("nudge-abandon-{}", hex(&digest[..16]))
}

/// Fires a claimed timer: stores `Cart Abandoned` unless the cart is gone or moved on.
/// Returns whether the event was stored now.
async fn fire(store: &Store, timer: &Claimed, now_ms: i64) -> Result<bool, StoreError> {
    let Some(armed_for) = Person::from_key(&timer.person_key) else {
        finish(store, timer, End::Cancel).await?;
        return Ok(false);
    };
    let (person, cart, wait) = {
        let mut conn = store.connection().await?;
        let mut db = conn.db();
        let person = match &armed_for {
            Person::Anonymous(a) => identity::person_of_anonymous(&mut db, &timer.site_id, a).await?,
            user => user.clone(),
        };
        let cart = cart_of(&mut db, &timer.site_id, &person).await?;
        (person, cart, threshold_ms(&mut db, &timer.site_id).await?)
    };
    if cart.lines.is_empty() {
        finish(store, timer, End::Cancel).await?;
        return Ok(false);
    }
    let updated = cart.updated as i64;
    if updated > timer.last_activity_ms {
        // Activity the feed has not brought here yet: wait from it.
        finish(store, timer, End::Wait(updated)).await?;
        return Ok(false);
    }
    let id = message_id(&timer.site_id, &timer.person_key, timer.last_activity_ms);
    let at = timer.last_activity_ms.saturating_add(wait).min(now_ms);
    let products: Vec<Value> = cart
        .lines
        .iter()
        .map(|l| {
            json!({"product_id": l.product_id, "name": l.name, "category": l.category, "brand": l.brand,
                   "price": l.price, "quantity": l.quantity})
        })
        .collect();
    let mut properties = json!({ "cart_value": cart.value(), "products": products });
    if let Some(currency) = &cart.currency {
        properties["currency"] = json!(currency);
    }
    let body = json!({
        "type": "track",
        "event": CART_ABANDONED,
        "messageId": id,
        "userId": person.user_id(),
        "anonymousId": person.anonymous_id(),
        "timestamp": nudge::time::to_iso(at.max(0) as u64),
        "properties": properties,
        "context": { "library": { "name": "nudge-server", "version": env!("CARGO_PKG_VERSION") } },
    });
    let event = NewEvent {
        message_id: id,
        kind: "track",
        event: Some(CART_ABANDONED.into()),
        user_id: person.user_id().map(str::to_string),
        anonymous_id: person.anonymous_id().map(str::to_string),
        timestamp_ms: at,
        received_ms: now_ms,
        body: body.to_string(),
    };
    let outcome = store.ingest(&timer.site_id, vec![event], now_ms).await?;
    // Marked fired only after the event is committed: a crash in between leaves the row to
    // be claimed again when the lease ends, and the same messageId makes that a duplicate.
    finish(store, timer, End::Fired).await?;
    Ok(!outcome.stored.is_empty())
}

/// What becomes of a claimed timer.
enum End {
    /// The cart is gone (bought, emptied, erased): delete the row.
    Cancel,
    /// `Cart Abandoned` is stored: once per cart.
    Fired,
    /// Newer activity at this time: wait again from it.
    Wait(i64),
}

/// Records a claimed timer's end, only if the row is still at the claim that was made.
async fn finish(store: &Store, timer: &Claimed, end: End) -> Result<(), StoreError> {
    let due = match end {
        End::Wait(t) => {
            let mut conn = store.connection().await?;
            t.saturating_add(threshold_ms(&mut conn.db(), &timer.site_id).await?)
        }
        _ => 0,
    };
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    on_db!(&mut db, |c, _d| {
        let sql = match end {
            End::Cancel => "DELETE FROM cart_timers WHERE site_id = $1 AND person_key = $2 AND claims = $3",
            End::Fired => {
                "UPDATE cart_timers SET status = 'fired' WHERE site_id = $1 AND person_key = $2 AND claims = $3"
            }
            End::Wait(_) => {
                "UPDATE cart_timers SET last_activity_ms = $4, due_ms = $5 \
                 WHERE site_id = $1 AND person_key = $2 AND claims = $3"
            }
        };
        let mut query = sqlx::query(sql).bind(&timer.site_id).bind(&timer.person_key).bind(timer.claims);
        if let End::Wait(t) = end {
            query = query.bind(t).bind(due);
        }
        query.execute(&mut *c).await?;
    });
    tx.commit().await
}

/// Starts the worker `serve` runs, unless the settings turn it off.
pub fn start(store: &Store, settings: &Settings) -> Option<WorkerHandle> {
    if !settings.enabled {
        return None;
    }
    let store = store.clone();
    Some(spawn_rounds("cart abandonment", settings.poll, move || {
        let store = store.clone();
        async move { round(&store, crate::state::now_ms()).await.map(|_| false) }
    }))
}

/// A site's timers (tests and operators): `(person key, status, last activity ms, due ms)`.
pub async fn timers(store: &Store, site_id: &str) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
    let mut conn = store.connection().await?;
    let mut db = conn.db();
    Ok(on_db!(&mut db, |c, _d| {
        sqlx::query_as(
            "SELECT person_key, status, last_activity_ms, due_ms FROM cart_timers WHERE site_id = $1 ORDER BY person_key",
        )
        .bind(site_id)
        .fetch_all(&mut *c)
        .await?
    }))
}

/// Erasure: drops the timers of these people ([`Person::key`]s).
pub async fn forget(db: &mut Db<'_>, site_id: &str, person_keys: &[String]) -> Result<(), StoreError> {
    on_db!(db, |c, d| {
        let sql = format!("DELETE FROM cart_timers WHERE site_id = $1 AND {}", d.is_in("person_key", "$2"));
        sqlx::query(&sql).bind(site_id).bind(crate::store::json_list(person_keys)).execute(&mut *c).await?;
    });
    Ok(())
}
