//! The catalogue feed a page caches: `GET /v1/catalog/feed` with the write key (Basic user,
//! or `?writeKey=` for a GET without a preflight), CORS like `GET /v1/config`, a strong
//! `ETag` over the body, `Cache-Control: no-cache`, and a bodiless 304 for `If-None-Match`.
//! A client that accepts gzip gets the body gzipped (`Content-Encoding: gzip`, its own ETag
//! with `-gz` inside the quotes; either ETag revalidates).
//!
//! The body is one JSON object, rows as arrays so that field names are not repeated and
//! `JSON.parse` makes no object per product:
//!
//! ```json
//! {"fields":["id","name","category","brand","price","image","url","inStock","popularity","currency"],
//!  "products":[["tv-1","Big TV","TVs","Acme",499.99,"/img/tv-1.svg","/p/tv-1",1,23,"USD"],
//!              ["cable","Cable","Home",null,5,null,null,0,0,null]]}
//! ```
//!
//! Each row holds the values in the order of `fields` (read the indexes from `fields`: new
//! fields are added at the end): strings, with `brand`, `image`, `url` and `currency` `null`
//! when the site gave none; `price` a number (whole prices without `.0`); `inStock` 1 or 0;
//! `popularity` a whole number, the product's weighted event count over the last
//! [`POPULARITY_DAYS`] days: each `Product Viewed` (by `properties.product_id`) counts 1,
//! each `Product Added` 3, each line of an `Order Completed`'s `properties.products` 5.
//! Products are in the order the site loaded them.
//!
//! Building reads every product and counts the events, so each node keeps the built feed
//! per site ([`FeedCache`]) and builds it again only when the catalogue changed (its
//! version, one lookup per request) or the feed is older than the refresh interval
//! (`--catalog-refresh-minutes`, default 10). The ETag hashes the body, so a rebuild that
//! finds the same counts keeps the ETag and browsers keep getting 304s.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{load, version, Product};
use crate::api::write_key_site;
use crate::error::ApiError;
use crate::site_config::{KeyQuery, SiteConfig};
use crate::state::App;
use crate::store::{on_db, Db, Dialect, Store, StoreError};

/// The window popularity counts events in, in days.
pub const POPULARITY_DAYS: i64 = 30;
/// Weight of a `Product Viewed`.
pub const VIEW_WEIGHT: i64 = 1;
/// Weight of a `Product Added`.
pub const ADD_WEIGHT: i64 = 3;
/// Weight of a product line of an `Order Completed`.
pub const ORDER_WEIGHT: i64 = 5;
/// Default time a built feed is served before its popularity is counted again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10 * 60);
/// The feed's `fields`, in row order.
pub const FIELDS: [&str; 10] =
    ["id", "name", "category", "brand", "price", "image", "url", "inStock", "popularity", "currency"];

/// A built feed.
#[derive(Debug)]
pub struct Feed {
    /// The catalogue version it was built from.
    pub version: String,
    /// When it was built (this node's clock).
    pub built: Instant,
    /// The JSON body.
    pub body: String,
    /// The body gzipped.
    pub gzip: Vec<u8>,
    /// Strong ETag of `body`.
    pub etag: String,
}

impl Feed {
    /// The ETag of the gzipped body.
    pub fn gzip_etag(&self) -> String {
        format!("{}-gz\"", self.etag.trim_end_matches('"'))
    }
}

/// One site's place in the cache: its last feed, locked while a new one is built.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Feed>>>>;

/// Built feeds per site, on this node.
#[derive(Debug)]
pub struct FeedCache {
    refresh: Duration,
    sites: Mutex<HashMap<String, Slot>>,
}

impl FeedCache {
    /// A cache whose feeds are built again after `refresh` (zero: on every request).
    pub fn new(refresh: Duration) -> FeedCache {
        FeedCache { refresh, sites: Mutex::new(HashMap::new()) }
    }

