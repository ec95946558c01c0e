//! Consent: the shopper's choices for `analytics`, `personalization` and `marketing`, the
//! site's default (opt-in or opt-out), and the browser's Global Privacy Control signal.
//!
//! Without `analytics`, nothing is stored or queued for sending (the engine holds events in
//! memory until a choice is made); with GPC on, `marketing` is off unless granted explicitly.

use crate::error::Error;
use crate::json_value::{parse, Value};

/// Whether consent is assumed until refused (`OptOut`) or asked for first (`OptIn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Everything is allowed until the shopper says no.
    #[default]
    OptOut,
    /// Nothing is allowed until the shopper says yes.
    OptIn,
}

/// The shopper's explicit choices; `None` means not asked yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choices {
    /// Measuring: storing the profile and sending events.
    pub analytics: Option<bool>,
    /// Adapting the page (slots, popups) to the profile.
    pub personalization: Option<bool>,
    /// Follow-up by email, SMS and ads.
    pub marketing: Option<bool>,
}
crate::json_struct!(Choices { analytics: "analytics", personalization: "personalization", marketing: "marketing" });

impl Choices {
    /// Reads `{"analytics":true,...}`; unknown keys or non-boolean values are refused.
    pub fn parse(text: &str) -> Result<Choices, Error> {
        let Ok(Value::Obj(obj)) = parse(text, 2) else {
            return Err(Error::BadConsent);
        };
        let mut c = <Choices as Default>::default();
        for (k, v) in obj.iter() {
            let slot = match k.as_str() {
                "analytics" => &mut c.analytics,
                "personalization" => &mut c.personalization,
                "marketing" => &mut c.marketing,
                _ => return Err(Error::BadConsent),
            };
            match v {
                Value::Bool(b) => *slot = Some(*b),
                Value::Null => {}
                _ => return Err(Error::BadConsent),
            }
        }
        Ok(c)
    }

    /// Later choices win; categories not named keep their earlier choice.
    pub fn merge(&mut self, newer: Choices) {
        self.analytics = newer.analytics.or(self.analytics);
        self.personalization = newer.personalization.or(self.personalization);
        self.marketing = newer.marketing.or(self.marketing);
    }
}

/// The site's policy and the browser's signal, against which choices are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// The site's default.
    pub mode: Mode,
    /// `navigator.globalPrivacyControl` was true.
    pub gpc: bool,
}

/// Consent in force for each category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// Store and send.
    pub analytics: bool,
    /// Personalize the page.
    pub personalization: bool,
    /// Follow up outside the page.
    pub marketing: bool,
}

impl Policy {
    /// What is allowed now.
    ///
    /// ```
    /// use nudge::consent::{Choices, Mode, Policy};
    /// let gpc = Policy { mode: Mode::OptOut, gpc: true };
    /// assert!(!gpc.effective(&<Choices as Default>::default()).marketing);
    /// assert!(gpc.effective(&Choices { marketing: Some(true), ..Default::default() }).marketing);
    /// ```
    pub fn effective(&self, c: &Choices) -> Effective {
        let default = self.mode == Mode::OptOut;
        Effective {
            analytics: c.analytics.unwrap_or(default),
            personalization: c.personalization.unwrap_or(default),
            marketing: c.marketing.unwrap_or(default && !self.gpc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_in_allows_nothing_until_granted() {
        let p = Policy { mode: Mode::OptIn, gpc: false };
        let e = p.effective(&<Choices as Default>::default());
        assert!(!e.analytics && !e.personalization && !e.marketing);
        let c = Choices::parse(r#"{"analytics":true}"#).unwrap();
        assert!(p.effective(&c).analytics);
    }

    #[test]
    fn bad_choices_are_refused() {
        for t in [r#"{"ads":true}"#, r#"{"analytics":"yes"}"#, "[]", "nope"] {
            assert_eq!(Choices::parse(t), Err(Error::BadConsent), "{t}");
        }
    }

    #[test]
    fn later_choices_keep_earlier_ones_they_do_not_name() {
        let mut c = Choices::parse(r#"{"analytics":true,"marketing":true}"#).unwrap();
        c.merge(Choices::parse(r#"{"marketing":false}"#).unwrap());
        assert_eq!(c, Choices { analytics: Some(true), personalization: None, marketing: Some(false) });
    }
}
