//! Ingest over HTTP, on SQLite and on PostgreSQL: what is stored, what is refused and why.

mod common;

use std::io::Write;

use common::{batch, reply, track, Backend, TestServer, ALLOWED_ORIGIN};
use nudge_server::config::Rate;
use serde_json::{json, Value};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

async fn batch_is_stored(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = batch(vec![
        track("m-1"),
        json!({"type": "page", "name": "Home", "anonymousId": "anon-1", "messageId": "m-2"}),
        json!({"type": "identify", "userId": "user-1", "anonymousId": "anon-1", "messageId": "m-3",
               "traits": {"email": "a@example.com"}}),
    ]);
    let (status, json) = reply(srv.post("/v1/batch").body(body.to_string()).send().await.unwrap()).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json, json!({"success": true, "accepted": 3, "stored": 3, "duplicates": 0}));

    let events = srv.events().await;
    let summary: Vec<_> =
        events.iter().map(|e| (e.event.message_id.as_str(), e.event.kind, e.event.event.as_deref())).collect();
    assert_eq!(
        summary,
        [("m-1", "track", Some("Product Viewed")), ("m-2", "page", Some("Home")), ("m-3", "identify", None)]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let identify = &events[2].event;
    assert_eq!((identify.user_id.as_deref(), identify.anonymous_id.as_deref()), (Some("user-1"), Some("anon-1")));
    let stored: Value = serde_json::from_str(&events[0].event.body).unwrap();
    assert_eq!(stored, track("m-1"));
    // Clock-skew correction: the event was sent 1 s after it happened.
    assert_eq!(events[0].event.timestamp_ms, events[0].event.received_ms - 1000);
    srv.stop().await;
}

async fn repeated_message_id_is_stored_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = batch(vec![track("m-1"), track("m-2"), track("m-1")]).to_string();
    let (status, json) = reply(srv.post("/v1/batch").body(body.clone()).send().await.unwrap()).await;
    assert_eq!((status, &json["stored"], &json["duplicates"]), (200, &json!(2), &json!(1)), "{json}");
    let (status, json) = reply(srv.post("/v1/batch").body(body).send().await.unwrap()).await;
    assert_eq!((status, &json["stored"], &json["duplicates"]), (200, &json!(0), &json!(3)), "{json}");
    let ids: Vec<_> = srv.events().await.into_iter().map(|e| e.event.message_id).collect();
    assert_eq!(ids, ["m-1", "m-2"]);

    // Message ids are unique per site: another site's m-1 is its own.
    let other = nudge_server::sites::new_site("Other shop", &[], 0).unwrap();
    srv.store.create_site(&other).await.unwrap();
    let request = srv.post_without_key("/v1/batch").basic_auth(&other.write_key, Some(""));
    let (status, json) = reply(request.body(batch(vec![track("m-1")]).to_string()).send().await.unwrap()).await;
    assert_eq!((status, &json["stored"]), (200, &json!(1)), "{json}");
    let other_events = srv.store.events_after(&other.id, 0, 10).await.unwrap();
    assert_eq!(other_events.iter().filter(|e| !common::is_derived(e)).count(), 1);
    assert_eq!(srv.events().await.len(), 2);
    srv.stop().await;
}

async fn concurrent_duplicates_are_stored_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = batch((0..20).map(|i| track(&format!("m-{i}"))).collect()).to_string();
    let sends = (0..8).map(|_| {
        let request = srv.post("/v1/batch").body(body.clone());
        tokio::spawn(async move { reply(request.send().await.unwrap()).await })
    });
    let mut stored = 0;
    for send in sends.collect::<Vec<_>>() {
        let (status, json) = send.await.unwrap();
        assert_eq!(status, 200, "{json}");
        stored += json["stored"].as_u64().unwrap();
    }
    assert_eq!(stored, 20);
    assert_eq!(srv.events().await.len(), 20);
    srv.stop().await;
}

