//! Coupons: unique single-use codes for campaigns whose offer is `{"unique": true}`.
//!
//! `POST /v1/coupons` (write key, CORS like ingest, the same rate limits) with
//! `{"campaign_id", "email", "anonymousId", "userId"?}` issues a code such as
//! `NUDGE-7KQ2-MX9C` that expires after the offer's `expiresDays` (default
//! [`DEFAULT_EXPIRES_DAYS`]). The same (site, campaign, email lowercased) always gets the
//! same code back. The coupon row and the server's own `Coupon Issued` track event for the
//! person who asked (`messageId` `coupon-<code>`) are written in one transaction, the event
//! through the normal store-and-fold path, so profiles, the change feed and webhooks see it.
//! Redemption by `Order Completed` is in [`redeem`].

pub mod redeem;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nudge::time::to_iso;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::write_key_site;
use crate::error::{json_response, ApiError};
use crate::message::MAX_ID;
use crate::site_config::KeyQuery;
use crate::state::App;
use crate::store::{insert_returning, json_list, on_db, Db, NewEvent, StoreError, StoredEvent, WriteTx};
use crate::{body, campaigns, cors, erase, profiles};

/// The event stored when a code is issued.
pub const COUPON_ISSUED: &str = "Coupon Issued";
/// Days a code is valid when the offer does not say.
pub const DEFAULT_EXPIRES_DAYS: i64 = 7;
/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// Largest request body.
const MAX_BODY: usize = 4 * 1024;
/// Symbols of a code: no 0/O or 1/I to misread. 32 of them, so each is 5 random bits.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A coupon row.
#[derive(Debug, Clone, PartialEq)]
pub struct Coupon {
    /// The code.
    pub code: String,
    /// The campaign it was issued for.
    pub campaign_id: String,
    /// The email, lowercased.
    pub email: String,
    /// Percent off, for a percent offer.
    pub percent: Option<f64>,
    /// Amount off, for an amount offer.
    pub amount: Option<f64>,
    /// The amount's currency.
    pub currency: Option<String>,
    /// When it stops being valid, ms since the epoch.
    pub expires_ms: i64,
}

impl Coupon {
    /// The answer to `POST /v1/coupons` (and the `Coupon Issued` properties, less
    /// `campaign_id` and `email`).
    pub fn answer(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("coupon".into(), json!(self.code));
        if let Some(p) = self.percent {
            m.insert("percent".into(), json!(p));
        }
        if let Some(a) = self.amount {
            m.insert("amount".into(), json!(a));
        }
        if let Some(c) = &self.currency {
            m.insert("currency".into(), json!(c));
        }
        m.insert("expires_at".into(), json!(to_iso(self.expires_ms.max(0) as u64)));
        m
    }
}

/// A fresh code: `NUDGE-` and two groups of four symbols (40 random bits) from the
/// operating system's randomness.
pub fn new_code() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)?;
    let symbols: String = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
    Ok(format!("NUDGE-{}-{}", &symbols[..4], &symbols[4..]))
}

/// A code as shoppers may type it (any case, spaces around), as stored.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// Checks an email address (a sane subset of RFC 5321: `local@domain`, ASCII, a dotted
/// domain of letters, digits and hyphens) and returns it lowercased.
pub fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    if email.is_empty() || email.len() > MAX_EMAIL {
        return Err(format!("email must be 1 to {MAX_EMAIL} characters"));
    }
    let bad = || format!("{email:?} is not an email address");
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|b| b.is_ascii_digit()));
    if local_ok && domain_ok {
        Ok(email.to_ascii_lowercase())
    } else {
        Err(bad())
    }
}

/// The body of `POST /v1/coupons`.
#[derive(Debug, Deserialize)]
struct IssueRequest {
    campaign_id: Option<String>,
    email: Option<String>,
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<String>,
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

/// `POST /v1/coupons`: issues (or finds again) the code of a campaign for an email.
pub async fn issue(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<KeyQuery>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let origin = cors::request_origin(&headers).map(str::to_owned);
    let result = async {
        let address = crate::ingest::client_address(&app, peer, &headers);
        app.addr_limiter.check(&address, Instant::now()).map_err(|s| ApiError::rate_limited("address", s))?;
        let bytes = body::read(&headers, request, MAX_BODY).await?;
        let req: IssueRequest = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?;
        let key = q.write_key.as_deref().or(req.write_key.as_deref());
        let site = write_key_site(&app, &headers, key).await?;
        let invalid = |m: String| ApiError::bad_request("invalid_coupon_request", m);
        let campaign_id = req.campaign_id.as_deref().unwrap_or_default();
        if !campaigns::validate::is_id(campaign_id) {
            return Err(invalid("campaign_id must be a campaign's id".into()));
        }
        let email =
            check_email(req.email.as_deref().unwrap_or_default()).map_err(|m| invalid(format!("email: {m}")))?;
        let id = |v: Option<String>| v.filter(|s| !s.is_empty());
        let (anonymous_id, user_id) = (id(req.anonymous_id), id(req.user_id));
        if anonymous_id.is_none() && user_id.is_none() {
            return Err(invalid("anonymousId (or userId) is required".into()));
        }
        if [&anonymous_id, &user_id].iter().any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_ID)) {
            return Err(invalid(format!("anonymousId and userId may be at most {MAX_ID} bytes")));
        }
        let person = Asker { anonymous_id, user_id };
        let mut tx = app.store.write(&site.id).await.map_err(|e| ApiError::storage(&e))?;
        let coupon = issue_in(&mut tx, &site.id, campaign_id, &email, &person, crate::state::now_ms()).await?;
        tx.commit().await.map_err(|e| ApiError::storage(&e))?;
        Ok(coupon)
    }
    .await;
    let mut response = match result {
        Ok(coupon) => json_response(StatusCode::OK, &Value::Object(coupon.answer())),
        Err(e) if e.code == "origin_not_allowed" => return e.into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(origin) = origin {
        cors::allow(&mut response, &origin);
    }
    response
}

