//! The front door of the core: `Engine::apply(input)` folds one call into the profile and
//! the outbox and says what the shell must do (report stage changes, wipe storage).
//! Deterministic: time and randomness come in the [`Input`]; nothing here reads a clock.
//!
//! ```
//! use nudge::engine::{Engine, Input, Kind, Settings};
//! let mut e = Engine::new(Settings::default(), "00000000000000000000000000000001");
//! let mut view = |n: u64| Input::track("Product Viewed", r#"{"category":"TVs","product_id":"tv1"}"#, n * 60_000, "5eed");
//! for n in 1..=5 { e.apply(&view(n)).unwrap(); }
//! assert!(e.profile_json(6 * 60_000).contains(r#""stages":{"TVs":"decision"}"#));
//! ```

use crate::affinity;
use crate::campaign::{id_ok, merge, read_all, Abandon, Campaign};
use crate::cart::Line;
use crate::codec::{field, optional, Json, MAX_STATE_DEPTH};
use crate::config::{ThresholdOverrides, Thresholds};
use crate::consent::{Choices, Effective, Mode, Policy};
use crate::decide::{decide, standings, Choice, Moment};
use crate::error::Error;
use crate::event::{check_name, parse_props, to_text, MAX_PROPS_BYTES};
use crate::funnel::{Signal, Stage};
use crate::identity::uuid;
use crate::intent::{abandonment, PageSignal};
use crate::json::{get_num, get_objects, get_str, product_id, push_field, push_key, push_str};
use crate::json::{Object, Value};
use crate::message::{render_context, write, PageInfo, Parts};
use crate::outbox::Outbox;
use crate::profile::{consent_json, Loaded, Profile, MAX_TRAITS_BYTES};
use crate::recommend::{picks_json, rank, Catalog, Refusal, Request};
use crate::time::{parse_iso, to_iso, Millis};

mod popups;
pub use popups::{popup_json, valid_email};

/// Which public call an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `page(name?, props?)`
    Page,
    /// `track(event, props?)`
    Track,
    /// `identify(userId, traits?)`
    Identify,
    /// `consent(choices)`
    Consent,
    /// `reset()`
    Reset,
    /// `forget()`
    Forget,
    /// A page signal (JSON in `props`, see [`crate::intent`]): leaving, time on page,
    /// scroll depth.
    Signal,
    /// A popup outcome: `name` is the campaign id, `props` `{"action": "shown" |
    /// "dismissed" | "converted", "email"?, "trigger"?}`.
    Popup,
}
crate::json_enum!(Kind {
    Page: "page",
    Track: "track",
    Identify: "identify",
    Consent: "consent",
    Reset: "reset",
    Forget: "forget",
    Signal: "signal",
    Popup: "popup"
});

/// One public call with everything needed to replay it anywhere: the tab that made it
/// forwards it to the tab that owns the profile, which applies it again identically.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The call.
    pub kind: Kind,
    /// Event name, page name or user id.
    pub name: Option<String>,
    /// Properties, traits or consent choices, as JSON text.
    pub props: Option<String>,
    /// Call options as JSON text: `{timestamp, userHash}`.
    pub options: Option<String>,
    /// When the call was made.
    pub now: Millis,
    /// 32 hex digits of randomness from the shell (message ids, new anonymous ids).
    pub seed: String,
    /// The page the call came from.
    pub page: PageInfo,
}
crate::json_struct!(Input {
    kind: "kind",
    name: "name",
    props: "props",
    options: "options",
    now: "now",
    seed: "seed",
    page: "page"
});

impl Input {
    /// A `track` call, for tests and examples.
    pub fn track(event: &str, props: &str, now: Millis, seed: &str) -> Input {
        Input {
            kind: Kind::Track,
            name: Some(event.into()),
            props: Some(props.into()),
            options: None,
            now,
            seed: seed.into(),
            page: <PageInfo as Default>::default(),
        }
    }
}

/// A category whose stage changed.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    /// The category.
    pub category: String,
    /// The stage before (none when the category is new).
    pub from: Option<Stage>,
    /// The stage now.
    pub to: Stage,
}

impl StageChange {
    /// `{"category","from","to"}`: the `Stage Changed` event's properties, and what
    /// `on('stage')` listeners receive.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        push_field(&mut s, "category", &self.category);
        crate::json::push_key(&mut s, "from");
        match self.from {
            Some(f) => push_str(&mut s, f.name()),
            None => s.push_str("null"),
        }
        push_field(&mut s, "to", self.to.name());
        s.push('}');
        s
    }
}

