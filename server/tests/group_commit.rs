//! Ingest's group commit, on SQLite and on PostgreSQL: requests sent at once (to two sites,
//! with messageIds repeated across requests) share transactions, and still each message is
//! stored once, each reply accounts for its own messages, and every profile is the one the
//! same messages give when sent one batch at a time.

mod common;

use std::collections::HashSet;

use common::{reply, Backend, Rng, TestServer, ALLOWED_ORIGIN};
use nudge_server::sites::new_site;
use nudge_server::store::Site;
use serde_json::{json, Value};

/// 2027-01-15T09:00:00Z, in ms.
const BASE: u64 = 1_800_003_600_000;
const MINUTE: u64 = 60_000;

/// Six browsers' messages; browsers 1 and 2 are identified as `u-1`, browser 3 as `u-3`.
fn messages() -> Vec<Value> {
    let categories = ["TVs", "Phones", "Audio"];
    let mut out = Vec::new();
    for b in 0..6u64 {
        for i in 0..8u64 {
            let category = categories[((b + i) % 3) as usize];
            let event = if i % 4 == 3 { "Product Added" } else { "Product Viewed" };
            out.push(json!({
                "type": "track", "event": event, "messageId": format!("m-{b}-{i}"),
                "anonymousId": format!("a-{b}"),
                "timestamp": nudge::time::to_iso(BASE + (b * 100 + i * 3) * MINUTE),
                "properties": { "product_id": format!("{category}-{i}"), "category": category, "price": 100 + i },
            }));
        }
    }
    for (b, user) in [(1u64, "u-1"), (2, "u-1"), (3, "u-3")] {
        out.push(json!({
            "type": "identify", "messageId": format!("id-{b}"), "anonymousId": format!("a-{b}"), "userId": user,
            "timestamp": nudge::time::to_iso(BASE + (b * 100 + 10) * MINUTE), "traits": { "plan": "gold" },
        }));
    }
    out
}

async fn site(srv: &TestServer) -> Site {
    let site = new_site("Shop", &[ALLOWED_ORIGIN.into()], 0).unwrap();
    srv.store.create_site(&site).await.unwrap();
    site
}

fn send(srv: &TestServer, site: &Site, messages: Vec<Value>) -> tokio::task::JoinHandle<(u16, Value, usize)> {
    let n = messages.len();
    let body = json!({ "batch": messages }).to_string();
    let request = srv.post_without_key("/v1/batch").basic_auth(&site.write_key, Some("")).body(body);
    tokio::spawn(async move {
        let (status, json) = reply(request.send().await.unwrap()).await;
        (status, json, n)
    })
}

async fn profiles(srv: &TestServer, site: &Site) -> Vec<Value> {
    let mut out = Vec::new();
    for path in ["u-1", "u-3", "anonymous/a-0", "anonymous/a-4", "anonymous/a-5"] {
        let request = srv.client.get(format!("{}/v1/profiles/{path}", srv.url)).bearer_auth(&site.secret_key);
        let (status, profile) = reply(request.send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {profile}");
        out.push(profile);
    }
    out
}

async fn concurrent_requests_share_transactions_and_change_nothing(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let all = messages();

    // The reference: everything in one batch.
    let reference = site(&srv).await;
    let (status, json, _) = send(&srv, &reference, all.clone()).await.unwrap();
    assert_eq!((status, &json["stored"]), (200, &json!(all.len())), "{json}");
    let expected = profiles(&srv, &reference).await;

    // Two sites, each sent the same messages shuffled, in 12 requests at once, each request
    // repeating 3 messages of other requests.
    let sites = [site(&srv).await, site(&srv).await];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sends = Vec::new();
    for site in &sites {
        let mut shuffled = all.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.next(i + 1));
        }
        for chunk in shuffled.chunks(shuffled.len().div_ceil(12)) {
            let mut batch = chunk.to_vec();
            for _ in 0..3 {
                batch.push(all[rng.next(all.len())].clone());
            }
            sends.push((site.id.clone(), send(&srv, site, batch)));
        }
    }
    let mut stored = [0u64; 2];
    for (site_id, handle) in sends {
        let (status, json, n) = handle.await.unwrap();
        assert_eq!(status, 200, "{json}");
        let (s, d) = (json["stored"].as_u64().unwrap(), json["duplicates"].as_u64().unwrap());
        assert_eq!((s + d, json["accepted"].as_u64().unwrap()), (n as u64, n as u64), "{json}");
        stored[usize::from(site_id == sites[1].id)] += s;
    }
    for (i, site) in sites.iter().enumerate() {
        assert_eq!(stored[i], all.len() as u64, "each message stored once, by exactly one request");
        let events = srv.store.events_after(&site.id, 0, 10_000).await.unwrap();
        let sent: Vec<&str> =
            events.iter().filter(|e| !common::is_derived(e)).map(|e| e.event.message_id.as_str()).collect();
        assert_eq!(sent.len(), all.len());
        assert_eq!(sent.iter().collect::<HashSet<_>>().len(), all.len());
        assert_eq!(profiles(&srv, site).await, expected, "the same profiles as one batch gives");
    }
    srv.stop().await;
}

on_both_backends!(concurrent_requests_share_transactions_and_change_nothing);
