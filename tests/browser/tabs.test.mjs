// Tabs of one origin share one profile: a BroadcastChannel carries calls and state, and a
// Web Lock elects the one tab (the leader) that owns the profile and the stored outbox.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, sdkPage, watchPage, waitReady, waitUntil, messages, debugInfo, profileOf } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

/** Two tabs of one site in one browser profile, with one leader elected. */
async function twoTabs() {
  const url = env.server.page(await sdkPage(env.server, {}));
  const { context } = await env.open();
  const tabs = [];
  for (let i = 0; i < 2; i++) {
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(url);
    await waitReady(page);
    tabs.push({ page, ...watch });
  }
  const roles = await waitUntil(async () => {
    const r = await Promise.all(tabs.map(async (t) => (await debugInfo(t.page)).leader));
    return r.filter(Boolean).length === 1 ? r : null;
  }, { what: 'exactly one leader among two tabs' });
  const leader = tabs[roles.indexOf(true)];
  const follower = tabs[roles.indexOf(false)];
  return { context, tabs, leader, follower };
}

test('a view tracked in one tab shows in the other tab\'s profile', async () => {
  const { tabs, leader, follower } = await twoTabs();
  const [a, b] = tabs;
  assert.equal((await profileOf(a.page)).anonymousId, (await profileOf(b.page)).anonymousId, 'one shopper across tabs');

  await a.page.evaluate(() => window.nudge.track('Product Viewed', { product_id: 'c1', category: 'Cameras' }));
  await waitUntil(async () => (await profileOf(b.page)).stages.Cameras === 'awareness', { what: "tab B's profile to show tab A's view", timeout: 5000 });

  await b.page.evaluate(() => window.nudge.track('Product Viewed', { product_id: 'l1', category: 'Lenses' }));
  await waitUntil(async () => (await profileOf(a.page)).stages.Lenses === 'awareness', { what: "tab A's profile to show tab B's view", timeout: 5000 });

  for (const t of [leader, follower]) assert.deepEqual(t.errors, []);
});

test('100 events tracked concurrently in two tabs are in the leader\'s outbox exactly once, and both profiles agree', async () => {
  const { tabs, leader, follower } = await twoTabs();
  const burst = async (tab) => {
    for (let i = 0; i < 50; i++) {
      window.nudge.track('Product Viewed', { product_id: `${tab}-${i}`, category: tab === 'A' ? 'TVs' : 'Phones', tab, i });
      if (i % 5 === 4) await new Promise((r) => setTimeout(r, 0));
    }
  };
  await Promise.all([tabs[0].page.evaluate(burst, 'A'), tabs[1].page.evaluate(burst, 'B')]);

  const ours = (info) => messages(info, 'track', 'Product Viewed').filter((m) => m.properties.tab);
  let info;
  try {
    info = await waitUntil(async () => {
      const i = await debugInfo(leader.page);
      return ours(i).length >= 100 ? i : null;
    }, { what: '100 events in the leader outbox', timeout: 10000 });
  } catch (e) {
    const i = await debugInfo(leader.page);
    const f = await debugInfo(follower.page);
    assert.fail(`${e.message}: leader has ${ours(i).length}, follower pending ${f.pending}, follower outbox ${ours(f).length}`);
  }
  const got = ours(info).map((m) => `${m.properties.tab}-${m.properties.i}`);
  const want = [];
  for (const t of ['A', 'B']) for (let i = 0; i < 50; i++) want.push(`${t}-${i}`);
  assert.deepEqual([...got].sort(), [...want].sort(), 'every event exactly once');
  const ids = info.outbox.map((m) => m.messageId);
  assert.equal(new Set(ids).size, ids.length, 'messageIds unique');
  assert.equal(info.dropped, 0);
  // Per tab, events keep the order they were tracked in.
  for (const t of ['A', 'B']) {
    const order = ours(info).filter((m) => m.properties.tab === t).map((m) => m.properties.i);
    assert.deepEqual(order, [...order].sort((x, y) => x - y), `tab ${t} events in order`);
  }

  // Both tabs end with the same profile.
  let profiles;
  try {
    profiles = await waitUntil(async () => {
      const p = await Promise.all(tabs.map((t) => profileOf(t.page)));
      return JSON.stringify(p[0]) === JSON.stringify(p[1]) ? p : null;
    }, { what: 'both tabs to hold the same profile', timeout: 5000 });
  } catch (e) {
    const p = await Promise.all(tabs.map((t) => profileOf(t.page)));
    assert.deepEqual(p[1], p[0], e.message);
  }
  assert.deepEqual(profiles[0].stages, { TVs: 'decision', Phones: 'decision' });

  // What the leader stores is the same outbox.
  await leader.page.evaluate(async () => { await window.nudge.flush(); });
  const stored = await leader.page.evaluate(() => {
    const k = Object.keys(localStorage).find((key) => key.startsWith('nudge:') && key.endsWith(':outbox'));
    return k ? localStorage.getItem(k) : null;
  });
  assert.ok(stored, 'an outbox is stored');
  const storedEvents = stored.split('\n').map((l) => JSON.parse(l)).filter((m) => m.event === 'Product Viewed' && m.properties.tab);
  assert.equal(storedEvents.length, 100, 'stored outbox has the 100 events');
  assert.equal(new Set(storedEvents.map((m) => m.messageId)).size, 100);

  for (const t of tabs) assert.deepEqual(t.errors, []);
});

