//! `GET /v1/campaigns/{id}/report` (secret key): what a campaign did.
//!
//! - Counts of its `Popup Shown`, `Popup Dismissed`, `Popup Converted` and `Popup Held Out`
//!   events (by `properties.campaign_id`); its coupons issued and redeemed, the revenue of
//!   the orders that redeemed them, and the misuses reported (`Coupon Reused`,
//!   `Coupon Expired Used`).
//! - Treatment and holdout, per shopper: a shopper (a person, with browsers linked to their
//!   user counted once) is in the group of their first assignment event, `Popup Shown`
//!   (treatment) or `Popup Held Out` (holdout). They converted if an `Order Completed` of
//!   theirs is timed at or after that first assignment; their revenue is the sum of those
//!   orders' revenue (`revenue`, else `total`). Groups give shoppers, converted, conversion
//!   rate, revenue and revenue per shopper.
//! - Uplift, treatment minus holdout, with 95% intervals (see [`crate::uplift`]): the
//!   conversion rate by the normal approximation for a difference of two proportions, the
//!   revenue per shopper by Welch's t interval. `null` while a group is too small.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::api::secret_key_site;
use crate::coupons::redeem::{order_revenue, COUPON_EXPIRED_USED, COUPON_REUSED, ORDER_COMPLETED};
use crate::error::{json_response, ApiError};
use crate::identity::{self, Person};
use crate::state::App;
use crate::store::{json_list, on_db, stored_event, Db, Dialect, StoreError, StoredEvent, EVENT_COLUMNS};
use crate::uplift;

/// The events a report reads by campaign; the same list as the partial index
/// `events_for_campaign_reports` (migration 0004), so the query can use it.
const REPORT_EVENTS: &str = "event IN ('Popup Shown', 'Popup Dismissed', 'Popup Converted', 'Popup Held Out', \
                             'Coupon Reused', 'Coupon Expired Used')";

/// One group's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Revenue of each shopper (0 for those who did not buy).
    pub revenues: Vec<f64>,
    /// Shoppers who converted.
    pub converted: u64,
}

impl Group {
    fn json(&self) -> Value {
        let n = self.revenues.len() as u64;
        let revenue: f64 = self.revenues.iter().sum();
        json!({
            "shoppers": n,
            "converted": self.converted,
            "conversionRate": if n == 0 { Value::Null } else { json!(self.converted as f64 / n as f64) },
            "revenue": revenue,
            "revenuePerShopper": if n == 0 { Value::Null } else { json!(revenue / n as f64) },
        })
    }
}

/// Treatment and holdout from a campaign's assignment events and the orders of the people
/// assigned: `assignments` are (person, time, treated), `orders` (person, time, revenue).
pub fn groups(assignments: &[(Person, i64, bool)], orders: &[(Person, i64, f64)]) -> (Group, Group) {
    let mut first: BTreeMap<&Person, (i64, bool)> = BTreeMap::new();
    for (person, at, treated) in assignments {
        let entry = first.entry(person).or_insert((*at, *treated));
        // The earliest assignment wins; at the same time, being shown wins.
        if (*at, !*treated) < (entry.0, !entry.1) {
            *entry = (*at, *treated);
        }
    }
    let (mut treatment, mut holdout) = (Group::default(), Group::default());
    for (person, (since, treated)) in first {
        let mut bought = false;
        let mut revenue = 0.0;
        for (_, _, r) in orders.iter().filter(|(p, at, _)| p == person && *at >= since) {
            bought = true;
            revenue += r;
        }
        let group = if treated { &mut treatment } else { &mut holdout };
        group.revenues.push(revenue);
        group.converted += u64::from(bought);
    }
    (treatment, holdout)
}

