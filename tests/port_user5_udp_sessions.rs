//! A user's UDP session service (a small game or VoIP relay), sketched as one would for
//! tokio and then written for overlap (`port_user5_udp_sessions/service.rs`): one socket on
//! 127.0.0.1 (and one on ::1) serving thousands of peers, a session table keyed by the
//! peer's address, an idle timeout per session reset by every datagram, reliable messages
//! (sequence numbers, acks, retransmission with exponential backoff up to a retry limit), a
//! token bucket per peer, relaying between paired peers, a stats task on an `interval`, and
//! a graceful shutdown.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
//! let mut buf = [0u8; MAX + 1];
//! loop {
//!     let (n, from) = select! {
//!         r = sock.recv_from(&mut buf) => r?,
//!         _ = shutdown.changed() => break,
//!     };
//!     let entry = sessions.entry(from).or_insert_with(|| {
//!         let (tx, rx) = mpsc::channel(64);
//!         peers.spawn(peer_task(sock.clone(), from, rx, shutdown.clone()));
//!         Entry { tx, bucket: TokenBucket::new(Instant::now()) }
//!     });
//!     if entry.bucket.take(Instant::now()) { let _ = entry.tx.try_send(buf[..n].to_vec()); }
//! }
//! // peer_task: let idle = sleep(IDLE); tokio::pin!(idle);
//! // loop { select! { Some(d) = rx.recv() => { idle.as_mut().reset(Instant::now() + IDLE); .. }
//! //                  _ = &mut idle => break,  _ = &mut retransmit => { .. } } }
//! // The other design: one timer task with tokio_util's DelayQueue<SocketAddr>, each datagram
//! // calling queue.reset(&key, IDLE), each expiry removing the session.
//! ```
//!
//! The tests check: 2,000 peers each making a handshake and two exchanges, with exact
//! payloads, over IPv4 and IPv6; idle sessions expiring on a paused clock while a pinging one
//! stays; a reset storm (thirty datagrams each for a hundred sessions) keeping the
//! registered timers constant in every idle design; retransmissions backing off and
//! stopping at the ack or at the retry limit; unknown peers and truncated, oversized, empty
//! or garbage datagrams dropped and counted without disturbing a session; a peer gone (its
//! port unreachable) while data to it is retransmitted, without an error reaching the
//! service loop; the token bucket; relaying between paired peers; a peer that never reads
//! holding up nobody; and a shutdown that says goodbye to every peer and leaves no task,
//! timer or fd.
//!
//! What the port changed, against tokio: `Arc`/`Mutex` became `Rc`/`RefCell` and `Cell`
//! counters, since tasks need not be `Send`; `select!` is futures' (branches `.fuse()`d,
//! `select_biased!` for tokio's `biased;`), and a pinned `Sleep` goes into it as it is (it is
//! fused until `reset`); `sleep.as_mut().reset(..)` is the same. tokio-util's `DelayQueue`
//! has no counterpart: the one-timer design is a hand-written heap of deadlines behind one
//! `Sleep` (`IdleDesign::SharedTimer`), and, as every deadline is the same `idle` after an
//! event, the dispatcher only notes each datagram's time, the reaper re-queuing a session
//! that was active since. The task-per-peer designs keep one `Sleep` reset per datagram
//! (`ResetSleep`, the default) or make a `timeout(idle, rx.recv())` per event
//! (`TimeoutPerRecv`). All three hold their timer count flat through a reset storm (the
//! wheel's stale copies are swept; live heap bytes, counted for the two per-peer designs in
//! a one-off run with a counting allocator over 200 rounds, stayed flat too) at about one
//! task poll per ping;
//! the shared timer registers one idle timer in all instead of one per session, which is
//! what it buys, and costs a second table lookup per expiry. The per-peer `Sleep` stays the
//! default as the simplest to get right: the reaper must reset its `Sleep` to a far
//! deadline when its heap empties, since a fired `Sleep` polled again stays ready (as
//! tokio's does), and left as it was it would spin. `recv_from` truncates a long datagram
//! silently, as tokio's does (a buffer one byte longer than the longest valid datagram
//! tells them apart; `recv_batch` reports `truncated`). `UdpSocket` has no `set_recv_buffer_size` (tokio's
//! neither), and 2,000 peers saying `HELLO` at once overflow the default receive buffer, so
//! the clients retry, as real ones must. `time::advance` fires timers before the loop reads
//! the sockets, as tokio's does: an ack sent just before it is not in, and the test lets
//! the loop turn first. An unconnected socket gets no ICMP error on Linux (now said in
//! `UdpSocket`'s docs), so a gone peer costs nothing but the retransmissions. Replying to
//! an IPv4 peer through the `::1` socket failed with "Network is unreachable", and
//! connecting it to one with "an IPv4 socket cannot send to or connect to an IPv6 address",
//! the wrong way round: both now say what is wrong (see `review_net_udp_family.rs`).

