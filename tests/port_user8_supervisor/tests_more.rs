//! Readiness, the watchdog, stops, signals, shutdown and bad input.

use overlap::signal::unix::{signal, SignalKind};

use super::supervisor::{notify_path, Spec};
use super::support::{children, open_fds, run_in_child, within, TempDir};
use super::{child_service, Control, Running, HANG};

/// `sh` that says `armed` once its traps are set, then idles in short sleeps (a trapped
/// signal runs its trap after the current `sleep`).
fn idle(traps: &str) -> String {
    format!("{traps} echo armed; while :; do sleep 0.02; done")
}

#[overlap::test]
async fn ready_1_gates_the_start_of_a_dependent_service() {
    let dir = TempDir::new("user8-ready-go");
    let go = dir.join("go");
    let actions = format!(
        "status:warming say:warming await:{} ready status:serving hang",
        go.display()
    );
    let mut b = Spec::sh("b", "echo b up; exec sleep 10");
    b.after = Some("a".into());
    let mut sup = Running::start("user8-ready", vec![child_service("a", &actions), b]);
    sup.until_from(0, |l| l.ends_with("svc: warming")).await;
    let mut ctl = Control::connect(&sup.control()).await;
    let status = ctl.ask("status").await;
    assert!(
        status.starts_with("a starting pid=") && status.ends_with("|b waiting status=\"\""),
        "{status}"
    );
    assert!(status.contains("status=\"warming\""), "{status}");
    std::fs::write(&go, "").unwrap();
    let ready = sup.until("supervisor: a ready").await;
    let started = sup
        .until_from(0, |l| l.starts_with("supervisor: b started"))
        .await;
    assert!(ready < started, "{:?}", sup.lines);
    sup.until("b: b up").await;
    let status = ctl.ask("status").await;
    let (a, b) = status.split_once('|').unwrap();
    assert!(
        a.starts_with("a ready pid=") && a.ends_with("status=\"serving\""),
        "{a}"
    );
    assert!(b.starts_with("b ready pid="), "{b}");
    let log = sup.shut_down().await;
    // The last started is stopped first.
    let b_stop = log
        .iter()
        .position(|l| l == "supervisor: stopped b: signal 15");
    let a_stop = log
        .iter()
        .position(|l| l == "supervisor: stopped a: signal 15");
    assert!(b_stop.is_some() && b_stop < a_stop, "{log:?}");
}

#[overlap::test]
async fn a_service_that_stops_pinging_the_watchdog_is_killed_and_restarted() {
    let pings = "ready ping say:1 pause:20 ping say:2 pause:20 ping say:3 hang";
    let mut spec = child_service("w", pings);
    spec.watchdog = Some(std::time::Duration::from_millis(200));
    let mut sup = Running::start("user8-watchdog", vec![spec]);
    let want = "supervisor: w watchdog: no WATCHDOG=1 for 200ms after 3 pings, killing";
    let fired = sup.until(want).await;
    let exited = sup.until("supervisor: w exited: signal 9").await;
    let again = sup.until("supervisor: w restart 1 in 5ms").await;
    let restarted = sup
        .until_from(again, |l| l.starts_with("supervisor: w started"))
        .await;
    assert!(fired < exited && exited < again && again < restarted);
    // The first run's output came before its exit was logged.
    let said = sup.until("w: svc: 3").await;
    assert!(said < exited, "{:?}", sup.lines);
    sup.shut_down().await;
}

#[overlap::test]
async fn stop_escalates_to_sigkill_on_a_service_that_ignores_sigterm_and_start_brings_it_back() {
    let mut stubborn = Spec::sh("t", &idle("trap '' TERM;"));
    stubborn.grace = std::time::Duration::from_millis(50);
    let polite = Spec::sh("p", &idle(""));
    let mut sup = Running::start("user8-stop", vec![stubborn, polite]);
    sup.until("t: armed").await;
    sup.until("p: armed").await;
    let mut ctl = Control::connect(&sup.control()).await;
    assert_eq!(
        ctl.ask("stop t").await,
        "stopped t: killed by SIGKILL after 50ms grace"
    );
    assert_eq!(ctl.ask("stop p").await, "stopped p: signal 15");
    assert_eq!(ctl.ask("stop p").await, "p is not running");
    let status = ctl.ask("status").await;
    assert_eq!(status, "p stopped status=\"\"|t stopped status=\"\"");
    let armed = sup.until("t: armed").await;
    assert_eq!(ctl.ask("start t").await, "starting t");
    sup.until_from(armed + 1, |l| l == "t: armed").await;
    let reply = ctl.ask("restart t").await;
    assert_eq!(reply, "restarting t: killed by SIGKILL after 50ms grace");
    sup.shut_down().await;
}

#[test]
fn sighup_to_the_supervisor_reaches_every_child() {
    run_in_child(
        "tests_more::sighup_to_the_supervisor_reaches_every_child",
        || {
            overlap::block_on(async {
                let specs = ["h1", "h2"].map(|n| Spec::sh(n, &idle("trap 'echo hup' HUP;")));
                let mut sup = Running::start("user8-hup", specs.to_vec());
                sup.until("h1: armed").await;
                sup.until("h2: armed").await;
                // SAFETY: kill takes no pointers; the signal goes to this (child) process,
                // which catches SIGHUP by now.
                assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
                sup.until("supervisor: SIGHUP, forwarded").await;
                sup.until("h1: hup").await;
                sup.until("h2: hup").await;
                let mut ctl = Control::connect(&sup.control()).await;
                let status = ctl.ask("status").await;
                assert!(status.starts_with("h1 ready pid="), "{status}");
                sup.shut_down().await;
            })
        },
    );
}

