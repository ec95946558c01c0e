//! Recommendations through the engine's front door, with the clock passed in: what a
//! shopper's events make `recommend()` return for each strategy, what is never offered,
//! the reasons given, consent, ties, bad requests, and arbitrary input that must not panic.

use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::recommend::{rank, Catalog, Request, Strategy};
use nudge::time::{DAY, MINUTE};
use proptest::prelude::*;

/// 2026-11-23.
const T0: u64 = 1_795_420_800_000;

/// id, name, category, brand, price, in stock, popularity: the compact form the wrapper makes.
const CATALOG: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("tv-1", "Acme 50 TV", "TVs", "Acme", "499", "1", "10"),
    ("tv-2", "Acme 55 TV", "TVs", "Acme", "599", "1", "30"),
    ("tv-3", "Vizo 65 TV", "TVs", "Vizo", "1299", "1", "5"),
    ("tv-4", "Vizo 43 TV", "TVs", "Vizo", "349", "0", "90"),
    ("ph-1", "Fone X", "Phones", "Fone", "899", "1", "80"),
    ("ph-2", "Fone Mini", "Phones", "Fone", "499", "1", "60"),
    ("hd-1", "Acme Buds", "Headphones", "Acme", "99", "1", "40"),
    ("hd-2", "Zed Cans", "Headphones", "Zed", "249", "1", "20"),
    ("hm-1", "Wall Mount", "Home", "", "39", "1", "70"),
];

fn catalog() -> Catalog {
    let rows: Vec<String> = CATALOG.iter().map(|r| [r.0, r.1, r.2, r.3, r.4, r.5, r.6].join("\x1f")).collect();
    Catalog::read(&rows.join("\x1e"))
}

