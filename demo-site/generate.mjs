#!/usr/bin/env node
// Builds the demo store into demo-site/dist/ (or `--out DIR`): about 200 products in six
// categories, each with a picture drawn here as SVG, the store's pages as static HTML, and
// catalog.json for `nudge-server` to import. Deterministic: a seeded PRNG and no clock, so
// two runs write the same bytes. No network. Node's standard library only.
//
//   node demo-site/generate.mjs [--out DIR] [--seed N]
//
// The hand-written parts (demo.js, demo.css) are copied in beside the pages; scripts/demo
// runs this before serving the store.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_SEED = 20261124;
const MARKER = '.demo-store';

// mulberry32: a small, well-known 32-bit PRNG; the same seed gives the same sequence.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Per category: its URL slug, id prefix, brands (each with its colour), and a function that
// makes one product's name, price and picture parameters from the PRNG.
export const CATEGORIES = [
  {
    name: 'TVs', slug: 'tvs', prefix: 'tv', count: 34,
    blurb: 'LED, QLED and OLED screens from 43 to 85 inches.',
    brands: { Lumen: '#3a5bd9', Orbit: '#1d2330', Vistara: '#c2185b', Kanto: '#00897b', Polaris: '#6d4c9f' },
    make(r, pick) {
      const size = pick([43, 50, 55, 65, 75, 85]);
      const panel = pick(['LED', 'QLED', 'OLED']);
      const model = pick(['Vista', 'Aura', 'Cinema', 'Pixel', 'Horizon', 'Prime']);
      const base = { LED: 5, QLED: 8, OLED: 14 }[panel];
      return { model: `${model} ${size}" ${panel} 4K`, price: size * base + r() * 200, shape: { size } };
    },
  },
  {
    name: 'Phones', slug: 'phones', prefix: 'ph', count: 34,
    blurb: 'Phones with the storage you need, unlocked.',
    brands: { Pico: '#1f9d74', Nova: '#e65100', Zephyr: '#0277bd', Aster: '#ad1457', Quill: '#455a64' },
    make(r, pick) {
      const storage = pick([128, 256, 512]);
      const model = pick(['8', '9 Pro', 'S', 'Mini', 'Max', 'Lite', 'X']);
      return { model: `${model} ${storage} GB`, price: 249 + storage * 0.9 + r() * 500, shape: { notch: r() < 0.5 } };
    },
  },
  {
    name: 'Laptops', slug: 'laptops', prefix: 'lt', count: 34,
    blurb: 'Light ultrabooks and powerful workstations.',
    brands: { Feather: '#b9662b', Forge: '#37474f', Atlas: '#2e7d32', Slate: '#5c6bc0', Ember: '#d84315' },
    make(r, pick) {
      const size = pick([13, 14, 15, 16]);
      const model = pick(['Air', 'Pro', 'Studio', 'Go', 'Book', 'Flex']);
      const ram = pick([8, 16, 32]);
      return { model: `${model} ${size} (${ram} GB)`, price: 499 + ram * 40 + size * 20 + r() * 700, shape: { size } };
    },
  },
  {
    name: 'Headphones', slug: 'headphones', prefix: 'hp', count: 34,
    blurb: 'Over-ear, in-ear and earbuds, wired and wireless.',
    brands: { Hush: '#a23bb5', Pulse: '#e53935', Echo: '#00838f', Drift: '#6d4c41', Tonal: '#283593' },
    make(r, pick) {
      const kind = pick(['Over-ear', 'On-ear', 'Buds']);
      const model = pick(['ANC', 'Studio', 'Sport', 'Air', 'Bass', 'Quiet']);
      return { model: `${model} ${kind}`, price: (kind === 'Buds' ? 39 : 79) + r() * 320, shape: { kind } };
    },
  },
  {
    name: 'Cameras', slug: 'cameras', prefix: 'cm', count: 34,
    blurb: 'Mirrorless, compact and action cameras.',
    brands: { Aperture: '#212121', Halide: '#f9a825', Prism: '#8e24aa', Frame: '#1565c0', Lynx: '#558b2f' },
    make(r, pick) {
      const kind = pick(['Mirrorless', 'Compact', 'Action']);
      const mp = pick([20, 24, 33, 45, 61]);
      return { model: `${kind} ${mp} MP`, price: { Mirrorless: 899, Compact: 399, Action: 199 }[kind] + mp * 8 + r() * 600, shape: { kind } };
    },
  },
  {
    name: 'Home', slug: 'home', prefix: 'hm', count: 34,
    blurb: 'Smart speakers, lamps, robot vacuums and more.',
    brands: { Hearth: '#ef6c00', Nook: '#00796b', Brisk: '#0288d1', Glow: '#fbc02d', Tidy: '#7b1fa2' },
    make(r, pick) {
      const kind = pick(['Smart speaker', 'Smart lamp', 'Robot vacuum', 'Air purifier']);
      const model = pick(['One', 'Plus', 'Mini', 'Max', 'Home', 'Neo']);
      const base = { 'Smart speaker': 49, 'Smart lamp': 29, 'Robot vacuum': 199, 'Air purifier': 99 }[kind];
      return { model: `${kind} ${model}`, price: base + r() * 300, shape: { kind } };
    },
  },
];

