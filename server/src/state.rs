//! What every request handler shares (`App`) and the server's clock. Kept apart from the
//! router (`crate::app`), which names every handler, so that handlers can use the state
//! without importing the module that imports them.

use std::sync::Arc;

use crate::catalog::feed::FeedCache;
use crate::config::Config;
use crate::limits::RateLimiter;
use crate::sites::SiteCache;
use crate::store::Store;

/// What every request handler shares. Nothing here is needed for correctness across
/// nodes: the cache and rate buckets are per node, the data is in the store.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub store: Store,
    /// Sites by write key.
    pub sites: SiteCache,
    /// Requests per write key.
    pub key_limiter: RateLimiter,
    /// Requests per client address.
    pub addr_limiter: RateLimiter,
    /// Whether `X-Forwarded-For` names the client.
    pub trust_forwarded_for: bool,
    /// Built catalogue feeds per site.
    pub catalog: FeedCache,
}

impl App {
    /// State for `store` with the limits in `config`.
    pub fn new(store: Store, config: &Config) -> Arc<App> {
        Arc::new(App {
            store,
            sites: SiteCache::default(),
            key_limiter: RateLimiter::new(config.key_rate),
            addr_limiter: RateLimiter::new(config.addr_rate),
            trust_forwarded_for: config.trust_forwarded_for,
            catalog: FeedCache::new(config.catalog_refresh),
        })
    }
}

/// Milliseconds since the epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
