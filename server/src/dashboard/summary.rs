//! `GET /v1/dashboard/summary` (secret key): what the dashboard draws, in one answer.
//!
//! ```json
//! {"generatedAt": "...",
//!  "profiles": {"counted": 120, "limit": 10000, "truncated": false},
//!  "stages": {"order": ["awareness", ...], "categories": [{"category": "TVs", "total": 7,
//!             "counts": {"awareness": 3, "consideration": 2, "decision": 1, "purchase": 1, "loyalty": 0}}]},
//!  "funnel": [{"stage": "awareness", "count": 120, "conversion": null},
//!             {"stage": "consideration", "count": 60, "conversion": 0.5}, ...],
//!  "abandonment": {"days": [{"day": "2026-10-26", "abandoned": 2, "recoveredOrders": 1, "recovered": 499.0}, ...],
//!                  "abandoned": 9, "recoveredOrders": 3, "recovered": 1210.0},
//!  "campaigns": [<the report of GET /v1/campaigns/{id}/report>, ...]}
//! ```
//!
//! - Stages are read from the folded profiles as of the request, with the site's thresholds
//!   (as `GET /v1/profiles` reads them): per category, how many profiles are at each stage.
//! - The funnel is over each profile's overall stage: a stage's count is the profiles that
//!   reached it or a later one; `conversion` is a stage's count over the previous stage's.
//! - Abandonment covers the last [`DAYS`] UTC days, oldest first, every day present: the
//!   `Cart Abandoned` events of each day, and the orders recovered on each day: an
//!   `Order Completed` that is a person's first order at or after one of their
//!   `Cart Abandoned` events (browsers linked to a user count as that user), with its
//!   `revenue` (else `total`). Both kinds of event are read from the window only.
//! - Campaigns: the site's campaigns, in the site's order, each with its report.
//!
//! Bounded: at most [`MAX_PROFILES`] profiles and [`MAX_EVENTS`] events of each kind are
//! read (`truncated` says when profiles were cut). At scale this wants aggregate tables,
//! kept by the fold and the ingest: stage counts per (site, category, stage) updated when a
//! fold changes a stage (stages also fade with time, so a periodic recount), and per-day
//! counters of abandoned carts and recovered revenue updated as those events are stored;
//! and an index on `events (site_id, event, timestamp_ms)` for the window reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::api::secret_key_site;
use crate::campaigns;
use crate::coupons::redeem::{order_revenue, ORDER_COMPLETED};
use crate::error::{json_response, ApiError};
use crate::identity::{self, Person};
use crate::profiles::{self, profile_row, ProfileRow, PROFILE_COLUMNS};
use crate::site_config;
use crate::state::App;
use crate::store::{on_db, stored_event, Db, StoreError, StoredEvent, EVENT_COLUMNS};

/// The journey's stages, in order.
pub const STAGES: [&str; 5] = ["awareness", "consideration", "decision", "purchase", "loyalty"];
/// Most profiles read for the stage counts.
pub const MAX_PROFILES: usize = 10_000;
/// Most events of each kind (`Cart Abandoned`, `Order Completed`) read for the window.
pub const MAX_EVENTS: i64 = 20_000;
/// Days of abandonment shown, today (UTC) included.
pub const DAYS: i64 = 30;
const CART_ABANDONED: &str = "Cart Abandoned";
const DAY_MS: i64 = 86_400_000;

