//! Noticing that a shopper is leaving, from the page signals the shell reports, and
//! deciding what they are leaving behind.
//!
//! The shell sends raw measurements (`{"signal":"pointer-exit","speed":1200}`); the
//! thresholds that make them "leaving" are the site's ([`Thresholds`]), so a site tunes
//! them without a new SDK:
//!
//! | signal | leaving when |
//! |---|---|
//! | `pointer-exit` (pointer left through the top edge; `speed`: upward px/s) | `speed` ≥ `exit_pointer_speed` (a slow drift to the tab bar is not) |
//! | `scroll-up` (touch; `speed`: upward px/s) | `speed` ≥ `exit_scroll_speed` |
//! | `back` (history back; `from`: the URL being left, default the page's) | that page showed a product or the cart |
//! | `hidden` (the tab went hidden) | always |
//! | `idle` (`seconds` without input) | `seconds` ≥ `idle_seconds` |
//!
//! Two more signals are not leaving but feed campaign triggers: `time-on-page`
//! (`seconds`) and `scroll-depth` (`percent`).

use crate::campaign::Abandon;
use crate::config::Thresholds;
use crate::error::Error;
use crate::json_value::{parse, Value};

/// One page signal, as the shell measured it.
#[derive(Debug, Clone, PartialEq)]
pub enum PageSignal {
    /// The pointer left through the top of the viewport at this upward speed (px/s).
    PointerExit(f64),
    /// A scroll up at this speed (px/s).
    ScrollUp(f64),
    /// A back navigation away from this URL (`None`: the page of the call).
    Back(Option<String>),
    /// The tab went hidden.
    Hidden,
    /// No input for this many seconds.
    Idle(f64),
    /// On the page for this many seconds.
    TimeOnPage(f64),
    /// Scrolled this far down the page, in percent.
    ScrollDepth(f64),
}

impl PageSignal {
    /// Reads `{"signal": name, ...}` (see the module table).
    pub fn parse(text: &str) -> Result<PageSignal, Error> {
        let v = parse(text, 2).map_err(|_| Error::BadSignal)?;
        let n =
            |k: &str| v.get(k).and_then(Value::as_f64).filter(|x| x.is_finite() && *x >= 0.0).ok_or(Error::BadSignal);
        Ok(match v.get("signal").and_then(Value::as_str).unwrap_or("") {
            "pointer-exit" => PageSignal::PointerExit(n("speed")?),
            "scroll-up" => PageSignal::ScrollUp(n("speed")?),
            "back" => PageSignal::Back(match v.get("from") {
                None | Some(Value::Null) => None,
                Some(Value::Str(s)) => Some(crate::json::clip(s, 2048)),
                Some(_) => return Err(Error::BadSignal),
            }),
            "hidden" => PageSignal::Hidden,
            "idle" => PageSignal::Idle(n("seconds")?),
            "time-on-page" => PageSignal::TimeOnPage(n("seconds")?),
            "scroll-depth" => PageSignal::ScrollDepth(n("percent")?),
            _ => return Err(Error::BadSignal),
        })
    }

    /// The signal's name when it says the shopper is leaving, given the thresholds and
    /// whether the page being left showed a product or the cart (for `back`).
    pub fn leaving(&self, th: &Thresholds, shop_page: bool) -> Option<&'static str> {
        match *self {
            PageSignal::PointerExit(s) if s >= th.exit_pointer_speed => Some("pointer-exit"),
            PageSignal::ScrollUp(s) if s >= th.exit_scroll_speed => Some("scroll-up"),
            PageSignal::Back(_) if shop_page => Some("back"),
            PageSignal::Hidden => Some("hidden"),
            PageSignal::Idle(s) if s >= th.idle_seconds => Some("idle"),
            _ => None,
        }
    }
}

/// What a leaving shopper leaves behind: a cart (non-empty, no checkout started) comes
/// before a browse (a product viewed this session in a category now in `decision`, nothing
/// added since). `None` when neither.
pub fn abandonment(cart_lines: usize, checkout_started: bool, viewed_in_decision: bool) -> Option<Abandon> {
    if cart_lines > 0 && !checkout_started {
        Some(Abandon::Cart)
    } else if cart_lines == 0 && viewed_in_decision {
        Some(Abandon::Browse)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_and_idle_time_count_from_the_site_s_thresholds() {
        let mut th = Thresholds::default();
        let sig = |t: &str| PageSignal::parse(t).unwrap();
        assert_eq!(sig(r#"{"signal":"pointer-exit","speed":800}"#).leaving(&th, false), Some("pointer-exit"));
        assert_eq!(sig(r#"{"signal":"pointer-exit","speed":799}"#).leaving(&th, false), None, "a slow drift");
        assert_eq!(sig(r#"{"signal":"scroll-up","speed":2400}"#).leaving(&th, false), None);
        assert_eq!(sig(r#"{"signal":"scroll-up","speed":2600}"#).leaving(&th, false), Some("scroll-up"));
        assert_eq!(sig(r#"{"signal":"idle","seconds":59}"#).leaving(&th, false), None);
        assert_eq!(sig(r#"{"signal":"idle","seconds":60}"#).leaving(&th, false), Some("idle"));
        assert_eq!(sig(r#"{"signal":"hidden"}"#).leaving(&th, false), Some("hidden"));
        assert_eq!(sig(r#"{"signal":"back"}"#).leaving(&th, false), None, "back from a page without products");
        assert_eq!(sig(r#"{"signal":"back","from":"https://s/p/1"}"#).leaving(&th, true), Some("back"));
        assert_eq!(sig(r#"{"signal":"time-on-page","seconds":30}"#).leaving(&th, true), None);
        th.exit_pointer_speed = 2000.0;
        assert_eq!(sig(r#"{"signal":"pointer-exit","speed":1500}"#).leaving(&th, false), None);
    }

    #[test]
    fn unreadable_signals_are_errors() {
        for t in [
            "",
            "{}",
            r#"{"signal":"wave"}"#,
            r#"{"signal":"idle"}"#,
            r#"{"signal":"scroll-up","speed":-1}"#,
            r#"{"signal":"back","from":3}"#,
            "[1]",
        ] {
            assert_eq!(PageSignal::parse(t), Err(Error::BadSignal), "{t}");
        }
    }

    #[test]
    fn a_cart_comes_before_a_browse() {
        assert_eq!(abandonment(2, false, true), Some(Abandon::Cart));
        assert_eq!(abandonment(2, true, true), None, "checkout started");
        assert_eq!(abandonment(0, false, true), Some(Abandon::Browse));
        assert_eq!(abandonment(0, false, false), None);
    }
}
