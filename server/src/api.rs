//! The read API: profiles for other channels (secret key), and a browser's own merged
//! profile (write key plus a `userHash` the site vouches with).
//!
//! - `GET /v1/profiles/{userId}`, `GET /v1/profiles/anonymous/{anonymousId}`: one profile.
//! - `GET /v1/profiles?stage=&category=&minCart=&maxCart=&seenAfter=&seenBefore=&limit=&cursor=`:
//!   a segment, in a stable order (by person), with an opaque cursor.
//! - `GET /v1/profile?userId=&userHash=` (write key): the merged profile of a user, only
//!   when `userHash == hex(HMAC-SHA256(secret key, userId))`; 403 otherwise.
//!
//! Secret-key routes take the key as HTTP Basic user or `Authorization: Bearer sk_...`,
//! and never accept a write key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, constant_time_eq};
use crate::error::{json_response, ApiError};
use crate::identity::{self, Person};
use crate::profiles::{self, profile_row, ProfileRow, PROFILE_COLUMNS};
use crate::state::App;
use crate::store::{on_db, Site, StoreError};
use crate::{cors, hmac, site_config};

/// Profiles per segment page unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 50;
/// Most profiles per segment page.
pub const MAX_PAGE: usize = 500;
/// Most profiles examined for one segment page; past it the page ends early (with a cursor).
const MAX_SCAN: usize = 5_000;

fn storage(e: StoreError) -> ApiError {
    ApiError::storage(&e)
}

/// The site for a secret key sent as HTTP Basic user or `Bearer` token.
pub async fn secret_key_site(app: &App, headers: &HeaderMap) -> Result<Arc<Site>, ApiError> {
    let missing =
        || ApiError::unauthorized("missing_secret_key", "send the secret key as HTTP Basic user or Bearer token");
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?.trim();
    let key = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_string(),
        _ => auth::basic_user(headers)?.ok_or_else(missing)?,
    };
    let wrong = || ApiError::unauthorized("invalid_secret_key", "this route needs the site's secret key (sk_...)");
    if !key.starts_with("sk_") {
        return Err(wrong());
    }
    app.key_limiter.check(&key, Instant::now()).map_err(|s| ApiError::rate_limited("key", s))?;
    let site = app.sites.by_secret_key(&app.store, &key).await.map_err(storage)?.ok_or_else(wrong)?;
    if !constant_time_eq(site.secret_key.as_bytes(), key.as_bytes()) {
        return Err(wrong());
    }
    Ok(site)
}

/// The site for a write key sent as HTTP Basic user or as `?writeKey=`, after its rate
/// limit and the browser origin check (403 `origin_not_allowed`, to be sent without CORS
/// headers).
pub async fn write_key_site(app: &App, headers: &HeaderMap, query_key: Option<&str>) -> Result<Arc<Site>, ApiError> {
    let key = match (auth::basic_user(headers)?, query_key.filter(|k| !k.is_empty())) {
        (Some(key), _) => key,
        (None, Some(key)) => key.to_string(),
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing_write_key",
                "send the write key as the HTTP Basic user name, or as ?writeKey=",
            ))
        }
    };
    app.key_limiter.check(&key, Instant::now()).map_err(|s| ApiError::rate_limited("write key", s))?;
    let site = app
        .sites
        .by_write_key(&app.store, &key)
        .await
        .map_err(storage)?
        .ok_or_else(|| ApiError::unauthorized("invalid_write_key", "no site has this write key"))?;
    if let Some(origin) = cors::request_origin(headers) {
        if !cors::site_allows(&site, origin) {
            return Err(cors::forbidden(origin));
        }
    }
    Ok(site)
}

/// One person's profile as the API serves it, or 404.
async fn profile_of(app: &App, site: &Site, person: Person) -> Result<Value, ApiError> {
    profile_and_row(app, site, person).await.map(|(v, _)| v)
}

/// [`profile_of`], with the row it was rendered from.
async fn profile_and_row(app: &App, site: &Site, person: Person) -> Result<(Value, ProfileRow), ApiError> {
    let mut conn = app.store.connection().await.map_err(storage)?;
    let mut db = conn.db();
    let person = match person {
        Person::Anonymous(a) => identity::person_of_anonymous(&mut db, &site.id, &a).await.map_err(storage)?,
        user => user,
    };
    let Some(row) = profiles::load(&mut db, &site.id, &person).await.map_err(storage)? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "profile_not_found", "no profile for this person"));
    };
    let anons = profiles::anonymous_ids_of(&mut db, &site.id, &person).await.map_err(storage)?;
    let config = site_config::load(&mut db, &site.id).await.map_err(storage)?;
    Ok((profiles::render(&row, &anons, &config.thresholds, crate::state::now_ms()), row))
}

