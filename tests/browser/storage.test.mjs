// Where the profile lives: localStorage when it works, a cookie for the ids when it throws,
// memory when both fail; what survives a reload; and what reset() and forget() leave.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, messages, debugInfo, profileOf, nudgeKeys, waitReady } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

const view = (i, category = 'TVs') => ({ product_id: `p-${i}`, category, brand: 'Acme', price: 10 + i, currency: 'USD' });

// Page scripts that break storage before the snippet runs, as private modes, full quotas
// and blocked site data do.
const BROKEN = {
  'setItem and getItem throw': `
    Storage.prototype.setItem = function () { throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); };
    Storage.prototype.getItem = function () { throw new DOMException('The operation is insecure.', 'SecurityError'); };
  `,
  'the localStorage getter throws': `
    Object.defineProperty(window, 'localStorage', { configurable: true, get: function () { throw new DOMException('Access is denied for this document.', 'SecurityError'); } });
  `,
  'localStorage and cookies are both blocked': `
    Object.defineProperty(window, 'localStorage', { configurable: true, get: function () { throw new DOMException('Access is denied for this document.', 'SecurityError'); } });
    Object.defineProperty(Document.prototype, 'cookie', { configurable: true, get: function () { return ''; }, set: function () {} });
  `,
};

for (const [name, script] of Object.entries(BROKEN)) {
  const memoryOnly = name.includes('cookies');
  test(`when ${name}, the SDK still works from ${memoryOnly ? 'memory' : 'a cookie'}`, async () => {
    const { page, errors } = await env.load({ before: script });
    const info = await debugInfo(page);
    assert.equal(info.storage, memoryOnly ? 'memory' : 'cookie');
    const results = await page.evaluate(async (views) => {
      const r = views.map((p) => window.nudge.track('Product Viewed', p));
      r.push(window.nudge.identify('user-7', { plan: 'gold' }));
      await window.nudge.flush();
      return r;
    }, [view(1), view(2), view(3)]);
    assert.ok(results.every((r) => r !== false), `calls accepted: ${JSON.stringify(results)}`);
    const profile = await profileOf(page);
    assert.equal(profile.stages.TVs, 'consideration');
    assert.equal(profile.userId, 'user-7');
    assert.equal(messages(await debugInfo(page), 'track', 'Product Viewed').length, 3);

    if (!memoryOnly) {
      // The cookie keeps the ids across page loads.
      assert.match(await page.evaluate(() => document.cookie), /nudge_/);
      await page.reload();
      await waitReady(page);
      const again = await profileOf(page);
      assert.equal(again.anonymousId, profile.anonymousId, 'anonymousId kept in the cookie');
      assert.equal(again.userId, 'user-7', 'userId kept in the cookie');
      assert.equal((await debugInfo(page)).storage, 'cookie');
    }
    assert.deepEqual(errors, []);
  });
}

// An old Safari's private mode: reading works, writing throws. There is no probe write at
// start-up (it would cost every page load), so the first store finds it and moves the ids
// to the cookie; nothing tracked before that is lost.
test('when only setItem throws, the first store moves the ids to a cookie and keeps every event', async () => {
  const { page, errors } = await env.load({
    before: `Storage.prototype.setItem = function () { throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); };`,
  });
  await page.evaluate(async (views) => {
    views.forEach((p) => window.nudge.track('Product Viewed', p));
    window.nudge.identify('user-8');
    await window.nudge.flush();
  }, [view(1), view(2)]);
  const info = await debugInfo(page);
  assert.equal(info.storage, 'cookie');
  assert.equal(messages(info, 'track', 'Product Viewed').length, 2);
  const profile = await profileOf(page);
  assert.equal(profile.userId, 'user-8');
  assert.match(await page.evaluate(() => document.cookie), /nudge_/);
  await page.reload();
  await waitReady(page);
  const again = await profileOf(page);
  assert.equal(again.anonymousId, profile.anonymousId, 'anonymousId kept in the cookie');
  assert.equal(again.userId, 'user-8');
  assert.deepEqual(errors, []);
});

test('localStorage is used when it works, under nudge: keys', async () => {
  const { page, errors } = await env.load({});
  await page.evaluate(async () => { window.nudge.track('Product Viewed', { product_id: 'p', category: 'TVs' }); await window.nudge.flush(); });
  assert.equal((await debugInfo(page)).storage, 'localStorage');
  const keys = await nudgeKeys(page);
  assert.ok(keys.length >= 2, `profile and outbox stored, got ${JSON.stringify(keys)}`);
  const all = await page.evaluate(() => Object.keys(localStorage));
  assert.deepEqual(all.filter((k) => !k.startsWith('nudge:')), [], 'no key outside nudge:');
  assert.deepEqual(errors, []);
});

