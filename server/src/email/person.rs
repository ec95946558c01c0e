//! What an email job knows about its person, read at send time: their messages (all of
//! their browsers once identified), their marketing consent and their address.
//!
//! Marketing consent, latest first:
//! 1. explicit acts: a `Consent Preference Updated` (its `properties.marketing`, or its
//!    context's consent) and the email capture (`Coupon Issued`, a grant unless its own
//!    context says marketing is off): the latest of these decides;
//! 2. without any explicit act, the consent in the context of the person's latest message
//!    that carries one.
//!
//! Explicit acts win over context consent because a browser keeps sending the consent it
//! last knew: after an unsubscribe link (stored server-side as a `Consent Preference
//! Updated` with marketing off) the shopper's next page view still says `marketing: true`,
//! and must not subscribe them again. Only a new explicit grant does.

use serde_json::Value;

use crate::identity::{self, Person};
use crate::store::{json_list, on_db, stored_event, Db, StoreError, StoredEvent, EVENT_COLUMNS};

/// The event that records consent choices.
pub const CONSENT_UPDATED: &str = "Consent Preference Updated";
/// The event the server stores when it issues a coupon (the email capture).
pub const COUPON_ISSUED: &str = "Coupon Issued";
/// Most messages of a person read for one email (the latest ones).
const MAX_EVENTS: i64 = 5_000;

/// A stored message with its body parsed.
#[derive(Debug, Clone)]
pub struct Message {
    /// As stored.
    pub stored: StoredEvent,
    /// The body.
    pub body: Value,
}

impl Message {
    /// Parses a stored message (a body that is not JSON reads as `null`).
    pub fn new(stored: StoredEvent) -> Message {
        let body = serde_json::from_str(&stored.event.body).unwrap_or(Value::Null);
        Message { stored, body }
    }

    /// The track event name, for track messages.
    pub fn track(&self) -> Option<&str> {
        self.stored.event.event.as_deref().filter(|_| self.stored.event.kind == "track")
    }

    /// `properties` (or `traits` for identify), as an object or `null`.
    pub fn props(&self) -> &Value {
        let field = if self.stored.event.kind == "identify" { "traits" } else { "properties" };
        self.body.get(field).unwrap_or(&Value::Null)
    }

    /// When it happened, ms.
    pub fn at(&self) -> i64 {
        self.stored.event.timestamp_ms
    }

    fn context_marketing(&self) -> Option<bool> {
        self.body.pointer("/context/consent/categoryPreferences/marketing").and_then(Value::as_bool)
    }
}

/// The person a message belongs to now.
pub async fn person_of(db: &mut Db<'_>, site_id: &str, e: &StoredEvent) -> Result<Option<Person>, StoreError> {
    Ok(match (&e.event.user_id, &e.event.anonymous_id) {
        (Some(u), _) => Some(Person::User(u.clone())),
        (None, Some(a)) => Some(identity::person_of_anonymous(db, site_id, a).await?),
        (None, None) => None,
    })
}

/// A site's message by `messageId`.
pub async fn message(db: &mut Db<'_>, site_id: &str, message_id: &str) -> Result<Option<Message>, StoreError> {
    let row = on_db!(db, |c, _d| {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND message_id = $2");
        match sqlx::query(&sql).bind(site_id).bind(message_id).fetch_optional(&mut *c).await? {
            Some(r) => Some(stored_event(&r)?),
            None => None,
        }
    });
    Ok(row.map(Message::new))
}

/// The person's latest messages (up to 5,000), oldest first (by time, then `messageId`).
pub async fn messages(db: &mut Db<'_>, site_id: &str, person: &Person) -> Result<Vec<Message>, StoreError> {
    let (user, anons) = match person {
        Person::User(u) => (Some(u.as_str()), identity::anonymous_ids(db, site_id, u).await?),
        Person::Anonymous(a) => (None, vec![a.clone()]),
    };
    let rows = on_db!(db, |c, d| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND (user_id = $2 OR (user_id IS NULL AND {})) \
             ORDER BY timestamp_ms DESC, message_id DESC LIMIT $4",
            d.is_in("anonymous_id", "$3")
        );
        let rows = sqlx::query(&sql)
            .bind(site_id)
            .bind(user.unwrap_or(""))
            .bind(json_list(&anons))
            .bind(MAX_EVENTS)
            .fetch_all(&mut *c)
            .await?;
        rows.iter().map(stored_event).collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    let mut out: Vec<Message> = rows.into_iter().map(Message::new).collect();
    out.reverse();
    Ok(out)
}

