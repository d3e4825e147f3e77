//! A user's database client with a connection pool (deadpool or bb8 over a Postgres-like
//! wire protocol), sketched as one would for tokio and then written for overlap, against a
//! fake database server on loopback (`port_user7_db_pool/server.rs`). The protocol
//! (`wire.rs`) is length-prefixed binary: a startup with a password, then queries answered
//! by rows, a completion or an error, and a ready-for-query; a `sleep` query that a cancel
//! request, sent on a connection of its own with the backend's key, cuts short.
//!
//! The tokio version, as a user writes it:
//!
//! ```text
//! struct Connection { io: BufStream<TcpStream>, key: BackendKey, in_exchange: bool, .. }
//! async fn query(&mut self, sql: &str) -> Result<Vec<String>, DbError> {
//!     self.in_exchange = true;                    // broken unless we reach `Z`
//!     self.io.write_u8(b'Q').await?; self.io.write_u32(len).await?;
//!     self.io.write_all(sql.as_bytes()).await?; self.io.flush().await?;
//!     loop { let tag = self.io.read_u8().await?; let len = self.io.read_u32().await?;
//!            self.io.read_exact(&mut body).await?; .. if tag == b'Z' { break } }
//!     self.in_exchange = false; ..
//! }
//! struct Pool { idle: Mutex<VecDeque<Connection>>, permits: Arc<Semaphore>, .. }
//! async fn get(&self) -> Result<PooledConnection, DbError> {
//!     tokio::time::timeout(self.cfg.checkout_timeout, async {
//!         let permit = self.permits.clone().acquire_owned().await?;
//!         // pop an idle one and ping it, or connect
//!     }).await.map_err(|_| DbError::Timeout)?
//! }
//! impl Drop for PooledConnection {          // back to the pool, unless broken
//!     fn drop(&mut self) { if !conn.is_broken() { pool.idle.lock().push_back(conn) } }
//! }
//! tokio::spawn(async move { let mut tick = interval(reap_every); loop { tick.tick().await;
//!     /* close idle connections past max_lifetime or idle_timeout, top up min_idle */ } });
//! tokio::select! { rows = pool.query(sql) => .., _ = shutdown.notified() => return };
//! ```
//!
//! The key question is a query future dropped mid-flight (a timeout while it writes a large
//! query, a `select!` that a shutdown wins while it reads rows): the stream is then in the
//! middle of a message, and a pool that takes the connection back hands the next user the
//! old query's answer. As overlap's `net` docs say (and tokio's), `write_all`, `read_exact`
//! and the number helpers are not cancel-safe: what they had taken or sent is gone. The
//! natural user code marks the connection broken when an exchange starts and clears the
//! mark when its `Z` is read, so the guard's drop closes a connection whose exchange was
//! cut; the checkout wraps a connection in its guard *before* the health check, so a
//! checkout timed out during the ping discards it too. The other way, draining, is
//! tokio-postgres's design (`pipelined.rs`): a task owns the connection and runs requests
//! queued on an `mpsc` channel, each answered through a `oneshot`; a caller that gives up
//! drops its `oneshot::Receiver`, and the task reads the answer to its end all the same
//! (and skips a request whose receiver is gone before it starts).
//!
//! The tests check exact rows for 200 concurrent queries through a pool of 8 (the server
//! never sees more than 8 sessions), a checkout timing out at its exact virtual deadline
//! while the pool is exhausted and a waiter getting the connection given back (at the
//! timeout's very instant too, with no permit lost), a waiting checkout failing at once when
//! the pool closes, queries (a large one, a many-rowed one, a health-checked checkout)
//! dropped after every number of polls from 1 on never leaving a poisoned connection in the
//! pool (every pooled connection then answers its own query exactly), a server restart that resets every connection (the
//! query in flight fails, the idle ones fail their health check, the pool reconnects; a
//! server down refuses, and the pool serves again once it is back), a
//! session the server ends right after its answer (seen by a `try_read` check and by the
//! next checkout's ping), the cancel request (a forged key ignored, the real one ending the
//! query with the server's error and the connection reused), the reaper on a paused clock,
//! and a shutdown (a query in a `select!` against a shutdown `Notify`, then `close`)
//! leaving no fd and no task; and, for the connection task, queries dropped after every
//! number of polls (alone, or next to another caller's) leaving its one connection in
//! step, every later answer exact.
//!
//! What the port changed, against tokio: `Rc`, `Cell` and `RefCell` for `Arc`, atomics and
//! the idle list's `Mutex` (tasks need not be `Send`; the list is never held across an
//! `.await`), `OwnedSemaphorePermit` from an `Rc<Semaphore>`; the number helpers come from
//! `AsyncReadIntExt`/`AsyncWriteIntExt`; `select!` is futures' (branches `.fuse()`d). The
//! pool's code is otherwise tokio's line for line, and overlap behaved as tokio's does.
//! The cancel-safety docs of `net` said what a dropped `write_all`/`read_exact` leaves, but
//! `BufStream`'s said nothing of a write or flush cut short (whether a flush resumes, whether
//! a frame can be half in the buffer); they say it now.

