// The campaign popup: one modal dialog drawn in a Shadow DOM on a host element of its own,
// so the page's CSS cannot reach it and its CSS cannot reach the page. The SDK calls
// `showPopup` when the core decides to show a campaign; this file only draws it, takes
// the shopper's input and reports back through the handlers. It never throws into the
// page and creates no global.
//
// Theming: the page sets these custom properties on the host element (`nudge-popup`) or
// any ancestor (e.g. `:root { --nudge-accent: #0a7 }`):
//   --nudge-accent     buttons, focus ring, coupon border     (default #1d4ed8)
//   --nudge-accent-fg  text on the accent colour               (default #fff)
//   --nudge-bg         panel background                        (default #fff)
//   --nudge-fg         panel text                              (default #1a1a1a)
//   --nudge-radius     panel corner radius                     (default 12px)
//   --nudge-font       font family                             (default system-ui stack)
//   --nudge-overlay    the dimmed page behind the panel        (default rgba(0,0,0,.5))
//
// The shadow root is open: page scripts can already patch `attachShadow` or remove the
// host, so a closed root would protect nothing, while an open one lets the store's own
// end-to-end tests and testing tools find and dismiss the popup. Isolation comes from the
// shadow boundary (selectors do not cross it) and from `:host { all: initial !important }`:
// important declarations of the shadow tree beat the page's, so even a page rule like
// `* { display: none !important }` leaves the popup intact. Sizes are in px, not rem,
// so the page's root font size does not scale it either.

const CSS = `
:host{all:initial!important;display:block!important;position:fixed!important;top:0!important;left:0!important;width:0!important;height:0!important;z-index:2147483647!important}
[hidden]{display:none!important}
dialog{position:fixed;inset:0;box-sizing:border-box;width:100%;height:100%;max-width:none;max-height:none;margin:0;padding:16px;border:0;display:flex;overflow:auto;background:var(--nudge-overlay,rgba(0,0,0,.5));color:var(--nudge-fg,#1a1a1a);font:16px/1.45 var(--nudge-font,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);-webkit-text-size-adjust:100%}
dialog:not([open]){display:none}
dialog::backdrop{background:none}
.p{position:relative;box-sizing:border-box;width:100%;max-width:420px;margin:auto;padding:24px 20px 20px;background:var(--nudge-bg,#fff);border-radius:var(--nudge-radius,12px);box-shadow:0 10px 40px rgba(0,0,0,.3);overflow-wrap:anywhere;text-align:start}
@media (prefers-reduced-motion:no-preference){.p{animation:nudge-in .18s ease-out}}
@keyframes nudge-in{from{opacity:0;transform:translateY(10px)}}
h2{margin:0 0 8px;margin-inline-end:36px;font-size:22px;line-height:1.25;font-weight:700}
p{margin:0 0 12px}
img{display:block;width:100%;height:auto;max-height:200px;object-fit:cover;border-radius:calc(var(--nudge-radius,12px)/2);margin:0 0 16px}
button,input{font:inherit;margin:0;box-sizing:border-box}
button{cursor:pointer;border-radius:calc(var(--nudge-radius,12px)/2)}
:focus-visible{outline:3px solid var(--nudge-accent,#1d4ed8);outline-offset:2px}
.x{position:absolute;top:6px;inset-inline-end:6px;width:40px;height:40px;padding:0;border:0;border-radius:50%;background:var(--nudge-bg,#fff);color:inherit;font-size:28px;line-height:1}
label{display:block;font-size:14px;font-weight:600;margin:0 0 4px}
input{display:block;width:100%;padding:11px 12px;font-size:16px;color:#1a1a1a;background:#fff;border:1px solid #767676;border-radius:calc(var(--nudge-radius,12px)/2)}
[aria-invalid=true]{border-color:#b91c1c}
.m{font-size:14px;margin:6px 0 10px}
.e{color:#b91c1c}
.v{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.c{display:flex;flex-wrap:wrap;align-items:center;gap:8px;padding:12px;margin:0 0 12px;border:2px dashed var(--nudge-accent,#1d4ed8);border-radius:calc(var(--nudge-radius,12px)/2)}
code{flex:1 1 auto;font:700 20px/1.2 ui-monospace,Menlo,Consolas,monospace;letter-spacing:.04em;user-select:all;-webkit-user-select:all}
.c p{flex-basis:100%;margin:0;font-size:14px}
.k,.g{border:2px solid var(--nudge-accent,#1d4ed8);padding:8px 14px;font-weight:700}
.k{background:none;color:inherit}
.g{display:block;width:100%;min-height:48px;background:var(--nudge-accent,#1d4ed8);color:var(--nudge-accent-fg,#fff)}
[aria-disabled=true]{opacity:.7;cursor:progress}
`;