test('the outbox and the profile survive a reload (stored on pagehide, no flush)', async () => {
  const { page, errors } = await env.load({});
  await page.evaluate((views) => {
    views.forEach((p) => window.nudge.track('Product Viewed', p));
    window.nudge.identify('user-9', { name: 'Ada' });
  }, [view(1), view(2), view(3), view(4, 'Phones')]);
  const before = { profile: await profileOf(page), info: await debugInfo(page) };
  await page.reload();
  await waitReady(page);
  const profile = await profileOf(page);
  const info = await debugInfo(page);

  assert.equal(profile.anonymousId, before.profile.anonymousId);
  assert.equal(profile.userId, 'user-9');
  assert.equal(profile.traits.name, 'Ada');
  assert.deepEqual(profile.stages, before.profile.stages);
  assert.deepEqual(profile.affinities, before.profile.affinities);
  const ids = info.outbox.map((m) => m.messageId);
  for (const m of before.info.outbox) {
    assert.ok(ids.includes(m.messageId), `message ${m.type} ${m.event || ''} ${m.messageId} kept`);
  }
  assert.equal(messages(info, 'page').length, 2, 'the reload is a second page view');
  assert.equal(new Set(ids).size, ids.length, 'no message twice');
  assert.deepEqual(errors, []);
});

test('await flush() has stored the profile and the outbox', async () => {
  const { page, errors } = await env.load({});
  const stored = await page.evaluate(async () => {
    window.nudge.track('Product Viewed', { product_id: 'p', category: 'Shoes' });
    await window.nudge.flush();
    const out = {};
    for (const k of Object.keys(localStorage)) if (k.startsWith('nudge:')) out[k] = localStorage.getItem(k);
    return out;
  });
  const profileKey = Object.keys(stored).find((k) => k.endsWith(':profile'));
  const outboxKey = Object.keys(stored).find((k) => k.endsWith(':outbox'));
  assert.ok(profileKey && outboxKey, `profile and outbox keys stored: ${Object.keys(stored)}`);
  assert.match(stored[profileKey], /Shoes/);
  assert.match(stored[outboxKey], /"event":"Product Viewed"/);
  assert.deepEqual(errors, []);
});

test('forget() wipes the stored keys and starts a new anonymous shopper', async () => {
  const { page, errors } = await env.load({});
  await page.evaluate(async () => {
    window.nudge.identify('user-1', { email: 'a@example.com' });
    window.nudge.track('Product Viewed', { product_id: 'p', category: 'TVs' });
    await window.nudge.flush();
  });
  const old = await profileOf(page);
  assert.ok((await nudgeKeys(page)).length > 0);

  const after = await page.evaluate(() => {
    const ok = window.nudge.forget();
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) if (localStorage.key(i).startsWith('nudge:')) keys.push(localStorage.key(i));
    return { ok, keys, cookie: document.cookie };
  });
  assert.notEqual(after.ok, false);
  assert.deepEqual(after.keys, [], 'no nudge: key right after forget()');
  assert.doesNotMatch(after.cookie, /nudge_/);

  const profile = await profileOf(page);
  assert.notEqual(profile.anonymousId, old.anonymousId);
  assert.equal(profile.userId ?? null, null);
  assert.deepEqual(profile.stages, {});
  const info = await debugInfo(page);
  assert.deepEqual(messages(info, 'track', 'Product Viewed'), [], 'the old events are gone');
  assert.deepEqual(messages(info, 'identify'), []);

  // Whatever is stored later must not carry the old shopper's traits or events.
  await page.evaluate(async () => { await window.nudge.flush(); });
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('nudge:')).map((k) => localStorage.getItem(k)).join('\n'));
  assert.doesNotMatch(stored, /a@example\.com/);
  assert.doesNotMatch(stored, /Product Viewed/);
  assert.deepEqual(errors, []);
});

test('reset() gives a new anonymousId and no userId', async () => {
  const { page, errors } = await env.load({});
  await page.evaluate(() => window.nudge.identify('user-2'));
  const old = await profileOf(page);
  assert.equal(old.userId, 'user-2');
  const ok = await page.evaluate(() => window.nudge.reset());
  assert.notEqual(ok, false);
  const profile = await profileOf(page);
  assert.notEqual(profile.anonymousId, old.anonymousId);
  assert.equal(profile.userId, null);
  await page.evaluate(() => window.nudge.track('After Reset'));
  const m = messages(await debugInfo(page), 'track', 'After Reset')[0];
  assert.equal(m.anonymousId, profile.anonymousId);
  assert.equal(m.userId, null);
  // And the new shopper is what a reload finds.
  await page.evaluate(async () => { await window.nudge.flush(); });
  await page.reload();
  await waitReady(page);
  assert.equal((await profileOf(page)).anonymousId, profile.anonymousId);
  assert.deepEqual(errors, []);
});
