//! Checking campaigns before they are stored: the shape the browser's core reads (see the
//! campaign JSON in `README.md`), with every limit a site could get wrong named in the
//! error (`campaigns[2] ("tv-newsletter").offer.percent: ...`). Unknown fields are refused
//! too, so that a typo (`holdOut`) is an error rather than a campaign that silently ignores
//! it. What passes is stored exactly as sent.

use std::collections::HashSet;

use serde_json::{Map, Value};

/// Most campaigns a site may have.
pub const MAX_CAMPAIGNS: usize = 100;
/// Longest campaign id (and fixed coupon code).
pub const MAX_ID: usize = 64;
/// Longest `content.title`.
pub const MAX_TITLE: usize = 120;
/// Longest `content.text`.
pub const MAX_TEXT: usize = 1_000;
/// Longest `content.button`.
pub const MAX_BUTTON: usize = 60;
/// Longest URL or path (`content.image`, `trigger.path`).
pub const MAX_URL: usize = 2_048;
/// Longest category name.
pub const MAX_CATEGORY: usize = 200;
/// Largest frequency cap, priority magnitude and `expiresDays`-like counts.
const MAX_COUNT: f64 = 1_000_000.0;
/// Longest offer validity, in days.
pub const MAX_EXPIRES_DAYS: f64 = 3_650.0;

/// Trigger kinds (`trigger.on`).
pub const TRIGGERS: [&str; 6] =
    ["exit-intent", "abandon-intent", "stage-entered", "page", "time-on-page", "scroll-depth"];
/// Journey stages, as the core names them.
pub const STAGES: [&str; 5] = ["awareness", "consideration", "decision", "purchase", "loyalty"];

/// Checks a campaign list: a JSON array, or an object whose `campaigns` is one (the form a
/// TOML file with `[[campaigns]]` takes). Returns the campaigns as given.
pub fn check_list(document: &Value) -> Result<Vec<Value>, String> {
    let list = match document {
        Value::Array(list) => list,
        Value::Object(m) => match m.get("campaigns") {
            Some(Value::Array(list)) if m.len() == 1 => list,
            Some(Value::Array(_)) => {
                let other = m.keys().find(|k| *k != "campaigns").cloned().unwrap_or_default();
                return Err(format!("{other}: unknown field (the document holds only `campaigns`)"));
            }
            Some(_) => return Err("campaigns: must be an array".into()),
            None => return Err("expected a JSON array of campaigns, or TOML with [[campaigns]] tables".into()),
        },
        _ => return Err("expected a JSON array of campaigns, or TOML with [[campaigns]] tables".into()),
    };
    if list.len() > MAX_CAMPAIGNS {
        return Err(format!("campaigns: at most {MAX_CAMPAIGNS} per site, not {}", list.len()));
    }
    let mut ids = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let id = c.get("id").and_then(Value::as_str);
        let path = match id {
            Some(id) if is_id(id) => format!("campaigns[{i}] ({id:?})"),
            _ => format!("campaigns[{i}]"),
        };
        check_campaign(c, &path)?;
        if let Some(id) = id {
            if !ids.insert(id) {
                return Err(format!("{path}.id: {id:?} is used by another campaign (ids are unique per site)"));
            }
        }
    }
    Ok(list.clone())
}

