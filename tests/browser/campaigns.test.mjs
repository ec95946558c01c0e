// Campaign popups end to end: campaigns loaded into a real nudge-server (PUT /v1/campaigns
// with the secret key), a store page with the customer's snippet pointed at that server,
// real mouse, touch and keyboard input in headless Chromium, and what the server stored read
// back through its change feed. The email test also runs a real SMTP server (aiosmtpd,
// server/tests/smtp/sink.py) and reads the coupon email it received.
//
// Needs js/dist (scripts/build) and the nudge-server binary (`cargo build -p nudge-server`,
// or NUDGE_SERVER_BIN); the email test needs a python3 with aiosmtpd.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  suite, sdkPage, watchPage, waitReady, waitUntil, debugInfo, startNudgeServer, swipe,
  putCampaigns, OBSERVE, fastExit, draw, startSink, mimeEntity, mimeParts,
} from './helpers.mjs';

const env = suite({ before, after });
let ns = null;
let sink = null;
afterEach(async () => {
  await env.closeAll();
  await ns?.stop();
  ns = null;
  await sink?.stop();
  sink = null;
});

const PHONE = { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true };

/** A fresh nudge-server whose one site allows the test pages' origin. */
async function serverFor(args = []) {
  ns = await startNudgeServer({ origins: [env.server.origin], args });
  return ns;
}

/** A campaign as a store writes it (exit intent, a fixed code), with `extra` merged over it. */
function campaign(id, extra = {}) {
  return {
    id,
    priority: 10,
    trigger: { on: 'exit-intent' },
    offer: { code: 'SAVE10', percent: 10, expiresDays: 7 },
    content: { title: 'Wait! 10% off TVs', text: 'Use the code at checkout.', button: 'Show my code', emailField: false },
    ...extra,
  };
}

const PRODUCT = `<h1>Orbit 55" OLED TV</h1><p>A television.</p>
<label>Search <input id="search" type="search"></label> <button id="buy">Add to cart</button>`;

/**
 * Opens the store page (snippet with `server` as endpoint) in `context` or a new one and
 * waits until the SDK is ready and has applied the site config. The page has a viewport
 * meta tag, as a store's does. Counts alerts and confirms in `tab.alerts`.
 */
async function openShop(server, { context, contextOptions, options, body = PRODUCT, after = '', path, goto = true } = {}) {
  let html = await sdkPage(env.server, { endpoint: server.url, writeKey: server.writeKey, options, body, after });
  html = html.replace('<meta charset="utf-8">', '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">');
  const url = env.server.page(html, { path });
  let page;
  let watch;
  if (context) {
    page = await context.newPage();
    watch = watchPage(page);
  } else {
    const tab = await env.open({ contextOptions });
    ({ context, page } = tab);
    watch = tab;
  }
  await page.addInitScript(OBSERVE);
  const tab = { page, context, url, errors: watch.errors, consoleMessages: watch.consoleMessages, alerts: 0 };
  tab.requests = [];
  page.on('request', (r) => tab.requests.push(r.url()));
  page.on('dialog', (d) => {
    tab.alerts++;
    d.dismiss().catch(() => {});
  });
  if (goto) await load(tab);
  return tab;
}

/** (Re)loads the tab's page and waits for ready and the site config. */
async function load(tab) {
  await tab.page.goto(tab.url, { waitUntil: 'domcontentloaded' });
  await waitReady(tab.page);
  await tab.page.waitForFunction(() => window.__nudgeConfig === true, null, { timeout: 10000, polling: 10 });
}

/** A slow drift to the tab bar: 5 px every 40 ms (about 125 px/s). */
async function slowDrift(page, x = 300) {
  const before = await page.evaluate(() => window.__exits);
  await page.mouse.move(x, 60);
  for (let y = 55; y >= -5; y -= 5) {
    await page.mouse.move(x, y);
    await page.waitForTimeout(40); // the drift's pace is the point
  }
  await page.waitForFunction((n) => window.__exits > n, before);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
}

const popupCount = (page) => page.locator('nudge-popup').count();

/** What the popup shows: the dialog's accessible name and state, or null when there is none. */
const popupState = (page) =>
  page.evaluate(() => {
    const host = document.querySelector('nudge-popup');
    if (!host) return null;
    const root = host.shadowRoot;
    const d = root.querySelector('dialog');
    const title = root.getElementById(d.getAttribute('aria-labelledby') || '');
    return { open: d.open, modal: d.matches(':modal'), title: title ? title.textContent : null };
  });

