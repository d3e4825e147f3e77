//! The test's view of a cluster: nodes in one process, a proxy on every link (node `i`
//! reaches node `j` through `links[(i, j)]`), a client that finds the leader and retries.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::TcpListener;
use overlap::stream::{self, StreamExt};
use overlap::sync::oneshot;
use overlap::time;

use crate::node::{ClientReq, Node};
use crate::raft::{Config, Role, Status};
use crate::storage;
use crate::support::{until, TempDir};

pub struct Cluster {
    pub dir: TempDir,
    pub nodes: Vec<Option<Node>>,
    targets: Vec<Rc<Cell<SocketAddr>>>,
    links: HashMap<(u64, u64), crate::proxy::Proxy>,
    pub cfg: Config,
}

impl Cluster {
    pub async fn start(n: u64, name: &str) -> Cluster {
        let dir = TempDir::new(name);
        let mut listeners = Vec::new();
        let mut targets = Vec::new();
        for _ in 0..n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            targets.push(Rc::new(Cell::new(l.local_addr().unwrap())));
            listeners.push(l);
        }
        let mut links = HashMap::new();
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                let proxy = crate::proxy::Proxy::start(targets[j as usize].clone()).await;
                links.insert((i, j), proxy);
            }
        }
        let mut c = Cluster {
            dir,
            nodes: (0..n).map(|_| None).collect(),
            targets,
            links,
            cfg: Config::default(),
        };
        for (id, l) in listeners.into_iter().enumerate() {
            c.start_node_on(id as u64, l).await;
        }
        c
    }

    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.dir.join(&format!("node{id}"))
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes[id as usize].as_ref().expect("a live node")
    }

    async fn start_node_on(&mut self, id: u64, listener: TcpListener) {
        self.targets[id as usize].set(listener.local_addr().unwrap());
        let n = self.nodes.len() as u64;
        let peers = (0..n)
            .filter(|&j| j != id)
            .map(|j| (j, self.links[&(id, j)].addr))
            .collect();
        let dir = self.node_dir(id);
        let node = Node::start(id, &dir, listener, peers, self.cfg.clone())
            .await
            .unwrap();
        self.nodes[id as usize] = Some(node);
    }

    /// Starts node `id` again from its directory, on a new port.
    pub async fn restart(&mut self, id: u64) -> &Node {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.start_node_on(id, l).await;
        self.node(id)
    }

    /// Starts node `id` again from its directory, on the port it had.
    pub async fn restart_on_its_port(&mut self, id: u64) -> &Node {
        let l = TcpListener::bind(self.targets[id as usize].get())
            .await
            .unwrap();
        self.start_node_on(id, l).await;
        self.node(id)
    }

    /// Stops node `id`, waiting until its tasks are gone.
    pub async fn stop(&mut self, id: u64) {
        self.nodes[id as usize]
            .take()
            .expect("a live node")
            .stop()
            .await;
    }

    pub fn kill(&mut self, id: u64) {
        self.nodes[id as usize].take().expect("a live node").kill();
    }

    /// Cuts (or heals) every link to and from node `id`.
    pub fn partition(&self, id: u64, cut: bool) {
        for (&(i, j), proxy) in &self.links {
            if i == id || j == id {
                proxy.set_up(!cut);
            }
        }
    }

    pub fn live(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().flatten()
    }

    fn current_leader(&self) -> Option<(u64, Status)> {
        self.live()
            .map(|n| (n.id, n.status()))
            .filter(|(_, s)| s.role == Role::Leader)
            .max_by_key(|(_, s)| s.term)
    }

    /// Waits for a leader among the live nodes.
    pub async fn leader(&self) -> u64 {
        until(|| self.current_leader().is_some(), "a leader").await;
        self.current_leader().unwrap().0
    }

    /// Writes `data` through whoever leads, retrying (a leader lost, a refusal) until it
    /// is committed; gives its index.
    pub async fn write(&self, data: Vec<u8>) -> u64 {
        let attempt = async {
            loop {
                if let Some((id, _)) = self.current_leader() {
                    let (reply, rx) = oneshot::channel();
                    let req = ClientReq {
                        data: data.clone(),
                        reply,
                    };
                    if self.node(id).client.send(req).await.is_ok() {
                        if let Ok(Ok(Ok(index))) = time::timeout(Duration::from_secs(2), rx).await {
                            return index;
                        }
                    }
                }
                time::sleep(Duration::from_millis(5)).await;
            }
        };
        crate::support::within(Duration::from_secs(20), attempt, "a write committed").await
    }

    /// Writes `count` payloads `{tag}-{i}`, `width` at a time; gives their indexes.
    pub async fn write_many(&self, tag: &str, count: usize, width: usize) -> Vec<u64> {
        stream::iter(0..count)
            .map(|i| self.write(payload(tag, i)))
            .buffered(width)
            .collect()
            .await
    }

    /// Waits until every live node holds and has committed the same log as the leader,
    /// compacted as far as it goes (so no file is being removed), and gives the leader's
    /// status.
    pub async fn converged(&self) -> Status {
        let done = || {
            let (_, lead) = self.current_leader()?;
            let same = self.live().all(|n| {
                let s = n.status();
                (s.term, s.commit, s.last_index, s.base)
                    == (lead.term, lead.last_index, lead.last_index, lead.base)
            });
            // With every node up, compacted as far as it goes: no segment is being removed.
            // (With one down, compaction stops at what that one held.)
            let base = (lead.last_index - 1) / storage::SEGMENT * storage::SEGMENT;
            let all_up = self.live().count() == self.nodes.len();
            let settled = !all_up || lead.base == base;
            (same && lead.commit == lead.last_index && settled).then_some(lead)
        };
        let start = std::time::Instant::now();
        loop {
            if let Some(lead) = done() {
                return lead;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let all: Vec<_> = self.live().map(|n| (n.id, n.status())).collect();
                panic!("the nodes never caught up: {all:#?}");
            }
            time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The segment files of node `id`, by name, with their bytes.
    pub fn segments_on_disk(&self, id: u64) -> Vec<(String, Vec<u8>)> {
        let mut segs: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.node_dir(id))
            .unwrap()
            .map(|e| e.unwrap())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                storage::parse_segment_name(&name)?;
                Some((name, std::fs::read(e.path()).unwrap()))
            })
            .collect();
        segs.sort();
        segs
    }

    /// crc32 of each of node `id`'s segments, on the blocking pool.
    pub async fn checksums(&self, id: u64) -> Vec<u32> {
        let mut out = Vec::new();
        for (name, _) in self.segments_on_disk(id) {
            out.push(
                storage::checksum(self.node_dir(id).join(name))
                    .await
                    .unwrap(),
            );
        }
        out
    }

    /// Asserts every live node's segments are byte for byte the same.
    pub async fn assert_identical_on_disk(&self) {
        let ids: Vec<u64> = self.live().map(|n| n.id).collect();
        let first = self.segments_on_disk(ids[0]);
        assert!(!first.is_empty());
        let sums = self.checksums(ids[0]).await;
        for &id in &ids[1..] {
            let other = self.segments_on_disk(id);
            let names = |s: &[(String, Vec<u8>)]| s.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
            let all: Vec<_> = self.live().map(|n| (n.id, n.status())).collect();
            assert_eq!(
                names(&first),
                names(&other),
                "node {id}'s segments: {all:?}"
            );
            assert!(
                first == other,
                "node {id}'s segment bytes differ from node {}'s",
                ids[0]
            );
            assert_eq!(sums, self.checksums(id).await);
        }
    }

    /// The client payloads in node `id`'s segments on disk, in order (no-ops left out),
    /// read without touching the files (the node may be running).
    pub fn payloads(&self, id: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, bytes) in self.segments_on_disk(id) {
            let mut at = 0;
            while at + 8 <= bytes.len() {
                let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                let data = &bytes[at + 8 + 16..at + 8 + len];
                if !data.is_empty() {
                    out.push(data.to_vec());
                }
                at += 8 + len;
            }
        }
        out
    }
}

pub fn payload(tag: &str, i: usize) -> Vec<u8> {
    format!("{tag}-{i:04}-{}", "x".repeat(i % 17)).into_bytes()
}
