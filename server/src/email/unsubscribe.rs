//! One-click unsubscribe: every email links to `GET|POST /v1/unsubscribe?token=...` (and
//! names it in `List-Unsubscribe`; mail clients POST `List-Unsubscribe=One-Click` to it,
//! RFC 8058). The token is `SITE.PERSON.MAC`: the site id, the person's key (base64url)
//! and an HMAC-SHA256 of both under the site's secret key, so nobody can make one for
//! someone else. Following it stores a `Consent Preference Updated` message with
//! marketing off for that person, through the normal ingest path (so profiles, webhooks
//! and the email worker see it), and shows a short plain page. No key is needed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::compose::escape;
use super::person::CONSENT_UPDATED;
use crate::auth::constant_time_eq;
use crate::hmac::{hex, hmac_sha256};
use crate::identity::Person;
use crate::state::App;
use crate::store::NewEvent;

fn mac(secret_key: &str, site_id: &str, person_key: &str) -> String {
    hex(&hmac_sha256(secret_key.as_bytes(), format!("nudge-unsubscribe\n{site_id}\n{person_key}").as_bytes())[..16])
}

/// The token for a person of a site.
pub fn token(secret_key: &str, site_id: &str, person: &Person) -> String {
    let key = person.key();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes());
    format!("{site_id}.{encoded}.{}", mac(secret_key, site_id, &key))
}

/// The site id and person a token names, if `secret_key` (looked up by the site id) signed
/// it.
pub fn verify(token: &str, secret_key_of: impl FnOnce(&str) -> Option<String>) -> Option<(String, Person)> {
    let mut parts = token.trim().split('.');
    let (site_id, encoded, given) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let key = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    let person = Person::from_key(&key)?;
    let secret = secret_key_of(site_id)?;
    constant_time_eq(mac(&secret, site_id, &key).as_bytes(), given.as_bytes()).then(|| (site_id.to_string(), person))
}

/// The link for a token under the server's public URL.
pub fn link(public_url: &str, token: &str) -> String {
    format!("{}/v1/unsubscribe?token={token}", public_url.trim_end_matches('/'))
}

/// The query of `/v1/unsubscribe`.
#[derive(Debug, Default, Deserialize)]
pub struct UnsubscribeQuery {
    /// The token from the email.
    pub token: Option<String>,
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em\">\
         <h1 style=\"font-size:1.4em\">{t}</h1><p>{x}</p></body></html>",
        t = escape(title),
        x = escape(text)
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

/// `GET|POST /v1/unsubscribe?token=...`: revokes the person's marketing consent.
pub async fn handle(State(app): State<Arc<App>>, Query(q): Query<UnsubscribeQuery>) -> Response {
    let invalid = || {
        page(
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "This unsubscribe link is not valid. Use the link from the latest email.",
        )
    };
    let Some(token) = q.token.filter(|t| t.len() < 2_000) else { return invalid() };
    let site_id = token.split('.').next().unwrap_or("").to_string();
    let site = {
        let mut conn = match app.store.connection().await {
            Ok(c) => c,
            Err(_) => return page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "Please try again in a moment."),
        };
        match super::person::site(&mut conn.db(), &site_id).await {
            Ok(site) => site,
            Err(_) => return page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "Please try again in a moment."),
        }
    };
    let Some((name, secret)) = site else { return invalid() };
    let Some((site_id, person)) = verify(&token, |_| Some(secret)) else { return invalid() };
    let now = crate::state::now_ms();
    let digest = Sha256::digest(format!("{}\n{now}", person.key()).as_bytes());
    let message_id = format!("nudge-unsubscribe-{}", hex(&digest[..16]));
    let body = json!({
        "type": "track",
        "event": CONSENT_UPDATED,
        "messageId": message_id,
        "userId": person.user_id(),
        "anonymousId": person.anonymous_id(),
        "timestamp": nudge::time::to_iso(now.max(0) as u64),
        "properties": { "marketing": false, "source": "unsubscribe-link" },
        "context": {
            "library": { "name": "nudge-server", "version": env!("CARGO_PKG_VERSION") },
            "consent": { "categoryPreferences": { "marketing": false } }
        },
    });
    let event = NewEvent {
        message_id,
        kind: "track",
        event: Some(CONSENT_UPDATED.into()),
        user_id: person.user_id().map(str::to_string),
        anonymous_id: person.anonymous_id().map(str::to_string),
        timestamp_ms: now,
        received_ms: now,
        body: body.to_string(),
    };
    match app.store.ingest(&site_id, vec![event], now).await {
        Ok(_) => {
            page(StatusCode::OK, "You are unsubscribed", &format!("You will get no more marketing emails from {name}."))
        }
        Err(_) => page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "Please try again in a moment."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_site_key_and_person() {
        let person = Person::Anonymous("anon.with.dots".into());
        let t = token("sk_1", "site_1", &person);
        assert_eq!(verify(&t, |s| (s == "site_1").then(|| "sk_1".into())), Some(("site_1".into(), person.clone())));
        assert_eq!(verify(&t, |_| Some("sk_2".into())), None);
        let other = token("sk_1", "site_1", &Person::User("u".into()));
        let forged = format!("{}.{}", &t[..t.rfind('.').unwrap()], other.rsplit('.').next().unwrap());
        assert_eq!(verify(&forged, |_| Some("sk_1".into())), None);
        assert_eq!(verify("x", |_| Some("sk_1".into())), None);
    }
}
