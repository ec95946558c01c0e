//! Delivery: when the outbox's messages go to the server, in which batches, and what a
//! server's answer means. Pure policy: the shell performs the request and passes in the
//! clock, the answer and a random number for the jitter.
//!
//! - A batch holds up to [`BATCH_MESSAGES`] messages and [`BATCH_BYTES`] of JSON (within the
//!   64 KB a `keepalive` request may carry, so the batch sent as the page closes arrives).
//! - It leaves when 20 messages wait, when the oldest has waited [`BATCH_DELAY`], or at once
//!   when the page is hidden or `flush()` is called.
//! - A failure (no network, 408, 429, 5xx) is retried after an exponential backoff with full
//!   jitter (random between 0 and `min(cap, base * 2^attempt)`), or after the server's
//!   `Retry-After` when that is longer. A refused key (401, 403) waits the longest backoff, in
//!   case the site fixes it. Messages leave the outbox only once the server has taken them:
//!   delivery is at least once, and the server's `messageId` check makes it exactly once.

use crate::outbox::{message_id, Outbox};
use crate::time::{to_iso, Millis};

/// Most messages in one batch.
pub const BATCH_MESSAGES: usize = 20;
/// Most bytes of messages in one batch.
pub const BATCH_BYTES: usize = 60 * 1024;
/// How long the oldest waiting message waits for others before a batch leaves anyway.
pub const BATCH_DELAY: Millis = 5_000;
/// The first retry's backoff ceiling.
pub const RETRY_BASE: Millis = 1_000;
/// The longest backoff.
pub const RETRY_CAP: Millis = 5 * 60_000;

/// What a server's answer means for the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (2xx), or refused for its content (400, 413 and other 4xx): the server kept what
    /// it could, and sending the same messages again would not change its answer.
    Done,
    /// Try again later: no answer (status 0), 408, 429 or 5xx; `Retry-After` in ms if given.
    Retry(Option<Millis>),
    /// The write key was refused (401, 403): keep the messages, wait the longest backoff.
    Refused,
}

impl Outcome {
    /// Reads an HTTP status (0 when the request failed without one) and `Retry-After` (ms).
    pub fn of(status: u16, retry_after: Option<Millis>) -> Outcome {
        match status {
            200..=299 => Outcome::Done,
            401 | 403 => Outcome::Refused,
            0 | 408 | 429 | 500..=599 => Outcome::Retry(retry_after),
            _ => Outcome::Done,
        }
    }
}

/// A batch ready to send: its request body, and the number that ties the answer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Passed back to [`Delivery::settle`] with the answer.
    pub seq: u32,
    /// `{"batch":[...],"sentAt":"...","writeKey":"..."}`.
    pub body: String,
}

/// The delivery state of one page (not stored: a reload starts afresh, and what was in
/// flight is still in the stored outbox).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// Batches sent and not answered: their sequence number and message ids.
    in_flight: Vec<(u32, Vec<String>)>,
    seq: u32,
    /// Failures in a row.
    attempts: u32,
    /// No batch leaves before this time (the backoff), unless urgent.
    not_before: Millis,
    /// Since when messages have been waiting.
    waiting_since: Option<Millis>,
}

impl Delivery {
    /// Notes the outbox after a change, so the batch delay counts from the oldest message.
    pub fn observe(&mut self, outbox: &Outbox, now: Millis) {
        if self.unsent_count(outbox) == 0 {
            self.waiting_since = None;
        } else if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
    }

    /// When the shell should look again (to call [`Delivery::take`]), or None when nothing
    /// waits or a batch is in flight.
    pub fn next_check(&self, outbox: &Outbox) -> Option<Millis> {
        if !self.in_flight.is_empty() {
            return None;
        }
        let since = self.waiting_since?;
        // A full batch, or messages that already failed, go as soon as the backoff allows.
        let now_ok = self.attempts > 0 || self.unsent_count(outbox) >= BATCH_MESSAGES;
        Some(if now_ok { self.not_before } else { self.not_before.max(since + BATCH_DELAY) })
    }

