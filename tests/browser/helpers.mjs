// Shared pieces of the browser end-to-end suite: a static server for js/dist and the test
// pages, the Chromium launch, and small page helpers. Every test file launches one browser
// and opens a new context (fresh storage, channels and locks) per test.

import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, readdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The JS package under test: js/ of this checkout, or another build of it (NUDGE_JS_DIR).
export const JS_DIR = process.env.NUDGE_JS_DIR ? resolve(process.env.NUDGE_JS_DIR) : join(ROOT, 'js');
export const DIST = join(JS_DIR, 'dist');

// playwright-core and vite are the JS package's pinned devDependencies; the suite uses the
// same copies instead of installing its own.
const jsRequire = createRequire(join(ROOT, 'js/package.json'));

/** The playwright-core module (from js/node_modules). */
export function playwright() {
  try {
    return jsRequire('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is missing: run \`npm ci\` in js/ first (${e.message})`);
  }
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches the machine's Chromium headless. Never downloads a browser. */
export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  return playwright().chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/** Fails early, with the fix, when the JS package has not been built. */
export function requireDist() {
  for (const f of ['nudge.min.js', 'nudge.wasm', 'snippet.min.js', 'index.js']) {
    if (!existsSync(join(DIST, f))) {
      throw new Error(`js/dist/${f} is missing: run scripts/build first`);
    }
  }
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
};

/**
 * Starts a server on 127.0.0.1 (a free port) that serves:
 * - `/sdk/<file>`: js/dist; `?delay=<ms>` holds the response that long (a slow CDN);
 * - any other path from a directory given with `serveDir(dir)` (the npm consumer's build);
 * - pages added with `page(path, html, headers)`;
 * - `POST /v1/batch`: recorded in `batches` and answered 200;
 * - `/favicon.ico`: 204, so no test sees a 404 in the console.
 * Headers given to `sdkHeaders` go on every /sdk/ response (CSP, COOP/COEP pages).
 */
export async function startServer() {
  const pages = new Map();
  const batches = [];
  let staticDir = null;
  const state = { sdkHeaders: {}, requests: [] };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    state.requests.push(url.pathname + url.search);
    try {
      if (req.method === 'POST' && url.pathname.endsWith('/v1/batch')) {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          batches.push(JSON.parse(text));
        } catch {
          batches.push({ unparsed: text });
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"success":true}');
        return;
      }
      // The page server stands in for a Nudge endpoint where a test only needs the page to
      // work (the npm app): an empty site config. Delivery tests run the real nudge-server.
      if (req.method === 'GET' && url.pathname.endsWith('/v1/config')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"thresholds":{},"campaigns":[]}');
        return;
      }
      if (url.pathname === '/favicon.ico') {
        res.writeHead(204);
        res.end();
        return;
      }
      const delay = Number(url.searchParams.get('delay') || 0);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (pages.has(url.pathname)) {
        const { html, headers } = pages.get(url.pathname);
        res.writeHead(200, { 'content-type': TYPES['.html'], 'cache-control': 'no-store', ...headers });
        res.end(html);
        return;
      }
      let file = null;
      let headers = {};
      if (url.pathname.startsWith('/sdk/')) {
        file = safeJoin(DIST, url.pathname.slice('/sdk/'.length));
        headers = state.sdkHeaders;
      } else if (staticDir) {
        file = safeJoin(staticDir, url.pathname.slice(1) || 'index.html');
      }
      if (file) {
        const body = await readFile(file);
        const type = extname(file) === '.wasm' && state.wasmType ? state.wasmType : TYPES[extname(file)];
        res.writeHead(200, {
          'content-type': type || 'application/octet-stream',
          'cache-control': 'no-store',
          ...headers,
        });
        res.end(body);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    } catch {
      if (!res.headersSent) res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  let counter = 0;

  return {
    origin,
    batches,
    requests: state.requests,
    /** Serves `html` at `path` (or a fresh unique path) and returns its full URL. */
    page(html, { path, headers = {} } = {}) {
      const p = path || `/page-${++counter}`;
      pages.set(p, { html, headers });
      return origin + p;
    },
    serveDir(dir) {
      staticDir = dir;
    },
    /** Serves nudge.wasm with this Content-Type (a misconfigured CDN); null restores it. */
    setWasmType(t) {
      state.wasmType = t;
    },
    setSdkHeaders(h) {
      state.sdkHeaders = h;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(r));
    },
  };
}

function safeJoin(dir, rel) {
  const p = resolve(dir, decodeURIComponent(rel));
  if (!p.startsWith(dir + '/')) throw new Error('outside');
  return p;
}

let snippetSource = null;

/**
 * The customer's snippet with its placeholders filled in: the write key, the endpoint and
 * the served URL of nudge.min.js, which keeps the snippet's `?v=` release (`sdkQuery` is
 * added to that query, e.g. `delay=300`).
 * `endpoint` is empty unless given: messages then wait in the outbox, which is what most
 * tests look at; the delivery tests pass a running nudge-server's URL.
 */
export async function snippet(origin, { writeKey = 'test_key', sdkQuery = '', endpoint = '' } = {}) {
  snippetSource ??= await readFile(join(DIST, 'snippet.min.js'), 'utf8');
  for (const placeholder of ['WRITE_KEY', 'https://nudge.example', 'https://cdn.nudge.example/nudge.min.js?v=']) {
    if (!snippetSource.includes(placeholder)) {
      throw new Error(`js/dist/snippet.min.js no longer contains the placeholder ${placeholder}`);
    }
  }
  return snippetSource
    .replace(/https:\/\/cdn\.nudge\.example\/nudge\.min\.js\?v=[\w.-]+/g, (url) =>
      `${origin}/sdk/${url.slice('https://cdn.nudge.example/'.length)}${sdkQuery ? `&${sdkQuery}` : ''}`)
    .replaceAll('https://nudge.example', endpoint)
    .replaceAll('WRITE_KEY', writeKey);
}

/**
 * A store page as a customer writes it: an optional script first (`before`), the snippet,
 * then `after` (calls made before the SDK has loaded), then the body.
 * `options` are extra init options merged into the snippet's own.
 */
export async function sdkPage(
  server,
  { options, before = '', after = '', body = '<h1>Shop</h1>', sdkQuery, writeKey, endpoint } = {},
) {
  const s = await snippet(server.origin, { writeKey, sdkQuery, endpoint });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Nudge test</title>
${before ? `<script>${before}</script>` : ''}
<script>${withOptions(s, options)}</script>
${after ? `<script>${after}</script>` : ''}
</head><body>${body}</body></html>`;
}

/**
 * Adds init options to the snippet the way a customer does: inside the object its
 * `nudge.init({writeKey, endpoint})` call already passes. The options are spliced in right
 * after the endpoint's value (already filled in).
 */
function withOptions(s, options) {
  if (!options || Object.keys(options).length === 0) return s;
  const endpoint = /(endpoint:\s*)(["'])[^"']*\2/;
  if (!endpoint.test(s)) {
    throw new Error('js/dist/snippet.min.js: cannot find `endpoint:"https://nudge.example"` in its init call to add options to');
  }
  const extra = JSON.stringify(options).slice(1, -1);
  return s.replace(endpoint, (m) => `${m},${extra}`);
}

/**
 * A new context and page, with every `pageerror` and console message collected.
 * `init` runs in the page before any of its scripts (Playwright init script).
 */
export async function openPage(browser, { init, contextOptions } = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const watch = watchPage(page);
  if (init) await page.addInitScript(init);
  return { context, page, ...watch };
}

/** Collects the page's uncaught errors and console messages. */
export function watchPage(page) {
  const errors = [];
  const consoleMessages = [];
  page.on('pageerror', (e) => errors.push(String(e && e.stack ? e.stack : e)));
  page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
  return { errors, consoleMessages };
}

/** Waits until `window.nudge` has loaded and said it is ready. */
export async function waitReady(page, timeout = 10000, settled = true) {
  // `ready` exists only on the real SDK (the snippet's stub has none), so polling does not
  // add calls to the stub's queue.
  // It also waits for the tab's leader election to settle: until then a tab's calls wait
  // to be applied by whichever tab wins, and its outbox is empty.
  await page.waitForFunction((settled) => window.nudge && window.nudge.ready && window.nudge.profile() != null && !(settled && window.nudge.debug().electing), settled, { timeout, polling: 10 });
}

export const debugInfo = (page) => page.evaluate(() => window.nudge.debug());
export const profileOf = (page) => page.evaluate(() => window.nudge.profile());

/** Outbox messages of one type (and event name). */
export function messages(info, type, event) {
  return info.outbox.filter((m) => m.type === type && (event === undefined || m.event === event));
}

/** Polls `fn` from node until it returns a truthy value (for conditions spanning pages). */
export async function waitUntil(fn, { timeout = 10000, interval = 20, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** localStorage keys of this origin that belong to Nudge. */
export const nudgeKeys = (page) => page.evaluate(() => {
  const keys = [];
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k.startsWith('nudge:')) keys.push(k);
  }
  return keys.sort();
});

/**
 * Per test file: one browser and one server, started before the first test and closed
 * after the last. `env.open(options)` opens a page in a new context; every context opened
 * during a test is closed by `env.close()`.
 */
export function suite({ before, after }) {
  const env = { browser: null, server: null, contexts: [] };
  before(async () => {
    requireDist();
    env.server = await startServer();
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  env.open = async (options) => {
    const tab = await openPage(env.browser, options);
    env.contexts.push(tab.context);
    return tab;
  };
  /** Serves a snippet page and opens it in a new context; waits for ready unless told not to. */
  env.load = async (pageOptions = {}, { init, wait = true, settled = true, path, headers } = {}) => {
    const url = env.server.page(await sdkPage(env.server, pageOptions), { path, headers });
    const tab = await env.open({ init });
    // The load event waits for async scripts (nudge.min.js); DOMContentLoaded does not.
    await tab.page.goto(url, { waitUntil: 'domcontentloaded' });
    if (wait) await waitReady(tab.page, 10000, settled);
    return { ...tab, url };
  };
  env.closeAll = async () => {
    const cs = env.contexts.splice(0);
    await Promise.all(cs.map((c) => c.close()));
  };
  return env;
}

// The nudge-server binary the delivery tests run (scripts/test builds it first).
export const NUDGE_SERVER_BIN = process.env.NUDGE_SERVER_BIN
  ? resolve(process.env.NUDGE_SERVER_BIN)
  : join(ROOT, 'target/debug/nudge-server');

/**
 * A real `nudge-server serve` process on 127.0.0.1 with its own SQLite file in a fresh
 * temporary directory, and one site whose browser origins are `origins`.
 * Returns `{url, writeKey, secretKey, siteId, port, kill(), restart(), stop(), stored(), log}`:
 * - `kill()` SIGKILLs the process (no graceful shutdown) and waits for it to exit;
 * - `restart()` starts it again on the same port and database;
 * - `stored()` walks the whole change feed (`GET /v1/changes` with the secret key) and
 *   returns every stored message in commit order, so a message stored twice shows twice
 *   (a 429 is waited out as its Retry-After says);
 * - `get(path)` GETs a secret-key route (e.g. `/v1/profiles/anonymous/ID`): `{status, body}`;
 * - `stop()` ends the process and removes the directory.
 * `args` are extra `serve` flags (e.g. rate limits); `name` is the site's name (emails show it).
 */
export async function startNudgeServer({ origins = [], args = [], name = 'T' } = {}) {
  if (!existsSync(NUDGE_SERVER_BIN)) {
    throw new Error(`${NUDGE_SERVER_BIN} is missing: run \`cargo build -p nudge-server\` first (or set NUDGE_SERVER_BIN)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'nudge-server-'));
  const db = join(dir, 'nudge.db');
  const created = await run(NUDGE_SERVER_BIN, ['site', 'create', '--name', name, ...origins.flatMap((o) => ['--origin', o]), '--db', db]);
  const site = JSON.parse(created);
  const log = [];
  let child = null;
  let exited = null;
  let port = 0;

  // Spawns `serve` and resolves once it prints the address it listens on.
  async function start() {
    child = spawn(NUDGE_SERVER_BIN, ['serve', '--db', db, '--listen', `127.0.0.1:${port}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = child;
    exited = new Promise((r) => proc.once('exit', r));
    proc.stderr.on('data', (d) => log.push(String(d)));
    const address = await new Promise((resolveAddr, rejectAddr) => {
      let out = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        rejectAddr(new Error(`nudge-server did not start within 20 s: ${log.join('')}`));
      }, 20000);
      proc.stdout.on('data', (d) => {
        out += d;
        log.push(String(d));
        const m = /listening on http:\/\/([\d.]+):(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolveAddr(m);
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        rejectAddr(new Error(`nudge-server exited (${code ?? signal}) before listening: ${log.join('')}`));
      });
    });
    port = Number(address[2]);
  }

  async function halt(signal) {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  }

  await start();
  const url = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${site.secretKey}` };

  return {
    ...site,
    url,
    port,
    log,
    kill: () => halt('SIGKILL'),
    restart: start,
    async stored() {
      const all = [];
      let cursor = '';
      for (;;) {
        const r = await fetch(`${url}/v1/changes?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: auth });
        if (r.status === 429) {
          // A server started with tight rate limits limits the secret key too: wait as told.
          await r.arrayBuffer();
          await new Promise((w) => setTimeout(w, Number(r.headers.get('retry-after') || 1) * 1000));
          continue;
        }
        if (r.status !== 200) throw new Error(`GET /v1/changes: ${r.status} ${await r.text()}`);
        const page = await r.json();
        all.push(...page.changes.map((c) => c.message));
        if (!page.hasMore || page.changes.length === 0) return all;
        cursor = page.cursor;
      }
    },
    async get(path) {
      const r = await fetch(url + path, { headers: auth });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    async stop() {
      await halt('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a command to completion and returns its stdout (rejects with its stderr). */
function run(cmd, args) {
  return new Promise((resolveRun, rejectRun) => {
    execFile(cmd, args, { timeout: 30000 }, (err, stdout, stderr) => {
      if (err) rejectRun(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolveRun(stdout);
    });
  });
}

/**
 * A swipe with real touch input (CDP): the finger moves from `fromY` to `toY` in `steps`
 * moves `stepMs` apart, so the page scrolls up (and flings on at the finger's speed). The
 * events carry their own timestamps, so the browser sees the intended speed however slowly
 * this machine sends them. Returns once the page has not scrolled for 300 ms; `lastScroll`
 * names the page's global (a dotted path from `window`) holding its last scroll time.
 */
export async function swipe(page, cdp, { fromY, toY, steps, stepMs }, lastScroll) {
  let ts = Date.now() / 1000;
  const touch = (type, y) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: y == null ? [] : [{ x: 180, y }], timestamp: ts });
  await touch('touchStart', fromY);
  for (let i = 1; i <= steps; i++) {
    ts += stepMs / 1000;
    await touch('touchMove', fromY + ((toY - fromY) * i) / steps);
    if (stepMs > 20) await page.waitForTimeout(stepMs); // a slow swipe is slow in real time too
  }
  ts += 0.005;
  await touch('touchEnd');
  await page.waitForFunction(
    (path) => performance.now() - path.split('.').reduce((o, k) => o[k], window) > 300,
    lastScroll,
    { polling: 50 },
  );
}

// ----- campaigns, popups and email: shared by campaigns.test.mjs and story.test.mjs -----

/**
 * A secret-key call to a `startNudgeServer()` server, as a store's back office makes it:
 * `body` goes as JSON (or as is, when a string with `type`). Throws unless the answer is
 * 2xx; returns the parsed answer (or null).
 */
export async function secretCall(server, method, path, body, type = 'application/json') {
  const r = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${server.secretKey}`, ...(body === undefined ? {} : { 'content-type': type }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Replaces the site's campaigns through the secret-key API, as a store's back office would. */
export async function putCampaigns(server, campaigns) {
  await secretCall(server, 'PUT', '/v1/campaigns', campaigns);
}

// Runs before the page's own scripts. Observes, changes nothing the SDK sees:
// - `__nudgeConfig`: set one task after the SDK read the site config's body (the core
//   applies it synchronously when the text arrives), so a test acts only once the
//   campaigns are in force;
// - `__exits`: every time the browser reported the pointer leaving the window through the
//   top, so a test that expects no popup knows the exit really happened;
// - `__lastScroll`: when the page last scrolled (to wait for a touch fling to end).
export const OBSERVE = `(() => {
  const f = window.fetch;
  window.fetch = function (url) {
    const p = f.apply(this, arguments);
    if (String(url).includes('/v1/config')) {
      p.then((r) => {
        const text = r.text;
        r.text = function () {
          return text.call(this).then((t) => {
            setTimeout(() => (window.__nudgeConfig = true), 0);
            return t;
          });
        };
      }, () => {});
    }
    return p;
  };
  window.__exits = 0;
  window.__lastScroll = 0;
  document.addEventListener('mouseout', (e) => {
    if (!e.relatedTarget && e.clientY <= 0) window.__exits++;
  }, true);
  addEventListener('scroll', () => (window.__lastScroll = performance.now()), true);
})();`;

/** A fast exit: the pointer goes up and out through the top of the window in five steps. */
export async function fastExit(page, x = 300) {
  const before = await page.evaluate(() => window.__exits);
  await page.mouse.move(x, 400);
  await page.mouse.move(x, -5, { steps: 5 });
  await page.waitForFunction((n) => window.__exits > n, before);
  // One frame and a task more: anything the exit set off has run by then.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
}

/** The same stable draw as src/decide.rs: FNV-1a over person, 0xff, campaign, then a mix. */
export function draw(person, campaignId) {
  const MASK = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const b of [...Buffer.from(person), 0xff, ...Buffer.from(campaignId)]) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & MASK;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK;
  h ^= h >> 33n;
  return Number(h >> 11n) / 2 ** 53;
}

/** A python3 that has aiosmtpd (the one on PATH, else Debian's), or null. */
export function pythonWithAiosmtpd() {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(candidate, ['-c', 'import aiosmtpd'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort() {
  return new Promise((resolvePort, rejectPort) => {
    const s = createTcpServer();
    s.once('error', rejectPort);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * The SMTP sink the server's tests use (server/tests/smtp/sink.py, aiosmtpd): every message
 * it accepts is saved as received to a file in a fresh directory. `mails()` reads them.
 */
export async function startSink() {
  const python = pythonWithAiosmtpd();
  if (!python) throw new Error('no python3 with aiosmtpd: run scripts/install-tools (apt-get install python3-aiosmtpd)');
  const dir = await mkdtemp(join(tmpdir(), 'nudge-mail-'));
  const port = await freePort();
  const child = spawn(python, [join(ROOT, 'server/tests/smtp/sink.py'), '--port', String(port), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.once('exit', r));
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise((resolveReady, rejectReady) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes(`ready ${port}`)) resolveReady();
    });
    child.once('exit', (code) => rejectReady(new Error(`the SMTP sink exited (${code}): ${err}`)));
  });
  return {
    url: `smtp://127.0.0.1:${port}`,
    async mails() {
      const names = (await readdir(dir)).filter((n) => n.endsWith('.eml')).sort();
      return Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Headers (lower-case names, unfolded) and body of a MIME entity. */
export function mimeEntity(raw) {
  const cut = raw.search(/\r?\n\r?\n/);
  const head = cut < 0 ? raw : raw.slice(0, cut);
  const body = cut < 0 ? '' : raw.slice(cut).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

/** The leaf parts of a message: `{type, text}` with the transfer encoding undone. */
export function mimeParts(raw) {
  const { headers, body } = mimeEntity(raw);
  const type = (headers['content-type'] || 'text/plain').toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(headers['content-type'])[1];
    return body
      .split(`--${boundary}`)
      .slice(1)
      .filter((p) => !p.startsWith('--'))
      .flatMap((p) => mimeParts(p.replace(/^\r?\n/, '')));
  }
  const encoding = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  let text = body;
  if (encoding === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    text = Buffer.from(
      body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
  }
  return [{ type: type.split(';')[0].trim(), text }];
}

// ----- the demo store and a webhook receiver: story.test.mjs -----

/**
 * Generates the demo store (demo-site/generate.mjs) into a fresh temporary directory and
 * returns `{dir, catalog, remove()}` (catalog: the generated catalog.json, parsed).
 */
export async function generateStore() {
  const dir = await mkdtemp(join(tmpdir(), 'nudge-store-'));
  await run(process.execPath, [join(ROOT, 'demo-site/generate.mjs'), '--out', dir]);
  const catalog = JSON.parse(await readFile(join(dir, 'catalog.json'), 'utf8'));
  return { dir, catalog, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Serves a generated store the way scripts/demo does: scripts/demo-server.mjs (store at /,
 * js/dist at /sdk/, /v1/* passed to `nudge`, the site's write key written into the pages),
 * on 127.0.0.1:`port` (0: a free one). Returns `{origin, stop()}`.
 */
export async function startDemoStore({ dir, nudge, port = 0 }) {
  const child = spawn(process.execPath, [join(ROOT, 'scripts/demo-server.mjs')], {
    env: { ...process.env, PORT: String(port), NUDGE_SERVER: nudge.url, NUDGE_WRITE_KEY: nudge.writeKey, DEMO_SITE_DIR: dir, NUDGE_JS_DIR: JS_DIR },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const origin = await new Promise((resolveOrigin, rejectOrigin) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolveOrigin(m[1]);
    });
    child.once('exit', (code) => rejectOrigin(new Error(`scripts/demo-server.mjs exited (${code}): ${err}`)));
  });
  return {
    origin,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** README's check of a webhook delivery's `Nudge-Signature` (HMAC-SHA256 of `t.body`). */
export function verifyNudgeSignature(secret, header, rawBody, toleranceSec = 300) {
  const parts = String(header || '').split(',').map((p) => p.trim().split('='));
  const t = Number((parts.find(([k]) => k === 't') || [])[1]);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSec) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  return parts.some(([k, v]) => {
    const given = k === 'v1' ? Buffer.from(v, 'hex') : Buffer.alloc(0);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/**
 * A webhook receiver as a store's CRM would run it: a node http server on 127.0.0.1 that
 * answers every POST to /nudge with 204 and keeps it in `deliveries` (`{raw, body,
 * signature, key, verified}`; `verified` once `secret` is set: the signature checked as
 * README says). `GET /` shows what arrived as a small HTML table.
 */
export async function startWebhookReceiver() {
  const deliveries = [];
  const state = { secret: null };
  const server = createServer(async (req, res) => {
    if (req.method === 'POST' && req.url === '/nudge') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const raw = Buffer.concat(chunks);
      let body = null;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        // kept unparsed; a test sees body: null
      }
      const signature = req.headers['nudge-signature'];
      deliveries.push({
        raw, body, signature, key: req.headers['nudge-idempotency-key'],
        verified: state.secret ? verifyNudgeSignature(state.secret, signature, raw) : null,
      });
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'GET' && req.url === '/') {
      const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
      const rows = deliveries.map((d) => {
        const m = (d.body && d.body.message) || {};
        const p = m.properties || {};
        const what = m.event === 'Stage Changed' ? `${p.category}: ${p.from ?? 'new'} → ${p.to}`
          : m.event === 'Cart Abandoned' ? `${(p.products || []).map((x) => x.name).join(', ')} (${p.cart_value} ${p.currency ?? ''})` : '';
        return `<tr><td>${esc(d.body && d.body.receivedAt)}</td><td>${esc(m.event)}</td><td>${esc(what)}</td><td>${esc((m.anonymousId || '').slice(0, 8))}…</td><td>${d.verified ? 'valid' : 'INVALID'}</td></tr>`;
      }).join('');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Webhook receiver</title><style>
body{font:15px/1.4 system-ui,sans-serif;margin:2rem;color:#1d2330}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #dde1e8;padding:.4rem .6rem;text-align:left}th{color:#5d6677;font-weight:600}</style></head>
<body><h1>Webhook receiver</h1><p>POST /nudge: ${deliveries.length} deliveries, signatures checked with the webhook's secret.</p>
<table><tr><th>Received</th><th>Event</th><th>What</th><th>Shopper</th><th>Signature</th></tr>${rows}</table></body></html>`);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    url: `${origin}/nudge`,
    deliveries,
    /** The webhook's signing secret (from its registration): later deliveries are verified. */
    setSecret(secret) {
      state.secret = secret;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(r));
    },
  };
}
