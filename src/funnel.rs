//! Journey stages per product category: awareness, consideration, decision, purchase,
//! loyalty. A stage is a function of recent evidence (read through time windows) and the
//! time now, so it moves forward on evidence and falls back as interest fades.

use crate::config::Thresholds;
use crate::time::Millis;

/// Where a shopper stands in the buying journey for one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// First sight of the category.
    Awareness,
    /// Repeated viewing or comparing.
    Consideration,
    /// Strong intent: added to cart, checkout started, or many views in a short time.
    Decision,
    /// Ordered.
    Purchase,
    /// Bought before and came back.
    Loyalty,
}
crate::json_enum!(Stage {
    Awareness: "awareness",
    Consideration: "consideration",
    Decision: "decision",
    Purchase: "purchase",
    Loyalty: "loyalty"
});

impl Stage {
    /// The lower-case name used in events and in `profile()`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Awareness => "awareness",
            Stage::Consideration => "consideration",
            Stage::Decision => "decision",
            Stage::Purchase => "purchase",
            Stage::Loyalty => "loyalty",
        }
    }
}

/// What counts as evidence for a category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// A product page (`Product Viewed`).
    View,
    /// Buying intent: `Product Added`, `Checkout Started`.
    Intent,
    /// An order (`Order Completed`).
    Order,
}

/// Most view times kept per category (enough for the burst rule).
pub const MAX_VIEWS: usize = 8;
/// Most intent times kept per category.
pub const MAX_INTENTS: usize = 3;

/// The evidence kept for one category: the times of the latest views and intents, and
/// the orders. Stages are read from it through time windows, so the same events give the
/// same stage whatever order they arrive in.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Times of the latest product views, oldest first.
    pub views: Vec<Millis>,
    /// Times of the latest cart adds and checkouts (and view bursts), oldest first.
    pub intents: Vec<Millis>,
    /// Orders placed in this category.
    pub orders: u32,
    /// When the latest order was placed.
    pub last_order: Millis,
    /// When the category was last touched by any evidence.
    pub last_seen: Millis,
    /// The stage last reported through `Stage Changed`.
    pub reported: Option<Stage>,
}
crate::json_struct!(Evidence {
    views: "views",
    intents: "intents",
    orders: "orders",
    last_order: "last_order",
    last_seen: "last_seen",
    reported: "reported"
});

fn insert_sorted(times: &mut Vec<Millis>, t: Millis, max: usize) {
    let i = times.partition_point(|x| *x <= t);
    times.insert(i, t);
    if times.len() > max {
        times.remove(0);
    }
}

impl Evidence {
    /// No evidence yet.
    pub fn new() -> Self {
        Evidence { views: Vec::new(), intents: Vec::new(), orders: 0, last_order: 0, last_seen: 0, reported: None }
    }

    /// Folds one signal observed at `when`.
    pub fn observe(&mut self, signal: Signal, when: Millis, th: &Thresholds) {
        match signal {
            Signal::View => {
                insert_sorted(&mut self.views, when, MAX_VIEWS);
                // Many views in a short time are buying intent, which then lasts as long
                // as a cart add does. A view that arrives late can complete a burst that
                // lies before later views, so look at every run, not only the latest.
                let need = (th.decision_burst_views.ceil() as usize).clamp(1, MAX_VIEWS);
                let burst =
                    self.views.windows(need).rev().find(|w| w[need - 1].saturating_sub(w[0]) <= th.burst_window());
                if let Some(w) = burst {
                    let burst_at = w[need - 1];
                    if !crate::time::has(&self.intents, burst_at) {
                        insert_sorted(&mut self.intents, burst_at, MAX_INTENTS);
                    }
                }
            }
            Signal::Intent => insert_sorted(&mut self.intents, when, MAX_INTENTS),
            Signal::Order => {
                self.orders = self.orders.saturating_add(1);
                self.last_order = self.last_order.max(when);
            }
        }
        self.last_seen = self.last_seen.max(when);
    }

