//! A user's systemd-style network daemon, sketched as one would for tokio and then written
//! for overlap: socket activation (`port_user15_daemon/activation.rs`), `sd_notify` and
//! the watchdog (`notify.rs`), the configuration file (`config.rs`), the pidfile
//! (`pidfile.rs`), the line protocol served on every socket (`service.rs`), the main loop
//! with reload and drain (`daemon.rs`); the tests' fake service manager and clients
//! (`rig.rs`), the daemon as a socket-activated child process (`child.rs`), and more tests
//! (`tests_more.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! // sd_listen_fds: LISTEN_PID must be us; fds 3..3+LISTEN_FDS, named by LISTEN_FDNAMES.
//! for (fd, name) in passed_fds(&env, std::process::id())? {
//!     let fd = unsafe { OwnedFd::from_raw_fd(fd) };
//!     fcntl(fd, F_SETFD, FD_CLOEXEC);          // children must not inherit it
//!     match name.as_str() {
//!         "tcp" => { let l = std::net::TcpListener::from(fd); l.set_nonblocking(true)?;
//!                    tcp = Some(tokio::net::TcpListener::from_std(l)?) }
//!         "unix" => { let l = std::os::unix::net::UnixListener::from(fd);
//!                     l.set_nonblocking(true)?; unix = Some(tokio::net::UnixListener::from_std(l)?) }
//!         other => bail!("unexpected socket {other}"),
//!     }
//! }
//! // sd_notify: NOTIFY_SOCKET is a path or "@abstract".
//! let notify = tokio::net::UnixDatagram::unbound()?;
//! let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name[1..])?; // '@'
//! // an abstract address, the documented way: through the std socket
//! notify_std.send_to_addr(b"READY=1\nSTATUS=serving", &addr)?;
//! let mut hup = signal(SignalKind::hangup())?;
//! let mut term = signal(SignalKind::terminate())?;
//! let mut watchdog = interval_at(Instant::now() + usec / 2, usec / 2);
//! let draining = CancellationToken::new();
//! let mut conns = JoinSet::new();
//! loop {
//!     tokio::select! {
//!         Ok((s, _)) = tcp.accept() => { conns.spawn(serve(s, cfg.clone(), draining.clone())); }
//!         Ok((s, _)) = unix.accept() => { conns.spawn(serve(s, cfg.clone(), draining.clone())); }
//!         _ = hup.recv() => {
//!             notify("RELOADING=1\nMONOTONIC_USEC=..");
//!             match load(&path).await { Ok(c) => cfg = Arc::new(c), Err(e) => status(e) }
//!             notify("READY=1\nSTATUS=..");
//!         }
//!         _ = term.recv() => break,
//!         _ = watchdog.tick() => notify("WATCHDOG=1"),
//!         Some(_) = conns.join_next() => {}
//!     }
//! }
//! drop((tcp, unix));                            // stop accepting
//! notify("STOPPING=1"); draining.cancel();
//! let drained = timeout(cfg.drain, async { while conns.join_next().await.is_some() {} }).await;
//! conns.abort_all();                            // the deadline passed: cut the rest
//! std::process::exit(if drained.is_ok() { 0 } else { 3 });
//! // serve(): Framed::new(stream, LinesCodec::new_with_max_length(cfg.max_line)), a
//! // select! on draining.cancelled() and framed.next(); FDS spawns `ls /proc/self/fd`.
//! ```
//!
//! The tests check, over real loopback TCP and Unix stream sockets, real notify datagrams
//! and real files in a temp dir, most with the daemon in the test's runtime on the paused
//! clock (its listeners adopted from std sockets through `TryFrom<OwnedFd>` as a manager's
//! fds are, and control events where signals would come), two with the daemon as a
//! socket-activated child process (fds 3 and 4, `LISTEN_PID` its own, real `SIGHUP` and
//! `SIGTERM`, its exit code): the exact `READY=1`/`STATUS=`/`MAINPID=` datagram and every
//! request of the protocol on both sockets; an abstract `NOTIFY_SOCKET` (`@name`) and
//! malformed ones refused; `WATCHDOG=1` exactly once per half `WATCHDOG_USEC`, none when
//! `WATCHDOG_PID` is another's; a reload applying to new connections only (greeting,
//! generation, line limit) with `RELOADING=1` and `MONOTONIC_USEC`; five bad
//! configurations each kept out with the line named in `STATUS=`; lines too long (with or
//! without their newline) and not UTF-8 ending their connection; `max_conns` refusing one
//! more with `ERR busy` and admitting again once one leaves; the drain letting a request in
//! flight finish while idle connections are told `BYE draining` and connects are refused,
//! exit 0; the drain deadline cutting a stuck request, exit 3, no task left; peers leaving
//! mid-line and mid-request; the pidfile refused while its process lives, replaced when it
//! is stale or garbage, removed at exit; the `LISTEN_*`, `WATCHDOG_*` and `NOTIFY_SOCKET`
//! parsing; wrong kinds of fds refused with the socket named; a vanished manager counted
//! and survived; and in the child: a `ls /proc/self/fd` it spawns holding no fd but its own
//! 0-3 (fds 3 and 4 made close-on-exec on adoption), reload and drain by signals, the
//! pidfile naming the child, exit 0; start-up failures (fds meant for another pid, a bad
//! configuration) exiting 1 with the reason in `STATUS=`.
//!
//! What porting it found missing (nothing the daemon could not do; one gap in the docs,
//! fixed; the differences, and what a user has to know):
//!
//! - Neither `sd_listen_fds` nor `sd_notify` is in overlap (nor in tokio: users take the
//!   `listenfd` and `sd-notify` crates, or write the twenty lines each, as here). With
//!   overlap no crate is needed for the notify side: `UnixDatagram::send_to` takes an
//!   abstract address as a path with a leading NUL byte, so `NOTIFY_SOCKET=@name` is
//!   `send_to(buf, "\0name")`, as the `net::unix` module docs say. (With tokio,
//!   whether a leading NUL in a path works depends on mio's address conversion; std's
//!   `SocketAddr::from_pathname` refuses it, so the sketch above takes the documented way,
//!   `from_abstract_name` and `send_to_addr` on a std socket.)
//! - Adopting an fd (`TcpListener::try_from(OwnedFd)`, `from_std`, the same for
//!   `UnixListener`) leaves its close-on-exec flag as it was, as tokio's does: an fd a
//!   service manager passed is inheritable by design, so without the daemon's own
//!   `fcntl(F_SETFD, FD_CLOEXEC)` (which `sd_listen_fds` does for C programs) every child it
//!   spawns holds the listening sockets (the child test sees fds 3 and 4 in `ls`'s list
//!   when that line is removed). overlap's net docs said only that every socket it
//!   *creates* is close-on-exec, and `from_std`'s nothing of the flag: they now say it is
//!   kept as it came (the crate docs, the listeners' `from_std`, with an example setting
//!   it), pinned in `tests/runtime_fds_not_inherited.rs`. The behaviour is unchanged:
//!   making adopted fds close-on-exec would break a program passing one on to a child on
//!   purpose.
//! - `MONOTONIC_USEC=` for `RELOADING=1` needs `CLOCK_MONOTONIC` in microseconds, which
//!   `overlap::time::Instant` cannot give (nor can tokio's or std's): `libc::clock_gettime`.
//!   It reads the real clock also on a paused one.
//! - tokio-util's `LinesCodec`, and overlap's, hand a last line that has no newline to
//!   `decode_eof` as a whole request: a peer gone mid-request would have its half line
//!   served. The daemon wraps the codec (`service::Requests`) to make it an error; same in
//!   both runtimes.
//! - Nothing behaved differently from tokio: `signal(SignalKind::hangup())`/`terminate()`
//!   (made before `READY=1`, so no signal sent after it is lost), `JoinSet` with
//!   `Some(_) = conns.join_next()` disabling its `select!` branch when empty, `abort_all`,
//!   `CancellationToken`, `interval_at`, `Framed` with `SinkExt::send`, `Command::output`
//!   and `Child::send_signal` (which tokio lacks: it would be `libc::kill(child.id())`).
//! - A test-side trap, in any runtime: a socket closed in a multi-threaded test process
//!   stays reachable while another test's child is between `fork` and `exec` (it holds a
//!   copy of every fd, close-on-exec or not), so a connect right after a listener is
//!   dropped may still succeed, and a datagram to a dropped manager's abstract name may
//!   still be queued: the tests wait for the refusal, and remove the manager's socket file
//!   rather than count on the drop.

