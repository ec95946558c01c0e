//! Affinities: how much a shopper leans to each category, brand and price band, as decayed
//! scores (default half-life 14 days). They feed recommendations and audiences.

use crate::decay::Decayed;
use crate::keyed::Keyed;
use crate::time::Millis;

/// Most keys kept per kind; the weakest is forgotten first, so storage stays bounded.
pub const MAX_KEYS: usize = 24;

/// Weight of a product view, a cart add and an order.
pub const VIEW: f64 = 1.0;
/// Weight of a cart add or wishlist add.
pub const ADD: f64 = 3.0;
/// Weight of a purchase.
pub const ORDER: f64 = 5.0;

/// Decayed scores by key (category name, brand name or price band).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// Score per key.
    pub m: Keyed<Decayed>,
}
crate::json_struct!(Scores { m: "m" });

impl Scores {
    /// Adds `weight` to `key` at `when`, forgetting the weakest key when over [`MAX_KEYS`].
    pub fn add(&mut self, key: &str, weight: f64, when: Millis, half_life: Millis) {
        if let Some(d) = self.m.get_mut(key) {
            d.add(weight, when, half_life);
            return;
        }
        let mut d = Decayed::ZERO;
        d.add(weight, when, half_life);
        self.m.insert(key.to_string(), d);
        if self.m.len() > MAX_KEYS {
            let mut weakest: Option<(usize, f64)> = None;
            for (i, (k, d)) in self.m.iter().enumerate() {
                let w = d.at(when, half_life);
                if k.as_str() != key && weakest.is_none_or(|(_, low)| w.total_cmp(&low).is_lt()) {
                    weakest = Some((i, w));
                }
            }
            if let Some((i, _)) = weakest {
                self.m.remove_at(i);
            }
        }
    }

    /// Scores as of `now`, strongest first; keys below 0.01 are left out.
    pub fn ranked(&self, now: Millis, half_life: Millis) -> Vec<(&str, f64)> {
        // Placed one by one rather than sorted: a handful of keys, and the Wasm is spared
        // a generic sort (kilobytes per instance).
        let mut v: Vec<(&str, f64)> = Vec::new();
        for (k, d) in self.m.iter() {
            let s = d.at(now, half_life);
            if s >= 0.01 {
                let i = v.partition_point(|(k2, s2)| *s2 > s || (*s2 == s && k2 < &k.as_str()));
                v.insert(i, (k.as_str(), s));
            }
        }
        v
    }
}

/// The price band a price falls in, for price-band affinity.
///
/// ```
/// assert_eq!(nudge::affinity::price_band(899.0), "500-1000");
/// ```
pub fn price_band(price: f64) -> &'static str {
    match price {
        p if p < 25.0 => "0-25",
        p if p < 100.0 => "25-100",
        p if p < 250.0 => "100-250",
        p if p < 500.0 => "250-500",
        p if p < 1000.0 => "500-1000",
        _ => "1000+",
    }
}

/// Category, brand and price-band scores together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Affinities {
    /// Per category.
    pub categories: Scores,
    /// Per brand.
    pub brands: Scores,
    /// Per price band (see [`price_band`]).
    pub price_bands: Scores,
}
crate::json_struct!(Affinities { categories: "categories", brands: "brands", price_bands: "price_bands" });

impl Affinities {
    /// Folds interest in one product.
    pub fn observe(
        &mut self,
        category: Option<&str>,
        brand: Option<&str>,
        price: Option<f64>,
        weight: f64,
        when: Millis,
        half_life: Millis,
    ) {
        if let Some(c) = category {
            self.categories.add(c, weight, when, half_life);
        }
        if let Some(b) = brand {
            self.brands.add(b, weight, when, half_life);
        }
        if let Some(p) = price.filter(|p| *p >= 0.0) {
            self.price_bands.add(price_band(p), weight, when, half_life);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY;

    #[test]
    fn affinity_halves_after_fourteen_days() {
        let mut a = <Affinities as Default>::default();
        a.observe(Some("TVs"), Some("Sony"), Some(899.0), VIEW, 0, 14 * DAY);
        let cats = a.categories.ranked(14 * DAY, 14 * DAY);
        assert_eq!(cats.len(), 1);
        assert!((cats[0].1 - 0.5).abs() < 1e-9);
        assert_eq!(a.price_bands.ranked(0, 14 * DAY)[0].0, "500-1000");
    }

    #[test]
    fn the_weakest_key_is_forgotten_past_the_bound() {
        let mut s = <Scores as Default>::default();
        s.add("strong", 10.0, 0, DAY);
        for i in 0..(MAX_KEYS as u64 * 2) {
            s.add(&i.to_string(), 1.0, i, DAY);
        }
        assert_eq!(s.m.len(), MAX_KEYS);
        assert!(s.m.contains_key("strong"));
    }
}
