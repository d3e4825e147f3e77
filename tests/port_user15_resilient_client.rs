//! A user's resilient client for a clustered key-value service (a small Redis Cluster or
//! etcd client), sketched as one would for tokio, then written for overlap by changing
//! `tokio::` and `tokio_util::` to `overlap::`: the wire protocol and the key hash
//! (`port_user15_resilient_client/proto.rs`), the backoff and the circuit breaker
//! (`policy.rs`), the supervised connection to a node (`node_conn.rs`), the client with its
//! routing, redirects, deadlines and retries (`client.rs`); the tests' cluster node
//! (`cluster_node.rs`) and cluster (`rig.rs`); the fault tests are in `fault_tests.rs`, the
//! reconnect tests in `reconnect_tests.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::net::{TcpSocket, TcpStream};
//! use tokio::sync::{mpsc, oneshot};
//! use tokio::time::{sleep, timeout_at, Instant};
//! use tokio_util::codec::{FramedRead, LinesCodec};
//! use tokio_util::sync::CancellationToken;
//! use futures::StreamExt;
//!
//! // Per node, a supervisor task: connect, serve, and on failure back off and reconnect.
//! loop {
//!     let stream = tokio::select! { _ = stop.cancelled() => break, r = connect(addr) => r };
//!     // keepalive: socket2::SockRef::from(&stream).set_tcp_keepalive(&TcpKeepalive::new()
//!     //     .with_time(30s).with_interval(5s).with_retries(4))?; stream.set_nodelay(true)?;
//!     match stream {
//!         Ok(s) => serve(s, &mut jobs).await,      // pipelined: replies in request order
//!         Err(_) => { sleep(backoff.delay(failures, &mut rng)).await; failures += 1 }
//!     }
//! }
//! // serve: one select! over stop, the oldest request's deadline, new jobs, reply lines.
//! let (rd, mut wr) = stream.into_split();
//! let mut lines = FramedRead::new(rd, LinesCodec::new_with_max_length(1024));
//! tokio::select! {
//!     _ = sleep_until(front.deadline), if !pending.is_empty() => break, // drop the connection
//!     Some(job) = jobs.recv() => { wr.write_all(job.line()).await?; pending.push_back(job) }
//!     line = lines.next() => pending.pop_front().reply.send(Reply::parse(&line?)),
//! }
//! // then every request still pending fails: Err(ConnectionLost { in_flight, why })
//!
//! // The client: route by CRC16(key) % 16384, follow MOVED (update the map) and ASK (send
//! // ASKING first), retry only idempotent commands, and ask each node's breaker first.
//! let res = timeout_at(deadline, async { jobs.send(job).await?; rx.await? }).await;
//! ```
//!
//! The tests check, over real TCP sockets on 127.0.0.1 (one test on ::1) and on the paused
//! clock: keys routed by slot to the node that owns it, each node holding exactly its
//! keys, and the bootstrap skipping a dead seed after exactly one timeout; a `MOVED`
//! updating the map (the second request going straight to the new owner), an `ASK`
//! followed with `ASKING` without updating it, a redirect loop stopped at the limit; the
//! reconnect attempts after a node stops, at exactly the gaps the seeded backoff gives
//! (and the schedule itself, by value); a node restarted on the same port with
//! `SO_REUSEADDR` (a bind without it failing with `AddrInUse`) and the client carrying on
//! with the kept data; keep-alive and `TCP_NODELAY` read back from the kernel, and a
//! keep-alive out of the kernel's range showing as the node's connect error; a reconnect
//! storm with every node restarting at once bounded by the backoff (the attempts counted
//! exactly, thirty queued requests all answered, none sent twice); a shutdown failing a
//! request in flight and leaving no task, timer or fd (the backoff, restart and storm
//! tests in `reconnect_tests.rs`, the others in `port_user15_resilient_client.rs`);
//! a silent node timing requests out (three sendings, three seconds), the breaker opening
//! and failing fast, then a half-open probe answered with its own reply and closing it; a
//! probe failing re-opening it, a cancelled probe freeing the slot, a second request
//! refused while a probe is out; a node closing mid-reply: `INCR` not retried (applied
//! once), `GET` retried to the limit, the cut reply never taken for a shorter value;
//! requests in flight on a dying connection: the answered ones answered once, every other
//! failing with `ConnectionLost` and the count; a malformed reply, an overlong one and a
//! reply nobody asked for each dropping the connection, the client carrying on; a full
//! queue to a down node: every request timing out, none sent late once it is back
//! (`fault_tests.rs`).
//!
//! What porting it found missing in overlap, or different from tokio:
//!
//! - Nothing missing for the program. `TcpSocket` (`set_reuseaddr`, `bind`, `listen`,
//!   `connect`), `TcpStream::into_split`, `set_nodelay`, `FramedRead` with
//!   `LinesCodec::new_with_max_length`, `mpsc`, `oneshot` (`Sender::is_closed`),
//!   `CancellationToken::child_token`, `JoinSet`, `timeout_at`, `sleep_until`, `select!`
//!   with `, if` preconditions and `#[overlap::test(start_paused = true)]` all have tokio's
//!   names and behaved as tokio's would.
//! - Better than tokio: keep-alive timing is on `TcpStream` itself
//!   (`set_tcp_keepalive(&TcpKeepalive)`, with getters), where tokio needs socket2's
//!   `SockRef`; and a value the kernel would refuse (a zero idle time) is refused by name
//!   (`InvalidInput`, "a keep-alive time is 1 to 32767 seconds") before anything is set.
//! - A pitfall shared with tokio-util, not a gap: `LinesCodec::decode_eof` hands over an
//!   unterminated last line as if it were whole, so a reply cut in the middle (`$va` of
//!   `$value`) reads as a shorter value. overlap's docs say so in one clause ("and at end
//!   of stream a last line that has none"); the client wraps the codec with a `decode_eof`
//!   that refuses the partial line (`ReplyCodec` in `node_conn.rs`).
//! - As in tokio, `select!` starts at a random branch: the connection loop needs
//!   `biased;` so that a passed deadline or the end of the stream is seen before a queued
//!   request is written to a connection about to go (else that request fails with the
//!   connection, and an idempotent one is sent twice); and a paused clock jumps to the next
//!   timer without waiting for sockets, so both ends set `TCP_NODELAY` lest a reply sit
//!   behind Nagle's algorithm while a deadline fires (overlap's `time` docs warn of that).
//! - Not overlap's either, but met on the way: a node restarting on its port races with
//!   any child process spawned meanwhile by another thread (std's `Command`, as tokio's
//!   and overlap's `process` use), which holds a copy of the old listener's fd from its
//!   fork to its exec. Until then the port cannot be bound again (`AddrInUse`, even with
//!   `SO_REUSEADDR`) and, worse, a client's connect succeeds into the dead listener's
//!   queue. So the leak check here reads `/proc/self/fd` for the client's sockets by inode
//!   rather than counting fds in a child process, the restart retries its bind, and nodes
//!   take ports below the ephemeral range (a port 0 port, once closed, may become any
//!   connecting socket's local port).
//! - The client's own lesson, not overlap's: a request whose caller gave up (a cancelled
//!   breaker probe) stays on its pipelined connection, its reply owed, until its deadline
//!   drops the connection and whatever is behind it; the test shows it.
//!
//! The tests were run against the client broken on purpose, one fault at a time, and each
//! fault made a test fail: a cancelled probe not giving its slot back (the breaker stuck
//! half-open); the cut reply's partial line taken as a whole (`LinesCodec`'s own
//! `decode_eof`); `INCR` taken for idempotent (sent three times, applied three times); a
//! connection's write half forgotten at shutdown (its socket still open).

