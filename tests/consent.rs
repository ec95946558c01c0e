//! Consent: on opt-in sites nothing may be stored until analytics is granted (events are
//! held in memory meanwhile); refusing analytics drops what was held and wipes storage;
//! Global Privacy Control turns marketing off unless the shopper grants it.

use miniserde::json::Value;
use nudge::consent::{Choices, Mode};
use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use nudge::time::MINUTE;

const T0: u64 = 1_795_420_800_000;
const OPT_IN: &str = r#"{"consent":{"mode":"opt-in"}}"#;

struct Site {
    engine: Engine,
    calls: u64,
}

impl Site {
    fn new(options: &str, gpc: bool) -> Site {
        let settings = Settings::from_options(options, gpc, "test-agent", "de-DE").expect("valid init options");
        Site { engine: Engine::new(settings, "0123456789abcdef0123456789abcdef"), calls: 0 }
    }

    fn apply(&mut self, kind: Kind, name: Option<&str>, props: Option<&str>) -> nudge::engine::Outputs {
        self.calls += 1;
        let input = Input {
            kind,
            name: name.map(String::from),
            props: props.map(String::from),
            options: None,
            now: T0 + self.calls * MINUTE,
            seed: format!("{:032x}", 0xc0_0000 + self.calls),
            page: PageInfo::default(),
        };
        self.engine.apply(&input).expect("a valid call")
    }

