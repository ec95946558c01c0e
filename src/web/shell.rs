//! The shell's state for one page: the core engine, this tab's part in tab sync, storage,
//! and the page. Every operation returns the notes for listeners instead of calling them,
//! so no JS callback ever runs while this state is borrowed.

use super::env;
use super::storage::{Kind as StorageKind, Storage};
use crate::codec::optional;
use crate::delivery::{Delivery, Outcome};
use crate::engine::{Engine, Input, Kind, Outputs, Settings};
use crate::error::Error;
use crate::json::{push_field, push_key, push_uint};
use crate::json_value::Value;
use crate::message::PageInfo;
use crate::outbox::Outbox;
use crate::profile::Loaded;
use crate::tabs::{Role, TabSync};
use wasm_bindgen::JsValue;

const PROFILE: &str = "profile";
/// Request numbers of the shell's own requests (batches are numbered 1 to 2^31 - 1).
const READ_BACK: u32 = 0;
const CONFIG: u32 = u32::MAX;
const OUTBOX: &str = "outbox";

/// Something to tell `on(...)` listeners once the state is released.
pub enum Note {
    /// `stage`: JSON `{category, from, to}`.
    Stage(String),
    /// `change`: the profile changed.
    Change,
    /// `error`: JSON `{method, message}`.
    Error(String),
    /// A popup to show: the campaign's popup JSON, for the wrapper's `present`.
    Present(String),
}

/// The shell's options from `init(options)`, each read on its own so that one mistyped
/// option loses only itself.
pub struct ShellOptions {
    /// The site's public write key.
    pub write_key: String,
    /// Log what the SDK does to the console.
    pub debug: bool,
    /// Track a page view on load and on SPA navigation (default true).
    pub track_pages: bool,
    /// Where batches go: `{endpoint}/v1/batch`. Empty: messages wait in the outbox.
    pub endpoint: String,
    /// Some option had the wrong type.
    pub bad: bool,
}

impl ShellOptions {
    /// Reads `writeKey`, `debug` and `trackPages` from the `init` options text.
    pub fn read(text: &str) -> ShellOptions {
        let v = crate::json_value::parse(text, crate::codec::MAX_STATE_DEPTH).unwrap_or(Value::Null);
        let mut bad = false;
        let write_key: Option<String> = optional(&v, "writeKey").unwrap_or_else(|_| {
            bad = true;
            None
        });
        let debug: Option<bool> = optional(&v, "debug").unwrap_or_else(|_| {
            bad = true;
            None
        });
        let track_pages: Option<bool> = optional(&v, "trackPages").unwrap_or_else(|_| {
            bad = true;
            None
        });
        let mut endpoint: String = optional(&v, "endpoint")
            .unwrap_or_else(|_| {
                bad = true;
                None
            })
            .unwrap_or_default();
        if !(endpoint.is_empty() || endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            bad = true;
            endpoint.clear();
        }
        while endpoint.ends_with('/') {
            endpoint.pop();
        }
        ShellOptions {
            write_key: write_key.unwrap_or_default(),
            debug: debug.unwrap_or(false),
            track_pages: track_pages.unwrap_or(true),
            endpoint,
            bad,
        }
    }
}

/// The state of the SDK in this page.
pub struct Shell {
    /// The core.
    pub engine: Engine,
    /// This tab's side of tab sync.
    pub sync: TabSync,
    /// The storage chain.
    pub storage: Storage,
    /// Debug logging on.
    pub debug: bool,
    /// Automatic page tracking on.
    pub track_pages: bool,
    /// The BroadcastChannel to other tabs, when there is one.
    pub channel: Option<web_sys::BroadcastChannel>,
    /// The leader lock was asked for and no leader is known yet: `flush()` waits.
    pub electing: bool,
    /// When and what to send (only the tab that owns the profile sends).
    pub delivery: Delivery,
    /// The server's base URL, or empty when no endpoint was given.
    endpoint: String,
    /// `identify` with a `userHash` asked for the merged profile: read it back once the
    /// events before it (the identify among them) have reached the server.
    read_back_due: bool,
    /// The JS wrapper's `send(url, body, seq)`: a POST (a GET when `body` is null) whose
    /// answer comes back through `Nudge::delivered`.
    send: Option<js_sys::Function>,
    write_key: String,
    page: PageInfo,
    last_page: String,
    dirty: bool,
}

