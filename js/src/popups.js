// Connects the core's campaign decisions to the page: page signals go in (leaving.js), the
// popup the core picks comes out (popup.js), and the shopper's answer goes back to the core
// and, for a unique coupon, to the server. The core decides everything (thresholds,
// audience, caps, holdout); this file only carries messages and never throws into the page.

import { showPopup } from './popup.js';
import { watchLeaving } from './leaving.js';

// Time-on-page marks (every 5 s for 10 minutes) and scroll-depth marks (every 10%): the
// core fires a campaign on the first mark at or past its trigger, so triggers need no
// knowledge of the campaigns here.
const TIME_MARKS = Array.from({ length: 120 }, (_, i) => (i + 1) * 5);
const SCROLL_MARKS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
// Upward scroll speeds below this are never exit intent, whatever the site's threshold
// (keeps ordinary scrolling from reaching the core at all).
const SCROLL_FLOOR = 500;
// Idle marks: the core compares each with the site's `idle_seconds` (from init or the site
// config, which this file never sees), so idleness is reported at several lengths.
const IDLE_MARKS = [10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];

/**
 * Starts popups for `api` (the object createApi returns) once the core runs.
 * @param options the init options: `endpoint` and `writeKey` for coupons.
 * @returns a function that stops watching the page.
 */
export function connectPopups(api, options) {
  const endpoint = String(options.endpoint || '').replace(/\/+$/, '');
  let open = null;
  // A back navigation reports the page it left (the core checks it was a product or cart
  // page). With the Navigation API that is the URL before the latest same-document change
  // (a single-page store's pushState is no signal); without it, the URL at the last signal.
  let here = location.href;
  let left = here;
  const nav = window.navigation;
  const tracked = !!(nav && typeof nav.addEventListener === 'function');
  const moved = () => {
    if (location.href !== here) {
      left = here;
      here = location.href;
    }
  };
  if (tracked) nav.addEventListener('currententrychange', moved);

  api._present = (campaign) => {
    if (open) return; // one at a time; the core's caps also hold it across tabs
    let settled = false;
    const outcome = (action, email) => {
      if (action !== 'shown') settled = true;
      api._popup(campaign.id, action, email);
    };
    open = showPopup(campaign, {
      shown: () => outcome('shown'),
      dismiss: () => {
        open = null;
        if (!settled) outcome('dismissed');
      },
      convert: async (email) => {
        const offer = campaign.offer || {};
        let coupon = { coupon: offer.code == null ? null : String(offer.code) };
        if (offer.unique) coupon = await issueCoupon(campaign.id, email);
        // Recorded once the coupon is in hand, so a failed request can be retried.
        outcome('converted', email || undefined);
        api.flush();
        // The popup stays up with the code until closed; the core's open marker and caps keep
        // another from showing meanwhile.
        open = null;
        return coupon;
      },
    });
  };

  async function issueCoupon(campaignId, email) {
    const who = api.profile() || {};
    const r = await fetch(endpoint + '/v1/coupons', {
      method: 'POST',
      credentials: 'omit',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({
        writeKey: String(options.writeKey || ''),
        campaign_id: campaignId,
        email,
        anonymousId: who.anonymousId,
        userId: who.userId || undefined,
      }),
    });
    if (!r.ok) throw new Error(`the coupon could not be issued (${r.status})`);
    const body = await r.json();
    return { coupon: body.coupon, expires_at: body.expires_at };
  }

  const signal = (s) => api._signal(s);
  // The listeners start in a task of their own, after the SDK is ready: nothing a shopper
  // does in the first moment of a page is a leaving signal, and startup stays shorter.
  let stop = null;
  let stopped = false;
  setTimeout(() => {
    if (!stopped) stop = watch();
  }, 0);
  return () => {
    stopped = true;
    if (stop) stop();
  };

  function watch() {
    return watchLeaving(
      { minPointerSpeed: 0, scrollSpeed: SCROLL_FLOOR, idleMarks: IDLE_MARKS, timeMarks: TIME_MARKS, scrollMarks: SCROLL_MARKS },
      (s) => {
        switch (s.signal) {
          case 'back': {
            if (tracked) moved();
            const from = tracked ? left : here;
            // Back to another part of the same page (a fragment) is not leaving it.
            if (from.split('#')[0] !== location.href.split('#')[0]) signal({ signal: 'back', from });
            break;
          }
          case 'hidden':
            // Going to another page of the store hides this one too: that is not leaving.
            if (!s.unloading) signal({ signal: 'hidden' });
            break;
          case 'time':
            signal({ signal: 'time-on-page', seconds: s.seconds });
            break;
          case 'scroll':
            signal({ signal: 'scroll-depth', percent: s.percent });
            break;
          default:
            signal(s);
        }
        if (!tracked) here = location.href;
      },
    );
  }
}
