//! The Raft core: one task per node owning the term, the vote, the log and the state
//! machine, driven by events (RPCs from peers, replies to its own RPCs, client commands)
//! and by its election or heartbeat deadline.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{mpsc, oneshot};
use overlap::time::{self, Instant};

pub use crate::core_types::{Config, Event, History, Outcome, Role, Status};
use crate::storage::{Loaded, Snapshot, Storage};
use crate::support::Rng;
use crate::wire::{decode_state, encode_state, Command, Entry, Request, Response};

pub struct Raft {
    pub id: u8,
    pub n: u8,
    pub cfg: Config,
    pub rng: Rng,
    pub store: Storage,
    pub status: Rc<RefCell<Status>>,
    pub history: History,
    pub peers: Vec<Option<mpsc::UnboundedSender<(u64, Request)>>>,
    term: u64,
    vote: Option<u8>,
    role: Role,
    leader: Option<u8>,
    log: Vec<Entry>,
    snap: Snapshot,
    commit: u64,
    applied: u64,
    state: BTreeMap<String, String>,
    votes: usize,
    next: Vec<u64>,
    matched: Vec<u64>,
    inflight: Vec<bool>,
    deadline: Instant,
    pending: HashMap<u64, (u64, oneshot::Sender<Outcome>)>,
}

