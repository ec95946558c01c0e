// Recommendations in a real page against a real nudge-server: `recommend()` and
// `data-nudge-slot` filled from the site's catalogue feed, text only, with the slot's own
// content kept when there is nothing to show, `Product Clicked` tracked, and the feed
// revalidated by ETag on the next page.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, sdkPage, waitReady, waitUntil, debugInfo, messages, startNudgeServer, secretCall } from './helpers.mjs';

const env = suite({ before, after });
let ns = null;
afterEach(async () => {
  await env.closeAll();
  await ns?.stop();
  ns = null;
});

const HOSTILE = '<img src=x onerror="window.__owned=1">';
const PRODUCTS = [
  { id: 'tv-1', name: 'Acme 50 TV', category: 'TVs', brand: 'Acme', price: 499, image: '/img/tv-1.svg', url: '/p/tv-1', in_stock: true },
  { id: 'tv-2', name: 'Acme 55 TV', category: 'TVs', brand: 'Acme', price: 599, image: '/img/tv-2.svg', url: '/p/tv-2', in_stock: true },
  { id: 'tv-3', name: HOSTILE, category: 'TVs', brand: 'Vizo', price: 1299, image: '/img/tv-3.svg', url: '/p/tv-3', in_stock: true },
  { id: 'tv-4', name: 'Vizo 43 TV', category: 'TVs', brand: 'Vizo', price: 349, image: '/img/tv-4.svg', url: '/p/tv-4', in_stock: false },
  { id: 'ph-1', name: 'Fone X', category: 'Phones', brand: 'Fone', price: 899, image: '/img/ph-1.svg', url: '/p/ph-1', in_stock: true },
  { id: 'ph-2', name: 'Fone Mini', category: 'Phones', brand: 'Fone', price: 499, image: '/img/ph-2.svg', url: '/p/ph-2', in_stock: true },
  { id: 'hd-1', name: 'Acme Buds', category: 'Headphones', brand: 'Acme', price: 99, image: '/img/hd-1.svg', url: '/p/hd-1', in_stock: true },
  { id: 'hm-1', name: 'Wall Mount', category: 'Home', price: 39, image: '/img/hm-1.svg', url: '/p/hm-1', in_stock: true },
].map((p) => ({ currency: 'USD', ...p }));

/** A nudge-server whose site allows the test pages and holds `products` as its catalogue. */
async function serverWith(products = PRODUCTS) {
  ns = await startNudgeServer({ origins: [env.server.origin] });
  if (products) await secretCall(ns, 'PUT', '/v1/catalog', products);
  return ns;
}

const SLOT = (strategy, extra = '') => `
<div class="slot" data-nudge-slot="${strategy}" data-count="3" ${extra}>
  <template><a class="item" data-bind-href="url"><img data-bind-src="image" alt=""><b data-bind="name"></b><i data-bind="price"></i><small data-bind="reason"></small></a></template>
  <p class="fallback">Our bestsellers</p>
</div>`;

/** The slot's filled items: product id, position, name text, href, price text, reason. */
const items = (page, selector = '.slot') =>
  page.$$eval(`${selector} [data-nudge-position]`, (els) =>
    els.map((e) => ({
      id: e.dataset.nudgeProduct,
      position: e.dataset.nudgePosition,
      name: e.querySelector('b').textContent,
      href: e.getAttribute('href'),
      price: e.querySelector('i').textContent,
      reason: e.querySelector('small').textContent,
    })));

/** A new shopper on a page with `body`, using `server`; resolves once the SDK is ready. */
const shop = (server, body) => env.load({ body, endpoint: server.url, writeKey: server.writeKey });

