// The benches' page server (tests/browser/helpers.mjs `startServer`: the bench pages and
// js/dist under /sdk/) run in a process of its own. In the bench's own process it would
// share one event loop with Playwright, whose messages from the browser then delay its
// answers by milliseconds: a load would time the driver, not the page. A CDN or a store's
// server shares nothing with the browser either.
//
//   const server = await startPageServer();        // NUDGE_JS_DIR is passed on
//   const url = await server.page(html, { path, headers });
//   await server.setSdkHeaders({ ... });
//   await server.close();

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = '--page-server-child';

/** Starts the server process; resolves once it listens on 127.0.0.1. */
export async function startPageServer() {
  const child = fork(fileURLToPath(import.meta.url), [CHILD], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  let next = 0;
  const ask = (op, args) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      child.send({ id, op, args });
    });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.on('message', ({ id, value, error }) => {
    const w = waiting.get(id);
    waiting.delete(id);
    if (w) (error ? w.reject(new Error(error)) : w.resolve(value));
  });
  child.once('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`the page server exited (${code})`));
    waiting.clear();
  });
  const origin = await ask('origin');
  return {
    origin,
    /** Serves `html` at `path` (or a fresh path); resolves to its full URL. */
    page: (html, options = {}) => ask('page', [html, options]),
    /** Extra response headers for the files under /sdk/. */
    setSdkHeaders: (headers) => ask('setSdkHeaders', [headers]),
    async close() {
      child.kill();
      await exited;
    },
  };
}

if (process.argv[2] === CHILD) {
  const { startServer } = await import('../../tests/browser/helpers.mjs');
  const server = await startServer();
  process.on('message', ({ id, op, args = [] }) => {
    try {
      const value = op === 'origin' ? server.origin : server[op](...args);
      process.send({ id, value: value === undefined ? null : value });
    } catch (e) {
      process.send({ id, error: String(e && e.message) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
