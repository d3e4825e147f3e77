//! More of the daemon's tests: bad lines and resource limits, peers leaving, the pidfile,
//! the environment's parsing, wrong fds, the notify socket's kinds and faults, and the
//! daemon as a socket-activated child process driven by real signals.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use overlap::io::AsyncWriteExt;
use overlap::net::TcpStream;
use overlap::sync::mpsc;

use super::activation::{adopt, passed_fds, ActivationEnv, Listener};
use super::child::{inheritable_fds, spawn_child, ListenPid};
use super::daemon::{run, Control, EXIT_FAILED, EXIT_OK};
use super::notify::{notify_addr, watchdog_period};
use super::rig::{self, tcp_client, unix_client, Manager, HANG};
use super::service::Shared;
use super::support::{until, within, TempDir};

#[overlap::test(start_paused = true)]
async fn lines_too_long_or_not_utf8_end_their_connection() {
    let rig = rig::start("user15-lines", "max_line = 16\n", |_| {}).await;
    let mut c = tcp_client(rig.tcp).await;
    assert_eq!(
        c.ask("ECHO exactly 16b").await,
        "exactly 16b",
        "16 bytes pass"
    );
    assert_eq!(c.ask("ECHO seventeen by").await, "ERR line too long");
    c.expect_eof().await;
    // No newline needed: 40 bytes without one are over the limit already.
    let mut c = unix_client(&rig.unix).await;
    c.send(&[b'a'; 40]).await;
    assert_eq!(c.line().await.as_deref(), Some("ERR line too long"));
    c.expect_eof().await;
    let mut c = tcp_client(rig.tcp).await;
    c.send(b"ECHO \xff\xfe\n").await;
    assert_eq!(c.line().await.as_deref(), Some("ERR not utf-8"));
    c.expect_eof().await;
    let mut c = tcp_client(rig.tcp).await;
    assert_eq!(c.ask("STATS").await, "active=1 served=1 refused=0 failed=3");
    let (out, _, _) = rig.terminate().await;
    assert_eq!(out.code, EXIT_OK);
}

#[overlap::test(start_paused = true)]
async fn one_connection_over_max_conns_is_told_busy() {
    let rig = rig::start("user15-busy", "max_conns = 2\n", |_| {}).await;
    let mut a = tcp_client(rig.tcp).await;
    let mut b = unix_client(&rig.unix).await;
    assert_eq!(
        (a.ask("PING").await, b.ask("PING").await),
        ("PONG".into(), "PONG".into())
    );
    for _ in 0..2 {
        let mut over = unix_client(&rig.unix).await;
        assert_eq!(over.line().await.as_deref(), Some("ERR busy"));
        over.expect_eof().await;
    }
    assert_eq!(a.ask("STATS").await, "active=2 served=2 refused=2 failed=0");
    assert_eq!(b.ask("QUIT").await, "BYE");
    b.expect_eof().await;
    until(|| rig.shared.stats.active.get() == 1, "b counted out").await;
    let mut c = tcp_client(rig.tcp).await;
    assert_eq!(c.ask("PING").await, "PONG");
    let shared = rig.shared.clone();
    let (out, _, _) = rig.terminate().await;
    assert_eq!(out.code, EXIT_OK);
    // Two refused, and a, b and c.
    assert_eq!(shared.stats.accepted.get(), 5);
}

#[overlap::test(start_paused = true)]
async fn peers_leaving_mid_line_or_mid_request_are_survived() {
    let rig = rig::start("user15-vanish", "", |_| {}).await;
    // Half a request, then the end of file: dropped unanswered, counted as failed.
    let mut half = TcpStream::connect(rig.tcp).await.unwrap();
    half.write_all(b"PIN").await.unwrap();
    half.close().await.unwrap();
    let mut half = rig::Client::new(half);
    half.expect_eof().await;
    until(
        || rig.shared.stats.failed.get() == 1,
        "the half line counted",
    )
    .await;
    // A client gone while its request runs: the answer goes nowhere, the daemon goes on.
    let mut gone = tcp_client(rig.tcp).await;
    assert_eq!(gone.ask("SLOW 1000").await, "WORKING");
    drop(gone);
    until(
        || rig.shared.stats.active.get() == 0,
        "the gone one counted out",
    )
    .await;
    let mut c = unix_client(&rig.unix).await;
    let stats = c.ask("STATS").await;
    assert!(stats.starts_with("active=1 served="), "{stats}");
    assert_eq!(c.ask("PING").await, "PONG");
    let (out, _, _) = rig.terminate().await;
    assert_eq!((out.code, out.cut), (EXIT_OK, 0));
}

