//! The tests' cluster: N nodes started in one runtime through a seed, waiting on the
//! paused clock for a condition on their views, the views compared, and the kill scenario
//! that three tests share.

use overlap::net::UdpSocket;
use std::net::SocketAddr;

use super::node::{Config, Node};
use super::proto::State;
use super::view::Event;

pub async fn start(host: &str, n: u32, seed: u64, cfg: &Config) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for id in 1..=n {
        let sock = UdpSocket::bind((host, 0)).await.unwrap();
        let seed_addr = nodes.first().map(|s| s.addr);
        nodes.push(Node::start(
            sock,
            id,
            seed_addr,
            seed.wrapping_mul(31) + id as u64,
            cfg.clone(),
        ));
    }
    nodes
}

pub fn live<'a>(nodes: &'a [Node], skip: &'a [u32]) -> impl Iterator<Item = &'a Node> {
    nodes.iter().filter(move |n| !skip.contains(&n.id))
}

/// Whether every node not in `skip` has the same view, with `want` in it.
pub fn agreed(nodes: &[Node], skip: &[u32], want: &[(u32, State, u32)]) -> bool {
    let mut views = live(nodes, skip).map(|n| n.view.borrow().snapshot());
    let first = views.next().unwrap();
    want.iter().all(|w| first.contains(w)) && views.all(|v| v == first)
}

/// Waits, a tick at a time on the paused clock, until `cond` holds; panics after `limit`
/// ticks. Gives the ticks waited.
pub async fn wait_ticks(
    cfg: &Config,
    limit: u64,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> u64 {
    for t in 0..limit {
        if cond() {
            return t;
        }
        overlap::time::sleep(cfg.tick).await;
    }
    panic!("{what}: not within {limit} ticks");
}

/// Everyone `Alive` at incarnation 0.
pub fn all_alive(n: u32) -> Vec<(u32, State, u32)> {
    (1..=n).map(|id| (id, State::Alive, 0)).collect()
}

pub async fn stop(nodes: Vec<Node>) {
    for n in nodes {
        n.task.abort();
        let _ = n.task.await;
    }
}

/// The socket is closed: its address can be bound again.
pub async fn port_is_free(addr: SocketAddr) -> bool {
    UdpSocket::bind(addr).await.is_ok()
}

/// Whether `n` ever suspected anyone, or heard a suspicion.
pub fn suspected_anyone(n: &Node) -> bool {
    let v = n.view.borrow();
    v.events
        .iter()
        .any(|e| matches!(e.1, Event::Suspected(_) | Event::HeardSuspect(_)))
}

/// The kill scenario: kills node `victim` once all agree, waits for all the others to
/// hold it dead, checks when each suspected and confirmed it; gives every node's timeline.
pub async fn kill_scenario(host: &str, n: u32, seed: u64, victim: u32) -> Vec<Vec<(u64, Event)>> {
    let cfg = Config::default();
    let mut nodes = start(host, n, seed, &cfg).await;
    wait_ticks(&cfg, 600, "join", || agreed(&nodes, &[], &all_alive(n))).await;
    let dead = nodes.remove(victim as usize - 1);
    let killed_at = nodes[0].view.borrow().now;
    dead.task.abort();
    assert!(dead.task.await.is_err());
    assert!(
        port_is_free(dead.addr).await,
        "the killed node's socket is closed"
    );
    let bound = 2 * n as u64 * cfg.period_ticks + cfg.suspicion_ticks + 4 * cfg.period_ticks;
    let want = [(victim, State::Dead, 0)];
    wait_ticks(&cfg, bound, "all hold it dead", || {
        agreed(&nodes, &[], &want)
    })
    .await;
    let mut first_suspicion = u64::MAX;
    let mut first_confirm = u64::MAX;
    for node in &nodes {
        let v = node.view.borrow();
        for e in &v.events {
            if e.1 == Event::Confirmed(victim) {
                first_confirm = first_confirm.min(e.0);
            }
        }
    }
    // A probe of its own failed (direct ping, then ping-req through k others) somewhere.
    assert!(nodes.iter().any(|n| n
        .view
        .borrow()
        .events
        .iter()
        .any(|e| e.1 == Event::Suspected(victim))));
    assert!(
        nodes
            .iter()
            .map(|n| n.view.borrow().stats.ping_reqs_sent)
            .sum::<u64>()
            >= 3
    );
    for node in &nodes {
        let v = node.view.borrow();
        let about = |e: &Event| matches!(e, Event::Suspected(i) | Event::HeardSuspect(i) | Event::Confirmed(i) | Event::HeardDead(i) if *i == victim);
        let evs: Vec<_> = v
            .events
            .iter()
            .filter(|e| about(&e.1) && e.0 > killed_at)
            .collect();
        let suspected = evs
            .iter()
            .find(|e| matches!(e.1, Event::Suspected(_) | Event::HeardSuspect(_)));
        if let Some(c) = evs.iter().find(|e| matches!(e.1, Event::Confirmed(_))) {
            // Its own suspicion timed out: exactly the suspicion timeout after it began.
            assert_eq!(c.0, suspected.unwrap().0 + cfg.suspicion_ticks);
        }
        if let Some(s) = suspected {
            first_suspicion = first_suspicion.min(s.0);
        }
        let dead_at = v
            .events
            .iter()
            .find(|e| matches!(e.1, Event::Confirmed(i) | Event::HeardDead(i) if i == victim));
        assert!(
            dead_at.unwrap().0 >= first_confirm,
            "nobody holds it dead before a confirmation"
        );
    }
    // Randomized round-robin: every live member is probed within 2n periods.
    assert!(first_suspicion - killed_at <= 2 * n as u64 * cfg.period_ticks + cfg.period_ticks);
    let timelines = nodes
        .iter()
        .map(|n| n.view.borrow().events.clone())
        .collect();
    stop(nodes).await;
    timelines
}