/// `GET /v1/profiles/{userId}`.
pub async fn get_user(State(app): State<Arc<App>>, Path(user_id): Path<String>, headers: HeaderMap) -> Response {
    reply(async {
        let site = secret_key_site(&app, &headers).await?;
        profile_of(&app, &site, Person::User(user_id)).await
    })
    .await
}

/// `GET /v1/profiles/anonymous/{anonymousId}`: the profile the browser belongs to (its
/// user's, once identified).
pub async fn get_anonymous(
    State(app): State<Arc<App>>,
    Path(anonymous_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    reply(async {
        let site = secret_key_site(&app, &headers).await?;
        profile_of(&app, &site, Person::Anonymous(anonymous_id)).await
    })
    .await
}

async fn reply(f: impl std::future::Future<Output = Result<Value, ApiError>>) -> Response {
    match f.await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// The query of a segment listing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentQuery {
    /// `awareness`, `consideration`, `decision`, `purchase` or `loyalty`: of `category` when
    /// given, else the overall stage.
    pub stage: Option<String>,
    /// Only people with evidence in this category.
    pub category: Option<String>,
    /// Cart value at least this.
    pub min_cart: Option<f64>,
    /// Cart value at most this.
    pub max_cart: Option<f64>,
    /// Last seen at or after (ISO 8601 or ms since the epoch).
    pub seen_after: Option<String>,
    /// Last seen at or before (ISO 8601 or ms since the epoch).
    pub seen_before: Option<String>,
    /// Page size (1 to 500, default 50).
    pub limit: Option<usize>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    v.parse::<i64>()
        .ok()
        .or_else(|| crate::message::parse_time(v))
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("invalid_query", format!("{name} must be ISO 8601 or ms since the epoch")))
}

/// An opaque cursor for a position (a person key).
fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not one this API gave"))
}

/// `GET /v1/profiles?...`: `{"profiles": [...], "nextCursor": "..." | null}`. Pages follow
/// one stable order, so walking every page lists each matching person once.
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<SegmentQuery>, headers: HeaderMap) -> Response {
    reply(async {
        let site = secret_key_site(&app, &headers).await?;
        segment(&app, &site, &q).await
    })
    .await
}

async fn segment(app: &App, site: &Site, q: &SegmentQuery) -> Result<Value, ApiError> {
    const STAGES: [&str; 5] = ["awareness", "consideration", "decision", "purchase", "loyalty"];
    if let Some(s) = q.stage.as_deref().filter(|s| !STAGES.contains(s)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("stage must be one of {}, not {s:?}", STAGES.join(", ")),
        ));
    }
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let seen_after = time_param("seenAfter", q.seen_after.as_deref())?.unwrap_or(i64::MIN);
    let seen_before = time_param("seenBefore", q.seen_before.as_deref())?.unwrap_or(i64::MAX);
    let (min_cart, max_cart) = (q.min_cart.unwrap_or(f64::MIN), q.max_cart.unwrap_or(f64::MAX));
    let mut after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c)?,
        None => String::new(),
    };
    let now = crate::state::now_ms();
    let mut conn = app.store.connection().await.map_err(storage)?;
    let mut db = conn.db();
    let config = site_config::load(&mut db, &site.id).await.map_err(storage)?;
    let th = &config.thresholds;
    let chunk = (limit * 2).max(100);
    let mut found: Vec<ProfileRow> = Vec::new();
    let mut scanned = 0;
    let mut exhausted = false;
    'scan: while found.len() < limit && scanned < MAX_SCAN {
        let rows: Vec<ProfileRow> = on_db!(&mut db, |c, _d| {
            let sql = format!(
                "SELECT {PROFILE_COLUMNS} FROM profiles WHERE site_id = $1 AND person_id > $2 \
                 AND cart_value >= $3 AND cart_value <= $4 AND last_at >= $5 AND last_at <= $6 \
                 ORDER BY person_id LIMIT $7"
            );
            let rows = sqlx::query(&sql)
                .bind(&site.id)
                .bind(&after)
                .bind(min_cart)
                .bind(max_cart)
                .bind(seen_after)
                .bind(seen_before)
                .bind(chunk as i64)
                .fetch_all(&mut *c)
                .await
                .map_err(|e| storage(e.into()))?;
            rows.iter()
                .map(profile_row)
                .filter_map(Result::transpose)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| storage(e.into()))?
        });
        let n = rows.len();
        for row in rows {
            scanned += 1;
            after = row.person.key();
            let stage = profiles::stage_of(&row, q.category.as_deref(), th, now);
            let in_category = q.category.is_none() || stage.is_some();
            if in_category && q.stage.as_deref().is_none_or(|s| Some(s) == stage) {
                found.push(row);
                if found.len() == limit {
                    break 'scan;
                }
            }
        }
        if n < chunk {
            exhausted = true;
            break;
        }
    }
    // Each user's browsers, in one query.
    let users: Vec<&str> = found.iter().filter_map(|r| r.person.user_id()).collect();
    let links = identity::links(&mut db, &site.id, &[], &users).await.map_err(storage)?;
    let mut browsers: HashMap<&str, Vec<String>> = HashMap::new();
    for (anon, user) in &links {
        browsers.entry(user.as_str()).or_default().push(anon.clone());
    }
    let profiles: Vec<Value> = found
        .iter()
        .map(|row| {
            let anons = match &row.person {
                Person::User(u) => {
                    let mut a = browsers.get(u.as_str()).cloned().unwrap_or_default();
                    a.sort();
                    a
                }
                Person::Anonymous(a) => vec![a.clone()],
            };
            profiles::render(row, &anons, th, now)
        })
        .collect();
    let next = (!exhausted).then(|| encode_cursor(&after));
    Ok(json!({ "profiles": profiles, "nextCursor": next }))
}

