//! The stored profile's size budget: under 16 KB, whatever the shopper did.
//!
//! Each part of the profile has its own bound (24 categories, 24 keys per affinity kind,
//! 30 cart lines, 2 KB of traits, strings clipped to 100 characters), and an ordinary
//! shopper stays far below 16 KB: 10,000 varied events store about 13 KB. Only a profile
//! that fills every bound at once with long names can pass it, and then [`fit`] forgets
//! what tells least about the shopper, oldest first, until the stored form fits:
//!
//! 0. recently viewed products, down to 5 (they only nudge recommendations);
//! 1. affinity keys, down to 12 in all (they are soft signals, rebuilt by the next visits);
//! 2. categories, down to 8 (the stages of the categories touched most recently stay);
//! 3. the names and brands of cart lines (the product ids, prices and quantities stay, so
//!    the cart's value and what is in it are never lost);
//! 4. the remaining affinity keys, then categories down to one, then the viewed and bought
//!    products, then traits.
//!
//! The result is deterministic: the same profile always loses the same things.

use crate::keyed::Keyed;
use crate::profile::Profile;
use crate::time::Millis;

/// Most bytes of the stored profile (strictly under 16 KB).
pub const MAX_STORED_BYTES: usize = 16 * 1024 - 1;

/// The stored form of `profile`, after shedding data from it as described in the module
/// comment when the full form is over [`MAX_STORED_BYTES`]. The shedding is done on the
/// profile itself, so what the page keeps in memory is what it stores.
///
/// ```
/// use nudge::codec::Json;
/// let mut p = nudge::profile::Profile::new("anon".into());
/// assert_eq!(nudge::storage_budget::fit(&mut p), p.encode());
/// ```
pub fn fit(p: &mut Profile) -> String {
    let mut text = p.encode();
    // Each round drops about as many bytes as the text is over, then measures again.
    while text.len() > MAX_STORED_BYTES {
        let mut over = (text.len() - MAX_STORED_BYTES) as isize;
        while over > 0 {
            match shed_one(p) {
                Some(bytes) => over -= bytes as isize,
                None => return p.encode(),
            }
        }
        text = p.encode();
    }
    text
}

/// Forgets the least telling piece of `p`; returns about how many stored bytes that saves,
/// or None when nothing is left to forget.
fn shed_one(p: &mut Profile) -> Option<usize> {
    if p.seen.len() > 5 {
        return shed_oldest(&mut p.seen);
    }
    let a = &p.affinities;
    let affinity_keys = a.categories.m.len() + a.brands.m.len() + a.price_bands.m.len();
    if affinity_keys > 12 {
        return shed_affinity(p);
    }
    if p.categories.len() > 8 {
        return shed_category(p);
    }
    if let Some(bytes) = shed_cart_details(p) {
        return Some(bytes);
    }
    if affinity_keys > 0 {
        return shed_affinity(p);
    }
    if p.categories.len() > 1 {
        return shed_category(p);
    }
    shed_oldest(&mut p.seen).or_else(|| shed_oldest(&mut p.bought)).or_else(|| p.traits.take().map(|t| t.len()))
}

/// The product seen or bought longest ago.
fn shed_oldest(list: &mut Keyed<Millis>) -> Option<usize> {
    let i = crate::profile::oldest(list);
    let bytes = list.iter().nth(i)?.0.len() + 16;
    list.remove_at(i);
    Some(bytes)
}

/// The affinity key updated longest ago, across categories, brands and price bands (the
/// first in key order on a tie: maps iterate sorted, so the choice is deterministic).
fn shed_affinity(p: &mut Profile) -> Option<usize> {
    let a = &mut p.affinities;
    let mut oldest: Option<(u64, usize, usize)> = None; // (t, kind, index)
    for (kind, scores) in [&a.categories, &a.brands, &a.price_bands].iter().enumerate() {
        for (i, (_, d)) in scores.m.iter().enumerate() {
            if oldest.is_none_or(|o| d.t < o.0) {
                oldest = Some((d.t, kind, i));
            }
        }
    }
    let (_, kind, i) = oldest?;
    let scores = match kind {
        0 => &mut a.categories,
        1 => &mut a.brands,
        _ => &mut a.price_bands,
    };
    let bytes = scores.m.iter().nth(i)?.0.len() + 32;
    scores.m.remove_at(i);
    Some(bytes)
}

