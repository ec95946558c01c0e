//! Profiles over HTTP, on SQLite and on PostgreSQL: folding, identity merges, the
//! secret-key API (profiles, segments, change feed, erasure), the browser's read-back with
//! `userHash`, and site config.

mod common;

use std::collections::HashSet;

use common::{reply, Backend, Rng, TestServer, ALLOWED_ORIGIN};
use nudge::config::Thresholds;
use nudge::merge::{fold_all, Stored};
use nudge_server::sites::new_site;
use nudge_server::store::Site;
use reqwest::Method;
use serde_json::{json, Value};

/// 2027-01-15T09:00:00Z, in ms.
const BASE: u64 = 1_800_003_600_000;
const MINUTE: u64 = 60_000;

/// A message at `BASE + minute`.
fn msg(
    id: &str,
    kind: &str,
    name: Option<&str>,
    anon: Option<&str>,
    user: Option<&str>,
    minute: u64,
    props: Value,
) -> Value {
    let mut m = json!({
        "type": kind,
        "messageId": id,
        "timestamp": nudge::time::to_iso(BASE + minute * MINUTE),
        "anonymousId": anon,
        "userId": user,
    });
    match kind {
        "identify" => m["traits"] = props,
        _ => m["properties"] = props,
    }
    if let Some(name) = name {
        m[if kind == "track" { "event" } else { "name" }] = json!(name);
    }
    m
}

fn track(id: &str, anon: &str, event: &str, minute: u64, props: Value) -> Value {
    msg(id, "track", Some(event), Some(anon), None, minute, props)
}

fn identify(id: &str, anon: &str, user: &str, minute: u64) -> Value {
    msg(id, "identify", None, Some(anon), Some(user), minute, json!({ "plan": "gold" }))
}

fn product(id: &str, category: &str, price: f64) -> Value {
    json!({ "product_id": id, "category": category, "price": price, "brand": "Acme" })
}

/// Two browsers of one shopper, identified as `u-1` part way through.
fn history() -> Vec<Value> {
    let tv = product("tv-1", "TVs", 899.0);
    let phone = product("ph-1", "Phones", 299.0);
    let mut h = Vec::new();
    for i in 0..4 {
        h.push(track(&format!("lv{i}"), "a-laptop", "Product Viewed", i * 3, tv.clone()));
    }
    h.push(track("la", "a-laptop", "Product Added", 20, tv.clone()));
    h.push(identify("li", "a-laptop", "u-1", 21));
    for i in 0..3 {
        h.push(track(&format!("pv{i}"), "a-phone", "Product Viewed", 30 + i, phone.clone()));
    }
    h.push(track("pa", "a-phone", "Product Added", 40, phone.clone()));
    h.push(track("pr", "a-phone", "Product Removed", 41, json!({ "product_id": "ph-1" })));
    h.push(identify("pi", "a-phone", "u-1", 42));
    h.push(msg("pp", "page", Some("Home"), Some("a-phone"), Some("u-1"), 43, json!({})));
    h
}

/// Another site on the same server.
async fn another_site(srv: &TestServer) -> Site {
    let site = new_site("Shop", &[ALLOWED_ORIGIN.into()], 0).unwrap();
    srv.store.create_site(&site).await.unwrap();
    site
}

async fn send_as(srv: &TestServer, site: &Site, messages: &[Value]) -> Value {
    let body = json!({ "batch": messages }).to_string();
    let request = srv.post_without_key("/v1/batch").basic_auth(&site.write_key, Some("")).body(body);
    let (status, json) = reply(request.send().await.unwrap()).await;
    assert_eq!(status, 200, "{json}");
    json
}

async fn profile_as(srv: &TestServer, site: &Site, path: &str) -> (u16, Value) {
    let request = srv.client.get(format!("{}{path}", srv.url)).bearer_auth(&site.secret_key);
    reply(request.send().await.unwrap()).await
}

