// Delivery against real nudge-server processes: what the SDK tracks reaches the server's
// storage exactly once, through a server crash, a tab closing at once, two tabs, batching,
// a refused write key, rate limiting and opt-in consent. Each test runs its own
// `nudge-server serve` (fresh SQLite file, one site allowing the test pages' origin) and
// reads what was stored back through the secret-key change feed, by messageId, so a
// message stored twice or never would show.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, sdkPage, watchPage, waitReady, waitUntil, messages, debugInfo, startNudgeServer } from './helpers.mjs';

const env = suite({ before, after });
let ns = null;
afterEach(async () => {
  await env.closeAll();
  await ns?.stop();
  ns = null;
});

// Every test page logs the stage changes the SDK reports: each is also a `Stage Changed`
// message the SDK queues for the server.
const STAGE_LOG = "nudge.on('stage', function (c) { (window.stageLog = window.stageLog || []).push(c); });";

/** A fresh nudge-server whose one site allows the test pages' origin. */
async function serverFor(args) {
  ns = await startNudgeServer({ origins: [env.server.origin], args });
  return ns;
}

/** A batch request's body, or `{unparsed}` when it is not JSON (the server would answer 400). */
function parseBatch(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { unparsed: text, batch: [] };
  }
}

/** The message ids of a batch request's body. */
const idsOf = (body) => body.batch.map((m) => m.messageId);

/** Every batch the page sent is JSON in the Segment shape, with the site's write key. */
function assertWellFormed(batches, writeKey) {
  for (const { body } of batches) {
    assert.equal(body.unparsed, undefined, `a batch body is not JSON: ...${String(body.unparsed).slice(-120)}`);
    assert.ok(Array.isArray(body.batch) && body.batch.length > 0, 'a batch holds messages');
    assert.equal(body.writeKey, writeKey);
  }
}

/**
 * Opens a snippet page (in `context`, or a new one) that sends to `server`, with page
 * scripts `before` and `after` the snippet, and records every batch the page POSTs there.
 * Returns `{page, context, errors, batches, statuses}`: `batches` are `{body, page}`,
 * `statuses` the answers' HTTP statuses.
 */
async function openSdk(server, { writeKey = server.writeKey, options, context, before = '', after = '' } = {}) {
  const url = env.server.page(await sdkPage(env.server, { endpoint: server.url, writeKey, options, before, after: STAGE_LOG + after }));
  let page;
  let watch;
  if (context) {
    page = await context.newPage();
    watch = watchPage(page);
  } else {
    const tab = await env.open();
    ({ context, page } = tab);
    watch = tab;
  }
  const batches = [];
  const statuses = [];
  const ours = (r) => r.method() === 'POST' && r.url() === `${server.url}/v1/batch`;
  page.on('request', (r) => ours(r) && batches.push({ body: parseBatch(r.postData()), page }));
  page.on('response', (r) => ours(r.request()) && statuses.push(r.status()));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await waitReady(page);
  return { page, context, errors: watch.errors, batches, statuses };
}

/** Tracks `count` uniquely numbered product views tagged `tag` in `category`. */
function trackViews(page, tag, count, category) {
  return page.evaluate(({ tag, count, category }) => {
    for (let n = 0; n < count; n++) {
      window.nudge.track('Product Viewed', { product_id: `${tag}-${n}`, category, price: 100 + n, currency: 'USD', tag, n });
    }
  }, { tag, count, category });
}

/** Messages the SDK sent, without those the server derived itself (its `Stage Changed`). */
const fromSdk = (stored) => stored.filter((m) => !String(m.messageId).startsWith('nudge-stage-') && m.context?.library?.name !== 'nudge-server');

/** Tags and numbers of the stored product views tagged `tag`, sorted ("tag-n"). */
const viewsTagged = (stored, tag) => stored.filter((m) => m.type === 'track' && m.event === 'Product Viewed' && m.properties?.tag === tag)
  .map((m) => `${tag}-${m.properties.n}`)
  .sort();

const expectedViews = (tag, count) => Array.from({ length: count }, (_, n) => `${tag}-${n}`).sort();

/**
 * Polls the server's change feed until `ready(stored)` holds; returns what was stored. On a
 * timeout, first checks that the `batches` the page sent were well-formed, which says why.
 */
