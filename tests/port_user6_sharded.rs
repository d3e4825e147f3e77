//! A user's sharded counter service, thread per core (`port_user6_sharded/shard.rs` and
//! `cluster.rs`), sketched as one would for tokio and then written for overlap: N shard
//! threads, each with its own runtime and its own `SO_REUSEPORT` listener on one loopback
//! port, serve a line protocol (`INCR key n`, `GET key`, `BULK key count`, `WHO`, `MOVE
//! shard`, `QUIT`). Each shard owns the keys that hash to it; a request for another's key
//! is forwarded to that shard's inbox (a `Send` channel) with a reply channel, and
//! answered back. `BULK` sums `1..=count` in a blocking job, which hands the sum to the
//! key's owner itself, from the pool thread. `MOVE` rebalances: the connection leaves its
//! runtime as a std socket, with the bytes read but not yet answered, through the other
//! shard's inbox, which registers it with its own reactor. A control thread, a runtime of
//! its own, collects every shard's stats on an interval through their `Handle`s, changes
//! their settings, notices a shard thread that died (its `JoinHandle` finished, its inbox
//! closed), and runs the coordinated shutdown: every shard stops accepting and drains at
//! once, still answering the forwards of shards still draining; then the last senders to
//! the inboxes go, every shard's main future ends, and the threads are joined.
//!
//! As for tokio: each shard thread runs `Builder::new_current_thread().enable_all()`
//! with a `LocalSet` (its state in `Rc`s, its connections `spawn_local`ed into a `JoinSet`
//! whose panics the main loop resumes, so a shard goes down whole); the inboxes are
//! `tokio::sync::mpsc::UnboundedSender<(Request, oneshot::Sender<Reply>)>`; the control
//! thread reaches a shard's state with `handle.spawn(async { SHARD.with(..) })`... except
//! that tokio's `Handle::spawn` needs a `Send` future and puts it on the runtime, not on
//! the `LocalSet` where the `Rc`s are, so it would send a command through the inbox
//! instead; a moved connection is `into_std()` on one side and `from_std` on the other.
//!
//! The tests check exact totals for 48 clients on every shard with cross-shard requests and
//! blocking-job handoffs (and the stats agree: every forward out arrived once), a limit set
//! by the control thread holding on every shard, a connection moved across all shards
//! mid-pipeline losing no byte (also a line split across the move), a shard that panics
//! going down alone (the others serve on, its keys answer an error, the control thread
//! names the panic, its `Handle` refuses work with a cancelled error instead of hanging),
//! `Handle`s that outlive a shut-down cluster, timers on one shard's paused clock leaving
//! the others' alone, and a coordinated shutdown, after a shard panicked, leaving no thread,
//! task or fd.
//!
//! What the port changed, against tokio: a `Runtime` is not `Send`, so each shard builds
//! its own on its thread and sends its `Handle` back, where a tokio user builds them all
//! first and moves each in (the compiler's "`Rc<Core>` cannot be sent" was all it said:
//! `Runtime`'s docs and the README now show the way). `Handle::spawn_with` takes a `Send`
//! closure that makes a `!Send` future on the shard's thread, so the control thread reaches
//! the shard's `Rc` state directly (through a thread-local) where tokio needs a `LocalSet`
//! command; `select!` is futures' (branches `.fuse()`d). overlap had no `Send` oneshot
//! (the first draft made each forward's reply an mpsc `cross_thread::channel(1)`): the
//! replies now go through the new `oneshot::cross_thread`, tokio's `oneshot` under another
//! path (`tests/sync_cross_thread_threads.rs`). Two bugs found on the way: a shard thread that catches a panic around its `block_on` needed
//! `AssertUnwindSafe` for its `Runtime` and `Handle`s, where tokio's are unwind-safe
//! (`tests/runtime_handle.rs`); and `overlap::spawn`, `metrics` or `time::pause` called
//! from the control thread in `Handle::block_on` said "outside of a runtime, call it from a
//! future run by `block_on`", and `spawn_blocking` there blamed a pool thread: they now say
//! no runtime runs there and name the `Handle::current()` call that works
//! (`tests/runtime_handle_block_on.rs`).