async fn shuffled_and_repeated_events_give_the_same_profile(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let events = history();
    let mut profiles = Vec::new();
    for seed in 1..=6u64 {
        let site = another_site(&srv).await;
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut noisy = events.clone();
        for _ in 0..4 {
            noisy.push(events[rng.next(events.len())].clone());
        }
        for i in (1..noisy.len()).rev() {
            noisy.swap(i, rng.next(i + 1));
        }
        // In batches of random sizes, so some fold incrementally and some from history.
        let mut rest = noisy.as_slice();
        while !rest.is_empty() {
            let n = 1 + rng.next(rest.len().min(4));
            send_as(&srv, &site, &rest[..n]).await;
            rest = &rest[n..];
        }
        let (status, profile) = profile_as(&srv, &site, "/v1/profiles/u-1").await;
        assert_eq!(status, 200, "{profile}");
        // The browsers' own profiles joined the user's.
        let (status, _) = profile_as(&srv, &site, "/v1/profiles/anonymous/a-phone").await;
        assert_eq!(status, 200);
        profiles.push(profile);
    }
    for p in &profiles[1..] {
        assert_eq!(p, &profiles[0]);
    }
    // And it is what the core folds from the same messages.
    let texts: Vec<(Value, String)> = events.iter().map(|e| (e.clone(), e.to_string())).collect();
    let stored: Vec<Stored<'_>> = texts
        .iter()
        .map(|(e, text)| Stored {
            message_id: e["messageId"].as_str().unwrap(),
            kind: e["type"].as_str().unwrap(),
            name: e["event"].as_str(),
            user_id: e["userId"].as_str(),
            at: nudge::time::parse_iso(e["timestamp"].as_str().unwrap()).unwrap(),
            body: text,
        })
        .collect();
    let core = fold_all(&stored, &Thresholds::default());
    let th = Thresholds::default();
    let stages: Value = core
        .profile
        .stages(BASE + 43 * MINUTE, &th)
        .into_iter()
        .map(|(c, s)| (c.to_string(), json!(s.name())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let p = &profiles[0];
    assert_eq!(p["stages"], stages);
    // A cart add is decision evidence even after the product was removed again.
    assert_eq!(p["stages"], json!({ "Phones": "decision", "TVs": "decision" }));
    assert_eq!(p["stage"], "decision");
    assert_eq!(p["events"], json!(events.len()));
    assert_eq!(p["anonymousIds"], json!(["a-laptop", "a-phone"]));
    assert_eq!(p["userId"], "u-1");
    srv.stop().await;
}

async fn two_browsers_identified_as_one_user_become_one_profile(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let tv = product("tv-1", "TVs", 899.0);
    let phone = product("ph-1", "Phones", 299.0);
    // The laptop: TVs, added to the cart.
    srv.send(vec![
        track("l1", "laptop", "Product Viewed", 1, tv.clone()),
        track("l2", "laptop", "Product Added", 2, tv.clone()),
    ])
    .await;
    // The phone: phones, three views.
    srv.send((0..3).map(|i| track(&format!("p{i}"), "phone", "Product Viewed", 3 + i, phone.clone())).collect()).await;
    let (_, laptop) = srv.secret_get("/v1/profiles/anonymous/laptop").await;
    assert_eq!(laptop["stages"], json!({ "TVs": "decision" }));
    assert_eq!(laptop["userId"], Value::Null);
    let (status, _) = srv.secret_get("/v1/profiles/u-9").await;
    assert_eq!(status, 404);

    srv.send(vec![identify("li", "laptop", "u-9", 10)]).await;
    srv.send(vec![identify("pi", "phone", "u-9", 11)]).await;
    let (status, user) = srv.secret_get("/v1/profiles/u-9").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["stages"], json!({ "Phones": "consideration", "TVs": "decision" }));
    assert_eq!(user["anonymousIds"], json!(["laptop", "phone"]));
    assert_eq!(user["cart"]["items"][0]["product_id"], "tv-1");
    assert_eq!(user["cart"]["value"], json!(899));
    let affinities = user["affinities"]["categories"].as_object().unwrap();
    assert!(affinities.contains_key("TVs") && affinities.contains_key("Phones"), "{user}");
    assert_eq!(user["traits"], json!({ "plan": "gold" }));
    assert_eq!(user["events"], json!(7));
    // Either browser now reads the user's profile.
    for anon in ["laptop", "phone"] {
        let (_, p) = srv.secret_get(&format!("/v1/profiles/anonymous/{anon}")).await;
        assert_eq!(p, user);
    }
    // Later anonymous events of a linked browser fold into the user.
    srv.send(vec![track("p9", "phone", "Product Added", 12, phone.clone())]).await;
    let (_, user) = srv.secret_get("/v1/profiles/u-9").await;
    assert_eq!(user["stages"]["Phones"], "decision");
    assert_eq!(user["cart"]["items"].as_array().unwrap().len(), 2);
    // The stage changes the folds found are stored, once each.
    let derived: Vec<Value> = srv
        .all_events()
        .await
        .iter()
        .filter(|e| common::is_derived(e))
        .map(|e| serde_json::from_str(&e.event.body).unwrap())
        .collect();
    let phones: Vec<(&str, &str)> = derived
        .iter()
        .filter(|e| e["userId"] == "u-9" && e["properties"]["category"] == "Phones")
        .map(|e| (e["properties"]["from"].as_str().unwrap_or("-"), e["properties"]["to"].as_str().unwrap()))
        .collect();
    assert_eq!(phones, [("-", "consideration"), ("consideration", "decision")]);
    assert!(derived.iter().all(|e| e["event"] == "Stage Changed" && e["context"]["library"]["name"] == "nudge-server"));
    srv.stop().await;
}

async fn segments_are_listed_in_pages_without_gaps_or_repeats(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let tv = |price: f64| product("tv-x", "TVs", price);
    let mut batch = Vec::new();
    let mut deciding = HashSet::new();
    for i in 0..23u64 {
        let anon = format!("s-{i:02}");
        batch.push(track(&format!("v{i}"), &anon, "Product Viewed", i, tv(100.0 + i as f64)));
        if i % 3 != 0 {
            batch.push(track(&format!("a{i}"), &anon, "Product Added", i + 1, tv(100.0 + i as f64)));
            deciding.insert(anon);
        }
    }
    batch.push(track("phone", "s-phone", "Product Added", 5, product("ph", "Phones", 50.0)));
    srv.send(batch).await;

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (status, page) =
            srv.secret_get(&format!("/v1/profiles?stage=decision&category=TVs&limit=4&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        for p in page["profiles"].as_array().unwrap() {
            assert_eq!(p["stages"]["TVs"], "decision");
            seen.push(p["anonymousIds"][0].as_str().unwrap().to_string());
        }
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "repeated: {seen:?}");
    assert_eq!(unique, deciding);
    assert!(pages >= 4);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "one stable order");

    // Cart value and last-seen filters.
    let (_, page) = srv.secret_get("/v1/profiles?minCart=120&maxCart=121&limit=50").await;
    let ids: Vec<&str> =
        page["profiles"].as_array().unwrap().iter().map(|p| p["anonymousIds"][0].as_str().unwrap()).collect();
    assert_eq!(ids, ["s-20"]);
    let after = nudge::time::to_iso(BASE + 22 * MINUTE);
    let (_, page) = srv.secret_get(&format!("/v1/profiles?seenAfter={after}")).await;
    let ids: Vec<&str> =
        page["profiles"].as_array().unwrap().iter().map(|p| p["anonymousIds"][0].as_str().unwrap()).collect();
    assert_eq!(ids, ["s-22"]);
    let (_, page) = srv.secret_get("/v1/profiles?stage=decision").await;
    assert_eq!(page["profiles"].as_array().unwrap().len(), deciding.len() + 1, "overall stage includes Phones");
    let (status, json) = srv.secret_get("/v1/profiles?stage=bored").await;
    assert_eq!((status, &json["error"]), (400, &json!("invalid_query")));
    let (status, json) = srv.secret_get("/v1/profiles?cursor=***").await;
    assert_eq!((status, &json["error"]), (400, &json!("invalid_cursor")));
    srv.stop().await;
}

