//! hyper's HTTP/1.1 server on overlap (`examples/hyper_echo`), run as the real binary and
//! spoken to over loopback sockets.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{ExampleServer, Rng};

/// Reads one response: its status line and its body (hyper always sends a length here).
fn read_response(r: &mut impl BufRead) -> (String, Vec<u8>) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed inside a head");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status.trim_end().to_string(), body)
}

fn post(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn connect(server: &ExampleServer) -> (TcpStream, BufReader<TcpStream>) {
    let conn = TcpStream::connect(server.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let reader = BufReader::new(conn.try_clone().unwrap());
    (conn, reader)
}

#[test]
fn bodies_come_back_exactly_on_one_keep_alive_connection() {
    let server = ExampleServer::start("hyper_echo");
    let (mut conn, mut reader) = connect(&server);
    let mut rng = Rng(7);
    let big: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    for body in [&b"hello"[..], &big, b""] {
        conn.write_all(&post(body)).unwrap();
        let (status, got) = read_response(&mut reader);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(got == body, "a {}-byte body came back changed", body.len());
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = ExampleServer::start("hyper_echo");
    let (mut conn, mut reader) = connect(&server);
    let bodies: Vec<Vec<u8>> = (1..=16).map(|n| vec![b'a' + n as u8; n * 100]).collect();
    let all: Vec<u8> = bodies.iter().flat_map(|b| post(b)).collect();
    conn.write_all(&all).unwrap();
    for body in &bodies {
        let (status, got) = read_response(&mut reader);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(&got, body);
    }
}

#[test]
fn a_malformed_request_is_refused_and_a_vanished_client_harms_nobody() {
    let mut server = ExampleServer::start("hyper_echo");
    let (mut conn, mut reader) = connect(&server);
    conn.write_all(b"THIS IS NOT HTTP\r\n\r\n").unwrap();
    // hyper closes such a connection, without a response (as it does on tokio).
    let mut rest = String::new();
    reader.read_line(&mut rest).unwrap();
    assert_eq!(rest, "", "an answer to garbage");
    // A client that goes away halfway through a body.
    let mut gone = TcpStream::connect(server.addr).unwrap();
    gone.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
        .unwrap();
    drop(gone);
    // Others are still served.
    let (mut conn, mut reader) = connect(&server);
    conn.write_all(&post(b"still here")).unwrap();
    assert_eq!(read_response(&mut reader).1, b"still here");
    assert!(server.is_running());
}

#[test]
fn two_hundred_connections_at_once_from_overlap_clients() {
    use overlap::io::{AsyncReadExt, AsyncWriteExt};
    use overlap::net::TcpStream;

    let server = ExampleServer::start("hyper_echo");
    let addr = server.addr;
    overlap::block_on(async move {
        let clients: Vec<_> = (0..200u32)
            .map(|i| {
                overlap::spawn(async move {
                    let mut conn = TcpStream::connect(addr).await?;
                    for round in 0..5u32 {
                        let body = format!("client {i} round {round}");
                        conn.write_all(&post(body.as_bytes())).await?;
                        // The response ends with the body; read until it is all in.
                        let mut got = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !got.ends_with(body.as_bytes()) {
                            let n = conn.read(&mut buf).await?;
                            assert!(n > 0, "closed before the answer");
                            got.extend_from_slice(&buf[..n]);
                        }
                        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
                    }
                    std::io::Result::Ok(())
                })
            })
            .collect();
        for c in clients {
            let served = support::within(Duration::from_secs(30), c, "a client").await;
            served.unwrap().unwrap();
        }
    });
}

#[test]
fn a_connection_where_nothing_moves_for_the_idle_limit_is_closed() {
    // 1 s of idleness allowed: ten times the pauses of the busy connection below, so a
    // loaded machine does not cut it.
    let server = ExampleServer::start_with("hyper_echo", &["1000"]);
    // Half a request, then nothing: the server gives up (it used to wait for ever).
    let (mut stalled, mut reader) = connect(&server);
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let closed = std::io::Read::read_to_end(&mut reader, &mut rest);
    assert!(
        closed.is_ok()
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the stalled connection was not closed: {closed:?}"
    );
    // A connection that keeps moving is not cut, though it lasts longer than the limit.
    let (mut conn, mut reader) = connect(&server);
    for i in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        conn.write_all(&post(format!("still here {i}").as_bytes()))
            .unwrap();
        assert_eq!(
            read_response(&mut reader).1,
            format!("still here {i}").as_bytes()
        );
    }
}
