//! The one exported face of the SDK: the `Nudge` class the JS wrapper drives. Every method
//! returns normally (booleans say whether a call was accepted); errors are logged in debug
//! mode and given to `on('error')` listeners here, in `fail`, and nowhere else.

use super::env;
use super::listeners::{call_all, Listeners};
use super::shell::{error_note, Note, Shell};
use super::tabs;
use crate::engine::Kind;
use crate::error::Error;
use crate::recommend::Catalog;
use crate::tabs::Role;
use js_sys::Function;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// How long changes wait before they are stored and broadcast, in milliseconds: calls in
/// a burst are written once, and `pagehide` writes at once.
const PERSIST_DELAY_MS: u64 = 50;

struct Inner {
    shell: RefCell<Shell>,
    listeners: RefCell<Listeners>,
    /// The one timer's callback (store what changed, send what is due), and when it is
    /// next set to fire (0: not set).
    timer: RefCell<Option<Function>>,
    wake_at: Cell<u64>,
    /// `flush()` promises waiting for the leader election to settle.
    waiters: RefCell<Vec<Function>>,
    /// Problems found while starting, reported by `started()` once listeners exist.
    problems: RefCell<Vec<&'static str>>,
    /// The wrapper's `present(popupJson)`: shows a campaign's popup.
    present: Option<Function>,
    /// The catalogue recommendations rank (empty until the wrapper gives the feed).
    catalog: RefCell<Catalog>,
}

/// The SDK in one page. Made by the JS wrapper's `init(options)`.
#[wasm_bindgen]
pub struct Nudge {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Nudge {
    /// Starts the SDK: reads storage, joins the site's other tabs, tracks the first page.
    /// `send(url, body, seq)` is the wrapper's POST; its answer comes back in `delivered`.
    /// `present(popupJson)` shows a campaign's popup (`{"id","trigger","content","offer"}`).
    #[wasm_bindgen(constructor)]
    pub fn new(options: &str, send: Option<Function>, present: Option<Function>) -> Nudge {
        let (shell, problems) = Shell::new(options, send);
        let inner = Rc::new(Inner {
            shell: RefCell::new(shell),
            listeners: RefCell::new(Listeners::default()),
            timer: RefCell::new(None),
            wake_at: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            problems: RefCell::new(problems),
            present,
            catalog: RefCell::new(Catalog::default()),
        });
        let nudge = Nudge { inner };
        nudge.wire();
        nudge.inner.shell.borrow().fetch_config();
        let first = nudge.inner.shell.borrow_mut().navigated();
        nudge.finish("page", first);
        nudge
    }

    /// The calls of the JS wrapper, by `op`. One entry point rather than nine keeps the Wasm
    /// and its glue smaller.
    /// - 0 to 5: `page(name?, props?, options?)`, `track(event, props?, options?)`,
    ///   `identify(userId, traits?, options?)`, `consent(choices)` (choices as `props`),
    ///   `reset()`, `forget()`;
    /// - 6: the history API or popstate moved the page;
    /// - 7: the calls queued before loading have been replayed, so `on('error')` listeners
    ///   registered early now hear what went wrong while starting;
    /// - 8: an error the wrapper found (props that are not JSON, say): `name` is the method,
    ///   `props` the message; it takes the same path as the core's own errors;
    /// - 9: a page signal, `props` its JSON (`{"signal":"pointer-exit","speed":1200}`, see
    ///   `crate::intent`);
    /// - 10: a popup outcome: `name` the campaign id, `props` its JSON
    ///   (`{"action":"shown"|"dismissed"|"converted","email"?}`).
    pub fn call(&self, op: u32, name: Option<String>, props: Option<String>, options: Option<String>) -> bool {
        match op {
            6 => return self.run("page", |s| s.navigated()),
            7 => {
                let problems = match self.inner.problems.try_borrow_mut() {
                    Ok(mut p) => std::mem::take(&mut *p),
                    Err(_) => return false,
                };
                for message in problems {
                    self.fail("init", message);
                }
                return true;
            }
            8 => {
                self.fail(name.as_deref().unwrap_or(""), props.as_deref().unwrap_or(""));
                return false;
            }
            9 => return self.run("signal", |s| s.call(Kind::Signal, None, props, None)),
            10 => return self.run("popup", |s| s.call(Kind::Popup, name, props, None)),
            _ => {}
        }
        const OPS: [(Kind, &str); 6] = [
            (Kind::Page, "page"),
            (Kind::Track, "track"),
            (Kind::Identify, "identify"),
            (Kind::Consent, "consent"),
            (Kind::Reset, "reset"),
            (Kind::Forget, "forget"),
        ];
        let Some(&(kind, method)) = OPS.get(op as usize) else {
            self.fail("call", "unknown operation");
            return false;
        };
        self.run(method, |s| s.call(kind, name, props, options))
    }

