//! The reconnect tests: the backoff schedule by value and as the attempts follow it, a
//! node restarting on its port, and a reconnect storm with every node restarting at once.

use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::TcpSocket;
use overlap::time;

use super::client::{node_seed, Config};
use super::policy::Backoff;
use super::rig::{cluster, key_in, RANGES};
use super::support::{until, within};

const HANG: Duration = Duration::from_secs(3600);

#[test]
fn the_backoff_schedule_by_value() {
    let b = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    let ms = |v: Vec<Duration>| v.iter().map(|d| d.as_millis() as u64).collect::<Vec<_>>();
    let s = ms(b.schedule(42, 8));
    println!("schedule(42) = {s:?}");
    assert_eq!(s, SCHEDULE_42);
    let steps = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
    for (d, step) in s.iter().zip(steps) {
        assert!(*d >= step / 2 && *d <= step, "{d} ms for a step of {step}");
    }
    assert_eq!(ms(b.schedule(42, 8)), s, "the same seed, the same schedule");
    assert_ne!(ms(b.schedule(43, 8)), s, "another seed, other jitter");
    // Far along, capped, never overflowing.
    let mut rng = 7;
    assert!(b.delay(u32::MAX, &mut rng) <= b.max);
}

/// `Backoff { base: 100 ms, max: 2 s }.schedule(42, 8)`, in milliseconds.
const SCHEDULE_42: [u64; 8] = [68, 179, 379, 654, 994, 1475, 1917, 1850];

#[overlap::test(start_paused = true)]
async fn reconnect_attempts_follow_the_seeded_backoff_exactly() {
    within(
        HANG,
        async {
            let cfg = Config {
                timeout: Duration::from_secs(5),
                ..Config::default()
            };
            let mut c = cluster("127.0.0.1", cfg.clone()).await;
            let key = key_in(&RANGES[0], 0);
            c.client.set(&key, "kept").await.unwrap();
            let node = c.client.node(c.nodes[0].addr);
            c.nodes[0].stop().await;
            let t0 = time::now();
            // Half a millisecond off the whole milliseconds the waits add up to.
            let down = Duration::from_micros(10_000_500);
            time::sleep(down).await;
            c.nodes[0].restart().await;
            // Queued until the next attempt, which connects.
            assert_eq!(c.client.get(&key).await.unwrap().as_deref(), Some("kept"));
            let attempts: Vec<_> = node.attempts.borrow()[1..].to_vec();
            let expected = expected_attempts(&cfg, c.nodes[0].addr, down);
            let got: Vec<_> = attempts.iter().map(|&(t, ok)| (t - t0, ok)).collect();
            assert_eq!(got, expected);
            assert!(got.len() > 5, "{got:?}");
            assert_eq!(node.lost.borrow().as_slice(), ["end of stream"]);
            c.finish().await;
        },
        "backoff",
    )
    .await;
}

/// The attempts a node's supervisor makes after losing a connection that served, the node
/// back after `down`: at once, then after each wait of the schedule; the first at or past
/// `down` connects.
fn expected_attempts(cfg: &Config, addr: SocketAddr, down: Duration) -> Vec<(Duration, bool)> {
    let waits = cfg.backoff.schedule(node_seed(cfg.seed, addr), 64);
    let mut at = Duration::ZERO;
    let mut out = Vec::new();
    for w in waits {
        assert_ne!(at, down, "an attempt at the very instant of the restart");
        out.push((at, at > down));
        if at > down {
            break;
        }
        at += w;
    }
    out
}

#[overlap::test(start_paused = true)]
async fn a_node_restarting_on_its_port_is_reconnected() {
    within(
        HANG,
        async {
            let mut c = cluster("127.0.0.1", Config::default()).await;
            let key = key_in(&RANGES[1], 0);
            c.client.set(&key, "before").await.unwrap();
            let addr = c.nodes[1].addr;
            c.nodes[1].stop().await;
            // The old connections linger (FIN_WAIT2, TIME_WAIT): without SO_REUSEADDR the
            // port cannot be bound again.
            let plain = TcpSocket::new_v4().unwrap();
            let err = plain.bind(addr).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
            drop(plain);
            c.nodes[1].restart().await;
            assert_eq!(c.nodes[1].addr, addr);
            assert_eq!(c.client.get(&key).await.unwrap().as_deref(), Some("before"));
            c.client.set(&key, "after").await.unwrap();
            assert_eq!(c.nodes[1].state.accepted.get(), 2);
            let node = c.client.node(addr);
            assert_eq!(node.lost.borrow().as_slice(), ["end of stream"]);
            assert_eq!(
                c.nodes[1]
                    .state
                    .store
                    .borrow()
                    .get(&key)
                    .map(String::as_str),
                Some("after")
            );
            c.finish().await;
        },
        "restart",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_reconnect_storm_is_bounded_by_the_backoff() {
    within(
        HANG,
        async {
            let cfg = Config {
                timeout: Duration::from_secs(20),
                ..Config::default()
            };
            let mut c = cluster("127.0.0.1", cfg.clone()).await;
            let keys: Vec<String> = (0..30).map(|i| key_in(&RANGES[i % 3], i / 3)).collect();
            for k in &keys {
                c.client.set(k, &format!("v-{k}")).await.unwrap();
            }
            let nodes: Vec<_> = c.nodes.iter().map(|n| c.client.node(n.addr)).collect();
            let before: Vec<usize> = nodes.iter().map(|n| n.attempts.borrow().len()).collect();
            for n in &mut c.nodes {
                n.stop().await;
                n.state.received.borrow_mut().clear();
            }
            // Every connection's end seen (and the first attempt made, at once) before
            // the requests come.
            let t0 = time::now();
            for n in &nodes {
                until(|| n.fd.get().is_none(), "the end of the connection").await;
            }
            let down = Duration::from_micros(5_000_500);
            let gets = overlap::future::join_all(keys.iter().map(|k| c.client.get(k)));
            let restart = async {
                time::sleep_until(t0 + down).await;
                for n in &mut c.nodes {
                    n.restart().await;
                }
            };
            let (got, ()) = overlap::join!(gets, restart);
            for (k, v) in keys.iter().zip(got) {
                assert_eq!(v.unwrap(), Some(format!("v-{k}")));
            }
            let mut total = 0;
            for ((n, shared), before) in c.nodes.iter().zip(&nodes).zip(before) {
                let got: Vec<_> = shared.attempts.borrow()[before..]
                    .iter()
                    .map(|&(t, ok)| (t - t0, ok))
                    .collect();
                assert_eq!(got, expected_attempts(&cfg, n.addr, down));
                total += got.len();
                assert_eq!(n.state.received_count("GET"), 10, "each GET sent once");
                assert_eq!(n.state.accepted.get(), 2);
            }
            assert!(total < 30, "{total} attempts for 30 requests");
            assert_eq!(
                c.client.stats().retries,
                0,
                "they waited; none was sent again"
            );
            c.finish().await;
        },
        "storm",
    )
    .await;
}
