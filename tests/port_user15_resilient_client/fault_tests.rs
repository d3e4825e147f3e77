//! The fault tests: a silent node and the circuit breaker, probes failing or cancelled, a
//! node closing mid-reply, requests in flight on a dying connection, and malformed or
//! unasked-for replies.

use std::time::Duration;

use overlap::time;

use super::client::{Config, Error};
use super::cluster_node::Mode;
use super::policy::State;
use super::rig::{cluster, key_in, RANGES};
use super::support::{settle, until, within};

const HANG: Duration = Duration::from_secs(3600);

#[overlap::test(start_paused = true)]
async fn a_silent_node_times_out_opens_the_breaker_then_a_probe_closes_it() {
    within(
        HANG,
        async {
            let cfg = Config {
                timeout: Duration::from_secs(1),
                retries: 2,
                breaker_threshold: 3,
                cool_down: Duration::from_secs(10),
                ..Config::default()
            };
            let c = cluster("127.0.0.1", cfg.clone()).await;
            let node = &c.nodes[0];
            let key = key_in(&RANGES[0], 0);
            c.client.set(&key, "answer").await.unwrap();
            node.set_mode(Mode::Silent);
            let t0 = time::now();
            let err = c.client.get(&key).await.unwrap_err();
            assert_eq!(err, Error::Timeout { node: node.addr });
            assert_eq!(
                time::now() - t0,
                Duration::from_secs(3),
                "three sendings, a second each"
            );
            assert_eq!(node.state.received_count("GET"), 3);
            assert_eq!(c.client.stats().retries, 2);
            let shared = c.client.node(node.addr);
            let opened_until = t0 + Duration::from_secs(13);
            assert_eq!(
                shared.breaker.borrow().state,
                State::Open {
                    until: opened_until
                }
            );
            // Each timeout dropped its connection: a late reply cannot answer another. (The
            // last one goes at the same instant as its caller's timeout; let it run.)
            settle().await;
            assert_eq!(shared.lost.borrow().len(), 3);
            // Open: refused at once, nothing sent.
            let err = c.client.get(&key).await.unwrap_err();
            assert_eq!(
                err,
                Error::CircuitOpen {
                    node: node.addr,
                    until: opened_until
                }
            );
            assert_eq!(time::now() - t0, Duration::from_secs(3));
            assert_eq!(node.state.received_count("GET"), 3);
            assert_eq!(c.client.stats().fast_failed, 1);
            // The node recovers; after the cool-down one probe goes, answered with its own
            // reply, and closes the breaker.
            node.set_mode(Mode::Normal);
            time::sleep_until(opened_until).await;
            assert_eq!(c.client.get(&key).await.unwrap().as_deref(), Some("answer"));
            assert_eq!(shared.breaker.borrow().state, State::Closed { failures: 0 });
            assert_eq!(node.state.received_count("GET"), 4);
            assert_eq!(shared.breaker.borrow().opened, 1);
            // Other nodes never noticed.
            let other = key_in(&RANGES[1], 0);
            c.client.set(&other, "fine").await.unwrap();
            c.finish().await;
        },
        "silent node",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_failed_probe_reopens_and_a_cancelled_probe_frees_the_slot() {
    within(
        HANG,
        async {
            let cfg = Config {
                timeout: Duration::from_secs(1),
                retries: 0,
                breaker_threshold: 1,
                cool_down: Duration::from_secs(5),
                ..Config::default()
            };
            let c = cluster("127.0.0.1", cfg.clone()).await;
            let node = &c.nodes[2];
            let shared = c.client.node(node.addr);
            let key = key_in(&RANGES[2], 0);
            node.set_mode(Mode::Silent);
            assert_eq!(
                c.client.get(&key).await,
                Err(Error::Timeout { node: node.addr })
            );
            assert_eq!(shared.breaker.borrow().opened, 1);
            time::sleep(cfg.cool_down).await;
            // The probe's caller gives up: the next request may probe.
            let cut = time::timeout(Duration::from_millis(100), c.client.get(&key)).await;
            assert!(cut.is_err());
            assert_eq!(
                shared.breaker.borrow().state,
                State::HalfOpen { probing: false }
            );
            // A probe out: a second request is refused meanwhile. The cancelled probe's
            // request is still on the connection, its reply owed: at its deadline the
            // connection goes, and the probe behind it with it, which opens the breaker again.
            let (probe, second) = overlap::join!(c.client.get(&key), c.client.get(&key));
            let lost = Error::ConnectionLost {
                node: node.addr,
                in_flight: 1,
                why: "a request timed out".into(),
            };
            assert_eq!(probe, Err(lost));
            assert!(
                matches!(second, Err(Error::CircuitOpen { .. })),
                "{second:?}"
            );
            assert_eq!(shared.breaker.borrow().opened, 2);
            assert!(matches!(shared.breaker.borrow().state, State::Open { .. }));
            assert_eq!(node.state.received_count("GET"), 3);
            c.finish().await;
        },
        "probes",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_node_closing_mid_reply_fails_incr_once_and_retries_get() {
    within(
        HANG,
        async {
            let cfg = Config {
                retries: 2,
                breaker_threshold: 100,
                ..Config::default()
            };
            let c = cluster("127.0.0.1", cfg.clone()).await;
            let node = &c.nodes[1];
            let key = key_in(&RANGES[1], 0);
            c.client.set(&key, "a-long-value").await.unwrap();
            node.set_mode(Mode::CutMidReply);
            // Not idempotent: sent once, applied once, failed, not retried.
            let n1 = key_in(&RANGES[1], 1);
            let err = c.client.incr(&n1).await.unwrap_err();
            let Error::ConnectionLost {
                node: at,
                in_flight,
                why,
            } = &err
            else {
                panic!("{err:?}");
            };
            assert_eq!((*at, *in_flight), (node.addr, 1));
            assert!(why.contains("bytes into a reply"), "{why}");
            assert_eq!(node.state.received_count(&format!("INCR {n1}")), 1);
            assert_eq!(node.state.store.borrow()[&n1], "1", "applied, once");
            // Idempotent: sent three times, never taken for a shorter value ("$a-lon").
            let err = c.client.get(&key).await.unwrap_err();
            assert!(
                matches!(err, Error::ConnectionLost { in_flight: 1, .. }),
                "{err:?}"
            );
            assert_eq!(node.state.received_count(&format!("GET {key}")), 3);
            node.set_mode(Mode::Normal);
            assert_eq!(
                c.client.get(&key).await.unwrap().as_deref(),
                Some("a-long-value")
            );
            c.finish().await;
        },
        "mid-reply",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn requests_in_flight_on_a_dying_connection_all_fail_and_none_twice() {
    within(
        HANG,
        async {
            let cfg = Config {
                breaker_threshold: 100,
                ..Config::default()
            };
            let c = cluster("127.0.0.1", cfg).await;
            let node = &c.nodes[0];
            c.client.set(&key_in(&RANGES[0], 9), "warm").await.unwrap();
            node.set_mode(Mode::AnswerThenDie { answer: 2, after: 5 });
            let keys: Vec<String> = (0..5).map(|i| key_in(&RANGES[0], i)).collect();
            let res = overlap::future::join_all(keys.iter().map(|k| c.client.incr(k))).await;
            assert_eq!(res[..2], [Ok(1), Ok(1)]);
            for r in &res[2..] {
                let e = r.clone().unwrap_err();
                assert!(
                    matches!(&e, Error::ConnectionLost { in_flight: 3, why, .. } if why == "end of stream"),
                    "{e:?}"
                );
                assert!(e.to_string().contains("with 3 requests in flight"), "{e}");
            }
            // The server applied all five; the client claims only the two it saw answered.
            assert_eq!(node.state.received_count("INCR"), 5);
            node.set_mode(Mode::Normal);
            for k in &keys {
                assert_eq!(c.client.incr(k).await, Ok(2), "{k}: each applied exactly once");
            }
            c.finish().await;
        },
        "in flight",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn malformed_overlong_and_unasked_replies_drop_the_connection() {
    within(
        HANG,
        async {
            let cfg = Config {
                breaker_threshold: 100,
                ..Config::default()
            };
            let c = cluster("127.0.0.1", cfg.clone()).await;
            let node = &c.nodes[1];
            let shared = c.client.node(node.addr);
            let key = key_in(&RANGES[1], 0);
            c.client.set(&key, "v").await.unwrap();
            let cases = [
                ("?huh".to_string(), "malformed reply \"?huh\""),
                ("-MOVED 99999 127.0.0.1:1".into(), "malformed reply"),
                ("x".repeat(cfg.max_line + 1), "max line length exceeded"),
            ];
            for (i, (line, why)) in cases.iter().enumerate() {
                node.set_mode(Mode::Garbage(line.clone()));
                let err = c.client.incr(&key).await.unwrap_err();
                assert!(
                    matches!(&err, Error::ConnectionLost { why: w, .. } if w.contains(why)),
                    "{err:?}"
                );
                assert_eq!(shared.lost.borrow().len(), i + 1);
            }
            // A well-formed reply of the wrong kind is the request's error, not the link's.
            node.set_mode(Mode::Garbage(":7".into()));
            let err = c.client.get(&key).await.unwrap_err();
            assert_eq!(err, Error::Server("GET answered Int(7)".into()));
            assert_eq!(shared.lost.borrow().len(), 3);
            // A node speaking first: a reply with no request drops the connection at once.
            let mut c = c;
            c.nodes[1].set_mode(Mode::SpeaksFirst);
            c.nodes[1].stop().await;
            c.nodes[1].restart().await;
            let unasked = |l: &String| l.starts_with("a reply with no request: \"+OK\"");
            until(
                || shared.lost.borrow().iter().any(unasked),
                "the connection dropped",
            )
            .await;
            c.nodes[1].set_mode(Mode::Normal);
            assert_eq!(c.client.get(&key).await.unwrap().as_deref(), Some("v"));
            c.finish().await;
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_full_queue_to_a_down_node_times_out_and_sends_nothing_stale() {
    within(
        HANG,
        async {
            let cfg = Config {
                timeout: Duration::from_secs(1),
                queue: 2,
                retries: 0,
                breaker_threshold: 100,
                ..Config::default()
            };
            let mut c = cluster("127.0.0.1", cfg.clone()).await;
            let keys: Vec<String> = (0..4).map(|i| key_in(&RANGES[0], i)).collect();
            c.client.set(&keys[0], "v").await.unwrap();
            let shared = c.client.node(c.nodes[0].addr);
            c.nodes[0].stop().await;
            c.nodes[0].state.received.borrow_mut().clear();
            let t0 = time::now();
            // Two fit the queue, two wait to get in: all four give up at their deadline.
            let res = overlap::future::join_all(keys.iter().map(|k| c.client.get(k))).await;
            assert!(res.iter().all(|r| *r
                == Err(Error::Timeout {
                    node: c.nodes[0].addr
                })));
            assert_eq!(time::now() - t0, cfg.timeout);
            c.nodes[0].restart().await;
            until(|| shared.fd.get().is_some(), "the reconnect").await;
            assert_eq!(c.client.get(&keys[0]).await.unwrap().as_deref(), Some("v"));
            // The queued ones, their callers gone, were dropped, not sent late.
            assert_eq!(
                *c.nodes[0].state.received.borrow(),
                [format!("GET {}", keys[0])]
            );
            c.finish().await;
        },
        "queue",
    )
    .await;
}
