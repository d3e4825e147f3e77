//! The Raft state of one node, behind an `overlap::sync::Mutex` (tokio's `Mutex`: held
//! across the awaits that make a change durable before it is acted on), and what each
//! message does to it.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{watch, Mutex, Notify};
use overlap::time::Instant;

use crate::msg::{Entry, Msg};
use crate::storage::Log;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What a node shows the world (and the tests), published on a `watch` after each change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub term: u64,
    pub role: Role,
    pub leader: Option<u64>,
    pub commit: u64,
    pub last_index: u64,
    pub base: u64,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub election_min: Duration,
    pub election_max: Duration,
    pub heartbeat: Duration,
    pub rpc_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Most entries in one AppendEntries.
    pub max_batch: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            election_min: Duration::from_millis(150),
            election_max: Duration::from_millis(300),
            heartbeat: Duration::from_millis(30),
            rpc_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(5),
            backoff_max: Duration::from_millis(100),
            max_batch: 64,
        }
    }
}

pub struct Raft {
    pub id: u64,
    pub peers: Vec<u64>,
    pub log: Log,
    pub role: Role,
    pub leader: Option<u64>,
    pub commit: u64,
    pub next: HashMap<u64, u64>,
    pub matched: HashMap<u64, u64>,
    pub votes: usize,
}

impl Raft {
    /// A majority of the cluster.
    pub fn quorum(&self) -> usize {
        let nodes = self.peers.len() + 1;
        nodes / 2 + 1
    }
}

/// What a node's tasks share.
pub struct Shared {
    pub raft: Mutex<Raft>,
    pub cfg: Config,
    pub commit_tx: watch::Sender<u64>,
    pub status_tx: watch::Sender<Status>,
    /// The election deadline; the core task sleeps until it and is woken to look again.
    pub deadline: Cell<Instant>,
    pub wake_core: Notify,
    /// One per peer, in `peers` order: wakes its replication task.
    pub replicate: Vec<Rc<Notify>>,
    seed: Cell<u64>,
}

