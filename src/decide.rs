//! Deciding which campaign's popup to show at a moment: the highest-ranked campaign whose
//! trigger fires, whose audience the shopper is in and whose caps allow it. Campaigns are
//! kept ranked ([`crate::campaign`]), so this is one scan that stops at the first match,
//! with no allocation: 50 campaigns take a few microseconds (`examples/campaign_bench.rs`).
//!
//! Holdout is decided last, for the chosen campaign only: a shopper held out of it sees
//! nothing at that moment (no lower-ranked campaign either), so uplift compares like with
//! like. The draw is a stable hash of the person and the campaign, so the same shopper is
//! always in or always out, on every tab and every visit.

use crate::campaign::{Abandon, Audience, Campaign, Trigger};
use crate::caps::Ledger;
use crate::config::Thresholds;
use crate::funnel::Stage;
use crate::profile::Profile;
use crate::time::Millis;

/// What just happened, to match against campaign triggers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Moment<'a> {
    /// The shopper is leaving, leaving behind a cart or a browse (or neither).
    Leaving(Option<Abandon>),
    /// A category entered a stage.
    StageEntered(&'a str, Stage),
    /// A page view with this path.
    Page(&'a str),
    /// Time on the page so far, in seconds.
    TimeOnPage(f64),
    /// Scroll depth so far, in percent.
    ScrollDepth(f64),
}

impl Trigger {
    /// True when this trigger fires at `m`.
    pub fn fires(&self, m: &Moment) -> bool {
        match (self, *m) {
            (Trigger::ExitIntent, Moment::Leaving(_)) => true,
            (Trigger::AbandonIntent(want), Moment::Leaving(Some(kind))) => want.is_none_or(|w| w == kind),
            (Trigger::StageEntered(stage, cat), Moment::StageEntered(c, s)) => {
                *stage == s && cat.as_deref().is_none_or(|want| want == c)
            }
            (Trigger::Page(prefix), Moment::Page(path)) => path.starts_with(prefix.as_str()),
            (Trigger::TimeOnPage(need), Moment::TimeOnPage(had)) => had >= *need,
            (Trigger::ScrollDepth(need), Moment::ScrollDepth(had)) => had >= *need,
            _ => false,
        }
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice<'c> {
    /// Show this campaign's popup.
    Show(&'c Campaign),
    /// This campaign would be shown, but the shopper is in its holdout.
    HeldOut(&'c Campaign),
}

/// The facts about the shopper a decision reads, computed at most once per decision.
struct Facts<'a> {
    p: &'a Profile,
    now: Millis,
    th: &'a Thresholds,
    overall: Option<Option<Stage>>,
    cart: Option<f64>,
}

impl Facts<'_> {
    fn matches(&mut self, a: &Audience) -> bool {
        if a.returning.is_some_and(|r| r != (self.p.session.count > 1))
            || a.identified.is_some_and(|i| i != self.p.user_id.is_some())
        {
            return false;
        }
        if a.cart_min.is_some() || a.cart_max.is_some() {
            let v = *self.cart.get_or_insert_with(|| self.p.cart.value());
            if a.cart_min.is_some_and(|m| v < m) || a.cart_max.is_some_and(|m| v > m) {
                return false;
            }
        }
        let Some((category, set)) = &a.stage else { return true };
        let stage = match category {
            Some(c) => self.p.categories.get(c).map(|e| e.stage(self.now, self.th)),
            None => *self.overall.get_or_insert_with(|| self.p.overall(self.now, self.th)),
        };
        stage.is_some_and(|s| set & (1 << s as u8) != 0)
    }
}

/// The campaign to show (or hold out) at moment `m`, from `ranked` (sorted by rank), for
/// the shopper `p` with their popup `ledger`. The caller has checked consent and that no
/// other popup is open.
pub fn decide<'c>(
    ranked: &'c [Campaign],
    m: &Moment,
    p: &Profile,
    ledger: &Ledger,
    now: Millis,
    th: &Thresholds,
) -> Option<Choice<'c>> {
    let mut facts = Facts { p, now, th, overall: None, cart: None };
    let session = p.session.id;
    let c = ranked.iter().find(|c| {
        c.trigger.fires(m)
            && facts.matches(&c.audience)
            && ledger.seen.get(&c.id).is_none_or(|s| s.allows(&c.caps, now, session))
    })?;
    let person = p.user_id.as_deref().unwrap_or(&p.anonymous_id);
    Some(if c.holdout > 0.0 && draw(person, &c.id) < c.holdout { Choice::HeldOut(c) } else { Choice::Show(c) })
}

/// Where each campaign stands for `p` now, whatever its trigger, in rank order: what a
/// store's inspector shows as "which campaign would show and why". `eligible` (it shows
/// when its trigger fires, unless a higher-ranked one does), `held out`, `not in its
/// audience` or `capped`. The caller checks consent first.
pub fn standings(ranked: &[Campaign], p: &Profile, ledger: &Ledger, now: Millis, th: &Thresholds) -> Vec<&'static str> {
    let mut facts = Facts { p, now, th, overall: None, cart: None };
    let person = p.user_id.as_deref().unwrap_or(&p.anonymous_id);
    let mut out = Vec::new();
    for c in ranked {
        out.push(if !facts.matches(&c.audience) {
            "not in its audience"
        } else if !ledger.seen.get(&c.id).is_none_or(|s| s.allows(&c.caps, now, p.session.id)) {
            "capped"
        } else if c.holdout > 0.0 && draw(person, &c.id) < c.holdout {
            "held out"
        } else {
            "eligible"
        });
    }
    out
}

