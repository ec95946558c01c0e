//! Emails over SMTP: the coupon email, the coupon and cart reminders and the evaluation
//! email after an order, each a persisted job sent at least once and, but for one edge
//! (see [`worker`]), exactly once.
//!
//! - [`jobs`]: the `email_jobs` table: jobs enqueued from the change feed (consumer
//!   `email`, see `crate::follow`), claimed with a lease, recorded with backoff;
//! - [`person`]: what a job needs to know about its person at send time: their messages,
//!   their marketing consent, their address;
//! - [`products`]: recommended and similar products, from the person's own events (the one
//!   place a catalogue will replace);
//! - [`compose`]: subject, text part and HTML part of each kind (values from events are
//!   HTML-escaped);
//! - [`smtp`]: the lettre transport and the MIME message (`List-Unsubscribe`, one-click);
//! - [`unsubscribe`]: the signed link and `GET|POST /v1/unsubscribe`;
//! - [`worker`]: the loop `serve` runs when SMTP is configured.
//!
//! Which emails, when:
//! - `Coupon Issued` -> `coupon` at once, and `coupon_reminder` after
//!   [`Settings::reminder_after`] unless an `Order Completed` came after the coupon;
//! - `Cart Abandoned` -> `cart_reminder` at once, unless the cart was bought or emptied;
//! - `Order Completed` -> `evaluation` after [`Settings::review_after`].
//!
//! No email goes to a person without marketing consent at the moment it is sent.

pub mod compose;
pub mod jobs;
pub mod person;
pub mod products;
pub mod smtp;
pub mod unsubscribe;
pub mod worker;

use std::time::Duration;

/// The email settings (`--smtp-url`, `--mail-from`, `--public-url`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `smtp://user:pass@host:port` (plain; `?tls=required` for STARTTLS,
    /// `?tls=opportunistic`), or `smtps://...` (TLS from the start). None: no emails.
    pub smtp_url: Option<String>,
    /// The From address, e.g. `Shop <shop@example.com>`.
    pub from: Option<String>,
    /// The server's public base URL, for unsubscribe links (e.g. `https://nudge.example`).
    pub public_url: Option<String>,
    /// The coupon reminder goes this long after the coupon, if no order came.
    pub reminder_after: Duration,
    /// The evaluation email goes this long after the order.
    pub review_after: Duration,
    /// A person with no consent recorded at all is waited for this long (their consent
    /// message may still be in the browser's queue) before the job is skipped.
    pub consent_wait: Duration,
    /// Pause between rounds when there is nothing to do.
    pub poll: Duration,
    /// The first retry's wait after a failed send (doubled per retry, up to an hour).
    pub backoff_base: Duration,
    /// Each SMTP exchange must finish within this.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            smtp_url: None,
            from: None,
            public_url: None,
            reminder_after: Duration::from_secs(24 * 3_600),
            review_after: Duration::ZERO,
            consent_wait: Duration::from_secs(600),
            poll: Duration::from_millis(250),
            backoff_base: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Reads the email settings from flags and environment variables: `lookup(flag, VAR)` gives
/// a flag's value, else the variable's.
pub fn settings_from(lookup: &dyn Fn(&str, &str) -> Option<String>) -> Result<Settings, String> {
    let d = Settings::default();
    let duration = |flag: &str, var: &str, unit_ms: f64, default: Duration| -> Result<Duration, String> {
        match lookup(flag, var) {
            None => Ok(default),
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 && n * unit_ms < 1e13 => {
                    Ok(Duration::from_millis((n * unit_ms) as u64))
                }
                _ => Err(format!("--{flag} ({var}) must be a number >= 0, not {v:?}")),
            },
        }
    };
    let settings = Settings {
        smtp_url: lookup("smtp-url", "NUDGE_SMTP_URL"),
        from: lookup("mail-from", "NUDGE_MAIL_FROM"),
        public_url: lookup("public-url", "NUDGE_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
        reminder_after: duration(
            "coupon-reminder-hours",
            "NUDGE_COUPON_REMINDER_HOURS",
            3_600_000.0,
            d.reminder_after,
        )?,
        review_after: duration("review-email-hours", "NUDGE_REVIEW_EMAIL_HOURS", 3_600_000.0, d.review_after)?,
        consent_wait: duration("consent-wait-ms", "NUDGE_CONSENT_WAIT_MS", 1.0, d.consent_wait)?,
        poll: duration("mail-poll-ms", "NUDGE_MAIL_POLL_MS", 1.0, d.poll)?.max(Duration::from_millis(1)),
        backoff_base: duration("mail-backoff-ms", "NUDGE_MAIL_BACKOFF_MS", 1.0, d.backoff_base)?
            .max(Duration::from_millis(1)),
        timeout: d.timeout,
    };
    if let Some(url) = &settings.smtp_url {
        smtp::Mailer::new(url, settings.from.as_deref().unwrap_or(""), settings.timeout)?;
        if settings.from.is_none() {
            return Err("--smtp-url needs --mail-from ADDRESS (NUDGE_MAIL_FROM)".into());
        }
    }
    if let Some(url) = &settings.public_url {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--public-url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("--public-url {url:?} must be http:// or https://"));
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        settings_from(&|flag, _var| pairs.iter().find(|(k, _)| k == flag).map(|(_, v)| v.clone()))
    }

    #[test]
    fn settings_need_a_sender_with_smtp_and_read_hours() {
        let s = read(&[]).unwrap();
        assert_eq!((s.smtp_url, s.reminder_after), (None, Duration::from_secs(86_400)));
        let s = read(&[
            ("smtp-url", "smtp://u:p@127.0.0.1:2525"),
            ("mail-from", "Shop <shop@example.com>"),
            ("coupon-reminder-hours", "0.5"),
            ("public-url", "https://nudge.example/"),
        ])
        .unwrap();
        assert_eq!(s.reminder_after, Duration::from_secs(1_800));
        assert_eq!(s.public_url.as_deref(), Some("https://nudge.example"));
        assert!(read(&[("smtp-url", "smtp://127.0.0.1:2525")]).unwrap_err().contains("--mail-from"));
        assert!(read(&[("smtp-url", "http://x"), ("mail-from", "a@b.c")]).is_err());
        assert!(read(&[("smtp-url", "smtp://h:25"), ("mail-from", "not an address")]).is_err());
        assert!(read(&[("coupon-reminder-hours", "-1")]).is_err());
        assert!(read(&[("public-url", "ftp://x")]).is_err());
        assert!(crate::cli::HELP.contains("--smtp-url") && crate::cli::HELP.contains("NUDGE_MAIL_FROM"));
    }
}
