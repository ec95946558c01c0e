// Notices the page-level hints that a shopper may be leaving (the pointer flying out through
// the top, a fast scroll up on a phone, back, the tab going hidden, idle time) and the
// engagement marks campaigns trigger on (time on page, scroll depth). It only reports what
// it sees, as plain objects; the core compares them with the site's thresholds and decides.
//
// Cheap by design: passive capture listeners that record a number or two, the scroll
// position read only in the scroll event (speed) or one animation frame after it (depth),
// timers rescheduled lazily instead of on every input. It never throws into the page.

// Pointer and scroll speeds are measured over the samples of the last WINDOW_MS. A pointer
// exit is one moment, so it is measured with what there is (over at least one frame); a
// scroll goes on, so its speed waits for MIN_SCROLL_SPAN ms of samples rather than trust
// two events a few ms apart (their timestamps jitter with the main thread).
const WINDOW_MS = 100;
const FRAME_MS = 16;
const MIN_SCROLL_SPAN = 50;
const SAMPLES = 12;

// Upward speed in px/s from the oldest sample of the last WINDOW_MS (else the newest one)
// to position y at time t; samples are [time, position] pairs, oldest first. 0 with no
// samples; null when they span less than `minSpan` ms.
function upwardSpeed(samples, t, y, minSpan) {
  const from = samples.find((s) => t - s[0] <= WINDOW_MS) || samples[samples.length - 1];
  if (!from) return 0;
  const dt = t - from[0];
  if (dt < minSpan) return null;
  return Math.max(0, Math.round(((from[1] - y) * 1000) / Math.max(dt, FRAME_MS)));
}

function push(samples, sample) {
  samples.push(sample);
  if (samples.length > SAMPLES) samples.shift();
}

/**
 * Starts watching and returns a function that stops it (removes every listener and timer).
 * `onSignal` receives one of:
 * - `{signal:'pointer-exit', speed}`: the mouse left through the top of the viewport;
 *   `speed` is its upward speed in px/s (skipped below `options.minPointerSpeed`);
 * - `{signal:'scroll-up', speed}`: the page scrolled up faster than `options.scrollSpeed`
 *   px/s (required for this signal) on a touch device (primary pointer coarse, or
 *   `options.touch: true`); once per fling, with the speed measured when it first passed
 *   the threshold;
 * - `{signal:'back'}`: a same-document back navigation (popstate, not a forward one);
 * - `{signal:'hidden'}`: the tab went hidden; `unloading: true` when the page is being left
 *   (pagehide came first: another page, or the tab closing);
 * - `{signal:'idle'}`: `options.idleSeconds` passed without input; again only after input;
 *   or, with `options.idleMarks` (seconds, e.g. [15, 30, 60]), `{signal:'idle', seconds}`
 *   at each mark reached without input, from the first again after input;
 * - `{signal:'time', seconds}`: for each of `options.timeMarks` (seconds since the start);
 * - `{signal:'scroll', percent}`: the first time scroll depth reaches each of
 *   `options.scrollMarks` (percent of the page seen, bottom of the viewport).
 * `options.now` is the clock in milliseconds (default `performance.now`), for tests.
 */
export function watchLeaving(options, onSignal) {
  const off = [];
  const timers = new Set();
  let stopped = false;
  try {
    start(options || {}, onSignal, off, timers, () => stopped);
  } catch {
    // a browser missing some API: keep what was set up
  }
  return () => {
    stopped = true;
    for (const f of off.splice(0)) f();
    for (const t of timers) clearTimeout(t.id);
    timers.clear();
  };
}

