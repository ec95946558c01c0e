//! Storage that never throws: localStorage when it works, else a first-party cookie for
//! the ids (so a shopper keeps their identity across pages), else memory only. Safari's
//! private mode, a full quota and a storage that throws on access all land here as
//! `Err` values from web-sys and degrade the backend instead of escaping.

use wasm_bindgen::JsCast;

/// Where the profile is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `window.localStorage`.
    Local,
    /// A first-party cookie holding the ids only.
    Cookie,
    /// Nothing survives the page.
    Memory,
}

impl Kind {
    /// The name reported by `debug()`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Local => "localStorage",
            Kind::Cookie => "cookie",
            Kind::Memory => "memory",
        }
    }
}

/// The storage chain for one site (keys are prefixed with `nudge:` and the write key).
pub struct Storage {
    /// The backend in use.
    pub kind: Kind,
    local: Option<web_sys::Storage>,
    prefix: String,
    cookie: String,
}

impl Storage {
    /// Opens the site's storage and reads the value `first` (the stored profile) from it.
    ///
    /// localStorage is in use when its getter and that first read work. There is no probe
    /// write: a storage that refuses writes only (a full quota, an old Safari's private
    /// mode) is found by the first store, which then moves to the cookie (see
    /// [`Storage::set`]). A probe write and delete on every page would cost the start-up
    /// about a millisecond. Otherwise a cookie holds the ids, or nothing survives the page.
    pub fn open(write_key: &str, first: &str) -> (Storage, Option<String>) {
        let short = key_hint(write_key);
        let prefix = super::env::cat(&["nudge:", &short, ":"]);
        let cookie = super::env::cat(&["nudge_", &short]);
        let mut value = None;
        let local = web_sys::window().and_then(|w| w.local_storage().ok().flatten()).filter(|s| {
            match s.get_item(&super::env::cat(&[&prefix, first])) {
                Ok(v) => {
                    value = v;
                    true
                }
                Err(_) => false,
            }
        });
        let kind = if local.is_some() {
            Kind::Local
        } else if document().is_some_and(|d| {
            d.set_cookie("nudge_probe=1; path=/; SameSite=Lax").is_ok()
                && d.cookie().is_ok_and(|c| crate::json::pieces(&c, b';').any(|c| c.trim_ascii() == "nudge_probe=1"))
        }) {
            if let Some(d) = document() {
                let _ = d.set_cookie("nudge_probe=; path=/; max-age=0");
            }
            Kind::Cookie
        } else {
            Kind::Memory
        };
        (Storage { kind, local, prefix, cookie }, value)
    }

    /// Reads a value; `None` when absent or unreadable.
    pub fn get(&self, name: &str) -> Option<String> {
        self.local.as_ref()?.get_item(&super::env::cat(&[&self.prefix, name])).ok().flatten()
    }

    /// Writes a value; on failure (quota, revoked access) falls back to the cookie for ids
    /// and reports false.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        let Some(s) = &self.local else { return false };
        if s.set_item(&super::env::cat(&[&self.prefix, name]), value).is_ok() {
            return true;
        }
        self.local = None;
        self.kind = if document().is_some() { Kind::Cookie } else { Kind::Memory };
        false
    }

    /// Deletes a value.
    pub fn remove(&self, name: &str) {
        if let Some(s) = &self.local {
            let _ = s.remove_item(&super::env::cat(&[&self.prefix, name]));
        }
    }

    /// The ids kept in the cookie: `(anonymousId, userId)`. Read even when localStorage
    /// opened: a storage that refuses writes (a full quota) reads back empty on every page,
    /// and only the cookie carries the shopper from one page to the next.
    pub fn cookie_ids(&self) -> Option<(String, Option<String>)> {
        let all = document()?.cookie().ok()?;
        let want = super::env::cat(&[&self.cookie, "="]);
        let value = crate::json::pieces(&all, b';').find_map(|c| c.trim_ascii_start().strip_prefix(want.as_str()))?;
        let decoded = js_sys::decode_uri_component(value).ok()?.as_string()?;
        let (anon, user) = crate::json::split_byte(&decoded, b'|').unwrap_or((&decoded, ""));
        if anon.len() != 36 {
            return None;
        }
        Some((anon.to_string(), (!user.is_empty()).then(|| user.to_string())))
    }

    /// Keeps the ids in a first-party cookie for a year (only when localStorage failed).
    pub fn set_cookie_ids(&self, anonymous_id: &str, user_id: Option<&str>) {
        if self.kind != Kind::Cookie {
            return;
        }
        let value = super::env::cat(&[anonymous_id, "|", user_id.unwrap_or("")]);
        let encoded: String = js_sys::encode_uri_component(&value).into();
        if let Some(d) = document() {
            let _ = d.set_cookie(&super::env::cat(&[
                &self.cookie,
                "=",
                &encoded,
                "; path=/; max-age=31536000; SameSite=Lax",
            ]));
        }
    }

    /// Deletes everything this site stored: both values and the cookie.
    pub fn wipe(&self, names: &[&str]) {
        for n in names {
            self.remove(n);
        }
        if let Some(d) = document() {
            let _ = d.set_cookie(&super::env::cat(&[&self.cookie, "=; path=/; max-age=0"]));
        }
    }
}

/// The part of storage keys and channel names that tells sites on one origin apart: the
/// write key's first 16 ASCII letters and digits.
pub fn key_hint(write_key: &str) -> String {
    let mut s = String::new();
    for b in write_key.bytes() {
        if s.len() == 16 {
            break;
        }
        if b.is_ascii_alphanumeric() {
            s.push(char::from(b));
        }
    }
    s
}

fn document() -> Option<web_sys::HtmlDocument> {
    web_sys::window()?.document()?.dyn_into::<web_sys::HtmlDocument>().ok()
}
