//! A generated link graph over a few hosts, and the set of URLs reachable in it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::site::{Host, Resource};
use super::support::Rng;

/// The loopback addresses standing for different hosts.
pub const IPS: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/// Starts one host per address in `IPS`.
pub async fn hosts() -> Vec<Host> {
    let mut hosts = Vec::new();
    for ip in IPS {
        hosts.push(Host::start(ip).await);
    }
    hosts
}

/// `pages` pages `/p/{i}`, page `i` on host `i % hosts.len()`, each linking to `fanout`
/// pages picked by `seed` (some of them `/gone/{i}`, never routed: a 404). `kind` picks
/// each page's resource from its index and links. Returns every page's links by URL.
pub fn generate(
    hosts: &[Host],
    pages: usize,
    fanout: usize,
    seed: u64,
    kind: impl Fn(usize, Vec<String>) -> Resource,
) -> BTreeMap<String, Vec<String>> {
    let mut rng = Rng(seed);
    let url = |i: usize| hosts[i % hosts.len()].url(&format!("/p/{i}"));
    let mut graph = BTreeMap::new();
    for i in 0..pages {
        let links: Vec<String> = (0..fanout)
            .map(|_| match rng.below(20) {
                0 => hosts[rng.below(hosts.len())].url(&format!("/gone/{}", rng.below(5))),
                _ => url(rng.below(pages)),
            })
            .collect();
        hosts[i % hosts.len()].route(&format!("/p/{i}"), kind(i, links.clone()));
        graph.insert(url(i), links);
    }
    graph
}

/// Every URL reachable from `seed` (the 404s included: they are fetched too).
pub fn reachable(graph: &BTreeMap<String, Vec<String>>, seed: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([seed.to_string()]);
    let mut queue = VecDeque::from([seed.to_string()]);
    while let Some(u) = queue.pop_front() {
        for l in graph.get(&u).into_iter().flatten() {
            if seen.insert(l.clone()) {
                queue.push_back(l.clone());
            }
        }
    }
    seen
}
