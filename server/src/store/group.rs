//! Ingest's write path: each request's messages are stored AND folded into profiles in one
//! write transaction, and requests that arrive while a transaction is running share the
//! next one (group commit).
//!
//! A request queues its job and asks for the node's commit lock; whoever holds it takes
//! every job queued so far and runs them in one transaction under the site locks (SQLite's
//! single writer; PostgreSQL advisory locks on the sites, taken in key order): for each
//! site, drop messages naming erased people, insert the rest (`ON CONFLICT DO NOTHING`:
//! a known `messageId` is a duplicate), fold the new ones into their people's profiles
//! (`crate::profiles::fold_events`), then commit once. Each request is answered after that
//! commit, so a `200` still means "stored durably and folded", with one fsync (SQLite) or
//! one commit (PostgreSQL) for a whole group instead of two per request.
//!
//! The transaction runs in a task of its own, so a client that hangs up cannot cancel
//! other requests' transaction half way. If a group's transaction fails, its jobs are run
//! again one by one, so one bad request cannot fail the others; if a job fails alone, it
//! falls back to storing in one transaction and folding in a second (folding errors are
//! then logged, as the messages are committed and the person's next full fold repairs it).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};

use serde_json::{json, Value};
use tokio::sync::{oneshot, Mutex};

use super::{Db, NewEvent, Store, StoreError, StoredEvent};
use crate::erase;

/// Most messages one group transaction takes (a group stops growing past this; the jobs
/// left wait for the next one).
const MAX_GROUP_EVENTS: usize = 5_000;

/// What ingesting one request did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// `seq` of each newly stored message, ascending.
    pub stored: Vec<i64>,
    /// Messages whose `messageId` the site already had (or that repeat one of this request).
    pub duplicates: usize,
    /// Messages not stored because they name an erased person.
    pub dropped: usize,
}

struct Job {
    site_id: String,
    events: Vec<NewEvent>,
    now_ms: i64,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// The queue of jobs and the lock whose holder commits them.
#[derive(Default)]
pub struct GroupCommit {
    pending: SyncMutex<Vec<Job>>,
    leader: Arc<Mutex<()>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a request's valid messages and folds the new ones into profiles, in one
    /// transaction shared with the requests that arrive meanwhile; returns after the commit.
    pub async fn ingest(&self, site_id: &str, events: Vec<NewEvent>, now_ms: i64) -> Result<IngestOutcome, StoreError> {
        if events.is_empty() {
            return Ok(IngestOutcome::default());
        }
        let (reply, answer) = oneshot::channel();
        let group = self.group().clone();
        group.pending.lock().expect("ingest queue").push(Job { site_id: site_id.to_string(), events, now_ms, reply });
        let store = self.clone();
        tokio::spawn(async move {
            let _leader = group.leader.clone().lock_owned().await;
            loop {
                let jobs = take_group(&group);
                if jobs.is_empty() {
                    break;
                }
                run_group(&store, jobs).await;
            }
        });
        answer.await.unwrap_or(Err(StoreError::Abandoned))
    }
}

/// The jobs queued so far, up to [`MAX_GROUP_EVENTS`] messages (at least one job).
fn take_group(group: &GroupCommit) -> Vec<Job> {
    let mut pending = group.pending.lock().expect("ingest queue");
    let mut total = 0;
    let mut n = 0;
    while n < pending.len() && (n == 0 || total + pending[n].events.len() <= MAX_GROUP_EVENTS) {
        total += pending[n].events.len();
        n += 1;
    }
    pending.drain(..n).collect()
}

async fn run_group(store: &Store, jobs: Vec<Job>) {
    let (work, replies): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|j| ((j.site_id, j.events, j.now_ms), j.reply)).unzip();
    match commit_group(store, &work).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if work.len() > 1 => {
            eprintln!("nudge-server: a group of {} ingest requests failed ({e}); running them one by one", work.len());
            for (job, reply) in work.into_iter().zip(replies) {
                let outcome = alone(store, job).await;
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            eprintln!("nudge-server: ingest transaction failed ({e}); storing and folding separately");
            let job = work.into_iter().next().expect("one job");
            let _ = replies.into_iter().next().expect("one reply").send(store_then_fold(store, job).await);
        }
    }
}

type Work = (String, Vec<NewEvent>, i64);

async fn alone(store: &Store, job: Work) -> Result<IngestOutcome, StoreError> {
    match commit_group(store, std::slice::from_ref(&job)).await {
        Ok(mut outcomes) => Ok(outcomes.pop().unwrap_or_default()),
        Err(e) => {
            eprintln!("nudge-server: ingest transaction failed ({e}); storing and folding separately");
            store_then_fold(store, job).await
        }
    }
}

