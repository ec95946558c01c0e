// The script-tag install: the snippet queues calls made before nudge.min.js arrives, the
// page never waits for Nudge, and Nudge adds no global but `nudge`.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { suite, messages, debugInfo, profileOf, waitReady } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

test('calls made before nudge.min.js loads are replayed in order, and the page does not wait for it', async () => {
  const { page, errors } = await env.load(
    {
      // The CDN is slow: nudge.min.js arrives 300 ms after it is asked for.
      sdkQuery: 'delay=300',
      after: `
        nudge.on('ready', function () { window.__readyAt = performance.now(); });
        nudge.track('First Thing', { n: 1 });
        nudge.track('Second Thing', { n: 2 });
        nudge.track('Third Thing', { n: 3 });
        nudge.identify('user-42', { email: 'shopper@example.com' });
        document.addEventListener('DOMContentLoaded', function () {
          window.__dcl = { at: performance.now(), profile: nudge.profile() };
        });
      `,
    },
    { wait: false },
  );
  await waitReady(page);
  await page.waitForFunction(() => window.__readyAt !== undefined);

  const { dcl, readyAt } = await page.evaluate(() => ({ dcl: window.__dcl, readyAt: window.__readyAt }));
  assert.ok(dcl, 'DOMContentLoaded fired');
  assert.ok(dcl.profile == null, 'no profile yet while Nudge is still loading');
  assert.ok(dcl.at < readyAt, `DOMContentLoaded (${dcl.at} ms) fired before Nudge was ready (${readyAt} ms)`);

  const info = await debugInfo(page);
  const calls = info.outbox
    .filter((m) => m.type === 'identify' || (m.type === 'track' && m.event !== 'Stage Changed'))
    .map((m) => [m.type, m.event, m.userId ?? null, (m.properties || {}).n]);
  assert.deepEqual(calls, [
    ['track', 'First Thing', null, 1],
    ['track', 'Second Thing', null, 2],
    ['track', 'Third Thing', null, 3],
    ['identify', undefined, 'user-42', undefined],
  ]);
  const identify = messages(info, 'identify')[0];
  assert.equal(identify.traits.email, 'shopper@example.com');
  assert.equal(messages(info, 'page').length, 1, 'one page message for the first page view');

  const profile = await profileOf(page);
  assert.equal(profile.userId, 'user-42');
  assert.equal(profile.traits.email, 'shopper@example.com');
  assert.deepEqual(errors, []);
});

test('nudge.ready resolves to true once the SDK is loaded', async () => {
  const { page, errors } = await env.load({ sdkQuery: 'delay=100' }, { wait: false });
  await page.waitForFunction(() => window.nudge && window.nudge.ready);
  const { ok, profile } = await page.evaluate(async () => ({ ok: await window.nudge.ready, profile: window.nudge.profile() }));
  assert.equal(ok, true);
  assert.ok(profile && typeof profile.anonymousId === 'string' && profile.anonymousId.length > 0);
  assert.deepEqual(errors, []);
});

test('before nudge.min.js arrives, every public method exists on the stub and none throws', async () => {
  // The calls run in the page's own script, while nudge.min.js is still on its way.
  const { page, errors } = await env.load({
    sdkQuery: 'delay=300',
    after: `
      (function () {
        var n = window.nudge, out = {};
        var calls = {
          page: function () { return n.page('Home'); },
          track: function () { return n.track('Early', { a: 1 }); },
          identify: function () { return n.identify('early-user'); },
          consent: function () { return n.consent({ marketing: true }); },
          on: function () { return n.on('stage', function () {}); },
          flush: function () { return n.flush(); },
          profile: function () { return n.profile(); },
          debug: function () { return n.debug(); },
          ready: function () { return typeof n.ready.then; },
        };
        for (var name in calls) {
          try {
            var r = calls[name]();
            out[name] = r === undefined ? 'undefined' : JSON.stringify(r);
          } catch (e) {
            out[name] = 'threw ' + e;
          }
        }
        window.__early = out;
      })();
    `,
  }, { wait: false });
  const early = await page.evaluate(() => window.__early);
  for (const [name, r] of Object.entries(early)) assert.doesNotMatch(r, /^threw/, `nudge.${name}() before load: ${r}`);
  assert.equal(early.profile, 'null', 'profile() is null before ready');
  assert.equal(early.ready, '"function"', 'nudge.ready is a promise from the start');
  await waitReady(page);
  assert.equal(messages(await debugInfo(page), 'track', 'Early').length, 1);
  assert.deepEqual(errors, []);
});

