//! The tests of the watchdog, of who may notify, of the restart through the fd store, of
//! the drain, and of the manager's fds.

use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpStream, UnixDatagram, UnixStream};
use overlap::time::{self, Instant};

use super::manager::{ListenPid, Manager, Stalled, Start};
use super::notify::Notifier;
use super::service::{self, ping_watchdog};
use super::support::{self, within};
use super::{ask, exit_code, line, pid_of, ready, set_up, start_all, HANG};

#[overlap::test]
async fn the_childs_watchdog_pings_are_counted() {
    let (_dir, s, mut m) = set_up("wd");
    let mut child = m
        .start(Start {
            fds: vec![(s.tcp.as_fd(), "tcp".into())],
            listen_pid: ListenPid::Own,
            watchdog_usec: Some(40_000),
            env: Vec::new(),
        })
        .unwrap();
    let pid = ready(&mut m, &child).await;
    // Every 20 ms; the manager's timeout is generous, only the count is checked.
    let got = within(HANG, m.watch(pid, Duration::from_secs(10), 5), "five pings").await;
    assert_eq!(got.unwrap(), Ok(5));
    child.send_signal(libc::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut child).await, service::EXIT_OK);
}

#[overlap::test(start_paused = true)]
async fn a_watchdog_that_stops_pinging_is_caught_at_its_timeout() {
    let name = format!("overlap-user18-stall-{}", std::process::id());
    let mut m = Manager::abstract_named(&name).unwrap();
    let notifier = Rc::new(Notifier::new(Some(&m.value)).unwrap());
    let start = Instant::now();
    // The service's own pinger, in this process: three pings a second apart, then none.
    overlap::spawn(ping_watchdog(notifier, Duration::from_secs(1), Some(3)));
    let got = m
        .watch(std::process::id(), Duration::from_secs(2), 10)
        .await
        .unwrap();
    assert_eq!(
        got,
        Err(Stalled {
            pings: 3,
            last_ping: start + Duration::from_secs(3),
            noticed: start + Duration::from_secs(5),
        })
    );
}

#[overlap::test(start_paused = true)]
async fn another_processs_and_malformed_notices_are_refused_and_their_fds_closed() {
    let name = format!("overlap-user18-strangers-{}", std::process::id());
    let mut m = Manager::abstract_named(&name).unwrap();
    let ours = std::process::id();
    let stranger = UnixDatagram::unbound().unwrap();
    let addr = format!("\0{name}");
    let (read_end, write_end) = support::pipe();
    stranger
        .send_to_with_fds(b"FDSTORE=1\nFDNAME=evil", &[write_end.as_fd()], &addr)
        .await
        .unwrap();
    drop(write_end);
    stranger
        .send_to(b"READY=1\nno equals sign", &addr)
        .await
        .unwrap();
    stranger.send_to(b"\xff\xfe=1", &addr).await.unwrap();
    stranger.send_to(b"READY=1", &addr).await.unwrap();
    // Main pid 1: everything this process sends is another's. On the paused clock the
    // timeout passes only once the runtime has looked at the socket and found no more.
    let refused = time::timeout(Duration::from_secs(1), m.next_from(1)).await;
    assert!(refused.is_err(), "nothing from pid 1");
    assert_eq!(m.rejected.len(), 4);
    assert!(m
        .rejected
        .iter()
        .all(|r| *r == format!("from pid Some({ours}), not the main pid 1: ignored")));
    assert!(m.store.is_empty());
    // The stranger's fd was closed: the pipe has no write end left.
    let mut buf = [0u8; 1];
    assert_eq!(support::read(read_end.as_raw_fd(), &mut buf).unwrap(), 0);
    // From the main pid, the malformed ones are refused and the good one taken.
    stranger
        .send_to(b"READY=1\nno equals sign", &addr)
        .await
        .unwrap();
    stranger.send_to(b"\xff\xfe=1", &addr).await.unwrap();
    stranger
        .send_to(b"READY=1\nSTATUS=ok", &addr)
        .await
        .unwrap();
    let n = within(HANG, m.next_from(ours), "the good notice")
        .await
        .unwrap();
    assert_eq!(n.text, "READY=1\nSTATUS=ok");
    assert_eq!(
        m.rejected[4..],
        [
            "malformed: \"READY=1\\nno equals sign\"",
            "malformed: \"\u{fffd}\u{fffd}=1\""
        ]
    );
}

