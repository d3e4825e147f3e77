//! A user's reliable transport over UDP (a tiny KCP- or QUIC-like ARQ), sketched as one
//! would for tokio with `tokio::net::UdpSocket` and tokio-util's `DelayQueue`, then written
//! for overlap by changing `tokio::` and `tokio_util::` to `overlap::`: the wire format
//! (`port_user14_udp_arq/proto.rs`), the connection's settings and the app's handle
//! (`conn.rs`), the driver task per endpoint (`driver.rs`), and the tests' lossy relay
//! (`relay.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::net::UdpSocket;
//! use tokio::sync::{mpsc, oneshot, Notify};
//! use tokio_util::time::{delay_queue::Key, DelayQueue};
//! use futures::StreamExt;
//!
//! // The driver: one task per endpoint, the socket connected to the peer.
//! let mut tick = tokio::time::interval(cfg.keepalive);
//! loop {
//!     let ev = tokio::select! {
//!         r = sock.recv(&mut buf) => Event::Datagram(r),
//!         Some(e) = timers.next() => Event::Timeout(e.into_inner()),  // seq of a packet
//!         c = cmds.recv() => Event::Cmd(c),          // Send(bytes, oneshot) / Close(oneshot)
//!         _ = shared.taken.notified() => Event::Taken, // the app read: window update
//!         _ = tick.tick() => Event::Tick,            // keepalive PING, idle timeout
//!     };
//!     ...
//! }
//! // A packet sent: its retransmission timer, the key kept with it.
//! let key: Key = timers.insert(seq, rto);
//! // ACKed (cumulatively or selectively): the timer goes.
//! timers.remove(&key);
//! // The third duplicate ACK: fast retransmit, the timer restarted.
//! timers.reset(&key, rto);
//! // The timer fired: retransmit with the packet's timeout doubled (RFC 6298 5.5), or give
//! // up after max_retries; RTT samples only from packets never retransmitted (Karn).
//! // The app's side:
//! conn.send(&bytes).await?;   // waits while the window is full
//! let n = conn.recv(&mut buf).await?;   // in order, once; 0 after the peer's FIN
//! conn.close().await?;        // FIN, answered
//! ```
//!
//! The tests check, every one over real UDP sockets on 127.0.0.1 (one on ::1) through a
//! relay task on its own socket, on the paused clock (which moves only when no socket has
//! anything to read, so a timer never fires ahead of a packet in flight, and what the
//! relay's seeded generator drops is the same for a seed): a mebibyte intact without loss and without
//! a single retransmission; intact under 10% loss both ways for five seeds, under
//! duplication (the duplicates seen and dropped), under reordering (packets seen ahead of
//! a gap), and all three at once; with only DATA's first sendings dropped, the
//! retransmissions exactly the drops and no packet received twice; a single drop repaired
//! by fast retransmit on the third duplicate ACK, with no timeout; the timeouts armed for
//! an unanswered packet read back from the `DelayQueue` doubling (1, 2, 4, 8, 16, 32 s),
//! then the connection failing with `ConnectionAborted` at the sixth timeout, a blocked
//! `send`, `recv` and `close` returning that error; the RTT estimate from a relay delaying
//! each way by 50 ms, and the timeouts armed after it shorter than the initial one; a
//! sender stopping at the receiver's window while the receiver does not read (exactly the
//! window's packets sent, none in flight, keepalives going on), then all of it once the
//! receiver reads; a FIN delivering everything, then EOF again and again, a send after
//! close refused, and no fd and no task left; malformed datagrams (short, empty, a bad
//! type, a bad body, another connection's, an ACK of what was never sent) counted and
//! ignored while a transfer goes on; the idle timeout when the peer goes silent.
//!
//! What porting it found missing in overlap: nothing. `UdpSocket::bind`, `connect`,
//! `send`, `recv` (cancel-safe in `select!`), `recv_from` and `send_to`; `DelayQueue` with
//! `insert`, `remove`, `reset`, `deadline` and the `Key` at tokio-util's path
//! (`overlap::time::delay_queue::Key`); `mpsc`, `oneshot`, `Notify`, `interval`, `sleep`,
//! `select!` and `pin_mut!`; `JoinHandle::abort`; `#[overlap::test(start_paused = true)]`
//! with real sockets: all have tokio's names and behaved as tokio's would.
//!
//! What the port changed, against tokio: the imports (`futures::StreamExt` is
//! `overlap::stream::StreamExt`); shared state is `Rc` with `Cell`/`RefCell` where
//! tokio's `spawn` needs `Arc` and a lock. tokio's `Some(e) = timers.next()` branch runs
//! unchanged: an empty queue's `None` disables the branch for that round, as it does with
//! tokio (overlap's docs suggest `e = timers.select_next_some()`, which sleeps instead;
//! either works here, since the loop builds the `select!` again after every event).
//!
//! The tests were run against the transport broken on purpose, one fault at a time, and
//! each fault made one of them fail: fast retransmit at the thirtieth duplicate ACK
//! instead of the third; no backoff; SACKs ignored (their timers left to fire); no receive
//! window; the connection id not checked; no window update on a read (the keepalive's
//! answer would reopen the window, so the test counts the updates); and no keepalive (the
//! idle timeout then ends a stalled connection). Sequence numbers do not wrap (a u32 of
//! packets is 4 TiB at this MSS).