/** Every message the server stored for this site, in commit order, of `type`/`event`. */
async function storedEvents(server, event) {
  const all = await server.stored();
  return all.filter((m) => m.type === 'track' && (event === undefined || m.event === event));
}

/** Waits until the server stored at least `n` `event` tracks; returns them. */
async function waitStoredEvent(server, event, n = 1, timeout = 15000) {
  return waitUntil(async () => {
    const got = await storedEvents(server, event);
    return got.length >= n ? got : null;
  }, { what: `${n} × ${event} stored by the server`, timeout, interval: 100 });
}

/** Persists and sends what waits now (as the SDK does when the page is hidden). */
const flush = (page) => page.evaluate(() => window.nudge.flush());

// ----- 1. desktop exit intent -----

test('desktop: a fast exit through the top shows the campaign popup and Popup Shown reaches the server; a slow drift shows nothing', async () => {
  const server = await serverFor();
  await putCampaigns(server, [campaign('tv-exit')]);

  // A slow drift to the tab bar first: no popup.
  const slow = await openShop(server);
  await slowDrift(slow.page);
  assert.equal(await popupCount(slow.page), 0, 'no popup for a slow drift');

  // Another shopper leaves fast.
  const tab = await openShop(server);
  await fastExit(tab.page);
  const dialog = tab.page.getByRole('dialog', { name: 'Wait! 10% off TVs' });
  await dialog.waitFor({ state: 'visible' });
  assert.deepEqual(await popupState(tab.page), { open: true, modal: true, title: 'Wait! 10% off TVs' });
  assert.equal(await dialog.getByText('Use the code at checkout.').isVisible(), true);

  // Popup Shown travels to the server with the SDK's own batching (no flush: within 5 s).
  const shown = await waitStoredEvent(server, 'Popup Shown');
  const anon = (await tab.page.evaluate(() => window.nudge.profile())).anonymousId;
  assert.equal(shown.length, 1);
  assert.deepEqual(shown[0].properties, { campaign_id: 'tv-exit', trigger: 'exit-intent' });
  assert.equal(shown[0].anonymousId, anon, 'shown to the shopper who left fast');
  await flush(slow.page);
  await waitUntil(async () => (await debugInfo(slow.page)).outbox.length === 0, { what: "the slow shopper's outbox sent" });
  assert.equal((await storedEvents(server, 'Popup Shown')).length, 1, 'nothing was shown to the slow shopper');
  for (const t of [slow, tab]) assert.deepEqual(t.errors, []);
});

// ----- 2. mobile -----