    /// Reads computed now, without any I/O, as text:
    /// - 0: `profile()`, the profile view (JSON);
    /// - 1: `debug()`: outbox, delivery, role and storage (JSON);
    /// - 2: takes `arg` as the catalogue recommendations rank (the compact form of
    ///   [`crate::recommend::Catalog::read`]); returns an empty string;
    /// - 3: `recommend(options)`, `arg` the options' JSON: `[[index,"reason"],...]` into the
    ///   catalogue, or `null` when refused (reported like any other error).
    pub fn view(&self, what: u32, arg: Option<String>) -> String {
        let Ok(s) = self.inner.shell.try_borrow() else {
            return String::from("null");
        };
        match what {
            0 => s.engine.profile_json(env::now()),
            1 => s.debug_info(),
            2 => {
                if let Ok(mut c) = self.inner.catalog.try_borrow_mut() {
                    *c = Catalog::read(arg.as_deref().unwrap_or(""));
                }
                String::new()
            }
            _ => {
                let result = match self.inner.catalog.try_borrow() {
                    Ok(c) => s.engine.recommend(&c, arg.as_deref().unwrap_or("{}"), env::now()),
                    Err(_) => return String::from("null"),
                };
                drop(s);
                result.unwrap_or_else(|e| {
                    self.fail("recommend", e.message());
                    String::from("null")
                })
            }
        }
    }

    /// `on(name, cb)` (`add` true) or `off(name, cb)`, for `stage`, `change` or `error`.
    pub fn listen(&self, name: &str, cb: Function, add: bool) {
        if let Ok(mut l) = self.inner.listeners.try_borrow_mut() {
            if add {
                l.add(name, cb);
            } else {
                l.remove(name, &cb);
            }
        }
    }

    /// `flush()`: stores (and, as leader, broadcasts) now instead of after the delay, then
    /// calls `resolve` (the wrapper's promise's); while this tab's leader election is still
    /// open it waits for the outcome, since only the tab that owns the profile stores it.
    /// (The wrapper makes the promise: no promise or closure code in the Wasm for it.)
    pub fn flush(&self, resolve: Function) {
        if !self.inner.shell.try_borrow().is_ok_and(|s| s.electing) {
            flush_and_send(&self.inner);
            let _ = resolve.call0(&JsValue::UNDEFINED);
            return;
        }
        if let Ok(mut w) = self.inner.waiters.try_borrow_mut() {
            w.push(resolve);
        }
    }

    /// The server's answer to request `seq` (status 0 when there was none; `Retry-After` in
    /// ms; the body's text for the profile read-back, request 0).
    pub fn delivered(&self, seq: u32, status: u16, retry_after_ms: f64, text: Option<String>) {
        let notes = match self.inner.shell.try_borrow_mut() {
            Ok(mut s) => s.delivered(seq, status, retry_after_ms, text),
            Err(_) => return,
        };
        arm(&self.inner);
        deliver(&self.inner, false);
        self.dispatch(notes);
    }
}

impl Nudge {
    fn run(&self, method: &str, f: impl FnOnce(&mut Shell) -> Result<Vec<Note>, Error>) -> bool {
        let result = match self.inner.shell.try_borrow_mut() {
            Ok(mut s) => f(&mut s),
            Err(_) => {
                self.fail(method, "called while the SDK was busy; try again from a timeout");
                return false;
            }
        };
        self.finish(method, result)
    }

    fn finish(&self, method: &str, result: Result<Vec<Note>, Error>) -> bool {
        match result {
            Ok(notes) => {
                if let Ok(s) = self.inner.shell.try_borrow() {
                    s.log_parts(&[method, " accepted"]);
                }
                arm(&self.inner);
                deliver(&self.inner, false);
                self.dispatch(notes);
                true
            }
            Err(e) => {
                self.fail(method, e.message());
                false
            }
        }
    }

    fn fail(&self, method: &str, message: &str) {
        if self.inner.shell.try_borrow().is_ok_and(|s| s.debug) {
            env::log_error(&env::cat(&[method, " rejected: ", message]));
        }
        self.dispatch(vec![error_note(method, message)]);
    }

    fn dispatch(&self, notes: Vec<Note>) {
        dispatch(&self.inner, notes);
    }

    /// Connects the page's events: other tabs, the leader election, page hiding.
    fn wire(&self) {
        // Every callback has the one type `FnMut(JsValue) -> JsValue` (the timer's argument
        // and the others' results are unused): one kind of closure, one set of shims in the
        // Wasm and its glue.
        let weak = Rc::downgrade(&self.inner);
        let timer = Closure::<dyn FnMut(JsValue) -> JsValue>::new({
            let weak = weak.clone();
            move |_: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    inner.wake_at.set(0);
                    flush(&inner);
                    deliver(&inner, false);
                }
                JsValue::UNDEFINED
            }
        });
        *self.inner.timer.borrow_mut() = Some(timer.into_js_value().unchecked_into());
        // Page hidden or closing, and back online, are the JS wrapper's to notice: it calls
        // `flush()`, which stores and sends at once.

