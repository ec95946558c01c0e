//! Campaigns: which popup to show, to whom and when. A site defines them as JSON (the same
//! form in its campaign file, the secret-key API and the public site config); this module
//! reads them into a compact model, checking each on its own so that one bad campaign is
//! skipped and reported while the others still apply.
//!
//! The model is kept sorted by priority (highest first, ties by id ascending), so deciding
//! is one scan that stops at the first eligible campaign (see [`crate::decide`]).
//!
//! ```
//! use nudge::campaign::read_all;
//! let v = nudge::json_value::parse(r#"[{"id":"a","trigger":{"on":"exit-intent"},"content":{"title":"Hi"}},
//!   {"id":"b!","trigger":{"on":"exit-intent"},"content":{}}]"#, 12).unwrap();
//! let (campaigns, problems) = read_all(&v);
//! assert_eq!(campaigns.len(), 1);
//! assert_eq!(problems.len(), 1);
//! ```

use crate::error::Error;
use crate::funnel::Stage;
use crate::json_value::{write, Obj, Value};

/// Most campaigns kept per site; the rest are skipped and reported.
pub const MAX_CAMPAIGNS: usize = 100;
/// Most characters in a campaign id.
pub const MAX_ID: usize = 64;
/// Most bytes of a campaign's content and offer JSON together.
pub const MAX_CONTENT_BYTES: usize = 4096;

/// Which kind of leaving an abandon-intent campaign answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandon {
    /// A non-empty cart and no checkout.
    Cart,
    /// A product viewed in a category in the `decision` stage, nothing added.
    Browse,
}

impl Abandon {
    /// `"cart"` or `"browse"`.
    pub fn name(self) -> &'static str {
        match self {
            Abandon::Cart => "cart",
            Abandon::Browse => "browse",
        }
    }
}

/// What makes a campaign a candidate (`trigger.on`).
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `exit-intent`: any leaving signal (see [`crate::intent`]).
    ExitIntent,
    /// `abandon-intent`: leaving with a cart (or a browse) to abandon; `None` takes either.
    AbandonIntent(Option<Abandon>),
    /// `stage-entered`: a category (any when `None`) entered the stage.
    StageEntered(Stage, Option<String>),
    /// `page`: a page view whose path starts with this prefix.
    Page(String),
    /// `time-on-page`: the shopper has been on the page this many seconds.
    TimeOnPage(f64),
    /// `scroll-depth`: the shopper has scrolled this far down the page, in percent.
    ScrollDepth(f64),
}

impl Trigger {
    /// The `on` name, as written in campaigns and in the popup events' `trigger`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::ExitIntent => "exit-intent",
            Trigger::AbandonIntent(_) => "abandon-intent",
            Trigger::StageEntered(..) => "stage-entered",
            Trigger::Page(_) => "page",
            Trigger::TimeOnPage(_) => "time-on-page",
            Trigger::ScrollDepth(_) => "scroll-depth",
        }
    }
}

/// Who may see a campaign; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Audience {
    /// `stage`: the category (overall stage when `None`) and the accepted stages, as a bit
    /// set indexed by `Stage as u8`.
    pub stage: Option<(Option<String>, u8)>,
    /// `cartValue.min`.
    pub cart_min: Option<f64>,
    /// `cartValue.max`.
    pub cart_max: Option<f64>,
    /// `visitor`: `Some(true)` returning only, `Some(false)` new only.
    pub returning: Option<bool>,
    /// `identified`: a user id known (true) or not (false).
    pub identified: Option<bool>,
}

/// Frequency caps. Deliberately protective by default: without `perSession` a campaign is
/// shown at most once per session (a popup that comes back on every exit is what makes
/// shoppers leave); the other caps are off unless given.
#[derive(Debug, Clone, PartialEq)]
pub struct Caps {
    /// Most shows per session. Default 1.
    pub per_session: u32,
    /// Most shows per 24 hours (counted from the first show of the window).
    pub per_day: Option<u32>,
    /// Most shows ever.
    pub ever: Option<u32>,
    /// Days not shown again after a dismissal (0: no pause).
    pub dismiss_days: f64,
    /// Days not shown again after a conversion (0: no pause).
    pub convert_days: f64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps { per_session: 1, per_day: None, ever: None, dismiss_days: 0.0, convert_days: 0.0 }
    }
}

