//! The Raft core's settings, the events that drive it, what a client's command comes
//! to, and the status a node shows the tests.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::oneshot;

use crate::wire::{Command, Request, Response};

#[derive(Clone, Debug)]
pub struct Config {
    /// Election timeouts are drawn from `election..2 * election`.
    pub election: Duration,
    pub heartbeat: Duration,
    pub rpc_timeout: Duration,
    /// At most this many entries in one AppendEntries.
    pub max_batch: usize,
    /// A snapshot once this many entries were applied since the last one (0: never).
    pub snapshot_every: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            election: Duration::from_millis(150),
            heartbeat: Duration::from_millis(50),
            rpc_timeout: Duration::from_millis(100),
            max_batch: 16,
            snapshot_every: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What a client's command came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Value(Option<String>),
    /// Not the leader (or no longer): the leader it knows of.
    Redirect(Option<u8>),
}

pub enum Event {
    Rpc(Request, oneshot::Sender<Response>),
    /// A reply to the RPC sent in `term` to `peer` (`None`: lost or timed out).
    Reply {
        peer: u8,
        term: u64,
        resp: Option<Response>,
    },
    Client(Command, oneshot::Sender<Outcome>),
}

/// What a node shows the tests, updated after every event.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub role: Option<Role>,
    pub term: u64,
    pub leader: Option<u8>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub snap_index: u64,
    pub state: BTreeMap<String, String>,
    pub torn_bytes: u64,
    pub snapshots_installed: u64,
    pub snapshots_taken: u64,
    pub malformed_frames: u64,
    pub appends_sent: u64,
    pub entries_sent: u64,
}

/// Every (term, node) that became leader, across the cluster.
pub type History = Rc<RefCell<Vec<(u64, u8)>>>;
