//! A user's SOCKS5 proxy server (RFC 1928, with RFC 1929's username/password method),
//! sketched as one would for tokio and then written for overlap
//! (`port_user9_socks5/server.rs`), with both sides' bytes in `wire.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! let limit = Arc::new(Semaphore::new(max_clients));
//! loop {
//!     let permit = limit.clone().acquire_owned().await?; // over the cap: left in the backlog
//!     let (mut conn, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let req = match timeout(handshake_timeout, handshake(&mut conn)).await {
//!             Ok(Ok(Some(req))) => req, // greeting, auth ([1, 0] or [1, 1] and close), request
//!             _ => return,
//!         };
//!         match req {
//!             Connect(target) => {
//!                 let mut up = match connect_any(&target).await { // lookup_host for names
//!                     Ok(up) => up,
//!                     Err(e) => return write_reply(&mut conn, match e.kind() {
//!                         ErrorKind::ConnectionRefused => 0x05,
//!                         ErrorKind::HostUnreachable => 0x04,
//!                         ErrorKind::NetworkUnreachable => 0x03,
//!                         _ => 0x01,
//!                     }, None).await,
//!                 };
//!                 write_reply(&mut conn, 0, Some(up.local_addr()?)).await?;
//!                 select! { r = copy_bidirectional(&mut conn, &mut up) => .., _ = idle => .. }
//!             }
//!             Bind(_) => { /* TcpListener on conn.local_addr().ip(), two replies, relay */ }
//!             UdpAssociate(_) => {
//!                 let sock = UdpSocket::bind((conn.local_addr()?.ip(), 0)).await?;
//!                 write_reply(&mut conn, 0, Some(sock.local_addr()?)).await?;
//!                 select! { _ = pump(&sock) => {}, _ = conn.read(&mut [0]) => {} } // sock dropped
//!             }
//!             Unsupported(code) => write_reply(&mut conn, code, None).await, // 0x07, 0x08
//!         }
//!         drop(permit);
//!     });
//! }
//! ```
//!
//! The tests check: 50 clients at once echo 256 KiB each byte-exact through the proxy (half
//! relayed with `copy_bidirectional`, half with `splice_bidirectional`), to IPv4, IPv6 and
//! `localhost` targets; a half-close passes through both ways; a refused target is reply
//! 0x05, an unknown command 0x07, an unknown address type 0x08; a bad password is refused
//! and the connection closed; a client silent after connecting is dropped, and an idle
//! relay closed, on a paused clock; BIND's two replies and the relay to the peer that
//! connected back; UDP ASSOCIATE relays datagrams with exact bytes and source addresses
//! both ways, drops fragments, and closes its socket with the control connection; a
//! client over the cap waits until one leaves; and no fd or task is left.
//!
//! What the port changed, against tokio: `tokio::spawn` became a `JoinSet` inside the
//! accept loop (the server's drop aborts every client), `Arc` became `Rc`, and tokio's
//! `select!` branches got `fuse()`. `io::copy_bidirectional` takes the same `&mut` streams;
//! an idle timeout wraps them in a stream that notes the time of each read and write, as it
//! would for tokio. `splice_bidirectional` needs no `&mut` but sees no byte, so the
//! zero-copy relay has no idle timeout.

mod support;

#[path = "port_user9_socks5/server.rs"]
mod server;
#[path = "port_user9_socks5/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use server::{Config, Server};
use support::{pattern, until, within};
use wire::Target;

const HANG: Duration = Duration::from_secs(10);

fn users() -> Config {
    Config {
        users: vec![("ann".into(), "s3cret".into())],
        ..Config::default()
    }
}