/// The person's marketing consent from their messages (oldest first), as the module doc
/// says; `None` when nothing was ever recorded.
pub fn marketing(messages: &[Message]) -> Option<bool> {
    let explicit = messages.iter().rev().find_map(|m| match m.track() {
        Some(CONSENT_UPDATED) => m
            .props()
            .get("marketing")
            .and_then(Value::as_bool)
            .or_else(|| m.props().pointer("/categoryPreferences/marketing").and_then(Value::as_bool))
            .or_else(|| m.context_marketing()),
        Some(COUPON_ISSUED) => Some(m.context_marketing() != Some(false)),
        _ => None,
    });
    explicit.or_else(|| messages.iter().rev().find_map(Message::context_marketing))
}

/// The address of the latest identify that gave `traits.email`, else of the latest coupon.
pub fn address(messages: &[Message]) -> Option<String> {
    let from = |kind: &str, field: &str| {
        messages.iter().rev().find_map(|m| {
            let matches = if kind == "identify" { m.stored.event.kind == "identify" } else { m.track() == Some(kind) };
            matches.then(|| m.props().get(field).and_then(Value::as_str).map(str::to_string)).flatten()
        })
    };
    from("identify", "email").or_else(|| from(COUPON_ISSUED, "email")).and_then(|a| checked_address(&a))
}

/// An address fit to send to (`local@domain`, no spaces or angle brackets), trimmed.
pub fn checked_address(a: &str) -> Option<String> {
    let a = a.trim();
    let (local, domain) = a.split_once('@')?;
    let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if bad(local) || bad(domain) || domain.contains('@') || a.len() > 254 {
        return None;
    }
    Some(a.to_string())
}

/// A site's name and secret key.
pub async fn site(db: &mut Db<'_>, site_id: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(on_db!(db, |c, _d| {
        sqlx::query_as("SELECT name, secret_key FROM sites WHERE id = $1").bind(site_id).fetch_optional(&mut *c).await?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEvent;

    fn msg(kind: &'static str, event: Option<&str>, body: Value, at: i64) -> Message {
        Message::new(StoredEvent {
            seq: at,
            event: NewEvent {
                message_id: format!("m{at}"),
                kind,
                event: event.map(str::to_string),
                user_id: None,
                anonymous_id: Some("a".into()),
                timestamp_ms: at,
                received_ms: at,
                body: body.to_string(),
            },
        })
    }

    fn ctx(marketing: bool) -> Value {
        serde_json::json!({"properties": {}, "context": {"consent": {"categoryPreferences": {"marketing": marketing}}}})
    }

    #[test]
    fn explicit_acts_win_over_the_consent_browsers_keep_sending() {
        let view = |m, at| msg("track", Some("Product Viewed"), ctx(m), at);
        assert_eq!(marketing(&[]), None);
        assert_eq!(marketing(&[view(true, 1)]), Some(true));
        assert_eq!(marketing(&[view(true, 1), view(false, 2)]), Some(false));
        let unsubscribed =
            msg("track", Some(CONSENT_UPDATED), serde_json::json!({"properties": {"marketing": false}}), 3);
        // The browser still says true after the unsubscribe: it does not count.
        assert_eq!(marketing(&[view(true, 1), unsubscribed.clone(), view(true, 4)]), Some(false));
        let coupon = msg("track", Some(COUPON_ISSUED), serde_json::json!({"properties": {"email": "a@b.c"}}), 5);
        assert_eq!(marketing(&[unsubscribed.clone(), coupon.clone()]), Some(true));
        let declined = msg("track", Some(COUPON_ISSUED), ctx(false), 5);
        assert_eq!(marketing(&[view(true, 1), declined]), Some(false));
        assert_eq!(address(&[coupon]), Some("a@b.c".into()));
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(checked_address(" x@y.z "), Some("x@y.z".into()));
        for bad in ["", "x", "@y", "x@", "x y@z", "x@y@z", "<x@y>", "x@y,z@w"] {
            assert_eq!(checked_address(bad), None, "{bad}");
        }
    }
}
