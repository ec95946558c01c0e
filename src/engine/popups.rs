//! The engine's campaign side: page signals (leaving intent, time on page, scroll depth),
//! the popup decision for a trigger, and the shopper's answer to a popup. Split from
//! `engine.rs` so that each reads in one sitting; the decision rules themselves are in
//! `crate::decide`, the ledger in `crate::caps`.

use super::*;

impl Engine {
    /// A page signal: when it says the shopper is leaving, queues the abandon intent (once
    /// per session per kind) and looks for an exit or abandon popup; time on page and
    /// scroll depth look for their popups.
    pub(super) fn on_signal(&mut self, input: &Input, at: Millis) -> Result<Outputs, Error> {
        let signal = PageSignal::parse(input.props.as_deref().unwrap_or(""))?;
        let mut out = Outputs::default();
        let moment = match &signal {
            PageSignal::TimeOnPage(s) => Moment::TimeOnPage(*s),
            PageSignal::ScrollDepth(p) => Moment::ScrollDepth(*p),
            other => {
                let from = match other {
                    PageSignal::Back(Some(url)) => page_key(url),
                    _ => page_key(&input.page.url),
                };
                let shop = !self.shop_page.is_empty() && from == self.shop_page;
                let Some(how) = other.leaving(&self.settings.thresholds, shop) else {
                    return Ok(out);
                };
                let (kind, category) = self.abandonment(input.now);
                let category = category.map(str::to_string);
                if let Some(k) = kind {
                    self.abandon_intent(input, k, category.as_deref().filter(|_| k == Abandon::Browse), how, at);
                }
                Moment::Leaving(kind)
            }
        };
        self.offer_popup(input, moment, at, &mut out);
        Ok(out)
    }

    /// What a shopper leaving now leaves behind (see [`crate::intent::abandonment`]), and
    /// for a browse, the category: the one viewed most recently this session among those
    /// now in `decision`.
    pub(super) fn abandonment(&self, now: Millis) -> (Option<Abandon>, Option<&str>) {
        let p = &self.profile;
        let th = &self.settings.thresholds;
        // The last of the most recently viewed (a loop: smaller Wasm than iterator adapters).
        let mut latest: Option<(&str, Option<Millis>)> = None;
        for (c, e) in p.categories.iter() {
            let last = e.views.last().copied();
            if last.is_some_and(|t| t >= p.session.id)
                && e.stage(now, th) == Stage::Decision
                && latest.is_none_or(|(_, l)| last >= l)
            {
                latest = Some((c.as_str(), last));
            }
        }
        let browsed = latest.map(|(c, _)| c);
        (abandonment(p.cart.lines.len(), p.cart.checkout > 0, browsed.is_some()), browsed)
    }

    /// Queues `Cart Abandon Intent` or `Browse Abandon Intent`: at most once per session
    /// per kind (the session is recorded in the shared popup ledger, so other tabs of the
    /// same session do not queue it again).
    pub(super) fn abandon_intent(
        &mut self,
        input: &Input,
        kind: Abandon,
        category: Option<&str>,
        how: &str,
        at: Millis,
    ) {
        if !self.profile.popups.intent_once(kind, self.profile.session.id, input.now) {
            return;
        }
        let mut body = String::from("{");
        push_field(&mut body, "signal", how);
        if kind == Abandon::Cart {
            push_key(&mut body, "cart_value");
            crate::json::push_num(&mut body, self.profile.cart.value());
            if let Some(c) = &self.profile.cart.currency {
                push_field(&mut body, "currency", c);
            }
        }
        if let Some(c) = category {
            push_field(&mut body, "category", c);
        }
        body.push('}');
        let name = if kind == Abandon::Cart { "Cart Abandon Intent" } else { "Browse Abandon Intent" };
        self.emit(input, "track", Some(name), &body, at, 90);
    }

    /// Looks for a popup at moment `m` (unless one is already chosen or open, or the
    /// shopper has not allowed personalization). A held-out shopper gets `Popup Held Out`
    /// queued instead, counted against the campaign's caps like a show, so it is recorded
    /// once per caps period rather than on every trigger.
    pub(super) fn offer_popup(&mut self, input: &Input, m: Moment, at: Millis, out: &mut Outputs) {
        let now = input.now;
        if out.popup.is_some()
            || self.campaigns.is_empty()
            || !self.consent().personalization
            || self.profile.popups.busy(now)
        {
            return;
        }
        let (id, trigger, popup) =
            match decide(&self.campaigns, &m, &self.profile, &self.profile.popups, now, &self.settings.thresholds) {
                None => return,
                Some(Choice::Show(c)) => (c.id.clone(), c.trigger.name(), Some(popup_json(c))),
                Some(Choice::HeldOut(c)) => (c.id.clone(), c.trigger.name(), None),
            };
        if popup.is_some() {
            self.profile.popups.open(&id, now);
            out.popup = popup;
        } else {
            let session = self.profile.session.id;
            self.profile.popups.entry(&id, now).shown(now, session);
            self.popup_event(input, "Popup Held Out", &id, Some(trigger), at, 91);
        }
    }

