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
use crate::json_value::{write, Value};

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
    /// Given to `init` (kept when the site config's campaigns are replaced).
    pub init: bool,
}

/// Reads a list of campaigns (a JSON array): the good ones sorted by priority, and one
/// error per campaign skipped (unreadable, a duplicate id, or past [`MAX_CAMPAIGNS`]).
pub fn read_all(v: &Value) -> (Vec<Campaign>, Vec<Error>) {
    let mut out: Vec<Campaign> = Vec::new();
    let mut problems = Vec::new();
    let items: &[Value] = match v {
        Value::Arr(items) => items,
        Value::Null => &[],
        _ => return (out, vec![bad("campaigns must be an array")]),
    };
    for item in items {
        match read(item) {
            Ok(c) => {
                if let Some(skipped) = merge(&mut out, c) {
                    problems.push(skipped);
                }
            }
            Err(e) => problems.push(e),
        }
    }
    (out, problems)
}

/// Places `c` in `ranked` after every campaign that outranks it (one by one: no generic
/// sort in the Wasm), unless its id is there already (the first one wins: `init`'s
/// campaigns are placed before the site config's) or the list is full.
pub fn merge(ranked: &mut Vec<Campaign>, c: Campaign) -> Option<Error> {
    if ranked.iter().any(|o| o.id == c.id) {
        return Some(bad("campaign skipped: id repeats"));
    }
    if ranked.len() >= MAX_CAMPAIGNS {
        return Some(bad("campaign skipped: over 100 campaigns"));
    }
    let at = ranked.iter().position(|o| c.priority > o.priority || (c.priority == o.priority && c.id < o.id));
    ranked.insert(at.unwrap_or(ranked.len()), c);
    None
}

fn bad(why: &'static str) -> Error {
    Error::Campaign(why)
}

/// A member that is present and not null.
fn member<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|m| !matches!(m, Value::Null))
}

/// An optional finite number: `Some(None)` when absent, `None` when it is something else.
fn num(v: &Value, key: &str) -> Option<Option<f64>> {
    match member(v, key) {
        None => Some(None),
        Some(n) => n.as_f64().filter(|x| x.is_finite()).map(Some),
    }
}

/// An optional whole number of 0 or more.
fn count(v: &Value, key: &str) -> Option<Option<u32>> {
    match num(v, key)? {
        Some(n) if n >= 0.0 && n.fract() == 0.0 => Some(Some(n.min(u32::MAX as f64) as u32)),
        Some(_) => None,
        None => Some(None),
    }
}

/// An optional string.
fn text<'a>(v: &'a Value, key: &str) -> Option<Option<&'a str>> {
    match member(v, key) {
        None => Some(None),
        Some(t) => t.as_str().map(Some),
    }
}

/// An optional object.
fn object<'a>(v: &'a Value, key: &str) -> Option<Option<&'a Value>> {
    match member(v, key) {
        None => Some(None),
        Some(o) => o.as_obj().map(|_| Some(o)),
    }
}

/// The stage of that name.
pub fn stage_named(name: &str) -> Option<Stage> {
    [Stage::Awareness, Stage::Consideration, Stage::Decision, Stage::Purchase, Stage::Loyalty]
        .into_iter()
        .find(|s| s.name() == name)
}

/// True for a campaign id: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn id_ok(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads one campaign; the error names the part that could not be read.
pub fn read(v: &Value) -> Result<Campaign, Error> {
    let id = text(v, "id").flatten().filter(|id| id_ok(id));
    let id = id.ok_or(bad("campaign skipped: id must be 1-64 of A-Z a-z 0-9 _ -"))?;
    let priority = num(v, "priority").ok_or(bad("campaign skipped: bad priority"))?;
    let holdout = num(v, "holdout").map(|h| h.unwrap_or(0.0)).filter(|h| (0.0..=0.9).contains(h));
    let holdout = holdout.ok_or(bad("campaign skipped: holdout must be 0 to 0.9"))?;
    let trigger = object(v, "trigger").flatten().and_then(trigger);
    let trigger = trigger.ok_or(bad("campaign skipped: bad trigger"))?;
    let audience = object(v, "audience").and_then(|a| a.map_or(Some(Audience::default()), audience));
    let audience = audience.ok_or(bad("campaign skipped: bad audience"))?;
    let caps = object(v, "caps").and_then(|c| c.map_or(Some(Caps::default()), caps));
    let caps = caps.ok_or(bad("campaign skipped: bad caps"))?;
    let content = object(v, "content").flatten().and_then(content);
    let content = content.ok_or(bad("campaign skipped: content must be an object of plain values"))?;
    let offer = match object(v, "offer") {
        Some(None) => None,
        o => Some(o.flatten().and_then(offer).ok_or(bad("campaign skipped: offer must be an object"))?),
    };
    if content.len() + offer.as_ref().map_or(0, String::len) > MAX_CONTENT_BYTES {
        return Err(bad("campaign skipped: content and offer over 4 KB"));
    }
    let id = id.to_string();
    Ok(Campaign {
        id,
        priority: priority.unwrap_or(0.0),
        holdout,
        trigger,
        audience,
        caps,
        content,
        offer,
        init: false,
    })
}