/// Whether `s` is a valid campaign id: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks one campaign; `path` prefixes every error.
pub fn check_campaign(c: &Value, path: &str) -> Result<(), String> {
    let o = Obj::new(c, path)?;
    o.only(&["id", "priority", "holdout", "trigger", "audience", "offer", "content", "caps"])?;
    let id = o.str("id", MAX_ID)?.ok_or_else(|| o.err("id", "is required"))?;
    if !is_id(id) {
        return Err(o.err("id", "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"));
    }
    o.int("priority", -MAX_COUNT, MAX_COUNT)?;
    if let Some(h) = o.num("holdout")? {
        if !(0.0..=0.9).contains(&h) {
            return Err(o.err("holdout", "must be a share from 0 to 0.9"));
        }
    }
    check_trigger(&o.obj("trigger")?.ok_or_else(|| o.err("trigger", "is required"))?)?;
    if let Some(a) = o.obj("audience")? {
        check_audience(&a)?;
    }
    let email_field = match o.obj("content")? {
        Some(content) => check_content(&content)?,
        None => return Err(o.err("content", "is required")),
    };
    if let Some(offer) = o.obj("offer")? {
        let unique = check_offer(&offer)?;
        if unique && !email_field {
            return Err(
                o.err("content.emailField", "must be true when the offer is unique (codes are issued per email)")
            );
        }
    }
    if let Some(caps) = o.obj("caps")? {
        caps.only(&["perSession", "perDay", "ever", "dismissDays", "convertDays"])?;
        for k in ["perSession", "perDay", "ever", "dismissDays", "convertDays"] {
            caps.int(k, 0.0, MAX_COUNT)?;
        }
    }
    Ok(())
}

fn check_trigger(t: &Obj<'_>) -> Result<(), String> {
    let on = t.str("on", 32)?.ok_or_else(|| t.err("on", format!("is required: one of {}", TRIGGERS.join(", "))))?;
    match on {
        "exit-intent" => t.only(&["on"]),
        "abandon-intent" => {
            t.only(&["on", "kind"])?;
            match t.str("kind", 16)? {
                None | Some("cart" | "browse") => Ok(()),
                Some(_) => Err(t.err("kind", "must be \"cart\" or \"browse\" (or left out for either)")),
            }
        }
        "stage-entered" => {
            t.only(&["on", "stage", "category"])?;
            match t.str("stage", 32)? {
                Some(s) if STAGES.contains(&s) => {}
                _ => return Err(t.err("stage", format!("is required: one of {}", STAGES.join(", ")))),
            }
            t.str("category", MAX_CATEGORY).map(|_| ())
        }
        "page" => {
            t.only(&["on", "path"])?;
            match t.str("path", MAX_URL)? {
                Some(p) if p.starts_with('/') => Ok(()),
                _ => Err(t.err("path", "is required: a path prefix starting with /")),
            }
        }
        "time-on-page" => {
            t.only(&["on", "seconds"])?;
            match t.num("seconds")? {
                Some(s) if s > 0.0 && s <= 86_400.0 => Ok(()),
                _ => Err(t.err("seconds", "is required: a number of seconds from 0 (exclusive) to 86400")),
            }
        }
        "scroll-depth" => {
            t.only(&["on", "percent"])?;
            match t.num("percent")? {
                Some(p) if p > 0.0 && p <= 100.0 => Ok(()),
                _ => Err(t.err("percent", "is required: a number from 0 (exclusive) to 100")),
            }
        }
        other => Err(t.err("on", format!("unknown trigger {other:?}: one of {}", TRIGGERS.join(", ")))),
    }
}

fn check_audience(a: &Obj<'_>) -> Result<(), String> {
    a.only(&["stage", "cartValue", "visitor", "identified"])?;
    if let Some(stage) = a.obj("stage")? {
        stage.only(&["category", "in"])?;
        stage.str("category", MAX_CATEGORY)?;
        let list = match stage.map.get("in") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            _ => return Err(stage.err("in", format!("is required: a non-empty list of {}", STAGES.join(", ")))),
        };
        for (i, s) in list.iter().enumerate() {
            if !s.as_str().is_some_and(|s| STAGES.contains(&s)) {
                return Err(stage.err(&format!("in[{i}]"), format!("must be one of {}", STAGES.join(", "))));
            }
        }
    }
    if let Some(cart) = a.obj("cartValue")? {
        cart.only(&["min", "max"])?;
        let min = cart.num("min")?;
        let max = cart.num("max")?;
        for (k, v) in [("min", min), ("max", max)] {
            if v.is_some_and(|v| v < 0.0) {
                return Err(cart.err(k, "must not be negative"));
            }
        }
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                return Err(cart.err("min", "must not exceed max"));
            }
        }
    }
    match a.str("visitor", 16)? {
        None | Some("new" | "returning") => {}
        Some(_) => return Err(a.err("visitor", "must be \"new\" or \"returning\"")),
    }
    a.bool("identified").map(|_| ())
}