    /// The site's feed: the one built before if the catalogue did not change and it is
    /// younger than the refresh interval, else a new one. One build per site at a time;
    /// requests that arrive during it get its result.
    pub async fn get(&self, store: &Store, site_id: &str) -> Result<Arc<Feed>, StoreError> {
        let slot = {
            let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
            sites.entry(site_id.to_string()).or_default().clone()
        };
        let current = {
            let mut conn = store.connection().await?;
            version(&mut conn.db(), site_id).await?
        };
        let mut feed = slot.lock().await;
        if let Some(f) = feed.as_ref() {
            if f.version == current && f.built.elapsed() < self.refresh {
                return Ok(f.clone());
            }
        }
        let mut conn = store.connection().await?;
        let built = Arc::new(build(&mut conn.db(), site_id, crate::state::now_ms()).await?);
        *feed = Some(built.clone());
        Ok(built)
    }
}

impl Default for FeedCache {
    fn default() -> FeedCache {
        FeedCache::new(DEFAULT_REFRESH)
    }
}

/// Builds a site's feed as of `now_ms`.
pub async fn build(db: &mut Db<'_>, site_id: &str, now_ms: i64) -> Result<Feed, StoreError> {
    let version = version(db, site_id).await?;
    let products = load(db, site_id).await?;
    let counts = popularity(db, site_id, now_ms - POPULARITY_DAYS * 86_400_000).await?;
    let body = body(&products, &counts);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gzip = match encoder.write_all(body.as_bytes()) {
        Ok(()) => encoder.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let etag = SiteConfig::etag(&body);
    Ok(Feed { version, built: Instant::now(), body, gzip, etag })
}

/// The feed's JSON body for these products and popularity counts.
pub fn body(products: &[Product], counts: &HashMap<String, i64>) -> String {
    let fields = serde_json::to_string(&FIELDS).unwrap_or_default();
    let mut out = String::with_capacity(64 + products.len() * 160);
    out.push_str(r#"{"fields":"#);
    out.push_str(&fields);
    out.push_str(r#","products":["#);
    for (i, p) in products.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // A whole price is written without `.0`.
        let price =
            if p.price.fract() == 0.0 && p.price < 9e15 { Value::from(p.price as i64) } else { Value::from(p.price) };
        let row = (
            &p.id,
            &p.name,
            &p.category,
            &p.brand,
            price,
            &p.image,
            &p.url,
            u8::from(p.in_stock),
            counts.get(&p.id).copied().unwrap_or(0),
            &p.currency,
        );
        out.push_str(&serde_json::to_string(&row).unwrap_or_default());
    }
    out.push_str("]}");
    out
}

/// Weighted event counts per product id over the events since `since_ms` (see the module
/// documentation). Messages whose text holds `\u0000` are left out on both backends:
/// PostgreSQL's `jsonb` cannot hold it, and one such message from a page must not make the
/// whole count fail.
pub async fn popularity(db: &mut Db<'_>, site_id: &str, since_ms: i64) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(Option<String>, i64)> = on_db!(db, |c, d| {
        let sql = match d {
            Dialect::Sqlite => format!(
                "WITH recent AS (SELECT event, body FROM events WHERE site_id = $1 \
                   AND event IN ('Product Viewed', 'Product Added', 'Order Completed') AND timestamp_ms >= $2 \
                   AND instr(body, '\\u0000') = 0) \
                 SELECT pid, SUM(w) FROM ( \
                   SELECT CAST(json_extract(body, '$.properties.product_id') AS TEXT) AS pid, \
                     CASE event WHEN 'Product Viewed' THEN {VIEW_WEIGHT} ELSE {ADD_WEIGHT} END AS w \
                   FROM recent WHERE event <> 'Order Completed' \
                   UNION ALL \
                   SELECT CAST(json_extract(p.value, '$.product_id') AS TEXT), {ORDER_WEIGHT} \
                   FROM recent, json_each(recent.body, '$.properties.products') AS p \
                   WHERE recent.event = 'Order Completed' \
                     AND json_type(recent.body, '$.properties.products') = 'array' AND p.type = 'object' \
                 ) AS t WHERE pid IS NOT NULL GROUP BY pid"
            ),
            Dialect::Postgres => format!(
                "WITH recent AS (SELECT event, \
                   CASE WHEN strpos(body, '\\u0000') = 0 THEN body::jsonb -> 'properties' END AS props \
                   FROM events WHERE site_id = $1 \
                   AND event IN ('Product Viewed', 'Product Added', 'Order Completed') AND timestamp_ms >= $2 \
                   AND strpos(body, '\\u0000') = 0) \
                 SELECT pid, SUM(w)::BIGINT FROM ( \
                   SELECT props ->> 'product_id' AS pid, \
                     CASE event WHEN 'Product Viewed' THEN {VIEW_WEIGHT} ELSE {ADD_WEIGHT} END AS w \
                   FROM recent WHERE event <> 'Order Completed' AND jsonb_typeof(props) = 'object' \
                   UNION ALL \
                   SELECT p ->> 'product_id', {ORDER_WEIGHT} \
                   FROM recent, jsonb_array_elements(CASE WHEN jsonb_typeof(props -> 'products') = 'array' \
                     THEN props -> 'products' ELSE '[]'::jsonb END) AS p \
                   WHERE recent.event = 'Order Completed' AND jsonb_typeof(p) = 'object' \
                 ) AS t WHERE pid IS NOT NULL GROUP BY pid"
            ),
        };
        sqlx::query_as(&sql).bind(site_id).bind(since_ms).fetch_all(&mut *c).await?
    });
    Ok(rows.into_iter().filter_map(|(pid, n)| Some((pid?, n))).collect())
}

