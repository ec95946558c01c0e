//! Profiles: each person's stored messages folded with the core's rules (`nudge::merge`),
//! cached in the `profiles` table, and rendered for the API.
//!
//! A profile is a function of the person's set of messages, whatever the order they
//! arrive in. Ingest folds the new messages in the transaction that stores them, under the
//! site's write lock ([`fold_events`], called by `store::group`, which also shares one
//! transaction among concurrent requests): onto the cached profile when they all sort after the last message folded into it,
//! otherwise (a late message, a new person, two browsers just linked, a forgotten browser,
//! changed thresholds) by folding the person's whole history again. Stage changes found on
//! the way are stored as `Stage Changed` track messages (with `context.library.name` =
//! `nudge-server` and a `messageId` derived from what changed, so a fold repeated after a
//! failure stores nothing twice), which puts them in the change feed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use nudge::config::Thresholds;
use nudge::consent::Policy;
use nudge::engine::StageChange;
use nudge::merge::{fold_all, stage_changes, Folded, Folder, Key, Stored};
use nudge::profile::Profile;
use nudge::time::to_iso;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::erase;
use crate::hmac::hex;
use crate::identity::{self, Person};
use crate::site_config;
use crate::store::EVENT_COLUMNS;
use crate::store::{json_list, on_db, stored_event, Db, Dialect, NewEvent, Store, StoreError, StoredEvent, WriteTx};

/// The event the SDK's `forget()` sends: erase this browser's data.
pub const ERASURE_REQUESTED: &str = "Erasure Requested";
/// The event a fold stores for each stage change it finds.
pub const STAGE_CHANGED: &str = "Stage Changed";

/// A row of the `profiles` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    /// Whose it is.
    pub person: Person,
    /// The core's stored profile.
    pub state: String,
    /// The last message folded.
    pub last: Key,
    /// Time of the first message, ms.
    pub first_seen_ms: i64,
    /// Messages folded.
    pub events: i64,
    /// The config it was folded with ([`site_config::SiteConfig::tag`]).
    pub config_tag: String,
}

/// Columns read for a [`ProfileRow`], in order.
pub const PROFILE_COLUMNS: &str = "person_id, state, last_at, last_message_id, first_seen_ms, events, config_tag";

/// Reads a [`ProfileRow`] from the columns [`PROFILE_COLUMNS`] names.
pub fn profile_row<R>(row: &R) -> Result<Option<ProfileRow>, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let key: String = row.try_get(0)?;
    let Some(person) = Person::from_key(&key) else { return Ok(None) };
    let at: i64 = row.try_get(2)?;
    Ok(Some(ProfileRow {
        person,
        state: row.try_get(1)?,
        last: Key { at: at.max(0) as u64, message_id: row.try_get(3)? },
        first_seen_ms: row.try_get(4)?,
        events: row.try_get(5)?,
        config_tag: row.try_get(6)?,
    }))
}

/// A cached profile and the time of its last message, before a fold.
type Before = Option<(Profile, u64)>;

/// What folding one ingest did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FoldOutcome {
    /// Profiles written or removed.
    pub persons: usize,
    /// Profiles folded from their whole history.
    pub full_folds: usize,
    /// `Stage Changed` messages stored.
    pub stage_changes: usize,
    /// Messages deleted because their person was erased (they arrived late).
    pub dropped: usize,
}

/// Folds messages stored earlier (their `seq`s) into their people's profiles, in one
/// transaction under the site's write lock: ingest's fallback when storing and folding in
/// one transaction failed (see `store::group`).
pub async fn fold_new(store: &Store, site_id: &str, seqs: &[i64], now_ms: i64) -> Result<FoldOutcome, StoreError> {
    if seqs.is_empty() {
        return Ok(FoldOutcome::default());
    }
    let mut tx = store.write(site_id).await?;
    let outcome = fold_in(&mut tx, site_id, seqs, now_ms).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// The message as the core's fold reads it.
pub fn as_stored(e: &StoredEvent) -> Stored<'_> {
    Stored {
        message_id: &e.event.message_id,
        kind: e.event.kind,
        name: e.event.event.as_deref(),
        user_id: e.event.user_id.as_deref(),
        at: e.event.timestamp_ms.max(0) as u64,
        body: &e.event.body,
    }
}

