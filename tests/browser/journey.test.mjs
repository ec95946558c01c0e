// The buying journey as a store sees it through profile(), on('stage') and the outbox.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, messages, debugInfo, profileOf } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

const tv = (i) => ({ product_id: `tv-${i}`, category: 'TVs', brand: 'Acme', price: 499, currency: 'USD' });

test('a shopper who views five TVs is deciding on TVs, and one phone is awareness', async () => {
  const { page, errors } = await env.load({});
  const seen = await page.evaluate((tvs) => {
    window.__stages = [];
    window.nudge.on('stage', (s) => window.__stages.push(s));
    const after = [];
    for (const p of tvs) {
      window.nudge.track('Product Viewed', p);
      after.push(window.nudge.profile().stages.TVs);
    }
    window.nudge.track('Product Viewed', { product_id: 'ph-1', category: 'Phones', brand: 'Fone', price: 299, currency: 'USD' });
    return after;
  }, [0, 1, 2, 3, 4].map(tv));
  assert.deepEqual(seen, ['awareness', 'awareness', 'consideration', 'consideration', 'decision']);

  const profile = await profileOf(page);
  assert.deepEqual(profile.stages, { TVs: 'decision', Phones: 'awareness' });
  assert.equal(profile.stage, 'decision', 'the overall stage is the strongest category');

  const expected = [
    { category: 'TVs', from: null, to: 'awareness' },
    { category: 'TVs', from: 'awareness', to: 'consideration' },
    { category: 'TVs', from: 'consideration', to: 'decision' },
    { category: 'Phones', from: null, to: 'awareness' },
  ];
  const fired = await page.evaluate(() => window.__stages);
  assert.deepEqual(fired.map((s) => ({ category: s.category, from: s.from ?? null, to: s.to })), expected);

  const changed = messages(await debugInfo(page), 'track', 'Stage Changed');
  assert.deepEqual(changed.map((m) => ({ category: m.properties.category, from: m.properties.from ?? null, to: m.properties.to })), expected);
  assert.deepEqual(errors, []);
});

test('adding to cart is decision at once, and an order is purchase', async () => {
  const { page, errors } = await env.load({});
  await page.evaluate((p) => {
    window.nudge.track('Product Viewed', p);
    window.nudge.track('Product Added', { ...p, quantity: 1 });
  }, tv(1));
  let profile = await profileOf(page);
  assert.equal(profile.stages.TVs, 'decision');
  assert.equal(profile.cart.items.length, 1);
  assert.equal(profile.cart.items[0].product_id, 'tv-1');
  assert.equal(profile.cart.items[0].quantity, 1);
  assert.equal(profile.cart.value, 499);
  assert.equal(profile.cart.currency, 'USD');

  await page.evaluate(() => window.nudge.track('Order Completed', {
    order_id: 'o-1', revenue: 499, currency: 'USD',
    products: [{ product_id: 'tv-1', category: 'TVs', brand: 'Acme', price: 499, quantity: 1 }],
  }));
  profile = await profileOf(page);
  assert.equal(profile.stages.TVs, 'purchase');
  assert.equal(profile.stage, 'purchase');
  assert.deepEqual(errors, []);
});

test('thresholds from init options change when a shopper moves on', async () => {
  const { page, errors } = await env.load({ options: { thresholds: { consideration_views: 2 } } });
  const stages = await page.evaluate((ps) => ps.map((p) => {
    window.nudge.track('Product Viewed', p);
    return window.nudge.profile().stages.TVs;
  }), [tv(1), tv(2)]);
  assert.deepEqual(stages, ['awareness', 'consideration']);
  assert.deepEqual(errors, []);
});

test('views build category and brand affinities', async () => {
  const { page, errors } = await env.load({});
  await page.evaluate((ps) => ps.forEach((p) => window.nudge.track('Product Viewed', p)), [tv(1), tv(2), { ...tv(3), category: 'Phones', brand: 'Fone' }]);
  const { affinities } = await profileOf(page);
  assert.ok(affinities.categories.TVs > affinities.categories.Phones, JSON.stringify(affinities));
  assert.ok(affinities.brands.Acme > affinities.brands.Fone, JSON.stringify(affinities));
  assert.deepEqual(errors, []);
});