#[overlap::test(start_paused = true)]
async fn the_pidfile_is_refused_while_its_process_lives_and_replaced_when_stale() {
    let pid = std::process::id();
    // Live: this process's own pid.
    let dir = TempDir::new("user15-pidfile");
    let manager = Manager::at_path(&dir);
    let (setup, tcp, _) = rig::setup_in(&dir, &manager, "");
    let pidfile = setup.pidfile.clone().unwrap();
    std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
    let (_tx, rx) = mpsc::unbounded_channel();
    let out = run(setup, rx, Rc::new(Shared::default())).await;
    let why = format!("{}: process {pid} is running", pidfile.display());
    assert_eq!(
        (out.code, out.error.as_deref()),
        (EXIT_FAILED, Some(why.as_str()))
    );
    assert_eq!(
        manager.next().await,
        format!("STATUS=failed to start: {why}")
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{pid}\n")
    );
    rig::refused_eventually(Some(tcp), None).await;
    // Stale: a process that has exited (and been reaped); then garbage.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    for old in [format!("{dead_pid}\n"), "not a pid".to_owned()] {
        let rig = rig::start("user15-pidfile-stale", "", |s| {
            std::fs::write(s.pidfile.as_ref().unwrap(), &old).unwrap();
        })
        .await;
        assert_eq!(
            std::fs::read_to_string(&rig.pidfile).unwrap(),
            format!("{pid}\n")
        );
        let pidfile = rig.pidfile.clone();
        let (out, _, _) = rig.terminate().await;
        assert_eq!(out.code, EXIT_OK);
        assert!(!pidfile.exists(), "removed at exit");
    }
}

#[test]
fn the_environment_is_read_as_sd_listen_fds_and_sd_watchdog_enabled_do() {
    let env = |pid: Option<&str>, fds: Option<&str>, names: Option<&str>| ActivationEnv {
        listen_pid: pid.map(Into::into),
        listen_fds: fds.map(Into::into),
        listen_fdnames: names.map(Into::into),
    };
    let named = |v: &[(i32, &str)]| -> Vec<(i32, String)> {
        v.iter().map(|(f, n)| (*f, n.to_string())).collect()
    };
    let ok = |e: ActivationEnv| passed_fds(&e, 42).unwrap();
    let err = |e: ActivationEnv| passed_fds(&e, 42).unwrap_err();
    assert_eq!(ok(env(None, Some("2"), None)), named(&[]), "not activated");
    assert_eq!(
        ok(env(Some("41"), Some("2"), None)),
        named(&[]),
        "another's"
    );
    assert_eq!(
        ok(env(Some("42"), Some("2"), Some("tcp:unix"))),
        named(&[(3, "tcp"), (4, "unix")])
    );
    assert_eq!(
        ok(env(Some("42"), Some("1"), None)),
        named(&[(3, "unknown")])
    );
    assert_eq!(ok(env(Some("42"), Some("0"), None)), named(&[]));
    for (bad, says) in [
        (
            env(Some("x"), Some("1"), None),
            "LISTEN_PID=Some(\"x\") is no pid",
        ),
        (
            env(Some("42"), Some("two"), None),
            "LISTEN_FDS=\"two\" is no count",
        ),
        (env(Some("42"), None, None), "LISTEN_FDS=\"\" is no count"),
        (
            env(Some("42"), Some("2"), Some("tcp")),
            "LISTEN_FDNAMES names 1 sockets, LISTEN_FDS passes 2",
        ),
    ] {
        let e = err(bad);
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::InvalidInput, says.into())
        );
    }
    let ms = |n| Some(std::time::Duration::from_millis(n));
    assert_eq!(watchdog_period(None, None, 42).unwrap(), None);
    assert_eq!(
        watchdog_period(Some("3000000"), None, 42).unwrap(),
        ms(1500)
    );
    assert_eq!(
        watchdog_period(Some("3000000"), Some("42"), 42).unwrap(),
        ms(1500)
    );
    assert_eq!(
        watchdog_period(Some("3000000"), Some("7"), 42).unwrap(),
        None
    );
    for (usec, pid) in [("0", None), ("soon", None), ("1000", Some("me"))] {
        let e = watchdog_period(Some(usec), pid, 42).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{usec} {pid:?}");
    }
    let addr = |v: &str| notify_addr(v.as_ref());
    assert_eq!(
        addr("/run/systemd/notify").unwrap(),
        std::path::Path::new("/run/systemd/notify")
    );
    assert_eq!(addr("@name").unwrap(), std::path::Path::new("\0name"));
    for bad in ["@", "run/notify", ""] {
        assert_eq!(
            addr(bad).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
}

#[overlap::test]
async fn fds_of_the_wrong_kind_are_refused_with_the_socket_named() {
    let dir = TempDir::new("user15-kinds");
    let refused = |res: std::io::Result<Listener>, says: &str| {
        let e = res.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(says), "{e:?} does not say {says:?}");
    };
    let (pipe_r, _pipe_w) = super::support::pipe();
    refused(adopt(pipe_r, "tcp"), "socket \"tcp\" (fd ");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(adopt(OwnedFd::from(udp), "tcp"), "socket \"tcp\"");
    let unix = std::os::unix::net::UnixListener::bind(dir.join("u.sock")).unwrap();
    refused(adopt(OwnedFd::from(unix), "tcp"), "socket \"tcp\"");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connected = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
    refused(adopt(OwnedFd::from(connected), "tcp"), "socket \"tcp\"");
    refused(adopt(OwnedFd::from(tcp), "unix"), "socket \"unix\"");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    refused(
        adopt(OwnedFd::from(tcp), "http"),
        "only \"tcp\" and \"unix\" are served",
    );
    // A blocking listener, as a manager passes it, is adopted (made non-blocking).
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(matches!(
        adopt(OwnedFd::from(tcp), "tcp"),
        Ok(Listener::Tcp(_))
    ));
    // The daemon given a refused socket does not start, and says why.
    let manager = Manager::at_path(&dir);
    let (mut setup, _, _) = rig::setup_in(&dir, &manager, "");
    let (pipe_r, _pipe_w) = super::support::pipe();
    setup.listeners = adopt(pipe_r, "tcp").map(|l| vec![l]);
    let (_tx, rx) = mpsc::unbounded_channel();
    let out = run(setup, rx, Rc::new(Shared::default())).await;
    assert_eq!(out.code, EXIT_FAILED);
    let status = manager.next().await;
    assert!(
        status.starts_with("STATUS=failed to start: socket \"tcp\" (fd "),
        "{status}"
    );
    assert!(!dir.join("daemon.pid").exists());
}