/// Greets (with auth when `cred` is given) and sends `cmd` to `target`; gives the first
/// reply.
async fn request(
    proxy: SocketAddr,
    cred: Option<(&str, &str)>,
    cmd: u8,
    target: &Target,
) -> (TcpStream, u8, SocketAddr) {
    let mut conn = TcpStream::connect(proxy).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let method = if cred.is_some() { 2 } else { 0 };
    conn.write_all(&[5, 1, method]).await.unwrap();
    let mut chosen = [0u8; 2];
    conn.read_exact(&mut chosen).await.unwrap();
    assert_eq!(chosen, [5, method]);
    if let Some((user, pass)) = cred {
        let mut auth = vec![1, user.len() as u8];
        auth.extend_from_slice(user.as_bytes());
        auth.push(pass.len() as u8);
        auth.extend_from_slice(pass.as_bytes());
        conn.write_all(&auth).await.unwrap();
        let mut status = [0u8; 2];
        conn.read_exact(&mut status).await.unwrap();
        assert_eq!(status, [1, 0]);
    }
    conn.write_all(&wire::request(cmd, target)).await.unwrap();
    let (code, addr) = within(HANG, wire::read_reply(&mut conn), "a reply")
        .await
        .unwrap();
    (conn, code, addr)
}

async fn read_all(conn: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    within(HANG, conn.read_to_end(&mut got), "end of file")
        .await
        .unwrap();
    got
}

/// A free port on `ip`: bound, then let go.
async fn dead_port(ip: &str) -> SocketAddr {
    let l = TcpListener::bind((ip, 0)).await.unwrap();
    l.local_addr().unwrap()
}

#[overlap::test]
async fn fifty_clients_echo_256k_byte_exact_to_v4_v6_and_names() {
    let echo4 = support::echo_server().await;
    let l6 = TcpListener::bind("[::1]:0").await.unwrap();
    let echo6 = l6.local_addr().unwrap();
    overlap::spawn(async move {
        loop {
            let (c, _) = l6.accept().await.unwrap();
            overlap::spawn(support::echo_until_eof(c));
        }
    });
    let copying = Server::start(users()).await;
    let splicing = Server::start(Config {
        zero_copy: true,
        ..users()
    })
    .await;
    let mut clients = overlap::task::JoinSet::new();
    for i in 0..50 {
        let proxy = if i % 2 == 0 {
            copying.addr
        } else {
            splicing.addr
        };
        let target = match i % 3 {
            0 => Target::Addr(echo4),
            1 => Target::Addr(echo6),
            // Names resolve (on the pool) to ::1 and 127.0.0.1; the echo server is on the
            // latter only, so the ::1 connect is refused and the next address tried.
            _ => Target::Name("localhost".into(), echo4.port()),
        };
        clients.spawn(async move {
            let (conn, code, _) = request(proxy, Some(("ann", "s3cret")), 1, &target).await;
            assert_eq!(code, 0, "client {i} to {target:?}");
            let data = pattern(256 * 1024 + i);
            let (mut rd, wr) = conn.into_split();
            support::pass_through(wr, &mut rd, &data, "the proxy").await;
        });
    }
    within(HANG, clients.join_all(), "fifty clients").await;
}

#[overlap::test]
async fn half_close_passes_through_both_ways() {
    for zero_copy in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target::Addr(listener.local_addr().unwrap());
        let proxy = Server::start(Config {
            zero_copy,
            ..Config::default()
        })
        .await;
        let (mut client, code, bound) = request(proxy.addr, None, 1, &target).await;
        assert_eq!(code, 0);
        let (mut server, from) = listener.accept().await.unwrap();
        assert_eq!(from, bound, "BND.ADDR is the proxy's outbound address");
        client.write_all(b"request").await.unwrap();
        client.close().await.unwrap();
        // The server reads the whole request and end of file, then still answers.
        assert_eq!(read_all(&mut server).await, b"request");
        server.write_all(b"answer after eof").await.unwrap();
        server.close().await.unwrap();
        assert_eq!(read_all(&mut client).await, b"answer after eof");
    }
}

#[overlap::test]
async fn connect_errors_are_the_protocols_reply_codes() {
    let proxy = Server::start(Config::default()).await;
    // Refused, to a literal address and to a name.
    let dead = dead_port("127.0.0.1").await;
    for target in [
        Target::Addr(dead),
        Target::Name("localhost".into(), dead.port()),
    ] {
        let (mut conn, code, addr) = request(proxy.addr, None, 1, &target).await;
        assert_eq!(
            (code, addr),
            (0x05, "0.0.0.0:0".parse().unwrap()),
            "{target:?}"
        );
        assert_eq!(read_all(&mut conn).await, b"");
    }
    // An unknown command, and an unknown address type.
    let (mut conn, code, _) = request(proxy.addr, None, 9, &Target::Addr(dead)).await;
    assert_eq!(code, 0x07);
    assert_eq!(read_all(&mut conn).await, b"");
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    // ATYP 2 is none of RFC 1928's: its length unknown, the request ends there (bytes
    // after it, unread when the proxy closes, would reset the connection under the reply).
    conn.write_all(&[5, 1, 0, 5, 1, 0, 2]).await.unwrap();
    let mut got = Vec::new();
    within(HANG, conn.read_to_end(&mut got), "the reply")
        .await
        .unwrap();
    assert_eq!(got, [&[5, 0][..], &wire::reply(0x08, None)].concat());
}