/// `GET /v1/campaigns/{id}/report`.
pub async fn get(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
        report(&mut conn.db(), &site.id, &id).await.map_err(|e| ApiError::storage(&e))?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "campaign_not_found",
                format!("no campaign {id:?} and nothing recorded for it"),
            )
        })
    }
    .await;
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// The report of a campaign; `None` when the site neither has the campaign nor recorded
/// anything for it.
pub async fn report(db: &mut Db<'_>, site_id: &str, campaign_id: &str) -> Result<Option<Value>, StoreError> {
    let events = campaign_events(db, site_id, campaign_id).await?;
    let (issued, redeemed, coupon_revenue) = coupon_totals(db, site_id, campaign_id).await?;
    if events.is_empty() && issued == 0 && super::find(db, site_id, campaign_id).await?.is_none() {
        return Ok(None);
    }
    let count = |name: &str| events.iter().filter(|e| e.event.event.as_deref() == Some(name)).count();

    // Whom each event belongs to, with browsers linked to a user counted as that user.
    let users: BTreeSet<&str> = events.iter().filter_map(|e| e.event.user_id.as_deref()).collect();
    let anons: BTreeSet<&str> = events.iter().filter_map(|e| e.event.anonymous_id.as_deref()).collect();
    let (users, anons): (Vec<&str>, Vec<&str>) = (users.into_iter().collect(), anons.into_iter().collect());
    let mut links = identity::links(db, site_id, &anons, &users).await?;
    let assignments: Vec<(Person, i64, bool)> = events
        .iter()
        .filter_map(|e| match e.event.event.as_deref() {
            Some("Popup Shown") => Some((person_of(e, &links)?, e.event.timestamp_ms, true)),
            Some("Popup Held Out") => Some((person_of(e, &links)?, e.event.timestamp_ms, false)),
            _ => None,
        })
        .collect();

    // The orders of those people: their users' and every browser linked to them.
    let assigned: BTreeSet<&Person> = assignments.iter().map(|(p, _, _)| p).collect();
    let order_users: Vec<&str> = assigned.iter().filter_map(|p| p.user_id()).collect();
    links.extend(identity::links(db, site_id, &[], &order_users).await?);
    let mut order_anons: Vec<&str> = assigned.iter().filter_map(|p| p.anonymous_id()).collect();
    order_anons.extend(links.iter().filter(|(_, u)| order_users.contains(&u.as_str())).map(|(a, _)| a.as_str()));
    let orders: Vec<(Person, i64, f64)> = orders_of(db, site_id, &order_users, &order_anons)
        .await?
        .iter()
        .filter_map(|e| {
            let body: Value = serde_json::from_str(&e.event.body).ok()?;
            let revenue = body.get("properties").and_then(order_revenue).unwrap_or(0.0);
            Some((person_of(e, &links)?, e.event.timestamp_ms, revenue))
        })
        .collect();

    let (treatment, holdout) = groups(&assignments, &orders);
    let conversion = uplift::proportion_difference(
        treatment.converted,
        treatment.revenues.len() as u64,
        holdout.converted,
        holdout.revenues.len() as u64,
    );
    let revenue = uplift::mean_difference(&treatment.revenues, &holdout.revenues);
    Ok(Some(json!({
        "campaignId": campaign_id,
        "shown": count("Popup Shown"),
        "dismissed": count("Popup Dismissed"),
        "converted": count("Popup Converted"),
        "heldOut": count("Popup Held Out"),
        "coupons": {
            "issued": issued,
            "redeemed": redeemed,
            "reused": count(COUPON_REUSED),
            "expiredUsed": count(COUPON_EXPIRED_USED),
        },
        "revenue": coupon_revenue,
        "treatment": treatment.json(),
        "holdout": holdout.json(),
        "uplift": {
            "conversionRate": conversion,
            "revenuePerShopper": revenue,
            "confidence": 0.95,
            "method": "conversion rate: difference of two proportions, normal approximation; \
                       revenue per shopper: Welch's t interval",
        },
    })))
}