test('the snippet adds no global but nudge', async () => {
  const blankUrl = env.server.page('<!doctype html><html><head><meta charset="utf-8"><title>Nudge test</title></head><body><h1>Shop</h1></body></html>');
  const blank = await env.open();
  await blank.page.goto(blankUrl);
  const blankKeys = await blank.page.evaluate(() => Object.keys(window));
  const blankNames = await blank.page.evaluate(() => Object.getOwnPropertyNames(window));

  const { page, errors } = await env.load({});
  // Let the SDK settle: a call made now is stored after the persist delay.
  await page.evaluate(async () => { window.nudge.track('Settled'); await window.nudge.flush(); });
  const keys = await page.evaluate(() => Object.keys(window));
  const names = await page.evaluate(() => Object.getOwnPropertyNames(window));
  assert.deepEqual(keys.filter((k) => !blankKeys.includes(k)), ['nudge'], 'enumerable globals added');
  assert.deepEqual(names.filter((k) => !blankNames.includes(k)), ['nudge'], 'all own properties of window added');
  assert.deepEqual(errors, []);
  assert.deepEqual(blank.errors, []);
});

test('a page with the snippet loads without errors or console errors', async () => {
  const { page, errors, consoleMessages } = await env.load({});
  await page.evaluate(async () => { await window.nudge.flush(); });
  assert.deepEqual(errors, []);
  assert.deepEqual(consoleMessages.filter((m) => m.type === 'error' || m.type === 'warning'), []);
});

test('nudge.wasm served without application/wasm: the early compile fails quietly and the SDK still starts', async () => {
  env.server.setWasmType('application/octet-stream');
  try {
    const { page, errors, consoleMessages } = await env.load({});
    assert.ok(await page.evaluate(() => window.nudge.track('Works') !== false));
    assert.ok(await page.evaluate(() => window.nudge.profile() !== null), 'the SDK is running');
    assert.deepEqual(errors, []);
    assert.deepEqual(consoleMessages.filter((m) => m.type === 'error'), []);
  } finally {
    env.server.setWasmType(null);
  }
});

test('the snippet fetches nudge.wasm alongside nudge.min.js, and the SDK uses that one fetch', async () => {
  const before = env.server.requests.length;
  const { page, errors } = await env.load({ sdkQuery: 'delay=300' }, { wait: false });
  await waitReady(page);
  const timing = await page.evaluate(() => {
    const entry = (file) => performance.getEntriesByType('resource').find((e) => e.name.includes('/sdk/' + file));
    return { wasmStart: entry('nudge.wasm').startTime, scriptEnd: entry('nudge.min.js').responseEnd };
  });
  assert.ok(
    timing.wasmStart < timing.scriptEnd,
    `nudge.wasm was asked for (${timing.wasmStart} ms) before nudge.min.js arrived (${timing.scriptEnd} ms)`,
  );
  const wasmRequests = env.server.requests.slice(before).filter((r) => r.startsWith('/sdk/nudge.wasm'));
  assert.equal(wasmRequests.length, 1, 'nudge.wasm is downloaded once');
  // With the script's query: the release's ?v= (and here the test server's delay).
  assert.match(wasmRequests[0], /^\/sdk\/nudge\.wasm\?v=\d+\.\d+\.\d+&delay=300$/);
  assert.deepEqual(errors, []);
});

test("the README's snippet is js/src/snippet.js, so what a site pastes is what is tested", async () => {
  const source = await readFile(new URL('../../js/src/snippet.js', import.meta.url), 'utf8');
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const iife = source.slice(source.indexOf('(function (w, d) {')).trimEnd();
  assert.ok(readme.includes(`<script>\n${iife}\n</script>`), 'README.md shows js/src/snippet.js as it is');
  const { version } = JSON.parse(await readFile(new URL('../../js/package.json', import.meta.url), 'utf8'));
  assert.ok(iife.includes(`nudge.min.js?v=${version}'`), `the script URL carries ?v=${version}`);
});