fn product(id: &str) -> String {
    let r = CATALOG.iter().find(|r| r.0 == id).unwrap();
    format!(r#"{{"product_id":"{}","name":"{}","category":"{}","brand":"{}","price":{}}}"#, r.0, r.1, r.2, r.3, r.4)
}

struct Shopper {
    engine: Engine,
    catalog: Catalog,
    n: u64,
}

impl Shopper {
    fn new(options: &str) -> Shopper {
        let settings = Settings::from_options(options, false, "", "").unwrap();
        Shopper { engine: Engine::new(settings, "00000000000000000000000000000001"), catalog: catalog(), n: 0 }
    }

    fn track(&mut self, event: &str, props: &str, at: u64) {
        self.n += 1;
        let input = Input::track(event, props, at, &format!("{:032x}", self.n));
        self.engine.apply(&input).unwrap();
    }

    fn view(&mut self, id: &str, at: u64) {
        self.track("Product Viewed", &product(id), at);
    }

    /// `(id, reason)` of each pick.
    fn recommend(&self, request: &str, at: u64) -> Vec<(String, String)> {
        let json = self.engine.recommend(&self.catalog, request, at).unwrap();
        let v: miniserde::json::Value = miniserde::json::from_str(&json).unwrap();
        let miniserde::json::Value::Array(picks) = v else { panic!("not an array: {json}") };
        picks
            .iter()
            .map(|p| {
                let miniserde::json::Value::Array(pair) = p else { panic!("{json}") };
                let (miniserde::json::Value::Number(n), miniserde::json::Value::String(reason)) = (&pair[0], &pair[1])
                else {
                    panic!("{json}")
                };
                let i = match n {
                    miniserde::json::Number::U64(i) => *i as usize,
                    other => panic!("index {other:?}"),
                };
                (self.catalog.product(i).id.clone(), reason.clone())
            })
            .collect()
    }
}

fn ids(picks: &[(String, String)]) -> Vec<&str> {
    picks.iter().map(|p| p.0.as_str()).collect()
}

#[test]
fn a_shopper_deciding_on_tvs_is_offered_tvs_first_with_the_reason() {
    let mut s = Shopper::new("{}");
    for (i, id) in ["tv-1", "tv-2", "tv-1", "tv-2", "tv-1"].iter().enumerate() {
        s.view(id, T0 + i as u64 * MINUTE);
    }
    s.view("ph-1", T0 + 10 * MINUTE);
    let now = T0 + 2 * DAY;
    let picks = s.recommend(r#"{"strategy":"for-you","count":3}"#, now);
    // The two TVs viewed (the more popular first), then the other TV in stock.
    assert_eq!(ids(&picks), ["tv-2", "tv-1", "tv-3"]);
    assert_eq!(picks[0].1, "because you viewed TVs");
    let four = s.recommend(r#"{"strategy":"for-you","count":4}"#, now);
    assert_eq!(four[3].0, "ph-1", "the phone the shopper looked at once comes after the TVs");
}

#[test]
fn what_is_in_the_cart_bought_or_out_of_stock_is_never_offered() {
    let mut s = Shopper::new("{}");
    s.view("tv-1", T0);
    s.track("Product Added", &product("tv-2"), T0 + MINUTE);
    s.track("Order Completed", &format!(r#"{{"order_id":"o1","products":[{}]}}"#, product("tv-3")), T0 + 2 * MINUTE);
    s.track("Product Added", &product("tv-2"), T0 + 3 * MINUTE);
    let all = s.recommend(r#"{"strategy":"popular","count":50}"#, T0 + DAY);
    let got = ids(&all);
    for gone in ["tv-2", "tv-3", "tv-4"] {
        assert!(!got.contains(&gone), "{gone} offered: {got:?}");
    }
    assert_eq!(got.len(), CATALOG.len() - 3);
    assert_eq!(got[..3], ["ph-1", "hm-1", "ph-2"], "most popular first");
    assert_eq!(all[0].1, "popular now");
}

#[test]
fn similar_products_share_category_brand_and_price() {
    let s = Shopper::new("{}");
    let picks = s.recommend(r#"{"strategy":"similar","productId":"tv-1","count":3}"#, T0);
    assert_eq!(ids(&picks), ["tv-2", "tv-3", "ph-2"], "same brand and close price, then other TVs");
    assert_eq!(picks[0].1, "similar to Acme 50 TV");
    let err = s.engine.recommend(&s.catalog, r#"{"strategy":"similar","productId":"nope"}"#, T0).unwrap_err();
    assert_eq!(err.message(), "similar needs the productId of a product in the catalogue");
}

#[test]
fn completing_the_cart_offers_other_categories_cheaper_than_the_cart() {
    let mut s = Shopper::new("{}");
    let empty = s.recommend(r#"{"strategy":"complete-the-cart","count":2}"#, T0);
    assert_eq!(ids(&empty), ["ph-1", "hm-1"], "an empty cart gets the most popular");
    s.track("Product Added", &product("tv-2"), T0);
    let picks = s.recommend(r#"{"strategy":"complete-the-cart","count":3}"#, T0 + MINUTE);
    assert_eq!(ids(&picks), ["hd-1", "hm-1", "hd-2"]);
    assert_eq!(picks[0].1, "goes with Acme 55 TV");
}

#[test]
fn a_category_keeps_to_its_products_and_says_so() {
    let s = Shopper::new("{}");
    let picks = s.recommend(r#"{"strategy":"popular","category":"Headphones"}"#, T0);
    assert_eq!(ids(&picks), ["hd-1", "hd-2"]);
    assert_eq!(picks[0].1, "popular in Headphones");
    assert!(s.recommend(r#"{"category":"Unknown"}"#, T0).is_empty());
}

#[test]
fn ties_keep_the_catalogue_order_and_count_is_bounded() {
    let text: Vec<String> = (0..80).map(|i| format!("p{i}\x1fP\x1fC\x1fB\x1f10\x1f1\x1f0")).collect();
    let c = Catalog::read(&text.join("\x1e"));
    let p = nudge::profile::Profile::new("a".into());
    let th = nudge::config::Thresholds::default();
    let req = |count| Request { strategy: Strategy::ForYou, count, product_id: None, category: None };
    let picks = rank(&c, &p, &req(5), T0, &th).unwrap();
    assert_eq!(picks.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(rank(&c, &p, &req(500), T0, &th).unwrap().len(), 50);
    assert_eq!(Request::read(r#"{"count":500}"#).unwrap().count, 50);
    assert_eq!(Request::read(r#"{"count":0}"#).unwrap().count, 1);
    assert_eq!(Request::read("{}").unwrap().count, 4);
}

#[test]
fn without_personalization_consent_the_profile_is_not_used() {
    let mut s = Shopper::new(r#"{"consent":{"mode":"opt-out"}}"#);
    for (i, id) in ["hd-2", "hd-2", "hd-2"].iter().enumerate() {
        s.view(id, T0 + i as u64 * MINUTE);
    }
    let personal = s.recommend(r#"{"count":1}"#, T0 + DAY);
    assert_eq!(personal[0].0, "hd-2");
    s.engine
        .apply(&Input {
            kind: Kind::Consent,
            props: Some(r#"{"personalization":false}"#.into()),
            ..Input::track("x", "{}", T0 + DAY, "00000000000000000000000000000009")
        })
        .unwrap();
    let anonymous = s.recommend(r#"{"count":1}"#, T0 + DAY);
    assert_eq!(anonymous, [("ph-1".to_string(), "popular now".to_string())]);
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let s = Shopper::new("{}");
    for bad in ["", "[]", "nope", r#"{"strategy":"cheapest"}"#] {
        let err = s.engine.recommend(&s.catalog, bad, T0).unwrap_err();
        assert!(err.message().starts_with("recommend takes"), "{bad}: {}", err.message());
    }
}

#[test]
fn viewed_and_bought_products_survive_storage_and_are_bounded() {
    let mut s = Shopper::new("{}");
    for i in 0..30 {
        s.track("Product Viewed", &format!(r#"{{"product_id":"p{i}","category":"C"}}"#), T0 + i);
    }
    let p = s.engine.profile.clone();
    assert_eq!(p.seen.len(), nudge::profile::MAX_SEEN);
    assert!(p.seen.contains_key("p29") && !p.seen.contains_key("p0"), "the oldest are forgotten");
    let (back, _) = nudge::profile::Profile::decode(&p.encode(), "x".into());
    assert_eq!(back, p);
    // A profile stored before recommendations existed still reads.
    let old = p.encode().replace(r#","seen":"#, r#","unused":"#).replace(r#","bought":{}"#, "");
    let (read, loaded) = nudge::profile::Profile::decode(&old, "x".into());
    assert_eq!(loaded, nudge::profile::Loaded::Current);
    assert!(read.seen.is_empty() && read.bought.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_catalogues_and_requests_never_panic(
        rows in proptest::collection::vec(("[a-c]{0,3}", "[a-z ]{0,5}", "[A-C]{0,2}", "[xyz]{0,1}", "-?[0-9.e]{0,6}", "[01x]", "[0-9.]{0,4}"), 0..30),
        strategy in prop_oneof![Just("for-you"), Just("similar"), Just("complete-the-cart"), Just("popular"), Just("x")],
        count in -3i64..70,
        product in "[a-c]{0,3}",
        views in proptest::collection::vec("[a-c]{1,3}", 0..10),
    ) {
        let text: Vec<String> = rows.iter().map(|r| [&r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6].map(|s| s.as_str()).join("\x1f")).collect();
        let mut s = Shopper::new("{}");
        s.catalog = Catalog::read(&text.join("\x1e"));
        for (i, v) in views.iter().enumerate() {
            s.track("Product Viewed", &format!(r#"{{"product_id":"{v}","category":"A","brand":"x","price":{i}}}"#), T0 + i as u64);
        }
        let request = format!(r#"{{"strategy":"{strategy}","count":{count},"productId":"{product}"}}"#);
        if let Ok(json) = s.engine.recommend(&s.catalog, &request, T0 + DAY) {
            prop_assert!(json.starts_with('['));
        }
    }
}