mod support;

#[path = "port_user14_udp_arq/conn.rs"]
mod conn;
#[path = "port_user14_udp_arq/driver.rs"]
mod driver;
#[path = "port_user14_udp_arq/proto.rs"]
mod proto;
#[path = "port_user14_udp_arq/relay.rs"]
mod relay;

use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use conn::{Config, Conn, Stats};
use overlap::net::UdpSocket;
use overlap::time;
use proto::{Kind, Packet, HEADER};
use relay::{Relay, Rule};
use support::{open_fds, pattern_seeded, until, within};

/// A hang guard only, on the paused clock (so virtual time: long enough for any backoff).
const HANG: Duration = Duration::from_secs(24 * 3600);
const ID: u32 = 0x1400_0001;

struct Rig {
    a: Conn,
    b: Conn,
    b_addr: std::net::SocketAddr,
    relay: Relay,
}

async fn start_rig(host: &str, seed: u64, rule: Rule, cfg: Config) -> Rig {
    let sa = UdpSocket::bind((host, 0)).await.unwrap();
    let sb = UdpSocket::bind((host, 0)).await.unwrap();
    let sr = UdpSocket::bind((host, 0)).await.unwrap();
    let (a_addr, b_addr) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    let relay = Relay::start(sr, a_addr, b_addr, seed, rule);
    sa.connect(relay.addr).await.unwrap();
    sb.connect(relay.addr).await.unwrap();
    Rig {
        a: Conn::start(sa, ID, cfg.clone()),
        b: Conn::start(sb, ID, cfg),
        b_addr,
        relay,
    }
}

/// `a` sends `data` and closes; `b` reads to the end and closes; both drivers end. Gives
/// what `b` read and both endpoints' last stats.
async fn transfer(rig: Rig, data: &[u8]) -> (Vec<u8>, Stats, Stats, relay::RelayStats) {
    let Rig { a, b, relay, .. } = rig;
    let (sent, got) = overlap::join!(
        async {
            a.send(data).await?;
            a.close().await
        },
        async {
            let got = b.recv_to_end().await?;
            b.close().await?;
            Ok::<_, std::io::Error>(got)
        }
    );
    sent.unwrap();
    let got = got.unwrap();
    let (sa, sb) = overlap::join!(a.finished(), b.finished());
    let rs = relay.stats();
    relay.stop().await;
    (got, sa, sb, rs)
}