/// `GET /v1/catalog/feed`: the site's feed with its ETag, or 304 when `If-None-Match` has it.
pub async fn get(State(app): State<Arc<App>>, Query(q): Query<KeyQuery>, headers: HeaderMap) -> Response {
    let origin = crate::cors::request_origin(&headers).map(str::to_owned);
    let result = async {
        let site = write_key_site(&app, &headers, q.write_key.as_deref()).await?;
        app.catalog.get(&app.store, &site.id).await.map_err(|e| ApiError::storage(&e))
    }
    .await;
    let mut response = match result {
        Ok(feed) => respond(&feed, &headers),
        Err(e) if e.code == "origin_not_allowed" => return e.into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(origin) = origin {
        crate::cors::allow(&mut response, &origin);
    }
    response
}

/// 200 with the body (gzipped when the client accepts it) and its ETag, or 304.
fn respond(feed: &Feed, headers: &HeaderMap) -> Response {
    let gzip = !feed.gzip.is_empty() && accepts_gzip(headers);
    let etag = if gzip { feed.gzip_etag() } else { feed.etag.clone() };
    let mut response = if if_none_match(headers, &[&feed.etag, &feed.gzip_etag()]) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        let mut r = (StatusCode::OK, feed.gzip.clone()).into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (StatusCode::OK, feed.body.clone()).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// Whether `Accept-Encoding` lists gzip (without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        },
    )
}

/// Whether `If-None-Match` names one of `etags` (or is `*`); weak validators compare by
/// their tag.
fn if_none_match(headers: &HeaderMap, etags: &[&str]) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || etags.contains(&candidate.strip_prefix("W/").unwrap_or(candidate))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_fields() {
        let p = Product {
            id: "tv-1".into(),
            name: "TV \"55\"".into(),
            category: "TVs".into(),
            brand: None,
            price: 499.0,
            currency: Some("USD".into()),
            image: Some("/img/tv.svg".into()),
            url: None,
            in_stock: true,
        };
        let cheap = Product { id: "c".into(), price: 0.5, in_stock: false, currency: None, ..p.clone() };
        let counts = HashMap::from([("tv-1".to_string(), 7)]);
        let body = body(&[p, cheap], &counts);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["fields"].as_array().unwrap().len(), FIELDS.len());
        assert_eq!(
            v["products"],
            serde_json::json!([
                ["tv-1", "TV \"55\"", "TVs", null, 499, "/img/tv.svg", null, 1, 7, "USD"],
                ["c", "TV \"55\"", "TVs", null, 0.5, "/img/tv.svg", null, 0, 0, null]
            ])
        );
        assert!(body.contains(",499,"), "{body}");
    }

    #[test]
    fn revalidation_and_encodings() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.8"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc-gz\""));
        assert!(if_none_match(&h, &["\"abc\"", "\"abc-gz\""]));
        assert!(!if_none_match(&h, &["\"abc\""]));
    }
}