mod support;

#[path = "port_user7_db_pool/client.rs"]
mod client;
#[path = "port_user7_db_pool/pipelined.rs"]
mod pipelined;
#[path = "port_user7_db_pool/pool.rs"]
mod pool;
#[path = "port_user7_db_pool/server.rs"]
mod server;
#[path = "port_user7_db_pool/wire.rs"]
mod wire;

use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use client::{Connection, DbError};
use overlap::future::{join_all, FutureExt};
use overlap::sync::Notify;
use overlap::time::{self, sleep, Instant};
use pipelined::Client;
use pool::{Config, Pool};
use server::{Server, CANCELED};
use support::{open_fds, poll_once, run_in_child, settle, until, within};

const HANG: Duration = Duration::from_secs(20);

fn rows(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}:{i}")).collect()
}

/// Checks out every connection the pool may hold at once and runs a query on each: each
/// gets its own answer, so none is in the middle of an older exchange.
async fn every_connection_answers(pool: &Pool, max: usize, round: usize) {
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(pool.get().await.unwrap());
    }
    for (i, conn) in held.iter_mut().enumerate() {
        let want = format!("r{round}c{i}");
        let got = conn.query(&format!("echo {want}")).await;
        assert_eq!(got.unwrap(), [want], "round {round}, connection {i}");
    }
}

#[overlap::test]
async fn two_hundred_queries_through_a_pool_of_eight_get_exact_rows() {
    let server = Server::start().await;
    let pool = Pool::new(Config::new(server.addr, 8));
    let queries = (0..200).map(|i| {
        let pool = pool.clone();
        overlap::spawn(async move {
            let n = i % 7;
            let got = pool.query(&format!("rows {n} q{i}")).await.unwrap();
            assert_eq!(got, rows(&format!("q{i}"), n), "query {i}");
        })
    });
    let all = join_all(queries.collect::<Vec<_>>());
    for res in within(HANG, all, "200 queries").await {
        res.unwrap();
    }
    // Each query, and a health check for each checkout that found an idle connection.
    assert_eq!(server.log.queries.get(), 200 + (200 - 8));
    assert_eq!(pool.stats().opened.get(), 8);
    assert_eq!(server.log.most_live.get(), 8);
    assert_eq!(pool.idle(), 8);
    let err = pool.query("frobnicate").await.unwrap_err();
    assert!(
        matches!(&err, DbError::Server(m) if m == "syntax error at or near \"frobnicate\""),
        "{err}"
    );
    assert_eq!(pool.idle(), 8, "a server error leaves the connection good");
    pool.close().await;
}

#[overlap::test(start_paused = true)]
async fn a_checkout_times_out_at_its_deadline_when_the_pool_is_exhausted() {
    let server = Server::start().await;
    let pool = Pool::new(Config::new(server.addr, 2));
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let start = Instant::now();
    let err = pool.get().await.err().unwrap();
    assert!(matches!(err, DbError::Timeout), "{err}");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    // A waiter gets the connection given back: the same backend, no new one.
    let pid = a.backend_pid();
    let waiter = {
        let pool = pool.clone();
        overlap::spawn(async move { pool.get().await.unwrap().query("whoami").await.unwrap() })
    };
    sleep(Duration::from_secs(1)).await;
    drop(a);
    assert_eq!(waiter.await.unwrap(), [pid.to_string()]);
    assert_eq!(pool.stats().opened.get(), 2);
    // A connection given back just before a checkout's timeout fires, or at the very same
    // instant: the first gets it, the second may or may not (timers of one instant fire in
    // no promised order), and either way no permit is lost: with `b` still out, the other
    // connection can then be checked out at once.
    for give_back_after in [Duration::from_millis(4999), Duration::from_secs(5)] {
        let a = pool.get().await.unwrap();
        let giver = overlap::spawn(async move {
            sleep(give_back_after).await;
            drop(a);
        });
        overlap::yield_now().await;
        let start = Instant::now();
        let res = pool.get().await;
        if give_back_after < Duration::from_secs(5) {
            assert_eq!(res.unwrap().backend_pid(), pid);
            assert_eq!(start.elapsed(), give_back_after);
        } else {
            assert_eq!(start.elapsed(), Duration::from_secs(5));
            drop(res);
        }
        giver.await.unwrap();
        let before = Instant::now();
        let again = pool.get().await;
        assert!(
            again.is_ok() && before.elapsed().is_zero(),
            "a permit was lost"
        );
    }
    // A checkout waiting when the pool closes fails at once.
    let a = pool.get().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        overlap::spawn(async move { pool.get().await.err().unwrap() })
    };
    settle().await;
    let closing = Instant::now();
    pool.close().await;
    assert!(matches!(waiter.await.unwrap(), DbError::Closed));
    assert_eq!(closing.elapsed(), Duration::ZERO);
    drop((a, b));
    assert!(matches!(pool.get().await.err().unwrap(), DbError::Closed));
    assert_eq!(pool.stats().live.get(), 0);
}

