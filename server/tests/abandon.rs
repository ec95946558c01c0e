//! Cart abandonment: a cart with no order for the site's `cart_abandon_minutes` becomes one
//! `Cart Abandoned` event; an order or an emptied cart cancels it; a server restart between
//! the last activity and the due time still yields exactly one, and with two nodes on one
//! PostgreSQL each cart fires once. On SQLite and PostgreSQL.

mod common;
mod smtp_sink;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestDb, TestServer};
use nudge_server::abandon;
use nudge_server::app;
use nudge_server::email::jobs;
use nudge_server::sites::new_site;
use nudge_server::store::{Store, StoredEvent};
use serde_json::{json, Map, Value};
use smtp_sink::Sink;

const BIN: &str = env!("CARGO_BIN_EXE_nudge-server");

fn iso(ms: i64) -> String {
    nudge::time::to_iso(ms as u64)
}

/// Sets the site's abandonment threshold.
async fn set_threshold(store: &Store, site_id: &str, minutes: f64) {
    let mut overrides = Map::new();
    overrides.insert("cart_abandon_minutes".into(), json!(minutes));
    let mut conn = store.connection().await.unwrap();
    nudge_server::site_config::save(&mut conn.db(), site_id, &overrides, app::now_ms()).await.unwrap();
}

fn track(anon: &str, id: &str, event: &str, at: i64, props: Value) -> Value {
    json!({"type": "track", "event": event, "anonymousId": anon, "messageId": id, "timestamp": iso(at),
           "properties": props,
           "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": true, "marketing": true}}}})
}

fn tv(id: &str) -> Value {
    json!({"product_id": id, "name": format!("TV {id}"), "category": "TVs", "price": 499.0, "currency": "EUR",
           "url": format!("https://shop.example/p/{id}")})
}

fn abandoned(events: &[StoredEvent], anon: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.event.event.as_deref() == Some("Cart Abandoned") && e.event.anonymous_id.as_deref() == Some(anon))
        .map(|e| serde_json::from_str(&e.event.body).unwrap())
        .collect()
}