    pub(super) fn popup_event(
        &mut self,
        input: &Input,
        event: &str,
        id: &str,
        trigger: Option<&str>,
        at: Millis,
        n: u16,
    ) {
        let mut body = String::from("{");
        push_field(&mut body, "campaign_id", id);
        if let Some(t) = trigger {
            push_field(&mut body, "trigger", t);
        }
        body.push('}');
        self.emit(input, "track", Some(event), &body, at, n);
    }

    /// A popup outcome from the page: `shown` counts against the caps and keeps the popup
    /// marked open; `dismissed` and `converted` close it and start their pauses. A
    /// conversion with an email identifies the shopper with `{email}` and records
    /// `marketing` consent. Each queues its `Popup ...` event.
    pub(super) fn on_outcome(&mut self, input: &Input, id: &str, at: Millis) -> Result<Outputs, Error> {
        let v = parse_props(input.props.as_deref())?;
        let action = get_str(&v, "action").unwrap_or_default();
        let email = get_str(&v, "email").filter(|_| action == "converted");
        if !id_ok(id) || !matches!(action.as_str(), "shown" | "dismissed" | "converted") {
            return Err(Error::BadOutcome);
        }
        if email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(Error::BadEmail);
        }
        // Unknown when this tab does not have the site config yet: the event goes without.
        let trigger = self.campaigns.iter().find(|c| c.id == id).map(|c| c.trigger.name());
        let now = input.now;
        let session = self.profile.session.id;
        let ledger = &mut self.profile.popups;
        let event = match action.as_str() {
            "shown" => {
                ledger.entry(id, now).shown(now, session);
                ledger.open(id, now);
                "Popup Shown"
            }
            "dismissed" => {
                ledger.entry(id, now).dismissed = now;
                ledger.close();
                "Popup Dismissed"
            }
            _ => {
                ledger.entry(id, now).converted = now;
                ledger.close();
                "Popup Converted"
            }
        };
        if let Some(email) = email {
            let traits: Object = vec![("email".into(), Value::Str(email))];
            let body = to_text(&traits);
            self.merge_traits(traits);
            self.emit(input, "identify", None, &body, at, 92);
            // Recorded as the shopper's own choice even where the site's default already
            // allowed it, so the server holds the explicit consent the email rests on.
            if self.profile.consent.marketing != Some(true) {
                self.profile.consent.marketing = Some(true);
                let mut body = String::new();
                consent_json(&mut body, self.consent());
                self.emit(input, "track", Some("Consent Preference Updated"), &body, at, 93);
            }
        }
        self.popup_event(input, event, id, trigger, at, 94);
        Ok(Outputs::default())
    }

    /// The popup JSON for a campaign, as `present` receives it.
    pub fn popup_for(&self, id: &str) -> Option<String> {
        self.campaigns.iter().find(|c| c.id == id).map(popup_json)
    }
}

/// The popup JSON for `c`: `{"id","trigger","content":{...},"offer":{...}|null}`; content
/// and offer are the campaign's own JSON, for the popup to render as text.
pub fn popup_json(c: &Campaign) -> String {
    let mut s = String::with_capacity(64 + c.content.len());
    s.push('{');
    push_field(&mut s, "id", &c.id);
    push_field(&mut s, "trigger", c.trigger.name());
    push_key(&mut s, "content");
    s.push_str(&c.content);
    push_key(&mut s, "offer");
    s.push_str(c.offer.as_deref().unwrap_or("null"));
    s.push('}');
    s
}

/// A plausible email address: one `@` between a local part of 1 to 64 bytes and a domain
/// of dot-separated labels (two or more, none empty), no spaces, controls or characters
/// that need quoting, at most 254 bytes. The server checks again before it sends anything.
///
/// ```
/// use nudge::engine::valid_email;
/// assert!(valid_email("ann.lee+tv@mail.example.com"));
/// for bad in ["ann", "ann@", "@x.com", "ann@x", "ann@x..com", "ann@.x.com", "a b@x.com", "a@b@x.com", "<a>@x.com"] {
///     assert!(!valid_email(bad), "{bad}");
/// }
/// ```
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = crate::json::split_byte(e, b'@') else { return false };
    let plain = |b: u8| {
        b > b' '
            && b != 0x7f
            && !matches!(b, b'@' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'\\' | b',' | b';' | b':' | b'"')
    };
    e.len() <= 254
        && (1..=64).contains(&local.len())
        && local.bytes().all(plain)
        && domain.bytes().all(plain)
        && crate::json::find_byte(domain, b'.').is_some()
        && crate::json::pieces(domain, b'.').all(|label| !label.is_empty())
}
