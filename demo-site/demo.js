// The demo store's own script. It reaches Nudge only through `window.nudge`, the object the
// snippet made, as a customer's site would. Text enters the page through textContent only.
(() => {
  'use strict';
  const nudge = window.nudge;
  const CURRENCY = 'USD';
  const PRODUCTS = [
    { product_id: 'tv-lumen-55', name: 'Lumen 55" 4K', category: 'TVs', brand: 'Lumen', price: 549 },
    { product_id: 'tv-orbit-65', name: 'Orbit 65" OLED', category: 'TVs', brand: 'Orbit', price: 1299 },
    { product_id: 'ph-pico-8', name: 'Pico 8', category: 'Phones', brand: 'Pico', price: 699 },
    { product_id: 'ph-nova-s', name: 'Nova S', category: 'Phones', brand: 'Nova', price: 899 },
    { product_id: 'lt-feather-13', name: 'Feather 13', category: 'Laptops', brand: 'Feather', price: 999 },
    { product_id: 'lt-forge-16', name: 'Forge 16 Pro', category: 'Laptops', brand: 'Forge', price: 1899 },
    { product_id: 'hp-hush', name: 'Hush ANC', category: 'Headphones', brand: 'Hush', price: 249 },
    { product_id: 'hp-pulse-buds', name: 'Pulse Buds', category: 'Headphones', brand: 'Pulse', price: 89 },
  ];
  // Line drawings per category (viewBox 0 0 64 48), drawn with the card's text colour.
  const ICONS = {
    TVs: [['rect', { x: 6, y: 5, width: 52, height: 31, rx: 3 }], ['path', { d: 'M24 44h16M32 36v8' }]],
    Phones: [['rect', { x: 21, y: 3, width: 22, height: 42, rx: 4 }], ['path', { d: 'M29 39h6' }]],
    Laptops: [['rect', { x: 12, y: 8, width: 40, height: 26, rx: 2 }], ['path', { d: 'M4 38h56l-4 5H8z' }]],
    Headphones: [
      ['path', { d: 'M14 33v-5a18 18 0 0 1 36 0v5' }],
      ['rect', { x: 9, y: 30, width: 9, height: 14, rx: 3 }],
      ['rect', { x: 46, y: 30, width: 9, height: 14, rx: 3 }],
    ],
  };

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

  function icon(category) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 64 48');
    svg.setAttribute('aria-hidden', 'true');
    for (const [tag, attrs] of ICONS[category]) {
      const shape = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, v);
      svg.append(shape);
    }
    return svg;
  }

  const money = (n, currency) => `${Number(n).toFixed(2)} ${currency || CURRENCY}`;
  // Segment e-commerce v2 product properties.
  const product = (p) => ({ ...p, currency: CURRENCY });
  // A call returns false when Nudge rejected it (the reason goes to on('error')).
  const said = (note, result, text) => (note.textContent = result === false ? 'Not accepted' : text);

  // Each view is (profile) => void, redrawn on every change.
  const views = [];

  function catalog(root) {
    for (const p of PRODUCTS) {
      const note = el('span', { class: 'note' });
      root.append(el('article', { class: 'card', 'data-category': p.category }, [
        icon(p.category),
        el('h3', {}, p.name),
        el('p', { class: 'meta' }, `${p.brand} · ${p.category}`),
        el('p', { class: 'price' }, money(p.price)),
        el('div', { class: 'actions' }, [
          el('button', { onclick: () => said(note, nudge.track('Product Viewed', product(p)), 'Viewed') }, 'View'),
          el('button', {
            class: 'primary',
            onclick: () => said(note, nudge.track('Product Added', { ...product(p), quantity: 1 }), 'Added to cart'),
          }, 'Add to cart'),
        ]),
        note,
      ]));
    }
  }

  function cart(root) {
    let current = { items: [], value: 0, currency: null };
    const lines = el('ul', { class: 'lines' });
    const total = el('p', { class: 'total' });
    const note = el('p', { class: 'note' });
    const checkout = el('button', {
      onclick: () => said(note, nudge.track('Checkout Started', {
        products: current.items, value: current.value, currency: current.currency || CURRENCY,
      }), 'Checkout started'),
    }, 'Checkout');
    const order = el('button', {
      class: 'primary',
      onclick: () => said(note, nudge.track('Order Completed', {
        order_id: 'demo-' + Date.now().toString(36),
        products: current.items, revenue: current.value, currency: current.currency || CURRENCY,
      }), 'Order placed: thank you!'),
    }, 'Place order');
    root.append(lines, total, el('div', { class: 'actions' }, [checkout, order]), note);
    views.push((profile) => {
      current = profile.cart;
      lines.replaceChildren(...current.items.map((i) =>
        el('li', {}, [el('span', {}, `${i.quantity} × ${i.name || i.product_id}`), el('span', {}, money(i.price * i.quantity, current.currency))])));
      if (!current.items.length) lines.append(el('li', { class: 'empty' }, 'The cart is empty.'));
      total.textContent = `Total: ${money(current.value, current.currency)}` + (current.checkoutStarted ? ' (checkout started)' : '');
      checkout.disabled = order.disabled = !current.items.length;
    });
  }

  function account(root) {
    const userId = el('input', { name: 'userId', required: '', placeholder: 'user-42', autocomplete: 'off' });
    const email = el('input', { name: 'email', type: 'email', placeholder: 'shopper@example.com' });
    const note = el('p', { class: 'note' });
    const signIn = el('form', {
      class: 'box',
      onsubmit: (e) => {
        e.preventDefault();
        const traits = email.value ? { email: email.value } : {};
        said(note, nudge.identify(userId.value.trim(), traits), `Signed in as ${userId.value.trim()}`);
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
    const reset = el('button', { onclick: () => said(note, nudge.reset(), 'Reset: you are a new anonymous shopper') }, 'Reset (log out)');
    const forget = el('button', { class: 'danger', onclick: () => said(note, nudge.forget(), 'Forgotten: local data wiped') }, 'Forget me');
    root.append(signIn, consent, el('div', { class: 'box' }, [el('h2', {}, 'Start over'), el('div', { class: 'actions' }, [reset, forget])]), note);
    views.push((profile) => {
      for (const purpose of Object.keys(boxes)) boxes[purpose].checked = profile.consent[purpose];
    });
  }

  function panel(root) {
    const status = el('p', { class: 'status' }, 'Loading Nudge…');
    const body = el('div');
    const log = el('ol', { class: 'log' });
    root.append(
      el('h2', {}, 'Live profile'),
      status,
      el('p', { class: 'hint' }, 'There is no Nudge server yet: events wait in the outbox (counted below), and nothing is sent.'),
      body,
      el('h3', {}, 'Recent'),
      log,
    );
    const section = (title, rows) => el('section', {}, [
      el('h3', {}, title),
      el('dl', {}, rows.flatMap(([k, v, stage]) => [el('dt', {}, k), el('dd', stage ? { 'data-stage': v } : {}, String(v))])),
    ]);
    const scores = (m) => Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ') || '–';
    return {
      status: (text) => (status.textContent = text),
      note(text) {
        log.prepend(el('li', {}, text));
        while (log.children.length > 8) log.lastChild.remove();
      },
      render(p) {
        const info = nudge.debug();
        const c = p.cart;
        body.replaceChildren(
          section('Journey', [['overall', p.stage || '–', !!p.stage], ...Object.entries(p.stages).map(([k, v]) => [k, v, true])]),
          section('Affinities', [['categories', scores(p.affinities.categories)], ['brands', scores(p.affinities.brands)], ['price bands', scores(p.affinities.priceBands)]]),
          section('Cart', [['items', c.items.reduce((n, i) => n + i.quantity, 0)], ['value', money(c.value, c.currency)], ['checkout', c.checkoutStarted ? 'started' : 'not started']]),
          section('Consent', Object.entries(p.consent).map(([k, v]) => [k, v ? 'granted' : 'refused'])),
          section('Identity', [['anonymousId', p.anonymousId], ['userId', p.userId || '–'], ['email', p.traits.email || '–']]),
          section('Outbox', info ? [
            ['messages', info.outbox.length],
            ['this tab', info.role === 'follower' ? 'follower (the leader tab holds the outbox)' : info.role],
            ['storage', info.storage],
          ] : []),
        );
      },
    };
  }

  const live = panel(document.getElementById('panel'));
  const pages = { catalog, cart, account };
  for (const [id, make] of Object.entries(pages)) {
    const root = document.getElementById(id);
    if (root) make(root);
  }
  const cartCount = document.getElementById('cart-count');
  function refresh(profile) {
    if (!profile) return;
    live.render(profile);
    const n = profile.cart.items.reduce((sum, i) => sum + i.quantity, 0);
    cartCount.textContent = n ? `(${n})` : '';
    views.forEach((view) => view(profile));
  }
  nudge.on('change', refresh);
  nudge.on('stage', (c) => live.note(`${c.category}: ${c.from || 'new'} → ${c.to}`));
  nudge.on('error', (e) => live.note(`${e.method} rejected: ${e.message}`));
  nudge.ready.then((ok) => {
    live.status(ok ? 'Nudge is running in this page.' : 'Nudge is disabled in this page (see the console).');
    refresh(nudge.profile());
    // flush() settles once this tab knows its part in tab sync (leader or follower), which
    // decides where the outbox lives: redraw then.
    if (ok) nudge.flush().then(() => refresh(nudge.profile()));
  });
})();
