//! What the shell reads from the browser for each call: the clock, randomness, the page,
//! and the few navigator facts fixed for the page's life.

use crate::message::PageInfo;
use wasm_bindgen::JsValue;

/// Milliseconds since the epoch (`Date.now()`).
pub fn now() -> u64 {
    let t = js_sys::Date::now();
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

/// 32 hex digits of randomness from `crypto.getRandomValues` (Math.random if missing).
pub fn seed() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The current page: URL, title and referrer.
pub fn page() -> PageInfo {
    let Some(w) = web_sys::window() else {
        return PageInfo::default();
    };
    let url = w.location().href().unwrap_or_default();
    let (title, referrer) = match w.document() {
        Some(d) => (d.title(), d.referrer()),
        None => (String::new(), String::new()),
    };
    // Clipped so that one odd page cannot make every message (and the outbox) huge.
    let clip = crate::json::clip;
    PageInfo { url: clip(&url, 2048), title: clip(&title, 512), referrer: clip(&referrer, 2048) }
}

/// `navigator.userAgent`, `navigator.language` and `navigator.globalPrivacyControl`.
pub fn navigator_facts() -> (String, String, bool) {
    let Some(w) = web_sys::window() else {
        return (String::new(), String::new(), false);
    };
    let n = w.navigator();
    let gpc =
        js_sys::Reflect::get(&n, &JsValue::from_str("globalPrivacyControl")).map(|v| v.is_truthy()).unwrap_or(false);
    (n.user_agent().unwrap_or_default(), n.language().unwrap_or_default(), gpc)
}

/// Writes a debug line to the console.
pub fn log(text: &str) {
    web_sys::console::log_2(&JsValue::from_str("[nudge]"), &JsValue::from_str(text));
}

/// Writes an error line to the console.
pub fn log_error(text: &str) {
    web_sys::console::error_2(&JsValue::from_str("[nudge]"), &JsValue::from_str(text));
}