mod support;

#[path = "port_user15_daemon/activation.rs"]
mod activation;
#[path = "port_user15_daemon/child.rs"]
mod child;
#[path = "port_user15_daemon/config.rs"]
mod config;
#[path = "port_user15_daemon/daemon.rs"]
mod daemon;
#[path = "port_user15_daemon/notify.rs"]
mod notify;
#[path = "port_user15_daemon/pidfile.rs"]
mod pidfile;
#[path = "port_user15_daemon/rig.rs"]
mod rig;
#[path = "port_user15_daemon/service.rs"]
mod service;
#[path = "port_user15_daemon/tests_more.rs"]
mod tests_more;

use std::time::Duration;

use daemon::{Control, EXIT_CUT, EXIT_OK};
use overlap::time;
use rig::{tcp_client, unix_client, HANG};
use support::{settle, until, within};

/// The hidden `main` of the daemon as a child process (see `child.rs`); returns at once
/// in an ordinary run.
#[test]
fn daemon_child() {
    child::child_main();
}

#[overlap::test(start_paused = true)]
async fn serves_every_request_on_both_inherited_sockets_then_stops() {
    let rig = rig::start(
        "user15-serve",
        "# the greeting\ngreeting = hi there\n",
        |_| {},
    )
    .await;
    let pid = std::process::id();
    assert_eq!(
        rig.ready,
        format!("READY=1\nSTATUS=serving 2 sockets, config generation 1\nMAINPID={pid}")
    );
    assert_eq!(
        std::fs::read_to_string(&rig.pidfile).unwrap(),
        format!("{pid}\n")
    );
    let mut t = tcp_client(rig.tcp).await;
    assert_eq!(t.ask("PING").await, "PONG");
    assert_eq!(t.ask("ECHO two  words ").await, "two  words ");
    assert_eq!(t.ask("GREET").await, "hi there");
    assert_eq!(t.ask("GEN").await, "generation 1");
    assert_eq!(t.ask("").await, "ERR unknown command \"\"");
    assert_eq!(t.ask("NOPE x").await, "ERR unknown command \"NOPE\"");
    assert_eq!(t.ask("SLOW soon").await, "ERR bad duration \"soon\"");
    // CRLF is taken as LF, as tokio-util's LinesCodec does.
    t.send(b"PING\r\n").await;
    assert_eq!(t.line().await.as_deref(), Some("PONG"));
    let mut u = unix_client(&rig.unix).await;
    assert_eq!(u.ask("PING").await, "PONG");
    assert_eq!(u.ask("GREET").await, "hi there");
    // Two requests in one write, answered in order.
    u.send(b"ECHO a\nECHO b\n").await;
    assert_eq!(u.line().await.as_deref(), Some("a"));
    assert_eq!(u.line().await.as_deref(), Some("b"));
    assert_eq!(
        t.ask("STATS").await,
        "active=2 served=12 refused=0 failed=0"
    );
    assert_eq!(u.ask("QUIT").await, "BYE");
    u.expect_eof().await;
    let (tcp, unix, pidfile) = (rig.tcp, rig.unix.clone(), rig.pidfile.clone());
    let (out, manager, _dir) = rig.terminate().await;
    // The TCP client was idle: told to go.
    assert_eq!(t.line().await.as_deref(), Some("BYE draining"));
    t.expect_eof().await;
    assert_eq!(
        (out.code, out.cut, out.error, out.notify_failed),
        (EXIT_OK, 0, None, 0)
    );
    assert_eq!(manager.next().await, "STATUS=stopped");
    assert_eq!(manager.pending(), None);
    assert!(!pidfile.exists(), "the pidfile was left");
    rig::refused_eventually(Some(tcp), None).await;
    rig::refused_eventually(None, Some(&unix)).await;
}