fn is_track(e: &StoredEvent, name: &str) -> bool {
    e.event.kind == "track" && e.event.event.as_deref() == Some(name)
}

async fn fold_in(tx: &mut WriteTx<'_>, site_id: &str, seqs: &[i64], now_ms: i64) -> Result<FoldOutcome, StoreError> {
    let events = events_by_seq(&mut tx.db(), site_id, seqs).await?;

    // People erased before these arrived: their messages go, and build nothing.
    let (users, anons) = ids_of(&events);
    let erased = erase::erased_among(&mut tx.db(), site_id, &users, &anons).await?;
    let (late, events): (Vec<_>, Vec<_>) =
        events.into_iter().partition(|e| erased.covers(e.event.user_id.as_deref(), e.event.anonymous_id.as_deref()));
    let late_seqs: Vec<i64> = late.iter().map(|e| e.seq).collect();
    delete_events(&mut tx.db(), site_id, &late_seqs).await?;
    let mut outcome = fold_events(tx, site_id, events, now_ms).await?;
    outcome.dropped = late.len();
    Ok(outcome)
}

/// Folds newly stored messages of a site into their people's profiles, in `tx` (which
/// holds the site's write lock). The caller has left out messages naming erased people,
/// under the same lock (see `store::group`).
pub async fn fold_events(
    tx: &mut WriteTx<'_>,
    site_id: &str,
    mut events: Vec<StoredEvent>,
    now_ms: i64,
) -> Result<FoldOutcome, StoreError> {
    let mut outcome = FoldOutcome::default();
    if events.is_empty() {
        return Ok(outcome);
    }
    let config = site_config::load(&mut tx.db(), site_id).await?;
    let th = &config.thresholds;

    // forget() in a browser: erase that browser's messages; its user (if any) is refolded.
    let mut refold: BTreeSet<Person> = BTreeSet::new();
    let mut forgotten: HashSet<String> = HashSet::new();
    for e in events.iter().filter(|e| is_track(e, ERASURE_REQUESTED)) {
        let Some(anon) = e.event.anonymous_id.as_deref() else { continue };
        if forgotten.insert(anon.to_string()) {
            if let Some(user) = erase::erase_anonymous(tx, site_id, anon, now_ms).await? {
                refold.insert(Person::User(user));
            }
        }
    }
    events.retain(|e| e.event.anonymous_id.as_ref().is_none_or(|a| !forgotten.contains(a)));

    // Orders naming issued coupons redeem them (or store a misuse report, folded too).
    let reports = crate::coupons::redeem::apply(tx, site_id, &events, now_ms).await?;
    events.extend(reports);

    // identify / alias: link browsers to users; a newly linked browser's profile joins
    // its user's, which is folded from the union of their messages.
    let pairs = link_pairs(&events);
    for (anon, user) in identity::link(&mut tx.db(), site_id, &pairs, now_ms).await? {
        delete_profiles(&mut tx.db(), site_id, &[Person::Anonymous(anon).key()]).await?;
        refold.insert(Person::User(user));
    }

    // Who each message belongs to.
    let (mut users, anons) = ids_of(&events);
    let refold_users: Vec<String> = refold.iter().filter_map(|p| p.user_id().map(str::to_string)).collect();
    users.extend(refold_users.iter().map(String::as_str));
    let links = identity::links(&mut tx.db(), site_id, &anons, &users).await?;
    let mut groups: BTreeMap<Person, Vec<&StoredEvent>> = refold.iter().map(|p| (p.clone(), Vec::new())).collect();
    for e in events.iter().filter(|e| !is_track(e, STAGE_CHANGED)) {
        if let Some(p) = Person::of(e.event.user_id.as_deref(), e.event.anonymous_id.as_deref(), &links) {
            groups.entry(p).or_default().push(e);
        }
    }
    let keys: Vec<String> = groups.keys().map(Person::key).collect();
    let mut cached = cached_profiles(&mut tx.db(), site_id, &keys).await?;

    // Fold: incrementally where possible, else from the whole history.
    let mut results: Vec<(Person, Before, Folded)> = Vec::new();
    let mut full: Vec<Person> = Vec::new();
    for (person, mut new) in groups {
        let row = cached.remove(&person.key());
        let before = row.as_ref().and_then(|r| decode(&r.state).map(|p| (p, r.last.at)));
        new.sort_by(|a, b| {
            (a.event.timestamp_ms, &a.event.message_id).cmp(&(b.event.timestamp_ms, &b.event.message_id))
        });
        let resumable = match (&row, &before) {
            (Some(r), Some((profile, _)))
                if r.config_tag == config.tag && !new.is_empty() && !refold.contains(&person) =>
            {
                let folder = Folder::resume(
                    profile.clone(),
                    r.last.clone(),
                    r.first_seen_ms.max(0) as u64,
                    r.events.max(0) as u64,
                    th,
                );
                let first = as_stored(new[0]);
                folder.accepts(first.at, first.message_id).then_some(folder)
            }
            _ => None,
        };
        match resumable {
            Some(mut folder) => {
                for e in &new {
                    folder.fold(&as_stored(e));
                }
                results.push((person, before, folder.finish()));
            }
            None => {
                full.push(person.clone());
                results.push((person, before, fold_all(&[], th)));
            }
        }
    }
    if !full.is_empty() {
        let mut history = histories(&mut tx.db(), site_id, &full).await?;
        for (person, _, folded) in results.iter_mut() {
            if let Some(events) = history.remove(person) {
                let stored: Vec<Stored<'_>> = events.iter().map(as_stored).collect();
                *folded = fold_all(&stored, th);
            }
        }
        outcome.full_folds = full.len();
    }

    // Write the profiles and the stage changes found, one statement each.
    let mut gone = Vec::new();
    let mut rows = Vec::new();
    let mut derived = Vec::new();
    for (person, before, folded) in &results {
        outcome.persons += 1;
        let Some(last) = &folded.last else {
            gone.push(person.key());
            continue;
        };
        let changes = stage_changes(before.as_ref().map(|(p, at)| (p, *at)), (&folded.profile, last.at), th);
        derived.extend(changes.iter().map(|change| stage_event(person, change, last, now_ms)));
        rows.push(upsert_row(person, folded));
    }
    outcome.stage_changes = insert_events(&mut tx.db(), site_id, &derived).await? as usize;
    upsert(&mut tx.db(), site_id, &rows, &config.tag, now_ms).await?;
    delete_profiles(&mut tx.db(), site_id, &gone).await?;
    Ok(outcome)
}

