//! Properties of the core over arbitrary calls: whatever a page (or a broken page) passes
//! in, page signals and popup outcomes included, and whatever campaigns a site configures,
//! the core never panics; a refused call changes nothing; the stored profile stays
//! bounded and reads back as exactly the profile that was written; stages do not depend on
//! the order in which the same evidence arrives; and reading arbitrary stored text never
//! panics either.
//!
//! Case counts are kept moderate so that the whole file runs in a few seconds in debug.

use miniserde::json::Value;
use nudge::engine::{Engine, Input, Kind, Settings};
use nudge::message::PageInfo;
use nudge::outbox::{message_id, Outbox, MAX_BYTES, MAX_MESSAGES};
use nudge::profile::{Loaded, Profile, MAX_CATEGORIES, MAX_TRAITS_BYTES};
use nudge::time::{to_iso, DAY, MINUTE};
use proptest::collection::vec;
use proptest::prelude::*;

/// 2026-11-23.
const T0: u64 = 1_795_420_800_000;
/// The most a stored profile may take.
const PROFILE_BUDGET: usize = 16 * 1024;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn quoted(s: &str) -> String {
    miniserde::json::to_string(s)
}

// ---------------------------------------------------------------------------------------
// Strategies

/// Short text of any kind: plain, any printable character, quotes, backslashes, controls.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[A-Za-z0-9 ]{0,12}",
        2 => "\\PC{0,10}",
        1 => vec(any::<char>(), 0..10).prop_map(|c| c.into_iter().collect()),
        1 => Just("\"\\\u{1}\n\t</script>".to_string()),
    ]
    .boxed()
}

/// A category: mostly one of a few, sometimes anything.
fn category() -> BoxedStrategy<String> {
    prop_oneof![
        6 => proptest::sample::select(vec!["TVs", "Phones", "Laptops", "Cables", "Audio", "Cameras"]).prop_map(String::from),
        1 => text(),
    ]
    .boxed()
}

/// A JSON number (or something in its place).
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u32..5000).prop_map(|n| format!("{}.{:02}", n / 10, n % 100)),
        2 => any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v:?}")),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => Just("\"19.99\"".to_string()),
        1 => proptest::sample::select(vec!["-1", "0", "-0.0", "1e308", "1e-320", "\"abc\"", "null", "true", "[]", "{}"])
            .prop_map(String::from),
    ]
    .boxed()
}

/// One product as e-commerce properties, with fields left out at random.
fn product() -> BoxedStrategy<String> {
    (
        proptest::option::of(category()),
        proptest::option::of(prop_oneof![3 => "[A-C]{1}", 1 => text()]),
        proptest::option::of(prop_oneof![4 => "p[0-9]{1,2}", 1 => text(), 1 => (0u32..50).prop_map(|n| n.to_string())]),
        proptest::option::of(text()),
        proptest::option::of(number()),
        proptest::option::of(number()),
        any::<bool>(),
    )
        .prop_map(|(cat, brand, id, name, price, quantity, sku)| {
            let mut fields = Vec::new();
            if let Some(c) = cat {
                fields.push(format!("\"category\":{}", quoted(&c)));
            }
            if let Some(b) = brand {
                fields.push(format!("\"brand\":{}", quoted(&b)));
            }
            if let Some(i) = id {
                let key = if sku { "sku" } else { "product_id" };
                fields.push(format!("\"{key}\":{}", if i.parse::<u32>().is_ok() { i } else { quoted(&i) }));
            }
            if let Some(n) = name {
                fields.push(format!("\"name\":{}", quoted(&n)));
            }
            if let Some(p) = price {
                fields.push(format!("\"price\":{p}"));
            }
            if let Some(q) = quantity {
                fields.push(format!("\"quantity\":{q}"));
            }
            format!("{{{}}}", fields.join(","))
        })
        .boxed()
}

