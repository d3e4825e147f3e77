//! A user's service written to run under systemd-style socket activation and `sd_notify`,
//! and the tiny service manager that drives it, sketched as one would for tokio and then
//! written for overlap: the service's side of `sd_listen_fds` (`listen_fds.rs`: the
//! `LISTEN_*` variables, `SO_TYPE`/`SO_ACCEPTCONN` checks, close-on-exec), of `sd_notify`
//! (`notify.rs`), the service itself (`service.rs`: a line echo on each stream listener,
//! datagram echo, watchdog, reload, drain, and handing its open connections to the fd store
//! for a restart), the service as a child process (`service_process.rs`), the manager
//! (`manager.rs`: binds a TCP listener on loopback, a Unix listener at a path, a Unix
//! datagram socket and a listener in the abstract namespace, starts the service with them
//! at fds 3.., and reads the notify socket with `SCM_CREDENTIALS`, keeping `FDSTORE=1`
//! fds), and more tests (`tests_restart.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! // Service: sd_listen_fds_with_names, by hand.
//! let env = ListenEnv::take_from_env();            // and remove_var each
//! for (fd, name) in passed_fds(&env, std::process::id())? {
//!     let fd = unsafe { OwnedFd::from_raw_fd(fd) };
//!     fcntl(fd, F_SETFD, FD_CLOEXEC);
//!     check(getsockopt(fd, SO_TYPE), getsockopt(fd, SO_ACCEPTCONN), &name)?;
//!     match &name[..] {
//!         "tcp" => { let l = std::net::TcpListener::from(fd); l.set_nonblocking(true)?;
//!                    spawn(accept(tokio::net::TcpListener::from_std(l)?)) }
//!         "dgram" => { let d = std::os::unix::net::UnixDatagram::from(fd);
//!                      d.set_nonblocking(true)?; spawn(echo(tokio::net::UnixDatagram::from_std(d)?)) }
//!         n if n.starts_with("conn") => spawn(serve(restore(fd, n)?)),
//!         ..
//!     }
//! }
//! // sd_notify: an unbound datagram socket; "@name" is an abstract address.
//! let notify = tokio::net::UnixDatagram::unbound()?;
//! notify.send_to(b"READY=1\nSTATUS=serving\nMAINPID=..", addr).await?;
//! let mut wd = tokio::time::interval_at(Instant::now() + usec / 2, usec / 2);
//! loop {
//!     tokio::select! {
//!         Some(c) = conn_rx.recv() => { conns.spawn(serve(c, handover.clone())); }
//!         _ = hup.recv() => { notify("RELOADING=1\nMONOTONIC_USEC=.."); notify("READY=1") }
//!         _ = term.recv() => break Drain,
//!         _ = usr1.recv() => break Handover,
//!     }
//! }
//! // Handover: each connection stops at a read and comes back with its partial line;
//! // sendmsg(FDSTORE=1\nFDNAME=conn-<hex>, SCM_RIGHTS) via nix, through try_io.
//!
//! // Manager: socket(AF_UNIX, SOCK_DGRAM), SO_PASSCRED, and one recvmsg for both the
//! // credentials and the fds (nix::sys::socket::recvmsg with ControlMessageOwned::
//! // ScmCredentials and ScmRights), under notify.async_io(Interest::READABLE, ..).
//! let (text, cred, fds) = recv_notify(&notify).await?;
//! if cred.pid() != main_pid { continue }              // NotifyAccess=main
//! match time::timeout_at(last_ping + watchdog, recv_notify(&notify)).await { .. }
//! Command::new("/bin/sh").arg("-c").arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
//!     .env("LISTEN_FDS", n).env("LISTEN_FDNAMES", names).env("NOTIFY_SOCKET", value)
//!     .pre_exec(move || { dup2(fd, 3 + i); .. });
//! ```
//!
//! The tests check, against real processes, real loopback TCP, Unix sockets at paths and
//! in the abstract namespace: activation with four named fds (each served, the datagram one
//! too) and with one fd and an abstract `NOTIFY_SOCKET`; the exact order `STATUS=starting`
//! with `EXTEND_TIMEOUT_USEC=`, then `READY=1` with `STATUS=` and `MAINPID=`; a client that
//! connected before the service started, served from the listen backlog; `LISTEN_PID` of
//! another process (fds ignored, `STATUS=failed: ..` and `ERRNO=22`, exit 1); a datagram
//! socket passed as a stream listener refused with the fd and its kind named, a later
//! correct start serving the same sockets; the service's child inheriting no `LISTEN_*`
//! variable and none of fds 3..; `RELOADING=1` with a `MONOTONIC_USEC=` between the
//! manager's readings, then `READY=1` with the new generation; watchdog pings counted from
//! the child; a watchdog that stops pinging caught at exactly its timeout on the paused
//! clock; notifications from another pid refused (their fds closed) and malformed ones
//! refused; the restart through the fd store: two open connections, one mid-line, carried
//! to the next instance with no byte lost, and a client that connected while no instance
//! ran served; `SIGTERM` draining an open connection (exit 0) or cutting it at the drain
//! deadline (exit 3); and no fd left in the manager after a whole cycle.
//!
//! What porting it found missing:
//!
//! - A notify socket's `FDSTORE=1` needs the datagram's fds and its sender's credentials
//!   from one `recvmsg`: overlap had `recv_with_cred` (which closes the fds) and
//!   `recv_with_fds` (which drops the credentials), so a manager could check the pid only
//!   of messages it then could not keep fds from. Added:
//!   `UnixDatagram::recv_with_fds_and_cred` (overlap-net, with a test in
//!   `tests/net_unix_fds.rs`). tokio has neither half; its users write the `recvmsg` with
//!   nix under `async_io`.
//! - Everything else was there under tokio's names or better: `send_to_with_fds` (tokio
//!   users reach for nix), abstract names as paths with a leading NUL for `bind`,
//!   `send_to` and `connect` (std's `SocketAddrExt` on the manager's blocking sockets),
//!   `set_passcred`, `TryFrom<OwnedFd>` on every socket type checking the kind and making a
//!   blocking inherited fd non-blocking, `Child::send_signal`, `time::timeout_at`.
//! - As with any runtime, `sd_listen_fds`/`sd_notify` themselves are the user's (about a
//!   hundred lines here), `MONOTONIC_USEC=` needs `libc::clock_gettime` (no `Instant` says
//!   what it is in microseconds), and `LISTEN_PID` cannot be set for a child whose pid is
//!   known only after the fork: `sh -c 'LISTEN_PID=$$ exec ..'` does it, as elsewhere in
//!   these ports. Adopting makes the manager's copy of each socket non-blocking too (one
//!   open file description); the manager here never accepts on them, so nothing changes.

