//! Folding cost on the server: microseconds to fold one stored message into a profile with
//! the core (`nudge::merge`), for SDK-shaped messages (full `context`, consent, e-commerce
//! properties). Budget (issue 4): under 20 µs per event.
//!
//! ```sh
//! cargo run --release -p nudge-server --example fold_bench
//! ```
//!
//! Prints one line per case: incremental folds (one message onto a profile, the path of
//! in-order ingest), a whole-history fold (late messages, merges), and the cached profile's
//! decode + encode that each incremental fold of a batch pays once per person.

use std::hint::black_box;
use std::time::Instant;

use nudge::config::Thresholds;
use nudge::merge::{fold_all, Folder, Stored};
use nudge::profile::Profile;

const PEOPLE: usize = 200;

type Message = (String, &'static str, u64, String);

fn stored(m: &Message) -> Stored<'_> {
    Stored { message_id: &m.0, kind: "track", name: Some(m.1), user_id: None, at: m.2, body: &m.3 }
}
const EVENTS_PER_PERSON: usize = 250;

/// A message as the SDK sends it.
fn message(person: usize, i: usize) -> Message {
    let categories = ["TVs", "Phones", "Audio", "Laptops", "Cameras"];
    let category = categories[(person + i / 7) % categories.len()];
    let event = match i % 10 {
        0..=5 => "Product Viewed",
        6 | 7 => "Product Added",
        8 => "Checkout Started",
        _ => "Order Completed",
    };
    let product = format!(
        r#"{{"product_id":"{category}-{}","sku":"SKU-{i}","name":"A {category} product","category":"{category}","brand":"Brand{}","price":{}.99,"quantity":1,"currency":"EUR"}}"#,
        i % 13,
        i % 5,
        50 + (i % 40) * 25
    );
    let props = if event == "Product Viewed" || event == "Product Added" {
        product
    } else {
        format!(r#"{{"order_id":"o-{i}","revenue":123.5,"currency":"EUR","products":[{product}]}}"#)
    };
    let at = 1_800_000_000_000 + (i as u64) * 95_000;
    let id = format!("{person:04}-{i:06}-5f0c9a7e-1b2d-4c3e-8f9a-0b1c2d3e4f5a");
    let body = format!(
        r#"{{"messageId":"{id}","type":"track","event":"{event}","properties":{props},"anonymousId":"0b6f2c1e-6a77-4c1f-9d1e-{person:012}","userId":null,"timestamp":"2027-01-15T09:00:00.000Z","context":{{"page":{{"path":"/p/{category}","url":"https://shop.example/p/{category}?utm_campaign=spring","title":"{category} | Shop","referrer":"https://www.google.com/","search":"?utm_campaign=spring"}},"campaign":{{"name":"spring"}},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","locale":"en-GB","library":{{"name":"@nudge/sdk","version":"0.1.0"}},"sessionId":1800000000000,"consent":{{"categoryPreferences":{{"analytics":true,"personalization":true,"marketing":false}}}}}}}}"#
    );
    (id, event, at, body)
}

fn main() {
    let th = Thresholds::default();
    let people: Vec<Vec<Message>> =
        (0..PEOPLE).map(|p| (0..EVENTS_PER_PERSON).map(|i| message(p, i)).collect()).collect();
    let total = (PEOPLE * EVENTS_PER_PERSON) as f64;

    // Warm up.
    for person in people.iter().take(10) {
        let mut f = Folder::new(&th);
        for m in person {
            f.fold(&stored(m));
        }
        black_box(f.finish());
    }

    let start = Instant::now();
    for person in &people {
        let mut f = Folder::new(&th);
        for m in person {
            f.fold(&stored(m));
        }
        black_box(f.finish());
    }
    let incremental = start.elapsed().as_secs_f64() * 1e6 / total;

    let start = Instant::now();
    for person in &people {
        let all: Vec<Stored<'_>> = person.iter().map(stored).collect();
        black_box(fold_all(&all, &th));
    }
    let full = start.elapsed().as_secs_f64() * 1e6 / total;

    let profiles: Vec<String> = people
        .iter()
        .map(|person| {
            let all: Vec<Stored<'_>> = person.iter().map(stored).collect();
            fold_all(&all, &th).profile.encode()
        })
        .collect();
    let start = Instant::now();
    for text in &profiles {
        let (p, _) = Profile::decode(text, String::new());
        black_box(p.encode());
    }
    let round_trip = start.elapsed().as_secs_f64() * 1e6 / PEOPLE as f64;
    let size = profiles.iter().map(String::len).sum::<usize>() / PEOPLE;

    println!("fold_bench: {PEOPLE} people x {EVENTS_PER_PERSON} SDK-shaped track messages");
    println!("  incremental fold:      {incremental:.2} µs/event");
    println!("  whole-history fold:    {full:.2} µs/event (sort, dedupe, fold)");
    println!("  profile decode+encode: {round_trip:.2} µs/profile ({size} bytes stored)");
    println!("  budget: 20 µs/event -> {}", if incremental < 20.0 && full < 20.0 { "met" } else { "MISSED" });
}
