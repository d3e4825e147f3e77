//! The HTTP example's shutdown, run as the real binary: on `SIGTERM` or Ctrl-C (`SIGINT`) it
//! stops accepting, closes idle connections, lets a request in flight finish (answered with
//! `Connection: close`), and exits with status 0.

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

/// Reads until end of file (a hang guard of 20 s aside), returning what came.
fn read_to_eof(conn: &mut TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("no end of file");
    got
}

#[test]
fn sigterm_closes_idle_connections_and_finishes_the_request_in_flight() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    // One kept-alive connection, idle; one in the middle of a request body.
    let mut idle = TcpStream::connect(addr).unwrap();
    echo_once(&mut idle);
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the server has read that much
    send_signal(child, libc::SIGTERM);
    // The listener closes: new connections are refused (once the signal is handled).
    let start = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "still accepting");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The idle connection is closed, with nothing sent.
    assert_eq!(read_to_eof(&mut idle), b"");
    // The request in flight is answered, as the last on its connection.
    assert!(child.try_wait().unwrap().is_none(), "exited mid-request");
    busy.write_all(b"llo").unwrap();
    let answer = String::from_utf8(read_to_eof(&mut busy)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("hello"), "{answer}");
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