#[overlap::test]
async fn bad_auth_is_refused_and_closed() {
    let proxy = Server::start(users()).await;
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    conn.write_all(&[5, 1, 2, 1, 3]).await.unwrap();
    conn.write_all(b"ann\x05wrong").await.unwrap();
    assert_eq!(read_all(&mut conn).await, [5, 2, 1, 1]);
    // A client offering no method the proxy takes gets 0xFF.
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    conn.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_all(&mut conn).await, [5, 0xFF]);
}

#[overlap::test(start_paused = true)]
async fn a_silent_client_is_dropped_and_an_idle_relay_closed() {
    let proxy = Server::start(Config {
        handshake_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(7),
        ..Config::default()
    })
    .await;
    // Nothing after the connect; then a greeting cut short.
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    let mut partial = TcpStream::connect(proxy.addr).await.unwrap();
    partial.set_nodelay(true).unwrap();
    partial.write_all(&[5, 3, 0]).await.unwrap();
    let start = overlap::time::Instant::now();
    assert_eq!(read_all(&mut silent).await, b"");
    assert_eq!(read_all(&mut partial).await, b"");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(proxy.stats.handshake_timeouts.get(), 2);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target::Addr(listener.local_addr().unwrap());
    let (mut client, code, _) = request(proxy.addr, None, 1, &target).await;
    assert_eq!(code, 0);
    let (mut server, _) = listener.accept().await.unwrap();
    server.set_nodelay(true).unwrap();
    client.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    server.read_exact(&mut one).await.unwrap();
    let start = overlap::time::Instant::now();
    // No byte either way for the idle timeout: both ends closed.
    assert_eq!(read_all(&mut client).await, b"");
    assert_eq!(read_all(&mut server).await, b"");
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert_eq!(proxy.stats.idle_timeouts.get(), 1);
}