/// What the shell must do after an input.
#[derive(Debug, Default, PartialEq)]
pub struct Outputs {
    /// Stages that changed, for `on('stage')` listeners.
    pub stage_changes: Vec<StageChange>,
    /// Everything stored must be deleted (consent withdrawn, or `forget()`).
    pub wipe_storage: bool,
    /// A popup to show now, as JSON text for the page's popup:
    /// `{"id","trigger","content":{...},"offer":{...}|null}` (see [`popup_json`]).
    pub popup: Option<String>,
    /// Problems that did not stop the call (campaigns skipped), for `on('error')`.
    pub problems: Vec<Error>,
    /// The call changed nothing worth storing or telling other tabs (a page signal that
    /// was neither leaving nor a trigger, say).
    pub quiet: bool,
}

/// Settings fixed at `init`: the site's thresholds, consent policy and the browser facts
/// that do not change during a page view.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Journey thresholds.
    pub thresholds: Thresholds,
    /// Consent default and GPC.
    pub policy: Policy,
    /// `navigator.userAgent`.
    pub user_agent: String,
    /// `navigator.language`.
    pub locale: String,
    /// The thresholds `init` gave, which win over the server's site config.
    pub init_thresholds: ThresholdOverrides,
    /// Campaigns given to `init` (ranked); they win over the site config's of the same id.
    /// The engine takes them over when it is made.
    pub campaigns: Vec<Campaign>,
}

struct CallOptions {
    timestamp: Option<String>,
    user_hash: Option<String>,
}
crate::json_struct!(CallOptions { timestamp: "timestamp", user_hash: "userHash" });

impl Settings {
    /// Reads the parts of `init(options)` the core uses; unknown keys are ignored. Strict:
    /// any unreadable part is an error (see [`Settings::from_options_lenient`]).
    pub fn from_options(text: &str, gpc: bool, user_agent: &str, locale: &str) -> Result<Settings, Error> {
        match Settings::from_options_lenient(text, gpc, user_agent, locale) {
            (s, None) => Ok(s),
            (_, Some(e)) => Err(e),
        }
    }

    /// Reads `init(options)` part by part, so one mistyped option loses only itself: the
    /// settings from every readable part, and an error when some part was not readable.
    /// A consent mode that cannot be read means opt-in, the choice that stores nothing
    /// without the shopper's word.
    pub fn from_options_lenient(text: &str, gpc: bool, user_agent: &str, locale: &str) -> (Settings, Option<Error>) {
        let mut s = Settings {
            user_agent: crate::json::clip(user_agent, 512),
            locale: crate::json::clip(locale, 35),
            ..Settings::default()
        };
        s.policy.gpc = gpc;
        let v = match crate::json_value::parse(text, MAX_STATE_DEPTH) {
            Ok(v @ Value::Obj(_)) => v,
            _ => return (s, Some(Error::BadOptions)),
        };
        let mut bad = false;
        let (mut campaigns, mut problems) = read_all(field(&v, "campaigns"));
        for c in campaigns.iter_mut() {
            c.init = true;
        }
        s.campaigns = campaigns;
        match field(&v, "thresholds") {
            Value::Null => {}
            t @ Value::Obj(_) => {
                let (o, wrong) = ThresholdOverrides::read(t);
                s.thresholds.apply(&o);
                s.init_thresholds = o;
                bad |= wrong;
            }
            _ => bad = true,
        }
        match field(&v, "consent") {
            Value::Null => {}
            c => match optional::<String>(c, "mode").as_ref().map(|m| m.as_deref()) {
                Ok(None) => {}
                Ok(Some("opt-out")) => s.policy.mode = Mode::OptOut,
                Ok(Some("opt-in")) => s.policy.mode = Mode::OptIn,
                _ => {
                    s.policy.mode = Mode::OptIn;
                    bad = true;
                }
            },
        }
        if bad {
            problems.insert(0, Error::BadOptions);
        }
        (s, problems.first().copied())
    }
}

/// The profile, the outbox and the settings, behind one front door.
pub struct Engine {
    /// The shopper's profile.
    pub profile: Profile,
    /// Messages waiting to be sent.
    pub outbox: Outbox,
    settings: Settings,
    context: Option<(PageInfo, Millis, String)>,
    /// Campaigns in force, ranked: `init`'s, then the site config's.
    campaigns: Vec<Campaign>,
    /// The page (URL without fragment) that last showed a product or the cart: going back
    /// from it is leaving.
    shop_page: String,
    /// Messages made so far (to tell whether a call made any).
    made: u64,
}

