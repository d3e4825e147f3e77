//! The tests' cluster: three nodes on loopback splitting the 16384 slots as Redis Cluster
//! does by default, each answering `SLOTS` with the map, and a client bootstrapped from
//! the first; and keys picked by the range their slot falls in.

use std::ops::RangeInclusive;

use super::client::{Client, Config};
use super::cluster_node::Node;
use super::proto::{slot_of, SlotMap};

pub const RANGES: [RangeInclusive<u16>; 3] = [0..=5460, 5461..=10922, 10923..=16383];

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub client: Client,
}

pub async fn cluster(host: &str, cfg: Config) -> Cluster {
    let mut nodes = Vec::new();
    for r in RANGES {
        nodes.push(Node::start(host, vec![r]).await);
    }
    let map: SlotMap = RANGES
        .iter()
        .cloned()
        .zip(nodes.iter().map(|n| n.addr))
        .collect();
    for n in &nodes {
        *n.state.slots_reply.borrow_mut() = map.clone();
    }
    let client = Client::connect(&[nodes[0].addr], cfg).await.unwrap();
    Cluster { nodes, client }
}

impl Cluster {
    /// The client shut down, then every node stopped.
    pub async fn finish(mut self) {
        self.client.shutdown().await;
        for n in &mut self.nodes {
            n.stop().await;
        }
    }
}

/// The `nth` key (`k0`, `k1`, …, in order) whose slot is in `range`.
pub fn key_in(range: &RangeInclusive<u16>, nth: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| range.contains(&slot_of(k)))
        .nth(nth)
        .unwrap()
}