        let name = {
            let s = self.inner.shell.borrow();
            env::cat(&["nudge:", &s.storage_key_hint()])
        };
        let Some(channel) = tabs::channel(&name) else {
            return;
        };
        let on_message = Closure::<dyn FnMut(JsValue) -> JsValue>::new({
            let weak = weak.clone();
            move |e: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    received(&inner, e.unchecked_into());
                }
                JsValue::UNDEFINED
            }
        })
        .into_js_value();
        channel.set_onmessage(Some(on_message.unchecked_ref()));

        let granted = Closure::<dyn FnMut(JsValue) -> JsValue>::new({
            let weak = weak.clone();
            move |_: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    if let Ok(mut s) = inner.shell.try_borrow_mut() {
                        s.lead();
                    }
                    arm(&inner);
                    settle(&inner);
                    deliver(&inner, false);
                    // The profile may now be the stored one, and the tab's role changed.
                    dispatch(&inner, vec![Note::Change]);
                }
                tabs::forever()
            }
        })
        .into_js_value();
        let refused = Closure::<dyn FnMut(JsValue) -> JsValue>::new({
            let weak = weak.clone();
            move |_: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    if let Ok(mut s) = inner.shell.try_borrow_mut() {
                        s.sync.role = Role::Solo;
                        s.electing = false;
                    }
                    settle(&inner);
                }
                JsValue::UNDEFINED
            }
        })
        .into_js_value();
        let mut s = self.inner.shell.borrow_mut();
        s.channel = Some(channel);
        let lock = env::cat(&[&name, ":leader"]);
        if tabs::request_leadership(&lock, granted.unchecked_ref(), refused.unchecked_ref()) {
            s.sync.role = Role::Follower;
            s.electing = true;
            let hello = s.sync.hello();
            s.post(&hello);
        }
    }
}

/// A message from another tab.
fn received(inner: &Inner, e: web_sys::MessageEvent) {
    let Some(text) = e.data().as_string() else {
        return;
    };
    let notes = match inner.shell.try_borrow_mut() {
        Ok(mut s) => s.receive(&text),
        Err(_) => return,
    };
    arm(inner);
    settle(inner);
    deliver(inner, false);
    dispatch(inner, notes);
}

/// Sets the timer to store soon when something changed.
fn arm(inner: &Inner) {
    if inner.shell.try_borrow().is_ok_and(|s| s.is_dirty()) {
        wake(inner, env::now() + PERSIST_DELAY_MS);
    }
}

/// Sends what is due and sets the timer for the next delivery check.
fn deliver(inner: &Inner, urgent: bool) {
    let next = match inner.shell.try_borrow_mut() {
        Ok(mut s) => s.deliver(urgent),
        Err(_) => return,
    };
    if let Some(at) = next {
        wake(inner, at);
    }
}

/// Makes sure the timer fires by `at` (epoch ms).
fn wake(inner: &Inner, at: u64) {
    let set = inner.wake_at.get();
    if set != 0 && set <= at {
        return;
    }
    let Some(w) = web_sys::window() else { return };
    if let Some(f) = inner.timer.borrow().as_ref() {
        let delay = at.saturating_sub(env::now()).min(i32::MAX as u64) as i32;
        if w.set_timeout_with_callback_and_timeout_and_arguments_0(f, delay).is_ok() {
            inner.wake_at.set(at.max(1));
        }
    }
}

/// Once the election has settled, stores and resolves the `flush()` promises that waited.
fn settle(inner: &Inner) {
    if inner.shell.try_borrow().map_or(true, |s| s.electing) {
        return;
    }
    let waiting = match inner.waiters.try_borrow_mut() {
        Ok(mut w) => std::mem::take(&mut *w),
        Err(_) => return,
    };
    if waiting.is_empty() {
        return;
    }
    flush_and_send(inner);
    for resolve in waiting {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// What `flush()` does once the tab's role is known: store now, and send everything waiting.
fn flush_and_send(inner: &Inner) {
    flush(inner);
    deliver(inner, true);
}

fn flush(inner: &Inner) {
    if let Ok(mut s) = inner.shell.try_borrow_mut() {
        s.persist();
    }
}

fn dispatch(inner: &Inner, notes: Vec<Note>) {
    for note in notes {
        let (name, payload) = match note {
            Note::Stage(j) => ("stage", Some(j)),
            Note::Change => ("change", None),
            Note::Error(j) => ("error", Some(j)),
            Note::Present(j) => {
                let shown = inner
                    .present
                    .as_ref()
                    .is_some_and(|f| f.call1(&JsValue::UNDEFINED, &JsValue::from_str(&j)).is_ok());
                if !shown && inner.shell.try_borrow().is_ok_and(|s| s.debug) {
                    env::log_error("a popup was due but present() is missing or threw");
                }
                continue;
            }
        };
        let callbacks = match inner.listeners.try_borrow() {
            Ok(l) if l.wants(name) => l.for_name(name),
            _ => continue,
        };
        let payload = match payload {
            Some(p) => p,
            None => match inner.shell.try_borrow() {
                Ok(s) => s.engine.profile_json(env::now()),
                Err(_) => continue,
            },
        };
        if !call_all(&callbacks, &payload) && inner.shell.try_borrow().is_ok_and(|s| s.debug) {
            env::log_error("an on() listener threw; the SDK carried on");
        }
    }
}
