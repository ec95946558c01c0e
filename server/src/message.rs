//! One Segment message (`track`, `page`, `screen`, `identify`, `group`, `alias`): checked
//! against the Segment HTTP Tracking API's rules and turned into a [`NewEvent`]. A message
//! that breaks a rule gets a [`Rejection`] naming the rule; nothing here panics on input.

use serde_json::{Map, Value};

use crate::limits::MAX_MESSAGE_BYTES;
use crate::store::NewEvent;

/// The message types the server accepts.
pub const KINDS: [&str; 6] = ["track", "page", "screen", "identify", "group", "alias"];

/// Longest `messageId` (Segment asks for fewer than 100 characters).
pub const MAX_MESSAGE_ID: usize = 100;
/// Longest `userId`, `anonymousId`, `groupId`, `previousId`, event or page name.
pub const MAX_ID: usize = 1024;

/// Why one message was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable code, e.g. `missing_id`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

fn reject(code: &'static str, message: impl Into<String>) -> Rejection {
    Rejection { code, message: message.into() }
}

/// What the request around a message supplies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Defaults<'a> {
    /// The type implied by a single-call route (`/v1/track` means `track`).
    pub kind: Option<&'static str>,
    /// Batch-level `context`, merged under each message's own context.
    pub context: Option<&'a Map<String, Value>>,
    /// Batch-level `integrations`, used by messages that have none.
    pub integrations: Option<&'a Value>,
    /// Batch-level `sentAt`, in ms, for messages without their own.
    pub sent_at: Option<i64>,
    /// When the request arrived, in ms.
    pub received_ms: i64,
}