async function waitStored(server, ready, what, { batches = [], timeout = 10000 } = {}) {
  try {
    return await waitUntil(async () => {
      const stored = await server.stored();
      return ready(stored) ? stored : null;
    }, { what, timeout, interval: 50 });
  } catch (e) {
    assertWellFormed(batches, server.writeKey);
    const stored = await server.stored();
    const count = (stored.length === 0) ? 'nothing' : `${stored.length} messages: ${stored.map((m) => m.event || m.type).join(', ')}`;
    throw new Error(`${e.message}; the server stored ${count}`);
  }
}

/** Asserts that no messageId was stored twice, and returns the stored ids as a set. */
function storedOnce(stored) {
  const ids = stored.map((m) => m.messageId);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  assert.deepEqual(twice, [], 'no message stored twice');
  return new Set(ids);
}

const sorted = (xs) => [...xs].sort();

test('a server killed mid-session and restarted on the same port and database gets every event exactly once', async () => {
  const server = await serverFor();
  const { page, errors, batches } = await openSdk(server);
  const loadPath = new URL(page.url()).pathname;

  // While the server is up: eight views of TVs (awareness, consideration, decision), sent.
  await trackViews(page, 'up', 8, 'TVs');
  await page.evaluate(() => window.nudge.flush());
  await waitStored(server, (s) => viewsTagged(s, 'up').length === 8 && s.some((m) => m.type === 'page'), 'the first events to be stored', { batches });
  // ... and the page has its answer (killing the server between its commit and its answer
  // would make the page send them again: harmless, the server keeps them once, but this
  // test wants a clean start).
  await waitUntil(async () => {
    const info = await debugInfo(page);
    return info.outbox.length === 0 && info.inFlight === 0;
  }, { what: 'the page to take the first answer' });

  // The server dies without a goodbye; the shopper goes on: 30 views of Phones and two
  // single-page-app page views.
  await server.kill();
  await trackViews(page, 'down', 15, 'Phones');
  await page.evaluate(() => history.pushState({}, '', '/phones?page=2'));
  await trackViews(page, 'down2', 15, 'Phones');
  await page.evaluate(() => history.pushState({}, '', '/phones?page=3'));
  await page.evaluate(() => window.nudge.flush());
  const down = await waitUntil(async () => {
    const info = await debugInfo(page);
    return info.failures > 0 && info.inFlight === 0 ? info : null;
  }, { what: 'the sends to the dead server to fail' });
  const waiting = messages(down, 'track', 'Product Viewed').map((m) => `${m.properties.tag}-${m.properties.n}`);
  assert.deepEqual(sorted(waiting), sorted([...expectedViews('down', 15), ...expectedViews('down2', 15)]), 'the 30 views wait in the outbox');
  assert.equal(messages(down, 'page').length, 2, 'the two page views wait in the outbox');
  assert.ok(messages(down, 'track', 'Stage Changed').length >= 1, 'Phones moved stage while the server was down');

  // Every message the page made: what it sent at some point, and what still waits.
  const made = new Set([...batches.flatMap((b) => idsOf(b.body)), ...down.outbox.map((m) => m.messageId)]);

  // Back on the same port and database; flush() retries at once instead of after the backoff.
  await server.restart();
  await page.evaluate(() => window.nudge.flush());
  const stored = await waitStored(server, (s) => fromSdk(s).length >= made.size, 'every event to be stored after the restart', { batches });

  const ids = storedOnce(fromSdk(stored));
  assert.deepEqual(sorted(ids), sorted(made), 'the server stored exactly the messages the page made');
  assert.deepEqual(viewsTagged(stored, 'up'), expectedViews('up', 8));
  assert.deepEqual(sorted([...viewsTagged(stored, 'down'), ...viewsTagged(stored, 'down2')]), sorted([...expectedViews('down', 15), ...expectedViews('down2', 15)]));
  const paths = fromSdk(stored).filter((m) => m.type === 'page').map((m) => m.properties?.path ?? m.context?.page?.path);
  assert.deepEqual(sorted(paths), sorted([loadPath, '/phones', '/phones']), 'the page view on load and the two made while the server was down');
  const stageLog = await page.evaluate(() => window.stageLog || []);
  const stageChanged = fromSdk(stored).filter((m) => m.event === 'Stage Changed').map((m) => `${m.properties.category}:${m.properties.to}`);
  assert.deepEqual(sorted(stageChanged), sorted(stageLog.map((c) => `${c.category}:${c.to}`)), "the SDK's Stage Changed events, one per reported change");

  // The page settles: nothing waits, no failure counted, nothing dropped.
  const info = await waitUntil(async () => {
    const i = await debugInfo(page);
    return i.outbox.length === 0 && i.inFlight === 0 ? i : null;
  }, { what: 'the outbox to empty' });
  assert.equal(info.failures, 0);
  assert.equal(info.dropped, 0);
  assertWellFormed(batches, server.writeKey);
  assert.deepEqual(errors, []);
});

