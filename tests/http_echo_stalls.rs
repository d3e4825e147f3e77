//! The HTTP echo example while a request's body is still on its way, and while a slow client
//! reads its answer: answers already queued go out before the server waits for body bytes
//! (also when the client then closes mid-body), and the write timeout ends only a client
//! that stops reading, not one that reads slowly but steadily. A client that resets the
//! connection right after its last answer was written, before the server shut down its side
//! (`shutdown(2)` then fails with `ENOTCONN`), is no error either.

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

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::time::sleep;
use request::Limits;
use support::{run_in_child, within};

const HANG: Duration = Duration::from_secs(30);

/// Serves one connection with `limits` in a task; returns the client end and the server's
/// task, whose output is how the connection ended.
async fn serve_one(
    limits: Limits,
    client: TcpSocket,
) -> (TcpStream, overlap::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = overlap::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // A fixed send buffer, so the answer below cannot hide in kernel buffers.
        let size: libc::c_int = 64 * 1024;
        // SAFETY: a plain setsockopt on a socket this task owns, with a valid int option.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        http_echo_harness::serve_alone(stream, &limits).await
    });
    (client.connect(addr).await.unwrap(), server)
}

const GET_THEN_HALF_A_POST: &[u8] = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
    POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";

/// Reads until the first answer (to `GET /one`) is complete.
async fn read_first_answer(client: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("GET /one HTTP/1.1\r\nHost: x\r\n") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the first answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// Everything the server sends until it closes.
async fn read_to_eof(client: &mut TcpStream) -> String {
    let mut got = Vec::new();
    within(HANG, client.read_to_end(&mut got), "no end of the answer")
        .await
        .unwrap();
    String::from_utf8(got).unwrap()
}

#[overlap::test]
async fn a_queued_answer_goes_out_while_the_next_body_is_awaited() {
    let limits = Limits {
        // Far beyond the hang guard: the answer must not wait for the body to time out.
        body_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let (mut client, server) = serve_one(limits, TcpSocket::new_v4().unwrap()).await;
    client.write_all(GET_THEN_HALF_A_POST).await.unwrap();
    let answer = within(
        HANG,
        read_first_answer(&mut client),
        "the answer to GET waits for the next request's body",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    server.abort();
}

#[overlap::test]
async fn a_client_closing_mid_body_still_gets_the_answers_before() {
    let (mut client, server) = serve_one(Limits::default(), TcpSocket::new_v4().unwrap()).await;
    client.write_all(GET_THEN_HALF_A_POST).await.unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = read_to_eof(&mut client).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.ends_with("GET /one HTTP/1.1\r\nHost: x\r\n"), "{got:?}");
    let err = within(HANG, server, "server still running")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

/// 4 MiB echoed to a client that reads 64 KiB every 20 ms: over a second in all, never
/// more than a few tens of milliseconds without reading, so a 500 ms write timeout (for
/// stalls) must not fire.
#[overlap::test]
async fn a_slow_but_steady_reader_gets_its_whole_answer() {
    let limits = Limits {
        write_timeout: Duration::from_millis(500),
        max_body: 8 << 20,
        ..Limits::default()
    };
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    let (mut client, server) = serve_one(limits, sock).await;
    let body = vec![b'x'; 4 << 20];
    let head = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&body).await.unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = within(HANG, client.read(&mut buf), "read hung").await;
        match n {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!("after {got} bytes: {e}"),
        }
        sleep(Duration::from_millis(20)).await;
    }
    assert!(got > body.len(), "only {got} bytes of the answer arrived");
    within(HANG, server, "server still running")
        .await
        .unwrap()
        .unwrap();
}

/// Under connection churn (connect, one `Connection: close` request, reset) the reset came
/// between the answer's write and the `shutdown` for about one connection in 150, each logged
/// as a server error. The race is made certain here by a seccomp filter that answers every
/// `shutdown` with `ENOTCONN`, in a child process.
#[test]
fn a_reset_after_the_last_answer_is_not_an_error() {
    run_in_child("a_reset_after_the_last_answer_is_not_an_error", || {
        support::seccomp::deny(&[(libc::SYS_shutdown, libc::ENOTCONN)]);
        overlap::block_on(async {
            let (mut client, server) =
                serve_one(Limits::default(), TcpSocket::new_v4().unwrap()).await;
            client
                .write_all(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let ended = within(HANG, server, "the server task").await.unwrap();
            let answer = read_to_eof(&mut client).await;
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
            assert!(answer.contains("Connection: close\r\n"), "{answer}");
            assert!(answer.ends_with("GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"));
            ended.unwrap_or_else(|e| panic!("the connection ended with an error: {e}"));
        });
    });
}
