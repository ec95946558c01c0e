//! A rough ingest probe (the issue's load test is `bench/ingest`, with `ingest_load.rs`): an
//! in-process server on a fresh database, 8 clients each sending 40 batches of 100 SDK-like
//! track messages (100 different people per batch) as fast as they can; prints events per
//! second and acknowledgement latency. Every batch is stored and folded into profiles
//! before its 200.
//!
//! ```sh
//! cargo run --release -p nudge-server --example ingest_probe                  # SQLite in /tmp
//! cargo run --release -p nudge-server --example ingest_probe -- 'postgres://postgres@127.0.0.1:5432/test?options[search_path]=probe'
//! ```
//!
//! The SQLite file is `/tmp/nudge-ingest-probe.db` (removed first); a PostgreSQL schema must
//! exist and be empty.

use nudge_server::app::{self, App};
use nudge_server::config::{Config, Database, Rate};
use nudge_server::store::Store;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| "sqlite:///tmp/nudge-ingest-probe.db".into());
    if let Some(path) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let database = Database::from_url(&url).unwrap();
    let store = Store::open(&database, 10).await.unwrap();
    let site = nudge_server::sites::new_site("probe", &[], 0).unwrap();
    store.create_site(&site).await.unwrap();
    let config = Config { key_rate: Rate::UNLIMITED, addr_rate: Rate::UNLIMITED, ..Config::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(app::serve(listener, App::new(store.clone(), &config), std::future::pending()));
    let client = reqwest::Client::new();
    let (clients, batches, per) = (8, 40, 100);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients).map(|c| {
        let client = client.clone(); let base = base.clone(); let key = site.write_key.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            for b in 0..batches {
                let batch: Vec<_> = (0..per).map(|i| serde_json::json!({"type":"track","event":"Product Viewed","anonymousId": format!("a-{c}-{}", (b * per + i) % 500),"messageId": format!("{c}-{b}-{i}"),"timestamp": nudge::time::to_iso(1_800_000_000_000 + ((b * per + i) as u64) * 1000),"properties":{"product_id":"tv","category":"TVs","price":499},"context":{"library":{"name":"@nudge/sdk"},"consent":{"categoryPreferences":{"analytics":true,"personalization":true,"marketing":true}}}})).collect();
                let t = Instant::now();
                let r = client.post(format!("{base}/v1/batch")).basic_auth(&key, Some("")).header("content-type","application/json").body(serde_json::json!({"batch": batch}).to_string()).send().await.unwrap();
                assert_eq!(r.status(), 200);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        })
    }).collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{url}: {:.0} events/s, p50 {:.1} ms, p99 {:.1} ms",
        (clients * batches * per) as f64 / secs,
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
}