// A plain syntax check: something@domain.tld, no spaces, at most 254 characters. The
// server checks again; this only catches typos before anything is sent.
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

const str = (v) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

// An element with attributes and, optionally, text (always as text, never as markup).
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text) e.textContent = text;
  return e;
}

// The image URL if it may be shown: https, or the page's own origin; otherwise null.
function imageUrl(src) {
  if (!str(src)) return null;
  try {
    const u = new URL(src, location.href);
    return u.protocol === 'https:' || u.origin === location.origin ? u.href : null;
  } catch {
    return null;
  }
}

// The element that has focus, looking inside open shadow roots (a focused web component).
function focused() {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  return a;
}

/**
 * Shows `campaign` (the campaign JSON: `id`, `offer`, `content`, `trigger`) as a modal
 * popup and returns `{close()}`; `close()` removes it without calling any handler.
 *
 * Handlers (all optional, each call guarded: a handler that throws or rejects never
 * reaches the page):
 * - `shown()`: once, after the popup has been painted (or at once if the shopper acts
 *   sooner), always before `convert` and `dismiss`.
 * - `convert(email)`: the shopper asked for the offer; `email` is a checked address
 *   (`content.emailField`) or null. Resolves to `{coupon, expires_at?}`; a rejection (or
 *   no coupon) shows a retry message when an email was sent; without an email field the
 *   campaign's fixed `offer.code` is shown whatever it returns.
 * - `dismiss()`: once, when the shopper closes the popup (close button, Escape, a click
 *   outside the panel) without having converted.
 */
export function showPopup(campaign, handlers) {
  let host;
  try {
    host = document.createElement('nudge-popup');
    return build(host, campaign || {}, handlers || {});
  } catch {
    try {
      host.remove();
    } catch {
      // nothing was attached
    }
    return { close() {} };
  }
}