#[overlap::test(start_paused = true)]
async fn watchdog_pings_once_per_half_period_and_only_for_its_pid() {
    let pid = std::process::id().to_string();
    let rig = rig::start("user15-watchdog", "", |s| {
        s.watchdog_usec = Some("2000000".into());
        s.watchdog_pid = Some(pid.clone());
    })
    .await;
    assert_eq!(
        rig.manager.pending(),
        None,
        "no ping before the first period"
    );
    for _ in 0..5 {
        time::advance(Duration::from_millis(999)).await;
        settle().await;
        assert_eq!(rig.manager.pending(), None, "a ping early");
        time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(rig.manager.pending().as_deref(), Some("WATCHDOG=1"));
        assert_eq!(rig.manager.pending(), None, "more than one ping");
    }
    // The pings go on while the daemon drains a request in flight.
    let mut c = tcp_client(rig.tcp).await;
    assert_eq!(c.ask("SLOW 2500").await, "WORKING");
    rig.control.send(Control::Terminate).unwrap();
    assert!(rig.manager.next().await.starts_with("STOPPING=1\n"));
    assert_eq!(rig.manager.next().await, "WATCHDOG=1");
    assert_eq!(rig.manager.next().await, "WATCHDOG=1");
    assert_eq!(c.line().await.as_deref(), Some("DONE"));
    let out = within(HANG, rig.task, "the end").await.unwrap();
    assert_eq!(out.code, EXIT_OK);

    // WATCHDOG_PID naming another process: the watchdog is not ours to feed.
    let rig = rig::start("user15-watchdog-other", "", |s| {
        s.watchdog_usec = Some("2000000".into());
        s.watchdog_pid = Some("1".into());
    })
    .await;
    time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(rig.manager.pending(), None);
    let (out, _, _) = rig.terminate().await;
    assert_eq!(out.code, EXIT_OK);
}

