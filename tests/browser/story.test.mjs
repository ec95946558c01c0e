// The whole journey (issue 6), in one test, on the generated demo store with every part real:
// Chromium, the store served by scripts/demo-server.mjs, a nudge-server process (SQLite) with
// the demo's campaigns (demo-site/campaigns.json) and catalogue (the generated catalog.json,
// PUT /v1/catalog), an SMTP sink (aiosmtpd, server/tests/smtp/sink.py) and a webhook receiver
// (a node http server). A new shopper browses TVs into `decision`, sees TVs in the home
// page's for-you slot, leaves, takes the newsletter coupon, comes back, leaves a TV in the
// cart, gets the cart reminder, follows it and buys with the coupon; the dashboard shows the
// recovered revenue. Each step saves a screenshot NN-name.png into $NUDGE_JOURNEY_DIR, or a
// temporary directory: `scripts/journey-screenshots` runs it into docs/journey/ (README, "The
// whole journey"), so that ordinary test runs leave the tracked pictures alone.
//
// Needs js/dist (scripts/build), the nudge-server binary (`cargo build -p nudge-server`, or
// NUDGE_SERVER_BIN) and a python3 with aiosmtpd.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import {
  ROOT, requireDist, launchBrowser, watchPage, waitReady, waitUntil, profileOf, startNudgeServer,
  secretCall, putCampaigns, OBSERVE, fastExit, draw, freePort, startSink, mimeEntity, mimeParts,
  generateStore, startDemoStore, startWebhookReceiver,
} from './helpers.mjs';

// Where the screenshots go: NUDGE_JOURNEY_DIR (docs/journey/ for the README), else a
// temporary directory.
const SHOTS = process.env.NUDGE_JOURNEY_DIR
  ? resolve(process.env.NUDGE_JOURNEY_DIR)
  : join(tmpdir(), `nudge-journey-${process.pid}`);
const VIEWPORT = { width: 1000, height: 700 };
// The store's newsletter campaign (demo-site/campaigns.json): exit intent in TVs `decision`.
const NEWSLETTER = 'tv-decision-coupon';
// The server's cart abandonment threshold for this test: 6 s after the last cart activity.
const ABANDON_MINUTES = 0.1;

let browser;
let sink;
let nudge;
let hook;
let store;
let shop;
before(async () => {
  requireDist();
  await mkdir(SHOTS, { recursive: true });
  store = await generateStore();
  sink = await startSink();
  hook = await startWebhookReceiver();
  // The store's origin must be known when the site is made (its allowed origin), and the
  // store's server needs the site's write key: pick the port first.
  const port = await freePort();
  nudge = await startNudgeServer({
    name: 'Nudge demo store',
    origins: [`http://127.0.0.1:${port}`],
    args: [
      '--smtp-url', sink.url, '--mail-from', 'Nudge demo store <shop@demo.example>',
      '--abandon-poll-ms', '100', '--mail-poll-ms', '100', '--webhook-poll-ms', '100',
    ],
  });
  shop = await startDemoStore({ dir: store.dir, nudge, port });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await shop?.stop();
  await nudge?.stop();
  await hook?.close();
  await sink?.stop();
  await store?.remove();
});

/** Saves the page as docs/journey/`name`.png (the viewport only, to keep the file small). */
const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

/** Goes to a store path (or URL) and waits until the SDK is ready and has the site config. */
async function visit(page, path) {
  await page.goto(new URL(path, shop.origin).href, { waitUntil: 'domcontentloaded' });
  await waitReady(page);
  await page.waitForFunction(() => window.__nudgeConfig === true, null, { timeout: 10000, polling: 10 });
}

/** Every message the server stored for the site, in commit order, that `pred` accepts. */
const storedWhere = async (pred) => (await nudge.stored()).filter(pred);
/** Waits until the server stored a message `pred` accepts; returns the first. */
const waitStored = (what, pred, timeout = 15000) =>
  waitUntil(async () => (await storedWhere(pred))[0], { what: `${what} stored by the server`, timeout, interval: 100 });

/** Waits for an email whose subject matches `subject`; returns `{headers, text, html}`. */
async function waitMail(subject, timeout = 20000) {
  return waitUntil(async () => {
    for (const raw of await sink.mails()) {
      const { headers } = mimeEntity(raw);
      if (subject.test(headers.subject || '')) {
        const parts = mimeParts(raw);
        return { headers, text: parts.find((p) => p.type === 'text/plain').text, html: parts.find((p) => p.type === 'text/html').text };
      }
    }
    return null;
  }, { what: `an email "${subject.source}" at the SMTP sink`, timeout, interval: 100 });
}