/// The userIds and anonymousIds named by these messages, without repeats.
fn ids_of(events: &[StoredEvent]) -> (Vec<&str>, Vec<&str>) {
    let users: BTreeSet<&str> = events.iter().filter_map(|e| e.event.user_id.as_deref()).collect();
    let anons: BTreeSet<&str> = events.iter().filter_map(|e| e.event.anonymous_id.as_deref()).collect();
    (users.into_iter().collect(), anons.into_iter().collect())
}

/// `(anonymousId, userId)` links these messages make: any message with both ids, and
/// `alias` (`previousId` -> `userId`).
fn link_pairs(events: &[StoredEvent]) -> Vec<(String, String)> {
    let mut pairs = BTreeSet::new();
    for e in events {
        let Some(user) = e.event.user_id.as_deref() else { continue };
        if let Some(anon) = e.event.anonymous_id.as_deref() {
            pairs.insert((anon.to_string(), user.to_string()));
        }
        if e.event.kind == "alias" {
            let previous = serde_json::from_str::<Value>(&e.event.body).ok().and_then(|v| match v.get("previousId") {
                Some(Value::String(s)) if !s.is_empty() && s != user => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            });
            if let Some(previous) = previous {
                pairs.insert((previous, user.to_string()));
            }
        }
    }
    pairs.into_iter().collect()
}

/// A stored core profile; `None` when unreadable (it is then folded again).
fn decode(state: &str) -> Option<Profile> {
    match Profile::decode(state, String::new()) {
        (p, nudge::profile::Loaded::Current) => Some(p),
        _ => None,
    }
}

