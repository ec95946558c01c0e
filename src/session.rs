//! Sessions: 30 minutes without activity, or arriving from a new UTM campaign, starts a new
//! session. The session lives in the shared profile, so all tabs of a site share it.

use crate::time::Millis;

/// The current session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    /// Session id: the time it started, in milliseconds (as Amplitude does).
    pub id: Millis,
    /// Last activity.
    pub last: Millis,
    /// The `utm_campaign` it started with, if any.
    pub campaign: Option<String>,
    /// How many sessions this browser has had.
    pub count: u32,
}
crate::json_struct!(Session { id: "id", last: "last", campaign: "campaign", count: "count" });

impl Session {
    /// Records activity at `now`; returns true when it started a new session.
    ///
    /// ```
    /// use nudge::session::Session;
    /// let mut s = <Session as Default>::default();
    /// assert!(s.touch(1_000, None, 30 * 60_000));
    /// assert!(!s.touch(2_000, None, 30 * 60_000));
    /// assert!(s.touch(3_000, Some("spring-sale"), 30 * 60_000));
    /// ```
    pub fn touch(&mut self, now: Millis, campaign: Option<&str>, timeout: Millis) -> bool {
        let expired = self.count == 0 || now.saturating_sub(self.last) > timeout;
        let new_campaign = campaign.is_some_and(|c| self.campaign.as_deref() != Some(c));
        let fresh = expired || new_campaign;
        if fresh {
            self.id = now;
            self.count = self.count.saturating_add(1);
            self.campaign = campaign.map(str::to_string);
        }
        self.last = self.last.max(now);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MINUTE;

    #[test]
    fn thirty_minutes_of_inactivity_start_a_new_session() {
        let mut s = <Session as Default>::default();
        s.touch(0, None, 30 * MINUTE);
        assert!(!s.touch(29 * MINUTE, None, 30 * MINUTE));
        assert!(!s.touch(58 * MINUTE, None, 30 * MINUTE));
        assert!(s.touch(89 * MINUTE, None, 30 * MINUTE));
        assert_eq!(s.id, 89 * MINUTE);
        assert_eq!(s.count, 2);
    }

    #[test]
    fn the_same_campaign_again_keeps_the_session() {
        let mut s = <Session as Default>::default();
        s.touch(0, Some("tv-week"), 30 * MINUTE);
        assert!(!s.touch(MINUTE, Some("tv-week"), 30 * MINUTE));
        assert!(!s.touch(2 * MINUTE, None, 30 * MINUTE));
        assert!(s.touch(3 * MINUTE, Some("phones"), 30 * MINUTE));
    }
}
