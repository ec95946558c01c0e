//! The change feed: every stored message of a site, including the `Stage Changed`
//! messages folds derive, in commit order, from an opaque cursor, for other channels to
//! follow (`GET /v1/changes?cursor=&limit=` with the secret key).
//!
//! Commit order, not insert order: on SQLite, one writer at a time makes `seq` order commit
//! order. On PostgreSQL, concurrent transactions commit in any order, so the feed reads
//! only rows whose inserting transaction is older than every transaction still running
//! (`tx < pg_snapshot_xmin(pg_current_snapshot())`), ordered by `(tx, seq)`: a row that
//! commits late always sorts after every row already served, so following the cursor
//! misses nothing and repeats nothing. Erased people's messages leave the feed with them.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::api::secret_key_site;
use crate::error::{json_response, ApiError};
use crate::state::App;
use crate::store::{Pooled, StoreError};

/// Changes per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 100;
/// Most changes per page.
pub const MAX_LIMIT: i64 = 1_000;

/// A position in the feed: after the row `(tx, seq)` (`tx` is 0 on SQLite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The inserting transaction (PostgreSQL `xid8`), 0 on SQLite.
    pub tx: u64,
    /// The row's `seq`.
    pub seq: i64,
}

impl Cursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}.{}", self.tx, self.seq))
    }

    /// Reads [`Cursor::encode`]'s form; empty means the start.
    pub fn decode(text: &str) -> Option<Cursor> {
        if text.trim().is_empty() {
            return Some(Cursor::default());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (tx, seq) = text.split_once('.')?;
        Some(Cursor { tx: tx.parse().ok()?, seq: seq.parse().ok()? })
    }
}

/// One change: a stored message and when it was received.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its position.
    pub cursor: Cursor,
    /// The message as stored.
    pub body: String,
    /// When it was received, ms.
    pub received_ms: i64,
}

/// Up to `limit` changes after `after`, in commit order.
pub async fn changes(conn: &mut Pooled, site_id: &str, after: Cursor, limit: i64) -> Result<Vec<Change>, StoreError> {
    let rows = match conn {
        Pooled::Sqlite(c) => {
            let rows = sqlx::query(
                "SELECT seq, body, received_ms FROM events WHERE site_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(site_id)
            .bind(after.seq)
            .bind(limit)
            .fetch_all(&mut **c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Change {
                        cursor: Cursor { tx: 0, seq: r.try_get(0)? },
                        body: r.try_get(1)?,
                        received_ms: r.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }
        Pooled::Postgres(c) => {
            let rows = sqlx::query(
                "SELECT tx::text, seq, body, received_ms FROM events WHERE site_id = $1 \
                 AND (tx, seq) > ($2::text::xid8, $3) AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY tx, seq LIMIT $4",
            )
            .bind(site_id)
            .bind(after.tx.to_string())
            .bind(after.seq)
            .bind(limit)
            .fetch_all(&mut **c)
            .await?;
            rows.iter()
                .map(|r| {
                    let tx: String = r.try_get(0)?;
                    Ok(Change {
                        cursor: Cursor { tx: tx.parse().unwrap_or(0), seq: r.try_get(1)? },
                        body: r.try_get(2)?,
                        received_ms: r.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }
    };
    Ok(rows)
}

/// The query of `GET /v1/changes`.
#[derive(Debug, Default, Deserialize)]
pub struct FeedQuery {
    /// `cursor` of the previous page; absent for the start.
    pub cursor: Option<String>,
    /// Page size (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// `GET /v1/changes`: `{"changes": [{"receivedAt", "message"}], "cursor", "hasMore"}`. Pass
/// `cursor` back to continue; it stays put when there is nothing new.
pub async fn get(State(app): State<Arc<App>>, Query(q): Query<FeedQuery>, headers: HeaderMap) -> Response {
    let result = async {
        let site = secret_key_site(&app, &headers).await?;
        let after = Cursor::decode(q.cursor.as_deref().unwrap_or(""))
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not one this API gave"))?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let mut conn = app.store.connection().await.map_err(|e| ApiError::storage(&e))?;
        let page = changes(&mut conn, &site.id, after, limit).await.map_err(|e| ApiError::storage(&e))?;
        let next = page.last().map_or(after, |c| c.cursor);
        let has_more = page.len() as i64 == limit;
        let items: Vec<Value> = page
            .iter()
            .map(|c| {
                let message = serde_json::from_str::<Value>(&c.body).unwrap_or(Value::Null);
                json!({ "receivedAt": nudge::time::to_iso(c.received_ms.max(0) as u64), "message": message })
            })
            .collect();
        Ok::<_, ApiError>(json!({ "changes": items, "cursor": next.encode(), "hasMore": has_more }))
    }
    .await;
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { tx: 9_000_000_001, seq: 42 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode(""), Some(Cursor::default()));
        assert_eq!(Cursor::decode("bm9wZQ"), None);
    }
}