impl Raft {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u8,
        n: u8,
        cfg: Config,
        seed: u64,
        store: Storage,
        loaded: Loaded,
        status: Rc<RefCell<Status>>,
        history: History,
    ) -> io::Result<Raft> {
        let state = if loaded.snapshot.last_index > 0 {
            decode_state(&loaded.snapshot.data)?
        } else {
            BTreeMap::new()
        };
        status.borrow_mut().torn_bytes = loaded.torn_bytes;
        let snap_index = loaded.snapshot.last_index;
        let mut r = Raft {
            id,
            n,
            cfg,
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            store,
            status,
            history,
            peers: Vec::new(),
            term: loaded.term,
            vote: loaded.vote,
            role: Role::Follower,
            leader: None,
            log: loaded.entries,
            snap: loaded.snapshot,
            commit: snap_index,
            applied: snap_index,
            state,
            votes: 0,
            next: vec![1; n as usize],
            matched: vec![0; n as usize],
            inflight: vec![false; n as usize],
            deadline: time::now(),
            pending: HashMap::new(),
        };
        r.reset_election();
        Ok(r)
    }

    fn last_index(&self) -> u64 {
        self.snap.last_index + self.log.len() as u64
    }

    fn term_at(&self, i: u64) -> Option<u64> {
        if i == self.snap.last_index {
            Some(self.snap.last_term)
        } else if i > self.snap.last_index {
            self.log
                .get((i - self.snap.last_index - 1) as usize)
                .map(|e| e.term)
        } else {
            None
        }
    }

    fn reset_election(&mut self) {
        let span = self.cfg.election.as_millis() as usize;
        let ms = span + self.rng.below(span);
        self.deadline = time::now() + Duration::from_millis(ms as u64);
    }

    /// The task: events and deadlines until the event channel closes or storage fails.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) -> io::Result<()> {
        self.publish();
        loop {
            overlap::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.handle(ev).await?,
                    None => return Ok(()),
                },
                _ = time::sleep_until(self.deadline) => self.on_deadline().await?,
            }
            self.publish();
        }
    }

    pub fn publish(&self) {
        let mut s = self.status.borrow_mut();
        s.role = Some(self.role);
        s.term = self.term;
        s.leader = self.leader;
        s.commit = self.commit;
        s.applied = self.applied;
        s.last_index = self.last_index();
        s.snap_index = self.snap.last_index;
        if s.state != self.state {
            s.state = self.state.clone();
        }
    }

    async fn on_deadline(&mut self) -> io::Result<()> {
        if self.role == Role::Leader {
            self.deadline = time::now() + self.cfg.heartbeat;
            for p in 0..self.n {
                self.send_append(p);
            }
            return Ok(());
        }
        self.term += 1;
        self.role = Role::Candidate;
        self.vote = Some(self.id);
        self.leader = None;
        self.votes = 1;
        self.store.save_meta(self.term, self.vote).await?;
        self.reset_election();
        let req = Request::Vote {
            term: self.term,
            candidate: self.id,
            last_index: self.last_index(),
            last_term: self.term_at(self.last_index()).unwrap_or(0),
        };
        for p in 0..self.n {
            self.send(p, req.clone());
        }
        Ok(())
    }

    fn send(&mut self, p: u8, req: Request) {
        if let Some(Some(tx)) = self.peers.get(p as usize) {
            let _ = tx.send((self.term, req));
        }
    }

    async fn step_down(&mut self, term: u64) -> io::Result<()> {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.store.save_meta(self.term, None).await?;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.reset_election();
        }
        for (_, (_, tx)) in self.pending.drain() {
            let _ = tx.send(Outcome::Redirect(None));
        }
        Ok(())
    }

    async fn handle(&mut self, ev: Event) -> io::Result<()> {
        match ev {
            Event::Rpc(req, reply) => {
                let resp = self.on_request(req).await?;
                let _ = reply.send(resp);
            }
            Event::Reply { peer, term, resp } => {
                self.inflight[peer as usize] = false;
                if let Some(resp) = resp {
                    self.on_response(peer, term, resp).await?;
                }
            }
            Event::Client(cmd, reply) => self.on_client(cmd, reply).await?,
        }
        Ok(())
    }

    async fn on_client(&mut self, cmd: Command, reply: oneshot::Sender<Outcome>) -> io::Result<()> {
        if self.role != Role::Leader {
            let _ = reply.send(Outcome::Redirect(self.leader));
            return Ok(());
        }
        let index = self
            .append_local(vec![Entry {
                term: self.term,
                cmd,
            }])
            .await?;
        self.pending.insert(index, (self.term, reply));
        self.advance_commit().await?;
        for p in 0..self.n {
            self.send_append(p);
        }
        Ok(())
    }

    /// Appends and syncs entries as the leader; the last one's index.
    async fn append_local(&mut self, entries: Vec<Entry>) -> io::Result<u64> {
        let first = self.last_index() + 1;
        self.store.append(first, &entries).await?;
        self.log.extend(entries);
        Ok(self.last_index())
    }

    async fn on_request(&mut self, req: Request) -> io::Result<Response> {
        match req {
            Request::Vote {
                term,
                candidate,
                last_index,
                last_term,
            } => {
                if term > self.term {
                    self.step_down(term).await?;
                }
                let my_last = self.last_index();
                let my_term = self.term_at(my_last).unwrap_or(0);
                let up_to_date = (last_term, last_index) >= (my_term, my_last);
                let granted =
                    term == self.term && up_to_date && self.vote.is_none_or(|v| v == candidate);
                if granted && self.vote.is_none() {
                    self.vote = Some(candidate);
                    self.store.save_meta(self.term, self.vote).await?;
                }
                if granted {
                    self.reset_election();
                }
                Ok(Response::Vote {
                    term: self.term,
                    granted,
                })
            }
            Request::Append {
                term,
                leader,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                if term < self.term {
                    return Ok(Response::Append {
                        term: self.term,
                        success: false,
                        index: 0,
                    });
                }
                self.step_down(term).await?;
                self.leader = Some(leader);
                self.reset_election();
                let index = self.accept_entries(prev_index, prev_term, entries).await?;
                let Some(matched) = index else {
                    let hint = self.conflict_hint(prev_index);
                    return Ok(Response::Append {
                        term: self.term,
                        success: false,
                        index: hint,
                    });
                };
                if commit.min(matched) > self.commit {
                    self.commit = commit.min(matched);
                    self.apply().await?;
                }
                Ok(Response::Append {
                    term: self.term,
                    success: true,
                    index: matched,
                })
            }
            Request::Snapshot {
                term,
                leader,
                last_index,
                last_term,
                data,
            } => {
                if term < self.term {
                    return Ok(Response::Snapshot {
                        term: self.term,
                        last_index: 0,
                    });
                }
                self.step_down(term).await?;
                self.leader = Some(leader);
                self.reset_election();
                if last_index > self.commit {
                    self.install(Snapshot {
                        last_index,
                        last_term,
                        data,
                    })
                    .await?;
                }
                Ok(Response::Snapshot {
                    term: self.term,
                    last_index,
                })
            }
        }
    }

    /// Where the leader should look next after a mismatch at `prev_index`: before the
    /// first entry of the conflicting term, or at the end of a shorter log.
    fn conflict_hint(&self, prev_index: u64) -> u64 {
        let last = self.last_index();
        if prev_index > last {
            return last;
        }
        let t = self.term_at(prev_index);
        let mut i = prev_index;
        while i > self.snap.last_index + 1 && i > self.commit + 1 && self.term_at(i - 1) == t {
            i -= 1;
        }
        i - 1
    }

    /// The follower's side of AppendEntries: `Some(last index matched)` or `None` when the
    /// log does not hold `prev_index` at `prev_term`.
    async fn accept_entries(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
    ) -> io::Result<Option<u64>> {
        let matched_end = prev_index + entries.len() as u64;
        if prev_index >= self.snap.last_index {
            if self.term_at(prev_index) != Some(prev_term) {
                return Ok(None);
            }
        } else if matched_end <= self.snap.last_index {
            // All of it is in the snapshot already, so committed and the same.
            return Ok(Some(matched_end));
        }
        let mut new = Vec::new();
        for (k, e) in entries.into_iter().enumerate() {
            let i = prev_index + 1 + k as u64;
            if i <= self.snap.last_index {
                continue;
            }
            if !new.is_empty() {
                new.push(e);
                continue;
            }
            match self.term_at(i) {
                Some(t) if t == e.term => {}
                Some(_) => {
                    assert!(
                        i > self.commit,
                        "node {}: a committed entry {i} conflicts",
                        self.id
                    );
                    let pos = (i - self.snap.last_index - 1) as usize;
                    self.store.truncate(pos).await?;
                    self.log.truncate(pos);
                    new.push(e);
                }
                None => new.push(e),
            }
        }
        if !new.is_empty() {
            self.append_local(new).await?;
        }
        Ok(Some(matched_end))
    }

    async fn install(&mut self, snap: Snapshot) -> io::Result<()> {
        let state = decode_state(&snap.data)?;
        let keep = match self.term_at(snap.last_index) {
            Some(t) if t == snap.last_term && snap.last_index > self.snap.last_index => self
                .log
                .split_off((snap.last_index - self.snap.last_index) as usize),
            _ => Vec::new(),
        };
        self.store.save_snapshot(&snap, &keep).await?;
        self.log = keep;
        self.state = state;
        self.commit = self.commit.max(snap.last_index);
        self.applied = snap.last_index;
        self.snap = snap;
        self.status.borrow_mut().snapshots_installed += 1;
        self.apply().await
    }

    async fn on_response(&mut self, peer: u8, sent_in: u64, resp: Response) -> io::Result<()> {
        let term = match resp {
            Response::Vote { term, .. }
            | Response::Append { term, .. }
            | Response::Snapshot { term, .. } => term,
        };
        if term > self.term {
            self.leader = None;
            return self.step_down(term).await;
        }
        if sent_in != self.term {
            return Ok(());
        }
        let p = peer as usize;
        match resp {
            Response::Vote { granted: true, .. } if self.role == Role::Candidate => {
                self.votes += 1;
                if self.votes > self.n as usize / 2 {
                    self.become_leader().await?;
                }
            }
            Response::Append { success, index, .. } if self.role == Role::Leader => {
                if success {
                    self.matched[p] = self.matched[p].max(index);
                    self.next[p] = self.matched[p] + 1;
                    self.advance_commit().await?;
                } else {
                    self.next[p] = (index + 1).min(self.next[p].saturating_sub(1)).max(1);
                }
                if success && self.next[p] > self.last_index() {
                    return Ok(());
                }
                self.send_append(peer);
            }
            Response::Snapshot { last_index, .. } if self.role == Role::Leader => {
                self.matched[p] = self.matched[p].max(last_index);
                self.next[p] = self.matched[p] + 1;
                self.send_append(peer);
            }
            _ => {}
        }
        Ok(())
    }

    async fn become_leader(&mut self) -> io::Result<()> {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.history.borrow_mut().push((self.term, self.id));
        let last = self.last_index();
        self.next = vec![last + 1; self.n as usize];
        self.matched = vec![0; self.n as usize];
        self.inflight = vec![false; self.n as usize];
        self.append_local(vec![Entry {
            term: self.term,
            cmd: Command::Noop,
        }])
        .await?;
        self.deadline = time::now() + self.cfg.heartbeat;
        for p in 0..self.n {
            self.send_append(p);
        }
        Ok(())
    }

    fn send_append(&mut self, p: u8) {
        let pi = p as usize;
        if p == self.id || self.inflight[pi] || self.role != Role::Leader {
            return;
        }
        self.inflight[pi] = true;
        let next = self.next[pi];
        if next <= self.snap.last_index {
            let s = &self.snap;
            let req = Request::Snapshot {
                term: self.term,
                leader: self.id,
                last_index: s.last_index,
                last_term: s.last_term,
                data: s.data.clone(),
            };
            return self.send(p, req);
        }
        let from = (next - self.snap.last_index - 1) as usize;
        let to = (from + self.cfg.max_batch).min(self.log.len());
        let entries = self.log[from..to].to_vec();
        let mut st = self.status.borrow_mut();
        st.appends_sent += 1;
        st.entries_sent += entries.len() as u64;
        drop(st);
        let req = Request::Append {
            term: self.term,
            leader: self.id,
            prev_index: next - 1,
            prev_term: self
                .term_at(next - 1)
                .expect("prev is in the log or the snapshot"),
            entries,
            commit: self.commit,
        };
        self.send(p, req);
    }

    async fn advance_commit(&mut self) -> io::Result<()> {
        let mut m: Vec<u64> = (0..self.n as usize)
            .map(|p| {
                if p == self.id as usize {
                    self.last_index()
                } else {
                    self.matched[p]
                }
            })
            .collect();
        m.sort_unstable();
        let majority = m[(self.n as usize - 1) / 2];
        if majority > self.commit && self.term_at(majority) == Some(self.term) {
            self.commit = majority;
            self.apply().await?;
        }
        Ok(())
    }

    async fn apply(&mut self) -> io::Result<()> {
        while self.applied < self.commit {
            self.applied += 1;
            let i = self.applied;
            let entry = &self.log[(i - self.snap.last_index - 1) as usize];
            let out = match &entry.cmd {
                Command::Noop => Outcome::Done,
                Command::Put(k, v) => {
                    self.state.insert(k.clone(), v.clone());
                    Outcome::Done
                }
                Command::Get(k) => Outcome::Value(self.state.get(k).cloned()),
            };
            if let Some((term, tx)) = self.pending.remove(&i) {
                let _ = tx.send(if term == entry.term {
                    out
                } else {
                    Outcome::Redirect(self.leader)
                });
            }
        }
        let every = self.cfg.snapshot_every;
        if every > 0 && self.applied - self.snap.last_index >= every {
            self.take_snapshot().await?;
        }
        Ok(())
    }

    async fn take_snapshot(&mut self) -> io::Result<()> {
        let at = self.applied;
        let snap = Snapshot {
            last_index: at,
            last_term: self.term_at(at).unwrap(),
            data: encode_state(&self.state),
        };
        let keep = self.log.split_off((at - self.snap.last_index) as usize);
        self.store.save_snapshot(&snap, &keep).await?;
        self.log = keep;
        self.snap = snap;
        self.status.borrow_mut().snapshots_taken += 1;
        Ok(())
    }
}
