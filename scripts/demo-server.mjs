#!/usr/bin/env node
// Serves the demo store on 127.0.0.1: demo-site/dist/ (made by demo-site/generate.mjs) at /,
// the built SDK (js/dist) at /sdk/. Port from $PORT (default 8780; 0 picks a free one).
// Node's standard library only. scripts/demo builds js/dist and generates the store first,
// then runs this; run it alone to skip the builds.
//
// With NUDGE_SERVER=http://127.0.0.1:8700 and NUDGE_WRITE_KEY=wk_..., it also passes /v1/*
// to that nudge-server (so the pages' `endpoint: location.origin` reaches it, same-origin)
// and writes the site's write key into the pages in place of 'demo_write_key'.
// DEMO_SITE_DIR=<dir> serves a store generated elsewhere (`generate.mjs --out <dir>`), and
// NUDGE_JS_DIR=<dir> another build of the JS package (its dist/), as the browser suite does.

import { createServer, request } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SITE = process.env.DEMO_SITE_DIR ? resolve(process.env.DEMO_SITE_DIR) : join(ROOT, 'demo-site', 'dist');
const DIST = join(process.env.NUDGE_JS_DIR ? resolve(process.env.NUDGE_JS_DIR) : join(ROOT, 'js'), 'dist');
const HOST = '127.0.0.1';
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.wasm': 'application/wasm', // WebAssembly.instantiateStreaming needs exactly this
  '.ts': 'text/plain; charset=utf-8',
};

function fail(message) {
  console.error(`demo-server: ${message}`);
  process.exit(1);
}

const port = Number(process.env.PORT ?? 8780);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`PORT must be a port number, got '${process.env.PORT}'`);
if (!existsSync(join(DIST, 'nudge.min.js')) || !existsSync(join(DIST, 'nudge.wasm'))) {
  fail('js/dist has no nudge.min.js or nudge.wasm; run scripts/build first (scripts/demo does both)');
}
if (!existsSync(join(SITE, 'index.html'))) {
  fail(`${SITE} has no index.html; run \`node demo-site/generate.mjs\` first (scripts/demo does)`);
}

// The file under `base` that `rel` names, or null when it would leave `base`.
function inside(base, rel) {
  const file = resolve(base, rel);
  return file.startsWith(base + sep) ? file : null;
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

const NUDGE_SERVER = process.env.NUDGE_SERVER ? new URL(process.env.NUDGE_SERVER) : null;
const WRITE_KEY = process.env.NUDGE_WRITE_KEY || '';

// Passes a /v1/ request to the nudge-server as it came, and its answer back.
function proxy(req, res) {
  const upstream = request(
    { host: NUDGE_SERVER.hostname, port: NUDGE_SERVER.port, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => send(res, 502, 'text/plain', 'the nudge-server does not answer\n'));
  req.pipe(upstream);
}

const server = createServer(async (req, res) => {
  if (NUDGE_SERVER && req.url.startsWith('/v1/')) return proxy(req, res);
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET and HEAD\n');
  let path;
  try {
    path = decodeURIComponent(new URL(req.url, 'http://demo').pathname);
  } catch {
    return send(res, 400, 'text/plain', 'bad URL\n');
  }
  if (path === '/favicon.ico') return send(res, 204, 'text/plain', '');
  const file = path.startsWith('/sdk/')
    ? inside(DIST, path.slice('/sdk/'.length))
    : inside(SITE, path.endsWith('/') ? path.slice(1) + 'index.html' : path.slice(1));
  if (!file) return send(res, 404, 'text/plain', 'not found\n');
  try {
    let body = await readFile(file);
    if (WRITE_KEY && extname(file) === '.html') body = String(body).replaceAll('demo_write_key', WRITE_KEY);
    send(res, 200, TYPES[extname(file)] || 'application/octet-stream', req.method === 'HEAD' ? undefined : body);
  } catch {
    send(res, 404, 'text/plain', 'not found\n');
  }
});

server.on('error', (e) => {
  if (e.code === 'EADDRINUSE') {
    fail(`port ${port} on ${HOST} is busy (is the demo already running?). Stop that, or pick another: PORT=${port + 1} scripts/demo`);
  }
  fail(`cannot listen on ${HOST}:${port}: ${e.message}`);
});

server.listen(port, HOST, () => {
  console.log(`Nudge demo: open http://${HOST}:${server.address().port}/`);
  console.log('(serving demo-site/dist and js/dist at /sdk/; Ctrl-C stops it)');
  if (NUDGE_SERVER) console.log(`(events go to the nudge-server at ${NUDGE_SERVER.origin} through /v1/)`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.closeAllConnections?.();
    server.close(() => process.exit(0));
  });
}
