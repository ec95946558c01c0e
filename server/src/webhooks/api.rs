//! The webhook API (secret key):
//!
//! - `POST /v1/webhooks` `{"url": "https://...", "events": ["Stage Changed"]}` registers one
//!   (`events` absent, empty or `["*"]`: every message) and answers 201 with its `secret`,
//!   the only time the secret is shown;
//! - `GET /v1/webhooks` lists them with their queue counts;
//! - `DELETE /v1/webhooks/{id}` removes one and its pending deliveries;
//! - `GET /v1/webhooks/{id}/deliveries?status=&limit=&before=` lists its deliveries, newest
//!   first (`before` is the `next` of the previous page).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{list, queue, register, remove, Listed, RegisterError};
use crate::api::secret_key_site;
use crate::body;
use crate::error::{json_response, ApiError};
use crate::state::App;
use crate::store::on_db;

/// Largest registration body.
const MAX_BODY: usize = 16 * 1024;
/// Deliveries per page unless `limit` says otherwise.
const DEFAULT_PAGE: i64 = 50;
/// Most deliveries per page.
const MAX_PAGE: i64 = 500;

fn respond(result: Result<(StatusCode, Value), ApiError>) -> Response {
    match result {
        Ok((status, v)) => json_response(status, &v),
        Err(e) => e.into_response(),
    }
}

/// A registration request.
#[derive(Debug, Deserialize)]
struct NewWebhook {
    url: String,
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// `POST /v1/webhooks`.
pub async fn create(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Response {
    respond(
        async {
            let site = secret_key_site(&app, &headers).await?;
            let bytes = body::read(&headers, request, MAX_BODY).await?;
            let new: NewWebhook = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::bad_request("invalid_webhook", format!("expected {{\"url\", \"events\"?}}: {e}"))
            })?;
            let events = new.events.unwrap_or_default();
            let w = register(&app.store, &site.id, &new.url, &events, crate::state::now_ms()).await.map_err(
                |e| match e {
                    RegisterError::Invalid(m) => ApiError::bad_request("invalid_webhook", m),
                    RegisterError::Store(e) => ApiError::storage(&e),
                },
            )?;
            let out = json!({
                "id": w.id,
                "url": w.url,
                "events": w.events,
                "secret": w.secret,
                "createdAt": nudge::time::to_iso(w.created_ms.max(0) as u64),
            });
            Ok((StatusCode::CREATED, out))
        }
        .await,
    )
}

/// `GET /v1/webhooks`.
pub async fn list_all(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    respond(
        async {
            let site = secret_key_site(&app, &headers).await?;
            let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
            let listed = list(&mut conn.db(), &site.id).await.map_err(|e| ApiError::storage(&e))?;
            Ok((StatusCode::OK, json!({ "webhooks": listed.iter().map(Listed::to_json).collect::<Vec<_>>() })))
        }
        .await,
    )
}

fn no_such_webhook() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_webhook", "this site has no webhook with that id")
}

/// `DELETE /v1/webhooks/{id}`.
pub async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            let site = secret_key_site(&app, &headers).await?;
            if !remove(&app.store, &site.id, &id).await.map_err(|e| ApiError::storage(&e))? {
                return Err(no_such_webhook());
            }
            Ok((StatusCode::OK, json!({ "id": id, "deleted": true })))
        }
        .await,
    )
}

/// The query of the deliveries listing.
#[derive(Debug, Default, Deserialize)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Page size (1 to 500, default 50).
    pub limit: Option<i64>,
    /// Only deliveries older than this one (the previous page's `next`).
    pub before: Option<i64>,
}

/// `GET /v1/webhooks/{id}/deliveries`: `{"deliveries": [...], "next"}`.
pub async fn deliveries(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let site = secret_key_site(&app, &headers).await?;
            let status = q.status.as_deref().filter(|s| !s.is_empty());
            if status.is_some_and(|s| !matches!(s, "pending" | "delivered" | "failed")) {
                return Err(ApiError::bad_request("invalid_status", "status is pending, delivered or failed"));
            }
            let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
            let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
            let mut db = conn.db();
            let found: Option<i64> = on_db!(&mut db, |c, _d| {
                sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM webhooks WHERE id = $1 AND site_id = $2")
                    .bind(&id)
                    .bind(&site.id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| ApiError::storage(&e.into()))?
            });
            if found.is_none() {
                return Err(no_such_webhook());
            }
            let page =
                queue::deliveries(&mut db, &id, status, q.before, limit).await.map_err(|e| ApiError::storage(&e))?;
            let next = (page.len() as i64 == limit).then(|| page.last().map(|d| d.id)).flatten();
            let items: Vec<Value> = page.iter().map(queue::Delivery::to_json).collect();
            Ok((StatusCode::OK, json!({ "deliveries": items, "next": next })))
        }
        .await,
    )
}
