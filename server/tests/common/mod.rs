//! Test harness: a real `nudge-server` router on a real socket (127.0.0.1, a free port),
//! over a fresh database: a SQLite file in its own temporary directory, or its own schema
//! in the PostgreSQL at `NUDGE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Both are removed when the test ends, even
//! when it fails.

#![allow(dead_code)] // each test file uses a different part

use std::path::PathBuf;

use nudge_server::app::{self, App};
use nudge_server::config::{Config, Database};
use nudge_server::sites::{new_site, random_hex};
use nudge_server::store::{Site, Store, StoredEvent};
use sqlx::Connection;
use tokio::sync::oneshot;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `async fn NAME(backend: Backend)` once per backend, as `NAME::sqlite` and
/// `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::common::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )*};
}

/// The PostgreSQL the tests use.
pub fn postgres_url() -> String {
    std::env::var("NUDGE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own for one test, dropped with it.
pub struct TestDb {
    pub database: Database,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Schema(String),
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let tag = random_hex(8).expect("randomness");
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("nudge-test-{tag}"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let path = dir.join("nudge.db").to_string_lossy().into_owned();
                TestDb { database: Database::Sqlite(path), cleanup: Cleanup::Dir(dir) }
            }
            Backend::Postgres => {
                let schema = format!("t_{tag}");
                let base = postgres_url();
                let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to the test PostgreSQL");
                sqlx::raw_sql(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
                conn.close().await.ok();
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options[search_path]={schema}");
                TestDb { database: Database::Postgres(url), cleanup: Cleanup::Schema(schema) }
            }
        }
    }

    /// The database as a `DATABASE_URL` value.
    pub fn url(&self) -> String {
        match &self.database {
            Database::Sqlite(path) => format!("sqlite://{path}"),
            Database::Postgres(url) => url.clone(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema(schema) => {
                // Drop may run inside the test's runtime, so use a thread with its own.
                let schema = schema.clone();
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    rt.block_on(async {
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_url()).await {
                            let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                                .execute(&mut conn)
                                .await;
                            let _ = conn.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// An origin the test site allows.
pub const ALLOWED_ORIGIN: &str = "https://shop.example";

/// A running server with one site.
pub struct TestServer {
    pub url: String,
    pub store: Store,
    pub site: Site,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub db: TestDb,
}

/// Limits off, so only tests about limits meet them.
pub fn unlimited() -> Config {
    Config {
        key_rate: nudge_server::config::Rate::UNLIMITED,
        addr_rate: nudge_server::config::Rate::UNLIMITED,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::with_config(backend, unlimited()).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> TestServer {
        let db = TestDb::new(backend).await;
        let store = Store::open(&db.database, 8).await.expect("open store");
        let site = new_site("Test shop", &[ALLOWED_ORIGIN.into()], app::now_ms()).expect("site");
        store.create_site(&site).await.expect("create site");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let app = App::new(store.clone(), &config);
        let task = tokio::spawn(app::serve(listener, app, async {
            let _ = rx.await;
        }));
        TestServer { url, store, site, client: reqwest::Client::new(), shutdown: Some(tx), task: Some(task), db }
    }

    /// A JSON POST to `path` with the site's write key as Basic user.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.post_typed(path, "application/json")
    }

    /// A POST to `path` with this `Content-Type` and the site's write key as Basic user.
    pub fn post_typed(&self, path: &str, content_type: &str) -> reqwest::RequestBuilder {
        let request = self.client.post(format!("{}{path}", self.url)).header("content-type", content_type);
        request.basic_auth(&self.site.write_key, Some(""))
    }

    /// A JSON POST to `path` without credentials.
    pub fn post_without_key(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.url)).header("content-type", "application/json")
    }

    /// Every event of the site that a client sent (not the `Stage Changed` messages folds
    /// derive), in seq order.
    pub async fn events(&self) -> Vec<StoredEvent> {
        let all = self.store.events_after(&self.site.id, 0, 100_000).await.expect("read events");
        all.into_iter().filter(|e| !is_derived(e)).collect()
    }

    /// A request to `path` with the site's secret key as Bearer token.
    pub fn secret(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url)).bearer_auth(&self.site.secret_key)
    }

    /// `GET path` with the secret key: status and JSON.
    pub async fn secret_get(&self, path: &str) -> (u16, serde_json::Value) {
        reply(self.secret(reqwest::Method::GET, path).send().await.expect("send")).await
    }

    /// Sends messages in one batch without `sentAt` (their timestamps are kept as they
    /// are) and checks the 200.
    pub async fn send(&self, messages: Vec<serde_json::Value>) -> serde_json::Value {
        let body = serde_json::json!({ "batch": messages });
        let (status, json) = reply(self.post("/v1/batch").body(body.to_string()).send().await.expect("send")).await;
        assert_eq!(status, 200, "{json}");
        json
    }

    /// Every stored event of the site, derived ones included, in seq order.
    pub async fn all_events(&self) -> Vec<StoredEvent> {
        self.store.events_after(&self.site.id, 0, 100_000).await.expect("read events")
    }

    /// Stops the server after requests in flight, and closes the store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server");
        }
        self.store.close().await;
    }
}

/// Whether the server made this message (a `Stage Changed` found by a fold).
pub fn is_derived(e: &StoredEvent) -> bool {
    e.event.message_id.starts_with("nudge-stage-")
}

/// A track message with a given messageId.
pub fn track(message_id: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "anon-1",
        "messageId": message_id,
        "timestamp": "2027-01-15T09:00:00.000Z",
        "properties": { "product_id": "tv-1", "category": "TVs", "price": 499.0 }
    })
}

/// A batch body of messages.
pub fn batch(messages: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "batch": messages, "sentAt": "2027-01-15T09:00:01.000Z" })
}

/// A response's status and JSON body.
pub async fn reply(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

/// A deterministic pseudo-random sequence (xorshift64), for shuffles the tests can repeat.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