#[overlap::test(start_paused = true)]
async fn a_mebibyte_arrives_intact_without_loss() {
    within(
        HANG,
        async {
            let cfg = Config::default();
            let data = pattern_seeded(1 << 20, 14);
            let rig = start_rig(
                "127.0.0.1",
                1,
                relay::lossy(0, 0, Duration::ZERO),
                cfg.clone(),
            )
            .await;
            let (got, a, b, r) = transfer(rig, &data).await;
            assert!(got == data, "{} bytes of {}", got.len(), data.len());
            assert_eq!(a.first_sends, 1024 + 1, "every MSS once, and the FIN");
            assert_eq!((a.retransmits(), b.retransmits()), (0, 0));
            assert_eq!((b.dup_data, b.reordered, b.malformed), (0, 0, 0));
            assert!(a.max_in_flight > 1 && a.max_in_flight <= cfg.window);
            assert_eq!(r.dropped, 0);
        },
        "a mebibyte",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn intact_under_ten_percent_loss_for_several_seeds() {
    within(
        HANG,
        async {
            for seed in 1..=5 {
                let data = pattern_seeded(256 * 1024, seed as u32);
                let rule = relay::lossy(10, 0, Duration::ZERO);
                let rig = start_rig("127.0.0.1", seed, rule, Config::default()).await;
                let (got, a, b, r) = transfer(rig, &data).await;
                assert!(got == data, "seed {seed}: {} bytes", got.len());
                assert!(r.dropped > 10, "seed {seed}: {r:?}");
                assert!(a.retransmits() > 0, "seed {seed}: {a:?}");
                assert_eq!(b.malformed + a.malformed, 0);
            }
        },
        "loss",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn intact_under_duplication_reordering_and_all_at_once() {
    within(
        HANG,
        async {
            let jitter = Duration::from_millis(30);
            for seed in [11, 12, 13] {
                let data = pattern_seeded(128 * 1024, seed as u32);
                // Duplication: each duplicate received once, dropped, acknowledged.
                let rig = start_rig(
                    "127.0.0.1",
                    seed,
                    relay::lossy(0, 30, Duration::ZERO),
                    Config::default(),
                )
                .await;
                let (got, _, b, r) = transfer(rig, &data).await;
                assert!(got == data, "dup, seed {seed}");
                assert!(
                    r.duplicated > 0 && b.dup_data > 0,
                    "seed {seed}: {r:?} {b:?}"
                );
                // Reordering: packets seen ahead of a gap, put back in order.
                let rig = start_rig(
                    "127.0.0.1",
                    seed,
                    relay::lossy(0, 0, jitter),
                    Config::default(),
                )
                .await;
                let (got, _, b, r) = transfer(rig, &data).await;
                assert!(got == data, "reorder, seed {seed}");
                assert_eq!(r.dropped, 0);
                assert!(b.reordered > 0, "seed {seed}: {b:?}");
                // All three.
                let rig = start_rig(
                    "127.0.0.1",
                    seed,
                    relay::lossy(10, 10, jitter),
                    Config::default(),
                )
                .await;
                let (got, a, _, _) = transfer(rig, &data).await;
                assert!(got == data, "all, seed {seed}");
                assert!(a.retransmits() > 0);
            }
        },
        "duplication and reordering",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn retransmissions_are_exactly_the_dropped_packets() {
    within(
        HANG,
        async {
            for seed in [21, 22, 23, 24] {
                let data = pattern_seeded(200 * 1024, seed as u32);
                let rule = relay::drop_first_data(10);
                let rig = start_rig("127.0.0.1", seed, rule, Config::default()).await;
                let (got, a, b, r) = transfer(rig, &data).await;
                assert!(got == data, "seed {seed}");
                assert!(r.dropped_data.len() > 5, "seed {seed}: {r:?}");
                assert_eq!(
                    a.retransmits(),
                    r.dropped_data.len() as u64,
                    "seed {seed}: {a:?} against {:?}",
                    r.dropped_data
                );
                assert_eq!(b.dup_data, 0, "no packet needlessly sent again");
            }
        },
        "exact retransmissions",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn one_drop_is_repaired_by_fast_retransmit_without_a_timeout() {
    within(
        HANG,
        async {
            let cfg = Config::default();
            let data = pattern_seeded(12 * cfg.mss, 5);
            let rig = start_rig("127.0.0.1", 1, relay::drop_seqs_once(vec![3]), cfg.clone()).await;
            let (got, a, b, r) = transfer(rig, &data).await;
            assert!(got == data);
            assert_eq!(r.dropped_data, [(true, 3)]);
            assert_eq!((a.fast_retransmits, a.rto_retransmits), (1, 0), "{a:?}");
            // Packets 4.. came ahead of the gap, each ACKed at once: the duplicate ACKs.
            assert!(b.reordered >= 3, "{b:?}");
            // The fast retransmit restarted packet 3's timer (reset, the same key).
            assert_eq!(a.armed.iter().filter(|(s, _)| *s == 3).count(), 2);
        },
        "fast retransmit",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn rto_doubles_then_a_dead_peer_fails_send_recv_and_close() {
    within(
        HANG,
        async {
            let cfg = Config {
                max_retries: 5,
                idle: Duration::from_secs(3600),
                ..Config::default()
            };
            let rig = start_rig("127.0.0.1", 1, relay::lossy(0, 0, Duration::ZERO), cfg).await;
            rig.relay.blackhole.set(true);
            let start = time::now();
            let a = Rc::new(rig.a);
            // The first packet fits the initial window; the second waits for an ACK.
            a.send(b"hello").await.unwrap();
            let err = a.send(b"world").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionAborted, "{err}");
            assert!(err.to_string().contains("packet 0 sent 6 times"), "{err}");
            let secs = |s| (0, Duration::from_secs(s));
            let stats = a.stats();
            assert_eq!(
                stats.armed,
                [secs(1), secs(2), secs(4), secs(8), secs(16), secs(32)],
                "the timeouts armed, read back from the DelayQueue"
            );
            assert_eq!(stats.rto_retransmits, 5);
            assert_eq!(
                time::now() - start,
                Duration::from_secs(63),
                "dead at the sixth timeout, on the paused clock"
            );
            let mut buf = [0; 8];
            assert_eq!(
                a.recv(&mut buf).await.unwrap_err().kind(),
                ErrorKind::ConnectionAborted
            );
            assert_eq!(
                a.close().await.unwrap_err().kind(),
                ErrorKind::ConnectionAborted
            );
            assert_eq!(
                a.send(b"!").await.unwrap_err().kind(),
                ErrorKind::ConnectionAborted
            );
            assert_eq!(rig.relay.stats().forwarded, 0);
            drop(rig.b);
            rig.relay.stop().await;
        },
        "a dead peer",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_rtt_estimate_follows_a_delaying_relay() {
    within(
        HANG,
        async {
            let cfg = Config::default();
            let data = pattern_seeded(40 * cfg.mss, 9);
            let each_way = Duration::from_millis(50);
            let rig = start_rig("127.0.0.1", 1, relay::fixed_delay(each_way), cfg.clone()).await;
            let (got, a, _, _) = transfer(rig, &data).await;
            assert!(got == data);
            let srtt = a.srtt.expect("samples taken");
            assert!(
                srtt >= 2 * each_way && srtt < 2 * each_way + Duration::from_millis(10),
                "{srtt:?}"
            );
            assert_eq!(a.retransmits(), 0);
            assert_eq!(a.armed[0].1, cfg.initial_rto);
            let last = a.armed.last().unwrap().1;
            assert!(last < cfg.initial_rto && last >= cfg.min_rto, "{last:?}");
        },
        "rtt",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_stalled_receiver_stops_the_sender_at_its_window() {
    within(
        HANG,
        async {
            let cfg = Config {
                rcv_cap: 16 * 1024,
                ..Config::default()
            };
            let data = Rc::new(pattern_seeded(64 * 1024, 3));
            let rig = start_rig(
                "127.0.0.1",
                1,
                relay::lossy(0, 0, Duration::ZERO),
                cfg.clone(),
            )
            .await;
            let a = Rc::new(rig.a);
            let sender = overlap::spawn({
                let (a, data) = (a.clone(), data.clone());
                async move {
                    a.send(&data).await?;
                    a.close().await
                }
            });
            // A minute on the paused clock, the receiver not reading.
            time::sleep(Duration::from_secs(60)).await;
            assert!(!sender.is_finished(), "send waits for the window");
            let s = a.stats();
            assert_eq!(s.first_sends, 16, "exactly the receiver's window: {s:?}");
            assert_eq!(a.in_flight(), 0, "all of it acknowledged, the window shut");
            assert_eq!(rig.b.unread(), 16 * 1024);
            assert_eq!(s.retransmits(), 0);
            assert!(s.pings_sent > 0, "keepalives went on: {s:?}");
            assert_eq!(rig.b.stats().out_of_window, 0);
            // The receiver reads: the window opens, the rest comes.
            let got = rig.b.recv_to_end().await.unwrap();
            assert!(got == *data);
            sender.await.unwrap().unwrap();
            let updates = rig.b.stats().window_updates;
            assert!(updates > 0, "the reads reopened the window themselves");
            rig.b.close().await.unwrap();
            rig.relay.stop().await;
        },
        "backpressure",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn fin_delivers_everything_then_eof_and_leaves_no_fd_or_task() {
    within(
        HANG,
        async {
            let fds = open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let data = pattern_seeded(100 * 1000 + 7, 8);
            let Rig { a, b, relay, .. } = start_rig(
                "127.0.0.1",
                4,
                relay::lossy(5, 5, Duration::from_millis(5)),
                Config::default(),
            )
            .await;
            let (sent, got) = overlap::join!(
                async {
                    a.send(&data).await.unwrap();
                    a.close().await.unwrap();
                    a.send(b"late").await
                },
                async {
                    let got = b.recv_to_end().await.unwrap();
                    let mut buf = [0; 4];
                    for _ in 0..3 {
                        assert_eq!(b.recv(&mut buf).await.unwrap(), 0, "EOF stays");
                    }
                    b.close().await.unwrap();
                    got
                }
            );
            assert_eq!(sent.unwrap_err().kind(), ErrorKind::BrokenPipe);
            assert!(got == data);
            a.finished().await;
            b.finished().await;
            relay.stop().await;
            until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
            until(|| open_fds() == fds, "the fds back").await;
        },
        "fin",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn malformed_datagrams_are_counted_and_ignored() {
    within(
        HANG,
        async {
            let cfg = Config::default();
            let rig = start_rig(
                "127.0.0.1",
                1,
                relay::lossy(0, 0, Duration::ZERO),
                cfg.clone(),
            )
            .await;
            let good = |kind, conn, seq, ack, body: Vec<u8>| {
                Packet {
                    kind,
                    conn,
                    seq,
                    ack,
                    wnd: 4,
                    body,
                }
                .encode()
            };
            let mut bad_type = good(Kind::Data, ID, 0, 0, b"x".to_vec());
            bad_type[0] = 99;
            let junk: Vec<Vec<u8>> = vec![
                vec![],
                vec![1, 2, 3],
                vec![0; HEADER - 1],
                bad_type,
                good(Kind::Data, ID, 0, 0, vec![]),
                good(Kind::Data, ID, 0, 0, vec![7; cfg.mss + 1]),
                good(Kind::Ack, ID, 0, 0, vec![1]),
                good(Kind::Ping, ID, 0, 0, vec![1]),
                good(Kind::Ack, ID, 0, 1000, vec![0; 4]),
            ];
            for j in &junk {
                rig.relay.socket.send_to(j, rig.b_addr).await.unwrap();
            }
            // Another connection's packet, well formed, at seq 0: not delivered.
            let other = good(Kind::Data, ID + 1, 0, 0, b"not yours".to_vec());
            rig.relay.socket.send_to(&other, rig.b_addr).await.unwrap();
            // A stranger's datagram never reaches the connected socket.
            let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            stranger.send_to(b"junk", rig.b_addr).await.unwrap();
            let data = pattern_seeded(10 * 1024, 2);
            let (got, _, b, _) = transfer(rig, &data).await;
            assert!(got == data);
            assert_eq!((b.malformed, b.wrong_conn), (junk.len() as u64, 1));
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_silent_peer_ends_the_connection_at_the_idle_timeout() {
    within(
        HANG,
        async {
            let cfg = Config::default();
            let rig = start_rig(
                "127.0.0.1",
                1,
                relay::lossy(0, 0, Duration::ZERO),
                cfg.clone(),
            )
            .await;
            rig.a.send(b"ping").await.unwrap();
            let mut buf = [0; 8];
            assert_eq!(rig.b.recv(&mut buf).await.unwrap(), 4);
            // A long quiet spell with the peer there: the keepalives keep it up.
            time::sleep(cfg.idle * 4).await;
            assert!(rig.a.stats().pings_sent >= 4);
            rig.b.send(b"pong").await.unwrap();
            assert_eq!(rig.a.recv(&mut buf).await.unwrap(), 4);
            // Then the peer goes silent.
            rig.relay.blackhole.set(true);
            let err = rig.b.recv(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            let err = rig.a.send(b"anyone?").await;
            let err = match err {
                Ok(()) => rig.a.close().await.unwrap_err(),
                Err(e) => e,
            };
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            assert_eq!(rig.a.stats().retransmits(), 0);
            rig.relay.stop().await;
        },
        "idle",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_same_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let data = pattern_seeded(128 * 1024, 6);
            let rule = relay::lossy(5, 5, Duration::from_millis(10));
            let rig = start_rig("::1", 3, rule, Config::default()).await;
            assert!(rig.b_addr.is_ipv6());
            let (got, a, _, _) = transfer(rig, &data).await;
            assert!(got == data);
            assert!(a.retransmits() > 0);
        },
        "::1",
    )
    .await;
}
