//! Campaigns: which popup a site shows, to whom and when. The browser's core decides; the
//! server stores each site's list (checked by [`validate`]), serves it in the public site
//! config (`GET /v1/config`, whose ETag changes with it) and reports on it ([`report`]).
//!
//! A site replaces its whole list at once, from a JSON array or a TOML file with
//! `[[campaigns]]` tables: `PUT /v1/campaigns` with the secret key, or
//! `nudge-server campaigns load --site ID --file F` ([`api`]). Campaigns are not
//! thresholds: changing them never folds profiles again.

pub mod api;
pub mod report;
pub mod validate;

use serde_json::Value;

use crate::store::{on_db, Db, StoreError};

/// How a campaign document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array (or `{"campaigns": [...]}`).
    Json,
    /// TOML with `[[campaigns]]` tables.
    Toml,
    /// Not said: JSON is tried first, then TOML.
    Unknown,
}

impl Format {
    /// The format a file name's extension names.
    pub fn of_path(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".toml") {
            Format::Toml
        } else if lower.ends_with(".json") {
            Format::Json
        } else {
            Format::Unknown
        }
    }
}

/// Reads and checks a campaign document; the campaigns as given, or an error naming the
/// line (for syntax) or the field (for content).
pub fn parse_document(text: &str, format: Format) -> Result<Vec<Value>, String> {
    let json = || serde_json::from_str::<Value>(text).map_err(|e| format!("invalid JSON: {e}"));
    let toml = || toml::from_str::<Value>(text).map_err(|e| format!("invalid TOML: {}", e.to_string().trim_end()));
    let document = match format {
        Format::Json => json()?,
        Format::Toml => toml()?,
        Format::Unknown => match json() {
            Ok(v) => v,
            Err(e) if looks_like_json(text) => return Err(e),
            Err(_) => toml()?,
        },
    };
    validate::check_list(&document)
}

/// Whether a document that is not valid JSON was meant to be: it opens with `{`, or with
/// `[` followed by `{` or `]` (`[` alone also opens a TOML table header).
fn looks_like_json(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with('{') || text.strip_prefix('[').is_some_and(|rest| rest.trim_start().starts_with(['{', ']']))
}

/// A site's campaigns, in the order the site gave them.
pub async fn load(db: &mut Db<'_>, site_id: &str) -> Result<Vec<Value>, StoreError> {
    let bodies: Vec<String> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT body FROM campaigns WHERE site_id = $1 ORDER BY position")
            .bind(site_id)
            .fetch_all(&mut *c)
            .await?
    });
    Ok(bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect())
}

/// A site's campaigns as the JSON array text the public config embeds.
pub async fn public_json(db: &mut Db<'_>, site_id: &str) -> Result<String, StoreError> {
    let bodies: Vec<String> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT body FROM campaigns WHERE site_id = $1 ORDER BY position")
            .bind(site_id)
            .fetch_all(&mut *c)
            .await?
    });
    Ok(format!("[{}]", bodies.join(",")))
}

/// One campaign of a site, by id.
pub async fn find(db: &mut Db<'_>, site_id: &str, id: &str) -> Result<Option<Value>, StoreError> {
    let body: Option<String> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT body FROM campaigns WHERE site_id = $1 AND id = $2")
            .bind(site_id)
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

/// Replaces a site's campaigns with `list` (already checked), in the caller's transaction.
pub async fn replace(db: &mut Db<'_>, site_id: &str, list: &[Value], now_ms: i64) -> Result<(), StoreError> {
    on_db!(db, |c, _d| {
        sqlx::query("DELETE FROM campaigns WHERE site_id = $1").bind(site_id).execute(&mut *c).await?;
        for (position, campaign) in list.iter().enumerate() {
            let id = campaign.get("id").and_then(Value::as_str).unwrap_or_default();
            sqlx::query("INSERT INTO campaigns (site_id, id, position, body, updated_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(site_id)
                .bind(id)
                .bind(position as i64)
                .bind(campaign.to_string())
                .bind(now_ms)
                .execute(&mut *c)
                .await?;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[campaigns]]
id = "tv-newsletter"
priority = 10
holdout = 0.1
trigger = { on = "exit-intent" }
offer = { unique = true, percent = 10, expiresDays = 7 }
content = { title = "10% off your TV", emailField = true }
caps = { perSession = 1, dismissDays = 7 }

[[campaigns]]
id = "cart-save"
trigger = { on = "abandon-intent", kind = "cart" }
offer = { code = "SAVE10", percent = 10 }
[campaigns.content]
text = "Keep your cart: SAVE10"
"#;

    #[test]
    fn toml_and_json_read_alike() {
        let from_toml = parse_document(TOML, Format::Toml).unwrap();
        assert_eq!(from_toml.len(), 2);
        assert_eq!(from_toml[0]["holdout"], serde_json::json!(0.1));
        assert_eq!(from_toml[1]["content"]["text"], "Keep your cart: SAVE10");
        let json = Value::Array(from_toml.clone()).to_string();
        assert_eq!(parse_document(&json, Format::Json).unwrap(), from_toml);
        assert_eq!(parse_document(&json, Format::Unknown).unwrap(), from_toml);
        assert_eq!(parse_document(TOML, Format::Unknown).unwrap(), from_toml);
    }

    #[test]
    fn syntax_errors_say_which_format_and_where() {
        let e = parse_document("[[campaigns]]\nid = ", Format::Toml).unwrap_err();
        assert!(e.starts_with("invalid TOML") && e.contains("line 2"), "{e}");
        for text in ["[{\"id\": }]", "[\n  {\"id\": }\n]", "{\"campaigns\": [}"] {
            let e = parse_document(text, Format::Unknown).unwrap_err();
            assert!(e.starts_with("invalid JSON") && e.contains("line "), "{e}");
        }
        let e = parse_document("[[campaigns]]\nid = ", Format::Unknown).unwrap_err();
        assert!(e.starts_with("invalid TOML"), "{e}");
        assert_eq!(Format::of_path("c/Campaigns.TOML"), Format::Toml);
        assert_eq!(Format::of_path("c.json"), Format::Json);
    }
}