impl Engine {
    /// A fresh engine; `seed` makes the anonymous id.
    pub fn new(mut settings: Settings, seed: &str) -> Engine {
        let campaigns = std::mem::take(&mut settings.campaigns);
        Engine {
            profile: Profile::new(uuid(seed, 0)),
            outbox: Outbox::default(),
            settings,
            context: None,
            campaigns,
            shop_page: String::new(),
            made: 0,
        }
    }

    /// Replaces the profile with a stored one; says whether it was migrated or replaced.
    pub fn load_profile(&mut self, text: &str) -> Loaded {
        let (p, how) = Profile::decode(text, self.profile.anonymous_id.clone());
        self.profile = p;
        how
    }

    /// Absorbs the server's answer to a profile read-back (`GET /v1/profile`, JSON whose
    /// `state` is the user's stored profile merged across devices): see `absorb`. Stage
    /// changes it causes are returned for `on('stage')` listeners but not queued as events:
    /// the server found them first. An answer for another user is ignored.
    pub fn absorb_remote(&mut self, text: &str, now: Millis) -> Result<Outputs, Error> {
        let v = crate::json_value::parse(text, MAX_STATE_DEPTH).map_err(|_| Error::BadJson)?;
        let remote = Profile::read(field(&v, "state")).ok_or(Error::BadJson)?;
        let mut out = Outputs::default();
        if self.profile.user_id.is_none() || remote.user_id != self.profile.user_id {
            return Ok(out);
        }
        crate::absorb::absorb(&mut self.profile, &remote, now, &self.settings.thresholds);
        out.stage_changes = self.settle_stages(now);
        Ok(out)
    }

    /// Applies the site config the server serves (`GET /v1/config`:
    /// `{"thresholds": {...}, "campaigns": [...]}`): its thresholds replace the defaults, and
    /// those given to `init` still win; its campaigns join `init`'s (which win on the same
    /// id). A campaign that cannot be read is skipped and reported in `problems`. Stages that
    /// change with the new thresholds are returned for `on('stage')`, not queued as events.
    pub fn apply_site_config(&mut self, text: &str, now: Millis) -> Result<Outputs, Error> {
        let v = crate::json_value::parse(text, MAX_STATE_DEPTH).map_err(|_| Error::BadJson)?;
        let (server, _) = ThresholdOverrides::read(field(&v, "thresholds"));
        let mut th = Thresholds::default();
        th.apply(&server);
        th.apply(&self.settings.init_thresholds);
        self.settings.thresholds = th;
        let (site, mut problems) = read_all(field(&v, "campaigns"));
        self.campaigns.retain(|c| c.init);
        for c in site {
            // A site campaign with the id of one given to `init` gives way to it.
            if let Some(e) = merge(&mut self.campaigns, c) {
                if self.campaigns.len() >= crate::campaign::MAX_CAMPAIGNS {
                    problems.push(e);
                }
            }
        }
        Ok(Outputs { stage_changes: self.settle_stages(now), problems, ..Outputs::default() })
    }