mod support;

#[path = "port_user6_sharded/cluster.rs"]
mod cluster;
#[path = "port_user6_sharded/shard.rs"]
mod shard;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use cluster::{Cluster, Command};
use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::TcpStream;
use shard::owner;
use support::{open_fds, run_in_child, within};

const HANG: Duration = Duration::from_secs(20);

/// A client: one connection, a request line at a time.
struct Client {
    conn: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            conn: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    /// A client served by shard `to`: connected anywhere, then moved there.
    async fn on_shard(addr: SocketAddr, to: usize) -> Client {
        let mut client = Client::connect(addr).await;
        assert_eq!(
            client.ask(&format!("MOVE {to}")).await,
            format!("MOVED {to}")
        );
        assert_eq!(client.ask("WHO").await, to.to_string());
        client
    }

    async fn send(&mut self, text: &str) {
        self.conn
            .get_mut()
            .write_all(text.as_bytes())
            .await
            .unwrap();
    }

    /// The next answer line, without its newline ("" at the end of the stream).
    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.conn.read_line(&mut line);
        within(HANG, read, "an answer").await.unwrap_or(0);
        line.trim_end().to_string()
    }

    async fn ask(&mut self, request: &str) -> String {
        self.send(&format!("{request}\n")).await;
        self.line().await
    }
}

/// The first key `prefix0`, `prefix1`, ... that shard `shard` of `shards` owns.
fn key_of(shard: usize, shards: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| owner(k, shards) == shard)
        .unwrap()
}

/// Waits (up to `HANG`) until the control thread reports shard `n` down, through its
/// thread's `JoinHandle` and its closed inbox; the thread's panic message.
fn down_message(cluster: &Cluster, n: usize) -> String {
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let health = cluster.ask(Command::Health);
        if let (Some(message), true) = (&health.down[n], health.inbox_closed[n]) {
            return message.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "shard {n} never noticed down"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn forty_eight_clients_on_every_shard_count_every_key_exactly() {
    const SHARDS: usize = 3;
    const CLIENTS: usize = 48;
    const KEYS: usize = 12;
    const ROUNDS: usize = 10;
    let cluster = Cluster::start(SHARDS);
    let addr = cluster.addr;
    let (served_by, bulk_keys) = overlap::block_on(async move {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                overlap::spawn(async move {
                    let mut client = Client::connect(addr).await;
                    let who: usize = client.ask("WHO").await.parse().unwrap();
                    // Pipelined: a whole round in one write, then its answers in order.
                    for round in 0..ROUNDS {
                        let batch: String = (0..KEYS)
                            .map(|k| format!("INCR key{k} {}\n", c + round + k))
                            .collect();
                        client.send(&batch).await;
                        for _ in 0..KEYS {
                            let answer = client.line().await;
                            assert!(answer.parse::<i64>().is_ok(), "{answer:?}");
                        }
                    }
                    // A blocking job on this shard hands work to the key's owner.
                    let bulk_key = key_of((who + 1) % SHARDS, SHARDS, "bulk");
                    let bulk: i64 = client
                        .ask(&format!("BULK {bulk_key} 1000"))
                        .await
                        .parse()
                        .unwrap();
                    assert!(bulk >= 500_500 && bulk % 500_500 == 0, "{bulk}");
                    assert_eq!(client.ask("QUIT").await, "BYE");
                    (who, bulk_key)
                })
            })
            .collect();
        let mut served_by = BTreeSet::new();
        let mut bulk_keys = HashMap::new();
        for task in tasks {
            let (who, bulk_key) = task.await.unwrap();
            served_by.insert(who);
            *bulk_keys.entry(bulk_key).or_insert(0i64) += 500_500;
        }
        // Every key, read from a shard that owns none of them all.
        let mut reader = Client::connect(addr).await;
        for k in 0..KEYS {
            let expected: usize = (0..CLIENTS)
                .flat_map(|c| (0..ROUNDS).map(move |r| c + r + k))
                .sum();
            assert_eq!(
                reader.ask(&format!("GET key{k}")).await,
                expected.to_string()
            );
        }
        for (key, sum) in &bulk_keys {
            assert_eq!(reader.ask(&format!("GET {key}")).await, sum.to_string());
        }
        (served_by, bulk_keys)
    });
    // 48 connections hashed over 3 listeners: one getting none has odds under 10^-7.
    assert_eq!(served_by.len(), SHARDS, "{served_by:?}");

    let stats: Vec<_> = cluster
        .ask(Command::Stats)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let requests: u64 = stats.iter().map(|s| s.requests).sum();
    // Per client: WHO, the rounds, BULK; then the reader's GETs.
    let expected = CLIENTS * (2 + KEYS * ROUNDS) + KEYS + bulk_keys.len();
    assert_eq!(requests, expected as u64, "{stats:?}");
    let out: u64 = stats.iter().map(|s| s.forwarded_out).sum();
    let inn: u64 = stats.iter().map(|s| s.forwarded_in).sum();
    assert_eq!(out, inn, "every forward arrived once: {stats:?}");
    assert!(out >= CLIENTS as u64, "the BULKs alone forward: {stats:?}");
    assert_eq!(
        stats.iter().map(|s| s.accepted).sum::<u64>(),
        CLIENTS as u64 + 1
    );
    assert_eq!(
        stats.iter().map(|s| s.keys).sum::<u64>(),
        (KEYS + bulk_keys.len()) as u64
    );
    let health = cluster.ask(Command::Health);
    assert!(health.collections >= 1, "the first tick comes at once");
    assert_eq!(health.down, vec![None; SHARDS]);
    assert_eq!(health.inbox_closed, vec![false; SHARDS]);

    let last = cluster.shutdown();
    assert!(
        last.iter().all(|s| s.is_some_and(|s| s.open == 0)),
        "{last:?}"
    );
}