mod support;

#[path = "port_user18_socket_activation/listen_fds.rs"]
mod listen_fds;
#[path = "port_user18_socket_activation/manager.rs"]
mod manager;
#[path = "port_user18_socket_activation/notify.rs"]
mod notify;
#[path = "port_user18_socket_activation/service.rs"]
mod service;
#[path = "port_user18_socket_activation/service_process.rs"]
mod service_process;
#[path = "port_user18_socket_activation/tests_restart.rs"]
mod tests_restart;

use std::os::fd::AsFd;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpStream, UnixDatagram, UnixStream};
use overlap::process::Child;
use support::{within, TempDir};

use listen_fds::{passed_fds, ActivationError, ListenEnv};
use manager::{ListenPid, Manager, Sockets, Start};

/// A hang guard, never a timing assertion.
pub const HANG: Duration = Duration::from_secs(30);

/// The hidden `main` of the service as a child process; returns at once otherwise.
#[test]
fn service_process() {
    service_process::service_main();
}

/// Reads one line (without its newline) byte by byte; `None` at end of file.
pub async fn line<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match within(HANG, s.read(&mut b), "a line").await.unwrap() {
            0 if out.is_empty() => return None,
            0 => panic!("end of file mid-line after {out:?}"),
            _ if b[0] == b'\n' => return Some(String::from_utf8(out).unwrap()),
            _ => out.push(b[0]),
        }
    }
}

/// Sends `req` and a newline, returns the reply line.
pub async fn ask<S: AsyncRead + overlap::io::AsyncWrite + Unpin>(s: &mut S, req: &str) -> String {
    s.write_all(format!("{req}\n").as_bytes()).await.unwrap();
    line(s).await.expect("a reply")
}

/// The child's exit code, waited for under the hang guard.
pub async fn exit_code(child: &mut Child) -> i32 {
    within(HANG, child.wait(), "the service to exit")
        .await
        .unwrap()
        .code()
        .expect("exited, not killed")
}

/// The running child's pid.
pub fn pid_of(child: &Child) -> u32 {
    child.id().expect("still running")
}

/// Waits for `child`'s `READY=1` (from its own pid), and returns that pid.
pub async fn ready(m: &mut Manager, child: &Child) -> u32 {
    let pid = pid_of(child);
    within(HANG, m.until(pid, "READY"), "READY=1")
        .await
        .unwrap();
    pid
}

/// A temp dir `user18-<tag>` (kept while the returned `TempDir` lives), the four sockets
/// bound in it, and a manager whose notify socket is a path there.
fn set_up(tag: &str) -> (TempDir, Sockets, Manager) {
    let dir = TempDir::new(&format!("user18-{tag}"));
    let s = Sockets::bind(dir.path(), tag).unwrap();
    let m = Manager::at_path(dir.join("notify")).unwrap();
    (dir, s, m)
}

