//! CORS: only a site's allowed origins may send from a browser.
//!
//! A preflight (`OPTIONS`) carries no key, so it is answered for any origin that some site
//! allows; the request that follows is checked against the origins of the site whose key
//! it carries, and refused (403, nothing stored, no `Access-Control-Allow-Origin`) if its
//! origin is not one of them. Simple requests (`text/plain` from `sendBeacon`) skip the
//! preflight and meet the same check. Requests without `Origin` (servers) are not browsers
//! and are judged by their key alone.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::App;
use crate::store::Site;

/// Methods browsers may use.
const ALLOW_METHODS: &str = "POST, GET, OPTIONS";
/// Request headers browsers may send: the key, the body's type and encoding, config
/// revalidation, and the user a profile read-back is for.
const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, Content-Encoding, If-None-Match, X-Nudge-User-Id, X-Nudge-User-Hash";
/// Response headers scripts may read.
const EXPOSE_HEADERS: &str = "Retry-After, ETag";
/// How long a browser may reuse a preflight answer, in seconds.
const MAX_AGE: &str = "3600";

/// The request's `Origin` header, if it has a readable one.
pub fn request_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN)?.to_str().ok()
}

/// Whether `site` lets a browser on `origin` send.
pub fn site_allows(site: &Site, origin: &str) -> bool {
    site.origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

/// The 403 for a browser origin the site does not allow.
pub fn forbidden(origin: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed", format!("origin {origin} may not send for this site"))
}

/// Lets the browser on `origin` read `response`.
pub fn allow(response: &mut Response, origin: &str) {
    let Ok(value) = HeaderValue::from_str(origin) else { return };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers `OPTIONS`: 204 with the allowed methods and headers for an origin that some site
/// allows, 403 without CORS headers otherwise.
pub async fn preflight(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(origin) = request_origin(&headers) else {
        return ApiError::bad_request("not_a_preflight", "a preflight needs an Origin header").into_response();
    };
    match app.store.origin_known(origin).await {
        Ok(true) => {}
        Ok(false) => return forbidden(origin).into_response(),
        Err(e) => return ApiError::storage(&e).into_response(),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    allow(&mut response, origin);
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    response
}