/// The `Stage Changed` message for a change found when `trigger` was folded.
fn stage_event(person: &Person, change: &StageChange, trigger: &Key, now_ms: i64) -> NewEvent {
    let digest = Sha256::digest(
        format!(
            "{}\n{}\n{}\n{}\n{}",
            person.key(),
            change.category,
            change.from.map_or("", |s| s.name()),
            change.to.name(),
            trigger.message_id
        )
        .as_bytes(),
    );
    let message_id = format!("nudge-stage-{}", hex(&digest[..16]));
    let properties: Value = serde_json::from_str(&change.to_json()).unwrap_or(Value::Null);
    let body = json!({
        "type": "track",
        "event": STAGE_CHANGED,
        "messageId": message_id,
        "userId": person.user_id(),
        "anonymousId": person.anonymous_id(),
        "timestamp": to_iso(trigger.at),
        "properties": properties,
        "context": { "library": { "name": "nudge-server", "version": env!("CARGO_PKG_VERSION") } },
    });
    NewEvent {
        message_id,
        kind: "track",
        event: Some(STAGE_CHANGED.into()),
        user_id: person.user_id().map(str::to_string),
        anonymous_id: person.anonymous_id().map(str::to_string),
        timestamp_ms: trigger.at as i64,
        received_ms: now_ms,
        body: body.to_string(),
    }
}

async fn events_by_seq(db: &mut Db<'_>, site_id: &str, seqs: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(on_db!(db, |c, d| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND {} ORDER BY seq",
            d.is_in_int("seq", "$2")
        );
        let rows = sqlx::query(&sql).bind(site_id).bind(json_list(seqs)).fetch_all(&mut *c).await?;
        rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?
    }))
}

/// Deletes messages by `seq`.
pub async fn delete_events(db: &mut Db<'_>, site_id: &str, seqs: &[i64]) -> Result<(), StoreError> {
    if seqs.is_empty() {
        return Ok(());
    }
    on_db!(db, |c, d| {
        let sql = format!("DELETE FROM events WHERE site_id = $1 AND {}", d.is_in_int("seq", "$2"));
        sqlx::query(&sql).bind(site_id).bind(json_list(seqs)).execute(&mut *c).await?.rows_affected()
    });
    Ok(())
}

/// Deletes profiles by person key.
pub async fn delete_profiles(db: &mut Db<'_>, site_id: &str, keys: &[String]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    on_db!(db, |c, d| {
        let sql = format!("DELETE FROM profiles WHERE site_id = $1 AND {}", d.is_in("person_id", "$2"));
        sqlx::query(&sql).bind(site_id).bind(json_list(keys)).execute(&mut *c).await?.rows_affected()
    });
    Ok(())
}

/// Stores messages the server made, in one statement; returns how many were new.
async fn insert_events(db: &mut Db<'_>, site_id: &str, events: &[NewEvent]) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"m": e.message_id, "t": e.kind, "e": e.event, "u": e.user_id, "a": e.anonymous_id,
                   "ts": e.timestamp_ms, "r": e.received_ms, "b": e.body})
        })
        .collect();
    let source = |d: Dialect| match d {
        Dialect::Sqlite => {
            "SELECT $1, json_extract(value, '$.m'), json_extract(value, '$.t'), json_extract(value, '$.e'), \
             json_extract(value, '$.u'), json_extract(value, '$.a'), json_extract(value, '$.ts'), \
             json_extract(value, '$.r'), json_extract(value, '$.b') FROM json_each($2) WHERE true"
        }
        Dialect::Postgres => {
            "SELECT $1, x.m, x.t, x.e, x.u, x.a, x.ts, x.r, x.b FROM jsonb_to_recordset($2::jsonb) \
             AS x (m text, t text, e text, u text, a text, ts bigint, r bigint, b text)"
        }
    };
    Ok(on_db!(db, |c, d| {
        let sql = format!(
            "INSERT INTO events (site_id, message_id, type, event, user_id, anonymous_id, timestamp_ms, \
             received_ms, body) {} ON CONFLICT (site_id, message_id) DO NOTHING",
            source(d)
        );
        sqlx::query(&sql).bind(site_id).bind(Value::Array(rows).to_string()).execute(&mut *c).await?.rows_affected()
    }))
}

async fn cached_profiles(
    db: &mut Db<'_>,
    site_id: &str,
    keys: &[String],
) -> Result<HashMap<String, ProfileRow>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ProfileRow> = on_db!(db, |c, d| {
        let sql =
            format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE site_id = $1 AND {}", d.is_in("person_id", "$2"));
        let rows = sqlx::query(&sql).bind(site_id).bind(json_list(keys)).fetch_all(&mut *c).await?;
        rows.iter().map(profile_row).filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()?
    });
    Ok(rows.into_iter().map(|r| (r.person.key(), r)).collect())
}