test('phone (375 px, touch): a slow swipe up shows nothing, a fast fling up shows the popup, and it fits the screen', async () => {
  const server = await serverFor();
  await putCampaigns(server, [campaign('tv-exit', {
    content: {
      title: 'Before you go: 10% off every TV in the store this week',
      text: 'Use the code SAVE10 at checkout. It works on every television, soundbar and wall mount we sell, until Sunday.',
      button: 'Show my code',
      emailField: false,
    },
  })]);
  const tab = await openShop(server, { contextOptions: PHONE, body: PRODUCT + '<div style="height:20000px"></div>' });
  const { page } = tab;
  await page.evaluate(() => window.scrollTo(0, 15000));
  await page.waitForFunction(() => scrollY === 15000);
  const cdp = await page.context().newCDPSession(page);

  // 250 px in a second: reading back up the page, not leaving.
  await swipe(page, cdp, { fromY: 150, toY: 400, steps: 25, stepMs: 40 }, '__lastScroll');
  assert.ok(await page.evaluate(() => scrollY < 15000), 'the slow swipe scrolled up');
  assert.equal(await popupCount(page), 0, 'no popup for a slow swipe');

  // 500 px in 50 ms: 10,000 px/s, a fling to the top.
  await swipe(page, cdp, { fromY: 100, toY: 600, steps: 5, stepMs: 10 }, '__lastScroll');
  const dialog = page.getByRole('dialog', { name: /Before you go/ });
  await dialog.waitFor({ state: 'visible' });
  const fit = await page.evaluate(() => {
    const root = document.querySelector('nudge-popup').shadowRoot;
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, right: r.right, width: r.width };
    };
    const inside = [...root.querySelectorAll('.p, .p *')].map(box);
    return {
      viewport: innerWidth,
      panel: box(root.querySelector('.p')),
      widest: Math.max(...inside.map((b) => b.right)),
      leftmost: Math.min(...inside.map((b) => b.left)),
      dialogScrolls: root.querySelector('dialog').scrollWidth > root.querySelector('dialog').clientWidth,
      pageScrolls: document.documentElement.scrollWidth > innerWidth,
    };
  });
  assert.equal(fit.viewport, 375);
  assert.ok(fit.panel.left >= 0 && fit.panel.right <= 375, `the panel is within the screen: ${JSON.stringify(fit.panel)}`);
  assert.ok(fit.leftmost >= 0 && fit.widest <= 375, `nothing in it sticks out: ${fit.leftmost}..${fit.widest}`);
  assert.equal(fit.dialogScrolls, false, 'no horizontal scrolling inside the popup');
  assert.equal(fit.pageScrolls, false, 'no horizontal scrolling of the page');
  // The button is big enough to tap and can be tapped.
  const button = dialog.getByRole('button', { name: 'Show my code' });
  const b = await button.boundingBox();
  assert.ok(b.height >= 44, `button height ${b.height}`);
  await button.tap();
  await page.locator('nudge-popup code').filter({ hasText: 'SAVE10' }).waitFor();

  await flush(page);
  const shown = await waitStoredEvent(server, 'Popup Shown');
  assert.deepEqual(shown.map((m) => m.properties.campaign_id), ['tv-exit']);
  await waitStoredEvent(server, 'Popup Converted');
  assert.deepEqual(tab.errors, []);
});

test('phone: going back from a product page (a single-page store) is leaving and shows the popup; back from a list page or within the page is not', async () => {
  const server = await serverFor();
  await putCampaigns(server, [campaign('tv-back')]);
  // A single-page store: the list at /tvs, products shown with pushState (the SDK tracks the
  // view itself), a Product Viewed tracked on the product page, back with the history.
  const spa = `<h1 id="h">TVs</h1><a id="p" href="/products/tv-orbit-55">Orbit 55</a> <a id="s" href="/tvs/oled">OLED only</a>
<a href="#reviews">Reviews</a><h2 id="reviews">Reviews</h2>
<script>
  for (const id of ['p', 's']) document.getElementById(id).addEventListener('click', (e) => {
    e.preventDefault();
    history.pushState({}, '', e.target.getAttribute('href'));
    document.getElementById('h').textContent = e.target.textContent;
    if (id === 'p') nudge.track('Product Viewed', {product_id: 'tv-orbit-55', category: 'TVs', price: 899, currency: 'USD'});
  });
</script>`;
  const tab = await openShop(server, { contextOptions: PHONE, body: spa, path: '/tvs' });
  const { page } = tab;
  const at = (path) => page.waitForFunction((p) => location.pathname === p, path);

  // A list page, then back: the shopper is still browsing.
  await page.getByRole('link', { name: 'OLED only' }).tap();
  await at('/tvs/oled');
  await page.goBack();
  await at('/tvs');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
  assert.equal(await popupCount(page), 0, 'no popup on back from a list page');

  // A product page; its reviews (a link to a fragment), then back: still on the product.
  await page.getByRole('link', { name: 'Orbit 55' }).tap();
  await at('/products/tv-orbit-55');
  await page.getByRole('link', { name: 'Reviews' }).tap();
  await page.waitForFunction(() => location.hash === '#reviews');
  await page.goBack();
  await page.waitForFunction(() => location.hash === '');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
  assert.equal(await popupCount(page), 0, 'no popup on back within the product page');
  assert.equal(await page.evaluate(() => location.pathname), '/products/tv-orbit-55');

  // Back again: leaving the product.
  await page.goBack();
  await at('/tvs');
  await page.getByRole('dialog', { name: 'Wait! 10% off TVs' }).waitFor({ state: 'visible' });
  await flush(page);
  const shown = await waitStoredEvent(server, 'Popup Shown');
  assert.deepEqual(shown.map((m) => m.properties), [{ campaign_id: 'tv-back', trigger: 'exit-intent' }]);
  assert.deepEqual(tab.errors, []);
});

