//! Outgoing messages in the Segment HTTP Tracking API shape: `{messageId, type, event,
//! properties, anonymousId, userId, timestamp, context}`. Written by hand (not derived) so
//! that properties pass through as the JSON text the page gave, and `messageId` comes first
//! where the outbox can find it cheaply.

use crate::json::{before_byte, find_byte, pieces, push_field, push_key, push_str, push_uint, split_byte};

/// The page a call came from, as the shell saw it at the time of the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// `location.href`.
    pub url: String,
    /// `document.title`.
    pub title: String,
    /// `document.referrer`.
    pub referrer: String,
}
crate::json_struct!(PageInfo { url: "url", title: "title", referrer: "referrer" });

impl PageInfo {
    /// The path of the URL (`/tv/oled-55`).
    pub fn path(&self) -> &str {
        // Searching for ':' then checking the rest is much cheaper in the Wasm than a substring search.
        let after_scheme =
            find_byte(&self.url, b':').filter(|&i| self.url[i..].starts_with("://")).map_or(0, |i| i + 3);
        let rest = &self.url[after_scheme..];
        let start = find_byte(rest, b'/').unwrap_or(rest.len());
        let path = &rest[start..];
        let end = path.bytes().position(|c| c == b'?' || c == b'#').unwrap_or(path.len());
        if end == 0 {
            "/"
        } else {
            &path[..end]
        }
    }

    /// The query string with its `?`, or empty.
    pub fn search(&self) -> &str {
        let no_hash = before_byte(&self.url, b'#');
        find_byte(no_hash, b'?').map_or("", |i| &no_hash[i..])
    }

    /// A query parameter, percent-decoded.
    ///
    /// ```
    /// let p = nudge::message::PageInfo { url: "https://s.example/?utm_campaign=tv%20week&x=1".into(), ..Default::default() };
    /// assert_eq!(p.param("utm_campaign").as_deref(), Some("tv week"));
    /// ```
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.search().strip_prefix('?')?;
        pieces(query, b'&').find_map(|pair| {
            let (k, v) = split_byte(pair, b'=').unwrap_or((pair, ""));
            (decode(k) == name).then(|| decode(v)).filter(|v| !v.is_empty())
        })
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = |c: u8| (c as char).to_digit(16);
                match (h(b[i + 1]), h(b[i + 2])) {
                    (Some(x), Some(y)) => {
                        out.push((x * 16 + y) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    // Bytes that do not decode to UTF-8 leave the parameter as it was written.
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// What stays the same for every call of one page view: rendered once, reused per event.
pub fn render_context(page: &PageInfo, user_agent: &str, locale: &str, session_id: u64) -> String {
    let mut c = String::with_capacity(256 + page.url.len() * 2);
    c.push('{');
    push_key(&mut c, "page");
    c.push('{');
    push_field(&mut c, "path", page.path());
    push_field(&mut c, "url", &page.url);
    push_field(&mut c, "title", &page.title);
    push_field(&mut c, "referrer", &page.referrer);
    push_field(&mut c, "search", page.search());
    c.push('}');
    let utm = [
        ("utm_campaign", "name"),
        ("utm_source", "source"),
        ("utm_medium", "medium"),
        ("utm_term", "term"),
        ("utm_content", "content"),
    ];
    let mut found = false;
    for &(q, k) in &utm {
        if let Some(v) = page.param(q) {
            if !found {
                push_key(&mut c, "campaign");
                c.push('{');
                found = true;
            }
            push_field(&mut c, k, &v);
        }
    }
    if found {
        c.push('}');
    }
    push_field(&mut c, "userAgent", user_agent);
    push_field(&mut c, "locale", locale);
    push_key(&mut c, "library");
    c.push('{');
    push_field(&mut c, "name", "@nudge/sdk");
    push_field(&mut c, "version", env!("CARGO_PKG_VERSION"));
    c.push('}');
    push_key(&mut c, "sessionId");
    push_uint(&mut c, session_id);
    c.push('}');
    c
}

/// The parts of one message.
pub struct Parts<'a> {
    /// `messageId`.
    pub id: &'a str,
    /// `track`, `page` or `identify`.
    pub kind: &'a str,
    /// `event` for track, `name` for page.
    pub name: Option<&'a str>,
    /// Properties (track, page) or traits (identify): JSON object text.
    pub body: &'a str,
    /// `anonymousId`.
    pub anonymous_id: &'a str,
    /// `userId`.
    pub user_id: Option<&'a str>,
    /// ISO timestamp.
    pub timestamp: &'a str,
    /// Context rendered by [`render_context`], without the consent part.
    pub context: &'a str,
    /// `context.consent.categoryPreferences` as JSON.
    pub consent: &'a str,
}

/// Writes one message as compact JSON.
pub fn write(p: &Parts) -> String {
    let mut m = String::with_capacity(128 + p.body.len() + p.context.len());
    m.push('{');
    push_field(&mut m, "messageId", p.id);
    push_field(&mut m, "type", p.kind);
    if let Some(name) = p.name {
        push_field(&mut m, if p.kind == "page" { "name" } else { "event" }, name);
    }
    push_key(&mut m, if p.kind == "identify" { "traits" } else { "properties" });
    m.push_str(p.body);
    push_field(&mut m, "anonymousId", p.anonymous_id);
    push_key(&mut m, "userId");
    match p.user_id {
        Some(u) => push_str(&mut m, u),
        None => m.push_str("null"),
    }
    push_field(&mut m, "timestamp", p.timestamp);
    push_key(&mut m, "context");
    // The rendered context ends with '}': splice the consent in before it.
    m.push_str(p.context.strip_suffix('}').unwrap_or("{"));
    push_key(&mut m, "consent");
    m.push_str("{\"categoryPreferences\":");
    m.push_str(p.consent);
    m.push_str("}}}");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(url: &str) -> PageInfo {
        PageInfo { url: url.into(), title: "T".into(), referrer: String::new() }
    }

    #[test]
    fn paths_and_queries_are_read_from_the_url() {
        assert_eq!(page("https://shop.example/tv/oled?x=1#top").path(), "/tv/oled");
        assert_eq!(page("https://shop.example").path(), "/");
        assert_eq!(page("https://shop.example/?q=a%2Bb+c%zz").param("q").as_deref(), Some("a+b c%zz"));
        assert_eq!(page("https://shop.example/a#x?y=1").search(), "");
    }

    #[test]
    fn a_message_is_segment_shaped_json() {
        let ctx = render_context(&page("https://shop.example/p?utm_campaign=tv"), "UA", "en-GB", 42);
        let m = write(&Parts {
            id: "00000000-0000-4000-8000-000000000000",
            kind: "track",
            name: Some("Product Viewed"),
            body: r#"{"category":"TVs"}"#,
            anonymous_id: "a",
            user_id: None,
            timestamp: "2026-11-23T00:00:00.000Z",
            context: &ctx,
            consent: r#"{"analytics":true}"#,
        });
        let v: miniserde::json::Value = miniserde::json::from_str(&m).expect("valid JSON");
        let miniserde::json::Value::Object(o) = v else { panic!("not an object") };
        assert!(matches!(o.get("event"), Some(miniserde::json::Value::String(s)) if s == "Product Viewed"));
        assert!(m.contains(r#""campaign":{"name":"tv"}"#), "{m}");
        assert!(m.contains(r#""consent":{"categoryPreferences":{"analytics":true}}"#), "{m}");
        assert_eq!(crate::outbox::message_id(&m), Some("00000000-0000-4000-8000-000000000000"));
    }
}
