//! Tabs of one site share one profile. One tab owns it (the leader, elected by the shell
//! with Web Locks): only the leader applies calls to the stored profile, writes storage
//! and (later) sends. Other tabs (followers) apply their own calls at once to their copy,
//! so `profile()` never waits, and forward them; the leader applies each forwarded call
//! exactly once (per-tab sequence numbers in the profile) and broadcasts the result, on
//! which followers rebase their unacknowledged calls. Two tabs writing at once therefore
//! lose no update, and no storage read-modify-write races between tabs.
//!
//! This module is the pure protocol; `web::tabs` carries its messages over a
//! BroadcastChannel.

use crate::codec::Json;
use crate::engine::{Engine, Input, Outputs, StageChange};
use crate::error::Error;
use crate::funnel::Stage;
use crate::keyed::Keyed;

/// This tab's part in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No other tab can be reached (no BroadcastChannel or Web Locks): act alone.
    Solo,
    /// Owns the profile: applies, stores, broadcasts.
    Leader,
    /// Applies locally, forwards to the leader, adopts the leader's state.
    Follower,
}

/// A message between tabs.
#[derive(Debug, Clone, PartialEq)]
pub struct Wire {
    /// `in` (forwarded call), `state` (leader's profile), `hello` (new tab), `leader`.
    pub t: String,
    /// The sending tab.
    pub tab: String,
    /// Sequence number of a forwarded call.
    pub seq: u64,
    /// The forwarded call.
    pub input: Option<Input>,
    /// The leader's stored profile text.
    pub profile: Option<String>,
}
crate::json_struct!(Wire { t: "t", tab: "tab", seq: "seq", input: "input", profile: "profile" });

/// What the shell must do after a message from another tab.
#[derive(Debug, Default)]
pub struct Reaction {
    /// Stage changes to report to this tab's listeners.
    pub stage_changes: Vec<StageChange>,
    /// The profile changed: notify `change` listeners.
    pub changed: bool,
    /// The leader must store and broadcast its state.
    pub dirty: bool,
    /// Storage must be wiped (a forwarded `forget()` or consent withdrawal).
    pub wipe_storage: bool,
    /// A message to post in reply.
    pub reply: Option<String>,
    /// Another tab leads (it sent its state or announced itself).
    pub leader_known: bool,
}

/// This tab's side of the protocol.
pub struct TabSync {
    /// This tab's id.
    pub tab: String,
    /// This tab's role.
    pub role: Role,
    seq: u64,
    pending: Vec<(u64, Input)>,
    /// The profile the pending calls were applied on top of (the last leader state, or
    /// this tab's own start): a tab that wins the election with nothing in storage
    /// replays its pending calls on it, so their messages reach the outbox.
    base: Option<String>,
}

impl TabSync {
    /// A tab with the given id and role.
    pub fn new(tab: String, role: Role) -> TabSync {
        TabSync { tab, role, seq: 0, pending: Vec::new(), base: None }
    }

    /// Calls made here that the leader has not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A call made in this tab: applied here at once; for a follower also returned as a
    /// message to forward to the leader (unless it changed nothing: [`Outputs::quiet`]).
    pub fn local(&mut self, engine: &mut Engine, input: Input) -> Result<(Outputs, Option<String>), Error> {
        if self.role != Role::Follower {
            return Ok((engine.apply(&input)?, None));
        }
        let base = self.pending.is_empty().then(|| engine.profile.encode());
        let out = engine.apply(&input)?;
        if out.quiet {
            // Nothing the leader needs to know (a page signal that changed nothing).
            return Ok((out, None));
        }
        if base.is_some() {
            self.base = base;
        }
        // The leader makes the messages; a follower's copy of the outbox means nothing.
        engine.outbox.clear();
        self.seq += 1;
        let wire = self.wire("in", Some(input.clone()), None);
        self.seq_push(input);
        Ok((out, Some(wire)))
    }

    fn seq_push(&mut self, input: Input) {
        self.pending.push((self.seq, input));
    }

    /// The leader's state message.
    pub fn state(&self, engine: &Engine) -> String {
        self.wire("state", None, Some(engine.profile.encode()))
    }

    /// The message a new tab sends to ask for the leader's state.
    pub fn hello(&self) -> String {
        self.wire("hello", None, None)
    }