/// Reads the whole feed from `cursor` on; returns the messageIds and the cursor at the end.
async fn read_feed(srv: &TestServer, mut cursor: String, limit: usize) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    loop {
        let (status, page) = srv.secret_get(&format!("/v1/changes?limit={limit}&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        let changes = page["changes"].as_array().unwrap();
        ids.extend(changes.iter().map(|c| c["message"]["messageId"].as_str().unwrap().to_string()));
        cursor = page["cursor"].as_str().unwrap().to_string();
        if !page["hasMore"].as_bool().unwrap() {
            return (ids, cursor);
        }
    }
}

async fn the_change_feed_misses_nothing_and_repeats_nothing(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let tv = product("tv-1", "TVs", 10.0);
    srv.send((0..10).map(|i| track(&format!("f{i}"), "feed-a", "Product Viewed", i, tv.clone())).collect()).await;
    let all: Vec<String> = srv.all_events().await.into_iter().map(|e| e.event.message_id).collect();
    // On PostgreSQL the feed shows rows once every older transaction has ended, other tests'
    // included: read it again until it has caught up (or the deadline says it never will).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (first, cursor) = loop {
        let (ids, cursor) = read_feed(&srv, String::new(), 3).await;
        if ids.len() >= all.len() || std::time::Instant::now() > deadline {
            break (ids, cursor);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(first, all, "every stored message, Stage Changed included, in order");
    assert!(first.iter().any(|id| id.starts_with("nudge-stage-")));
    // Nothing new: the cursor stays put.
    let (none, same) = read_feed(&srv, cursor.clone(), 3).await;
    assert!(none.is_empty());
    assert_eq!(same, cursor);

    // Writers and a reader at once.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let request = srv.post("/v1/batch");
            let tv = tv.clone();
            tokio::spawn(async move {
                let mut request = Some(request);
                for b in 0..8 {
                    let batch: Vec<Value> = (0..10)
                        .map(|i| {
                            track(
                                &format!("w{w}-{b}-{i}"),
                                &format!("feed-{w}"),
                                "Product Viewed",
                                100 + b * 10 + i,
                                tv.clone(),
                            )
                        })
                        .collect();
                    let body = json!({ "batch": batch }).to_string();
                    let r = request.take().unwrap().try_clone().unwrap();
                    request = Some(r.try_clone().unwrap());
                    assert_eq!(r.body(body).send().await.unwrap().status(), 200);
                }
            })
        })
        .collect();
    let mut seen = first;
    let mut cursor = cursor;
    let mut finished = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (ids, next) = read_feed(&srv, cursor, 7).await;
        seen.extend(ids);
        cursor = next;
        if finished {
            let stored = srv.all_events().await.len();
            if seen.len() >= stored {
                break;
            }
        }
        finished = writers.iter().all(|w| w.is_finished());
        assert!(std::time::Instant::now() < deadline, "the feed did not catch up");
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no message twice");
    let stored: HashSet<String> = srv.all_events().await.into_iter().map(|e| e.event.message_id).collect();
    assert_eq!(unique, stored.iter().collect(), "no message missed");
    assert_eq!(stored.iter().filter(|id| id.starts_with('w')).count(), 320);
    srv.stop().await;
}