    /// The next batch to send, if one is due. `urgent` (page hidden, `flush()`) sends what
    /// waits now, backoff or not; otherwise one batch at a time, when full or old enough.
    pub fn take(&mut self, outbox: &Outbox, write_key: &str, now: Millis, urgent: bool) -> Option<Batch> {
        if !urgent && self.next_check(outbox).is_none_or(|at| now < at) {
            return None;
        }
        let mut body = String::from("{\"batch\":[");
        let mut ids = Vec::new();
        for m in self.unsent(outbox) {
            if ids.len() == BATCH_MESSAGES || (!ids.is_empty() && body.len() + m.len() > BATCH_BYTES) {
                break;
            }
            if !ids.is_empty() {
                body.push(',');
            }
            body.push_str(m);
            ids.push(message_id(m).unwrap_or_default().to_string());
        }
        if ids.is_empty() {
            return None;
        }
        body.push_str("],\"sentAt\":");
        crate::json::push_str(&mut body, &to_iso(now));
        crate::json::push_field(&mut body, "writeKey", write_key);
        body.push('}');
        // Batches are numbered 1 to 2^31 - 1; the shell numbers its other requests outside.
        self.seq = self.seq % 0x7fff_ffff + 1;
        self.in_flight.push((self.seq, ids));
        // Messages left behind keep waiting from when they were made, not from now.
        if self.unsent_count(outbox) == 0 {
            self.waiting_since = None;
        }
        Some(Batch { seq: self.seq, body })
    }

    /// Applies the answer to batch `seq`: delivered messages leave the outbox; a failure
    /// sets the backoff. `random` is uniform in [0, 1), for the jitter.
    pub fn settle(&mut self, outbox: &mut Outbox, seq: u32, outcome: Outcome, now: Millis, random: f64) {
        let Some(i) = self.in_flight.iter().position(|(s, _)| *s == seq) else {
            return;
        };
        let (_, ids) = self.in_flight.remove(i);
        match outcome {
            Outcome::Done => {
                outbox.remove_ids(&ids);
                self.attempts = 0;
                self.not_before = 0;
            }
            Outcome::Retry(after) => {
                self.attempts = self.attempts.saturating_add(1);
                let ceiling = RETRY_BASE.saturating_mul(1 << self.attempts.min(20)).min(RETRY_CAP);
                let jitter = (ceiling as f64 * random.clamp(0.0, 1.0)) as Millis;
                self.not_before = now + jitter.max(after.unwrap_or(0).min(RETRY_CAP));
            }
            Outcome::Refused => {
                self.attempts = self.attempts.saturating_add(1);
                self.not_before = now + RETRY_CAP;
            }
        }
        self.observe(outbox, now);
    }

    /// Batches sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Failures in a row since the last delivered batch.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many messages wait outside the batches in flight. Counted, not searched: this
    /// runs after every call, and messages in flight stay in the outbox until answered
    /// (unless the outbox dropped them to keep its bound, which only makes this smaller).
    fn unsent_count(&self, outbox: &Outbox) -> usize {
        let flying: usize = self.in_flight.iter().map(|(_, ids)| ids.len()).sum();
        outbox.len().saturating_sub(flying)
    }