/// The whole histories of these people (derived `Stage Changed` messages left out): a
/// user's are their own messages and the anonymous-only messages of every browser linked
/// to them.
async fn histories(
    db: &mut Db<'_>,
    site_id: &str,
    persons: &[Person],
) -> Result<HashMap<Person, Vec<StoredEvent>>, StoreError> {
    let wanted: HashSet<&Person> = persons.iter().collect();
    let users: Vec<&str> = persons.iter().filter_map(Person::user_id).collect();
    let mut anons: Vec<&str> = persons.iter().filter_map(Person::anonymous_id).collect();
    // Every link of these users, not only those the new messages named.
    let links = identity::links(db, site_id, &anons, &users).await?;
    anons.extend(links.iter().filter(|(_, u)| users.contains(&u.as_str())).map(|(a, _)| a.as_str()));
    let rows: Vec<StoredEvent> = on_db!(db, |c, d| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND user_id IS NULL AND {} \
             AND COALESCE(event, '') <> '{STAGE_CHANGED}' \
             UNION ALL SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND {} \
             AND COALESCE(event, '') <> '{STAGE_CHANGED}'",
            d.is_in("anonymous_id", "$2"),
            d.is_in("user_id", "$3")
        );
        let rows =
            sqlx::query(&sql).bind(site_id).bind(json_list(&anons)).bind(json_list(&users)).fetch_all(&mut *c).await?;
        rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?
    });
    let mut out: HashMap<Person, Vec<StoredEvent>> = HashMap::new();
    for e in rows {
        if let Some(p) = Person::of(e.event.user_id.as_deref(), e.event.anonymous_id.as_deref(), &links) {
            if wanted.contains(&p) {
                out.entry(p).or_default().push(e);
            }
        }
    }
    Ok(out)
}

/// A profile to write, as [`upsert`] reads it.
fn upsert_row(person: &Person, folded: &Folded) -> Value {
    let (at, id) = folded.last.as_ref().map_or((0, ""), |k| (k.at, k.message_id.as_str()));
    json!({
        "p": person.key(), "u": person.user_id(), "a": person.anonymous_id(),
        "s": folded.profile.encode(), "la": at as i64, "lm": id, "f": folded.first_at as i64,
        "n": folded.events as i64, "c": folded.profile.cart.value(),
    })
}

