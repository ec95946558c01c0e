//! Load generator for `bench/ingest`: drives a running nudge-server with batches of
//! SDK-shaped messages (full `context`, consent, e-commerce properties, about 1 KB each)
//! and prints throughput and acknowledgement latency.
//!
//! ```sh
//! # closed loop: 16 clients send batches as fast as the server acknowledges them
//! ingest_load --url http://127.0.0.1:8700 --key wk_... --mode full --clients 16 --seconds 20
//! # open loop: a batch every 1/(rate/batch) s whatever the answers; latency is measured
//! # from each batch's scheduled time (so a slow answer cannot hide the queue behind it)
//! ingest_load --url http://127.0.0.1:8700 --key wk_... --mode rate --rate 5000 --seconds 20
//! ```
//!
//! Other flags: `--batch N` (messages per batch, 100), `--people N` (population, 20000),
//! `--people-per-batch N` (distinct people in a batch, 10: a Segment server library's batch
//! mixes users; a browser's holds one), `--warmup S` (seconds not counted, 3), `--tag T`
//! (prefix of messageIds and anonymousIds, so runs on one database do not collide).
//! About 1 message in 50 is an `identify` that links the browser to a user. Each person's
//! messages carry increasing timestamps, so most fold incrementally, as in production; a
//! person belongs to one client (one browser sends its own events in order).
//!
//! Prints one line, and the same figures as JSON on a second line for scripts:
//! `{"mode", "events_per_s", "batches", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms"}`.
//! Every batch must get a 200 with `stored` + `duplicates` = batch size; anything else counts
//! as an error (and is printed once).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    url: String,
    key: String,
    mode: String,
    clients: usize,
    rate: f64,
    seconds: f64,
    warmup: f64,
    batch: usize,
    people: u64,
    people_per_batch: usize,
    tag: String,
}

