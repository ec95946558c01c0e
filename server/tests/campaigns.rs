//! Campaigns, coupons and campaign reports over HTTP (and the real binary's `campaigns`
//! command), on SQLite and on PostgreSQL.

mod common;

use std::process::Command;

use common::{reply, Backend, TestServer, ALLOWED_ORIGIN};
use nudge_server::app::now_ms;
use nudge_server::site_config;
use reqwest::Method;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_nudge-server");

/// A campaign with a unique percent offer.
fn unique_campaign(id: &str) -> Value {
    json!({
        "id": id, "priority": 10, "holdout": 0.1,
        "trigger": {"on": "exit-intent"},
        "audience": {"stage": {"category": "tvs", "in": ["decision"]}},
        "offer": {"unique": true, "percent": 10, "expiresDays": 7},
        "content": {"title": "10% off your TV", "text": "<img src=x onerror=alert(1)>", "button": "Send my code",
                    "emailField": true},
        "caps": {"perSession": 1, "dismissDays": 7}
    })
}

/// A campaign with a fixed code.
fn fixed_campaign(id: &str) -> Value {
    json!({"id": id, "trigger": {"on": "abandon-intent", "kind": "cart"},
           "offer": {"code": "SAVE10", "amount": 10, "currency": "USD"}, "content": {"text": "Use SAVE10"}})
}

async fn put_campaigns(srv: &TestServer, content_type: &str, body: String) -> (u16, Value) {
    let request = srv.secret(Method::PUT, "/v1/campaigns").header("content-type", content_type).body(body);
    reply(request.send().await.unwrap()).await
}

