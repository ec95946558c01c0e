//! Emails against a real SMTP server (aiosmtpd, `tests/smtp/sink.py`): the coupon email
//! arrives with the code, both parts and the unsubscribe headers; nobody without marketing
//! consent gets one; the unsubscribe link revokes consent and later emails stop; an SMTP
//! server that is down and then up gets the email exactly once. On SQLite and PostgreSQL.
//!
//! The worker's rounds are run by the tests, with a clock they move, so backoff waits
//! pass without sleeping.

mod common;
mod smtp_sink;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use common::{Backend, TestServer};
use nudge_server::email::jobs;
use nudge_server::email::worker::Worker;
use nudge_server::email::Settings;
use serde_json::{json, Value};
use smtp_sink::Sink;

const SHOPPER: &str = "shopper@example.com";
const CODE: &str = "NUDGE-7KQ2-M9XD";

/// A clock the test moves (a minute ahead, so that what the test sends is due).
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(AtomicI64::new(nudge_server::app::now_ms() + 60_000)))
    }
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

fn worker(server: &TestServer, smtp_url: &str, clock: &TestClock) -> Worker {
    let settings = Settings {
        smtp_url: Some(smtp_url.to_string()),
        from: Some("Test shop <shop@shop.example>".into()),
        backoff_base: std::time::Duration::from_millis(1_000),
        timeout: std::time::Duration::from_secs(5),
        ..Settings::default()
    };
    let time = clock.0.clone();
    let clock = Arc::new(move || time.load(Ordering::SeqCst));
    Worker::new(server.store.clone(), settings, server.url.clone(), clock).expect("worker")
}

fn iso(ms: i64) -> String {
    nudge::time::to_iso(ms as u64)
}

fn consent(marketing: bool) -> Value {
    json!({ "consent": { "categoryPreferences": { "analytics": true, "personalization": true, "marketing": marketing } } })
}

/// Views of TVs (one with a hostile name), an identify with an address.
fn browsing(anon: &str, marketing: bool, t0: i64) -> Vec<Value> {
    let view = |i: i64, id: &str, name: &str, category: &str| {
        json!({"type": "track", "event": "Product Viewed", "anonymousId": anon, "messageId": format!("{anon}-v{i}"),
               "timestamp": iso(t0 + i * 1_000), "context": consent(marketing),
               "properties": {"product_id": id, "name": name, "category": category, "price": 499.0,
                              "currency": "EUR", "url": format!("https://shop.example/p/{id}"),
                              "image_url": format!("https://shop.example/img/{id}.jpg")}})
    };
    vec![
        view(1, "tv-1", "Sharp 55\" OLED", "TVs"),
        view(2, "tv-2", "<img src=x onerror=alert(1)>", "TVs"),
        view(3, "tv-3", "Bravia 65", "TVs"),
        json!({"type": "identify", "anonymousId": anon, "messageId": format!("{anon}-id"), "timestamp": iso(t0 + 4_000),
               "traits": {"email": SHOPPER}, "context": consent(marketing)}),
    ]
}

fn coupon_issued(anon: &str, t: i64, marketing: Option<bool>) -> Value {
    let mut m = json!({"type": "track", "event": "Coupon Issued", "anonymousId": anon,
        "messageId": format!("coupon-{CODE}-{anon}"), "timestamp": iso(t),
        "properties": {"campaign_id": "tv-newsletter", "coupon": CODE, "email": SHOPPER, "percent": 10,
                       "expires_at": iso(t + 7 * 86_400_000)}});
    if let Some(m2) = marketing {
        m["context"] = consent(m2);
    }
    m
}

fn order(anon: &str, t: i64, marketing: bool) -> Value {
    json!({"type": "track", "event": "Order Completed", "anonymousId": anon, "messageId": format!("{anon}-order"),
           "timestamp": iso(t), "context": consent(marketing),
           "properties": {"order_id": "o-1", "total": 499.0, "currency": "EUR",
                          "products": [{"product_id": "tv-3", "name": "Bravia 65", "category": "TVs", "price": 499.0}]}})
}

/// Runs rounds until a job matches `done` (for 30 s at most: on PostgreSQL the feed waits
/// for older transactions, other tests' included, to end).
async fn rounds_until(w: &Worker, server: &TestServer, done: impl Fn(&jobs::Listed) -> bool) -> Option<jobs::Listed> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        w.round().await.expect("round");
        let all = jobs::list(&server.store, &server.site.id).await.unwrap();
        if let Some(job) = all.into_iter().find(&done) {
            return Some(job);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling the queue
    }
    None
}

