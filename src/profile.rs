//! The shopper's profile: identity, consent, session, journey evidence per category,
//! affinities and cart. This is what the browser stores and what tabs share; it is
//! versioned (older layouts migrate, unreadable ones are replaced) and bounded in size.

use crate::affinity::{Affinities, Scores};
use crate::caps::Ledger;
use crate::cart::Cart;
use crate::codec::{Json, MAX_STATE_DEPTH};
use crate::config::Thresholds;
use crate::consent::{Choices, Effective};
use crate::funnel::{Evidence, Stage};
use crate::json::{push_field, push_key, push_num, push_str, push_uint};
use crate::json_value::{get, parse, Value};
use crate::keyed::Keyed;
use crate::session::Session;
use crate::time::{to_iso, Millis};

/// The layout version written by this code.
pub const VERSION: u32 = 2;
/// Most categories kept; the weakest is forgotten first.
pub const MAX_CATEGORIES: usize = 24;
/// Most bytes of traits kept.
pub const MAX_TRAITS_BYTES: usize = 2048;
/// Most tabs remembered in the tab-sync ledger.
pub const MAX_TABS: usize = 8;
/// Most recently viewed products remembered (for recommendations).
pub const MAX_SEEN: usize = 20;
/// Most bought products remembered (never recommended again).
pub const MAX_BOUGHT: usize = 50;
/// Longest product id remembered.
const MAX_PRODUCT_ID: usize = 100;
/// Longest tab id accepted from another tab (the SDK's own are 32 characters).
const MAX_TAB_ID: usize = 64;

/// The last input applied from one tab (see `web::tabs`): lets the tab that owns the
/// profile apply each forwarded input exactly once.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// Sequence number of the last input applied from the tab.
    pub seq: u64,
    /// When it was applied.
    pub at: Millis,
}
crate::json_struct!(Ack { seq: "seq", at: "at" });

/// Everything the SDK knows about one shopper.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Layout version ([`VERSION`]).
    pub v: u32,
    /// Anonymous id (UUID v4).
    pub anonymous_id: String,
    /// User id from `identify`.
    pub user_id: Option<String>,
    /// `userHash` given with `identify`, for reading back the merged profile later.
    pub user_hash: Option<String>,
    /// Traits from `identify`, merged, as JSON object text.
    pub traits: Option<String>,
    /// Consent choices made by the shopper.
    pub consent: Choices,
    /// The current session.
    pub session: Session,
    /// Journey evidence per category.
    pub categories: Keyed<Evidence>,
    /// Category, brand and price-band affinities.
    pub affinities: Affinities,
    /// The cart.
    pub cart: Cart,
    /// Tab-sync ledger: tab id to last applied input.
    pub acks: Keyed<Ack>,
    /// Popup ledger: shows, dismissals and conversions per campaign, the open popup, the
    /// leaving intents reported this session. Kept here so that every tab honours them.
    pub popups: Ledger,
    /// Recently viewed products: id to the latest view (at most [`MAX_SEEN`]).
    pub seen: Keyed<Millis>,
    /// Bought products: id to the latest order (at most [`MAX_BOUGHT`]).
    pub bought: Keyed<Millis>,
}
crate::json_struct!(Profile (Profile::new(String::new())) {
    v: "v",
    anonymous_id: "anonymous_id",
    user_id: "user_id",
    user_hash: "user_hash",
    traits: "traits",
    consent: "consent",
    session: "session",
    categories: "categories",
    affinities: "affinities",
    cart: "cart",
    acks: "acks",
    popups: "popups",
    seen: "seen",
    bought: "bought"
});

/// The index of the entry with the smallest time (the first on a tie); 0 when empty.
pub fn oldest(list: &Keyed<Millis>) -> usize {
    let mut at = (0, Millis::MAX);
    for (i, (_, t)) in list.iter().enumerate() {
        if *t < at.1 {
            at = (i, *t);
        }
    }
    at.0
}