fn trigger(t: &Value) -> Option<Trigger> {
    let at_least_zero = |key| num(t, key).flatten().filter(|n| *n >= 0.0);
    Some(match text(t, "on")?? {
        "exit-intent" => Trigger::ExitIntent,
        "abandon-intent" => Trigger::AbandonIntent(match text(t, "kind")? {
            None => None,
            Some("cart") => Some(Abandon::Cart),
            Some("browse") => Some(Abandon::Browse),
            Some(_) => return None,
        }),
        "stage-entered" => Trigger::StageEntered(
            stage_named(text(t, "stage")??)?,
            text(t, "category")?.map(|c| crate::json::clip(c, 64)),
        ),
        "page" => Trigger::Page(text(t, "path")??.to_string()),
        "time-on-page" => Trigger::TimeOnPage(at_least_zero("seconds")?),
        "scroll-depth" => Trigger::ScrollDepth(at_least_zero("percent")?),
        _ => return None,
    })
}

fn audience(a: &Value) -> Option<Audience> {
    let mut out = Audience::default();
    if let Some(s) = object(a, "stage")? {
        let Some(Value::Arr(names)) = member(s, "in") else { return None };
        let mut set = 0u8;
        for n in names {
            set |= 1 << stage_named(n.as_str()?)? as u8;
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
        Some(_) => return None,
    };
    out.identified = match member(a, "identified") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return None,
    };
    Some(out)
}

fn caps(c: &Value) -> Option<Caps> {
    Some(Caps {
        per_session: count(c, "perSession")?.unwrap_or(1),
        per_day: count(c, "perDay")?,
        ever: count(c, "ever")?,
        dismiss_days: num(c, "dismissDays")?.unwrap_or(0.0).max(0.0),
        convert_days: num(c, "convertDays")?.unwrap_or(0.0).max(0.0),
    })
}

/// True for an image URL the popup may load: https, or a path on the same origin.
pub fn image_allowed(url: &str) -> bool {
    url.starts_with("https://") || (url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\"))
}

/// The content object's JSON, written member by member as it came, without an `image`
/// the popup may not load.
fn content(c: &Value) -> Option<String> {
    let mut s = String::from("{");
    for (k, v) in c.as_obj()? {
        match v {
            Value::Str(url) if k == "image" && !image_allowed(url) => continue,
            Value::Arr(_) | Value::Obj(_) => return None,
            _ => {
                crate::json::push_key(&mut s, k);
                write(&mut s, v);
            }
        }
    }
    s.push('}');
    Some(s)
}

/// The offer's JSON as it came: the server checks offers when a site stores its campaigns
/// (and issues the unique codes); the popup only shows what is there.
fn offer(o: &Value) -> Option<String> {
    let mut s = String::new();
    write(&mut s, o);
    Some(s)
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
            r#"{"id":"a","trigger":{"on":"exit-intent"},"content":{},"offer":"SAVE10"}"#,
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
        let z = one(r#"{"id":"z","priority":3,"trigger":{"on":"exit-intent"},"content":{}}"#).unwrap();
        assert_eq!(merge(&mut merged, z.clone()), None);
        assert!(merge(&mut merged, z).is_some(), "the id is there already");
        let ids: Vec<&str> = merged.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c", "z", "a", "b"]);
    }
}
