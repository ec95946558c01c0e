// The public API object that both entries (npm `index.js`, script-tag `script.js`) hand
// out. It owns the loading of the Wasm and the queue of calls made before it is ready;
// everything else happens in Rust behind the `Nudge` handle.
//
// Two rules shape this file:
// - It never throws into the host page. Bad input is reported through the SDK's one error
//   path (`Nudge.reject`: debug log + 'error' listeners); an unexpected failure (a Wasm
//   trap) turns the SDK off for the page, with one console.error in debug mode.
// - Nothing browser-only is touched until `init`, so importing it during SSR is safe.

import { watchNavigation } from './navigation.js';
import { connectPopups } from './popups.js';
import { connectRecommendations } from './recommend.js';

const PREFIX = '[nudge]';
const CSP_BLOCKED = PREFIX + " WebAssembly is blocked by this page's Content-Security-Policy; add 'wasm-unsafe-eval' to script-src. Nudge is disabled.";
const NO_WASM = PREFIX + ' WebAssembly is not supported in this browser. Nudge is disabled.';
const EVENTS = ['ready', 'stage', 'change', 'error'];
// Calls kept while the Wasm loads; past this (init never called?) new calls are dropped.
const MAX_QUEUE = 1000;

// What the page's calls become once their arguments are checked and turned into JSON text.
const ops = {
  // One core entry point for most calls, by number (see `Nudge::call` in src/web/api.rs).
  page: (c, name, props, options) => c.call(0, name, props, options),
  track: (c, event, props, options) => c.call(1, event, props, options),
  identify: (c, id, traits, options) => c.call(2, id, traits, options),
  consent: (c, choices) => c.call(3, undefined, choices),
  reset: (c) => c.call(4),
  forget: (c) => c.call(5),
  on: (c, name, cb) => c.listen(name, cb, true),
  off: (c, name, cb) => c.listen(name, cb, false),
  // The promise is made here and resolved by the core once stored (at once unless the
  // tab's leader election is still open). Made outside the executor, so that a failing
  // core still throws to run().
  flush: (c) => {
    let resolve;
    const done = new Promise((r) => (resolve = r));
    c.flush(resolve);
    return done;
  },
  navigated: (c) => c.call(6),
  started: (c) => c.call(7),
  reject: (c, method, message) => c.call(8, method, message),
  // Popups (issue 5): a page signal as JSON text; a popup outcome (id, {action, email?} JSON).
  signal: (c, json) => c.call(9, undefined, json),
  popup: (c, id, outcome) => c.call(10, id, outcome),
  delivered: (c, seq, status, retryAfter, text) => c.delivered(seq, status, retryAfter, text),
};

// `Retry-After` in milliseconds: delay-seconds or an HTTP date; 0 when absent or unreadable.
function retryAfterMs(header) {
  if (!header) return 0;
  const ms = /^\d+$/.test(header) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return ms > 0 ? ms : 0;
}

// Thrown by `toJson` and turned into a rejected call by `guard`.
class NotJson extends Error {}

// Rejects values that JSON cannot carry faithfully instead of silently writing null.
function strict(key, value) {
  if (typeof value === 'bigint') throw new TypeError(`"${key}" is a BigInt`);
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`"${key}" is ${value}`);
  return value;
}

// JSON text for props/traits/options/choices; undefined stays undefined.
function toJson(value, what) {
  if (value === undefined) return undefined;
  try {
    // Without a replacer first (several times faster); only text that holds a null, which
    // may have been a NaN or an Infinity, is written again with the strict check.
    const text = JSON.stringify(value);
    return typeof text === 'string' && !text.includes('null') ? text : JSON.stringify(value, strict);
  } catch (e) {
    throw new NotJson(`${what} must be JSON: ${e && e.message}`);
  }
}

// True when a failed compile was the page's CSP refusing WebAssembly.
function cspBlocked(e) {
  const text = String(e && e.message);
  if ((e && e.name === 'EvalError') || /unsafe-eval|CSP|Content.Security.Policy/i.test(text)) return true;
  if (!(e instanceof WebAssembly.CompileError)) return false;
  // A CompileError with some other wording: see whether even an empty module is refused.
  try {
    new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    return false;
  } catch {
    return true;
  }
}

/**
 * Makes one SDK instance.
 * @param load `(wasmUrl) => Promise<typeof Nudge>`: instantiates the Wasm once.
 * @param defaultWasmUrl `() => string|URL`: where nudge.wasm is when init has no wasmUrl.
 */
