//! Callbacks registered with `on(name, cb)`. A callback that throws is contained: the
//! exception is caught here and logged in debug mode, and other callbacks still run.

use js_sys::Function;
use wasm_bindgen::JsValue;

/// Registered callbacks by event name.
#[derive(Default)]
pub struct Listeners {
    list: Vec<(String, Function)>,
}

impl Listeners {
    /// Adds a callback for `name`.
    pub fn add(&mut self, name: &str, cb: Function) {
        self.list.push((name.to_string(), cb));
    }

    /// Removes a callback added for `name`.
    pub fn remove(&mut self, name: &str, cb: &Function) {
        self.list.retain(|(n, f)| !(n == name && f == cb));
    }

    /// True when someone listens to `name` (so payloads are built only when needed).
    pub fn wants(&self, name: &str) -> bool {
        self.list.iter().any(|(n, _)| n == name)
    }

    /// The callbacks for `name`, cloned so they can be called with no borrow held.
    pub fn for_name(&self, name: &str) -> Vec<Function> {
        let mut out = Vec::new();
        for (n, f) in &self.list {
            if n == name {
                out.push(f.clone());
            }
        }
        out
    }
}

/// Calls each callback with `payload` (JSON text parsed into a plain object).
/// Returns false when one of them threw.
pub fn call_all(callbacks: &[Function], payload: &str) -> bool {
    let value = js_sys::JSON::parse(payload).unwrap_or(JsValue::NULL);
    let mut ok = true;
    for cb in callbacks {
        ok &= cb.call1(&JsValue::UNDEFINED, &value).is_ok();
    }
    ok
}