test('a shopper who viewed TVs gets TVs in the for-you slot, as text, with reasons and links', async () => {
  const server = await serverWith();
  const { page, errors } = await shop(server, '<h1>Home</h1>');
  await page.evaluate((ps) => {
    for (const p of ps) window.nudge.track('Product Viewed', { product_id: p.id, name: p.name, category: p.category, brand: p.brand, price: p.price });
  }, [PRODUCTS[0], PRODUCTS[1], PRODUCTS[0], PRODUCTS[1], PRODUCTS[0]]);
  await page.evaluate(() => window.nudge.flush());

  // The home page, loaded again with a slot: filled from the stored profile.
  const html = await sdkPage(env.server, { body: '<h1>Home</h1>' + SLOT('for-you'), endpoint: server.url, writeKey: server.writeKey });
  await page.goto(env.server.page(html));
  await waitUntil(async () => (await items(page)).length === 3, { what: 'the slot filled' });
  const got = await items(page);
  // The viewed TVs first (tv-1 more often, and in the price band seen most), then the other
  // TV in stock (tv-4 is not).
  assert.deepEqual(got.map((i) => i.id), ['tv-1', 'tv-2', 'tv-3']);
  assert.deepEqual(got.map((i) => i.position), ['1', '2', '3']);
  assert.equal(got[0].reason, 'because you viewed TVs');
  assert.equal(got[0].price, '$499.00');
  assert.equal(got[0].href, `${env.server.origin}/p/tv-1`);
  assert.equal(got[2].name, HOSTILE, 'a product name is shown as text, never as HTML');
  assert.equal(await page.$$eval('.slot img[src]', (imgs) => imgs.length), 3);
  assert.equal(await page.$('.slot .fallback'), null, "the slot's own content is replaced");
  assert.equal(await page.evaluate(() => window.__owned), undefined);
  assert.deepEqual(errors, []);

  // The API gives the same ranking, with the whole product.
  const picks = await page.evaluate(() => window.nudge.recommend({ strategy: 'for-you', count: 2 }));
  assert.deepEqual(picks.map((p) => [p.id, p.category, p.reason]), [['tv-1', 'TVs', 'because you viewed TVs'], ['tv-2', 'TVs', 'because you viewed TVs']]);
  const similar = await page.evaluate(() => window.nudge.recommend({ strategy: 'similar', productId: 'ph-1', count: 1 }));
  assert.deepEqual(similar.map((p) => [p.id, p.reason]), [['ph-2', 'similar to Fone X']]);
  const refused = await page.evaluate(() => window.nudge.recommend({ strategy: 'cheapest' }));
  assert.deepEqual(refused, []);
});

test('a click on a slot product tracks Product Clicked with the slot and position', async () => {
  const server = await serverWith();
  const { page } = await shop(server, SLOT('similar', 'data-product-id="tv-1"'));
  await waitUntil(async () => (await items(page)).length === 3, { what: 'the slot filled' });
  // Stay on the page: the link is followed only after the click was recorded.
  await page.evaluate(() => document.addEventListener('click', (e) => e.preventDefault()));
  await page.click('.slot [data-nudge-position="2"] b');
  const info = await debugInfo(page);
  const clicked = messages(info, 'track', 'Product Clicked');
  assert.equal(clicked.length, 1);
  const second = (await items(page))[1];
  assert.equal(clicked[0].properties.product_id, second.id);
  assert.equal(clicked[0].properties.position, 2);
  assert.equal(clicked[0].properties.slot, 'similar');
  assert.equal(clicked[0].properties.reason, 'similar to Acme 50 TV');
});

test('a slot keeps its own content when the site has no catalogue or the server is down', async () => {
  const server = await serverWith(null);
  const { page, errors } = await shop(server, SLOT('for-you'));
  assert.deepEqual(await page.evaluate(() => window.nudge.recommend({})), []);
  assert.equal(await page.textContent('.slot .fallback'), 'Our bestsellers');
  assert.equal((await items(page)).length, 0);

  await server.kill();
  const down = await shop(server, SLOT('popular'));
  assert.deepEqual(await down.page.evaluate(() => window.nudge.recommend({ strategy: 'popular' })), []);
  assert.equal(await down.page.textContent('.slot .fallback'), 'Our bestsellers');
  assert.deepEqual([...errors, ...down.errors], []);
});

test('a slot added later by a single-page app is filled too, and the feed is revalidated by ETag', async () => {
  const server = await serverWith();
  const { page, url } = await shop(server, '<main id="app"></main>');
  const feeds = [];
  page.on('response', async (r) => {
    if (r.url().includes('/v1/catalog/feed')) feeds.push({ status: r.status(), inm: (await r.request().allHeaders())['if-none-match'] });
  });
  await page.evaluate((slot) => {
    history.pushState({}, '', '/category/phones');
    document.getElementById('app').innerHTML = slot;
  }, SLOT('popular', 'data-category="Phones"'));
  await waitUntil(async () => (await items(page)).length === 2, { what: 'the later slot filled' });
  assert.deepEqual((await items(page)).map((i) => [i.id, i.reason]), [['ph-1', 'popular in Phones'], ['ph-2', 'popular in Phones']]);

  await page.goto(url);
  await waitReady(page);
  await page.evaluate(() => window.nudge.recommend({}));
  await waitUntil(() => feeds.length >= 2, { what: 'two feed responses' });
  assert.equal(feeds[0].inm, undefined, 'the first load asks for the whole feed');
  assert.ok(feeds[1].inm && feeds[1].inm.startsWith('"'), `the next load revalidates with If-None-Match: ${JSON.stringify(feeds)}`);
});
