//! Calls the core refuses: bad event names, properties that are not a small shallow JSON
//! object, unreadable options and timestamps, bad user ids and consent choices. A refused
//! call returns the reason and changes nothing: the stored profile and the outbox are
//! byte-identical before and after.

use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::error::Error;
use nudge::event::{MAX_DEPTH, MAX_NAME, MAX_PROPS_BYTES};
use nudge::message::PageInfo;
use nudge::time::MINUTE;

const T0: u64 = 1_795_420_800_000;

fn call(kind: Kind, name: Option<&str>, props: Option<&str>, options: Option<&str>, now: u64, n: u64) -> Input {
    Input {
        kind,
        name: name.map(String::from),
        props: props.map(String::from),
        options: options.map(String::from),
        now,
        seed: format!("{:032x}", 0xabc0_0000 + n),
        page: PageInfo {
            url: "https://shop.example/tv?utm_campaign=tv-week".into(),
            title: "TVs".into(),
            referrer: String::new(),
        },
    }
}

/// A shopper with some history, so that a change would show.
fn shopper() -> Engine {
    let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
    let calls = [
        call(Kind::Page, Some("Home"), None, None, T0, 1),
        call(
            Kind::Track,
            Some("Product Viewed"),
            Some(r#"{"category":"TVs","product_id":"tv-1","brand":"Sony","price":899}"#),
            None,
            T0 + MINUTE,
            2,
        ),
        call(
            Kind::Track,
            Some("Product Added"),
            Some(r#"{"category":"TVs","product_id":"tv-1","price":899}"#),
            None,
            T0 + 2 * MINUTE,
            3,
        ),
        call(Kind::Identify, Some("user-42"), Some(r#"{"email":"a@example.com"}"#), None, T0 + 3 * MINUTE, 4),
    ];
    for c in &calls {
        e.apply(c).expect("setup call");
    }
    e
}

/// Everything a refused call must leave alone.
fn state(e: &Engine) -> (String, String, usize, u64, String) {
    (e.profile.encode(), e.outbox.encode(), e.outbox.len(), e.outbox.dropped, e.profile_json(T0 + 10 * MINUTE))
}

/// Applies `input` to a shopper with history and checks it is refused with `want`
/// without any change.
fn refused(input: Input, want: Error) {
    let mut e = shopper();
    let before = state(&e);
    let profile = e.profile.clone();
    let outbox = e.outbox.clone();
    assert_eq!(e.apply(&input), Err(want), "{input:?}");
    assert_eq!(state(&e), before, "a refused call changed the state: {input:?}");
    assert_eq!(e.profile, profile);
    assert_eq!(e.outbox, outbox);
}

fn track(name: &str, props: &str) -> Input {
    call(Kind::Track, Some(name), Some(props), None, T0 + 5 * MINUTE, 99)
}

fn nested(depth: usize) -> String {
    format!("{{\"a\":{}1{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1))
}

#[test]
fn an_event_name_must_have_one_to_two_hundred_characters() {
    refused(track("", "{}"), Error::EventName);
    refused(track("   ", "{}"), Error::EventName);
    refused(track(&"x".repeat(MAX_NAME + 1), "{}"), Error::EventName);
    refused(call(Kind::Track, None, None, None, T0, 99), Error::EventName);
    let mut e = shopper();
    assert!(e.apply(&track(&"x".repeat(MAX_NAME), "{}")).is_ok());
    assert!(e.apply(&track(&"ü".repeat(MAX_NAME), "{}")).is_ok(), "characters, not bytes");
}

#[test]
fn properties_must_be_a_json_object() {
    for (props, why) in [
        ("[1,2]", Error::NotAnObject),
        (r#"["category","TVs"]"#, Error::NotAnObject),
        (r#""TVs""#, Error::NotAnObject),
        ("42", Error::NotAnObject),
        ("true", Error::NotAnObject),
        ("category=TVs", Error::NotAnObject),
        ("{category: 'TVs'}", Error::BadJson),
        (r#"{"category":"TVs""#, Error::BadJson),
        (r#"{"category":"TVs"} trailing"#, Error::BadJson),
        ("{\"a\":NaN}", Error::BadJson),
    ] {
        refused(track("Product Viewed", props), why);
    }
}

#[test]
fn absent_or_null_properties_are_an_empty_object() {
    let mut e = shopper();
    for props in [None, Some(""), Some("null"), Some("  ")] {
        let input = call(Kind::Track, Some("Products Searched"), props, None, T0 + 5 * MINUTE, 7);
        assert!(e.apply(&input).is_ok(), "{props:?}");
    }
}

#[test]
fn properties_over_thirty_two_kilobytes_are_refused() {
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_PROPS_BYTES));
    refused(track("Product Viewed", &big), Error::TooLarge);
    let fits = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_PROPS_BYTES - 20));
    assert!(shopper().apply(&track("Product Viewed", &fits)).is_ok());
}

#[test]
fn properties_nested_deeper_than_the_limit_are_refused() {
    refused(track("Product Viewed", &nested(MAX_DEPTH + 1)), Error::TooDeep);
    refused(track("Product Viewed", &nested(10_000)), Error::TooDeep);
    assert!(shopper().apply(&track("Product Viewed", &nested(MAX_DEPTH))).is_ok());
    // Brackets inside strings are text, not nesting.
    let text = format!(r#"{{"q":"{}"}}"#, "[{".repeat(100));
    assert!(shopper().apply(&track("Products Searched", &text)).is_ok());
}

#[test]
fn numbers_too_large_for_a_double_are_refused() {
    let mut e = shopper();
    let before = state(&e);
    assert!(e.apply(&track("Product Viewed", r#"{"price":1e999}"#)).is_err());
    assert_eq!(state(&e), before);
}

#[test]
fn a_timestamp_that_is_not_iso_8601_is_refused() {
    for ts in ["yesterday", "2026-11-23", "2026-02-30T00:00:00Z", "2026-11-23T10:00:00", "1969-12-31T23:59:59Z", ""] {
        let options = format!(r#"{{"timestamp":"{ts}"}}"#);
        let mut input = track("Product Viewed", r#"{"category":"TVs"}"#);
        input.options = Some(options);
        refused(input, Error::BadTimestamp);
    }
}

#[test]
fn options_that_are_not_a_json_object_of_known_shape_are_refused() {
    for options in ["not json", "[1]", r#"{"timestamp":5}"#, r#"{"userHash":true}"#] {
        let mut input = track("Product Viewed", r#"{"category":"TVs"}"#);
        input.options = Some(options.into());
        refused(input, Error::BadOptions);
    }
    // Absent, empty and null options are no options.
    let mut e = shopper();
    for options in [None, Some(""), Some("null"), Some("{}")] {
        let mut input = track("Products Searched", "{}");
        input.options = options.map(String::from);
        assert!(e.apply(&input).is_ok(), "{options:?}");
    }
}

#[test]
fn every_kind_of_call_checks_its_options_before_changing_anything() {
    let bad = Some(r#"{"timestamp":"soon"}"#);
    refused(call(Kind::Page, Some("Home"), None, bad, T0, 9), Error::BadTimestamp);
    refused(call(Kind::Identify, Some("u1"), None, bad, T0, 9), Error::BadTimestamp);
    refused(call(Kind::Consent, None, Some(r#"{"analytics":false}"#), bad, T0, 9), Error::BadTimestamp);
    refused(call(Kind::Reset, None, None, bad, T0, 9), Error::BadTimestamp);
    refused(call(Kind::Forget, None, None, bad, T0, 9), Error::BadTimestamp);
}

#[test]
fn a_page_call_checks_its_name_and_properties() {
    refused(call(Kind::Page, Some(&"p".repeat(201)), None, None, T0, 9), Error::EventName);
    refused(call(Kind::Page, Some(" "), None, None, T0, 9), Error::EventName);
    refused(call(Kind::Page, None, Some("[]"), None, T0, 9), Error::NotAnObject);
    assert!(shopper().apply(&call(Kind::Page, None, None, None, T0, 9)).is_ok(), "a page needs no name");
}

#[test]
fn identify_needs_a_user_id_of_one_to_two_hundred_characters_and_object_traits() {
    refused(call(Kind::Identify, None, None, None, T0, 9), Error::UserId);
    refused(call(Kind::Identify, Some(""), None, None, T0, 9), Error::UserId);
    refused(call(Kind::Identify, Some("  "), None, None, T0, 9), Error::UserId);
    refused(call(Kind::Identify, Some(&"u".repeat(201)), None, None, T0, 9), Error::UserId);
    refused(call(Kind::Identify, Some("u2"), Some(r#"["vip"]"#), None, T0, 9), Error::NotAnObject);
    refused(call(Kind::Identify, Some("u2"), Some(&nested(40)), None, T0, 9), Error::TooDeep);
}

#[test]
fn consent_takes_only_known_categories_as_booleans() {
    for choices in [r#"{"ads":true}"#, r#"{"analytics":"yes"}"#, r#"{"analytics":1}"#, "[]", "", "true", "nope"] {
        refused(call(Kind::Consent, None, Some(choices), None, T0, 9), Error::BadConsent);
    }
    refused(call(Kind::Consent, None, None, None, T0, 9), Error::BadConsent);
}

#[test]
fn a_refused_forwarded_call_does_not_count_as_applied() {
    let mut e = shopper();
    let before = state(&e);
    let acks = e.profile.acks.clone();
    assert_eq!(e.apply_forwarded("tab-b", 1, &track("", "{}")), Err(Error::EventName));
    assert_eq!(state(&e), before);
    assert_eq!(e.profile.acks, acks);
    // The same sequence number with a good call is then applied, once.
    let good = track("Products Searched", r#"{"query":"oled"}"#);
    e.apply_forwarded("tab-b", 1, &good).unwrap();
    let after = state(&e);
    assert_eq!(e.outbox.len(), before.2 + 1);
    assert_eq!(e.apply_forwarded("tab-b", 1, &good), Ok(Default::default()));
    assert_eq!(state(&e), after, "a repeated forwarded call changes nothing");
}

#[test]
fn every_refusal_has_a_message_a_developer_can_act_on() {
    for err in [
        Error::EventName,
        Error::NotAnObject,
        Error::TooLarge,
        Error::TooDeep,
        Error::NotFinite,
        Error::BadJson,
        Error::BadTimestamp,
        Error::UserId,
        Error::BadConsent,
        Error::BadOptions,
    ] {
        assert!(err.message().len() > 10, "{err:?}");
    }
}
