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
use crate::decide::{decide, Choice, Moment};
use crate::error::Error;
use crate::event::{check_name, parse_props, to_text, MAX_NAME, MAX_PROPS_BYTES};
use crate::funnel::{Signal, Stage};
use crate::identity::uuid;
use crate::intent::{abandonment, PageSignal};
use crate::json::{get_num, get_objects, get_str, push_field, push_key, push_str};
use crate::json::{Object, Value};
use crate::message::{render_context, write, PageInfo, Parts};
use crate::outbox::Outbox;
use crate::profile::{consent_json, Loaded, Profile, MAX_TRAITS_BYTES};
use crate::time::{parse_iso, to_iso, Millis};

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
        let before = self.profile.acks.clone();
        if !self.profile.ack(tab, seq, input.now) {
            return Ok(Outputs::default());
        }
        let out = self.apply(input);
        if out.is_err() {
            // A refused call changes nothing, not even the ledger.
            self.profile.acks = before;
        }
        out
    }

    /// Applies one call. On error nothing has changed.
    pub fn apply(&mut self, input: &Input) -> Result<Outputs, Error> {
        let opts = match input.options.as_deref().map(str::trim_ascii) {
            None | Some("") | Some("null") => None,
            Some(t) => Some(CallOptions::from_json(t).ok_or(Error::BadOptions)?),
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
                for (k, v) in [
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
                let n = name.chars().count();
                if n == 0 || n > MAX_NAME || name.trim_ascii().is_empty() {
                    return Err(Error::UserId);
                }
                let traits = parse_props(input.props.as_deref())?;
                let out = self.touch(input);
                self.merge_traits(&traits);
                self.profile.user_id = Some(name.to_string());
                if let Some(h) = opts.and_then(|o| o.user_hash) {
                    self.profile.user_hash = Some(crate::json::clip(&h, 128));
                }
                self.emit(input, "identify", None, &compact(input.props.as_deref(), &traits), at, 0);
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
                let old = self.profile.clone();
                self.outbox.clear();
                if allowed {
                    let mut body = String::from("{");
                    push_field(&mut body, "reason", "forget() called in the browser");
                    body.push('}');
                    self.emit(input, "track", Some("Erasure Requested"), &body, at, 0);
                }
                self.restart(&input.seed);
                self.profile.consent = old.consent;
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

    /// A page signal: when it says the shopper is leaving, queues the abandon intent (once
    /// per session per kind) and looks for an exit or abandon popup; time on page and
    /// scroll depth look for their popups.
    fn on_signal(&mut self, input: &Input, at: Millis) -> Result<Outputs, Error> {
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
    fn abandonment(&self, now: Millis) -> (Option<Abandon>, Option<&str>) {
        let p = &self.profile;
        let th = &self.settings.thresholds;
        let browsed = p
            .categories
            .iter()
            .filter(|(_, e)| e.views.last().is_some_and(|t| *t >= p.session.id) && e.stage(now, th) == Stage::Decision)
            .max_by_key(|(_, e)| e.views.last().copied())
            .map(|(c, _)| c.as_str());
        (abandonment(p.cart.lines.len(), p.cart.checkout > 0, browsed.is_some()), browsed)
    }

    /// Queues `Cart Abandon Intent` or `Browse Abandon Intent`: at most once per session
    /// per kind (the session is recorded in the shared popup ledger, so other tabs of the
    /// same session do not queue it again).
    fn abandon_intent(&mut self, input: &Input, kind: Abandon, category: Option<&str>, how: &str, at: Millis) {
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
    fn offer_popup(&mut self, input: &Input, m: Moment, at: Millis, out: &mut Outputs) {
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

    fn popup_event(&mut self, input: &Input, event: &str, id: &str, trigger: Option<&str>, at: Millis, n: u16) {
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
    fn on_outcome(&mut self, input: &Input, id: &str, at: Millis) -> Result<Outputs, Error> {
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
            self.merge_traits(&traits);
            self.emit(input, "identify", None, &to_text(&traits), at, 92);
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
        let mut touched: Vec<(String, Signal)> = Vec::new();
        match event {
            "Product Viewed" => {
                self.profile.affinities.observe(category.as_deref(), brand.as_deref(), price, affinity::VIEW, at, ahl);

                touched.extend(category.map(|c| (c, Signal::View)));
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
                    touched.extend(category.map(|c| (c, Signal::Intent)));
                }
            }
            "Product Removed" => {
                if let Some(id) = get_str(props, "product_id").or_else(|| get_str(props, "sku")) {
                    self.profile.cart.remove(&id, get_num(props, "quantity"), at);
                }
            }
            "Cart Viewed" => {
                self.profile.cart.replace(props, at);
            }
            "Checkout Started" => {
                self.profile.cart.replace(props, at);
                self.profile.cart.start_checkout(at);
                for c in self.cart_categories(props) {
                    touched.push((c, Signal::Intent));
                }
            }
            "Order Completed" => {
                for p in get_objects(props, "products") {
                    self.profile.affinities.observe(
                        get_str(p, "category").as_deref(),
                        get_str(p, "brand").as_deref(),
                        get_num(p, "price"),
                        affinity::ORDER,
                        at,
                        ahl,
                    );
                }
                for c in self.cart_categories(props) {
                    touched.push((c, Signal::Order));
                }
                self.profile.cart.clear(at);
            }
            _ => {}
        }
        for (c, signal) in touched {
            let c = crate::json::clip(&c, 64);
            self.profile.category(&c, at, &th).observe(signal, at, &th);
        }
    }

    /// Categories of the products in the event, or of the cart when it lists none.
    fn cart_categories(&self, props: &Object) -> Vec<String> {
        let mut named: Vec<String> = get_objects(props, "products").filter_map(|p| get_str(p, "category")).collect();
        if named.is_empty() {
            named = self.profile.cart.lines.iter().filter_map(|l| l.category.clone()).collect();
        }
        named.extend(get_str(props, "category"));
        // Sorted and without repeats, placed one by one (no generic sort in the Wasm).
        let mut cats: Vec<String> = Vec::with_capacity(named.len());
        for c in named {
            if let Err(i) = cats.binary_search(&c) {
                cats.insert(i, c);
            }
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

    fn merge_traits(&mut self, traits: &Object) {
        if traits.is_empty() {
            return;
        }
        let mut merged = match self.profile.traits.as_deref().map(|t| parse_props(Some(t))) {
            Some(Ok(o)) => o,
            _ => Object::new(),
        };
        for (k, v) in traits.iter() {
            match merged.iter_mut().find(|(old, _)| old == k) {
                Some(slot) => slot.1 = v.clone(),
                None => merged.push((k.clone(), v.clone())),
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
    let Some((local, domain)) = e.split_once('@') else { return false };
    let plain = |b: u8| b > b' ' && b != 0x7f && !b"@<>()[]\\,;:\"".contains(&b);
    e.len() <= 254
        && (1..=64).contains(&local.len())
        && local.bytes().chain(domain.bytes()).all(plain)
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// What identifies a page: the URL without its fragment.
fn page_key(url: &str) -> &str {
    url.split('#').next().unwrap_or("")
}

/// The page's own JSON text when it is compact enough to pass through, else re-serialised.
fn compact(text: Option<&str>, parsed: &Object) -> String {
    match text.map(str::trim_ascii) {
        Some(t) if t.starts_with('{') && t.len() <= MAX_PROPS_BYTES && !t.contains('\n') => t.to_string(),
        _ => to_text(parsed),
    }
}