export function createApi(load, defaultWasmUrl) {
  let state = 'idle'; // idle → loading → ready, or off (disabled for this page)
  let core = null; // the Rust `Nudge` handle once ready
  let debug = false;
  let queue = []; // [op, args] made before ready, replayed in order
  let readyCallbacks = [];
  let recommender = null; // recommend(request) once started
  let resolveReady;
  const ready = new Promise((resolve) => (resolveReady = resolve));

  const log = (...parts) => debug && console.log(PREFIX, ...parts);

  // Runs one op against the core, or queues it until the core exists.
  function run(op, args) {
    if (state === 'ready') {
      try {
        return ops[op](core, ...args);
      } catch (e) {
        die(e);
        return false;
      }
    }
    if (state === 'off' || queue.length >= MAX_QUEUE) return false;
    queue.push([op, args]);
    return op !== 'reject';
  }

  const reject = (method, message) => run('reject', [method, message]);
  // From pagehide until pageshow the document is going away, though a closing tab is still
  // 'visible' then: its sends must be keepalive requests to outlive it.
  let leaving = false;

  // The core's network: POSTs a batch (or GETs the profile read-back when body is null)
  // and hands the answer back as `delivered(seq, status, retryAfterMs, text)`, status 0
  // when there was none. text/plain (with the write key in the body) keeps it a simple
  // CORS request, with no preflight; once the page is hidden it goes as a keepalive
  // request, which outlives the page.
  function send(url, body, seq) {
    const answer = (status, retryAfter, text) => run('delivered', [seq, status, retryAfter, text]);
    const post = body != null;
    try {
      fetch(url, {
        method: post ? 'POST' : 'GET',
        body,
        keepalive: post && (leaving || document.visibilityState === 'hidden'),
        credentials: 'omit',
        headers: post ? { 'Content-Type': 'text/plain' } : {},
      }).then(
        (r) =>
          post
            ? answer(r.status, retryAfterMs(r.headers.get('Retry-After')))
            : r.text().then((t) => answer(r.status, 0, t), () => answer(0, 0)),
        () => answer(0, 0),
      );
    } catch {
      Promise.resolve().then(() => answer(0, 0));
    }
  }

  // The core's popup: called with the campaign's popup JSON text when one should show.
  // Handed to `api._present(campaign)` when set (js/src/popup.js sets it); a failure there
  // is the popup's own and never reaches the page.
  function present(json) {
    try {
      if (typeof api._present === 'function') api._present(JSON.parse(json));
    } catch (e) {
      log('the popup failed to present', e);
    }
  }

  // Wraps a public method: bad input becomes a rejected call, anything else turns the SDK
  // off; the page never sees an exception.
  function guard(method, body, fallback) {
    return (...args) => {
      try {
        return body(...args);
      } catch (e) {
        if (e instanceof NotJson) return reject(method, e.message);
        die(e);
        return fallback;
      }
    };
  }

  // Turns the SDK into no-ops for the rest of the page's life.
  function disable(message, queued) {
    state = 'off';
    core = null;
    queue = [];
    readyCallbacks = [];
    resolveReady(false);
    // 'error' listeners registered before the load failed still hear why.
    for (const [op, [name, cb]] of queued) {
      if (op === 'on' && name === 'error') {
        try {
          cb({ method: 'init', message });
        } catch {
          // A listener's failure is its own.
        }
      }
    }
  }

  function die(e) {
    if (state === 'off') return;
    if (debug) console.error(PREFIX, 'internal error; Nudge is disabled for this page.', e);
    disable('internal error: ' + (e && e.message), queue);
  }

  async function start(options) {
    if (typeof window === 'undefined' || typeof document === 'undefined') {
      log('not in a browser; Nudge is disabled');
      return disable('not in a browser', queue);
    }
    if (typeof WebAssembly !== 'object') {
      console.error(NO_WASM);
      return disable('WebAssembly is not supported', queue);
    }
    let Nudge;
    const url = options.wasmUrl || defaultWasmUrl();
    try {
      Nudge = await load(url);
    } catch (e) {
      if (cspBlocked(e)) {
        console.error(CSP_BLOCKED);
        return disable('WebAssembly is blocked by Content-Security-Policy', queue);
      }
      if (debug) console.error(PREFIX, `could not load ${url}; Nudge is disabled.`, e);
      return disable(`could not load ${url}: ${e && e.message}`, queue);
    }
    const rest = { ...options };
    delete rest.wasmUrl; // the loader's own option, not the core's
    let text;
    let bad;
    try {
      text = toJson(rest, 'options');
    } catch (e) {
      // Start anyway with what identifies the site, and report the rest.
      bad = e.message;
      text = JSON.stringify({ writeKey: String(options.writeKey || ''), debug });
    }
    // Popups: the page's leaving signals in, the core's chosen campaign out. Connected
    // before the core starts, since the first page view can already trigger one.
    if (options.popups !== false) {
      try {
        connectPopups(api, options);
      } catch (e) {
        log('popups are off: they could not start', e);
      }
    }
    try {
      recommender = connectRecommendations(api, options, log);
    } catch (e) {
      log('recommendations are off: they could not start', e);
    }
    core = new Nudge(text, send, present);
    state = 'ready';
    // Hidden, closing, or back online: store and send now (flush ignores any backoff).
    const flushNow = () => run('flush', []);
    window.addEventListener('pagehide', () => {
      leaving = true;
      flushNow();
    });
    window.addEventListener('pageshow', () => (leaving = false));
    window.addEventListener('online', flushNow);
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && flushNow());
    if (options.trackPages !== false) {
      try {
        watchNavigation(() => run('navigated', []));
      } catch (e) {
        log('cannot watch navigation; single-page-app views are not tracked', e);
      }
    }
    const queued = queue;
    queue = [];
    for (const [op, args] of queued) run(op, args);
    // Problems found while starting go to the 'error' listeners registered by now.
    if (bad) reject('init', bad);
    run('started', []);
    if (state !== 'ready') return;
    const callbacks = readyCallbacks;
    readyCallbacks = [];
    callbacks.forEach(callReady);
    resolveReady(true);
  }

  function callReady(cb) {
    try {
      cb();
    } catch (e) {
      log("a 'ready' listener threw", e);
    }
  }

  const api = {
    /** Promise: true once the SDK runs, false if it was disabled. */
    ready,

    init: guard('init', (options) => {
      const o = options && typeof options === 'object' ? options : {};
      if (state !== 'idle') {
        if (debug || o.debug) console.log(PREFIX, 'init was already called; this call is ignored');
        return;
      }
      debug = !!o.debug;
      state = 'loading';
      start(o).catch(die);
    }),

    // Segment's overload: page(props, options) when the first argument is an object.
    page: guard('page', (name, props, options) => {
      if (name !== null && typeof name === 'object') return api.page(undefined, name, props);
      if (name != null && typeof name !== 'string') return reject('page', 'page name must be a string');
      return run('page', [name ?? undefined, toJson(props, 'properties'), toJson(options, 'options')]);
    }, false),

    track: guard('track', (event, props, options) => {
      if (typeof event !== 'string') return reject('track', 'track needs an event name (a string)');
      return run('track', [event, toJson(props, 'properties'), toJson(options, 'options')]);
    }, false),

    identify: guard('identify', (userId, traits, options) => {
      if (typeof userId !== 'string') return reject('identify', 'identify needs a userId (a string)');
      return run('identify', [userId, toJson(traits, 'traits'), toJson(options, 'options')]);
    }, false),

    consent: guard('consent', (choices) => run('consent', [toJson(choices, 'choices') ?? 'null']), false),

    /** The profile view, or null before the SDK is ready. */
    profile: guard('profile', () => JSON.parse(api._view(0)), null),

    /**
     * `recommend({strategy, count, productId?, category?})`: resolves to the ranked
     * products, each with its `reason`; [] when the SDK is off or the site has no catalogue.
     */
    recommend: guard('recommend', (request) =>
      ready.then((ok) => (ok && recommender ? recommender(request) : [])).catch(() => []), Promise.resolve([])),

    on: guard('on', (name, cb) => {
      if (!EVENTS.includes(name)) return reject('on', `unknown event "${name}"; use ${EVENTS.join(', ')}`);
      if (typeof cb !== 'function') return reject('on', 'on needs a callback function');
      if (name !== 'ready') return void run('on', [name, cb]);
      if (state === 'ready') callReady(cb);
      else if (state !== 'off') readyCallbacks.push(cb);
    }),

    off: guard('off', (name, cb) => {
      if (name === 'ready') readyCallbacks = readyCallbacks.filter((f) => f !== cb);
      else if (typeof cb === 'function') run('off', [name, cb]);
    }),

    /** Persists now (sending comes later); resolves once done, never rejects. */
    flush: guard('flush', () => {
      const now = () => Promise.resolve(run('flush', [])).then(() => undefined);
      return state === 'ready' ? now() : ready.then(now);
    }, Promise.resolve()),

    reset: guard('reset', () => run('reset', []), false),
    forget: guard('forget', () => run('forget', []), false),

    // Internal, for js/src/popup.js: a page signal ({signal, speed|seconds|percent|from}),
    // and a popup outcome ('shown' | 'dismissed' | 'converted', with the email typed).
    _present: null,
    _signal: guard('signal', (signal) => run('signal', [toJson(signal, 'signal')]), false),
    _popup: guard('popup', (id, action, email) =>
      run('popup', [String(id), toJson({ action: String(action), email: email == null ? undefined : String(email).trim() }, 'outcome')]), false),

    /** Outbox, tab role and storage backend, or null before the SDK is ready. */
    debug: guard('debug', () => JSON.parse(api._view(1)), null),

    // Internal: the core's reads (see `Nudge::view` in src/web/api.rs); 'null' before ready.
    _view: (what, arg) => (state === 'ready' ? core.view(what, arg) : 'null'),
  };
  return api;
}
