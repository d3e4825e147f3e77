//! A user's pre-fork worker pool master in the style of gunicorn, php-fpm or unicorn,
//! sketched as one would for tokio and then written for overlap. The master binds a TCP
//! listener on loopback (and a Unix one in a temp dir), then starts N worker processes (this
//! test binary run again, `worker.rs`) that inherit the listeners at fds 3 and 4 and all
//! accept on them, one connection at a time, serving a line protocol (`protocol.rs`: `PID`,
//! `ECHO x`, `SLEEP ms`, `SPAWN`, `CRASH`, `HANG`). Each worker leads a process group of
//! its own that dies with it (`launch.rs`), and beats on a socketpair (`heartbeat.rs`); the
//! master (`master.rs`, behind the handle in `pool.rs`) restarts crashed workers with a
//! back-off per slot (`backoff.rs`), gives up on a slot whose workers never get ready,
//! replaces a worker that served its `max_requests`, kills the group of one whose
//! heartbeat stops, reloads gracefully (new workers ready first, then the old ones finish
//! their request in flight), shuts down with a deadline after which stragglers are killed,
//! and, made a subreaper (`process::set_child_subreaper`), reaps what dead workers' groups leave. More tests in
//! `tests_lifecycle.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! // Master: bind once, hand the listener to every worker at fd 3.
//! let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;     // heartbeat
//! let high = fcntl(tcp.as_raw_fd(), F_DUPFD_CLOEXEC, 100);           // nix
//! let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
//! cmd.env("PREFORK_WORKER", "1").process_group(0).kill_on_drop(true)
//!    .stderr(Stdio::piped());
//! unsafe { cmd.pre_exec(move || { dup2(high, 3)?; dup2(beat, 4)?; Ok(()) }) };
//! let mut child = cmd.spawn()?;
//! let pgid = child.id().unwrap() as i32;           // killpg(pgid) by hand: tokio has no
//! let mut beats = BufReader::new(UnixStream::from_std(ours)?).lines();   // group kill
//! loop {
//!     tokio::select! {
//!         status = child.wait() => break status,    // reaps: a later killpg(pgid) may hit
//!                                                   // another group that took the id
//!         line = timeout_at(last + beat_timeout, beats.next_line()) => match line {
//!             Err(_) => { killpg(pgid, SIGKILL); }  // hung
//!             Ok(Ok(Some(_))) => last = Instant::now(),
//!             _ => {}
//!         },
//!         Some(cmd) = cmds.recv() => match cmd { Term => kill(pid, SIGTERM), Kill => killpg(..) },
//!     }
//! }
//! // Restarts: sleep(backoff.failed()).await, then spawn again; give up after N in a row.
//! // Reload: spawn the new generation, wait for each `ready`, SIGTERM the old, timeout
//! // (graceful) on their exits, then killpg the stragglers.
//! // Subreaper: prctl(PR_SET_CHILD_SUBREAPER) + signal(SignalKind::child()) and a
//! // `waitpid(-1, WNOHANG)` loop, which steals tokio's own children's statuses.
//!
//! // Worker: adopt fd 3, serve one connection at a time, beat, stop on SIGTERM.
//! let tcp = TcpListener::from_std(unsafe { std::net::TcpListener::from_raw_fd(3) })?;
//! let mut term = signal(SignalKind::terminate())?;
//! loop {
//!     let (s, _) = tokio::select! { r = tcp.accept() => r?, _ = term.recv() => return 0 };
//!     serve_one(s, &mut term).await;  // finishes the request in flight, then closes
//! }
//! ```
//!
//! The tests check, against real worker processes on loopback and a Unix socket: every
//! worker serving (three connections held open see three distinct pids, and a fourth waits
//! in the backlog for the first idle worker); a crash replaced while the listener keeps
//! serving; recycling after `max_requests`; bad requests answered with exact `ERR` lines,
//! the worker serving on; a client vanishing mid-request; a worker that cannot start
//! reported with its stderr after exactly three attempts; a hung worker caught by its
//! missing heartbeat and replaced; the heartbeat's timing, exactly, on the paused clock;
//! a graceful reload during which a request in flight on an old worker gets its whole
//! answer; a shutdown whose deadline kills a hung worker and its grandchild, reaped by the
//! subreaper master; and no fd left in the master after a whole cycle.
//!
//! What porting it found missing: nothing in overlap. It had what the tokio version
//! wrote by hand: `Child::send_signal_to_group` and `kill_group_on_drop` (through the pidfd,
//! so a reaped worker's group id cannot hit another group, where tokio users call `killpg`
//! on a pid they no longer own), `Child::exited` (waits without reaping, so the group id
//! stays the worker's until its stragglers are killed), `Child::send_signal` for the
//! `SIGTERM`, `process::reap_orphans` (the subreaper's loop without stealing the statuses of
//! overlap's own children, which tokio's users get wrong with `waitpid(-1)`), `TryFrom<OwnedFd>`
//! on the listeners (checking the inherited fd is the kind expected), and
//! `sync::CancellationToken`. As with any runtime, putting an fd at a fixed number in the
//! child is the user's `pre_exec` + `dup2` (`sys.rs`, the program's only `unsafe`). The port
//! first made itself a subreaper with `libc::prctl` there too; `process::set_child_subreaper`,
//! added after, is the safe call it uses now.

