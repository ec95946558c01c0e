// The dashboard served by a real nudge-server: secret-key sign-in, the stage chart's
// numbers, the live stream of events, a wrong key refused, and nothing broken by its CSP.
// Needs `cargo build -p nudge-server` (NUDGE_SERVER_BIN); not the JS package.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, startNudgeServer, waitUntil } from './helpers.mjs';

let nudge;
let browser;
before(async () => {
  nudge = await startNudgeServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await nudge?.stop();
});

let sequence = 0;
async function send(anonymousId, event, properties) {
  const message = {
    type: 'track', event, anonymousId, properties,
    messageId: `dash-${++sequence}`, timestamp: new Date().toISOString(),
  };
  const r = await fetch(`${nudge.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Basic ' + Buffer.from(nudge.writeKey + ':').toString('base64') },
    body: JSON.stringify({ batch: [message] }),
  });
  assert.equal(r.status, 200, await r.text());
}

const view = (anon, category, product) => send(anon, 'Product Viewed', { product_id: product, category, price: 100 });

/** A page of the dashboard, with everything it logged as an error. */
async function open() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${nudge.url}/dashboard`);
  return { page, errors, close: () => context.close() };
}

async function signIn(page, key) {
  await page.fill('#secret-key', key);
  await page.click('#sign-in-form button[type=submit]');
}

test('a wrong key or a write key is refused with a clear message', async () => {
  const { page, errors, close } = await open();
  await signIn(page, 'sk_not_the_key');
  await waitUntil(async () => /refused/.test(await page.textContent('#sign-in-error')), { what: 'the refusal' });
  assert.equal(await page.isVisible('#board'), false);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');

  await signIn(page, nudge.writeKey);
  await waitUntil(async () => /not a secret key/.test(await page.textContent('#sign-in-error')), { what: 'the write key refused' });
  assert.equal(await page.isVisible('#board'), false);
  // The refused request's 401 is the only thing logged.
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  await close();
});

test('signed in with the secret key: the stage chart shows the numbers and the live stream new events', async () => {
  // Two shoppers before sign-in: TVs awareness and TVs consideration (three views).
  await view('dash-a1', 'TVs', 'tv-1');
  for (const p of ['tv-1', 'tv-2', 'tv-3']) await view('dash-a2', 'TVs', p);
  await view('dash-a2', 'Phones', 'ph-1');

  const { page, errors, close } = await open();
  await signIn(page, nudge.secretKey);
  await page.waitForSelector('#board', { state: 'visible' });
  assert.equal(await page.isVisible('#sign-in'), false);

  // The stage chart: an SVG with a title, and its numbers as text.
  const chart = page.locator('#stages-chart svg');
  assert.match(await chart.locator('title').first().textContent(), /Profiles per stage/);
  const rows = await page.$$eval('#stages-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(rows, [
    ['Phones', '1', '0', '0', '0', '0', '1'],
    ['TVs', '1', '1', '0', '0', '0', '2'],
  ]);
  const labels = await chart.locator('text').allTextContents();
  assert.ok(labels.includes('TVs') && labels.includes('Phones') && labels.includes('2'), labels.join('|'));
  // The funnel: 2 reached awareness, 1 consideration (50%).
  const funnel = await page.locator('#funnel-chart svg text').allTextContents();
  assert.ok(funnel.includes('2') && funnel.some((t) => t.startsWith('1') && t.includes('50.0% converted')), funnel.join('|'));
  assert.match(await page.textContent('#abandon-totals'), /0 carts abandoned/);

  // The live stream shows what was there, then an event sent after sign-in, on top.
  // (with the Stage Changed messages the server derived from them)
  await waitUntil(async () => /tv-3/.test(await page.textContent('#stream')), { what: 'the earlier events' });
  assert.match(await page.textContent('#stream'), /Stage Changed/);
  await send('dash-live', 'Product Viewed', { product_id: 'live-42', category: 'Cameras', price: 999 });
  await waitUntil(async () => /live-42/.test(await page.textContent('#stream')), {
    what: 'the new event in the stream',
    timeout: 8000,
  });
  // Newest first: the new event (or the Stage Changed it caused, stored right after it) on top.
  const items = await page.locator('#stream li').allTextContents();
  assert.match(items[0], /browser dash-live/);
  const live = items.findIndex((t) => /Product Viewed.*browser dash-live.*live-42/.test(t));
  assert.ok(live >= 0 && live < items.findIndex((t) => /tv-3/.test(t)), items.join('\n'));
  assert.ok(items.length <= 50);

  // A reload keeps the tab signed in (sessionStorage); signing out forgets the key.
  await page.reload();
  await page.waitForSelector('#board', { state: 'visible' });
  await page.click('#sign-out');
  assert.equal(await page.isVisible('#sign-in'), true);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  // Signing in again starts one stream, not two (each event shown once).
  await signIn(page, nudge.secretKey);
  await page.waitForSelector('#board', { state: 'visible' });
  await waitUntil(async () => /live-42/.test(await page.textContent('#stream')), { what: 'the stream again' });
  await page.waitForTimeout(2500);
  const again = await page.locator('#stream li').allTextContents();
  assert.equal(again.filter((t) => /Product Viewed.*live-42/.test(t)).length, 1, again.join('\n'));

  assert.deepEqual(errors, [], 'no console errors (CSP violations included)');
  await close();
});