/// Checks one message (its JSON text as sent) and prepares it for storage.
///
/// Without a `messageId` the server makes one (`api-` and 32 random hex digits, like
/// Segment's API); such a message cannot be deduplicated if it is sent again, which is why
/// Segment's libraries (and Nudge's SDK) always send one.
pub fn parse(raw: &str, defaults: &Defaults<'_>) -> Result<NewEvent, Rejection> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(reject("message_too_large", format!("a message may be at most {MAX_MESSAGE_BYTES} bytes")));
    }
    let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(raw) else {
        return Err(reject("invalid_message", "a message must be a JSON object"));
    };
    let mut rewrite = false;

    let kind = match (msg.get("type"), defaults.kind) {
        (None | Some(Value::Null), Some(kind)) => {
            msg.insert("type".into(), Value::String(kind.into()));
            rewrite = true;
            kind
        }
        (Some(Value::String(t)), implied) => {
            let kind = KINDS.iter().copied().find(|k| k == t).ok_or_else(|| {
                reject("invalid_type", format!("type must be one of {}, not {t:?}", KINDS.join(", ")))
            })?;
            if implied.is_some_and(|implied| implied != kind) {
                return Err(reject(
                    "invalid_type",
                    format!("a {kind} message sent to the {} route", implied.unwrap_or("")),
                ));
            }
            kind
        }
        _ => return Err(reject("invalid_type", format!("type must be one of {}", KINDS.join(", ")))),
    };

    let user_id = id_field(&msg, "userId")?;
    let anonymous_id = id_field(&msg, "anonymousId")?;
    let mut event = None;
    match kind {
        "alias" if user_id.is_none() || id_field(&msg, "previousId")?.is_none() => {
            return Err(reject("missing_id", "alias needs userId and previousId"));
        }
        "alias" => {}
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(reject("missing_id", "a message needs a userId or an anonymousId"));
        }
        "track" => {
            event = id_field(&msg, "event")?;
            if event.is_none() {
                return Err(reject("missing_event", "track needs an event name"));
            }
        }
        "group" if id_field(&msg, "groupId")?.is_none() => {
            return Err(reject("missing_group_id", "group needs a groupId"));
        }
        "page" | "screen" => event = id_field(&msg, "name")?,
        _ => {}
    }

    for field in ["properties", "traits", "context", "integrations"] {
        if !matches!(msg.get(field), None | Some(Value::Null | Value::Object(_))) {
            return Err(reject("invalid_field", format!("{field} must be an object")));
        }
    }

    let message_id = match msg.get("messageId") {
        None | Some(Value::Null) => {
            let generated = crate::sites::random_hex(16)
                .map(|hex| format!("api-{hex}"))
                .map_err(|_| reject("internal", "no randomness for a messageId; send one"))?;
            msg.insert("messageId".into(), Value::String(generated.clone()));
            rewrite = true;
            generated
        }
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_MESSAGE_ID && !id.contains('\0') => id.clone(),
        _ => {
            return Err(reject(
                "invalid_message_id",
                format!("messageId must be a non-empty string of at most {MAX_MESSAGE_ID} bytes"),
            ))
        }
    };

    let timestamp = match msg.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(
            parse_time(t)
                .ok_or_else(|| reject("invalid_timestamp", format!("timestamp {t:?} is not an ISO 8601 date-time")))?,
        ),
        Some(_) => return Err(reject("invalid_timestamp", "timestamp must be an ISO 8601 string")),
    };
    let sent_at = match msg.get("sentAt") {
        Some(Value::String(t)) => parse_time(t),
        _ => None,
    }
    .or(defaults.sent_at);
    let received = defaults.received_ms;
    // Segment's clock-skew correction: the device's clock may be off, but the gap between
    // the event and the send is right, so place the event that long before arrival.
    let timestamp_ms = match (timestamp, sent_at) {
        (Some(t), Some(sent)) => received.saturating_sub(sent.saturating_sub(t)).max(0),
        (Some(t), None) => t,
        (None, _) => received,
    };

    if msg.remove("writeKey").is_some() {
        rewrite = true;
    }
    if let Some(batch_context) = defaults.context {
        let mut context = batch_context.clone();
        if let Some(Value::Object(own)) = msg.remove("context") {
            context.extend(own);
        }
        msg.insert("context".into(), Value::Object(context));
        rewrite = true;
    }
    if let Some(integrations) = defaults.integrations {
        if matches!(msg.get("integrations"), None | Some(Value::Null)) {
            msg.insert("integrations".into(), integrations.clone());
            rewrite = true;
        }
    }
    let body = if rewrite {
        serde_json::to_string(&msg).map_err(|_| reject("invalid_message", "message cannot be re-encoded"))?
    } else {
        raw.to_string()
    };

    Ok(NewEvent { message_id, kind, event, user_id, anonymous_id, timestamp_ms, received_ms: received, body })
}

/// An ISO 8601 date-time in ms since the epoch (the core's parser, so server and browser
/// read times alike).
pub fn parse_time(text: &str) -> Option<i64> {
    nudge::time::parse_iso(text).ok().and_then(|ms| i64::try_from(ms).ok())
}

