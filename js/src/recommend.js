// Recommendations in the page: fetches the site's catalogue feed once (the browser's HTTP
// cache keeps it and revalidates it by ETag), hands the core a compact copy to rank, turns
// the core's picks back into products, and fills `data-nudge-slot` elements from their
// `<template>`. Slots are filled with text and attributes only, never HTML; a slot keeps its
// own content when there is nothing to show. Never throws into the page.

// Fields the core ranks by, in the order `Catalog::read` (src/recommend.rs) reads them
// (`inStock` is 1 or 0 in the feed).
const RANKED = ['id', 'name', 'category', 'brand', 'price', 'inStock', 'popularity'];

/**
 * Fills the page's slots once the core runs; returns `recommend(options)`.
 * @param api the object createApi returns; `api._view(what, arg)` reaches the core.
 * @param options the init options: `endpoint` and `writeKey` name the feed.
 * @param log debug logging.
 */
export function connectRecommendations(api, options, log) {
  const feedUrl = String(options.endpoint || '').replace(/\/+$/, '') + '/v1/catalog/feed?writeKey=' +
    encodeURIComponent(options.writeKey || '');
  let rows = null; // the feed's rows, in feed order
  let fields = [];
  let loading = null;

  // The catalogue, fetched once per page; false when there is none (the SDK stays quiet).
  const load = () =>
    (loading ||= fetch(feedUrl, { cache: 'no-cache', credentials: 'omit' })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('catalogue feed answered ' + r.status))))
      .then((feed) => {
        ({ fields, products: rows } = feed);
        const at = RANKED.map((f) => fields.indexOf(f));
        api._view(2, rows.map((row) => at.map((i) => String(row[i] ?? '').replace(/[\x1e\x1f]/g, ' ')).join('\x1f')).join('\x1e'));
        return true;
      })
      .catch((e) => {
        log('no recommendations: the catalogue could not be loaded', e);
        return false;
      }));

  // The core's ranking as products (the feed's fields) with their reason; [] when refused.
  const pick = (request) =>
    (JSON.parse(api._view(3, JSON.stringify(request || {}))) || []).map(([i, reason]) => {
      const p = { reason };
      fields.forEach((f, k) => (p[f] = rows[i][k]));
      return p;
    });

  const SLOT = '[data-nudge-slot]';
  const money = (p) => {
    try {
      return p.currency ? new Intl.NumberFormat(undefined, { style: 'currency', currency: p.currency }).format(p.price) : String(p.price);
    } catch {
      return String(p.price);
    }
  };
  // Only http(s) links and images, resolved against the page (no `javascript:` or `data:`).
  const safe = (v) => {
    try {
      const u = new URL(String(v), location.href);
      return /^https?:$/.test(u.protocol) ? u.href : null;
    } catch {
      return null;
    }
  };

  function fill(slot) {
    slot.dataset.nudgeFilled = '';
    const template = slot.querySelector('template');
    const d = slot.dataset;
    const picks = template ? pick({ strategy: d.nudgeSlot, count: +d.count || 4, productId: d.productId, category: d.category }) : [];
    if (!picks.length) return;
    const items = picks.map((p, i) => {
      const node = template.content.cloneNode(true);
      const first = node.firstElementChild;
      if (first) {
        first.dataset.nudgeProduct = p.id;
        first.dataset.nudgePosition = i + 1;
      }
      for (const el of node.querySelectorAll('[data-bind],[data-bind-src],[data-bind-href]')) {
        const b = el.dataset;
        if (b.bind) el.textContent = b.bind === 'price' ? money(p) : String(p[b.bind] ?? '');
        for (const [attr, key] of [['src', b.bindSrc], ['href', b.bindHref]]) {
          const url = key && safe(p[key]);
          if (url) el.setAttribute(attr, url);
        }
      }
      return node;
    });
    for (const child of [...slot.childNodes]) if (child !== template) child.remove();
    slot.append(...items);
    slot._nudgePicks = picks;
  }

  // Slots on the page now and those a single-page app adds later.
  let scheduled = false;
  const scan = () => {
    scheduled = false;
    const slots = document.querySelectorAll(SLOT + ':not([data-nudge-filled])');
    if (slots.length) load().then((ok) => ok && slots.forEach(fill)).catch((e) => log('a slot could not be filled', e));
  };
  api.ready.then((ok) => {
    if (!ok) return;
    scan();
    new MutationObserver(() => scheduled || ((scheduled = true), setTimeout(scan))).observe(document.documentElement, {
      childList: true,
      subtree: true,
    });
  });

  // `Product Clicked` for a slot's product, with the slot's strategy and the position.
  document.addEventListener('click', (e) => {
    const item = e.target instanceof Element && e.target.closest('[data-nudge-position]');
    const slot = item && item.closest(SLOT);
    const p = slot && slot._nudgePicks && slot._nudgePicks[item.dataset.nudgePosition - 1];
    if (!p) return;
    // Segment's names for the feed's fields (name, category, brand, price, currency, url as they are).
    const { id, image, inStock, popularity, ...rest } = p;
    api.track('Product Clicked', { ...rest, product_id: id, image_url: image, position: +item.dataset.nudgePosition, slot: slot.dataset.nudgeSlot });
  }, true);

  return (request) => load().then((ok) => (ok ? pick(request) : []));
}