mod support;

#[path = "port_user15_resilient_client/client.rs"]
mod client;
#[path = "port_user15_resilient_client/cluster_node.rs"]
mod cluster_node;
#[path = "port_user15_resilient_client/fault_tests.rs"]
mod fault_tests;
#[path = "port_user15_resilient_client/node_conn.rs"]
mod node_conn;
#[path = "port_user15_resilient_client/policy.rs"]
mod policy;
#[path = "port_user15_resilient_client/proto.rs"]
mod proto;
#[path = "port_user15_resilient_client/reconnect_tests.rs"]
mod reconnect_tests;
#[path = "port_user15_resilient_client/rig.rs"]
mod rig;

use std::net::SocketAddr;
use std::time::Duration;

use client::{Client, Config, Error};
use overlap::codec::{FramedRead, LinesCodec};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpKeepalive, TcpStream};
use overlap::stream::StreamExt;
use overlap::time;
use proto::{crc16, slot_of};
use rig::{cluster, key_in, RANGES};
use support::{int_option as getsockopt_int, until, within};

/// A hang guard only, on the paused clock.
const HANG: Duration = Duration::from_secs(3600);

#[overlap::test(start_paused = true)]
async fn keys_are_routed_to_the_node_owning_their_slot() {
    within(
        HANG,
        async {
            assert_eq!(crc16(b"123456789"), 0x31c3, "CRC16/XMODEM's check value");
            assert_eq!(slot_of("foo"), 12182, "Redis Cluster's slot of \"foo\"");
            let c = cluster("127.0.0.1", Config::default()).await;
            for i in 0..60 {
                c.client
                    .set(&format!("key{i}"), &format!("v{i}"))
                    .await
                    .unwrap();
            }
            for i in 0..60 {
                let v = c.client.get(&format!("key{i}")).await.unwrap();
                assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()));
            }
            assert_eq!(c.client.get("absent").await.unwrap(), None);
            let mut total = 0;
            for (n, range) in c.nodes.iter().zip(RANGES.iter()) {
                let store = n.state.store.borrow();
                assert!(store.keys().all(|k| range.contains(&slot_of(k))));
                assert!(!store.is_empty());
                total += store.len();
                assert_eq!(n.state.accepted.get(), 1, "one connection per node");
            }
            assert_eq!(total, 60);
            assert_eq!(
                c.client.stats(),
                Default::default(),
                "no redirect, no retry"
            );
            c.finish().await;
        },
        "routing",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_bootstrap_skips_a_dead_seed_after_one_timeout() {
    within(
        HANG,
        async {
            // Port 1 (tcpmux), where nothing listens: a port 0 listener's port, once closed,
            // may be taken by another process's listener meanwhile.
            let dead_addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
            let c = cluster("127.0.0.1", Config::default()).await;
            let cfg = Config::default();
            let start = time::now();
            let client = Client::connect(&[dead_addr, c.nodes[1].addr], cfg.clone())
                .await
                .unwrap();
            assert_eq!(
                time::now() - start,
                cfg.timeout,
                "one timeout, then the next seed"
            );
            assert_eq!(client.route("foo"), Some(c.nodes[2].addr));
            let dead_node = client.node(dead_addr);
            assert!(dead_node.attempts.borrow().iter().all(|&(_, ok)| !ok));
            let err = dead_node.connect_error.borrow().clone().unwrap();
            assert!(err.contains("refused"), "{err}");
            client.shutdown().await;
            c.finish().await;
        },
        "bootstrap",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn moved_updates_the_map_and_ask_does_not() {
    within(
        HANG,
        async {
            let c = cluster("127.0.0.1", Config::default()).await;
            let (a, b) = (&c.nodes[0], &c.nodes[1]);
            // MOVED: a slot of A's handed to B for good.
            let key = key_in(&RANGES[0], 0);
            let slot = slot_of(&key);
            b.state.owned.borrow_mut().push(slot..=slot);
            b.state
                .store
                .borrow_mut()
                .insert(key.clone(), "at-b".into());
            a.state.moved.borrow_mut().insert(slot, b.addr);
            assert_eq!(c.client.get(&key).await.unwrap().as_deref(), Some("at-b"));
            assert_eq!(c.client.route(&key), Some(b.addr), "the map updated");
            assert_eq!(c.client.get(&key).await.unwrap().as_deref(), Some("at-b"));
            assert_eq!(
                a.state.received_count("GET"),
                1,
                "the second went to B at once"
            );
            assert_eq!(b.state.received_count("GET"), 2);
            // ASK: a slot of A's being migrated to B; this key already moved.
            let key = key_in(&RANGES[0], 1);
            let slot = slot_of(&key);
            a.state.migrating.borrow_mut().insert(slot, b.addr);
            b.state.importing.borrow_mut().insert(slot);
            b.state
                .store
                .borrow_mut()
                .insert(key.clone(), "migrated".into());
            for _ in 0..2 {
                assert_eq!(
                    c.client.get(&key).await.unwrap().as_deref(),
                    Some("migrated")
                );
            }
            assert_eq!(c.client.route(&key), Some(a.addr), "ASK leaves the map");
            assert_eq!(a.state.received_count(&format!("GET {key}")), 2);
            assert_eq!(b.state.received_count("ASKING"), 2);
            assert_eq!(c.client.stats().moved, 1);
            assert_eq!(c.client.stats().asked, 2);
            // B serves the importing slot only right after ASKING.
            let mut raw = TcpStream::connect(b.addr).await.unwrap();
            raw.set_nodelay(true).unwrap();
            raw.write_all(format!("GET {key}\nASKING\nGET {key}\nGET {key}\n").as_bytes())
                .await
                .unwrap();
            let mut lines = FramedRead::new(raw, LinesCodec::new());
            let mut got = Vec::new();
            for _ in 0..4 {
                got.push(lines.next().await.unwrap().unwrap());
            }
            let refused = format!("-ERR slot {slot} not served here");
            assert_eq!(
                got,
                [refused.as_str(), "+OK", "$migrated", refused.as_str()]
            );
            c.finish().await;
        },
        "redirects",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_redirect_loop_stops_at_the_limit() {
    within(
        HANG,
        async {
            let cfg = Config::default();
            let c = cluster("127.0.0.1", cfg.clone()).await;
            let (a, b) = (&c.nodes[0], &c.nodes[1]);
            let key = key_in(&RANGES[0], 2);
            let slot = slot_of(&key);
            a.state.moved.borrow_mut().insert(slot, b.addr);
            b.state.moved.borrow_mut().insert(slot, a.addr);
            let err = c.client.get(&key).await.unwrap_err();
            // Five redirects followed, the sixth refused: A, B, A, B, A, B asked.
            assert_eq!(err, Error::TooManyRedirects { last: a.addr });
            assert_eq!(a.state.received_count("GET"), 3);
            assert_eq!(b.state.received_count("GET"), 3);
            assert_eq!(c.client.stats().moved, cfg.max_redirects + 1);
            c.finish().await;
        },
        "redirect loop",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn keepalive_and_nodelay_are_read_back_from_the_kernel() {
    within(
        HANG,
        async {
            let c = cluster("127.0.0.1", Config::default()).await;
            c.client.set("a", "1").await.unwrap();
            let addr = c.client.route("a").unwrap();
            let fd = c.client.node(addr).fd.get().expect("connected");
            let (sol, tcp) = (libc::SOL_SOCKET, libc::IPPROTO_TCP);
            assert_eq!(getsockopt_int(fd, sol, libc::SO_KEEPALIVE), 1);
            assert_eq!(getsockopt_int(fd, tcp, libc::TCP_KEEPIDLE), 30);
            assert_eq!(getsockopt_int(fd, tcp, libc::TCP_KEEPINTVL), 5);
            assert_eq!(getsockopt_int(fd, tcp, libc::TCP_KEEPCNT), 4);
            assert_eq!(getsockopt_int(fd, tcp, libc::TCP_NODELAY), 1);
            c.finish().await;

            // A keep-alive the kernel would refuse: every attempt fails, and says why.
            let c = cluster("127.0.0.1", Config::default()).await;
            let cfg = Config {
                keepalive: TcpKeepalive::new().with_time(Duration::ZERO),
                ..Config::default()
            };
            let start = time::now();
            let err = Client::connect(&[c.nodes[0].addr], cfg.clone()).await;
            assert_eq!(
                err.err(),
                Some(Error::Timeout {
                    node: c.nodes[0].addr
                })
            );
            assert_eq!(time::now() - start, cfg.timeout);
            let client = Client::new(cfg);
            let node = client.node(c.nodes[0].addr);
            until(|| node.connect_error.borrow().is_some(), "an attempt").await;
            let why = node.connect_error.borrow().clone().unwrap();
            assert!(
                why.contains("keep-alive time is 1 to 32767 seconds"),
                "{why}"
            );
            client.shutdown().await;
            c.finish().await;
        },
        "keepalive",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_same_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let mut c = cluster("::1", Config::default()).await;
            assert!(c.nodes[0].addr.is_ipv6());
            for i in 0..30 {
                c.client
                    .set(&format!("six{i}"), &i.to_string())
                    .await
                    .unwrap();
            }
            c.nodes[2].stop().await;
            c.nodes[2].restart().await;
            for i in 0..30 {
                let v = c.client.get(&format!("six{i}")).await.unwrap();
                assert_eq!(v, Some(i.to_string()));
            }
            assert_eq!(c.nodes[2].state.accepted.get(), 2);
            c.finish().await;
        },
        "::1",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn shutdown_fails_what_is_in_flight_and_leaves_no_task_timer_or_fd() {
    within(
        HANG,
        async {
            let m = overlap::metrics();
            let c = cluster("127.0.0.1", Config::default()).await;
            for i in 0..20 {
                c.client.set(&format!("s{i}"), "x").await.unwrap();
            }
            // The client's three sockets, by inode (never reused, unlike fd numbers, which
            // the other tests' threads take as soon as they are free).
            let sockets: Vec<String> = c
                .nodes
                .iter()
                .map(|n| fd_target(c.client.node(n.addr).fd.get().unwrap()))
                .collect();
            assert!(
                sockets.iter().all(|s| s.starts_with("socket:[")),
                "{sockets:?}"
            );
            let key = key_in(&RANGES[0], 0);
            c.nodes[0].set_mode(cluster_node::Mode::Silent);
            let (res, ()) = overlap::join!(c.client.get(&key), async {
                until(
                    || c.nodes[0].state.received_count("GET") == 1,
                    "the GET sent",
                )
                .await;
                c.client.shutdown().await;
            });
            assert_eq!(res, Err(Error::ShutDown));
            assert_eq!(c.client.set("late", "x").await, Err(Error::ShutDown));
            let open = open_fd_targets();
            assert!(
                sockets.iter().all(|s| !open.contains(s)),
                "a client socket left open"
            );
            for n in &c.nodes {
                until(
                    || n.state.open_conns.get() == 0,
                    "the nodes see the client gone",
                )
                .await;
            }
            c.finish().await;
            let now = overlap::metrics();
            assert_eq!(now.tasks_alive, m.tasks_alive, "no task left");
            assert_eq!(
                now.registered_fds, m.registered_fds,
                "no fd left registered"
            );
            assert_eq!(now.timers_active, m.timers_active, "no timer left");
        },
        "shutdown",
    )
    .await;
}

/// What an fd of this process is (`socket:[inode]` for a socket).
fn fd_target(fd: std::os::fd::RawFd) -> String {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    link.to_string_lossy().into_owned()
}

/// What every open fd of this process is, now.
fn open_fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}