    fn wire(&self, t: &str, input: Option<Input>, profile: Option<String>) -> String {
        Wire { t: t.into(), tab: self.tab.clone(), seq: self.seq, input, profile }.to_json()
    }

    /// This tab won the election. `stored` is the profile in storage (the last leader's
    /// final word), if storage works; this tab's unacknowledged calls are applied on top.
    /// Returns the announcement to post.
    pub fn become_leader(&mut self, engine: &mut Engine, stored: Option<&str>) -> String {
        self.role = Role::Leader;
        let pending = std::mem::take(&mut self.pending);
        let base = self.base.take();
        if let Some(text) = stored.or(base.as_deref()) {
            engine.load_profile(text);
            for (seq, input) in &pending {
                let _ = engine.apply_forwarded(&self.tab.clone(), *seq, input);
            }
        }
        self.wire("leader", None, None)
    }

    /// A message from another tab.
    pub fn receive(&mut self, engine: &mut Engine, text: &str) -> Reaction {
        let mut r = Reaction::default();
        let Some(w) = Wire::from_json(text) else {
            return r;
        };
        if w.tab == self.tab {
            return r;
        }
        match (self.role, w.t.as_str()) {
            (Role::Leader, "in") => {
                if let Some(input) = &w.input {
                    if let Ok(out) = engine.apply_forwarded(&w.tab, w.seq, input) {
                        r.stage_changes = out.stage_changes;
                        r.wipe_storage = out.wipe_storage;
                        r.changed = true;
                        r.dirty = true;
                    }
                }
            }
            (Role::Leader, "hello") => r.reply = Some(self.state(engine)),
            (Role::Follower, "state") => {
                r.leader_known = true;
                if let Some(p) = &w.profile {
                    r.stage_changes = self.rebase(engine, p);
                    r.changed = true;
                }
            }
            (Role::Follower, "leader") => {
                r.leader_known = true;
                // A new leader may have missed calls sent to the old one: send them again.
                let mut out = Vec::new();
                for (seq, input) in &self.pending {
                    out.push(
                        Wire {
                            t: "in".into(),
                            tab: self.tab.clone(),
                            seq: *seq,
                            input: Some(input.clone()),
                            profile: None,
                        }
                        .to_json(),
                    );
                }
                if !out.is_empty() {
                    let mut reply = String::new();
                    crate::outbox::join_into(&mut reply, &out, '\n');
                    r.reply = Some(reply);
                }
            }
            _ => {}
        }
        r
    }

    /// Adopts the leader's profile and re-applies this tab's unacknowledged calls on top;
    /// returns the stage changes this tab had not seen.
    fn rebase(&mut self, engine: &mut Engine, profile: &str) -> Vec<StageChange> {
        let before = reported(engine);
        engine.load_profile(profile);
        self.base = Some(profile.to_string());
        let acked = engine.profile.acks.get(&self.tab).map_or(0, |a| a.seq);
        self.pending.retain(|(seq, _)| *seq > acked);
        for (_, input) in &self.pending {
            let _ = engine.apply(input);
        }
        engine.outbox.clear();
        let mut changes = Vec::new();
        for (cat, e) in engine.profile.categories.iter() {
            if let Some(to) = e.reported {
                let from = before.get(cat).copied();
                if from != Some(to) {
                    changes.push(StageChange { category: cat.clone(), from, to });
                }
            }
        }
        changes
    }
}