/// Starts the service with all four sockets, named as it expects.
pub fn start_all(m: &Manager, s: &Sockets) -> Child {
    m.start(Start {
        fds: s.all(),
        listen_pid: ListenPid::Own,
        watchdog_usec: None,
        env: Vec::new(),
    })
    .unwrap()
}

#[overlap::test]
async fn four_named_fds_are_each_served_and_the_notices_come_in_order() {
    let (dir, s, mut m) = set_up("four");
    let mut child = start_all(&m, &s);
    let pid = pid_of(&child);
    let (ready, before) = within(HANG, m.until(pid, "READY"), "READY=1")
        .await
        .unwrap();
    assert_eq!(before, ["STATUS=starting\nEXTEND_TIMEOUT_USEC=5000000"]);
    assert_eq!(
        ready.text,
        format!("READY=1\nSTATUS=serving 4 sockets, generation 1, 0 connections restored\nMAINPID={pid}")
    );
    let mut tcp = TcpStream::connect(s.tcp.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(ask(&mut tcp, "over tcp").await, "over tcp");
    assert_eq!(ask(&mut tcp, "PID").await, pid.to_string());
    let mut unix = UnixStream::connect(&s.unix_path).await.unwrap();
    assert_eq!(ask(&mut unix, "at a path").await, "at a path");
    let mut abs = UnixStream::connect(format!("\0{}", s.abstract_name))
        .await
        .unwrap();
    assert_eq!(ask(&mut abs, "abstract").await, "abstract");
    // Two requests in one write, answered in order.
    abs.write_all(b"a\nb\n").await.unwrap();
    assert_eq!(
        (line(&mut abs).await, line(&mut abs).await),
        (Some("a".into()), Some("b".into()))
    );
    let client = UnixDatagram::bind(dir.join("client.dgram")).unwrap();
    client.send_to(b"datagram", &s.dgram_path).await.unwrap();
    let mut buf = [0u8; 64];
    let n = within(HANG, client.recv(&mut buf), "the datagram echo")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"datagram");
    // The service's children inherit neither the variables nor the sockets.
    assert_eq!(ask(&mut tcp, "SPAWN").await, "unset:unset:unset fds");
    // A line too long with no newline ends that connection only.
    unix.write_all(&[b'x'; 101]).await.unwrap();
    assert_eq!(line(&mut unix).await.as_deref(), Some("ERR line too long"));
    assert_eq!(line(&mut unix).await, None);
    assert_eq!(ask(&mut tcp, "still here").await, "still here");
    drop((tcp, abs));
    child.send_signal(libc::SIGTERM).unwrap();
    let (stopping, _) = within(HANG, m.until(pid, "STOPPING"), "STOPPING=1")
        .await
        .unwrap();
    assert_eq!(stopping.get("STOPPING"), Some("1"));
    assert_eq!(exit_code(&mut child).await, service::EXIT_OK);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
}

#[overlap::test]
async fn one_fd_with_an_abstract_notify_socket_serves_a_client_that_came_first() {
    let dir = TempDir::new("user18-one");
    let s = Sockets::bind(dir.path(), "one").unwrap();
    let name = format!("overlap-user18-notify-{}", std::process::id());
    let mut m = Manager::abstract_named(&name).unwrap();
    assert_eq!(m.value, format!("@{name}"));
    // Connected and written before the service exists: the backlog holds it.
    let mut early = TcpStream::connect(s.tcp.local_addr().unwrap())
        .await
        .unwrap();
    early.write_all(b"early bird\n").await.unwrap();
    let mut child = m
        .start(Start {
            fds: vec![(s.tcp.as_fd(), "tcp".into())],
            listen_pid: ListenPid::Own,
            watchdog_usec: None,
            env: Vec::new(),
        })
        .unwrap();
    let pid = pid_of(&child);
    let (ready, _) = within(HANG, m.until(pid, "READY"), "READY=1")
        .await
        .unwrap();
    assert_eq!(
        ready.get("STATUS"),
        Some("serving 1 sockets, generation 1, 0 connections restored")
    );
    assert_eq!(line(&mut early).await.as_deref(), Some("early bird"));
    drop(early);
    child.send_signal(libc::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut child).await, service::EXIT_OK);
}

