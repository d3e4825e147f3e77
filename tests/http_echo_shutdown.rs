//! The HTTP example's shutdown, run as the real binary: on `SIGTERM` or Ctrl-C (`SIGINT`) it
//! stops accepting, lets open connections finish, and exits with status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/http_echo`, which `cargo test` builds with the tests.
fn example_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join("http_echo")
}

/// Starts the server on a free loopback port; returns it and its address.
fn start() -> (Child, SocketAddr) {
    let mut child = Command::new(example_bin())
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run examples/http_echo (built by cargo test)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    (child, addr)
}

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
    let (mut child, addr) = start();
    let mut conn = TcpStream::connect(addr).unwrap();
    echo_once(&mut conn);
    send_signal(&child, libc::SIGTERM);
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
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn ctrl_c_with_nothing_open_exits_cleanly() {
    let (mut child, _addr) = start();
    send_signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}
