// Automatic page tracking in a single-page app: the first view, then every history
// pushState, replaceState and popstate; none of it with trackPages: false.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { suite, messages, debugInfo } from './helpers.mjs';

const env = suite({ before, after });
afterEach(() => env.closeAll());

/** pushState to /spa/a, replaceState to /spa/b, then back (popstate) to the start. */
async function navigate(page) {
  await page.evaluate(() => history.pushState({}, '', '/spa/a?x=1'));
  await page.evaluate(() => history.replaceState({}, '', '/spa/b'));
  await page.evaluate(() => new Promise((resolve) => {
    addEventListener('popstate', () => setTimeout(resolve, 0), { once: true });
    history.back();
  }));
}

const pagePaths = (info) => messages(info, 'page').map((m) => m.context && m.context.page && m.context.page.path);

test('the first view, pushState, replaceState and popstate each add a page message with the path', async () => {
  const { page, errors } = await env.load({}, { path: '/spa/start' });
  await navigate(page);
  // Wait for the fourth view (popstate is asynchronous); on a timeout the assertion below
  // shows what did arrive.
  await page.waitForFunction(() => window.nudge.debug().outbox.filter((m) => m.type === 'page').length >= 4, null, { timeout: 5000 }).catch(() => {});
  const info = await debugInfo(page);
  assert.deepEqual(pagePaths(info), ['/spa/start', '/spa/a', '/spa/b', '/spa/start']);
  const pages = messages(info, 'page');
  assert.equal(pages[1].context.page.search, '?x=1');
  assert.equal(pages[1].context.page.url, `${env.server.origin}/spa/a?x=1`);
  // In a single-page app the referrer of a view is the view before it; the first view's
  // is the document's own referrer (none here: the page was opened directly).
  assert.equal(pages[0].context.page.referrer, '');
  assert.equal(pages[1].context.page.referrer, `${env.server.origin}/spa/start`);
  assert.equal(new Set(pages.map((m) => m.messageId)).size, 4, 'each page message has its own messageId');
  assert.deepEqual(errors, []);
});

test('a hash change alone is not a new page view', async () => {
  const { page, errors } = await env.load({}, { path: '/spa/hash' });
  await page.evaluate(() => history.pushState({}, '', '#reviews'));
  await page.evaluate(() => { window.nudge.track('Sentinel'); });
  const info = await debugInfo(page);
  assert.deepEqual(pagePaths(info), ['/spa/hash']);
  assert.deepEqual(errors, []);
});

test('trackPages: false tracks no page, neither on load nor on navigation', async () => {
  const { page, errors } = await env.load({ options: { trackPages: false } }, { path: '/spa/quiet' });
  await navigate(page);
  await page.evaluate(() => { window.nudge.track('Sentinel'); });
  const info = await debugInfo(page);
  assert.equal(messages(info, 'track', 'Sentinel').length, 1);
  assert.deepEqual(pagePaths(info), []);
  assert.deepEqual(errors, []);
});

test('page(name, props) is tracked by hand even with trackPages: false', async () => {
  const { page, errors } = await env.load({ options: { trackPages: false } }, { path: '/spa/manual' });
  const ok = await page.evaluate(() => window.nudge.page('Pricing', { plan: 'pro' }));
  assert.notEqual(ok, false);
  const pages = messages(await debugInfo(page), 'page');
  assert.equal(pages.length, 1);
  assert.equal(pages[0].name, 'Pricing');
  assert.equal(pages[0].properties.plan, 'pro');
  assert.equal(pages[0].context.page.path, '/spa/manual');
  assert.deepEqual(errors, []);
});