/// A profile with nothing in it: what recommendations read instead of the shopper's
/// without personalization consent (a new visitor's view). A static, so no profile is made
/// for it.
pub static BLANK: Profile = Profile {
    v: VERSION,
    anonymous_id: String::new(),
    user_id: None,
    user_hash: None,
    traits: None,
    consent: Choices { analytics: None, personalization: None, marketing: None },
    session: Session { id: 0, last: 0, campaign: None, count: 0 },
    categories: Keyed::new(),
    affinities: Affinities {
        categories: Scores { m: Keyed::new() },
        brands: Scores { m: Keyed::new() },
        price_bands: Scores { m: Keyed::new() },
    },
    cart: Cart { lines: Vec::new(), currency: None, updated: 0, checkout: 0 },
    acks: Keyed::new(),
    popups: Ledger { seen: Keyed::new() },
    seen: Keyed::new(),
    bought: Keyed::new(),
};

/// What happened when stored text was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Read as it was.
    Current,
    /// Read from an older layout and migrated.
    Migrated,
    /// Unreadable (corrupt, or from a newer SDK): replaced by a fresh profile.
    Replaced,
}

impl Profile {
    /// A fresh profile with the given anonymous id.
    pub fn new(anonymous_id: String) -> Profile {
        Profile {
            v: VERSION,
            anonymous_id,
            user_id: None,
            user_hash: None,
            traits: None,
            consent: <Choices as Default>::default(),
            session: <Session as Default>::default(),
            categories: Keyed::new(),
            affinities: <Affinities as Default>::default(),
            cart: <Cart as Default>::default(),
            acks: Keyed::new(),
            popups: Ledger::default(),
            seen: Keyed::new(),
            bought: Keyed::new(),
        }
    }

    /// The stored form. The shell stores it through [`crate::storage_budget::fit`], which
    /// keeps it under 16 KB. Never inlined: the writer is large, and every caller shares it.
    #[inline(never)]
    pub fn encode(&self) -> String {
        self.to_json()
    }

    /// Reads a stored profile, migrating older layouts. Unreadable text gives a fresh
    /// profile with `fallback_id` and [`Loaded::Replaced`], so the caller can report it.
    pub fn decode(text: &str, fallback_id: String) -> (Profile, Loaded) {
        match Self::try_decode(text) {
            Some((p, migrated)) => (p, if migrated { Loaded::Migrated } else { Loaded::Current }),
            None => (Profile::new(fallback_id), Loaded::Replaced),
        }
    }

    fn try_decode(text: &str) -> Option<(Profile, bool)> {
        let Ok(Value::Obj(mut obj)) = parse(text, MAX_STATE_DEPTH) else {
            return None;
        };
        let version = get(&obj, "v").and_then(Value::as_u64)?;
        if version == 0 || version > u64::from(VERSION) {
            return None;
        }
        // Version 1 predates tab sync: it had no ledger of forwarded inputs.
        if version < 2 {
            obj.push(("acks".into(), Value::Obj(Vec::new())));
        }
        // Profiles written before recommendations have no product lists (the layout is
        // otherwise the same, so older SDKs in other tabs still read this one).
        for key in ["seen", "bought"] {
            if get(&obj, key).is_none() {
                obj.push((key.into(), Value::Obj(Vec::new())));
            }
        }
        obj.push(("v".into(), Value::UInt(u64::from(VERSION))));
        let mut p = Profile::read(&Value::Obj(obj))?;
        p.v = VERSION;
        if p.anonymous_id.is_empty() {
            return None;
        }
        Some((p, version < u64::from(VERSION)))
    }

    /// Evidence for a category, created when first seen; forgets the weakest category when
    /// over [`MAX_CATEGORIES`].
    pub fn category(&mut self, name: &str, now: Millis, th: &Thresholds) -> &mut Evidence {
        if !self.categories.contains_key(name) && self.categories.len() >= MAX_CATEGORIES {
            // The first of the weakest (loops rather than iterator adapters: smaller Wasm).
            let mut weakest: Option<(usize, f64)> = None;
            for (i, (_, e)) in self.categories.iter().enumerate() {
                let w = e.weight(now, th);
                if weakest.is_none_or(|(_, low)| w.total_cmp(&low).is_lt()) {
                    weakest = Some((i, w));
                }
            }
            if let Some((i, _)) = weakest {
                self.categories.remove_at(i);
            }
        }
        self.categories.entry(name)
    }

