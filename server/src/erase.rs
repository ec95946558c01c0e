//! Erasure: removing a person's messages, identity links and profile, and remembering that
//! they were erased so that late messages naming them are dropped (at ingest, and again
//! when folding, for a message that raced the erasure) and never rebuild a profile.
//!
//! Two ways in: `DELETE /v1/profiles/...` with the secret key erases a whole person (a user
//! with every browser linked to them); the SDK's `forget()` sends `track "Erasure
//! Requested"`, which erases only that browser's anonymous id (its messages, its link), as
//! the write key that sent it may speak for nothing more. A user it was linked to is then
//! folded again from what is left.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::Row;

use crate::api::secret_key_site;
use crate::error::{json_response, ApiError};
use crate::identity::{self, Person};
use crate::profiles::delete_profiles;
use crate::state::App;
use crate::store::{json_list, on_db, Db, NewEvent, Store, StoreError, WriteTx};

/// The erased ids among some that were asked about.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erased {
    /// Erased userIds.
    pub users: HashSet<String>,
    /// Erased anonymousIds.
    pub anonymous: HashSet<String>,
}

impl Erased {
    /// Whether a message with these ids names an erased person.
    pub fn covers(&self, user_id: Option<&str>, anonymous_id: Option<&str>) -> bool {
        user_id.is_some_and(|u| self.users.contains(u)) || anonymous_id.is_some_and(|a| self.anonymous.contains(a))
    }
}

/// Which of these ids were erased.
pub async fn erased_among(
    db: &mut Db<'_>,
    site_id: &str,
    users: &[&str],
    anons: &[&str],
) -> Result<Erased, StoreError> {
    if users.is_empty() && anons.is_empty() {
        return Ok(Erased::default());
    }
    let rows: Vec<(String, String)> = on_db!(db, |c, d| {
        let sql = format!(
            "SELECT kind, id FROM erasures WHERE site_id = $1 AND kind = 'user' AND {} \
             UNION ALL SELECT kind, id FROM erasures WHERE site_id = $1 AND kind = 'anonymous' AND {}",
            d.is_in("id", "$2"),
            d.is_in("id", "$3")
        );
        sqlx::query(&sql)
            .bind(site_id)
            .bind(json_list(users))
            .bind(json_list(anons))
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?
    });
    let mut erased = Erased::default();
    for (kind, id) in rows {
        if kind == "user" {
            erased.users.insert(id);
        } else {
            erased.anonymous.insert(id);
        }
    }
    Ok(erased)
}

/// Leaves out messages that name an erased person (before they are stored); returns the
/// rest and how many were dropped.
pub async fn drop_erased(
    store: &Store,
    site_id: &str,
    events: Vec<NewEvent>,
) -> Result<(Vec<NewEvent>, usize), StoreError> {
    let users: Vec<&str> = events.iter().filter_map(|e| e.user_id.as_deref()).collect();
    let anons: Vec<&str> = events.iter().filter_map(|e| e.anonymous_id.as_deref()).collect();
    let mut conn = store.connection().await?;
    let erased = erased_among(&mut conn.db(), site_id, &users, &anons).await?;
    if erased.users.is_empty() && erased.anonymous.is_empty() {
        return Ok((events, 0));
    }
    let before = events.len();
    let kept: Vec<NewEvent> =
        events.into_iter().filter(|e| !erased.covers(e.user_id.as_deref(), e.anonymous_id.as_deref())).collect();
    let dropped = before - kept.len();
    Ok((kept, dropped))
}

