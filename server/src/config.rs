//! Server settings with their defaults. `cli` fills them from flags and environment
//! variables; `app` reads them. Kept apart from parsing so tests can build one directly.

use std::net::SocketAddr;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file, created if missing (the zero-configuration default).
    Sqlite(String),
    /// A PostgreSQL URL (`postgres://...`); `?options[search_path]=...` selects a schema.
    Postgres(String),
}

impl Database {
    /// Reads `sqlite://PATH`, `sqlite:PATH`, `postgres://...` or `postgresql://...`.
    pub fn from_url(url: &str) -> Result<Database, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("DATABASE_URL sqlite: needs a file path".into());
            }
            Ok(Database::Sqlite(path.to_string()))
        } else {
            Err(format!("DATABASE_URL must start with postgres://, postgresql:// or sqlite://, not {url:?}"))
        }
    }

    /// A description safe for logs (no password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("SQLite file {path}"),
            Database::Postgres(url) => {
                let scheme_end = url.find("://").map_or(0, |i| i + 3);
                let host_start = url[scheme_end..].rfind('@').map_or(scheme_end, |i| scheme_end + i + 1);
                let host_end = url[host_start..].find(['/', '?']).map_or(url.len(), |i| host_start + i);
                format!("PostgreSQL at {}", &url[host_start..host_end])
            }
        }
    }
}

/// The default SQLite file, relative to the working directory.
pub const DEFAULT_DB_PATH: &str = "nudge.db";
/// The default listening address: loopback only, so a newcomer exposes nothing by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8700";

/// A token bucket's settings: `per_second` tokens refill continuously up to `burst`.
/// A `per_second` of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate { per_second: 0.0, burst: 0.0 };
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The database.
    pub database: Database,
    /// Most database connections the pool opens.
    pub db_connections: u32,
    /// Requests per write key.
    pub key_rate: Rate,
    /// Requests per client address.
    pub addr_rate: Rate,
    /// Take the client address from the last `X-Forwarded-For` entry (set this only behind
    /// a proxy that appends it), instead of the socket's peer address.
    pub trust_forwarded_for: bool,
    /// The webhook delivery worker.
    pub webhooks: crate::webhooks::worker::Settings,
    /// The cart abandonment worker.
    pub abandon: crate::abandon::Settings,
    /// Emails (SMTP, links, reminder times).
    pub email: crate::email::Settings,
    /// How long a built catalogue feed is served before product popularity is counted
    /// again (a new catalogue is served at once).
    pub catalog_refresh: std::time::Duration,
}

impl Default for Config {
    /// Generous limits: a load test of batches of 100 from one address reaches 10,000
    /// events per second with room to spare.
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            database: Database::Sqlite(DEFAULT_DB_PATH.into()),
            db_connections: 10,
            key_rate: Rate { per_second: 1000.0, burst: 2000.0 },
            addr_rate: Rate { per_second: 500.0, burst: 1000.0 },
            trust_forwarded_for: false,
            webhooks: crate::webhooks::worker::Settings::default(),
            abandon: crate::abandon::Settings::default(),
            email: crate::email::Settings::default(),
            catalog_refresh: crate::catalog::feed::DEFAULT_REFRESH,
        }
    }
}
