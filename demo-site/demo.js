// The demo store's own script. It reaches Nudge only through `window.nudge`, the object the
// snippet made, as a customer's site would, and tracks the Segment e-commerce v2 events with
// that spec's properties. The store keeps its own cart (localStorage), so it works the same
// when Nudge is blocked. Each page says what it shows in <script id="store-data"> (written by
// generate.mjs). Text enters the page through textContent only.
(() => {
  'use strict';
  const nudge = window.nudge;
  const CURRENCY = 'USD';
  const DATA = JSON.parse(document.getElementById('store-data').textContent);
  const CART_KEY = 'nudge-demo:cart';
  const CHECKOUT_KEY = 'nudge-demo:checkout';
  const ORDER_KEY = 'nudge-demo:order';
  const INSPECTOR_KEY = 'nudge-demo:inspector';
  const SEEN_KEY = 'nudge-demo:seen';

  // el('p', {class: 'x'}, 'text') or el('div', {}, [nodes]); attributes named on* are listeners.
  function el(tag, attrs = {}, content = []) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    if (typeof content === 'string') e.textContent = content;
    else e.append(...content);
    return e;
  }
  const money = (n) => `$${Number(n).toFixed(2)}`;
  const round2 = (n) => Math.round(n * 100) / 100;
  const newId = (prefix) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const store = (area, key, value) => {
    try {
      if (value === undefined) return JSON.parse(area.getItem(key) || 'null');
      if (value === null) area.removeItem(key);
      else area.setItem(key, JSON.stringify(value));
    } catch {
      return null;
    }
    return value;
  };

  // A call on the stub before the SDK loaded returns null and is queued; the SDK returns false
  // when it rejects a call (the reason goes to on('error')).
  const track = (event, properties) => nudge.track(event, properties);

  // ---- products and the store's cart ------------------------------------------------------

  const byId = new Map((DATA.products || []).map((p) => [p.id, p]));
  // Segment e-commerce v2 product properties.
  const productProps = (p) => ({
    product_id: p.id,
    sku: p.id,
    name: p.name,
    brand: p.brand,
    category: p.category,
    price: p.price,
    currency: CURRENCY,
    url: new URL(p.url, location.origin).href,
    image_url: new URL(p.image, location.origin).href,
  });
  const line = (l) => ({ product_id: l.product_id, sku: l.sku, name: l.name, brand: l.brand, category: l.category, price: l.price, quantity: l.quantity, url: l.url, image_url: l.image_url });

  const cart = {
    get() {
      const c = store(localStorage, CART_KEY);
      return c && Array.isArray(c.items) ? c : { id: newId('cart'), items: [] };
    },
    save(c) {
      store(localStorage, CART_KEY, c);
      showCount();
    },
    value: (c) => round2(c.items.reduce((n, l) => n + l.price * l.quantity, 0)),
    add(p, quantity, position) {
      const c = cart.get();
      const props = productProps(p);
      const found = c.items.find((l) => l.product_id === p.id);
      if (found) found.quantity = Math.min(99, found.quantity + quantity);
      else c.items.push({ ...props, quantity });
      cart.save(c);
      track('Product Added', { cart_id: c.id, ...props, quantity, ...(position ? { position } : {}) });
    },
    remove(productId, quantity) {
      const c = cart.get();
      const found = c.items.find((l) => l.product_id === productId);
      if (!found) return;
      const n = Math.min(quantity ?? found.quantity, found.quantity);
      found.quantity -= n;
      if (found.quantity <= 0) c.items = c.items.filter((l) => l !== found);
      cart.save(c);
      const { quantity: _, ...props } = found;
      track('Product Removed', { cart_id: c.id, ...props, quantity: n });
    },
  };

  function showCount() {
    const n = cart.get().items.reduce((s, l) => s + l.quantity, 0);
    document.getElementById('cart-count').textContent = n ? `(${n})` : '';
  }

  // ---- pages ------------------------------------------------------------------------------

  // The cart page redraws its lines when a slot's product is added there.
  let redrawCart = () => {};
  // "Add to cart" on any product card (category lists, slots' fallback products).
  document.addEventListener('click', (e) => {
    const button = e.target.closest('.card [data-add]');
    if (!button) return;
    const card = button.closest('.card');
    const p = byId.get(card.dataset.productId);
    if (!p) return;
    cart.add(p, 1, Number(card.dataset.position) || undefined);
    button.textContent = 'Added ✓';
    redrawCart();
  });

  const pages = {
    category() {
      track('Product List Viewed', {
        list_id: DATA.list_id,
        category: DATA.category,
        products: DATA.products.map((p, i) => ({ ...productProps(p), position: i + 1 })),
      });
    },

    product() {
      const p = DATA.product;
      track('Product Viewed', productProps(p));
      const add = document.querySelector('.product [data-add]');
      if (!add) return;
      const quantity = document.getElementById('quantity');
      const note = document.getElementById('added');
      add.addEventListener('click', () => {
        const n = Math.max(1, Math.min(9, Math.round(Number(quantity.value) || 1)));
        cart.add(p, n);
        note.textContent = `Added ${n} to the cart.`;
      });
    },

    cart() {
      const root = document.getElementById('cart');
      const render = () => {
        const c = cart.get();
        if (!c.items.length) {
          root.replaceChildren(el('p', { class: 'hint' }, 'The cart is empty.'), el('a', { href: '/' }, 'Continue shopping'));
          return;
        }
        const rows = c.items.map((l) => el('li', { 'data-product-id': l.product_id }, [
          el('img', { src: new URL(l.image_url).pathname, alt: '', width: '64', height: '48' }),
          el('a', { href: new URL(l.url).pathname }, l.name),
          el('span', { class: 'qty' }, [
            el('button', { type: 'button', 'aria-label': `One less ${l.name}`, onclick: () => { cart.remove(l.product_id, 1); render(); } }, '−'),
            el('span', {}, String(l.quantity)),
            el('button', { type: 'button', 'aria-label': `One more ${l.name}`, onclick: () => { cart.add(byId.get(l.product_id) || fromLine(l), 1); render(); } }, '+'),
          ]),
          el('span', { class: 'amount' }, money(l.price * l.quantity)),
          el('button', { type: 'button', class: 'link', onclick: () => { cart.remove(l.product_id); render(); } }, 'Remove'),
        ]));
        root.replaceChildren(
          el('ul', { class: 'lines' }, rows),
          el('p', { class: 'total' }, `Total: ${money(cart.value(c))}`),
          el('a', { class: 'button primary', href: '/checkout.html', id: 'to-checkout' }, 'Checkout'),
        );
      };
      // A line back into a product, for "+" on a line whose product this page does not list.
      const fromLine = (l) => ({ id: l.product_id, name: l.name, brand: l.brand, category: l.category, price: l.price, url: new URL(l.url).pathname, image: new URL(l.image_url).pathname });
      render();
      redrawCart = render;
      const c = cart.get();
      track('Cart Viewed', { cart_id: c.id, products: c.items.map(line) });
    },

    checkout() {
      const c = cart.get();
      const form = document.getElementById('checkout');
      const summary = document.getElementById('summary');
      if (!c.items.length) {
        form.replaceChildren(el('p', {}, 'The cart is empty: nothing to check out.'), el('a', { href: '/' }, 'Continue shopping'));
        summary.remove();
        return;
      }
      // One checkout per cart: its ids survive a reload of this page.
      let checkout = store(sessionStorage, CHECKOUT_KEY);
      if (!checkout || checkout.cart_id !== c.id) {
        checkout = store(sessionStorage, CHECKOUT_KEY, { cart_id: c.id, checkout_id: newId('co'), order_id: newId('order'), coupon: null });
      }
      const discountOf = (code, subtotal) => {
        if (!code) return 0;
        if (code === 'CART5') return Math.min(5, subtotal);
        if (/^NUDGE-[A-Z0-9]{4}-[A-Z0-9]{4}$/.test(code)) return round2(subtotal * 0.1);
        return null; // not a code this store knows
      };
      const totals = () => {
        const subtotal = cart.value(c);
        const discount = discountOf(checkout.coupon, subtotal) || 0;
        return { subtotal, discount, revenue: round2(subtotal - discount) };
      };
      const renderSummary = () => {
        const t = totals();
        summary.replaceChildren(
          el('h2', {}, 'Your order'),
          el('ul', { class: 'plain' }, c.items.map((l) => el('li', {}, `${l.quantity} × ${l.name}: ${money(l.price * l.quantity)}`))),
          el('p', {}, `Subtotal: ${money(t.subtotal)}`),
          ...(t.discount ? [el('p', {}, `Coupon ${checkout.coupon}: −${money(t.discount)}`)] : []),
          el('p', { class: 'total' }, `Total: ${money(t.revenue)}`),
        );
      };
      renderSummary();
      track('Checkout Started', {
        checkout_id: checkout.checkout_id,
        order_id: checkout.order_id,
        value: cart.value(c),
        revenue: totals().revenue,
        currency: CURRENCY,
        products: c.items.map(line),
        ...(checkout.coupon ? { coupon: checkout.coupon } : {}),
      });

      const input = document.getElementById('coupon');
      const note = document.getElementById('coupon-note');
      input.value = checkout.coupon || '';
      const apply = () => {
        const code = input.value.trim().toUpperCase();
        if (!code) {
          checkout.coupon = null;
          note.textContent = '';
        } else {
          track('Coupon Entered', { checkout_id: checkout.checkout_id, order_id: checkout.order_id, cart_id: c.id, coupon_id: code });
          if (discountOf(code, cart.value(c)) === null) {
            checkout.coupon = null;
            note.textContent = `${code} is not a code this store knows.`;
            track('Coupon Denied', { checkout_id: checkout.checkout_id, order_id: checkout.order_id, cart_id: c.id, coupon_id: code, reason: 'unknown code' });
          } else {
            checkout.coupon = code;
            note.textContent = `Coupon ${code} applied.`;
            track('Coupon Applied', { checkout_id: checkout.checkout_id, order_id: checkout.order_id, cart_id: c.id, coupon_id: code, discount: totals().discount });
          }
        }
        store(sessionStorage, CHECKOUT_KEY, checkout);
        renderSummary();
      };
      document.getElementById('apply-coupon').addEventListener('click', apply);
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          apply();
        }
      });
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (input.value.trim().toUpperCase() !== (checkout.coupon || '')) apply();
        const t = totals();
        // The order is tracked on the confirmation page, which the SDK surely reaches loaded.
        store(sessionStorage, ORDER_KEY, {
          order_id: checkout.order_id,
          checkout_id: checkout.checkout_id,
          products: c.items.map(line),
          subtotal: t.subtotal,
          discount: t.discount,
          revenue: t.revenue,
          coupon: checkout.coupon,
          email: form.elements.email.value.trim(),
          tracked: false,
        });
        store(localStorage, CART_KEY, null);
        store(sessionStorage, CHECKOUT_KEY, null);
        location.assign('/order.html');
      });
    },

    order() {
      const root = document.getElementById('order');
      const order = store(sessionStorage, ORDER_KEY);
      if (!order) {
        root.replaceChildren(el('p', {}, 'No order here yet.'), el('a', { href: '/' }, 'Continue shopping'));
        return;
      }
      if (!order.tracked) {
        // Once per order, even if this page is reloaded.
        track('Order Completed', {
          order_id: order.order_id,
          checkout_id: order.checkout_id,
          total: order.revenue,
          revenue: order.revenue,
          shipping: 0,
          tax: 0,
          discount: order.discount,
          currency: CURRENCY,
          products: order.products,
          ...(order.coupon ? { coupon: order.coupon } : {}),
        });
        order.tracked = true;
        store(sessionStorage, ORDER_KEY, order);
      }
      root.replaceChildren(
        el('p', {}, `Order ${order.order_id} is confirmed${order.email ? `; a receipt goes to ${order.email}` : ''}.`),
        el('ul', { class: 'plain' }, order.products.map((l) => el('li', {}, `${l.quantity} × ${l.name}: ${money(l.price * l.quantity)}`))),
        ...(order.discount ? [el('p', {}, `Coupon ${order.coupon}: −${money(order.discount)}`)] : []),
        el('p', { class: 'total', id: 'order-total' }, `Paid: ${money(order.revenue)}`),
        el('a', { href: '/' }, 'Continue shopping'),
      );
    },

    account() {
      const root = document.getElementById('account');
      const userId = el('input', { name: 'userId', required: '', placeholder: 'user-42', autocomplete: 'off' });
      const email = el('input', { name: 'email', type: 'email', placeholder: 'shopper@example.com' });
      const note = el('p', { class: 'note', role: 'status' });
      const said = (result, text) => (note.textContent = result === false ? 'Not accepted' : text);
      const signIn = el('form', {
        class: 'box',
        onsubmit: (e) => {
          e.preventDefault();
          const traits = email.value ? { email: email.value } : {};
          said(nudge.identify(userId.value.trim(), traits), `Signed in as ${userId.value.trim()}`);
        },
      }, [
        el('h2', {}, 'Sign in'),
        el('label', {}, [el('span', {}, 'User id'), userId]),
        el('label', {}, [el('span', {}, 'Email'), email]),
        el('button', { class: 'primary' }, 'Identify'),
      ]);
      const boxes = {};
      const purposes = { analytics: 'store the profile, queue events', personalization: 'adapt the page', marketing: 'follow up by email, SMS, ads' };
      const consent = el('div', { class: 'box' }, [el('h2', {}, 'Consent')]);
      for (const [purpose, what] of Object.entries(purposes)) {
        boxes[purpose] = el('input', {
          type: 'checkbox',
          onchange: () => nudge.consent({
            analytics: boxes.analytics.checked, personalization: boxes.personalization.checked, marketing: boxes.marketing.checked,
          }),
        });
        consent.append(el('label', { class: 'check' }, [boxes[purpose], el('span', {}, `${purpose}: ${what}`)]));
      }
      const reset = el('button', { type: 'button', onclick: () => said(nudge.reset(), 'Reset: you are a new anonymous shopper') }, 'Reset (log out)');
      const forget = el('button', { type: 'button', class: 'danger', onclick: () => said(nudge.forget(), 'Forgotten: local data wiped') }, 'Forget me');
      root.append(signIn, consent, el('div', { class: 'box' }, [el('h2', {}, 'Start over'), el('div', { class: 'actions' }, [reset, forget])]), note);
      views.push((profile) => {
        for (const purpose of Object.keys(boxes)) boxes[purpose].checked = profile.consent[purpose];
      });
    },
  };

  // Each view is (profile) => void, redrawn on every change.
  const views = [];

  // ---- the inspector ----------------------------------------------------------------------

  function inspector(root, toggle) {
    const status = el('p', { class: 'status' }, 'Loading Nudge…');
    const body = el('div');
    const log = el('ol', { class: 'log' });
    root.append(
      el('div', { class: 'inspector-head' }, [
        el('h2', {}, 'Nudge inspector'),
        el('button', { type: 'button', 'aria-label': 'Close the inspector', onclick: () => setOpen(false) }, '×'),
      ]),
      status,
      body,
      el('h3', {}, 'Stage changes (this page)'),
      log,
    );
    let last = null;
    function setOpen(open) {
      root.hidden = !open;
      document.body.classList.toggle('inspecting', open);
      toggle.setAttribute('aria-expanded', String(open));
      store(sessionStorage, INSPECTOR_KEY, open);
      if (open) render(last);
    }
    toggle.addEventListener('click', () => setOpen(root.hidden));
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !root.hidden) {
        setOpen(false);
        toggle.focus();
      }
    });

    const section = (title, rows, attrs = {}) => el('section', attrs, [
      el('h3', {}, title),
      rows.length
        ? el('dl', {}, rows.flatMap(([k, v, extra]) => [el('dt', {}, k), el('dd', extra || {}, String(v))]))
        : el('p', { class: 'hint' }, '–'),
    ]);
    const scores = (m) => Object.entries(m).slice(0, 6).map(([k, v]) => [k, v.toFixed(1)]);
    // One line per outbox message: its name and the properties that say the most.
    const describe = (m) => {
      const p = m.properties || {};
      const name = m.type === 'track' ? m.event : `${m.type}${m.name ? ` ${m.name}` : ''}`;
      const what = p.product_id || p.category || p.order_id || p.cart_id || (m.type === 'page' && m.context && m.context.page && m.context.page.path) || '';
      return what ? `${name} · ${what}` : name;
    };

    // With a server, messages leave the outbox within seconds; the inspector remembers the
    // last ones it saw there (for this tab's session), to list them as sent or waiting.
    function remember(outbox) {
      const seen = store(sessionStorage, SEEN_KEY) || [];
      const known = new Set(seen.map((s) => s.id));
      const fresh = outbox.filter((m) => !known.has(m.messageId)).map((m) => ({ id: m.messageId, text: describe(m) }));
      if (!fresh.length) return seen;
      return store(sessionStorage, SEEN_KEY, [...seen, ...fresh].slice(-15)) || [];
    }

    // Each campaign in rank order with what happens when its trigger fires: the first
    // eligible campaign for a trigger shows; the core says why the others would not.
    function campaigns(list) {
      const first = {};
      return list.map((c) => {
        let why = c.standing;
        if (c.standing === 'eligible') {
          why = first[c.on] ? `eligible, but ${first[c.on]} ranks first` : `shows on ${c.on}`;
          first[c.on] ||= c.id;
        }
        return [c.id, why, { 'data-campaign': c.id }];
      });
    }

    function render(p) {
      last = p;
      if (!p) return;
      const info = nudge.debug();
      const outbox = info ? info.outbox : [];
      const recent = remember(outbox);
      if (root.hidden) return;
      const waiting = new Set(outbox.map((m) => m.messageId));
      const c = p.cart;
      body.replaceChildren(
        section('Journey', [
          ['overall', p.stage || '–', p.stage ? { 'data-stage': p.stage } : {}],
          ...Object.entries(p.stages).map(([k, v]) => [k, v, { 'data-stage': v, 'data-category': k }]),
        ], { id: 'inspector-journey' }),
        section('Affinities: categories', scores(p.affinities.categories)),
        section('Affinities: brands', scores(p.affinities.brands)),
        section('Affinities: price bands', scores(p.affinities.priceBands)),
        section('Cart (as Nudge sees it)', [
          ['items', c.items.reduce((n, i) => n + i.quantity, 0)],
          ['value', c.currency ? `${c.value.toFixed(2)} ${c.currency}` : c.value.toFixed(2)],
          ['checkout', c.checkoutStarted ? 'started' : 'not started'],
        ]),
        section('Consent', Object.entries(p.consent).map(([k, v]) => [k, v ? 'granted' : 'refused'])),
        section('Campaigns: which would show, and why', campaigns(info ? info.campaigns : []), { id: 'inspector-campaigns' }),
        section('Identity', [['anonymousId', p.anonymousId], ['userId', p.userId || '–'], ['email', p.traits.email || '–']]),
        section('Outbox', info ? [
          ['waiting to send', outbox.length],
          ['this tab', info.role],
          ['storage', info.storage],
          ['failed sends', info.failures],
        ] : []),
        el('h3', {}, 'Latest messages'),
        el('ol', { class: 'outbox', id: 'inspector-outbox' }, recent.slice().reverse().map((m) => el('li', {}, [
          el('span', {}, m.text),
          el('span', { class: waiting.has(m.id) ? 'waiting' : 'sent' }, waiting.has(m.id) ? ' waiting' : ' sent'),
        ]))),
      );
    }

    if (store(sessionStorage, INSPECTOR_KEY)) setOpen(true);
    return {
      render,
      status: (text) => (status.textContent = text),
      note(text) {
        log.prepend(el('li', {}, text));
        while (log.children.length > 8) log.lastChild.remove();
      },
    };
  }

  // ---- start ------------------------------------------------------------------------------

  showCount();
  const live = inspector(document.getElementById('inspector'), document.getElementById('inspector-toggle'));
  pages[DATA.page]?.();

  function refresh(profile) {
    if (!profile) return;
    live.render(profile);
    views.forEach((view) => view(profile));
  }
  nudge.on('change', refresh);
  nudge.on('stage', (c) => live.note(`${c.category}: ${c.from || 'new'} → ${c.to}`));
  nudge.on('error', (e) => live.note(`${e.method} rejected: ${e.message}`));
  // Another tab changed the cart: show the new count.
  addEventListener('storage', (e) => e.key === CART_KEY && showCount());
  nudge.ready.then((ok) => {
    live.status(ok ? 'Nudge is running in this page.' : 'Nudge is disabled in this page (see the console).');
    refresh(nudge.profile());
    // flush() settles once this tab knows its part in tab sync (leader or follower), which
    // decides where the outbox lives: redraw then.
    if (ok) nudge.flush().then(() => refresh(nudge.profile()));
  });
})();