#[test]
fn sigterm_shuts_the_supervisor_down_leaving_no_process_zombie_or_fd() {
    run_in_child(
        "tests_more::sigterm_shuts_the_supervisor_down_leaving_no_process_zombie_or_fd",
        || {
            // The signal self-pipe stays open for the rest of the process once a signal has been
            // listened for (overlap::signal's contract): counted from after it is made.
            overlap::block_on(async { signal(SignalKind::terminate()).unwrap() });
            let before = open_fds();
            overlap::block_on(async {
                // This runtime's reader of the self-pipe holds one more until the runtime ends.
                let _reader = signal(SignalKind::terminate()).unwrap();
                let fds = open_fds();
                let mut stubborn = Spec::sh("t", &idle("trap '' TERM;"));
                stubborn.grace = std::time::Duration::from_millis(30);
                let mut crashing = Spec::sh("c", "echo boom; exit 1");
                crashing.backoff = std::time::Duration::from_secs(60);
                let waiting = {
                    let mut w = Spec::sh("w", "exit 0");
                    w.after = Some("n".into());
                    w
                };
                let never = child_service("n", "hang");
                let specs = vec![stubborn, crashing, never, waiting];
                let mut sup = Running::start("user8-down", specs);
                let dir = sup.dir.path().to_owned();
                sup.until("t: armed").await;
                sup.until("supervisor: c restart 1 in 60s").await;
                let mut ctl = Control::connect(&sup.control()).await;
                ctl.ask("status").await;
                // SAFETY: kill takes no pointers; this (child) process catches SIGTERM by now.
                assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
                within(HANG, &mut sup.task, "shutdown on SIGTERM")
                    .await
                    .unwrap()
                    .unwrap();
                while let Ok(line) = sup.log.try_recv() {
                    sup.lines.push(line);
                }
                let log = &sup.lines;
                for want in [
                    "supervisor: shutting down",
                    "supervisor: stopped w: was waiting",
                    "supervisor: stopped t: killed by SIGKILL after 30ms grace",
                    "supervisor: stopped c: was in backoff",
                    "supervisor: stopped n: signal 15",
                    "supervisor: down",
                ] {
                    assert!(log.iter().any(|l| l == want), "no {want:?} in {log:?}");
                }
                // The control connection was ended by the shutdown.
                let mut rest = String::new();
                let read = overlap::io::AsyncBufReadExt::read_line(&mut ctl.read, &mut rest);
                assert_eq!(
                    within(HANG, read, "end of the control connection")
                        .await
                        .unwrap(),
                    0
                );
                drop(ctl);
                assert_eq!(children(), "", "no child left, not even a zombie");
                let left: Vec<_> = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert!(left.is_empty(), "sockets left: {left:?}");
                drop(sup);
                assert_eq!(open_fds(), fds);
            });
            assert_eq!(open_fds(), before);
        },
    );
}

#[overlap::test]
async fn garbage_on_the_notify_and_control_sockets_gets_clear_errors_and_breaks_nothing() {
    let mut sup = Running::start("user8-garbage", vec![child_service("g", "say:up hang")]);
    sup.until_from(0, |l| l.ends_with("svc: up")).await;
    let to = notify_path(sup.dir.path(), "g");
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    for bad in [
        &b"\xff\xfegarbage"[..],
        b"",
        b"READY=2",
        b"STATUS=half\nNOPE",
    ] {
        sock.send_to(bad, &to).unwrap();
    }
    sock.send_to(b"READY=1", &to).unwrap();
    let ready = sup.until("supervisor: g ready").await;
    let errors: Vec<&str> = sup.lines[..ready]
        .iter()
        .filter_map(|l| l.strip_prefix("supervisor: g notify: "))
        .collect();
    assert_eq!(
        errors,
        [
            "bad message [255, 254, 103, 97, 114, 98, 97, 103, 101]: not UTF-8",
            "bad message \"\": empty",
            "bad message \"READY=2\"",
            "bad message \"NOPE\"",
        ]
    );

    let mut ctl = Control::connect(&sup.control()).await;
    let usage = "(status, stop NAME, start NAME, restart NAME)";
    for (cmd, reply) in [
        (
            &b"frob\n"[..],
            format!("error: unknown command \"frob\" {usage}"),
        ),
        (b"\n", format!("error: unknown command \"\" {usage}")),
        (b"stop\n", "error: usage: stop NAME".into()),
        (b"stop g extra\n", "error: usage: stop NAME".into()),
        (b"stop nosuch\n", "error: no service \"nosuch\"".into()),
        (b"\xff\xfe\n", "error: not UTF-8".into()),
        (b"start g\n", "g is already running pid=".into()),
    ] {
        let got = ctl.send_raw(cmd).await;
        assert!(got.starts_with(&reply), "{cmd:?}: {got}");
    }
    let status = ctl.ask("status").await;
    assert!(
        status.starts_with("g ready pid=") && status.ends_with("status=\"half\""),
        "{status}"
    );
    // A line past the limit ends that connection only.
    let long = vec![b'x'; 5000];
    assert_eq!(
        ctl.send_raw(&long).await,
        "error: line longer than 1024 bytes"
    );
    let mut other = Control::connect(&sup.control()).await;
    assert!(other.ask("status").await.starts_with("g ready"));
    sup.shut_down().await;
}
