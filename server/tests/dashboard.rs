//! The dashboard: its page (under a strict CSP) and `GET /v1/dashboard/summary` for a
//! hand-made set of events, on SQLite and on PostgreSQL.

mod common;

use common::{reply, Backend, TestServer};
use nudge_server::app::now_ms;
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(summary_counts_stages_funnel_abandonment_and_campaigns, summary_needs_the_secret_key);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn iso(ms: i64) -> String {
    nudge::time::to_iso(ms as u64)
}

fn day(ms: i64) -> String {
    iso(ms)[..10].to_string()
}

/// A track message from a browser at a time.
fn event(id: &str, anon: &str, name: &str, at: i64, properties: Value) -> Value {
    json!({"type": "track", "event": name, "anonymousId": anon, "messageId": id, "timestamp": iso(at),
           "properties": properties})
}

fn view(id: &str, anon: &str, category: &str, at: i64) -> Value {
    event(
        id,
        anon,
        "Product Viewed",
        at,
        json!({"product_id": format!("{category}-1"), "category": category, "price": 100}),
    )
}

fn order(id: &str, anon: &str, at: i64, revenue: f64, category: Option<&str>) -> Value {
    let products = match category {
        Some(c) => json!([{"product_id": format!("{c}-1"), "category": c, "price": revenue, "quantity": 1}]),
        None => json!([]),
    };
    event(id, anon, "Order Completed", at, json!({"order_id": id, "revenue": revenue, "products": products}))
}

