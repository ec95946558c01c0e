//! Merging: how the server folds a person's stored messages into one profile with the same
//! rules the browser applies, so that a stage means the same thing everywhere.
//!
//! A profile is a deterministic function of the *set* of a person's messages: they are
//! folded in [`Key`] order (event time, then `messageId`), each `messageId` once. The same
//! messages, shuffled and repeated, give the same profile; two browsers' messages folded
//! together give their merged profile. A [`Folder`] can also resume from a stored profile
//! and fold later messages incrementally, which gives the same result as folding the whole
//! history again (a message that sorts before the last one folded is refused, so the
//! caller knows to fold everything again).
//!
//! Each `track` and `identify` goes through [`Engine::apply`], exactly as in the browser;
//! the messages it would queue are discarded. Pure: no clock, no I/O, no panics.
//!
//! ```
//! use nudge::merge::{fold_all, Stored};
//! let view = |id: &'static str, at| Stored {
//!     message_id: id, kind: "track", name: Some("Product Viewed"), user_id: None, at,
//!     body: r#"{"properties":{"category":"TVs","product_id":"tv-1"}}"#,
//! };
//! let a = fold_all(&[view("m1", 1_000), view("m2", 2_000), view("m1", 1_000)], &Default::default());
//! let b = fold_all(&[view("m2", 2_000), view("m1", 1_000)], &Default::default());
//! assert_eq!(a.profile, b.profile);
//! assert_eq!(a.events, 2);
//! ```

use crate::codec::Json;
use crate::config::Thresholds;
use crate::consent::Choices;
use crate::engine::{Engine, Input, Kind, Settings, StageChange};
use crate::json_value::{parse, to_text, Value};
use crate::message::PageInfo;
use crate::profile::Profile;
use crate::time::Millis;

/// Deepest nesting read in a stored message (properties may nest 16 deep inside it).
const MAX_MESSAGE_DEPTH: usize = 20;

/// Randomness for [`Engine::apply`]: fixed, because the messages it makes are discarded.
const SEED: &str = "00000000000000000000000000000000";

/// Where a message sorts in a person's history: by event time, then by `messageId`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Event time, ms since the epoch.
    pub at: Millis,
    /// The message's `messageId`.
    pub message_id: String,
}

/// One stored message, as the server keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored<'a> {
    /// `messageId`, unique per site.
    pub message_id: &'a str,
    /// `track`, `page`, `screen`, `identify`, `group` or `alias`.
    pub kind: &'a str,
    /// Event name for `track`.
    pub name: Option<&'a str>,
    /// `userId`, for `identify`.
    pub user_id: Option<&'a str>,
    /// Event time (clock-skew corrected), ms since the epoch.
    pub at: Millis,
    /// The whole message as JSON text (`properties`, `traits` and `context.consent` are
    /// read from it).
    pub body: &'a str,
}

impl Stored<'_> {
    /// Where this message sorts.
    pub fn key(&self) -> Key {
        Key { at: self.at, message_id: self.message_id.to_string() }
    }

    fn sorts_after(&self, last: Option<&Key>) -> bool {
        match last {
            None => true,
            Some(k) => (self.at, self.message_id) > (k.at, k.message_id.as_str()),
        }
    }
}

/// Names of the events that Nudge derives from others. They are outputs of a fold, not
/// evidence, so folding skips them (otherwise a fold would feed on its own results).
pub const DERIVED_EVENTS: [&str; 1] = ["Stage Changed"];

/// A person's profile being folded, message by message, in [`Key`] order.
pub struct Folder {
    engine: Engine,
    last: Option<Key>,
    first_at: Millis,
    events: u64,
}

/// The result of folding a whole history.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// The profile.
    pub profile: Profile,
    /// The last message folded (none when there were no messages).
    pub last: Option<Key>,
    /// Time of the first message (0 when none).
    pub first_at: Millis,
    /// How many distinct messages were folded.
    pub events: u64,
}

