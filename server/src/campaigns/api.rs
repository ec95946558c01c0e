//! Loading and reading campaigns: `PUT /v1/campaigns` and `GET /v1/campaigns` with the
//! secret key, and `nudge-server campaigns load|list`. Loading replaces the site's whole list
//! in one transaction, so a document with one bad campaign changes nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{load, parse_document, replace, Format};
use crate::api::secret_key_site;
use crate::config::Database;
use crate::error::{json_response, ApiError};
use crate::state::App;
use crate::store::{Store, StoreError};

/// Largest campaign document.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Media types `PUT /v1/campaigns` reads (`text/plain`: JSON, else TOML).
const TYPES: &[&str] = &["application/json", "application/toml", "text/toml", "text/x-toml", "text/plain"];

/// `GET /v1/campaigns`: `{"campaigns": [...]}` as stored.
pub async fn get(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
        load(&mut conn.db(), &site.id).await.map_err(|e| ApiError::storage(&e))
    }
    .await;
    match result {
        Ok(list) => json_response(StatusCode::OK, &json!({ "campaigns": list })),
        Err(e) => e.into_response(),
    }
}

/// `PUT /v1/campaigns`: replaces the site's campaigns with the body's (a JSON array, or TOML
/// with `[[campaigns]]`); answers like `GET`. 400 `invalid_campaigns` names what is wrong.
pub async fn put(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let bytes = crate::body::read_typed(&headers, request, MAX_DOCUMENT_BYTES, TYPES).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("invalid_campaigns", "the body is not UTF-8"))?;
        let format = match crate::body::media_type(&headers).as_deref() {
            Some("application/json") => Format::Json,
            Some("text/plain") | None => Format::Unknown,
            Some(_) => Format::Toml,
        };
        let list = parse_document(text, format).map_err(|m| ApiError::bad_request("invalid_campaigns", m))?;
        let mut tx = app.store.write(&site.id).await.map_err(|e| ApiError::storage(&e))?;
        replace(&mut tx.db(), &site.id, &list, crate::state::now_ms()).await.map_err(|e| ApiError::storage(&e))?;
        tx.commit().await.map_err(|e| ApiError::storage(&e))?;
        Ok::<_, ApiError>(list)
    }
    .await;
    match result {
        Ok(list) => json_response(StatusCode::OK, &json!({ "campaigns": list })),
        Err(e) => e.into_response(),
    }
}

/// What `nudge-server campaigns` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliAction {
    /// `load --file F`: replace the site's campaigns with the file's (`.json` or `.toml`).
    Load {
        /// The file.
        file: String,
    },
    /// `list`: print the site's campaigns.
    List,
}

/// `nudge-server campaigns load|list --site ID`: prints `{"siteId", "campaigns": [...]}`.
/// A file that does not pass is refused before the database is opened, with the reason.
pub async fn cli(database: &Database, site_id: &str, action: &CliAction) -> Result<String, String> {
    let new = match action {
        CliAction::List => None,
        CliAction::Load { file } => {
            let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
            Some(parse_document(&text, Format::of_path(file)).map_err(|e| format!("{file}: {e}"))?)
        }
    };
    let store = Store::open(database, 1).await.map_err(|e| format!("cannot open {}: {e}", database.describe()))?;
    let result = async {
        let mut tx = store.write(site_id).await?;
        if !crate::sites::exists(&mut tx.db(), site_id).await? {
            return Ok(Err(format!("no site {site_id}")));
        }
        if let Some(list) = &new {
            replace(&mut tx.db(), site_id, list, crate::state::now_ms()).await?;
        }
        let list = load(&mut tx.db(), site_id).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(Ok(list))
    }
    .await;
    store.close().await;
    let list: Vec<Value> = result.map_err(|e| format!("database: {e}"))??;
    Ok(format!("{:#}", json!({ "siteId": site_id, "campaigns": list })))
}