mod support;

#[path = "port_user5_udp_sessions/client.rs"]
mod client;
#[path = "port_user5_udp_sessions/service.rs"]
mod service;
#[path = "port_user5_udp_sessions/wire.rs"]
mod wire;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use client::Client;
use overlap::net::UdpSocket;
use overlap::task::JoinSet;
use overlap::time;
use service::*;
use support::{open_fds, raise_nofile, run_in_child, settle};
use wire::*;

async fn serve(
    config: Config,
    v6: bool,
) -> (Rc<Service>, overlap::task::JoinHandle<()>, Vec<SocketAddr>) {
    let mut sockets = vec![UdpSocket::bind("127.0.0.1:0").await.unwrap()];
    if v6 {
        sockets.push(UdpSocket::bind("[::1]:0").await.unwrap());
    }
    let addrs = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
    let (svc, main) = Service::start(sockets, config);
    (svc, main, addrs)
}

#[overlap::test]
async fn two_thousand_peers_each_handshake_and_exchange_exact_payloads() {
    // One socket per peer, a few for the runtime and the service.
    let peers = 2000.min(raise_nofile().saturating_sub(64) as usize);
    assert!(
        peers >= 900,
        "RLIMIT_NOFILE's hard limit is too low for this test"
    );
    let (svc, main, addrs) = serve(Config::default(), true).await;
    let mut clients = JoinSet::new();
    for i in 0..peers {
        let server = addrs[i % 8 / 7]; // one peer in eight on ::1
        clients.spawn(async move {
            let mut c = Client::connect(server).await;
            for m in 0..2 {
                let msg = format!("peer {i} message {m}");
                assert_eq!(
                    c.exchange(msg.as_bytes()).await,
                    format!("echo:{msg}").into_bytes()
                );
            }
            c.bye().await;
            c.id
        });
    }
    let t = std::time::Instant::now();
    let ids: HashSet<u32> = clients.join_all().await.into_iter().collect();
    eprintln!("{peers} peers in {:?}", t.elapsed());
    assert_eq!(ids.len(), peers, "every peer got a session of its own");
    let s = svc.stats();
    assert_eq!(
        (s.sessions_opened, s.closed, s.expired),
        (peers as u64, peers as u64, 0)
    );
    assert_eq!(s.sessions_now, 0);
    assert_eq!((s.malformed, s.queue_full, s.send_errors), (0, 0, 0));
    svc.shut_down();
    main.await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn idle_sessions_expire_on_a_paused_clock_and_a_pinging_one_stays() {
    for design in [IdleDesign::ResetSleep, IdleDesign::SharedTimer] {
        idle_expiry(design).await;
    }
}

async fn idle_expiry(design: IdleDesign) {
    let config = Config {
        idle_design: design,
        ..Config::default()
    };
    let (svc, main, addrs) = serve(config, false).await;
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(Client::connect(addrs[0]).await);
    }
    let pinger = Client::connect(addrs[0]).await;
    let timers = overlap::metrics().timers_active;
    // 80 s in all; each ping resets the pinger's 30 s idle timeout.
    for n in 0..4 {
        time::advance(Duration::from_secs(20)).await;
        pinger.send(PING, n, b"").await;
        assert_eq!(pinger.recv().await, (PONG, n, Vec::new()));
    }
    settle().await;
    let s = svc.stats();
    assert_eq!((s.expired, s.sessions_now), (50, 1));
    let ended = svc.ended.borrow().clone();
    assert!(silent.iter().all(|c| ended.get(&c.id) == Some(&End::Idle)));
    let pinger_addr = pinger.sock.local_addr().unwrap();
    assert_eq!(svc.session_of(pinger_addr), Some(pinger.id));
    // Each expired session took its timers (idle, retransmission) with it.
    let per_session = if design == IdleDesign::SharedTimer {
        1
    } else {
        2
    };
    assert_eq!(overlap::metrics().timers_active, timers - 50 * per_session);
    // A silent peer coming back is a stranger until it says HELLO again.
    let back = &silent[0];
    back.send(PING, 9, b"").await;
    settle().await;
    assert_eq!(back.try_recv(), None);
    assert_eq!(svc.stats().unknown_peer, 1);
    // The stats task took a snapshot every second of virtual time, the latest at 80 s.
    let history = svc.history.borrow().last().copied().unwrap();
    assert_eq!(history.expired, 50);
    time::advance(Duration::from_secs(31)).await;
    settle().await;
    assert_eq!(svc.stats().sessions_now, 0);
    svc.shut_down();
    main.await.unwrap();
}