/** Shows an email's HTML part, under its From, To and Subject, and saves it as a screenshot. */
async function shotMail(mail, name) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  await page.setContent(mail.html, { waitUntil: 'load' });
  await page.evaluate(({ from, to, subject }) => {
    const head = document.createElement('div');
    head.style.cssText = 'margin:-8px -8px 16px;padding:12px 16px;background:#eef1f6;border-bottom:1px solid #d9dde5;font:14px/1.5 sans-serif';
    for (const [k, v] of [['From', from], ['To', to], ['Subject', subject]]) {
      const line = head.appendChild(document.createElement('div'));
      line.append(Object.assign(document.createElement('b'), { textContent: `${k}: ` }), v);
    }
    document.body.prepend(head);
  }, mail.headers);
  await shot(page, name);
  await context.close();
}

/** A new shopper: a fresh browser context at the home page, outside the newsletter's holdout. */
async function newShopper() {
  // demo-site/campaigns.json holds 10% of shoppers out of the newsletter (they see nothing);
  // the draw is a stable hash of the shopper's id (src/decide.rs), so a shopper that would
  // be held out is replaced by another new one: the story is about one who sees it.
  for (let tries = 0; tries < 20; tries++) {
    // Reduced motion: the popup shows without its fade, so a screenshot never catches it half-drawn.
    const context = await browser.newContext({ viewport: VIEWPORT, reducedMotion: 'reduce' });
    await context.addInitScript(OBSERVE);
    const page = await context.newPage();
    const watch = watchPage(page);
    await visit(page, '/');
    const anon = (await profileOf(page)).anonymousId;
    if (draw(anon, NEWSLETTER) >= 0.1) return { context, page, anon, ...watch };
    await context.close();
  }
  throw new Error('20 new shoppers in a row held out: the draw is broken');
}

