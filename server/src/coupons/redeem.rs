//! Redemption: an `Order Completed` whose `properties.coupon` names an issued code redeems
//! it (the coupon row records the order's id, revenue and message). A code used again
//! after that, or used after it expired, is reported with a `Coupon Reused` or
//! `Coupon Expired Used` track event for the same person, counted in the campaign report.
//!
//! This runs in the transaction that stores and folds new messages
//! (`profiles::fold_events`), on newly stored messages only: a repeated `messageId` is not
//! stored again, so each order is judged exactly once. The report events are derived from
//! the order's `messageId`, stored with it, and folded like any message.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{normalize_code, server_event};
use crate::hmac::hex;
use crate::store::{insert_returning, on_db, Db, NewEvent, StoreError, StoredEvent, WriteTx};

/// The Segment event that redeems a coupon.
pub const ORDER_COMPLETED: &str = "Order Completed";
/// Reported when a redeemed code is used again.
pub const COUPON_REUSED: &str = "Coupon Reused";
/// Reported when a code is used after it expired.
pub const COUPON_EXPIRED_USED: &str = "Coupon Expired Used";

/// An order's revenue: `properties.revenue`, else `properties.total` (Segment's e-commerce
/// spec), as a number or numeric string.
pub fn order_revenue(properties: &Value) -> Option<f64> {
    ["revenue", "total"]
        .iter()
        .find_map(|k| match properties.get(*k) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        })
        .filter(|r| r.is_finite())
}

/// The coupon of an `Order Completed`, if it has one.
fn coupon_of(e: &StoredEvent) -> Option<(String, Value)> {
    if e.event.kind != "track" || e.event.event.as_deref() != Some(ORDER_COMPLETED) {
        return None;
    }
    let body: Value = serde_json::from_str(&e.event.body).ok()?;
    let properties = body.get("properties")?.clone();
    let code = normalize_code(properties.get("coupon")?.as_str()?);
    (!code.is_empty()).then_some((code, properties))
}

/// Judges the orders among newly stored `events` in `tx`; returns the report events it
/// stored (already in the log, to be folded with the rest).
pub async fn apply(
    tx: &mut WriteTx<'_>,
    site_id: &str,
    events: &[StoredEvent],
    now_ms: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut orders: Vec<(&StoredEvent, String, Value)> =
        events.iter().filter_map(|e| coupon_of(e).map(|(code, p)| (e, code, p))).collect();
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    orders.sort_by(|a, b| {
        (a.0.event.timestamp_ms, &a.0.event.message_id).cmp(&(b.0.event.timestamp_ms, &b.0.event.message_id))
    });
    let mut reports: Vec<NewEvent> = Vec::new();
    for (order, code, properties) in orders {
        if let Some(report) = judge(&mut tx.db(), site_id, order, &code, &properties, now_ms).await? {
            reports.push(report);
        }
    }
    let refs: Vec<&NewEvent> = reports.iter().collect();
    let mut seqs = insert_returning(&mut tx.db(), site_id, &refs).await?;
    let mut stored: Vec<StoredEvent> = reports
        .into_iter()
        .filter_map(|e| seqs.remove(&e.message_id).map(|seq| StoredEvent { seq, event: e }))
        .collect();
    stored.sort_by_key(|e| e.seq);
    Ok(stored)
}

/// Redeems the code for this order, or returns the event reporting its misuse.
async fn judge(
    db: &mut Db<'_>,
    site_id: &str,
    order: &StoredEvent,
    code: &str,
    properties: &Value,
    now_ms: i64,
) -> Result<Option<NewEvent>, StoreError> {
    type Row = (String, i64, Option<i64>, Option<String>);
    let row: Option<Row> = on_db!(&mut *db, |c, _d| {
        sqlx::query_as(
            "SELECT campaign_id, expires_ms, redeemed_ms, order_id FROM coupons WHERE site_id = $1 AND code = $2",
        )
        .bind(site_id)
        .bind(code)
        .fetch_optional(&mut *c)
        .await?
    });
    // Not a code the server issued (a fixed campaign code, or the shop's own).
    let Some((campaign_id, expires_ms, redeemed_ms, first_order)) = row else { return Ok(None) };
    let order_id = match properties.get("order_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let revenue = order_revenue(properties);
    let at = order.event.timestamp_ms;
    let (name, extra) = if redeemed_ms.is_some() {
        (COUPON_REUSED, json!({ "first_order_id": first_order }))
    } else if at > expires_ms {
        (COUPON_EXPIRED_USED, json!({ "expires_at": nudge::time::to_iso(expires_ms.max(0) as u64) }))
    } else {
        on_db!(&mut *db, |c, _d| {
            sqlx::query(
                "UPDATE coupons SET redeemed_ms = $3, redeemed_message_id = $4, order_id = $5, revenue = $6 \
                 WHERE site_id = $1 AND code = $2 AND redeemed_ms IS NULL",
            )
            .bind(site_id)
            .bind(code)
            .bind(at)
            .bind(&order.event.message_id)
            .bind(&order_id)
            .bind(revenue)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        return Ok(None);
    };
    let mut props = json!({ "campaign_id": campaign_id, "coupon": code, "order_id": order_id, "revenue": revenue });
    if let (Value::Object(p), Value::Object(extra)) = (&mut props, extra) {
        p.extend(extra);
    }
    let tag = if name == COUPON_REUSED { "reused" } else { "expired" };
    let digest = Sha256::digest(order.event.message_id.as_bytes());
    Ok(Some(server_event(
        name,
        format!("coupon-{tag}-{}", hex(&digest[..16])),
        order.event.user_id.as_deref(),
        order.event.anonymous_id.as_deref(),
        at,
        props,
        now_ms,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revenue_is_read_like_segment_s_spec() {
        assert_eq!(order_revenue(&json!({"revenue": 120.5, "total": 130})), Some(120.5));
        assert_eq!(order_revenue(&json!({"total": "99.90"})), Some(99.9));
        assert_eq!(order_revenue(&json!({"subtotal": 5})), None);
    }
}
