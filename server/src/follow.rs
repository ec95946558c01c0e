//! Following sites' change feeds (`crate::feed`) from inside the server, for consumers that
//! turn stored messages into rows of their own (cart timers, email jobs). The webhook queue
//! does the same per webhook; this is the per-(consumer, site) form of that pattern.
//!
//! Each (consumer, site) has a cursor row in `feed_cursors`. [`next_page`] opens a queue
//! transaction, locks that row (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so another node
//! skips the site; the writer lock on SQLite) and reads the next page after the cursor; the
//! caller records what the page brought through [`Page::db`] and [`Page::commit`] moves the
//! cursor past the page in the same transaction. So every message is handled once, by one
//! node, and a crash before the commit leaves the page to be read again.
//!
//! A site seen for the first time starts at the beginning of its feed if it was created
//! after the migration that introduced the consumers (version 5), else at the feed's head:
//! upgrading a server must not send emails about last year's orders.

use sqlx::Row;

use crate::feed::Cursor;
use crate::store::{on_db, stored_event, Db, Dialect, Store, StoreError, StoredEvent, WriteTx, EVENT_COLUMNS};

/// The migration whose time decides where a site's cursors start.
const CONSUMERS_MIGRATION: i64 = 5;

/// A stored message and its position in the feed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its position.
    pub cursor: Cursor,
    /// The message.
    pub stored: StoredEvent,
}

/// A page of one site's feed, read under the lock of the consumer's cursor row.
pub struct Page<'a> {
    tx: WriteTx<'a>,
    consumer: &'static str,
    /// The site.
    pub site_id: String,
    /// The messages, in feed order (never empty).
    pub entries: Vec<Entry>,
}

impl Page<'_> {
    /// The transaction's connection, for recording what the page brought.
    pub fn db(&mut self) -> Db<'_> {
        self.tx.db()
    }

    /// Moves the cursor past the page and commits.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let last = self.entries.last().map(|e| e.cursor).unwrap_or_default();
        let mut db = self.tx.db();
        on_db!(&mut db, |c, _d| {
            sqlx::query("UPDATE feed_cursors SET cursor_tx = $1, cursor_seq = $2 WHERE consumer = $3 AND site_id = $4")
                .bind(last.tx as i64)
                .bind(last.seq)
                .bind(self.consumer)
                .bind(&self.site_id)
                .execute(&mut *c)
                .await?;
        });
        self.tx.commit().await
    }
}

/// The sites whose feed may hold something new for `consumer`: every site without a cursor
/// yet, and those with a message after their cursor (a read without locks, so that idle
/// sites cost no write transaction).
pub async fn sites_with_news(store: &Store, consumer: &str) -> Result<Vec<String>, StoreError> {
    let mut conn = store.connection().await?;
    let mut db = conn.db();
    let sites: Vec<(String, Option<i64>, Option<i64>)> = on_db!(&mut db, |c, _d| {
        sqlx::query_as(
            "SELECT s.id, f.cursor_tx, f.cursor_seq FROM sites s \
             LEFT JOIN feed_cursors f ON f.site_id = s.id AND f.consumer = $1 ORDER BY s.id",
        )
        .bind(consumer)
        .fetch_all(&mut *c)
        .await?
    });
    let mut out = Vec::new();
    for (site_id, tx, seq) in sites {
        let (Some(tx), Some(seq)) = (tx, seq) else {
            out.push(site_id);
            continue;
        };
        if !read(&mut db, &site_id, Cursor { tx: tx as u64, seq }, 1).await?.is_empty() {
            out.push(site_id);
        }
    }
    Ok(out)
}