/// A stable number in [0, 1) for a person and a campaign: FNV-1a over both, then a
/// finalising mix so that ids differing in one character land far apart.
///
/// ```
/// let a = nudge::decide::draw("anon-1", "tv-newsletter");
/// assert_eq!(a, nudge::decide::draw("anon-1", "tv-newsletter"));
/// assert!((0.0..1.0).contains(&a));
/// ```
pub fn draw(person: &str, campaign: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    person.bytes().for_each(&mut eat);
    eat(0xff);
    campaign.bytes().for_each(&mut eat);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::read;
    use crate::funnel::Signal;
    use crate::json_value::parse;

    const T: Millis = 1_795_420_800_000;

    fn campaign(text: &str) -> Campaign {
        read(&parse(text, 12).unwrap()).unwrap()
    }

    #[test]
    fn triggers_fire_on_their_moment_only() {
        let cart = Moment::Leaving(Some(Abandon::Cart));
        assert!(Trigger::ExitIntent.fires(&Moment::Leaving(None)));
        assert!(Trigger::AbandonIntent(None).fires(&cart));
        assert!(!Trigger::AbandonIntent(None).fires(&Moment::Leaving(None)));
        assert!(!Trigger::AbandonIntent(Some(Abandon::Browse)).fires(&cart));
        assert!(Trigger::StageEntered(Stage::Decision, None).fires(&Moment::StageEntered("TVs", Stage::Decision)));
        assert!(!Trigger::StageEntered(Stage::Decision, Some("Phones".into()))
            .fires(&Moment::StageEntered("TVs", Stage::Decision)));
        assert!(Trigger::Page("/products/".into()).fires(&Moment::Page("/products/tv-1")));
        assert!(!Trigger::Page("/products/".into()).fires(&Moment::Page("/cart")));
        assert!(Trigger::TimeOnPage(20.0).fires(&Moment::TimeOnPage(20.0)));
        assert!(!Trigger::ScrollDepth(50.0).fires(&Moment::ScrollDepth(49.0)));
    }

    #[test]
    fn the_audience_reads_stage_cart_visitor_and_identity() {
        let th = Thresholds::default();
        let mut p = Profile::new("anon".into());
        p.session.count = 1;
        let c = campaign(
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{},
            "audience":{"stage":{"category":"TVs","in":["decision"]},"visitor":"new","identified":false}}"#,
        );
        let m = Moment::Leaving(None);
        let l = Ledger::default();
        assert_eq!(decide(std::slice::from_ref(&c), &m, &p, &l, T, &th), None, "no TVs yet");
        p.category("TVs", T, &th).observe(Signal::Intent, T, &th);
        assert_eq!(decide(std::slice::from_ref(&c), &m, &p, &l, T, &th), Some(Choice::Show(&c)));
        p.session.count = 2;
        assert_eq!(decide(std::slice::from_ref(&c), &m, &p, &l, T, &th), None, "returning");
        p.session.count = 1;
        p.user_id = Some("u".into());
        assert_eq!(decide(std::slice::from_ref(&c), &m, &p, &l, T, &th), None, "identified");
    }

    #[test]
    fn standings_say_why_each_campaign_would_or_would_not_show() {
        let th = Thresholds::default();
        let mut p = Profile::new("anon".into());
        let tvs = campaign(
            r#"{"id":"tvs","trigger":{"on":"exit-intent"},"content":{},"audience":{"stage":{"category":"TVs","in":["decision"]}}}"#,
        );
        let all = campaign(r#"{"id":"all","trigger":{"on":"time-on-page","seconds":20},"content":{}}"#);
        assert!(draw("anon", "held") < 0.9, "this shopper falls in a 90% holdout");
        let held = campaign(r#"{"id":"held","trigger":{"on":"exit-intent"},"content":{},"holdout":0.9}"#);
        let ranked = [tvs.clone(), all.clone(), held.clone()];
        let mut ledger = Ledger::default();
        assert_eq!(standings(&ranked, &p, &ledger, T, &th), ["not in its audience", "eligible", "held out"]);
        p.category("TVs", T, &th).observe(Signal::Intent, T, &th);
        ledger.entry(&all.id, T).shown(T, p.session.id);
        let got = standings(&ranked, &p, &ledger, T, &th);
        assert_eq!(got[0], "eligible");
        assert_eq!(got[1], "capped", "once per session by default");
    }

    #[test]
    fn the_draw_is_stable_and_spread() {
        let held = (0..10_000).filter(|i| draw(&format!("anon-{i}"), "c") < 0.1).count();
        assert!((900..=1100).contains(&held), "{held}");
        assert_ne!(draw("a", "bc"), draw("ab", "c"));
    }
}
