//! The product catalogue over HTTP (`PUT /v1/catalog`, `GET /v1/catalog/feed`) and the real
//! binary's `catalog load`, on SQLite and on PostgreSQL.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use common::{reply, unlimited, Backend, TestServer, ALLOWED_ORIGIN};
use nudge_server::app::now_ms;
use nudge_server::sites::new_site;
use nudge_server::store::Site;
use reqwest::Method;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_nudge-server");

const FIELDS: [&str; 10] =
    ["id", "name", "category", "brand", "price", "image", "url", "inStock", "popularity", "currency"];

/// A CSV with quoted fields holding commas and quotes, CRLF line ends.
const CSV: &str = "id,name,category,brand,price,image,url,in_stock\r\n\
    tv-55,\"Vizio 55\"\", 4K, \"\"Quantum\"\"\",TVs,Vizio,499.99,/img/tv-55.svg,https://shop.example/p/tv-55,true\r\n\
    cam-1,\"Camera, \"\"Pro\"\"\",Cameras,,120,,/p/cam-1,0\r\n";

fn products() -> Value {
    json!([
        {"id": "tv-1", "name": "Big TV", "category": "TVs", "brand": "Acme", "price": 499, "currency": "USD",
         "image": "https://cdn.example/tv-1.png", "url": "/p/tv-1", "in_stock": true},
        {"id": "tv-2", "name": "Small TV", "category": "TVs", "brand": "Acme", "price": 199.5, "url": "/p/tv-2"},
        {"id": "phone-1", "name": "Phone", "category": "Phones", "price": 0, "in_stock": false}
    ])
}

async fn put_catalog_as(srv: &TestServer, secret_key: &str, content_type: &str, body: String) -> (u16, Value) {
    let request = srv
        .client
        .put(format!("{}/v1/catalog", srv.url))
        .bearer_auth(secret_key)
        .header("content-type", content_type)
        .body(body);
    reply(request.send().await.unwrap()).await
}

async fn put_catalog(srv: &TestServer, content_type: &str, body: String) -> (u16, Value) {
    put_catalog_as(srv, &srv.site.secret_key, content_type, body).await
}

/// `GET /v1/catalog/feed` with a write key: status, ETag and body.
async fn feed_of(srv: &TestServer, write_key: &str, if_none_match: Option<&str>) -> (u16, String, String) {
    let mut request = srv.client.get(format!("{}/v1/catalog/feed", srv.url)).basic_auth(write_key, Some(""));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, etag, response.text().await.unwrap())
}

async fn feed(srv: &TestServer, if_none_match: Option<&str>) -> (u16, String, String) {
    feed_of(srv, &srv.site.write_key, if_none_match).await
}

/// The feed's products as objects keyed by its `fields`.
fn rows(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(fields, FIELDS);
    let rows = v["products"].as_array().unwrap();
    rows.iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), fields.len());
            Value::Object(fields.iter().zip(row).map(|(f, v)| (f.to_string(), v.clone())).collect())
        })
        .collect()
}

