//! Loading a catalogue: `PUT /v1/catalog` with the secret key, and `nudge-server catalog
//! load`. Loading replaces the site's whole catalogue in one transaction, so a document
//! with one bad row changes nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{parse_document, replace, Format};
use crate::api::secret_key_site;
use crate::config::Database;
use crate::error::{json_response, ApiError};
use crate::state::App;
use crate::store::{Store, StoreError};

/// Largest catalogue document (after gzip decoding): room for 50,000 products with long
/// names and URLs.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;
/// Media types `PUT /v1/catalog` reads (`text/plain`: JSON when it starts with `[` or `{`,
/// else CSV).
const TYPES: &[&str] = &["application/json", "text/csv", "application/csv", "text/plain"];

/// `PUT /v1/catalog`: replaces the site's catalogue with the body's; answers
/// `{"products": N, "version": "..."}`. 400 `invalid_catalog` names the first mistake.
pub async fn put(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let bytes = crate::body::read_typed(&headers, request, MAX_DOCUMENT_BYTES, TYPES).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("invalid_catalog", "the body is not UTF-8"))?;
        let format = match crate::body::media_type(&headers).as_deref() {
            Some("application/json") => Format::Json,
            Some("text/csv" | "application/csv") => Format::Csv,
            _ => Format::Unknown,
        };
        let products = parse_document(text, format).map_err(|m| ApiError::bad_request("invalid_catalog", m))?;
        let mut tx = app.store.write(&site.id).await.map_err(|e| ApiError::storage(&e))?;
        let version = replace(&mut tx.db(), &site.id, &products, crate::state::now_ms())
            .await
            .map_err(|e| ApiError::storage(&e))?;
        tx.commit().await.map_err(|e| ApiError::storage(&e))?;
        Ok::<_, ApiError>((products.len(), version))
    }
    .await;
    match result {
        Ok((n, version)) => json_response(StatusCode::OK, &json!({ "products": n, "version": version })),
        Err(e) => e.into_response(),
    }
}

/// `nudge-server catalog load --site ID --file F` (`.json` or `.csv`; else by content):
/// prints `{"siteId", "products": N, "version"}`. A file that does not pass is refused
/// before the database is opened, with the reason.
pub async fn cli(database: &Database, site_id: &str, file: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let products = parse_document(&text, Format::of_path(file)).map_err(|e| format!("{file}: {e}"))?;
    let store = Store::open(database, 1).await.map_err(|e| format!("cannot open {}: {e}", database.describe()))?;
    let result = async {
        let mut tx = store.write(site_id).await?;
        if !crate::sites::exists(&mut tx.db(), site_id).await? {
            return Ok(Err(format!("no site {site_id}")));
        }
        let version = replace(&mut tx.db(), site_id, &products, crate::state::now_ms()).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(Ok(version))
    }
    .await;
    store.close().await;
    let version = result.map_err(|e| format!("database: {e}"))??;
    Ok(format!("{:#}", json!({ "siteId": site_id, "products": products.len(), "version": version })))
}
