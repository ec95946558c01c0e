// The snippet a site pastes into its pages (minified to dist/snippet.min.js, < 1 KB).
// Replace WRITE_KEY, the endpoint and the script URL with the site's own; keep the
// release's `?v=` on the script URL (scripts/build checks it is package.json's version).
//
// It makes a stub `window.nudge` whose methods queue their calls in `nudge.q`, loads the
// SDK asynchronously, and queues `init`. When nudge.min.js arrives it turns the stub into
// the real SDK and replays the queue, so calls made before then are not lost.
// Plain ES5: it runs as pasted, before any of the site's own build steps.
(function (w, d) {
  var n = (w.nudge = w.nudge || {});
  // Pasted twice, or the SDK is already here: do nothing the second time.
  if (n.q || n.loaded) return;
  n.q = [];
  // `nudge.ready` is a promise from the start; the SDK settles it when it has loaded.
  n.ready = new Promise(function (r) {
    n.r = r;
  });
  var methods = 'init page track identify consent profile on off flush reset forget debug recommend'.split(' ');
  for (var i = 0; i < methods.length; i++) {
    (function (m) {
      n[m] = function () {
        n.q.push([m, Array.prototype.slice.call(arguments)]);
        return null; // profile() and debug() have nothing to show yet
      };
    })(methods[i]);
  }
  var s = d.createElement('script');
  s.async = true;
  s.src = 'https://cdn.nudge.example/nudge.min.js?v=0.1.0';
  (d.head || d.documentElement).appendChild(s);
  // Fetch and compile nudge.wasm (beside the script) now, in parallel with the script,
  // instead of after it: the browser compiles it off the main thread while the bytes
  // arrive, and the SDK is ready a round trip and a compile sooner. A failure is the SDK's
  // to report (it loads the Wasm again itself), never an unhandled rejection in the page.
  // The script's query (a release, `?v=0.1.0`) goes with it, so both come from one release.
  var p = s.src.split('?');
  var u = p[0].replace(/[^\/]*$/, 'nudge.wasm') + (p[1] ? '?' + p[1] : '');
  var a = w.WebAssembly;
  if (w.fetch && a && a.compileStreaming) {
    n.w = [u, a.compileStreaming(fetch(u))];
    n.w[1]['catch'](function () {});
  }
  n.init({ writeKey: 'WRITE_KEY', endpoint: 'https://nudge.example' });
})(window, document);
