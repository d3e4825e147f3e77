//! An IPv6 destination for an IPv4 UDP socket (and an IPv4 one for an IPv6 socket bound to
//! an IPv6 address) is refused with `InvalidInput` naming both
//! families, by `send_to`, `try_send_to`, `poll_send_to`, `send_batch` and `connect`. The
//! kernel's `EAFNOSUPPORT` ("Address family not supported by protocol") used to come
//! through as it was, of kind `Uncategorized`. A list of addresses still connects to the
//! first one of the socket's family.

mod support;

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::UdpSocket;
use support::within;

const HANG: Duration = Duration::from_secs(10);

fn wrong_family<T: std::fmt::Debug>(what: &str, res: io::Result<T>) {
    let err = res.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("IPv6") && msg.contains("IPv4 socket"),
        "{what}: {msg:?}"
    );
}

#[overlap::test]
async fn an_ipv6_destination_for_an_ipv4_socket_is_invalid_input() {
    let v6: SocketAddr = "[::1]:9".parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = rx.local_addr().unwrap();

    wrong_family(
        "send_to",
        within(HANG, sock.send_to(b"x", v6), "send_to").await,
    );
    wrong_family(
        "send_to str",
        within(HANG, sock.send_to(b"x", "[::1]:9"), "send_to").await,
    );
    sock.writable().await.unwrap();
    wrong_family("try_send_to", sock.try_send_to(b"x", v6));
    let polled = poll_fn(|cx| sock.poll_send_to(cx, b"x", v6));
    wrong_family("poll_send_to", within(HANG, polled, "poll_send_to").await);
    let alone = within(HANG, sock.send_batch(&[(&b"x"[..], v6)]), "send_batch").await;
    wrong_family("send_batch", alone);
    wrong_family("connect", within(HANG, sock.connect(v6), "connect").await);
    assert_eq!(
        sock.peer_addr().unwrap_err().kind(),
        ErrorKind::NotConnected
    );

    // The socket works on: a list goes on to its IPv4 address.
    let list = [v6, to];
    within(HANG, sock.connect(&list[..]), "connect")
        .await
        .unwrap();
    assert_eq!(sock.peer_addr().unwrap(), to);
    sock.send(b"ok").await.unwrap();
    let mut buf = [0u8; 4];
    let n = within(HANG, rx.recv(&mut buf), "recv").await.unwrap();
    assert_eq!(&buf[..n], b"ok");
}

fn ipv4_for_ipv6<T: std::fmt::Debug>(what: &str, res: io::Result<T>) {
    let err = res.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("IPv6 socket") && msg.contains("IPv4 address"),
        "{what}: {msg:?}"
    );
    // The kernel's code stays readable, as an fs error's is.
    let code = overlap::io::raw_os_error(&err);
    assert!(
        matches!(code, Some(libc::ENETUNREACH | libc::EAFNOSUPPORT)),
        "{what}: {code:?}"
    );
}

/// The mirror case: an IPv4 destination (or an IPv4-mapped one) for an IPv6 socket bound
/// to an IPv6 address, which cannot carry IPv4 (a session service's second socket, on ::1,
/// answering through the wrong socket), is refused with `InvalidInput` saying so, where
/// `connect` said "an IPv4 socket cannot send to or connect to an IPv6 address" (the
/// wrong way round) and the sends said "Network is unreachable" (which
/// `overlap::io::raw_os_error` still reads). A socket on `[::]` still sends to IPv4
/// addresses.
#[overlap::test]
async fn an_ipv4_destination_for_an_ipv6_socket_bound_to_an_ipv6_address_is_invalid_input() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let v4 = rx.local_addr().unwrap();
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", v4.port()).parse().unwrap();
    let sock = UdpSocket::bind("[::1]:0").await.unwrap();
    for to in [v4, mapped] {
        ipv4_for_ipv6(
            "send_to",
            within(HANG, sock.send_to(b"x", to), "send_to").await,
        );
        sock.writable().await.unwrap();
        ipv4_for_ipv6("try_send_to", sock.try_send_to(b"x", to));
        let polled = poll_fn(|cx| sock.poll_send_to(cx, b"x", to));
        ipv4_for_ipv6("poll_send_to", within(HANG, polled, "poll_send_to").await);
        let alone = within(HANG, sock.send_batch(&[(&b"x"[..], to)]), "send_batch").await;
        ipv4_for_ipv6("send_batch", alone);
        ipv4_for_ipv6("connect", within(HANG, sock.connect(to), "connect").await);
    }
    let any = UdpSocket::bind("[::]:0").await.unwrap();
    within(HANG, any.send_to(b"ok", v4), "send_to")
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    let (n, _) = within(HANG, rx.recv_from(&mut buf), "recv").await.unwrap();
    assert_eq!(&buf[..n], b"ok");
}
