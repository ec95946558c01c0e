//! The one exported face of the SDK: the `Nudge` class the JS wrapper drives. Every method
//! returns normally (booleans say whether a call was accepted); errors are logged in debug
//! mode and given to `on('error')` listeners here, in `fail`, and nowhere else.

use super::env;
use super::listeners::{call_all, Listeners};
use super::shell::{error_note, Note, Shell};
use super::tabs;
use crate::engine::Kind;
use crate::error::Error;
use crate::tabs::Role;
use js_sys::{Function, Promise};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// How long changes wait before they are stored and broadcast, in milliseconds: calls in
/// a burst are written once, and `pagehide` writes at once.
const PERSIST_DELAY_MS: i32 = 50;

struct Inner {
    shell: RefCell<Shell>,
    listeners: RefCell<Listeners>,
    timer: RefCell<Option<Function>>,
    armed: Cell<bool>,
    /// `flush()` promises waiting for the leader election to settle.
    waiters: RefCell<Vec<Function>>,
    /// Problems found while starting, reported by `started()` once listeners exist.
    problems: RefCell<Vec<&'static str>>,
}

/// The SDK in one page. Made by the JS wrapper's `init(options)`.
#[wasm_bindgen]
pub struct Nudge {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Nudge {
    /// Starts the SDK: reads storage, joins the site's other tabs, tracks the first page.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &str) -> Nudge {
        let (shell, problems) = Shell::new(options);
        let inner = Rc::new(Inner {
            shell: RefCell::new(shell),
            listeners: RefCell::new(Listeners::default()),
            timer: RefCell::new(None),
            armed: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
            problems: RefCell::new(problems),
        });
        let nudge = Nudge { inner };
        nudge.wire();
        let first = nudge.inner.shell.borrow_mut().navigated();
        nudge.finish("page", first);
        nudge
    }

    /// Called by the JS wrapper once the calls queued before loading have been replayed,
    /// so `on('error')` listeners registered early hear what went wrong while starting.
    pub fn started(&self) {
        let problems = match self.inner.problems.try_borrow_mut() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        for message in problems {
            self.fail("init", message);
        }
    }

    /// `page(name?, props?, options?)`.
    pub fn page(&self, name: Option<String>, props: Option<String>, options: Option<String>) -> bool {
        self.run("page", |s| s.call(Kind::Page, name, props, options))
    }

    /// `track(event, props?, options?)`.
    pub fn track(&self, event: String, props: Option<String>, options: Option<String>) -> bool {
        self.run("track", |s| s.call(Kind::Track, Some(event), props, options))
    }

    /// `identify(userId, traits?, options?)`.
    pub fn identify(&self, user_id: String, traits: Option<String>, options: Option<String>) -> bool {
        self.run("identify", |s| s.call(Kind::Identify, Some(user_id), traits, options))
    }

    /// `consent({analytics, personalization, marketing})`.
    pub fn consent(&self, choices: String) -> bool {
        self.run("consent", |s| s.call(Kind::Consent, None, Some(choices), None))
    }

    /// `reset()`: a new anonymous shopper.
    pub fn reset(&self) -> bool {
        self.run("reset", |s| s.call(Kind::Reset, None, None, None))
    }

    /// `forget()`: wipes local data and asks the server to erase the shopper.
    pub fn forget(&self) -> bool {
        self.run("forget", |s| s.call(Kind::Forget, None, None, None))
    }

    /// The history API or popstate moved the page (called by the JS wrapper's hooks).
    pub fn navigated(&self) -> bool {
        self.run("page", |s| s.navigated())
    }

    /// `profile()`: the profile view as JSON text, computed now without any I/O.
    pub fn profile(&self) -> String {
        match self.inner.shell.try_borrow() {
            Ok(s) => s.engine.profile_json(env::now()),
            Err(_) => String::from("null"),
        }
    }

    /// `debug()`: outbox, role and storage as JSON text.
    pub fn debug_info(&self) -> String {
        match self.inner.shell.try_borrow() {
            Ok(s) => s.debug_info(),
            Err(_) => String::from("null"),
        }
    }

    /// `on(name, cb)`: `stage`, `change` or `error`.
    pub fn on(&self, name: &str, cb: Function) {
        if let Ok(mut l) = self.inner.listeners.try_borrow_mut() {
            l.add(name, cb);
        }
    }

