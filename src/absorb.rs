//! Absorbing the server's merged profile into this browser's, so that what a shopper did
//! on another device shows here too (a phone's TV browsing puts the laptop in `decision`
//! for TVs).
//!
//! The server's profile already holds this browser's own events, so absorbing must not
//! count them twice: category evidence is merged as a union of event times (the same
//! event has the same time on both sides), affinities take the larger score of the two,
//! orders the larger count, and the cart is whichever changed last. Absorbing the same
//! profile again changes nothing. Pure: the caller passes the clock.

use crate::affinity::Scores;
use crate::config::Thresholds;
use crate::funnel::{Signal, MAX_VIEWS};
use crate::profile::Profile;
use crate::time::Millis;

/// Merges `remote` (the server's profile of the same user) into `local`.
///
/// ```
/// use nudge::config::Thresholds;
/// use nudge::profile::Profile;
/// let th = Thresholds::default();
/// let mut phone = Profile::new("phone".into());
/// phone.category("TVs", 1_000, &th).views = vec![1_000, 2_000, 3_000];
/// let mut laptop = Profile::new("laptop".into());
/// nudge::absorb::absorb(&mut laptop, &phone, 4_000, &th);
/// assert_eq!(laptop.categories.get("TVs").unwrap().views, vec![1_000, 2_000, 3_000]);
/// ```
pub fn absorb(local: &mut Profile, remote: &Profile, now: Millis, th: &Thresholds) {
    for (name, theirs) in remote.categories.iter() {
        let ours = local.category(name, now, th);
        for &t in theirs.views.iter().rev().take(MAX_VIEWS) {
            if !crate::time::has(&ours.views, t) {
                ours.observe(Signal::View, t, th);
            }
        }
        for &t in &theirs.intents {
            if !crate::time::has(&ours.intents, t) {
                ours.observe(Signal::Intent, t, th);
            }
        }
        ours.orders = ours.orders.max(theirs.orders);
        ours.last_order = ours.last_order.max(theirs.last_order);
        ours.last_seen = ours.last_seen.max(theirs.last_seen);
    }
    let hl = th.affinity_half_life();
    let (l, r) = (&mut local.affinities, &remote.affinities);
    for (ours, theirs) in
        [(&mut l.categories, &r.categories), (&mut l.brands, &r.brands), (&mut l.price_bands, &r.price_bands)]
    {
        take_larger(ours, theirs, now, hl);
    }
    for (id, at) in remote.seen.iter() {
        local.remember_product(id, *at, false);
    }
    for (id, at) in remote.bought.iter() {
        local.remember_product(id, *at, true);
    }
    if remote.cart.updated > local.cart.updated {
        local.cart = remote.cart.clone();
    }
    if local.traits.is_none() {
        local.traits.clone_from(&remote.traits);
    }
}

/// Each key's score becomes the larger of the two, as of `now`.
fn take_larger(ours: &mut Scores, theirs: &Scores, now: Millis, half_life: Millis) {
    for (key, d) in theirs.m.iter() {
        let mine = ours.m.get(key).map_or(0.0, |x| x.at(now, half_life));
        let extra = d.at(now, half_life) - mine;
        if extra > 0.0 {
            ours.add(key, extra, now, half_life);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::Stage;

    const DAY: Millis = 86_400_000;
    const T0: Millis = 1_764_000_000_000;

    fn viewed(p: &mut Profile, cat: &str, times: &[Millis], th: &Thresholds) {
        for &t in times {
            p.category(cat, t, th).observe(Signal::View, t, th);
            p.affinities.categories.add(cat, 1.0, t, th.affinity_half_life());
        }
    }

    #[test]
    fn evidence_from_another_device_moves_the_stage_here() {
        let th = Thresholds::default();
        let mut phone = Profile::new("phone".into());
        viewed(&mut phone, "TVs", &[T0, T0 + 60_000, T0 + 120_000, T0 + 180_000, T0 + 240_000], &th);
        let mut laptop = Profile::new("laptop".into());
        viewed(&mut laptop, "Phones", &[T0 + DAY], &th);
        let now = T0 + DAY + 1;
        assert_eq!(phone.categories.get("TVs").unwrap().stage(now, &th), Stage::Decision);

        absorb(&mut laptop, &phone, now, &th);
        assert_eq!(laptop.categories.get("TVs").unwrap().stage(now, &th), Stage::Decision);
        assert_eq!(laptop.categories.get("Phones").unwrap().stage(now, &th), Stage::Awareness);
        assert!(laptop.affinities.categories.m.get("TVs").is_some());
    }

    #[test]
    fn absorbing_what_is_already_here_counts_nothing_twice() {
        let th = Thresholds::default();
        let mut laptop = Profile::new("laptop".into());
        viewed(&mut laptop, "TVs", &[T0, T0 + 1_000], &th);
        // The server's profile holds the laptop's own events plus one from the phone.
        let mut server = laptop.clone();
        viewed(&mut server, "TVs", &[T0 + 2_000], &th);
        let now = T0 + 3_000;

        absorb(&mut laptop, &server, now, &th);
        let once = laptop.clone();
        assert_eq!(laptop.categories.get("TVs").unwrap().views, vec![T0, T0 + 1_000, T0 + 2_000]);
        let hl = th.affinity_half_life();
        let score = |p: &Profile| p.affinities.categories.m.get("TVs").unwrap().at(now, hl);
        assert!((score(&laptop) - score(&server)).abs() < 1e-6, "the larger score, not the sum");

        absorb(&mut laptop, &server, now, &th);
        assert_eq!(laptop, once, "absorbing the same profile again changes nothing");
    }

    #[test]
    fn the_cart_that_changed_last_wins() {
        let th = Thresholds::default();
        let mut local = Profile::new("a".into());
        local.cart.updated = T0;
        let mut remote = Profile::new("b".into());
        remote.cart.updated = T0 + 1;
        remote.cart.currency = Some("EUR".into());
        absorb(&mut local, &remote, T0 + 2, &th);
        assert_eq!(local.cart.currency.as_deref(), Some("EUR"));
        remote.cart.currency = Some("USD".into());
        remote.cart.updated = T0 - 5;
        absorb(&mut local, &remote, T0 + 2, &th);
        assert_eq!(local.cart.currency.as_deref(), Some("EUR"), "an older cart does not replace a newer one");
    }
}
