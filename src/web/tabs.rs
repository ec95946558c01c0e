//! Reaching the site's other tabs: a BroadcastChannel to talk, and a Web Lock to elect the
//! one tab that owns the profile (held for the tab's whole life, so it passes on by itself
//! when that tab closes). Without either API the tab acts alone.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Opens the site's channel.
pub fn channel(name: &str) -> Option<web_sys::BroadcastChannel> {
    web_sys::BroadcastChannel::new(name).ok()
}

/// Asks for the leader lock. `granted` runs once this tab holds it, and keeps it until
/// the tab closes; `refused` runs if the request fails. Returns false when the browser has
/// no Web Locks.
pub fn request_leadership(name: &str, granted: &Function, refused: &Function) -> bool {
    let Some(w) = web_sys::window() else {
        return false;
    };
    let locks = match Reflect::get(&w.navigator(), &JsValue::from_str("locks")) {
        Ok(l) if l.is_object() => l,
        _ => return false,
    };
    let Some(request) =
        Reflect::get(&locks, &JsValue::from_str("request")).ok().and_then(|f| f.dyn_into::<Function>().ok())
    else {
        return false;
    };
    let Ok(promise) = request.call2(&locks, &JsValue::from_str(name), granted) else {
        return false;
    };
    // `promise.catch(refused)`, called through Reflect: js-sys types `catch` for Rust
    // closures only, and `refused` is already a JS function.
    let catch = Reflect::get(&promise, &JsValue::from_str("catch")).ok().and_then(|f| f.dyn_into::<Function>().ok());
    match catch {
        Some(c) => c.call1(&promise, refused).is_ok(),
        None => false,
    }
}

/// A promise that never settles: returned from the lock callback to hold the lock.
pub fn forever() -> JsValue {
    // `Promise.race([])` never settles.
    Promise::race(&js_sys::Array::new()).into()
}