// ----- 3. caps and holdout -----

test('caps: dismissed with Escape, the popup does not show again on another exit, nor on the next page of the session', async () => {
  const server = await serverFor();
  // Up to three shows a session: what keeps it away after an Escape is the dismissal pause.
  await putCampaigns(server, [campaign('tv-caps', { caps: { perSession: 3, dismissDays: 7 } })]);
  const tab = await openShop(server);
  const { page } = tab;
  const standings = async () => (await debugInfo(page)).campaigns.map((c) => [c.id, c.on, c.standing]);
  assert.deepEqual(await standings(), [['tv-caps', 'exit-intent', 'eligible']]);
  await page.focus('#search');
  await fastExit(page);
  await page.getByRole('dialog', { name: 'Wait! 10% off TVs' }).waitFor();
  await page.keyboard.press('Escape');
  assert.equal(await popupCount(page), 0, 'Escape closes it');
  assert.deepEqual(await standings(), [['tv-caps', 'exit-intent', 'capped']], 'debug() says why it will not show');

  await fastExit(page);
  assert.equal(await popupCount(page), 0, 'not again after a dismissal');

  // The next page of the same session (same browser, a minute later at most).
  await flush(page);
  const sessionId = (await page.evaluate(() => window.nudge.profile())).sessionId;
  await load(tab);
  assert.equal((await page.evaluate(() => window.nudge.profile())).sessionId, sessionId, 'the same session');
  await fastExit(page);
  await fastExit(page);
  assert.equal(await popupCount(page), 0, 'not on the next page either');

  await flush(page);
  await waitStoredEvent(server, 'Popup Dismissed');
  const popups = (await storedEvents(server)).filter((m) => m.event.startsWith('Popup '));
  assert.deepEqual(popups.map((m) => [m.event, m.properties.campaign_id]), [
    ['Popup Shown', 'tv-caps'],
    ['Popup Dismissed', 'tv-caps'],
  ]);
  assert.deepEqual(tab.errors, []);
});

test('holdout: a shopper whose draw falls in the holdout sees nothing and Popup Held Out is sent; one outside it sees the popup', async () => {
  const server = await serverFor();
  const tab = await openShop(server); // no campaigns yet: learn who the shopper is
  const { page } = tab;
  await flush(page);
  const anon = (await page.evaluate(() => window.nudge.profile())).anonymousId;
  // Campaign ids whose draw for this shopper (as src/decide.rs computes it) is inside and
  // outside a 0.9 holdout.
  const ids = Array.from({ length: 500 }, (_, i) => `tv-holdout-${i}`);
  const heldId = ids.find((id) => draw(anon, id) < 0.9);
  const shownId = ids.find((id) => draw(anon, id) >= 0.9);
  assert.ok(heldId && shownId);

  await putCampaigns(server, [campaign(heldId, { holdout: 0.9 })]);
  await load(tab);
  assert.equal((await page.evaluate(() => window.nudge.profile())).anonymousId, anon);
  await fastExit(page);
  assert.equal(await popupCount(page), 0, `held out of ${heldId} (draw ${draw(anon, heldId).toFixed(3)})`);
  await flush(page);
  const held = await waitStoredEvent(server, 'Popup Held Out');
  assert.deepEqual(held.map((m) => [m.anonymousId, m.properties]), [[anon, { campaign_id: heldId, trigger: 'exit-intent' }]]);
  // Held out once per caps period, like a show: another exit sends nothing more.
  await fastExit(page);
  await flush(page);
  await waitUntil(async () => (await debugInfo(page)).outbox.length === 0, { what: 'the outbox sent' });
  assert.equal((await storedEvents(server, 'Popup Held Out')).length, 1);

  await putCampaigns(server, [campaign(shownId, { holdout: 0.9 })]);
  await load(tab);
  await fastExit(page);
  await page.getByRole('dialog', { name: 'Wait! 10% off TVs' }).waitFor();
  await flush(page);
  const shown = await waitStoredEvent(server, 'Popup Shown');
  assert.deepEqual(shown.map((m) => [m.anonymousId, m.properties.campaign_id]), [[anon, shownId]]);
  assert.equal((await storedEvents(server, 'Popup Held Out')).length, 1);
  console.log(`# holdout 0.9 for ${anon}: ${heldId} draw ${draw(anon, heldId).toFixed(3)} (held out), ${shownId} draw ${draw(anon, shownId).toFixed(3)} (shown)`);
  assert.deepEqual(tab.errors, []);
});

