//! The HTTP example's shutdown, run as the real binary: on `SIGTERM` or Ctrl-C (`SIGINT`) it
//! stops accepting, closes idle connections, lets a request in flight finish (answered with
//! `Connection: close`), and exits with status 0.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
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

/// A connection in the middle of a request body (5 bytes announced, 2 sent).
fn half_a_post(addr: std::net::SocketAddr) -> TcpStream {
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe")
        .unwrap();
    busy
}

/// Sends the rest of [`half_a_post`]'s body and reads the answer to end of file.
fn finish_the_post(busy: &mut TcpStream) -> String {
    busy.write_all(b"llo").unwrap();
    String::from_utf8(read_to_eof(busy)).unwrap()
}

#[test]
fn sigterm_closes_idle_connections_and_finishes_the_request_in_flight() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    // One kept-alive connection, idle; one in the middle of a request body.
    let mut idle = TcpStream::connect(addr).unwrap();
    echo_once(&mut idle);
    let mut busy = half_a_post(addr);
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
    let answer = finish_the_post(&mut busy);
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

/// Splits a stream of answers into (head, body) pairs, by their `Content-Length`.
fn split_answers(mut bytes: &[u8]) -> Vec<(String, usize)> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an answer head")
            + 4;
        let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("a Content-Length")
            .parse()
            .unwrap();
        assert!(bytes.len() >= end + len, "answer cut short: {head}");
        bytes = &bytes[end + len..];
        answers.push((head, len));
    }
    answers
}

#[test]
fn requests_already_sent_when_the_drain_starts_are_answered() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    let mut conn = TcpStream::connect(addr).unwrap();
    // A small receive buffer, so that the answer to a large request fills it and the
    // server's send buffer: the server waits to write it, not reading on.
    let small: libc::c_int = 64 * 1024;
    // SAFETY: the fd is open for this call; the option value is a c_int that outlives it.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let body = vec![b'x'; 8 << 20];
    conn.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n")
        .unwrap();
    conn.write_all(&body).unwrap();
    // More requests, pipelined while the server still writes the first answer: more than
    // its read buffer holds (16 KiB), so most wait in its socket.
    let more = b"GET /more HTTP/1.1\r\nHost: x\r\n\r\n".repeat(700);
    conn.write_all(&more).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    send_signal(child, libc::SIGTERM);
    let start = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "still accepting");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every answer arrives whole (no reset), the last one closing the connection.
    let got = read_to_eof(&mut conn);
    let answers = split_answers(&got);
    assert_eq!(answers.len(), 701, "answers");
    assert_eq!(answers[0].1, 8 << 20);
    for (head, _) in &answers[1..700] {
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(!head.contains("Connection: close"), "{head}");
    }
    assert!(
        answers[700].0.contains("Connection: close\r\n"),
        "{}",
        answers[700].0
    );
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn an_empty_line_after_a_request_does_not_hold_the_drain() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    // Some clients end a body with an extra CRLF, which starts no request.
    let mut idle = TcpStream::connect(addr).unwrap();
    echo_once(&mut idle);
    idle.write_all(b"\r\n").unwrap();
    // A request in flight keeps the server running through the check below.
    let mut busy = half_a_post(addr);
    std::thread::sleep(Duration::from_millis(100));
    send_signal(child, libc::SIGTERM);
    // The idle connection closes at once, not when the server gives up on it and exits.
    assert_eq!(read_to_eof(&mut idle), b"");
    assert!(child.try_wait().unwrap().is_none(), "exited before closing");
    let answer = finish_the_post(&mut busy);
    assert!(answer.ends_with("hello"), "{answer}");
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