mod support;

#[path = "port_user19_prefork_pool/backoff.rs"]
mod backoff;
#[path = "port_user19_prefork_pool/heartbeat.rs"]
mod heartbeat;
#[path = "port_user19_prefork_pool/launch.rs"]
mod launch;
#[path = "port_user19_prefork_pool/master.rs"]
mod master;
#[path = "port_user19_prefork_pool/pool.rs"]
mod pool;
#[path = "port_user19_prefork_pool/protocol.rs"]
mod protocol;
#[path = "port_user19_prefork_pool/sys.rs"]
mod sys;
#[path = "port_user19_prefork_pool/tests_lifecycle.rs"]
mod tests_lifecycle;
#[path = "port_user19_prefork_pool/worker.rs"]
mod worker;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{TcpStream, UnixStream};
use overlap::sync::mpsc;
use support::{within, TempDir};

use pool::{Config, Event, ExitReason, Pool, PoolError};
use protocol::{EXIT_BAD_SETUP, EXIT_CRASH, EXIT_RECYCLE};

/// A hang guard, never a timing assertion.
pub const HANG: Duration = Duration::from_secs(30);

/// The hidden `main` of a worker process; returns at once otherwise.
#[test]
fn worker_process() {
    worker::worker_main();
}

/// Reads one line (without its newline) byte by byte; `None` at end of file (or a reset:
/// a killed worker's connection).
pub async fn line<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match within(HANG, s.read(&mut b), "a line").await {
            Ok(0) | Err(_) if out.is_empty() => return None,
            Ok(0) | Err(_) => panic!("end of stream mid-line after {out:?}"),
            Ok(_) if b[0] == b'\n' => return Some(String::from_utf8(out).unwrap()),
            Ok(_) => out.push(b[0]),
        }
    }
}

/// Sends `req` and a newline, returns the reply line.
pub async fn ask<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &str) -> String {
    s.write_all(format!("{req}\n").as_bytes()).await.unwrap();
    line(s).await.expect("a reply")
}

/// A connection's worker pid.
pub async fn pid_over<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> u32 {
    ask(s, "PID").await.parse().unwrap()
}

/// A new TCP connection to the pool.
pub async fn connect(pool: &Pool) -> TcpStream {
    TcpStream::connect(pool.tcp_addr).await.unwrap()
}

/// Starts `cfg`'s pool, returning it with its events.
pub async fn start(cfg: Config) -> (Pool, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let pool = within(HANG, Pool::start(cfg, tx), "the pool to start")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (pool, rx)
}

/// The next event, under the hang guard.
pub async fn next_event(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    within(HANG, events.recv(), "an event").await.unwrap()
}

/// Waits for a replacement's `Ready` in `slot`, returning its pid; other events on the
/// way are returned too, in order.
pub async fn ready_after(events: &mut mpsc::UnboundedReceiver<Event>, slot: usize) -> u32 {
    loop {
        match within(HANG, events.recv(), "a replacement").await.unwrap() {
            Event::Ready { slot: s, pid, .. } if s == slot => return pid,
            Event::Ready { .. } => {}
            other => panic!("unexpected {other:?} before slot {slot} was ready"),
        }
    }
}

/// Drains the first start's `Ready`s (`n` of them).
pub async fn started(events: &mut mpsc::UnboundedReceiver<Event>, n: usize) -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    for _ in 0..n {
        match within(HANG, events.recv(), "the first Ready")
            .await
            .unwrap()
        {
            Event::Ready {
                pid, generation: 1, ..
            } => pids.insert(pid),
            other => panic!("unexpected {other:?} while starting"),
        };
    }
    pids
}