    /// The campaigns in force, ranked.
    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }

    /// Each category's stage as of `now` against the one last reported: the changes.
    fn settle_stages(&mut self, now: Millis) -> Vec<StageChange> {
        let th = &self.settings.thresholds;
        let mut changes = Vec::new();
        for (cat, ev) in self.profile.categories.iter_mut() {
            if let Some((from, to)) = ev.settle(now, th) {
                changes.push(StageChange { category: cat.clone(), from, to });
            }
        }
        changes
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Consent in force now.
    pub fn consent(&self) -> Effective {
        self.settings.policy.effective(&self.profile.consent)
    }

    /// Each campaign's standing for the shopper now, as `debug()` shows it:
    /// `[{"id","on","standing"}]` in rank order (see [`crate::decide::standings`]); every
    /// campaign is `no personalization consent` without that consent.
    pub fn campaigns_json(&self, now: Millis) -> String {
        let consent = self.consent().personalization;
        let standing = standings(&self.campaigns, &self.profile, &self.profile.popups, now, &self.settings.thresholds);
        let mut out = String::from("[");
        for (i, c) in self.campaigns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            push_field(&mut out, "id", &c.id);
            push_field(&mut out, "on", c.trigger.name());
            push_field(&mut out, "standing", if consent { standing[i] } else { "no personalization consent" });
            out.push('}');
        }
        out.push(']');
        out
    }

    /// `recommend(options)`: the catalogue ranked for this shopper as `[[index,"reason"],...]`
    /// (see [`crate::recommend`]). Without `personalization` consent the shopper's profile
    /// is not used: the ranking is the one a new visitor gets.
    pub fn recommend(&self, catalog: &Catalog, request: &str, now: Millis) -> Result<String, Error> {
        let refused = |r: Refusal| Error::Recommend(r.message());
        let request = Request::read(request).map_err(refused)?;
        let profile = if self.consent().personalization { &self.profile } else { &crate::profile::BLANK };
        let picks = rank(catalog, profile, &request, now, &self.settings.thresholds).map_err(refused)?;
        Ok(picks_json(&picks))
    }

    /// True when the profile and outbox may be written to storage (analytics consent).
    pub fn may_store(&self) -> bool {
        self.consent().analytics
    }

    /// The JSON that `profile()` returns.
    pub fn profile_json(&self, now: Millis) -> String {
        self.profile.view(now, &self.settings.thresholds, self.consent())
    }

    /// Applies an input forwarded by another tab, once: `seq` increases per tab.
    pub fn apply_forwarded(&mut self, tab: &str, seq: u64, input: &Input) -> Result<Outputs, Error> {
        if !self.profile.is_new(tab, seq) {
            return Ok(Outputs::default());
        }
        // Recorded once applied: a refused call changes nothing, not even the ledger. (No
        // call changes the ledger itself, so recording it after is as recording it before.)
        let out = self.apply(input)?;
        self.profile.ack(tab, seq, input.now);
        Ok(out)
    }

    /// Applies one call. On error nothing has changed.
    pub fn apply(&mut self, input: &Input) -> Result<Outputs, Error> {
        let opts = match input.options.as_deref().unwrap_or("").trim_ascii() {
            "" | "null" => None,
            t => Some(CallOptions::from_json(t).ok_or(Error::BadOptions)?),
        };
        let at = match opts.as_ref().and_then(|o| o.timestamp.as_deref()) {
            Some(ts) => parse_iso(ts)?,
            None => input.now,
        };
        let name = input.name.as_deref().unwrap_or("");
        match input.kind {
            Kind::Track => {
                check_name(name)?;
                let props = parse_props(input.props.as_deref())?;
                let mut out = self.touch(input);
                self.fold_commerce(name, &props, at, &mut out);
                if matches!(name, "Product Viewed" | "Cart Viewed" | "Checkout Started") {
                    self.shop_page = page_key(&input.page.url).to_string();
                }
                self.emit(input, "track", Some(name), &compact(input.props.as_deref(), &props), at, 0);
                self.report_stages(input, at, &mut out);
                let changes = std::mem::take(&mut out.stage_changes);
                for ch in &changes {
                    self.offer_popup(input, Moment::StageEntered(&ch.category, ch.to), at, &mut out);
                }
                out.stage_changes = changes;
                Ok(out)
            }
            Kind::Page => {
                if !name.is_empty() {
                    check_name(name)?;
                }
                let mut props = parse_props(input.props.as_deref())?;
                let page = &input.page;
                for &(k, v) in &[
                    ("path", page.path()),
                    ("url", &page.url),
                    ("title", &page.title),
                    ("referrer", &page.referrer),
                    ("search", page.search()),
                ] {
                    if crate::json_value::get(&props, k).is_none() {
                        props.push((k.into(), Value::Str(v.into())));
                    }
                }
                let mut out = self.touch(input);
                self.emit(input, "page", (!name.is_empty()).then_some(name), &to_text(&props), at, 0);
                self.offer_popup(input, Moment::Page(input.page.path()), at, &mut out);
                Ok(out)
            }
            Kind::Identify => {
                // The same rule as event names, with its own error.
                check_name(name).map_err(|_| Error::UserId)?;
                let traits = parse_props(input.props.as_deref())?;
                let out = self.touch(input);
                let body = compact(input.props.as_deref(), &traits);
                self.merge_traits(traits);
                self.profile.user_id = Some(name.to_string());
                if let Some(h) = opts.and_then(|o| o.user_hash) {
                    self.profile.user_hash = Some(crate::json::clip(&h, 128));
                }
                self.emit(input, "identify", None, &body, at, 0);
                Ok(out)
            }
            Kind::Consent => {
                let choices = Choices::parse(input.props.as_deref().unwrap_or(""))?;
                let before = self.consent().analytics;
                self.choose(input, choices, at, 0);
                let mut out = Outputs::default();
                if choices.analytics == Some(false) {
                    // Withdrawn: drop what was held or stored.
                    self.outbox.clear();
                    self.profile.clear_journey();
                    self.profile.traits = None;
                    out.wipe_storage = true;
                } else if before && !self.consent().analytics {
                    out.wipe_storage = true;
                }
                Ok(out)
            }
            Kind::Reset => {
                self.restart(&input.seed);
                Ok(Outputs::default())
            }
            Kind::Forget => {
                let allowed = self.may_store();
                let consent = self.profile.consent;
                self.outbox.clear();
                if allowed {
                    let mut body = String::from("{");
                    push_field(&mut body, "reason", "forget() called in the browser");
                    body.push('}');
                    self.emit(input, "track", Some("Erasure Requested"), &body, at, 0);
                }
                self.restart(&input.seed);
                self.profile.consent = consent;
                // Erasure takes the popup ledger too (a reset keeps it: same device).
                self.profile.popups = Default::default();
                Ok(Outputs { wipe_storage: true, ..Outputs::default() })
            }
            Kind::Signal => {
                let made = self.made;
                let mut out = self.on_signal(input, at)?;
                out.quiet = out.popup.is_none() && self.made == made;
                Ok(out)
            }
            Kind::Popup => self.on_outcome(input, name, at),
        }
    }

    /// Merges consent choices; when consent in force changed, tells the server (and,
    /// through it, email, SMS and ads) what the shopper now allows: its profile takes
    /// consent from the latest message.
    fn choose(&mut self, input: &Input, choices: Choices, at: Millis, n: u16) {
        let was = self.consent();
        self.profile.consent.merge(choices);
        let now_in_force = self.consent();
        if now_in_force.analytics && now_in_force != was {
            let mut body = String::new();
            consent_json(&mut body, now_in_force);
            self.emit(input, "track", Some("Consent Preference Updated"), &body, at, n);
        }
    }

    /// A new anonymous shopper: new id, no user, no journey. Consent and the tab ledger stay.
    fn restart(&mut self, seed: &str) {
        let mut fresh = Profile::new(uuid(seed, 0x7e57));
        fresh.consent = self.profile.consent;
        // What the shopper dismissed or bought on this device still counts.
        fresh.popups.seen = std::mem::take(&mut self.profile.popups.seen);
        fresh.acks = std::mem::take(&mut self.profile.acks);
        self.profile = fresh;
        self.context = None;
    }

    fn touch(&mut self, input: &Input) -> Outputs {
        // Clipped before it is compared or stored: a URL can be as long as it likes.
        let campaign = input.page.param("utm_campaign").map(|c| crate::json::clip(&c, 100));
        let timeout = self.settings.thresholds.session_timeout();
        if self.profile.session.touch(input.now, campaign.as_deref(), timeout) {
            self.context = None;
        }
        Outputs::default()
    }

    fn fold_commerce(&mut self, event: &str, props: &Object, at: Millis, out: &mut Outputs) {
        let _ = out;
        let th = self.settings.thresholds.clone();
        let ahl = th.affinity_half_life();
        let category = get_str(props, "category");
        let brand = get_str(props, "brand");
        let price = get_num(props, "price");
        if let Some(c) = get_str(props, "currency") {
            self.profile.cart.currency = Some(crate::json::clip(&c, 8));
        }
        // The categories the event is evidence for, and of what.
        let mut touched: Vec<String> = Vec::new();
        let mut signal = Signal::View;
        match event {
            "Product Viewed" => {
                self.profile.affinities.observe(category.as_deref(), brand.as_deref(), price, affinity::VIEW, at, ahl);
                if let Some(id) = product_id(props) {
                    self.profile.remember_product(&id, at, false);
                }

                if let Some(c) = category {
                    touched.push(c);
                }
            }
            "Product Added" | "Product Added to Wishlist" => {
                let wish = event.ends_with("Wishlist");
                self.profile.affinities.observe(category.as_deref(), brand.as_deref(), price, affinity::ADD, at, ahl);
                if !wish {
                    if let Some(line) = Line::from_props(props) {
                        self.profile.cart.add(line, at);
                    }
                }
                if !wish {
                    if let Some(c) = category {
                        touched.push(c);
                    }
                    signal = Signal::Intent;
                }
            }
            "Product Removed" => {
                if let Some(id) = product_id(props) {
                    self.profile.cart.remove(&id, get_num(props, "quantity"), at);
                }
            }
            "Cart Viewed" => {
                self.profile.cart.replace(props, at);
            }
            "Checkout Started" => {
                self.profile.cart.replace(props, at);
                self.profile.cart.start_checkout(at);
                touched = self.cart_categories(props);
                signal = Signal::Intent;
            }
            "Order Completed" => {
                for p in get_objects(props, "products") {
                    if let Some(id) = product_id(p) {
                        self.profile.remember_product(&id, at, true);
                    }
                    self.profile.affinities.observe(
                        get_str(p, "category").as_deref(),
                        get_str(p, "brand").as_deref(),
                        get_num(p, "price"),
                        affinity::ORDER,
                        at,
                        ahl,
                    );
                }
                touched = self.cart_categories(props);
                signal = Signal::Order;
                self.profile.cart.clear(at);
            }
            _ => {}
        }
        for c in touched {
            let c = crate::json::clip(&c, 64);
            self.profile.category(&c, at, &th).observe(signal, at, &th);
        }
    }

    /// Categories of the products in the event, or of the cart when it lists none.
    fn cart_categories(&self, props: &Object) -> Vec<String> {
        // Sorted and without repeats, placed one by one (no generic sort in the Wasm).
        let mut cats: Vec<String> = Vec::new();
        let mut add = |c: String| {
            if let Err(i) = cats.binary_search(&c) {
                cats.insert(i, c);
            }
        };
        let mut named = false;
        for p in get_objects(props, "products") {
            if let Some(c) = get_str(p, "category") {
                named = true;
                add(c);
            }
        }
        if !named {
            for l in &self.profile.cart.lines {
                if let Some(c) = &l.category {
                    add(c.clone());
                }
            }
        }
        if let Some(c) = get_str(props, "category") {
            add(c);
        }
        cats
    }

    /// Compares each category's stage with the one last reported; reports changes as
    /// `Stage Changed` events and in the outputs.
    fn report_stages(&mut self, input: &Input, at: Millis, out: &mut Outputs) {
        let changes = self.settle_stages(input.now.max(at));
        for (i, ch) in changes.iter().enumerate() {
            self.emit(input, "track", Some("Stage Changed"), &ch.to_json(), at, i as u16 + 1);
        }
        out.stage_changes = changes;
    }

    fn merge_traits(&mut self, traits: Object) {
        if traits.is_empty() {
            return;
        }
        let mut merged = match self.profile.traits.as_deref().map(|t| parse_props(Some(t))) {
            Some(Ok(o)) => o,
            _ => Object::new(),
        };
        for (k, v) in traits {
            match merged.iter_mut().find(|(old, _)| *old == k) {
                Some(slot) => slot.1 = v,
                None => merged.push((k, v)),
            }
        }
        let text = to_text(&merged);
        if text.len() <= MAX_TRAITS_BYTES {
            self.profile.traits = Some(text);
        }
    }

    /// Queues a message unless analytics consent was refused. Without a choice yet (opt-in
    /// sites) it is held in memory: the shell neither stores nor sends before consent.
    fn emit(&mut self, input: &Input, kind: &str, name: Option<&str>, body: &str, at: Millis, n: u16) {
        self.made += 1;
        if self.profile.consent.analytics == Some(false) {
            return;
        }
        let session = self.profile.session.id;
        let stale = !matches!(&self.context, Some((p, s, _)) if *p == input.page && *s == session);
        if stale {
            let s = &self.settings;
            self.context =
                Some((input.page.clone(), session, render_context(&input.page, &s.user_agent, &s.locale, session)));
        }
        let context = self.context.as_ref().map_or("{}", |c| c.2.as_str());
        let mut consent = String::with_capacity(64);
        consent_json(&mut consent, self.consent());
        let id = uuid(&input.seed, n);
        let message = write(&Parts {
            id: &id,
            kind,
            name,
            body,
            anonymous_id: &self.profile.anonymous_id,
            user_id: self.profile.user_id.as_deref(),
            timestamp: &to_iso(at),
            context,
            consent: &consent,
        });
        self.outbox.push(message);
    }
}

/// What identifies a page: the URL without its fragment.
fn page_key(url: &str) -> &str {
    crate::json::before_byte(url, b'#')
}

/// The page's own JSON text when it is compact enough to pass through, else re-serialised.
fn compact(text: Option<&str>, parsed: &Object) -> String {
    match text.unwrap_or("").trim_ascii() {
        t if t.starts_with('{') && t.len() <= MAX_PROPS_BYTES && crate::json::find_byte(t, b'\n').is_none() => {
            t.to_string()
        }
        _ => to_text(parsed),
    }
}