#[overlap::test]
async fn a_restart_through_the_fd_store_carries_open_connections_with_no_byte_lost() {
    let (_dir, s, mut m) = set_up("restart");
    let mut old = start_all(&m, &s);
    let old_pid = ready(&mut m, &old).await;
    let mut tcp = TcpStream::connect(s.tcp.local_addr().unwrap())
        .await
        .unwrap();
    let mut unix = UnixStream::connect(&s.unix_path).await.unwrap();
    assert_eq!(ask(&mut unix, "PID").await, old_pid.to_string());
    // A line and half of the next in one write (one loopback segment, which one read
    // takes whole): once "one" is answered, the old instance holds "tw" read, and must
    // carry it across in the connection's FDNAME.
    tcp.write_all(b"one\ntw").await.unwrap();
    assert_eq!(line(&mut tcp).await.as_deref(), Some("one"));
    old.send_signal(libc::SIGUSR1).unwrap();
    let (stopping, before) = within(HANG, m.until(old_pid, "STOPPING"), "STOPPING=1")
        .await
        .unwrap();
    assert_eq!(stopping.get("STATUS"), Some("handed over 2 connections"));
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        before
            .iter()
            .all(|t| t.starts_with("FDSTORE=1\nFDNAME=conn")),
        "{before:?}"
    );
    assert_eq!(exit_code(&mut old).await, service::EXIT_OK);
    let mut names: Vec<String> = m.store.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        ["conn", "conn-7477"],
        "the Unix one idle, the TCP one at \"tw\""
    );
    // While no instance runs: the rest of the line, and a new client in the backlog.
    tcp.write_all(b"o\n").await.unwrap();
    let mut late = UnixStream::connect(&s.unix_path).await.unwrap();
    late.write_all(b"came while down\n").await.unwrap();
    let store = m.take_store();
    let mut fds = s.all();
    fds.extend(store.iter().map(|(n, fd)| (fd.as_fd(), n.clone())));
    let mut new = m
        .start(Start {
            fds,
            listen_pid: ListenPid::Own,
            watchdog_usec: None,
            env: Vec::new(),
        })
        .unwrap();
    drop(store);
    let new_pid = pid_of(&new);
    let (ready, _) = within(HANG, m.until(new_pid, "READY"), "READY=1")
        .await
        .unwrap();
    assert_eq!(
        ready.get("STATUS"),
        Some("serving 4 sockets, generation 1, 2 connections restored")
    );
    assert_eq!(line(&mut tcp).await.as_deref(), Some("two"));
    assert_eq!(ask(&mut tcp, "PID").await, new_pid.to_string());
    assert_eq!(ask(&mut unix, "PID").await, new_pid.to_string());
    assert_eq!(line(&mut late).await.as_deref(), Some("came while down"));
    drop((tcp, unix, late));
    new.send_signal(libc::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut new).await, service::EXIT_OK);
}

#[overlap::test]
async fn sigterm_lets_an_open_connection_finish() {
    let (_dir, s, mut m) = set_up("drain");
    let mut child = start_all(&m, &s);
    let pid = ready(&mut m, &child).await;
    let mut tcp = TcpStream::connect(s.tcp.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(ask(&mut tcp, "before").await, "before");
    child.send_signal(libc::SIGTERM).unwrap();
    let (stopping, _) = within(HANG, m.until(pid, "STOPPING"), "STOPPING=1")
        .await
        .unwrap();
    assert_eq!(stopping.text, "STOPPING=1\nSTATUS=draining 1 connections");
    assert_eq!(
        ask(&mut tcp, "after").await,
        "after",
        "still served while draining"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "waits for the connection"
    );
    drop(tcp);
    assert_eq!(exit_code(&mut child).await, service::EXIT_OK);
}

#[overlap::test]
async fn the_drain_deadline_cuts_a_connection_left_open() {
    let (_dir, s, mut m) = set_up("cut");
    let mut child = m
        .start(Start {
            fds: s.all(),
            listen_pid: ListenPid::Own,
            watchdog_usec: None,
            env: vec![("SA_DRAIN_MS", "100".into())],
        })
        .unwrap();
    ready(&mut m, &child).await;
    let mut unix = UnixStream::connect(&s.unix_path).await.unwrap();
    assert_eq!(ask(&mut unix, "hi").await, "hi");
    child.send_signal(libc::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut child).await, service::EXIT_CUT);
    assert_eq!(line(&mut unix).await, None, "cut: end of file");
}

/// The fds of this process, by number.
fn open_fds() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn the_manager_leaks_no_fd_over_a_whole_cycle() {
    support::run_in_child(
        "tests_restart::the_manager_leaks_no_fd_over_a_whole_cycle",
        || {
            let rt = overlap::Runtime::new().unwrap();
            rt.block_on(async {
                // The runtime's own fds are open already; the listing's own fd differs in
                // number only if something leaked below it.
                let before = open_fds();
                {
                    let (_dir, s, mut m) = set_up("leak");
                    let mut old = start_all(&m, &s);
                    let pid = ready(&mut m, &old).await;
                    let mut tcp = TcpStream::connect(s.tcp.local_addr().unwrap())
                        .await
                        .unwrap();
                    assert_eq!(ask(&mut tcp, "x").await, "x");
                    old.send_signal(libc::SIGUSR1).unwrap();
                    within(HANG, m.until(pid, "STOPPING"), "STOPPING=1")
                        .await
                        .unwrap();
                    assert_eq!(exit_code(&mut old).await, 0);
                    let store = m.take_store();
                    assert_eq!(store.len(), 1);
                    let mut fds = s.all();
                    fds.extend(store.iter().map(|(n, fd)| (fd.as_fd(), n.clone())));
                    let mut new = m
                        .start(Start {
                            fds,
                            listen_pid: ListenPid::Own,
                            watchdog_usec: Some(100_000),
                            env: Vec::new(),
                        })
                        .unwrap();
                    drop(store);
                    ready(&mut m, &new).await;
                    assert_eq!(ask(&mut tcp, "y").await, "y");
                    drop(tcp);
                    new.send_signal(libc::SIGTERM).unwrap();
                    assert_eq!(exit_code(&mut new).await, 0);
                }
                assert_eq!(open_fds(), before);
            });
        },
    );
}