/// Sends `rounds` pings from each of 100 peers, each answered; returns the registered timers
/// after every round, and the task polls per ping.
async fn reset_storm(design: IdleDesign, rounds: u32) -> (Vec<u64>, u64) {
    let config = Config {
        idle_design: design,
        burst: 1e9,
        rate: 1e9,
        ..Config::default()
    };
    let (svc, main, addrs) = serve(config, false).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(Client::connect(addrs[0]).await);
    }
    settle().await;
    let mut timers = vec![overlap::metrics().timers_active];
    let polls = overlap::metrics().task_polls;
    for round in 0..rounds {
        for c in &clients {
            c.send(PING, round, b"").await;
        }
        for c in &clients {
            assert_eq!(c.recv().await, (PONG, round, Vec::new()));
        }
        settle().await;
        timers.push(overlap::metrics().timers_active);
    }
    let polls = (overlap::metrics().task_polls - polls) / u64::from(rounds * 100);
    svc.shut_down();
    main.await.unwrap();
    (timers, polls)
}

#[overlap::test(start_paused = true)]
async fn a_reset_storm_keeps_one_idle_timer_per_session_in_every_design() {
    let designs = [
        (IdleDesign::ResetSleep, 201),
        (IdleDesign::TimeoutPerRecv, 201),
        (IdleDesign::SharedTimer, 102),
    ];
    for (design, expected) in designs {
        let (timers, polls) = reset_storm(design, 30).await;
        // 100 sessions with an idle and a retransmission timer each, and the stats task's;
        // with a shared timer, the reaper's one instead of the 100 idle ones.
        assert!(
            timers.iter().all(|&t| t == expected),
            "{design:?}: {timers:?}"
        );
        // A ping wakes the dispatcher and the session's task, and a few more polls.
        assert!(polls <= 6, "{design:?}: {polls} polls per ping");
    }
}

#[overlap::test(start_paused = true)]
async fn retransmissions_back_off_and_stop_at_the_ack_or_the_retry_limit() {
    let (svc, main, addrs) = serve(Config::default(), false).await;
    let c = Client::connect(addrs[0]).await;
    c.send(DATA, 1, b"x").await;
    assert_eq!(c.recv().await, (ACK, 1, Vec::new()));
    let echo = (DATA, 1, b"echo:x".to_vec());
    assert_eq!(c.recv().await, echo);
    // Not acknowledged: copies after 200, 400, 800 and 1,600 ms, then no more.
    time::advance(Duration::from_millis(199)).await;
    assert_eq!(c.drain().await, []);
    for wait in [1, 400, 800, 1600] {
        time::advance(Duration::from_millis(wait)).await;
        assert_eq!(
            c.drain().await,
            std::slice::from_ref(&echo),
            "after {wait} ms more"
        );
    }
    time::advance(Duration::from_secs(20)).await;
    assert_eq!(c.drain().await, []);
    assert_eq!((svc.stats().retransmits, svc.stats().given_up), (4, 1));
    // Acknowledged after the first copy: no more.
    c.send(DATA, 2, b"y").await;
    assert_eq!(c.recv().await, (ACK, 2, Vec::new()));
    let echo = (DATA, 2, b"echo:y".to_vec());
    assert_eq!(c.recv().await, echo);
    time::advance(Duration::from_millis(200)).await;
    assert_eq!(c.drain().await, [echo]);
    c.send(ACK, 2, b"").await;
    // `advance` fires timers before the loop looks at sockets: let the ack in first.
    settle().await;
    time::advance(Duration::from_secs(20)).await;
    assert_eq!(c.drain().await, []);
    assert_eq!((svc.stats().retransmits, svc.stats().given_up), (5, 1));
    svc.shut_down();
    main.await.unwrap();
}

