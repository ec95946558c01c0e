//! The popup ledger: how often each campaign was shown, dismissed or converted, the popup
//! open right now, and which leaving intents were already reported this session.
//!
//! It lives in the [`Profile`](crate::profile::Profile), so it is stored and shared by the
//! site's tabs exactly as the profile is: dismissing or converting in one tab reaches the
//! tab that owns the profile, which broadcasts it, and the other tabs stop showing that
//! campaign. The `open` marker keeps to one popup at a time across tabs; it has a time bound
//! ([`OPEN_FOR`]) so that a tab closed with its popup open does not block the others for good.
//!
//! Bounded: at most [`MAX_SEEN`] campaigns are remembered (the one touched longest ago is
//! forgotten first), so the stored profile stays within its budget.

use crate::campaign::Caps;
use crate::codec::{field, Json};
use crate::json_value::Value;
use crate::keyed::Keyed;
use crate::time::{Millis, DAY, MINUTE};

/// Most campaigns remembered.
pub const MAX_SEEN: usize = 32;
/// How long an open popup keeps the others away without news from it.
pub const OPEN_FOR: Millis = 10 * MINUTE;

/// What happened with one campaign for this shopper. Stored as an array of eight numbers
/// (`[ever, session, in_session, day, in_day, dismissed, converted, at]`): the profile's
/// reader for arrays of numbers already exists, so this costs the Wasm almost nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Shows ever (held-out "shows" count too, so holdout is recorded at the same pace).
    pub ever: u64,
    /// The session of the latest show.
    pub session: Millis,
    /// Shows in that session.
    pub in_session: u64,
    /// Start of the current 24-hour window.
    pub day: Millis,
    /// Shows in that window.
    pub in_day: u64,
    /// Last dismissal (0: never).
    pub dismissed: Millis,
    /// Last conversion (0: never).
    pub converted: Millis,
    /// Last time anything was recorded (to forget the stalest first).
    pub at: Millis,
}

impl Json for Seen {
    fn write(&self, out: &mut String) {
        let s = self;
        [s.ever, s.session, s.in_session, s.day, s.in_day, s.dismissed, s.converted, s.at].to_vec().write(out);
    }
    fn read(v: &Value) -> Option<Self> {
        let n = Vec::<u64>::read(v)?;
        let [ever, session, in_session, day, in_day, dismissed, converted, at] = n[..] else { return None };
        Some(Seen { ever, session, in_session, day, in_day, dismissed, converted, at })
    }
}

impl Seen {
    /// True when the caps allow another show at `now` in `session`.
    pub fn allows(&self, caps: &Caps, now: Millis, session: Millis) -> bool {
        let days = |d: f64| (d * DAY as f64) as Millis;
        let paused = |since: Millis, d: f64| since > 0 && d > 0.0 && now < since.saturating_add(days(d));
        !(self.session == session && self.in_session >= u64::from(caps.per_session)
            || caps.per_day.is_some_and(|cap| now < self.day.saturating_add(DAY) && self.in_day >= u64::from(cap))
            || caps.ever.is_some_and(|cap| self.ever >= u64::from(cap))
            || paused(self.dismissed, caps.dismiss_days)
            || paused(self.converted, caps.convert_days))
    }

    /// Counts one show.
    pub fn shown(&mut self, now: Millis, session: Millis) {
        self.ever = self.ever.saturating_add(1);
        if self.session != session {
            self.session = session;
            self.in_session = 0;
        }
        self.in_session = self.in_session.saturating_add(1);
        if now >= self.day.saturating_add(DAY) {
            self.day = now;
            self.in_day = 0;
        }
        self.in_day = self.in_day.saturating_add(1);
        self.at = self.at.max(now);
    }
}

/// The popup that is open (or about to be) in one of the site's tabs.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The campaign.
    pub id: String,
    /// Until when it keeps other popups away.
    pub until: Millis,
}
crate::json_struct!(Open { id: "id", until: "until" });

/// The product last viewed, for browse abandonment.
#[derive(Debug, Clone, PartialEq)]
pub struct Viewed {
    /// Its `product_id`, if given.
    pub product_id: Option<String>,
    /// Its category.
    pub category: String,
    /// The session it was viewed in.
    pub session: Millis,
}
crate::json_struct!(Viewed { product_id: "p", category: "cat", session: "s" });

/// The ledger kept in the profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// Per campaign id.
    pub seen: Keyed<Seen>,
    /// The popup open now, if any.
    pub open: Option<Open>,
    /// The session in which `Cart Abandon Intent` was last queued.
    pub cart_intent: Millis,
    /// The session in which `Browse Abandon Intent` was last queued.
    pub browse_intent: Millis,
    /// The last product viewed with nothing added since (cleared by `Product Added`).
    pub viewed: Option<Viewed>,
}