/// `GET /v1/config` with the write key: status, ETag and body.
async fn config(srv: &TestServer, if_none_match: Option<&str>) -> (u16, String, String) {
    let mut request = srv.client.get(format!("{}/v1/config", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response.headers().get("etag").unwrap().to_str().unwrap().to_string();
    (status, etag, response.text().await.unwrap())
}

async fn issue(srv: &TestServer, campaign: &str, email: &str, anon: &str) -> (u16, Value) {
    let body = json!({"campaign_id": campaign, "email": email, "anonymousId": anon});
    reply(srv.post("/v1/coupons").body(body.to_string()).send().await.unwrap()).await
}

async fn config_tag(srv: &TestServer) -> String {
    let mut conn = srv.store.connection().await.unwrap();
    site_config::load(&mut conn.db(), &srv.site.id).await.unwrap().tag
}

async fn campaigns_go_out_in_the_config_with_a_new_etag(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (status, etag_before, body) = config(&srv, None).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["campaigns"], json!([]));
    let tag_before = config_tag(&srv).await;

    let list = json!([unique_campaign("tv-newsletter"), fixed_campaign("cart-save")]);
    let (status, answer) = put_campaigns(&srv, "application/json", list.to_string()).await;
    assert_eq!((status, &answer["campaigns"]), (200, &list), "{answer}");
    assert_eq!(srv.secret_get("/v1/campaigns").await, (200, json!({ "campaigns": list })));

    // The config carries them exactly as stored, under a new ETag; the old one no longer
    // matches, the new one gives a 304.
    let (status, etag, body) = config(&srv, Some(&etag_before)).await;
    assert_eq!(status, 200);
    assert_ne!(etag, etag_before);
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served["campaigns"], list);
    assert_eq!(served["campaigns"][0]["content"]["text"], "<img src=x onerror=alert(1)>");
    assert_eq!(config(&srv, Some(&etag)).await.0, 304);
    // Campaigns are not thresholds: profiles are not folded again.
    assert_eq!(config_tag(&srv).await, tag_before);

    // TOML replaces the whole list.
    let toml = "[[campaigns]]\nid = \"scroll\"\ntrigger = { on = \"scroll-depth\", percent = 50 }\n\
                [campaigns.content]\ntitle = \"Still looking?\"\n";
    let (status, answer) = put_campaigns(&srv, "application/toml", toml.into()).await;
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<&str> = answer["campaigns"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["scroll"]);

    // A bad campaign is refused with the field named, and changes nothing.
    let mut bad = unique_campaign("tv-newsletter");
    bad["holdout"] = json!(0.95);
    let (status, answer) = put_campaigns(&srv, "application/json", json!([bad]).to_string()).await;
    assert_eq!((status, &answer["error"]), (400, &json!("invalid_campaigns")), "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("campaigns[0] (\"tv-newsletter\").holdout"), "{message}");
    let (status, answer) = put_campaigns(&srv, "application/toml", "[[campaigns]\nid = 1".into()).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().starts_with("invalid TOML"), "{answer}");
    assert_eq!(srv.secret_get("/v1/campaigns").await.1["campaigns"][0]["id"], "scroll");

    // Only the secret key may write them.
    let request = srv.client.put(format!("{}/v1/campaigns", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    let (status, _) = reply(request.header("content-type", "application/json").body("[]").send().await.unwrap()).await;
    assert_eq!(status, 401);
    srv.stop().await;
}

async fn the_cli_loads_campaigns_and_refuses_a_bad_file(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let dir = std::env::temp_dir().join(format!("nudge-campaigns-{}", srv.site.id));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("NUDGE_DB").env("DATABASE_URL", srv.db.url()).args(args);
        cmd.output().unwrap()
    };
    let toml = dir.join("campaigns.toml");
    std::fs::write(
        &toml,
        "[[campaigns]]\nid = \"tv-newsletter\"\nholdout = 0.2\ntrigger = { on = \"stage-entered\", stage = \"decision\", \
         category = \"tvs\" }\noffer = { unique = true, amount = 20, currency = \"USD\", expiresDays = 14 }\n\
         content = { title = \"$20 off\", emailField = true }\n",
    )
    .unwrap();
    let out = run(&["campaigns", "load", "--site", &srv.site.id, "--file", toml.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["campaigns"][0]["offer"]["amount"], 20);
    let (_, _, body) = config(&srv, None).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["campaigns"][0]["id"], "tv-newsletter");

    // A mistake in the file: a clear message, a failing exit, nothing changed.
    let json_file = dir.join("bad.json");
    let mut bad = unique_campaign("tv-newsletter");
    bad["trigger"] = json!({"on": "shake"});
    std::fs::write(&json_file, json!([bad]).to_string()).unwrap();
    let out = run(&["campaigns", "load", "--site", &srv.site.id, "--file", json_file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.json") && stderr.contains(".trigger.on: unknown trigger \"shake\""), "{stderr}");
    let out = run(&["campaigns", "list", "--site", &srv.site.id]);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["campaigns"][0]["trigger"]["on"], "stage-entered");
    assert!(!run(&["campaigns", "list", "--site", "site_nope"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
    srv.stop().await;
}

async fn a_coupon_is_issued_once_per_email_and_lands_in_the_profile(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let list = json!([unique_campaign("tv-newsletter"), fixed_campaign("cart-save")]);
    assert_eq!(put_campaigns(&srv, "application/json", list.to_string()).await.0, 200);

    let before = now_ms();
    let (status, first) = issue(&srv, "tv-newsletter", "Ann.Lee@Shop.Example", "anon-ann").await;
    assert_eq!(status, 200, "{first}");
    let code = first["coupon"].as_str().unwrap().to_string();
    assert!(code.starts_with("NUDGE-") && code.len() == 15, "{code}");
    assert_eq!(first["percent"], 10.0);
    assert!(first.get("amount").is_none() && first.get("currency").is_none());
    let expires = nudge_server::message::parse_time(first["expires_at"].as_str().unwrap()).unwrap();
    let week = 7 * 86_400_000;
    assert!(expires >= before + week - 1000 && expires <= now_ms() + week, "{first}");

    // The same email (any case) gets the same code, even asked for at once from elsewhere.
    let again = (0..6).map(|i| {
        let body =
            json!({"campaign_id": "tv-newsletter", "email": " ann.lee@shop.example", "anonymousId": format!("x{i}")});
        let request = srv.post("/v1/coupons").body(body.to_string());
        tokio::spawn(async move { reply(request.send().await.unwrap()).await })
    });
    for answer in again.collect::<Vec<_>>() {
        let (status, answer) = answer.await.unwrap();
        assert_eq!((status, answer), (200, first.clone()));
    }
    let (_, other) = issue(&srv, "tv-newsletter", "bob@shop.example", "anon-bob").await;
    assert_ne!(other["coupon"], first["coupon"]);

    // Refusals.
    let long = format!("{}@shop.example", "a".repeat(300));
    for (campaign, email, status, error) in [
        ("tv-newsletter", "ann@", 400, "invalid_coupon_request"),
        ("tv-newsletter", long.as_str(), 400, "invalid_coupon_request"),
        ("no-such", "ann@shop.example", 404, "campaign_not_found"),
        ("cart-save", "ann@shop.example", 400, "offer_not_unique"),
    ] {
        let (s, answer) = issue(&srv, campaign, email, "anon-ann").await;
        assert_eq!((s, answer["error"].as_str().unwrap()), (status, error), "{answer}");
    }
    let (s, answer) = issue(&srv, "tv-newsletter", "not an email", "anon-ann").await;
    assert!(s == 400 && answer["message"].as_str().unwrap().starts_with("email:"), "{answer}");
    let body = json!({"campaign_id": "tv-newsletter", "email": "ann@shop.example"}).to_string();
    let (s, _) = reply(srv.post_without_key("/v1/coupons").body(body).send().await.unwrap()).await;
    assert_eq!(s, 401);

    // From a browser: preflight, then the answer readable by the allowed origin only.
    let preflight = srv
        .client
        .request(Method::OPTIONS, format!("{}/v1/coupons", srv.url))
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    let body = json!({"campaign_id": "tv-newsletter", "email": "cy@shop.example", "anonymousId": "anon-cy"});
    let response =
        srv.post("/v1/coupons").header("origin", ALLOWED_ORIGIN).body(body.to_string()).send().await.unwrap();
    assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), ALLOWED_ORIGIN);
    let (status, cy) = reply(response).await;
    assert_eq!(status, 200, "{cy}");
    let response =
        srv.post("/v1/coupons").header("origin", "https://evil.example").body(body.to_string()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(response.headers().get("access-control-allow-origin").is_none());

    // The `Coupon Issued` event: stored once, in Ann's profile and in the change feed.
    let issued: Vec<_> =
        srv.events().await.into_iter().filter(|e| e.event.message_id == format!("coupon-{code}")).collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        (issued[0].event.event.as_deref(), issued[0].event.anonymous_id.as_deref()),
        (Some("Coupon Issued"), Some("anon-ann"))
    );
    let body: Value = serde_json::from_str(&issued[0].event.body).unwrap();
    assert_eq!(
        body["properties"],
        json!({"campaign_id": "tv-newsletter", "coupon": code, "email": "ann.lee@shop.example", "percent": 10.0,
               "expires_at": first["expires_at"]})
    );
    let (status, profile) = srv.secret_get("/v1/profiles/anonymous/anon-ann").await;
    assert_eq!((status, &profile["events"]), (200, &json!(1)), "{profile}");
    // (On PostgreSQL the feed shows a row once every transaction older than it has ended,
    // other tests' included, so it is followed until it catches up.)
    let (mut cursor, mut in_feed) = (String::new(), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while in_feed == 0 {
        let (status, page) = srv.secret_get(&format!("/v1/changes?limit=1000&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        let changes = page["changes"].as_array().unwrap();
        in_feed += changes.iter().filter(|c| c["message"]["messageId"] == format!("coupon-{code}")).count();
        cursor = page["cursor"].as_str().unwrap().to_string();
        assert!(std::time::Instant::now() < deadline, "the feed did not catch up");
        tokio::task::yield_now().await;
    }
    let (_, page) = srv.secret_get(&format!("/v1/changes?limit=1000&cursor={cursor}")).await;
    let again =
        page["changes"].as_array().unwrap().iter().filter(|c| c["message"]["messageId"] == format!("coupon-{code}"));
    assert_eq!((in_feed, again.count()), (1, 0));
    let coupon_events = srv.events().await.iter().filter(|e| e.event.event.as_deref() == Some("Coupon Issued")).count();
    assert_eq!(coupon_events, 3, "ann, bob and cy");

    // Erasing Cy erases her coupon and its email: her browser gets no code any more, and
    // her email asked for again from elsewhere gets a new one.
    let response = srv.secret(Method::DELETE, "/v1/profiles/anonymous/anon-cy").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, answer) = issue(&srv, "tv-newsletter", "cy@shop.example", "anon-cy").await;
    assert_eq!((status, &answer["error"]), (403, &json!("person_erased")));
    let (status, answer) = issue(&srv, "tv-newsletter", "cy@shop.example", "anon-cy-2").await;
    assert_eq!(status, 200);
    assert_ne!(answer["coupon"], cy["coupon"]);
    srv.stop().await;
}

fn order(message_id: &str, anon: &str, coupon: &str, order_id: &str, revenue: f64, at_ms: i64) -> Value {
    json!({"type": "track", "event": "Order Completed", "anonymousId": anon, "messageId": message_id,
           "timestamp": nudge::time::to_iso(at_ms as u64),
           "properties": {"order_id": order_id, "revenue": revenue, "coupon": coupon, "currency": "USD"}})
}

async fn a_coupon_is_redeemed_once_and_misuse_is_reported(backend: Backend) {
    let srv = TestServer::start(backend).await;
    assert_eq!(put_campaigns(&srv, "application/json", json!([unique_campaign("tv")]).to_string()).await.0, 200);
    let (_, ann) = issue(&srv, "tv", "ann@shop.example", "anon-ann").await;
    let (_, bob) = issue(&srv, "tv", "bob@shop.example", "anon-bob").await;
    let (ann, bob) = (ann["coupon"].as_str().unwrap().to_string(), bob["coupon"].as_str().unwrap().to_string());
    let now = now_ms();

    // Typed in lower case at the checkout: still Ann's code. Sent twice: stored once.
    let first = order("o-1", "anon-ann", &ann.to_lowercase(), "1001", 499.0, now);
    srv.send(vec![first.clone()]).await;
    let json = srv.send(vec![first]).await;
    assert_eq!(json["duplicates"], 1);
    let (_, report) = srv.secret_get("/v1/campaigns/tv/report").await;
    assert_eq!(report["coupons"], json!({"issued": 2, "redeemed": 1, "reused": 0, "expiredUsed": 0}), "{report}");
    assert_eq!(report["revenue"], 499.0);

    // Used again (by someone else, in one batch with an unknown code): reported once.
    srv.send(vec![
        order("o-2", "anon-eve", &ann, "1002", 300.0, now + 1000),
        order("o-3", "anon-eve", "SAVE10", "1003", 5.0, now),
    ])
    .await;
    // Bob's code used after it expired (the order is timed eight days on).
    srv.send(vec![order("o-4", "anon-bob", &bob, "1004", 120.0, now + 8 * 86_400_000)]).await;
    let (_, report) = srv.secret_get("/v1/campaigns/tv/report").await;
    assert_eq!(report["coupons"], json!({"issued": 2, "redeemed": 1, "reused": 1, "expiredUsed": 1}), "{report}");
    assert_eq!(report["revenue"], 499.0);

    let reports: Vec<Value> = srv
        .all_events()
        .await
        .iter()
        .filter(|e| matches!(e.event.event.as_deref(), Some("Coupon Reused" | "Coupon Expired Used")))
        .map(|e| {
            let body: Value = serde_json::from_str(&e.event.body).unwrap();
            json!([e.event.event, e.event.anonymous_id, body["properties"]["coupon"], body["properties"]["order_id"]])
        })
        .collect();
    assert_eq!(
        reports,
        [json!(["Coupon Reused", "anon-eve", ann, "1002"]), json!(["Coupon Expired Used", "anon-bob", bob, "1004"])]
    );
    // Folded like any message: Eve's profile holds her order and its report.
    let (_, eve) = srv.secret_get("/v1/profiles/anonymous/anon-eve").await;
    assert_eq!(eve["events"], 3, "{eve}");
    srv.stop().await;
}

fn popup(message_id: &str, who: (&str, Option<&str>), event: &str, campaign: &str, minute: i64) -> Value {
    json!({"type": "track", "event": event, "anonymousId": who.0, "userId": who.1, "messageId": message_id,
           "timestamp": nudge::time::to_iso((1_800_000_000_000 + minute * 60_000) as u64),
           "properties": {"campaign_id": campaign, "trigger": "exit-intent"}})
}

fn bought(message_id: &str, who: (&str, Option<&str>), revenue: f64, minute: i64) -> Value {
    json!({"type": "track", "event": "Order Completed", "anonymousId": who.0, "userId": who.1, "messageId": message_id,
           "timestamp": nudge::time::to_iso((1_800_000_000_000 + minute * 60_000) as u64),
           "properties": {"order_id": message_id, "revenue": revenue}})
}

async fn the_report_adds_up_a_hand_made_event_set(backend: Backend) {
    let srv = TestServer::start(backend).await;
    assert_eq!(put_campaigns(&srv, "application/json", json!([unique_campaign("tv")]).to_string()).await.0, 200);
    let (t1, t2, t3, t4) = (("t1", None), ("t2", None), ("t3", None), ("t4", None));
    let (h1, h2, h3) = (("h1", None), ("h2", None), ("h3", None));
    srv.send(vec![
        // Treatment: four shoppers shown the popup.
        popup("p1", t1, "Popup Shown", "tv", 10),
        popup("p2", t2, "Popup Shown", "tv", 10),
        popup("p3", t3, "Popup Shown", "tv", 10),
        popup("p4", t4, "Popup Shown", "tv", 10),
        popup("p5", t1, "Popup Shown", "tv", 30),
        popup("p6", t1, "Popup Converted", "tv", 11),
        popup("p7", t2, "Popup Converted", "tv", 11),
        popup("p8", t4, "Popup Dismissed", "tv", 11),
        // Holdout: three.
        popup("q1", h1, "Popup Held Out", "tv", 10),
        popup("q2", h2, "Popup Held Out", "tv", 10),
        popup("q3", h3, "Popup Held Out", "tv", 10),
        // Another campaign's events do not count.
        popup("r1", t4, "Popup Shown", "other", 10),
        popup("r2", ("z1", None), "Popup Held Out", "other", 10),
        // Orders: t1 buys twice (40 + 60) after; t2 logs in as user-2 and buys as that user;
        // t3 bought before the popup only; h1 buys 80; z1 is in no group of this campaign.
        bought("o1", t1, 40.0, 20),
        bought("o2", t1, 60.0, 40),
        json!({"type": "identify", "anonymousId": "t2", "userId": "user-2", "messageId": "i1",
               "timestamp": nudge::time::to_iso(1_800_000_000_000 + 15 * 60_000)}),
        bought("o3", ("other-browser", Some("user-2")), 50.0, 20),
        bought("o4", t3, 200.0, 5),
        bought("o5", h1, 80.0, 20),
        bought("o6", ("z1", None), 999.0, 20),
        // A message whose text holds \u0000 (PostgreSQL's jsonb cannot) is left out, and the
        // report still answers.
        {
            let mut m = popup("p9", ("t9", None), "Popup Shown", "tv", 10);
            m["properties"]["note"] = json!("a\u{0}b");
            m
        },
    ])
    .await;
    let (status, report) = srv.secret_get("/v1/campaigns/tv/report").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["shown"], &report["dismissed"], &report["converted"], &report["heldOut"]),
        (&json!(5), &json!(1), &json!(2), &json!(3)),
        "{report}"
    );
    assert_eq!(
        report["treatment"],
        json!({"shoppers": 4, "converted": 2, "conversionRate": 0.5, "revenue": 150.0, "revenuePerShopper": 37.5})
    );
    let holdout = &report["holdout"];
    assert_eq!(
        (&holdout["shoppers"], &holdout["converted"], &holdout["revenue"]),
        (&json!(3), &json!(1), &json!(80.0))
    );
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-6;
    assert!(close(&holdout["conversionRate"], 1.0 / 3.0) && close(&holdout["revenuePerShopper"], 80.0 / 3.0));

    // Conversion uplift: 1/2 - 1/3 = 0.1666667; se = sqrt(0.5 * 0.5 / 4 + (1/3)(2/3) / 3)
    // = sqrt(0.0625 + 0.0740741) = 0.3695593; half width 1.959964 * 0.3695593 = 0.7243229.
    let rate = &report["uplift"]["conversionRate"];
    assert!(close(&rate["estimate"], 1.0 / 6.0), "{rate}");
    assert!(close(&rate["low"], 1.0 / 6.0 - 0.7243229) && close(&rate["high"], 1.0 / 6.0 + 0.7243229), "{rate}");
    // Revenue per shopper: [100, 50, 0, 0] against [80, 0, 0]: 37.5 - 26.6666667 =
    // 10.8333333; variances 6875/3 and 6400/3, se = sqrt(572.9166667 + 711.1111111)
    // = 35.8333333; Welch df = 1284.0277778² / (572.9166667² / 3 + 711.1111111² / 2)
    // = 4.5513437, t(0.975, 4.5513437) = 2.6487011 (integrating Student's density), so
    // 10.8333333 ± 94.9117899.
    let money = &report["uplift"]["revenuePerShopper"];
    assert!(close(&money["estimate"], 10.833_333_3), "{money}");
    assert!((money["low"].as_f64().unwrap() - -84.078_456_6).abs() < 1e-4, "{money}");
    assert!((money["high"].as_f64().unwrap() - 105.745_123_3).abs() < 1e-4, "{money}");

    let (status, answer) = srv.secret_get("/v1/campaigns/never-ran/report").await;
    assert_eq!((status, &answer["error"]), (404, &json!("campaign_not_found")));
    let request =
        srv.client.get(format!("{}/v1/campaigns/tv/report", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
    srv.stop().await;
}

on_both_backends!(
    campaigns_go_out_in_the_config_with_a_new_etag,
    the_cli_loads_campaigns_and_refuses_a_bad_file,
    a_coupon_is_issued_once_per_email_and_lands_in_the_profile,
    a_coupon_is_redeemed_once_and_misuse_is_reported,
    the_report_adds_up_a_hand_made_event_set,
);