/// The next page (up to `limit` messages) of `site_id`'s feed for `consumer`, under the
/// lock of its cursor; `None` when another node holds it or nothing is new.
pub async fn next_page<'a>(
    store: &'a Store,
    consumer: &'static str,
    site_id: &str,
    limit: i64,
) -> Result<Option<Page<'a>>, StoreError> {
    let mut tx = store.queue_tx().await?;
    let mut db = tx.db();
    let start = start_of(&mut db, site_id).await?;
    let row: Option<(i64, i64)> = on_db!(&mut db, |c, d| {
        sqlx::query(
            "INSERT INTO feed_cursors (consumer, site_id, cursor_tx, cursor_seq) \
             SELECT $1, id, $3, $4 FROM sites WHERE id = $2 ON CONFLICT (consumer, site_id) DO NOTHING",
        )
        .bind(consumer)
        .bind(site_id)
        .bind(start.tx as i64)
        .bind(start.seq)
        .execute(&mut *c)
        .await?;
        let lock = match d {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!("SELECT cursor_tx, cursor_seq FROM feed_cursors WHERE consumer = $1 AND site_id = $2{lock}");
        sqlx::query_as(&sql).bind(consumer).bind(site_id).fetch_optional(&mut *c).await?
    });
    // Nothing to do ends the transaction at once (committing the new cursor row, if any):
    // a transaction left open in the pool would hold back every site's feed on PostgreSQL.
    let Some((cursor_tx, cursor_seq)) = row else {
        tx.commit().await?;
        return Ok(None);
    };
    let entries = read(&mut db, site_id, Cursor { tx: cursor_tx as u64, seq: cursor_seq }, limit).await?;
    if entries.is_empty() {
        tx.commit().await?;
        return Ok(None);
    }
    Ok(Some(Page { tx, consumer, site_id: site_id.to_string(), entries }))
}

/// Where a new cursor of `site_id` starts (see the module doc).
async fn start_of(db: &mut Db<'_>, site_id: &str) -> Result<Cursor, StoreError> {
    let old: Option<i64> = on_db!(db, |c, _d| {
        sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM sites s, nudge_migrations m \
             WHERE s.id = $1 AND m.version = $2 AND s.created_ms < m.applied_ms",
        )
        .bind(site_id)
        .bind(CONSUMERS_MIGRATION)
        .fetch_optional(&mut *c)
        .await?
    });
    if old.is_none() {
        return Ok(Cursor::default());
    }
    let head: Option<(String, i64)> = on_db!(db, |c, d| {
        let sql = match d {
            Dialect::Sqlite => "SELECT '0', seq FROM events WHERE site_id = $1 ORDER BY seq DESC LIMIT 1",
            Dialect::Postgres => {
                "SELECT tx::text, seq FROM events WHERE site_id = $1 \
                 AND tx < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY tx DESC, seq DESC LIMIT 1"
            }
        };
        sqlx::query_as(sql).bind(site_id).fetch_optional(&mut *c).await?
    });
    Ok(head.map_or(Cursor::default(), |(tx, seq)| Cursor { tx: tx.parse().unwrap_or(0), seq }))
}

/// Up to `limit` messages of `site_id` after `after`, in feed order (see `crate::feed`).
async fn read(db: &mut Db<'_>, site_id: &str, after: Cursor, limit: i64) -> Result<Vec<Entry>, StoreError> {
    Ok(on_db!(db, |c, d| {
        let query = match d {
            Dialect::Sqlite => format!(
                "SELECT {EVENT_COLUMNS}, '0' FROM events WHERE site_id = $1 AND seq > $3 AND $2 = $2 \
                 ORDER BY seq LIMIT $4"
            ),
            Dialect::Postgres => format!(
                "SELECT {EVENT_COLUMNS}, tx::text FROM events WHERE site_id = $1 \
                 AND (tx, seq) > ($2::text::xid8, $3) AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY tx, seq LIMIT $4"
            ),
        };
        let rows = sqlx::query(&query)
            .bind(site_id)
            .bind(after.tx.to_string())
            .bind(after.seq)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| {
                let stored = stored_event(r)?;
                let tx: String = r.try_get(9)?;
                Ok(Entry { cursor: Cursor { tx: tx.parse().unwrap_or(0), seq: stored.seq }, stored })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    }))
}