function build(host, campaign, handlers) {
  const call = (name, ...args) => {
    try {
      const f = handlers[name];
      if (typeof f === 'function') f(...args);
    } catch {
      // a failing handler must not break the popup or the page
    }
  };
  const content = campaign.content || {};
  const offer = campaign.offer || {};
  const withEmail = content.emailField === true;
  const previous = focused();
  const root = host.attachShadow({ mode: 'open' });
  if (str(campaign.id)) host.setAttribute('data-campaign', str(campaign.id));

  const title = str(content.title);
  const dialog = el('dialog', { role: 'dialog', 'aria-modal': 'true', 'aria-describedby': 'd' });
  dialog.setAttribute(title ? 'aria-labelledby' : 'aria-label', title ? 't' : 'Offer');
  const panel = el('div', { class: 'p' });
  const closeButton = el('button', { type: 'button', class: 'x', 'aria-label': 'Close' }, '\u00d7');
  panel.append(closeButton);
  const src = imageUrl(content.image);
  if (src) {
    const img = el('img', { alt: '', decoding: 'async', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => img.remove());
    img.src = src;
    panel.append(img);
  }
  panel.append(el('h2', { id: 't' }, title), el('p', { id: 'd' }, str(content.text)));

  const form = el('form', { novalidate: '' });
  let input = null;
  if (withEmail) {
    input = el('input', { id: 'e', type: 'email', name: 'email', autocomplete: 'email', inputmode: 'email', spellcheck: 'false' });
    form.append(el('label', { for: 'e' }, 'Email address'), input);
  }
  const message = el('p', { class: 'm', id: 'm', 'aria-live': 'polite' });
  const coupon = el('div', { class: 'c', hidden: '' });
  const go = el('button', { type: 'submit', class: 'g' }, str(content.button) || (withEmail ? 'Get my code' : 'OK'));
  form.append(message, coupon, go);
  panel.append(form);
  dialog.append(panel);
  root.append(el('style', {}, CSS), dialog);

  let closed = false;
  // `shown` comes before `convert` and `dismiss`, even if the shopper acts before the
  // first frame has been painted.
  let seen = false;
  const shown = () => seen || ((seen = true), call('shown'));
  let busy = null; // the pending convert(), while one runs
  let converted = false;

  // The live message under the form: an error, progress, or (only for screen readers, the
  // coupon box shows it) the outcome.
  const say = (text, kind = '') => {
    message.textContent = text;
    message.className = 'm ' + kind;
  };

  function finish(report) {
    if (closed) return;
    closed = true;
    try {
      if (dialog.open) dialog.close();
    } catch {
      // already closed
    }
    host.remove();
    try {
      // The document's selection can still sit in the removed email field; left there, keys
      // typed once focus is back in a page field insert nothing (Chromium).
      getSelection().removeAllRanges();
      if (previous && previous.isConnected && previous.focus) previous.focus({ preventScroll: true });
    } catch {
      // the previous element cannot take focus any more
    }
    if (!report || converted) return;
    shown();
    // Closed while a conversion is under way: a dismissal only if that fails (submit's own
    // wait on `busy` runs first and sets `converted`).
    if (busy) busy.then(() => converted || call('dismiss'));
    else call('dismiss');
  }

  function showCoupon(code, expiresAt) {
    coupon.replaceChildren(el('span', {}, 'Your code:'), el('code', {}, code));
    const copy = el('button', { type: 'button', class: 'k' }, 'Copy');
    copy.addEventListener('click', async () => {
      let ok = false;
      try {
        await navigator.clipboard.writeText(code);
        ok = true;
      } catch {
        try {
          getSelection().selectAllChildren(coupon.querySelector('code'));
        } catch {
          // nothing more to try
        }
      }
      copy.textContent = ok ? 'Copied' : 'Copy';
      say(ok ? 'Code copied.' : 'Select the code to copy it.', ok ? 'v' : '');
    });
    coupon.append(copy);
    const expires = new Date(str(expiresAt) || NaN);
    if (!isNaN(expires)) coupon.append(el('p', {}, `Valid until ${expires.toLocaleDateString()}`));
    coupon.hidden = false;
    if (input) input.hidden = form.querySelector('label').hidden = true;
    say(`Your code is ${code}.`, 'v');
    go.textContent = 'Close';
    copy.focus();
  }

  async function submit() {
    if (converted) return finish(false);
    if (busy) return;
    let email = null;
    if (withEmail) {
      email = input.value.trim();
      if (email.length > 254 || !EMAIL.test(email)) {
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', 'm');
        say('Please enter a valid email address, like name@example.com.', 'e');
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
    }
    const fixed = !withEmail && str(offer.code);
    shown();
    go.setAttribute('aria-disabled', 'true');
    say(withEmail ? 'Sending\u2026' : '');
    let result;
    busy = new Promise((resolve) => resolve(handlers.convert && handlers.convert(email))).then(
      (r) => {
        result = r;
        return !!(r && str(r.coupon));
      },
      () => false,
    );
    const ok = await busy;
    busy = null;
    go.removeAttribute('aria-disabled');
    if (ok || fixed) {
      converted = true;
      if (closed) return;
      if (fixed || withEmail) showCoupon(ok ? str(result.coupon) : fixed, ok && result.expires_at);
      else finish(false);
    } else if (!closed) {
      say('Sorry, something went wrong. Please try again.', 'e');
      go.focus();
    }
  }

  // The controls Tab moves between, in order (hidden ones left out).
  const controls = () => [...root.querySelectorAll('button,input')].filter((e) => !e.hidden && !e.closest('[hidden]'));

  dialog.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      finish(true);
    } else if (e.key === 'Tab') {
      const list = controls();
      const i = list.indexOf(root.activeElement);
      const n = list.length;
      e.preventDefault();
      list[i < 0 ? (e.shiftKey ? n - 1 : 0) : (i + (e.shiftKey ? n - 1 : 1)) % n].focus();
    }
  });
  // The browser's own ways of closing a modal dialog count as dismissals too.
  dialog.addEventListener('cancel', (e) => {
    e.preventDefault();
    finish(true);
  });
  dialog.addEventListener('close', () => finish(true));
  // A click on the dimmed area around the panel (pressed there too: selecting text in the
  // panel and letting go outside is no dismissal).
  let downOutside = false;
  dialog.addEventListener('pointerdown', (e) => (downOutside = e.target === dialog));
  dialog.addEventListener('click', (e) => downOutside && e.target === dialog && finish(true));
  closeButton.addEventListener('click', () => finish(true));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit().catch(() => {});
  });

  (document.body || document.documentElement).append(host);
  try {
    // The top layer: above every z-index, outside any transformed ancestor, the rest of
    // the page inert while it is open.
    dialog.showModal();
  } catch {
    dialog.setAttribute('open', '');
  }
  (input || go).focus();

  // After the next frame has been painted.
  requestAnimationFrame(() => setTimeout(() => closed || shown(), 0));
  return { close: () => finish(false) };
}