#[overlap::test(start_paused = true)]
async fn a_reload_applies_to_new_connections_only() {
    let rig = rig::start("user15-reload", "greeting = hello\n", |_| {}).await;
    let mut old = tcp_client(rig.tcp).await;
    assert_eq!(old.ask("GREET").await, "hello");
    rig::write_config(&rig.config, "greeting = bonjour\nmax_line = 8\n");
    rig.control.send(Control::Reload).unwrap();
    let reloading = rig.manager.next().await;
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .expect(&reloading);
    let usec: u64 = usec.parse().unwrap();
    assert!(usec > 0 && usec <= notify::monotonic_usec(), "{usec}");
    assert_eq!(
        rig.manager.next().await,
        "READY=1\nSTATUS=reloaded, config generation 2"
    );
    // The connection open before keeps its settings, the 8-byte limit included.
    assert_eq!(old.ask("GREET").await, "hello");
    assert_eq!(old.ask("GEN").await, "generation 1");
    assert_eq!(old.ask("ECHO longer than eight").await, "longer than eight");
    let mut new = unix_client(&rig.unix).await;
    assert_eq!(new.ask("GREET").await, "bonjour");
    assert_eq!(new.ask("GEN").await, "generation 2");
    assert_eq!(new.ask("ECHO 123456789").await, "ERR line too long");
    new.expect_eof().await;
    let (out, _, _) = rig.terminate().await;
    assert_eq!(out.code, EXIT_OK);
}

#[overlap::test(start_paused = true)]
async fn a_bad_configuration_is_kept_out_and_reported() {
    let rig = rig::start("user15-bad-config", "greeting = hello\n", |_| {}).await;
    let missing = rig.config.display().to_string();
    let cases: [(&str, String); 5] = [
        (
            "greeting = x\ncolour = red\n",
            "line 2: unknown key \"colour\"".into(),
        ),
        (
            "max_line = lots\n",
            "line 1: max_line: invalid digit found in string in \"lots\"".into(),
        ),
        (
            "\n\njust words\n",
            "line 3: expected `key = value`, got \"just words\"".into(),
        ),
        (
            "max_conns = 0\n",
            "line 1: max_conns: 0 is less than 1".into(),
        ),
        ("", missing),
    ];
    for (text, why) in cases {
        if text.is_empty() {
            std::fs::remove_file(&rig.config).unwrap();
        } else {
            rig::write_config(&rig.config, text);
        }
        rig.control.send(Control::Reload).unwrap();
        assert!(rig.manager.next().await.starts_with("RELOADING=1\n"));
        let status = rig.manager.next().await;
        let kept = "READY=1\nSTATUS=reload failed, keeping config generation 1: ";
        let reason = status.strip_prefix(kept).expect(&status);
        assert!(reason.contains(&why), "{reason:?} does not say {why:?}");
        let mut c = tcp_client(rig.tcp).await;
        assert_eq!(c.ask("GREET").await, "hello", "after {text:?}");
        assert_eq!(c.ask("GEN").await, "generation 1");
    }
    // Failed reloads did not count as generations.
    rig::write_config(&rig.config, "greeting = fixed\n");
    rig.control.send(Control::Reload).unwrap();
    assert!(rig.manager.next().await.starts_with("RELOADING=1\n"));
    assert_eq!(
        rig.manager.next().await,
        "READY=1\nSTATUS=reloaded, config generation 2"
    );
    let mut c = tcp_client(rig.tcp).await;
    assert_eq!(c.ask("GREET").await, "fixed");
    let (out, _, _) = rig.terminate().await;
    assert_eq!(out.code, EXIT_OK);
}