// A price ending in .99 (or .49), never below 9.99.
const shopPrice = (x) => Math.max(9.99, Math.round(x / 10) * 10 - (x % 20 < 10 ? 0.01 : 0.51));

/** The catalogue: products in a fixed order, the same for the same seed. */
export function makeCatalog(seed = DEFAULT_SEED) {
  const r = prng(seed);
  const pick = (list) => list[Math.floor(r() * list.length)];
  const products = [];
  for (const cat of CATEGORIES) {
    const brands = Object.keys(cat.brands);
    const names = new Set();
    for (let i = 1; i <= cat.count; i++) {
      const brand = brands[(i - 1) % brands.length];
      let made;
      do made = cat.make(r, pick); while (names.has(`${brand} ${made.model}`));
      names.add(`${brand} ${made.model}`);
      const id = `${cat.prefix}-${String(i).padStart(3, '0')}`;
      products.push({
        id,
        name: `${brand} ${made.model}`,
        category: cat.name,
        brand,
        price: Number(shopPrice(made.price).toFixed(2)),
        image: `/img/${id}.svg`,
        url: `/p/${id}.html`,
        in_stock: r() > 0.1,
        shape: made.shape,
        rating: Math.round((3.4 + r() * 1.6) * 10) / 10,
      });
    }
  }
  return products;
}

// ---- pictures ---------------------------------------------------------------------------

const brandColour = (p) => CATEGORIES.find((c) => c.name === p.category).brands[p.brand];

// One product's picture: simple shapes per category in its brand's colour (viewBox 160x120).
export function picture(p) {
  const c = brandColour(p);
  const s = p.shape;
  let body;
  switch (p.category) {
    case 'TVs': {
      const w = 70 + (s.size - 43) * 1.6;
      const h = w * 0.56;
      const x = (160 - w) / 2;
      const y = 58 - h / 2;
      body = `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="3" fill="${c}"/>`
        + `<rect x="${x + 4}" y="${y + 4}" width="${w - 8}" height="${h - 8}" rx="1" fill="#fff" opacity=".18"/>`
        + `<path d="M70 ${y + h + 14}h20M80 ${y + h}v14" stroke="${c}" stroke-width="4" stroke-linecap="round"/>`;
      break;
    }
    case 'Phones':
      body = `<rect x="58" y="10" width="44" height="100" rx="9" fill="${c}"/>`
        + `<rect x="62" y="16" width="36" height="86" rx="4" fill="#fff" opacity=".2"/>`
        + (s.notch ? `<rect x="72" y="16" width="16" height="5" rx="2.5" fill="${c}"/>` : `<circle cx="80" cy="20" r="2.5" fill="${c}"/>`);
      break;
    case 'Laptops': {
      const w = 80 + (s.size - 13) * 8;
      const x = (160 - w) / 2;
      body = `<rect x="${x + 8}" y="22" width="${w - 16}" height="56" rx="4" fill="${c}"/>`
        + `<rect x="${x + 13}" y="27" width="${w - 26}" height="46" rx="1" fill="#fff" opacity=".2"/>`
        + `<path d="M${x} 82h${w}l-8 10H${x + 8}z" fill="${c}" opacity=".8"/>`;
      break;
    }
    case 'Headphones':
      body = s.kind === 'Buds'
        ? `<rect x="44" y="70" width="72" height="34" rx="17" fill="${c}" opacity=".35"/>`
          + `<circle cx="64" cy="56" r="14" fill="${c}"/><circle cx="96" cy="56" r="14" fill="${c}"/>`
        : `<path d="M42 78V62a38 38 0 0 1 76 0v16" fill="none" stroke="${c}" stroke-width="7"/>`
          + `<rect x="32" y="68" width="${s.kind === 'On-ear' ? 18 : 22}" height="34" rx="8" fill="${c}"/>`
          + `<rect x="${s.kind === 'On-ear' ? 110 : 106}" y="68" width="${s.kind === 'On-ear' ? 18 : 22}" height="34" rx="8" fill="${c}"/>`;
      break;
    case 'Cameras': {
      const w = s.kind === 'Action' ? 60 : 96;
      const x = (160 - w) / 2;
      body = `<rect x="${x}" y="36" width="${w}" height="${s.kind === 'Action' ? 48 : 58}" rx="8" fill="${c}"/>`
        + (s.kind === 'Mirrorless' ? `<rect x="66" y="26" width="28" height="12" rx="3" fill="${c}"/>` : '')
        + `<circle cx="80" cy="${s.kind === 'Action' ? 60 : 65}" r="${s.kind === 'Action' ? 14 : 20}" fill="#fff" opacity=".85"/>`
        + `<circle cx="80" cy="${s.kind === 'Action' ? 60 : 65}" r="${s.kind === 'Action' ? 8 : 12}" fill="${c}"/>`;
      break;
    }
    default: // Home
      body = {
        'Smart speaker': `<rect x="58" y="24" width="44" height="80" rx="20" fill="${c}"/><circle cx="80" cy="44" r="6" fill="#fff" opacity=".5"/>`,
        'Smart lamp': `<path d="M56 48h48l-10-28H66z" fill="${c}"/><path d="M80 48v48M62 100h36" stroke="${c}" stroke-width="5" stroke-linecap="round"/>`,
        'Robot vacuum': `<ellipse cx="80" cy="76" rx="52" ry="22" fill="${c}"/><ellipse cx="80" cy="70" rx="40" ry="14" fill="#fff" opacity=".25"/>`,
        'Air purifier': `<rect x="54" y="18" width="52" height="88" rx="10" fill="${c}"/><path d="M64 34h32M64 44h32M64 54h32M64 64h32" stroke="#fff" stroke-width="3" opacity=".5"/>`,
      }[s.kind];
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 120" width="160" height="120">`
    + `<rect width="160" height="120" fill="${c}" opacity=".08"/>${body}</svg>\n`;
}

// ---- pages ------------------------------------------------------------------------------

const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]);
// JSON inside <script type="application/json">: no `<` can close the element.
const jsonScript = (data) => JSON.stringify(data).replace(/</g, '\\u003c');
export const money = (n) => `$${n.toFixed(2)}`;

