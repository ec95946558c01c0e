//! Site configuration the core decides with: journey thresholds, decay half-lives, consent
//! default. Every field has a default, so `init({})` works; a site overrides any subset
//! through `init({thresholds: {...}})` now and through the server's site config later.

use crate::codec::optional;
use crate::json_value::Value;
use crate::time::{Millis, DAY, HOUR, MINUTE};

/// Thresholds of the journey model (see DESIGN.md, "The journey model").
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Product views within the consideration window that make a category `consideration`. Default 3.
    pub consideration_views: f64,
    /// Days that views count towards `consideration`. Default 14.
    pub consideration_days: f64,
    /// Days that a cart add, checkout or view burst keeps a category in `decision`. Default 7.
    pub decision_days: f64,
    /// Views within the burst window that count as buying intent ("many views in a short time"). Default 5.
    pub decision_burst_views: f64,
    /// The burst window, in minutes. Default 60.
    pub decision_burst_minutes: f64,
    /// Half-life of category, brand and price-band affinities, in days. Default 14.
    pub affinity_half_life_days: f64,
    /// Hours after an order from which a return visit counts as `loyalty`. Default 12.
    pub loyalty_return_hours: f64,
    /// Minutes of inactivity that end a session. Default 30.
    pub session_timeout_minutes: f64,
    /// Minutes after the last cart activity, with no order, at which the server records
    /// `Cart Abandoned`. Default 60.
    pub cart_abandon_minutes: f64,
    /// Upward pointer speed, in pixels per second, above which leaving through the top of
    /// the viewport counts as exit intent (a slow drift to the tab bar does not). Default 800.
    pub exit_pointer_speed: f64,
    /// Upward scroll speed, in pixels per second, that counts as exit intent on touch
    /// screens. Default 2500.
    pub exit_scroll_speed: f64,
    /// Seconds without input after which an idle shopper counts as leaving. Default 60.
    pub idle_seconds: f64,
}
crate::json_struct!(Thresholds {
    consideration_views: "consideration_views",
    consideration_days: "consideration_days",
    decision_days: "decision_days",
    decision_burst_views: "decision_burst_views",
    decision_burst_minutes: "decision_burst_minutes",
    affinity_half_life_days: "affinity_half_life_days",
    loyalty_return_hours: "loyalty_return_hours",
    session_timeout_minutes: "session_timeout_minutes",
    cart_abandon_minutes: "cart_abandon_minutes",
    exit_pointer_speed: "exit_pointer_speed",
    exit_scroll_speed: "exit_scroll_speed",
    idle_seconds: "idle_seconds"
});

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            consideration_views: 3.0,
            consideration_days: 14.0,
            decision_days: 7.0,
            decision_burst_views: 5.0,
            decision_burst_minutes: 60.0,
            affinity_half_life_days: 14.0,
            loyalty_return_hours: 12.0,
            session_timeout_minutes: 30.0,
            cart_abandon_minutes: 60.0,
            exit_pointer_speed: 800.0,
            exit_scroll_speed: 2500.0,
            idle_seconds: 60.0,
        }
    }
}

/// The thresholds' names, as `init({thresholds})`, the site config and `to_json` spell
/// them, in the order of [`Thresholds::slots`].
const NAMES: [&str; 12] = [
    "consideration_views",
    "consideration_days",
    "decision_days",
    "decision_burst_views",
    "decision_burst_minutes",
    "affinity_half_life_days",
    "loyalty_return_hours",
    "session_timeout_minutes",
    "cart_abandon_minutes",
    "exit_pointer_speed",
    "exit_scroll_speed",
    "idle_seconds",
];

/// Overrides read from `init({thresholds})`; any field left out keeps its default.
#[derive(Debug, Clone, Default)]
pub struct ThresholdOverrides([Option<f64>; 12]);

impl ThresholdOverrides {
    /// Reads each field on its own: a field that is not a number is left out and the
    /// second value is true, so the caller can report it while the others still apply.
    pub fn read(v: &Value) -> (ThresholdOverrides, bool) {
        let mut bad = false;
        let mut o = ThresholdOverrides::default();
        for (slot, &key) in o.0.iter_mut().zip(NAMES.iter()) {
            *slot = optional::<f64>(v, key).unwrap_or_else(|_| {
                bad = true;
                None
            });
        }
        (o, bad)
    }
}

impl Thresholds {
    /// Every threshold, in the order of `NAMES`: one loop reads or sets them all, which
    /// keeps the Wasm smaller than code per field.
    fn slots(&mut self) -> [&mut f64; 12] {
        [
            &mut self.consideration_views,
            &mut self.consideration_days,
            &mut self.decision_days,
            &mut self.decision_burst_views,
            &mut self.decision_burst_minutes,
            &mut self.affinity_half_life_days,
            &mut self.loyalty_return_hours,
            &mut self.session_timeout_minutes,
            &mut self.cart_abandon_minutes,
            &mut self.exit_pointer_speed,
            &mut self.exit_scroll_speed,
            &mut self.idle_seconds,
        ]
    }

    /// Applies overrides, ignoring values that are not positive and finite.
    pub fn apply(&mut self, o: &ThresholdOverrides) {
        // Slices, not arrays by value: no array iterators in the Wasm.
        let mut slots = self.slots();
        for (slot, v) in slots.iter_mut().zip(o.0.iter()) {
            if let Some(v) = v.filter(|v| v.is_finite() && *v > 0.0) {
                **slot = v;
            }
        }
    }

    /// Window for `consideration` views. In milliseconds.
    pub fn consideration_window(&self) -> Millis {
        (self.consideration_days * DAY as f64) as Millis
    }

    /// Window for `decision` intent. In milliseconds.
    pub fn decision_window(&self) -> Millis {
        (self.decision_days * DAY as f64) as Millis
    }

    /// Window for a burst of views. In milliseconds.
    pub fn burst_window(&self) -> Millis {
        (self.decision_burst_minutes * MINUTE as f64) as Millis
    }

    /// Affinity half-life. In milliseconds.
    pub fn affinity_half_life(&self) -> Millis {
        (self.affinity_half_life_days * DAY as f64) as Millis
    }

    /// Time after an order from which activity counts as coming back. In milliseconds.
    pub fn loyalty_return(&self) -> Millis {
        (self.loyalty_return_hours * HOUR as f64) as Millis
    }

    /// Time after the last cart activity at which an unordered cart counts as abandoned. In milliseconds.
    pub fn cart_abandon_after(&self) -> Millis {
        (self.cart_abandon_minutes * MINUTE as f64) as Millis
    }

    /// Inactivity that ends a session. In milliseconds.
    pub fn session_timeout(&self) -> Millis {
        (self.session_timeout_minutes * MINUTE as f64) as Millis
    }
}