/// Who asked for a code.
#[derive(Debug, Clone)]
struct Asker {
    anonymous_id: Option<String>,
    user_id: Option<String>,
}

/// Finds the code of (campaign, email), or issues one with its `Coupon Issued` event, in
/// `tx` (which holds the site's write lock, so two requests cannot both issue).
async fn issue_in(
    tx: &mut WriteTx<'_>,
    site_id: &str,
    campaign_id: &str,
    email: &str,
    person: &Asker,
    now_ms: i64,
) -> Result<Coupon, ApiError> {
    let storage = |e: StoreError| ApiError::storage(&e);
    if let Some(existing) = find_for(&mut tx.db(), site_id, campaign_id, email).await.map_err(storage)? {
        return Ok(existing);
    }
    let not_found = || {
        ApiError::new(StatusCode::NOT_FOUND, "campaign_not_found", format!("this site has no campaign {campaign_id:?}"))
    };
    let campaign = campaigns::find(&mut tx.db(), site_id, campaign_id).await.map_err(storage)?.ok_or_else(not_found)?;
    let offer = campaign.get("offer").cloned().unwrap_or(Value::Null);
    if offer.get("unique") != Some(&Value::Bool(true)) {
        return Err(ApiError::bad_request(
            "offer_not_unique",
            format!("campaign {campaign_id:?} has no unique offer (its code, if any, is in the campaign itself)"),
        ));
    }
    let users: Vec<&str> = person.user_id.as_deref().into_iter().collect();
    let anons: Vec<&str> = person.anonymous_id.as_deref().into_iter().collect();
    let erased = erase::erased_among(&mut tx.db(), site_id, &users, &anons).await.map_err(storage)?;
    if erased.covers(person.user_id.as_deref(), person.anonymous_id.as_deref()) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "person_erased", "this person's data was erased"));
    }
    let days = offer.get("expiresDays").and_then(Value::as_f64).map_or(DEFAULT_EXPIRES_DAYS, |d| d as i64);
    let mut code = String::new();
    for _ in 0..8 {
        let candidate = new_code().map_err(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no randomness from the operating system")
        })?;
        if !code_exists(&mut tx.db(), site_id, &candidate).await.map_err(storage)? {
            code = candidate;
            break;
        }
    }
    if code.is_empty() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", "could not draw an unused code"));
    }
    let coupon = Coupon {
        code,
        campaign_id: campaign_id.to_string(),
        email: email.to_string(),
        percent: offer.get("percent").and_then(Value::as_f64),
        amount: offer.get("amount").and_then(Value::as_f64),
        currency: offer.get("currency").and_then(Value::as_str).map(str::to_string),
        expires_ms: now_ms + days * 86_400_000,
    };
    insert(&mut tx.db(), site_id, &coupon, person, now_ms).await.map_err(storage)?;
    let mut properties = coupon.answer();
    properties.insert("campaign_id".into(), json!(campaign_id));
    properties.insert("email".into(), json!(email));
    let event = server_event(
        COUPON_ISSUED,
        format!("coupon-{}", coupon.code),
        person.user_id.as_deref(),
        person.anonymous_id.as_deref(),
        now_ms,
        Value::Object(properties),
        now_ms,
    );
    store_and_fold(tx, site_id, vec![event], now_ms).await.map_err(storage)?;
    Ok(coupon)
}

/// Stores messages the server made and folds the new ones into profiles, in `tx`: what
/// ingest does for a request, for messages that are not a client's.
pub async fn store_and_fold(
    tx: &mut WriteTx<'_>,
    site_id: &str,
    events: Vec<NewEvent>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let refs: Vec<&NewEvent> = events.iter().collect();
    let mut seqs = insert_returning(&mut tx.db(), site_id, &refs).await?;
    let mut new: Vec<StoredEvent> = events
        .into_iter()
        .filter_map(|e| seqs.remove(&e.message_id).map(|seq| StoredEvent { seq, event: e }))
        .collect();
    new.sort_by_key(|e| e.seq);
    profiles::fold_events(tx, site_id, new, now_ms).await?;
    Ok(())
}