/// Checks an offer; returns whether it is unique (codes issued by the server).
fn check_offer(o: &Obj<'_>) -> Result<bool, String> {
    o.only(&["code", "unique", "percent", "amount", "currency", "expiresDays"])?;
    let code = o.str("code", MAX_ID)?;
    let unique = o.bool("unique")?.unwrap_or(false);
    match (code, unique) {
        (Some(_), true) => return Err(o.err("code", "and unique: true exclude each other")),
        (None, false) => return Err(o.err("code", "is required unless unique is true")),
        (Some(c), false) if !is_id(c) => {
            return Err(o.err("code", "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"));
        }
        _ => {}
    }
    match (o.num("percent")?, o.num("amount")?) {
        (Some(_), Some(_)) => return Err(o.err("percent", "and amount exclude each other")),
        (None, None) => return Err(o.err("percent", "or amount is required")),
        (Some(p), None) if !(p > 0.0 && p <= 100.0) => {
            return Err(o.err("percent", "must be a number from 0 (exclusive) to 100"));
        }
        (None, Some(a)) if !(a > 0.0 && a <= 1e9) => {
            return Err(o.err("amount", "must be a positive number"));
        }
        (Some(_), None) if o.map.contains_key("currency") => {
            return Err(o.err("currency", "goes with amount, not percent"));
        }
        _ => {}
    }
    if let Some(c) = o.str("currency", 3)? {
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(o.err("currency", "must be an ISO 4217 code such as \"USD\""));
        }
    }
    o.int("expiresDays", 1.0, MAX_EXPIRES_DAYS)?;
    Ok(unique)
}

/// Checks content; returns whether it asks for an email.
fn check_content(c: &Obj<'_>) -> Result<bool, String> {
    c.only(&["title", "text", "button", "emailField", "image"])?;
    let title = c.str("title", MAX_TITLE)?;
    let text = c.str("text", MAX_TEXT)?;
    c.str("button", MAX_BUTTON)?;
    if title.unwrap_or("").trim().is_empty() && text.unwrap_or("").trim().is_empty() {
        return Err(c.err("title", "or text is required"));
    }
    if let Some(image) = c.str("image", MAX_URL)? {
        let same_origin = image.starts_with('/') && !image.starts_with("//");
        if !(image.starts_with("https://") || same_origin) || image.contains(char::is_whitespace) {
            return Err(c.err("image", "must be an https:// URL or a path on the site (starting with /)"));
        }
    }
    Ok(c.bool("emailField")?.unwrap_or(false))
}

