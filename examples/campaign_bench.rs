//! How long deciding which popup to show takes with 50 campaigns, natively (the budget is
//! 50 µs per decision in the browser; the Wasm runs within a small factor of native).
//!
//! Worst case on purpose: every campaign's trigger fires and the shopper has a ledger entry
//! for each, but only the lowest-ranked campaign's audience matches, so the scan reads all
//! 50 (stage per category, cart value, visitor, identity, caps).
//!
//! Run: `cargo run --release --example campaign_bench`

use nudge::decide::{decide, Choice, Moment};
use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use std::hint::black_box;
use std::time::Instant;

const T0: u64 = 1_795_420_800_000;
const MINUTE: u64 = 60_000;

fn main() {
    let mut campaigns = Vec::new();
    for i in 0..50 {
        // Twenty categories spread over the campaigns, so stages are computed, not recalled.
        let (category, stage) =
            if i == 49 { ("Cat-0".to_string(), "consideration") } else { (format!("Cat-{}", i % 20), "loyalty") };
        campaigns.push(format!(
            r#"{{"id":"campaign-{i:02}","priority":{p},"holdout":0.1,"trigger":{{"on":"exit-intent"}},
            "audience":{{"stage":{{"category":"{category}","in":["{stage}","decision"]}},
              "cartValue":{{"min":0,"max":100000}},"visitor":"new","identified":false}},
            "content":{{"title":"Offer {i}","text":"Ten percent off","button":"Get it","emailField":true}},
            "offer":{{"code":"SAVE{i}","percent":10,"expiresDays":7}},
            "caps":{{"perSession":3,"perDay":5,"ever":9,"dismissDays":7,"convertDays":30}}}}"#,
            p = 100 - i
        ));
    }
    let mut e = Engine::new(Settings::default(), "00000000000000000000000000000001");
    let out = e.apply_site_config(&format!(r#"{{"campaigns":[{}]}}"#, campaigns.join(",")), T0).unwrap();
    assert!(out.problems.is_empty());
    let page = PageInfo { url: "https://shop.example/tv/1".into(), ..PageInfo::default() };
    let mut n = 0u64;
    let mut input = |kind, name: Option<&str>, props: &str, now| {
        n += 1;
        Input {
            kind,
            name: name.map(String::from),
            props: Some(props.into()),
            options: None,
            now,
            seed: format!("{n:032x}"),
            page: page.clone(),
        }
    };
    // A shopper with 20 categories of evidence, a cart, and a ledger entry per campaign.
    for c in 0..20 {
        for v in 0..3 {
            let props = format!(r#"{{"category":"Cat-{c}","product_id":"p{c}-{v}","price":100}}"#);
            e.apply(&input(Kind::Track, Some("Product Viewed"), &props, T0 + (c * 3 + v) * MINUTE)).unwrap();
        }
    }
    e.apply(&input(
        Kind::Track,
        Some("Product Added"),
        r#"{"product_id":"x","price":20,"category":"Cables"}"#,
        T0 + 70 * MINUTE,
    ))
    .unwrap();
    let now = T0 + 80 * MINUTE;
    for c in e.campaigns().iter().map(|c| c.id.clone()).collect::<Vec<_>>() {
        e.profile.popups.entry(&c, now).dismissed = now - 30 * 86_400_000;
    }
    let th = e.settings().thresholds.clone();
    let m = Moment::Leaving(None);
    let chosen = decide(e.campaigns(), &m, &e.profile, &e.profile.popups, now, &th);
    let last = match chosen {
        Some(Choice::Show(c) | Choice::HeldOut(c)) => c.id.as_str(),
        None => "",
    };
    assert_eq!(last, "campaign-49", "only the lowest-ranked campaign matches");

    let rounds = 200_000;
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(decide(black_box(e.campaigns()), &m, black_box(&e.profile), &e.profile.popups, now, &th));
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!("decide(), 50 campaigns, all scanned: {per:.3} µs per decision");

    // The whole page-signal call through the engine (JSON in, decision, popup JSON out):
    // a slow pointer exit that is not leaving, and a fast one that is, which also queues
    // `Cart Abandon Intent` (writing a Segment message with its context), on a fresh copy
    // of the profile and an empty outbox each time.
    let slow = input(Kind::Signal, None, r#"{"signal":"pointer-exit","speed":100}"#, now);
    let fast = input(Kind::Signal, None, r#"{"signal":"pointer-exit","speed":1500}"#, now);
    for (label, signal) in [("not leaving", &slow), ("leaving, popup chosen", &fast)] {
        let rounds = 20_000;
        let copies: Vec<_> = (0..rounds).map(|_| e.profile.clone()).collect();
        let start = Instant::now();
        for p in copies {
            e.profile = p;
            e.outbox.clear();
            black_box(e.apply(signal).unwrap());
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!("Engine::apply(page signal), {label}: {per:.3} µs per call");
    }
}