    /// The stage of each category as of `now`.
    pub fn stages(&self, now: Millis, th: &Thresholds) -> Vec<(&str, Stage)> {
        self.categories.iter().map(|(k, e)| (k.as_str(), e.stage(now, th))).collect()
    }

    /// The overall stage: the stage of the strongest category (highest stage, then most
    /// evidence).
    pub fn overall(&self, now: Millis, th: &Thresholds) -> Option<Stage> {
        let mut best: Option<(Stage, f64)> = None;
        for e in self.categories.values() {
            let x = (e.stage(now, th), e.weight(now, th));
            if best.is_none_or(|b| x.0.cmp(&b.0).then(x.1.total_cmp(&b.1)).is_ge()) {
                best = Some(x);
            }
        }
        best.map(|(s, _)| s)
    }

    /// Remembers a product viewed (`bought` false) or bought at `at`; past the bound the
    /// oldest is forgotten.
    pub fn remember_product(&mut self, id: &str, at: Millis, bought: bool) {
        let (list, max) = if bought { (&mut self.bought, MAX_BOUGHT) } else { (&mut self.seen, MAX_SEEN) };
        if id.is_empty() || id.len() > MAX_PRODUCT_ID {
            return;
        }
        let t = list.entry(id);
        *t = (*t).max(at);
        if list.len() > max {
            list.remove_at(oldest(list));
        }
    }

    /// Forgets what was learnt about the shopper's journey, keeping identity and consent.
    pub fn clear_journey(&mut self) {
        self.seen.clear();
        self.bought.clear();
        self.categories.clear();
        self.affinities = <Affinities as Default>::default();
        self.cart = <Cart as Default>::default();
    }

    /// True when input `seq` from `tab` is one to apply: not applied yet, from a tab id
    /// this SDK could have made (see [`Profile::ack`]).
    pub fn is_new(&self, tab: &str, seq: u64) -> bool {
        tab.len() <= MAX_TAB_ID && self.acks.get(tab).is_none_or(|a| a.seq < seq)
    }

    /// Records a forwarded input from `tab`; false when it was already applied, or when
    /// the tab id is longer than any this SDK makes (32 hex digits): such a message did not
    /// come from a Nudge tab, and its id would only take room in the stored profile.
    pub fn ack(&mut self, tab: &str, seq: u64, now: Millis) -> bool {
        if !self.is_new(tab, seq) {
            return false;
        }
        self.acks.insert(tab.to_string(), Ack { seq, at: now });
        while self.acks.len() > MAX_TABS {
            let mut oldest: Option<(usize, Millis)> = None;
            for (i, (_, a)) in self.acks.iter().enumerate() {
                if oldest.is_none_or(|(_, at)| a.at < at) {
                    oldest = Some((i, a.at));
                }
            }
            match oldest {
                Some((i, _)) => self.acks.remove_at(i),
                None => break,
            }
        }
        true
    }

    /// The JSON that `profile()` returns to the page.
    pub fn view(&self, now: Millis, th: &Thresholds, consent: Effective) -> String {
        let mut s = String::with_capacity(1024);
        s.push('{');
        push_field(&mut s, "anonymousId", &self.anonymous_id);
        push_key(&mut s, "userId");
        match &self.user_id {
            Some(u) => push_str(&mut s, u),
            None => s.push_str("null"),
        }
        push_key(&mut s, "traits");
        s.push_str(self.traits.as_deref().unwrap_or("{}"));
        push_key(&mut s, "sessionId");
        push_uint(&mut s, self.session.id);
        push_key(&mut s, "stage");
        match self.overall(now, th) {
            Some(st) => push_str(&mut s, st.name()),
            None => s.push_str("null"),
        }
        push_key(&mut s, "stages");
        s.push('{');
        for (cat, e) in self.categories.iter() {
            push_field(&mut s, cat, e.stage(now, th).name());
        }
        s.push('}');
        push_key(&mut s, "affinities");
        s.push('{');
        let hl = th.affinity_half_life();
        for &(key, scores) in &[
            ("categories", &self.affinities.categories),
            ("brands", &self.affinities.brands),
            ("priceBands", &self.affinities.price_bands),
        ] {
            push_key(&mut s, key);
            s.push('{');
            for (k, v) in scores.ranked(now, hl) {
                push_key(&mut s, k);
                push_num(&mut s, v);
            }
            s.push('}');
        }
        s.push('}');
        push_key(&mut s, "cart");
        self.write_cart(&mut s);
        push_key(&mut s, "consent");
        consent_json(&mut s, consent);
        s.push('}');
        s
    }

