//! `send` on a UDP socket that was never connected has nowhere to go: it fails with
//! `NotConnected` in our own words, as a `UnixDatagram`'s does, by every way of sending
//! (`send`, `try_send`, `poll_send`). The kernel's `EDESTADDRREQ` ("Destination address
//! required") used to come through as it was, of kind `Uncategorized`, which no caller can
//! match. It is not a wait either: the socket stays usable, and `send_to` works.

mod support;

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::time::Duration;

use overlap::net::UdpSocket;
use support::within;

fn no_peer(what: &str, res: io::Result<usize>) {
    let err = res.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{what}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("send_to"),
        "{what}: {msg:?} does not say what to do"
    );
}

#[overlap::test]
async fn send_without_a_peer_is_not_connected_and_send_to_still_works() {
    let hang = Duration::from_secs(10);
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let sock = UdpSocket::bind(bind).await.unwrap();
        let rx = UdpSocket::bind(bind).await.unwrap();
        no_peer("send", within(hang, sock.send(b"x"), "send").await);
        no_peer(
            "send of nothing",
            within(hang, sock.send(b""), "send").await,
        );
        sock.writable().await.unwrap();
        no_peer("try_send", sock.try_send(b"x"));
        let polled = poll_fn(|cx| sock.poll_send(cx, b"x"));
        no_peer("poll_send", within(hang, polled, "poll_send").await);

        let to = rx.local_addr().unwrap();
        assert_eq!(sock.send_to(b"ok", to).await.unwrap(), 2);
        let mut buf = [0u8; 4];
        let (n, from) = within(hang, rx.recv_from(&mut buf), "recv_from")
            .await
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"ok"[..], sock.local_addr().unwrap()));
        // Connected, the same calls send.
        sock.connect(to).await.unwrap();
        assert_eq!(sock.send(b"hi").await.unwrap(), 2);
        let n = within(hang, rx.recv(&mut buf), "recv").await.unwrap();
        assert_eq!(&buf[..n], b"hi");
    }
}
