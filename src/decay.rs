//! Scores that fade with time: the memory behind journey stages and affinities.
//!
//! A [`Decayed`] value halves every half-life. Adding evidence at a time before the last
//! update decays the new weight instead, so the result does not depend on the order in
//! which events arrive (the server folds events from several devices).

use crate::json_value::storable;
use crate::time::Millis;

/// A score and the time it was last brought up to date.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Decayed {
    /// The score at time `t`.
    pub v: f64,
    /// When `v` was computed.
    pub t: Millis,
}
crate::json_struct!(Decayed { v: "v", t: "t" });

impl Decayed {
    /// No evidence yet.
    pub const ZERO: Decayed = Decayed { v: 0.0, t: 0 };

    /// The score as of `now`, given a half-life in milliseconds.
    pub fn at(&self, now: Millis, half_life: Millis) -> f64 {
        self.v * factor(now.saturating_sub(self.t), half_life)
    }

    /// Adds `weight` of evidence that happened at `when`.
    pub fn add(&mut self, weight: f64, when: Millis, half_life: Millis) {
        // Kept as stored (nine decimals), so that a stored score reads back as it was.
        if when >= self.t {
            self.v = storable(self.at(when, half_life) + weight);
            self.t = when;
        } else {
            self.v = storable(self.v + weight * factor(self.t - when, half_life));
        }
    }
}

/// How much of a score survives `elapsed` milliseconds: `0.5^(elapsed / half_life)`.
pub fn factor(elapsed: Millis, half_life: Millis) -> f64 {
    if half_life == 0 {
        return if elapsed == 0 { 1.0 } else { 0.0 };
    }
    let halvings = elapsed as f64 / half_life as f64;
    if halvings > 1000.0 {
        return 0.0;
    }
    (-halvings * core::f64::consts::LN_2).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY;

    #[test]
    fn a_score_halves_every_half_life() {
        let mut d = Decayed::ZERO;
        d.add(8.0, 0, 14 * DAY);
        assert!((d.at(14 * DAY, 14 * DAY) - 4.0).abs() < 1e-9);
        assert!((d.at(28 * DAY, 14 * DAY) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_order_of_evidence_does_not_matter() {
        let (mut a, mut b) = (Decayed::ZERO, Decayed::ZERO);
        a.add(1.0, 10 * DAY, 7 * DAY);
        a.add(2.0, 3 * DAY, 7 * DAY);
        b.add(2.0, 3 * DAY, 7 * DAY);
        b.add(1.0, 10 * DAY, 7 * DAY);
        assert!((a.at(20 * DAY, 7 * DAY) - b.at(20 * DAY, 7 * DAY)).abs() < 1e-9);
    }
}