async fn invalid_messages_are_listed_and_valid_ones_kept(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = batch(vec![
        track("ok-1"),
        json!({"type": "track", "event": "No Id", "messageId": "bad-1"}),
        track("ok-2"),
        json!({"type": "shout", "userId": "u", "messageId": "bad-2"}),
        json!("not an object"),
    ]);
    let (status, json) = reply(srv.post("/v1/batch").body(body.to_string()).send().await.unwrap()).await;
    assert_eq!(status, 400, "{json}");
    assert_eq!((&json["success"], &json["error"]), (&json!(false), &json!("invalid_messages")));
    assert_eq!((&json["accepted"], &json["stored"]), (&json!(2), &json!(2)));
    let rejected: Vec<_> = json["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["error"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(rejected, [(1, "missing_id".into()), (3, "invalid_type".into()), (4, "invalid_message".into())]);
    let ids: Vec<_> = srv.events().await.into_iter().map(|e| e.event.message_id).collect();
    assert_eq!(ids, ["ok-1", "ok-2"]);

    let (status, json) = reply(srv.post("/v1/batch").body("{\"batch\": [").send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (400, &json!("invalid_json")));
    let (status, json) = reply(srv.post("/v1/batch").body("{}").send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (400, &json!("invalid_json")));
    srv.stop().await;
}

async fn keys_are_required(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = batch(vec![track("m-1")]).to_string();
    let (status, json) = reply(srv.post_without_key("/v1/batch").body(body.clone()).send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (401, &json!("missing_write_key")));
    let wrong = srv.post_without_key("/v1/batch").basic_auth("wk_nope", Some("")).body(body.clone());
    let (status, json) = reply(wrong.send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (401, &json!("invalid_write_key")));
    let garbled = srv.post_without_key("/v1/batch").header("authorization", "Basic ***").body(body);
    assert_eq!(garbled.send().await.unwrap().status(), 401);
    assert!(srv.events().await.is_empty());

    // The key in the body, as analytics.js and sendBeacon send it.
    let body = json!({"batch": [track("m-1")], "writeKey": srv.site.write_key});
    let (status, json) = reply(srv.post_without_key("/v1/batch").body(body.to_string()).send().await.unwrap()).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(srv.events().await.len(), 1);
    srv.stop().await;
}

async fn oversized_requests_get_413(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let pad = |n: usize| "x".repeat(n);
    // A batch over 500 KB: nothing stored.
    let messages: Vec<_> = (0..20)
        .map(|i| {
            let mut m = track(&format!("big-{i}"));
            m["properties"]["pad"] = json!(pad(30 * 1024));
            m
        })
        .collect();
    let (status, json) = reply(srv.post("/v1/batch").body(batch(messages).to_string()).send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (413, &json!("payload_too_large")));
    // The same over 500 KB once decoded, though small when gzipped.
    let messages: Vec<_> = (0..20)
        .map(|i| {
            let mut m = track(&format!("big-{i}"));
            m["properties"]["pad"] = json!(pad(30 * 1024));
            m
        })
        .collect();
    let zipped = gzip(batch(messages).to_string().as_bytes());
    assert!(zipped.len() < 100 * 1024);
    let request = srv.post("/v1/batch").header("content-encoding", "gzip").body(zipped);
    assert_eq!(request.send().await.unwrap().status(), 413);
    assert!(srv.events().await.is_empty());

    // One message over 32 KB in a batch: it is rejected, the others are stored.
    let mut big = track("big");
    big["properties"]["pad"] = json!(pad(33 * 1024));
    let body = batch(vec![track("small-1"), big, track("small-2")]);
    let (status, json) = reply(srv.post("/v1/batch").body(body.to_string()).send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (413, &json!("message_too_large")), "{json}");
    assert_eq!((&json["rejected"][0]["index"], &json["stored"]), (&json!(1), &json!(2)));
    assert_eq!(srv.events().await.len(), 2);

    // A single call over 32 KB.
    let mut big = track("big-single");
    big["properties"]["pad"] = json!(pad(33 * 1024));
    let (status, json) = reply(srv.post("/v1/track").body(big.to_string()).send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (413, &json!("payload_too_large")));
    assert_eq!(srv.events().await.len(), 2);
    srv.stop().await;
}

async fn wrong_content_type_gets_415(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = batch(vec![track("m-1")]).to_string();
    let form = srv.post_typed("/v1/batch", "application/x-www-form-urlencoded").body(body.clone());
    let (status, json) = reply(form.send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (415, &json!("unsupported_content_type")));
    let no_type = srv.client.post(format!("{}/v1/batch", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    assert_eq!(no_type.body(body.clone()).send().await.unwrap().status(), 415);
    let brotli = srv.post("/v1/batch").header("content-encoding", "br").body(body.clone());
    let (status, json) = reply(brotli.send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (415, &json!("unsupported_content_encoding")));
    assert!(srv.events().await.is_empty());
    // text/plain holding JSON is what sendBeacon sends.
    let beacon = srv.post_typed("/v1/batch", "text/plain;charset=UTF-8").body(body);
    assert_eq!(beacon.send().await.unwrap().status(), 200);
    assert_eq!(srv.events().await.len(), 1);
    srv.stop().await;
}

async fn rates_are_limited_with_retry_after(backend: Backend) {
    // Per write key: a burst of 2, then one request per 1000 s.
    let config =
        nudge_server::config::Config { key_rate: Rate { per_second: 0.001, burst: 2.0 }, ..common::unlimited() };
    let srv = TestServer::with_config(backend, config).await;
    let send = |id: &str| srv.post("/v1/batch").body(batch(vec![track(id)]).to_string()).send();
    assert_eq!(send("m-1").await.unwrap().status(), 200);
    assert_eq!(send("m-2").await.unwrap().status(), 200);
    let limited = send("m-3").await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((900..=1000).contains(&retry_after), "Retry-After {retry_after}");
    let (status, json) = reply(limited).await;
    assert_eq!((status, &json["error"]), (429, &json!("rate_limited")));
    // The key in the body counts against the same bucket.
    let body = json!({"batch": [track("m-4")], "writeKey": srv.site.write_key}).to_string();
    assert_eq!(srv.post_without_key("/v1/batch").body(body).send().await.unwrap().status(), 429);
    assert_eq!(srv.events().await.len(), 2);
    srv.stop().await;

    // Per client address, whatever the key.
    let config =
        nudge_server::config::Config { addr_rate: Rate { per_second: 0.001, burst: 1.0 }, ..common::unlimited() };
    let srv = TestServer::with_config(backend, config).await;
    assert_eq!(srv.post("/v1/batch").body(batch(vec![track("a")]).to_string()).send().await.unwrap().status(), 200);
    let other_key = srv.post_without_key("/v1/batch").basic_auth("wk_other", Some(""));
    let limited = other_key.body(batch(vec![track("b")]).to_string()).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    srv.stop().await;
}

async fn gzip_bodies_are_read(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = gzip(batch(vec![track("m-1"), track("m-2")]).to_string().as_bytes());
    let request = srv.post("/v1/batch").header("content-encoding", "gzip").body(body);
    let (status, json) = reply(request.send().await.unwrap()).await;
    assert_eq!((status, &json["stored"]), (200, &json!(2)), "{json}");
    let broken = srv.post("/v1/batch").header("content-encoding", "gzip").body(b"not gzip at all".to_vec());
    let (status, json) = reply(broken.send().await.unwrap()).await;
    assert_eq!((status, &json["error"]), (400, &json!("invalid_gzip")));
    assert_eq!(srv.events().await.len(), 2);
    srv.stop().await;
}

async fn only_allowed_origins_may_send_from_a_browser(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let preflight = |origin: &str| {
        srv.client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/batch", srv.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let ok = preflight(ALLOWED_ORIGIN).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    let allowed_headers = ok.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused.headers().contains_key("access-control-allow-origin"));

    // From the allowed origin, as fetch(keepalive) sends it.
    let from_shop = srv.post("/v1/batch").header("origin", ALLOWED_ORIGIN);
    let response = from_shop.body(batch(vec![track("m-1")]).to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert!(response.headers()["access-control-expose-headers"].to_str().unwrap().contains("Retry-After"));

    // From another origin, as sendBeacon sends it (text/plain, key in the body, no preflight).
    let body = json!({"batch": [track("m-2")], "writeKey": srv.site.write_key}).to_string();
    let beacon = srv
        .client
        .post(format!("{}/v1/batch", srv.url))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body);
    let response = beacon.send().await.unwrap();
    assert!(!response.headers().contains_key("access-control-allow-origin"));
    let (status, json) = reply(response).await;
    assert_eq!((status, &json["error"]), (403, &json!("origin_not_allowed")));
    let ids: Vec<_> = srv.events().await.into_iter().map(|e| e.event.message_id).collect();
    assert_eq!(ids, ["m-1"]);
    srv.stop().await;
}

async fn single_calls_store_one_message(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let calls = [
        (
            "/v1/track",
            json!({"event": "Order Completed", "userId": "u1", "messageId": "t", "properties": {"revenue": 10}}),
        ),
        ("/v1/page", json!({"name": "Home", "anonymousId": "a1", "messageId": "p"})),
        ("/v1/screen", json!({"name": "Cart", "anonymousId": "a1", "messageId": "s"})),
        ("/v1/identify", json!({"userId": "u1", "traits": {"plan": "gold"}, "messageId": "i"})),
        ("/v1/group", json!({"userId": "u1", "groupId": "g1", "messageId": "g"})),
        ("/v1/alias", json!({"userId": "u1", "previousId": "a1", "messageId": "a"})),
        ("/v1/t", json!({"event": "Short Form", "userId": "u1", "messageId": "t2", "writeKey": "ignored"})),
    ];
    for (path, body) in calls {
        let (status, json) = reply(srv.post(path).body(body.to_string()).send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {json}");
    }
    let kinds: Vec<_> = srv.events().await.into_iter().map(|e| (e.event.message_id, e.event.kind)).collect();
    let expected = [
        ("t", "track"),
        ("p", "page"),
        ("s", "screen"),
        ("i", "identify"),
        ("g", "group"),
        ("a", "alias"),
        ("t2", "track"),
    ];
    assert_eq!(kinds, expected.map(|(m, k)| (m.to_string(), k)));
    let stored: Value = serde_json::from_str(&srv.events().await[6].event.body).unwrap();
    assert_eq!(stored["type"], "track");
    assert!(stored.get("writeKey").is_none());

    let mismatch = json!({"type": "identify", "userId": "u1", "messageId": "x"});
    let (status, json) = reply(srv.post("/v1/track").body(mismatch.to_string()).send().await.unwrap()).await;
    assert_eq!((status, &json["rejected"][0]["error"]), (400, &json!("invalid_type")));
    // Without a messageId the server makes one.
    let no_id = json!({"event": "E", "userId": "u1"});
    assert_eq!(srv.post("/v1/track").body(no_id.to_string()).send().await.unwrap().status(), 200);
    assert!(srv.events().await.last().unwrap().event.message_id.starts_with("api-"));
    let (status, _) = reply(srv.post("/v1/nothing").body("{}").send().await.unwrap()).await;
    assert_eq!(status, 404);
    srv.stop().await;
}

/// Exactly what @segment/analytics-node sends: Basic auth, JSON, `node-next-` message ids,
/// `_metadata`, `context.library`, Date timestamps serialized with `Z`.
async fn analytics_node_payload_is_accepted(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = json!({
        "batch": [
            {
                "userId": "019mr8mf4r",
                "event": "Order Completed",
                "properties": { "order_id": "o-1", "revenue": 99.5, "currency": "USD",
                                "products": [{ "product_id": "tv-1", "quantity": 1 }] },
                "type": "track",
                "context": { "library": { "name": "@segment/analytics-node", "version": "2.1.2" } },
                "integrations": {},
                "messageId": "node-next-1736931600000-f47ac10b-58cc-4372-a567-0e02b2c3d479",
                "timestamp": "2027-01-15T09:00:00.000Z",
                "_metadata": { "nodeVersion": "20.11.0", "jsRuntime": "node" }
            },
            {
                "anonymousId": "1a2b3c",
                "traits": { "email": "jane@example.com" },
                "type": "identify",
                "context": { "library": { "name": "@segment/analytics-node", "version": "2.1.2" } },
                "integrations": {},
                "messageId": "node-next-1736931600001-9b2c5d1e-0000-4000-8000-000000000001",
                "timestamp": "2027-01-15T09:00:00.100Z",
                "_metadata": { "nodeVersion": "20.11.0", "jsRuntime": "node" }
            }
        ],
        "sentAt": "2027-01-15T09:00:00.200Z"
    });
    let request = srv.post("/v1/batch").header("user-agent", "analytics-node-next/latest").body(body.to_string());
    let (status, json) = reply(request.send().await.unwrap()).await;
    assert_eq!((status, &json["stored"]), (200, &json!(2)), "{json}");
    let events = srv.events().await;
    assert_eq!(events[0].event.user_id.as_deref(), Some("019mr8mf4r"));
    assert_eq!(events[1].event.anonymous_id.as_deref(), Some("1a2b3c"));
    let stored: Value = serde_json::from_str(&events[0].event.body).unwrap();
    assert_eq!(stored, body["batch"][0]);
    srv.stop().await;
}

/// Exactly what analytics-python sends: gzip (with `gzip=True`), Basic auth and the key in
/// the body too, null `anonymousId`, `isoformat()` timestamps with microseconds and `+00:00`.
async fn analytics_python_payload_is_accepted(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = json!({
        "batch": [{
            "integrations": {},
            "anonymousId": null,
            "properties": { "plan": "Enterprise" },
            "timestamp": "2027-01-15T09:00:00.123456+00:00",
            "context": { "library": { "name": "analytics-python", "version": "2.3.3" } },
            "userId": "f4ca124298",
            "type": "track",
            "event": "Signed Up",
            "messageId": "a7b6a6b4-0d7e-4f4a-9b0f-2d36f0c7e2a1"
        }],
        "sentAt": "2027-01-15T09:00:00.523456+00:00",
        "writeKey": srv.site.write_key
    });
    let request = srv
        .post("/v1/batch")
        .header("user-agent", "analytics-python/2.3.3")
        .header("content-encoding", "gzip")
        .body(gzip(body.to_string().as_bytes()));
    let (status, json) = reply(request.send().await.unwrap()).await;
    assert_eq!((status, &json["stored"]), (200, &json!(1)), "{json}");
    let event = &srv.events().await[0].event;
    assert_eq!((event.user_id.as_deref(), event.anonymous_id.as_deref()), (Some("f4ca124298"), None));
    assert_eq!(event.timestamp_ms, event.received_ms - 400);
    srv.stop().await;
}

on_both_backends!(
    batch_is_stored,
    repeated_message_id_is_stored_once,
    concurrent_duplicates_are_stored_once,
    invalid_messages_are_listed_and_valid_ones_kept,
    keys_are_required,
    oversized_requests_get_413,
    wrong_content_type_gets_415,
    rates_are_limited_with_retry_after,
    gzip_bodies_are_read,
    only_allowed_origins_may_send_from_a_browser,
    single_calls_store_one_message,
    analytics_node_payload_is_accepted,
    analytics_python_payload_is_accepted,
);