/// Properties of a `track` call: mostly e-commerce objects, some with a product list.
fn commerce() -> BoxedStrategy<String> {
    let products = vec(product(), 0..4).prop_map(|ps| ps.join(","));
    let with_list = (product(), products, proptest::option::of(text()), proptest::option::of("[A-Z]{3}")).prop_map(
        |(p, list, order, currency)| {
            let mut s = p[..p.len() - 1].to_string();
            if s.len() > 1 {
                s.push(',');
            }
            s.push_str(&format!("\"products\":[{list}]"));
            if let Some(o) = order {
                s.push_str(&format!(",\"order_id\":{}", quoted(&o)));
            }
            if let Some(c) = currency {
                s.push_str(&format!(",\"currency\":{}", quoted(&c)));
            }
            s.push('}');
            s
        },
    );
    prop_oneof![3 => product(), 1 => with_list].boxed()
}

/// Consent choices: mostly well-formed, sometimes naming what does not exist.
fn choices() -> BoxedStrategy<String> {
    let key = proptest::sample::select(vec!["analytics", "analytics", "personalization", "marketing", "ads"]);
    let value = proptest::sample::select(vec!["true", "true", "true", "false", "null", "\"yes\""]);
    vec((key, value), 0..4)
        .prop_map(|cs| {
            let body: Vec<String> = cs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        })
        .boxed()
}

/// Traits for `identify`.
fn traits() -> BoxedStrategy<String> {
    vec(("[a-z]{1,6}", text()), 0..6)
        .prop_map(|kv| {
            let body: Vec<String> = kv.iter().map(|(k, v)| format!("{}:{}", quoted(k), quoted(v))).collect();
            format!("{{{}}}", body.join(","))
        })
        .boxed()
}

/// Properties no call should accept (or only just accept): not objects, not JSON, too
/// deep, too big, numbers out of range.
fn junk_props() -> BoxedStrategy<Option<String>> {
    let deep = (1usize..24).prop_map(|d| format!("{{\"a\":{}1{}}}", "[".repeat(d - 1), "]".repeat(d - 1)));
    let big = (0usize..64).prop_map(|d| format!("{{\"blob\":\"{}\"}}", "x".repeat(32 * 1024 - 40 + d)));
    prop_oneof![
        1 => Just(None),
        1 => "\\PC{0,30}".prop_map(Some),
        2 => proptest::sample::select(vec!["[1,2]", "\"s\"", "42", "null", "true", "", " ", "{\"n\":1e999}", "{\"a\":", "{\"a\":1}x"])
            .prop_map(|s| Some(s.to_string())),
        1 => deep.prop_map(Some),
        1 => big.prop_map(Some),
        1 => choices().prop_map(Some),
        1 => traits().prop_map(Some),
        1 => commerce().prop_map(Some),
    ]
    .boxed()
}

/// Names no call should accept (or only just accept).
fn junk_name() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => proptest::sample::select(vec!["", " ", "\t\n"]).prop_map(|s| Some(s.to_string())),
        2 => "\\PC{0,20}".prop_map(Some),
        1 => (195usize..206).prop_map(|n| Some("n".repeat(n))),
        1 => Just(Some("Product Viewed".to_string())),
    ]
    .boxed()
}

fn event() -> BoxedStrategy<String> {
    proptest::sample::select(vec![
        "Product Viewed",
        "Product Viewed",
        "Product Viewed",
        "Product Viewed",
        "Product Viewed",
        "Product Viewed",
        "Product Added",
        "Product Added",
        "Product Added",
        "Product Removed",
        "Product Removed",
        "Product Added to Wishlist",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
        "Order Completed",
        "Products Searched",
        "Stage Changed",
    ])
    .prop_map(String::from)
    .boxed()
}

/// Call options: mostly none, sometimes a timestamp or a user hash, sometimes garbage.
fn options() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        16 => Just(None),
        1 => proptest::sample::select(vec!["", "null", "{}", "[]", "{\"timestamp\":5}", "{\"timestamp\":\"yesterday\"}", "nope"])
            .prop_map(|s| Some(s.to_string())),
        3 => (0u64..120 * DAY).prop_map(|d| Some(format!("{{\"timestamp\":\"{}\"}}", to_iso(T0 - 30 * DAY + d)))),
        1 => any::<u64>().prop_map(|t| Some(format!("{{\"timestamp\":\"{}\"}}", to_iso(t)))),
        1 => text().prop_map(|h| Some(format!("{{\"userHash\":{}}}", quoted(&h)))),
        1 => "\\PC{0,20}".prop_map(Some),
    ]
    .boxed()
}