#[overlap::test]
async fn bad_datagrams_are_dropped_and_counted_without_disturbing_a_session() {
    let (svc, main, addrs) = serve(Config::default(), false).await;
    let mut c = Client::connect(addrs[0]).await;
    let stranger = Client::bind(addrs[0]).await;
    stranger.send(DATA, 1, b"let me in").await;
    let raw = |d: Vec<u8>| {
        let c = &c;
        async move { c.sock.send_to(&d, c.server).await.unwrap() }
    };
    raw(vec![]).await; // empty
    raw(vec![DATA, 0, 0]).await; // a cut header
    raw(encode(DATA, 1, &[b'a'; MAX_DATAGRAM - 10])).await; // its echo is the longest
    raw(encode(DATA, 2, &[b'b'; MAX_DATAGRAM - 4])).await; // one byte too long
    raw(vec![0xEE; 65_507]).await; // the longest UDP datagram
    raw(encode(0xEE, 0, b"garbage")).await; // an unknown kind
                                            // The valid one's echo, whole, then the session goes on.
    let mut echo = b"echo:".to_vec();
    echo.extend_from_slice(&[b'a'; MAX_DATAGRAM - 10]);
    assert_eq!(c.take_data().await, echo);
    c.next_seq = 2;
    assert_eq!(c.exchange(b"still here").await, b"echo:still here");
    let s = svc.stats();
    assert_eq!(
        (s.unknown_peer, s.malformed, s.oversized),
        (1, 3, 2),
        "{s:?}"
    );
    assert_eq!((s.send_errors, s.recv_errors, s.sessions_now), (0, 0, 1));
    svc.shut_down();
    main.await.unwrap();
}