impl Shared {
    pub fn new(raft: Raft, cfg: Config) -> Shared {
        let status = status_of(&raft);
        let replicate = raft.peers.iter().map(|_| Rc::new(Notify::new())).collect();
        let seed = 0x9e37_79b9_7f4a_7c15 ^ (raft.id + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
        Shared {
            commit_tx: watch::Sender::new(raft.commit),
            status_tx: watch::Sender::new(status),
            raft: Mutex::new(raft),
            deadline: Cell::new(Instant::now() + cfg.election_max),
            cfg,
            wake_core: Notify::new(),
            replicate,
            seed: Cell::new(seed),
        }
    }

    /// A fresh randomized election deadline, and the core told of it.
    pub fn reset_election(&self) {
        let mut x = self.seed.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.set(x);
        let span = (self.cfg.election_max - self.cfg.election_min).as_micros() as u64;
        let jitter = Duration::from_micros(x.wrapping_mul(0x2545_f491_4f6c_dd1d) % span.max(1));
        self.deadline
            .set(Instant::now() + self.cfg.election_min + jitter);
        self.wake_core.notify_one();
    }

    pub fn publish(&self, r: &Raft) {
        self.status_tx.send_if_modified(|s| {
            let new = status_of(r);
            std::mem::replace(s, new) != new
        });
        self.commit_tx.send_if_modified(|c| {
            let moved = *c != r.commit;
            *c = r.commit;
            moved
        });
    }

    pub fn kick_replicators(&self) {
        for n in &self.replicate {
            n.notify_one();
        }
    }

    /// A higher term seen: follow it, the vote cleared, durably.
    pub async fn step_down(&self, r: &mut Raft, term: u64) -> io::Result<()> {
        if term > r.log.meta().term {
            r.log.set_vote(term, None).await?;
            r.leader = None;
        }
        if r.role != Role::Follower {
            r.role = Role::Follower;
            self.wake_core.notify_one();
        }
        Ok(())
    }

    pub async fn on_vote_req(&self, r: &mut Raft, m: Msg) -> io::Result<Msg> {
        let Msg::VoteReq {
            term,
            candidate,
            last_index,
            last_term,
        } = m
        else {
            unreachable!()
        };
        if term > r.log.meta().term {
            self.step_down(r, term).await?;
        }
        let meta = r.log.meta();
        let up_to_date = (last_term, last_index) >= (r.log.last_term(), r.log.last_index());
        let free = meta.voted_for.is_none_or(|v| v == candidate);
        let granted = term == meta.term && free && up_to_date;
        if granted {
            r.log.set_vote(term, Some(candidate)).await?;
            self.reset_election();
        }
        self.publish(r);
        Ok(Msg::VoteResp {
            term: r.log.meta().term,
            granted,
        })
    }

    pub async fn on_append_req(&self, r: &mut Raft, m: Msg) -> io::Result<Msg> {
        let Msg::AppendReq {
            term,
            leader,
            mut prev_index,
            mut prev_term,
            commit,
            compact_to,
            mut entries,
        } = m
        else {
            unreachable!()
        };
        let current = r.log.meta().term;
        let fail = |term, index| Msg::AppendResp {
            term,
            success: false,
            index,
        };
        if term < current {
            return Ok(fail(current, 0));
        }
        self.step_down(r, term).await?;
        r.leader = Some(leader);
        self.reset_election();
        // Entries at or below our base are committed, and so the same: skip them.
        let base = r.log.base();
        if prev_index < base {
            let skip = ((base - prev_index) as usize).min(entries.len());
            entries.drain(..skip);
            prev_index += skip as u64;
            prev_term = r.log.term_at(prev_index).unwrap_or(prev_term);
        }
        if prev_index > r.log.last_index() {
            self.publish(r);
            return Ok(fail(term, r.log.last_index() + 1));
        }
        if r.log.term_at(prev_index) != Some(prev_term) {
            self.publish(r);
            return Ok(fail(term, prev_index.max(base + 1)));
        }
        let matched = prev_index + entries.len() as u64;
        let mut index = prev_index;
        let mut new = Vec::new();
        for e in entries {
            index += 1;
            match r.log.term_at(index) {
                Some(t) if new.is_empty() && t == e.term => {}
                Some(_) if new.is_empty() => {
                    r.log.truncate_from(index).await?;
                    new.push(e);
                }
                _ => new.push(e),
            }
        }
        if !new.is_empty() {
            r.log.append(new).await?;
        }
        r.commit = r.commit.max(commit.min(matched));
        if compact_to.min(r.commit) > r.log.base() {
            r.log.compact(compact_to.min(r.commit)).await?;
        }
        self.publish(r);
        Ok(Msg::AppendResp {
            term,
            success: true,
            index: matched,
        })
    }

    /// The request to send `peer` now, if this node leads.
    pub fn append_req_for(&self, r: &Raft, peer: u64) -> Option<Msg> {
        if r.role != Role::Leader {
            return None;
        }
        let next = r.next[&peer].max(r.log.base() + 1);
        let prev_index = next - 1;
        Some(Msg::AppendReq {
            term: r.log.meta().term,
            leader: r.id,
            prev_index,
            prev_term: r.log.term_at(prev_index).unwrap(),
            commit: r.commit,
            compact_to: self.compact_to(r),
            entries: r.log.entries_from(next, self.cfg.max_batch),
        })
    }

    /// Every node holds the entries up to here.
    fn compact_to(&self, r: &Raft) -> u64 {
        r.matched.values().copied().min().unwrap_or(0).min(r.commit)
    }

    /// A peer's answer to an AppendEntries sent in `sent_term`; whether there is more to
    /// send it.
    pub async fn on_append_resp(
        &self,
        r: &mut Raft,
        peer: u64,
        sent_term: u64,
        m: Msg,
    ) -> io::Result<bool> {
        let Msg::AppendResp {
            term,
            success,
            index,
        } = m
        else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not an answer"));
        };
        if term > r.log.meta().term {
            self.step_down(r, term).await?;
            self.publish(r);
            return Ok(false);
        }
        if r.role != Role::Leader || r.log.meta().term != sent_term {
            return Ok(false);
        }
        if success {
            let m = r.matched.get_mut(&peer).unwrap();
            *m = (*m).max(index);
            r.next.insert(peer, *m + 1);
            self.advance_commit(r).await?;
        } else {
            r.next.insert(peer, index.max(1));
        }
        Ok(r.next[&peer] <= r.log.last_index())
    }

    /// The highest index of this term held by a majority is committed.
    pub async fn advance_commit(&self, r: &mut Raft) -> io::Result<()> {
        let term = r.log.meta().term;
        let quorum = r.quorum();
        let mut n = r.log.last_index();
        while n > r.commit && r.log.term_at(n) == Some(term) {
            let have = 1 + r.matched.values().filter(|&&m| m >= n).count();
            if have >= quorum {
                r.commit = n;
                break;
            }
            n -= 1;
        }
        let upto = self.compact_to(r);
        if upto > r.log.base() {
            r.log.compact(upto).await?;
        }
        self.publish(r);
        Ok(())
    }

    /// Won the election: every peer's next is our end, and a no-op of this term goes out
    /// (entries of earlier terms commit only under one of this term).
    pub async fn become_leader(&self, r: &mut Raft) -> io::Result<()> {
        r.role = Role::Leader;
        r.leader = Some(r.id);
        for &p in &r.peers {
            r.next.insert(p, r.log.last_index() + 1);
            r.matched.insert(p, 0);
        }
        let term = r.log.meta().term;
        r.log.append(vec![Entry { term, data: vec![] }]).await?;
        self.advance_commit(r).await?;
        self.kick_replicators();
        self.wake_core.notify_one();
        Ok(())
    }
}

pub fn status_of(r: &Raft) -> Status {
    Status {
        term: r.log.meta().term,
        role: r.role,
        leader: r.leader,
        commit: r.commit,
        last_index: r.log.last_index(),
        base: r.log.base(),
    }
}
