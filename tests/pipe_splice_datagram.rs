//! `splice` from a datagram socket: an empty datagram is not end of file, and a socket shut
//! down for reading ends the copy with an error instead of spinning.

mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{UdpSocket, UnixDatagram};
use overlap::pipe::{pipe, splice_copy};
use overlap::time::timeout;
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn an_empty_datagram_does_not_end_a_splice_copy() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    tx.send_to(b"first", to).unwrap();
    tx.send_to(b"", to).unwrap();
    tx.send_to(b"after-empty", to).unwrap();
    let (ptx, mut prx) = pipe().unwrap();
    // A datagram socket has no end of file: the copy goes on until the timeout drops it.
    let res = timeout(Duration::from_millis(200), splice_copy(&rx, &ptx)).await;
    assert!(res.is_err(), "splice_copy ended: {res:?}");
    let mut got = [0u8; 16];
    within(HANG, prx.read_exact(&mut got), "pipe read hung")
        .await
        .unwrap();
    assert_eq!(&got, b"firstafter-empty");
}

/// A Unix datagram socket holding `queued` (in order), shut down for reading.
async fn shut_with(queued: &[&[u8]]) -> UnixDatagram {
    let (a, b) = UnixDatagram::pair().unwrap();
    for d in queued {
        a.send(d).await.unwrap();
    }
    b.shutdown(Shutdown::Read).unwrap();
    b
}

/// Runs `splice_copy` from `b` until it fails, which must be `NotConnected` and quick (no
/// spinning); returns what reached the pipe.
async fn copy_until_refused(b: &UnixDatagram) -> Vec<u8> {
    let (ptx, mut prx) = pipe().unwrap();
    let before = overlap::metrics().task_polls;
    let err = within(HANG, splice_copy(b, &ptx), "splice_copy hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    let polls = overlap::metrics().task_polls - before;
    assert!(polls < 10, "{polls} polls");
    drop(ptx);
    let mut got = Vec::new();
    prx.read_to_end(&mut got).await.unwrap();
    got
}

#[overlap::test]
async fn a_datagram_socket_shut_down_for_reading_ends_a_splice_copy_with_an_error() {
    let b = shut_with(&[b"queued"]).await;
    assert_eq!(copy_until_refused(&b).await, b"queued");
}

#[overlap::test]
async fn splice_from_a_datagram_socket_shut_down_for_reading_fails_at_once() {
    let b = shut_with(&[b"queued"]).await;
    let (mut ptx, _prx) = pipe().unwrap();
    let n = within(HANG, ptx.splice_from(&b, 1024), "splice_from hung")
        .await
        .unwrap();
    assert_eq!(n, 6);
    let before = overlap::metrics().task_polls;
    let err = within(HANG, ptx.splice_from(&b, 1024), "splice_from hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    let polls = overlap::metrics().task_polls - before;
    assert!(polls < 10, "{polls} polls");
}

#[overlap::test]
async fn an_empty_datagram_before_a_read_shutdown_does_not_hide_the_rest() {
    let b = shut_with(&[b"", b"after-empty"]).await;
    assert_eq!(copy_until_refused(&b).await, b"after-empty");
}

/// The shutdown error is for a drained source: with a datagram still queued and the pipe
/// full, `splice_from` waits for room instead.
#[overlap::test]
async fn splice_from_a_shut_down_datagram_socket_into_a_full_pipe_waits_for_room() {
    let b = shut_with(&[b"queued"]).await;
    let (mut ptx, mut prx) = pipe().unwrap();
    let mut fill = vec![b'x'; 1 << 20];
    let n = ptx.write(&fill).await.unwrap(); // as much as the pipe holds
    fill.truncate(n);
    let splice = async { ptx.splice_from(&b, 1024).await };
    let drain = async {
        overlap::time::sleep(Duration::from_millis(50)).await;
        let mut got = vec![0u8; n];
        prx.read_exact(&mut got).await.unwrap();
        assert_eq!(got, fill);
        prx
    };
    let (moved, mut prx) = within(HANG, overlap::future::join(splice, drain), "hung").await;
    assert_eq!(moved.unwrap(), 6);
    let mut got = [0u8; 6];
    prx.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"queued");
}

/// A UDP socket never connected has no destination for a splice's bytes: the kernel's
/// `EDESTADDRREQ` (of no `ErrorKind` a caller can match) comes out as `NotConnected`, what
/// `UdpSocket::send` says there.
#[overlap::test]
async fn splice_into_an_unconnected_udp_socket_is_not_connected() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut ptx, mut prx) = pipe().unwrap();
    ptx.write_all(b"no destination").await.unwrap();
    let err = within(HANG, prx.splice_to(&udp, 1024), "splice_to hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    let err = within(HANG, splice_copy(&prx, &udp), "splice_copy hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    // Nothing was taken from the pipe (`splice_copy` checks before it takes a byte into its
    // private pipe, where the refusal would have lost them).
    let mut got = [0u8; 14];
    within(HANG, prx.read_exact(&mut got), "the bytes were taken")
        .await
        .unwrap();
    assert_eq!(&got, b"no destination");
}
