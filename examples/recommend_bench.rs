//! How long ranking a 10,000-product catalogue for one shopper takes, natively (the budget
//! is 5 ms per ranking in the browser, measured by `bench/recommend`; the Wasm runs within
//! a small factor of native).
//!
//! The shopper viewed 30 products of three categories and has one in the cart; each
//! strategy ranks all 10,000 products for 8 picks.
//!
//! Run: `cargo run --release --example recommend_bench`

use nudge::engine::{Engine, Input, Settings};
use nudge::recommend::Catalog;
use std::hint::black_box;
use std::time::Instant;

const T0: u64 = 1_795_420_800_000;
const PRODUCTS: usize = 10_000;
const RUNS: u32 = 500;

fn main() {
    let rows: Vec<String> = (0..PRODUCTS)
        .map(|i| {
            let price = 5 + (i * 37) % 2000;
            let stock = if i % 17 == 0 { 0 } else { 1 };
            format!(
                "p-{i}\x1fProduct {i}\x1fCategory {}\x1fBrand {}\x1f{price}.99\x1f{stock}\x1f{}",
                i % 40,
                (i * 7) % 200,
                i % 97
            )
        })
        .collect();
    let text = rows.join("\x1e");
    let start = Instant::now();
    let catalog = Catalog::read(&text);
    println!("catalogue of {} products read in {:.2} ms", catalog.len(), start.elapsed().as_secs_f64() * 1e3);

    let mut engine = Engine::new(Settings::default(), "00000000000000000000000000000001");
    for i in 0..30u64 {
        let id = i * 120 + i % 3;
        let props = format!(
            r#"{{"product_id":"p-{id}","category":"Category {}","brand":"Brand {}","price":{}.99}}"#,
            id % 40,
            (id * 7) % 200,
            5 + (id * 37) % 2000
        );
        engine.apply(&Input::track("Product Viewed", &props, T0 + i * 60_000, &format!("{:032x}", i + 2))).unwrap();
    }
    let add = r#"{"product_id":"p-1","category":"Category 1","brand":"Brand 7","price":42.99,"name":"Product 1"}"#;
    engine.apply(&Input::track("Product Added", add, T0 + 3_600_000, &format!("{:032x}", 99))).unwrap();

    let now = T0 + 2 * 3_600_000;
    for request in [
        r#"{"strategy":"for-you","count":8}"#,
        r#"{"strategy":"similar","productId":"p-120","count":8}"#,
        r#"{"strategy":"complete-the-cart","count":8}"#,
        r#"{"strategy":"popular","category":"Category 3","count":8}"#,
    ] {
        let first = engine.recommend(&catalog, request, now).unwrap();
        let start = Instant::now();
        for _ in 0..RUNS {
            black_box(engine.recommend(black_box(&catalog), black_box(request), now).unwrap());
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(RUNS);
        println!("{request}: {per:.0} µs per ranking; first picks {}", &first[..first.len().min(80)]);
    }
}