// ----- 4. hostile content -----

test("hostile campaign content from the server is shown as the characters typed: no element made of it, no script run", async () => {
  const server = await serverFor();
  const hostile = '<img src=x onerror="alert(1)">';
  await putCampaigns(server, [campaign('tv-hostile', {
    content: { title: hostile, text: `${hostile}<script>confirm(2)</script><b>bold</b>`, button: `${hostile}Go`, emailField: false },
  })]);
  const tab = await openShop(server);
  const { page } = tab;
  // An element made of the content would fetch /x from the page's origin.
  const requested = () => env.server.requests.filter((r) => r === '/x' || r.startsWith('/x?')).length;
  const before = requested();
  await fastExit(page);
  const dialog = page.getByRole('dialog', { name: hostile });
  await dialog.waitFor();
  assert.equal(await dialog.locator('h2').textContent(), hostile);
  assert.ok(await dialog.getByText(`${hostile}<script>confirm(2)</script><b>bold</b>`, { exact: true }).isVisible());
  assert.ok(await page.getByRole('button', { name: `${hostile}Go` }).isVisible());
  const made = await page.evaluate(() => {
    const root = document.querySelector('nudge-popup').shadowRoot;
    return {
      img: root.querySelectorAll('img').length,
      script: root.querySelectorAll('script').length,
      b: root.querySelectorAll('b').length,
      pageImg: document.querySelectorAll('img').length,
    };
  });
  assert.deepEqual(made, { img: 0, script: 0, b: 0, pageImg: 0 });
  // Give an injected handler every chance to run.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 100))));
  assert.equal(tab.alerts, 0, 'no alert or confirm');
  assert.equal(requested(), before, 'nothing fetched /x');
  assert.deepEqual(tab.errors, []);
});

// ----- 5. two tabs -----

test('two tabs of the store: the popup shows in the tab the shopper leaves, and once dismissed there, an exit in the other tab shows nothing', async () => {
  const server = await serverFor();
  await putCampaigns(server, [campaign('tv-tabs', { caps: { perSession: 3, dismissDays: 7 } })]);
  const a = await openShop(server);
  const b = await openShop(server, { context: a.context });
  await waitUntil(async () => {
    const roles = await Promise.all([a, b].map(async (t) => (await debugInfo(t.page)).leader));
    return roles.filter(Boolean).length === 1;
  }, { what: 'one leader among the two tabs' });
  const same = await Promise.all([a, b].map((t) => t.page.evaluate(() => window.nudge.profile().anonymousId)));
  assert.equal(same[0], same[1], 'one shopper');

  // Changes reach the other tab through the leader; counted with the SDK's 'change' event.
  await b.page.evaluate(() => {
    window.__changes = 0;
    window.nudge.on('change', () => window.__changes++);
  });
  const synced = async () => {
    await waitUntil(async () => {
      const [da, db] = await Promise.all([a, b].map((t) => debugInfo(t.page)));
      return da.pending === 0 && db.pending === 0;
    }, { what: 'both tabs in step' });
  };

  await fastExit(a.page);
  await a.page.getByRole('dialog', { name: 'Wait! 10% off TVs' }).waitFor();
  await synced();
  await b.page.waitForFunction(() => window.__changes > 0);
  const seen = await b.page.evaluate(() => window.__changes);
  // While it is open in A, leaving B shows nothing there either (one popup at a time).
  await fastExit(b.page);
  assert.equal(await popupCount(b.page), 0, 'not in B while open in A');

  await a.page.keyboard.press('Escape');
  assert.equal(await popupCount(a.page), 0);
  await synced();
  await b.page.waitForFunction((n) => window.__changes > n, seen);
  await fastExit(b.page);
  assert.equal(await popupCount(b.page), 0, 'not in B after the dismissal in A');
  await fastExit(a.page);
  assert.equal(await popupCount(a.page), 0, 'nor again in A');

  await flush(a.page);
  await flush(b.page);
  await waitStoredEvent(server, 'Popup Dismissed');
  const popups = (await storedEvents(server)).filter((m) => m.event.startsWith('Popup '));
  assert.deepEqual(popups.map((m) => m.event), ['Popup Shown', 'Popup Dismissed']);
  for (const t of [a, b]) assert.deepEqual(t.errors, []);
});

