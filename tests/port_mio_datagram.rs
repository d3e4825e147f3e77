//! Behaviours checked by mio's datagram tests (`udp_socket.rs`, `unix_datagram.rs`) and
//! async-io's (`async.rs`: `udp_send_recv`, `uds_send_recv`, `uds_send_to_recv_from`),
//! ported to overlap's `UdpSocket` and `UnixDatagram`: datagram boundaries at the edges a
//! stream never has (a datagram of zero bytes, one larger than the buffer, a buffer of zero
//! bytes), and which datagrams a connected socket accepts. Each test names the test it
//! follows.
//!
//! Left out, covered elsewhere: option round trips, multicast and broadcast (`net_udp.rs`),
//! batches (`net_udp_batch.rs`, `net_datagram_faults.rs`), shutdown (`net_datagram_shutdown.rs`).

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::time::Duration;

use overlap::net::{UdpSocket, UnixDatagram};
use support::{poll_once, within};

const HANG: Duration = Duration::from_secs(10);
const LOREM: &[u8] = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.";

async fn udp_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.connect(b.local_addr().unwrap()).await.unwrap();
    b.connect(a.local_addr().unwrap()).await.unwrap();
    (a, b)
}

/// A fresh path for a socket in the temp dir, removed first if a past run left it.
fn sock_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("overlap-mio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

// mio: udp_socket.rs (empty datagrams); async-io: udp_send_recv
#[overlap::test]
async fn an_empty_udp_datagram_wakes_the_reader_and_is_received_as_zero_bytes() {
    let (a, b) = udp_pair().await;
    let mut first = [0u8; 64];
    let mut recv = pin!(b.recv(&mut first));
    assert!(poll_once(recv.as_mut()).await.is_pending());
    assert_eq!(a.send(&[]).await.unwrap(), 0);
    let n = within(HANG, recv, "an empty datagram did not wake the reader").await;
    assert_eq!(n.unwrap(), 0);
    let mut buf = [0u8; 64];
    // It was consumed: the next datagram is the next one sent, whole.
    a.send(LOREM).await.unwrap();
    let n = within(HANG, b.recv(&mut buf), "the next datagram")
        .await
        .unwrap();
    assert_eq!(&buf[..n], LOREM);
    // With nothing queued a try says so, it does not report another empty datagram.
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // recv_from and peek_from report the sender of an empty datagram too.
    a.send(&[]).await.unwrap();
    let (n, from) = b.peek_from(&mut buf).await.unwrap();
    assert_eq!((n, from), (0, a.local_addr().unwrap()));
    assert_eq!(b.peek_sender().await.unwrap(), a.local_addr().unwrap());
    let (n, from) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!((n, from), (0, a.local_addr().unwrap()));
}

// mio: udp_socket.rs (a receive into a short buffer)
#[overlap::test]
async fn a_udp_datagram_larger_than_the_buffer_is_truncated_and_the_rest_dropped() {
    let (a, b) = udp_pair().await;
    a.send(LOREM).await.unwrap();
    a.send(b"second").await.unwrap();
    a.send(LOREM).await.unwrap();
    let mut small = [0u8; 5];
    // peek keeps the datagram whole; a short peek then a full recv see the same one.
    assert_eq!(b.peek(&mut small).await.unwrap(), 5);
    assert_eq!(&small, &LOREM[..5]);
    let (n, from) = b.peek_from(&mut small).await.unwrap();
    assert_eq!((n, from), (5, a.local_addr().unwrap()));
    assert_eq!(b.recv(&mut small).await.unwrap(), 5);
    assert_eq!(&small, &LOREM[..5]);
    // The tail of the first datagram is gone, not read as a datagram of its own.
    let mut buf = [0u8; 64];
    let n = b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"second");
    // The same through recv_from and try_recv_from.
    let (n, from) = b.recv_from(&mut small).await.unwrap();
    assert_eq!((n, from), (5, a.local_addr().unwrap()));
    assert_eq!(
        b.try_recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

// mio: udp_socket.rs (a receive into an empty buffer takes a datagram, as recv(2) does)
#[overlap::test]
async fn a_udp_receive_into_an_empty_buffer_waits_for_and_consumes_a_datagram() {
    let (a, b) = udp_pair().await;
    let mut recv = pin!(b.recv(&mut []));
    assert!(
        poll_once(recv.as_mut()).await.is_pending(),
        "an empty-buffer receive returned without a datagram"
    );
    a.send(b"first").await.unwrap();
    let n = within(HANG, recv, "the datagram did not end the wait").await;
    assert_eq!(n.unwrap(), 0);
    a.send(b"second").await.unwrap();
    let mut buf = [0u8; 16];
    let n = within(HANG, b.recv(&mut buf), "second").await.unwrap();
    assert_eq!(&buf[..n], b"second", "the first datagram was not consumed");
}

// mio: udp_socket.rs connected_udp_socket (a connected socket hears only its peer)
#[overlap::test]
async fn a_connected_udp_socket_drops_datagrams_from_strangers() {
    let (a, b) = udp_pair().await;
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(b"from a stranger", b.local_addr().unwrap())
        .await
        .unwrap();
    a.send(b"from the peer").await.unwrap();
    let mut buf = [0u8; 32];
    let (n, from) = within(HANG, b.recv_from(&mut buf), "the peer's datagram")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"from the peer");
    assert_eq!(from, a.local_addr().unwrap());
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(b.peer_addr().unwrap(), a.local_addr().unwrap());
}

// mio: udp_socket.rs unconnected_udp_socket (peer_addr and send need a connection)
#[overlap::test]
async fn an_unconnected_udp_socket_has_no_peer_and_cannot_send_without_an_address() {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    let err = within(HANG, s.send(b"x"), "send without a peer hung")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::NotConnected | ErrorKind::InvalidInput
        ) || err.raw_os_error() == Some(libc::EDESTADDRREQ),
        "{err:?}"
    );
}

