//! The journey model through the front door: per-category stages that move forward on
//! evidence (views, cart adds, orders), fade back as interest fades, follow the site's
//! thresholds, and are reported as `Stage Changed` messages.

use miniserde::json::Value;
use nudge::engine::{Engine, Input, Kind, Outputs, Settings};
use nudge::funnel::Stage;
use nudge::message::PageInfo;
use nudge::time::{to_iso, DAY, HOUR, MINUTE};

/// 2026-11-23, a Monday morning.
const T0: u64 = 1_795_420_800_000;
const SECOND: u64 = 1_000;

/// One shopper's browser: an engine and fresh randomness for every call.
struct Shopper {
    engine: Engine,
    calls: u64,
}

impl Shopper {
    fn new() -> Shopper {
        Shopper::with(Settings::default())
    }

    fn with(settings: Settings) -> Shopper {
        Shopper { engine: Engine::new(settings, "0123456789abcdef0123456789abcdef"), calls: 0 }
    }

    fn with_options(options: &str) -> Shopper {
        Shopper::with(Settings::from_options(options, false, "test-agent", "en-GB").expect("valid init options"))
    }

    fn seed(&mut self) -> String {
        self.calls += 1;
        format!("{:032x}", 0x5eed_0000_0000u64 + self.calls)
    }

    fn track(&mut self, event: &str, props: &str, now: u64) -> Outputs {
        let input = Input::track(event, props, now, &self.seed());
        self.engine.apply(&input).expect("a valid track call")
    }