    fn write_cart(&self, s: &mut String) {
        let c = &self.cart;
        s.push('{');
        push_key(s, "items");
        s.push('[');
        for (i, l) in c.lines.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            push_field(s, "product_id", &l.product_id);
            for &(k, v) in &[("name", &l.name), ("category", &l.category), ("brand", &l.brand)] {
                if let Some(v) = v {
                    push_field(s, k, v);
                }
            }
            push_key(s, "price");
            push_num(s, l.price);
            push_key(s, "quantity");
            push_num(s, l.quantity);
            s.push('}');
        }
        s.push(']');
        push_key(s, "value");
        push_num(s, c.value());
        push_key(s, "currency");
        match &c.currency {
            Some(cur) => push_str(s, cur),
            None => s.push_str("null"),
        }
        push_key(s, "updatedAt");
        if c.updated > 0 {
            push_str(s, &to_iso(c.updated));
        } else {
            s.push_str("null");
        }
        push_key(s, "checkoutStarted");
        s.push_str(if c.checkout > 0 { "true" } else { "false" });
        s.push('}');
    }
}

/// Writes consent in force as `{"analytics":true,...}`.
pub fn consent_json(s: &mut String, c: Effective) {
    s.push('{');
    for &(k, v) in &[("analytics", c.analytics), ("personalization", c.personalization), ("marketing", c.marketing)] {
        push_key(s, k);
        s.push_str(if v { "true" } else { "false" });
    }
    s.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_round_trips_through_its_stored_form() {
        let mut p = Profile::new("anon".into());
        p.user_id = Some("u1".into());
        p.category("TVs", 5, &<Thresholds as Default>::default());
        let (back, how) = Profile::decode(&p.encode(), "x".into());
        assert_eq!(how, Loaded::Current);
        assert_eq!(back, p);
    }

    #[test]
    fn a_version_one_profile_migrates() {
        let mut text = Profile::new("anon".into()).encode();
        text = text.replace("\"v\":2", "\"v\":1").replace(",\"acks\":{}", "");
        assert!(!text.contains("acks"));
        let (p, how) = Profile::decode(&text, "x".into());
        assert_eq!(how, Loaded::Migrated);
        assert_eq!(p.anonymous_id, "anon");
        assert_eq!(p.v, VERSION);
    }

    #[test]
    fn corrupt_or_future_profiles_are_replaced() {
        for text in ["", "{", "null", "{\"v\":99,\"anonymous_id\":\"a\"}", "{\"v\":2}"] {
            let (p, how) = Profile::decode(text, "fresh".into());
            assert_eq!(how, Loaded::Replaced, "{text}");
            assert_eq!(p.anonymous_id, "fresh");
        }
    }

    #[test]
    fn inputs_from_a_tab_are_acknowledged_once() {
        let mut p = Profile::new("a".into());
        assert!(p.ack("tab1", 1, 0));
        assert!(!p.ack("tab1", 1, 0));
        assert!(p.ack("tab1", 2, 0));
        for i in 0..20 {
            p.ack(&i.to_string(), 1, i + 1);
        }
        assert_eq!(p.acks.len(), MAX_TABS);
        let long = "t".repeat(MAX_TAB_ID + 1);
        assert!(!p.ack(&long, 1, 99), "an id no Nudge tab makes is refused");
        assert!(p.acks.get(&long).is_none());
    }
}