#[test]
fn a_limit_set_by_the_control_thread_holds_on_every_shard() {
    const SHARDS: usize = 3;
    let cluster = Cluster::start(SHARDS);
    cluster.ask(|reply| Command::Limit(10, reply));
    let addr = cluster.addr;
    overlap::block_on(async move {
        for n in 0..SHARDS {
            let mut client = Client::on_shard(addr, n).await;
            let key = key_of((n + 1) % SHARDS, SHARDS, "limited");
            assert_eq!(
                client.ask(&format!("INCR {key} 11")).await,
                "ERR delta 11 over the limit 10"
            );
            assert_eq!(client.ask(&format!("INCR {key} 10")).await, "10");
            assert_eq!(client.ask("INCR x y").await, "ERR bad delta");
            assert_eq!(client.ask("FLY").await, "ERR unknown command");
            assert_eq!(client.ask("MOVE 9").await, "ERR no such shard");
        }
    });
    cluster.shutdown();
}

#[test]
fn a_connection_moved_across_every_shard_mid_pipeline_loses_no_byte() {
    const SHARDS: usize = 3;
    let cluster = Cluster::start(SHARDS);
    let addr = cluster.addr;
    overlap::block_on(async move {
        let mut client = Client::connect(addr).await;
        let first: usize = client.ask("WHO").await.parse().unwrap();
        // One write: moves to every shard and back, with requests queued behind each move
        // (read by the shard that moves it, answered by the next).
        let mut pipeline = String::new();
        let mut expected = Vec::new();
        let mut total = 0;
        for step in 0..30 {
            let to = (first + step + 1) % SHARDS;
            pipeline += &format!("MOVE {to}\nWHO\nINCR moved {step}\n");
            total += step;
            expected.extend([format!("MOVED {to}"), to.to_string(), total.to_string()]);
        }
        client.send(&pipeline).await;
        for want in &expected {
            assert_eq!(&client.line().await, want);
        }
        // A line split across a move: its first half is read by one shard, the rest
        // arrives at the next.
        client.send("MOVE 1\nINCR mo").await;
        assert_eq!(client.line().await, "MOVED 1");
        client.send("ved 1000\nWHO\n").await;
        assert_eq!(client.line().await, (total + 1000).to_string());
        assert_eq!(client.line().await, "1");
        // A move to the shard it is on, then one whose requests outrun the 4 KiB the shard
        // reads at a time: most of them are still in the kernel's buffer when the next
        // shard registers the socket, and must wake it.
        assert_eq!(client.ask("MOVE 1").await, "MOVED 1");
        let mut big = String::from("MOVE 2\n");
        let mut total = total + 1000;
        for n in 0..600 {
            big += &format!("INCR moved {n}\n");
        }
        client.send(&big).await;
        assert_eq!(client.line().await, "MOVED 2");
        for n in 0..600 {
            total += n;
            assert_eq!(client.line().await, total.to_string());
        }
        assert_eq!(client.ask("WHO").await, "2");
        assert_eq!(client.ask("QUIT").await, "BYE");
    });
    let stats: Vec<_> = cluster
        .ask(Command::Stats)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(
        stats.iter().map(|s| s.moved_out).sum::<u64>(),
        33,
        "{stats:?}"
    );
    assert_eq!(
        stats.iter().map(|s| s.moved_in).sum::<u64>(),
        33,
        "{stats:?}"
    );
    cluster.shutdown();
}