/// An identifier field: a string or a number (Segment's libraries accept both), absent when
/// missing, null or empty.
fn id_field(msg: &Map<String, Value>, name: &str) -> Result<Option<String>, Rejection> {
    let text = match msg.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(reject("invalid_field", format!("{name} must be a string"))),
    };
    if text.len() > MAX_ID {
        return Err(reject("invalid_field", format!("{name} may be at most {MAX_ID} bytes")));
    }
    if text.contains('\0') {
        return Err(reject("invalid_field", format!("{name} may not contain NUL")));
    }
    Ok((!text.is_empty()).then_some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn defaults() -> Defaults<'static> {
        Defaults { received_ms: NOW, ..Defaults::default() }
    }

    #[test]
    fn a_track_message_is_stored_as_sent() {
        let raw = r#"{"type":"track","event":"Product Viewed","anonymousId":"a1","messageId":"m1","properties":{"category":"TVs"}}"#;
        let e = parse(raw, &defaults()).unwrap();
        assert_eq!(
            (e.kind, e.event.as_deref(), e.anonymous_id.as_deref()),
            ("track", Some("Product Viewed"), Some("a1"))
        );
        assert_eq!(e.message_id, "m1");
        assert_eq!(e.body, raw);
        assert_eq!(e.timestamp_ms, NOW);
    }

    #[test]
    fn rules_of_the_tracking_api() {
        let code = |raw: &str| parse(raw, &defaults()).unwrap_err().code;
        assert_eq!(code("[]"), "invalid_message");
        assert_eq!(code(r#"{"type":"shout","userId":"u"}"#), "invalid_type");
        assert_eq!(code(r#"{"type":"track","event":"E"}"#), "missing_id");
        assert_eq!(code(r#"{"type":"track","userId":"u"}"#), "missing_event");
        assert_eq!(code(r#"{"type":"alias","userId":"u"}"#), "missing_id");
        assert_eq!(code(r#"{"type":"group","userId":"u"}"#), "missing_group_id");
        assert_eq!(code(r#"{"type":"identify","userId":"u","traits":[1]}"#), "invalid_field");
        assert_eq!(code(r#"{"type":"identify","userId":{"a":1}}"#), "invalid_field");
        assert_eq!(code(r#"{"type":"identify","userId":"u","messageId":7}"#), "invalid_message_id");
        assert_eq!(code(r#"{"type":"identify","userId":"u","timestamp":"yesterday"}"#), "invalid_timestamp");
        assert_eq!(code(r#"{"type":"identify","userId":"u\u0000"}"#), "invalid_field");
        let big = format!(r#"{{"type":"identify","userId":"u","traits":{{"x":"{}"}}}}"#, "x".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(code(&big), "message_too_large");
    }

    #[test]
    fn numbers_and_nulls_as_identifiers() {
        let e = parse(r#"{"type":"identify","userId":42,"anonymousId":null,"messageId":"m"}"#, &defaults()).unwrap();
        assert_eq!((e.user_id.as_deref(), e.anonymous_id), (Some("42"), None));
    }

    #[test]
    fn missing_message_id_is_generated_and_route_sets_type() {
        let d = Defaults { kind: Some("page"), ..defaults() };
        let e = parse(r#"{"userId":"u","name":"Home","writeKey":"wk"}"#, &d).unwrap();
        assert!(e.message_id.starts_with("api-") && e.message_id.len() == 36);
        assert_eq!((e.kind, e.event.as_deref()), ("page", Some("Home")));
        let body: Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(body["messageId"], Value::String(e.message_id.clone()));
        assert_eq!(body["type"], "page");
        assert!(body.get("writeKey").is_none());
        assert_eq!(parse(r#"{"type":"track","userId":"u","event":"E"}"#, &d).unwrap_err().code, "invalid_type");
    }

    #[test]
    fn clock_skew_is_corrected_with_sent_at() {
        // The device clock is an hour fast; the event happened 2 s before the send.
        let raw = r#"{"type":"track","userId":"u","event":"E","messageId":"m","timestamp":"2027-01-15T09:00:00.000Z"}"#;
        let sent = parse_time("2027-01-15T09:00:02.000Z");
        let e = parse(raw, &Defaults { sent_at: sent, ..defaults() }).unwrap();
        assert_eq!(e.timestamp_ms, NOW - 2000);
        let e = parse(raw, &defaults()).unwrap();
        assert_eq!(Some(e.timestamp_ms), parse_time("2027-01-15T09:00:00.000Z"));
    }

    #[test]
    fn batch_context_goes_under_the_message_context() {
        let batch: Value = serde_json::json!({"library": {"name": "batch"}, "ip": "1.2.3.4"});
        let d = Defaults { context: batch.as_object(), ..defaults() };
        let e = parse(r#"{"type":"identify","userId":"u","messageId":"m","context":{"ip":"5.6.7.8"}}"#, &d).unwrap();
        let body: Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(body["context"]["ip"], "5.6.7.8");
        assert_eq!(body["context"]["library"]["name"], "batch");
    }
}
