//! The marketer's dashboard: `GET /dashboard` (a static page, its script and its style,
//! embedded in the binary) and `GET /v1/dashboard/summary` (secret key, [`summary`]).
//!
//! The page holds no data and no key: the marketer pastes the site's secret key, the page
//! keeps it in `sessionStorage` and sends it as HTTP Basic user to the summary and to
//! `GET /v1/changes`. Served with a strict Content-Security-Policy: only the page's own
//! script and style, no inline code, no framing; the script renders data with
//! `textContent` and SVG elements only.

pub mod summary;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");
const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
                    <rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#2a5d9f\"/>\
                    <rect x=\"3\" y=\"9\" width=\"2\" height=\"4\" fill=\"#fff\"/>\
                    <rect x=\"7\" y=\"6\" width=\"2\" height=\"7\" fill=\"#fff\"/>\
                    <rect x=\"11\" y=\"3\" width=\"2\" height=\"10\" fill=\"#fff\"/></svg>";

/// The policy of the page and its files.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /dashboard`.
pub async fn page() -> Response {
    file(PAGE, "text/html; charset=utf-8")
}

/// `GET /dashboard/dashboard.js`.
pub async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /dashboard/dashboard.css`.
pub async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
}

/// `GET /dashboard/favicon.svg`.
pub async fn icon() -> Response {
    file(ICON, "image/svg+xml")
}
