//! Promises of the UDP and address-resolution rustdoc that no other test held to, on
//! loopback (the TCP ones are in `net_contracts_audit.rs`):
//!
//! - `UdpSocket`: readiness is cleared only on `EAGAIN`, so after a receive the next
//!   datagram already queued is taken by a `try_*` call with no new edge; `send`,
//!   `try_send` and `peer_addr` of a socket never connected fail with `NotConnected`.
//! - `recv_batch`: takes what is queued, at most `per_call()`, in order, each datagram cut
//!   to `max_len` saying `truncated`, the next call's datagrams replacing the last ones.
//! - `send_to` a host name resolves it on the blocking pool (it waits while the pool is
//!   busy), where a literal address needs no pool; `lookup_host` of a literal (or of a
//!   malformed string, refused without a lookup) is answered at once, even outside a runtime.

mod support;

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::net::{RecvBatch, UdpSocket};

use support::{hold_pool, one_thread_pool, poll_once, settle, within};

/// A hang guard only: every wait here ends as soon as loopback delivers.
const HANG: Duration = Duration::from_secs(20);

async fn bound() -> (UdpSocket, SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    (sock, addr)
}

#[overlap::test]
async fn a_short_datagram_leaves_readiness_so_try_recv_takes_the_next_queued_one() {
    let (rx, rx_addr) = bound().await;
    let (tx, tx_addr) = bound().await;
    for msg in [&b"one"[..], b"two", b"three"] {
        tx.send_to(msg, rx_addr).await.unwrap();
    }
    let mut buf = [0u8; 64];
    let (n, from) = within(HANG, rx.recv_from(&mut buf), "the first datagram")
        .await
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"one"[..], tx_addr));

    // No await in between: no new edge can have been seen.
    let (n, from) = rx.try_recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"two"[..], tx_addr));
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"three");
    assert_eq!(
        rx.try_recv(&mut buf).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "the queue is empty now"
    );
}

#[overlap::test]
async fn a_socket_never_connected_refuses_send_try_send_and_peer_addr_as_not_connected() {
    let (sock, _) = bound().await;
    settle().await;
    let send = within(HANG, sock.send(b"x"), "send").await;
    assert_eq!(send.map_err(|e| e.kind()), Err(ErrorKind::NotConnected));
    assert_eq!(
        sock.try_send(b"x").map_err(|e| e.kind()),
        Err(ErrorKind::NotConnected)
    );
    assert_eq!(
        sock.peer_addr().map_err(|e| e.kind()),
        Err(ErrorKind::NotConnected)
    );
    // Nothing went anywhere, and the socket goes on working.
    let (other, other_addr) = bound().await;
    sock.send_to(b"fine", other_addr).await.unwrap();
    let mut buf = [0u8; 8];
    let n = within(HANG, other.recv(&mut buf), "the datagram").await;
    assert_eq!(&buf[..n.unwrap()], b"fine");
}

#[overlap::test]
async fn recv_batch_takes_at_most_per_call_in_order_cuts_long_ones_and_replaces_the_last() {
    let (rx, rx_addr) = bound().await;
    let (tx, tx_addr) = bound().await;
    let sent: [&[u8]; 6] = [b"a", b"bb", b"twelve bytes", b"d", b"ee", b"f"];
    for msg in sent {
        tx.send_to(msg, rx_addr).await.unwrap();
    }
    let mut batch = RecvBatch::new(4, 8);
    assert_eq!(batch.per_call(), 4);

    let n = within(HANG, rx.recv_batch(&mut batch), "the first batch")
        .await
        .unwrap();
    assert_eq!(n, 4, "at most per_call(), though six were queued");
    let first: Vec<(Vec<u8>, SocketAddr, bool)> = batch
        .iter()
        .map(|d| (d.data.to_vec(), d.from, d.truncated))
        .collect();
    assert_eq!(
        first,
        [
            (b"a".to_vec(), tx_addr, false),
            (b"bb".to_vec(), tx_addr, false),
            (b"twelve b".to_vec(), tx_addr, true),
            (b"d".to_vec(), tx_addr, false),
        ]
    );

    let n = within(HANG, rx.recv_batch(&mut batch), "the second batch")
        .await
        .unwrap();
    assert_eq!(
        (n, batch.len()),
        (2, 2),
        "the rest, replacing the first four"
    );
    let rest: Vec<&[u8]> = batch.iter().map(|d| d.data).collect();
    assert_eq!(rest, [&b"ee"[..], b"f"]);
    assert!(batch.get(2).is_none());
}