impl Folder {
    /// An empty profile, for a person whose history starts now.
    pub fn new(thresholds: &Thresholds) -> Folder {
        let settings = Settings { thresholds: thresholds.clone(), ..Settings::default() };
        Folder { engine: Engine::new(settings, SEED), last: None, first_at: 0, events: 0 }
    }

    /// Continues from a profile that folded `events` messages, the first at `first_at` and
    /// the last with key `last`.
    pub fn resume(profile: Profile, last: Key, first_at: Millis, events: u64, thresholds: &Thresholds) -> Folder {
        let mut f = Folder::new(thresholds);
        f.engine.profile = profile;
        f.last = Some(last);
        f.first_at = first_at;
        f.events = events;
        f
    }

    /// Whether a message with this key can be folded next (it sorts after the last one).
    pub fn accepts(&self, at: Millis, message_id: &str) -> bool {
        Stored { message_id, kind: "", name: None, user_id: None, at, body: "" }.sorts_after(self.last.as_ref())
    }

    /// Folds one message. Returns false, changing nothing, when it does not sort after the
    /// last message folded (it is a repeat, or the history must be folded again).
    pub fn fold(&mut self, m: &Stored<'_>) -> bool {
        if !m.sorts_after(self.last.as_ref()) {
            return false;
        }
        if self.last.is_none() {
            self.first_at = m.at;
        }
        self.last = Some(m.key());
        self.events += 1;
        let body = match parse(m.body, MAX_MESSAGE_DEPTH) {
            Ok(v @ Value::Obj(_)) => v,
            _ => return true,
        };
        if let Some(prefs) =
            body.get("context").and_then(|c| c.get("consent")).and_then(|c| c.get("categoryPreferences"))
        {
            if let Some(choices) = Choices::read(prefs) {
                self.engine.profile.consent.merge(choices);
            }
        }
        let (kind, name, field) = match (m.kind, m.name) {
            ("track", Some(name)) if !DERIVED_EVENTS.contains(&name) => (Kind::Track, name, "properties"),
            ("identify", _) => (Kind::Identify, m.user_id.unwrap_or("anonymous"), "traits"),
            _ => return true,
        };
        let props = match body.get(field) {
            Some(v @ Value::Obj(_)) => Some(to_text(v)),
            _ => None,
        };
        let input = Input {
            kind,
            name: Some(name.to_string()),
            props,
            options: None,
            now: m.at,
            seed: SEED.to_string(),
            page: PageInfo::default(),
        };
        // A message the browser would refuse (a bad name or properties) adds nothing here
        // either; `apply` changes nothing when it fails.
        let _ = self.engine.apply(&input);
        self.engine.outbox.clear();
        true
    }

    /// The profile so far.
    pub fn profile(&self) -> &Profile {
        &self.engine.profile
    }

    /// The key of the last message folded.
    pub fn last(&self) -> Option<&Key> {
        self.last.as_ref()
    }

    /// The profile and what was folded into it.
    pub fn finish(self) -> Folded {
        Folded { profile: self.engine.profile, last: self.last, first_at: self.first_at, events: self.events }
    }
}