function start(o, onSignal, off, timers, isStopped) {
  const now = typeof o.now === 'function' ? o.now : () => performance.now();
  const emit = (signal) => {
    if (isStopped()) return;
    try {
      onSignal(signal);
    } catch {
      // the listener's failure stays with the listener
    }
  };
  const listen = (target, type, fn) => {
    const guarded = (e) => {
      try {
        fn(e);
      } catch {
        // never into the page
      }
    };
    const opts = { capture: true, passive: true };
    target.addEventListener(type, guarded, opts);
    off.push(() => target.removeEventListener(type, guarded, opts));
  };
  // Runs `fn` once the clock has reached `due` (checked against `now`, so an injected clock
  // and timer clamping both hold).
  const at = (due, fn) => {
    const t = {};
    const check = () => {
      const left = due - now();
      if (left > 0) t.id = setTimeout(check, Math.min(left, 2 ** 31 - 1));
      else {
        timers.delete(t);
        fn();
      }
    };
    timers.add(t);
    t.id = setTimeout(check, Math.max(0, due - now()));
  };
  const started = now();

  // Pointer leaving through the top.
  const pointer = [];
  listen(window, 'pointermove', (e) => {
    if (e.pointerType !== 'touch') push(pointer, [now(), e.clientY]);
  });
  listen(document, 'mouseout', (e) => {
    if (e.relatedTarget || e.clientY > 0) return;
    const speed = upwardSpeed(pointer, now(), e.clientY, 0);
    pointer.length = 0;
    if (!(speed < o.minPointerSpeed)) emit({ signal: 'pointer-exit', speed });
  });

  // Scrolling: upward speed on touch devices, depth marks.
  const touch = o.touch ?? !!(window.matchMedia && matchMedia('(pointer: coarse)').matches);
  const scrolls = [];
  let flung = false;
  const marks = [...(o.scrollMarks || [])].filter((m) => typeof m === 'number').sort((a, b) => a - b);
  let depthFrame = 0;
  listen(window, 'scroll', (e) => {
    if (e.target !== document) return;
    if (touch && o.scrollSpeed != null) {
      const t = now();
      const y = window.scrollY;
      const speed = upwardSpeed(scrolls, t, y, MIN_SCROLL_SPAN);
      push(scrolls, [t, y]);
      if (speed === null) return;
      if (speed < o.scrollSpeed) flung = false;
      else if (!flung) {
        flung = true;
        emit({ signal: 'scroll-up', speed });
      }
    }
    if (marks.length && !depthFrame) {
      depthFrame = requestAnimationFrame(() => {
        depthFrame = 0;
        const d = document.documentElement;
        const percent = ((window.scrollY + window.innerHeight) * 100) / Math.max(d.scrollHeight, 1);
        while (marks.length && percent >= marks[0]) emit({ signal: 'scroll', percent: marks.shift() });
      });
    }
  });
  off.push(() => cancelAnimationFrame(depthFrame));

  // Back: popstate, unless the Navigation API shows the history index went up (forward).
  const nav = window.navigation;
  const index = () => (nav && nav.currentEntry ? nav.currentEntry.index : -1);
  let lastIndex = index();
  if (nav && nav.addEventListener) {
    // Pushes and replaces move the index without a popstate.
    listen(nav, 'currententrychange', (e) => {
      if (e.navigationType !== 'traverse') lastIndex = index();
    });
  }
  listen(window, 'popstate', () => {
    const i = index();
    if (i < 0 || lastIndex < 0 || i < lastIndex) emit({ signal: 'back' });
    lastIndex = i;
  });

  // A page that is being left (pagehide came first) also goes hidden: flagged, since moving
  // to the store's next page is not leaving the store.
  let unloading = false;
  listen(window, 'pagehide', () => (unloading = true));
  listen(window, 'pageshow', () => (unloading = false));
  listen(document, 'visibilitychange', () => {
    if (document.visibilityState === 'hidden') emit(unloading ? { signal: 'hidden', unloading: true } : { signal: 'hidden' });
  });

  // Idle: one timer at a time, pushed back lazily when it finds recent input. With
  // `idleMarks` each mark (seconds) reached without input is reported with its seconds,
  // so the core can compare them with a threshold this file does not know.
  const idleMarks = Array.isArray(o.idleMarks)
    ? o.idleMarks.filter((m) => typeof m === 'number' && m > 0).sort((a, b) => a - b)
    : o.idleSeconds > 0
      ? [o.idleSeconds]
      : [];
  if (idleMarks.length) {
    let last = now();
    let next = 0; // the next mark to report since the last input
    let waiting = false;
    const arm = () => {
      waiting = true;
      const ms = idleMarks[next] * 1000;
      at(last + ms, () => {
        if (now() - last >= ms) {
          emit(o.idleMarks ? { signal: 'idle', seconds: idleMarks[next] } : { signal: 'idle' });
          next++;
          if (next < idleMarks.length) arm();
          else waiting = false;
        } else arm();
      });
    };
    const input = () => {
      last = now();
      next = 0;
      if (!waiting) arm();
    };
    for (const type of ['pointermove', 'pointerdown', 'keydown', 'wheel', 'touchstart', 'scroll']) listen(window, type, input);
    arm();
  }

  for (const seconds of o.timeMarks || []) {
    if (typeof seconds === 'number' && seconds >= 0) at(started + seconds * 1000, () => emit({ signal: 'time', seconds }));
  }
}
