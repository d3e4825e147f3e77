//! `examples/tcp_proxy` as a process whose descriptor limit is lowered while it runs
//! (`prlimit`): a connection it has no descriptors for waits in the listen backlog, and is
//! served once others end, instead of being accepted and then reset for want of a pipe; the
//! proxy says once why clients wait (it said nothing), and serves on if it cannot say it.
//!
//! Needs the examples built (`cargo build -p overlap --examples`).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use support::{set_soft_nofile_of, ExampleServer};

/// Sends `msg` on `conn` and reads its echo back.
fn echo_once(conn: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    conn.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    conn.read_exact(&mut got).unwrap();
    got
}

const HANG: Duration = Duration::from_secs(10);

fn proxy_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

/// With `stderr_read` false, the proxy's stderr is a pipe whose reader is gone: what it logs
/// cannot be written, and it must serve on all the same.
fn lower_the_limit_while_running(stderr_read: bool) {
    let echo = ExampleServer::start("tcp_echo");
    let upstream = echo.addr.to_string();
    let mut proxy = ExampleServer::start_with_stderr("tcp_proxy", &[&upstream], Stdio::piped());
    // Closed here at once, unless read.
    let pipe = proxy.child.stderr.take().filter(|_| stderr_read);
    let stderr = support::stderr_lines(pipe);
    let pid = proxy.child.id();
    let mut held: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut conn = TcpStream::connect(proxy.addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            assert_eq!(echo_once(&mut conn, b"held"), b"held");
            conn
        })
        .collect();

    // Room for a client socket and its upstream socket, not for their pipes.
    set_soft_nofile_of(pid, proxy_fds(pid) + 2);
    let mut late = TcpStream::connect(proxy.addr).unwrap();
    late.write_all(b"late").unwrap();
    late.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    match late.read(&mut byte) {
        // Still queued: nothing comes back yet.
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the late connection was taken in and dropped: {other:?}"),
    }
    // The held connections are still served under the lower limit.
    assert_eq!(echo_once(&mut held[0], b"still"), b"still");
    // The proxy says why the late client waits, once, not at every look at the limit.
    if stderr_read {
        let said = stderr.recv_timeout(HANG).expect("nothing said at the cap");
        assert!(said.contains("descriptor limit"), "{said:?}");
    }

    // Their descriptors freed, the queued connection is served.
    held.clear();
    late.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = [0u8; 4];
    late.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"late");
    assert_eq!(echo_once(&mut late, b"and more"), b"and more");
    let more: Vec<String> = stderr.try_iter().collect();
    assert!(more.is_empty(), "{more:?}");
}

#[test]
fn a_limit_lowered_while_running_keeps_new_connections_in_the_backlog() {
    lower_the_limit_while_running(true);
}

/// `eprintln!` panics when stderr is a pipe nobody reads any more: the proxy's accept loop,
/// and all its connections, would die with the line that says it is at its cap.
#[test]
fn at_the_cap_with_stderr_gone_the_proxy_serves_on() {
    lower_the_limit_while_running(false);
}
