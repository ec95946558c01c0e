//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, so a commit is on disk
//! before the request is acknowledged. Writers queue on an in-process lock rather than
//! polling SQLite's busy handler; another process (`site create` while serving) is covered
//! by the busy timeout.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Mutex;

use super::migrate::{self, SQLITE};
use super::{stored_event, InsertOutcome, NewEvent, Site, StoreError, StoredEvent, EVENT_COLUMNS};

/// A pool on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Arc<Mutex<()>>,
    pub(super) group: Arc<super::GroupCommit>,
}

impl SqliteStore {
    /// Opens (creating if missing) the file at `path` and migrates it.
    pub async fn open(path: &str, max_connections: u32) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(max_connections.max(1)).connect_with(options).await?;
        let store = SqliteStore { pool, writer: Arc::new(Mutex::new(())), group: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(migrate::CREATE_TABLE).execute(&mut *tx).await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM nudge_migrations").fetch_all(&mut *tx).await?;
        for m in SQLITE.iter().filter(|m| !applied.contains(&m.version)) {
            sqlx::raw_sql(m.sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration(format!("{} {}: {e}", m.version, m.name)))?;
            sqlx::query("INSERT INTO nudge_migrations (version, name, applied_ms) VALUES (?, ?, ?)")
                .bind(m.version)
                .bind(m.name)
                .bind(migrate::now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn create_site(&self, site: &Site) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO sites (id, name, write_key, secret_key, created_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(&site.id)
            .bind(&site.name)
            .bind(&site.write_key)
            .bind(&site.secret_key)
            .bind(site.created_ms)
            .execute(&mut *tx)
            .await?;
        for origin in &site.origins {
            sqlx::query("INSERT INTO site_origins (site_id, origin) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(&site.id)
                .bind(origin)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn site_by_write_key(&self, write_key: &str) -> Result<Option<Site>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT id, name, write_key, secret_key, created_ms FROM sites WHERE write_key = ?")
                .bind(write_key)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get(0)?;
        let origins = sqlx::query_scalar("SELECT origin FROM site_origins WHERE site_id = ? ORDER BY origin")
            .bind(&id)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some(Site {
            id,
            name: row.try_get(1)?,
            write_key: row.try_get(2)?,
            secret_key: row.try_get(3)?,
            origins,
            created_ms: row.try_get(4)?,
        }))
    }

    pub(super) async fn origin_known(&self, origin: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM site_origins WHERE origin = ? OR origin = '*' LIMIT 1")
            .bind(origin)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub(super) async fn insert_events(&self, site_id: &str, events: &[NewEvent]) -> Result<InsertOutcome, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcome = InsertOutcome::default();
        for e in events {
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO events (site_id, message_id, type, event, user_id, anonymous_id, timestamp_ms, \
                 received_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (site_id, message_id) DO NOTHING RETURNING seq",
            )
            .bind(site_id)
            .bind(&e.message_id)
            .bind(e.kind)
            .bind(&e.event)
            .bind(&e.user_id)
            .bind(&e.anonymous_id)
            .bind(e.timestamp_ms)
            .bind(e.received_ms)
            .bind(&e.body)
            .fetch_optional(&mut *tx)
            .await?;
            match seq {
                Some(seq) => outcome.stored.push(seq),
                None => outcome.duplicates += 1,
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    pub(super) async fn events_after(
        &self,
        site_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE site_id = ? AND seq > ? ORDER BY seq LIMIT ?");
        let rows = sqlx::query(&sql).bind(site_id).bind(after).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(stored_event).collect::<Result<_, _>>()?)
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(super) fn writer(&self) -> &Mutex<()> {
        &self.writer
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}