/// `GET /v1/dashboard/summary`.
pub async fn get(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
        summary(&mut conn.db(), &site.id, crate::state::now_ms()).await.map_err(|e| ApiError::storage(&e))
    }
    .await;
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// The summary of a site as of `now_ms`.
pub async fn summary(db: &mut Db<'_>, site_id: &str, now_ms: i64) -> Result<Value, StoreError> {
    let config = site_config::load(db, site_id).await?;
    let rows = profile_rows(db, site_id).await?;
    let truncated = rows.len() > MAX_PROFILES;
    let rows = &rows[..rows.len().min(MAX_PROFILES)];
    let mut per_category: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    let mut overall = [0u64; 5];
    for row in rows {
        let Some((stage, categories)) = profiles::stages_of(row, &config.thresholds, now_ms) else { continue };
        if let Some(i) = stage.and_then(stage_index) {
            overall[i] += 1;
        }
        for (category, stage) in categories {
            if let Some(i) = stage_index(stage) {
                per_category.entry(category).or_default()[i] += 1;
            }
        }
    }
    let categories: Vec<Value> = per_category
        .iter()
        .map(|(category, counts)| {
            let by_stage: serde_json::Map<String, Value> =
                STAGES.iter().zip(counts).map(|(s, n)| (s.to_string(), json!(n))).collect();
            json!({ "category": category, "total": counts.iter().sum::<u64>(), "counts": by_stage })
        })
        .collect();

    let mut campaign_reports = Vec::new();
    for campaign in campaigns::load(db, site_id).await? {
        let Some(id) = campaign.get("id").and_then(Value::as_str) else { continue };
        if let Some(report) = campaigns::report::report(db, site_id, id).await? {
            campaign_reports.push(report);
        }
    }

    Ok(json!({
        "generatedAt": nudge::time::to_iso(now_ms.max(0) as u64),
        "profiles": { "counted": rows.len(), "limit": MAX_PROFILES, "truncated": truncated },
        "stages": { "order": STAGES, "categories": categories },
        "funnel": funnel(&overall),
        "abandonment": abandonment(db, site_id, now_ms).await?,
        "campaigns": campaign_reports,
    }))
}

fn stage_index(stage: &str) -> Option<usize> {
    STAGES.iter().position(|s| *s == stage)
}

/// The funnel from the profiles at each overall stage: how many reached each stage (it or
/// a later one), and the share of the previous stage's that did.
pub fn funnel(at_stage: &[u64; 5]) -> Vec<Value> {
    let mut previous: Option<u64> = None;
    (0..STAGES.len())
        .map(|i| {
            let reached: u64 = at_stage[i..].iter().sum();
            let conversion = match previous {
                Some(p) if p > 0 => json!(reached as f64 / p as f64),
                _ => Value::Null,
            };
            previous = Some(reached);
            json!({ "stage": STAGES[i], "count": reached, "conversion": conversion })
        })
        .collect()
}

/// At most `MAX_PROFILES + 1` profile rows (one more, to know the list was cut).
async fn profile_rows(db: &mut Db<'_>, site_id: &str) -> Result<Vec<ProfileRow>, StoreError> {
    Ok(on_db!(db, |c, _d| {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE site_id = $1 ORDER BY person_id LIMIT $2");
        let rows = sqlx::query(&sql).bind(site_id).bind(MAX_PROFILES as i64 + 1).fetch_all(&mut *c).await?;
        rows.iter().map(profile_row).filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()?
    }))
}

/// The events of one name timed at or after `since_ms`, oldest first, at most `MAX_EVENTS`.
async fn events_since(
    db: &mut Db<'_>,
    site_id: &str,
    name: &str,
    since_ms: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(on_db!(db, |c, _d| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND type = 'track' AND event = $2 \
             AND timestamp_ms >= $3 ORDER BY timestamp_ms, seq LIMIT $4"
        );
        let rows =
            sqlx::query(&sql).bind(site_id).bind(name).bind(since_ms).bind(MAX_EVENTS).fetch_all(&mut *c).await?;
        rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?
    }))
}

/// The UTC day (`YYYY-MM-DD`) of a time.
fn day_of(ms: i64) -> String {
    nudge::time::to_iso(ms.max(0) as u64)[..10].to_string()
}