/// Drops `fut` after `k` polls (each followed by a turn of the runtime), unless it ends
/// first: whether it ended.
async fn poll_k_times<F: std::future::Future>(fut: F, k: usize) -> bool {
    let mut fut = pin!(fut);
    for _ in 0..k {
        if poll_once(fut.as_mut()).await.is_ready() {
            return true;
        }
        overlap::yield_now().await;
    }
    false
}

#[overlap::test]
async fn queries_dropped_after_any_number_of_polls_never_poison_the_pool() {
    let server = Server::start().await;
    let mut cfg = Config::new(server.addr, 2);
    cfg.min_idle = 2;
    let pool = Pool::new(cfg);
    let big = format!("len {}", "x".repeat(2 << 20));
    let mut cut = 0;
    let body = async {
        for k in 1..=40 {
            // A large query (cut while it is written), many rows (cut while they are
            // read), and a checkout (cut during its health check or its connect).
            let ended = poll_k_times(pool.query(&big), k).await;
            cut += usize::from(!ended);
            let ended = poll_k_times(pool.query(&format!("rows 2000 k{k}")), k).await;
            cut += usize::from(!ended);
            let ended = poll_k_times(pool.get(), k).await;
            cut += usize::from(!ended);
            every_connection_answers(&pool, 2, k).await;
        }
    };
    within(HANG, body, "cut queries").await;
    assert!(cut >= 40, "only {cut} futures were cut");
    let stats = pool.stats();
    assert!(stats.discarded_broken.get() > 0);
    assert!(stats.live.get() <= 2, "{stats:?}");
    // And the large query, uncut, gets its exact answer.
    assert_eq!(pool.query(&big).await.unwrap(), [big.len().to_string()]);
    pool.close().await;
}

#[overlap::test]
async fn a_connection_task_drains_the_answers_of_queries_dropped_after_any_number_of_polls() {
    let server = Server::start().await;
    let (client, task) = Client::connect(server.addr, server::PASSWORD)
        .await
        .unwrap();
    let pid = client.query("whoami").await.unwrap();
    let big = format!("len {}", "x".repeat(256 << 10));
    let body = async {
        for k in 1..=40 {
            poll_k_times(client.query(&big), k).await;
            poll_k_times(client.query(&format!("rows 500 k{k}")), k).await;
            // Three callers at once, two of them cut (the last maybe while it waits to be
            // queued): the other still gets its own rows.
            let (cut, whole) = (format!("rows 3 cut{k}"), format!("rows 3 whole{k}"));
            let (_, whole, _) = overlap::join!(
                poll_k_times(client.query(&cut), k),
                client.query(&whole),
                poll_k_times(client.query(&cut), k),
            );
            assert_eq!(whole.unwrap(), rows(&format!("whole{k}"), 3));
            assert_eq!(
                client.query(&format!("echo {k}")).await.unwrap(),
                [k.to_string()]
            );
        }
    };
    within(HANG, body, "cut queries").await;
    // One connection all along, never left mid-message.
    assert_eq!(client.query("whoami").await.unwrap(), pid);
    assert_eq!(server.log.accepted.get(), 1);
    drop(client);
    let (ran, skipped) = within(HANG, task, "the connection task").await.unwrap();
    assert_eq!(ran, server.log.queries.get());
    assert!(skipped > 0, "no request was given up before it ran");
    until(|| server.log.terminated.get() == 1, "the goodbye").await;
}

