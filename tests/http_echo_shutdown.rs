//! The HTTP example's shutdown, run as the real binary: on `SIGTERM` or Ctrl-C (`SIGINT`) it
//! stops accepting, lets open connections finish, and exits with status 0.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use support::ExampleServer;

fn send_signal(child: &Child, signum: i32) {
    // SAFETY: kill takes no pointers; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signum) }, 0);
}

/// Waits for the child to exit, for at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn echo_once(conn: &mut TcpStream) {
    conn.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"hello") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn sigterm_stops_accepting_and_waits_for_the_open_connection() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    let mut conn = TcpStream::connect(addr).unwrap();
    echo_once(&mut conn);
    send_signal(child, libc::SIGTERM);
    // The listener closes: new connections are refused (once the signal is handled).
    let start = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "still accepting");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The open keep-alive connection still works, and the server waits for it.
    echo_once(&mut conn);
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a connection open"
    );
    drop(conn);
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn ctrl_c_with_nothing_open_exits_cleanly() {
    let mut server = ExampleServer::start("http_echo");
    send_signal(&server.child, libc::SIGINT);
    let status = wait_exit(&mut server.child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}