// Closing a tab fires pagehide while the document is still 'visible'; a plain fetch started
// then is cancelled with the document. These page scripts note every request the page starts
// from pagehide on (fetch with its keepalive flag, or sendBeacon) and, after the SDK's own
// pagehide listener has run, report them with a beacon to the test server's /unload-sends.
const WATCH_UNLOAD = `(function () {
  var leaving = false, sends = [], fetch0 = window.fetch, beacon0 = navigator.sendBeacon.bind(navigator);
  window.__unloadSends = sends;
  window.__beacon = beacon0;
  addEventListener('pagehide', function () { leaving = true; }, true);
  window.fetch = function (url, init) {
    if (leaving) sends.push({ via: 'fetch', url: String(url), keepalive: !!(init && init.keepalive) });
    return fetch0.apply(this, arguments);
  };
  navigator.sendBeacon = function (url) {
    if (leaving) sends.push({ via: 'beacon', url: String(url), keepalive: true });
    return beacon0.apply(null, arguments);
  };
})();`;
const REPORT_UNLOAD = `nudge.ready.then(function () {
  addEventListener('pagehide', function () {
    window.__beacon('/unload-sends?' + encodeURIComponent(JSON.stringify(window.__unloadSends)));
  });
});`;

test('events tracked just before the tab closes reach the server (sent as the page hides)', async () => {
  const server = await serverFor();
  const { page, batches } = await openSdk(server, { before: WATCH_UNLOAD, after: REPORT_UNLOAD });
  // Not enough for a batch and not old enough to leave on their own: only closing sends them.
  await trackViews(page, 'closing', 3, 'Cameras');
  await page.close({ runBeforeUnload: true });

  // What the page started while closing: its batch must outlive it (keepalive or a beacon).
  const report = await waitUntil(() => env.server.requests.find((r) => r.startsWith('/unload-sends?')), { what: "the closing page's report" });
  const sends = JSON.parse(decodeURIComponent(report.slice('/unload-sends?'.length))).filter((x) => x.url.startsWith(server.url));
  assert.ok(sends.length > 0, 'the SDK sent as the page was hidden');
  assert.deepEqual(sends.filter((x) => !x.keepalive), [], 'what is sent from pagehide outlives the page (fetch keepalive or sendBeacon)');

  const stored = await waitStored(server, (s) => viewsTagged(s, 'closing').length >= 3 && s.some((m) => m.type === 'page'), 'the events of the closed tab to be stored', { batches });
  assert.deepEqual(viewsTagged(stored, 'closing'), expectedViews('closing', 3));
  storedOnce(fromSdk(stored));
  assertWellFormed(batches, server.writeKey);
});