/// Stored as an object; a profile written before popups existed has none, which reads as
/// an empty ledger (so no layout version change was needed).
impl Json for Ledger {
    fn write(&self, out: &mut String) {
        out.push('{');
        let key = |out: &mut String, k: &str| {
            if !out.ends_with('{') {
                out.push(',');
            }
            crate::json_value::push_str(out, k);
            out.push(':');
        };
        key(out, "seen");
        self.seen.write(out);
        key(out, "open");
        self.open.write(out);
        key(out, "ci");
        self.cart_intent.write(out);
        key(out, "bi");
        self.browse_intent.write(out);
        key(out, "viewed");
        self.viewed.write(out);
        out.push('}');
    }
    fn read(v: &Value) -> Option<Self> {
        if matches!(v, Value::Null) {
            return Some(Ledger::default());
        }
        v.as_obj()?;
        let f = |k| field(v, k);
        Some(Ledger {
            seen: Json::read(f("seen"))?,
            open: Json::read(f("open"))?,
            cart_intent: Json::read(f("ci"))?,
            browse_intent: Json::read(f("bi"))?,
            viewed: Json::read(f("viewed"))?,
        })
    }
}

impl Ledger {
    /// True when another campaign's popup is open now (in this tab or another).
    pub fn busy(&self, now: Millis) -> bool {
        self.open.as_ref().is_some_and(|o| now < o.until)
    }

    /// The record of `id`, made when first needed; forgets the stalest past [`MAX_SEEN`].
    pub fn entry(&mut self, id: &str, now: Millis) -> &mut Seen {
        if !self.seen.contains_key(id) && self.seen.len() >= MAX_SEEN {
            let stalest = self.seen.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                self.seen.remove(&k);
            }
        }
        let e = self.seen.entry(id);
        e.at = e.at.max(now);
        e
    }

    /// Marks `id` as open until [`OPEN_FOR`] from `now`.
    pub fn open(&mut self, id: &str, now: Millis) {
        self.open = Some(Open { id: id.to_string(), until: now.saturating_add(OPEN_FOR) });
    }

    /// Clears the open marker if it is `id`'s.
    pub fn close(&mut self, id: &str) {
        if self.open.as_ref().is_some_and(|o| o.id == id) {
            self.open = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_795_420_800_000;

    #[test]
    fn caps_per_session_day_and_ever() {
        let caps = Caps { per_session: 2, per_day: Some(3), ever: Some(4), ..Caps::default() };
        let mut s = Seen::default();
        assert!(s.allows(&caps, T, 1));
        s.shown(T, 1);
        s.shown(T + 1, 1);
        assert!(!s.allows(&caps, T + 2, 1), "two per session");
        assert!(s.allows(&caps, T + 2, 2), "a new session");
        s.shown(T + 2, 2);
        assert!(!s.allows(&caps, T + 3, 3), "three per day");
        assert!(s.allows(&caps, T + DAY, 3), "the next day");
        s.shown(T + DAY, 3);
        assert!(!s.allows(&caps, T + 5 * DAY, 4), "four ever");
    }

    #[test]
    fn dismissal_and_conversion_pause_for_their_days() {
        let caps = Caps { per_session: 9, dismiss_days: 7.0, convert_days: 30.0, ..Caps::default() };
        let mut s = Seen { dismissed: T, ..Seen::default() };
        assert!(!s.allows(&caps, T + 6 * DAY, 1));
        assert!(s.allows(&caps, T + 7 * DAY, 1));
        s.converted = T + 7 * DAY;
        assert!(!s.allows(&caps, T + 36 * DAY, 1));
        assert!(s.allows(&caps, T + 37 * DAY, 1));
    }

    #[test]
    fn the_ledger_round_trips_is_bounded_and_reads_from_nothing() {
        let mut l = Ledger::default();
        for i in 0..40u64 {
            l.entry(&i.to_string(), T + i).shown(T + i, 1);
        }
        assert_eq!(l.seen.len(), MAX_SEEN);
        assert!(!l.seen.contains_key("0"), "the stalest is forgotten");
        l.open("39", T);
        l.viewed = Some(Viewed { product_id: Some("tv1".into()), category: "TVs".into(), session: 1 });
        assert_eq!(Ledger::from_json(&l.to_json()), Some(l.clone()));
        assert_eq!(Ledger::read(&Value::Null), Some(Ledger::default()));
        assert!(l.busy(T + OPEN_FOR - 1) && !l.busy(T + OPEN_FOR));
        l.close("38");
        assert!(l.open.is_some());
        l.close("39");
        assert!(l.open.is_none());
    }
}