fn ids(body: &str) -> Vec<String> {
    rows(body).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

/// A track message `days_ago` days ago.
fn event(message_id: &str, event: &str, properties: Value, days_ago: i64) -> Value {
    let at = now_ms() - days_ago * 86_400_000 - 60_000;
    json!({"type": "track", "event": event, "anonymousId": "anon-1", "messageId": message_id,
           "timestamp": nudge::time::to_iso(at as u64), "properties": properties})
}

async fn second_site(srv: &TestServer) -> Site {
    let site = new_site("Other shop", &[ALLOWED_ORIGIN.into()], now_ms()).unwrap();
    srv.store.create_site(&site).await.unwrap();
    site
}

async fn the_api_loads_json_and_csv_and_serves_a_revalidated_feed(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (status, _, body) = feed(&srv, None).await;
    assert_eq!((status, rows(&body).len()), (200, 0), "{body}");

    let (status, answer) = put_catalog(&srv, "application/json", products().to_string()).await;
    assert_eq!((status, &answer["products"]), (200, &json!(3)), "{answer}");
    let (status, etag, body) = feed(&srv, None).await;
    assert_eq!(status, 200);
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let served = rows(&body);
    assert_eq!(
        served[0],
        json!({"id": "tv-1", "name": "Big TV", "category": "TVs", "brand": "Acme", "price": 499,
               "image": "https://cdn.example/tv-1.png", "url": "/p/tv-1", "inStock": 1, "popularity": 0,
               "currency": "USD"})
    );
    assert_eq!(
        served[1],
        json!({"id": "tv-2", "name": "Small TV", "category": "TVs", "brand": "Acme", "price": 199.5,
               "image": null, "url": "/p/tv-2", "inStock": 1, "popularity": 0, "currency": null})
    );
    assert_eq!((&served[2]["inStock"], &served[2]["price"]), (&json!(0), &json!(0)));

    // Revalidation: 304 without a body, for the ETag or a list holding it (weak or not).
    let (status, etag_again, body) = feed(&srv, Some(&etag)).await;
    assert_eq!((status, etag_again.as_str(), body.as_str()), (304, etag.as_str(), ""));
    assert_eq!(feed(&srv, Some(&format!("\"nope\", W/{etag}"))).await.0, 304);
    assert_eq!(feed(&srv, Some("\"nope\"")).await.0, 200);

    // The feed is built once and kept: a new event does not change it before the refresh
    // interval (10 minutes by default), a new catalogue does at once.
    srv.send(vec![event("v1", "Product Viewed", json!({"product_id": "tv-1"}), 0)]).await;
    assert_eq!(feed(&srv, Some(&etag)).await.0, 304);

    // CSV with quoted commas and quotes replaces the whole catalogue.
    let (status, answer) = put_catalog(&srv, "text/csv", CSV.into()).await;
    assert_eq!((status, &answer["products"]), (200, &json!(2)), "{answer}");
    let (status, csv_etag, body) = feed(&srv, Some(&etag)).await;
    assert_eq!(status, 200);
    assert_ne!(csv_etag, etag);
    let served = rows(&body);
    assert_eq!(ids(&body), ["tv-55", "cam-1"]);
    assert_eq!(served[0]["name"], "Vizio 55\", 4K, \"Quantum\"");
    assert_eq!((&served[0]["price"], &served[0]["url"]), (&json!(499.99), &json!("https://shop.example/p/tv-55")));
    assert_eq!(served[1]["name"], "Camera, \"Pro\"");
    assert_eq!(
        (&served[1]["brand"], &served[1]["inStock"], &served[1]["image"]),
        (&Value::Null, &json!(0), &Value::Null)
    );
    // text/plain is read by its content.
    let (status, _) = put_catalog(&srv, "text/plain", CSV.into()).await;
    assert_eq!(status, 200);
    assert_eq!(feed(&srv, Some(&csv_etag)).await.0, 304);

    // Bad rows are refused with the row and field named, and change nothing.
    let bad_csv = "id,name,category,price\nok-1,Fine,TVs,10\nbad-2,\"Bad, really\",TVs,free\n";
    let (status, answer) = put_catalog(&srv, "text/csv", bad_csv.into()).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "invalid_catalog"), "{answer}");
    assert_eq!(answer["message"], "row 2 (line 3, id \"bad-2\").price: must be a number of at least 0");
    let mut bad = products();
    bad[2]["url"] = json!("javascript:alert(1)");
    let (status, answer) = put_catalog(&srv, "application/json", bad.to_string()).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().starts_with("row 3 (id \"phone-1\").url: must be an http"), "{answer}");
    let mut bad = products();
    bad[1]["id"] = json!("tv-1");
    let (status, answer) = put_catalog(&srv, "application/json", bad.to_string()).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("row 2 (id \"tv-1\").id: \"tv-1\" is also the id of row 1"));
    let (status, answer) = put_catalog(&srv, "application/json", "[{\"id\": }]".into()).await;
    assert!(status == 400 && answer["message"].as_str().unwrap().starts_with("invalid JSON"), "{answer}");
    assert_eq!(feed(&srv, Some(&csv_etag)).await.0, 304);

    // gzip for clients that accept it: its own ETag, the same content.
    let response = srv
        .client
        .get(format!("{}/v1/catalog/feed?writeKey={}", srv.url, srv.site.write_key))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["etag"].to_str().unwrap(), format!("{}-gz\"", csv_etag.trim_end_matches('"')));
    let zipped = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_string(&mut text).unwrap();
    assert_eq!(ids(&text), ["tv-55", "cam-1"]);
    srv.stop().await;
}

