//! The PostgreSQL backend, for one or several nodes. A batch is one `INSERT ... SELECT FROM
//! UNNEST(...)` statement (one round trip, one transaction); `ON CONFLICT DO NOTHING` on
//! `(site_id, message_id)` absorbs duplicates, including two nodes receiving the same
//! message at once (the second waits for the first to commit, then skips it).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::migrate::{self, POSTGRES};
use super::{stored_event, InsertOutcome, NewEvent, Site, StoreError, StoredEvent, EVENT_COLUMNS};

/// Advisory lock key held while migrating, so nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6e75_6467_655f_6d67; // "nudge_mg"

/// The statement that stores a batch of events in one round trip: one array per column,
/// unnested in order; a repeated `messageId` is left as it was. `$ret` is its RETURNING.
macro_rules! insert_unnest {
    ($ret:literal) => {
        concat!(
            "INSERT INTO events (site_id, message_id, type, event, user_id, anonymous_id, timestamp_ms, \
             received_ms, body) \
             SELECT $1, m, t, e, u, a, ts, r, b \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], \
                         $9::text[]) WITH ORDINALITY AS x (m, t, e, u, a, ts, r, b, n) \
             ORDER BY n \
             ON CONFLICT (site_id, message_id) DO NOTHING ",
            $ret
        )
    };
}
pub(super) use insert_unnest;

/// Events split into one array per column, bound as `$2`..`$9` of [`insert_unnest`].
pub(super) struct EventColumns<'a> {
    pub message_ids: Vec<&'a str>,
    pub kinds: Vec<&'a str>,
    pub names: Vec<Option<&'a str>>,
    pub user_ids: Vec<Option<&'a str>>,
    pub anonymous_ids: Vec<Option<&'a str>>,
    pub timestamps: Vec<i64>,
    pub received: Vec<i64>,
    pub bodies: Vec<&'a str>,
}

impl<'a> EventColumns<'a> {
    pub(super) fn of(events: impl IntoIterator<Item = &'a NewEvent>) -> Self {
        let mut c = EventColumns {
            message_ids: Vec::new(),
            kinds: Vec::new(),
            names: Vec::new(),
            user_ids: Vec::new(),
            anonymous_ids: Vec::new(),
            timestamps: Vec::new(),
            received: Vec::new(),
            bodies: Vec::new(),
        };
        for e in events {
            c.message_ids.push(e.message_id.as_str());
            c.kinds.push(e.kind);
            c.names.push(e.event.as_deref());
            c.user_ids.push(e.user_id.as_deref());
            c.anonymous_ids.push(e.anonymous_id.as_deref());
            c.timestamps.push(e.timestamp_ms);
            c.received.push(e.received_ms);
            c.bodies.push(e.body.as_str());
        }
        c
    }
}

/// A pool on one PostgreSQL database (and the schema its `search_path` selects).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    pub(super) group: std::sync::Arc<super::GroupCommit>,
}

impl PgStore {
    /// Connects to `url` and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new().max_connections(max_connections.max(1)).connect_with(options).await?;
        let store = PgStore { pool, group: Default::default() };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
        sqlx::raw_sql(migrate::CREATE_TABLE).execute(&mut *tx).await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM nudge_migrations").fetch_all(&mut *tx).await?;
        for m in POSTGRES.iter().filter(|m| !applied.contains(&m.version)) {
            sqlx::raw_sql(m.sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration(format!("{} {}: {e}", m.version, m.name)))?;
            sqlx::query("INSERT INTO nudge_migrations (version, name, applied_ms) VALUES ($1, $2, $3)")
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO sites (id, name, write_key, secret_key, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&site.id)
            .bind(&site.name)
            .bind(&site.write_key)
            .bind(&site.secret_key)
            .bind(site.created_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO site_origins (site_id, origin) SELECT $1, o FROM UNNEST($2::text[]) AS o ON CONFLICT DO NOTHING")
            .bind(&site.id)
            .bind(&site.origins)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn site_by_write_key(&self, write_key: &str) -> Result<Option<Site>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id, s.name, s.write_key, s.secret_key, s.created_ms, \
             COALESCE((SELECT array_agg(o.origin ORDER BY o.origin) FROM site_origins o WHERE o.site_id = s.id), '{}') \
             FROM sites s WHERE s.write_key = $1",
        )
        .bind(write_key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Site {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            write_key: row.try_get(2)?,
            secret_key: row.try_get(3)?,
            created_ms: row.try_get(4)?,
            origins: row.try_get(5)?,
        }))
    }

    pub(super) async fn origin_known(&self, origin: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM site_origins WHERE origin = $1 OR origin = '*' LIMIT 1")
            .bind(origin)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub(super) async fn insert_events(&self, site_id: &str, events: &[NewEvent]) -> Result<InsertOutcome, StoreError> {
        let cols = EventColumns::of(events);
        let stored: Vec<i64> = sqlx::query_scalar(insert_unnest!("RETURNING seq"))
            .bind(site_id)
            .bind(&cols.message_ids)
            .bind(&cols.kinds)
            .bind(&cols.names)
            .bind(&cols.user_ids)
            .bind(&cols.anonymous_ids)
            .bind(&cols.timestamps)
            .bind(&cols.received)
            .bind(&cols.bodies)
            .fetch_all(&self.pool)
            .await?;
        let mut stored = stored;
        stored.sort_unstable();
        let duplicates = events.len() - stored.len();
        Ok(InsertOutcome { stored, duplicates })
    }

    pub(super) async fn events_after(
        &self,
        site_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
        let rows = sqlx::query(&sql).bind(site_id).bind(after).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(stored_event).collect::<Result<_, _>>()?)
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}