test('when the leader tab closes, the other tab takes over and keeps every event', async () => {
  const { leader, follower } = await twoTabs();
  await follower.page.evaluate(() => window.nudge.track('Before Handover'));
  await waitUntil(async () => messages(await debugInfo(leader.page), 'track', 'Before Handover').length === 1, { what: 'the leader to take the follower\'s event' });
  await leader.page.close();
  await waitUntil(async () => (await debugInfo(follower.page)).leader, { what: 'the remaining tab to lead', timeout: 5000 });
  await follower.page.evaluate(() => window.nudge.track('After Handover'));
  const info = await debugInfo(follower.page);
  assert.equal(messages(info, 'track', 'Before Handover').length, 1);
  assert.equal(messages(info, 'track', 'After Handover').length, 1);
  assert.deepEqual(follower.errors, []);
  assert.deepEqual(leader.errors, []);
});

// Holds this page's Web Lock grant until the test calls window.__grantLeadership(), so the
// tab stays in its pre-election state for as long as the test needs.
function holdLeadership() {
  const request = LockManager.prototype.request;
  let grant;
  const gate = new Promise((resolve) => (grant = resolve));
  Object.defineProperty(window, '__grantLeadership', { value: () => grant() });
  LockManager.prototype.request = function (name, ...rest) {
    const callback = rest.pop();
    return request.call(this, name, ...rest, async (lock) => {
      await gate;
      return callback(lock);
    });
  };
}

test('calls made while the tab is still being elected leader reach the outbox', async () => {
  const { page, errors } = await env.load({}, { settled: false, init: holdLeadership, path: '/electing' });
  const before = await debugInfo(page);
  assert.notEqual(before.role, 'leader', 'the election is still open');
  await page.evaluate(() => {
    window.nudge.track('Product Viewed', { product_id: 'p1', category: 'TVs' });
    window.nudge.identify('user-e');
    window.__grantLeadership();
  });
  await page.waitForFunction(() => window.nudge.debug().role === 'leader');
  const info = await debugInfo(page);
  const got = info.outbox.map((m) => (m.type === 'page' ? `page:${m.context.page.path}` : `${m.type}:${m.event || ''}`));
  assert.deepEqual(got.filter((g) => !g.startsWith('track:Stage Changed')), ['page:/electing', 'track:Product Viewed', 'identify:'],
    'the first page view, the track and the identify are all in the outbox');
  assert.equal(messages(info, 'track', 'Stage Changed').length, 1);
  assert.equal((await profileOf(page)).userId, 'user-e');
  assert.deepEqual(errors, []);
});


test('await flush() called during the election resolves only once the profile is stored', async () => {
  const { page, errors } = await env.load({}, { settled: false, init: holdLeadership });
  const keys = await page.evaluate(async () => {
    window.nudge.track('Product Viewed', { product_id: 'p1', category: 'TVs' });
    const flushed = window.nudge.flush();
    window.__grantLeadership();
    await flushed;
    return Object.keys(localStorage).filter((k) => k.startsWith('nudge:')).sort();
  });
  assert.ok(keys.some((k) => k.endsWith(':profile')) && keys.some((k) => k.endsWith(':outbox')), `stored when flush() resolved: ${JSON.stringify(keys)}`);
  assert.deepEqual(errors, []);
});