#[test]
fn a_shard_that_panics_goes_down_alone_and_its_handle_refuses_work() {
    const SHARDS: usize = 3;
    let cluster = Cluster::start(SHARDS);
    let addr = cluster.addr;
    overlap::block_on(async move {
        let mut doomed = Client::on_shard(addr, 1).await;
        doomed.send("PANIC\n").await;
        assert_eq!(doomed.line().await, "", "its connection ends");
    });
    assert_eq!(down_message(&cluster, 1), "shard 1 told to panic");

    overlap::block_on(async move {
        for n in [0, 2] {
            let mut client = Client::on_shard(addr, n).await;
            let other = 2 - n;
            let key = key_of(other, SHARDS, "alive");
            assert_eq!(client.ask(&format!("INCR {key} 5")).await, "5");
            let dead_key = key_of(1, SHARDS, "dead");
            assert_eq!(
                client.ask(&format!("INCR {dead_key} 5")).await,
                "ERR shard 1 is down"
            );
            assert_eq!(
                client.ask(&format!("GET {dead_key}")).await,
                "ERR shard 1 is down"
            );
            assert_eq!(
                client.ask(&format!("BULK {dead_key} 10")).await,
                "ERR shard 1 is down"
            );
            assert_eq!(client.ask("MOVE 1").await, "MOVED 1");
            // The move failed (shard 1 has no inbox): the connection is closed.
            assert_eq!(client.line().await, "");
        }
        // New clients land on the live shards only.
        for _ in 0..8 {
            let who = Client::connect(addr).await.ask("WHO").await;
            assert!(who == "0" || who == "2", "{who}");
        }
    });
    let stats = cluster.ask(Command::Stats);
    assert!(
        stats[0].is_some() && stats[1].is_none() && stats[2].is_some(),
        "{stats:?}"
    );

    // The dead shard's handle: every kind of work is refused at once, none hangs.
    let handle = cluster.handles[1].clone();
    let made = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let m = made.clone();
    let spawned = handle.spawn_with(move || {
        m.store(true, std::sync::atomic::Ordering::SeqCst);
        async {}
    });
    assert!(handle.block_on(spawned).unwrap_err().is_cancelled());
    assert!(
        !made.load(std::sync::atomic::Ordering::SeqCst),
        "the maker never ran"
    );
    assert!(handle
        .block_on(handle.spawn(async { 1 }))
        .unwrap_err()
        .is_cancelled());
    assert!(handle
        .block_on(handle.spawn_blocking(|| 1))
        .unwrap_err()
        .is_cancelled());
    assert_eq!(
        handle.block_on(async { 7 }),
        7,
        "a future that needs no runtime runs"
    );

    let last = cluster.shutdown();
    assert!(
        last[0].is_some() && last[1].is_none() && last[2].is_some(),
        "{last:?}"
    );
}