/// When a call is made, against a clock that runs from T0: mostly minutes after the last
/// call, sometimes days; sometimes at a time of its own, as far as the ends of time.
#[derive(Debug, Clone, Copy)]
enum When {
    After(u64),
    At(u64),
}

fn when() -> BoxedStrategy<When> {
    prop_oneof![
        16 => (0u64..10 * MINUTE).prop_map(When::After),
        4 => (0u64..3 * DAY).prop_map(When::After),
        1 => (0u64..20 * DAY).prop_map(When::After),
        1 => (0u64..90 * DAY).prop_map(|d| When::At(T0 + d)),
        1 => proptest::sample::select(vec![0, 1, u64::MAX, u64::MAX - 1, u64::MAX / 2]).prop_map(When::At),
        1 => any::<u64>().prop_map(When::At),
    ]
    .boxed()
}

/// The shell's randomness: mostly as it should be, sometimes not.
fn seed() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[0-9a-f]{32}",
        1 => "[0-9a-fA-F]{0,40}",
        1 => "\\PC{0,40}",
        1 => Just(String::new()),
    ]
    .boxed()
}

fn page() -> BoxedStrategy<PageInfo> {
    let url = prop_oneof![
        2 => Just(String::new()),
        4 => ("[a-z/]{0,10}", proptest::option::of("[a-z0-9%+]{0,8}"))
            .prop_map(|(p, c)| format!("https://shop.example/{p}{}", c.map_or(String::new(), |c| format!("?utm_campaign={c}")))),
        1 => "\\PC{0,40}",
    ];
    (url, "\\PC{0,10}", prop_oneof![Just(String::new()), "\\PC{0,20}"])
        .prop_map(|(url, title, referrer)| PageInfo { url, title, referrer })
        .boxed()
}

fn kind() -> BoxedStrategy<Kind> {
    prop_oneof![
        28 => Just(Kind::Track),
        6 => Just(Kind::Page),
        3 => Just(Kind::Identify),
        3 => Just(Kind::Consent),
        1 => Just(Kind::Reset),
        1 => Just(Kind::Forget),
        6 => Just(Kind::Signal),
        3 => Just(Kind::Popup),
    ]
    .boxed()
}