#[overlap::test]
async fn a_query_cut_by_a_shutdown_select_closes_its_connection() {
    let server = Server::start().await;
    let pool = Pool::new(Config::new(server.addr, 1));
    let pid = pool.query("whoami").await.unwrap();
    let shutdown = Rc::new(Notify::new());
    let worker = {
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        overlap::spawn(async move {
            overlap::select! {
                res = pool.query("sleep 60000").fuse() => Some(res),
                _ = shutdown.notified().fuse() => None,
            }
        })
    };
    until(|| server.log.sleeping.get() == 1, "the query to start").await;
    shutdown.notify_waiters();
    assert!(worker.await.unwrap().is_none());
    assert_eq!(pool.stats().discarded_broken.get(), 1);
    // The next query gets a new backend, and its own answer, not the old query's.
    let now = pool.query("whoami").await.unwrap();
    assert_ne!(now, pid);
    assert_eq!(pool.query("echo after").await.unwrap(), ["after"]);
    pool.close().await;
}

#[overlap::test]
async fn a_server_restart_resets_every_connection_and_the_pool_recovers() {
    let server = Server::start().await;
    let mut cfg = Config::new(server.addr, 4);
    cfg.min_idle = 4;
    let pool = Pool::new(cfg);
    until(|| pool.idle() == 4, "min_idle connections").await;
    let in_flight = {
        let pool = pool.clone();
        overlap::spawn(async move { pool.query("sleep 60000").await })
    };
    until(|| server.log.sleeping.get() == 1, "the query to start").await;
    assert_eq!(pool.idle_closed(), 0);
    within(HANG, server.restart(), "the restart").await;
    let err = within(HANG, in_flight, "the query in flight")
        .await
        .unwrap()
        .unwrap_err();
    let DbError::Io(e) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        ),
        "{e:?}"
    );
    // The fast check (a `try_read` on each) sees the resets without a round trip.
    assert_eq!(pool.idle_closed(), 3);
    let body = async {
        for i in 0..20 {
            let got = pool.query(&format!("echo again{i}")).await.unwrap();
            assert_eq!(got, [format!("again{i}")]);
        }
    };
    within(HANG, body, "queries after the restart").await;
    let stats = pool.stats();
    assert_eq!(stats.discarded_broken.get(), 1);
    assert_eq!(stats.failed_health_check.get(), 3);
    assert_eq!(stats.opened.get(), 5);
    // Down for a while: a checkout finds its connection reset and the server refusing.
    within(HANG, server.stop(), "the stop").await;
    let err = pool.query("echo down").await.unwrap_err();
    let DbError::Io(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e:?}");
    assert_eq!(stats.failed_health_check.get(), 4);
    assert_eq!(stats.live.get(), 0);
    server.listen_again().await;
    assert_eq!(pool.query("echo up").await.unwrap(), ["up"]);
    pool.close().await;
}

#[overlap::test]
async fn a_connection_the_server_closed_while_idle_fails_its_checks_and_is_replaced() {
    let server = Server::start().await;
    let pool = Pool::new(Config::new(server.addr, 1));
    let mut conn = pool.get().await.unwrap();
    let pid = conn.backend_pid();
    // The server's answer and its close arrive together.
    assert!(conn.query("quit").await.unwrap().is_empty());
    assert!(!conn.is_broken());
    until(|| server.log.live.get() == 0, "the session to end").await;
    assert!(conn.is_closed(), "the fast check missed the close");
    drop(conn);
    assert_eq!(pool.idle_closed(), 1);
    // The next checkout's health check fails, and a new connection takes its place.
    let conn = within(HANG, pool.get(), "a checkout").await.unwrap();
    assert_ne!(conn.backend_pid(), pid);
    assert_eq!(pool.stats().failed_health_check.get(), 1);
    drop(conn);
    pool.close().await;
}

#[overlap::test]
async fn a_cancel_request_ends_the_running_query_and_the_connection_is_reused() {
    let server = Server::start().await;
    let refused = Connection::connect(server.addr, "app", "nope")
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&refused, DbError::Server(m) if m == "password authentication failed for user \"app\""),
        "{refused}"
    );
    let pool = Pool::new(Config::new(server.addr, 1));
    let mut conn = pool.get().await.unwrap();
    let pid = conn.backend_pid();
    let token = conn.cancel_token();
    let log = server.log.clone();
    let canceller = overlap::spawn(async move {
        until(|| log.sleeping.get() == 1, "the query to start").await;
        token.forged().cancel().await.unwrap();
        assert_eq!(log.cancels.get(), 0, "a forged key cancelled");
        assert_eq!(log.sleeping.get(), 1);
        token.cancel().await.unwrap();
    });
    let err = within(HANG, conn.query("sleep 60000"), "the cancel")
        .await
        .unwrap_err();
    assert!(matches!(&err, DbError::Server(m) if m == CANCELED), "{err}");
    canceller.await.unwrap();
    assert_eq!(server.log.cancels.get(), 1);
    assert!(!conn.is_broken());
    assert_eq!(conn.query("whoami").await.unwrap(), [pid.to_string()]);
    drop(conn);
    // Back in the pool, the same backend; a cancel with nothing running cancels nothing.
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.backend_pid(), pid);
    conn.cancel_token().cancel().await.unwrap();
    drop(conn);
    assert_eq!(pool.query("sleep 1").await.unwrap(), ["slept"]);
    pool.close().await;
}