/// Runs rounds until the job of `kind` caused by `source` is no longer pending.
async fn settle(w: &Worker, server: &TestServer, kind: &str, source: &str) -> jobs::Listed {
    if let Some(job) = rounds_until(w, server, |j| j.0 == kind && j.1 == source && j.2 != "pending").await {
        return job;
    }
    let all = jobs::list(&server.store, &server.site.id).await.unwrap();
    panic!("the {kind} job for {source} stayed pending: {all:?}");
}

async fn coupon_email_then_unsubscribe_stops_later_emails(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sink = Sink::start();
    let clock = TestClock::new();
    let w = worker(&server, &sink.url(), &clock);
    let t0 = nudge_server::app::now_ms() - 60_000;
    let mut batch = browsing("anon-1", true, t0);
    batch.push(coupon_issued("anon-1", t0 + 5_000, Some(true)));
    server.send(batch).await;

    let job = settle(&w, &server, jobs::COUPON, &format!("coupon-{CODE}-anon-1")).await;
    assert_eq!((job.2.as_str(), job.3.as_deref()), ("sent", Some(SHOPPER)), "{job:?}");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.header("To").contains(SHOPPER) && mail.header("From").contains("shop@shop.example"));
    assert!(mail.header("Subject").contains(CODE), "{}", mail.header("Subject"));
    assert!(mail.header("Content-Type").starts_with("multipart/alternative"));
    assert!(mail.text.contains(CODE) && mail.html.contains(CODE), "the code in both parts");
    assert!(mail.text.contains("10% off"));
    // Recommended: the TVs viewed, the hostile name escaped in HTML.
    assert!(mail.text.contains("Sharp 55\" OLED") && mail.text.contains("https://shop.example/p/tv-1"));
    assert!(mail.html.contains("&lt;img src=x onerror=alert(1)&gt;") && !mail.html.contains("<img src=x"));
    assert!(mail.html.contains(r#"<img src="https://shop.example/img/tv-1.jpg""#));
    let unsubscribe = mail.unsubscribe_url();
    assert!(unsubscribe.starts_with(&format!("{}/v1/unsubscribe?token=", server.url)), "{unsubscribe}");
    assert_eq!(mail.header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert!(mail.text.contains(&unsubscribe) && mail.html.contains("/v1/unsubscribe?token="));
    assert!(mail.header("Message-ID").starts_with("<nudge.coupon."));

    // One click, as a mail client does it (RFC 8058).
    let response = server
        .client
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("unsubscribed"));
    let revoked: Vec<Value> = server
        .events()
        .await
        .iter()
        .filter(|e| e.event.event.as_deref() == Some("Consent Preference Updated"))
        .map(|e| serde_json::from_str(&e.event.body).unwrap())
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["properties"]["marketing"], false);
    assert_eq!(revoked[0]["anonymousId"], "anon-1");
    // A forged token does nothing.
    let forged = format!("{}x", &unsubscribe[..unsubscribe.len() - 1]);
    assert_eq!(server.client.get(&forged).send().await.unwrap().status(), 400);

    // The browser still believes marketing is on; then an order. No evaluation email.
    let later = nudge_server::app::now_ms() + 1_000;
    let view = json!({"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", "messageId": "anon-1-late",
                      "timestamp": iso(later), "context": consent(true),
                      "properties": {"product_id": "tv-9", "category": "TVs"}});
    server.send(vec![view, order("anon-1", later + 1_000, true)]).await;
    let job = settle(&w, &server, jobs::EVALUATION, "anon-1-order").await;
    assert_eq!((job.2.as_str(), job.5.as_deref()), ("skipped", Some("no marketing consent")), "{job:?}");
    // Nor the coupon reminder, a day later.
    clock.advance(25 * 3_600_000);
    let job = settle(&w, &server, jobs::COUPON_REMINDER, &format!("coupon-{CODE}-anon-1")).await;
    assert_eq!(job.2, "skipped", "{job:?}");
    assert_eq!(sink.mails().len(), 1, "no email after the unsubscribe");
    server.stop().await;
}