async fn keys_and_origins_are_checked(backend: Backend) {
    let srv = TestServer::start(backend).await;
    assert_eq!(put_catalog(&srv, "application/json", products().to_string()).await.0, 200);
    let url = format!("{}/v1/catalog/feed", srv.url);

    // The feed needs the write key; the secret key is not one.
    let (status, answer) = reply(srv.client.get(&url).send().await.unwrap()).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (401, "missing_write_key"));
    let (status, _, _) = feed_of(&srv, &srv.site.secret_key, None).await;
    assert_eq!(status, 401);
    let (status, _, _) = feed_of(&srv, "wk_nope", None).await;
    assert_eq!(status, 401);
    // Loading needs the secret key.
    let request = srv.client.put(format!("{}/v1/catalog", srv.url)).basic_auth(&srv.site.write_key, Some(""));
    let (status, _) = reply(request.header("content-type", "application/json").body("[]").send().await.unwrap()).await;
    assert_eq!(status, 401);
    let (status, _) = reply(srv.client.put(format!("{}/v1/catalog", srv.url)).body("[]").send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(ids(&feed(&srv, None).await.2).len(), 3);

    // CORS like the site config: an allowed origin may read it (ETag exposed), another is 403.
    let response = srv
        .client
        .get(format!("{url}?writeKey={}", srv.site.write_key))
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert!(response.headers()["access-control-expose-headers"].to_str().unwrap().contains("ETag"));
    let response = srv
        .client
        .get(format!("{url}?writeKey={}", srv.site.write_key))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let preflight = srv
        .client
        .request(Method::OPTIONS, &url)
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-headers", "if-none-match")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("If-None-Match"));

    // Another site sees only its own catalogue, and its secret key loads only its own.
    let other = second_site(&srv).await;
    assert_eq!(ids(&feed_of(&srv, &other.write_key, None).await.2), Vec::<String>::new());
    let mine = json!([{"id": "other-1", "name": "Other", "category": "Home", "price": 5}]);
    let (status, _) = put_catalog_as(&srv, &other.secret_key, "application/json", mine.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&feed_of(&srv, &other.write_key, None).await.2), ["other-1"]);
    assert_eq!(ids(&feed(&srv, None).await.2), ["tv-1", "tv-2", "phone-1"]);
    srv.stop().await;
}

