//! Datagram sockets under faults and odd input, against the kernel on loopback: errors in
//! the middle of a batch, empty datagrams, batches over 32, short queues, lost edges under
//! a sender thread, peers that are full, gone or re-bound.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use overlap::net::{RecvBatch, UdpSocket, UnixDatagram};
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A receiver and a sender bound at `addr`, and the receiver's address.
async fn receiver_and_sender(addr: &str) -> (UdpSocket, UdpSocket, SocketAddr) {
    let rx = UdpSocket::bind(addr).await.unwrap();
    let tx = UdpSocket::bind(addr).await.unwrap();
    let to = rx.local_addr().unwrap();
    (rx, tx, to)
}

/// Receives until `n` datagrams are in: their bytes and truncation flags.
async fn recv_n(rx: &UdpSocket, batch: &mut RecvBatch, n: usize) -> Vec<(Vec<u8>, bool)> {
    let mut got = Vec::new();
    while got.len() < n {
        within(HANG, rx.recv_batch(batch), "recv_batch")
            .await
            .unwrap();
        got.extend(batch.iter().map(|d| (d.data.to_vec(), d.truncated)));
    }
    got
}

/// Sends in a loop the way the docs show, skipping a datagram whose send fails; returns
/// how many went out and the errors met.
async fn send_all(tx: &UdpSocket, queue: &[(&[u8], SocketAddr)]) -> (usize, Vec<i32>) {
    let (mut rest, mut sent, mut errors) = (queue, 0, Vec::new());
    while !rest.is_empty() {
        match within(HANG, tx.send_batch(rest), "send_batch").await {
            Ok(n) => {
                sent += n;
                rest = &rest[n..];
            }
            Err(e) => {
                errors.push(overlap::io::raw_os_error(&e).unwrap());
                rest = &rest[1..];
            }
        }
    }
    (sent, errors)
}

/// A broadcast without `SO_BROADCAST` (`EACCES`, refused before anything leaves) in the
/// middle of a batch holding an empty datagram: the ones around it arrive once each, and
/// the error is reported once.
#[test]
fn an_error_mid_batch_is_reported_once_and_nothing_is_sent_twice() {
    overlap::block_on(async {
        let (rx, tx, to) = receiver_and_sender("127.0.0.1:0").await;
        let broadcast: SocketAddr = "127.255.255.255:9".parse().unwrap();
        let queue: Vec<(&[u8], SocketAddr)> =
            vec![(b"a", to), (b"", to), (b"refused", broadcast), (b"c", to)];
        assert_eq!(send_all(&tx, &queue).await, (3, vec![libc::EACCES]));
        let mut batch = RecvBatch::new(8, 16);
        let got = recv_n(&rx, &mut batch, 3).await;
        let expected = [
            (b"a".to_vec(), false),
            (vec![], false),
            (b"c".to_vec(), false),
        ];
        assert_eq!(got, expected);
        // Nothing more: the next datagram is the marker, not a duplicate.
        tx.send_to(b"end", to).await.unwrap();
        assert_eq!(recv_n(&rx, &mut batch, 1).await, [(b"end".to_vec(), false)]);
    });
}

/// An IPv4 destination on an IPv6 socket bound to `::1` fails as `send_to` does (with
/// `InvalidInput` saying why, the kernel's `ENETUNREACH` kept as its source), alone.
#[test]
fn a_v4_address_on_a_v6_socket_fails_alone_in_a_batch() {
    overlap::block_on(async {
        let (rx, tx, to) = receiver_and_sender("[::1]:0").await;
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let err = tx.send_to(b"x", v4).await.unwrap_err();
        let queue: Vec<(&[u8], SocketAddr)> = vec![(b"a", to), (b"x", v4), (b"c", to)];
        assert_eq!(send_all(&tx, &queue).await, (2, vec![libc::ENETUNREACH]));
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENETUNREACH));
        let mut batch = RecvBatch::new(8, 16);
        let got = recv_n(&rx, &mut batch, 2).await;
        assert_eq!(got, [(b"a".to_vec(), false), (b"c".to_vec(), false)]);
    });
}