impl Shell {
    /// Builds the state from `init` options and what storage holds.
    /// Also returns the problems found on the way, as messages for `init` errors.
    pub fn new(options: &str, send: Option<js_sys::Function>) -> (Shell, Vec<&'static str>) {
        let mut problems = Vec::new();
        let shell_opts = ShellOptions::read(options);
        let (ua, locale, gpc) = env::navigator_facts();
        let (settings, err) = Settings::from_options_lenient(options, gpc, &ua, &locale);
        if shell_opts.bad || err.is_some() {
            problems.push(Error::BadOptions.message());
        }
        let write_key = shell_opts.write_key;
        if write_key.is_empty() {
            problems.push("init needs a writeKey");
        }
        let (storage, stored) = Storage::open(&write_key, PROFILE);
        let write_key = write_key.clone();
        let mut engine = Engine::new(settings, &env::seed());
        let debug = shell_opts.debug;
        if let Some(text) = stored {
            match engine.load_profile(&text) {
                Loaded::Replaced => {
                    problems.push("the stored profile was unreadable and has been replaced by a fresh one")
                }
                Loaded::Migrated if debug => env::log("stored profile migrated to the current version"),
                _ => {}
            }
            engine.outbox = Outbox::decode(&storage.get(OUTBOX).unwrap_or_default());
        } else if let Some((anon, user)) = storage.cookie_ids() {
            engine.profile.anonymous_id = anon;
            engine.profile.user_id = user;
        }
        let tab = env::seed();
        let shell = Shell {
            engine,
            sync: TabSync::new(tab, Role::Solo),
            storage,
            debug,
            track_pages: shell_opts.track_pages,
            channel: None,
            electing: false,
            delivery: Delivery::default(),
            endpoint: shell_opts.endpoint,
            read_back_due: false,
            send,
            write_key,
            page: env::page(),
            last_page: String::new(),
            dirty: false,
        };
        if debug {
            shell.log_parts(&["started; storage: ", shell.storage.kind.name()]);
        }
        (shell, problems)
    }

    /// The part of storage keys and channel names that tells sites on one origin apart.
    pub fn storage_key_hint(&self) -> String {
        super::storage::key_hint(&self.write_key)
    }

    /// Logs in debug mode.
    pub fn log_parts(&self, parts: &[&str]) {
        if self.debug {
            env::log(&env::cat(parts));
        }
    }

    /// Runs one public call. Returns the notes for listeners and whether the state must be
    /// stored soon.
    pub fn call(
        &mut self,
        kind: Kind,
        name: Option<String>,
        props: Option<String>,
        options: Option<String>,
    ) -> Result<Vec<Note>, Error> {
        if kind == Kind::Page {
            self.page = env::page();
            self.last_page = page_key(&self.page.url);
        }
        self.local(kind, name, props, options)
    }

    /// Applies one call in this tab (see [`TabSync::local`]) and forwards it when a
    /// follower: the part of [`Shell::call`] and [`Shell::navigated`] they share.
    fn local(
        &mut self,
        kind: Kind,
        name: Option<String>,
        props: Option<String>,
        options: Option<String>,
    ) -> Result<Vec<Note>, Error> {
        let input = Input { kind, name, props, options, now: env::now(), seed: env::seed(), page: self.page.clone() };
        let (out, forward) = self.sync.local(&mut self.engine, input)?;
        if let Some(text) = forward {
            self.post(&text);
        }
        if kind == Kind::Identify && self.engine.profile.user_hash.is_some() {
            self.read_back_due = true;
        }
        Ok(self.outputs(out))
    }

    /// The page may have changed (history API or popstate): tracks it when the path or
    /// query changed and automatic page tracking is on.
    pub fn navigated(&mut self) -> Result<Vec<Note>, Error> {
        let now_page = env::page();
        let key = page_key(&now_page.url);
        if !self.track_pages || key == self.last_page {
            self.page = now_page;
            return Ok(Vec::new());
        }
        let previous = std::mem::take(&mut self.page.url);
        self.page = now_page;
        // The first view keeps `document.referrer`; later ones in a single-page app
        // come from the view tracked before them.
        if !self.last_page.is_empty() && !previous.is_empty() {
            self.page.referrer = previous;
        }
        self.last_page = key;
        self.local(Kind::Page, None, None, None)
    }

    fn outputs(&mut self, out: Outputs) -> Vec<Note> {
        if out.wipe_storage {
            self.wipe();
        }
        let mut notes = stage_notes(&out.stage_changes);
        for e in &out.problems {
            notes.push(error_note("campaigns", e.message()));
        }
        if let Some(p) = out.popup {
            notes.push(Note::Present(p));
        }
        if !out.quiet {
            notes.push(Note::Change);
            self.dirty = true;
        }
        notes
    }