#[overlap::test(start_paused = true)]
async fn the_drain_lets_a_request_in_flight_finish_and_refuses_new_ones() {
    let rig = rig::start("user15-drain", "drain_secs = 30\n", |_| {}).await;
    let start = time::now();
    let mut busy = tcp_client(rig.tcp).await;
    assert_eq!(busy.ask("SLOW 20000").await, "WORKING");
    let mut idle = tcp_client(rig.tcp).await;
    assert_eq!(idle.ask("PING").await, "PONG");
    let mut idle_unix = unix_client(&rig.unix).await;
    assert_eq!(idle_unix.ask("PING").await, "PONG");
    rig.control.send(Control::Terminate).unwrap();
    assert_eq!(
        rig.manager.next().await,
        "STOPPING=1\nSTATUS=draining, connections open: 3"
    );
    assert_eq!(idle.line().await.as_deref(), Some("BYE draining"));
    idle.expect_eof().await;
    assert_eq!(idle_unix.line().await.as_deref(), Some("BYE draining"));
    idle_unix.expect_eof().await;
    rig::refused_eventually(Some(rig.tcp), None).await;
    // The request in flight finishes, then its connection is told to go too.
    assert_eq!(busy.line().await.as_deref(), Some("DONE"));
    assert_eq!(busy.line().await.as_deref(), Some("BYE draining"));
    busy.expect_eof().await;
    let out = within(HANG, rig.task, "the end").await.unwrap();
    assert_eq!((out.code, out.cut), (EXIT_OK, 0));
    assert_eq!(
        time::now() - start,
        Duration::from_secs(20),
        "the request's own time"
    );
    assert_eq!(rig.manager.next().await, "STATUS=stopped");
    let s = &rig.shared.stats;
    assert_eq!(
        (s.accepted.get(), s.active.get(), s.served.get()),
        (3, 0, 3)
    );
}

#[overlap::test(start_paused = true)]
async fn the_drain_deadline_cuts_a_stuck_request_and_exits_3() {
    let tasks_before = overlap::metrics().tasks_alive;
    let rig = rig::start("user15-cut", "drain_secs = 5\n", |_| {}).await;
    let start = time::now();
    let mut stuck = unix_client(&rig.unix).await;
    assert_eq!(stuck.ask("SLOW 60000").await, "WORKING");
    rig.control.send(Control::Terminate).unwrap();
    assert!(rig.manager.next().await.starts_with("STOPPING=1\n"));
    // Cut at the deadline: the end of file, no DONE.
    stuck.expect_eof().await;
    let out = within(HANG, rig.task, "the end").await.unwrap();
    assert_eq!((out.code, out.cut, out.error), (EXIT_CUT, 1, None));
    assert_eq!(time::now() - start, Duration::from_secs(5));
    assert_eq!(
        rig.manager.next().await,
        "STATUS=drain deadline passed, connections cut: 1"
    );
    assert_eq!(rig.shared.stats.active.get(), 0, "the cut one counted out");
    assert!(!rig.pidfile.exists());
    until(
        || overlap::metrics().tasks_alive == tasks_before,
        "no task left",
    )
    .await;
}
