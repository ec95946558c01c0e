// Bad calls return false, log in debug mode, fire 'error', never throw and change nothing;
// a listener that throws does not break the SDK or the page.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, debugInfo, profileOf, messages } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

const BAD_CALLS = {
  'track with an empty event name': () => window.nudge.track(''),
  'track with a NaN property': () => window.nudge.track('Product Viewed', { product_id: 'p', price: NaN }),
  'track with circular properties': () => {
    const props = { product_id: 'p' };
    props.self = props;
    return window.nudge.track('Product Viewed', props);
  },
  'track with 40 KB of properties': () => window.nudge.track('Product Viewed', { product_id: 'p', blob: 'x'.repeat(40 * 1024) }),
};

for (const [name, call] of Object.entries(BAD_CALLS)) {
  test(`${name}: returns false, fires 'error', logs in debug, throws nothing, changes nothing`, async () => {
    const { page, errors, consoleMessages } = await env.load({ options: { debug: true } });
    await page.evaluate(() => {
      window.nudge.track('Product Viewed', { product_id: 'ok', category: 'TVs' });
      window.__errors = [];
      window.nudge.on('error', (e) => window.__errors.push(e));
    });
    const before = { profile: await profileOf(page), outbox: (await debugInfo(page)).outbox };
    const logsBefore = consoleMessages.length;

    const result = await page.evaluate(`(() => {
      try { return { value: (${call.toString()})() }; } catch (e) { return { threw: String(e) }; }
    })()`);
    assert.equal(result.threw, undefined, `threw: ${result.threw}`);
    assert.equal(result.value, false);

    const fired = await page.evaluate(() => window.__errors);
    assert.equal(fired.length, 1, `one 'error' event, got ${JSON.stringify(fired)}`);
    assert.equal(fired[0].method, 'track');
    assert.equal(typeof fired[0].message, 'string');
    assert.ok(fired[0].message.length > 0);

    const logged = consoleMessages.slice(logsBefore).filter((m) => /nudge/i.test(m.text) && /rejected|invalid|error/i.test(m.text));
    assert.ok(logged.length >= 1, `the rejection is logged in debug mode; console: ${JSON.stringify(consoleMessages.slice(logsBefore))}`);

    const after = { profile: await profileOf(page), outbox: (await debugInfo(page)).outbox };
    assert.deepEqual(after.outbox.map((m) => m.messageId), before.outbox.map((m) => m.messageId), 'outbox unchanged');
    assert.deepEqual(after.profile.stages, before.profile.stages);
    assert.deepEqual(after.profile.affinities, before.profile.affinities);
    assert.deepEqual(after.profile.cart, before.profile.cart);
    assert.deepEqual(errors, []);
  });
}

test('bad calls are silent without debug (still false and still an error event)', async () => {
  const { page, errors, consoleMessages } = await env.load({});
  const result = await page.evaluate(() => {
    const fired = [];
    window.nudge.on('error', (e) => fired.push(e));
    return { value: window.nudge.track(''), fired: fired.length };
  });
  assert.deepEqual(result, { value: false, fired: 1 });
  assert.deepEqual(consoleMessages.filter((m) => m.type === 'error'), []);
  assert.deepEqual(errors, []);
});

test('a throwing on(\'stage\') callback breaks neither the SDK nor the page', async () => {
  const { page, errors } = await env.load({});
  const result = await page.evaluate(() => {
    const stages = [];
    window.nudge.on('stage', () => { throw new Error('listener bug'); });
    window.nudge.on('stage', (s) => stages.push(s.to));
    const r = [];
    for (let i = 0; i < 3; i++) r.push(window.nudge.track('Product Viewed', { product_id: `p${i}`, category: 'TVs' }));
    return { r, stages, stage: window.nudge.profile().stages.TVs };
  });
  assert.ok(result.r.every((x) => x !== false), JSON.stringify(result.r));
  assert.deepEqual(result.stages, ['awareness', 'consideration'], 'other listeners still called');
  assert.equal(result.stage, 'consideration');
  // The SDK keeps working afterwards.
  const later = await page.evaluate(() => window.nudge.track('Product Added', { product_id: 'p0', category: 'TVs', price: 5, quantity: 1 }));
  assert.notEqual(later, false);
  assert.equal((await profileOf(page)).stages.TVs, 'decision');
  assert.equal(messages(await debugInfo(page), 'track', 'Product Added').length, 1);
  assert.deepEqual(errors, []);
});

test('a throwing on(\'change\') callback and a call made from inside a listener', async () => {
  const { page, errors } = await env.load({});
  const result = await page.evaluate(() => {
    let reentered = null;
    window.nudge.on('change', () => { throw new Error('change listener bug'); });
    window.nudge.on('stage', () => {
      // A store reacting to a stage by tracking something: must not throw or wedge the SDK.
      if (reentered === null) {
        try { reentered = window.nudge.track('Reacted To Stage'); } catch (e) { reentered = 'threw ' + e; }
      }
    });
    const first = window.nudge.track('Product Viewed', { product_id: 'p', category: 'TVs' });
    return { first, reentered: String(reentered) };
  });
  assert.notEqual(result.first, false);
  assert.doesNotMatch(result.reentered, /threw/);
  assert.notEqual(await page.evaluate(() => window.nudge.track('Still Works')), false);
  assert.deepEqual(errors, []);
});