async fn erased_people_stay_erased(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let tv = product("tv-1", "TVs", 899.0);
    srv.send(vec![
        track("e1", "er-a", "Product Viewed", 1, tv.clone()),
        identify("e2", "er-a", "er-user", 2),
        track("e3", "er-b", "Product Added", 3, tv.clone()),
        identify("e4", "er-b", "er-user", 4),
        track("keep", "other", "Product Viewed", 5, tv.clone()),
    ])
    .await;
    assert_eq!(srv.secret_get("/v1/profiles/er-user").await.0, 200);

    // Only with the secret key.
    let write = srv.client.delete(format!("{}/v1/profiles/er-user", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    assert_eq!(write.send().await.unwrap().status(), 401);
    let (status, json) = reply(srv.secret(Method::DELETE, "/v1/profiles/er-user").send().await.unwrap()).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["anonymousIds"], json!(["er-a", "er-b"]));
    assert!(json["events"].as_u64().unwrap() >= 4);
    assert_eq!(srv.secret_get("/v1/profiles/er-user").await.0, 404);
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/er-a").await.0, 404);
    let left: Vec<String> =
        srv.all_events().await.into_iter().filter_map(|e| e.event.anonymous_id.or(e.event.user_id)).collect();
    assert!(left.iter().all(|id| id == "other"), "{left:?}");

    // Late events, by user or by browser, are dropped and build nothing.
    let late = srv
        .send(vec![
            track("late-1", "er-a", "Product Viewed", 10, tv.clone()),
            msg("late-2", "track", Some("Order Completed"), None, Some("er-user"), 11, json!({})),
            track("late-3", "fresh", "Product Viewed", 12, tv.clone()),
        ])
        .await;
    assert_eq!((&late["stored"], &late["dropped"]), (&json!(1), &json!(2)), "{late}");
    assert_eq!(srv.secret_get("/v1/profiles/er-user").await.0, 404);
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/er-a").await.0, 404);
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/fresh").await.0, 200);
    let (status, json) = reply(srv.secret(Method::DELETE, "/v1/profiles/anonymous/fresh").send().await.unwrap()).await;
    assert_eq!((status, &json["anonymousIds"], &json["userId"]), (200, &json!(["fresh"]), &Value::Null), "{json}");
    assert!(json["events"].as_u64().unwrap() >= 1);
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/fresh").await.0, 404);

    // forget() in one browser: that browser's data goes; the user keeps the other's.
    srv.send(vec![
        track("g1", "fg-laptop", "Product Added", 20, tv.clone()),
        identify("g2", "fg-laptop", "fg-user", 21),
        track("g3", "fg-phone", "Product Viewed", 22, product("ph", "Phones", 1.0)),
        identify("g4", "fg-phone", "fg-user", 23),
    ])
    .await;
    let (_, before) = srv.secret_get("/v1/profiles/fg-user").await;
    assert_eq!(before["stages"], json!({ "Phones": "awareness", "TVs": "decision" }));
    srv.send(vec![msg(
        "g5",
        "track",
        Some("Erasure Requested"),
        Some("fg-laptop"),
        Some("fg-user"),
        24,
        json!({ "reason": "forget() called in the browser" }),
    )])
    .await;
    let (_, after) = srv.secret_get("/v1/profiles/fg-user").await;
    assert_eq!(after["stages"], json!({ "Phones": "awareness" }), "{after}");
    assert_eq!(after["anonymousIds"], json!(["fg-phone"]));
    assert_eq!(after["cart"]["items"], json!([]));
    let late = srv.send(vec![track("g6", "fg-laptop", "Product Added", 25, tv.clone())]).await;
    assert_eq!(late["dropped"], json!(1));
    assert!(srv.all_events().await.iter().all(|e| e.event.anonymous_id.as_deref() != Some("fg-laptop")));

    // Erasing by browser erases the person it belongs to.
    let (status, json) =
        reply(srv.secret(Method::DELETE, "/v1/profiles/anonymous/fg-phone").send().await.unwrap()).await;
    assert_eq!((status, &json["userId"]), (200, &json!("fg-user")), "{json}");
    assert_eq!(srv.secret_get("/v1/profiles/fg-user").await.0, 404);
    srv.stop().await;
}

async fn a_browser_reads_its_profile_back_only_with_a_valid_user_hash(backend: Backend) {
    let srv = TestServer::start(backend).await;
    srv.send(vec![
        track("r1", "rb-phone", "Product Added", 1, product("tv-1", "TVs", 5.0)),
        identify("r2", "rb-phone", "rb-user", 2),
        identify("r3", "rb-laptop", "rb-user", 3),
    ])
    .await;
    let good = nudge_server::hmac::user_hash(&srv.site.secret_key, "rb-user");
    let read = |query: String| {
        srv.client
            .get(format!("{}/v1/profile?{query}", srv.url))
            .basic_auth(&srv.site.write_key, Some(""))
            .header("origin", ALLOWED_ORIGIN)
    };
    let response = read(format!("userId=rb-user&userHash={good}")).send().await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let (status, profile) = reply(response).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["stages"], json!({ "TVs": "decision" }));
    assert_eq!(profile["anonymousIds"], json!(["rb-laptop", "rb-phone"]));
    // The core's form, for the SDK to absorb.
    assert_eq!(profile["state"]["user_id"], "rb-user");
    assert_eq!(profile["state"]["categories"]["TVs"]["intents"].as_array().unwrap().len(), 1);
    let (absorbed, _) = nudge::profile::Profile::decode(&profile["state"].to_string(), String::new());
    assert_eq!(absorbed.user_id.as_deref(), Some("rb-user"));
    // The SDK absorbs exactly this answer: a fresh browser of the same user gets TVs.
    let mut laptop = nudge::engine::Engine::new(Default::default(), "0123456789abcdef0123456789abcdef");
    let identify = nudge::engine::Input {
        kind: nudge::engine::Kind::Identify,
        name: Some("rb-user".into()),
        props: None,
        options: None,
        now: BASE + 10 * MINUTE,
        seed: "fedcba9876543210fedcba9876543210".into(),
        page: Default::default(),
    };
    laptop.apply(&identify).unwrap();
    laptop.absorb_remote(&profile.to_string(), BASE + 10 * MINUTE).unwrap();
    assert!(laptop.profile.categories.get("TVs").is_some(), "the read-back was not absorbed");
    // The secret-key API leaves it out.
    assert!(srv.secret_get("/v1/profiles/rb-user").await.1.get("state").is_none());
    // The same through headers, and with the key in the query.
    let by_headers = srv
        .client
        .get(format!("{}/v1/profile?writeKey={}", srv.url, srv.site.write_key))
        .header("x-nudge-user-id", "rb-user")
        .header("x-nudge-user-hash", good.to_uppercase());
    assert_eq!(reply(by_headers.send().await.unwrap()).await, (200, profile.clone()));

    let bad = nudge_server::hmac::user_hash(&srv.site.secret_key, "someone-else");
    for query in
        [format!("userId=rb-user&userHash={bad}"), "userId=rb-user".to_string(), "userId=rb-user&userHash=".into()]
    {
        let (status, json) = reply(read(query).send().await.unwrap()).await;
        assert_eq!((status, &json["error"]), (403, &json!("invalid_user_hash")));
        assert!(json.get("stages").is_none());
    }
    // A hash made with another key (for example the write key) is no good either.
    let forged = nudge_server::hmac::user_hash(&srv.site.write_key, "rb-user");
    assert_eq!(read(format!("userId=rb-user&userHash={forged}")).send().await.unwrap().status(), 403);
    // The secret key is not a write key, and other origins are refused without CORS headers.
    let with_secret = srv
        .client
        .get(format!("{}/v1/profile?userId=rb-user&userHash={good}", srv.url))
        .bearer_auth(&srv.site.secret_key);
    assert_eq!(with_secret.send().await.unwrap().status(), 401);
    let evil = srv
        .client
        .get(format!("{}/v1/profile?userId=rb-user&userHash={good}", srv.url))
        .basic_auth(&srv.site.write_key, Some(""))
        .header("origin", "https://evil.example");
    let response = evil.send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(!response.headers().contains_key("access-control-allow-origin"));
    srv.stop().await;
}