#[overlap::test]
async fn another_processs_listen_pid_leaves_the_fds_alone_with_a_clear_error() {
    let (_dir, s, mut m) = set_up("pid");
    let mut child = m
        .start(Start {
            fds: s.all(),
            listen_pid: ListenPid::Other(1),
            watchdog_usec: None,
            env: Vec::new(),
        })
        .unwrap();
    let pid = pid_of(&child);
    let (failed, _) = within(HANG, m.until(pid, "ERRNO"), "the failure")
        .await
        .unwrap();
    assert_eq!(
        failed.text,
        format!(
            "STATUS=failed: LISTEN_PID=1 is not this process ({pid}): the passed fds are not ours, ignored\nERRNO=22"
        )
    );
    assert_eq!(exit_code(&mut child).await, service::EXIT_FAILED);
}

#[overlap::test]
async fn a_datagram_socket_passed_as_a_listener_is_refused_and_a_right_start_serves() {
    let (_dir, s, mut m) = set_up("kind");
    let wrong = vec![
        (s.tcp.as_fd(), "tcp".into()),
        (s.dgram.as_fd(), "unix".into()),
    ];
    let start = |fds| Start {
        fds,
        listen_pid: ListenPid::Own,
        watchdog_usec: None,
        env: Vec::new(),
    };
    let mut child = m.start(start(wrong)).unwrap();
    let pid = pid_of(&child);
    let (failed, _) = within(HANG, m.until(pid, "ERRNO"), "the failure")
        .await
        .unwrap();
    assert_eq!(
        failed.get("STATUS"),
        Some("failed: fd 4 (\"unix\") is a Unix datagram socket, expected a listening Unix stream socket")
    );
    assert_eq!(exit_code(&mut child).await, service::EXIT_FAILED);
    // The sockets are the manager's still, and a start with the right names serves them.
    let mut child = m.start(start(s.all())).unwrap();
    ready(&mut m, &child).await;
    let mut unix = UnixStream::connect(&s.unix_path).await.unwrap();
    assert_eq!(ask(&mut unix, "fine now").await, "fine now");
    drop(unix);
    child.send_signal(libc::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut child).await, service::EXIT_OK);
}

#[overlap::test]
async fn sighup_sends_reloading_with_the_monotonic_clock_then_ready() {
    let (_dir, s, mut m) = set_up("reload");
    let mut child = start_all(&m, &s);
    let pid = ready(&mut m, &child).await;
    let mut tcp = TcpStream::connect(s.tcp.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(ask(&mut tcp, "GEN").await, "1");
    let before = notify::monotonic_usec();
    child.send_signal(libc::SIGHUP).unwrap();
    let reloading = within(HANG, m.next_from(pid), "RELOADING=1").await.unwrap();
    let after = notify::monotonic_usec();
    assert_eq!(reloading.get("RELOADING"), Some("1"));
    let usec: u64 = reloading.get("MONOTONIC_USEC").unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&usec),
        "{before} <= {usec} <= {after}"
    );
    let ready = within(HANG, m.next_from(pid), "READY=1").await.unwrap();
    assert_eq!(
        ready.text,
        "READY=1\nSTATUS=serving 4 sockets, generation 2"
    );
    assert_eq!(ask(&mut tcp, "GEN").await, "2");
    drop(tcp);
    child.send_signal(libc::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut child).await, service::EXIT_OK);
}

#[test]
fn the_listen_variables_are_read_as_sd_listen_fds_reads_them() {
    let env = |pid: &str, fds: &str, names: Option<&str>| ListenEnv {
        pid: Some(pid.into()),
        fds: Some(fds.into()),
        names: names.map(Into::into),
    };
    assert_eq!(
        passed_fds(&env("7", "2", Some("tcp:unix")), 7),
        Ok(vec![(3, "tcp".into()), (4, "unix".into())])
    );
    assert_eq!(
        passed_fds(&env("7", "1", None), 7),
        Ok(vec![(3, "unknown".into())]),
        "unnamed fds are \"unknown\", as systemd says"
    );
    assert_eq!(
        passed_fds(&ListenEnv::default(), 7),
        Err(ActivationError::NotActivated)
    );
    let bad = |pid: &str, fds: &str, names| {
        passed_fds(&env(pid, fds, names), 7)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad("8", "1", None),
        "LISTEN_PID=8 is not this process (7): the passed fds are not ours, ignored"
    );
    assert_eq!(bad("x7", "1", None), "bad LISTEN_PID=\"x7\"");
    assert_eq!(bad("7", "two", None), "bad LISTEN_FDS=\"two\"");
    assert_eq!(bad("7", "1000", None), "bad LISTEN_FDS=\"1000\"");
    assert_eq!(
        bad("7", "2", Some("tcp")),
        "LISTEN_FDNAMES has 1 names for 2 fds"
    );
    assert_eq!(
        (
            listen_fds::hex_encode(b"tw"),
            listen_fds::hex_decode("7477"),
            listen_fds::hex_decode("7g")
        ),
        ("7477".to_owned(), Some(b"tw".to_vec()), None)
    );
}
