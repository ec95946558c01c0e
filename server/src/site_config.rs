//! Site config: the public settings a page fetches at start (`GET /v1/config` with the write
//! key): the journey thresholds in force (the core's defaults with the site's overrides) and
//! the site's campaigns (`crate::campaigns`). Served with a strong ETag so that a browser revalidates with
//! `If-None-Match` and gets a bodiless 304 when nothing changed. The site changes its
//! overrides with the secret key (`PUT /v1/config`) or `nudge-server site config`.
//!
//! Thresholds also decide how events fold into profiles, so each profile records the
//! [`SiteConfig::tag`] it was folded with, and is folded again from its history when the
//! thresholds change.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nudge::codec::Json;
use nudge::config::{ThresholdOverrides, Thresholds};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::api::{secret_key_site, write_key_site};
use crate::config::Database;
use crate::error::ApiError;
use crate::hmac::hex;
use crate::state::App;
use crate::store::{on_db, Db, Store, StoreError};
use crate::{body, campaigns, cors};

/// Largest `PUT /v1/config` body.
const MAX_CONFIG_BYTES: usize = 16 * 1024;

/// A site's config as stored and as served.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// The overrides the site set (threshold name -> number).
    pub overrides: Map<String, Value>,
    /// The thresholds in force: defaults with the overrides applied.
    pub thresholds: Thresholds,
    /// Names the thresholds in force; profiles folded with another tag are folded again.
    pub tag: String,
}

impl SiteConfig {
    /// The config for these overrides (already checked by [`check_overrides`]).
    pub fn new(overrides: Map<String, Value>) -> SiteConfig {
        let mut thresholds = Thresholds::default();
        let text = Value::Object(overrides.clone()).to_string();
        if let Ok(v) = nudge::json_value::parse(&text, 4) {
            thresholds.apply(&ThresholdOverrides::read(&v).0);
        }
        let tag = hex(&Sha256::digest(thresholds.to_json().as_bytes())[..8]);
        SiteConfig { overrides, thresholds, tag }
    }

    /// The public JSON body: `{"thresholds": {...every threshold...}, "campaigns": [...]}`,
    /// with `campaigns` the JSON array text of the site's campaigns. Campaigns change the
    /// body (so the ETag) but not [`SiteConfig::tag`]: they do not affect folding.
    pub fn public_body(&self, campaigns: &str) -> String {
        format!(r#"{{"thresholds":{},"campaigns":{campaigns}}}"#, self.thresholds.to_json())
    }

    /// The strong ETag of a body: a quoted hash of its bytes.
    pub fn etag(body: &str) -> String {
        format!("\"{}\"", hex(&Sha256::digest(body.as_bytes())[..16]))
    }
}

/// Checks threshold overrides: an object whose keys are threshold names (those of
/// [`Thresholds`], e.g. `decision_days`) and whose values are positive finite numbers.
pub fn check_overrides(v: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(map) = v else { return Err("thresholds must be an object".into()) };
    let known = Thresholds::default().to_json();
    for (k, value) in map {
        if !known.contains(&format!("\"{k}\":")) {
            return Err(format!("unknown threshold {k:?}"));
        }
        match value.as_f64() {
            Some(n) if n.is_finite() && n > 0.0 => {}
            _ => return Err(format!("threshold {k} must be a positive number")),
        }
    }
    Ok(map.clone())
}

/// Reads a config document: `{"thresholds": {...}}`, or the thresholds object alone.
pub fn read_document(v: &Value) -> Result<Map<String, Value>, String> {
    match v.get("thresholds") {
        Some(t) => check_overrides(t),
        None => check_overrides(v),
    }
}

/// A site's config (defaults when it never set one).
pub async fn load(db: &mut Db<'_>, site_id: &str) -> Result<SiteConfig, StoreError> {
    let text: Option<String> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT thresholds FROM site_config WHERE site_id = $1")
            .bind(site_id)
            .fetch_optional(&mut *c)
            .await?
    });
    let overrides = text
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| check_overrides(&v).ok())
        .unwrap_or_default();
    Ok(SiteConfig::new(overrides))
}