async fn no_consent_no_email(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sink = Sink::start();
    let clock = TestClock::new();
    let w = worker(&server, &sink.url(), &clock);
    let t0 = nudge_server::app::now_ms() - 60_000;
    // Declined marketing in the popup: the coupon event says so; then an order.
    let mut batch = browsing("anon-2", false, t0);
    batch.push(coupon_issued("anon-2", t0 + 5_000, Some(false)));
    batch.push(order("anon-2", t0 + 6_000, false));
    server.send(batch).await;
    let coupon = settle(&w, &server, jobs::COUPON, &format!("coupon-{CODE}-anon-2")).await;
    let evaluation = settle(&w, &server, jobs::EVALUATION, "anon-2-order").await;
    for job in [coupon, evaluation] {
        assert_eq!((job.2.as_str(), job.5.as_deref()), ("skipped", Some("no marketing consent")), "{job:?}");
    }
    assert!(sink.mails().is_empty());

    // The evaluation email goes to someone who consented, with similar products.
    let mut batch = browsing("anon-3", true, t0);
    batch.push(order("anon-3", t0 + 6_000, true));
    server.send(batch).await;
    let job = settle(&w, &server, jobs::EVALUATION, "anon-3-order").await;
    assert_eq!(job.2, "sent", "{job:?}");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].text.contains("review")
            && mails[0].text.contains(
                "https://shop.example/p/tv-3?utm_source=nudge&utm_medium=email&utm_campaign=evaluation#reviews"
            ),
        "the review link, tagged: {}",
        mails[0].text
    );
    assert!(mails[0].text.contains("Similar products") && mails[0].text.contains("Sharp 55\" OLED"));
    assert!(!mails[0].text.contains("- Bravia 65, 499.00 EUR: https://shop.example/p/tv-3?utm_source=nudge&utm_medium=email&utm_campaign=evaluation\n"), "bought: not similar");

    // Erasing the shopper drops their jobs, and the address in them.
    let response = server.secret(reqwest::Method::DELETE, "/v1/profiles/anonymous/anon-3").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let left = jobs::list(&server.store, &server.site.id).await.unwrap();
    assert!(left.iter().all(|j| j.1 != "anon-3-order"), "{left:?}");
    assert!(left.iter().any(|j| j.1 == "anon-2-order"));
    server.stop().await;
}