#[overlap::test(start_paused = true)]
async fn an_abstract_notify_socket_works_and_a_vanished_manager_is_survived() {
    let dir = TempDir::new("user15-abstract");
    let manager = Manager::abstract_named();
    let (setup, tcp, _) = rig::setup_in(&dir, &manager, "");
    let (control, rx) = mpsc::unbounded_channel();
    let task = overlap::spawn(run(setup, rx, Rc::new(Shared::default())));
    assert!(manager.next().await.starts_with("READY=1\n"));
    control.send(Control::Reload).unwrap();
    assert!(manager.next().await.starts_with("RELOADING=1\n"));
    assert!(manager.next().await.starts_with("READY=1\n"));
    control.send(Control::Terminate).unwrap();
    assert!(manager.next().await.starts_with("STOPPING=1\n"));
    let out = within(HANG, task, "the end").await.unwrap();
    assert_eq!((out.code, out.notify_failed), (EXIT_OK, 0));
    assert_eq!(manager.next().await, "STATUS=stopped");
    rig::refused_eventually(Some(tcp), None).await;

    // The manager goes away (its socket file removed, so no process that forked
    // meanwhile and holds a copy keeps it reachable): every later notification fails,
    // and is only counted.
    let dir = TempDir::new("user15-vanished");
    let manager = Manager::at_path(&dir);
    let (setup, tcp, _) = rig::setup_in(&dir, &manager, "");
    let (control, rx) = mpsc::unbounded_channel();
    let task = overlap::spawn(run(setup, rx, Rc::new(Shared::default())));
    assert!(manager.next().await.starts_with("READY=1\n"));
    std::fs::remove_file(&manager.value).unwrap();
    drop(manager);
    control.send(Control::Reload).unwrap();
    let mut c = tcp_client(tcp).await;
    assert_eq!(c.ask("PING").await, "PONG");
    assert_eq!(c.ask("GEN").await, "generation 2", "the reload happened");
    control.send(Control::Terminate).unwrap();
    let out = within(HANG, task, "the end").await.unwrap();
    // RELOADING, READY, STOPPING, STATUS.
    assert_eq!((out.code, out.notify_failed), (EXIT_OK, 4));
    // A NOTIFY_SOCKET that is neither a path nor @name: refused before anything else.
    for bad in ["relative/notify", "@"] {
        let dir = TempDir::new("user15-bad-notify");
        let (mut setup, _, _) = rig::setup_in(&dir, &Manager::at_path(&dir), "");
        setup.notify_socket = Some(bad.into());
        let (_tx, rx) = mpsc::unbounded_channel();
        let out = run(setup, rx, Rc::new(Shared::default())).await;
        let e = out.error.unwrap();
        assert_eq!(out.code, EXIT_FAILED);
        assert!(
            e.contains("neither an absolute path nor an @abstract name"),
            "{e}"
        );
        assert!(!dir.join("daemon.pid").exists());
    }
}

