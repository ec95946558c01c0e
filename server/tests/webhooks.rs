//! Webhooks on both backends, delivered to a real HTTP receiver on 127.0.0.1: signatures,
//! idempotency keys and filters; retries with backoff; a queue that survives a restart;
//! giving up after 24 hours (on an injected clock); and two real `nudge-server` processes
//! on one PostgreSQL ingesting the same stream, delivering each webhook exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{reply, track, Backend, TestDb, TestServer};
use nudge_server::app;
use nudge_server::sites::new_site;
use nudge_server::store::Store;
use nudge_server::webhooks::signing::{idempotency_key, verify};
use nudge_server::webhooks::worker::{system_clock, Clock, Round, Settings, Worker, WorkerHandle};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_nudge-server");

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    key: String,
    signature: String,
    attempt: String,
    body: String,
    at: Instant,
    answered: u16,
}

/// How the receiver answers the n-th request (0-based) for an idempotency key.
type Answer = Arc<dyn Fn(usize) -> u16 + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    answer: Answer,
}

/// A webhook receiver: a real HTTP server on 127.0.0.1 that records every request.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(answer: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Receiver {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState { hits: Arc::clone(&hits), answer: Arc::new(answer) };
        let router = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { url, hits, task }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the hits, or panics after `limit`.
    async fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let start = Instant::now();
        loop {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            assert!(start.elapsed() < limit, "timed out waiting for {what}; got {} hits: {hits:#?}", hits.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(state): State<ReceiverState>, uri: Uri, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let key = header("nudge-idempotency-key");
    let mut hits = state.hits.lock().unwrap();
    let seen = hits.iter().filter(|h| h.key == key).count();
    let answered = (state.answer)(seen);
    hits.push(Hit {
        path: uri.path().to_string(),
        key,
        signature: header("nudge-signature"),
        attempt: header("nudge-attempt"),
        body,
        at: Instant::now(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

/// Fast settings for tests: a short poll, a short backoff.
fn fast(backoff_ms: u64) -> Settings {
    Settings {
        poll: Duration::from_millis(10),
        backoff_base: Duration::from_millis(backoff_ms),
        timeout: Duration::from_secs(5),
        ..Settings::default()
    }
}

fn worker(store: &Store, settings: Settings, clock: Clock) -> WorkerHandle {
    Worker::new(store.clone(), settings, clock).expect("worker").spawn()
}

/// Registers a webhook through the API: (id, secret).
async fn register(server: &TestServer, url: &str, events: Option<&[&str]>) -> (String, String) {
    let body = match events {
        Some(e) => json!({ "url": url, "events": e }),
        None => json!({ "url": url }),
    };
    let request = server.secret(reqwest::Method::POST, "/v1/webhooks").json(&body);
    let (status, out) = reply(request.send().await.unwrap()).await;
    assert_eq!(status, 201, "{out}");
    (out["id"].as_str().unwrap().to_string(), out["secret"].as_str().unwrap().to_string())
}

/// Checks one hit against the stored message it carries: valid signature, the right
/// idempotency key, the stored message as `message`. Returns the body as JSON.
fn check_hit(hit: &Hit, webhook_id: &str, secret: &str, now_s: i64) -> Value {
    assert!(verify(secret, &hit.signature, hit.body.as_bytes(), now_s, 300), "bad signature: {hit:?}");
    assert!(!verify("whsec_wrong", &hit.signature, hit.body.as_bytes(), now_s, 300));
    let body: Value = serde_json::from_str(&hit.body).expect("JSON body");
    let message_id = body["messageId"].as_str().unwrap();
    assert_eq!(body["message"]["messageId"], message_id);
    assert_eq!(body["webhookId"], webhook_id);
    assert_eq!(hit.key, idempotency_key(webhook_id, message_id));
    assert_eq!(body["id"], hit.key);
    body
}

async fn signed_deliveries_follow_the_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let receiver = Receiver::start(|_| 200).await;
    // Messages stored before a webhook exists are not delivered to it.
    server.send(vec![track("before-1")]).await;
    let before: BTreeSet<String> = server.all_events().await.into_iter().map(|e| e.event.message_id).collect();
    let (stage, stage_secret) = register(&server, &format!("{}/stage", receiver.url), Some(&["Stage Changed"])).await;
    let (added, added_secret) = register(&server, &format!("{}/added", receiver.url), Some(&["Product Added"])).await;
    let (all, all_secret) = register(&server, &format!("{}/all", receiver.url), None).await;
    let handle = worker(&server.store, fast(50), system_clock());

    let mut added_msg = track("m-added");
    added_msg["event"] = json!("Product Added");
    added_msg["anonymousId"] = json!("anon-2");
    let mut identify = json!({ "type": "identify", "userId": "u-1", "anonymousId": "anon-3", "messageId": "m-id" });
    identify["traits"] = json!({ "plan": "gold" });
    server.send(vec![track("m-1"), added_msg, identify]).await;

    let stored = server.all_events().await;
    let after: Vec<_> = stored.iter().filter(|e| !before.contains(&e.event.message_id)).collect();
    let expect = |filter: &dyn Fn(&&nudge_server::store::StoredEvent) -> bool| -> BTreeSet<String> {
        after.iter().filter(|e| filter(e)).map(|e| e.event.message_id.clone()).collect()
    };
    let want_stage = expect(&|e| e.event.event.as_deref() == Some("Stage Changed"));
    let want_added = expect(&|e| e.event.event.as_deref() == Some("Product Added"));
    let want_all = expect(&|_| true);
    assert!(!want_stage.is_empty(), "the stream has stage changes");
    assert_eq!(want_added.len(), 1);
    assert_eq!(want_all.len(), want_stage.len() + 3);

    let total = want_stage.len() + want_added.len() + want_all.len();
    receiver.wait_until(Duration::from_secs(10), "every delivery", |h| h.len() >= total).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // nothing more arrives
    let hits = receiver.hits();
    assert_eq!(hits.len(), total, "{hits:#?}");
    let now_s = app::now_ms() / 1000;
    for (path, id, secret, want) in [
        ("/stage", &stage, &stage_secret, &want_stage),
        ("/added", &added, &added_secret, &want_added),
        ("/all", &all, &all_secret, &want_all),
    ] {
        let got: BTreeSet<String> = hits
            .iter()
            .filter(|h| h.path == path)
            .map(|h| check_hit(h, id, secret, now_s)["messageId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&got, want, "{path}");
    }
    // The payload carries the stored message as it is.
    let hit = hits.iter().find(|h| h.path == "/added").unwrap();
    let body: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!((&body["type"], &body["event"]), (&json!("track"), &json!("Product Added")));
    assert_eq!(body["message"]["properties"]["product_id"], "tv-1");
    assert_eq!(body["siteId"], server.site.id.as_str());
    assert_eq!(hit.attempt, "1");

    // The API lists them with their counts, and deliveries one by one.
    let (status, listed) = server.secret_get("/v1/webhooks").await;
    assert_eq!(status, 200);
    let hooks = listed["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 3);
    assert!(hooks.iter().all(|w| w.get("secret").is_none()));
    let all_listed = hooks.iter().find(|w| w["id"] == all.as_str()).unwrap();
    assert_eq!(all_listed["deliveries"], json!({ "pending": 0, "delivered": want_all.len(), "failed": 0 }));
    let (status, page) = server.secret_get(&format!("/v1/webhooks/{added}/deliveries")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["deliveries"][0]["status"], "delivered");
    assert_eq!(page["deliveries"][0]["messageId"], "m-added");
    assert_eq!(page["deliveries"][0]["lastStatus"], 200);

    // Removing a webhook stops its deliveries; another site's key cannot see or remove it.
    let (status, _) = reply(server.secret(reqwest::Method::DELETE, "/v1/webhooks/wh_nope").send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) =
        reply(server.secret(reqwest::Method::DELETE, &format!("/v1/webhooks/{all}")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let write_key =
        server.client.get(format!("{}/v1/webhooks", server.url)).basic_auth(&server.site.write_key, Some(""));
    assert_eq!(write_key.send().await.unwrap().status(), 401);
    let bad = server.secret(reqwest::Method::POST, "/v1/webhooks").json(&json!({ "url": "ftp://x.example/" }));
    assert_eq!(bad.send().await.unwrap().status(), 400);
    let before = receiver.hits().len();
    let known: BTreeSet<String> = server.all_events().await.into_iter().map(|e| e.event.message_id).collect();
    let mut more = track("m-2");
    more["event"] = json!("Product Added");
    server.send(vec![more]).await;
    let mut want: Vec<&str> = Vec::new();
    for e in server.all_events().await.iter().filter(|e| !known.contains(&e.event.message_id)) {
        match e.event.event.as_deref() {
            Some("Product Added") => want.push("/added"),
            Some("Stage Changed") => want.push("/stage"),
            _ => {}
        }
    }
    want.sort_unstable();
    receiver.wait_until(Duration::from_secs(10), "the later deliveries", |h| h.len() >= before + want.len()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut late: Vec<String> = receiver.hits().into_iter().skip(before).map(|h| h.path).collect();
    late.sort_unstable();
    assert_eq!(late, want, "nothing for the removed webhook");

    handle.stop().await;
    server.stop().await;
}

async fn failing_receiver_gets_retries_with_backoff(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Fails twice (a 500, then a 429), then succeeds.
    let receiver = Receiver::start(|n| [500, 429, 200][n.min(2)]).await;
    let (id, secret) = register(&server, &format!("{}/hook", receiver.url), Some(&["Product Viewed"])).await;
    let handle = worker(&server.store, fast(100), system_clock());
    server.send(vec![track("m-1")]).await;

    let hits = receiver.wait_until(Duration::from_secs(10), "three attempts", |h| h.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits_after = receiver.hits();
    assert_eq!(hits_after.len(), 3, "no attempt after the success: {hits_after:#?}");
    let statuses: Vec<u16> = hits.iter().map(|h| h.answered).collect();
    assert_eq!(statuses, [500, 429, 200]);
    let attempts: Vec<&str> = hits.iter().map(|h| h.attempt.as_str()).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    // Same key and the same body on every attempt, each signed.
    let now_s = app::now_ms() / 1000;
    for hit in &hits {
        check_hit(hit, &id, &secret, now_s);
        assert_eq!((&hit.key, &hit.body), (&hits[0].key, &hits[0].body));
    }
    // Backoff with jitter: the first wait is 50..100 ms, the second 100..200 ms.
    let (first, second) = (hits[1].at - hits[0].at, hits[2].at - hits[1].at);
    assert!(first >= Duration::from_millis(45), "first wait {first:?}");
    assert!(second >= Duration::from_millis(95), "second wait {second:?}");
    assert!(second < Duration::from_secs(2) && first < Duration::from_secs(2), "{first:?} {second:?}");

    let (_, page) = server.secret_get(&format!("/v1/webhooks/{id}/deliveries")).await;
    let d = &page["deliveries"][0];
    assert_eq!((&d["status"], &d["attempts"], &d["lastStatus"]), (&json!("delivered"), &json!(3), &json!(200)));
    handle.stop().await;
    server.stop().await;
}

async fn the_queue_survives_a_restart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let receiver = Receiver::start(|n| if n == 0 { 503 } else { 200 }).await;
    let (id, secret) = register(&server, &format!("{}/hook", receiver.url), None).await;
    let messages: Vec<Value> = (0..20).map(|i| track(&format!("m-{i}"))).collect();
    server.send(messages).await;
    let expected: BTreeSet<String> = server.all_events().await.into_iter().map(|e| e.event.message_id).collect();
    let n = expected.len();

    // The first node tries each once (all fail) and stops before the retries are due.
    let store = Store::open(&server.db.database, 4).await.expect("open");
    let first = worker(&store, fast(2_000), system_clock());
    receiver.wait_until(Duration::from_secs(10), "first attempts", |h| h.len() >= n).await;
    first.stop().await;
    store.close().await;
    let (_, page) = server.secret_get(&format!("/v1/webhooks/{id}/deliveries?status=pending&limit=500")).await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), n, "all pending after the stop: {page}");

    // A new process on the same database delivers them.
    let store = Store::open(&server.db.database, 4).await.expect("reopen");
    let second = worker(&store, fast(2_000), system_clock());
    let hits = receiver
        .wait_until(Duration::from_secs(15), "the retries", |h| h.iter().filter(|h| h.answered == 200).count() >= n)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    second.stop().await;
    store.close().await;
    let delivered: Vec<&Hit> = hits.iter().filter(|h| h.answered == 200).collect();
    assert_eq!(receiver.hits().len(), 2 * n, "one failure and one success each");
    let now_s = app::now_ms() / 1000;
    let got: BTreeSet<String> = delivered
        .iter()
        .map(|h| check_hit(h, &id, &secret, now_s)["messageId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, expected);
    server.stop().await;
}

async fn gives_up_after_24_hours(backend: Backend) {
    const HOUR: i64 = 3_600_000;
    let server = TestServer::start(backend).await;
    let receiver = Receiver::start(|_| 500).await;
    let (id, secret) = register(&server, &format!("{}/hook", receiver.url), Some(&["Product Viewed"])).await;
    let start = app::now_ms();
    let now = Arc::new(AtomicI64::new(start));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    // Backoff from 1 minute, on the injected clock; the test runs the worker's rounds itself.
    let settings = Settings { backoff_base: Duration::from_secs(60), ..fast(0) };
    let worker = Worker::new(server.store.clone(), settings, clock).expect("worker");
    server.send(vec![track("m-1")]).await;
    // On PostgreSQL the change feed shows a message once every older transaction has ended,
    // other tests' included: wait for the round that enqueues it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        let r = worker.round().await.unwrap();
        if r.enqueued > 0 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(first, Round { enqueued: 1, attempted: 1 });
    assert_eq!(worker.round().await.unwrap().attempted, 0, "the retry waits for the clock");
    now.store(start + 29_000, Ordering::SeqCst);
    assert_eq!(worker.round().await.unwrap().attempted, 0, "the first wait is at least half the base");

    for at in [2 * 60_000, HOUR, 23 * HOUR, 24 * HOUR - 1] {
        now.store(start + at, Ordering::SeqCst);
        assert_eq!(worker.round().await.unwrap().attempted, 1, "a retry at {at} ms");
    }
    let (_, page) = server.secret_get(&format!("/v1/webhooks/{id}/deliveries")).await;
    let d = &page["deliveries"][0];
    assert_eq!(d["status"], "pending", "{page}");
    // The next attempt is capped at 24 hours after the first, and is the last.
    let next = nudge_server::message::parse_time(d["nextAttemptAt"].as_str().unwrap()).unwrap();
    assert_eq!(next, start + 24 * HOUR);
    now.store(start + 24 * HOUR, Ordering::SeqCst);
    assert_eq!(worker.round().await.unwrap().attempted, 1, "the last attempt");
    now.store(start + 48 * HOUR, Ordering::SeqCst);
    assert_eq!(worker.round().await.unwrap().attempted, 0, "nothing after giving up");
    let seen = 6;
    assert_eq!(receiver.hits().len(), seen);
    let (_, page) = server.secret_get(&format!("/v1/webhooks/{id}/deliveries?status=failed")).await;
    let d = &page["deliveries"][0];
    assert_eq!((&d["status"], &d["attempts"], &d["lastStatus"]), (&json!("failed"), &json!(seen), &json!(500)));
    let (_, listed) = server.secret_get("/v1/webhooks").await;
    assert_eq!(listed["webhooks"][0]["deliveries"]["failed"], 1);
    // Signed with the injected clock's time.
    for hit in receiver.hits() {
        let t: i64 = hit.signature.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        check_hit(&hit, &id, &secret, t);
    }
    server.stop().await;
}

on_both_backends!(
    signed_deliveries_follow_the_filters,
    failing_receiver_gets_retries_with_backoff,
    the_queue_survives_a_restart,
    gives_up_after_24_hours,
);

/// A `nudge-server serve` child process, killed when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(db: &TestDb) -> Node {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", db.url())
            .env("NUDGE_KEY_RATE", "0")
            .env("NUDGE_ADDR_RATE", "0")
            .env("NUDGE_WEBHOOK_POLL_MS", "20")
            .env_remove("NUDGE_DB")
            .env_remove("NUDGE_LISTEN")
            .env_remove("NUDGE_WEBHOOK_WORKER")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn nudge-server");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening line").to_string();
        // Keep draining stdout so that the process never writes to a closed pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        Node { child, url }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A batch of the shared stream: views, adds and checkouts of several shoppers, so folds
/// derive `Stage Changed` messages on both nodes at once.
fn stream_batch(b: usize) -> Value {
    let events = ["Product Viewed", "Product Viewed", "Product Added", "Checkout Started", "Product Viewed"];
    let messages: Vec<Value> = (0..20)
        .map(|i| {
            let n = b * 20 + i;
            let category = ["TVs", "Laptops"][n % 2];
            json!({
                "type": "track",
                "event": events[n % events.len()],
                "anonymousId": format!("anon-{}", n % 7),
                "messageId": format!("s-{n}"),
                "timestamp": nudge::time::to_iso(1_800_000_000_000 + n as u64 * 1_000),
                "properties": { "product_id": format!("p-{}", n % 5), "category": category, "price": 100.0 }
            })
        })
        .collect();
    json!({ "batch": messages })
}

/// The test: two real `nudge-server` processes on one PostgreSQL ingest the same
/// stream at once; each message is stored once and each webhook delivery arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_store_once_and_deliver_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&db.database, 2).await.expect("migrate");
    let site = new_site("Two nodes", &["https://shop.example".into()], app::now_ms()).unwrap();
    store.create_site(&site).await.unwrap();
    let receiver = Receiver::start(|_| 200).await;

    // Webhooks registered with the CLI.
    let add = |path: &str, events: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.env("DATABASE_URL", db.url()).args(["webhook", "add", "--site", &site.id, "--url"]);
        cmd.arg(format!("{}{path}", receiver.url));
        for e in events {
            cmd.args(["--event", e]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));
        (v["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
    };
    let (all, all_secret) = add("/all", &[]);
    let (stage, stage_secret) = add("/stage", &["Stage Changed"]);
    let out =
        Command::new(BIN).env("DATABASE_URL", db.url()).args(["webhook", "list", "--site", &site.id]).output().unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);

    let nodes = [Node::start(&db), Node::start(&db)];
    let client = reqwest::Client::new();
    let batches = 30;
    // Four senders; each sends its batches to both nodes at the same moment.
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..4 {
        let (client, urls, key) =
            (client.clone(), [nodes[0].url.clone(), nodes[1].url.clone()], site.write_key.clone());
        senders.spawn(async move {
            for b in (s..batches).step_by(4) {
                let body = stream_batch(b).to_string();
                let send = |url: &String| {
                    client
                        .post(format!("{url}/v1/batch"))
                        .basic_auth(&key, Some(""))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                };
                let (a, b) = tokio::join!(send(&urls[0]), send(&urls[1]));
                for r in [a, b] {
                    let (status, json) = reply(r.unwrap()).await;
                    assert_eq!(status, 200, "{json}");
                }
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }

    // Each message stored once.
    let stored = store.events_after(&site.id, 0, 100_000).await.unwrap();
    let ids: Vec<String> = stored.iter().map(|e| e.event.message_id.clone()).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "a message stored twice");
    let sent = stored.iter().filter(|e| e.event.message_id.starts_with("s-")).count();
    assert_eq!(sent, batches * 20);
    let stage_ids: BTreeSet<String> = stored
        .iter()
        .filter(|e| e.event.event.as_deref() == Some("Stage Changed"))
        .map(|e| e.event.message_id.clone())
        .collect();
    assert!(!stage_ids.is_empty());

    // Each delivery once: by idempotency key and by body.
    let want = unique.len() + stage_ids.len();
    receiver.wait_until(Duration::from_secs(60), "every delivery", |h| h.len() >= want).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await; // the 20 ms pollers find nothing more
    let hits = receiver.hits();
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    let mut by_body: HashMap<&str, usize> = HashMap::new();
    for h in &hits {
        *by_key.entry(h.key.as_str()).or_default() += 1;
        *by_body.entry(h.body.as_str()).or_default() += 1;
    }
    let repeated: BTreeMap<&str, usize> = by_key.iter().filter(|(_, n)| **n > 1).map(|(k, n)| (*k, *n)).collect();
    assert!(repeated.is_empty(), "delivered more than once: {repeated:?}");
    assert!(by_body.values().all(|n| *n == 1));
    assert_eq!(hits.len(), want);
    let now_s = app::now_ms() / 1000;
    let got = |path: &str, id: &str, secret: &str| -> BTreeSet<String> {
        hits.iter()
            .filter(|h| h.path == path)
            .map(|h| check_hit(h, id, secret, now_s)["messageId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(got("/all", &all, &all_secret), unique);
    assert_eq!(got("/stage", &stage, &stage_secret), stage_ids);

    drop(nodes);
    store.close().await;
}
