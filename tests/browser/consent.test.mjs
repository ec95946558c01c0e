// Consent gating: opt-in sites store nothing until analytics is granted; a denial drops
// what was held; Global Privacy Control turns marketing off unless granted explicitly.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, messages, debugInfo, profileOf, nudgeKeys, waitReady } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

const OPT_IN = { options: { consent: { mode: 'opt-in' } } };
const GPC = () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { configurable: true, get: () => true });

async function trackViews(page) {
  await page.evaluate(async () => {
    window.nudge.track('Product Viewed', { product_id: 'p1', category: 'TVs' });
    window.nudge.track('Product Viewed', { product_id: 'p2', category: 'TVs' });
    await window.nudge.flush();
  });
}

test('opt-in: nothing is stored before consent; events are held in memory; granting stores them', async () => {
  const { page, errors } = await env.load(OPT_IN);
  assert.equal((await profileOf(page)).consent.analytics, false);
  await trackViews(page);
  assert.deepEqual(await nudgeKeys(page), [], 'no nudge: key before consent');
  const held = messages(await debugInfo(page), 'track', 'Product Viewed');
  assert.equal(held.length, 2, 'events held in memory');

  const ok = await page.evaluate(async () => { const r = window.nudge.consent({ analytics: true }); await window.nudge.flush(); return r; });
  assert.notEqual(ok, false);
  assert.equal((await profileOf(page)).consent.analytics, true);
  assert.ok((await nudgeKeys(page)).length > 0, 'stored once analytics is granted');

  await page.reload();
  await waitReady(page);
  const info = await debugInfo(page);
  const ids = messages(info, 'track', 'Product Viewed').map((m) => m.messageId);
  assert.deepEqual(ids, held.map((m) => m.messageId), 'the held events were stored and survive a reload');
  assert.equal((await profileOf(page)).consent.analytics, true, 'the grant is remembered');
  assert.deepEqual(errors, []);
});

test('opt-in: denying analytics drops the held events and stores nothing', async () => {
  const { page, errors } = await env.load(OPT_IN);
  await trackViews(page);
  const ok = await page.evaluate(async () => { const r = window.nudge.consent({ analytics: false }); await window.nudge.flush(); return r; });
  assert.notEqual(ok, false);
  assert.deepEqual(messages(await debugInfo(page), 'track', 'Product Viewed'), [], 'held events dropped');
  assert.deepEqual(await nudgeKeys(page), []);
  await page.evaluate(async () => { window.nudge.track('Later'); await window.nudge.flush(); });
  assert.deepEqual(await nudgeKeys(page), [], 'still nothing stored after later calls');
  assert.deepEqual(errors, []);
});

test('opt-out (default): stored at once; withdrawing analytics wipes what was stored', async () => {
  const { page, errors } = await env.load({});
  assert.equal((await profileOf(page)).consent.analytics, true);
  await trackViews(page);
  assert.ok((await nudgeKeys(page)).length > 0);
  await page.evaluate(() => window.nudge.consent({ analytics: false }));
  assert.deepEqual(await nudgeKeys(page), [], 'wiped when analytics is withdrawn');
  assert.deepEqual(messages(await debugInfo(page), 'track', 'Product Viewed'), []);
  await page.evaluate(async () => { window.nudge.track('Later'); await window.nudge.flush(); });
  assert.deepEqual(await nudgeKeys(page), [], 'nothing stored afterwards');
  assert.deepEqual(errors, []);
});

test('Global Privacy Control turns marketing off unless granted explicitly', async () => {
  const plain = await env.load({});
  assert.equal((await profileOf(plain.page)).consent.marketing, true, 'without GPC, opt-out allows marketing');

  const { page, errors } = await env.load({}, { init: GPC });
  assert.equal(await page.evaluate(() => navigator.globalPrivacyControl), true);
  let consent = (await profileOf(page)).consent;
  assert.equal(consent.marketing, false, 'GPC: marketing off');
  assert.equal(consent.analytics, true, 'GPC leaves analytics as the mode says');

  await page.evaluate(async () => { window.nudge.consent({ marketing: true }); await window.nudge.flush(); });
  consent = (await profileOf(page)).consent;
  assert.equal(consent.marketing, true, 'an explicit grant wins over GPC');
  await page.reload();
  await waitReady(page);
  assert.equal((await profileOf(page)).consent.marketing, true, 'the explicit grant is remembered under GPC');
  assert.deepEqual(errors, []);
  assert.deepEqual(plain.errors, []);
});

test('consent choices travel with each message', async () => {
  const { page, errors } = await env.load({}, { init: GPC });
  await page.evaluate(() => window.nudge.track('Checked'));
  const m = messages(await debugInfo(page), 'track', 'Checked')[0];
  const prefs = m.context.consent.categoryPreferences;
  assert.equal(prefs.analytics, true);
  assert.equal(prefs.marketing, false);
  assert.deepEqual(errors, []);
});

test('a mistyped option loses only itself: opt-in still holds, and an early error listener hears why', async () => {
  const { page, errors } = await env.load({
    options: { consent: { mode: 'opt-in' }, thresholds: { consideration_views: 'three', decision_days: 2 } },
    after: "window.__errors = []; window.nudge.on('error', function (e) { window.__errors.push(e); });",
  });
  assert.equal((await profileOf(page)).consent.analytics, false, 'the opt-in mode survived the bad threshold');
  await trackViews(page);
  assert.deepEqual(await nudgeKeys(page), [], 'nothing stored before consent');
  const fired = await page.evaluate(() => window.__errors);
  assert.equal(fired.length, 1, JSON.stringify(fired));
  assert.equal(fired[0].method, 'init');
  assert.match(fired[0].message, /could not be read/);
  assert.deepEqual(errors, []);
});

test('an unreadable consent mode means opt-in', async () => {
  const { page, errors } = await env.load({ options: { consent: { mode: 'optin' } } });
  assert.equal((await profileOf(page)).consent.analytics, false);
  await trackViews(page);
  assert.deepEqual(await nudgeKeys(page), []);
  assert.deepEqual(errors, []);
});