// mio: udp_socket.rs udp_socket_ipv6 (when the host has ::1)
#[overlap::test]
async fn udp_over_ipv6_loopback_when_available() {
    let Ok(a) = UdpSocket::bind("[::1]:0").await else {
        return; // no IPv6 on this host
    };
    let b = UdpSocket::bind("[::1]:0").await.unwrap();
    let to: SocketAddr = b.local_addr().unwrap();
    a.send_to(LOREM, to).await.unwrap();
    let mut buf = [0u8; 128];
    let (n, from) = within(HANG, b.recv_from(&mut buf), "v6 datagram")
        .await
        .unwrap();
    assert_eq!(&buf[..n], LOREM);
    assert_eq!(from, a.local_addr().unwrap());
}

// mio: unix_datagram.rs (empty datagrams); async-io: uds_send_recv
#[overlap::test]
async fn an_empty_unix_datagram_wakes_the_reader_and_is_received_as_zero_bytes() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let mut first = [0u8; 64];
    let mut recv = pin!(b.recv(&mut first));
    assert!(poll_once(recv.as_mut()).await.is_pending());
    assert_eq!(a.send(&[]).await.unwrap(), 0);
    let n = within(HANG, recv, "an empty datagram did not wake the reader").await;
    assert_eq!(n.unwrap(), 0);
    let mut buf = [0u8; 64];
    a.send(LOREM).await.unwrap();
    let n = within(HANG, b.recv(&mut buf), "next").await.unwrap();
    assert_eq!(&buf[..n], LOREM);
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

// mio: unix_datagram.rs (a receive into a short buffer)
#[overlap::test]
async fn a_unix_datagram_larger_than_the_buffer_is_truncated_and_the_rest_dropped() {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.send(LOREM).await.unwrap();
    a.send(b"second").await.unwrap();
    let mut small = [0u8; 5];
    assert_eq!(b.peek(&mut small).await.unwrap(), 5);
    assert_eq!(b.recv(&mut small).await.unwrap(), 5);
    assert_eq!(&small, &LOREM[..5]);
    let mut buf = [0u8; 64];
    let n = b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"second");
    // A receive into an empty buffer takes a whole datagram.
    a.send(b"third").await.unwrap();
    a.send(b"fourth").await.unwrap();
    assert_eq!(b.recv(&mut []).await.unwrap(), 0);
    let n = b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"fourth");
}

// async-io: uds_send_to_recv_from; mio: unix_datagram.rs unix_datagram_smoke_unconnected
#[overlap::test]
async fn unix_datagrams_between_a_bound_and_an_unbound_socket() {
    let path = sock_path("bound");
    let bound = UnixDatagram::bind(&path).unwrap();
    let unbound = UnixDatagram::unbound().unwrap();
    assert_eq!(unbound.send_to(LOREM, &path).await.unwrap(), LOREM.len());
    let mut buf = [0u8; 128];
    let (n, from) = within(HANG, bound.recv_from(&mut buf), "datagram")
        .await
        .unwrap();
    assert_eq!(&buf[..n], LOREM);
    assert!(from.is_unnamed(), "{from:?}");
    assert_eq!(
        bound.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    // An unbound, unconnected socket has no peer to send to.
    let err = within(HANG, unbound.send(b"x"), "send without a peer hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err:?}");
    assert_eq!(
        unbound.peer_addr().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    // Once connected, send and recv work, and peer_addr names the path.
    unbound.connect(&path).unwrap();
    assert_eq!(
        unbound.peer_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    unbound.send(b"connected").await.unwrap();
    let n = bound.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"connected");
    drop(bound);
    std::fs::remove_file(&path).unwrap();
    // With the path gone, a send fails at once rather than waiting.
    let err = within(HANG, unbound.send(b"x"), "send to a removed peer hung")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::NotConnected
        ),
        "{err:?}"
    );
}

