// The script-tag build (dist/nudge.min.js, an IIFE), loaded by the snippet. It turns the
// snippet's stub `window.nudge` into the real SDK in place, so references the page already
// holds stay valid, then replays the calls the stub queued. Creates no other global.

import init, { initSync, Nudge } from 'nudge-glue'; // wasm-bindgen's output, aliased by scripts/build
import { createApi } from './api.js';

// Where this script came from, read now: document.currentScript is null once it has run.
const scriptSrc = document.currentScript && document.currentScript.src;

// nudge.wasm beside this script (so a CDN serves both from one folder), with the script's
// query: `nudge.min.js?v=0.1.0` loads `nudge.wasm?v=0.1.0`, the same release.
function wasmUrl() {
  const url = new URL('nudge.wasm', scriptSrc || document.baseURI);
  if (scriptSrc) url.search = new URL(scriptSrc).search;
  return url;
}

function install() {
  const stub = window.nudge || (window.nudge = {});
  if (stub.loaded) return; // this script ran already
  // The snippet's early compile of nudge.wasm (a promise of a WebAssembly.Module), used
  // when init loads from the same URL. If it failed (a server that does not send
  // application/wasm, say), the SDK loads the URL itself and reports what goes wrong.
  const prefetched = Array.isArray(stub.w) ? stub.w : [];
  delete stub.w;
  // A compiled module is instantiated at once (no extra task before `new Nudge`).
  const load = async (url) => {
    let source = url;
    if (String(url) === prefetched[0]) source = await Promise.resolve(prefetched[1]).catch(() => url);
    if (source instanceof WebAssembly.Module) initSync({ module: source });
    else await init({ module_or_path: source });
    return Nudge;
  };
  const api = createApi(load, wasmUrl);
  const queued = Array.isArray(stub.q) ? stub.q : [];
  const settleEarlyReady = stub.r;
  delete stub.r;
  // Real methods replace the stub's; stub methods the SDK lacks (not built yet, such as
  // recommend) become no-ops instead of queueing forever.
  for (const key of Object.keys(stub)) {
    if (typeof stub[key] === 'function' && !(key in api)) stub[key] = () => undefined;
  }
  Object.assign(stub, api);
  stub.loaded = true;
  delete stub.q;
  // Pages that took `nudge.ready` from the stub get the real outcome through it.
  if (typeof settleEarlyReady === 'function') settleEarlyReady(api.ready);
  for (const call of queued) {
    const method = call && api[call[0]];
    if (typeof method === 'function') method(...(Array.isArray(call[1]) ? call[1] : []));
  }
}

try {
  install();
} catch (e) {
  // Never break the page: a malformed stub is the only way here.
  console.error('[nudge] could not start:', e);
}