    /// The stage as of `now`:
    /// - `loyalty`: ordered twice, or ordered and came back later;
    /// - `purchase`: ordered;
    /// - `decision`: a cart add, checkout or burst of views within the decision window;
    /// - `consideration`: enough views within the consideration window;
    /// - `awareness`: anything else that was seen.
    pub fn stage(&self, now: Millis, th: &Thresholds) -> Stage {
        if self.orders > 0 {
            let came_back = self.last_seen >= self.last_order.saturating_add(th.loyalty_return());
            return if self.orders > 1 || came_back { Stage::Loyalty } else { Stage::Purchase };
        }
        let since = |window: Millis| now.saturating_sub(window);
        let recent_intent = self.intents.iter().any(|t| *t >= since(th.decision_window()));
        let recent_views = self.views.iter().filter(|t| **t >= since(th.consideration_window())).count();
        if recent_intent {
            Stage::Decision
        } else if recent_views as f64 >= th.consideration_views {
            Stage::Consideration
        } else {
            Stage::Awareness
        }
    }

    /// Brings the reported stage up to date; returns `(from, to)` when it changed.
    pub fn settle(&mut self, now: Millis, th: &Thresholds) -> Option<(Option<Stage>, Stage)> {
        let to = self.stage(now, th);
        let from = self.reported;
        self.reported = Some(to);
        (from != Some(to)).then_some((from, to))
    }

    /// A single number for ranking categories against each other (used to pick the
    /// overall stage among equals and to decide which categories to forget first).
    pub fn weight(&self, now: Millis, th: &Thresholds) -> f64 {
        let recent = |ts: &[Millis], w: Millis| ts.iter().filter(|t| **t >= now.saturating_sub(w)).count() as f64;
        recent(&self.views, th.consideration_window())
            + 3.0 * recent(&self.intents, th.decision_window())
            + 10.0 * f64::from(self.orders)
            + (self.last_seen as f64) * 1e-15
    }
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{DAY, MINUTE};

    fn views(n: u32, start: Millis, gap: Millis) -> Evidence {
        let th = <Thresholds as Default>::default();
        let mut e = Evidence::new();
        for i in 0..n {
            let at = start + u64::from(i) * gap;
            e.observe(Signal::View, at, &th);
            e.settle(at, &th);
        }
        e
    }

    #[test]
    fn one_view_is_awareness_three_are_consideration() {
        let th = <Thresholds as Default>::default();
        assert_eq!(views(1, 0, DAY).stage(DAY, &th), Stage::Awareness);
        assert_eq!(views(3, 0, 10 * MINUTE).stage(DAY, &th), Stage::Consideration);
    }

    #[test]
    fn five_views_within_minutes_are_decision_but_spread_over_days_are_not() {
        let th = <Thresholds as Default>::default();
        let quick = views(5, 0, MINUTE);
        assert_eq!(quick.stage(5 * MINUTE, &th), Stage::Decision);
        let slow = views(5, 0, DAY);
        assert_eq!(slow.stage(5 * DAY, &th), Stage::Consideration);
    }

    #[test]
    fn interest_fades_back_to_awareness() {
        let th = <Thresholds as Default>::default();
        let quick = views(5, 0, MINUTE);
        assert_eq!(quick.stage(6 * DAY, &th), Stage::Decision);
        assert_eq!(quick.stage(9 * DAY, &th), Stage::Consideration);
        assert_eq!(quick.stage(30 * DAY, &th), Stage::Awareness);
    }

    #[test]
    fn a_cart_add_is_decision_and_an_order_is_purchase_then_loyalty_on_return() {
        let th = <Thresholds as Default>::default();
        let mut e = views(1, 0, MINUTE);
        e.observe(Signal::Intent, MINUTE, &th);
        assert_eq!(e.stage(2 * MINUTE, &th), Stage::Decision);
        e.observe(Signal::Order, 3 * MINUTE, &th);
        assert_eq!(e.stage(4 * MINUTE, &th), Stage::Purchase);
        e.observe(Signal::View, 3 * DAY, &th);
        assert_eq!(e.stage(3 * DAY, &th), Stage::Loyalty);
    }
}
