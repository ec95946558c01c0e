//! The popup ledger: how often each campaign was shown, dismissed or converted, the popup
//! open right now, and which leaving intents were already reported this session.
//!
//! It lives in the [`Profile`](crate::profile::Profile), so it is stored and shared by the
//! site's tabs exactly as the profile is: dismissing or converting in one tab reaches the
//! tab that owns the profile, which broadcasts it, and the other tabs stop showing that
//! campaign. A campaign's `open` time keeps to one popup at a time across tabs; it has a
//! time bound ([`OPEN_FOR`]) so that a tab closed with its popup open does not block the
//! others for good.
//!
//! Stored as one JSON object from campaign id to an array of numbers (see [`Seen`]): the
//! profile's readers for maps and for arrays of numbers already exist, so the ledger costs
//! the Wasm almost nothing. The leaving intents use two reserved keys (`~cart`, `~browse`,
//! which no campaign id can be). Bounded: at most [`MAX_SEEN`] campaigns are remembered
//! (the one touched longest ago is forgotten first), so the stored profile stays small.

use crate::campaign::{Abandon, Caps};
use crate::codec::Json;
use crate::json_value::Value;
use crate::keyed::Keyed;
use crate::time::{Millis, DAY, MINUTE};

/// Most campaigns remembered.
pub const MAX_SEEN: usize = 32;
/// How long an open popup keeps the others away without news from it.
pub const OPEN_FOR: Millis = 10 * MINUTE;

/// What happened with one campaign for this shopper, stored as
/// `[ever, session, in_session, day, in_day, dismissed, converted, at, open]`.
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
    /// Until when its popup is open (0: not open).
    pub open: Millis,
}

impl Json for Seen {
    fn write(&self, out: &mut String) {
        let s = self;
        [s.ever, s.session, s.in_session, s.day, s.in_day, s.dismissed, s.converted, s.at, s.open].to_vec().write(out);
    }
    fn read(v: &Value) -> Option<Self> {
        let n = Vec::<u64>::read(v)?;
        let [ever, session, in_session, day, in_day, dismissed, converted, at, open] = n[..] else { return None };
        Some(Seen { ever, session, in_session, day, in_day, dismissed, converted, at, open })
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
    }
}

/// The ledger kept in the profile: per campaign id (and the two reserved intent keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// Per campaign id.
    pub seen: Keyed<Seen>,
}

/// A profile written before popups existed has no ledger, which reads as an empty one (so
/// no layout version change was needed).
impl Json for Ledger {
    fn write(&self, out: &mut String) {
        self.seen.write(out);
    }
    fn read(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(Ledger::default()),
            v => Some(Ledger { seen: Keyed::read(v)? }),
        }
    }
}

impl Ledger {
    /// True when a campaign's popup is open now (in this tab or another).
    pub fn busy(&self, now: Millis) -> bool {
        self.seen.values().any(|s| now < s.open)
    }

    /// The record of `id`, made when first needed and marked as touched at `now`; forgets
    /// the stalest past [`MAX_SEEN`].
    pub fn entry(&mut self, id: &str, now: Millis) -> &mut Seen {
        if !self.seen.contains_key(id) && self.seen.len() >= MAX_SEEN {
            let mut stalest: Option<(usize, Millis)> = None;
            for (i, (_, s)) in self.seen.iter().enumerate() {
                if stalest.is_none_or(|(_, at)| s.at < at) {
                    stalest = Some((i, s.at));
                }
            }
            if let Some((i, _)) = stalest {
                self.seen.remove_at(i);
            }
        }
        let e = self.seen.entry(id);
        e.at = e.at.max(now);
        e
    }

    /// Marks `id`'s popup as open until [`OPEN_FOR`] from `now`.
    pub fn open(&mut self, id: &str, now: Millis) {
        self.entry(id, now).open = now.saturating_add(OPEN_FOR);
    }

    /// Marks the open popup as closed. Every open mark goes, not only `id`'s: there is one
    /// popup at a time, and the tab that owns the profile may have marked another campaign
    /// open when it replayed the signal that opened this one (its state can differ a little).
    pub fn close(&mut self) {
        for (_, s) in self.seen.iter_mut() {
            s.open = 0;
        }
    }

    /// Records that the `kind` intent was reported in `session`; false when it already was
    /// (once per session per kind).
    pub fn intent_once(&mut self, kind: Abandon, session: Millis, now: Millis) -> bool {
        let key = match kind {
            Abandon::Cart => "~cart",
            Abandon::Browse => "~browse",
        };
        let e = self.entry(key, now);
        e.at = Millis::MAX; // never the stalest: forgetting it would report the intent again
        let first = e.session != session;
        e.session = session;
        first
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
        assert!(l.intent_once(Abandon::Cart, 7, T));
        assert!(!l.intent_once(Abandon::Cart, 7, T), "once per session");
        for i in 0..40u64 {
            l.entry(&i.to_string(), T + i).shown(T + i, 1);
        }
        assert_eq!(l.seen.len(), MAX_SEEN);
        assert!(!l.seen.contains_key("0"), "the stalest is forgotten");
        assert!(!l.intent_once(Abandon::Cart, 7, T), "the intent record is never forgotten");
        assert!(l.intent_once(Abandon::Browse, 7, T), "each kind on its own");
        l.open("39", T);
        assert_eq!(Ledger::from_json(&l.to_json()), Some(l.clone()));
        assert_eq!(Ledger::read(&Value::Null), Some(Ledger::default()));
        assert!(l.busy(T + OPEN_FOR - 1) && !l.busy(T + OPEN_FOR));
        l.close();
        assert!(!l.busy(T));
    }
}
