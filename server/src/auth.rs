//! Keys on requests: the write key as HTTP Basic user with an empty password (what
//! Segment's libraries send), or a `writeKey` field in the body (what browsers send with
//! `sendBeacon`, which cannot set headers). Secret keys are compared in constant time.

use axum::http::{header, HeaderMap};
use base64::Engine;

use crate::error::ApiError;

/// The write key from `Authorization: Basic base64(key:)`, if the header is Basic.
/// A header of another scheme (for example an OAuth `Bearer` token) is ignored, so the body's
/// `writeKey` can still be used; a malformed Basic header is an error.
pub fn basic_user(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let bad = || ApiError::unauthorized("invalid_authorization", "the Authorization header is not valid HTTP Basic");
    let value = value.to_str().map_err(|_| bad())?.trim();
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err(bad()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let user = decoded.split_once(':').map_or(decoded.as_str(), |(user, _password)| user);
    Ok((!user.is_empty()).then(|| user.to_string()))
}

/// Compares two secrets without stopping at the first difference, so response times do not
/// reveal how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn reads_the_basic_user() {
        // base64("wk_abc:")
        assert_eq!(basic_user(&with_auth("Basic d2tfYWJjOg==")).unwrap().as_deref(), Some("wk_abc"));
        // base64("wk_abc") without the colon, as some clients send it
        assert_eq!(basic_user(&with_auth("basic d2tfYWJj")).unwrap().as_deref(), Some("wk_abc"));
        assert_eq!(basic_user(&HeaderMap::new()).unwrap(), None);
        assert_eq!(basic_user(&with_auth("Bearer token")).unwrap(), None);
        assert!(basic_user(&with_auth("Basic !!!")).is_err());
        assert_eq!(basic_user(&with_auth("Basic Og==")).unwrap(), None); // ":"
    }

    #[test]
    fn compares_in_full() {
        assert!(constant_time_eq(b"sk_1", b"sk_1"));
        assert!(!constant_time_eq(b"sk_1", b"sk_2"));
        assert!(!constant_time_eq(b"sk_1", b"sk_10"));
    }
}