async fn smtp_down_then_up_delivers_exactly_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let port = smtp_sink::free_port();
    let clock = TestClock::new();
    let w = worker(&server, &format!("smtp://127.0.0.1:{port}"), &clock);
    let t0 = nudge_server::app::now_ms() - 60_000;
    let mut batch = browsing("anon-4", true, t0);
    batch.push(coupon_issued("anon-4", t0 + 5_000, Some(true)));
    server.send(batch).await;
    let source = format!("coupon-{CODE}-anon-4");
    // Down: attempts fail and wait (the clock moves past each wait).
    let failing = |j: &jobs::Listed| j.0 == jobs::COUPON && j.1 == source && j.4 >= 1;
    rounds_until(&w, &server, failing).await.expect("a first attempt");
    clock.advance(3_600_000);
    rounds_until(&w, &server, |j| failing(j) && j.4 >= 2).await.expect("a second attempt");
    let job = jobs::list(&server.store, &server.site.id).await.unwrap().into_iter().find(|j| j.1 == source).unwrap();
    assert_eq!(job.2, "pending", "{job:?}");
    assert!(job.4 >= 2 && job.5.is_some(), "failed attempts recorded: {job:?}");
    // Up again.
    let sink = Sink::start_on(port, std::env::temp_dir().join(format!("nudge-mail-{port}-{}", t0)));
    clock.advance(3_600_000); // past the backoff wait
    let job = settle(&w, &server, jobs::COUPON, &source).await;
    assert_eq!(job.2, "sent");
    for _ in 0..5 {
        clock.advance(3_600_000);
        w.round().await.unwrap();
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "delivered exactly once");
    assert!(mails[0].text.contains(CODE));
    // A bad token gets a plain page.
    let response = server.client.get(format!("{}/v1/unsubscribe?token=nope", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    server.stop().await;
}

/// With the campaigns helper's `POST /v1/coupons`: the code the popup gets is the code the
/// email brings (the issue's end-to-end check, at the server).
async fn the_issued_coupon_is_the_one_in_the_email(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sink = Sink::start();
    let clock = TestClock::new();
    let w = worker(&server, &sink.url(), &clock);
    let campaign = json!([{"id": "tv-newsletter", "trigger": {"on": "exit-intent"},
        "offer": {"unique": true, "percent": 10, "expiresDays": 7},
        "content": {"title": "10% off", "text": "Sign up", "emailField": true}}]);
    let put = server.secret(reqwest::Method::PUT, "/v1/campaigns").header("content-type", "application/json");
    assert_eq!(put.body(campaign.to_string()).send().await.unwrap().status(), 200);
    server.send(browsing("anon-5", true, nudge_server::app::now_ms() - 60_000)).await;
    let body = json!({"campaign_id": "tv-newsletter", "email": SHOPPER, "anonymousId": "anon-5"});
    let response = server.post("/v1/coupons").body(body.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let issued: Value = response.json().await.unwrap();
    let code = issued["coupon"].as_str().unwrap().to_string();
    let job = settle(&w, &server, jobs::COUPON, &format!("coupon-{code}")).await;
    assert_eq!(job.2, "sent", "{job:?}");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.contains(&format!("Your code: {code}")) && mails[0].html.contains(&code));
    assert!(mails[0].header("To").contains(SHOPPER));
    server.stop().await;
}

/// With a catalogue, emails rank it with the core's recommendations (what the browser's
/// slots show): the coupon email lists TVs from the catalogue for a shopper who viewed TVs,
/// with the catalogue's paths made absolute against the shop's pages; after an order the
/// evaluation email lists products similar to the one bought, not the one bought.
async fn with_a_catalogue_emails_rank_it_like_the_browser(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sink = Sink::start();
    let clock = TestClock::new();
    let w = worker(&server, &sink.url(), &clock);
    let product = |id: &str, name: &str, category: &str, brand: &str, price: f64| {
        json!({"id": id, "name": name, "category": category, "brand": brand, "price": price, "currency": "EUR",
               "url": format!("/p/{id}"), "image": format!("/img/{id}.svg")})
    };
    let catalogue = json!([
        product("ph-1", "Fone X", "Phones", "Fone", 899.0),
        product("tv-1", "Sharp 55 OLED", "TVs", "Sharp", 499.0),
        product("tv-3", "Bravia 65", "TVs", "Sony", 499.0),
        product("tv-7", "Sony 50 LED", "TVs", "Sony", 449.0),
        product("tv-8", "Vizo 43", "TVs", "Vizo", 299.0),
        product("hd-1", "Buds", "Headphones", "Sony", 99.0),
    ]);
    let put = server.secret(reqwest::Method::PUT, "/v1/catalog").header("content-type", "application/json");
    let response = put.body(catalogue.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let t0 = nudge_server::app::now_ms() - 60_000;
    let mut batch = browsing("anon-7", true, t0);
    for m in batch.iter_mut() {
        m["context"]["page"] = json!({"url": "https://shop.example/p/tv-1?utm_source=x"});
    }
    batch.push(coupon_issued("anon-7", t0 + 5_000, Some(true)));
    server.send(batch).await;
    let job = settle(&w, &server, jobs::COUPON, &format!("coupon-{CODE}-anon-7")).await;
    assert_eq!(job.2, "sent", "{job:?}");
    let mail = &sink.mails()[0];
    let listed = |text: &str, names: &[&str]| names.iter().filter(|n| text.contains(*n)).count();
    assert_eq!(listed(&mail.text, &["Sharp 55 OLED", "Bravia 65", "Sony 50 LED", "Vizo 43"]), 4, "{}", mail.text);
    assert!(!mail.text.contains("Fone X"), "four TVs fill the list before a phone: {}", mail.text);
    assert!(mail.text.contains("https://shop.example/p/tv-7"), "a catalogue path made absolute: {}", mail.text);
    assert!(mail.html.contains(r#"<img src="https://shop.example/img/tv-8.svg""#));

    server.send(vec![order("anon-7", nudge_server::app::now_ms(), true)]).await;
    let job = settle(&w, &server, jobs::EVALUATION, "anon-7-order").await;
    assert_eq!(job.2, "sent", "{job:?}");
    let mails = sink.mails();
    let evaluation = mails.last().unwrap();
    let similar = evaluation.text.split("Bravia 65").last().unwrap_or("");
    assert!(similar.contains("Sony 50 LED"), "same category, brand and a close price first: {}", evaluation.text);
    assert!(!similar.contains("Bravia 65"), "not the product bought");
    server.stop().await;
}

on_both_backends!(
    with_a_catalogue_emails_rank_it_like_the_browser,
    coupon_email_then_unsubscribe_stops_later_emails,
    no_consent_no_email,
    smtp_down_then_up_delivers_exactly_once,
    the_issued_coupon_is_the_one_in_the_email,
);
