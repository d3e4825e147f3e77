//! The tests of what outlives a connection: last wills, persistent sessions (their
//! subscriptions, the QoS 1 messages queued while away and those in flight, redelivered
//! with DUP), the bound on what a session holds, a second CONNECT taking a session
//! over, and the retained messages and persistent sessions kept in a file across a
//! restart.

use std::io::ErrorKind;

use super::broker::Config;
use super::client::{encode, hello, with_will, Client};
use super::packet::Packet;
use super::server::Broker;
use super::support::{until, within, TempDir};
use super::{start, HANG};

#[overlap::test]
async fn a_will_goes_out_on_an_abrupt_close_but_not_on_disconnect() {
    within(
        HANG,
        async {
            let broker = start(|_| {}).await;
            let mut watcher = Client::connect(broker.addr, hello("watcher", true)).await;
            watcher.subscribe(&[("status/#", 1)]).await;
            // Vanishes: the socket dropped with no DISCONNECT.
            let vanishing =
                Client::connect(broker.addr, with_will("dev1", "status/dev1", "lost", true)).await;
            drop(vanishing);
            let will = watcher.recv_acked().await;
            assert_eq!(
                (
                    will.topic.as_str(),
                    &will.payload[..],
                    will.qos,
                    will.retain
                ),
                ("status/dev1", &b"lost"[..], 1, false)
            );
            // Its retain flag kept the will for later subscribers.
            let retained = broker.shared.retained.borrow().get("status/dev1").cloned();
            assert_eq!(retained.unwrap().payload, &b"lost"[..]);
            // A polite client's will is discarded.
            let polite =
                Client::connect(broker.addr, with_will("dev2", "status/dev2", "lost", false)).await;
            polite.disconnect().await;
            let mut marker = Client::connect(broker.addr, hello("marker", true)).await;
            marker
                .publish("status/marker", "after dev2", 1, false)
                .await;
            assert_eq!(watcher.recv_text().await.1, "after dev2");
            assert_eq!(broker.stats().wills.get(), 1);
            // A half-written packet then the end: abrupt too.
            let mut cut =
                Client::connect(broker.addr, with_will("dev3", "status/dev3", "cut", false)).await;
            let publish = super::client::encode(Packet::Publish(super::packet::Publish::new(
                "status/x",
                "never whole",
                0,
            )));
            use overlap::io::AsyncWriteExt;
            cut.framed.get_mut().write_all(&publish[..6]).await.unwrap();
            cut.framed.get_mut().close().await.unwrap();
            assert_eq!(
                watcher.recv_text().await,
                ("status/dev3".into(), "cut".into())
            );
            assert_eq!(broker.stats().protocol_errors.get(), 1);
            assert_eq!(
                *broker.stats().last_error.borrow(),
                "connection ended inside a packet"
            );
            watcher.disconnect().await;
            marker.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "wills",
    )
    .await;
}

#[overlap::test]
async fn a_persistent_session_keeps_subscriptions_and_queues_qos1() {
    within(
        HANG,
        async {
            let broker = start(|_| {}).await;
            let mut sub = Client::connect(broker.addr, hello("keeper", false)).await;
            assert!(!sub.session_present);
            sub.subscribe(&[("jobs/+", 1), ("news", 0)]).await;
            sub.disconnect().await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            for i in 0..3 {
                publisher
                    .publish(&format!("jobs/{i}"), format!("job {i}"), 1, false)
                    .await;
            }
            // QoS 0 (by publish or by grant) is not kept for an absent client.
            publisher.publish("jobs/x", "qos0", 0, false).await;
            publisher.publish("news", "stale", 1, false).await;
            let queued = broker.shared.sessions.borrow()["keeper"].queued.len();
            assert_eq!(queued, 3);
            let mut sub = Client::connect(broker.addr, hello("keeper", false)).await;
            assert!(sub.session_present);
            for i in 0..3 {
                let p = sub.recv_acked().await;
                // Sent for the first time: no DUP.
                assert_eq!(
                    (p.topic, p.payload.to_vec(), p.qos, p.dup),
                    (
                        format!("jobs/{i}"),
                        format!("job {i}").into_bytes(),
                        1,
                        false
                    )
                );
            }
            // The subscriptions are still there.
            publisher.publish("news", "fresh", 0, false).await;
            assert_eq!(sub.recv_text().await, ("news".into(), "fresh".into()));
            sub.ping().await;
            until(
                || {
                    broker.shared.sessions.borrow()["keeper"]
                        .inflight
                        .is_empty()
                },
                "the acks",
            )
            .await;
            sub.disconnect().await;
            // A clean session starts afresh: nothing present, nothing subscribed.
            let mut clean = Client::connect(broker.addr, hello("keeper", true)).await;
            assert!(!clean.session_present);
            assert!(broker.shared.sessions.borrow()["keeper"].subs.is_empty());
            publisher.publish("jobs/9", "unseen", 1, false).await;
            clean.subscribe(&[("mark", 0)]).await;
            publisher.publish("mark", "m", 0, false).await;
            assert_eq!(clean.recv_text().await.0, "mark");
            clean.disconnect().await;
            // And leaves nothing behind when it goes.
            assert!(!broker.shared.sessions.borrow().contains_key("keeper"));
            publisher.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "persistent session",
    )
    .await;
}

#[overlap::test]
async fn unacknowledged_qos1_comes_again_with_dup() {
    within(
        HANG,
        async {
            let broker = start(|_| {}).await;
            let mut sub = Client::connect(broker.addr, hello("forgetful", false)).await;
            sub.subscribe(&[("orders", 1)]).await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            publisher.publish("orders", "first", 1, false).await;
            publisher.publish("orders", "second", 1, false).await;
            let first = sub.recv().await;
            let second = sub.recv().await;
            assert_eq!((first.pid, first.dup), (Some(1), false));
            // Acks the second only, then vanishes.
            sub.send(Packet::PubAck(second.pid.unwrap())).await;
            sub.ping().await;
            drop(sub);
            until(|| broker.shared.online() == 1, "the subscriber gone").await;
            publisher.publish("orders", "third", 1, false).await;
            let mut sub = Client::connect(broker.addr, hello("forgetful", false)).await;
            assert!(sub.session_present);
            // The one in flight again, same id, DUP; then the one queued, new.
            let again = sub.recv_acked().await;
            assert_eq!(
                (&again.payload[..], again.pid, again.dup),
                (&b"first"[..], Some(1), true)
            );
            let third = sub.recv_acked().await;
            assert_eq!((&third.payload[..], third.dup), (&b"third"[..], false));
            assert_ne!(third.pid, Some(1));
            sub.ping().await;
            drop(sub);
            until(|| broker.shared.online() == 1, "gone again").await;
            // All acked: nothing the next time.
            let mut sub = Client::connect(broker.addr, hello("forgetful", false)).await;
            publisher.publish("orders", "fourth", 1, false).await;
            assert_eq!(sub.recv_text().await.1, "fourth");
            sub.disconnect().await;
            publisher.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "redelivery",
    )
    .await;
}

#[overlap::test]
async fn an_offline_session_holds_a_bounded_queue() {
    within(
        HANG,
        async {
            let broker = start(|c| c.session_queue = 5).await;
            let mut sub = Client::connect(broker.addr, hello("away", false)).await;
            sub.subscribe(&[("feed", 1)]).await;
            sub.disconnect().await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            for i in 0..8 {
                publisher.publish("feed", format!("m{i}"), 1, false).await;
            }
            assert_eq!(broker.stats().queue_dropped.get(), 3);
            let mut sub = Client::connect(broker.addr, hello("away", false)).await;
            // The oldest five, in order; the newest three were refused.
            for i in 0..5 {
                assert_eq!(sub.recv_text().await.1, format!("m{i}"));
            }
            publisher.publish("feed", "live", 1, false).await;
            assert_eq!(sub.recv_text().await.1, "live");
            // Online, a client that never acks fills the same bound.
            for i in 0..7 {
                publisher.publish("feed", format!("n{i}"), 1, false).await;
            }
            for i in 0..5 {
                assert_eq!(sub.recv().await.payload, format!("n{i}").into_bytes());
            }
            assert_eq!(broker.stats().queue_dropped.get(), 5);
            assert_eq!(broker.shared.sessions.borrow()["away"].inflight.len(), 5);
            sub.disconnect().await;
            publisher.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "bounded queue",
    )
    .await;
}

#[overlap::test]
async fn a_second_connect_with_the_same_id_takes_the_session_over() {
    within(
        HANG,
        async {
            let broker = start(|_| {}).await;
            let mut watcher = Client::connect(broker.addr, hello("watcher", true)).await;
            watcher.subscribe(&[("status/#", 0)]).await;
            let mut first = with_will("phone", "status/phone", "old gone", false);
            first.clean_session = false;
            let mut old = Client::connect(broker.addr, first).await;
            old.subscribe(&[("inbox", 1)]).await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            publisher.publish("inbox", "to old", 1, false).await;
            assert_eq!(old.recv_text().await.1, "to old");
            // The same id again, from another connection: the old one is closed, its
            // will published (it never sent DISCONNECT), and the session carries on.
            let mut new = Client::connect(broker.addr, hello("phone", false)).await;
            assert!(new.session_present);
            assert!(old.closed_by_broker().await.is_empty());
            assert_eq!(
                watcher.recv_text().await,
                ("status/phone".into(), "old gone".into())
            );
            assert_eq!(broker.stats().takeovers.get(), 1);
            // The old connection's end did not detach the new one.
            until(
                || broker.tasks.len() == 1 + 2 * 3,
                "the old connection's tasks",
            )
            .await;
            publisher.publish("inbox", "to new", 1, false).await;
            assert_eq!(new.recv_text().await.1, "to new");
            assert_eq!(broker.shared.online(), 3);
            for c in [new, watcher, publisher] {
                c.disconnect().await;
            }
            assert!(broker.shutdown().await);
            assert!(broker.tasks.is_empty());
        },
        "takeover",
    )
    .await;
}

#[overlap::test]
async fn retained_messages_and_persistent_sessions_survive_a_restart() {
    within(
        HANG,
        async {
            let dir = TempDir::new("mqtt-broker");
            let path = dir.join("broker.db");
            let broker = start(|c| c.persist = Some(path.clone())).await;
            let mut keeper = Client::connect(broker.addr, hello("keeper", false)).await;
            keeper.subscribe(&[("jobs/#", 1), ("news", 0)]).await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            publisher.publish("home/door", "open", 1, true).await;
            publisher.publish("home/light", "on", 0, true).await;
            publisher.publish("jobs/1", "in flight", 1, false).await;
            assert_eq!(keeper.recv().await.pid, Some(1));
            drop(keeper);
            until(|| broker.shared.online() == 1, "the keeper gone").await;
            publisher.publish("jobs/2", "queued a", 1, false).await;
            publisher.publish("jobs/3", "queued b", 1, true).await;
            let mut transient = Client::connect(broker.addr, hello("transient", true)).await;
            transient.subscribe(&[("jobs/#", 1)]).await;
            assert!(broker.shutdown().await);
            assert!(path.exists() && !path.with_extension("tmp").exists());
            drop((publisher, transient));
            // Another broker, on another port, from the file.
            let broker = start(|c| c.persist = Some(path.clone())).await;
            let topics: Vec<String> = broker.shared.retained.borrow().keys().cloned().collect();
            assert_eq!(topics, ["home/door", "home/light", "jobs/3"]);
            let ids: Vec<String> = broker.shared.sessions.borrow().keys().cloned().collect();
            assert_eq!(ids, ["keeper"], "the clean session not kept");
            let mut keeper = Client::connect(broker.addr, hello("keeper", false)).await;
            assert!(keeper.session_present);
            let got = [
                keeper.recv_acked().await,
                keeper.recv_acked().await,
                keeper.recv_acked().await,
            ];
            let got: Vec<_> = got
                .iter()
                .map(|p| (p.topic.as_str(), &p.payload[..], p.pid, p.dup))
                .collect();
            assert_eq!(
                got,
                [
                    ("jobs/1", &b"in flight"[..], Some(1), true),
                    ("jobs/2", b"queued a", Some(2), false),
                    ("jobs/3", b"queued b", Some(3), false),
                ]
            );
            // The subscriptions came back too, and the retained messages greet newcomers.
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            publisher
                .publish("news", "after the restart", 0, false)
                .await;
            assert_eq!(keeper.recv_text().await.1, "after the restart");
            let mut late = Client::connect(broker.addr, hello("late", true)).await;
            late.subscribe(&[("home/+", 1)]).await;
            assert_eq!(late.recv_text().await, ("home/door".into(), "open".into()));
            assert_eq!(late.recv_text().await, ("home/light".into(), "on".into()));
            for c in [keeper, late, publisher] {
                c.disconnect().await;
            }
            assert!(broker.shutdown().await);
            // A file cut short, or of something else, is refused whole.
            let bytes = overlap::fs::read(&path).await.unwrap();
            overlap::fs::write(&path, &bytes[..bytes.len() - 3])
                .await
                .unwrap();
            let config = |path: &std::path::Path| Config {
                persist: Some(path.to_path_buf()),
                ..Config::new("127.0.0.1:0")
            };
            let err = Broker::start(config(&path)).await.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            assert_eq!(err.to_string(), "connection ended inside a packet");
            let suback = encode(Packet::SubAck {
                pid: 1,
                codes: vec![1],
            });
            overlap::fs::write(&path, suback).await.unwrap();
            let err = Broker::start(config(&path)).await.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            assert_eq!(
                err.to_string(),
                "SubAck { pid: 1, codes: [1] } out of place"
            );
        },
        "persistence",
    )
    .await;
}
