//! Storage: one [`Store`] over SQLite (the default, one embedded file) and PostgreSQL (for
//! several nodes). Both backends run the same operations with their own SQL, so callers
//! never see which one is in use. Migrations (`server/migrations/{sqlite,postgres}/`) run
//! when a store is opened.

mod group;
mod migrate;
mod postgres;
mod sqlite;
mod webhooks;

use std::fmt;

use sha2::{Digest, Sha256};

use crate::config::Database;

pub(crate) use group::insert_returning;
pub use group::{GroupCommit, IngestOutcome};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A site: the unit that owns keys, origins and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `site_` and 20 hex digits.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Public key that may send events and read public config.
    pub write_key: String,
    /// Server-to-server key; also the HMAC key for `userHash`.
    pub secret_key: String,
    /// Browser origins allowed to send (`*` for any).
    pub origins: Vec<String>,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
}

/// A validated message ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The client's `messageId` (or one the server made): unique per site.
    pub message_id: String,
    /// `track`, `page`, `screen`, `identify`, `group` or `alias`.
    pub kind: &'static str,
    /// Event name for `track`, page or screen name for `page`/`screen`.
    pub event: Option<String>,
    /// `userId`, as a string.
    pub user_id: Option<String>,
    /// `anonymousId`, as a string.
    pub anonymous_id: Option<String>,
    /// When it happened (client time corrected for clock skew with `sentAt`).
    pub timestamp_ms: i64,
    /// When the server received it.
    pub received_ms: i64,
    /// The message as JSON text.
    pub body: String,
}

/// A stored message, with its position in the site's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the log; grows with every insert.
    pub seq: i64,
    /// The message fields as inserted.
    pub event: NewEvent,
}

/// What an insert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// `seq` of each newly stored message, in batch order. Messages whose `messageId` the
    /// site already had are not here: they were acknowledged but not stored again, and
    /// anything that reacts to new events (profile folding, webhooks) must only see these.
    pub stored: Vec<i64>,
    /// How many messages were already stored.
    pub duplicates: usize,
}

/// A database failure.
#[derive(Debug)]
pub enum StoreError {
    /// From the driver.
    Db(sqlx::Error),
    /// A migration could not be applied.
    Migration(String),
    /// The ingest transaction a request was queued for ended without answering (it panicked).
    Abandoned,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "database: {e}"),
            StoreError::Migration(m) => write!(f, "migration: {m}"),
            StoreError::Abandoned => write!(f, "the ingest transaction ended without an answer"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Db(e)
    }
}

/// The database, whichever it is.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Store {
    /// Connects (creating the SQLite file if missing) and applies pending migrations.
    pub async fn open(database: &Database, max_connections: u32) -> Result<Store, StoreError> {
        Ok(match database {
            Database::Sqlite(path) => Store::Sqlite(SqliteStore::open(path, max_connections).await?),
            Database::Postgres(url) => Store::Postgres(PgStore::open(url, max_connections).await?),
        })
    }

    /// Adds a site with its origins.
    pub async fn create_site(&self, site: &Site) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.create_site(site).await,
            Store::Postgres(s) => s.create_site(site).await,
        }
    }

    /// The site whose write key this is.
    pub async fn site_by_write_key(&self, write_key: &str) -> Result<Option<Site>, StoreError> {
        match self {
            Store::Sqlite(s) => s.site_by_write_key(write_key).await,
            Store::Postgres(s) => s.site_by_write_key(write_key).await,
        }
    }

    /// Whether any site allows this browser origin (answers CORS preflights, which carry
    /// no key).
    pub async fn origin_known(&self, origin: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.origin_known(origin).await,
            Store::Postgres(s) => s.origin_known(origin).await,
        }
    }

    /// Stores a batch in one transaction; a `messageId` the site already has is skipped.
    /// Returns only after the commit is durable.
    pub async fn insert_events(&self, site_id: &str, events: &[NewEvent]) -> Result<InsertOutcome, StoreError> {
        if events.is_empty() {
            return Ok(InsertOutcome::default());
        }
        match self {
            Store::Sqlite(s) => s.insert_events(site_id, events).await,
            Store::Postgres(s) => s.insert_events(site_id, events).await,
        }
    }

    /// Up to `limit` of a site's events with `seq > after`, in `seq` order. For reading a
    /// site's log back; not yet a change feed: on PostgreSQL a row with a lower `seq` can
    /// commit after one with a higher `seq` (see the `tx` column in the migration).
    pub async fn events_after(&self, site_id: &str, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Store::Sqlite(s) => s.events_after(site_id, after, limit).await,
            Store::Postgres(s) => s.events_after(site_id, after, limit).await,
        }
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

/// SQL that differs between the backends; everything else is written once (see [`on_db`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// `column` is one of the strings in the JSON array bound at `param` (for example
    /// `$2`): both backends take a list as one JSON text parameter. Written so that each
    /// backend looks the values up through an index on `column` (PostgreSQL plans
    /// `= ANY(ARRAY(...))` as an index scan, where `IN (subquery)` may filter every row).
    pub fn is_in(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each({param}))"),
            Dialect::Postgres => format!("{column} = ANY(ARRAY(SELECT jsonb_array_elements_text({param}::jsonb)))"),
        }
    }

    /// Like [`Dialect::is_in`], for a JSON array of integers.
    pub fn is_in_int(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each({param}))"),
            Dialect::Postgres => {
                format!("{column} = ANY(ARRAY(SELECT jsonb_array_elements_text({param}::jsonb)::bigint))")
            }
        }
    }
}