#[test]
fn send_to_a_host_name_waits_for_the_blocking_pool_and_a_literal_does_not() {
    one_thread_pool().block_on(async {
        let (rx, rx_addr) = bound().await;
        let (tx, _) = bound().await;
        let port = rx_addr.port();
        // The first address "localhost" names, of the receiver's family, so the name
        // reaches it whatever order the resolver gives.
        let first = overlap::net::lookup_host(("localhost", port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let (rx, tx) = if first.is_ipv4() {
            (rx, tx)
        } else {
            (
                UdpSocket::bind((first.ip(), 0)).await.unwrap(),
                UdpSocket::bind((first.ip(), 0)).await.unwrap(),
            )
        };
        let port = rx.local_addr().unwrap().port();
        let target = SocketAddr::new(first.ip(), port);

        let release = hold_pool();
        let mut by_name = pin!(tx.send_to(b"by name", ("localhost", port)));
        assert!(
            poll_once(by_name.as_mut()).await.is_pending(),
            "a host name must wait for the pool"
        );
        let sent = within(HANG, tx.send_to(b"literal", target), "a literal send_to").await;
        assert_eq!(sent.unwrap(), 7, "a literal address needs no pool");
        let mut buf = [0u8; 16];
        let n = within(HANG, rx.recv(&mut buf), "the literal datagram").await;
        assert_eq!(&buf[..n.unwrap()], b"literal");
        settle().await;
        assert!(
            poll_once(by_name.as_mut()).await.is_pending(),
            "still queued"
        );
        assert_eq!(
            rx.try_recv(&mut buf).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock),
            "nothing sent by name before the pool ran the lookup"
        );

        drop(release);
        let sent = within(HANG, by_name, "the send_to by name").await;
        assert_eq!(sent.unwrap(), 7);
        let n = within(HANG, rx.recv(&mut buf), "the named datagram").await;
        assert_eq!(&buf[..n.unwrap()], b"by name");
    });
}

/// Polls `fut` once with a waker that does nothing, outside any runtime.
fn poll_bare<F: Future>(fut: F) -> Poll<F::Output> {
    pin!(fut).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn lookup_host_answers_a_literal_and_refuses_a_malformed_string_at_once_outside_a_runtime() {
    let Poll::Ready(addrs) = poll_bare(overlap::net::lookup_host("127.0.0.1:53")) else {
        panic!("a literal address waited");
    };
    let addrs: Vec<SocketAddr> = addrs.unwrap().collect();
    assert_eq!(addrs, ["127.0.0.1:53".parse::<SocketAddr>().unwrap()]);

    let Poll::Ready(v6) = poll_bare(overlap::net::lookup_host("[::1]:80")) else {
        panic!("a literal IPv6 address waited");
    };
    assert_eq!(
        v6.unwrap().collect::<Vec<_>>(),
        ["[::1]:80".parse::<SocketAddr>().unwrap()]
    );

    // Refused before any lookup: `InvalidInput`, not the `Other` of a name looked up
    // where there is no pool.
    for bad in ["http://127.0.0.1:80", ":80", "[127.0.0.1]:80", "::1"] {
        let Poll::Ready(res) = poll_bare(overlap::net::lookup_host(bad)) else {
            panic!("{bad:?} waited");
        };
        let err = res.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    let Poll::Ready(name) = poll_bare(overlap::net::lookup_host(("localhost", 80))) else {
        panic!("a name outside a runtime waited");
    };
    let err = name.map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
}