/// Replaces a site's overrides.
pub async fn save(
    db: &mut Db<'_>,
    site_id: &str,
    overrides: &Map<String, Value>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let text = Value::Object(overrides.clone()).to_string();
    on_db!(db, |c, _d| {
        sqlx::query(
            "INSERT INTO site_config (site_id, thresholds, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (site_id) DO UPDATE SET thresholds = excluded.thresholds, updated_ms = excluded.updated_ms",
        )
        .bind(site_id)
        .bind(&text)
        .bind(now_ms)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// The `writeKey` query parameter of a cacheable `GET`.
#[derive(Debug, Default, Deserialize)]
pub struct KeyQuery {
    /// The site's write key.
    #[serde(rename = "writeKey")]
    pub write_key: Option<String>,
}

/// `GET /v1/config`: the public config with its ETag, or 304 when `If-None-Match` has it.
pub async fn get(State(app): State<Arc<App>>, Query(q): Query<KeyQuery>, headers: HeaderMap) -> Response {
    let origin = cors::request_origin(&headers).map(str::to_owned);
    let result = async {
        let site = write_key_site(&app, &headers, q.write_key.as_deref()).await?;
        let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
        let config = load(&mut conn.db(), &site.id).await.map_err(|e| ApiError::storage(&e))?;
        let campaigns = campaigns::public_json(&mut conn.db(), &site.id).await.map_err(|e| ApiError::storage(&e))?;
        Ok::<_, ApiError>((config, campaigns))
    }
    .await;
    let mut response = match result {
        Ok((config, campaigns)) => respond(&config, &campaigns, &headers),
        Err(e) if e.code == "origin_not_allowed" => return e.into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(origin) = origin {
        cors::allow(&mut response, &origin);
    }
    response
}

/// 200 with the body and ETag, or 304 when the client has this version.
fn respond(config: &SiteConfig, campaigns: &str, headers: &HeaderMap) -> Response {
    let body = config.public_body(campaigns);
    let etag = SiteConfig::etag(&body);
    let mut response = if if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Cached, but checked with the server (cheaply, by ETag) before every use.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak validators compare by their tag,
/// as RFC 9110 asks for this header.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        },
    )
}

/// `PUT /v1/config` with the secret key: replaces the threshold overrides; answers like GET.
pub async fn put(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let bytes = body::read(&headers, request, MAX_CONFIG_BYTES).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?;
        let overrides = read_document(&v).map_err(|m| ApiError::bad_request("invalid_config", m))?;
        let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
        save(&mut conn.db(), &site.id, &overrides, crate::state::now_ms()).await.map_err(|e| ApiError::storage(&e))?;
        let campaigns = campaigns::public_json(&mut conn.db(), &site.id).await.map_err(|e| ApiError::storage(&e))?;
        Ok::<_, ApiError>((SiteConfig::new(overrides), campaigns))
    }
    .await;
    match result {
        Ok((config, campaigns)) => respond(&config, &campaigns, &HeaderMap::new()),
        Err(e) => e.into_response(),
    }
}

/// `nudge-server site config --site ID [--file PATH]`: sets the overrides from a file (when
/// given) and prints `{"siteId", "overrides", "thresholds"}`.
pub async fn cli(database: &Database, site_id: &str, file: Option<&str>) -> Result<String, String> {
    let overrides = match file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))?;
            Some(read_document(&v).map_err(|e| format!("{path}: {e}"))?)
        }
    };
    let store = Store::open(database, 1).await.map_err(|e| format!("cannot open {}: {e}", database.describe()))?;
    let result = async {
        let mut conn = store.connection().await?;
        let mut db = conn.db();
        if !crate::sites::exists(&mut db, site_id).await? {
            return Ok(Err(format!("no site {site_id}")));
        }
        if let Some(o) = &overrides {
            save(&mut db, site_id, o, crate::state::now_ms()).await?;
        }
        Ok::<_, StoreError>(Ok(load(&mut db, site_id).await?))
    }
    .await;
    store.close().await;
    let config = result.map_err(|e| format!("database: {e}"))??;
    let thresholds: Value = serde_json::from_str(&config.thresholds.to_json()).unwrap_or(Value::Null);
    let out = serde_json::json!({ "siteId": site_id, "overrides": config.overrides, "thresholds": thresholds });
    Ok(format!("{out:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_checked_and_applied() {
        let v = serde_json::json!({"thresholds": {"decision_days": 3, "consideration_views": 2.5}});
        let config = SiteConfig::new(read_document(&v).unwrap());
        assert_eq!((config.thresholds.decision_days, config.thresholds.consideration_views), (3.0, 2.5));
        assert_eq!(config.thresholds.affinity_half_life_days, 14.0);
        assert_ne!(config.tag, SiteConfig::new(Map::new()).tag);
        assert!(read_document(&serde_json::json!({"decision_dayz": 3})).is_err());
        assert!(read_document(&serde_json::json!({"decision_days": -1})).is_err());
        assert!(read_document(&serde_json::json!({"decision_days": "3"})).is_err());
        assert!(read_document(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn etags_follow_the_body_and_if_none_match_reads_lists() {
        let body = SiteConfig::new(Map::new()).public_body("[]");
        assert!(body.contains(r#""decision_days":7"#) && body.ends_with(r#""campaigns":[]}"#), "{body}");
        let etag = SiteConfig::etag(&body);
        assert!(etag.starts_with('"') && etag.len() == 34);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{etag}")).unwrap());
        assert!(if_none_match(&h, &etag));
        assert!(!if_none_match(&h, "\"y\""));
    }
}