/// Abandoned carts and recovered revenue per day over the last [`DAYS`] days.
async fn abandonment(db: &mut Db<'_>, site_id: &str, now_ms: i64) -> Result<Value, StoreError> {
    let since = (now_ms.div_euclid(DAY_MS) - (DAYS - 1)) * DAY_MS;
    let abandoned = events_since(db, site_id, CART_ABANDONED, since).await?;
    let orders = events_since(db, site_id, ORDER_COMPLETED, since).await?;
    let both = || abandoned.iter().chain(orders.iter());
    let users: BTreeSet<&str> = both().filter_map(|e| e.event.user_id.as_deref()).collect();
    let anons: BTreeSet<&str> = both().filter_map(|e| e.event.anonymous_id.as_deref()).collect();
    let (users, anons): (Vec<&str>, Vec<&str>) = (users.into_iter().collect(), anons.into_iter().collect());
    let links = identity::links(db, site_id, &anons, &users).await?;
    let person = |e: &StoredEvent| {
        Person::of(e.event.user_id.as_deref(), e.event.anonymous_id.as_deref(), &links).map(|p| p.key())
    };
    let timeline = recovered_orders(
        &abandoned.iter().filter_map(|e| Some((person(e)?, e.event.timestamp_ms))).collect::<Vec<_>>(),
        &orders
            .iter()
            .filter_map(|e| {
                let body: Value = serde_json::from_str(&e.event.body).ok()?;
                let revenue = body.get("properties").and_then(order_revenue).unwrap_or(0.0);
                Some((person(e)?, e.event.timestamp_ms, revenue))
            })
            .collect::<Vec<_>>(),
    );
    let mut days: BTreeMap<String, (u64, u64, f64)> =
        (0..DAYS).map(|i| (day_of(since + i * DAY_MS), (0, 0, 0.0))).collect();
    for e in &abandoned {
        if let Some(d) = days.get_mut(&day_of(e.event.timestamp_ms)) {
            d.0 += 1;
        }
    }
    for (at, revenue) in &timeline {
        if let Some(d) = days.get_mut(&day_of(*at)) {
            d.1 += 1;
            d.2 += revenue;
        }
    }
    let total = days.values().fold((0, 0, 0.0), |t, d| (t.0 + d.0, t.1 + d.1, t.2 + d.2));
    let days: Vec<Value> = days
        .into_iter()
        .map(|(day, (n, orders, revenue))| {
            json!({ "day": day, "abandoned": n, "recoveredOrders": orders, "recovered": revenue })
        })
        .collect();
    Ok(json!({ "days": days, "abandoned": total.0, "recoveredOrders": total.1, "recovered": total.2 }))
}

/// The recovered orders, as (time, revenue): each person's first order at or after one of
/// their abandonments (a later abandonment makes the next order a recovery again).
/// `abandoned` is (person, time), `orders` (person, time, revenue).
pub fn recovered_orders(abandoned: &[(String, i64)], orders: &[(String, i64, f64)]) -> Vec<(i64, f64)> {
    // Per person, their events in time order; at the same time, the abandonment first.
    let mut timelines: HashMap<&str, Vec<(i64, u8, f64)>> = HashMap::new();
    for (p, at) in abandoned {
        timelines.entry(p).or_default().push((*at, 0, 0.0));
    }
    for (p, at, revenue) in orders {
        if let Some(t) = timelines.get_mut(p.as_str()) {
            t.push((*at, 1, *revenue));
        }
    }
    let mut recovered = Vec::new();
    for mut t in timelines.into_values() {
        t.sort_by_key(|e| (e.0, e.1));
        let mut pending = false;
        for (at, kind, revenue) in t {
            match kind {
                0 => pending = true,
                _ if pending => {
                    recovered.push((at, revenue));
                    pending = false;
                }
                _ => {}
            }
        }
    }
    recovered.sort_by_key(|r| r.0);
    recovered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_funnel_counts_who_reached_each_stage() {
        let f = funnel(&[4, 2, 1, 1, 0]);
        let counts: Vec<u64> = f.iter().map(|s| s["count"].as_u64().unwrap()).collect();
        assert_eq!(counts, [8, 4, 2, 1, 0]);
        assert_eq!(f[0]["conversion"], Value::Null);
        assert_eq!(f[1]["conversion"], json!(0.5));
        assert_eq!(f[4]["conversion"], json!(0.0));
        assert_eq!(funnel(&[0; 5])[1]["conversion"], Value::Null);
    }

    #[test]
    fn an_order_is_recovered_once_after_an_abandonment() {
        let p = |s: &str| s.to_string();
        let abandoned = vec![(p("a"), 100), (p("a"), 500), (p("b"), 100)];
        let orders = vec![
            (p("a"), 50, 1.0),   // before any abandonment
            (p("a"), 200, 10.0), // recovered
            (p("a"), 300, 20.0), // a second order: not a recovery
            (p("a"), 600, 30.0), // after the second abandonment: recovered
            (p("c"), 200, 99.0), // never abandoned
        ];
        assert_eq!(recovered_orders(&abandoned, &orders), vec![(200, 10.0), (600, 30.0)]);
    }
}