fn options() -> Options {
    let mut o = Options {
        url: "http://127.0.0.1:8700".into(),
        key: String::new(),
        mode: "full".into(),
        clients: 16,
        rate: 5_000.0,
        seconds: 20.0,
        warmup: 3.0,
        batch: 100,
        people: 20_000,
        people_per_batch: 10,
        tag: format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_else(|| panic!("{} needs a value", args[i]));
        let num = |v: &str| v.parse::<f64>().unwrap_or_else(|_| panic!("{} wants a number", args[i]));
        match args[i].as_str() {
            "--url" => o.url = v,
            "--key" => o.key = v,
            "--mode" => o.mode = v,
            "--clients" => o.clients = num(&v) as usize,
            "--rate" => o.rate = num(&v),
            "--seconds" => o.seconds = num(&v),
            "--warmup" => o.warmup = num(&v),
            "--batch" => o.batch = num(&v) as usize,
            "--people" => o.people = num(&v) as u64,
            "--people-per-batch" => o.people_per_batch = num(&v) as usize,
            "--tag" => o.tag = v,
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    assert!(!o.key.is_empty(), "--key WRITE_KEY is required");
    assert!(o.mode == "full" || o.mode == "rate", "--mode is full or rate");
    o.people_per_batch = o.people_per_batch.clamp(1, o.batch.max(1));
    o
}

/// A small deterministic generator (xorshift), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Makes batches for one stream of people (`lane` of `lanes`: person % lanes == lane).
struct Maker {
    tag: String,
    lane: u64,
    lanes: u64,
    people: u64,
    rng: Rng,
    serial: u64,
}

impl Maker {
    fn new(tag: &str, lane: u64, lanes: u64, people: u64) -> Maker {
        Maker {
            tag: tag.into(),
            lane,
            lanes,
            people,
            rng: Rng(0x9e37_79b9_7f4a_7c15 ^ ((lane + 1) * 0x2545_f491)),
            serial: 0,
        }
    }

    fn body(&mut self, size: usize, people_per_batch: usize) -> String {
        let per_lane = (self.people / self.lanes).max(1);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let persons: Vec<u64> =
            (0..people_per_batch).map(|_| (self.rng.next() % per_lane) * self.lanes + self.lane).collect();
        let mut out = String::with_capacity(size * 1_200 + 32);
        out.push_str("{\"batch\":[");
        for i in 0..size {
            let person = persons[i % persons.len()];
            self.serial += 1;
            if i > 0 {
                out.push(',');
            }
            out.push_str(&message(&self.tag, person, self.serial, now + i as u64, self.rng.next()));
        }
        out.push_str("]}");
        out
    }
}

/// One SDK-shaped message.
fn message(tag: &str, person: u64, serial: u64, at_ms: u64, r: u64) -> String {
    let categories = ["TVs", "Phones", "Audio", "Laptops", "Cameras"];
    let category = categories[((person + r % 3) % 5) as usize];
    let anon = format!("{tag}-anon-{person:08}");
    let id = format!("{tag}-{serial:010}-{:016x}", r);
    let ts = nudge::time::to_iso(at_ms);
    let context = format!(
        r#"{{"page":{{"path":"/p/{category}","url":"https://shop.example/p/{category}?utm_campaign=spring","title":"{category} | Shop","referrer":"https://www.google.com/","search":"?utm_campaign=spring"}},"campaign":{{"name":"spring"}},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","locale":"en-GB","library":{{"name":"@nudge/sdk","version":"0.1.0"}},"sessionId":1800000000000,"consent":{{"categoryPreferences":{{"analytics":true,"personalization":true,"marketing":false}}}}}}"#
    );
    if r.is_multiple_of(50) {
        return format!(
            r#"{{"messageId":"{id}","type":"identify","anonymousId":"{anon}","userId":"{tag}-user-{person:08}","traits":{{"plan":"gold"}},"timestamp":"{ts}","context":{context}}}"#
        );
    }
    let event = match r % 10 {
        0..=5 => "Product Viewed",
        6 | 7 => "Product Added",
        8 => "Checkout Started",
        _ => "Order Completed",
    };
    let product = format!(
        r#"{{"product_id":"{category}-{}","sku":"SKU-{}","name":"A {category} product","category":"{category}","brand":"Brand{}","price":{}.99,"quantity":1,"currency":"EUR"}}"#,
        r % 13,
        r % 1000,
        r % 5,
        50 + (r % 40) * 25
    );
    let props = if event == "Product Viewed" || event == "Product Added" {
        product
    } else {
        format!(r#"{{"order_id":"o-{serial}","revenue":123.5,"currency":"EUR","products":[{product}]}}"#)
    };
    format!(
        r#"{{"messageId":"{id}","type":"track","event":"{event}","properties":{props},"anonymousId":"{anon}","timestamp":"{ts}","context":{context}}}"#
    )
}

/// Sends one batch; `Ok` when the answer is a 200 that accounts for every message.
async fn send(client: &reqwest::Client, o: &Options, body: String) -> Result<(), String> {
    let r = client
        .post(format!("{}/v1/batch", o.url))
        .basic_auth(&o.key, Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("reading the answer: {e}"))?;
    if status != 200 {
        return Err(format!("{status}: {text}"));
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("answer not JSON: {e}"))?;
    let n = v["stored"].as_u64().unwrap_or(0) + v["duplicates"].as_u64().unwrap_or(0);
    if n != o.batch as u64 {
        return Err(format!("answer accounts for {n} of {} messages: {text}", o.batch));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    latencies_us: std::sync::Mutex<Vec<u64>>,
    counted: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, result: Result<(), String>, latency: Duration, counted: bool) {
        match result {
            Ok(()) if counted => {
                self.counted.fetch_add(1, Ordering::Relaxed);
                self.latencies_us.lock().unwrap().push(latency.as_micros() as u64);
            }
            Ok(()) => {}
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().unwrap().get_or_insert(e);
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = Arc::new(options());
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.seconds);

    if o.mode == "full" {
        let tasks: Vec<_> = (0..o.clients)
            .map(|c| {
                let (o, client, tally) = (o.clone(), client.clone(), tally.clone());
                tokio::spawn(async move {
                    let mut maker = Maker::new(&o.tag, c as u64, o.clients as u64, o.people);
                    loop {
                        let body = maker.body(o.batch, o.people_per_batch);
                        let sent = Instant::now();
                        if sent >= end {
                            break;
                        }
                        let result = send(&client, &o, body).await;
                        let done = Instant::now();
                        tally.record(result, done - sent, sent >= measure_from && done <= end);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    } else {
        // Batches at fixed times; each sent by its own task. 16 lanes of people, so that one
        // person's batches rarely overlap in flight.
        let interval = Duration::from_secs_f64(o.batch as f64 / o.rate);
        let lanes = 16u64;
        let mut makers: Vec<Maker> = (0..lanes).map(|l| Maker::new(&o.tag, l, lanes, o.people)).collect();
        let mut tasks = Vec::new();
        let mut k: u64 = 0;
        loop {
            let due = start + interval.mul_f64(k as f64);
            if due >= end {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let body = makers[(k % lanes) as usize].body(o.batch, o.people_per_batch);
            let (o2, client, tally) = (o.clone(), client.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let result = send(&client, &o2, body).await;
                let done = Instant::now();
                tally.record(result, done - due, due >= measure_from);
            }));
            k += 1;
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    let mut lat = std::mem::take(&mut *tally.latencies_us.lock().unwrap());
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0
    };
    let batches = tally.counted.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let events_per_s = (batches as usize * o.batch) as f64 / o.seconds;
    let (p50, p90, p99, max) = (pct(0.50), pct(0.90), pct(0.99), pct(1.0));
    let what = if o.mode == "full" {
        format!("full load, {} clients", o.clients)
    } else {
        format!("fixed rate {} events/s", o.rate)
    };
    println!(
        "{what}: {events_per_s:.0} events/s acknowledged ({batches} batches of {}, {errors} errors); \
         latency p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        o.batch
    );
    println!(
        "{}",
        serde_json::json!({"mode": o.mode, "events_per_s": events_per_s.round(), "batches": batches, "errors": errors,
            "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max})
    );
    let first_error = tally.first_error.lock().unwrap().take();
    if let Some(e) = first_error {
        eprintln!("first error: {e}");
        std::process::exit(1);
    }
}