    /// Messages that wait and are not in a batch in flight, oldest first.
    fn unsent<'a>(&'a self, outbox: &'a Outbox) -> impl Iterator<Item = &'a String> + 'a {
        outbox.messages().iter().filter(move |m| {
            let id = message_id(m).unwrap_or_default();
            !self.in_flight.iter().any(|(_, ids)| ids.iter().any(|x| x == id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(n: usize) -> Outbox {
        let mut o = Outbox::default();
        for i in 0..n {
            o.push(format!("{{\"messageId\":\"{i:036}\",\"type\":\"track\",\"event\":\"E{i}\"}}"));
        }
        o
    }

    #[test]
    fn a_batch_waits_five_seconds_unless_twenty_messages_wait() {
        let mut d = Delivery::default();
        let o = outbox(3);
        d.observe(&o, 1_000);
        assert_eq!(d.take(&o, "k", 5_999, false), None);
        let b = d.take(&o, "k", 6_000, false).expect("due after five seconds");
        assert!(b.body.starts_with("{\"batch\":[{\"messageId\""), "{}", b.body);
        let parsed: miniserde::json::Value = miniserde::json::from_str(&b.body).expect("the batch body is JSON");
        let miniserde::json::Value::Object(o) = parsed else { panic!("an object") };
        assert!(matches!(&o["writeKey"], miniserde::json::Value::String(k) if k == "k"));
        assert!(matches!(&o["batch"], miniserde::json::Value::Array(a) if a.len() == 3));
        assert!(matches!(&o["sentAt"], miniserde::json::Value::String(t) if t == "1970-01-01T00:00:06.000Z"));

        let mut d = Delivery::default();
        let o = outbox(25);
        d.observe(&o, 1_000);
        let b = d.take(&o, "k", 1_000, false).expect("a full batch leaves at once");
        assert_eq!(b.body.matches("messageId").count(), BATCH_MESSAGES);
        assert_eq!(d.take(&o, "k", 1_000, false), None, "one batch in flight at a time");
    }

    #[test]
    fn delivered_messages_leave_the_outbox_and_failures_back_off() {
        let mut d = Delivery::default();
        let mut o = outbox(25);
        d.observe(&o, 0);
        let first = d.take(&o, "k", 0, false).unwrap();
        d.settle(&mut o, first.seq, Outcome::of(503, None), 10, 0.5);
        assert_eq!(o.len(), 25, "nothing lost on failure");
        assert_eq!(d.attempts(), 1);
        // Backoff: half of the 2 s ceiling, by the jitter given.
        assert_eq!(d.take(&o, "k", 1_009, false), None);
        let again = d.take(&o, "k", 1_010, false).expect("retried after the backoff");
        d.settle(&mut o, again.seq, Outcome::of(200, None), 1_020, 0.5);
        assert_eq!(o.len(), 5);
        assert_eq!(d.attempts(), 0);
    }

    #[test]
    fn retry_after_is_honoured_and_the_backoff_is_capped() {
        let mut d = Delivery::default();
        let mut o = outbox(1);
        d.observe(&o, 0);
        for _ in 0..40 {
            let b = d.take(&o, "k", 0, true).unwrap();
            d.settle(&mut o, b.seq, Outcome::Retry(None), 0, 0.999);
        }
        assert!(d.next_check(&o).unwrap() <= RETRY_CAP);
        let b = d.take(&o, "k", 0, true).unwrap();
        d.settle(&mut o, b.seq, Outcome::of(429, Some(90_000)), 0, 0.0);
        assert_eq!(d.next_check(&o), Some(90_000));
        // Back online, the wrapper calls flush(): an urgent take goes despite the backoff.
        assert!(d.take(&o, "k", 1, true).is_some(), "back online: no more waiting");
    }

    #[test]
    fn urgent_sends_ignore_the_delay_and_the_backoff_and_skip_what_is_in_flight() {
        let mut d = Delivery::default();
        let o = outbox(45);
        d.observe(&o, 0);
        let a = d.take(&o, "k", 0, true).unwrap();
        let b = d.take(&o, "k", 0, true).unwrap();
        let c = d.take(&o, "k", 0, true).unwrap();
        assert_eq!(d.take(&o, "k", 0, true), None, "everything is in flight");
        let count = |x: &Batch| x.body.matches("messageId").count();
        assert_eq!((count(&a), count(&b), count(&c)), (20, 20, 5));
        assert!(!b.body.contains(&format!("{:036}", 0)), "no message is in two batches");
        assert_eq!(d.in_flight(), 3);
    }

    #[test]
    fn a_batch_stays_within_the_keepalive_limit() {
        let mut d = Delivery::default();
        let mut o = Outbox::default();
        for i in 0..10 {
            o.push(format!("{{\"messageId\":\"{i:036}\",\"p\":\"{}\"}}", "x".repeat(20_000)));
        }
        let b = d.take(&o, "k", 0, true).unwrap();
        assert!(b.body.len() <= BATCH_BYTES + 200, "{}", b.body.len());
        assert_eq!(b.body.matches("messageId").count(), 3);
    }

    #[test]
    fn answers_are_read_as_the_server_means_them() {
        assert_eq!(Outcome::of(200, None), Outcome::Done);
        assert_eq!(Outcome::of(400, None), Outcome::Done);
        assert_eq!(Outcome::of(413, None), Outcome::Done);
        assert_eq!(Outcome::of(401, None), Outcome::Refused);
        assert_eq!(Outcome::of(0, None), Outcome::Retry(None));
        assert_eq!(Outcome::of(429, Some(5)), Outcome::Retry(Some(5)));
        assert_eq!(Outcome::of(502, None), Outcome::Retry(None));
    }

    #[test]
    fn an_unknown_or_repeated_answer_changes_nothing() {
        let mut d = Delivery::default();
        let mut o = outbox(2);
        d.observe(&o, 0);
        let b = d.take(&o, "k", 0, true).unwrap();
        d.settle(&mut o, b.seq + 7, Outcome::Done, 0, 0.0);
        assert_eq!(o.len(), 2);
        d.settle(&mut o, b.seq, Outcome::Done, 0, 0.0);
        d.settle(&mut o, b.seq, Outcome::Retry(None), 0, 0.0);
        assert_eq!((o.len(), d.attempts()), (0, 0));
    }
}