/// 40 datagrams of 0 to 39 bytes: 32 per call, then the rest; slots of 20 bytes mark the
/// longer ones truncated to 20.
#[test]
fn batches_over_32_empty_datagrams_and_truncation() {
    overlap::block_on(async {
        let (rx, tx, to) = receiver_and_sender("127.0.0.1:0").await;
        let bytes: Vec<u8> = (0..40).collect();
        let queue: Vec<(&[u8], SocketAddr)> = (0..40).map(|i| (&bytes[..i], to)).collect();
        assert_eq!(tx.send_batch(&queue).await.unwrap(), 32);
        assert_eq!(tx.send_batch(&queue[32..]).await.unwrap(), 8);
        let mut batch = RecvBatch::new(32, 20);
        let got = recv_n(&rx, &mut batch, 40).await;
        let expected: Vec<(Vec<u8>, bool)> = (0..40)
            .map(|i: usize| (bytes[..i.min(20)].to_vec(), i > 20))
            .collect();
        assert_eq!(got, expected);
    });
}

/// Two queued, room for 32: both come back at once, and the next datagram (after the short
/// batch cleared the readiness) still wakes the receiver.
#[test]
fn a_short_queue_is_returned_without_waiting_and_the_next_datagram_wakes() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        tx.send_to(b"one", to).unwrap();
        tx.send_to(b"two", to).unwrap();
        let mut batch = RecvBatch::new(32, 16);
        let n = within(HANG, rx.recv_batch(&mut batch), "short queue")
            .await
            .unwrap();
        assert_eq!(n, 2);
        tx.send_to(b"three", to).unwrap();
        let n = within(HANG, rx.recv_batch(&mut batch), "after a short batch")
            .await
            .unwrap();
        assert_eq!((n, batch.get(0).unwrap().data), (1, &b"three"[..]));
    });
}

/// A sender thread sends bursts of 1 to 40 datagrams, each after the receivers counted the
/// last: a `recv_batch` task and a `recv_from` task on one socket must see every one, so no
/// short batch loses the edge of a datagram arriving right after it.
#[test]
fn bursts_right_after_short_batches_all_wake_the_receivers() {
    const ROUNDS: usize = 2000;
    overlap::block_on(async {
        let rx = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let to = rx.local_addr().unwrap();
        let (ack, acks) = mpsc::channel::<()>();
        let total = Arc::new(AtomicUsize::new(0));
        let sender = std::thread::spawn({
            let total = total.clone();
            move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let mut rng = support::XorShift(99);
                for _ in 0..ROUNDS {
                    let n = 1 + (rng.next() % 40) as usize;
                    total.fetch_add(n, SeqCst);
                    for i in 0..n {
                        s.send_to(&[i as u8], to).unwrap();
                    }
                    if acks.recv().is_err() {
                        return;
                    }
                }
            }
        });
        let seen = Rc::new(std::cell::Cell::new(0usize));
        let counted = Rc::new(overlap::sync::Notify::new());
        let receivers: Vec<_> = (0..2)
            .map(|kind| {
                let (rx, seen, counted) = (rx.clone(), seen.clone(), counted.clone());
                overlap::spawn(async move {
                    let mut batch = RecvBatch::new(8, 8);
                    let mut buf = [0u8; 8];
                    loop {
                        let got = match kind {
                            0 => rx.recv_batch(&mut batch).await.unwrap(),
                            _ => rx.recv_from(&mut buf).await.map(|_| 1).unwrap(),
                        };
                        seen.set(seen.get() + got);
                        counted.notify_one();
                    }
                })
            })
            .collect();
        let mut acked = 0;
        for round in 0..ROUNDS {
            let target = within(
                HANG,
                async {
                    loop {
                        match total.load(SeqCst) {
                            t if t == acked => {
                                overlap::time::sleep(Duration::from_micros(100)).await
                            }
                            t => break t,
                        }
                    }
                },
                "the sender stopped",
            )
            .await;
            let all_in = async {
                while seen.get() != target {
                    counted.notified().await;
                }
            };
            within(
                HANG,
                all_in,
                &format!("round {round}: a datagram lost its wake"),
            )
            .await;
            acked = target;
            ack.send(()).unwrap();
        }
        drop(ack);
        sender.join().unwrap();
        assert_eq!(seen.get(), total.load(SeqCst));
        receivers.iter().for_each(|r| r.abort());
    });
}