// mio: udp_socket.rs reconnect_udp_socket_sending, reconnect_udp_socket_receiving
#[overlap::test]
async fn reconnecting_a_udp_socket_moves_both_its_sends_and_its_filter() {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 32];
    s.connect(first.local_addr().unwrap()).await.unwrap();
    s.send(b"to first").await.unwrap();
    let (n, from) = within(HANG, first.recv_from(&mut buf), "first")
        .await
        .unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"to first"[..], s.local_addr().unwrap())
    );
    s.connect(second.local_addr().unwrap()).await.unwrap();
    assert_eq!(s.peer_addr().unwrap(), second.local_addr().unwrap());
    s.send(b"to second").await.unwrap();
    let (n, _) = within(HANG, second.recv_from(&mut buf), "second")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"to second");
    assert_eq!(
        first.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // Now only the second peer is heard.
    let to = s.local_addr().unwrap();
    first.send_to(b"old peer", to).await.unwrap();
    second.send_to(b"new peer", to).await.unwrap();
    let n = within(HANG, s.recv(&mut buf), "the new peer")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"new peer");
    assert_eq!(
        s.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

// mio: udp_socket.rs connected_udp_socket_unconnected_methods (Linux lets send_to name
// another address on a connected socket; the reply is still filtered)
#[overlap::test]
async fn send_to_on_a_connected_udp_socket_reaches_the_named_address() {
    let (a, b) = udp_pair().await;
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.send_to(b"elsewhere", other.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = within(HANG, other.recv_from(&mut buf), "elsewhere")
        .await
        .unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"elsewhere"[..], a.local_addr().unwrap())
    );
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

// mio: udp_socket.rs and unix_datagram.rs (every send form carries an empty datagram:
// unlike a stream's empty write, it is a message of its own and must reach the peer)
#[overlap::test]
async fn every_send_form_delivers_an_empty_datagram() {
    let (a, b) = udp_pair().await;
    let to = b.local_addr().unwrap();
    let mut buf = [0u8; 8];
    a.writable().await.unwrap();
    assert_eq!(a.try_send(&[]).unwrap(), 0);
    assert_eq!(a.send_to(&[], to).await.unwrap(), 0);
    a.writable().await.unwrap();
    assert_eq!(a.try_send_to(&[], to).unwrap(), 0);
    a.send(b"end").await.unwrap();
    for what in ["try_send", "send_to", "try_send_to"] {
        let (n, from) = within(HANG, b.recv_from(&mut buf), what).await.unwrap();
        assert_eq!((n, from), (0, a.local_addr().unwrap()), "{what}");
    }
    let n = b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"end");

    let path = sock_path("empty");
    let rx = UnixDatagram::bind(&path).unwrap();
    let (c, d) = UnixDatagram::pair().unwrap();
    c.writable().await.unwrap();
    assert_eq!(c.try_send(&[]).unwrap(), 0);
    assert_eq!(c.send_to(&[], &path).await.unwrap(), 0);
    assert_eq!(c.try_send_to(&[], &path).unwrap(), 0);
    c.send(b"end").await.unwrap();
    assert_eq!(within(HANG, d.recv(&mut buf), "pair").await.unwrap(), 0);
    assert_eq!(d.recv(&mut buf).await.unwrap(), 3);
    for what in ["send_to", "try_send_to"] {
        let (n, _) = within(HANG, rx.recv_from(&mut buf), what).await.unwrap();
        assert_eq!(n, 0, "{what}");
    }
    assert_eq!(
        rx.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    drop(rx);
    std::fs::remove_file(&path).unwrap();
}

// mio: udp_socket.rs max_datagram_size (the largest datagram goes through whole; one byte
// more fails at once with EMSGSIZE, not a wait for room that never comes)
#[overlap::test]
async fn the_largest_udp_datagram_goes_through_and_a_larger_one_fails_at_once() {
    const MAX: usize = 65_507; // 65,535 less the IPv4 and UDP headers
    let (a, b) = udp_pair().await;
    let big: Vec<u8> = (0..MAX).map(|i| (i % 253) as u8).collect();
    assert_eq!(a.send(&big).await.unwrap(), MAX);
    let mut buf = vec![0u8; MAX + 100];
    let n = within(HANG, b.recv(&mut buf), "the largest datagram")
        .await
        .unwrap();
    assert_eq!(n, MAX);
    assert!(buf[..n] == big[..]);
    let too_big = vec![0u8; MAX + 1];
    let err = within(HANG, a.send(&too_big), "an oversized send waited")
        .await
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err:?}");
    let err = a.try_send(&too_big).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err:?}");
    // The socket is unharmed.
    a.send(b"after").await.unwrap();
    let n = b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"after");
}

// mio: unix_datagram.rs (a datagram larger than the socket can ever hold fails at once
// instead of waiting for room)
#[overlap::test]
async fn an_oversized_unix_datagram_fails_at_once_in_every_send_form() {
    let path = sock_path("oversized");
    let rx = UnixDatagram::bind(&path).unwrap();
    let (a, b) = UnixDatagram::pair().unwrap();
    let huge = vec![0u8; 8 << 20];
    let err = within(HANG, a.send(&huge), "send waited")
        .await
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err:?}");
    let err = within(HANG, a.send_to(&huge, &path), "send_to waited")
        .await
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err:?}");
    let err = a.try_send_to(&huge, &path).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err:?}");
    a.send(b"fine").await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(&mut buf).await.unwrap(), 4);
    drop(rx);
    std::fs::remove_file(&path).unwrap();
}