    fn view(&mut self, category: &str) {
        let props = format!(r#"{{"category":"{category}","product_id":"p{}"}}"#, self.calls);
        self.apply(Kind::Track, Some("Product Viewed"), Some(&props));
    }

    fn consent(&mut self, choices: &str) -> nudge::engine::Outputs {
        self.apply(Kind::Consent, None, Some(choices))
    }

    /// `profile().consent` as (analytics, personalization, marketing).
    fn shown(&self) -> (bool, bool, bool) {
        let v: Value = miniserde::json::from_str(&self.engine.profile_json(T0)).unwrap();
        let Value::Object(o) = v else { panic!() };
        let Some(Value::Object(c)) = o.get("consent") else { panic!("no consent") };
        let flag = |k: &str| matches!(c.get(k), Some(Value::Bool(true)));
        (flag("analytics"), flag("personalization"), flag("marketing"))
    }
}

#[test]
fn an_opt_out_site_may_store_and_send_from_the_start() {
    let mut s = Site::new("{}", false);
    assert!(s.engine.may_store());
    assert_eq!(s.shown(), (true, true, true));
    s.view("TVs");
    assert_eq!(s.engine.outbox.len(), 2, "the view and its Stage Changed");
}

#[test]
fn an_opt_in_site_may_not_store_until_analytics_is_granted() {
    let mut s = Site::new(OPT_IN, false);
    assert_eq!(s.engine.settings().policy.mode, Mode::OptIn);
    assert!(!s.engine.may_store());
    assert_eq!(s.shown(), (false, false, false));
    s.view("TVs");
    s.consent(r#"{"personalization":true}"#);
    assert!(!s.engine.may_store(), "personalization alone is not analytics");
    let out = s.consent(r#"{"analytics":true}"#);
    assert!(!out.wipe_storage);
    assert!(s.engine.may_store());
    assert_eq!(s.shown(), (true, true, false));
}

#[test]
fn events_held_before_consent_are_kept_when_it_is_granted() {
    let mut s = Site::new(OPT_IN, false);
    s.view("TVs");
    s.view("TVs");
    let held: Vec<String> = s.engine.outbox.messages().to_vec();
    assert_eq!(held.len(), 3, "two views and a Stage Changed, in memory only");
    s.consent(r#"{"analytics":true}"#);
    assert_eq!(&s.engine.outbox.messages()[..3], &held[..], "what was held is kept as it was");
    // The grant itself is told to the server, which takes consent from the latest message.
    let grant = &s.engine.outbox.messages()[3];
    assert!(grant.contains(r#""event":"Consent Preference Updated""#), "{grant}");
    assert!(grant.contains(r#""properties":{"analytics":true,"personalization":false,"marketing":false}"#), "{grant}");
    s.view("TVs");
    assert_eq!(s.engine.outbox.len(), 6, "a third view makes TVs consideration");
    assert!(s.engine.outbox.messages()[5].contains(r#""categoryPreferences":{"analytics":true"#));
}

#[test]
fn refusing_analytics_drops_the_outbox_and_wipes_storage() {
    let mut s = Site::new("{}", false);
    s.apply(Kind::Identify, Some("user-1"), Some(r#"{"email":"a@example.com"}"#));
    s.view("TVs");
    s.apply(Kind::Track, Some("Product Added"), Some(r#"{"product_id":"tv-1","category":"TVs","price":5}"#));
    assert!(!s.engine.outbox.is_empty());
    let out = s.consent(r#"{"analytics":false}"#);
    assert!(out.wipe_storage);
    assert!(s.engine.outbox.is_empty());
    assert!(!s.engine.may_store());
    assert!(s.engine.profile.categories.is_empty());
    assert!(s.engine.profile.cart.lines.is_empty());
    assert!(s.engine.profile.traits.is_none());
    // Nothing new is queued while analytics is refused.
    s.view("Phones");
    s.apply(Kind::Page, Some("Home"), None);
    assert!(s.engine.outbox.is_empty());
}

#[test]
fn withdrawing_consent_on_an_opt_in_site_wipes_what_was_held() {
    let mut s = Site::new(OPT_IN, false);
    s.consent(r#"{"analytics":true,"marketing":true}"#);
    s.view("TVs");
    let out = s.consent(r#"{"analytics":false}"#);
    assert!(out.wipe_storage);
    assert!(s.engine.outbox.is_empty());
    assert_eq!(s.shown(), (false, false, true), "choices not named are kept");
}

#[test]
fn granting_again_after_refusing_resumes_sending() {
    let mut s = Site::new("{}", false);
    s.consent(r#"{"analytics":false}"#);
    s.view("TVs");
    assert!(s.engine.outbox.is_empty());
    s.consent(r#"{"analytics":true}"#);
    s.apply(Kind::Track, Some("Products Searched"), Some(r#"{"query":"oled"}"#));
    let events: Vec<bool> =
        s.engine.outbox.messages().iter().map(|m| m.contains("Consent Preference Updated")).collect();
    assert_eq!(events, [true, false], "the grant, then the search");
}

#[test]
fn a_changed_choice_is_told_to_the_server_and_an_unchanged_one_is_not() {
    let mut s = Site::new("{}", false);
    s.consent(r#"{"marketing":false}"#);
    let last = s.engine.outbox.messages().last().cloned().unwrap_or_default();
    assert!(last.contains(r#""properties":{"analytics":true,"personalization":true,"marketing":false}"#), "{last}");
    let n = s.engine.outbox.len();
    s.consent(r#"{"marketing":false}"#);
    assert_eq!(s.engine.outbox.len(), n, "the same choice again sends nothing");
}

#[test]
fn global_privacy_control_turns_marketing_off_on_an_opt_out_site() {
    let mut s = Site::new("{}", true);
    assert!(s.engine.settings().policy.gpc);
    assert_eq!(s.shown(), (true, true, false));
    s.view("TVs");
    assert!(s.engine.outbox.messages()[0]
        .contains(r#""categoryPreferences":{"analytics":true,"personalization":true,"marketing":false}"#));
    s.consent(r#"{"analytics":true,"personalization":true}"#);
    assert_eq!(s.shown(), (true, true, false), "granting other categories is not granting marketing");
    s.consent(r#"{"marketing":true}"#);
    assert_eq!(s.shown(), (true, true, true), "an explicit grant wins over GPC");
}

#[test]
fn global_privacy_control_on_an_opt_in_site_still_needs_every_grant() {
    let mut s = Site::new(OPT_IN, true);
    assert_eq!(s.shown(), (false, false, false));
    s.consent(r#"{"analytics":true,"personalization":true,"marketing":true}"#);
    assert_eq!(s.shown(), (true, true, true));
}

#[test]
fn null_choices_leave_earlier_choices_as_they_were() {
    let mut s = Site::new("{}", false);
    s.consent(r#"{"marketing":false}"#);
    s.consent(r#"{"marketing":null,"personalization":false}"#);
    assert_eq!(
        s.engine.profile.consent,
        Choices { analytics: None, personalization: Some(false), marketing: Some(false) }
    );
    assert_eq!(s.shown(), (true, false, false));
}

#[test]
fn consent_is_stored_with_the_profile() {
    let mut s = Site::new(OPT_IN, false);
    s.consent(r#"{"analytics":true,"marketing":false}"#);
    let mut later = Site::new(OPT_IN, false);
    later.engine.load_profile(&s.engine.profile.encode());
    assert!(later.engine.may_store());
    assert_eq!(later.shown(), (true, false, false));
}