/// A track message made by the server (`context.library.name` = `nudge-server`).
pub fn server_event(
    name: &str,
    message_id: String,
    user_id: Option<&str>,
    anonymous_id: Option<&str>,
    timestamp_ms: i64,
    properties: Value,
    now_ms: i64,
) -> NewEvent {
    let body = json!({
        "type": "track",
        "event": name,
        "messageId": message_id,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "timestamp": to_iso(timestamp_ms.max(0) as u64),
        "properties": properties,
        "context": { "library": { "name": "nudge-server", "version": env!("CARGO_PKG_VERSION") } },
    });
    NewEvent {
        message_id,
        kind: "track",
        event: Some(name.to_string()),
        user_id: user_id.map(str::to_string),
        anonymous_id: anonymous_id.map(str::to_string),
        timestamp_ms,
        received_ms: now_ms,
        body: body.to_string(),
    }
}

/// Deletes the coupons (with their emails) issued to a user or to these browsers: part of
/// erasing a person. Their codes are then unknown, so using one redeems nothing.
pub async fn erase(db: &mut Db<'_>, site_id: &str, user_id: Option<&str>, anons: &[String]) -> Result<(), StoreError> {
    on_db!(db, |c, d| {
        let sql =
            format!("DELETE FROM coupons WHERE site_id = $1 AND (user_id = $2 OR {})", d.is_in("anonymous_id", "$3"));
        sqlx::query(&sql).bind(site_id).bind(user_id).bind(json_list(anons)).execute(&mut *c).await?.rows_affected()
    });
    Ok(())
}

const COUPON_COLUMNS: &str = "code, campaign_id, email, percent, amount, currency, expires_ms";

type CouponRow = (String, String, String, Option<f64>, Option<f64>, Option<String>, i64);

fn coupon_of(r: CouponRow) -> Coupon {
    Coupon { code: r.0, campaign_id: r.1, email: r.2, percent: r.3, amount: r.4, currency: r.5, expires_ms: r.6 }
}

async fn find_for(
    db: &mut Db<'_>,
    site_id: &str,
    campaign_id: &str,
    email: &str,
) -> Result<Option<Coupon>, StoreError> {
    let row: Option<CouponRow> = on_db!(db, |c, _d| {
        let sql =
            format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE site_id = $1 AND campaign_id = $2 AND email = $3");
        sqlx::query_as(&sql).bind(site_id).bind(campaign_id).bind(email).fetch_optional(&mut *c).await?
    });
    Ok(row.map(coupon_of))
}

async fn code_exists(db: &mut Db<'_>, site_id: &str, code: &str) -> Result<bool, StoreError> {
    let found: Option<i64> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM coupons WHERE site_id = $1 AND code = $2")
            .bind(site_id)
            .bind(code)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(found.is_some())
}

async fn insert(db: &mut Db<'_>, site_id: &str, c: &Coupon, person: &Asker, now_ms: i64) -> Result<(), StoreError> {
    on_db!(db, |conn, _d| {
        sqlx::query(
            "INSERT INTO coupons (site_id, code, campaign_id, email, user_id, anonymous_id, percent, amount, \
             currency, issued_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(site_id)
        .bind(&c.code)
        .bind(&c.campaign_id)
        .bind(&c.email)
        .bind(&person.user_id)
        .bind(&person.anonymous_id)
        .bind(c.percent)
        .bind(c.amount)
        .bind(&c.currency)
        .bind(now_ms)
        .bind(c.expires_ms)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_promised_form_and_differ() {
        let a = new_code().unwrap();
        assert_eq!(a.len(), "NUDGE-XXXX-XXXX".len());
        assert!(a.starts_with("NUDGE-") && a.as_bytes()[10] == b'-');
        assert!(a[6..].bytes().all(|b| b == b'-' || ALPHABET.contains(&b)), "{a}");
        let many: std::collections::HashSet<String> = (0..1000).map(|_| new_code().unwrap()).collect();
        assert_eq!(many.len(), 1000);
        assert_eq!(normalize_code(" nudge-ab2c-d3ef "), "NUDGE-AB2C-D3EF");
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(check_email(" Ann.Lee+tv@Shop.Example ").unwrap(), "ann.lee+tv@shop.example");
        for bad in [
            "",
            "ann",
            "ann@",
            "@shop.example",
            "ann@shop",
            "ann@@shop.example",
            "a..b@shop.example",
            "ann@-shop.example",
            "ann@shop.123",
            "ann lee@shop.example",
            "<script>@x.example",
            "ann@shop..example",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?} passed");
        }
        assert!(check_email(&format!("{}@shop.example", "a".repeat(65))).is_err());
        assert!(check_email(&format!("a@{}.example", "b".repeat(250))).is_err());
    }
}