#[overlap::test]
async fn bind_reports_the_listener_then_the_peer_and_relays() {
    let proxy = Server::start(users()).await;
    let (mut client, code, bound) = request(
        proxy.addr,
        Some(("ann", "s3cret")),
        2,
        &Target::Addr("127.0.0.1:0".parse().unwrap()),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(bound.ip(), proxy.addr.ip());
    // The application server connects back to the address the first reply gave.
    let mut peer = TcpStream::connect(bound).await.unwrap();
    let (code, from) = within(HANG, wire::read_reply(&mut client), "the second reply")
        .await
        .unwrap();
    assert_eq!((code, from), (0, peer.local_addr().unwrap()));
    peer.write_all(b"data from the peer").await.unwrap();
    peer.close().await.unwrap();
    client.write_all(b"and back").await.unwrap();
    client.close().await.unwrap();
    assert_eq!(read_all(&mut client).await, b"data from the peer");
    assert_eq!(read_all(&mut peer).await, b"and back");
    // The listener went with the accept: a second connect is refused.
    let err = TcpStream::connect(bound).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[overlap::test]
async fn udp_associate_relays_exact_datagrams_and_ends_with_the_control_connection() {
    let proxy = Server::start(Config::default()).await;
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = client.local_addr().unwrap();
    let (control, code, relay) = request(proxy.addr, None, 3, &Target::Addr(me)).await;
    assert_eq!(code, 0);
    assert_eq!(proxy.stats.udp_relays_live.get(), 1);
    let mut buf = [0u8; 2048];
    // A fragment (FRAG 1) is dropped; the whole datagram after it goes through.
    let frag = wire::udp_with(1, &Target::Addr(echo_addr), b"fragment");
    client.send_to(&frag, relay).await.unwrap();
    for (i, target) in [
        Target::Addr(echo_addr),
        Target::Name("localhost".into(), echo_addr.port()),
    ]
    .iter()
    .enumerate()
    {
        let data = [format!("datagram {i} ").as_bytes(), &[0, 0xff]].concat();
        client
            .send_to(&wire::udp_with(0, target, &data), relay)
            .await
            .unwrap();
        let (n, from) = within(HANG, echo.recv_from(&mut buf), "at the target")
            .await
            .unwrap();
        assert_eq!((&buf[..n], from), (&data[..], relay), "{target:?}");
        echo.send_to(b"reply bytes", from).await.unwrap();
        let (n, from) = within(HANG, client.recv_from(&mut buf), "the reply")
            .await
            .unwrap();
        assert_eq!(from, relay);
        assert_eq!(&buf[..n], wire::udp_datagram(echo_addr, b"reply bytes"));
    }
    assert_eq!(proxy.stats.fragments_dropped.get(), 1);
    // A datagram from somewhere the client never sent to is not passed on.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger.send_to(b"unasked", relay).await.unwrap();
    // The control connection closes: the relay ends and its socket is closed.
    drop(control);
    until(|| proxy.stats.udp_relays_live.get() == 0, "the relay's end").await;
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    probe.connect(relay).await.unwrap();
    probe.send(b"anyone?").await.unwrap();
    let err = within(HANG, probe.recv(&mut buf), "the port's refusal")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // Nothing but the two replies reached the client.
    assert!(client.try_recv_from(&mut buf).is_err());
}

#[overlap::test]
async fn a_client_over_the_cap_waits_until_one_leaves() {
    let echo = support::echo_server().await;
    let proxy = Server::start(Config {
        max_clients: 2,
        ..Config::default()
    })
    .await;
    let target = Target::Addr(echo);
    let (a, code_a, _) = request(proxy.addr, None, 1, &target).await;
    let (mut b, code_b, _) = request(proxy.addr, None, 1, &target).await;
    assert_eq!((code_a, code_b), (0, 0));
    // The third connects (the backlog takes it) but is not served.
    let mut c = TcpStream::connect(proxy.addr).await.unwrap();
    c.write_all(&[5, 1, 0]).await.unwrap();
    b.write_all(b"ping").await.unwrap();
    let mut four = [0u8; 4];
    b.read_exact(&mut four).await.unwrap();
    support::settle().await;
    assert_eq!(proxy.stats.accepted.get(), 2);
    let mut two = [0u8; 2];
    assert!(c.try_read(&mut two).is_err(), "served over the cap");
    // One leaves: the third is served.
    drop(a);
    within(HANG, c.read_exact(&mut two), "the third's greeting")
        .await
        .unwrap();
    assert_eq!(two, [5, 0]);
    assert_eq!(proxy.stats.accepted.get(), 3);
}

#[test]
fn no_fd_or_task_left() {
    support::run_in_child("no_fd_or_task_left", || {
        overlap::block_on(async {
            let echo = support::echo_server().await;
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            {
                let proxy = Server::start(Config::default()).await;
                let splice = Server::start(Config {
                    zero_copy: true,
                    ..Config::default()
                })
                .await;
                for p in [proxy.addr, splice.addr] {
                    let (conn, code, _) = request(p, None, 1, &Target::Addr(echo)).await;
                    assert_eq!(code, 0);
                    let (mut rd, wr) = conn.into_split();
                    support::pass_through(wr, &mut rd, &pattern(70_000), "the proxy").await;
                }
                // Left mid-relay, mid-BIND and mid-UDP: the server's drop ends them.
                let (_c, _, _) = request(proxy.addr, None, 1, &Target::Addr(echo)).await;
                let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
                let (_b, _, _) = request(proxy.addr, None, 2, &Target::Addr(any)).await;
                let (_u, _, _) = request(proxy.addr, None, 3, &Target::Addr(any)).await;
                let _silent = TcpStream::connect(proxy.addr).await.unwrap();
                support::settle().await;
            }
            // The echo server's tasks see end of file in their own time.
            until(
                || overlap::metrics().tasks_alive == tasks && support::open_fds() == fds,
                "every task and fd gone",
            )
            .await;
        });
    });
}
