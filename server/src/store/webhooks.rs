//! The transaction the webhook queue runs in (its queries live in `crate::webhooks`).

use super::{Store, StoreError, WriteTx};

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
}