test('the whole journey: browse TVs, for-you slot, newsletter coupon, cart abandoned, reminder, recovered order, dashboard', async () => {
  const started = Date.now();
  const tvs = store.catalog.filter((p) => p.category === 'TVs' && p.in_stock);
  const tvIds = new Set(store.catalog.filter((p) => p.category === 'TVs').map((p) => p.id));
  const byId = new Map(store.catalog.map((p) => [p.id, p]));

  // The site as scripts/demo sets it up: the demo's campaigns and the store's catalogue,
  // plus, for this test, a short abandonment threshold and a webhook for the CRM.
  await putCampaigns(nudge, JSON.parse(await readFile(join(ROOT, 'demo-site/campaigns.json'), 'utf8')));
  await secretCall(nudge, 'PUT', '/v1/catalog', await readFile(join(store.dir, 'catalog.json'), 'utf8'));
  await secretCall(nudge, 'PUT', '/v1/config', { thresholds: { cart_abandon_minutes: ABANDON_MINUTES } });
  const webhook = await secretCall(nudge, 'POST', '/v1/webhooks', { url: hook.url, events: ['Stage Changed', 'Cart Abandoned'] });
  hook.setSecret(webhook.secret);

  // ----- 1. a new shopper browses TVs and reaches `decision` -----
  const shopper = await newShopper();
  const { page, anon } = shopper;
  await visit(page, '/c/tvs.html');
  const viewed = tvs.slice(0, 5); // five views within the hour: buying intent
  for (const tv of viewed) await visit(page, tv.url);
  const profile = await profileOf(page);
  assert.equal(profile.stages.TVs, 'decision', `stages: ${JSON.stringify(profile.stages)}`);
  await page.click('#inspector-toggle');
  await page.locator('#inspector dd[data-category="TVs"][data-stage="decision"]').waitFor();
  // It also says which campaign would show and why: the newsletter on the next exit; the
  // cart saver wants a cart of $50 or more.
  const standing = (id) => page.textContent(`#inspector-campaigns dd[data-campaign="${id}"]`);
  assert.equal(await standing(NEWSLETTER), 'shows on exit-intent');
  assert.equal(await standing('cart-saver'), 'not in its audience');
  await shot(page, '01-browse-tvs');
  await page.click('#inspector-toggle'); // closed again: the drawer would cover the next pages

  // ----- 2. the home page's for-you slot shows TVs -----
  await visit(page, '/');
  const slot = page.locator('[data-nudge-slot="for-you"]');
  await page.waitForFunction(
    () => document.querySelectorAll('[data-nudge-slot="for-you"] > [data-nudge-product]').length > 0,
    null, { timeout: 10000, polling: 20 },
  );
  const picks = await slot.locator(':scope > [data-nudge-product]').evaluateAll((els) => els.map((e) => [e.dataset.nudgeProduct, e.dataset.nudgePosition]));
  assert.equal(picks.length, 4, `four products: ${JSON.stringify(picks)}`);
  assert.deepEqual(picks.map((p) => p[1]), ['1', '2', '3', '4']);
  for (const [id] of picks) assert.ok(tvIds.has(id), `${id} in the for-you slot is a TV`);
  await slot.scrollIntoViewIfNeeded();
  await shot(page, '02-for-you-tvs');

  // ----- 3. the shopper leaves without a cart: the newsletter coupon popup -----
  assert.deepEqual(profile.cart.items, []);
  await page.evaluate(() => scrollTo(0, 0));
  await fastExit(page);
  const dialog = page.getByRole('dialog', { name: 'Still thinking about that TV?' });
  await dialog.waitFor();
  await shot(page, '03-exit-intent-popup');

  // ----- 4. the shopper enters an email; the coupon email recommends TVs -----
  const email = 'shopper@example.com'; // a fresh server: nobody else has it
  await dialog.getByRole('textbox', { name: 'Email address' }).fill(email);
  await dialog.getByRole('button', { name: 'Send me my code' }).click();
  const codeEl = page.locator('nudge-popup code');
  await codeEl.waitFor();
  const code = await codeEl.textContent();
  assert.match(code, /^NUDGE-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  await shot(page, '04-coupon-in-popup');
  await page.keyboard.press('Escape');

  const couponMail = await waitMail(/^Your coupon from Nudge demo store/);
  assert.equal(couponMail.headers['x-envelope-to'], email);
  assert.ok(couponMail.text.includes(code), 'the code is in the email');
  // The products it recommends, by their links: TVs, each named.
  const recommended = [...couponMail.text.matchAll(/\/p\/([a-z]+-\d+)\.html/g)].map((m) => byId.get(m[1]));
  assert.ok(recommended.length > 0, `the coupon email recommends products:\n${couponMail.text}`);
  for (const p of recommended) {
    assert.ok(p && tvIds.has(p.id), `${p?.id} recommended is a TV`);
    assert.ok(couponMail.text.includes(p.name), `the email names ${p.name}`);
  }
  await shotMail(couponMail, '05-coupon-email');

  // ----- 5. back in the store: a TV into the cart, then away again; Cart Abandoned and the reminder -----
  const chosen = recommended.find((p) => p.in_stock);
  assert.ok(chosen, 'a recommended TV in stock');
  await visit(page, chosen.url);
  await page.click('.product [data-add]');
  await page.locator('#added').filter({ hasText: 'Added 1' }).waitFor();
  await visit(page, '/cart.html');
  await page.locator('#cart li').filter({ hasText: chosen.name }).waitFor();
  await fastExit(page);
  const cartPopup = page.getByRole('dialog', { name: 'Your cart is waiting' });
  await cartPopup.waitFor();
  await shot(page, '06-cart-left-behind');
  await page.keyboard.press('Escape');
  await page.evaluate(() => window.nudge.flush());
  await page.close(); // the shopper is gone

  const abandoned = await waitStored('Cart Abandoned', (m) => m.event === 'Cart Abandoned' && m.anonymousId === anon, 30000);
  assert.deepEqual(abandoned.properties.products.map((p) => p.product_id), [chosen.id]);
  const cartMail = await waitMail(/^You left something in your cart at Nudge demo store/);
  assert.equal(cartMail.headers['x-envelope-to'], email);
  assert.ok(cartMail.text.includes(chosen.name), `the reminder lists the TV in the cart:\n${cartMail.text}`);
  await shotMail(cartMail, '07-cart-reminder-email');

  // ----- 6. the CRM's webhook got Stage Changed and Cart Abandoned, signed -----
  const delivered = await waitUntil(() => {
    const mine = hook.deliveries.filter((d) => d.body && d.body.message.anonymousId === anon);
    // The server's own (its folds store one per change; the browser's are stored too).
    const stage = mine.find((d) => d.body.event === 'Stage Changed' && d.body.message.context?.library?.name === 'nudge-server' &&
      d.body.message.properties.category === 'TVs' && d.body.message.properties.to === 'decision');
    const cart = mine.find((d) => d.body.event === 'Cart Abandoned');
    return stage && cart ? mine : null;
  }, { what: 'Stage Changed (TVs → decision) and Cart Abandoned at the webhook receiver', timeout: 15000, interval: 100 });
  for (const d of delivered) assert.equal(d.verified, true, `signature of ${d.body.event}`);
  assert.ok(delivered.every((d) => ['Stage Changed', 'Cart Abandoned'].includes(d.body.event)), 'only the events asked for');
  const receiver = await browser.newContext({ viewport: VIEWPORT });
  const receiverPage = await receiver.newPage();
  await receiverPage.goto(hook.origin + '/');
  await shot(receiverPage, '08-webhook-receiver');
  await receiver.close();

  // ----- 7. the reminder's link (with UTM parameters), an order with the coupon, the evaluation email -----
  const link = new RegExp(`${shop.origin.replace(/[.]/g, '\\.')}/p/${chosen.id}\\.html\\S*`).exec(cartMail.text);
  assert.ok(link, `the reminder links to ${chosen.url}`);
  const landing = new URL(link[0]);
  assert.deepEqual(
    ['utm_source', 'utm_medium', 'utm_campaign'].map((k) => landing.searchParams.get(k)),
    ['nudge', 'email', 'cart-reminder'],
    `the server tags the email's links: ${landing.href}`,
  );
  const back = await shopper.context.newPage();
  const backWatch = watchPage(back);
  await visit(back, landing.href);
  await shot(back, '09-back-from-the-email');
  const arrival = await waitStored('the page view from the email', (m) => m.type === 'page' && m.anonymousId === anon && m.context?.campaign?.name === 'cart-reminder');
  assert.deepEqual(arrival.context.campaign, { name: 'cart-reminder', source: 'nudge', medium: 'email' });

  await back.click('a[href="/cart.html"]');
  await back.waitForURL('**/cart.html');
  await back.click('#to-checkout');
  await back.waitForURL('**/checkout.html');
  await waitReady(back);
  await back.fill('input[name="email"]', email);
  await back.fill('#coupon', code);
  await back.click('#apply-coupon');
  await back.locator('#coupon-note').filter({ hasText: `Coupon ${code} applied.` }).waitFor();
  await shot(back, '10-checkout-with-coupon');
  await back.click('#place-order');
  await back.waitForURL('**/order.html');
  await waitReady(back);
  const revenue = Math.round(chosen.price * 0.9 * 100) / 100;
  await back.locator('#order-total').filter({ hasText: `$${revenue.toFixed(2)}` }).waitFor();
  await shot(back, '11-order-confirmed');
  await back.evaluate(() => window.nudge.flush());
  const order = await waitStored('Order Completed', (m) => m.event === 'Order Completed' && m.anonymousId === anon);
  assert.equal(order.properties.coupon, code);
  assert.equal(order.properties.revenue, revenue);

  const evaluation = await waitMail(/^How do you like your order from Nudge demo store/);
  assert.equal(evaluation.headers['x-envelope-to'], email);
  assert.match(evaluation.text, /Write a review/);
  assert.ok(
    evaluation.text.includes(`${chosen.url.replace(/\.html$/, '')}.html?utm_source=nudge&utm_medium=email&utm_campaign=evaluation#reviews`),
    `a tagged review link for ${chosen.name}:\n${evaluation.text}`,
  );
  const similar = evaluation.text.split('Similar products')[1] || '';
  const similarIds = [...similar.matchAll(/\/p\/([a-z]+-\d+)\.html/g)].map((m) => m[1]);
  assert.ok(similarIds.length > 0, `similar products listed:\n${evaluation.text}`);
  for (const id of similarIds) {
    assert.ok(tvIds.has(id) && id !== chosen.id, `${id} (${byId.get(id)?.name}) is another TV`);
  }
  await shotMail(evaluation, '12-evaluation-email');

  // ----- 8. the dashboard: recovered revenue and the campaign's numbers -----
  const dash = await browser.newContext({ viewport: VIEWPORT });
  const board = await dash.newPage();
  const boardErrors = [];
  board.on('pageerror', (e) => boardErrors.push(String(e)));
  await board.goto(`${nudge.url}/dashboard`);
  await board.fill('#secret-key', nudge.secretKey);
  await board.click('#sign-in-form button[type=submit]');
  await board.waitForSelector('#board', { state: 'visible' });
  // The dashboard writes amounts as plain numbers (Intl 'en', two decimals).
  const dollars = revenue.toLocaleString('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const totals = board.locator('#abandon-totals');
  await totals.waitFor();
  assert.equal(await totals.textContent(), `1 carts abandoned; ${dollars} recovered in 1 orders.`);
  const facts = await board.locator(`[data-campaign="${NEWSLETTER}"] .facts`).textContent();
  assert.match(facts, /^Shown 1 · dismissed 0 · converted 1 · held out 0 · coupons issued 1, redeemed 1 · coupon revenue /);
  assert.ok(facts.endsWith(dollars), facts);
  await board.locator('#abandon-title').evaluate((e) => e.scrollIntoView());
  await shot(board, '13-dashboard-recovered');
  await board.locator('#campaigns-title').evaluate((e) => e.scrollIntoView());
  await shot(board, '14-dashboard-campaigns');
  assert.deepEqual(boardErrors, []);
  await dash.close();

  assert.deepEqual([...shopper.errors, ...backWatch.errors], []);
  await shopper.context.close();
  console.log(`# the whole journey took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
