//! Sites: creating one (random id and keys, normalized origins) and finding one by write
//! key on every request, through a short-lived in-memory cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{on_db, Db, Site, Store, StoreError};

/// How long a site found by write key is reused before it is read again. Key or origin
/// changes reach every node within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Most sites cached at once; past it the cache is cleared.
const CACHE_MAX: usize = 10_000;

/// Whether a site with this id exists (the CLI commands that name a site check it first).
pub async fn exists(db: &mut Db<'_>, site_id: &str) -> Result<bool, StoreError> {
    let row: Option<i64> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM sites WHERE id = $1")
            .bind(site_id)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(row.is_some())
}

/// `n` random bytes as lowercase hex, from the operating system.
pub fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks and normalizes a browser origin as browsers send it: `scheme://host[:port]`,
/// lowercase, without a default port or a trailing slash. `*` (any origin) passes as is.
pub fn normalize_origin(origin: &str) -> Result<String, String> {
    let origin = origin.trim();
    if origin == "*" {
        return Ok(origin.into());
    }
    let lower = origin.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| format!("origin {origin:?} has no scheme://"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("origin {origin:?} must be http:// or https://"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!("origin {origin:?} must be scheme://host[:port], without a path"));
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host = rest.strip_suffix(default_port).unwrap_or(rest);
    Ok(format!("{scheme}://{host}"))
}

/// Makes a site with fresh random keys (not yet stored).
pub fn new_site(name: &str, origins: &[String], now_ms: i64) -> Result<Site, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a site needs a --name".into());
    }
    let mut normalized = origins.iter().map(|o| normalize_origin(o)).collect::<Result<Vec<_>, _>>()?;
    normalized.sort();
    normalized.dedup();
    let random = |n| random_hex(n).map_err(|e| format!("no randomness from the operating system: {e}"));
    Ok(Site {
        id: format!("site_{}", random(10)?),
        name: name.into(),
        write_key: format!("wk_{}", random(16)?),
        secret_key: format!("sk_{}", random(24)?),
        origins: normalized,
        created_ms: now_ms,
    })
}

/// Sites by write key (and, separately, by secret key), each kept for [`CACHE_TTL`].
/// Unknown keys are not cached, so a site created a moment ago works at once.
#[derive(Debug, Default)]
pub struct SiteCache {
    entries: Mutex<HashMap<String, (Arc<Site>, Instant)>>,
    secrets: Mutex<HashMap<String, (Arc<Site>, Instant)>>,
}

impl SiteCache {
    /// The site for `write_key`, from the cache or the store.
    pub async fn by_write_key(&self, store: &Store, write_key: &str) -> Result<Option<Arc<Site>>, StoreError> {
        let now = Instant::now();
        if let Some((site, at)) = self.lock().get(write_key) {
            if now.duration_since(*at) < CACHE_TTL {
                return Ok(Some(site.clone()));
            }
        }
        let Some(site) = store.site_by_write_key(write_key).await? else { return Ok(None) };
        let site = Arc::new(site);
        let mut entries = self.lock();
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(write_key.to_string(), (site.clone(), now));
        Ok(Some(site))
    }

    /// The site whose secret key this is, from the cache or the store. Kept apart from the
    /// write keys, so that one kind of key can never pass for the other.
    pub async fn by_secret_key(&self, store: &Store, secret_key: &str) -> Result<Option<Arc<Site>>, StoreError> {
        let now = Instant::now();
        let lock = || self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((site, at)) = lock().get(secret_key) {
            if now.duration_since(*at) < CACHE_TTL {
                return Ok(Some(site.clone()));
            }
        }
        let mut conn = store.connection().await?;
        let write_key: Option<String> = on_db!(&mut conn.db(), |c, _d| {
            sqlx::query_scalar("SELECT write_key FROM sites WHERE secret_key = $1")
                .bind(secret_key)
                .fetch_optional(&mut *c)
                .await?
        });
        drop(conn);
        let Some(write_key) = write_key else { return Ok(None) };
        let Some(site) = store.site_by_write_key(&write_key).await? else { return Ok(None) };
        let site = Arc::new(site);
        let mut secrets = lock();
        if secrets.len() >= CACHE_MAX {
            secrets.clear();
        }
        secrets.insert(secret_key.to_string(), (site.clone(), now));
        Ok(Some(site))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Site>, Instant)>> {
        // A poisoned cache is still a valid cache.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_like_browsers_send_them() {
        assert_eq!(normalize_origin("https://Shop.Example/").unwrap(), "https://shop.example");
        assert_eq!(normalize_origin("https://shop.example:443").unwrap(), "https://shop.example");
        assert_eq!(normalize_origin("http://localhost:8780").unwrap(), "http://localhost:8780");
        assert_eq!(normalize_origin("*").unwrap(), "*");
        assert!(normalize_origin("shop.example").is_err());
        assert!(normalize_origin("https://shop.example/path").is_err());
        assert!(normalize_origin("ftp://shop.example").is_err());
    }

    #[test]
    fn new_sites_get_distinct_keys() {
        let a = new_site("Shop", &["https://a.example".into()], 1).unwrap();
        let b = new_site("Shop", &[], 1).unwrap();
        assert_ne!(a.write_key, b.write_key);
        assert_ne!(a.secret_key, b.secret_key);
        assert!(a.id.starts_with("site_") && a.id.len() == 25);
        assert!(a.write_key.starts_with("wk_") && a.write_key.len() == 35);
        assert!(a.secret_key.starts_with("sk_") && a.secret_key.len() == 51);
        assert!(new_site(" ", &[], 1).is_err());
    }
}
