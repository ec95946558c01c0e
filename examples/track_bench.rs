//! The core's share of `track()`: applies the bench/browser workload (10,000 `Product Viewed`
//! calls with five small properties, on a page with a URL, title and user agent) to one
//! engine natively and prints the time per call. Run under
//! `valgrind --tool=callgrind target/release/examples/track_bench` to see where the
//! instructions go; the count is repeatable, unlike the time, on a busy machine.
//!
//! ```sh
//! cargo run --release --example track_bench
//! ```

use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use std::time::Instant;

fn main() {
    let calls: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    let settings = Settings::from_options(r#"{"writeKey":"bench_key"}"#, false, agent, "en-US").expect("options");
    let mut engine = Engine::new(settings, "0123456789abcdef0123456789abcdef");
    let page = PageInfo {
        url: "http://127.0.0.1:41234/bench?utm_source=x".into(),
        title: "Nudge bench".into(),
        referrer: String::new(),
    };
    let categories = ["TVs", "Phones", "Laptops", "Cameras", "Audio"];
    let brands = ["Acme", "Globex", "Initech", "Umbrella"];
    let t0_ms = 1_800_000_000_000u64;
    let start = Instant::now();
    for i in 0..calls {
        let props = format!(
            r#"{{"product_id":"sku-{i}","category":"{}","brand":"{}","price":{},"currency":"USD"}}"#,
            categories[(i % 5) as usize],
            brands[(i % 4) as usize],
            10 + i % 990
        );
        let input = Input {
            kind: Kind::Track,
            name: Some("Product Viewed".into()),
            props: Some(props),
            options: None,
            now: t0_ms + i,
            seed: format!("{:032x}", 0xbe7c_0000_u64 + i),
            page: page.clone(),
        };
        if let Err(e) = engine.apply(&input) {
            eprintln!("call {i} rejected: {}", e.message());
            std::process::exit(1);
        }
    }
    let per_call = start.elapsed().as_secs_f64() * 1e6 / calls as f64;
    println!("{calls} track() calls in the core: {per_call:.2} µs per call; outbox {} messages", engine.outbox.len());
}
