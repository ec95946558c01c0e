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

/// Random bytes fetched per `crypto.getRandomValues` call: one call serves 256 seeds (the
/// call costs microseconds, more than the rest of a `track()`), so a
/// burst of `track()` calls does not cross into JS for randomness on every call.
const POOL_BYTES: usize = 4096;

thread_local! {
    /// Unused random bytes and how many of them are already used.
    static POOL: std::cell::RefCell<([u8; POOL_BYTES], usize)> = const { std::cell::RefCell::new(([0; POOL_BYTES], POOL_BYTES)) };
}

/// Fills `pool` from `crypto.getRandomValues` (Math.random if it is missing or throws).
fn refill(pool: &mut [u8; POOL_BYTES]) {
    // getRandomValues takes at most 65,536 bytes at a time.
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(pool).is_ok());
    if !filled {
        for b in pool.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
}

/// 32 hex digits of randomness from `crypto.getRandomValues` (Math.random if missing).
pub fn seed() -> String {
    let mut bytes = [0u8; 16];
    POOL.with(|p| {
        let Ok(mut p) = p.try_borrow_mut() else {
            refill_into(&mut bytes);
            return;
        };
        let (pool, used) = &mut *p;
        if *used + bytes.len() > POOL_BYTES {
            refill(pool);
            *used = 0;
        }
        bytes.copy_from_slice(pool.get(*used..*used + 16).unwrap_or(&[0; 16]));
        // Spent bytes are overwritten so that they never serve twice.
        pool.get_mut(*used..*used + 16).into_iter().for_each(|b| b.fill(0));
        *used += 16;
    });
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (pair, &b) in hex.chunks_exact_mut(2).zip(bytes.iter()) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    crate::identity::ascii(&hex)
}

/// Direct randomness for the (unreachable in practice) case of a re-entrant call.
fn refill_into(bytes: &mut [u8; 16]) {
    let mut pool = [0u8; POOL_BYTES];
    refill(&mut pool);
    bytes.copy_from_slice(&pool[..16]);
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

/// The parts one after the other (a loop: smaller in the Wasm than `concat`).
pub fn cat(parts: &[&str]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push_str(p);
    }
    s
}

/// Writes a debug line to the console.
pub fn log(text: &str) {
    web_sys::console::log_2(&JsValue::from_str("[nudge]"), &JsValue::from_str(text));
}

/// Writes an error line to the console.
pub fn log_error(text: &str) {
    web_sys::console::error_2(&JsValue::from_str("[nudge]"), &JsValue::from_str(text));
}
