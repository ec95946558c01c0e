// Tells the SDK when a single-page app changes the URL without loading a page, so that
// automatic page tracking sees each view. The Rust side decides whether the URL really
// changed (it ignores fragment-only and same-URL changes), so this only has to notice.

/** Calls `onChange` after every same-document URL change. */
export function watchNavigation(onChange) {
  const nav = window.navigation;
  if (nav && typeof nav.addEventListener === 'function') {
    // The Navigation API reports pushState, replaceState and back/forward alike, with no
    // need to wrap the page's history methods.
    nav.addEventListener('currententrychange', onChange);
    return;
  }
  // Older browsers: wrap history.pushState/replaceState and listen for back/forward.
  const history = window.history;
  if (!history) return;
  for (const name of ['pushState', 'replaceState']) {
    const original = history[name];
    if (typeof original !== 'function') continue;
    history[name] = function (...args) {
      const result = original.apply(this, args);
      onChange();
      return result;
    };
  }
  window.addEventListener('popstate', onChange);
}
