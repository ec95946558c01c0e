//! Campaigns and leaving intent through the front door, with the clock passed in: who sees
//! which popup and when (audience, consent, caps, holdout, priority), what counts as
//! leaving (with the site's thresholds), the events queued, two tabs sharing one ledger,
//! and campaign content handed to the popup exactly as the site wrote it.

use miniserde::json::{Number, Value};
use nudge::engine::{Engine, Input, Kind, Outputs, Settings};
use nudge::error::Error;
use nudge::message::PageInfo;
use nudge::tabs::{Role, TabSync};
use nudge::time::{DAY, MINUTE};

/// 2026-11-23.
const T0: u64 = 1_795_420_800_000;
const SECOND: u64 = 1_000;

const FAST_EXIT: &str = r#"{"signal":"pointer-exit","speed":1500}"#;

/// One shopper's browser: an engine, fresh randomness per call, and the page it is on.
struct Shop {
    engine: Engine,
    calls: u64,
    url: String,
}

impl Shop {
    /// A shop whose site config (as the server serves it) holds `campaigns` (a JSON array).
    fn with(campaigns: &str) -> Shop {
        Shop::seeded(campaigns, 1)
    }

    fn seeded(campaigns: &str, n: u64) -> Shop {
        let mut s = Shop {
            engine: Engine::new(Settings::default(), &format!("{n:032x}")),
            calls: 0,
            url: "https://shop.example/".into(),
        };
        let out = s.engine.apply_site_config(&format!(r#"{{"campaigns":{campaigns}}}"#), T0).unwrap();
        assert_eq!(out.problems, Vec::<Error>::new());
        s
    }

    fn input(&mut self, kind: Kind, name: Option<&str>, props: Option<&str>, now: u64) -> Input {
        self.calls += 1;
        Input {
            kind,
            name: name.map(String::from),
            props: props.map(String::from),
            options: None,
            now,
            seed: format!("{:032x}", 0x5eed_0000_0000u64 + self.calls),
            page: PageInfo { url: self.url.clone(), title: "Shop".into(), referrer: String::new() },
        }
    }

    fn page(&mut self, url: &str, now: u64) -> Outputs {
        self.url = url.into();
        let i = self.input(Kind::Page, None, None, now);
        self.engine.apply(&i).unwrap()
    }

    fn track(&mut self, event: &str, props: &str, now: u64) -> Outputs {
        let i = self.input(Kind::Track, Some(event), Some(props), now);
        self.engine.apply(&i).unwrap()
    }

    fn view(&mut self, category: &str, product: &str, now: u64) -> Outputs {
        self.track(
            "Product Viewed",
            &format!(r#"{{"category":"{category}","product_id":"{product}","price":499}}"#),
            now,
        )
    }

    /// Five views in a few minutes: `decision` for the category.
    fn decide_on(&mut self, category: &str, now: u64) {
        for i in 0..5 {
            self.view(category, &format!("{category}-{i}"), now + i * MINUTE);
        }
    }

    fn add_to_cart(&mut self, price: u32, now: u64) -> Outputs {
        self.track(
            "Product Added",
            &format!(r#"{{"category":"TVs","product_id":"tv-9","price":{price},"quantity":1,"currency":"EUR"}}"#),
            now,
        )
    }

    fn signal(&mut self, json: &str, now: u64) -> Outputs {
        let i = self.input(Kind::Signal, None, Some(json), now);
        self.engine.apply(&i).unwrap()
    }

    /// The id of the popup a fast exit brings, if any.
    fn exit(&mut self, now: u64) -> Option<String> {
        popup_id(&self.signal(FAST_EXIT, now))
    }

    fn outcome(&mut self, id: &str, action: &str, email: Option<&str>, now: u64) -> Result<Outputs, Error> {
        let props = match email {
            Some(e) => format!(r#"{{"action":"{action}","email":"{e}"}}"#),
            None => format!(r#"{{"action":"{action}"}}"#),
        };
        let i = self.input(Kind::Popup, Some(id), Some(&props), now);
        self.engine.apply(&i)
    }

    /// Shows whatever a fast exit brings and dismisses it; returns its id.
    fn exit_and(&mut self, action: &str, now: u64) -> Option<String> {
        let id = self.exit(now)?;
        self.outcome(&id, "shown", None, now + SECOND).unwrap();
        self.outcome(&id, action, None, now + 2 * SECOND).unwrap();
        Some(id)
    }

    /// The queued messages as (event or type, properties).
    fn messages(&self) -> Vec<(String, Value)> {
        self.engine
            .outbox
            .messages()
            .iter()
            .map(|m| {
                let v: Value = miniserde::json::from_str(m).expect("messages are JSON");
                let name = match (get(&v, "event"), get(&v, "type")) {
                    (Some(Value::String(e)), _) => e.clone(),
                    (_, Some(Value::String(t))) => t.clone(),
                    _ => String::new(),
                };
                let props = get(&v, "properties").or(get(&v, "traits")).cloned().unwrap_or(Value::Null);
                (name, props)
            })
            .collect()
    }

    fn count(&self, event: &str) -> usize {
        self.messages().iter().filter(|(n, _)| n == event).count()
    }

    fn last(&self, event: &str) -> Value {
        self.messages().into_iter().rev().find(|(n, _)| n == event).map(|(_, p)| p).unwrap_or(Value::Null)
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match get(v, key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn flag(v: &Value, key: &str) -> Option<bool> {
    match get(v, key) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    match get(v, key) {
        Some(Value::Number(Number::F64(f))) => Some(*f),
        Some(Value::Number(Number::U64(u))) => Some(*u as f64),
        Some(Value::Number(Number::I64(i))) => Some(*i as f64),
        _ => None,
    }
}

fn popup_id(out: &Outputs) -> Option<String> {
    let v: Value = miniserde::json::from_str(out.popup.as_deref()?).expect("the popup is JSON");
    text(&v, "id")
}

fn exit_campaign(id: &str, extra: &str) -> String {
    format!(r#"{{"id":"{id}","trigger":{{"on":"exit-intent"}},"content":{{"title":"Wait"}}{extra}}}"#)
}

#[test]
fn a_fast_exit_shows_the_campaign_for_the_shopper_s_stage_and_cart() {
    let tvs = exit_campaign(
        "tv-newsletter",
        r#","audience":{"stage":{"category":"TVs","in":["decision"]},"cartValue":{"min":100,"max":5000}}"#,
    );
    let mut s = Shop::with(&format!("[{tvs}]"));
    s.page("https://shop.example/tv", T0);
    s.view("TVs", "tv-1", T0);
    assert_eq!(s.exit(T0 + MINUTE), None, "awareness only");
    s.decide_on("TVs", T0 + 2 * MINUTE);
    assert_eq!(s.exit(T0 + 10 * MINUTE), None, "decision, but an empty cart is under the minimum");
    s.add_to_cart(6000, T0 + 11 * MINUTE);
    assert_eq!(s.exit(T0 + 12 * MINUTE), None, "a cart over the maximum");
    s.track("Product Removed", r#"{"product_id":"tv-9"}"#, T0 + 13 * MINUTE);
    s.add_to_cart(499, T0 + 14 * MINUTE);
    assert_eq!(s.exit(T0 + 15 * MINUTE).as_deref(), Some("tv-newsletter"));
}

#[test]
fn new_returning_and_identified_shoppers_are_told_apart() {
    let mut s = Shop::with(&format!(
        "[{},{}]",
        exit_campaign("returning-known", r#","priority":2,"audience":{"visitor":"returning","identified":true}"#),
        exit_campaign("new-anonymous", r#","priority":1,"audience":{"visitor":"new","identified":false}"#)
    ));
    s.page("https://shop.example/", T0);
    assert_eq!(s.exit(T0 + SECOND).as_deref(), Some("new-anonymous"));
    s.outcome("new-anonymous", "dismissed", None, T0 + 2 * SECOND).unwrap();
    // A second session, then identified.
    s.page("https://shop.example/", T0 + DAY);
    let i = s.input(Kind::Identify, Some("user-7"), Some("{}"), T0 + DAY + SECOND);
    s.engine.apply(&i).unwrap();
    assert_eq!(s.exit(T0 + DAY + 2 * SECOND).as_deref(), Some("returning-known"));
}

#[test]
fn without_personalization_consent_nothing_shows() {
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", "")));
    s.page("https://shop.example/", T0);
    let i = s.input(Kind::Consent, None, Some(r#"{"personalization":false}"#), T0 + SECOND);
    s.engine.apply(&i).unwrap();
    assert_eq!(s.exit(T0 + 2 * SECOND), None);
    let i = s.input(Kind::Consent, None, Some(r#"{"personalization":true}"#), T0 + 3 * SECOND);
    s.engine.apply(&i).unwrap();
    assert_eq!(s.exit(T0 + 4 * SECOND).as_deref(), Some("a"));

    // On an opt-in site nothing shows before the shopper says yes.
    let mut e = Engine::new(
        Settings::from_options(
            &format!(r#"{{"consent":{{"mode":"opt-in"}},"campaigns":[{}]}}"#, exit_campaign("a", "")),
            false,
            "",
            "",
        )
        .unwrap(),
        "00000000000000000000000000000001",
    );
    let signal = Input { kind: Kind::Signal, props: Some(FAST_EXIT.into()), ..i };
    assert_eq!(e.apply(&signal).unwrap().popup, None);
}

#[test]
fn once_per_session_by_default_and_again_in_the_next_session() {
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", "")));
    s.page("https://shop.example/", T0);
    assert_eq!(s.exit_and("dismissed", T0 + SECOND).as_deref(), Some("a"));
    assert_eq!(s.exit(T0 + MINUTE), None, "once per session");
    s.page("https://shop.example/", T0 + 2 * 60 * MINUTE);
    assert_eq!(s.exit(T0 + 2 * 60 * MINUTE + SECOND).as_deref(), Some("a"), "a new session");
}

#[test]
fn caps_per_day_and_ever() {
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", r#","caps":{"perSession":5,"perDay":2,"ever":3}"#)));
    s.page("https://shop.example/", T0);
    assert!(s.exit_and("dismissed", T0 + SECOND).is_some());
    assert!(s.exit_and("dismissed", T0 + MINUTE).is_some());
    assert_eq!(s.exit(T0 + 2 * MINUTE), None, "two a day");
    s.page("https://shop.example/", T0 + DAY + MINUTE);
    assert!(s.exit_and("dismissed", T0 + DAY + 2 * MINUTE).is_some(), "the next day");
    s.page("https://shop.example/", T0 + 5 * DAY);
    assert_eq!(s.exit(T0 + 5 * DAY + SECOND), None, "three ever");
}

#[test]
fn dismissing_or_converting_pauses_the_campaign_for_its_days() {
    let caps = r#","caps":{"perSession":9,"dismissDays":7,"convertDays":30}"#;
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", caps)));
    s.page("https://shop.example/", T0);
    s.exit_and("dismissed", T0 + SECOND);
    s.page("https://shop.example/", T0 + 6 * DAY);
    assert_eq!(s.exit(T0 + 6 * DAY + SECOND), None, "six days after a dismissal");
    s.page("https://shop.example/", T0 + 7 * DAY + MINUTE);
    assert_eq!(s.exit_and("converted", T0 + 7 * DAY + 2 * MINUTE).as_deref(), Some("a"));
    s.page("https://shop.example/", T0 + 36 * DAY);
    assert_eq!(s.exit(T0 + 36 * DAY + SECOND), None, "29 days after a conversion");
    s.page("https://shop.example/", T0 + 38 * DAY);
    assert!(s.exit(T0 + 38 * DAY + SECOND).is_some());
}

#[test]
fn one_popup_at_a_time_and_each_outcome_queues_its_event() {
    let mut s = Shop::with(&format!(
        "[{},{}]",
        exit_campaign("first", r#","priority":2"#),
        exit_campaign("second", r#","priority":1"#)
    ));
    s.page("https://shop.example/", T0);
    assert_eq!(s.exit(T0 + SECOND).as_deref(), Some("first"));
    assert_eq!(s.exit(T0 + 2 * SECOND), None, "first is open");
    s.outcome("first", "shown", None, T0 + 3 * SECOND).unwrap();
    assert_eq!(s.exit(T0 + 4 * SECOND), None, "first is showing");
    s.outcome("first", "dismissed", None, T0 + 5 * SECOND).unwrap();
    assert_eq!(s.exit(T0 + 6 * SECOND).as_deref(), Some("second"));
    let shown = s.last("Popup Shown");
    assert_eq!(text(&shown, "campaign_id").as_deref(), Some("first"));
    assert_eq!(text(&shown, "trigger").as_deref(), Some("exit-intent"));
    assert_eq!(s.count("Popup Dismissed"), 1);
    // An open popup whose tab went away without a word stops blocking after ten minutes.
    assert_eq!(s.exit(T0 + 7 * MINUTE), None);
    s.page("https://shop.example/", T0 + 3 * 60 * MINUTE);
    assert_eq!(s.exit(T0 + 3 * 60 * MINUTE + SECOND).as_deref(), Some("first"));
}

#[test]
fn a_conversion_with_an_email_identifies_and_grants_marketing() {
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", "")));
    s.page("https://shop.example/", T0);
    s.exit_and("shown", T0 + SECOND);
    let before = s.engine.outbox.len();
    assert_eq!(s.outcome("a", "converted", Some("not an email"), T0 + 3 * SECOND), Err(Error::BadEmail));
    assert_eq!(s.engine.outbox.len(), before, "a refused outcome changes nothing");
    s.outcome("a", "converted", Some("ann@example.com"), T0 + 4 * SECOND).unwrap();
    assert_eq!(text(&s.last("identify"), "email").as_deref(), Some("ann@example.com"));
    assert_eq!(flag(&s.last("Consent Preference Updated"), "marketing"), Some(true));
    assert_eq!(text(&s.last("Popup Converted"), "campaign_id").as_deref(), Some("a"));
    let profile: Value = miniserde::json::from_str(&s.engine.profile_json(T0 + 5 * SECOND)).unwrap();
    assert_eq!(text(get(&profile, "traits").unwrap(), "email").as_deref(), Some("ann@example.com"));
    assert_eq!(flag(get(&profile, "consent").unwrap(), "marketing"), Some(true));
    for (id, action) in [("a", "clicked"), ("", "shown"), ("a b", "shown")] {
        assert_eq!(s.outcome(id, action, None, T0 + 6 * SECOND), Err(Error::BadOutcome), "{id} {action}");
    }
}

#[test]
fn the_highest_priority_wins_and_ties_go_to_the_smaller_id() {
    let mut s = Shop::with(&format!(
        "[{},{},{}]",
        exit_campaign("low", r#","priority":5"#),
        exit_campaign("tie-b", r#","priority":10"#),
        exit_campaign("tie-a", r#","priority":10"#)
    ));
    s.page("https://shop.example/", T0);
    assert_eq!(s.exit_and("dismissed", T0 + SECOND).as_deref(), Some("tie-a"));
    assert_eq!(s.exit_and("dismissed", T0 + MINUTE).as_deref(), Some("tie-b"));
    assert_eq!(s.exit_and("dismissed", T0 + 2 * MINUTE).as_deref(), Some("low"));
    assert_eq!(s.exit(T0 + 3 * MINUTE), None);
}

#[test]
fn holdout_is_stable_per_shopper_and_close_to_its_share() {
    let c = format!("[{}]", exit_campaign("half", r#","holdout":0.3"#));
    let mut held = 0;
    for n in 0..10_000u64 {
        let mut s = Shop::seeded(&c, n + 1);
        s.url = "https://shop.example/".into();
        let i = s.input(Kind::Page, None, None, T0);
        s.engine.apply(&i).unwrap();
        let shown = s.exit(T0 + SECOND).is_some();
        let i = s.input(Kind::Signal, None, Some(FAST_EXIT), T0 + SECOND);
        let mut again = Shop::seeded(&c, n + 1);
        let p = Input { kind: Kind::Page, props: None, ..i.clone() };
        again.engine.apply(&p).unwrap();
        assert_eq!(again.engine.apply(&i).unwrap().popup.is_some(), shown, "the same shopper decides the same");
        if !shown {
            held += 1;
            assert_eq!(s.count("Popup Held Out"), 1);
        }
    }
    // 3,000 expected; 4.5 standard deviations is about ±206.
    assert!((2_800..=3_200).contains(&held), "{held} of 10,000 held out");
}

#[test]
fn a_held_out_shopper_sees_nothing_and_is_recorded_once_per_caps_period() {
    let c = format!("[{},{}]", exit_campaign("held", r#","priority":2,"holdout":0.9"#), exit_campaign("other", ""));
    // Find a shopper held out of "held" (90% are).
    let mut s = (1..50)
        .map(|n| Shop::seeded(&c, n))
        .find(|s| nudge::decide::draw(&s.engine.profile.anonymous_id, "held") < 0.9)
        .expect("a held-out shopper");
    s.page("https://shop.example/", T0);
    assert_eq!(s.exit(T0 + SECOND), None, "held out: nothing at all, not even a lower campaign");
    assert_eq!(s.exit(T0 + 2 * SECOND).as_deref(), Some("other"), "what a shopper shown `held` once would see next");
    s.outcome("other", "shown", None, T0 + 3 * SECOND).unwrap();
    s.outcome("other", "dismissed", None, T0 + 3 * SECOND).unwrap();
    assert_eq!(s.exit(T0 + 4 * SECOND), None);
    assert_eq!(s.count("Popup Held Out"), 1, "once per session (the default cap)");
    let p = s.last("Popup Held Out");
    assert_eq!(text(&p, "campaign_id").as_deref(), Some("held"));
    assert_eq!(text(&p, "trigger").as_deref(), Some("exit-intent"));
}

#[test]
fn leaving_counts_from_the_site_s_thresholds_and_queues_one_cart_intent_per_session() {
    let mut s = Shop::with("[]");
    s.page("https://shop.example/tv", T0);
    s.add_to_cart(499, T0 + SECOND);
    s.signal(r#"{"signal":"pointer-exit","speed":700}"#, T0 + 2 * SECOND);
    s.signal(r#"{"signal":"idle","seconds":30}"#, T0 + 3 * SECOND);
    s.signal(r#"{"signal":"scroll-up","speed":2000}"#, T0 + 4 * SECOND);
    assert_eq!(s.count("Cart Abandon Intent"), 0, "a drift, a pause and a slow scroll are not leaving");
    s.signal(r#"{"signal":"scroll-up","speed":3000}"#, T0 + 5 * SECOND);
    let p = s.last("Cart Abandon Intent");
    assert_eq!(text(&p, "signal").as_deref(), Some("scroll-up"));
    assert_eq!(number(&p, "cart_value"), Some(499.0));
    assert_eq!(text(&p, "currency").as_deref(), Some("EUR"));
    s.signal(r#"{"signal":"hidden"}"#, T0 + 6 * SECOND);
    assert_eq!(s.count("Cart Abandon Intent"), 1, "once per session");
    s.page("https://shop.example/", T0 + 2 * 60 * MINUTE);
    s.signal(r#"{"signal":"idle","seconds":61}"#, T0 + 2 * 60 * MINUTE + SECOND);
    assert_eq!(s.count("Cart Abandon Intent"), 2, "again in the next session");
    s.track("Checkout Started", "{}", T0 + 3 * 60 * MINUTE);
    s.page("https://shop.example/", T0 + 5 * 60 * MINUTE);
    s.signal(FAST_EXIT, T0 + 5 * 60 * MINUTE + SECOND);
    assert_eq!(s.count("Cart Abandon Intent"), 2, "checkout started: not an abandonment");

    // The site's thresholds decide.
    let mut strict = Shop::with("[]");
    strict.engine.apply_site_config(r#"{"thresholds":{"exit_pointer_speed":2000}}"#, T0).unwrap();
    strict.page("https://shop.example/", T0);
    strict.add_to_cart(10, T0 + SECOND);
    strict.signal(FAST_EXIT, T0 + 2 * SECOND);
    assert_eq!(strict.count("Cart Abandon Intent"), 0, "1500 px/s is under this site's 2000");
}

#[test]
fn browse_abandonment_is_a_product_viewed_in_decision_with_nothing_added() {
    let abandon =
        r#"{"id":"browse","trigger":{"on":"abandon-intent","kind":"browse"},"content":{"title":"Still looking?"}}"#;
    let mut s = Shop::with(&format!("[{abandon}]"));
    s.page("https://shop.example/tv/1", T0);
    s.view("TVs", "tv-1", T0);
    assert_eq!(s.exit(T0 + SECOND), None, "awareness: not a browse abandonment");
    assert_eq!(s.count("Browse Abandon Intent"), 0);
    s.decide_on("TVs", T0 + 2 * SECOND);
    // Back from the product page.
    let out = s.signal(r#"{"signal":"back"}"#, T0 + 10 * MINUTE);
    assert_eq!(popup_id(&out).as_deref(), Some("browse"));
    let p = s.last("Browse Abandon Intent");
    assert_eq!(text(&p, "signal").as_deref(), Some("back"));
    assert_eq!(text(&p, "category").as_deref(), Some("TVs"));
    // Back from a page that showed no product is not leaving.
    let mut plain = Shop::with(&format!("[{abandon}]"));
    plain.page("https://shop.example/about", T0);
    plain.signal(r#"{"signal":"back"}"#, T0 + SECOND);
    assert_eq!(plain.count("Browse Abandon Intent"), 0);
    // Adding to the cart makes it a cart abandonment instead.
    let mut cart = Shop::with(&format!("[{abandon}]"));
    cart.page("https://shop.example/tv/1", T0);
    cart.decide_on("TVs", T0);
    cart.add_to_cart(499, T0 + 6 * MINUTE);
    assert_eq!(popup_id(&cart.signal(r#"{"signal":"hidden"}"#, T0 + 7 * MINUTE)), None);
    assert_eq!((cart.count("Browse Abandon Intent"), cart.count("Cart Abandon Intent")), (0, 1));
}

#[test]
fn stage_page_time_and_scroll_triggers() {
    let mut s = Shop::with(
        r#"[{"id":"stage","trigger":{"on":"stage-entered","stage":"decision","category":"TVs"},"content":{}},
            {"id":"page","trigger":{"on":"page","path":"/sale/"},"content":{}},
            {"id":"time","trigger":{"on":"time-on-page","seconds":20},"content":{}},
            {"id":"scroll","trigger":{"on":"scroll-depth","percent":50},"content":{}}]"#,
    );
    assert_eq!(popup_id(&s.page("https://shop.example/sale/tvs?x=1", T0)).as_deref(), Some("page"));
    s.outcome("page", "dismissed", None, T0 + SECOND).unwrap();
    let mut last = None;
    for i in 0..5 {
        last = popup_id(&s.view("TVs", "tv", T0 + (i + 1) * MINUTE));
    }
    assert_eq!(last.as_deref(), Some("stage"), "the view that enters decision");
    s.outcome("stage", "dismissed", None, T0 + 6 * MINUTE).unwrap();
    assert_eq!(popup_id(&s.signal(r#"{"signal":"time-on-page","seconds":19}"#, T0 + 7 * MINUTE)), None);
    assert_eq!(
        popup_id(&s.signal(r#"{"signal":"time-on-page","seconds":20}"#, T0 + 7 * MINUTE)).as_deref(),
        Some("time")
    );
    s.outcome("time", "dismissed", None, T0 + 8 * MINUTE).unwrap();
    assert_eq!(
        popup_id(&s.signal(r#"{"signal":"scroll-depth","percent":75}"#, T0 + 9 * MINUTE)).as_deref(),
        Some("scroll")
    );
    let quiet = s.signal(r#"{"signal":"scroll-depth","percent":10}"#, T0 + 10 * MINUTE);
    assert!(quiet.quiet, "a signal that changed nothing need not be stored or forwarded");
}

#[test]
fn campaign_content_reaches_the_popup_untouched() {
    let hostile = r#"<img src=x onerror=alert(1)> \"quoted\" & <b>bold</b> ünïcode"#;
    let mut s = Shop::with(&format!(
        r#"[{{"id":"a","trigger":{{"on":"exit-intent"}},"offer":{{"code":"SAVE10","percent":10,"expiresDays":7}},
            "content":{{"title":"{hostile}","text":"line\nbreak","button":"Go","emailField":true,
            "image":"javascript:alert(1)"}}}}]"#
    ));
    s.page("https://shop.example/", T0);
    let out = s.signal(FAST_EXIT, T0 + SECOND);
    let v: Value = miniserde::json::from_str(out.popup.as_deref().unwrap()).unwrap();
    let content = get(&v, "content").unwrap();
    assert_eq!(
        text(content, "title").as_deref(),
        Some(r#"<img src=x onerror=alert(1)> "quoted" & <b>bold</b> ünïcode"#)
    );
    assert_eq!(text(content, "text").as_deref(), Some("line\nbreak"));
    assert_eq!(flag(content, "emailField"), Some(true));
    assert!(get(content, "image").is_none(), "an image that is not https or same-origin is left out");
    assert_eq!(text(get(&v, "offer").unwrap(), "code").as_deref(), Some("SAVE10"));
    assert_eq!(text(&v, "trigger").as_deref(), Some("exit-intent"));
}

#[test]
fn a_bad_campaign_is_skipped_and_reported_while_the_others_apply() {
    let mut e = Engine::new(
        Settings::from_options(
            &format!(r#"{{"campaigns":[{}]}}"#, exit_campaign("mine", r#","priority":1"#)),
            false,
            "",
            "",
        )
        .unwrap(),
        "00000000000000000000000000000001",
    );
    let out = e
        .apply_site_config(
            &format!(
                r#"{{"campaigns":[{},{},{{"id":"bad id","trigger":{{"on":"exit-intent"}},"content":{{}}}}]}}"#,
                exit_campaign("mine", r#","priority":99"#),
                exit_campaign("site", r#","priority":2"#)
            ),
            T0,
        )
        .unwrap();
    assert_eq!(out.problems.len(), 1);
    assert!(out.problems[0].message().contains("id"), "{}", out.problems[0].message());
    let ids: Vec<(&str, f64)> = e.campaigns().iter().map(|c| (c.id.as_str(), c.priority)).collect();
    assert_eq!(ids, [("site", 2.0), ("mine", 1.0)], "init's campaign wins over the site's of the same id");
    // A bad campaign given to init is reported too, and the good ones kept.
    let (settings, err) = Settings::from_options_lenient(
        &format!(r#"{{"campaigns":[{},{{"id":"x"}}]}}"#, exit_campaign("ok", "")),
        false,
        "",
        "",
    );
    assert_eq!(settings.campaigns.len(), 1);
    assert!(matches!(err, Some(Error::Campaign(_))));
}

#[test]
fn the_ledger_is_stored_with_the_profile() {
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", r#","caps":{"perSession":9,"dismissDays":7}"#)));
    s.page("https://shop.example/", T0);
    s.exit_and("dismissed", T0 + SECOND);
    let stored = nudge::storage_budget::fit(&mut s.engine.profile);
    let mut next = Shop::with(&format!("[{}]", exit_campaign("a", r#","caps":{"perSession":9,"dismissDays":7}"#)));
    next.engine.load_profile(&stored);
    next.page("https://shop.example/", T0 + DAY);
    assert_eq!(next.exit(T0 + DAY + SECOND), None, "the dismissal survives a reload");
}

#[test]
fn dismissing_in_one_tab_stops_the_others() {
    let c = format!("[{}]", exit_campaign("a", r#","caps":{"perSession":9,"dismissDays":7}"#));
    let mut a = Shop::with(&c); // the leader
    let mut b = Shop::with(&c); // a follower
    let mut lead = TabSync::new("tab-a".into(), Role::Leader);
    let mut follow = TabSync::new("tab-b".into(), Role::Follower);
    a.page("https://shop.example/", T0);
    b.engine.load_profile(&a.engine.profile.encode());
    // B shows the popup and tells the leader.
    let i = b.input(Kind::Signal, None, Some(FAST_EXIT), T0 + SECOND);
    let (out, wire) = follow.local(&mut b.engine, i).unwrap();
    assert_eq!(popup_id(&out).as_deref(), Some("a"));
    lead.receive(&mut a.engine, &wire.unwrap());
    // One popup at a time: while B's is open, A shows none.
    assert_eq!(a.exit(T0 + 2 * SECOND), None);
    for (k, action) in [(3, "shown"), (4, "dismissed")] {
        let i = b.input(Kind::Popup, Some("a"), Some(&format!(r#"{{"action":"{action}"}}"#)), T0 + k * SECOND);
        let (_, wire) = follow.local(&mut b.engine, i).unwrap();
        lead.receive(&mut a.engine, &wire.unwrap());
    }
    assert_eq!(a.count("Popup Shown"), 1, "the leader queues the follower's events");
    assert_eq!(a.count("Popup Dismissed"), 1);
    // Dismissed in B: A does not show it, nor does B after adopting A's state.
    assert_eq!(a.exit(T0 + 5 * SECOND), None);
    follow.receive(&mut b.engine, &lead.state(&a.engine));
    assert_eq!(b.exit(T0 + 6 * SECOND), None);
    assert_eq!(follow.pending(), 0);
}

#[test]
fn a_reset_keeps_what_the_shopper_dismissed_and_forget_erases_it() {
    let mut s = Shop::with(&format!("[{}]", exit_campaign("a", r#","caps":{"perSession":9,"dismissDays":7}"#)));
    s.page("https://shop.example/", T0);
    s.exit_and("dismissed", T0 + SECOND);
    let i = s.input(Kind::Reset, None, None, T0 + MINUTE);
    s.engine.apply(&i).unwrap();
    s.page("https://shop.example/", T0 + 2 * MINUTE);
    assert_eq!(s.exit(T0 + 3 * MINUTE), None, "a new anonymous id on the same device");
    let i = s.input(Kind::Forget, None, None, T0 + 4 * MINUTE);
    s.engine.apply(&i).unwrap();
    s.page("https://shop.example/", T0 + 5 * MINUTE);
    assert_eq!(s.exit(T0 + 6 * MINUTE).as_deref(), Some("a"), "erased");
}