/// Writes profiles made by [`upsert_row`], in one statement.
async fn upsert(
    db: &mut Db<'_>,
    site_id: &str,
    rows: &[Value],
    config_tag: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let source = |d: Dialect| match d {
        Dialect::Sqlite => {
            "SELECT $1, json_extract(value, '$.p'), json_extract(value, '$.u'), json_extract(value, '$.a'), \
             json_extract(value, '$.s'), json_extract(value, '$.la'), json_extract(value, '$.lm'), \
             json_extract(value, '$.f'), json_extract(value, '$.n'), json_extract(value, '$.c'), $2, $3 \
             FROM json_each($4) WHERE true"
        }
        Dialect::Postgres => {
            "SELECT $1, x.p, x.u, x.a, x.s, x.la, x.lm, x.f, x.n, x.c, $2, $3 FROM jsonb_to_recordset($4::jsonb) \
             AS x (p text, u text, a text, s text, la bigint, lm text, f bigint, n bigint, c float8)"
        }
    };
    on_db!(db, |c, d| {
        let sql = format!(
            "INSERT INTO profiles (site_id, person_id, user_id, anonymous_id, state, last_at, last_message_id, \
             first_seen_ms, events, cart_value, config_tag, updated_ms) {} \
             ON CONFLICT (site_id, person_id) DO UPDATE SET user_id = excluded.user_id, \
             anonymous_id = excluded.anonymous_id, state = excluded.state, last_at = excluded.last_at, \
             last_message_id = excluded.last_message_id, first_seen_ms = excluded.first_seen_ms, \
             events = excluded.events, cart_value = excluded.cart_value, config_tag = excluded.config_tag, \
             updated_ms = excluded.updated_ms",
            source(d)
        );
        sqlx::query(&sql)
            .bind(site_id)
            .bind(config_tag)
            .bind(now_ms)
            .bind(Value::Array(rows.to_vec()).to_string())
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// One person's cached profile.
pub async fn load(db: &mut Db<'_>, site_id: &str, person: &Person) -> Result<Option<ProfileRow>, StoreError> {
    let key = person.key();
    Ok(on_db!(db, |c, _d| {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE site_id = $1 AND person_id = $2");
        match sqlx::query(&sql).bind(site_id).bind(&key).fetch_optional(&mut *c).await? {
            Some(row) => profile_row(&row)?,
            None => None,
        }
    }))
}

/// A person's folded core profile as cached (a fresh one when nothing was folded yet):
/// what their cart, products and affinities are on the server, without folding again.
pub async fn core_profile(db: &mut Db<'_>, site_id: &str, person: &Person) -> Result<Profile, StoreError> {
    Ok(match load(db, site_id, person).await? {
        Some(row) => Profile::decode(&row.state, String::new()).0,
        None => Profile::new(String::new()),
    })
}

/// The anonymous ids a person's profile is made of.
pub async fn anonymous_ids_of(db: &mut Db<'_>, site_id: &str, person: &Person) -> Result<Vec<String>, StoreError> {
    match person {
        Person::User(u) => identity::anonymous_ids(db, site_id, u).await,
        Person::Anonymous(a) => Ok(vec![a.clone()]),
    }
}

/// The profile JSON the API serves: `userId`, `anonymousIds`, `stage` (overall), `stages`
/// per category, `affinities`, `cart`, `consent`, `traits`, `firstSeen`, `lastSeen`,
/// `events`. Stages are read as of `now_ms` (they fade without new evidence).
pub fn render(row: &ProfileRow, anonymous_ids: &[String], th: &Thresholds, now_ms: i64) -> Value {
    let profile = decode(&row.state).unwrap_or_else(|| Profile::new(String::new()));
    let now = (now_ms.max(0) as u64).max(row.last.at);
    let consent = Policy::default().effective(&profile.consent);
    let mut view = match serde_json::from_str::<Value>(&profile.view(now, th, consent)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for k in ["anonymousId", "sessionId", "userId"] {
        view.remove(k);
    }
    view.insert("userId".into(), json!(row.person.user_id()));
    view.insert("anonymousIds".into(), json!(anonymous_ids));
    view.insert("firstSeen".into(), json!(to_iso(row.first_seen_ms.max(0) as u64)));
    view.insert("lastSeen".into(), json!(to_iso(row.last.at)));
    view.insert("events".into(), json!(row.events));
    Value::Object(view)
}

/// The core's stored profile of a row as a JSON value, with `user_id` set to `user_id`
/// (a profile folded from messages without an `identify` has none of its own).
pub fn state_for(row: &ProfileRow, user_id: &str) -> Option<Value> {
    let mut profile = decode(&row.state)?;
    profile.user_id = Some(user_id.to_string());
    serde_json::from_str(&profile.encode()).ok()
}

/// The stage of a category (or the overall stage) of a stored profile as of `now_ms`.
pub fn stage_of(row: &ProfileRow, category: Option<&str>, th: &Thresholds, now_ms: i64) -> Option<&'static str> {
    let profile = decode(&row.state)?;
    let now = (now_ms.max(0) as u64).max(row.last.at);
    match category {
        Some(c) => profile.categories.get(c).map(|e| e.stage(now, th).name()),
        None => profile.overall(now, th).map(|s| s.name()),
    }
}

/// A profile's overall stage (if any) and the stage of each of its categories.
pub type Stages = (Option<&'static str>, Vec<(String, &'static str)>);

/// The overall stage and the stage of every category of a stored profile as of `now_ms`
/// (one decode for all of them; `None` when the row cannot be read).
pub fn stages_of(row: &ProfileRow, th: &Thresholds, now_ms: i64) -> Option<Stages> {
    let profile = decode(&row.state)?;
    let now = (now_ms.max(0) as u64).max(row.last.at);
    let categories = profile.stages(now, th).into_iter().map(|(c, s)| (c.to_string(), s.name())).collect();
    Some((profile.overall(now, th).map(|s| s.name()), categories))
}
