//! The tests' cluster: n nodes on one runtime, each with its directory in one temp dir,
//! crashed (dropped) and restarted from their files, with helpers that wait on the paused
//! clock for a leader or for every node to hold the same state.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use crate::client::Client;
use crate::node::Node;
use crate::raft::{Config, History, Role, Status};
use crate::support::TempDir;
use crate::transport::Net;

pub struct Cluster {
    pub n: u8,
    pub dir: TempDir,
    pub net: Rc<Net>,
    pub cfg: Config,
    pub seed: u64,
    pub history: History,
    nodes: Vec<Option<Node>>,
}

impl Cluster {
    pub async fn start(name: &str, n: u8, seed: u64, cfg: Config) -> Cluster {
        let mut c = Cluster {
            n,
            dir: TempDir::new(name),
            net: Rc::new(Net::new(seed)),
            cfg,
            seed,
            history: Rc::new(RefCell::new(Vec::new())),
            nodes: (0..n).map(|_| None).collect(),
        };
        for id in 0..n {
            c.restart(id).await;
        }
        c
    }

    pub fn node_dir(&self, id: u8) -> PathBuf {
        self.dir.join(&format!("node{id}"))
    }

    /// Drops the node: its tasks and sockets go at once, its files stay.
    pub fn crash(&mut self, id: u8) {
        self.nodes[id as usize] = None;
    }

    pub async fn restart(&mut self, id: u8) {
        assert!(self.nodes[id as usize].is_none(), "node {id} is running");
        // A crashed node's file jobs already on the pool still land (as they would with
        // tokio): the paused clock moves only once they have, so a tick of it keeps them
        // from landing in the files the new instance has opened.
        overlap::time::sleep(Duration::from_millis(1)).await;
        let node = Node::start(
            id,
            self.n,
            &self.node_dir(id),
            self.net.clone(),
            self.cfg.clone(),
            self.seed,
            self.history.clone(),
        )
        .await
        .unwrap();
        self.nodes[id as usize] = Some(node);
    }

    pub fn is_up(&self, id: u8) -> bool {
        self.nodes[id as usize].is_some()
    }

    pub fn status(&self, id: u8) -> Status {
        self.nodes[id as usize]
            .as_ref()
            .expect("node is up")
            .status
            .borrow()
            .clone()
    }

    pub fn up(&self) -> Vec<u8> {
        (0..self.n).filter(|&i| self.is_up(i)).collect()
    }

    pub fn client(&self) -> Client {
        Client::new(self.net.clone(), self.n)
    }

    /// The leader of the highest term among `among`, once one of them leads.
    pub async fn wait_leader(&self, among: &[u8]) -> u8 {
        loop {
            let best = among
                .iter()
                .map(|&i| (i, self.status(i)))
                .filter(|(_, s)| s.role == Some(Role::Leader))
                .max_by_key(|(_, s)| s.term);
            if let Some((id, s)) = best {
                // Led by it: a majority of `among` knows it in its term.
                let know = among
                    .iter()
                    .filter(|&&i| {
                        let t = self.status(i);
                        t.term == s.term && t.leader == Some(id)
                    })
                    .count();
                if know > self.n as usize / 2 {
                    return id;
                }
            }
            overlap::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every node in `among` applied the same index and holds the same state;
    /// gives the state.
    pub async fn wait_converged(&self, among: &[u8]) -> BTreeMap<String, String> {
        loop {
            let s: Vec<Status> = among.iter().map(|&i| self.status(i)).collect();
            let same = s.windows(2).all(|w| {
                w[0].applied == w[1].applied
                    && w[0].state == w[1].state
                    && w[0].commit == w[1].commit
            });
            if same
                && s[0].applied == s[0].last_index
                && s.iter().all(|x| x.last_index == s[0].last_index)
            {
                return s[0].state.clone();
            }
            overlap::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops every node, waiting until each one's tasks are gone.
    pub async fn shutdown(mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(node) = node.take() {
                node.shutdown().await;
            }
        }
    }
}

/// Terms with more than one leader (must be none).
pub fn double_leaders(history: &History) -> Vec<(u64, u8)> {
    let h = history.borrow();
    h.iter()
        .filter(|(t, id)| h.iter().any(|(t2, id2)| t2 == t && id2 != id))
        .copied()
        .collect()
}
