//! The tests of what goes wrong: a client that goes silent past its keep-alive (on the
//! paused clock), one that never sends CONNECT or sends a refused one, malformed packets
//! and protocol violations, a subscriber that does not read, and the broker's shutdown
//! with every connection open.

use std::time::Duration;

use overlap::time::{self, Instant};

use super::client::{connect_bytes, encode, hello, raw, raw_exchange, with_will, Client};
use super::packet::{Connect, Packet, Publish};
use super::support::{open_fds, run_in_child, until, within};
use super::{start, HANG};

const CONNACK_OK: [u8; 4] = [0x20, 2, 0, 0];

#[overlap::test(start_paused = true)]
async fn keep_alive_drops_a_client_silent_for_one_and_a_half_times_it() {
    within(
        HANG,
        async {
            let broker = start(|_| {}).await;
            let mut watcher = Client::connect(broker.addr, hello("watcher", true)).await;
            watcher.subscribe(&[("status/+", 0)]).await;
            let mut connect = with_will("sensor", "status/sensor", "timed out", false);
            connect.keep_alive = 10;
            let mut sensor = Client::connect(broker.addr, connect).await;
            // A PINGREQ every 14 s (under 15) keeps it, for a minute and more.
            for _ in 0..5 {
                time::advance(Duration::from_secs(14)).await;
                sensor.ping().await;
            }
            assert_eq!(broker.stats().keepalive_timeouts.get(), 0);
            // Silent: the clock runs on to the broker's limit, and not a moment less.
            let last = Instant::now();
            assert!(sensor.closed_by_broker().await.is_empty());
            assert_eq!(last.elapsed(), Duration::from_secs(15));
            assert_eq!(broker.stats().keepalive_timeouts.get(), 1);
            assert_eq!(watcher.recv_text().await.1, "timed out");
            // Keep-alive 0 is none: an hour of silence is fine.
            time::advance(Duration::from_secs(3600)).await;
            watcher.ping().await;
            assert_eq!(broker.shared.online(), 1);
            watcher.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "keep-alive",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn connect_must_come_first_in_time_and_be_acceptable() {
    within(
        HANG,
        async {
            let broker = start(|_| {}).await;
            // Nothing at all: closed at the connect timeout.
            let mut mute = raw(broker.addr).await;
            let opened = Instant::now();
            assert_eq!(raw_exchange(&mut mute, b"").await, b"");
            assert_eq!(opened.elapsed(), Duration::from_secs(10));
            assert_eq!(broker.stats().connect_timeouts.get(), 1);
            // Another packet first: closed, nothing answered.
            let mut rude = raw(broker.addr).await;
            assert_eq!(raw_exchange(&mut rude, &encode(Packet::PingReq)).await, b"");
            assert_eq!(
                *broker.stats().last_error.borrow(),
                "malformed: first packet not CONNECT"
            );
            // Protocol level 3 (MQTT 3.1): CONNACK 1, then closed.
            let mut old = raw(broker.addr).await;
            let level3 = Connect {
                level: 3,
                ..Connect::new("old")
            };
            let answer = raw_exchange(&mut old, &connect_bytes(level3)).await;
            assert_eq!(answer, [0x20, 2, 0, 1]);
            // No client id with a persistent session: CONNACK 2, then closed.
            let mut anon = raw(broker.addr).await;
            let answer = raw_exchange(&mut anon, &connect_bytes(hello("", false))).await;
            assert_eq!(answer, [0x20, 2, 0, 2]);
            // A will to a topic filter: closed without a CONNACK.
            let mut wild = raw(broker.addr).await;
            let answer = raw_exchange(
                &mut wild,
                &connect_bytes(with_will("w", "status/#", "x", false)),
            )
            .await;
            assert_eq!(answer, b"");
            assert_eq!(broker.stats().protocol_errors.get(), 2);
            // No client id with a clean session: one is made up.
            let anon = Client::connect(broker.addr, hello("", true)).await;
            let ids: Vec<String> = broker.shared.sessions.borrow().keys().cloned().collect();
            assert_eq!(ids.len(), 1);
            assert!(ids[0].starts_with("auto-"), "{ids:?}");
            assert_eq!(broker.stats().connections.get(), 6);
            anon.disconnect().await;
            assert!(broker.shutdown().await);
            assert!(broker.tasks.is_empty());
        },
        "CONNECT",
    )
    .await;
}

#[overlap::test]
async fn malformed_packets_close_only_their_connection() {
    within(
        HANG,
        async {
            let broker = start(|c| c.max_packet = 1024).await;
            let mut watcher = Client::connect(broker.addr, hello("watcher", true)).await;
            watcher.subscribe(&[("status/#", 0), ("ok", 0)]).await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            let publish = |topic: &str, qos: u8| {
                let mut p = Publish::new(topic, "x", qos);
                p.pid = (qos > 0).then_some(1);
                encode(Packet::Publish(p))
            };
            let suback = encode(Packet::SubAck {
                pid: 1,
                codes: vec![0],
            });
            let cases: Vec<(Vec<u8>, String)> = vec![
                (
                    vec![0x30, 0xff, 0xff, 0xff, 0xff],
                    "remaining length over four bytes".into(),
                ),
                // Only the header: refused before the 16 KiB it announces.
                (
                    vec![0x30, 0x80, 0x80, 0x01],
                    "packet of 16384 bytes over 1024".into(),
                ),
                (vec![0xc1, 0], "malformed: reserved flags".into()),
                (
                    connect_bytes(hello("again", true)),
                    "a second CONNECT".into(),
                ),
                (publish("a/+", 0), "PUBLISH to a topic filter".into()),
                (publish("a", 2), "QoS 2 not supported".into()),
                (
                    vec![0x62, 2, 0, 1],
                    "malformed: QoS 2 flow not supported".into(),
                ),
                (suback, "SubAck { pid: 1, codes: [0] } from a client".into()),
            ];
            for (n, (bytes, error)) in cases.iter().enumerate() {
                let id = format!("bad{n}");
                let mut bad = raw(broker.addr).await;
                let mut out = connect_bytes(with_will(&id, &format!("status/{id}"), "bye", false));
                out.extend_from_slice(bytes);
                // The CONNACK, then the end: nothing else answered.
                assert_eq!(raw_exchange(&mut bad, &out).await, CONNACK_OK, "case {n}");
                assert_eq!(broker.stats().protocol_errors.get(), n as u64 + 1);
                assert_eq!(*broker.stats().last_error.borrow(), *error, "case {n}");
                // A violation is an abrupt end: its will goes out.
                assert_eq!(
                    watcher.recv_text().await,
                    (format!("status/{id}"), "bye".into())
                );
            }
            // Bytes of another protocol entirely, first.
            let mut http = raw(broker.addr).await;
            assert_eq!(
                raw_exchange(&mut http, b"GET / HTTP/1.1\r\n\r\n").await,
                b""
            );
            assert_eq!(broker.stats().protocol_errors.get(), 9);
            let last = broker.stats().last_error.borrow().clone();
            assert_eq!(last, "malformed: first packet not CONNECT");
            // The others never noticed.
            publisher.publish("ok", "still here", 1, false).await;
            assert_eq!(
                watcher.recv_text().await,
                ("ok".into(), "still here".into())
            );
            until(
                || broker.tasks.len() == 1 + 2 * 2,
                "the bad connections' tasks",
            )
            .await;
            watcher.disconnect().await;
            publisher.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "malformed",
    )
    .await;
}

#[overlap::test]
async fn a_slow_subscriber_is_disconnected_without_holding_up_others() {
    within(
        HANG,
        async {
            let broker = start(|c| {
                c.outbound_queue = 4;
                c.send_buffer = Some(4096);
            })
            .await;
            let mut slow = Client::connect_small(broker.addr, hello("slow", true), 4096).await;
            slow.subscribe(&[("bulk", 0)]).await;
            let mut fast = Client::connect(broker.addr, hello("fast", true)).await;
            fast.subscribe(&[("bulk", 0)]).await;
            let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
            let payload = |i: usize| {
                let mut p = format!("{i:08}").into_bytes();
                p.resize(8192, b'.');
                p
            };
            // The slow one never reads: its socket fills, then its queue, then it is
            // dropped; the fast one gets every message as it is published.
            let mut sent = 0;
            while broker.stats().slow_disconnects.get() == 0 {
                assert!(sent < 5000, "the slow reader was never dropped");
                publisher.publish("bulk", payload(sent), 1, false).await;
                assert_eq!(fast.recv().await.payload, payload(sent));
                sent += 1;
            }
            for _ in 0..20 {
                publisher.publish("bulk", payload(sent), 1, false).await;
                assert_eq!(fast.recv().await.payload, payload(sent));
                sent += 1;
            }
            // The slow one got a prefix, in order, then the end.
            let got = slow.closed_by_broker().await;
            assert!(
                !got.is_empty() && got.len() < sent - 20,
                "{} of {sent}",
                got.len()
            );
            for (i, p) in got.iter().enumerate() {
                assert_eq!(p.payload, payload(i));
            }
            assert_eq!(broker.stats().slow_disconnects.get(), 1);
            until(|| broker.shared.online() == 2, "the slow session gone").await;
            assert!(!broker.shared.sessions.borrow().contains_key("slow"));
            fast.disconnect().await;
            publisher.disconnect().await;
            assert!(broker.shutdown().await);
        },
        "slow subscriber",
    )
    .await;
}

/// In a child process of its own, so that its count of open fds sees only its own.
#[test]
fn shutdown_closes_every_connection_and_leaves_no_fd_or_task() {
    run_in_child(
        "faults::shutdown_closes_every_connection_and_leaves_no_fd_or_task",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let broker = start(|_| {}).await;
                let mut watcher = Client::connect(broker.addr, hello("watcher", true)).await;
                watcher.subscribe(&[("status/#", 1)]).await;
                let mut keeper = Client::connect(
                    broker.addr,
                    Connect {
                        clean_session: false,
                        ..with_will("keeper", "status/keeper", "gone", false)
                    },
                )
                .await;
                keeper.subscribe(&[("jobs", 1)]).await;
                let mut publisher = Client::connect(broker.addr, hello("pub", true)).await;
                publisher.publish("jobs", "unacked", 1, false).await;
                assert_eq!(keeper.recv().await.payload, &b"unacked"[..]);
                let mut mute = raw(broker.addr).await;
                let mut half = raw(broker.addr).await;
                use overlap::io::AsyncWriteExt;
                half.write_all(&encode(Packet::PingReq)[..1]).await.unwrap();
                until(|| broker.tasks.len() == 1 + 3 * 2 + 2, "every connection").await;
                assert!(broker.shutdown().await, "every task ended in time");
                assert!(broker.tasks.is_empty());
                // Every connection closed, no will published.
                assert!(watcher.closed_by_broker().await.is_empty());
                assert!(keeper.closed_by_broker().await.is_empty());
                assert!(publisher.closed_by_broker().await.is_empty());
                assert_eq!(raw_exchange(&mut mute, b"").await, b"");
                assert_eq!(raw_exchange(&mut half, b"").await, b"");
                assert_eq!(broker.stats().wills.get(), 0);
                // The persistent session stays, its message in flight, nobody online.
                assert_eq!(broker.shared.online(), 0);
                assert_eq!(broker.shared.sessions.borrow()["keeper"].inflight.len(), 1);
                // The listener is gone.
                let refused = overlap::net::TcpStream::connect(broker.addr).await;
                assert_eq!(
                    refused.unwrap_err().kind(),
                    std::io::ErrorKind::ConnectionRefused
                );
                drop((watcher, keeper, publisher, mute, half, broker));
                assert_eq!(open_fds(), fds);
            })
        },
    );
}