#[test]
fn handles_kept_past_a_shutdown_refuse_work_from_any_thread() {
    let cluster = Cluster::start(2);
    let handles = cluster.handles.clone();
    cluster.shutdown();
    let refused = std::thread::spawn(move || {
        handles
            .iter()
            .map(|h| {
                let a = h.block_on(h.spawn(async { 1 })).unwrap_err().is_cancelled();
                let b = h
                    .block_on(h.spawn_blocking(|| 1))
                    .unwrap_err()
                    .is_cancelled();
                a && b
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(refused.join().unwrap(), [true, true]);
}

#[test]
fn timers_on_a_paused_shard_leave_the_other_shards_clocks_alone() {
    let cluster = Cluster::start(2);
    cluster.ask(|reply| Command::Pause(0, reply));
    let hour = Duration::from_secs(3600);
    let on_paused = cluster.handles[0].spawn_with(move || overlap::time::sleep(hour));
    let on_real = cluster.handles[1].spawn_with(move || overlap::time::sleep(hour));
    let short = cluster.handles[1].spawn_with(|| overlap::time::sleep(Duration::from_millis(1)));
    let handle = cluster.handles[0].clone();
    // The paused shard, idle, jumps to its timer's deadline; the other's hour is real.
    handle.block_on(on_paused).unwrap();
    handle.block_on(short).unwrap();
    assert!(!on_real.is_finished());
    on_real.abort();
    assert!(handle.block_on(on_real).unwrap_err().is_cancelled());
    // The paused shard still serves (it sleeps in epoll while no timer is due).
    let addr = cluster.addr;
    overlap::block_on(async move {
        let mut client = Client::on_shard(addr, 0).await;
        assert_eq!(client.ask("INCR t 2").await, "2");
    });
    cluster.shutdown();
}

#[test]
fn a_coordinated_shutdown_after_a_panic_leaves_no_thread_task_or_fd() {
    run_in_child(
        "a_coordinated_shutdown_after_a_panic_leaves_no_thread_task_or_fd",
        || {
            let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
            let (fds, threads_before) = (open_fds(), threads());
            let cluster = Cluster::start(3);
            let addr = cluster.addr;
            // Idle connections on every shard; then shard 2 panics, so its runtime is dropped
            // while it unwinds, with a connection and a listener open, before the stop comes.
            let idle = overlap::block_on(async move {
                let mut idle = Vec::new();
                for n in 0..3 {
                    let mut client = Client::on_shard(addr, n).await;
                    let key = key_of((n + 1) % 3, 3, "last");
                    assert_eq!(client.ask(&format!("BULK {key} 100")).await, "5050");
                    idle.push(client.conn.into_inner().into_std().unwrap());
                }
                let mut doomed = Client::on_shard(addr, 2).await;
                doomed.send("PANIC\n").await;
                assert_eq!(doomed.line().await, "");
                idle
            });
            down_message(&cluster, 2);
            let last = cluster.shutdown();
            assert!(last[2].is_none(), "{last:?}");
            for stats in &last[..2] {
                let stats = stats.unwrap();
                assert_eq!(
                    (stats.open, stats.tasks),
                    (0, 1),
                    "only the drain: {stats:?}"
                );
                assert_eq!(stats.registered_fds, 0, "{stats:?}");
            }
            // Each idle client reads the end of its stream.
            for mut conn in idle {
                conn.set_nonblocking(false).unwrap();
                let mut rest = Vec::new();
                std::io::Read::read_to_end(&mut conn, &mut rest).unwrap();
                assert!(rest.is_empty(), "{rest:?}");
            }
            assert!(
                support::wait_until(HANG, || threads() == threads_before),
                "threads left: {}",
                threads() - threads_before
            );
            assert_eq!(open_fds(), fds);
        },
    );
}
