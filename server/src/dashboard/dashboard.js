// The Nudge dashboard. Served by nudge-server at /dashboard under a strict CSP: no inline
// code, and data rendered only with textContent and SVG elements (never parsed as HTML).
'use strict';

(function () {
  const KEY = 'nudge.dashboard.secretKey';
  const SVG = 'http://www.w3.org/2000/svg';
  const STAGES = ['awareness', 'consideration', 'decision', 'purchase', 'loyalty'];
  const STREAM_MAX = 50;
  const POLL_MS = 2000;
  const SUMMARY_MS = 30000;
  const $ = (id) => document.getElementById(id);
  const int = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
  const money = new Intl.NumberFormat('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const pct = (x) => (x == null ? 'n/a' : (x * 100).toFixed(1) + '%');
  const pts = (x) => (x >= 0 ? '+' : '') + (x * 100).toFixed(1) + ' pts';
  const signedMoney = (x) => (x >= 0 ? '+' : '-') + money.format(Math.abs(x));

  let key = null;
  let cursor = null;
  let streamTimer = null;
  let summaryTimer = null;
  // Bumped at every sign-in and sign-out: a poll still in flight from before then stops.
  let generation = 0;
  const stream = [];

  // ---------- DOM helpers (text only) ----------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function s(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text != null) node.textContent = String(text);
    return node;
  }
  function chart(width, height, title, desc) {
    const id = 't' + Math.random().toString(36).slice(2);
    const root = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': id + ' ' + id + 'd' });
    root.append(s('title', { id }, title), s('desc', { id: id + 'd' }, desc));
    return root;
  }
  function table(head, rows) {
    const t = el('table', { class: 'numbers' });
    t.append(el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))));
    const body = el('tbody');
    for (const r of rows) body.append(el('tr', {}, ...r.map((c) => el('td', {}, c))));
    t.append(body);
    return t;
  }
  function legend(items) {
    return el('ul', { class: 'legend' }, ...items.map(([cls, label]) => el('li', {}, el('span', { class: 'swatch ' + cls }), label)));
  }
  function fill(id, ...nodes) {
    $(id).replaceChildren(...nodes);
  }

  // ---------- requests ----------
  function authorization() {
    return 'Basic ' + btoa(key + ':');
  }
  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.message) || 'HTTP ' + status);
      this.status = status;
      this.code = body && body.error;
    }
  }
  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: authorization() }, cache: 'no-store' });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) throw new HttpError(response.status, body);
    return body;
  }

  // ---------- sign-in ----------
  function showSignIn(message) {
    stop();
    key = null;
    sessionStorage.removeItem(KEY);
    $('board').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('site-status').textContent = '';
    $('sign-in-error').textContent = message || '';
  }
  function stop() {
    generation++;
    clearTimeout(streamTimer);
    clearInterval(summaryTimer);
    streamTimer = null;
    summaryTimer = null;
  }
  async function signIn(candidate) {
    if (!/^sk_[A-Za-z0-9_-]+$/.test(candidate)) {
      showSignIn('That is not a secret key: it starts with sk_ (a write key, wk_..., is not enough).');
      return;
    }
    key = candidate;
    let summary;
    try {
      summary = await api('/v1/dashboard/summary');
    } catch (e) {
      if (e.status === 401) showSignIn('This key was refused: it is not a site\'s secret key. Check it and try again.');
      else if (e.status === 429) showSignIn('Too many requests: wait a moment and try again.');
      else showSignIn('The server could not be reached or failed (' + e.message + '). Try again.');
      return;
    }
    sessionStorage.setItem(KEY, key);
    $('sign-in').hidden = true;
    $('board').hidden = false;
    $('sign-out').hidden = false;
    $('sign-in-error').textContent = '';
    render(summary);
    stream.length = 0;
    cursor = null;
    renderStream();
    summaryTimer = setInterval(refresh, SUMMARY_MS);
    poll(generation);
  }
  async function refresh() {
    try {
      render(await api('/v1/dashboard/summary'));
      $('board-error').textContent = '';
    } catch (e) {
      if (e.status === 401) showSignIn('The key is no longer accepted. Sign in again.');
      else $('board-error').textContent = 'Could not refresh the summary: ' + e.message;
    }
  }

  // ---------- summary ----------
  function render(summary) {
    const p = summary.profiles || {};
    $('site-status').textContent =
      `${int.format(p.counted || 0)} profiles${p.truncated ? ' (the first ' + int.format(p.limit) + ' only)' : ''}` +
      ` · updated ${new Date(summary.generatedAt).toLocaleTimeString()}`;
    renderStages(summary.stages);
    renderFunnel(summary.funnel);
    renderAbandonment(summary.abandonment);
    renderCampaigns(summary.campaigns);
  }

  function renderStages(stages) {
    const cats = (stages && stages.categories) || [];
    if (!cats.length) {
      fill('stages-chart', el('p', { class: 'empty' }, 'No profile has a stage yet.'));
      return;
    }
    const W = 500, left = 100, right = 40, row = 30, top = 8;
    const H = top + cats.length * row + 8;
    const max = Math.max(1, ...cats.map((c) => c.total));
    const scale = (W - left - right) / max;
    const svg = chart(W, H, 'Profiles per stage in each category',
      cats.map((c) => c.category + ': ' + STAGES.map((st) => `${c.counts[st]} ${st}`).join(', ')).join('; '));
    cats.forEach((c, i) => {
      const y = top + i * row;
      svg.append(s('text', { x: left - 8, y: y + row / 2 + 4, 'text-anchor': 'end' }, c.category));
      let x = left;
      STAGES.forEach((st, k) => {
        const n = c.counts[st] || 0;
        if (!n) return;
        const w = n * scale;
        const rect = s('rect', { x, y: y + 4, width: w, height: row - 8, class: 's' + k });
        rect.append(s('title', {}, `${c.category}, ${st}: ${n}`));
        svg.append(rect);
        if (w >= 18) {
          svg.append(s('text', { x: x + w / 2, y: y + row / 2 + 4, 'text-anchor': 'middle', fill: k >= 2 ? '#fff' : '#1d2330', class: 'in-bar' }, n));
        }
        x += w;
      });
      svg.append(s('text', { x: x + 6, y: y + row / 2 + 4, class: 'muted' }, c.total));
    });
    const rows = cats.map((c) => [c.category, ...STAGES.map((st) => int.format(c.counts[st] || 0)), int.format(c.total)]);
    fill('stages-chart',
      legend(STAGES.map((st, k) => ['s' + k, st])),
      svg,
      el('details', {}, el('summary', {}, 'Numbers'), table(['Category', ...STAGES, 'Total'], rows)));
    $('stages-chart').querySelector('table').id = 'stages-table';
  }

  function renderFunnel(funnel) {
    funnel = funnel || [];
    const W = 500, left = 100, right = 150, row = 32, top = 8;
    const H = top + funnel.length * row + 8;
    const max = Math.max(1, ...funnel.map((f) => f.count));
    const scale = (W - left - right) / max;
    const svg = chart(W, H, 'Funnel: profiles that reached each stage, with the conversion from the previous stage',
      funnel.map((f) => `${f.stage}: ${f.count}` + (f.conversion == null ? '' : ` (${pct(f.conversion)} of the previous)`)).join('; '));
    funnel.forEach((f, i) => {
      const y = top + i * row;
      const w = f.count * scale;
      svg.append(s('text', { x: left - 8, y: y + row / 2 + 4, 'text-anchor': 'end' }, f.stage));
      svg.append(s('rect', { x: left, y: y + 5, width: Math.max(w, f.count ? 2 : 0), height: row - 10, class: 's' + i }));
      const label = int.format(f.count) + (f.conversion == null ? '' : `  (${pct(f.conversion)} converted)`);
      svg.append(s('text', { x: left + w + 6, y: y + row / 2 + 4 }, label));
    });
    fill('funnel-chart', svg,
      el('details', {}, el('summary', {}, 'Numbers'),
        table(['Stage', 'Reached', 'From previous'], funnel.map((f) => [f.stage, int.format(f.count), f.conversion == null ? '' : pct(f.conversion)]))));
  }

  function renderAbandonment(a) {
    const days = (a && a.days) || [];
    const W = 1000, H = 260, left = 50, right = 70, top = 24, bottom = 40;
    const plotW = W - left - right, plotH = H - top - bottom;
    const maxN = Math.max(1, ...days.map((d) => d.abandoned));
    const maxR = Math.max(1, ...days.map((d) => d.recovered));
    const step = plotW / Math.max(1, days.length);
    const svg = chart(W, H, 'Abandoned carts (bars) and recovered revenue (line) per day',
      `${a ? a.abandoned : 0} carts abandoned and ${money.format(a ? a.recovered : 0)} recovered in ${a ? a.recoveredOrders : 0} orders over the last ${days.length} days`);
    svg.append(s('line', { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: 'axis' }));
    svg.append(s('text', { x: left - 6, y: top + 4, 'text-anchor': 'end', class: 'muted' }, int.format(maxN)));
    svg.append(s('text', { x: left - 6, y: top + plotH, 'text-anchor': 'end', class: 'muted' }, '0'));
    svg.append(s('text', { x: left + plotW + 6, y: top + 4, class: 'muted' }, money.format(maxR)));
    const points = [];
    let lastLabel = -Infinity;
    days.forEach((d, i) => {
      const x = left + i * step;
      const h = (d.abandoned / maxN) * plotH;
      if (d.abandoned) {
        const r = s('rect', { x: x + step * 0.15, y: top + plotH - h, width: step * 0.7, height: h, class: 'bar-abandoned' });
        r.append(s('title', {}, `${d.day}: ${d.abandoned} abandoned`));
        svg.append(r, s('text', { x: x + step / 2, y: top + plotH - h - 4, 'text-anchor': 'middle' }, d.abandoned));
      }
      const cx = x + step / 2, cy = top + plotH - (d.recovered / maxR) * plotH;
      points.push(`${cx.toFixed(1)},${cy.toFixed(1)}`);
      if (d.recovered) {
        const dot = s('circle', { cx, cy, r: 4, class: 'dot-recovered' });
        dot.append(s('title', {}, `${d.day}: ${money.format(d.recovered)} recovered (${d.recoveredOrders} orders)`));
        svg.append(dot);
        if (cx - lastLabel > 60) {
          svg.append(s('text', { x: cx, y: cy - 8, 'text-anchor': 'middle', fill: '#c46a00' }, money.format(d.recovered)));
          lastLabel = cx;
        }
      }
      if (i % 5 === 0 || i === days.length - 1) {
        svg.append(s('text', { x: cx, y: H - bottom + 18, 'text-anchor': 'middle', class: 'muted' }, d.day.slice(5)));
      }
    });
    if (points.length) svg.insertBefore(s('polyline', { points: points.join(' '), class: 'line-recovered' }), svg.children[2]);
    const totals = el('p', { id: 'abandon-totals' },
      `${int.format(a ? a.abandoned : 0)} carts abandoned; ${money.format(a ? a.recovered : 0)} recovered in ${int.format(a ? a.recoveredOrders : 0)} orders.`);
    const rows = days.filter((d) => d.abandoned || d.recovered).map((d) => [d.day, int.format(d.abandoned), int.format(d.recoveredOrders), money.format(d.recovered)]);
    fill('abandon-chart', legend([['s1', 'Carts abandoned'], ['accent', 'Revenue recovered']]), svg, totals,
      el('details', {}, el('summary', {}, 'Numbers (days with activity)'), table(['Day', 'Abandoned', 'Recovered orders', 'Recovered revenue'], rows)));
  }

  // A horizontal interval around zero: estimate, low, high.
  function interval(svg, y, x0, width, u, fmt, label) {
    svg.append(s('text', { x: x0, y: y - 14, class: 'muted' }, label));
    if (!u) {
      svg.append(s('text', { x: x0, y: y + 4 }, 'not enough shoppers in a group yet'));
      return;
    }
    const span = Math.max(Math.abs(u.low), Math.abs(u.high), 1e-9) * 1.1;
    const at = (v) => x0 + width / 2 + (v / span) * (width / 2);
    svg.append(s('line', { x1: x0, y1: y, x2: x0 + width, y2: y, class: 'axis' }));
    svg.append(s('line', { x1: at(0), y1: y - 10, x2: at(0), y2: y + 10, class: 'zero' }));
    svg.append(s('line', { x1: at(u.low), y1: y, x2: at(u.high), y2: y, class: 'ci' }));
    for (const v of [u.low, u.high]) svg.append(s('line', { x1: at(v), y1: y - 6, x2: at(v), y2: y + 6, class: 'ci' }));
    svg.append(s('circle', { cx: at(u.estimate), cy: y, r: 5, class: 'ci-point' }));
    svg.append(s('text', { x: at(u.estimate), y: y + 22, 'text-anchor': 'middle' }, `${fmt(u.estimate)} [${fmt(u.low)}, ${fmt(u.high)}]`));
  }

  function renderCampaigns(campaigns) {
    campaigns = campaigns || [];
    if (!campaigns.length) {
      fill('campaigns-chart', el('p', { class: 'empty' }, 'The site has no campaigns.'));
      return;
    }
    const blocks = campaigns.map((c) => {
      const t = c.treatment, h = c.holdout, u = c.uplift || {};
      const W = 1000, H = 110;
      const svg = chart(W, H, `Campaign ${c.campaignId}: treatment against holdout`,
        `Treatment ${t.converted} of ${t.shoppers} converted (${pct(t.conversionRate)}); holdout ${h.converted} of ${h.shoppers} (${pct(h.conversionRate)}).` +
        (u.conversionRate ? ` Conversion uplift ${pts(u.conversionRate.estimate)}, 95% interval ${pts(u.conversionRate.low)} to ${pts(u.conversionRate.high)}.` : ' Uplift: not enough shoppers yet.'));
      const barW = 300;
      [['Treatment', t, 'treatment'], ['Holdout', h, 'holdout']].forEach(([name, g, cls], i) => {
        const y = 22 + i * 40;
        svg.append(s('text', { x: 0, y: y + 14 }, name));
        svg.append(s('rect', { x: 80, y, width: barW, height: 20, fill: 'none', class: 'axis', stroke: '#d9dde5' }));
        svg.append(s('rect', { x: 80, y, width: barW * (g.conversionRate || 0), height: 20, class: cls }));
        svg.append(s('text', { x: 80 + barW + 8, y: y + 14 }, `${pct(g.conversionRate)} (${g.converted}/${g.shoppers})`));
      });
      interval(svg, 50, 580, 170, u.conversionRate, pts, 'Conversion uplift, 95% CI');
      interval(svg, 50, 810, 170, u.revenuePerShopper, signedMoney, 'Revenue per shopper uplift');
      const facts = el('p', { class: 'facts' },
        `Shown ${c.shown} · dismissed ${c.dismissed} · converted ${c.converted} · held out ${c.heldOut} · ` +
        `coupons issued ${c.coupons.issued}, redeemed ${c.coupons.redeemed} · coupon revenue ${money.format(c.revenue)}`);
      const rows = [['Treatment', t], ['Holdout', h]].map(([n, g]) => [n, int.format(g.shoppers), int.format(g.converted), pct(g.conversionRate), money.format(g.revenue), g.revenuePerShopper == null ? 'n/a' : money.format(g.revenuePerShopper)]);
      return el('div', { class: 'campaign', 'data-campaign': c.campaignId }, el('h3', {}, c.campaignId), facts, svg,
        el('details', {}, el('summary', {}, 'Numbers'), table(['Group', 'Shoppers', 'Converted', 'Rate', 'Revenue', 'Per shopper'], rows)));
    });
    fill('campaigns-chart', ...blocks);
  }

  // ---------- live stream ----------
  async function poll(gen) {
    streamTimer = null;
    if (gen !== generation) return;
    try {
      // Follow the feed to its end (the first time, that skips the history, keeping the
      // latest events); a bounded number of pages per poll.
      for (let page = 0; page < 100; page++) {
        const q = '/v1/changes?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
        const body = await api(q);
        if (gen !== generation) return;
        cursor = body.cursor || cursor;
        for (const change of body.changes || []) stream.unshift(change);
        stream.splice(STREAM_MAX);
        if (!body.hasMore) break;
      }
      renderStream();
      $('board-error').textContent = '';
    } catch (e) {
      if (gen !== generation) return;
      if (e.status === 401) {
        showSignIn('The key is no longer accepted. Sign in again.');
        return;
      }
      $('board-error').textContent = 'Live events paused: ' + e.message;
    }
    if (key && gen === generation) streamTimer = setTimeout(() => poll(gen), POLL_MS);
  }

  function describe(m) {
    const p = (m && m.properties) || {};
    const bits = [];
    if (m.event === 'Stage Changed' && typeof p.to === 'string') bits.push(`${p.from || 'new'} → ${p.to}`);
    for (const k of ['name', 'product_id', 'category', 'campaign_id', 'stage', 'coupon']) {
      if (typeof p[k] === 'string' || typeof p[k] === 'number') bits.push(`${k}: ${p[k]}`);
    }
    for (const k of ['price', 'revenue', 'cart_value']) if (typeof p[k] === 'number') bits.push(`${k}: ${money.format(p[k])}`);
    return bits.join(' · ');
  }

  function renderStream() {
    if (!stream.length) {
      fill('stream', el('li', { class: 'empty' }, 'No events yet.'));
      return;
    }
    fill('stream', ...stream.map((c) => {
      const m = c.message || {};
      const name = m.type === 'track' ? String(m.event) : String(m.type || 'message');
      const who = m.userId != null ? 'user ' + m.userId : 'browser ' + (m.anonymousId || '?');
      const when = new Date(c.receivedAt || m.timestamp);
      const detail = describe(m);
      return el('li', {},
        el('span', { class: 'time' }, isNaN(when) ? '' : when.toLocaleDateString() + ' ' + when.toLocaleTimeString()),
        el('span', { class: 'name' }, name),
        el('span', { class: 'who' }, who + (detail ? ' · ' + detail : '')));
    }));
  }

  // ---------- start ----------
  document.addEventListener('DOMContentLoaded', () => {
    $('sign-in-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = $('secret-key').value.trim();
      $('secret-key').value = '';
      signIn(value);
    });
    $('sign-out').addEventListener('click', () => showSignIn('Signed out.'));
    const saved = sessionStorage.getItem(KEY);
    if (saved) signIn(saved);
    else showSignIn('');
  });
})();
