// The demo storefront (demo-site/): its generator is deterministic, and a shopper's visit
// (browse TVs, add one to the cart, check out with a coupon) sends the Segment e-commerce
// events with the spec's properties through the public snippet, which the inspector shows.
// The store is generated into a temporary directory and served by the suite's page server,
// whose /v1/config answers an empty site config (so no campaign popup shows). Batches are
// refused (503) in these tests, so every event the SDK made stays in its outbox to look at.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, suite, waitReady, debugInfo, profileOf, messages } from './helpers.mjs';

const run = promisify(execFile);
const GENERATOR = join(ROOT, 'demo-site/generate.mjs');
const env = suite({ before, after });
afterEach(() => env.closeAll());

const dirs = [];
async function generate() {
  const dir = await mkdtemp(join(tmpdir(), 'nudge-store-'));
  dirs.push(dir);
  await run(process.execPath, [GENERATOR, '--out', dir]);
  return dir;
}

/** Every file under `dir`: relative path → contents. */
async function tree(dir) {
  const out = new Map();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    out.set(relative(dir, file), await readFile(file));
  }
  return out;
}

let store;
let catalog;
before(async () => {
  store = await generate();
  catalog = JSON.parse(await readFile(join(store, 'catalog.json'), 'utf8'));
  env.server.serveDir(store);
});
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

// The store's own events, in the order made (the SDK's own, like Stage Changed, left out).
const STORE_EVENTS = new Set([
  'Product List Viewed', 'Product Viewed', 'Product Added', 'Product Removed', 'Cart Viewed',
  'Checkout Started', 'Coupon Entered', 'Coupon Applied', 'Coupon Denied', 'Order Completed',
]);
const storeEvents = (info) => messages(info, 'track').filter((m) => STORE_EVENTS.has(m.event));

/** A new shopper whose batches the collector refuses; every request's URL is kept. */
async function shopper() {
  const tab = await env.open();
  tab.requests = [];
  tab.page.on('request', (r) => tab.requests.push(r.url()));
  await tab.context.route('**/v1/batch', (route) => route.fulfill({ status: 503, body: '' }));
  return tab;
}

async function visit(page, path) {
  await page.goto(env.server.origin + path, { waitUntil: 'domcontentloaded' });
  await waitReady(page);
}