/// A JSON array of `items`, the parameter [`Dialect::is_in`] reads.
pub fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// A connection of either backend, borrowed from a [`WriteTx`] or a [`Pooled`] connection.
/// Queries written once with [`on_db`] run on it.
pub enum Db<'a> {
    /// SQLite.
    Sqlite(&'a mut sqlx::SqliteConnection),
    /// PostgreSQL.
    Postgres(&'a mut sqlx::PgConnection),
}

/// Runs `$body` with `$c` bound to the connection of `$db: &mut Db` and `$d` to its
/// [`Dialect`]. The body is compiled once per backend, so one query text (with `$1`-style
/// parameters, which both accept, numbered in order of first use) and one set of binds
/// serve both.
macro_rules! on_db {
    ($db:expr, |$c:ident, $d:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(conn) => {
                let $c: &mut sqlx::SqliteConnection = &mut **conn;
                let $d = $crate::store::Dialect::Sqlite;
                $body
            }
            $crate::store::Db::Postgres(conn) => {
                let $c: &mut sqlx::PgConnection = &mut **conn;
                let $d = $crate::store::Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_db;

/// A write transaction that holds a site's write lock: the SQLite writer lock, or a
/// PostgreSQL advisory lock on the site. Folding, linking identities and erasing run in
/// one, so they never interleave for the same site, on one node or several.
pub enum WriteTx<'a> {
    /// SQLite: the transaction and the writer lock.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>, tokio::sync::MutexGuard<'a, ()>),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl WriteTx<'_> {
    /// The connection, for [`on_db`].
    pub fn db(&mut self) -> Db<'_> {
        match self {
            WriteTx::Sqlite(tx, _) => Db::Sqlite(&mut *tx),
            WriteTx::Postgres(tx) => Db::Postgres(&mut *tx),
        }
    }

    /// Commits; returns once durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx, _writer) => tx.commit().await?,
            WriteTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A connection taken from the pool, for reads.
pub enum Pooled {
    /// SQLite.
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl Pooled {
    /// The connection, for [`on_db`].
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Pooled::Sqlite(c) => Db::Sqlite(&mut *c),
            Pooled::Postgres(c) => Db::Postgres(&mut *c),
        }
    }
}

/// The advisory lock key of a site (the first 8 bytes of SHA-256 of its id).
fn site_lock_key(site_id: &str) -> i64 {
    let digest = Sha256::digest(format!("nudge-site-lock:{site_id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl Store {
    /// A connection for reads.
    pub async fn connection(&self) -> Result<Pooled, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => Pooled::Sqlite(s.pool().acquire().await?),
            Store::Postgres(s) => Pooled::Postgres(s.pool().acquire().await?),
        })
    }

    /// Begins a write transaction holding `site_id`'s write lock (see [`WriteTx`]).
    pub async fn write(&self, site_id: &str) -> Result<WriteTx<'_>, StoreError> {
        self.write_sites(&[site_id]).await
    }

    /// Begins a write transaction holding the write locks of several sites (taken in key
    /// order on PostgreSQL, so two such transactions cannot deadlock).
    pub async fn write_sites(&self, site_ids: &[&str]) -> Result<WriteTx<'_>, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => {
                let writer = s.writer().lock().await;
                WriteTx::Sqlite(s.pool().begin_with("BEGIN IMMEDIATE").await?, writer)
            }
            Store::Postgres(s) => {
                let mut keys: Vec<i64> = site_ids.iter().map(|id| site_lock_key(id)).collect();
                keys.sort_unstable();
                keys.dedup();
                // BEGIN and the locks in one round trip (the keys are integers we made).
                // Custom plans: a cached generic plan made while a table was small (a new
                // database, before autovacuum's first ANALYZE) would keep scanning every row
                // of the site for a lookup by key long after the table has grown.
                let mut begin = String::from("BEGIN; SET LOCAL plan_cache_mode = force_custom_plan");
                for key in keys {
                    begin.push_str(&format!("; SELECT pg_advisory_xact_lock({key})"));
                }
                WriteTx::Postgres(s.pool().begin_with(begin).await?)
            }
        })
    }

    /// The ingest group commit of this store (shared by its clones).
    fn group(&self) -> &std::sync::Arc<GroupCommit> {
        match self {
            Store::Sqlite(s) => &s.group,
            Store::Postgres(s) => &s.group,
        }
    }

    /// Which backend this is.
    pub fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// Columns read back for a [`StoredEvent`], in this order, by both backends.
pub(crate) const EVENT_COLUMNS: &str =
    "seq, message_id, type, event, user_id, anonymous_id, timestamp_ms, received_ms, body";

/// Maps an event type read back from the database to its static name.
fn kind_from_db(kind: &str) -> &'static str {
    crate::message::KINDS.iter().copied().find(|k| *k == kind).unwrap_or("unknown")
}

pub(crate) fn stored_event<R>(row: &R) -> Result<StoredEvent, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.try_get(2)?;
    Ok(StoredEvent {
        seq: row.try_get(0)?,
        event: NewEvent {
            message_id: row.try_get(1)?,
            kind: kind_from_db(&kind),
            event: row.try_get(3)?,
            user_id: row.try_get(4)?,
            anonymous_id: row.try_get(5)?,
            timestamp_ms: row.try_get(6)?,
            received_ms: row.try_get(7)?,
            body: row.try_get(8)?,
        },
    })
}
