// A site whose Content-Security-Policy does not allow WebAssembly ('wasm-unsafe-eval'):
// Nudge says so once in the console and otherwise stays out of the page's way.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, waitUntil } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

const CSP = { 'Content-Security-Policy': "script-src 'self' 'unsafe-inline'" };

test('without wasm-unsafe-eval: one console error naming it, no page error, the page and the nudge calls keep working', async () => {
  const { page, errors, consoleMessages } = await env.load(
    {
      after: `
        nudge.track('Queued Before Load');
        document.addEventListener('DOMContentLoaded', function () {
          document.body.setAttribute('data-own-script', 'ran');
        });
      `,
    },
    { wait: false, headers: CSP },
  );
  await page.waitForFunction(() => document.body && document.body.getAttribute('data-own-script') === 'ran');
  // Wait for the SDK to give up: its one error in the console.
  await waitUntil(() => consoleMessages.some((m) => /wasm-unsafe-eval/.test(m.text)), { what: 'a console message naming wasm-unsafe-eval', timeout: 10000 });
  // nudge.min.js was fetched and run (it is 'self'), so the failure is the Wasm compile.
  assert.ok(env.server.requests.some((r) => r.startsWith('/sdk/nudge.min.js')));

  const calls = await page.evaluate(() => {
    const out = {};
    for (const [name, f] of Object.entries({
      track: () => window.nudge.track('Product Viewed', { product_id: 'p', category: 'TVs' }),
      page: () => window.nudge.page(),
      identify: () => window.nudge.identify('u1'),
      consent: () => window.nudge.consent({ analytics: true }),
      profile: () => window.nudge.profile(),
      on: () => window.nudge.on('stage', () => {}),
      flush: () => window.nudge.flush(),
      reset: () => window.nudge.reset(),
      forget: () => window.nudge.forget(),
    })) {
      try {
        const r = f();
        out[name] = r === undefined ? 'undefined' : JSON.stringify(r);
      } catch (e) {
        out[name] = 'threw ' + e;
      }
    }
    return out;
  });
  for (const [name, r] of Object.entries(calls)) assert.doesNotMatch(r, /^threw/, `nudge.${name}() threw: ${r}`);
  assert.equal(calls.profile, 'null', 'profile() is null when Nudge cannot start');

  // Let the rejected `ready` promise (if any) surface as an unhandled rejection, if it would.
  await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
  const errorsInConsole = consoleMessages.filter((m) => m.type === 'error');
  assert.equal(errorsInConsole.length, 1, `exactly one console error, got: ${JSON.stringify(errorsInConsole, null, 1)}`);
  assert.match(errorsInConsole[0].text, /wasm-unsafe-eval/);
  assert.deepEqual(errors, []);
});

test('with wasm-unsafe-eval allowed, the same policy works', async () => {
  const { page, errors, consoleMessages } = await env.load({}, {
    headers: { 'Content-Security-Policy': "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'" },
  });
  assert.ok(await page.evaluate(() => window.nudge.track('Works') !== false));
  assert.deepEqual(consoleMessages.filter((m) => m.type === 'error'), []);
  assert.deepEqual(errors, []);
});