    /// `off(name, cb)`.
    pub fn off(&self, name: &str, cb: Function) {
        if let Ok(mut l) = self.inner.listeners.try_borrow_mut() {
            l.remove(name, &cb);
        }
    }

    /// `flush()`: stores (and, as leader, broadcasts) now instead of after the delay. The
    /// promise resolves once stored; while this tab's leader election is still open it
    /// waits for the outcome, since only the tab that owns the profile stores it.
    pub fn flush(&self) -> Promise {
        if !self.inner.shell.try_borrow().is_ok_and(|s| s.electing) {
            flush(&self.inner);
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        let inner = self.inner.clone();
        Promise::new(&mut |resolve, _| {
            if let Ok(mut w) = inner.waiters.try_borrow_mut() {
                w.push(resolve);
            }
        })
    }

    /// Reports an error found by the JS wrapper (for example, props that are not JSON)
    /// through the same path as the core's own errors.
    pub fn reject(&self, method: &str, message: &str) {
        self.fail(method, message);
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
            env::log_error(&[method, " rejected: ", message].concat());
        }
        self.dispatch(vec![error_note(method, message)]);
    }

    fn dispatch(&self, notes: Vec<Note>) {
        dispatch(&self.inner, notes);
    }

    /// Connects the page's events: other tabs, the leader election, page hiding.
    fn wire(&self) {
        let weak = Rc::downgrade(&self.inner);
        let timer = Closure::<dyn FnMut()>::new({
            let weak = weak.clone();
            move || {
                if let Some(inner) = weak.upgrade() {
                    inner.armed.set(false);
                    flush(&inner);
                }
            }
        });
        *self.inner.timer.borrow_mut() = Some(timer.into_js_value().unchecked_into());

        let hide = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |_: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    flush(&inner);
                }
            }
        })
        .into_js_value();
        if let Some(w) = web_sys::window() {
            let _ = w.add_event_listener_with_callback("pagehide", hide.unchecked_ref());
            if let Some(d) = w.document() {
                let _ = d.add_event_listener_with_callback("visibilitychange", hide.unchecked_ref());
            }
        }

        let name = {
            let s = self.inner.shell.borrow();
            ["nudge:", &s.storage_key_hint()].concat()
        };
        let Some(channel) = tabs::channel(&name) else {
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new({
            let weak = weak.clone();
            move |e: web_sys::MessageEvent| {
                let Some(inner) = weak.upgrade() else { return };
                let Some(text) = e.data().as_string() else {
                    return;
                };
                let notes = match inner.shell.try_borrow_mut() {
                    Ok(mut s) => s.receive(&text),
                    Err(_) => return,
                };
                arm(&inner);
                settle(&inner);
                dispatch(&inner, notes);
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
                    // The profile may now be the stored one, and the tab's role changed.
                    dispatch(&inner, vec![Note::Change]);
                }
                tabs::forever()
            }
        })
        .into_js_value();
        let refused = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |_: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    if let Ok(mut s) = inner.shell.try_borrow_mut() {
                        s.sync.role = Role::Solo;
                        s.electing = false;
                    }
                    settle(&inner);
                }
            }
        })
        .into_js_value();
        let mut s = self.inner.shell.borrow_mut();
        s.channel = Some(channel);
        let lock = [&name, ":leader"].concat();
        if tabs::request_leadership(&lock, granted.unchecked_ref(), refused.unchecked_ref()) {
            s.sync.role = Role::Follower;
            s.electing = true;
            let hello = s.sync.hello();
            s.post(&hello);
        }
    }
}

/// Arms the persist timer when there is something to store and it is not armed yet.
fn arm(inner: &Rc<Inner>) {
    if inner.armed.get() || !inner.shell.try_borrow().is_ok_and(|s| s.is_dirty()) {
        return;
    }
    let Some(w) = web_sys::window() else { return };
    if let Some(f) = inner.timer.borrow().as_ref() {
        if w.set_timeout_with_callback_and_timeout_and_arguments_0(f, PERSIST_DELAY_MS).is_ok() {
            inner.armed.set(true);
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
    flush(inner);
    for resolve in waiting {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
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