/// `peek_sender` and `peek_from` (into a short buffer) leave the datagram whole for
/// `recv_from`.
#[test]
fn peeks_then_recv_from_return_the_same_datagram() {
    overlap::block_on(async {
        let (rx, tx, to) = receiver_and_sender("127.0.0.1:0").await;
        let from = tx.local_addr().unwrap();
        tx.send_to(b"peeked", to).await.unwrap();
        tx.send_to(b"second", to).await.unwrap();
        assert_eq!(rx.peek_sender().await.unwrap(), from);
        let mut short = [0u8; 3];
        assert_eq!(rx.peek_from(&mut short).await.unwrap(), (3, from));
        assert_eq!(&short, b"pee");
        let mut buf = [0u8; 16];
        assert_eq!(rx.recv_from(&mut buf).await.unwrap(), (6, from));
        assert_eq!(&buf[..6], b"peeked");
        assert_eq!(rx.recv_from(&mut buf).await.unwrap(), (6, from));
        assert_eq!(&buf[..6], b"second");
    });
}

/// A receive buffer of one page under a flood from a thread: datagrams are dropped, but
/// the receiver and a timer task keep running, and a datagram after the flood arrives.
#[test]
fn a_tiny_receive_buffer_under_a_flood_stays_responsive() {
    use std::os::fd::AsRawFd;
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // The kernel raises 1 byte to its minimum, a few datagrams' worth.
        support::set_int_option(rx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 1).unwrap();
        let to = rx.local_addr().unwrap();
        let stop = Arc::new(AtomicUsize::new(0));
        let flood = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                while stop.load(SeqCst) == 0 {
                    let _ = s.send_to(&[1u8; 1000], to);
                }
            }
        });
        let ticks = overlap::spawn(async {
            for _ in 0..20 {
                overlap::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let mut batch = RecvBatch::new(32, 2000);
        let mut got = 0;
        while !ticks.is_finished() {
            got += within(HANG, rx.recv_batch(&mut batch), "flood")
                .await
                .unwrap();
        }
        stop.store(1, SeqCst);
        flood.join().unwrap();
        assert!(got > 0);
        // Drained (until nothing came for a while), the buffer has room again.
        let quiet = Duration::from_millis(50);
        while let Ok(res) = overlap::time::timeout(quiet, rx.recv_batch(&mut batch)).await {
            res.unwrap();
        }
        let mut buf = [0u8; 2000];
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.send_to(b"after", to).await.unwrap();
        let (n, _) = within(HANG, rx.recv_from(&mut buf), "after the flood")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"after");
    });
}

