//! Identity: whom a message belongs to. A browser starts as an anonymous person (its
//! `anonymousId`); `identify` with both ids (or `alias previousId -> userId`) links that
//! anonymous id to the user, for good, and from then on its anonymous-only messages fold
//! into the user's profile. Two browsers identified as one user are one person.
//!
//! The first link of an anonymous id wins (a shared computer's later logins do not move
//! its history); a message that names a `userId` always belongs to that user.

use std::collections::HashMap;

use sqlx::Row;

use crate::store::{json_list, on_db, Db, Dialect, StoreError};

/// Whom a profile belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Person {
    /// A known user, by `userId`.
    User(String),
    /// A browser not (yet) identified, by `anonymousId`.
    Anonymous(String),
}

impl Person {
    /// The key in the `profiles` table: `u:` + userId or `a:` + anonymousId.
    pub fn key(&self) -> String {
        match self {
            Person::User(u) => format!("u:{u}"),
            Person::Anonymous(a) => format!("a:{a}"),
        }
    }

    /// Reads a key made by [`Person::key`].
    pub fn from_key(key: &str) -> Option<Person> {
        if let Some(u) = key.strip_prefix("u:") {
            return Some(Person::User(u.into()));
        }
        key.strip_prefix("a:").map(|a| Person::Anonymous(a.into()))
    }

    /// The person a message with these ids belongs to, given the links of its anonymous id.
    pub fn of(user_id: Option<&str>, anonymous_id: Option<&str>, links: &HashMap<String, String>) -> Option<Person> {
        if let Some(u) = user_id {
            return Some(Person::User(u.into()));
        }
        let a = anonymous_id?;
        Some(match links.get(a) {
            Some(u) => Person::User(u.clone()),
            None => Person::Anonymous(a.into()),
        })
    }

    /// The userId, for a user.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Person::User(u) => Some(u),
            Person::Anonymous(_) => None,
        }
    }

    /// The anonymousId, for an anonymous person.
    pub fn anonymous_id(&self) -> Option<&str> {
        match self {
            Person::User(_) => None,
            Person::Anonymous(a) => Some(a),
        }
    }
}

/// Links each `(anonymousId, userId)` not linked yet, in one statement; returns the links
/// that are new. For an anonymous id named twice, the first pair wins.
pub async fn link(
    db: &mut Db<'_>,
    site_id: &str,
    pairs: &[(String, String)],
    now_ms: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(pairs).unwrap_or_else(|_| "[]".into());
    let source = |d: Dialect| match d {
        Dialect::Sqlite => "SELECT $1, value ->> 0, value ->> 1, $3 FROM json_each($2) WHERE true ORDER BY key",
        Dialect::Postgres => {
            "SELECT $1, p ->> 0, p ->> 1, $3 FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x (p, n) \
             ORDER BY n"
        }
    };
    let inserted: Vec<(String, String)> = on_db!(db, |c, d| {
        let sql = format!(
            "INSERT INTO identities (site_id, anonymous_id, user_id, created_ms) {} \
             ON CONFLICT (site_id, anonymous_id) DO NOTHING RETURNING anonymous_id, user_id",
            source(d)
        );
        sqlx::query_as(&sql).bind(site_id).bind(&list).bind(now_ms).fetch_all(&mut *c).await?
    });
    // In the order asked (RETURNING does not promise one).
    let new: std::collections::HashSet<(String, String)> = inserted.into_iter().collect();
    Ok(pairs.iter().filter(|p| new.contains(*p)).cloned().collect())
}

/// The links of these anonymous ids, and every link of these users: anonymousId -> userId.
pub async fn links(
    db: &mut Db<'_>,
    site_id: &str,
    anonymous_ids: &[&str],
    user_ids: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    if anonymous_ids.is_empty() && user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = on_db!(db, |c, d| {
        let sql = format!(
            "SELECT anonymous_id, user_id FROM identities WHERE site_id = $1 AND {} \
             UNION SELECT anonymous_id, user_id FROM identities WHERE site_id = $1 AND {}",
            d.is_in("anonymous_id", "$2"),
            d.is_in("user_id", "$3")
        );
        sqlx::query(&sql)
            .bind(site_id)
            .bind(json_list(anonymous_ids))
            .bind(json_list(user_ids))
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?
    });
    Ok(rows.into_iter().collect())
}

/// The anonymous ids linked to a user, sorted.
pub async fn anonymous_ids(db: &mut Db<'_>, site_id: &str, user_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(on_db!(db, |c, _d| {
        sqlx::query_scalar(
            "SELECT anonymous_id FROM identities WHERE site_id = $1 AND user_id = $2 ORDER BY anonymous_id",
        )
        .bind(site_id)
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?
    }))
}

/// The person an anonymous id belongs to now.
pub async fn person_of_anonymous(db: &mut Db<'_>, site_id: &str, anonymous_id: &str) -> Result<Person, StoreError> {
    let user: Option<String> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT user_id FROM identities WHERE site_id = $1 AND anonymous_id = $2")
            .bind(site_id)
            .bind(anonymous_id)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(match user {
        Some(u) => Person::User(u),
        None => Person::Anonymous(anonymous_id.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_belongs_to_its_user_else_to_its_browser_s_user() {
        let links: HashMap<String, String> = [("a1".to_string(), "u1".to_string())].into_iter().collect();
        assert_eq!(Person::of(Some("u2"), Some("a1"), &links), Some(Person::User("u2".into())));
        assert_eq!(Person::of(None, Some("a1"), &links), Some(Person::User("u1".into())));
        assert_eq!(Person::of(None, Some("a2"), &links), Some(Person::Anonymous("a2".into())));
        assert_eq!(Person::of(None, None, &links), None);
        for p in [Person::User("u:x".into()), Person::Anonymous("a".into())] {
            assert_eq!(Person::from_key(&p.key()), Some(p));
        }
        assert_eq!(Person::from_key("x"), None);
    }
}