/// A page signal as the shell reports it (see `nudge::intent`), sometimes malformed.
fn signal() -> BoxedStrategy<String> {
    let name = proptest::sample::select(vec![
        "pointer-exit",
        "scroll-up",
        "back",
        "hidden",
        "idle",
        "time-on-page",
        "scroll-depth",
        "wave",
    ]);
    let key = proptest::sample::select(vec!["speed", "seconds", "percent", "from"]);
    let from = prop_oneof![Just("\"https://shop.example/p\"".to_string()), text().prop_map(|t| quoted(&t))];
    (name, key, prop_oneof![3 => number(), 1 => from], proptest::option::of(text()))
        .prop_map(|(n, k, v, junk)| match junk {
            Some(j) if j.len() % 5 == 0 => j,
            _ => format!(r#"{{"signal":"{n}","{k}":{v}}}"#),
        })
        .boxed()
}

/// A popup outcome's properties, as the shell builds them.
fn outcome() -> BoxedStrategy<String> {
    let action = proptest::sample::select(vec!["shown", "dismissed", "converted", "clicked"]);
    let email = proptest::option::of(prop_oneof![
        3 => Just("ann@example.com".to_string()),
        1 => text(),
    ]);
    (action, email)
        .prop_map(|(a, e)| match e {
            Some(e) => format!(r#"{{"action":"{a}","email":{}}}"#, quoted(&e)),
            None => format!(r#"{{"action":"{a}"}}"#),
        })
        .boxed()
}

/// A campaign as a site might write it: mostly well formed, with any part odd at times.
fn campaign() -> BoxedStrategy<String> {
    let id = prop_oneof![6 => "c[0-4]", 1 => text()].prop_map(|t| quoted(&t));
    let trigger = prop_oneof![
        Just(r#"{"on":"exit-intent"}"#.to_string()),
        proptest::sample::select(vec!["cart", "browse", "both"])
            .prop_map(|k| format!(r#"{{"on":"abandon-intent","kind":"{k}"}}"#)),
        Just(r#"{"on":"abandon-intent"}"#.to_string()),
        (proptest::sample::select(vec!["awareness", "decision", "loyalty", "bored"]), category())
            .prop_map(|(st, c)| format!(r#"{{"on":"stage-entered","stage":"{st}","category":{}}}"#, quoted(&c))),
        "[a-z/]{0,6}".prop_map(|p| format!(r#"{{"on":"page","path":"/{p}"}}"#)),
        number().prop_map(|n| format!(r#"{{"on":"time-on-page","seconds":{n}}}"#)),
        number().prop_map(|n| format!(r#"{{"on":"scroll-depth","percent":{n}}}"#)),
        text().prop_map(|t| quoted(&t)),
    ];
    let audience = (
        proptest::option::of((category(), proptest::sample::select(vec!["decision", "awareness", "purchase", "x"]))),
        proptest::option::of((number(), number())),
        proptest::option::of(proptest::sample::select(vec!["\"new\"", "\"returning\"", "true", "1"])),
        proptest::option::of(proptest::sample::select(vec!["true", "false", "\"yes\""])),
    )
        .prop_map(|(stage, cart, visitor, identified)| {
            let mut parts = Vec::new();
            if let Some((c, st)) = stage {
                parts.push(format!(r#""stage":{{"category":{},"in":["{st}"]}}"#, quoted(&c)));
            }
            if let Some((lo, hi)) = cart {
                parts.push(format!(r#""cartValue":{{"min":{lo},"max":{hi}}}"#));
            }
            if let Some(v) = visitor {
                parts.push(format!(r#""visitor":{v}"#));
            }
            if let Some(i) = identified {
                parts.push(format!(r#""identified":{i}"#));
            }
            format!("{{{}}}", parts.join(","))
        });
    let caps = vec(
        (proptest::sample::select(vec!["perSession", "perDay", "ever", "dismissDays", "convertDays"]), number()),
        0..4,
    )
    .prop_map(|c| format!("{{{}}}", c.iter().map(|(k, v)| format!(r#""{k}":{v}"#)).collect::<Vec<_>>().join(",")));
    let content =
        (text(), text(), proptest::option::of(prop_oneof![Just("https://cdn.example/a.png".to_string()), text()]))
            .prop_map(|(t, x, img)| {
                let img = img.map_or(String::new(), |i| format!(r#","image":{}"#, quoted(&i)));
                format!(r#"{{"title":{},"text":{},"emailField":true{img}}}"#, quoted(&t), quoted(&x))
            });
    let offer = proptest::option::of(prop_oneof![
        number().prop_map(|p| format!(r#"{{"code":"SAVE10","percent":{p},"expiresDays":7}}"#)),
        number().prop_map(|a| format!(r#"{{"unique":true,"amount":{a},"currency":"EUR"}}"#)),
        text().prop_map(|t| quoted(&t)),
    ]);
    ((id, number(), number(), trigger), (audience, caps, content, offer), proptest::option::of(text()))
        .prop_map(|((id, priority, holdout, trigger), (audience, caps, content, offer), junk)| match junk {
            Some(j) if j.len() % 7 == 0 => j,
            _ => format!(
                r#"{{"id":{id},"priority":{priority},"holdout":{holdout},"trigger":{trigger},"audience":{audience},"caps":{caps},"content":{content}{}}}"#,
                offer.map_or(String::new(), |o| format!(r#","offer":{o}"#))
            ),
        })
        .boxed()
}

/// One call, mostly shaped as its kind expects (an e-commerce event with e-commerce
/// properties, a user id with traits, consent choices), one time in eight not. Its time is
/// set when the sequence is played (see [`play`]).
fn input() -> BoxedStrategy<Input> {
    let names = (event(), "user-[1-3]", junk_name(), 0u8..8);
    let bodies = (commerce(), choices(), traits(), junk_props(), 0u8..8, signal(), outcome());
    (kind(), names, bodies, options(), seed(), page(), "c[0-4]")
        .prop_map(
            |(
                kind,
                (event, user, junk_name, name_roll),
                (commerce, choices, traits, junk, props_roll, signal, outcome),
                options,
                seed,
                page,
                campaign_id,
            )| {
                let name = match (name_roll, kind) {
                    (0, _) => junk_name,
                    (_, Kind::Track) => Some(event),
                    (_, Kind::Identify) => Some(user),
                    (_, Kind::Popup) => Some(campaign_id),
                    (1..=3, Kind::Page) => Some("Category".to_string()),
                    _ => None,
                };
                let props = match (props_roll, kind) {
                    (0, _) => junk,
                    (_, Kind::Track) => Some(commerce),
                    (_, Kind::Identify) => Some(traits),
                    (_, Kind::Consent) => Some(choices),
                    (_, Kind::Signal) => Some(signal),
                    (_, Kind::Popup) => Some(outcome),
                    (1..=2, Kind::Page) => Some(commerce),
                    _ => None,
                };
                Input { kind, name, props, options, now: 0, seed, page }
            },
        )
        .boxed()
}

/// A call as it reaches the engine: made in this tab or forwarded from another, and when.
#[derive(Debug, Clone)]
struct Step {
    input: Input,
    when: When,
    forwarded: Option<(String, u64)>,
}

fn step() -> BoxedStrategy<Step> {
    let forwarded = prop_oneof![
        8 => Just(None),
        1 => (proptest::sample::select(vec!["tab-a", "tab-b", "tab-c"]), 0u64..6).prop_map(|(t, s)| Some((t.to_string(), s))),
    ];
    (input(), when(), forwarded).prop_map(|(input, when, forwarded)| Step { input, when, forwarded }).boxed()
}

/// Sets each call's time from a clock that starts at T0.
fn play(steps: &[Step]) -> Vec<Step> {
    let mut clock = T0;
    steps
        .iter()
        .map(|s| {
            let now = match s.when {
                When::After(d) => {
                    clock += d;
                    clock
                }
                When::At(t) => t,
            };
            Step { input: Input { now, ..s.input.clone() }, ..s.clone() }
        })
        .collect()
}

/// `init(options)` as a site might write it, including silly thresholds.
fn settings() -> BoxedStrategy<Settings> {
    let value = proptest::sample::select(vec![
        "1e-300", "0.001", "0.5", "1", "3", "5", "60", "1e6", "1e300", "-1", "0", "\"7\"",
    ]);
    let key = proptest::sample::select(vec![
        "consideration_views",
        "consideration_days",
        "decision_days",
        "decision_burst_views",
        "decision_burst_minutes",
        "affinity_half_life_days",
        "loyalty_return_hours",
        "session_timeout_minutes",
        "cart_abandon_minutes",
        "idle_seconds",
    ]);
    (
        vec((key, value), 0..4),
        proptest::sample::select(vec!["", ",\"consent\":{\"mode\":\"opt-in\"}", ",\"consent\":{\"mode\":\"opt-out\"}"]),
        any::<bool>(),
        "\\PC{0,20}",
        vec(campaign(), 0..3),
    )
        .prop_map(|(th, consent, gpc, agent, campaigns)| {
            let th: Vec<String> = th.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text =
                format!("{{\"thresholds\":{{{}}}{consent},\"campaigns\":[{}]}}", th.join(","), campaigns.join(","));
            // Lenient, as the shell reads it: bad campaigns are skipped, the rest apply.
            Settings::from_options_lenient(&text, gpc, &agent, "en").0
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Checks

/// Everything a call may change.
fn snapshot(e: &Engine) -> (String, String, u64, Profile, Outbox) {
    (e.profile.encode(), e.outbox.encode(), e.outbox.dropped, e.profile.clone(), e.outbox.clone())
}

/// Applies one call and checks what must hold after any call.
fn apply_and_check(e: &mut Engine, step: &Step) -> Result<(), TestCaseError> {
    let before = snapshot(e);
    let now = step.input.now;
    let result = match &step.forwarded {
        None => e.apply(&step.input),
        Some((tab, seq)) => e.apply_forwarded(tab, *seq, &step.input),
    };
    if let Ok(out) = &result {
        if let Some(p) = &out.popup {
            prop_assert!(miniserde::json::from_str::<Value>(p).is_ok(), "the popup is not JSON: {}", p);
            prop_assert!(e.consent().personalization, "a popup without personalization consent");
        }
    }
    if let Err(err) = result {
        prop_assert!(!err.message().is_empty());
        let after = snapshot(e);
        prop_assert_eq!(&after.0, &before.0, "a refused call ({:?}) changed the stored profile", err);
        prop_assert_eq!(&after.1, &before.1, "a refused call ({:?}) changed the outbox", err);
        prop_assert_eq!(after.2, before.2);
        prop_assert_eq!(&after.3, &before.3);
        prop_assert_eq!(&after.4, &before.4);
    }

    // The stored profile is small, bounded and reads back as itself.
    let stored = e.profile.encode();
    prop_assert!(stored.len() < PROFILE_BUDGET, "the stored profile takes {} bytes", stored.len());
    prop_assert!(e.profile.categories.len() <= MAX_CATEGORIES);
    prop_assert!(e.profile.cart.lines.len() <= nudge::cart::MAX_LINES);
    prop_assert!(e.profile.traits.as_ref().map_or(0, |t| t.len()) <= MAX_TRAITS_BYTES);
    let (back, how) = Profile::decode(&stored, "fallback".into());
    prop_assert_eq!(how, Loaded::Current);
    prop_assert_eq!(&back, &e.profile, "decode(encode(p)) != p for {}", stored);

    // The outbox is bounded, and each message is one line of JSON with an id.
    prop_assert!(e.outbox.len() <= MAX_MESSAGES);
    let bytes: usize = e.outbox.messages().iter().map(String::len).sum();
    prop_assert!(bytes <= MAX_BYTES || e.outbox.len() == 1, "{} bytes in the outbox", bytes);
    for m in e.outbox.messages() {
        prop_assert!(message_id(m).is_some(), "no messageId: {}", m);
        prop_assert!(!m.contains('\n'));
        prop_assert!(miniserde::json::from_str::<Value>(m).is_ok(), "not JSON: {}", m);
    }
    let reread = Outbox::decode(&e.outbox.encode());
    prop_assert_eq!(reread.messages(), e.outbox.messages());

    // What profile() returns is JSON.
    let view = e.profile_json(now);
    prop_assert!(miniserde::json::from_str::<Value>(&view).is_ok(), "profile() is not JSON: {}", view);
    Ok(())
}

/// A stored profile in the current layout with arbitrary values where the layout allows
/// them: unsorted times, counts at their limits, negative prices, odd text.
fn wild_stored_profile() -> BoxedStrategy<String> {
    let times = || vec(any::<u64>(), 0..12).prop_map(|v| v.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
    let float = || prop_oneof![any::<f64>().prop_filter("finite", |v| v.is_finite()), -1e6f64..1e6];
    (
        (times(), times(), any::<u32>(), any::<u64>(), any::<u64>()),
        (any::<u64>(), any::<u64>(), any::<u32>(), text()),
        (float(), any::<u64>(), float(), float()),
        (text(), vec(text(), 0..30), any::<u64>()),
    )
        .prop_map(|((views, intents, orders, last_order, last_seen), (sid, slast, count, cat), (v, t, price, qty), (id, keys, seq))| {
            let scores: Vec<String> = keys.iter().map(|k| format!("{}:{{\"v\":{v:?},\"t\":{t}}}", quoted(k))).collect();
            let scores = scores.join(",");
            format!(
                concat!(
                    "{{\"v\":2,\"anonymous_id\":{id},\"user_id\":null,\"user_hash\":null,\"traits\":\"{{}}\",",
                    "\"consent\":{{\"analytics\":null,\"personalization\":null,\"marketing\":null}},",
                    "\"session\":{{\"id\":{sid},\"last\":{slast},\"campaign\":null,\"count\":{count}}},",
                    "\"categories\":{{{cat}:{{\"views\":[{views}],\"intents\":[{intents}],\"orders\":{orders},",
                    "\"last_order\":{last_order},\"last_seen\":{last_seen},\"reported\":\"decision\"}}}},",
                    "\"affinities\":{{\"categories\":{{\"m\":{{{scores}}}}},\"brands\":{{\"m\":{{{scores}}}}},\"price_bands\":{{\"m\":{{}}}}}},",
                    "\"cart\":{{\"lines\":[{{\"product_id\":\"p1\",\"name\":null,\"category\":{cat},\"brand\":null,\"price\":{price:?},\"quantity\":{qty:?}}}],",
                    "\"currency\":null,\"updated\":{t},\"checkout\":{t}}},",
                    "\"acks\":{{\"tab-a\":{{\"seq\":{seq},\"at\":{t}}}}}}}"
                ),
                id = quoted(&format!("a{id}")),
                sid = sid,
                slast = slast,
                count = count,
                cat = quoted(&cat),
                views = views,
                intents = intents,
                orders = orders,
                last_order = last_order,
                last_seen = last_seen,
                scores = scores,
                price = price,
                qty = qty,
                t = t,
                seq = seq,
            )
        })
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn any_sequence_of_calls_never_panics_and_keeps_every_invariant(
        settings in settings(),
        engine_seed in seed(),
        steps in vec(step(), 1..60),
    ) {
        let mut e = Engine::new(settings, &engine_seed);
        for s in &play(&steps) {
            apply_and_check(&mut e, s)?;
        }
    }

    #[test]
    fn any_campaigns_in_the_site_config_and_any_signals_never_panic(
        campaigns in vec(campaign(), 0..12),
        junk in proptest::option::of(text()),
        steps in vec(step(), 1..40),
    ) {
        let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
        let config = match junk {
            Some(j) => format!(r#"{{"campaigns":{j}}}"#),
            None => format!(r#"{{"campaigns":[{}]}}"#, campaigns.join(",")),
        };
        if let Ok(out) = e.apply_site_config(&config, T0) {
            prop_assert!(e.campaigns().len() <= campaigns.len());
            prop_assert!(out.problems.iter().all(|p| !p.message().is_empty()));
        }
        let ranked: Vec<(f64, String)> = e.campaigns().iter().map(|c| (-c.priority, c.id.clone())).collect();
        prop_assert!(ranked.windows(2).all(|w| w[0] < w[1]), "campaigns are ranked: {:?}", ranked);
        for s in &play(&steps) {
            apply_and_check(&mut e, s)?;
        }
    }

    #[test]
    fn the_same_calls_give_the_same_profile_and_messages(steps in vec(step(), 1..30)) {
        let steps = play(&steps);
        let run = || {
            let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
            let results: Vec<_> = steps.iter().map(|s| e.apply(&s.input)).collect();
            (results, e.profile.encode(), e.outbox.encode())
        };
        let (a, b) = (run(), run());
        prop_assert_eq!(a, b);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn stages_do_not_depend_on_the_order_the_same_evidence_arrives_in(
        // At most MAX_VIEWS views per category: past that the oldest views are forgotten,
        // and what was learnt from them can differ by order.
        views in vec((0u64..2, 0u64..(60 * MINUTE)).prop_map(|(day, t)| day * DAY + t), 4..=nudge::funnel::MAX_VIEWS),
        adds in vec(0u64..(10 * DAY), 0..3),
        orders in vec(0u64..(10 * DAY), 0..2),
        shuffle in vec(any::<u32>(), 13),
        probes in vec(prop_oneof![3 => 0u64..(10 * DAY), 1 => 0u64..(30 * DAY)], 1..6),
    ) {
        let mut evidence: Vec<(&str, u64)> = views.iter().map(|t| ("Product Viewed", *t)).collect();
        evidence.extend(adds.iter().map(|t| ("Product Added", *t)));
        evidence.extend(orders.iter().map(|t| ("Order Completed", *t)));
        let last = T0 + 40 * DAY;
        let stages = |order: &[(&str, u64)]| {
            let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
            for (n, (event, t)) in order.iter().enumerate() {
                let props = if *event == "Order Completed" {
                    r#"{"products":[{"category":"TVs","product_id":"tv"}]}"#.to_string()
                } else {
                    format!(r#"{{"category":"TVs","product_id":"tv{n}"}}"#)
                };
                let input = Input {
                    kind: Kind::Track,
                    name: Some(event.to_string()),
                    props: Some(props),
                    options: Some(format!(r#"{{"timestamp":"{}"}}"#, to_iso(T0 + t))),
                    now: last,
                    seed: format!("{n:032x}"),
                    page: PageInfo::default(),
                };
                e.apply(&input).unwrap();
            }
            let th = e.settings().thresholds.clone();
            probes.iter().map(|p| e.profile.categories.get("TVs").map(|ev| ev.stage(T0 + p, &th))).collect::<Vec<_>>()
        };
        let in_time_order = {
            let mut sorted = evidence.clone();
            sorted.sort_by_key(|(_, t)| *t);
            stages(&sorted)
        };
        let mut shuffled = evidence.clone();
        for (i, r) in shuffle.iter().enumerate().take(shuffled.len()) {
            let j = *r as usize % shuffled.len();
            shuffled.swap(i, j);
        }
        prop_assert_eq!(stages(&shuffled), in_time_order.clone(), "{:?}", shuffled);
        let mut reversed = evidence.clone();
        reversed.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
        prop_assert_eq!(stages(&reversed), in_time_order);
    }

    #[test]
    fn a_wild_but_well_formed_stored_profile_never_makes_a_call_panic(
        stored in wild_stored_profile(),
        steps in vec(step(), 1..12),
    ) {
        let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
        let how = e.load_profile(&stored);
        prop_assert!(how != Loaded::Migrated);
        for s in &play(&steps) {
            let _ = e.apply(&s.input);
            let _ = e.profile_json(s.input.now);
        }
        let (back, _) = Profile::decode(&e.profile.encode(), "x".into());
        prop_assert_eq!(back.anonymous_id, e.profile.anonymous_id);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn reading_arbitrary_stored_text_never_panics(text in prop_oneof![
        any::<String>(),
        "\\{\"v\":[0-9]{1,3},\\PC{0,60}",
        "[\\[\\]{}\",:0-9a-z\\\\ -]{0,80}",
    ]) {
        let (p, how) = Profile::decode(&text, "fallback".into());
        if how == Loaded::Replaced {
            prop_assert_eq!(p, Profile::new("fallback".into()));
        }
        let _ = Outbox::decode(&text);
    }

    #[test]
    fn reading_a_damaged_stored_profile_never_panics(
        cut in any::<proptest::sample::Index>(),
        insert in proptest::sample::select(vec!["", "-1", "1e400", "\"x\"", "[]", "{}", "null", "\\", "\u{1}", "9999999999999999999999"]),
        keep_tail in any::<bool>(),
    ) {
        let mut e = Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef");
        for (n, props) in [r#"{"category":"TVs","brand":"Sony","product_id":"tv1","price":899.5}"#, r#"{"category":"Phones","product_id":"p"}"#].iter().enumerate() {
            e.apply(&Input::track("Product Added", props, T0 + n as u64 * MINUTE, &format!("{n:032x}"))).unwrap();
        }
        let stored = e.profile.encode();
        let mut at = cut.index(stored.len());
        while !stored.is_char_boundary(at) {
            at -= 1;
        }
        let damaged = format!("{}{}{}", &stored[..at], insert, if keep_tail { &stored[at..] } else { "" });
        let mut later = Engine::new(Settings::default(), "ffffffffffffffffffffffffffffffff");
        if later.load_profile(&damaged) != Loaded::Replaced {
            for n in 0..3u64 {
                let _ = later.apply(&Input::track("Product Viewed", r#"{"category":"TVs"}"#, T0 + n * MINUTE, &format!("{:032x}", 100 + n)));
            }
        }
        let _ = later.profile_json(T0);
    }

    #[test]
    fn numbers_kept_in_the_profile_read_back_as_they_were_written(
        v in prop_oneof![any::<f64>(), -1e7f64..1e7, 0f64..1.0, 1e6f64..1e16],
    ) {
        prop_assume!(v.is_finite());
        let kept = nudge::json_value::storable(v);
        let mut text = String::new();
        nudge::json_value::push_fixed(&mut text, kept, 9);
        let back = nudge::json_value::parse(&text, 1).ok().and_then(|n| n.as_f64());
        prop_assert_eq!(back, Some(kept), "{} kept as {} written as {}", v, kept, text);
        prop_assert_eq!(nudge::json_value::storable(kept), kept);
        if v.abs() < 2e6 {
            prop_assert!((kept - v).abs() <= 1e-9, "{} kept as {}", v, kept);
        } else if v.abs() < 2e15 {
            prop_assert!((kept - v).abs() <= 0.5, "{} kept as {}", v, kept);
        }
    }
}