test('the generator writes the same files on every run: ~200 products in six categories, pictures and catalog.json', async () => {
  const [a, b] = [await tree(store), await tree(await generate())];
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [path, bytes] of a) assert.ok(bytes.equals(b.get(path)), `${path} differs between two runs`);

  assert.ok(catalog.length >= 190 && catalog.length <= 220, `${catalog.length} products`);
  assert.deepEqual([...new Set(catalog.map((p) => p.category))], ['TVs', 'Phones', 'Laptops', 'Headphones', 'Cameras', 'Home']);
  assert.equal(new Set(catalog.map((p) => p.id)).size, catalog.length, 'ids are unique');
  for (const p of catalog) {
    assert.deepEqual(Object.keys(p), ['id', 'name', 'category', 'brand', 'price', 'currency', 'image', 'url', 'in_stock']);
    assert.equal(p.currency, 'USD');
    assert.ok(Number.isFinite(p.price) && p.price > 0);
    assert.ok(a.has(p.image.slice(1)), `${p.image} exists`);
    assert.ok(a.has(p.url.slice(1)), `${p.url} exists`);
  }
  // Nothing is fetched from another origin: the only absolute URL is SVG's namespace name.
  for (const [path, bytes] of a) {
    const urls = String(bytes).match(/https?:\/\/[^\s"'<>)]+/g) || [];
    assert.deepEqual(urls.filter((u) => u !== 'http://www.w3.org/2000/svg'), [], path);
  }
  // Another seed makes another store.
  const other = await mkdtemp(join(tmpdir(), 'nudge-store-'));
  dirs.push(other);
  await run(process.execPath, [GENERATOR, '--out', other, '--seed', '7']);
  assert.notEqual(await readFile(join(other, 'catalog.json'), 'utf8'), await readFile(join(store, 'catalog.json'), 'utf8'));
});

test('home, product and cart pages hold product slots with a template and server-rendered products', async () => {
  const { page, errors } = await shopper();
  await visit(page, '/');
  const home = await page.evaluate(() => {
    const slot = document.querySelector('[data-nudge-slot="for-you"]');
    const t = slot.querySelector('template').content;
    return {
      count: slot.dataset.count,
      cards: slot.querySelectorAll(':scope > .card').length,
      binds: [...t.querySelectorAll('[data-bind],[data-bind-src],[data-bind-href]')].map((e) => e.dataset.bind || (e.dataset.bindSrc && 'src:' + e.dataset.bindSrc) || 'href:' + e.dataset.bindHref),
    };
  });
  assert.deepEqual(home, { count: '4', cards: 4, binds: ['href:url', 'src:image', 'name', 'brand', 'price', 'reason'] });
  const tv = catalog.find((p) => p.category === 'TVs');
  await visit(page, tv.url);
  const similar = await page.evaluate(() => {
    const slot = document.querySelector('[data-nudge-slot="similar"]');
    return { product: slot.dataset.productId, categories: [...slot.querySelectorAll(':scope > .card .meta')].map((m) => m.textContent.split(' · ')[1]) };
  });
  assert.deepEqual(similar, { product: tv.id, categories: ['TVs', 'TVs', 'TVs', 'TVs'] });
  await visit(page, '/cart.html');
  const extras = await page.evaluate(() => {
    const slot = document.querySelector('[data-nudge-slot="complete-the-cart"]');
    return { count: slot.dataset.count, template: !!slot.querySelector('template'), cards: slot.querySelectorAll(':scope > .card').length };
  });
  assert.deepEqual(extras, { count: '4', template: true, cards: 4 });
  assert.deepEqual(errors, []);
});

test('browsing TVs, adding one and checking out with a coupon tracks the e-commerce events; the inspector shows decision for TVs', async () => {
  const { page, errors, requests } = await shopper();
  const tvs = catalog.filter((p) => p.category === 'TVs' && p.in_stock).slice(0, 3);

  await visit(page, '/c/tvs.html');
  for (const tv of tvs) await visit(page, tv.url);
  const chosen = tvs[2];

  // The inspector, opened with its button, shows the stage per category, and follows the
  // profile as it changes: three views make TVs `consideration`, a cart add `decision`.
  await page.click('#inspector-toggle');
  assert.equal(await page.getAttribute('#inspector-toggle', 'aria-expanded'), 'true');
  const tvStage = page.locator('#inspector dd[data-category="TVs"]');
  await tvStage.waitFor();
  assert.equal(await tvStage.textContent(), 'consideration');
  await page.click('.product [data-add]');
  await page.waitForFunction(() => document.querySelector('#inspector dd[data-category="TVs"]').textContent === 'decision', null, { timeout: 5000 });
  assert.equal(await tvStage.getAttribute('data-stage'), 'decision');
  assert.match(await page.locator('#inspector-outbox').textContent(), new RegExp(`Product Added · ${chosen.id}`));

  // In the cart: one more, then one less.
  await visit(page, '/cart.html');
  assert.match(await page.textContent('#cart'), new RegExp(chosen.name.replace(/[."]/g, '.')));
  await page.getByRole('button', { name: `One more ${chosen.name}` }).click();
  await page.getByRole('button', { name: `One less ${chosen.name}` }).click();
  assert.equal(await page.textContent('#cart-count'), '(1)');
  await page.click('#to-checkout');
  await page.waitForURL('**/checkout.html');
  await waitReady(page);
  await page.fill('input[name="email"]', 'shopper@example.com');
  await page.fill('#coupon', 'cart5');
  await page.click('#apply-coupon');
  assert.equal(await page.textContent('#coupon-note'), 'Coupon CART5 applied.');
  await page.click('#place-order');
  await page.waitForURL('**/order.html');
  await waitReady(page);
  await page.waitForFunction(() => window.nudge.debug().outbox.some((m) => m.event === 'Order Completed'));

  const info = await debugInfo(page);
  const events = storeEvents(info);
  // Moving between the store's pages hides each page in turn; that is not leaving the store.
  assert.deepEqual(info.outbox.filter((m) => /Abandon Intent/.test(m.event || '')).map((m) => m.event), []);
  assert.deepEqual(events.map((m) => m.event), [
    'Product List Viewed',
    'Product Viewed', 'Product Viewed', 'Product Viewed',
    'Product Added',
    'Cart Viewed', 'Product Added', 'Product Removed',
    'Checkout Started', 'Coupon Entered', 'Coupon Applied',
    'Order Completed',
  ]);
  const [list, v1, v2, v3, added, cartViewed, more, less, checkout, entered, applied, order] = events.map((m) => m.properties);
  const origin = env.server.origin;
  const productProps = (p) => ({
    product_id: p.id, sku: p.id, name: p.name, brand: p.brand, category: p.category, price: p.price,
    currency: 'USD', url: origin + p.url, image_url: origin + p.image,
  });

  assert.equal(list.list_id, 'tvs');
  assert.equal(list.category, 'TVs');
  const allTvs = catalog.filter((p) => p.category === 'TVs');
  assert.equal(list.products.length, allTvs.length);
  assert.deepEqual(list.products[0], { ...productProps(allTvs[0]), position: 1 });
  assert.deepEqual([v1, v2, v3], tvs.map(productProps));

  assert.match(added.cart_id, /^cart-/);
  assert.deepEqual(added, { cart_id: added.cart_id, ...productProps(chosen), quantity: 1 });
  const lineOf = (p) => {
    const { currency, ...rest } = productProps(p);
    return { ...rest, quantity: 1 };
  };
  assert.deepEqual(cartViewed, { cart_id: added.cart_id, products: [lineOf(chosen)] });
  assert.deepEqual(more, added);
  assert.deepEqual(less, added);

  assert.match(checkout.order_id, /^order-/);
  assert.deepEqual(checkout, {
    checkout_id: checkout.checkout_id, order_id: checkout.order_id, value: chosen.price, revenue: chosen.price,
    currency: 'USD', products: [lineOf(chosen)],
  });
  assert.equal(entered.coupon_id, 'CART5');
  assert.equal(applied.coupon_id, 'CART5');
  assert.equal(applied.discount, 5);

  const revenue = Math.round((chosen.price - 5) * 100) / 100;
  assert.deepEqual(order, {
    order_id: checkout.order_id, checkout_id: checkout.checkout_id, total: revenue, revenue,
    shipping: 0, tax: 0, discount: 5, currency: 'USD', products: [lineOf(chosen)], coupon: 'CART5',
  });
  assert.match(await page.textContent('#order-total'), new RegExp(`\\$${revenue.toFixed(2)}`));

  // Nudge's own view of the same journey.
  const profile = await profileOf(page);
  assert.equal(profile.stages.TVs, 'purchase');
  assert.deepEqual(profile.cart.items, []);
  assert.equal(await page.textContent('#cart-count'), '', 'the store emptied its cart');

  // A reload of the confirmation does not order twice.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitReady(page);
  assert.equal(messages(await debugInfo(page), 'track', 'Order Completed').length, 1);

  // Everything came from the store's own origin.
  assert.deepEqual(requests.filter((u) => !u.startsWith(origin + '/')), []);
  assert.deepEqual(errors, []);
});

test('on a 375 px wide phone screen no page scrolls sideways, and the inspector fits', async () => {
  const { page, errors } = await shopper();
  await page.setViewportSize({ width: 375, height: 740 });
  const tv = catalog.find((p) => p.category === 'TVs' && p.in_stock);
  await visit(page, tv.url);
  await page.click('.product [data-add]');
  for (const path of ['/', '/c/cameras.html', tv.url, '/cart.html', '/checkout.html', '/account.html']) {
    await visit(page, path);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${path} is ${width} px wide`);
  }
  await page.click('#inspector-toggle');
  const box = await page.locator('#inspector').boundingBox();
  assert.ok(box.x >= 0 && box.width <= 375, `inspector at ${box.x}, ${box.width} px wide`);
  assert.deepEqual(errors, []);
});