    /// True when there is state to store or broadcast (the caller arms the timer).
    pub fn is_dirty(&self) -> bool {
        self.dirty && self.sync.role != Role::Follower
    }

    /// Stores the profile and outbox (with analytics consent) and, as leader, broadcasts
    /// the profile to the other tabs.
    pub fn persist(&mut self) {
        if !self.dirty || self.sync.role == Role::Follower {
            return;
        }
        self.dirty = false;
        if self.engine.may_store() {
            let ok = self.storage.set(PROFILE, &crate::storage_budget::fit(&mut self.engine.profile))
                && self.storage.set(OUTBOX, &self.engine.outbox.encode());
            if !ok {
                let p = &self.engine.profile;
                self.storage.set_cookie_ids(&p.anonymous_id, p.user_id.as_deref());
                self.log_parts(&["storage write failed; now using ", self.storage.kind.name()]);
            }
        }
        if self.sync.role == Role::Leader {
            let state = self.sync.state(&self.engine);
            self.post(&state);
        }
    }

    /// Sends what is due (everything waiting when `urgent`: page hidden, `flush()`), and
    /// returns when to look again. Only the tab that owns the profile sends, and only with
    /// analytics consent; without an endpoint messages wait in the outbox.
    pub fn deliver(&mut self, urgent: bool) -> Option<u64> {
        if self.sync.role == Role::Follower || !self.engine.may_store() || self.endpoint.is_empty() {
            return None;
        }
        let now = env::now();
        self.delivery.observe(&self.engine.outbox, now);
        let urgent = urgent || self.read_back_due;
        while let Some(batch) = self.delivery.take(&self.engine.outbox, &self.write_key, now, urgent) {
            if !self.request(&env::cat(&[&self.endpoint, "/v1/batch"]), Some(&batch.body), batch.seq) {
                // The wrapper's send never throws; if it did, treat it as no network.
                self.delivery.settle(
                    &mut self.engine.outbox,
                    batch.seq,
                    Outcome::Retry(None),
                    now,
                    js_sys::Math::random(),
                );
                break;
            }
        }
        if self.read_back_due && self.delivery.in_flight() == 0 {
            self.read_back_due = false;
            self.read_back();
        }
        self.delivery.next_check(&self.engine.outbox)
    }

    /// Hands a request to the JS wrapper (a GET when `body` is None); false if it threw.
    fn request(&self, url: &str, body: Option<&str>, seq: u32) -> bool {
        let Some(send) = &self.send else { return false };
        let body = body.map_or(JsValue::NULL, JsValue::from_str);
        send.call3(&JsValue::UNDEFINED, &JsValue::from_str(url), &body, &JsValue::from(seq)).is_ok()
    }

    /// After `identify` with a `userHash`: asks the server for the user's profile merged
    /// across devices (answered as request 0 in `delivered`). Called from `deliver`, which
    /// has checked the endpoint and consent.
    fn read_back(&self) {
        let p = &self.engine.profile;
        let (Some(user), Some(hash)) = (&p.user_id, &p.user_hash) else { return };
        let enc = |s: &str| String::from(js_sys::encode_uri_component(s));
        let url = env::cat(&[
            &self.endpoint,
            "/v1/profile?writeKey=",
            &enc(&self.write_key),
            "&userId=",
            &enc(user),
            "&userHash=",
            &enc(hash),
        ]);
        self.request(&url, None, READ_BACK);
    }

    /// Asks the server for the site config (thresholds), answered as [`CONFIG`] in
    /// `delivered`. A plain GET, so the browser's HTTP cache revalidates it with its ETag.
    pub fn fetch_config(&self) {
        if !self.endpoint.is_empty() {
            let key = String::from(js_sys::encode_uri_component(&self.write_key));
            self.request(&env::cat(&[&self.endpoint, "/v1/config?writeKey=", &key]), None, CONFIG);
        }
    }

    /// The server's answer to request `seq` (status 0: no answer): a batch, or (0) the
    /// profile read-back, whose merged profile is absorbed here.
    pub fn delivered(&mut self, seq: u32, status: u16, retry_after_ms: f64, text: Option<String>) -> Vec<Note> {
        if seq == READ_BACK || seq == CONFIG {
            if status != 200 {
                self.log_parts(&["profile read-back or site config refused or failed"]);
                return Vec::new();
            }
            let text = text.as_deref().unwrap_or("");
            let now = env::now();
            let result = if seq == CONFIG {
                self.engine.apply_site_config(text, now)
            } else {
                self.engine.absorb_remote(text, now)
            };
            return result.map(|out| self.outputs(out)).unwrap_or_default();
        }
        let retry_after = (retry_after_ms.is_finite() && retry_after_ms > 0.0).then_some(retry_after_ms as u64);
        let outcome = Outcome::of(status, retry_after);
        self.delivery.settle(&mut self.engine.outbox, seq, outcome, env::now(), js_sys::Math::random());
        if outcome == Outcome::Done {
            self.dirty = true;
            if status >= 400 {
                // The server kept what it could; the rest can never be accepted as sent.
                self.log_parts(&["the server refused some events of a batch; see its response"]);
            }
        } else {
            self.log_parts(&["sending failed; will retry"]);
        }
        Vec::new()
    }

