//! Signing deliveries. Every delivery carries
//! `Nudge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, "<t>.<body>")>`,
//! so a receiver can check that the body came from Nudge, unchanged, and recently (the
//! timestamp is signed too, so an old delivery cannot be replayed as new), and
//! `Nudge-Idempotency-Key`, the same on every attempt of one delivery.

use sha2::{Digest, Sha256};

use crate::auth::constant_time_eq;
use crate::hmac::{hex, hmac_sha256};

/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "Nudge-Signature";
/// The header with the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Nudge-Idempotency-Key";

/// A fresh signing secret: `whsec_` and 48 hex digits.
pub fn new_secret() -> Result<String, String> {
    let hex = crate::sites::random_hex(24).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(format!("whsec_{hex}"))
}

/// The `Nudge-Signature` value for `body` sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    format!("t={unix_seconds},v1={}", hex(&mac(secret, unix_seconds, body)))
}

fn mac(secret: &str, unix_seconds: i64, body: &[u8]) -> [u8; 32] {
    let mut message = format!("{unix_seconds}.").into_bytes();
    message.extend_from_slice(body);
    hmac_sha256(secret.as_bytes(), &message)
}

/// What a receiver does: whether `header` (a `Nudge-Signature` value) signs `body` with
/// `secret` at a time within `tolerance_seconds` of `now_seconds`. Any `v1=` entry may
/// match (room for two during a secret rotation).
pub fn verify(secret: &str, header: &str, body: &[u8], now_seconds: i64, tolerance_seconds: i64) -> bool {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now_seconds - t).abs() > tolerance_seconds {
        return false;
    }
    let expected = hex(&mac(secret, t, body));
    candidates.iter().any(|c| constant_time_eq(c.as_bytes(), expected.as_bytes()))
}

/// The idempotency key of the delivery of message `message_id` to webhook `webhook_id`:
/// the same on every attempt, different for every (webhook, message). Derived rather than
/// copied so that it is always a short header-safe token whatever the client's messageId.
pub fn idempotency_key(webhook_id: &str, message_id: &str) -> String {
    let digest = Sha256::new().chain_update(message_id.as_bytes()).finalize();
    format!("{webhook_id}.{}", hex(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_detect_changes() {
        let header = signature("whsec_test", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1=") && header.len() == 16 + 64, "{header}");
        assert!(verify("whsec_test", &header, b"{\"a\":1}", 1_700_000_100, 300));
        assert!(!verify("whsec_test", &header, b"{\"a\":2}", 1_700_000_100, 300), "body changed");
        assert!(!verify("whsec_other", &header, b"{\"a\":1}", 1_700_000_100, 300), "other secret");
        assert!(!verify("whsec_test", &header, b"{\"a\":1}", 1_700_001_000, 300), "too old");
        let forged = header.replace("t=1700000000", "t=1700000900");
        assert!(!verify("whsec_test", &forged, b"{\"a\":1}", 1_700_001_000, 300), "timestamp is signed");
        assert!(!verify("whsec_test", "v1=00", b"", 0, 300));
    }

    #[test]
    fn the_signature_is_hmac_of_timestamp_dot_body() {
        // Computed independently: python3 -c "import hmac,hashlib;
        // print(hmac.new(b'whsec_test', b'1700000000.{}', hashlib.sha256).hexdigest())"
        assert_eq!(
            signature("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let a = idempotency_key("wh_1", "m-1");
        assert_eq!(a, idempotency_key("wh_1", "m-1"));
        assert_ne!(a, idempotency_key("wh_2", "m-1"));
        assert_ne!(a, idempotency_key("wh_1", "m-2"));
        assert!(idempotency_key("wh_1", "ü \n x").bytes().all(|b| b.is_ascii_graphic()));
    }
}