async fn secret_routes_take_only_the_secret_key(backend: Backend) {
    let srv = TestServer::start(backend).await;
    srv.send(vec![track("k1", "k-a", "Product Viewed", 1, product("tv", "TVs", 1.0))]).await;
    for path in ["/v1/profiles/anonymous/k-a", "/v1/profiles", "/v1/changes"] {
        let url = format!("{}{path}", srv.url);
        let none = reply(srv.client.get(&url).send().await.unwrap()).await;
        assert_eq!((none.0, &none.1["error"]), (401, &json!("missing_secret_key")), "{path}");
        let write = reply(srv.client.get(&url).basic_auth(&srv.site.write_key, Some("")).send().await.unwrap()).await;
        assert_eq!((write.0, &write.1["error"]), (401, &json!("invalid_secret_key")), "{path}");
        let write = srv.client.get(&url).bearer_auth(&srv.site.write_key).send().await.unwrap();
        assert_eq!(write.status(), 401, "{path}");
        let wrong = srv.client.get(&url).bearer_auth("sk_0000").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        assert_eq!(srv.client.get(&url).bearer_auth(&srv.site.secret_key).send().await.unwrap().status(), 200);
        let basic = srv.client.get(&url).basic_auth(&srv.site.secret_key, Some("")).send().await.unwrap();
        assert_eq!(basic.status(), 200, "{path}");
    }
    // Another site's secret key sees nothing of this site.
    let other = another_site(&srv).await;
    assert_eq!(profile_as(&srv, &other, "/v1/profiles/anonymous/k-a").await.0, 404);
    // And the secret key cannot send events.
    let ingest = srv.post_without_key("/v1/batch").basic_auth(&srv.site.secret_key, Some(""));
    let (status, json) = reply(ingest.body(json!({"batch": []}).to_string()).send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (401, &json!("invalid_write_key")));
    srv.stop().await;
}