/// A JSON object being checked, with the path that names it in errors.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str) -> Result<Obj<'a>, String> {
        match v {
            Value::Object(map) => Ok(Obj { map, path: path.to_string() }),
            _ => Err(format!("{path}: must be an object")),
        }
    }

    fn err(&self, key: &str, message: impl std::fmt::Display) -> String {
        format!("{}.{key}: {message}", self.path)
    }

    /// Refuses keys not in `known`.
    fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.err(k, format!("unknown field (known: {})", known.join(", ")))),
            None => Ok(()),
        }
    }

    fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Obj::new(v, &format!("{}.{key}", self.path)).map(Some),
        }
    }

    /// A string of at most `max` characters, without control characters other than
    /// line breaks and tabs.
    fn str(&self, key: &str, max: usize) -> Result<Option<&'a str>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => {
                Err(self.err(key, format!("must be at most {max} characters")))
            }
            Some(Value::String(s)) if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) => {
                Err(self.err(key, "must not contain control characters"))
            }
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(key, "must be a string")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(key, "must be true or false")),
        }
    }

    fn num(&self, key: &str) -> Result<Option<f64>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().filter(|n| n.is_finite()).map(Some).ok_or_else(|| self.err(key, "must be a number")),
        }
    }

    /// A whole number from `min` to `max`.
    fn int(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, String> {
        match self.num(key)? {
            Some(n) if n.fract() != 0.0 || n < min || n > max => {
                Err(self.err(key, format!("must be a whole number from {min} to {max}")))
            }
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "id": "tv-newsletter", "priority": 10, "holdout": 0.1,
            "trigger": {"on": "abandon-intent", "kind": "browse"},
            "audience": {"stage": {"category": "tvs", "in": ["decision"]}, "cartValue": {"min": 0, "max": 5000},
                         "visitor": "new", "identified": false},
            "offer": {"unique": true, "amount": 20, "currency": "USD", "expiresDays": 7},
            "content": {"title": "Wait!", "text": "<img src=x onerror=alert(1)>", "button": "Get it",
                        "emailField": true, "image": "https://cdn.example/tv.png"},
            "caps": {"perSession": 1, "perDay": 1, "ever": 3, "dismissDays": 7, "convertDays": 30}
        })
    }

    fn error_of(change: impl Fn(&mut Value)) -> String {
        let mut c = good();
        change(&mut c);
        check_list(&json!([c])).unwrap_err()
    }

    #[test]
    fn a_full_campaign_passes_as_it_was_sent() {
        assert_eq!(check_list(&json!([good()])).unwrap(), vec![good()]);
        assert_eq!(check_list(&json!({"campaigns": [good()]})).unwrap(), vec![good()]);
        let minimal = json!({"id": "a", "trigger": {"on": "exit-intent"}, "content": {"text": "Hi"}});
        assert!(check_list(&json!([minimal])).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c["id"] = json!("no spaces")), "campaigns[0].id:"),
            (Box::new(|c| c["holdout"] = json!(0.95)), "(\"tv-newsletter\").holdout: must be a share from 0 to 0.9"),
            (Box::new(|c| c["trigger"] = json!({"on": "shake"})), ".trigger.on: unknown trigger \"shake\""),
            (Box::new(|c| c["trigger"] = json!({"on": "page"})), ".trigger.path: is required"),
            (Box::new(|c| c["offer"]["code"] = json!("SAVE10")), ".offer.code: and unique: true exclude"),
            (Box::new(|c| c["offer"]["percent"] = json!(10)), ".offer.percent: and amount exclude"),
            (Box::new(|c| c["offer"]["currency"] = json!("usd")), ".offer.currency: must be an ISO 4217"),
            (Box::new(|c| c["caps"]["perDay"] = json!(-1)), ".caps.perDay: must be a whole number from 0"),
            (Box::new(|c| c["caps"]["perDay"] = json!(1.5)), ".caps.perDay: must be a whole number"),
            (Box::new(|c| c["content"]["title"] = json!("x".repeat(121))), ".content.title: must be at most 120"),
            (Box::new(|c| c["content"]["image"] = json!("javascript:alert(1)")), ".content.image: must be an https"),
            (Box::new(|c| c["content"]["image"] = json!("//evil.example/x.png")), ".content.image:"),
            (Box::new(|c| c["content"]["emailField"] = json!(false)), ".content.emailField: must be true"),
            (Box::new(|c| c["holdOut"] = json!(0.1)), ".holdOut: unknown field"),
            (Box::new(|c| c["audience"]["stage"]["in"] = json!(["deciding"])), ".audience.stage.in[0]: must be"),
            (Box::new(|c| c["audience"]["cartValue"]["min"] = json!(9000)), ".audience.cartValue.min: must not"),
        ];
        for (change, expected) in cases {
            let e = error_of(change);
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
    }

    #[test]
    fn lists_are_bounded_and_ids_unique() {
        assert!(check_list(&json!([good(), good()])).unwrap_err().contains("used by another campaign"));
        let many: Vec<Value> = (0..=MAX_CAMPAIGNS)
            .map(|i| json!({"id": format!("c{i}"), "trigger": {"on": "exit-intent"}, "content": {"text": "x"}}))
            .collect();
        assert!(check_list(&Value::Array(many)).unwrap_err().contains("at most 100"));
        assert!(check_list(&json!({"campaign": []})).is_err());
        assert!(check_list(&json!("x")).is_err());
    }
}
