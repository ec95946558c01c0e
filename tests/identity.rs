//! Who the shopper is: an anonymous id made from the shell's randomness, the user id and
//! traits that `identify` adds, and what `reset()` and `forget()` leave behind.

use miniserde::json::Value;
use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use nudge::time::MINUTE;

const T0: u64 = 1_795_420_800_000;
const SEED: &str = "00112233445566778899aabbccddeeff";

fn call(kind: Kind, name: Option<&str>, props: Option<&str>, now: u64, n: u64) -> Input {
    Input {
        kind,
        name: name.map(String::from),
        props: props.map(String::from),
        options: None,
        now,
        seed: format!("{:032x}", 0x1d00_0000 + n),
        page: PageInfo::default(),
    }
}

fn view(category: &str, now: u64, n: u64) -> Input {
    call(
        Kind::Track,
        Some("Product Viewed"),
        Some(&format!(r#"{{"category":"{category}","product_id":"p{n}"}}"#)),
        now,
        n,
    )
}

fn is_uuid_v4(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && id.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

fn json(e: &Engine) -> Value {
    miniserde::json::from_str(&e.profile_json(T0 + 10 * MINUTE)).unwrap()
}

fn field<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut at = v;
    for k in path {
        match at {
            Value::Object(o) => at = o.get(*k).unwrap_or_else(|| panic!("no {k}")),
            _ => panic!("not an object at {k}"),
        }
    }
    at
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn message(e: &Engine, i: usize) -> Value {
    miniserde::json::from_str(&e.outbox.messages()[i]).unwrap()
}

#[test]
fn a_new_shopper_gets_a_uuid_v4_anonymous_id_made_from_the_seed() {
    let e = Engine::new(Settings::default(), SEED);
    assert_eq!(e.profile.anonymous_id, "00112233-4455-4677-8899-aabbccddeeff");
    assert!(is_uuid_v4(&e.profile.anonymous_id));
    assert_eq!(text(field(&json(&e), &["anonymousId"])), Some("00112233-4455-4677-8899-aabbccddeeff"));
    let again = Engine::new(Settings::default(), SEED);
    assert_eq!(again.profile.anonymous_id, e.profile.anonymous_id, "same randomness, same id");
    let other = Engine::new(Settings::default(), "ffeeddccbbaa99887766554433221100");
    assert_ne!(other.profile.anonymous_id, e.profile.anonymous_id);
}

#[test]
fn any_seed_the_shell_passes_still_gives_a_uuid_v4() {
    for seed in [
        "",
        "1",
        "abc",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        "ÄÖÜ€",
        &"f".repeat(100),
        "00112233445566778899AABBCCDDEEF",
    ] {
        let e = Engine::new(Settings::default(), seed);
        assert!(is_uuid_v4(&e.profile.anonymous_id), "{seed:?} gave {}", e.profile.anonymous_id);
    }
}

#[test]
fn messages_carry_the_anonymous_id_and_their_own_message_id() {
    let mut e = Engine::new(Settings::default(), SEED);
    e.apply(&view("TVs", T0, 1)).unwrap();
    let m = message(&e, 0);
    assert_eq!(text(field(&m, &["anonymousId"])), Some(e.profile.anonymous_id.as_str()));
    assert!(matches!(field(&m, &["userId"]), Value::Null));
    let id = text(field(&m, &["messageId"])).unwrap();
    assert!(is_uuid_v4(id));
    assert_ne!(id, e.profile.anonymous_id);
}

#[test]
fn identify_sets_the_user_id_and_merges_traits() {
    let mut e = Engine::new(Settings::default(), SEED);
    e.apply(&call(Kind::Identify, Some("user-42"), Some(r#"{"email":"ada@example.com","plan":"free"}"#), T0, 1))
        .unwrap();
    e.apply(&call(Kind::Identify, Some("user-42"), Some(r#"{"plan":"pro","name":"Ada"}"#), T0 + MINUTE, 2)).unwrap();
    let v = json(&e);
    assert_eq!(text(field(&v, &["userId"])), Some("user-42"));
    assert_eq!(text(field(&v, &["traits", "email"])), Some("ada@example.com"));
    assert_eq!(text(field(&v, &["traits", "plan"])), Some("pro"), "later traits win");
    assert_eq!(text(field(&v, &["traits", "name"])), Some("Ada"));
    // The identify message carries the traits given, and later events carry the user id.
    let m = message(&e, 1);
    assert_eq!(text(field(&m, &["type"])), Some("identify"));
    assert_eq!(text(field(&m, &["traits", "name"])), Some("Ada"));
    e.apply(&view("TVs", T0 + 2 * MINUTE, 3)).unwrap();
    let last = message(&e, e.outbox.len() - 1);
    assert_eq!(text(field(&last, &["userId"])), Some("user-42"));
    assert_eq!(text(field(&last, &["anonymousId"])), Some(e.profile.anonymous_id.as_str()), "the anonymous id stays");
}

#[test]
fn identify_keeps_the_user_hash_for_reading_back_the_merged_profile() {
    let mut e = Engine::new(Settings::default(), SEED);
    let mut input = call(Kind::Identify, Some("user-42"), None, T0, 1);
    input.options = Some(r#"{"userHash":"9f86d081884c7d659a2feaa0c55ad015"}"#.into());
    e.apply(&input).unwrap();
    assert_eq!(e.profile.user_hash.as_deref(), Some("9f86d081884c7d659a2feaa0c55ad015"));
}

#[test]
fn traits_too_large_to_store_do_not_replace_the_ones_kept() {
    let mut e = Engine::new(Settings::default(), SEED);
    e.apply(&call(Kind::Identify, Some("u1"), Some(r#"{"plan":"pro"}"#), T0, 1)).unwrap();
    let huge = format!(r#"{{"bio":"{}"}}"#, "x".repeat(10_000));
    e.apply(&call(Kind::Identify, Some("u1"), Some(&huge), T0 + MINUTE, 2)).unwrap();
    assert_eq!(e.profile.traits.as_deref(), Some(r#"{"plan":"pro"}"#));
    assert!(e.profile.encode().len() < 4096);
}

#[test]
fn reset_starts_a_new_anonymous_shopper_and_keeps_consent() {
    let mut e = Engine::new(Settings::default(), SEED);
    e.apply(&call(Kind::Consent, None, Some(r#"{"marketing":false}"#), T0, 1)).unwrap();
    e.apply(&call(Kind::Identify, Some("user-42"), Some(r#"{"plan":"pro"}"#), T0, 2)).unwrap();
    e.apply(&call(Kind::Track, Some("Product Added"), Some(r#"{"category":"TVs","product_id":"tv-1"}"#), T0, 3))
        .unwrap();
    let old = e.profile.anonymous_id.clone();
    let queued = e.outbox.len();

    let out = e.apply(&call(Kind::Reset, None, None, T0 + MINUTE, 4)).unwrap();
    assert!(!out.wipe_storage);
    let v = json(&e);
    let new = text(field(&v, &["anonymousId"])).unwrap();
    assert!(is_uuid_v4(new));
    assert_ne!(new, old);
    assert!(matches!(field(&v, &["userId"]), Value::Null));
    assert!(matches!(field(&v, &["stage"]), Value::Null));
    assert!(matches!(field(&v, &["stages"]), Value::Object(o) if o.is_empty()));
    assert!(matches!(field(&v, &["traits"]), Value::Object(o) if o.is_empty()));
    assert!(matches!(field(&v, &["cart", "items"]), Value::Array(a) if a.is_empty()));
    assert!(
        matches!(field(&v, &["consent", "marketing"]), Value::Bool(false)),
        "consent is the browser's, not the user's"
    );
    assert_eq!(e.outbox.len(), queued, "what the old shopper did is still sent");

    // The next event belongs to the new shopper.
    e.apply(&view("Phones", T0 + 2 * MINUTE, 5)).unwrap();
    let m = message(&e, e.outbox.len() - 1);
    assert_eq!(text(field(&m, &["anonymousId"])), Some(new));
    assert!(matches!(field(&m, &["userId"]), Value::Null));
}

#[test]
fn reset_with_the_same_randomness_gives_the_same_new_id() {
    let run = || {
        let mut e = Engine::new(Settings::default(), SEED);
        e.apply(&call(Kind::Reset, None, None, T0, 7)).unwrap();
        e.profile.anonymous_id
    };
    assert_eq!(run(), run());
}

#[test]
fn forget_wipes_everything_and_asks_the_server_to_erase_the_shopper() {
    let mut e = Engine::new(Settings::default(), SEED);
    e.apply(&call(Kind::Consent, None, Some(r#"{"analytics":true,"marketing":false}"#), T0, 1)).unwrap();
    e.apply(&call(Kind::Identify, Some("user-42"), Some(r#"{"email":"ada@example.com"}"#), T0, 2)).unwrap();
    for n in 0..5 {
        e.apply(&view("TVs", T0 + n * MINUTE, 10 + n)).unwrap();
    }
    let old = e.profile.anonymous_id.clone();

    let out = e.apply(&call(Kind::Forget, None, None, T0 + 10 * MINUTE, 99)).unwrap();
    assert!(out.wipe_storage);
    assert!(out.stage_changes.is_empty());
    // Only the erasure request is left to send, made in the name of the forgotten shopper.
    assert_eq!(e.outbox.len(), 1);
    let m = message(&e, 0);
    assert_eq!(text(field(&m, &["event"])), Some("Erasure Requested"));
    assert_eq!(text(field(&m, &["anonymousId"])), Some(old.as_str()));
    assert_eq!(text(field(&m, &["userId"])), Some("user-42"));
    assert!(!e.outbox.messages()[0].contains("ada@example.com"), "the request carries no traits");

    let v = json(&e);
    assert_ne!(text(field(&v, &["anonymousId"])), Some(old.as_str()));
    assert!(matches!(field(&v, &["userId"]), Value::Null));
    assert!(matches!(field(&v, &["stages"]), Value::Object(o) if o.is_empty()));
    assert!(e.profile.traits.is_none());
    assert!(matches!(field(&v, &["consent", "analytics"]), Value::Bool(true)));
    assert!(matches!(field(&v, &["consent", "marketing"]), Value::Bool(false)));
}

#[test]
fn forget_after_consent_was_refused_sends_nothing_at_all() {
    let mut e = Engine::new(Settings::default(), SEED);
    e.apply(&view("TVs", T0, 1)).unwrap();
    e.apply(&call(Kind::Consent, None, Some(r#"{"analytics":false}"#), T0, 2)).unwrap();
    let out = e.apply(&call(Kind::Forget, None, None, T0 + MINUTE, 3)).unwrap();
    assert!(out.wipe_storage);
    assert!(e.outbox.is_empty());
}
