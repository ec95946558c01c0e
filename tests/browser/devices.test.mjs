// One shopper on two devices: what they did on the phone reaches the laptop through the
// real nudge-server, once the site vouches for the user with userHash.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { suite, sdkPage, watchPage, waitReady, debugInfo, profileOf, startNudgeServer, waitUntil } from './helpers.mjs';

const env = suite({ before, after });
// One nudge-server for the file, started by the first test (the page server must exist first).
let nudge;
const server = async () => (nudge ??= await startNudgeServer({ origins: [env.server.origin] }));
after(() => nudge?.stop());
afterEach(() => env.closeAll());

// What the site's backend computes for a signed-in user.
const userHash = (userId) => createHmac('sha256', nudge.secretKey).update(userId).digest('hex');
const page = (after) => ({ endpoint: nudge.url, writeKey: nudge.writeKey, after });
const tvViews = [0, 1, 2, 3, 4]
  .map((i) => `nudge.track('Product Viewed', {product_id: 'tv-${i}', category: 'TVs', brand: 'Acme', price: 499});`)
  .join('\n');

async function serverProfile(userId) {
  const r = await nudge.get(`/v1/profiles/${encodeURIComponent(userId)}`);
  return r.status === 200 ? r.body : null;
}

test('two browsers identified as one user share one merged profile, on the server and in both browsers', async () => {
  await server();
  const user = 'shopper-7';
  const signIn = `nudge.identify('${user}', {email: 'seven@example.com'}, {userHash: '${userHash(user)}'});`;

  // On the phone: signed in, five TVs in a row (a burst: decision for TVs).
  const phone = await env.load(page(`${signIn}\n${tvViews}`));
  assert.equal((await profileOf(phone.page)).stages.TVs, 'decision');
  await phone.page.evaluate(() => window.nudge.flush());
  await waitUntil(async () => (await serverProfile(user))?.stages?.TVs === 'decision', {
    what: 'the phone\'s TV views on the server',
  });

  // On the laptop: one phone viewed, then the shopper signs in.
  const laptop = await env.load(
    page(`nudge.track('Product Viewed', {product_id: 'ph-1', category: 'Phones', brand: 'Fone', price: 299});\n${signIn}`),
  );
  await waitUntil(async () => (await profileOf(laptop.page)).stages.TVs === 'decision', {
    what: 'the laptop to learn the phone\'s TVs',
  });
  const onLaptop = await profileOf(laptop.page);
  assert.equal(onLaptop.stages.Phones, 'awareness', 'the laptop keeps its own evidence');
  assert.ok(onLaptop.affinities.categories.TVs > 0, 'affinities came along');

  // The server holds one profile for the user, merged from both browsers.
  await laptop.page.evaluate(() => window.nudge.flush());
  await waitUntil(async () => (await serverProfile(user))?.stages?.Phones === 'awareness', {
    what: 'the laptop\'s phone view on the server',
  });
  const merged = await serverProfile(user);
  assert.equal(merged.stages.TVs, 'decision');
  assert.equal(merged.anonymousIds.length, 2, 'both browsers belong to the user');

  // The phone signs in again on its next page and learns the laptop's phone view too.
  await phone.page.reload({ waitUntil: 'domcontentloaded' });
  await waitUntil(async () => (await phone.page.evaluate(() => window.nudge?.profile?.()?.stages?.Phones)) === 'awareness', {
    what: 'the phone to learn the laptop\'s phone view',
  });
  assert.deepEqual(phone.errors, []);
  assert.deepEqual(laptop.errors, []);
});