// ----- 6. email capture, unique coupon, the coupon email -----

test('email capture: a bad address gets an inline error, a good one gets a unique code in the popup, and the coupon email with that code arrives over SMTP', async () => {
  sink = await startSink();
  const server = await serverFor(['--smtp-url', sink.url, '--mail-from', 'TV Shop <shop@shop.example>']);
  await putCampaigns(server, [campaign('tv-newsletter', {
    offer: { unique: true, percent: 10, expiresDays: 7 },
    content: { title: 'Get 10% off your TV', text: 'Sign up and we email you a code.', button: 'Send my code', emailField: true },
  })]);
  // An opt-in store: the shopper allowed analytics and personalization (so popups may show)
  // but said no to marketing. Typing their address in the popup is what allows the email.
  const tab = await openShop(server, {
    options: { consent: { mode: 'opt-in' } },
    after: "nudge.consent({analytics: true, personalization: true, marketing: false});" +
      "nudge.track('Product Viewed', {product_id: 'tv-orbit-55', name: 'Orbit 55 OLED', category: 'TVs', price: 899, currency: 'USD', url: 'https://shop.example/p/orbit-55'});",
  });
  const { page } = tab;
  assert.deepEqual((await page.evaluate(() => window.nudge.profile())).consent, { analytics: true, personalization: true, marketing: false });
  await fastExit(page);
  const dialog = page.getByRole('dialog', { name: 'Get 10% off your TV' });
  await dialog.waitFor();
  const email = dialog.getByRole('textbox', { name: 'Email address' });

  // A typo: an inline error, nothing asked of the server.
  await email.fill('shopper@example');
  await dialog.getByRole('button', { name: 'Send my code' }).click();
  await page.locator('nudge-popup #m').filter({ hasText: 'valid email' }).waitFor();
  assert.equal(await email.getAttribute('aria-invalid'), 'true');
  assert.deepEqual(tab.requests.filter((u) => u.includes('/v1/coupons')), [], 'no coupon asked for');

  // The right address: a code from the server, shown in the popup.
  const address = `shopper-${Date.now()}@example.com`;
  await email.fill(address);
  await email.press('Enter');
  const codeEl = page.locator('nudge-popup code');
  await codeEl.waitFor();
  const code = await codeEl.textContent();
  assert.match(code, /^NUDGE-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  assert.match(await page.locator('nudge-popup #m').textContent(), new RegExp(`Your code is ${code}`));

  // The coupon email reaches the SMTP server, once, with that code.
  const mails = await waitUntil(async () => {
    const m = await sink.mails();
    return m.length > 0 ? m : null;
  }, { what: 'the coupon email at the SMTP sink', timeout: 20000, interval: 100 });
  const mail = mails[0];
  const { headers } = mimeEntity(mail);
  assert.equal(headers['x-envelope-to'], address);
  assert.match(headers.to, new RegExp(address.replace(/[.+]/g, '\\$&')));
  assert.match(headers.from, /shop@shop\.example/);
  const unsubscribe = /<(http:\/\/127\.0\.0\.1:\d+\/v1\/unsubscribe\?token=[^>]+)>/.exec(headers['list-unsubscribe']);
  assert.ok(unsubscribe, `List-Unsubscribe: ${headers['list-unsubscribe']}`);
  assert.equal(headers['list-unsubscribe-post'], 'List-Unsubscribe=One-Click');
  const parts = mimeParts(mail);
  const text = parts.find((p) => p.type === 'text/plain');
  const html = parts.find((p) => p.type === 'text/html');
  assert.ok(text && html, `a text and an HTML part: ${parts.map((p) => p.type).join(', ')}`);
  assert.ok(text.text.includes(code), 'the code in the text part');
  assert.ok(html.text.includes(code), 'the code in the HTML part');
  assert.ok(text.text.includes('Orbit 55 OLED'), 'the TV the shopper looked at is recommended');
  const codesInMail = new Set(`${text.text} ${html.text}`.match(/NUDGE-[A-Z0-9]{4}-[A-Z0-9]{4}/g));
  assert.deepEqual([...codesInMail], [code], 'the one code the popup showed');

  // What the server holds: the coupon, the shopper's address and their marketing consent,
  // all for the shopper who typed it.
  const anon = (await page.evaluate(() => window.nudge.profile())).anonymousId;
  const stored = await waitUntil(async () => {
    const all = await server.stored();
    const converted = all.some((m) => m.event === 'Popup Converted');
    return converted ? all : null;
  }, { what: 'Popup Converted stored' });
  const issued = stored.filter((m) => m.event === 'Coupon Issued');
  assert.deepEqual(issued.map((m) => [m.anonymousId, m.properties.coupon, m.properties.email, m.properties.campaign_id]), [[anon, code, address, 'tv-newsletter']]);
  const identify = stored.filter((m) => m.type === 'identify');
  assert.deepEqual(identify.map((m) => m.traits.email), [address]);
  const consents = stored.filter((m) => m.event === 'Consent Preference Updated').map((m) => m.properties.marketing);
  assert.deepEqual(consents.slice(-1), [true], 'marketing granted by the capture');
  assert.deepEqual(stored.filter((m) => m.event?.startsWith('Popup ')).map((m) => m.event), ['Popup Shown', 'Popup Converted']);

  // The unsubscribe link works without a key and is recorded for this shopper.
  const r = await fetch(unsubscribe[1]);
  assert.equal(r.status, 200);
  await waitUntil(async () => {
    const all = await server.stored();
    const last = all.filter((m) => m.event === 'Consent Preference Updated').pop();
    return last && last.properties.marketing === false && last.anonymousId === anon;
  }, { what: 'the unsubscribe stored as marketing: false' });
  assert.equal((await sink.mails()).length, 1, 'one email');
  assert.deepEqual(tab.errors, []);
});

// ----- 7. keyboard only -----

test('keyboard only: after an exit, Tab cycles to the email field, typing and Enter get the code, Escape closes and focus returns', async () => {
  const server = await serverFor();
  await putCampaigns(server, [campaign('tv-keys', {
    offer: { unique: true, percent: 10, expiresDays: 7 },
    content: { title: 'Get 10% off your TV', text: 'Sign up and we email you a code.', button: 'Send my code', emailField: true },
  })]);
  const tab = await openShop(server);
  const { page } = tab;
  // The shopper is in the search field, reached with the keyboard.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
  await fastExit(page); // the exit is the one thing done with the pointer
  await page.getByRole('dialog', { name: 'Get 10% off your TV' }).waitFor();

  const focus = () =>
    page.evaluate(() => {
      const host = document.querySelector('nudge-popup');
      const a = document.activeElement;
      if (host && a === host) {
        const f = host.shadowRoot.activeElement;
        return f ? f.getAttribute('aria-label') || (f.tagName === 'INPUT' ? 'email' : f.textContent) : 'none';
      }
      return 'page:' + (a ? a.id || a.tagName : 'none');
    });
  // Focus moved into the popup; Tab goes round inside it and comes back to the email field.
  const visited = [await focus()];
  while (visited.length < 6) {
    await page.keyboard.press('Tab');
    visited.push(await focus());
    if (visited[visited.length - 1] === 'email' && visited.length > 1) break;
  }
  assert.deepEqual(visited, ['email', 'Send my code', 'Close', 'email']);

  await page.keyboard.type('keys@example.com');
  await page.keyboard.press('Enter');
  const code = page.locator('nudge-popup code');
  await code.waitFor();
  assert.match(await code.textContent(), /^NUDGE-[A-Z0-9]{4}-[A-Z0-9]{4}$/);

  await page.keyboard.press('Escape');
  assert.equal(await popupCount(page), 0, 'Escape closes it');
  assert.equal(await focus(), 'page:search', 'focus is back in the search field');
  // Typing goes to the page again.
  await page.keyboard.type('oled');
  assert.equal(await page.inputValue('#search'), 'oled');

  await flush(page);
  await waitStoredEvent(server, 'Popup Converted');
  const popups = (await storedEvents(server)).filter((m) => m.event.startsWith('Popup '));
  assert.deepEqual(popups.map((m) => m.event), ['Popup Shown', 'Popup Converted'], 'closing after the code is no dismissal');
  assert.deepEqual(tab.errors, []);
});