#[overlap::test]
async fn every_worker_serves_and_a_fourth_client_waits_for_an_idle_one() {
    let dir = TempDir::new("user19-serve");
    let mut cfg = Config::new(3);
    cfg.unix_dir = Some(dir.path().to_owned());
    let (pool, mut events) = start(cfg).await;
    let pids: BTreeSet<u32> = pool.pids().await.into_iter().collect();
    assert_eq!(started(&mut events, 3).await, pids);
    assert_eq!(pids.len(), 3);
    // A worker serves one connection at a time: three held open are three workers.
    let mut held = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        let mut c = connect(&pool).await;
        seen.insert(pid_over(&mut c).await);
        held.push(c);
    }
    assert_eq!(seen, pids);
    // A fourth waits in the shared backlog (over the Unix listener, the same workers)...
    let mut fourth = UnixStream::connect(pool.unix_path.as_ref().unwrap())
        .await
        .unwrap();
    fourth.write_all(b"ECHO over unix\n").await.unwrap();
    // ...until one worker's client leaves: that worker takes it.
    let mut first = held.remove(0);
    let freed = pid_over(&mut first).await;
    drop(first);
    assert_eq!(line(&mut fourth).await.as_deref(), Some("over unix"));
    assert_eq!(pid_over(&mut fourth).await, freed);
    // Two requests in one write, answered in order.
    held[0].write_all(b"ECHO a\nECHO b\n").await.unwrap();
    assert_eq!(
        (line(&mut held[0]).await, line(&mut held[0]).await),
        (Some("a".into()), Some("b".into()))
    );
    drop((held, fourth));
    let retired = pool.shutdown(HANG).await;
    assert_eq!(retired.len(), 3);
    assert!(
        retired.iter().all(|r| r.status.code() == Some(0)),
        "{retired:?}"
    );
    assert_eq!(retired.iter().map(|r| r.pid).collect::<BTreeSet<_>>(), pids);
}

#[overlap::test]
async fn a_crashed_worker_is_replaced_and_the_listener_keeps_serving() {
    let (pool, mut events) = start(Config::new(2)).await;
    let before = pool.pids().await;
    started(&mut events, 2).await;
    let mut c = connect(&pool).await;
    let crashed = pid_over(&mut c).await;
    let slot = before.iter().position(|&p| p == crashed).unwrap();
    c.write_all(b"CRASH\n").await.unwrap();
    assert_eq!(line(&mut c).await, None, "no answer: the worker is gone");
    match next_event(&mut events).await {
        Event::Exited {
            slot: s,
            pid,
            status,
            reason: ExitReason::Crashed,
            ..
        } => assert_eq!((s, pid, status.code()), (slot, crashed, Some(EXIT_CRASH))),
        other => panic!("{other:?}"),
    }
    let replacement = ready_after(&mut events, slot).await;
    assert!(!before.contains(&replacement));
    let mut now = before.clone();
    now[slot] = replacement;
    assert_eq!(pool.pids().await, now);
    // Both slots serve: two connections held open see the survivor and the replacement.
    let (mut a, mut b) = (connect(&pool).await, connect(&pool).await);
    let seen: BTreeSet<u32> = [pid_over(&mut a).await, pid_over(&mut b).await].into();
    assert_eq!(seen, now.iter().copied().collect());
    drop((a, b));
    pool.shutdown(HANG).await;
}

#[overlap::test]
async fn a_worker_is_recycled_after_max_requests() {
    let mut cfg = Config::new(1);
    cfg.worker.max_requests = Some(3);
    let (pool, mut events) = start(cfg).await;
    started(&mut events, 1).await;
    let mut c = connect(&pool).await;
    // A bad request is answered but not counted.
    assert!(ask(&mut c, "NOPE").await.starts_with("ERR unknown command"));
    assert_eq!(ask(&mut c, "ECHO one").await, "one");
    assert_eq!(ask(&mut c, "ECHO two").await, "two");
    let old = pid_over(&mut c).await;
    assert_eq!(line(&mut c).await, None, "closed after the third answer");
    match next_event(&mut events).await {
        Event::Exited {
            pid,
            status,
            reason: ExitReason::Recycled,
            ..
        } => assert_eq!((pid, status.code()), (old, Some(EXIT_RECYCLE))),
        other => panic!("{other:?}"),
    }
    let new = ready_after(&mut events, 0).await;
    assert_ne!(new, old);
    let mut c = connect(&pool).await;
    assert_eq!(pid_over(&mut c).await, new);
    drop(c);
    pool.shutdown(HANG).await;
}