async fn summary_counts_stages_funnel_abandonment_and_campaigns(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let now = now_ms();
    let campaign = json!([{"id": "tv-save", "trigger": {"on": "exit-intent"}, "holdout": 0.5,
                           "offer": {"code": "SAVE10", "percent": 10}, "content": {"text": "Use SAVE10"}}]);
    let (status, body) = reply(
        srv.secret(Method::PUT, "/v1/campaigns")
            .header("content-type", "application/json")
            .body(campaign.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let popup =
        |id: &str, anon: &str, name: &str| event(id, anon, name, now - 2 * DAY, json!({"campaign_id": "tv-save"}));
    srv.send(vec![
        // a1: TVs awareness.
        view("a1-1", "a1", "TVs", now - HOUR),
        // a2: TVs consideration (3 views), Phones awareness.
        view("a2-1", "a2", "TVs", now - 3 * HOUR),
        view("a2-2", "a2", "TVs", now - 2 * HOUR),
        view("a2-3", "a2", "TVs", now - HOUR),
        view("a2-4", "a2", "Phones", now - HOUR),
        // a3: adds a TV, abandons the cart, buys it a day later: TVs purchase, 499 recovered.
        view("a3-1", "a3", "TVs", now - 3 * DAY),
        event(
            "a3-2",
            "a3",
            "Product Added",
            now - 3 * DAY + 60_000,
            json!({"product_id": "TVs-1", "category": "TVs", "price": 499, "quantity": 1}),
        ),
        event("a3-3", "a3", "Cart Abandoned", now - 3 * DAY + HOUR, json!({"cart_value": 499})),
        order("a3-4", "a3", now - 2 * DAY, 499.0, Some("TVs")),
        // a4: adds a phone and abandons it: Phones decision, one abandoned cart, nothing recovered.
        event(
            "a4-1",
            "a4",
            "Product Added",
            now - 2 * HOUR,
            json!({"product_id": "Phones-1", "category": "Phones", "price": 300, "quantity": 1}),
        ),
        event("a4-2", "a4", "Cart Abandoned", now - HOUR, json!({"cart_value": 300})),
        // a5: two phone orders, no abandonment: Phones loyalty, not recovered.
        order("a5-1", "a5", now - 3 * DAY, 200.0, Some("Phones")),
        order("a5-2", "a5", now - 2 * DAY, 250.0, Some("Phones")),
        // An abandonment before the 30-day window is left out.
        event("old-1", "old", "Cart Abandoned", now - 40 * DAY, json!({"cart_value": 10})),
        // The campaign: t1 and t2 shown (t1 buys), h1 and h2 held out (h1 buys); their
        // orders have no products, so they add no stage.
        popup("t1-1", "t1", "Popup Shown"),
        popup("t2-1", "t2", "Popup Shown"),
        popup("h1-1", "h1", "Popup Held Out"),
        popup("h2-1", "h2", "Popup Held Out"),
        order("t1-2", "t1", now - DAY, 100.0, None),
        order("h1-2", "h1", now - DAY, 50.0, None),
    ])
    .await;

    let (status, s) = srv.secret_get("/v1/dashboard/summary").await;
    assert_eq!(status, 200, "{s}");

    // Stages per category, as the profiles read them.
    let counts =
        |a, c, d, p, l| json!({"awareness": a, "consideration": c, "decision": d, "purchase": p, "loyalty": l});
    assert_eq!(
        s["stages"]["categories"],
        json!([
            {"category": "Phones", "total": 3, "counts": counts(1, 0, 1, 0, 1)},
            {"category": "TVs", "total": 3, "counts": counts(1, 1, 0, 1, 0)},
        ]),
        "{s}"
    );
    assert_eq!(s["stages"]["order"], json!(["awareness", "consideration", "decision", "purchase", "loyalty"]));
    for (person, stage) in [("a1", "awareness"), ("a2", "consideration"), ("a3", "purchase"), ("a5", "loyalty")] {
        let (_, p) = srv.secret_get(&format!("/v1/profiles/anonymous/{person}")).await;
        assert_eq!(p["stage"], stage, "{person}: {p}");
    }
    assert_eq!(s["profiles"]["truncated"], json!(false));

    // The funnel over the overall stages a1..a5: one at each stage.
    let reached: Vec<u64> = s["funnel"].as_array().unwrap().iter().map(|f| f["count"].as_u64().unwrap()).collect();
    assert_eq!(reached, [5, 4, 3, 2, 1], "{s}");
    let conversion: Vec<Value> = s["funnel"].as_array().unwrap().iter().map(|f| f["conversion"].clone()).collect();
    assert_eq!(conversion, [Value::Null, json!(0.8), json!(0.75), json!(2.0 / 3.0), json!(0.5)]);

    // Abandoned carts and recovered revenue per day.
    let a = &s["abandonment"];
    let days = a["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["day"], day(now));
    assert_eq!(
        (a["abandoned"].as_u64(), a["recoveredOrders"].as_u64(), a["recovered"].as_f64()),
        (Some(2), Some(1), Some(499.0))
    );
    let on = |d: &str| days.iter().find(|x| x["day"] == d).cloned().unwrap();
    let mut abandoned_days = vec![day(now - 3 * DAY + HOUR), day(now - HOUR)];
    abandoned_days.dedup();
    let per_day: u64 = abandoned_days.iter().map(|d| on(d)["abandoned"].as_u64().unwrap()).sum();
    assert_eq!(per_day, 2);
    let recovered_day = on(&day(now - 2 * DAY));
    assert_eq!(
        (recovered_day["recoveredOrders"].as_u64(), recovered_day["recovered"].as_f64()),
        (Some(1), Some(499.0))
    );
    let others: f64 =
        days.iter().filter(|x| x["day"] != day(now - 2 * DAY)).map(|x| x["recovered"].as_f64().unwrap()).sum();
    assert_eq!(others, 0.0);

    // The campaign, with the numbers of its own report.
    let campaigns = s["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    let (status, report) = srv.secret_get("/v1/campaigns/tv-save/report").await;
    assert_eq!(status, 200);
    assert_eq!(campaigns[0], report);
    let c = &campaigns[0];
    assert_eq!(c["campaignId"], "tv-save");
    assert_eq!((c["shown"].as_u64(), c["heldOut"].as_u64()), (Some(2), Some(2)));
    assert_eq!((c["treatment"]["shoppers"].as_u64(), c["treatment"]["converted"].as_u64()), (Some(2), Some(1)));
    assert_eq!((c["holdout"]["shoppers"].as_u64(), c["holdout"]["converted"].as_u64()), (Some(2), Some(1)));
    let u = &c["uplift"]["conversionRate"];
    assert_eq!(u["estimate"].as_f64(), Some(0.0));
    assert!(u["low"].as_f64().unwrap() < 0.0 && u["high"].as_f64().unwrap() > 0.0, "{u}");
    assert_eq!(c["uplift"]["revenuePerShopper"]["estimate"].as_f64(), Some(25.0));
    srv.stop().await;
}

async fn summary_needs_the_secret_key(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let url = format!("{}/v1/dashboard/summary", srv.url);
    let (status, body) = reply(srv.client.get(&url).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("missing_secret_key")));
    let (status, body) =
        reply(srv.client.get(&url).basic_auth(&srv.site.write_key, Some("")).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_secret_key")));
    let (status, body) = reply(srv.client.get(&url).basic_auth("sk_not_a_key", Some("")).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_secret_key")));
    let (status, body) =
        reply(srv.client.get(&url).basic_auth(&srv.site.secret_key, Some("")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    // No CORS: the secret key never goes to another origin's page.
    let response = srv
        .client
        .get(&url)
        .header("origin", "https://evil.example")
        .bearer_auth(&srv.site.secret_key)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());

    // The page and its files: no key needed, a strict policy, no inline code.
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let response = srv.client.get(format!("{}{path}", srv.url)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let header = |name: &str| response.headers().get(name).unwrap().to_str().unwrap().to_string();
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let text = response.text().await.unwrap();
        if path == "/dashboard" {
            assert!(text.contains(r#"<script src="/dashboard/dashboard.js" defer></script>"#));
            assert_eq!(text.matches("<script").count(), 1, "no inline script");
            assert!(!text.contains("style="), "no inline style");
        }
        if path.ends_with(".js") {
            assert!(!text.contains("innerHTML") && !text.contains("insertAdjacentHTML"), "data goes in as text");
        }
    }
    srv.stop().await;
}