/// A peer that goes away with data to it unacknowledged: the server's retransmissions meet
/// a closed port, whose ICMP error an unconnected socket never reports (on Linux), so the
/// dispatcher reads on; the retransmissions stop at the limit, and others are served.
#[overlap::test(start_paused = true)]
async fn a_peer_gone_with_retransmissions_pending_does_not_stop_the_service() {
    let (svc, main, addrs) = serve(Config::default(), true).await;
    for server in addrs {
        let before = svc.stats();
        let gone = Client::connect(server).await;
        gone.send(DATA, 1, b"bye for now").await;
        assert_eq!(gone.recv().await, (ACK, 1, Vec::new()));
        assert_eq!(gone.recv().await, (DATA, 1, b"echo:bye for now".to_vec()));
        drop(gone);
        let mut other = Client::connect(server).await;
        for wait in [200, 400, 800, 1600, 3200] {
            time::advance(Duration::from_millis(wait)).await;
            let msg = format!("after {wait} ms");
            assert_eq!(
                other.exchange(msg.as_bytes()).await,
                format!("echo:{msg}").into_bytes()
            );
            // Its ack in before the clock moves on.
            settle().await;
        }
        let s = svc.stats();
        assert_eq!(s.retransmits - before.retransmits, 4, "{server}");
        assert_eq!(s.given_up - before.given_up, 1, "{server}");
        assert_eq!((s.send_errors, s.recv_errors), (0, 0), "{server}");
    }
    svc.shut_down();
    main.await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn the_token_bucket_drops_a_burst_beyond_it_and_refills_with_time() {
    let (svc, main, addrs) = serve(Config::default(), false).await;
    let c = Client::connect(addrs[0]).await;
    let pongs = |got: Vec<(u8, u32, Vec<u8>)>| -> Vec<u32> {
        got.into_iter()
            .map(|(k, n, _)| {
                assert_eq!(k, PONG);
                n
            })
            .collect()
    };
    for n in 0..50 {
        c.send(PING, n, b"").await;
    }
    // The clock stands still: 20 tokens, no refill.
    assert_eq!(pongs(c.drain().await), (0..20).collect::<Vec<_>>());
    assert_eq!(svc.stats().rate_limited, 30);
    // 100 ms at 100 a second: 10 more.
    time::advance(Duration::from_millis(100)).await;
    for n in 50..65 {
        c.send(PING, n, b"").await;
    }
    assert_eq!(pongs(c.drain().await), (50..60).collect::<Vec<_>>());
    assert_eq!(svc.stats().rate_limited, 35);
    svc.shut_down();
    main.await.unwrap();
}

#[overlap::test]
async fn paired_peers_have_their_data_relayed_exactly_and_in_order() {
    let (svc, main, addrs) = serve(Config::default(), true).await;
    let mut a = Client::connect(addrs[0]).await;
    let mut b = Client::connect(addrs[1]).await;
    a.send(PAIR, b.id, b"").await;
    assert_eq!(a.recv().await, (PAIRED, b.id, Vec::new()));
    assert_eq!(b.recv().await, (PAIRED, a.id, Vec::new()));
    for i in 0..20u32 {
        let (from, to) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let msg = support::pattern_seeded(1 + (i as usize * 23) % 400, i);
        let seq = from.next_seq;
        from.next_seq += 1;
        from.send(DATA, seq, &msg).await;
        assert_eq!(from.recv().await, (ACK, seq, Vec::new()));
        assert_eq!(to.take_data().await, msg);
    }
    assert_eq!(svc.stats().relayed, 20);
    // b leaves: a's data is echoed again.
    b.bye().await;
    assert_eq!(a.exchange(b"alone").await, b"echo:alone");
    svc.shut_down();
    main.await.unwrap();
}

/// A peer that never reads, its receive buffer full: the kernel drops what the server sends
/// it (a UDP send does not wait for the receiver), and the others are served as before.
#[overlap::test]
async fn a_peer_that_never_reads_holds_up_nobody() {
    let (svc, main, addrs) = serve(
        Config {
            queue: 256,
            burst: 1e9,
            rate: 1e9,
            ..Config::default()
        },
        false,
    )
    .await;
    let deaf = Client::connect(addrs[0]).await;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&deaf.sock);
    support::set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1).unwrap();
    for seq in 1..=200 {
        deaf.send(DATA, seq, &[b'z'; 400]).await;
    }
    let mut others = JoinSet::new();
    for i in 0..20 {
        let server = addrs[0];
        others.spawn(async move {
            let mut c = Client::connect(server).await;
            for m in 0..5 {
                let msg = format!("{i}/{m}");
                assert_eq!(
                    c.exchange(msg.as_bytes()).await,
                    format!("echo:{msg}").into_bytes()
                );
            }
        });
    }
    others.join_all().await;
    let s = svc.stats();
    assert_eq!((s.send_errors, s.queue_full), (0, 0));
    svc.shut_down();
    main.await.unwrap();
}

#[test]
fn shutdown_says_bye_to_every_peer_and_leaves_no_task_timer_or_fd() {
    run_in_child(
        "shutdown_says_bye_to_every_peer_and_leaves_no_task_timer_or_fd",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let before = overlap::metrics();
                let (svc, main, addrs) = serve(Config::default(), true).await;
                let mut clients = Vec::new();
                for i in 0..40 {
                    let mut c = Client::connect(addrs[i % 2]).await;
                    // Half leave their echo unacknowledged: retransmissions pending.
                    if i % 2 == 0 {
                        assert_eq!(c.exchange(b"acked").await, b"echo:acked");
                    } else {
                        c.send(DATA, 1, b"unacked").await;
                    }
                    clients.push(c);
                }
                svc.shut_down();
                for c in &clients {
                    loop {
                        match c.recv().await.0 {
                            BYE => break,
                            ACK | DATA => {}
                            other => panic!("unexpected kind {other}"),
                        }
                    }
                }
                main.await.unwrap();
                let s = svc.stats();
                assert_eq!((s.closed, s.sessions_now), (40, 0));
                drop((svc, clients));
                settle().await;
                let after = overlap::metrics();
                assert_eq!(after.tasks_alive, before.tasks_alive);
                assert_eq!(after.timers_active, 0);
                assert_eq!(after.registered_fds, before.registered_fds);
                assert_eq!(open_fds(), fds);
            });
        },
    );
}