test('without a valid userHash a browser learns nothing from other devices', async () => {
  await server();
  const user = 'shopper-8';
  const phone = await env.load(
    page(`nudge.identify('${user}', {}, {userHash: '${userHash(user)}'});\n${tvViews}`),
  );
  await phone.page.evaluate(() => window.nudge.flush());
  await waitUntil(async () => (await serverProfile(user))?.stages?.TVs === 'decision', { what: 'the server profile' });

  const forged = 'f'.repeat(64);
  // Record the read-back's answer as the page sees it.
  const watchReadBack = `window.__readBacks = [];
    const realFetch = window.fetch;
    window.fetch = (...args) => realFetch(...args).then((r) => {
      if (String(args[0]).includes('/v1/profile?')) window.__readBacks.push(r.status);
      return r;
    });`;
  const other = await env.load({
    ...page(`nudge.identify('${user}', {}, {userHash: '${forged}'});`),
    before: watchReadBack,
  });
  await waitUntil(async () => (await other.page.evaluate(() => window.__readBacks.length)) > 0, {
    what: 'the read-back to be answered',
  });
  assert.deepEqual(await other.page.evaluate(() => window.__readBacks), [403]);
  assert.equal((await profileOf(other.page)).stages.TVs, undefined, 'nothing from the other device');
  assert.deepEqual(other.errors, []);
});

test('the site config from the server sets the thresholds, and the browser revalidates it with its ETag', async () => {
  await server();
  // The site decides that one product view makes a shopper consider a category.
  const put = await fetch(`${nudge.url}/v1/config`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${nudge.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ thresholds: { consideration_views: 1 } }),
  });
  assert.equal(put.status, 200, await put.text());

  const configAnswers = [];
  const shop = await env.load(page(''), { wait: false });
  shop.page.on('response', (r) => r.url().includes('/v1/config') && configAnswers.push(r.status()));
  await waitUntil(async () => (await shop.page.evaluate(() => window.nudge?.profile?.() != null)), { what: 'ready' });
  await waitUntil(() => configAnswers.length > 0, { what: 'the config to be fetched' });
  await shop.page.evaluate(() => window.nudge.track('Product Viewed', { product_id: 'tv-1', category: 'TVs' }));
  await waitUntil(async () => (await profileOf(shop.page)).stages.TVs === 'consideration', {
    what: 'one view to mean consideration',
  });

  // The next page asks again; the browser's cache revalidates it with the ETag it has (the
  // server's 304 reaches the page as the cached 200).
  const revalidations = [];
  shop.page.on('response', async (r) => {
    if (r.url().includes('/v1/config')) {
      revalidations.push({ sent: (await r.request().allHeaders())['if-none-match'], etag: (await r.allHeaders()).etag });
    }
  });
  await shop.page.reload({ waitUntil: 'domcontentloaded' });
  await waitUntil(() => revalidations.length > 0, { what: 'the config to be fetched again' });
  assert.ok(revalidations[0].etag, 'the config has an ETag');
  assert.equal(revalidations[0].sent, revalidations[0].etag, 'the browser revalidated with the ETag it had');
  assert.deepEqual(shop.errors, []);
});

test('an identify made in a follower tab brings the merged profile to both tabs', async () => {
  await server();
  const user = 'shopper-tabs';
  const signIn = `nudge.identify('${user}', {}, {userHash: '${userHash(user)}'});`;
  // Another device already made the user `decision` for TVs.
  const phone = await env.load(page(`${signIn}\n${tvViews}`));
  await phone.page.evaluate(() => window.nudge.flush());
  await waitUntil(async () => (await serverProfile(user))?.stages?.TVs === 'decision', { what: "the phone's TVs on the server" });

  // The laptop: two tabs, neither signed in; then the follower signs in.
  const url = env.server.page(await sdkPage(env.server, page('')));
  const { context } = await env.open();
  const tabs = [];
  for (let i = 0; i < 2; i++) {
    const p = await context.newPage();
    const watch = watchPage(p);
    await p.goto(url);
    await waitReady(p);
    tabs.push({ page: p, ...watch });
  }
  const roles = await waitUntil(async () => {
    const r = await Promise.all(tabs.map(async (t) => (await debugInfo(t.page)).leader));
    return r.filter(Boolean).length === 1 ? r : null;
  }, { what: 'one leader among the two tabs' });
  const follower = tabs[roles.indexOf(false)];
  await follower.page.evaluate((code) => new Function(code)(), signIn);
  for (const t of tabs) {
    await waitUntil(async () => (await profileOf(t.page)).stages.TVs === 'decision', {
      what: 'each laptop tab to learn the phone\'s TVs',
    });
  }
  assert.deepEqual(tabs.flatMap((t) => t.errors), []);
});