async fn record(db: &mut Db<'_>, site_id: &str, kind: &str, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
    for id in ids {
        on_db!(db, |c, _d| {
            sqlx::query(
                "INSERT INTO erasures (site_id, kind, id, erased_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (site_id, kind, id) DO NOTHING",
            )
            .bind(site_id)
            .bind(kind)
            .bind(id)
            .bind(now_ms)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

/// What an erasure removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The user erased, if any.
    pub user_id: Option<String>,
    /// The browsers erased.
    pub anonymous_ids: Vec<String>,
    /// Messages deleted.
    pub events: u64,
}

/// Erases a user and every browser linked to them.
pub async fn erase_user(
    tx: &mut WriteTx<'_>,
    site_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<Erasure, StoreError> {
    let anons = identity::anonymous_ids(&mut tx.db(), site_id, user_id).await?;
    let mut db = tx.db();
    let events = on_db!(&mut db, |c, d| {
        let sql = format!(
            "DELETE FROM events WHERE site_id = $1 AND (user_id = $2 OR (user_id IS NULL AND {}))",
            d.is_in("anonymous_id", "$3")
        );
        sqlx::query(&sql).bind(site_id).bind(user_id).bind(json_list(&anons)).execute(&mut *c).await?.rows_affected()
    });
    on_db!(&mut db, |c, _d| {
        sqlx::query("DELETE FROM identities WHERE site_id = $1 AND user_id = $2")
            .bind(site_id)
            .bind(user_id)
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    let mut keys: Vec<String> = anons.iter().map(|a| Person::Anonymous(a.clone()).key()).collect();
    keys.push(Person::User(user_id.into()).key());
    delete_profiles(&mut db, site_id, &keys).await?;
    crate::coupons::erase(&mut db, site_id, Some(user_id), &anons).await?;
    crate::abandon::forget(&mut db, site_id, &keys).await?;
    crate::email::jobs::forget(&mut db, site_id, &keys).await?;
    record(&mut db, site_id, "user", &[user_id.to_string()], now_ms).await?;
    record(&mut db, site_id, "anonymous", &anons, now_ms).await?;
    Ok(Erasure { user_id: Some(user_id.into()), anonymous_ids: anons, events })
}

/// Erases one browser: its messages, its link, its anonymous profile. Returns the user it
/// was linked to, whose profile must be folded again without it.
pub async fn erase_anonymous(
    tx: &mut WriteTx<'_>,
    site_id: &str,
    anonymous_id: &str,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    let mut db = tx.db();
    let linked = identity::person_of_anonymous(&mut db, site_id, anonymous_id).await?;
    for sql in [
        "DELETE FROM events WHERE site_id = $1 AND anonymous_id = $2",
        "DELETE FROM identities WHERE site_id = $1 AND anonymous_id = $2",
    ] {
        on_db!(&mut db, |c, _d| sqlx::query(sql)
            .bind(site_id)
            .bind(anonymous_id)
            .execute(&mut *c)
            .await?
            .rows_affected());
    }
    let keys = [Person::Anonymous(anonymous_id.into()).key()];
    delete_profiles(&mut db, site_id, &keys).await?;
    crate::abandon::forget(&mut db, site_id, &keys).await?;
    crate::email::jobs::forget(&mut db, site_id, &keys).await?;
    crate::coupons::erase(&mut db, site_id, None, &[anonymous_id.to_string()]).await?;
    record(&mut db, site_id, "anonymous", &[anonymous_id.to_string()], now_ms).await?;
    Ok(linked.user_id().map(str::to_string))
}

/// `DELETE /v1/profiles/{userId}` with the secret key.
pub async fn delete_user(State(app): State<Arc<App>>, Path(user_id): Path<String>, headers: HeaderMap) -> Response {
    erase(&app, &headers, Person::User(user_id)).await.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /v1/profiles/anonymous/{anonymousId}` with the secret key: erases the person the
/// browser belongs to (its user and every browser linked to them, when it was identified).
pub async fn delete_anonymous(
    State(app): State<Arc<App>>,
    Path(anonymous_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    erase(&app, &headers, Person::Anonymous(anonymous_id)).await.unwrap_or_else(IntoResponse::into_response)
}

async fn erase(app: &App, headers: &HeaderMap, person: Person) -> Result<Response, ApiError> {
    let site = secret_key_site(app, headers).await?;
    let storage = |e: StoreError| ApiError::storage(&e);
    let now = crate::state::now_ms();
    let mut tx = app.store.write(&site.id).await.map_err(storage)?;
    let person = match person {
        Person::Anonymous(a) => identity::person_of_anonymous(&mut tx.db(), &site.id, &a).await.map_err(storage)?,
        user => user,
    };
    let erasure = match &person {
        Person::User(u) => erase_user(&mut tx, &site.id, u, now).await.map_err(storage)?,
        Person::Anonymous(a) => {
            let mut db = tx.db();
            let events = on_db!(&mut db, |c, _d| {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events WHERE site_id = $1 AND anonymous_id = $2")
                    .bind(&site.id)
                    .bind(a)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| storage(e.into()))?
            });
            erase_anonymous(&mut tx, &site.id, a, now).await.map_err(storage)?;
            Erasure { user_id: None, anonymous_ids: vec![a.clone()], events: events.max(0) as u64 }
        }
    };
    tx.commit().await.map_err(storage)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "success": true,
            "userId": erasure.user_id,
            "anonymousIds": erasure.anonymous_ids,
            "events": erasure.events,
        }),
    ))
}
