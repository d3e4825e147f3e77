//! The HTTP echo example against clients that send but do not read: answers are not piled
//! up in memory (the server stops reading once its writes back up), and a client that never
//! reads is given up on after the write timeout instead of holding its task and fd forever.

#[allow(dead_code)]
#[path = "../examples/http_echo/conn.rs"]
mod conn;
#[path = "../examples/http_echo/date.rs"]
mod date;
#[allow(dead_code)]
mod http_echo_harness;
#[allow(dead_code)]
#[path = "../examples/http_echo/memory.rs"]
mod memory;
#[allow(dead_code)]
#[path = "../examples/http_echo/request.rs"]
mod request;
mod support;

use std::io::Write;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpSocket};
use request::Limits;
use support::{status_kib, within, ExampleServer};

/// 128 pipelined POSTs of 1 MB, each next head sent right behind the previous body (so the
/// server never finds its read buffer empty between requests), and no answer read. The
/// answers used to pile up in the server (123 MiB); now its writes back up, it stops
/// reading, and the client's writes stall.
#[test]
fn pipelined_bodies_to_a_client_that_reads_nothing_do_not_grow_the_server() {
    let server = ExampleServer::start("http_echo");
    let pid = server.child.id();
    let before = status_kib(pid, "VmRSS");
    let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let body = vec![b'x'; 1_000_000];
    let head = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut tail: &[u8] = b"";
    let mut sent = 0;
    for _ in 0..128 {
        // A pause lets the server catch up, so it finds a head right behind each body.
        std::thread::sleep(Duration::from_millis(5));
        let mut first = tail.to_vec();
        first.extend_from_slice(head.as_bytes());
        first.extend_from_slice(&body[..1000]);
        let wrote = conn
            .write_all(&first)
            .and_then(|()| conn.write_all(&body[1000..body.len() - 1]));
        if wrote.is_err() {
            break; // back-pressure: the server stopped reading
        }
        tail = &body[body.len() - 1..];
        sent += 1;
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = status_kib(pid, "VmRSS");
    assert!(
        sent < 128,
        "all 128 MB were accepted from a client that reads nothing"
    );
    assert!(
        after < before + 32 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
}

/// The write timeout is 150 ms (the others keep their 10 s defaults, so a slow machine does
/// not turn this into a 408). The client sends a valid 6 MiB POST from a socket with a tiny
/// receive buffer and reads nothing: the echo cannot fit the socket buffers, and the server
/// must give up on writing it.
#[test]
fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    overlap::block_on(async {
        let limits = Limits {
            write_timeout: Duration::from_millis(150),
            ..Limits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = overlap::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            http_echo_harness::serve_alone(stream, &limits).await
        });
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut client = sock.connect(addr).await.unwrap();
        let body = vec![b'x'; 6 << 20];
        let head = format!(
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(&body).await.unwrap();
        let ended = within(
            Duration::from_secs(30),
            server,
            "the server is still writing to a client that reads nothing",
        )
        .await;
        let err = ended
            .unwrap()
            .expect_err("the connection ends with an error");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    });
}
