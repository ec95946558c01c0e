// An npm consumer: `npm pack` the JS package, install the tarball into a copy of
// fixtures/npm-app, bundle it with Vite 8, serve the build and use the SDK in Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, JS_DIR, launchBrowser, requireDist, startServer, watchPage } from './helpers.mjs';

const run = promisify(execFile);
let browser;
let server;
let work;

before(async () => {
  requireDist();
  work = await mkdtemp(join(tmpdir(), 'nudge-npm-app-'));
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function sh(cmd, args, cwd) {
  try {
    return (await run(cmd, args, { cwd, env: { ...process.env, npm_config_update_notifier: 'false' }, maxBuffer: 16 << 20 })).stdout;
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${e.stdout}\n${e.stderr}`);
  }
}

test('a Vite 8 app that installs the packed @nudge/sdk tracks and reads the profile', async () => {
  // The package as it would be published.
  const packed = JSON.parse(await sh('npm', ['pack', '--json', '--pack-destination', work], JS_DIR));
  const files = packed[0].files.map((f) => f.path);
  for (const f of ['dist/index.js', 'dist/nudge.wasm', 'dist/index.d.ts', 'package.json']) {
    assert.ok(files.includes(f), `the tarball holds ${f} (has ${files.join(', ')})`);
  }
  const tarball = join(work, packed[0].filename);

  const app = join(work, 'app');
  await cp(join(ROOT, 'tests/browser/fixtures/npm-app'), app, { recursive: true });
  await sh('npm', ['install', '--no-audit', '--no-fund', '--offline', '--no-package-lock', tarball], app);
  const vite = join(ROOT, 'js/node_modules/.bin/vite');
  assert.match(await sh(vite, ['--version'], app), /vite\/8\./);
  await sh(vite, ['build', '--logLevel', 'warn'], app);

  const assets = await readdir(join(app, 'dist/assets'));
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `Vite shipped the .wasm (assets: ${assets.join(', ')})`);

  server = await startServer();
  server.serveDir(join(app, 'dist'));
  browser = await launchBrowser();
  const context = await browser.newContext();
  const page = await context.newPage();
  const { errors, consoleMessages } = watchPage(page);
  await page.goto(server.origin + '/');
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'loading', null, { timeout: 10000 });
  assert.equal(await page.textContent('#status'), 'ready');
  assert.ok(server.requests.some((r) => r.startsWith('/assets/') && r.includes('.wasm')), 'the Wasm came from the app\'s own assets');

  const result = await page.evaluate(() => {
    const { nudge } = window.app;
    const accepted = [1, 2, 3].map((i) => nudge.track('Product Viewed', { product_id: `tv-${i}`, category: 'TVs', brand: 'Acme', price: 499, currency: 'USD' }));
    return { accepted, profile: nudge.profile(), debug: nudge.debug() };
  });
  assert.deepEqual(result.accepted, [true, true, true]);
  assert.equal(result.profile.stages.TVs, 'consideration');
  assert.equal(result.profile.stage, 'consideration');
  assert.equal(result.debug.storage, 'localStorage');
  assert.equal(result.debug.outbox.filter((m) => m.type === 'page').length, 1);
  assert.equal(result.debug.outbox.filter((m) => m.event === 'Product Viewed').length, 3);
  assert.equal(result.debug.outbox[0].context.library.name, '@nudge/sdk');

  // The npm build adds no global (the app's own `app` aside).
  const extra = await page.evaluate(() => Object.keys(window).filter((k) => k !== 'app'));
  // Compared with a page of the same origin: about:blank lacks the secure-context globals
  // (caches, cookieStore, ...) that an http://127.0.0.1 page has.
  const blank = await context.newPage();
  await blank.goto(server.page('<!doctype html><title>blank</title>'));
  const blankKeys = await blank.evaluate(() => Object.keys(window));
  assert.deepEqual(extra.filter((k) => !blankKeys.includes(k)), []);

  assert.deepEqual(consoleMessages.filter((m) => m.type === 'error'), []);
  assert.deepEqual(errors, []);
});