/// One campaign, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// 1 to 64 characters of `[A-Za-z0-9_-]`, unique per site.
    pub id: String,
    /// Higher wins.
    pub priority: f64,
    /// Share of shoppers held out, 0 to 0.9.
    pub holdout: f64,
    /// When it is a candidate.
    pub trigger: Trigger,
    /// Who may see it.
    pub audience: Audience,
    /// How often.
    pub caps: Caps,
    /// The `content` object as JSON text, passed to the popup as it came (an `image` that
    /// is neither https nor a same-origin path is left out). The popup renders it as text.
    pub content: String,
    /// The `offer` object as JSON text, if any.
    pub offer: Option<String>,
}

/// Reads a list of campaigns (a JSON array): the good ones sorted by priority, and one
/// error per campaign skipped (unreadable, a duplicate id, or past [`MAX_CAMPAIGNS`]).
pub fn read_all(v: &Value) -> (Vec<Campaign>, Vec<Error>) {
    let mut out: Vec<Campaign> = Vec::new();
    let mut problems = Vec::new();
    let items: &[Value] = match v {
        Value::Arr(items) => items,
        Value::Null => &[],
        _ => return (out, vec![Error::Campaign("campaigns must be an array")]),
    };
    for item in items {
        match read(item) {
            Ok(c) if out.iter().any(|o| o.id == c.id) => problems.push(Error::Campaign("a campaign id repeats")),
            Ok(_) if out.len() >= MAX_CAMPAIGNS => problems.push(Error::Campaign("more than 100 campaigns")),
            Ok(c) => insert_ranked(&mut out, c),
            Err(e) => problems.push(e),
        }
    }
    (out, problems)
}

/// Merges `extra` into `ranked` (both sorted), skipping ids `ranked` already has: the
/// campaigns given to `init` win over the site config's.
pub fn merge(ranked: &mut Vec<Campaign>, extra: &[Campaign]) {
    for c in extra {
        if ranked.len() < MAX_CAMPAIGNS && !ranked.iter().any(|o| o.id == c.id) {
            insert_ranked(ranked, c.clone());
        }
    }
}

/// Places `c` after every campaign that outranks it (placed one by one: no generic sort in
/// the Wasm).
fn insert_ranked(list: &mut Vec<Campaign>, c: Campaign) {
    let at = list.iter().position(|o| c.priority > o.priority || (c.priority == o.priority && c.id < o.id));
    list.insert(at.unwrap_or(list.len()), c);
}

fn bad(why: &'static str) -> Error {
    Error::Campaign(why)
}

fn num(v: &Value, key: &str) -> Result<Option<f64>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_f64().filter(|x| x.is_finite()).map(Some).ok_or(bad("a campaign number is not a number")),
    }
}

fn count(v: &Value, key: &str) -> Result<Option<u32>, Error> {
    Ok(match num(v, key)? {
        Some(n) if n >= 0.0 && n.fract() == 0.0 => Some(n.min(u32::MAX as f64) as u32),
        Some(_) => return Err(bad("a campaign cap must be a whole number")),
        None => None,
    })
}

fn text<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(bad("a campaign field that takes text has something else")),
    }
}

fn flag(v: &Value, key: &str) -> Result<Option<bool>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad("a campaign field that takes true or false has something else")),
    }
}

/// An object member, or `None` when missing or null; anything else is an error.
fn object<'a>(v: &'a Value, key: &str) -> Result<Option<&'a Value>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(o @ Value::Obj(_)) => Ok(Some(o)),
        Some(_) => Err(bad("a campaign part that must be an object is not one")),
    }
}

fn stage(name: &str) -> Result<Stage, Error> {
    <Stage as crate::codec::Json>::read(&Value::Str(name.into())).ok_or(bad("unknown stage in a campaign"))
}

/// Reads one campaign.
pub fn read(v: &Value) -> Result<Campaign, Error> {
    if v.as_obj().is_none() {
        return Err(bad("a campaign must be an object"));
    }
    let id = text(v, "id")?.unwrap_or("");
    let id_ok =
        (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(bad("a campaign id must be 1 to 64 of A-Z a-z 0-9 _ -"));
    }
    let holdout = num(v, "holdout")?.unwrap_or(0.0);
    if !(0.0..=0.9).contains(&holdout) {
        return Err(bad("a campaign holdout must be from 0 to 0.9"));
    }
    let caps = match object(v, "caps")? {
        None => Caps::default(),
        Some(c) => Caps {
            per_session: count(c, "perSession")?.unwrap_or(1),
            per_day: count(c, "perDay")?,
            ever: count(c, "ever")?,
            dismiss_days: num(c, "dismissDays")?.unwrap_or(0.0).max(0.0),
            convert_days: num(c, "convertDays")?.unwrap_or(0.0).max(0.0),
        },
    };
    let content = content(object(v, "content")?.ok_or(bad("a campaign needs content"))?)?;
    let offer = match object(v, "offer")? {
        Some(o) => Some(offer(o)?),
        None => None,
    };
    if content.len() + offer.as_ref().map_or(0, String::len) > MAX_CONTENT_BYTES {
        return Err(bad("a campaign's content and offer must be at most 4 KB"));
    }
    Ok(Campaign {
        id: id.to_string(),
        priority: num(v, "priority")?.unwrap_or(0.0),
        holdout,
        trigger: trigger(object(v, "trigger")?.ok_or(bad("a campaign needs a trigger"))?)?,
        audience: match object(v, "audience")? {
            Some(a) => audience(a)?,
            None => Audience::default(),
        },
        caps,
        content,
        offer,
    })
}