test('two tabs tracking at once: the leader alone sends, and the server stores every event once', async () => {
  const server = await serverFor();
  const first = await openSdk(server);
  const second = await openSdk(server, { context: first.context });
  const tabs = [first, second];
  const roles = await waitUntil(async () => {
    const r = await Promise.all(tabs.map(async (t) => (await debugInfo(t.page)).leader));
    return r.filter(Boolean).length === 1 ? r : null;
  }, { what: 'exactly one leader among two tabs' });
  const leader = tabs[roles.indexOf(true)];

  // 50 events in each tab, interleaved: both bursts yield to the event loop as they go.
  const burst = async ({ tag, category }) => {
    for (let n = 0; n < 50; n++) {
      window.nudge.track('Product Viewed', { product_id: `${tag}-${n}`, category, tag, n });
      if (n % 5 === 4) await new Promise((r) => setTimeout(r, 0));
    }
  };
  await Promise.all([first.page.evaluate(burst, { tag: 'A', category: 'TVs' }), second.page.evaluate(burst, { tag: 'B', category: 'Phones' })]);
  await Promise.all(tabs.map((t) => t.page.evaluate(() => window.nudge.flush())));

  const batches = [...first.batches, ...second.batches];
  const stored = await waitStored(server, (s) => viewsTagged(s, 'A').length + viewsTagged(s, 'B').length >= 100 && s.filter((m) => m.type === 'page').length >= 2, 'the 100 events of both tabs to be stored', { batches });
  assert.deepEqual(viewsTagged(stored, 'A'), expectedViews('A', 50));
  assert.deepEqual(viewsTagged(stored, 'B'), expectedViews('B', 50));
  assert.equal(stored.filter((m) => m.type === 'page').length, 2, "each tab's page view");
  const ids = storedOnce(fromSdk(stored));

  // Only the leader sent, and no message went out twice (the server's messageId check is
  // the second guard, not the first).
  const leaderOf = (b) => b.page === leader.page;
  assert.ok(batches.length > 0 && batches.every(leaderOf), 'every batch came from the leader tab');
  const sent = batches.flatMap((b) => idsOf(b.body));
  assert.deepEqual(sent.filter((id, i) => sent.indexOf(id) !== i), [], 'no message sent twice');
  assert.deepEqual(sorted(sent), sorted(ids), 'what was sent is what was stored');
  assertWellFormed(batches, server.writeKey);
  for (const t of tabs) assert.deepEqual(t.errors, []);
});

test('45 quick calls leave in batches of at most 20, and every one is stored', async () => {
  const server = await serverFor();
  const { page, batches, statuses } = await openSdk(server);
  await trackViews(page, 'quick', 45, 'Laptops');
  // No flush: full batches leave on their own, the rest after the batch delay.
  const stored = await waitStored(server, (s) => viewsTagged(s, 'quick').length >= 45 && s.some((m) => m.type === 'page'), 'the 45 events to be stored', { batches });
  assert.deepEqual(viewsTagged(stored, 'quick'), expectedViews('quick', 45));
  const ids = storedOnce(fromSdk(stored));

  const sizes = batches.map((b) => b.body.batch.length);
  assert.ok(sizes.every((n) => n >= 1 && n <= 20), `batches of 1 to 20 messages: ${sizes}`);
  assert.ok(batches.length >= 3, `46 messages or more need at least three batches: ${sizes}`);
  for (const b of batches) assert.ok(JSON.stringify(b.body).length <= 64 * 1024, 'a batch fits a keepalive request');
  const sent = batches.flatMap((b) => idsOf(b.body));
  assert.deepEqual(sent.filter((id, i) => sent.indexOf(id) !== i), [], 'no message in two batches');
  assert.deepEqual(sorted(sent), sorted(ids));
  assert.ok(statuses.every((s) => s === 200), `every batch was taken: ${statuses}`);
  assertWellFormed(batches, server.writeKey);
});

test('a refused write key (401) keeps every event in the outbox and waits before trying again', async () => {
  const server = await serverFor();
  const wrong = `wk_${'0'.repeat(32)}`;
  const { page, batches, statuses } = await openSdk(server, { writeKey: wrong });
  await trackViews(page, 'refused', 5, 'TVs');
  await page.evaluate(() => window.nudge.flush());
  const info = await waitUntil(async () => {
    const i = await debugInfo(page);
    return i.failures > 0 && i.inFlight === 0 ? i : null;
  }, { what: 'the refused batch to be answered' });
  assert.ok(statuses.includes(401), `the server refused the key: ${statuses}`);
  assert.equal(messages(info, 'track', 'Product Viewed').length, 5, 'the events are still in the outbox');
  assert.equal(messages(info, 'page').length, 1, 'the page view is still in the outbox');
  assert.equal(info.dropped, 0);
  assert.deepEqual(await server.stored(), [], 'the server stored nothing');

  // A refused key waits the longest backoff: a new event does not start another send
  // (delivery decides synchronously inside the call, so inFlight tells at once).
  const later = await page.evaluate(() => {
    window.nudge.track('Later');
    return window.nudge.debug();
  });
  assert.equal(later.inFlight, 0, 'no send right after a refusal');
  assert.equal(later.outbox.length, info.outbox.length + 1, 'nothing dropped, the new event kept');
  assertWellFormed(batches, wrong);
});

