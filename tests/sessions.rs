//! Sessions: 30 minutes without activity, or arriving from a new UTM campaign, starts a
//! new session; everything within 30 minutes of the last call belongs to the same one.

use miniserde::json::{Number, Value};
use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use nudge::time::{HOUR, MINUTE};

const T0: u64 = 1_795_420_800_000;

struct Browser {
    engine: Engine,
    calls: u64,
}

impl Browser {
    fn new(settings: Settings) -> Browser {
        Browser { engine: Engine::new(settings, "0123456789abcdef0123456789abcdef"), calls: 0 }
    }

    fn at(&mut self, kind: Kind, url: &str, now: u64) {
        self.calls += 1;
        let input = Input {
            kind,
            name: match kind {
                Kind::Track => Some("Product Viewed".into()),
                Kind::Identify => Some("user-1".into()),
                _ => None,
            },
            props: None,
            options: None,
            now,
            seed: format!("{:032x}", 0x5e55_0000 + self.calls),
            page: PageInfo { url: url.into(), title: "Shop".into(), referrer: String::new() },
        };
        self.engine.apply(&input).expect("a valid call");
    }

    fn page(&mut self, url: &str, now: u64) -> u64 {
        self.at(Kind::Page, url, now);
        self.session()
    }

    fn track(&mut self, now: u64) -> u64 {
        self.at(Kind::Track, "https://shop.example/tv", now);
        self.session()
    }

    /// The session id `profile()` reports.
    fn session(&self) -> u64 {
        let v: Value = miniserde::json::from_str(&self.engine.profile_json(0)).unwrap();
        let Value::Object(o) = v else { panic!("not an object") };
        match o.get("sessionId") {
            Some(Value::Number(Number::U64(n))) => *n,
            _ => panic!("no sessionId"),
        }
    }
}

const SHOP: &str = "https://shop.example/";

#[test]
fn the_first_call_starts_a_session_named_after_its_time() {
    let mut b = Browser::new(Settings::default());
    assert_eq!(b.page(SHOP, T0), T0);
    assert_eq!(b.engine.profile.session.count, 1);
}

#[test]
fn calls_within_thirty_minutes_of_each_other_share_a_session() {
    let mut b = Browser::new(Settings::default());
    let first = b.page(SHOP, T0);
    // Each call is within 30 minutes of the one before, for two hours in all.
    for n in 1..=8 {
        assert_eq!(b.track(T0 + n * 15 * MINUTE), first);
    }
    assert_eq!(b.page(SHOP, T0 + 2 * HOUR + 30 * MINUTE), first, "exactly 30 minutes is still the same session");
    assert_eq!(b.engine.profile.session.count, 1);
}

#[test]
fn thirty_minutes_of_inactivity_start_a_new_session() {
    let mut b = Browser::new(Settings::default());
    let first = b.page(SHOP, T0);
    let second = b.track(T0 + 30 * MINUTE + 1);
    assert_ne!(second, first);
    assert_eq!(second, T0 + 30 * MINUTE + 1);
    assert_eq!(b.engine.profile.session.count, 2);
}

#[test]
fn arriving_from_a_new_campaign_starts_a_new_session() {
    let mut b = Browser::new(Settings::default());
    let first = b.page(SHOP, T0);
    let campaign = b.page("https://shop.example/tv?utm_source=mail&utm_campaign=tv-week", T0 + MINUTE);
    assert_ne!(campaign, first);
    // Moving on within the site, or coming back through the same campaign, keeps it.
    assert_eq!(b.page("https://shop.example/tv/oled-55", T0 + 2 * MINUTE), campaign);
    assert_eq!(b.page("https://shop.example/tv?utm_campaign=tv-week", T0 + 3 * MINUTE), campaign);
    // Another campaign is another session.
    let other = b.page("https://shop.example/phones?utm_campaign=phone%20days", T0 + 4 * MINUTE);
    assert_ne!(other, campaign);
    assert_eq!(b.engine.profile.session.campaign.as_deref(), Some("phone days"));
}

#[test]
fn an_identify_call_is_activity_too() {
    let mut b = Browser::new(Settings::default());
    let first = b.page(SHOP, T0);
    b.at(Kind::Identify, SHOP, T0 + 25 * MINUTE);
    assert_eq!(b.page(SHOP, T0 + 50 * MINUTE), first);
}

#[test]
fn a_consent_choice_is_not_activity() {
    let mut b = Browser::new(Settings::default());
    b.page(SHOP, T0);
    let before = b.engine.profile.session.clone();
    b.engine
        .apply(&Input {
            kind: Kind::Consent,
            name: None,
            props: Some(r#"{"marketing":true}"#.into()),
            options: None,
            now: T0 + 20 * MINUTE,
            seed: "f".repeat(32),
            page: PageInfo::default(),
        })
        .unwrap();
    assert_eq!(b.engine.profile.session, before);
}

#[test]
fn a_site_can_choose_a_shorter_session_timeout() {
    let mut b =
        Browser::new(Settings::from_options(r#"{"thresholds":{"session_timeout_minutes":5}}"#, false, "", "").unwrap());
    let first = b.page(SHOP, T0);
    assert_eq!(b.track(T0 + 4 * MINUTE), first);
    assert_ne!(b.track(T0 + 10 * MINUTE), first);
}

#[test]
fn a_call_that_arrives_late_does_not_end_the_session() {
    let mut b = Browser::new(Settings::default());
    let first = b.page(SHOP, T0 + 10 * MINUTE);
    assert_eq!(b.track(T0), first, "a clock that went backwards is no inactivity");
    assert_eq!(b.track(T0 + 35 * MINUTE), first, "inactivity counts from the latest call");
}

#[test]
fn every_message_names_its_session_and_campaign() {
    let mut b = Browser::new(Settings::default());
    b.page("https://shop.example/?utm_campaign=tv-week&utm_medium=email", T0);
    b.track(T0 + 40 * MINUTE);
    let msgs: Vec<Value> = b.engine.outbox.messages().iter().map(|m| miniserde::json::from_str(m).unwrap()).collect();
    let session_of = |m: &Value| {
        let Value::Object(o) = m else { panic!() };
        let Some(Value::Object(c)) = o.get("context") else { panic!("no context") };
        match c.get("sessionId") {
            Some(Value::Number(Number::U64(n))) => *n,
            _ => panic!("no context.sessionId"),
        }
    };
    assert_eq!(session_of(&msgs[0]), T0);
    assert!(b.engine.outbox.messages()[0].contains(r#""campaign":{"name":"tv-week","medium":"email"}"#));
    assert_eq!(session_of(msgs.last().unwrap()), T0 + 40 * MINUTE);
}