/// Eight connections, each with a `GET /{i}` sent.
fn eight_gets(addr: std::net::SocketAddr) -> Vec<TcpStream> {
    (0..8)
        .map(|i| {
            let mut c = TcpStream::connect(addr).unwrap();
            write!(c, "GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            c
        })
        .collect()
}

/// Each of [`eight_gets`]'s connections is answered, then closed.
fn each_gets_its_answer(conns: &mut [TcpStream]) {
    for (i, c) in conns.iter_mut().enumerate() {
        let answer = String::from_utf8(read_to_eof(c)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{i}: {answer:?}");
        assert!(answer.contains(&format!("GET /{i} ")), "{i}: {answer:?}");
    }
}

#[test]
fn requests_waiting_to_be_accepted_when_the_signal_comes_are_answered() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    // Stopped, the server accepts nothing: the connections wait in the backlog, their
    // requests in their sockets, when the signal arrives. Resumed, it accepts them in the
    // same turn as it sees the signal.
    send_signal(child, libc::SIGSTOP);
    let mut conns = eight_gets(addr);
    std::thread::sleep(Duration::from_millis(100));
    send_signal(child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    send_signal(child, libc::SIGCONT);
    each_gets_its_answer(&mut conns);
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

/// The same at the server's descriptor limit: it cannot accept the waiting connections when
/// the signal comes. It used to close the listener then, resetting them with their requests
/// (146 of 200 under `ulimit -n 64`); now it waits for the connections it drains to free
/// their descriptors, and accepts and answers them. (The descriptors are held by requests in
/// flight: idle connections would be closed at the limit, before the signal, to make room.)
#[test]
fn requests_waiting_for_a_descriptor_when_the_signal_comes_are_answered() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    let mut busy: Vec<TcpStream> = (0..4).map(|_| half_a_post(addr)).collect();
    std::thread::sleep(Duration::from_millis(100)); // the server has read that much
                                                    // The server holds as many descriptors as it may: it cannot accept one more.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .count();
    support::set_soft_nofile_of(child.id(), fds as u64);
    let mut waiting = eight_gets(addr);
    std::thread::sleep(Duration::from_millis(100));
    send_signal(child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none(), "exited mid-request");
    for c in &mut busy {
        let answer = finish_the_post(c);
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
    }
    each_gets_its_answer(&mut waiting);
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn a_client_that_never_stops_pipelining_is_told_to_close() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let batch = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50);
    // Sends until the server stops reading (the write then fails).
    std::thread::spawn(move || while writer.write_all(&batch).is_ok() {});
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while got.len() < 1 << 20 {
        let n = conn.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    send_signal(child, libc::SIGTERM);
    // The answers go on, whole, up to one that closes the connection: no reset when the
    // drain time runs out.
    conn.read_to_end(&mut got).expect("no reset");
    let answers = split_answers(&got);
    let last = &answers.last().unwrap().0;
    assert!(last.contains("Connection: close\r\n"), "{last}");
    drop(conn);
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn a_client_dripping_empty_lines_does_not_hold_the_drain() {
    let mut server = ExampleServer::start("http_echo");
    let (child, addr) = (&mut server.child, server.addr);
    let mut idle = TcpStream::connect(addr).unwrap();
    echo_once(&mut idle);
    // A CRLF every 5 ms, until the connection is gone.
    let mut dripper = idle.try_clone().unwrap();
    let drip = std::thread::spawn(move || {
        while dripper.write_all(b"\r\n").is_ok() {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // A request in flight keeps the server running through the check below.
    let mut busy = half_a_post(addr);
    std::thread::sleep(Duration::from_millis(100));
    send_signal(child, libc::SIGTERM);
    // The dripping connection closes, not when the server gives up on it and exits.
    let rest = read_to_eof(&mut idle);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(child.try_wait().unwrap().is_none(), "exited before closing");
    let answer = finish_the_post(&mut busy);
    assert!(answer.ends_with("hello"), "{answer}");
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
    drip.join().unwrap();
}

/// A body waiting for room in the body memory when the drain starts gets a 503 (with
/// `Retry-After` and `Connection: close`) at once, so its client can go elsewhere, while
/// the body holding the room is still served. (Before, it waited on, and the drain's end
/// closed its connection with no answer.)
#[test]
fn a_body_waiting_for_room_when_the_drain_starts_gets_a_503() {
    let mut server = ExampleServer::start_with("http_echo", &["--body-memory=128K"]);
    let (child, addr) = (&mut server.child, server.addr);
    let post = |len: usize| {
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let continued = |conn: &mut TcpStream| {
        let mut answer = [0; 25];
        conn.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 100 Continue\r\n\r\n");
    };
    // The holder has the whole budget; the waiter asks for room after it.
    let mut holder = TcpStream::connect(addr).unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    holder.write_all(post(128 << 10).as_bytes()).unwrap();
    continued(&mut holder);
    let mut waiter = TcpStream::connect(addr).unwrap();
    waiter.write_all(post(100 << 10).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // the server has read that head
    send_signal(child, libc::SIGTERM);
    let answer = String::from_utf8(read_to_eof(&mut waiter)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert!(answer.contains("Retry-After: 1\r\n"), "{answer}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    holder.write_all(&vec![b'h'; 128 << 10]).unwrap();
    let answer = read_to_eof(&mut holder);
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(answer.ends_with(&[b'h'; 1024]));
    let status = wait_exit(child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}

/// A request still unfinished when the drain's 5 s are up is cut, and the server says so on
/// stderr: when it cannot (a pipe whose reader is gone), it still exits with status 0, where
/// `eprintln!` panicked (status 101). The test waits those 5 s, beside the others.
#[test]
fn a_request_outliving_the_drain_with_stderr_gone_still_exits_cleanly() {
    let mut server = ExampleServer::start_with_stderr("http_echo", &[], Stdio::piped());
    drop(server.child.stderr.take());
    let _busy = half_a_post(server.addr);
    std::thread::sleep(Duration::from_millis(100)); // the server has read that much
    send_signal(&server.child, libc::SIGTERM);
    let status = wait_exit(&mut server.child, Duration::from_secs(20)).expect("did not exit");
    assert!(status.success(), "{status}");
}