fn trigger(t: &Value) -> Result<Trigger, Error> {
    let positive = |key| match num(t, key) {
        Ok(Some(n)) if n >= 0.0 => Ok(n),
        _ => Err(bad("a campaign trigger needs a number of 0 or more")),
    };
    Ok(match text(t, "on")?.unwrap_or("") {
        "exit-intent" => Trigger::ExitIntent,
        "abandon-intent" => Trigger::AbandonIntent(match text(t, "kind")? {
            None => None,
            Some("cart") => Some(Abandon::Cart),
            Some("browse") => Some(Abandon::Browse),
            Some(_) => return Err(bad("abandon-intent kind must be cart or browse")),
        }),
        "stage-entered" => Trigger::StageEntered(
            stage(text(t, "stage")?.unwrap_or(""))?,
            text(t, "category")?.map(|c| crate::json::clip(c, 64)),
        ),
        "page" => Trigger::Page(text(t, "path")?.ok_or(bad("a page trigger needs a path"))?.to_string()),
        "time-on-page" => Trigger::TimeOnPage(positive("seconds")?),
        "scroll-depth" => Trigger::ScrollDepth(positive("percent")?),
        _ => return Err(bad("unknown campaign trigger")),
    })
}

fn audience(a: &Value) -> Result<Audience, Error> {
    let mut out = Audience::default();
    if let Some(s) = object(a, "stage")? {
        let mut set = 0u8;
        match s.get("in") {
            Some(Value::Arr(names)) => {
                for n in names {
                    set |= 1 << stage(n.as_str().unwrap_or(""))? as u8;
                }
            }
            _ => return Err(bad("audience stage needs an array of stages in `in`")),
        }
        out.stage = Some((text(s, "category")?.map(|c| crate::json::clip(c, 64)), set));
    }
    if let Some(c) = object(a, "cartValue")? {
        out.cart_min = num(c, "min")?;
        out.cart_max = num(c, "max")?;
    }
    out.returning = match text(a, "visitor")? {
        None => None,
        Some("new") => Some(false),
        Some("returning") => Some(true),
        Some(_) => return Err(bad("audience visitor must be new or returning")),
    };
    out.identified = flag(a, "identified")?;
    Ok(out)
}