// The snippet as a customer pastes it: js/src/snippet.js itself, with the demo's script URL
// (same origin, keeping the release's `?v=`), write key (scripts/demo-server.mjs writes the
// real one in) and its own origin as the endpoint.
const SNIPPET = `<script>
${(() => {
  const source = readFileSync(new URL('../js/src/snippet.js', import.meta.url), 'utf8');
  const body = source.slice(source.indexOf('(function (w, d) {'));
  const filled = body
    .replace('https://cdn.nudge.example/', '/sdk/')
    .replace("'WRITE_KEY'", "'demo_write_key'")
    .replace("'https://nudge.example'", 'location.origin');
  for (const missing of ['/sdk/nudge.min.js?v=', "'demo_write_key'", 'endpoint: location.origin']) {
    if (!filled.includes(missing)) throw new Error(`js/src/snippet.js changed: cannot fill in ${missing}`);
  }
  return filled.trimEnd();
})()}
</script>`;

// What demo.js needs about a product (the catalogue entry without the picture's parameters).
const pageProduct = ({ shape, rating, ...p }) => p;

function layout({ title, current = '', data, main }) {
  const nav = CATEGORIES.map((c) => `<a href="/c/${c.slug}.html"${current === c.name ? ' aria-current="page"' : ''}>${esc(c.name)}</a>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Nudge demo store</title>
<link rel="stylesheet" href="/demo.css">
${SNIPPET}
<script type="application/json" id="store-data">${jsonScript(data)}</script>
<script src="/demo.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">Nudge demo store</a>
  <nav class="cats" aria-label="Categories">${nav}</nav>
  <nav class="tools"><a href="/account.html"${current === 'account' ? ' aria-current="page"' : ''}>Account</a><a href="/cart.html"${current === 'cart' ? ' aria-current="page"' : ''}>Cart <span id="cart-count"></span></a><button type="button" id="inspector-toggle" aria-controls="inspector" aria-expanded="false">Inspector</button></nav>
</header>
<main class="page">
${main}
</main>
<aside id="inspector" class="inspector" aria-label="Nudge inspector" hidden></aside>
</body>
</html>
`;
}

function card(p, position) {
  return `<article class="card" data-product-id="${esc(p.id)}" data-position="${position}">
  <a href="${esc(p.url)}"><img src="${esc(p.image)}" alt="" width="160" height="120"><h3>${esc(p.name)}</h3></a>
  <p class="meta">${esc(p.brand)} · ${esc(p.category)}</p>
  <p class="price">${money(p.price)}</p>
  ${p.in_stock ? '<button type="button" class="add" data-add>Add to cart</button>' : '<p class="stock out">Out of stock</p>'}
</article>`;
}

// A product slot as issue 6 describes it: the SDK fills it from the template with products
// of the site's catalogue feed (one clone per product); until then, or when Nudge is blocked
// or has nothing to say, the server-rendered products stay.
function slot(name, count, fallback, attrs = '') {
  return `<div class="grid slot" data-nudge-slot="${name}" data-count="${count}"${attrs}>
<template><article class="card"><a data-bind-href="url"><img data-bind-src="image" alt="" width="160" height="120"><h3 data-bind="name"></h3></a><p class="meta" data-bind="brand"></p><p class="price" data-bind="price"></p><p class="why" data-bind="reason"></p></article></template>
${fallback.map((p, i) => card(p, i + 1)).join('\n')}
</div>`;
}

function homePage(products) {
  const picks = CATEGORIES.slice(0, 4).map((c) => products.find((p) => p.category === c.name && p.in_stock));
  const tiles = CATEGORIES.map((c) => {
    const first = products.find((p) => p.category === c.name);
    return `<a class="tile" href="/c/${c.slug}.html"><img src="${esc(first.image)}" alt="" width="160" height="120"><span>${esc(c.name)}</span></a>`;
  }).join('\n');
  return layout({
    title: 'Home',
    data: { page: 'home', products: picks.map(pageProduct) },
    main: `<section class="hero"><h1>Everything electronic, picked for you</h1>
<p class="hint">Browse a category, look at a few products, add one to the cart: open the <strong>Inspector</strong> to watch Nudge follow the journey.</p></section>
<section><h2>For you</h2>
${slot('for-you', 4, picks)}
</section>
<section><h2>Shop by category</h2><div class="tiles">
${tiles}
</div></section>`,
  });
}

function categoryPage(cat, products) {
  const list = products.filter((p) => p.category === cat.name);
  return layout({
    title: cat.name,
    current: cat.name,
    data: { page: 'category', category: cat.name, list_id: cat.slug, products: list.map(pageProduct) },
    main: `<h1>${esc(cat.name)}</h1>
<p class="hint">${esc(cat.blurb)} ${list.length} products.</p>
<div class="grid">
${list.map((p, i) => card(p, i + 1)).join('\n')}
</div>`,
  });
}

// The four other products of the category nearest in price: the `similar` slot's fallback.
function similarTo(p, products) {
  return products
    .filter((q) => q.category === p.category && q.id !== p.id)
    .sort((a, b) => Math.abs(a.price - p.price) - Math.abs(b.price - p.price) || (a.id < b.id ? -1 : 1))
    .slice(0, 4);
}

function productPage(p, products) {
  const cat = CATEGORIES.find((c) => c.name === p.category);
  const similar = similarTo(p, products);
  const stars = '★'.repeat(Math.round(p.rating)) + '☆'.repeat(5 - Math.round(p.rating));
  return layout({
    title: p.name,
    current: p.category,
    data: { page: 'product', product: pageProduct(p), products: [p, ...similar].map(pageProduct) },
    main: `<p class="crumbs"><a href="/">Store</a> › <a href="/c/${cat.slug}.html">${esc(cat.name)}</a></p>
<article class="product" data-product-id="${esc(p.id)}">
  <img src="${esc(p.image)}" alt="${esc(p.name)}" width="320" height="240">
  <div>
    <h1>${esc(p.name)}</h1>
    <p class="meta">${esc(p.brand)} · ${esc(p.category)} · <span aria-label="rated ${p.rating} of 5">${stars}</span> ${p.rating}</p>
    <p class="price big">${money(p.price)}</p>
    ${p.in_stock
    ? `<p class="stock">In stock, ships tomorrow</p>
    <div class="actions"><label>Quantity <input type="number" id="quantity" min="1" max="9" value="1"></label><button type="button" class="primary" data-add>Add to cart</button></div>`
    : '<p class="stock out">Out of stock</p>'}
    <p class="note" id="added" role="status"></p>
  </div>
</article>
<section><h2>Similar products</h2>
${slot('similar', 4, similar, ` data-product-id="${esc(p.id)}"`)}
</section>`,
  });
}

// What the cart page's `complete-the-cart` slot shows until the SDK fills it: the first
// product in stock of the categories that go with most carts.
const extras = (products) => ['Headphones', 'Home', 'Cameras', 'Phones'].map((c) => products.find((p) => p.category === c && p.in_stock));

const cartPage = (products) => layout({
  title: 'Cart', current: 'cart', data: { page: 'cart', products: extras(products).map(pageProduct) },
  main: `<h1>Cart</h1>
<div id="cart"></div>
<section><h2>Complete your cart</h2>
${slot('complete-the-cart', 4, extras(products))}
</section>`,
});

const checkoutPage = () => layout({
  title: 'Checkout', current: 'cart', data: { page: 'checkout' },
  main: `<h1>Checkout</h1>
<div class="checkout">
<form id="checkout" class="box" novalidate>
  <label><span>Email</span><input type="email" name="email" autocomplete="email" placeholder="shopper@example.com"></label>
  <label><span>Name</span><input name="name" autocomplete="name" placeholder="Alex Shopper"></label>
  <label><span>Address</span><input name="address" autocomplete="street-address" placeholder="1 Demo Street"></label>
  <label><span>Coupon</span><span class="row"><input name="coupon" id="coupon" autocomplete="off" placeholder="e.g. CART5"><button type="button" id="apply-coupon">Apply</button></span></label>
  <p class="note" id="coupon-note" role="status"></p>
  <button class="primary" id="place-order">Place order</button>
  <p class="hint">A demo: nothing is charged. <code>CART5</code> takes $5 off; a <code>NUDGE-…</code> code from a popup takes 10%.</p>
</form>
<div id="summary" class="box"></div>
</div>`,
});

const orderPage = () => layout({
  title: 'Order confirmed', current: 'cart', data: { page: 'order' },
  main: `<h1>Thank you!</h1>
<div id="order" class="box"></div>`,
});

const accountPage = () => layout({
  title: 'Account', current: 'account', data: { page: 'account' },
  main: `<h1>Account</h1>
<p class="hint">Sign in (<code>identify</code>), choose what Nudge may do (<code>consent</code>),
  start over as a new shopper (<code>reset</code>) or erase this shopper (<code>forget</code>).</p>
<div id="account"></div>`,
});

/** Every file of the store: path (relative to the output directory) → contents. */
export function makeStore(seed = DEFAULT_SEED) {
  const products = makeCatalog(seed);
  const files = new Map();
  // What `nudge-server catalog load` imports (with the currency, so slots show prices as money).
  const catalog = products.map(({ id, name, category, brand, price, image, url, in_stock }) => ({ id, name, category, brand, price, currency: 'USD', image, url, in_stock }));
  files.set('catalog.json', JSON.stringify(catalog, null, 1) + '\n');
  files.set('index.html', homePage(products));
  for (const cat of CATEGORIES) files.set(`c/${cat.slug}.html`, categoryPage(cat, products));
  for (const p of products) {
    files.set(`p/${p.id}.html`, productPage(p, products));
    files.set(`img/${p.id}.svg`, picture(p));
  }
  files.set('cart.html', cartPage(products));
  files.set('checkout.html', checkoutPage());
  files.set('order.html', orderPage());
  files.set('account.html', accountPage());
  return files;
}

function main() {
  const args = process.argv.slice(2);
  const arg = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
  };
  const out = resolve(arg('--out', join(HERE, 'dist')));
  const seed = Number(arg('--seed', DEFAULT_SEED));
  if (!Number.isInteger(seed)) {
    console.error('generate.mjs: --seed must be an integer');
    process.exit(1);
  }
  const files = makeStore(seed);
  // The output is replaced as a whole, but only an empty directory or an earlier output
  // (with its marker file) is ever removed: a mistyped --out cannot wipe anything else.
  if (existsSync(out) && readdirSync(out).length && !existsSync(join(out, MARKER))) {
    console.error(`generate.mjs: ${out} is not empty and not an earlier demo store; pick another --out`);
    process.exit(1);
  }
  rmSync(out, { recursive: true, force: true });
  for (const [rel, text] of files) {
    mkdirSync(dirname(join(out, rel)), { recursive: true });
    writeFileSync(join(out, rel), text);
  }
  for (const f of ['demo.js', 'demo.css']) copyFileSync(join(HERE, f), join(out, f));
  writeFileSync(join(out, MARKER), 'made by demo-site/generate.mjs; replaced on every run\n');
  const products = [...files.keys()].filter((f) => f.startsWith('p/')).length;
  console.log(`demo store: ${products} products, ${files.size + 2} files in ${out}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