fn reported(engine: &Engine) -> Keyed<Stage> {
    let mut out = Keyed::new();
    for (k, e) in engine.profile.categories.iter() {
        if let Some(s) = e.reported {
            out.insert(k.clone(), s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Settings;
    use crate::funnel::Stage;

    fn engine() -> Engine {
        Engine::new(Settings::default(), "0123456789abcdef0123456789abcdef")
    }

    fn view(cat: &str, n: u64) -> Input {
        let seed = format!("{:032x}", n);
        Input::track("Product Viewed", &format!(r#"{{"category":"{cat}","product_id":"p{n}"}}"#), 1_000 + n, &seed)
    }

    /// Delivers every posted message to the other tab, like a BroadcastChannel.
    fn deliver(from_posts: &mut Vec<String>, to: &mut TabSync, to_engine: &mut Engine, back: &mut Vec<String>) {
        for m in from_posts.drain(..) {
            for line in m.lines() {
                let r = to.receive(to_engine, line);
                if let Some(reply) = r.reply {
                    back.push(reply);
                }
                if r.dirty {
                    back.push(to.state(to_engine));
                }
            }
        }
    }

    #[test]
    fn two_tabs_tracking_at_once_lose_no_update_and_agree() {
        let (mut le, mut fe) = (engine(), engine());
        let mut leader = TabSync::new("L".into(), Role::Leader);
        let mut follower = TabSync::new("F".into(), Role::Follower);
        let (mut to_leader, mut to_follower) = (Vec::new(), Vec::new());
        for n in 0..50 {
            leader.local(&mut le, view("TVs", n)).unwrap();
            to_follower.push(leader.state(&le));
            let (_, fwd) = follower.local(&mut fe, view("Phones", 100 + n)).unwrap();
            to_leader.extend(fwd);
            // Deliver in bursts, so states cross forwarded calls in flight.
            if n % 7 == 0 {
                deliver(&mut to_leader, &mut leader, &mut le, &mut to_follower);
                deliver(&mut to_follower, &mut follower, &mut fe, &mut to_leader);
            }
        }
        deliver(&mut to_leader, &mut leader, &mut le, &mut to_follower);
        deliver(&mut to_follower, &mut follower, &mut fe, &mut to_leader);
        let tracks = le.outbox.messages().iter().filter(|m| m.contains("\"Product Viewed\"")).count();
        assert_eq!(tracks, 100, "every call in the leader's outbox exactly once");
        assert_eq!(follower.pending(), 0);
        assert_eq!(le.profile_json(10_000), fe.profile_json(10_000));
        assert_eq!(le.profile.categories["Phones"].reported, Some(Stage::Decision));
    }

    #[test]
    fn a_follower_that_becomes_leader_applies_what_the_old_leader_missed() {
        let (mut le, mut fe) = (engine(), engine());
        let mut leader = TabSync::new("L".into(), Role::Leader);
        let mut follower = TabSync::new("F".into(), Role::Follower);
        leader.local(&mut le, view("TVs", 1)).unwrap();
        let (_, fwd) = follower.local(&mut fe, view("TVs", 2)).unwrap();
        leader.receive(&mut le, &fwd.unwrap());
        let stored = le.profile.encode();
        // The leader closes before it hears this one.
        follower.local(&mut fe, view("TVs", 3)).unwrap();
        let mut ne = engine();
        ne.outbox = le.outbox.clone();
        follower.become_leader(&mut ne, Some(&stored));
        assert_eq!(ne.outbox.messages().iter().filter(|m| m.contains("Product Viewed")).count(), 3);
        // The forwarded call 2 was already applied by the old leader: not again.
        let again = Input { ..view("TVs", 2) };
        assert!(ne.apply_forwarded("F", 1, &again).unwrap().stage_changes.is_empty());
        assert_eq!(ne.outbox.messages().iter().filter(|m| m.contains("Product Viewed")).count(), 3);
    }

    #[test]
    fn calls_made_while_electing_reach_the_outbox_when_the_tab_wins_with_empty_storage() {
        let mut e = engine();
        let mut tab = TabSync::new("T".into(), Role::Follower);
        tab.local(&mut e, view("TVs", 1)).unwrap();
        tab.local(&mut e, view("TVs", 2)).unwrap();
        assert!(e.outbox.messages().is_empty(), "a follower keeps no outbox of its own");
        tab.become_leader(&mut e, None);
        let views = e.outbox.messages().iter().filter(|m| m.contains("Product Viewed")).count();
        assert_eq!(views, 2);
        assert_eq!(e.profile.categories["TVs"].views.len(), 2, "each call applied once");
    }

    #[test]
    fn a_follower_hears_stage_changes_made_in_other_tabs() {
        let (mut le, mut fe) = (engine(), engine());
        let mut leader = TabSync::new("L".into(), Role::Leader);
        let mut follower = TabSync::new("F".into(), Role::Follower);
        leader.local(&mut le, view("TVs", 1)).unwrap();
        let r = follower.receive(&mut fe, &leader.state(&le));
        assert_eq!(r.stage_changes.len(), 1);
        assert_eq!(r.stage_changes[0].to, Stage::Awareness);
        assert!(follower.receive(&mut fe, &leader.state(&le)).stage_changes.is_empty());
    }
}
