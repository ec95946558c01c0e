//! What the browser stores stays small whatever the shopper does: the profile stays under
//! 16 KB after thousands of varied events, and the outbox keeps at most 500 messages and
//! 256 KB, dropping the oldest first and counting every drop.

use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use nudge::outbox::{message_id, Outbox, MAX_BYTES, MAX_MESSAGES};
use nudge::profile::{Profile, MAX_CATEGORIES};
use nudge::time::MINUTE;

const SECOND: u64 = 1_000;

const T0: u64 = 1_795_420_800_000;
/// The most a stored profile may take.
const PROFILE_BUDGET: usize = 16 * 1024;

/// A small deterministic generator (xorshift), so the long journeys replay exactly.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn input(kind: Kind, name: Option<&str>, props: Option<String>, url: &str, now: u64, n: u64) -> Input {
    Input {
        kind,
        name: name.map(String::from),
        props,
        options: None,
        now,
        seed: format!("{:032x}", 0xb0_0000_0000 + n),
        page: PageInfo { url: url.into(), title: "Shop".into(), referrer: "https://search.example/".into() },
    }
}

/// One of the calls a busy shopper makes, drawn at random.
fn varied_call(d: &mut Dice, n: u64, now: u64) -> Input {
    let cat = format!("Category {}", d.below(60));
    let brand = format!("Brand {}", d.below(45));
    let product = format!("sku-{:05}", d.below(5_000));
    let price = d.below(300_000) as f64 / 100.0;
    let line = format!(
        r#"{{"product_id":"{product}","name":"A fairly long product name number {product} in {cat}","category":"{cat}","brand":"{brand}","price":{price},"quantity":{},"currency":"EUR"}}"#,
        1 + d.below(3)
    );
    let url = format!("https://shop.example/c/{}?utm_campaign=camp-{}", d.below(50), d.below(8));
    match d.below(20) {
        0..=8 => input(Kind::Track, Some("Product Viewed"), Some(line), &url, now, n),
        9..=10 => input(Kind::Track, Some("Product Added"), Some(line), &url, now, n),
        11 => {
            input(Kind::Track, Some("Product Removed"), Some(format!(r#"{{"product_id":"{product}"}}"#)), &url, now, n)
        }
        12 => input(Kind::Track, Some("Product Added to Wishlist"), Some(line), &url, now, n),
        13 => input(
            Kind::Track,
            Some("Checkout Started"),
            Some(format!(r#"{{"products":[{line},{line}]}}"#)),
            &url,
            now,
            n,
        ),
        14 => input(
            Kind::Track,
            Some("Order Completed"),
            Some(format!(r#"{{"order_id":"o{n}","revenue":{price},"products":[{line}]}}"#)),
            &url,
            now,
            n,
        ),
        15 => input(Kind::Track, Some("Cart Viewed"), Some(format!(r#"{{"products":[{line}]}}"#)), &url, now, n),
        16 => {
            let traits = format!(
                r#"{{"email":"shopper{}@example.com","name":"Shopper {}","plan":"p{}","trait_{}":"{}"}}"#,
                d.below(5),
                d.below(5),
                d.below(5),
                d.below(200),
                "v".repeat(d.below(40) as usize)
            );
            input(Kind::Identify, Some(&format!("user-{}", d.below(3))), Some(traits), &url, now, n)
        }
        17 => input(Kind::Page, Some("Category"), None, &url, now, n),
        18 => {
            input(Kind::Track, Some("Products Searched"), Some(format!(r#"{{"query":"{cat} {brand}"}}"#)), &url, now, n)
        }
        _ => input(Kind::Consent, None, Some(r#"{"marketing":true}"#.into()), &url, now, n),
    }
}

#[test]
fn a_shopper_with_ten_thousand_varied_events_stores_under_sixteen_kilobytes() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    let mut d = Dice(0x9e37_79b9_7f4a_7c15);
    let mut now = T0;
    let mut largest = 0;
    for n in 0..10_000 {
        // Mostly seconds apart, sometimes a day or two.
        now += if d.below(50) == 0 { d.below(3 * 86_400) * SECOND } else { d.below(120) * SECOND };
        e.apply(&varied_call(&mut d, n, now)).expect("every call is valid");
        if n % 97 == 0 {
            largest = largest.max(e.profile.encode().len());
        }
    }
    let stored = e.profile.encode();
    largest = largest.max(stored.len());
    eprintln!(
        "largest stored profile: {largest} bytes; now {}; outbox {} kept, {} dropped",
        stored.len(),
        e.outbox.len(),
        e.outbox.dropped
    );
    assert!(largest < PROFILE_BUDGET, "the profile grew to {largest} bytes");
    assert!(e.profile.categories.len() <= MAX_CATEGORIES);
    assert!(e.profile.cart.lines.len() <= nudge::cart::MAX_LINES);
    assert!(e.profile.traits.as_deref().is_some_and(|t| t.len() <= nudge::profile::MAX_TRAITS_BYTES));
    assert!(e.outbox.len() <= MAX_MESSAGES);
    assert!(e.outbox.dropped > 0, "10,000 events overflow the outbox, and it says so");
    // The stored form reads back as the same profile.
    let (back, how) = Profile::decode(&stored, "x".into());
    assert_eq!(how, nudge::profile::Loaded::Current);
    assert_eq!(back, e.profile);
}

#[test]
fn the_outbox_keeps_the_newest_messages_and_counts_every_one_it_drops() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    let total = MAX_MESSAGES as u64 + 123;
    let mut ids = Vec::new();
    for n in 0..total {
        e.apply(&input(
            Kind::Track,
            Some("Products Searched"),
            Some(r#"{"query":"tv"}"#.into()),
            "",
            T0 + n * MINUTE,
            n,
        ))
        .unwrap();
        ids.push(message_id(e.outbox.messages().last().unwrap()).unwrap().to_string());
    }
    assert!(e.outbox.len() <= MAX_MESSAGES);
    assert!(e.outbox.len() > MAX_MESSAGES - 20, "only the bounds drop messages");
    assert_eq!(e.outbox.dropped + e.outbox.len() as u64, total, "every message is kept or counted");
    let kept: Vec<&str> = e.outbox.messages().iter().map(|m| message_id(m).unwrap()).collect();
    let newest: Vec<&str> = ids[ids.len() - kept.len()..].iter().map(String::as_str).collect();
    assert_eq!(kept, newest, "the oldest went first");
}

#[test]
fn the_outbox_holds_at_most_five_hundred_messages() {
    let mut o = Outbox::default();
    for n in 0..MAX_MESSAGES + 7 {
        o.push(format!(r#"{{"messageId":"{n:036}","type":"track"}}"#));
    }
    assert_eq!(o.len(), MAX_MESSAGES);
    assert_eq!(o.dropped, 7);
    assert_eq!(message_id(&o.messages()[0]), Some(format!("{:036}", 7).as_str()));
    o.clear();
    assert!(o.is_empty());
    assert_eq!(o.dropped, 7, "clearing is not dropping, and the count of drops stays");
}

#[test]
fn the_outbox_keeps_at_most_two_hundred_fifty_six_kilobytes() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    let blob = format!(r#"{{"blob":"{}"}}"#, "x".repeat(30 * 1024));
    for n in 0..40 {
        e.apply(&input(Kind::Track, Some("Big Event"), Some(blob.clone()), "", T0 + n, n)).unwrap();
        let bytes: usize = e.outbox.messages().iter().map(String::len).sum();
        assert!(bytes <= MAX_BYTES, "{bytes} bytes after {n} events");
    }
    assert!(e.outbox.len() < 10);
    assert_eq!(e.outbox.dropped, 40 - e.outbox.len() as u64);
}

#[test]
fn a_message_already_waiting_is_not_queued_twice() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    let call = input(Kind::Track, Some("Products Searched"), Some("{}".into()), "", T0, 1);
    e.apply(&call).unwrap();
    e.apply(&call).unwrap();
    assert_eq!(e.outbox.len(), 1, "the same messageId is the same message");
}

#[test]
fn the_stored_outbox_reads_back_and_skips_damaged_lines() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    for n in 0..5 {
        e.apply(&input(
            Kind::Track,
            Some("Product Viewed"),
            Some(r#"{"category":"TVs"}"#.into()),
            "",
            T0 + n * MINUTE,
            n,
        ))
        .unwrap();
    }
    let stored = e.outbox.encode();
    assert_eq!(Outbox::decode(&stored).messages(), e.outbox.messages());
    let damaged = format!("garbage\n{stored}\n{{\"messageId\":\"short\"}}\n\n");
    assert_eq!(Outbox::decode(&damaged).messages(), e.outbox.messages());
    let array: Vec<miniserde::json::Value> = miniserde::json::from_str(&e.outbox.to_json_array()).unwrap();
    assert_eq!(array.len(), e.outbox.len());
}

#[test]
fn a_very_long_campaign_name_does_not_grow_the_profile() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    let campaign = "c".repeat(100_000);
    let url = format!("https://shop.example/?utm_campaign={campaign}");
    for n in 0..3 {
        e.apply(&input(Kind::Page, None, None, &url, T0 + n * MINUTE, n)).unwrap();
    }
    assert!(e.profile.encode().len() < 2048, "the profile stored {} bytes", e.profile.encode().len());
    assert_eq!(e.profile.session.count, 1, "the same long campaign is still the same session");
    let other = format!("https://shop.example/?utm_campaign={campaign}x");
    e.apply(&input(Kind::Page, None, None, &other, T0 + 5 * MINUTE, 9)).unwrap();
    assert!(e.profile.encode().len() < 2048);
}

#[test]
fn many_categories_brands_and_cart_lines_are_forgotten_weakest_first() {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    // A strong interest first, then a long tail of one-off looks.
    for n in 0..3 {
        e.apply(&input(
            Kind::Track,
            Some("Product Added"),
            Some(format!(r#"{{"category":"TVs","brand":"Sony","product_id":"tv{n}"}}"#)),
            "",
            T0 + n,
            n,
        ))
        .unwrap();
    }
    for n in 0..200u64 {
        let props = format!(r#"{{"category":"Tail {n}","brand":"Maker {n}","product_id":"t{n}","price":{n}}}"#);
        e.apply(&input(Kind::Track, Some("Product Added"), Some(props), "", T0 + MINUTE + n, 100 + n)).unwrap();
    }
    let p = &e.profile;
    assert_eq!(p.categories.len(), MAX_CATEGORIES);
    assert!(p.categories.contains_key("TVs"), "the strongest category is kept");
    assert_eq!(p.affinities.categories.m.len(), nudge::affinity::MAX_KEYS);
    assert!(p.affinities.brands.m.contains_key("Sony"));
    assert_eq!(p.cart.lines.len(), nudge::cart::MAX_LINES);
    assert!(p.encode().len() < PROFILE_BUDGET);
}
