//! `examples/tcp_proxy` as a process whose descriptor limit is lowered while it runs
//! (`prlimit`): a connection it has no descriptors for waits in the listen backlog, and is
//! served once others end, instead of being accepted and then reset for want of a pipe.
//!
//! Needs the examples built (`cargo build -p overlap --examples`).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{set_soft_nofile_of, ExampleServer};

/// Sends `msg` on `conn` and reads its echo back.
fn echo_once(conn: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    conn.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    conn.read_exact(&mut got).unwrap();
    got
}

fn proxy_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

#[test]
fn a_limit_lowered_while_running_keeps_new_connections_in_the_backlog() {
    let echo = ExampleServer::start("tcp_echo");
    let proxy = ExampleServer::start_with("tcp_proxy", &[&echo.addr.to_string()]);
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

    // Their descriptors freed, the queued connection is served.
    held.clear();
    late.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = [0u8; 4];
    late.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"late");
    assert_eq!(echo_once(&mut late, b"and more"), b"and more");
}