#[overlap::test]
async fn bad_requests_get_a_clear_error_and_the_worker_keeps_serving() {
    let (pool, mut events) = start(Config::new(1)).await;
    started(&mut events, 1).await;
    let pid = pool.pids().await[0];
    let mut c = connect(&pool).await;
    let cases = [
        (
            "FROB",
            "ERR unknown command \"FROB\" (try PID, ECHO, SLEEP, SPAWN, CRASH, HANG)",
        ),
        (
            "PID please",
            "ERR unknown command \"PID please\" (try PID, ECHO, SLEEP, SPAWN, CRASH, HANG)",
        ),
        ("ECHO", "ERR ECHO wants an argument"),
        ("SLEEP", "ERR SLEEP wants an argument"),
        (
            "SLEEP soon",
            "ERR SLEEP wants milliseconds (0..=60000), got \"soon\"",
        ),
        (
            "SLEEP 60001",
            "ERR SLEEP wants milliseconds (0..=60000), got \"60001\"",
        ),
        ("", "ERR empty request"),
        ("ECHO crlf\r", "crlf"),
    ];
    for (req, want) in cases {
        assert_eq!(ask(&mut c, req).await, want, "for {req:?}");
    }
    c.write_all(b"ECHO \xff\xfe\n").await.unwrap();
    assert_eq!(
        line(&mut c).await.as_deref(),
        Some("ERR request is not UTF-8")
    );
    assert_eq!(pid_over(&mut c).await, pid);
    // A line past the limit ends that connection only.
    c.write_all(&[b'x'; 2000]).await.unwrap();
    assert_eq!(
        line(&mut c).await.as_deref(),
        Some("ERR line too long (over 1024 bytes)")
    );
    assert_eq!(line(&mut c).await, None);
    let mut c = connect(&pool).await;
    assert_eq!(
        pid_over(&mut c).await,
        pid,
        "the same worker, still serving"
    );
    drop(c);
    assert!(events.try_recv().is_err(), "no worker exited");
    pool.shutdown(HANG).await;
}

#[overlap::test]
async fn a_client_vanishing_mid_request_leaves_the_worker_serving() {
    let (pool, mut events) = start(Config::new(1)).await;
    started(&mut events, 1).await;
    let pid = pool.pids().await[0];
    let mut c = connect(&pool).await;
    assert_eq!(ask(&mut c, "SLEEP 100").await, "SLEEPING 100");
    drop(c); // gone before the answer: the worker's write fails, it accepts again
    let mut c = connect(&pool).await;
    assert_eq!(ask(&mut c, "ECHO next").await, "next");
    assert_eq!(pid_over(&mut c).await, pid);
    drop(c);
    assert!(events.try_recv().is_err(), "no worker exited");
    let retired = pool.shutdown(HANG).await;
    assert_eq!(retired[0].status.code(), Some(0));
}

#[overlap::test]
async fn a_worker_that_cannot_start_is_reported_after_bounded_attempts() {
    let mut cfg = Config::new(1);
    cfg.worker
        .extra_env
        .push(("PREFORK_MAX_REQUESTS".into(), "lots".into()));
    let (tx, mut events) = mpsc::unbounded_channel();
    let err = within(HANG, Pool::start(cfg, tx), "the pool to give up")
        .await
        .unwrap_err();
    let PoolError::WontStart {
        slot,
        attempts,
        last_status,
        ref stderr,
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!((slot, attempts), (0, 3));
    assert_eq!(last_status.and_then(|s| s.code()), Some(EXIT_BAD_SETUP));
    assert_eq!(
        stderr,
        "prefork worker: bad PREFORK_MAX_REQUESTS=\"lots\": invalid digit found in string"
    );
    assert_eq!(
        err.to_string(),
        "worker slot 0 failed to start 3 times in a row (last: exit status: 2): \
         prefork worker: bad PREFORK_MAX_REQUESTS=\"lots\": invalid digit found in string"
    );
    // Exactly three workers were started, each reported; then the master stopped.
    let mut failed = 0;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::Exited {
                reason: ExitReason::FailedToStart,
                ..
            } => failed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(failed, 3);
}

#[overlap::test]
async fn a_hung_worker_is_caught_by_its_missing_heartbeat_and_replaced() {
    let mut cfg = Config::new(1);
    cfg.beat_timeout = Duration::from_millis(1500);
    let (pool, mut events) = start(cfg).await;
    started(&mut events, 1).await;
    let mut c = connect(&pool).await;
    let hung = pid_over(&mut c).await;
    c.write_all(b"HANG\n").await.unwrap();
    match next_event(&mut events).await {
        Event::HeartbeatMissed { slot, pid } => assert_eq!((slot, pid), (0, hung)),
        other => panic!("{other:?}"),
    }
    match next_event(&mut events).await {
        Event::Exited {
            pid,
            status,
            reason: ExitReason::Hung,
            ..
        } => assert_eq!((pid, status.signal()), (hung, Some(libc::SIGKILL))),
        other => panic!("{other:?}"),
    }
    assert_eq!(line(&mut c).await, None, "its client is cut");
    let new = ready_after(&mut events, 0).await;
    let mut c = connect(&pool).await;
    assert_eq!(pid_over(&mut c).await, new);
    drop(c);
    pool.shutdown(HANG).await;
}