/// The fds a child of the daemon should have: 0-2, `ls`'s own listing at the lowest free
/// one, and what this process inherited without close-on-exec.
fn expected_child_fds() -> String {
    let mut fds: Vec<i32> = vec![0, 1, 2];
    fds.extend(inheritable_fds());
    let free = (3..).find(|f| !fds.contains(f)).unwrap();
    fds.push(free);
    fds.sort_unstable();
    let fds: Vec<String> = fds.iter().map(i32::to_string).collect();
    format!("FDS {}", fds.join(" "))
}

/// The next notification that is not a watchdog ping; the pings counted.
async fn next_skipping_pings(manager: &Manager, pings: &mut usize) -> String {
    loop {
        let n = manager.next().await;
        if n != "WATCHDOG=1" {
            return n;
        }
        *pings += 1;
    }
}

#[overlap::test]
async fn socket_activated_child_serves_reloads_and_drains_on_signals() {
    let dir = TempDir::new("user15-child");
    let manager = Manager::abstract_named();
    let expected_fds = expected_child_fds();
    let env = [("WATCHDOG_USEC", "100000")];
    let mut d = spawn_child(&dir, &manager, "greeting = one\n", &env, ListenPid::Child);
    let mut pings = 0;
    let ready = next_skipping_pings(&manager, &mut pings).await;
    assert_eq!(
        ready,
        format!(
            "READY=1\nSTATUS=serving 2 sockets, config generation 1\nMAINPID={}",
            d.pid
        )
    );
    assert_eq!(
        std::fs::read_to_string(&d.pidfile).unwrap(),
        format!("{}\n", d.pid)
    );
    let mut t = tcp_client(d.tcp).await;
    assert_eq!(t.ask("GREET").await, "one");
    let mut u = unix_client(&d.unix).await;
    assert_eq!(u.ask("PING").await, "PONG");
    // A child the daemon spawns has none of the daemon's fds: not the passed sockets
    // (made close-on-exec on adoption), nor its runtime's, connections' or notify socket.
    assert_eq!(t.ask("FDS").await, expected_fds);
    std::fs::write(&d.config, "greeting = two\n").unwrap();
    d.child.send_signal(libc::SIGHUP).unwrap();
    let reloading = next_skipping_pings(&manager, &mut pings).await;
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(
        next_skipping_pings(&manager, &mut pings).await,
        "READY=1\nSTATUS=reloaded, config generation 2"
    );
    assert_eq!(t.ask("GREET").await, "one");
    let mut t2 = tcp_client(d.tcp).await;
    assert_eq!(t2.ask("GREET").await, "two");
    while pings == 0 {
        assert_eq!(manager.next().await, "WATCHDOG=1");
        pings += 1;
    }
    d.child.send_signal(libc::SIGTERM).unwrap();
    let stopping = next_skipping_pings(&manager, &mut pings).await;
    assert_eq!(stopping, "STOPPING=1\nSTATUS=draining, connections open: 3");
    for c in [&mut t, &mut t2] {
        assert_eq!(c.line().await.as_deref(), Some("BYE draining"));
        c.expect_eof().await;
    }
    assert_eq!(u.line().await.as_deref(), Some("BYE draining"));
    u.expect_eof().await;
    let status = within(HANG, d.child.wait(), "the child's exit")
        .await
        .unwrap();
    assert_eq!(status.code(), Some(EXIT_OK));
    assert_eq!(
        next_skipping_pings(&manager, &mut pings).await,
        "STATUS=stopped"
    );
    assert!(!d.pidfile.exists(), "the child left its pidfile");
}

#[overlap::test]
async fn a_child_that_cannot_start_exits_1_saying_why() {
    let dir = TempDir::new("user15-child-fail");
    let manager = Manager::at_path(&dir);
    // The variables were meant for another process: no sockets are ours.
    let mut d = spawn_child(&dir, &manager, "", &[], ListenPid::Other);
    assert_eq!(
        manager.next().await,
        "STATUS=failed to start: no sockets passed (LISTEN_FDS)"
    );
    let status = within(HANG, d.child.wait(), "the child's exit")
        .await
        .unwrap();
    assert_eq!(status.code(), Some(EXIT_FAILED));
    std::fs::remove_file(&d.unix).unwrap();
    // A configuration that does not parse at start.
    let mut d = spawn_child(
        &dir,
        &manager,
        "greeting = x\nport = 80\n",
        &[],
        ListenPid::Child,
    );
    assert_eq!(
        manager.next().await,
        "STATUS=failed to start: config: line 2: unknown key \"port\""
    );
    let status = within(HANG, d.child.wait(), "the child's exit")
        .await
        .unwrap();
    assert_eq!(status.code(), Some(EXIT_FAILED));
    assert!(!d.pidfile.exists());
}
