// Where the time from script start to 'ready' goes, in fresh loads in headless Chromium
// (see bench/README.md). A copy of js/dist whose nudge.min.js is wrapped in two
// performance.now() marks (first and last statement) is served with the customer's
// snippet; the page marks its first script, the end of the snippet and 'ready'; Resource
// Timing gives when each file was asked for and arrived, Paint Timing the first paint.
// Prints the median of BENCH_LOADS loads (default 15, after one untimed load) for each step. The SDK's own files
// are not changed; the copy lives in a temporary directory. Run scripts/build first.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOADS = Number(process.env.BENCH_LOADS || 15);

const dir = await mkdtemp(join(tmpdir(), 'nudge-startup-'));
const { DIST } = await import('../tests/browser/helpers.mjs');
await cp(DIST, join(dir, 'dist'), { recursive: true });
const script = join(dir, 'dist/nudge.min.js');
const source = await readFile(script, 'utf8');
// A leading `//#` magic comment (a compile hint) must stay the file's first line.
const hint = source.startsWith('//#') ? source.slice(0, source.indexOf('\n') + 1) : '';
await writeFile(script, `${hint}window.__js0=performance.now();${source.slice(hint.length)};window.__js1=performance.now();`);
// helpers.mjs reads NUDGE_JS_DIR when it is imported: import it again with the copy.
process.env.NUDGE_JS_DIR = dir;
const { launchBrowser, snippet } = await import(`../tests/browser/helpers.mjs?copy=${Date.now()}`);
const { startPageServer } = await import('./lib/page-server.mjs');

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

const server = await startPageServer();
const browser = await launchBrowser();
try {
  const s = await snippet(server.origin, { writeKey: 'bench_key' });
  const html = `<!doctype html><html><head><meta charset="utf-8">
<script>window.__s=performance.now()</script>
<script>${s}</script>
<script>window.__snippet=performance.now();nudge.on('ready',function(){window.__ready=performance.now()})</script>
</head><body><h1>Shop</h1></body></html>`;
  const url = await server.page(html, { path: '/bench-startup' });
  const loads = [];
  // One untimed load first, as bench/browser does: the browser's first page starts its
  // first renderer and network context.
  for (let i = -1; i < LOADS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.__ready, null, { timeout: 20000 });
    loads.push(await page.evaluate(() => {
      const res = (file) => performance.getEntriesByType('resource').find((e) => e.name.includes('/' + file));
      const js = res('nudge.min.js');
      const wasm = res('nudge.wasm');
      const paint = performance.getEntriesByType('paint')[0];
      return {
        s: window.__s, snippet: window.__snippet, jsAsked: js.startTime, jsArrived: js.responseEnd,
        wasmArrived: wasm ? wasm.responseEnd : NaN, paint: paint ? paint.startTime : NaN,
        js0: window.__js0, js1: window.__js1, ready: window.__ready,
      };
    }));
    await context.close();
    if (i < 0) loads.pop();
  }
  const step = (what, from, to) => console.log(`${what.padEnd(52)} ${median(loads.map((l) => l[to] - l[from])).toFixed(1).padStart(6)} ms`);
  console.log(`Nudge start-up, ${browser.version()} headless, median of ${LOADS} fresh loads (ms after the page's first script unless said)`);
  step('the snippet runs (script element added, Wasm fetched)', 's', 'snippet');
  step('nudge.min.js asked for', 's', 'jsAsked');
  step('nudge.min.js arrived', 's', 'jsArrived');
  step('nudge.wasm arrived', 's', 'wasmArrived');
  step('first paint', 's', 'paint');
  step('nudge.min.js starts running', 's', 'js0');
  step('  of which waiting after it arrived', 'jsArrived', 'js0');
  step('  evaluating it', 'js0', 'js1');
  step('from its end to ready (Wasm compiled, new Nudge, replay)', 'js1', 'ready');
  step('ready', 's', 'ready');
} finally {
  await browser.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
