//! The transaction the background queues (webhooks, emails, cart timers) run in, and the read
//! that tells whether one has anything due (their queries live with each queue).

use super::{on_db, Store, StoreError, WriteTx};

impl Store {
    /// A write transaction without a site's lock, for queue bookkeeping: on SQLite it holds
    /// the writer lock (one writer at a time is all the exclusion SQLite needs); on
    /// PostgreSQL it is a plain transaction, and row locks (`FOR UPDATE SKIP LOCKED`)
    /// decide which node does what, so queue work never waits on a site's ingest.
    pub async fn queue_tx(&self) -> Result<WriteTx<'_>, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => {
                let writer = s.writer().lock().await;
                WriteTx::Sqlite(s.pool().begin_with("BEGIN IMMEDIATE").await?, writer)
            }
            Store::Postgres(s) => WriteTx::Postgres(s.pool().begin().await?),
        })
    }

    /// Whether any row of a queue table is due: `sql` is a `SELECT ... LIMIT 1` with `$1` the
    /// time. Asked with a plain read before [`Store::queue_tx`], so that an idle queue costs
    /// no write transaction (on SQLite, no turn at the writer lock that ingest uses).
    pub async fn any_due(&self, sql: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut conn = self.connection().await?;
        let mut db = conn.db();
        let row: Option<i64> =
            on_db!(&mut db, |c, _d| sqlx::query_scalar(sql).bind(now_ms).fetch_optional(&mut *c).await?);
        Ok(row.is_some())
    }
}
