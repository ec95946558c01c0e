//! The migrations, embedded in the binary. Each backend's runner applies, in one
//! transaction under a lock, those whose version is not yet in `nudge_migrations`.

/// One schema change.
pub(crate) struct Migration {
    /// Applied in increasing order; never reused.
    pub version: i64,
    /// Short name, recorded with the version.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// SQLite's migrations.
pub(crate) const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../migrations/sqlite/0001_init.sql") },
    Migration { version: 2, name: "profiles", sql: include_str!("../../migrations/sqlite/0002_profiles.sql") },
    Migration { version: 3, name: "webhooks", sql: include_str!("../../migrations/sqlite/0003_webhooks.sql") },
    Migration { version: 4, name: "campaigns", sql: include_str!("../../migrations/sqlite/0004_campaigns.sql") },
    Migration {
        version: 5,
        name: "abandon_email",
        sql: include_str!("../../migrations/sqlite/0005_abandon_email.sql"),
    },
    Migration { version: 6, name: "catalog", sql: include_str!("../../migrations/sqlite/0006_catalog.sql") },
];

/// PostgreSQL's migrations, the same changes in its dialect.
pub(crate) const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../migrations/postgres/0001_init.sql") },
    Migration { version: 2, name: "profiles", sql: include_str!("../../migrations/postgres/0002_profiles.sql") },
    Migration { version: 3, name: "webhooks", sql: include_str!("../../migrations/postgres/0003_webhooks.sql") },
    Migration { version: 4, name: "campaigns", sql: include_str!("../../migrations/postgres/0004_campaigns.sql") },
    Migration {
        version: 5,
        name: "abandon_email",
        sql: include_str!("../../migrations/postgres/0005_abandon_email.sql"),
    },
    Migration { version: 6, name: "catalog", sql: include_str!("../../migrations/postgres/0006_catalog.sql") },
];

/// The bookkeeping table, valid in both dialects.
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS nudge_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_ms BIGINT NOT NULL
)";

/// Milliseconds since the epoch, for bookkeeping.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