/// The query of a browser's read-back.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadBackQuery {
    /// The site's write key (or send it as HTTP Basic user).
    pub write_key: Option<String>,
    /// The user (or header `X-Nudge-User-Id`).
    pub user_id: Option<String>,
    /// `hex(HMAC-SHA256(secret key, userId))` (or header `X-Nudge-User-Hash`).
    pub user_hash: Option<String>,
}

/// `GET /v1/profile`: the user's merged profile for their own browser, when the site
/// vouched for them with `userHash`: the API's profile JSON plus `state`, the core's stored
/// profile (`nudge::profile::Profile`) with `user_id` set, for the SDK to absorb. CORS like
/// ingest; never cached by shared caches.
pub async fn read_back(State(app): State<Arc<App>>, Query(q): Query<ReadBackQuery>, headers: HeaderMap) -> Response {
    let origin = cors::request_origin(&headers).map(str::to_owned);
    let result = async {
        let site = write_key_site(&app, &headers, q.write_key.as_deref()).await?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let user_id = q.user_id.clone().or_else(|| header("x-nudge-user-id")).filter(|u| !u.is_empty());
        let user_hash = q.user_hash.clone().or_else(|| header("x-nudge-user-hash")).unwrap_or_default();
        let Some(user_id) = user_id else {
            return Err(ApiError::bad_request("missing_user_id", "send userId (and userHash)"));
        };
        if !hmac::user_hash_valid(&site.secret_key, &user_id, &user_hash) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_user_hash",
                "userHash must be hex(HMAC-SHA256(secret key, userId)), computed by the site's backend",
            ));
        }
        let (mut view, row) = profile_and_row(&app, &site, Person::User(user_id.clone())).await?;
        // The core's own form too, which the SDK absorbs into the browser's profile
        // (`Engine::absorb_remote`): the union of evidence, not only the stages read from it.
        if let (Value::Object(m), Some(state)) = (&mut view, profiles::state_for(&row, &user_id)) {
            m.insert("state".into(), state);
        }
        Ok(view)
    }
    .await;
    let mut response = match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) if e.code == "origin_not_allowed" => return e.into_response(),
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(origin) = origin {
        cors::allow(&mut response, &origin);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for key in ["", "u:alice", "a:0b6f-…"] {
            assert_eq!(decode_cursor(&encode_cursor(key)).unwrap(), key);
        }
        assert!(decode_cursor("%%%").is_err());
    }

    #[test]
    fn times_are_iso_or_milliseconds() {
        assert_eq!(time_param("t", Some("1700000000000")).unwrap(), Some(1_700_000_000_000));
        assert_eq!(
            time_param("t", Some("2027-01-15T09:00:00Z")).unwrap(),
            crate::message::parse_time("2027-01-15T09:00:00Z")
        );
        assert_eq!(time_param("t", None).unwrap(), None);
        assert!(time_param("t", Some("soon")).is_err());
    }
}