/// Whom a message belongs to, given the links of its browser.
fn person_of(e: &StoredEvent, links: &std::collections::HashMap<String, String>) -> Option<Person> {
    Person::of(e.event.user_id.as_deref(), e.event.anonymous_id.as_deref(), links)
}

/// The campaign's popup and coupon-misuse events.
async fn campaign_events(db: &mut Db<'_>, site_id: &str, campaign_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let campaign_of = |d: Dialect| match d {
        Dialect::Sqlite => {
            "(CASE WHEN instr(body, '\\u0000') = 0 THEN json_extract(body, '$.properties.campaign_id') END)"
        }
        // jsonb cannot hold `\u0000`: such a message (any client can send one) is left out,
        // on both backends alike, rather than failing the whole report.
        Dialect::Postgres => {
            "(CASE WHEN strpos(body, '\\u0000') = 0 THEN body::jsonb -> 'properties' ->> 'campaign_id' END)"
        }
    };
    Ok(on_db!(db, |c, d| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND {REPORT_EVENTS} AND {} = $2",
            campaign_of(d)
        );
        let rows = sqlx::query(&sql).bind(site_id).bind(campaign_id).fetch_all(&mut *c).await?;
        rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?
    }))
}

/// Coupons issued and redeemed, and the revenue of the redeeming orders.
async fn coupon_totals(db: &mut Db<'_>, site_id: &str, campaign_id: &str) -> Result<(i64, i64, f64), StoreError> {
    Ok(on_db!(db, |c, _d| {
        sqlx::query_as(
            "SELECT COUNT(*), COUNT(redeemed_ms), CAST(COALESCE(SUM(revenue), 0) AS DOUBLE PRECISION) \
             FROM coupons WHERE site_id = $1 AND campaign_id = $2",
        )
        .bind(site_id)
        .bind(campaign_id)
        .fetch_one(&mut *c)
        .await?
    }))
}

/// The `Order Completed` events of these users and anonymous ids.
async fn orders_of(
    db: &mut Db<'_>,
    site_id: &str,
    users: &[&str],
    anons: &[&str],
) -> Result<Vec<StoredEvent>, StoreError> {
    if users.is_empty() && anons.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_db!(db, |c, d| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND event = '{ORDER_COMPLETED}' AND {} \
             UNION SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND event = '{ORDER_COMPLETED}' AND {}",
            d.is_in("user_id", "$2"),
            d.is_in("anonymous_id", "$3")
        );
        let rows =
            sqlx::query(&sql).bind(site_id).bind(json_list(users)).bind(json_list(anons)).fetch_all(&mut *c).await?;
        rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str) -> Person {
        Person::Anonymous(id.into())
    }

    #[test]
    fn shoppers_join_the_group_of_their_first_assignment_and_convert_after_it() {
        let assignments = vec![
            (a("t1"), 100, true),
            (a("t1"), 300, true),
            (a("t2"), 100, true),
            (a("h1"), 100, false),
            (a("h2"), 200, false),
            (a("x"), 50, false),
            (a("x"), 60, true),
        ];
        let orders = vec![
            (a("t1"), 150, 40.0),
            (a("t1"), 400, 60.0),
            (a("t2"), 90, 500.0), // before the popup: not a conversion
            (a("h2"), 200, 30.0),
            (a("nobody"), 300, 1000.0),
        ];
        let (t, h) = groups(&assignments, &orders);
        assert_eq!((t.revenues.clone(), t.converted), (vec![100.0, 0.0], 1));
        assert_eq!((h.revenues.clone(), h.converted), (vec![0.0, 30.0, 0.0], 1));
        let tj = t.json();
        assert_eq!((tj["shoppers"].as_u64(), tj["conversionRate"].as_f64()), (Some(2), Some(0.5)));
        assert_eq!(tj["revenuePerShopper"].as_f64(), Some(50.0));
        assert_eq!(Group::default().json()["conversionRate"], Value::Null);
    }
}