async fn popularity_weighs_the_last_30_days_of_events(backend: Backend) {
    // Counted again on every request, so that each step shows.
    let config = nudge_server::config::Config { catalog_refresh: Duration::ZERO, ..unlimited() };
    let srv = TestServer::with_config(backend, config).await;
    assert_eq!(put_catalog(&srv, "application/json", products().to_string()).await.0, 200);
    let (_, empty_etag, _) = feed(&srv, None).await;
    // Rebuilt on every request, but the same counts give the same ETag.
    assert_eq!(feed(&srv, Some(&empty_etag)).await.0, 304);

    srv.send(vec![
        event("v1", "Product Viewed", json!({"product_id": "tv-1"}), 1),
        event("v2", "Product Viewed", json!({"product_id": "tv-1", "category": "TVs"}), 29),
        event("v-old", "Product Viewed", json!({"product_id": "tv-1"}), 31),
        event("a1", "Product Added", json!({"product_id": "tv-2", "quantity": 2}), 0),
        event(
            "o1",
            "Order Completed",
            json!({"order_id": "o1", "products": [
            {"product_id": "tv-1", "price": 499}, {"product_id": "phone-1"}, {"sku": "no-id"}, "junk"]}),
            2,
        ),
        event("o-bad", "Order Completed", json!({"order_id": "o2", "products": {"product_id": "tv-2"}}), 2),
        event("x1", "Product Viewed", json!({"product_id": "not-in-catalogue"}), 0),
        event("x2", "Product Clicked", json!({"product_id": "tv-2"}), 0),
        // PostgreSQL's jsonb cannot hold \u0000: such a message is left out, not a failure.
        event("nul", "Product Viewed", json!({"product_id": "tv-2", "note": "a\u{0}b"}), 0),
    ])
    .await;
    let (status, etag, body) = feed(&srv, Some(&empty_etag)).await;
    assert_eq!(status, 200);
    assert_ne!(etag, empty_etag);
    let popularity: Vec<i64> = rows(&body).iter().map(|r| r["popularity"].as_i64().unwrap()).collect();
    // tv-1: 2 views + 1 order line = 2 + 5; tv-2: 1 add = 3; phone-1: 1 order line = 5.
    assert_eq!(popularity, [7, 3, 5]);

    // Another site's events do not count.
    let other = second_site(&srv).await;
    let body = json!({"batch": [event("ov", "Product Viewed", json!({"product_id": "tv-2"}), 0)]});
    let request = srv.client.post(format!("{}/v1/batch", srv.url)).basic_auth(&other.write_key, Some(""));
    let (status, _) =
        reply(request.header("content-type", "application/json").body(body.to_string()).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(feed(&srv, Some(&etag)).await.0, 304);
    srv.stop().await;
}

async fn the_cli_loads_a_file_and_refuses_a_bad_one(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let dir = std::env::temp_dir().join(format!("nudge-catalog-{}", srv.site.id));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("NUDGE_DB").env("DATABASE_URL", srv.db.url()).args(args);
        cmd.output().unwrap()
    };
    let csv = dir.join("products.csv");
    std::fs::write(&csv, CSV).unwrap();
    let out = run(&["catalog", "load", "--site", &srv.site.id, "--file", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&printed["siteId"], &printed["products"]), (&json!(srv.site.id), &json!(2)));
    let (_, etag, body) = feed(&srv, None).await;
    assert_eq!(ids(&body), ["tv-55", "cam-1"]);

    let json_file = dir.join("products.json");
    std::fs::write(&json_file, products().to_string()).unwrap();
    let out = run(&["catalog", "load", "--site", &srv.site.id, "--file", json_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, _, body) = feed(&srv, Some(&etag)).await;
    assert_eq!((status, ids(&body)), (200, vec!["tv-1".to_string(), "tv-2".into(), "phone-1".into()]));

    // A mistake: a clear message naming the row and field, a failing exit, nothing changed.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "id,name,category,price\nok,OK,TVs,1\n,No id,TVs,2\n").unwrap();
    let out = run(&["catalog", "load", "--site", &srv.site.id, "--file", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.csv: row 2 (line 3).id: is required"), "{stderr}");
    assert_eq!(ids(&feed(&srv, None).await.2).len(), 3);
    assert!(!run(&["catalog", "load", "--site", "site_nope", "--file", csv.to_str().unwrap()]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
    srv.stop().await;
}

/// `n` products shaped like a real store's (about 190 bytes each as JSON).
fn many_products(n: usize) -> Value {
    let categories = ["TVs", "Phones", "Laptops", "Headphones", "Cameras", "Home"];
    Value::Array(
        (0..n)
            .map(|i| {
                let category = categories[i % categories.len()];
                json!({"id": format!("sku-{i:06}"), "name": format!("{category} model {i} with a longer name"),
                       "category": category, "brand": format!("Brand {}", i % 40), "price": (i % 2000) as f64 + 0.99,
                       "image": format!("/img/sku-{i:06}.svg"), "url": format!("/p/sku-{i:06}"), "in_stock": i % 7 != 0})
            })
            .collect(),
    )
}

async fn the_largest_catalogue_loads_and_one_more_product_is_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let body = many_products(50_000).to_string();
    let started = std::time::Instant::now();
    let (status, answer) = put_catalog(&srv, "application/json", body.clone()).await;
    let load = started.elapsed();
    assert_eq!((status, &answer["products"]), (200, &json!(50_000)), "{answer}");
    let started = std::time::Instant::now();
    let (status, etag, feed_body) = feed(&srv, None).await;
    let build = started.elapsed();
    assert_eq!(status, 200);
    let served = rows(&feed_body);
    assert_eq!((served.len(), &served[49_999]["id"]), (50_000, &json!("sku-049999")));
    let started = std::time::Instant::now();
    assert_eq!(feed(&srv, Some(&etag)).await.0, 304);
    let cached = started.elapsed();
    let response = srv
        .client
        .get(format!("{}/v1/catalog/feed?writeKey={}", srv.url, srv.site.write_key))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    let gzip = response.bytes().await.unwrap().len();
    eprintln!(
        "{backend:?}: 50,000 products ({} KB JSON) loaded in {load:?}; feed built in {build:?}, {} KB ({} KB gzip); \
         cached 304 in {cached:?}",
        body.len() / 1000,
        feed_body.len() / 1000,
        gzip / 1000
    );
    let (status, answer) = put_catalog(&srv, "application/json", many_products(50_001).to_string()).await;
    assert_eq!((status, answer["message"].as_str().unwrap()), (400, "at most 50000 products per site, not 50001"));
    assert_eq!(feed(&srv, Some(&etag)).await.0, 304);
    srv.stop().await;
}

on_both_backends!(
    the_api_loads_json_and_csv_and_serves_a_revalidated_feed,
    keys_and_origins_are_checked,
    popularity_weighs_the_last_30_days_of_events,
    the_cli_loads_a_file_and_refuses_a_bad_one,
    the_largest_catalogue_loads_and_one_more_product_is_refused,
);