#[overlap::test(start_paused = true)]
async fn the_reaper_closes_idle_and_old_connections_and_keeps_min_idle() {
    let server = Server::start().await;
    let mut cfg = Config::new(server.addr, 4);
    cfg.min_idle = 2;
    cfg.idle_timeout = Duration::from_secs(600);
    cfg.max_lifetime = Duration::from_secs(1800);
    let pool = Pool::new(cfg);
    // The reaper's interval starts now (the paused clock moves only when told, or when
    // every task waits), ticking every 30 s.
    let start = Instant::now();
    until(|| pool.idle() == 2, "min_idle connections").await;
    let held: Vec<_> = join_all((0..3).map(|_| pool.get())).await;
    let held: Vec<_> = held.into_iter().map(Result::unwrap).collect();
    assert_eq!(pool.stats().opened.get(), 3);
    drop(held);
    assert_eq!(pool.idle(), 3);
    // Given back a few milliseconds after the start, all three are 600 s idle at the tick
    // of 630 s: they go then, and two new ones come.
    time::sleep_until(start + Duration::from_secs(629)).await;
    assert_eq!(pool.stats().reaped_idle.get(), 0);
    time::sleep_until(start + Duration::from_secs(631)).await;
    assert_eq!(pool.stats().reaped_idle.get(), 3);
    assert_eq!(pool.stats().opened.get(), 5);
    assert_eq!(pool.idle(), 2);
    // Kept busy, the two still go at their lifetime, at the tick of 630 + 1800 s.
    loop {
        let (a, b) = overlap::join!(pool.get(), pool.get());
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        a.query("ping").await.unwrap();
        b.query("ping").await.unwrap();
        drop((a, b));
        sleep(Duration::from_secs(60)).await;
        if pool.stats().reaped_lifetime.get() > 0 {
            break;
        }
    }
    assert_eq!(start.elapsed(), Duration::from_secs(2431));
    assert_eq!(pool.stats().reaped_lifetime.get(), 2);
    assert_eq!(pool.stats().reaped_idle.get(), 3);
    assert_eq!(pool.stats().opened.get(), 7);
    assert_eq!(server.log.live.get(), pool.stats().live.get());
    pool.close().await;
}

#[test]
fn a_shutdown_closes_every_connection_and_leaves_no_task_or_fd() {
    run_in_child(
        "a_shutdown_closes_every_connection_and_leaves_no_task_or_fd",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let server = Server::start().await;
                let mut cfg = Config::new(server.addr, 4);
                cfg.min_idle = 3;
                let pool = Pool::new(cfg);
                let shutdown = Rc::new(Notify::new());
                let workers: Vec<_> = (0..4)
                    .map(|i| {
                        let (pool, shutdown) = (pool.clone(), shutdown.clone());
                        overlap::spawn(async move {
                            let mut done = 0;
                            loop {
                                let sql = if i == 0 {
                                    "sleep 60000".to_string()
                                } else {
                                    format!("echo w{i}")
                                };
                                overlap::select! {
                                    res = pool.query(&sql).fuse() => {
                                        assert_eq!(res.unwrap(), [format!("w{i}")]);
                                        done += 1;
                                        if done == 50 { break done; }
                                    }
                                    _ = shutdown.notified().fuse() => break done,
                                }
                            }
                        })
                    })
                    .collect();
                until(|| server.log.sleeping.get() == 1, "the sleeper").await;
                for w in workers.into_iter().skip(1) {
                    assert_eq!(w.await.unwrap(), 50);
                }
                shutdown.notify_waiters();
                settle().await;
                pool.close().await;
                assert_eq!(pool.stats().live.get(), 0);
                assert_eq!(pool.stats().discarded_broken.get(), 1);
                // The sleeper's session does not notice its client gone until it writes (as a
                // real server's does not): the stop resets it.
                until(|| server.log.live.get() == 1, "every other session to end").await;
                assert_eq!(server.log.terminated.get(), pool.stats().opened.get() - 1);
                server.stop().await;
                drop((pool, server));
                settle().await;
                assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
                assert_eq!(open_fds(), fds, "fds left open");
            })
        },
    );
}