/// Folds a person's whole history: each `messageId` once, in [`Key`] order. The result
/// depends only on the set of messages, not on their order or repeats.
pub fn fold_all(messages: &[Stored<'_>], thresholds: &Thresholds) -> Folded {
    let mut sorted: Vec<&Stored<'_>> = messages.iter().collect();
    // One message per id (the earliest key, should a client reuse an id), then key order.
    sorted.sort_unstable_by(|a, b| a.message_id.cmp(b.message_id).then(a.at.cmp(&b.at)));
    sorted.dedup_by(|later, first| later.message_id == first.message_id);
    sorted.sort_unstable_by(|a, b| (a.at, a.message_id).cmp(&(b.at, b.message_id)));
    let mut f = Folder::new(thresholds);
    for m in sorted {
        f.fold(m);
    }
    f.finish()
}

/// The categories whose stage differs between `before` (as of `before_at`; `None` for a
/// new person) and `after` (as of `after_at`): the `Stage Changed` events a fold found.
/// Categories that `after` no longer keeps are not reported.
pub fn stage_changes(
    before: Option<(&Profile, Millis)>,
    after: (&Profile, Millis),
    thresholds: &Thresholds,
) -> Vec<StageChange> {
    let (profile, now) = after;
    let mut changes = Vec::new();
    for (category, evidence) in profile.categories.iter() {
        let to = evidence.stage(now, thresholds);
        let from = before.and_then(|(p, at)| p.categories.get(category).map(|e| e.stage(at, thresholds)));
        if from != Some(to) {
            changes.push(StageChange { category: category.clone(), from, to });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::Stage;
    use crate::time::MINUTE;
    use proptest::prelude::*;

    /// Owned messages, so tests can shuffle them.
    #[derive(Debug, Clone)]
    struct Msg {
        id: String,
        kind: &'static str,
        name: Option<&'static str>,
        user: Option<&'static str>,
        at: Millis,
        body: String,
    }

    impl Msg {
        fn stored(&self) -> Stored<'_> {
            Stored {
                message_id: &self.id,
                kind: self.kind,
                name: self.name,
                user_id: self.user,
                at: self.at,
                body: &self.body,
            }
        }
    }

    fn track(id: &str, name: &'static str, at: Millis, props: &str) -> Msg {
        let body = format!(
            r#"{{"type":"track","event":"{name}","properties":{props},"context":{{"consent":{{"categoryPreferences":{{"analytics":true,"personalization":true,"marketing":{}}}}}}}}}"#,
            at.is_multiple_of(2)
        );
        Msg { id: id.into(), kind: "track", name: Some(name), user: None, at, body }
    }

    fn all(msgs: &[Msg]) -> Vec<Stored<'_>> {
        msgs.iter().map(Msg::stored).collect()
    }

    fn view_json(f: &Folded) -> String {
        let th = Thresholds::default();
        let consent = crate::consent::Policy::default().effective(&f.profile.consent);
        f.profile.view(1_000 * MINUTE, &th, consent)
    }

    /// A random history: views, cart adds and removes, checkouts, orders and identifies
    /// over a few categories, at times that often collide.
    fn history() -> impl Strategy<Value = Vec<Msg>> {
        let event = (0u8..7, 0u8..3, 0u64..200, 1u64..4);
        prop::collection::vec(event, 1..40).prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (what, cat, minute, qty))| {
                    let cat = ["TVs", "Phones", "Audio"][cat as usize];
                    let id = format!("m{i:03}");
                    let at = minute * MINUTE;
                    let product = format!(
                        r#"{{"product_id":"{cat}-{}","category":"{cat}","brand":"B{qty}","price":{}.5,"quantity":{qty}}}"#,
                        minute % 3,
                        qty * 100
                    );
                    match what {
                        0 | 1 => track(&id, "Product Viewed", at, &product),
                        2 => track(&id, "Product Added", at, &product),
                        3 => track(&id, "Product Removed", at, &product),
                        4 => track(&id, "Checkout Started", at, &format!(r#"{{"products":[{product}]}}"#)),
                        5 => track(&id, "Order Completed", at, &format!(r#"{{"products":[{product}]}}"#)),
                        _ => Msg {
                            id,
                            kind: "identify",
                            name: None,
                            user: Some("u1"),
                            at,
                            body: format!(r#"{{"type":"identify","traits":{{"n":{minute}}}}}"#),
                        },
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn shuffled_and_repeated_messages_give_the_same_profile(
            msgs in history(),
            seed in any::<u64>(),
            repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let once = fold_all(&all(&msgs), &Thresholds::default());
            let mut noisy = msgs.clone();
            noisy.extend(repeats.iter().map(|i| msgs[i.index(msgs.len())].clone()));
            // A deterministic shuffle from the seed.
            let mut s = seed | 1;
            for i in (1..noisy.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                noisy.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let shuffled = fold_all(&all(&noisy), &Thresholds::default());
            prop_assert_eq!(&shuffled, &once);
            prop_assert_eq!(view_json(&shuffled), view_json(&once));
            prop_assert_eq!(once.events, msgs.len() as u64);
        }

        #[test]
        fn folding_later_messages_onto_a_stored_profile_equals_folding_everything(
            msgs in history(),
            split in any::<prop::sample::Index>(),
        ) {
            let th = Thresholds::default();
            let mut sorted = msgs.clone();
            sorted.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
            let cut = split.index(sorted.len() + 1);
            let head = fold_all(&all(&sorted[..cut]), &th);
            let mut f = match head.last.clone() {
                // Through the stored form, as the server keeps it.
                Some(last) => {
                    let (p, _) = Profile::decode(&head.profile.encode(), String::new());
                    Folder::resume(p, last, head.first_at, head.events, &th)
                }
                None => Folder::new(&th),
            };
            for m in &sorted[cut..] {
                prop_assert!(f.fold(&m.stored()));
            }
            prop_assert_eq!(f.finish(), fold_all(&all(&msgs), &th));
        }
    }

    #[test]
    fn two_browsers_merge_into_one_journey() {
        let th = Thresholds::default();
        let tv = r#"{"product_id":"tv-1","category":"TVs","price":899}"#;
        let phone = r#"{"product_id":"ph-1","category":"Phones","price":299}"#;
        let laptop = [track("a1", "Product Viewed", MINUTE, tv), track("a2", "Product Added", 2 * MINUTE, tv)];
        let mobile = [track("b1", "Product Viewed", 3 * MINUTE, phone)];
        let merged: Vec<Msg> = laptop.iter().chain(&mobile).cloned().collect();
        let f = fold_all(&all(&merged), &th);
        let stages = f.profile.stages(4 * MINUTE, &th);
        assert_eq!(stages, [("Phones", Stage::Awareness), ("TVs", Stage::Decision)]);
        assert_eq!(f.profile.cart.lines.len(), 1);
        assert_eq!(f.profile.affinities.categories.m.len(), 2);
        assert_eq!((f.first_at, f.events), (MINUTE, 3));
    }

    #[test]
    fn an_earlier_or_repeated_message_is_refused_by_a_resumed_fold() {
        let th = Thresholds::default();
        let tv = r#"{"category":"TVs"}"#;
        let mut f = Folder::new(&th);
        let (a, b) = (track("b", "Product Viewed", 10, tv), track("a", "Product Viewed", 10, tv));
        assert!(f.fold(&a.stored()));
        assert!(!f.fold(&a.stored()));
        assert!(!f.fold(&b.stored()), "same time, smaller id: sorts before");
        assert!(f.accepts(10, "c") && !f.accepts(9, "z"));
    }

    #[test]
    fn derived_events_and_unreadable_bodies_are_not_evidence() {
        let th = Thresholds::default();
        let sc = track("s", "Stage Changed", 5, r#"{"category":"TVs","from":null,"to":"decision"}"#);
        let broken = Msg { body: "{not json".into(), ..track("x", "Product Added", 6, "{}") };
        let f = fold_all(&all(&[sc, broken]), &th);
        assert!(f.profile.categories.is_empty());
        assert_eq!(f.events, 2);
    }

    #[test]
    fn stage_changes_compare_two_points_in_time() {
        let th = Thresholds::default();
        let tv = r#"{"product_id":"tv-1","category":"TVs"}"#;
        let before = fold_all(&all(&[track("a", "Product Viewed", MINUTE, tv)]), &th);
        let after = fold_all(
            &all(&[track("a", "Product Viewed", MINUTE, tv), track("b", "Product Added", 2 * MINUTE, tv)]),
            &th,
        );
        let changes = stage_changes(Some((&before.profile, MINUTE)), (&after.profile, 2 * MINUTE), &th);
        assert_eq!(
            changes,
            [StageChange { category: "TVs".into(), from: Some(Stage::Awareness), to: Stage::Decision }]
        );
        assert!(stage_changes(Some((&after.profile, 2 * MINUTE)), (&after.profile, 2 * MINUTE), &th).is_empty());
        let new = stage_changes(None, (&before.profile, MINUTE), &th);
        assert_eq!(new[0].from, None);
    }
}