    /// A track call that says it happened at `at` (the `timestamp` option), applied at `now`.
    fn track_at(&mut self, event: &str, props: &str, at: u64, now: u64) -> Outputs {
        let input = Input {
            kind: Kind::Track,
            name: Some(event.into()),
            props: Some(props.into()),
            options: Some(format!(r#"{{"timestamp":"{}"}}"#, to_iso(at))),
            now,
            seed: self.seed(),
            page: PageInfo::default(),
        };
        self.engine.apply(&input).expect("a valid backdated track call")
    }

    fn view(&mut self, category: &str, product: &str, now: u64) -> Outputs {
        self.track(
            "Product Viewed",
            &format!(r#"{{"category":"{category}","product_id":"{product}","price":499}}"#),
            now,
        )
    }

    fn profile(&self, now: u64) -> Value {
        miniserde::json::from_str(&self.engine.profile_json(now)).expect("profile() is JSON")
    }

    fn stage(&self, category: &str, now: u64) -> Option<String> {
        match get(&self.profile(now), &["stages", category]) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn overall(&self, now: u64) -> Option<String> {
        match get(&self.profile(now), &["stage"]) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// `(category, from, to)` of every `Stage Changed` message waiting in the outbox.
    fn stage_changed_messages(&self) -> Vec<(String, Option<String>, String)> {
        self.engine
            .outbox
            .messages()
            .iter()
            .map(|m| miniserde::json::from_str::<Value>(m).expect("messages are JSON"))
            .filter(|m| matches!(get(m, &["event"]), Some(Value::String(e)) if e == "Stage Changed"))
            .map(|m| {
                let text = |path: &[&str]| match get(&m, path) {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                };
                let category = text(&["properties", "category"]).expect("a category");
                let to = text(&["properties", "to"]).expect("a stage to");
                assert!(get(&m, &["properties", "from"]).is_some(), "from is always present (null when new)");
                (category, text(&["properties", "from"]), to)
            })
            .collect()
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut at = v;
    for key in path {
        match at {
            Value::Object(o) => at = o.get(*key)?,
            _ => return None,
        }
    }
    Some(at)
}

fn change(category: &str, from: Option<&str>, to: &str) -> (String, Option<String>, String) {
    (category.into(), from.map(String::from), to.into())
}

#[test]
fn a_shopper_who_views_five_tvs_quickly_and_glances_at_a_phone_is_deciding_on_tvs() {
    let mut s = Shopper::new();
    for n in 0..5 {
        s.view("TVs", &format!("tv-{n}"), T0 + n * 2 * MINUTE);
    }
    s.view("Phones", "phone-1", T0 + 12 * MINUTE);
    let now = T0 + 15 * MINUTE;
    assert_eq!(s.stage("TVs", now).as_deref(), Some("decision"));
    assert_eq!(s.stage("Phones", now).as_deref(), Some("awareness"));
    assert_eq!(s.overall(now).as_deref(), Some("decision"), "the overall stage is the strongest category's");
    assert!(s.engine.profile_json(now).contains(r#""stages":{"Phones":"awareness","TVs":"decision"}"#));
}

#[test]
fn a_shopper_who_views_three_tvs_over_a_few_days_is_considering_tvs() {
    let mut s = Shopper::new();
    s.view("TVs", "tv-1", T0);
    assert_eq!(s.stage("TVs", T0).as_deref(), Some("awareness"));
    s.view("TVs", "tv-2", T0 + DAY);
    s.view("TVs", "tv-3", T0 + 3 * DAY);
    assert_eq!(s.stage("TVs", T0 + 3 * DAY).as_deref(), Some("consideration"));
}

#[test]
fn a_shopper_with_no_journey_has_no_stage() {
    let s = Shopper::new();
    assert_eq!(s.overall(T0), None);
    assert!(s.engine.profile_json(T0).contains(r#""stage":null,"stages":{}"#));
}

#[test]
fn stages_fade_back_over_days_as_interest_fades() {
    let mut s = Shopper::new();
    for n in 0..5 {
        s.view("TVs", &format!("tv-{n}"), T0 + n * MINUTE);
    }
    let last = T0 + 4 * MINUTE;
    // The burst keeps TVs in decision for the decision window (7 days) ...
    assert_eq!(s.stage("TVs", last + 6 * DAY).as_deref(), Some("decision"));
    // ... then the views still count towards consideration (14 days) ...
    assert_eq!(s.stage("TVs", last + 8 * DAY).as_deref(), Some("consideration"));
    assert_eq!(s.stage("TVs", last + 13 * DAY).as_deref(), Some("consideration"));
    // ... and after that only awareness is left.
    assert_eq!(s.stage("TVs", last + 15 * DAY).as_deref(), Some("awareness"));
    assert_eq!(s.overall(last + 60 * DAY).as_deref(), Some("awareness"));
}

#[test]
fn a_faded_stage_is_reported_when_the_shopper_next_does_something() {
    let mut s = Shopper::new();
    for n in 0..5 {
        s.view("TVs", &format!("tv-{n}"), T0 + n * MINUTE);
    }
    let out = s.view("Phones", "phone-1", T0 + 9 * DAY);
    let tv = out.stage_changes.iter().find(|c| c.category == "TVs").expect("TVs faded");
    assert_eq!((tv.from, tv.to), (Some(Stage::Decision), Stage::Consideration));
    assert!(s.stage_changed_messages().contains(&change("TVs", Some("decision"), "consideration")));
}

#[test]
fn adding_to_cart_is_decision_ordering_is_purchase_and_coming_back_is_loyalty() {
    let mut s = Shopper::new();
    s.view("TVs", "tv-1", T0);
    assert_eq!(s.stage("TVs", T0).as_deref(), Some("awareness"));

    let out =
        s.track("Product Added", r#"{"product_id":"tv-1","category":"TVs","price":899,"quantity":1}"#, T0 + MINUTE);
    assert_eq!(s.stage("TVs", T0 + MINUTE).as_deref(), Some("decision"));
    assert_eq!(out.stage_changes.len(), 1);
    assert_eq!((out.stage_changes[0].from, out.stage_changes[0].to), (Some(Stage::Awareness), Stage::Decision));

    let order = r#"{"order_id":"o-1","revenue":899,"currency":"EUR","products":[{"product_id":"tv-1","category":"TVs","price":899,"quantity":1}]}"#;
    s.track("Order Completed", order, T0 + 10 * MINUTE);
    assert_eq!(s.stage("TVs", T0 + 10 * MINUTE).as_deref(), Some("purchase"));
    assert_eq!(s.stage("TVs", T0 + 30 * DAY).as_deref(), Some("purchase"), "an order does not fade");

    // Coming back the same evening is still the purchase visit; two days later is loyalty.
    s.view("TVs", "tv-2", T0 + 2 * HOUR);
    assert_eq!(s.stage("TVs", T0 + 2 * HOUR).as_deref(), Some("purchase"));
    s.view("TVs", "tv-3", T0 + 2 * DAY);
    assert_eq!(s.stage("TVs", T0 + 2 * DAY).as_deref(), Some("loyalty"));
    assert_eq!(s.overall(T0 + 2 * DAY).as_deref(), Some("loyalty"));

    assert_eq!(
        s.stage_changed_messages(),
        vec![
            change("TVs", None, "awareness"),
            change("TVs", Some("awareness"), "decision"),
            change("TVs", Some("decision"), "purchase"),
            change("TVs", Some("purchase"), "loyalty"),
        ]
    );
}

#[test]
fn an_order_is_empty_cart_and_a_second_order_is_loyalty_at_once() {
    let mut s = Shopper::new();
    s.track("Product Added", r#"{"product_id":"p1","category":"Phones","price":300}"#, T0);
    assert!(s
        .engine
        .profile_json(T0)
        .contains(r#""items":[{"product_id":"p1","category":"Phones","price":300,"quantity":1}]"#));
    // No product list: the order counts for the categories in the cart.
    s.track("Order Completed", r#"{"order_id":"o-1","revenue":300}"#, T0 + MINUTE);
    assert_eq!(s.stage("Phones", T0 + MINUTE).as_deref(), Some("purchase"));
    assert!(s.engine.profile.cart.lines.is_empty());
    s.track(
        "Order Completed",
        r#"{"order_id":"o-2","products":[{"product_id":"p2","category":"Phones"}]}"#,
        T0 + 2 * MINUTE,
    );
    assert_eq!(s.stage("Phones", T0 + 2 * MINUTE).as_deref(), Some("loyalty"));
}

#[test]
fn starting_checkout_is_decision_for_the_categories_in_the_cart() {
    let mut s = Shopper::new();
    s.view("Laptops", "l1", T0);
    let checkout = r#"{"products":[{"product_id":"l1","category":"Laptops","price":1200},{"product_id":"bag","category":"Bags","price":40}]}"#;
    s.track("Checkout Started", checkout, T0 + MINUTE);
    assert_eq!(s.stage("Laptops", T0 + MINUTE).as_deref(), Some("decision"));
    assert_eq!(s.stage("Bags", T0 + MINUTE).as_deref(), Some("decision"));
    assert!(s.engine.profile_json(T0 + MINUTE).contains(r#""checkoutStarted":true"#));
}

#[test]
fn a_wishlist_add_is_interest_but_not_a_cart_add() {
    let mut s = Shopper::new();
    s.view("TVs", "tv-1", T0);
    s.track("Product Added to Wishlist", r#"{"product_id":"tv-1","category":"TVs"}"#, T0 + MINUTE);
    assert_eq!(s.stage("TVs", T0 + MINUTE).as_deref(), Some("awareness"));
    assert!(s.engine.profile.cart.lines.is_empty());
}

#[test]
fn removing_products_changes_the_cart_but_not_the_stage() {
    let mut s = Shopper::new();
    s.track("Product Added", r#"{"product_id":"tv-1","category":"TVs","price":500,"quantity":2}"#, T0);
    s.track("Product Added", r#"{"sku":"cable","category":"Cables","price":"9.5"}"#, T0 + MINUTE);
    s.track("Product Removed", r#"{"product_id":"tv-1","quantity":1}"#, T0 + 2 * MINUTE);
    let json = s.engine.profile_json(T0 + 2 * MINUTE);
    assert!(json.contains(r#""value":509.5"#), "{json}");
    s.track("Product Added", r#"{"product_id":"tv-1","quantity":3}"#, T0 + 150 * SECOND);
    s.track("Product Removed", r#"{"product_id":"tv-1","quantity":1.6}"#, T0 + 160 * SECOND);
    assert_eq!(s.engine.profile.cart.lines[0].quantity, 2.0, "carts hold whole units: 1.6 removes two");
    s.track("Product Removed", r#"{"product_id":"tv-1"}"#, T0 + 3 * MINUTE);
    assert_eq!(s.engine.profile.cart.lines.len(), 1);
    assert_eq!(s.stage("TVs", T0 + 3 * MINUTE).as_deref(), Some("decision"), "intent was shown");
}

#[test]
fn the_overall_stage_is_the_highest_stage_then_the_most_evidence() {
    let mut s = Shopper::new();
    for n in 0..4 {
        s.view("TVs", &format!("tv-{n}"), T0 + n * HOUR * 3);
    }
    s.track("Product Added", r#"{"product_id":"c1","category":"Cables","price":5}"#, T0 + DAY);
    assert_eq!(s.stage("TVs", T0 + DAY).as_deref(), Some("consideration"));
    assert_eq!(s.overall(T0 + DAY).as_deref(), Some("decision"), "one cart add beats many views");
}

#[test]
fn the_same_views_give_the_same_stage_whatever_order_they_arrive_in() {
    // A burst of five views, and one more view two days later.
    let times: Vec<u64> = (0..5).map(|n| T0 + n * MINUTE).chain([T0 + 2 * DAY]).collect();
    let now = T0 + 3 * DAY;
    let mut in_order = Shopper::new();
    for (n, t) in times.iter().enumerate() {
        in_order.track_at("Product Viewed", &format!(r#"{{"category":"TVs","product_id":"tv-{n}"}}"#), *t, now);
    }
    // The later view arrives first (another tab, a replayed queue), the burst after it.
    let mut late_first = Shopper::new();
    for (n, t) in times.iter().enumerate().rev() {
        late_first.track_at("Product Viewed", &format!(r#"{{"category":"TVs","product_id":"tv-{n}"}}"#), *t, now);
    }
    assert_eq!(in_order.stage("TVs", now).as_deref(), Some("decision"));
    assert_eq!(late_first.stage("TVs", now), in_order.stage("TVs", now));
}

#[test]
fn a_backdated_event_is_timestamped_and_counted_when_it_happened() {
    let mut s = Shopper::new();
    s.track_at("Product Added", r#"{"product_id":"tv-1","category":"TVs"}"#, T0, T0 + 8 * DAY);
    assert_eq!(s.stage("TVs", T0 + 8 * DAY).as_deref(), Some("awareness"), "a cart add 8 days ago no longer counts");
    let m: Value = miniserde::json::from_str(&s.engine.outbox.messages()[0]).unwrap();
    assert!(matches!(get(&m, &["timestamp"]), Some(Value::String(t)) if *t == to_iso(T0)));
}

#[test]
fn a_site_that_needs_more_views_for_a_burst_keeps_five_quick_views_in_consideration() {
    let mut s = Shopper::with_options(r#"{"thresholds":{"decision_burst_views":8}}"#);
    for n in 0..5 {
        s.view("TVs", &format!("tv-{n}"), T0 + n * MINUTE);
    }
    assert_eq!(s.stage("TVs", T0 + 5 * MINUTE).as_deref(), Some("consideration"));
    for n in 5..8 {
        s.view("TVs", &format!("tv-{n}"), T0 + n * MINUTE);
    }
    assert_eq!(s.stage("TVs", T0 + 8 * MINUTE).as_deref(), Some("decision"));
}

#[test]
fn a_site_that_counts_one_view_as_consideration_says_so_after_one_view() {
    let mut s = Shopper::with_options(r#"{"thresholds":{"consideration_views":1,"consideration_days":2}}"#);
    s.view("Phones", "p1", T0);
    assert_eq!(s.stage("Phones", T0).as_deref(), Some("consideration"));
    assert_eq!(s.stage("Phones", T0 + 3 * DAY).as_deref(), Some("awareness"));
}

#[test]
fn a_site_with_a_short_decision_window_lets_decision_fade_sooner() {
    let mut default = Shopper::new();
    let mut short = Shopper::with_options(r#"{"thresholds":{"decision_days":1}}"#);
    for s in [&mut default, &mut short] {
        s.track("Product Added", r#"{"product_id":"tv-1","category":"TVs"}"#, T0);
    }
    assert_eq!(default.stage("TVs", T0 + 2 * DAY).as_deref(), Some("decision"));
    assert_eq!(short.stage("TVs", T0 + 2 * DAY).as_deref(), Some("awareness"));
}

#[test]
fn a_site_with_a_long_return_time_waits_longer_for_loyalty() {
    let mut s = Shopper::with_options(r#"{"thresholds":{"loyalty_return_hours":72}}"#);
    s.track("Order Completed", r#"{"products":[{"product_id":"tv-1","category":"TVs"}]}"#, T0);
    s.view("TVs", "tv-2", T0 + 2 * DAY);
    assert_eq!(s.stage("TVs", T0 + 2 * DAY).as_deref(), Some("purchase"));
    s.view("TVs", "tv-3", T0 + 4 * DAY);
    assert_eq!(s.stage("TVs", T0 + 4 * DAY).as_deref(), Some("loyalty"));
}

#[test]
fn thresholds_that_are_not_positive_numbers_keep_their_defaults() {
    let s = Settings::from_options(
        r#"{"thresholds":{"consideration_views":-1,"decision_days":0,"decision_burst_views":1e400}}"#,
        false,
        "",
        "",
    );
    // Either refused as a whole or each bad value ignored; never a silly threshold.
    if let Ok(s) = s {
        assert_eq!(s.thresholds, nudge::config::Thresholds::default());
    }
    let ok = Settings::from_options(r#"{"thresholds":{"consideration_views":-1,"decision_days":0}}"#, false, "", "")
        .unwrap();
    assert_eq!(ok.thresholds, nudge::config::Thresholds::default());
}

#[test]
fn unknown_init_options_are_ignored_and_bad_ones_refused() {
    let s = Settings::from_options(
        r#"{"writeKey":"wk","endpoint":"https://x","thresholds":{"decision_days":3}}"#,
        false,
        "",
        "",
    );
    assert_eq!(s.unwrap().thresholds.decision_days, 3.0);
    assert!(Settings::from_options(r#"{"consent":{"mode":"sometimes"}}"#, false, "", "").is_err());
    assert!(Settings::from_options("not json", false, "", "").is_err());
}

#[test]
fn stage_changes_are_sent_as_stage_changed_events_with_from_and_to() {
    let mut s = Shopper::new();
    let first = s.view("TVs", "tv-1", T0);
    assert_eq!(first.stage_changes.len(), 1);
    assert_eq!(first.stage_changes[0].category, "TVs");
    assert_eq!((first.stage_changes[0].from, first.stage_changes[0].to), (None, Stage::Awareness));
    assert!(s.view("TVs", "tv-2", T0 + MINUTE * 20).stage_changes.is_empty(), "no change, no event");
    s.view("TVs", "tv-3", T0 + MINUTE * 40);
    assert_eq!(
        s.stage_changed_messages(),
        vec![change("TVs", None, "awareness"), change("TVs", Some("awareness"), "consideration")]
    );
    // Each Stage Changed message has its own id, the shopper's ids and the call's time.
    let msgs: Vec<Value> = s.engine.outbox.messages().iter().map(|m| miniserde::json::from_str(m).unwrap()).collect();
    let mut ids: Vec<String> = msgs
        .iter()
        .map(|m| match get(m, &["messageId"]) {
            Some(Value::String(id)) => id.clone(),
            _ => panic!("no messageId"),
        })
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "message ids are unique");
    for m in &msgs {
        assert!(matches!(get(m, &["anonymousId"]), Some(Value::String(a)) if *a == s.engine.profile.anonymous_id));
        assert!(matches!(get(m, &["type"]), Some(Value::String(t)) if t == "track"));
    }
}

#[test]
fn the_servers_site_config_sets_thresholds_and_init_still_wins() {
    let view = |n: u32| format!(r#"{{"category":"TVs","product_id":"tv-{n}"}}"#);
    let mut shop = Shopper::new();
    shop.track("Product Viewed", &view(1), T0);
    assert_eq!(shop.engine.profile.stages(T0, &shop.engine.settings().thresholds), vec![("TVs", Stage::Awareness)]);

    // The site decides one view is consideration: the stage moves, reported to listeners.
    let out =
        shop.engine.apply_site_config(r#"{"thresholds":{"consideration_views":1},"campaigns":[]}"#, T0 + 1).unwrap();
    assert_eq!(out.stage_changes.len(), 1);
    assert_eq!(out.stage_changes[0].to, Stage::Consideration);
    assert_eq!(shop.engine.settings().thresholds.consideration_views, 1.0);

    // A page that set its own thresholds in init keeps them over the server's.
    let mut own = Shopper::with_options(r#"{"writeKey":"k","thresholds":{"consideration_views":4}}"#);
    own.engine.apply_site_config(r#"{"thresholds":{"consideration_views":1,"decision_days":2}}"#, T0).unwrap();
    assert_eq!(own.engine.settings().thresholds.consideration_views, 4.0);
    assert_eq!(own.engine.settings().thresholds.decision_days, 2.0);

    // Garbage from the network is an error and changes nothing.
    assert!(own.engine.apply_site_config("<html>", T0).is_err());
    assert_eq!(own.engine.settings().thresholds.decision_days, 2.0);
}