/// Runs rounds at `now` until `done` holds for the site's timers (30 s at most: on
/// PostgreSQL the feed waits for older transactions, other tests' included, to end).
async fn arm_until(server: &TestServer, now: i64, done: impl Fn(&[(String, String, i64, i64)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        abandon::round(&server.store, now).await.unwrap();
        let timers = abandon::timers(&server.store, &server.site.id).await.unwrap();
        if done(&timers) {
            return;
        }
        assert!(Instant::now() < deadline, "timers never got there: {timers:?}");
        tokio::time::sleep(Duration::from_millis(10)).await; // polling the feed
    }
}

async fn fires_once_after_the_threshold_and_an_order_cancels(backend: Backend) {
    let server = TestServer::start(backend).await;
    // 1.2 s.
    set_threshold(&server.store, &server.site.id, 0.02).await;
    // Activity at chosen times (a while ago); the rounds run at chosen times too.
    let t = app::now_ms() - 600_000;
    server
        .send(vec![
            track("a", "a1", "Product Added", t, tv("tv-1")),
            track("a", "a2", "Cart Viewed", t + 100, json!({"products": [tv("tv-1")]})),
            track("b", "b1", "Product Added", t, tv("tv-2")),
            track("b", "b2", "Order Completed", t + 100, json!({"products": [tv("tv-2")]})),
            track("c", "c1", "Product Added", t, tv("tv-3")),
            track("c", "c2", "Product Removed", t + 100, json!({"product_id": "tv-3"})),
        ])
        .await;
    arm_until(&server, t + 500, |timers| timers.iter().any(|x| x.0 == "a:a")).await;
    let timers = abandon::timers(&server.store, &server.site.id).await.unwrap();
    assert_eq!(timers.len(), 1, "an order and an emptied cart arm nothing: {timers:?}");
    assert_eq!((timers[0].1.as_str(), timers[0].2, timers[0].3), ("pending", t + 100, t + 100 + 1_200));
    assert!(abandoned(&server.all_events().await, "a").is_empty(), "not before the threshold");

    // Due: fires once, however many rounds run.
    for now in [t + 1_300, t + 1_400, t + 60_000] {
        abandon::round(&server.store, now).await.unwrap();
    }
    let events = server.all_events().await;
    let fired = abandoned(&events, "a");
    assert_eq!(fired.len(), 1);
    let props = &fired[0]["properties"];
    assert_eq!(props["products"][0]["product_id"], "tv-1");
    assert_eq!((props["cart_value"].as_f64(), props["currency"].as_str()), (Some(499.0), Some("EUR")));
    assert!(fired[0]["messageId"].as_str().unwrap().starts_with("nudge-abandon-"));
    assert!(abandoned(&events, "b").is_empty() && abandoned(&events, "c").is_empty());

    // More activity on the same cart: still once. An order, then a new cart: a new event.
    let t2 = t + 120_000; // still in the past
    server.send(vec![track("a", "a3", "Product Added", t2, tv("tv-4"))]).await;
    arm_until(&server, t2, |timers| timers.iter().any(|x| x.0 == "a:a" && x.1 == "fired")).await;
    abandon::round(&server.store, t2 + 60_000).await.unwrap();
    assert_eq!(abandoned(&server.all_events().await, "a").len(), 1, "once per cart");
    server
        .send(vec![
            track("a", "a4", "Order Completed", t2 + 1_000, json!({"products": [tv("tv-1"), tv("tv-4")]})),
            track("a", "a5", "Product Added", t2 + 2_000, tv("tv-5")),
        ])
        .await;
    arm_until(&server, t2 + 2_100, |timers| timers.iter().any(|x| x.0 == "a:a" && x.1 == "pending")).await;
    abandon::round(&server.store, t2 + 2_000 + 1_300).await.unwrap();
    let fired = abandoned(&server.all_events().await, "a");
    assert_eq!(fired.len(), 2, "a new cart after the order");
    assert_eq!(fired[1]["properties"]["products"].as_array().unwrap().len(), 1);
    assert_ne!(fired[0]["messageId"], fired[1]["messageId"]);

    // An order before the due time cancels.
    let t3 = t2 + 10_000;
    server.send(vec![track("d", "d1", "Product Added", t3, tv("tv-6"))]).await;
    arm_until(&server, t3, |timers| timers.iter().any(|x| x.0 == "a:d")).await;
    server.send(vec![track("d", "d2", "Order Completed", t3 + 500, json!({"products": [tv("tv-6")]}))]).await;
    arm_until(&server, t3 + 600, |timers| !timers.iter().any(|x| x.0 == "a:d")).await;
    abandon::round(&server.store, t3 + 60_000).await.unwrap();
    assert!(abandoned(&server.all_events().await, "d").is_empty(), "the order cancelled it");
    server.stop().await;
}

on_both_backends!(fires_once_after_the_threshold_and_an_order_cancels);

/// A `nudge-server serve` child process, killed when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(db: &TestDb, smtp: Option<&str>) -> Node {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", db.url())
            .env("NUDGE_KEY_RATE", "0")
            .env("NUDGE_ADDR_RATE", "0")
            .env("NUDGE_ABANDON_POLL_MS", "20")
            .env("NUDGE_MAIL_POLL_MS", "20")
            .env_remove("NUDGE_DB")
            .env_remove("NUDGE_LISTEN")
            .env_remove("NUDGE_SMTP_URL")
            .stdout(Stdio::piped());
        if let Some(url) = smtp {
            cmd.env("NUDGE_SMTP_URL", url).env("NUDGE_MAIL_FROM", "Shop <shop@shop.example>");
        }
        let mut child = cmd.spawn().expect("spawn nudge-server");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening line").to_string();
        let mut second = String::new();
        reader.read_line(&mut second).unwrap();
        match smtp {
            None => assert!(second.contains("no emails are sent"), "{second}"),
            Some(_) => assert!(second.contains("emails via smtp://127.0.0.1:"), "{second}"),
        }
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

/// Polls `check` every 20 ms until it gives a value (30 s at most).
async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test: carts armed by one server process, which is killed before they are
/// due; a new process (two on PostgreSQL) fires each exactly once, and the cart reminder
/// reaches the SMTP server once.
async fn a_restart_between_activity_and_due_time_yields_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.database, 2).await.unwrap();
    let site = new_site("Restart", &["https://shop.example".into()], app::now_ms()).unwrap();
    store.create_site(&site).await.unwrap();
    set_threshold(&store, &site.id, 0.05).await; // 3 s
    let sink = Sink::start();
    let client = reqwest::Client::new();
    let people = 8;

    let first = Node::start(&db, None);
    let t = app::now_ms();
    let mut batch = Vec::new();
    for p in 0..people {
        let anon = format!("p{p}");
        batch.push(json!({"type": "identify", "anonymousId": anon, "messageId": format!("{anon}-id"),
            "timestamp": iso(t), "traits": {"email": format!("{anon}@example.com")},
            "context": {"consent": {"categoryPreferences": {"marketing": true}}}}));
        batch.push(track(&anon, &format!("{anon}-add"), "Product Added", t, tv(&format!("tv-{p}"))));
    }
    let response = client
        .post(format!("{}/v1/batch", first.url))
        .basic_auth(&site.write_key, Some(""))
        .header("content-type", "application/json")
        .body(json!({ "batch": batch }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let timers = wait_for("the timers", async || {
        let timers = abandon::timers(&store, &site.id).await.unwrap();
        (timers.len() == people).then_some(timers)
    })
    .await;
    drop(first); // killed (SIGKILL) before the carts are due
    let fired_before = store.events_after(&site.id, 0, 10_000).await.unwrap();
    assert!(app::now_ms() < timers[0].3, "the first process lived past the due time; the test proves nothing");
    assert!(fired_before.iter().all(|e| e.event.event.as_deref() != Some("Cart Abandoned")));

    let nodes: Vec<Node> = match backend {
        Backend::Sqlite => vec![Node::start(&db, Some(&sink.url()))],
        Backend::Postgres => vec![Node::start(&db, Some(&sink.url())), Node::start(&db, Some(&sink.url()))],
    };
    wait_for("every timer to fire", async || {
        let timers = abandon::timers(&store, &site.id).await.unwrap();
        timers.iter().all(|x| x.1 == "fired").then_some(())
    })
    .await;
    let events = store.events_after(&site.id, 0, 10_000).await.unwrap();
    for p in 0..people {
        let fired = abandoned(&events, &format!("p{p}"));
        assert_eq!(fired.len(), 1, "person {p}");
        assert_eq!(fired[0]["properties"]["products"][0]["product_id"], format!("tv-{p}"));
    }
    assert!(app::now_ms() >= timers[0].3, "fired at the due time, not before");
    // The cart reminders: one email each.
    wait_for("the cart reminders", async || {
        let jobs = jobs::list(&store, &site.id).await.unwrap();
        (jobs.iter().filter(|j| j.0 == jobs::CART_REMINDER && j.2 == "sent").count() == people).then_some(())
    })
    .await;
    let mails = sink.mails();
    assert_eq!(mails.len(), people, "one reminder per cart");
    let mail = mails.iter().find(|m| m.header("To").contains("p0@example.com")).expect("p0's reminder");
    assert!(mail.text.contains("Your cart") && mail.text.contains("TV tv-0") && mail.html.contains("TV tv-0"));
    assert!(mail.text.contains("https://shop.example/p/tv-0"));
    drop(nodes);
    store.close().await;
}

on_both_backends!(a_restart_between_activity_and_due_time_yields_one);
