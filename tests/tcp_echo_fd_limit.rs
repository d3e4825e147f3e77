//! `examples/tcp_echo` and `examples/tcp_echo_acceptor` as processes started under a low
//! descriptor limit (`prlimit`), with more clients than it allows: the server says once
//! that it is out of descriptors (it used to say nothing, leaving clients waiting with no
//! reason given), backs off instead of spinning while it stays at the limit, and serves
//! the waiting clients once others close, even when that line cannot be written (stderr a
//! pipe whose reader is gone: `eprintln!` panicked, and the server died with it).
//!
//! Needs the examples built (`cargo test` builds them).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{example_bin, ExampleServer};

const HANG: Duration = Duration::from_secs(10);

/// CPU time, user and system, of the process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses: utime and stime are the
    // 14th and 15th of the line.
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn echo_once(conn: &mut TcpStream, msg: &[u8]) {
    conn.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

/// With `stderr_read` false, the server's stderr is a pipe whose reader is gone: what it
/// logs at the limit cannot be written, and it must serve on all the same.
fn at_the_limit_logs_backs_off_and_recovers(name: &str, args: &[&str], stderr_read: bool) {
    let mut child = Command::new("prlimit")
        .arg("--nofile=24")
        .arg("--")
        .arg(example_bin(name))
        .arg("127.0.0.1:0")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed here at once, unless read.
    let pipe = child.stderr.take().filter(|_| stderr_read);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // Killed when dropped, however the test ends.
    let server = ExampleServer {
        addr: line.split_whitespace().nth(2).unwrap().parse().unwrap(),
        child,
    };
    let pid = server.child.id();
    let stderr = support::stderr_lines(pipe);

    // Twice as many clients as the limit allows descriptors; they all connect (the kernel
    // queues them on the listener), the later ones wait to be accepted.
    let mut clients: Vec<TcpStream> = (0..48)
        .map(|_| {
            let conn = TcpStream::connect(server.addr).unwrap();
            conn.set_read_timeout(Some(HANG)).unwrap();
            conn
        })
        .collect();
    if !stderr_read {
        // The last client is taken in only after the server met its limit, and failed to
        // say so: it still serves.
        let mut last = clients.pop().unwrap();
        clients.clear();
        echo_once(&mut last, b"last");
        return;
    }
    let said = stderr
        .recv_timeout(HANG)
        .expect("nothing said at the limit");
    assert!(said.contains("Too many open files"), "{said:?}");

    // Idle at the limit: backing off, the server takes little CPU (a loop retrying at once
    // would take all of a core). Generous: under half the wall time.
    let (ticks, since) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let used = (cpu_ticks(pid) - ticks) as f64 / 100.0;
    let wall = since.elapsed().as_secs_f64();
    assert!(
        used < wall / 2.0,
        "{used} s of CPU in {wall} s at the limit"
    );
    // Said once, not at every try.
    let more: Vec<String> = stderr.try_iter().collect();
    assert!(more.len() <= 1, "{more:?}");

    // The first clients were taken in and are served; once they leave, the last ones are.
    echo_once(&mut clients[0], b"first");
    let mut last = clients.pop().unwrap();
    clients.clear();
    echo_once(&mut last, b"last");
}

#[test]
fn tcp_echo_out_of_descriptors_says_so_backs_off_and_recovers() {
    at_the_limit_logs_backs_off_and_recovers("tcp_echo", &[], true);
}

#[test]
fn tcp_echo_acceptor_out_of_descriptors_says_so_backs_off_and_recovers() {
    at_the_limit_logs_backs_off_and_recovers("tcp_echo_acceptor", &["1"], true);
}

/// `eprintln!` panics when stderr is a pipe nobody reads any more: the server died at its
/// limit, with every connection, for want of a place to say so.
#[test]
fn tcp_echo_out_of_descriptors_with_stderr_gone_still_recovers() {
    at_the_limit_logs_backs_off_and_recovers("tcp_echo", &[], false);
}