/// The fallback: store in one transaction, fold in another (a fold failure is logged).
async fn store_then_fold(store: &Store, (site_id, events, now_ms): Work) -> Result<IngestOutcome, StoreError> {
    let (events, dropped) = erase::drop_erased(store, &site_id, events).await?;
    let outcome = store.insert_events(&site_id, &events).await?;
    if let Err(e) = crate::profiles::fold_new(store, &site_id, &outcome.stored, now_ms).await {
        eprintln!("nudge-server: folding into profiles failed for site {site_id}: {e}");
    }
    Ok(IngestOutcome { stored: outcome.stored, duplicates: outcome.duplicates, dropped })
}

/// Runs the jobs in one transaction; one outcome per job, in order.
async fn commit_group(store: &Store, jobs: &[Work]) -> Result<Vec<IngestOutcome>, StoreError> {
    let sites: BTreeSet<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    let sites: Vec<&str> = sites.into_iter().collect();
    let mut tx = store.write_sites(&sites).await?;
    let mut outcomes = vec![IngestOutcome::default(); jobs.len()];
    for site_id in sites {
        let mine: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].0 == site_id).collect();
        let now_ms = mine.iter().map(|&i| jobs[i].2).max().unwrap_or(0);
        let users: BTreeSet<&str> =
            mine.iter().flat_map(|&i| jobs[i].1.iter().filter_map(|e| e.user_id.as_deref())).collect();
        let anons: BTreeSet<&str> =
            mine.iter().flat_map(|&i| jobs[i].1.iter().filter_map(|e| e.anonymous_id.as_deref())).collect();
        let users: Vec<&str> = users.into_iter().collect();
        let anons: Vec<&str> = anons.into_iter().collect();
        let erased = erase::erased_among(&mut tx.db(), site_id, &users, &anons).await?;
        let mut kept: Vec<(usize, &NewEvent)> = Vec::new();
        for &i in &mine {
            for e in &jobs[i].1 {
                if erased.covers(e.user_id.as_deref(), e.anonymous_id.as_deref()) {
                    outcomes[i].dropped += 1;
                } else {
                    kept.push((i, e));
                }
            }
        }
        let to_insert: Vec<&NewEvent> = kept.iter().map(|(_, e)| *e).collect();
        let mut seqs: HashMap<String, i64> = insert_returning(&mut tx.db(), site_id, &to_insert).await?;
        let mut new: Vec<StoredEvent> = Vec::with_capacity(seqs.len());
        // The first message with a messageId is the one stored; later ones are duplicates.
        for (i, e) in kept {
            match seqs.remove(&e.message_id) {
                Some(seq) => {
                    outcomes[i].stored.push(seq);
                    new.push(StoredEvent { seq, event: e.clone() });
                }
                None => outcomes[i].duplicates += 1,
            }
        }
        new.sort_by_key(|e| e.seq);
        crate::profiles::fold_events(&mut tx, site_id, new, now_ms).await?;
    }
    tx.commit().await?;
    for o in &mut outcomes {
        o.stored.sort_unstable();
    }
    Ok(outcomes)
}

/// Inserts messages in one statement (`ON CONFLICT DO NOTHING`); returns the `seq` of each
/// newly stored one by `messageId`.
pub(crate) async fn insert_returning(
    db: &mut Db<'_>,
    site_id: &str,
    events: &[&NewEvent],
) -> Result<HashMap<String, i64>, StoreError> {
    if events.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String)> = match db {
        Db::Sqlite(c) => {
            let rows: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!([
                        e.message_id,
                        e.kind,
                        e.event,
                        e.user_id,
                        e.anonymous_id,
                        e.timestamp_ms,
                        e.received_ms,
                        e.body
                    ])
                })
                .collect();
            sqlx::query_as(
                "INSERT INTO events (site_id, message_id, type, event, user_id, anonymous_id, timestamp_ms, \
                 received_ms, body) \
                 SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
                 value ->> 6, value ->> 7 FROM json_each($2) WHERE true ORDER BY key \
                 ON CONFLICT (site_id, message_id) DO NOTHING RETURNING seq, message_id",
            )
            .bind(site_id)
            .bind(Value::Array(rows).to_string())
            .fetch_all(&mut **c)
            .await?
        }
        Db::Postgres(c) => {
            let cols = super::postgres::EventColumns::of(events.iter().copied());
            sqlx::query_as(super::postgres::insert_unnest!("RETURNING seq, message_id"))
                .bind(site_id)
                .bind(&cols.message_ids)
                .bind(&cols.kinds)
                .bind(&cols.names)
                .bind(&cols.user_ids)
                .bind(&cols.anonymous_ids)
                .bind(&cols.timestamps)
                .bind(&cols.received)
                .bind(&cols.bodies)
                .fetch_all(&mut **c)
                .await?
        }
    };
    Ok(rows.into_iter().map(|(seq, id)| (id, seq)).collect())
}