    fn wipe(&mut self) {
        self.storage.wipe(&[PROFILE, OUTBOX]);
        self.log_parts(&["stored data wiped"]);
    }

    /// Posts a message to the other tabs.
    pub fn post(&self, text: &str) {
        if let Some(c) = &self.channel {
            let _ = c.post_message(&wasm_bindgen::JsValue::from_str(text));
        }
    }

    /// A message from another tab.
    pub fn receive(&mut self, text: &str) -> Vec<Note> {
        let hash_before = self.engine.profile.user_hash.clone();
        let r = self.sync.receive(&mut self.engine, text);
        // An `identify` with a userHash made in another tab reaches the profile here: the
        // tab that owns the profile reads the merged profile back, as for its own identify.
        if self.sync.role != Role::Follower
            && self.engine.profile.user_hash.is_some()
            && self.engine.profile.user_hash != hash_before
        {
            self.read_back_due = true;
        }
        if r.leader_known {
            self.electing = false;
        }
        if let Some(reply) = &r.reply {
            for line in crate::json::pieces(reply, b'\n') {
                self.post(line);
            }
        }
        if r.wipe_storage {
            self.wipe();
        }
        if r.dirty {
            self.dirty = true;
        }
        let mut notes = stage_notes(&r.stage_changes);
        if r.changed {
            notes.push(Note::Change);
        }
        notes
    }

    /// This tab was elected leader: adopt storage, apply what is pending, announce.
    pub fn lead(&mut self) {
        let stored = if self.storage.kind == StorageKind::Local { self.storage.get(PROFILE) } else { None };
        if stored.is_some() {
            self.engine.outbox = Outbox::decode(&self.storage.get(OUTBOX).unwrap_or_default());
        }
        self.electing = false;
        let announce = self.sync.become_leader(&mut self.engine, stored.as_deref());
        self.post(&announce);
        self.dirty = true;
        self.log_parts(&["this tab now owns the profile"]);
    }

    /// JSON for `debug()`: the outbox, the role, the storage backend.
    pub fn debug_info(&self) -> String {
        let mut s = String::from("{");
        push_key(&mut s, "outbox");
        s.push_str(&self.engine.outbox.to_json_array());
        push_key(&mut s, "leader");
        s.push_str(if self.sync.role == Role::Follower { "false" } else { "true" });
        push_key(&mut s, "electing");
        s.push_str(if self.electing { "true" } else { "false" });
        push_field(
            &mut s,
            "role",
            match self.sync.role {
                Role::Solo => "solo",
                Role::Leader => "leader",
                Role::Follower => "follower",
            },
        );
        push_field(&mut s, "storage", self.storage.kind.name());
        push_key(&mut s, "dropped");
        push_uint(&mut s, self.engine.outbox.dropped);
        push_key(&mut s, "pending");
        push_uint(&mut s, self.sync.pending() as u64);
        push_key(&mut s, "inFlight");
        push_uint(&mut s, self.delivery.in_flight() as u64);
        push_key(&mut s, "failures");
        push_uint(&mut s, u64::from(self.delivery.attempts()));
        push_key(&mut s, "campaigns");
        s.push_str(&self.engine.campaigns_json(env::now()));
        s.push('}');
        s
    }
}

/// What identifies a page view: the URL without its fragment.
fn page_key(url: &str) -> String {
    crate::json::before_byte(url, b'#').to_string()
}

/// A `stage` note for each change.
fn stage_notes(changes: &[crate::engine::StageChange]) -> Vec<Note> {
    let mut notes = Vec::new();
    for c in changes {
        notes.push(Note::Stage(c.to_json()));
    }
    notes
}

/// The JSON of an `error` note.
pub fn error_note(method: &str, message: &str) -> Note {
    let mut s = String::from("{");
    push_field(&mut s, "method", method);
    push_field(&mut s, "message", message);
    s.push('}');
    Note::Error(s)
}