/// Unbound sockets, paths with no listener, a connected peer that closes and a new socket
/// bound at its path.
#[test]
fn unix_datagram_peers_missing_gone_and_rebound() {
    let dir = TempDir::new("dgram-faults");
    overlap::block_on(async {
        let u = UnixDatagram::unbound().unwrap();
        assert!(u.local_addr().unwrap().is_unnamed());
        let err = u.send_to(b"x", dir.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let stale = dir.join("stale");
        drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
        let err = u.send_to(b"x", &stale).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        assert_eq!(
            u.send(b"x").await.unwrap_err().kind(),
            ErrorKind::NotConnected
        );

        let path = dir.join("peer");
        let peer = UnixDatagram::bind(&path).unwrap();
        u.connect(&path).unwrap();
        u.send(b"1").await.unwrap();
        drop(peer);
        let err = u.send(b"2").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        // The kernel dropped the connection: the path's next owner needs a new connect.
        std::fs::remove_file(&path).unwrap();
        let peer = UnixDatagram::bind(&path).unwrap();
        assert_eq!(
            u.send(b"3").await.unwrap_err().kind(),
            ErrorKind::NotConnected
        );
        u.connect(&path).unwrap();
        u.send(b"4").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(within(HANG, peer.recv(&mut buf), "recv").await.unwrap(), 1);
        assert_eq!(&buf[..1], b"4");
    });
}

/// `err` is the refusal of a datagram socket at `path` connected to another: kind and code
/// kept, the path and the reason said.
fn assert_taken(err: &std::io::Error, path: &std::path::Path) {
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(overlap::io::raw_os_error(err), Some(libc::EPERM));
    let msg = err.to_string();
    assert!(msg.contains(&format!("{path:?}")), "{msg}");
    assert!(msg.contains("connected to another socket"), "{msg}");
}

/// A Unix datagram socket connected to one peer takes datagrams from it alone: a send or a
/// connect to it from another socket fails with the kernel's `EPERM`, which used to come out
/// as a bare "Operation not permitted", read as a file's permissions. It now names the path
/// and says the socket there is connected to another; the kind and the code stay.
#[test]
fn a_unix_datagram_socket_connected_elsewhere_is_named_when_refused() {
    let dir = TempDir::new("dgram-taken");
    let (a, c) = (dir.join("a"), dir.join("c"));
    overlap::block_on(async {
        let rx = UnixDatagram::bind(&a).unwrap();
        let peer = UnixDatagram::bind(&c).unwrap();
        let other = UnixDatagram::unbound().unwrap();
        other.send_to(b"early", &a).await.unwrap();
        rx.connect(&c).unwrap();
        peer.send_to(b"peer", &a).await.unwrap();
        let errs = [
            other.send_to(b"x", &a).await.unwrap_err(),
            other.try_send_to(b"x", &a).unwrap_err(),
            other.connect(&a).unwrap_err(),
        ];
        for err in errs {
            assert_taken(&err, &a);
        }
        // What came before the connect stays, ahead of the peer's.
        let mut buf = [0u8; 8];
        for want in [&b"early"[..], b"peer"] {
            let n = within(HANG, rx.recv(&mut buf), "recv").await.unwrap();
            assert_eq!(&buf[..n], want);
        }
    });
}

/// The same refusal met by a socket that connected first: its own `send` (and `try_send`,
/// `send_with_fds`) to a socket that has since connected elsewhere said the bare
/// "Operation not permitted"; it now names the peer's path from `peer_addr`, and a peer
/// with no path (one end of a pair) as the peer.
#[test]
fn a_connected_senders_own_send_names_the_peer_that_went_elsewhere() {
    let dir = TempDir::new("dgram-own-send");
    let (a, c) = (dir.join("a"), dir.join("c"));
    overlap::block_on(async {
        let rx = UnixDatagram::bind(&a).unwrap();
        let _peer = UnixDatagram::bind(&c).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        tx.connect(&a).unwrap();
        tx.send(b"ok").await.unwrap();
        rx.connect(&c).unwrap();
        let errs = [
            tx.send(b"x").await.unwrap_err(),
            tx.try_send(b"x").unwrap_err(),
            tx.send_with_fds(b"x", &[]).await.unwrap_err(),
        ];
        for err in errs {
            assert_taken(&err, &a);
        }

        let (x, y) = UnixDatagram::pair().unwrap();
        y.connect(&c).unwrap();
        let err = x.send(b"x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(
            err.to_string().contains("connected to another socket"),
            "{err}"
        );
    });
}

/// A connected sender whose peer's queue is full waits for the peer to read without being
/// polled in a loop; the peer closing while it waits ends the send with `ConnectionRefused`.
#[test]
fn a_connected_sender_to_a_full_peer_sleeps_until_room_or_close() {
    let dir = TempDir::new("dgram-full-peer");
    let path = dir.join("rx");
    overlap::block_on(async {
        let rx = UnixDatagram::bind(&path).unwrap();
        let tx = Rc::new(UnixDatagram::unbound().unwrap());
        tx.connect(&path).unwrap();
        let fill = |tx: Rc<UnixDatagram>| async move {
            let full = Duration::from_millis(100);
            while let Ok(sent) = overlap::time::timeout(full, tx.send(b"fill")).await {
                sent.unwrap();
            }
        };
        fill(tx.clone()).await;
        let before = overlap::metrics().task_polls;
        let send = overlap::spawn({
            let tx = tx.clone();
            async move { tx.send(b"last").await }
        });
        overlap::time::sleep(Duration::from_millis(100)).await;
        assert!(!send.is_finished(), "the queue was not full");
        let polls = overlap::metrics().task_polls - before;
        assert!(
            polls < 20,
            "{polls} polls while the peer is full: the sender spins"
        );
        let mut buf = [0u8; 8];
        rx.recv(&mut buf).await.unwrap();
        assert_eq!(
            within(HANG, send, "send after room")
                .await
                .unwrap()
                .unwrap(),
            4
        );

        fill(tx.clone()).await;
        let send = overlap::spawn({
            let tx = tx.clone();
            async move { tx.send(b"last").await }
        });
        support::settle().await;
        assert!(!send.is_finished(), "the queue was not full");
        drop(rx);
        let err = within(HANG, send, "send after close")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}