async fn site_config_is_served_with_an_etag_and_updated_with_the_secret_key(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let get = || srv.client.get(format!("{}/v1/config", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    let response = get().header("origin", ALLOWED_ORIGIN).send().await.unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert!(response.headers()["access-control-expose-headers"].to_str().unwrap().contains("ETag"));
    let (status, config) = reply(response).await;
    assert_eq!(status, 200);
    assert_eq!(config["thresholds"]["decision_days"], json!(7));
    assert_eq!(config["campaigns"], json!([]));
    let again = get().header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());
    // The key in the query, for a cacheable GET without a preflight.
    let query = srv.client.get(format!("{}/v1/config?writeKey={}", srv.url, srv.site.write_key));
    assert_eq!(query.header("if-none-match", &etag).send().await.unwrap().status(), 304);
    assert_eq!(srv.client.get(format!("{}/v1/config", srv.url)).send().await.unwrap().status(), 401);
    let preflight = srv
        .client
        .request(Method::OPTIONS, format!("{}/v1/config", srv.url))
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("If-None-Match"));

    // A profile folded with the defaults: one view is awareness.
    srv.send(vec![track("c1", "cfg-a", "Product Viewed", 1, product("tv", "TVs", 1.0))]).await;
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/cfg-a").await.1["stages"]["TVs"], "awareness");

    let put = |key: &str, body: Value| {
        srv.client
            .put(format!("{}/v1/config", srv.url))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let doc = json!({ "thresholds": { "consideration_views": 1, "decision_days": 3 } });
    assert_eq!(put(&srv.site.write_key, doc.clone()).send().await.unwrap().status(), 401);
    let (status, json) =
        reply(put(&srv.site.secret_key, json!({ "thresholds": { "decision_dayz": 1 } })).send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (400, &json!("invalid_config")));
    let (status, json) = reply(put(&srv.site.secret_key, doc).send().await.unwrap()).await;
    assert_eq!((status, &json["thresholds"]["consideration_views"]), (200, &json!(1)), "{json}");
    let changed = get().header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());
    let (_, config) = reply(changed).await;
    assert_eq!(
        (&config["thresholds"]["decision_days"], &config["thresholds"]["decision_days"]),
        (&json!(3), &json!(3))
    );
    // Stages are read with the new thresholds, and the next fold refolds with them.
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/cfg-a").await.1["stages"]["TVs"], "consideration");
    srv.send(vec![track("c2", "cfg-a", "Page Scrolled", 2, json!({}))]).await;
    assert_eq!(srv.secret_get("/v1/profiles/anonymous/cfg-a").await.1["stages"]["TVs"], "consideration");
    srv.stop().await;
}

on_both_backends!(
    shuffled_and_repeated_events_give_the_same_profile,
    two_browsers_identified_as_one_user_become_one_profile,
    segments_are_listed_in_pages_without_gaps_or_repeats,
    the_change_feed_misses_nothing_and_repeats_nothing,
    erased_people_stay_erased,
    a_browser_reads_its_profile_back_only_with_a_valid_user_hash,
    secret_routes_take_only_the_secret_key,
    site_config_is_served_with_an_etag_and_updated_with_the_secret_key,
);
