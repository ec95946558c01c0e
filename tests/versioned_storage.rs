//! The stored profile is versioned: the current layout reads back exactly, an older layout
//! migrates, and text that cannot be read (corrupt, truncated, from a newer SDK) is
//! replaced by a fresh profile that keeps the running anonymous id, and says so.

use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use nudge::profile::{Loaded, Profile, VERSION};
use nudge::time::{DAY, MINUTE};

const T0: u64 = 1_795_420_800_000;

fn engine(seed: &str) -> Engine {
    Engine::new(Settings::default(), seed)
}

fn track(event: &str, props: &str, now: u64, n: u64) -> Input {
    Input::track(event, props, now, &format!("{:032x}", 0x5707_0000 + n))
}

/// A shopper with something of everything in the profile.
fn busy_shopper() -> Engine {
    let mut e = engine("0123456789abcdef0123456789abcdef");
    e.apply(&Input {
        kind: Kind::Identify,
        name: Some("user-7".into()),
        props: Some(r#"{"email":"grace@example.com","tags":["vip"],"age":36}"#.into()),
        options: Some(r#"{"userHash":"abc123"}"#.into()),
        now: T0,
        seed: "1".repeat(32),
        page: PageInfo { url: "https://shop.example/?utm_campaign=autumn".into(), ..PageInfo::default() },
    })
    .unwrap();
    e.apply(&Input { kind: Kind::Consent, props: Some(r#"{"marketing":false}"#.into()), ..track("x", "{}", T0, 0) })
        .unwrap();
    for n in 0..6 {
        e.apply(&track(
            "Product Viewed",
            r#"{"category":"TVs","brand":"Sony","product_id":"tv-1","price":899.99}"#,
            T0 + n * MINUTE,
            n,
        ))
        .unwrap();
    }
    e.apply(&track(
        "Product Added",
        r#"{"category":"TVs","product_id":"tv-1","price":899.99,"quantity":2,"currency":"EUR"}"#,
        T0 + 7 * MINUTE,
        7,
    ))
    .unwrap();
    e.apply(&track(
        "Order Completed",
        r#"{"products":[{"category":"Phones","product_id":"ph-1","price":0.1}]}"#,
        T0 + 8 * MINUTE,
        8,
    ))
    .unwrap();
    e.apply_forwarded("tab-2", 3, &track("Products Searched", r#"{"query":"oled"}"#, T0 + 9 * MINUTE, 9)).unwrap();
    e
}

/// The stored form of an older layout: version 1 had no tab-sync ledger.
fn as_version_one(current: &str) -> String {
    let v1 = current.replacen(&format!("\"v\":{VERSION}"), "\"v\":1", 1);
    let start = v1.find(",\"acks\":").expect("acks are stored");
    // The ledger holds entries: cut the whole object, up to its closing brace.
    let mut depth = 0;
    let mut cut = v1.len();
    for (i, c) in v1[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => {
                cut = start + i + 1;
                break;
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    format!("{}{}", &v1[..start], &v1[cut..])
}

#[test]
fn a_stored_profile_reads_back_exactly() {
    let e = busy_shopper();
    let stored = e.profile.encode();
    let mut later = engine("ffffffffffffffffffffffffffffffff");
    assert_eq!(later.load_profile(&stored), Loaded::Current);
    assert_eq!(later.profile, e.profile);
    assert_eq!(later.profile.encode(), stored);
    assert_eq!(later.profile_json(T0 + DAY), e.profile_json(T0 + DAY));
}

#[test]
fn a_version_one_profile_migrates_and_keeps_the_journey() {
    let e = busy_shopper();
    let v1 = as_version_one(&e.profile.encode());
    assert!(v1.contains("\"v\":1") && !v1.contains("acks"), "{v1}");
    let mut later = engine("ffffffffffffffffffffffffffffffff");
    assert_eq!(later.load_profile(&v1), Loaded::Migrated);
    assert_eq!(later.profile.v, VERSION);
    assert!(later.profile.acks.is_empty());
    assert_eq!(later.profile.anonymous_id, e.profile.anonymous_id);
    assert_eq!(later.profile.user_id.as_deref(), Some("user-7"));
    assert_eq!(later.profile.categories, e.profile.categories);
    assert_eq!(later.profile.cart, e.profile.cart);
    assert_eq!(later.profile.consent, e.profile.consent);
    // It is written back in the current layout, which then reads as current.
    let rewritten = later.profile.encode();
    assert!(rewritten.starts_with(&format!("{{\"v\":{VERSION},")), "{rewritten}");
    assert_eq!(Profile::decode(&rewritten, "x".into()).1, Loaded::Current);
    // And the journey goes on from where it was.
    later.apply(&track("Product Viewed", r#"{"category":"Phones","product_id":"ph-2"}"#, T0 + 2 * DAY, 50)).unwrap();
    assert!(later.profile_json(T0 + 2 * DAY).contains(r#""Phones":"loyalty""#));
}

#[test]
fn unreadable_text_is_replaced_by_a_fresh_profile_that_keeps_the_running_id() {
    let stored = busy_shopper().profile.encode();
    let truncated = &stored[..stored.len() / 2];
    let future = stored.replacen(&format!("\"v\":{VERSION}"), &format!("\"v\":{}", VERSION + 1), 1);
    let no_version = stored.replacen(&format!("\"v\":{VERSION},"), "", 1);
    let no_id = stored.replacen("\"anonymous_id\":\"", "\"anonymous_id\":\"\",\"x\":\"", 1);
    let wrong_type = stored.replacen("\"categories\":{", "\"categories\":[{", 1);
    for text in [
        "",
        "null",
        "[]",
        "{}",
        "\u{0}\u{1}binary",
        "{\"v\":0,\"anonymous_id\":\"a\"}",
        "{\"v\":-1}",
        "{\"v\":\"2\"}",
        truncated,
        &future,
        &no_version,
        &no_id,
        &wrong_type,
    ] {
        let mut e = engine("00112233445566778899aabbccddeeff");
        let id = e.profile.anonymous_id.clone();
        assert_eq!(e.load_profile(text), Loaded::Replaced, "{text:.80}");
        assert_eq!(e.profile, Profile::new(id), "{text:.80}");
    }
}

#[test]
fn a_replaced_profile_works_like_a_new_one() {
    let mut e = engine("00112233445566778899aabbccddeeff");
    assert_eq!(e.load_profile("{corrupt"), Loaded::Replaced);
    e.apply(&track("Product Viewed", r#"{"category":"TVs"}"#, T0, 1)).unwrap();
    assert!(e.profile_json(T0).contains(r#""stages":{"TVs":"awareness"}"#));
}

#[test]
fn stored_profiles_from_another_hand_do_not_break_the_next_call() {
    // Views out of order, as a buggy writer or a hand in the devtools might leave them.
    let stored = busy_shopper().profile.encode();
    let views = stored.find("\"views\":[").expect("views are stored");
    let end = views + stored[views..].find(']').unwrap() + 1;
    let tampered = format!("{}\"views\":[1,2,{T0},4,{},0,0]{}", &stored[..views], u64::MAX, &stored[end..]);
    let mut e = engine("00112233445566778899aabbccddeeff");
    assert_eq!(e.load_profile(&tampered), Loaded::Current);
    for n in 0..10 {
        e.apply(&track("Product Viewed", r#"{"category":"Phones","product_id":"ph-9"}"#, T0 + n, 100 + n)).unwrap();
    }
    let _ = e.profile_json(T0 + 10);
}

#[test]
fn prices_in_the_millions_keep_their_digits_in_storage() {
    // Rupiah and dong prices run to millions; scores and prices keep nine decimals.
    let mut e = engine("0123456789abcdef0123456789abcdef");
    let props = r#"{"product_id":"tv-1","category":"TVs","price":12500000.5,"currency":"IDR"}"#;
    e.apply(&track("Product Added", props, T0, 1)).unwrap();
    e.apply(&track("Product Added", r#"{"product_id":"cable","price":0.123456789123}"#, T0 + MINUTE, 2)).unwrap();
    let mut later = engine("ffffffffffffffffffffffffffffffff");
    assert_eq!(later.load_profile(&e.profile.encode()), Loaded::Current);
    assert_eq!(later.profile.cart.lines[0].price, 12_500_000.5);
    assert_eq!(later.profile.cart, e.profile.cart);
    assert!(later.profile_json(T0 + MINUTE).contains(r#""value":12500000.623"#), "{}", later.profile_json(T0));
}