test('a rate-limited server (429 with Retry-After) gets every event once the SDK retries', async () => {
  // One request per second per write key, one at a time.
  const server = await serverFor(['--key-rate', '1', '--key-burst', '1']);
  const { page, batches, statuses } = await openSdk(server);
  await trackViews(page, 'limited', 45, 'Phones');
  // flush() sends all three batches at once: the bucket takes one and refuses the others.
  await page.evaluate(() => window.nudge.flush());
  const stored = await waitStored(server, (s) => viewsTagged(s, 'limited').length >= 45 && s.some((m) => m.type === 'page'), 'the rate-limited events to be stored', { batches, timeout: 20000 });
  assert.ok(statuses.includes(429), `the server rate-limited some batches: ${statuses}`);
  assert.deepEqual(viewsTagged(stored, 'limited'), expectedViews('limited', 45));
  storedOnce(fromSdk(stored));
  const info = await waitUntil(async () => {
    const i = await debugInfo(page);
    return i.outbox.length === 0 && i.inFlight === 0 ? i : null;
  }, { what: 'the outbox to empty' });
  assert.equal(info.failures, 0);
  assertWellFormed(batches, server.writeKey);
});

test('opt-in consent: nothing is sent before analytics is granted; then the held events arrive', async () => {
  const server = await serverFor();
  const { page, batches, errors } = await openSdk(server, { options: { consent: { mode: 'opt-in' } } });
  await trackViews(page, 'held', 3, 'TVs');
  await page.evaluate(() => window.nudge.flush());
  // flush() sends synchronously when it sends at all: no batch in flight and none failed
  // means nothing left the page.
  const info = await debugInfo(page);
  assert.equal(info.inFlight, 0, 'no batch sent before consent');
  assert.equal(info.failures, 0);
  const held = messages(info, 'track', 'Product Viewed');
  assert.equal(held.length, 3, 'the events are held');
  assert.equal(batches.length, 0, 'no request to the server');
  assert.deepEqual(await server.stored(), [], 'the server has nothing');

  await page.evaluate(() => {
    window.nudge.consent({ analytics: true });
    return window.nudge.flush();
  });
  const stored = await waitStored(server, (s) => viewsTagged(s, 'held').length >= 3, 'the held events to arrive after consent', { batches });
  assert.deepEqual(viewsTagged(stored, 'held'), expectedViews('held', 3));
  const ids = storedOnce(fromSdk(stored));
  for (const m of held) assert.ok(ids.has(m.messageId), `held message ${m.messageId} stored under its own messageId`);
  assertWellFormed(batches, server.writeKey);
  assert.deepEqual(errors, []);
});

// The server's profile is what email, SMS and ads follow up on, and its `consent` is the one
// carried by the latest message the SDK sent: a change of consent is itself a message
// (`Consent Preference Updated`), so a shopper who withdraws marketing and then leaves is
// `marketing: false` on the server.
test('a consent change reaches the server: withdrawing marketing shows in the server profile', async () => {
  const server = await serverFor();
  const { page, batches } = await openSdk(server);
  await trackViews(page, 'consent', 1, 'TVs');
  await page.evaluate(() => window.nudge.flush());
  await waitStored(server, (s) => viewsTagged(s, 'consent').length === 1, 'the first event to be stored', { batches });
  const anon = await page.evaluate(() => window.nudge.profile().anonymousId);
  const before = await server.get(`/v1/profiles/anonymous/${anon}`);
  assert.equal(before.body?.consent?.marketing, true, 'marketing allowed by default (opt-out)');

  const info = await page.evaluate(() => {
    window.nudge.consent({ marketing: false });
    window.nudge.flush();
    return window.nudge.debug();
  });
  assert.ok(info.inFlight > 0 || info.outbox.length > 0, 'the consent change is queued for the server');
  await waitUntil(async () => (await server.get(`/v1/profiles/anonymous/${anon}`)).body?.consent?.marketing === false, {
    what: "the server's profile to show marketing withdrawn",
  });
});
