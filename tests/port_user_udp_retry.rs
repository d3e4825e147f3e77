//! A user's UDP request/response, sketched as one would for tokio (tokio's echo-udp
//! example for the server; a client that sends, waits under `timeout`, and sends again)
//! and then written for overlap. The server drops the first copy of every request, as a
//! lossy network would, so each answer takes a retry; late duplicates of earlier answers
//! must be told apart by request id. A request to a port nobody listens on fails with the
//! kernel's `ConnectionRefused` on a connected socket instead of timing out.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::io;
use overlap::net::UdpSocket;
use overlap::time::timeout;

/// How long the client waits for each answer; a lost request costs one of these.
const WAIT: Duration = Duration::from_millis(100);
/// Attempts before a request gives up.
const ATTEMPTS: u32 = 50;

/// Answers `<id> <text>` with `<id> <TEXT>`, but drops the first copy of each id. Echoes
/// every further copy (so the client can see duplicates). Stops on `quit`; returns how
/// many datagrams it dropped.
async fn lossy_upper_server(socket: UdpSocket) -> io::Result<usize> {
    let mut seen = HashSet::new();
    let mut dropped = 0;
    let mut buf = [0u8; 1500];
    loop {
        let (n, peer) = socket.recv_from(&mut buf).await?;
        let msg = &buf[..n];
        if msg == b"quit" {
            return Ok(dropped);
        }
        let id = msg
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
            .to_vec();
        if seen.insert(id) {
            dropped += 1;
            continue;
        }
        socket.send_to(&msg.to_ascii_uppercase(), peer).await?;
    }
}

/// Sends `<id> <text>` until an answer for `id` comes back; skips answers to other ids.
/// Returns the answer's text and the number of attempts it took.
async fn request(socket: &UdpSocket, id: u32, text: &str) -> io::Result<(String, u32)> {
    let req = format!("{id} {text}");
    let mut buf = [0u8; 1500];
    for attempt in 1..=ATTEMPTS {
        socket.send(req.as_bytes()).await?;
        // Answers to earlier requests (duplicates of retried ones) may still arrive.
        let answer = timeout(WAIT, async {
            loop {
                let n = socket.recv(&mut buf).await?;
                let reply = std::str::from_utf8(&buf[..n]).expect("ascii reply");
                if let Some((rid, body)) = reply.split_once(' ') {
                    if rid == id.to_string() {
                        return io::Result::Ok(body.to_string());
                    }
                }
            }
        })
        .await;
        match answer {
            Ok(body) => return Ok((body?, attempt)),
            Err(_elapsed) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer to {id}"),
    ))
}

#[overlap::test]
async fn each_request_is_retried_until_answered_and_stale_answers_are_skipped() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let server = overlap::spawn(lossy_upper_server(server));

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(server_addr).await.unwrap();
    assert_eq!(client.peer_addr().unwrap(), server_addr);
    for (id, text) in ["alpha", "beta beta", "", "gamma"].into_iter().enumerate() {
        let (answer, attempts) = request(&client, id as u32, text).await.unwrap();
        assert_eq!(answer, text.to_ascii_uppercase());
        // The first copy is always dropped; a slow machine may need more.
        assert!(attempts >= 2, "request {id} answered at once");
    }
    client.send(b"quit").await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), 4);
}

/// Several clients on one server at once, each retrying on its own.
#[overlap::test]
async fn concurrent_clients_each_get_their_own_answers() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let server = overlap::spawn(lossy_upper_server(server));

    let mut clients = overlap::task::JoinSet::new();
    for c in 0..4u32 {
        clients.spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(server_addr).await?;
            for i in 0..5 {
                let id = c * 100 + i;
                let (answer, _) = request(&socket, id, &format!("c{c} m{i}")).await?;
                assert_eq!(answer, format!("C{c} M{i}"));
            }
            io::Result::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap().unwrap();
    }
    let quit = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    quit.send_to(b"quit", server_addr).await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), 20);
}

/// A port nobody listens on: the kernel answers with ICMP port unreachable, which a
/// connected socket reports on its next `recv` (tokio's does too), so the client fails at
/// once instead of waiting out its retries.
#[overlap::test]
async fn a_request_to_a_closed_port_is_refused() {
    let closed: SocketAddr = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(closed).await.unwrap();
    let err = request(&client, 1, "anyone?").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}