/// The category touched longest ago (the first in key order on a tie).
fn shed_category(p: &mut Profile) -> Option<usize> {
    let mut oldest: Option<(u64, usize, usize)> = None; // (last seen, index, bytes)
    for (i, (k, e)) in p.categories.iter().enumerate() {
        if oldest.is_none_or(|o| e.last_seen < o.0) {
            oldest = Some((e.last_seen, i, k.len() + 14 * (e.views.len() + e.intents.len()) + 80));
        }
    }
    let (_, i, bytes) = oldest?;
    p.categories.remove_at(i);
    Some(bytes)
}

/// The name or brand of the oldest cart line that still has one.
fn shed_cart_details(p: &mut Profile) -> Option<usize> {
    let line = p.cart.lines.iter_mut().find(|l| l.name.is_some() || l.brand.is_some())?;
    let dropped = line.name.take().or_else(|| line.brand.take())?;
    Some(dropped.len() + 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Thresholds;
    use crate::decay::Decayed;

    fn long(prefix: &str, n: usize) -> String {
        format!("{prefix}{n:03}{}", "x".repeat(96))
    }

    /// Every bound filled at once, with the longest strings each bound lets in.
    fn filled() -> Profile {
        let th = <Thresholds as Default>::default();
        let mut p = Profile::new("anon".into());
        p.traits = Some(format!("{{\"bio\":\"{}\"}}", "t".repeat(2030)));
        for n in 0..24 {
            let e = p.category(&long("category ", n), 1_000 + n as u64, &th);
            e.views = (0..8).map(|i| 1_764_000_000_000 + i).collect();
            e.intents = (0..3).map(|i| 1_764_000_000_000 + i).collect();
            e.last_seen = 1_000 + n as u64;
            for (kind, scores) in [&mut p.affinities.categories, &mut p.affinities.brands].into_iter().enumerate() {
                scores.m.insert(long(if kind == 0 { "c" } else { "b" }, n), Decayed { v: 1.5, t: 2_000 + n as u64 });
            }
        }
        for n in 0..30 {
            let props = format!(
                r#"{{"product_id":"{}","name":"{}","brand":"{}","category":"{}","price":1234.5,"quantity":2}}"#,
                long("p", n),
                long("name ", n),
                long("brand ", n),
                long("category ", n)
            );
            p.cart
                .lines
                .push(crate::cart::Line::from_props(&crate::event::parse_props(Some(&props)).unwrap()).unwrap());
        }
        p
    }

    #[test]
    fn a_profile_that_fills_every_bound_is_stored_under_sixteen_kilobytes() {
        let p = filled();
        assert!(p.encode().len() > MAX_STORED_BYTES + 8 * 1024, "over the budget: {} bytes", p.encode().len());
        let mut shed = p.clone();
        let text = fit(&mut shed);
        assert_eq!(text, shed.encode(), "the profile in memory is the one stored");
        assert!(text.len() <= MAX_STORED_BYTES, "{} bytes", text.len());
        let (back, _) = Profile::decode(&text, "x".into());
        assert_eq!(back.cart.lines.len(), 30, "every cart line is kept");
        assert_eq!(back.cart.value(), p.cart.value(), "the cart's value is kept");
        assert!(!back.categories.is_empty(), "the most recent categories are kept");
        assert!(back.categories.contains_key(&long("category ", 23)), "the most recent category is kept");
        assert_eq!(back.anonymous_id, "anon");
    }

    #[test]
    fn a_profile_within_the_budget_is_stored_whole() {
        let mut p = filled();
        p.cart.lines.truncate(3);
        for n in 1..24 {
            p.categories.remove(&long("category ", n));
        }
        p.affinities = Default::default();
        let whole = p.encode();
        assert_eq!(fit(&mut p), whole);
    }

    #[test]
    fn shedding_is_deterministic_and_oldest_first() {
        let p = filled();
        let text = fit(&mut p.clone());
        assert_eq!(text, fit(&mut p.clone()));
        let (back, _) = Profile::decode(&text, "x".into());
        if let Some(oldest_kept) = back.categories.values().map(|e| e.last_seen).min() {
            let dropped_newer =
                p.categories.iter().any(|(k, e)| e.last_seen > oldest_kept && !back.categories.contains_key(k));
            assert!(!dropped_newer, "no category newer than a kept one was dropped");
        }
    }
}