/// True for an image URL the popup may load: https, or a path on the same origin.
pub fn image_allowed(url: &str) -> bool {
    url.starts_with("https://") || (url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\"))
}

fn content(c: &Value) -> Result<String, Error> {
    let Value::Obj(members) = c else { return Err(bad("campaign content must be an object")) };
    let mut kept: Obj = Vec::with_capacity(members.len());
    for (k, v) in members {
        match v {
            Value::Str(s) if k == "image" && !image_allowed(s) => continue,
            Value::Str(_) | Value::Bool(_) | Value::UInt(_) | Value::Num(_) | Value::Null => {}
            _ => return Err(bad("campaign content holds only text, numbers and true or false")),
        }
        kept.push((k.clone(), v.clone()));
    }
    let mut s = String::new();
    write(&mut s, &Value::Obj(kept));
    Ok(s)
}

fn offer(o: &Value) -> Result<String, Error> {
    let unique = flag(o, "unique")?.unwrap_or(false);
    let code = text(o, "code")?;
    if !unique && !code.is_some_and(|c| (1..=64).contains(&c.len())) {
        return Err(bad("an offer needs a code (1 to 64 characters) or unique: true"));
    }
    let percent = num(o, "percent")?;
    let amount = num(o, "amount")?;
    let ok = match (percent, amount) {
        (Some(p), None) => p > 0.0 && p <= 100.0,
        (None, Some(a)) => a > 0.0,
        (None, None) => !unique,
        _ => false,
    };
    if !ok || num(o, "expiresDays")?.is_some_and(|d| d <= 0.0) {
        return Err(bad("an offer takes percent (0 to 100) or amount (over 0), and expiresDays over 0"));
    }
    let mut s = String::new();
    write(&mut s, o);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_value::parse;

    fn one(text: &str) -> Result<Campaign, Error> {
        read(&parse(text, 12).unwrap())
    }

    #[test]
    fn the_plan_s_example_reads_whole() {
        let c = one(r#"{"id":"tv-newsletter","priority":10,"holdout":0.1,"trigger":{"on":"exit-intent"},
            "audience":{"stage":{"category":"tvs","in":["decision"]},"cartValue":{"min":100,"max":5000},
              "visitor":"returning","identified":false},
            "offer":{"code":"SAVE10","percent":10,"expiresDays":7},
            "content":{"title":"Wait","text":"<img src=x onerror=alert(1)>","button":"Go","emailField":true,
              "image":"https://cdn.example/a.png"},
            "caps":{"perSession":1,"perDay":2,"ever":3,"dismissDays":7,"convertDays":30}}"#)
        .unwrap();
        assert_eq!(c.id, "tv-newsletter");
        assert_eq!(c.trigger, Trigger::ExitIntent);
        assert_eq!(c.audience.stage, Some((Some("tvs".into()), 1 << Stage::Decision as u8)));
        assert_eq!((c.audience.cart_min, c.audience.cart_max), (Some(100.0), Some(5000.0)));
        assert_eq!((c.audience.returning, c.audience.identified), (Some(true), Some(false)));
        assert_eq!(
            c.caps,
            Caps { per_session: 1, per_day: Some(2), ever: Some(3), dismiss_days: 7.0, convert_days: 30.0 }
        );
        assert!(c.content.contains(r#""text":"<img src=x onerror=alert(1)>""#), "{}", c.content);
        assert_eq!(c.offer.as_deref(), Some(r#"{"code":"SAVE10","percent":10,"expiresDays":7}"#));
    }

    #[test]
    fn images_that_are_not_https_or_same_origin_are_left_out() {
        for (url, kept) in [
            ("https://a/b.png", true),
            ("/img/a.png", true),
            ("http://a/b.png", false),
            ("//evil/a.png", false),
            ("javascript:x", false),
        ] {
            let c = one(&format!(r#"{{"id":"a","trigger":{{"on":"exit-intent"}},"content":{{"image":"{url}"}}}}"#))
                .unwrap();
            assert_eq!(c.content.contains("image"), kept, "{url}");
        }
    }

    #[test]
    fn bad_campaigns_are_refused_with_a_reason() {
        for text in [
            r#"{"id":"","trigger":{"on":"exit-intent"},"content":{}}"#,
            r#"{"id":"a b","trigger":{"on":"exit-intent"},"content":{}}"#,
            r#"{"id":"a","trigger":{"on":"sometimes"},"content":{}}"#,
            r#"{"id":"a","trigger":{"on":"exit-intent"}}"#,
            r#"{"id":"a","holdout":0.95,"trigger":{"on":"exit-intent"},"content":{}}"#,
            r#"{"id":"a","trigger":{"on":"stage-entered","stage":"bored"},"content":{}}"#,
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{"title":{"nested":1}}}"#,
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{},"offer":{"percent":10}}"#,
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{},"offer":{"unique":true,"percent":10,"amount":5}}"#,
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{},"caps":{"perDay":1.5}}"#,
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{},"audience":{"visitor":"old"}}"#,
            r#"[]"#,
        ] {
            assert!(matches!(one(text), Err(Error::Campaign(_))), "{text}");
        }
    }

    #[test]
    fn campaigns_rank_by_priority_then_id_and_repeats_are_skipped() {
        let v = parse(
            r#"[{"id":"b","priority":1,"trigger":{"on":"exit-intent"},"content":{}},
                {"id":"c","priority":5,"trigger":{"on":"exit-intent"},"content":{}},
                {"id":"a","priority":1,"trigger":{"on":"exit-intent"},"content":{}},
                {"id":"c","priority":9,"trigger":{"on":"exit-intent"},"content":{}},
                7]"#,
            12,
        )
        .unwrap();
        let (list, problems) = read_all(&v);
        let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        assert_eq!(problems.len(), 2);
        let mut merged = list.clone();
        merge(&mut merged, &[one(r#"{"id":"z","priority":3,"trigger":{"on":"exit-intent"},"content":{}}"#).unwrap()]);
        let ids: Vec<&str> = merged.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c", "z", "a", "b"]);
    }
}
