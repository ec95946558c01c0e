// The npm entry of @nudge/sdk (ESM). Creates no globals; nothing browser-only runs on
// import, so server-side rendering can import it.
//
//   import { createNudge } from '@nudge/sdk';
//   const nudge = createNudge({ writeKey: 'WRITE_KEY' });
//   nudge.track('Product Viewed', { product_id: 'p1', category: 'TVs' });

import init, { Nudge } from 'nudge-glue'; // wasm-bindgen's output, aliased by scripts/build
import { createApi } from './api.js';

/** The SDK version (kept equal to package.json by scripts/build). */
export const VERSION = '0.1.0';

// One instantiation per page, shared by every createNudge(): the glue keeps the Wasm
// instance in module state, so a second concurrent instantiation would replace it.
let loading;
function load(url) {
  loading = loading || init({ module_or_path: url }).then(() => Nudge);
  return loading;
}

/**
 * Makes an SDK instance; with options, also starts it (same as calling `init(options)`).
 * nudge.wasm is found beside this file unless `options.wasmUrl` says otherwise; bundlers
 * (Vite, webpack 5, Rollup) see the `new URL(..., import.meta.url)` and ship the file.
 */
export function createNudge(options) {
  const api = createApi(load, () => new URL('./nudge.wasm', import.meta.url));
  if (options) api.init(options);
  return api;
}
