//! `UdpSocket::recv_batch` and `send_batch`: many datagrams per syscall, with lengths,
//! sources, truncation and errors kept per datagram.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::{syscall_counts, RecvBatch, UdpSocket};
use support::{datagram, udp_trio, within};

/// Receives until `n` datagrams are in, returning them with their sources.
async fn recv_n(rx: &UdpSocket, batch: &mut RecvBatch, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    while got.len() < n {
        let k = within(Duration::from_secs(10), rx.recv_batch(batch), "recv_batch")
            .await
            .unwrap();
        assert_eq!(k, batch.len());
        assert!(k >= 1 && k <= batch.per_call());
        got.extend(batch.iter().map(|d| {
            assert!(!d.truncated);
            (d.data.to_vec(), d.from)
        }));
    }
    got
}

#[test]
fn a_thousand_datagrams_from_two_senders_keep_lengths_sources_and_order() {
    overlap::block_on(async {
        let (rx, (a, a_addr), (b, b_addr)) = udp_trio().await;
        let to = rx.local_addr().unwrap();
        let mut batch = RecvBatch::new(16, 2048);
        // Rounds of 50, so the receive buffer never overflows (UDP would drop silently).
        for round in 0..20 {
            let ids: Vec<usize> = (round * 50..(round + 1) * 50).collect();
            let bodies: Vec<Vec<u8>> = ids.iter().map(|&i| datagram(i)).collect();
            // Even ids from `a`, odd from `b`, each sender's in one or more batches.
            for (sender, parity) in [(&a, 0), (&b, 1)] {
                let mut queue: Vec<(&[u8], SocketAddr)> = ids
                    .iter()
                    .filter(|&&i| i % 2 == parity)
                    .map(|&i| (&bodies[i - round * 50][..], to))
                    .collect();
                while !queue.is_empty() {
                    let sent = sender.send_batch(&queue).await.unwrap();
                    assert!(sent >= 1);
                    queue.drain(..sent);
                }
            }
            let got = recv_n(&rx, &mut batch, 50).await;
            // Each sender's datagrams arrive in the order sent.
            for (sender, parity) in [(a_addr, 0), (b_addr, 1)] {
                let theirs: Vec<&Vec<u8>> = got
                    .iter()
                    .filter(|(_, from)| *from == sender)
                    .map(|(d, _)| d)
                    .collect();
                let expected: Vec<&Vec<u8>> = ids
                    .iter()
                    .filter(|&&i| i % 2 == parity)
                    .map(|&i| &bodies[i - round * 50])
                    .collect();
                assert_eq!(theirs, expected, "round {round}, sender {sender}");
            }
        }
    });
}

#[test]
fn one_recvmmsg_and_one_sendmmsg_move_a_whole_batch() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let bodies: Vec<Vec<u8>> = (0..32).map(datagram).collect();
        let queue: Vec<(&[u8], SocketAddr)> = bodies.iter().map(|b| (&b[..], to)).collect();
        let before = syscall_counts();
        assert_eq!(tx.send_batch(&queue).await.unwrap(), 32);
        let sent = syscall_counts();
        assert_eq!(sent.send - before.send, 1, "one sendmmsg for 32 datagrams");

        let mut batch = RecvBatch::new(64, 1500);
        assert_eq!(batch.per_call(), 32);
        // All 32 are queued on loopback by now: one recvmmsg takes them all.
        let k = rx.recv_batch(&mut batch).await.unwrap();
        let after = syscall_counts();
        assert_eq!(k, 32);
        assert_eq!(after.recv - sent.recv, 1, "one recvmmsg for 32 datagrams");
        let got: Vec<&[u8]> = batch.iter().map(|d| d.data).collect();
        let expected: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
        assert_eq!(got, expected);
        assert_eq!(batch.get(32), None);
        // Sizes beyond what a call can use are clamped, not allocated (nor overflowed).
        assert_eq!(RecvBatch::new(usize::MAX, usize::MAX).per_call(), 32);
    });
}

#[test]
fn a_datagram_longer_than_its_slot_is_marked_truncated() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let long = [7u8; 100];
        tx.send_batch(&[(&long[..], to), (b"short", to)])
            .await
            .unwrap();
        let mut batch = RecvBatch::new(4, 10);
        let got = recv_until(&rx, &mut batch, 2).await;
        assert_eq!(got[0], (vec![7u8; 10], true));
        assert_eq!(got[1], (b"short".to_vec(), false));
    });
}

/// Like `recv_n`, keeping the truncation flags.
async fn recv_until(rx: &UdpSocket, batch: &mut RecvBatch, n: usize) -> Vec<(Vec<u8>, bool)> {
    let mut got = Vec::new();
    while got.len() < n {
        within(Duration::from_secs(10), rx.recv_batch(batch), "recv_batch")
            .await
            .unwrap();
        got.extend(batch.iter().map(|d| (d.data.to_vec(), d.truncated)));
    }
    got
}

#[test]
fn an_oversized_datagram_fails_after_the_ones_before_it_are_sent() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let huge = vec![0u8; 70_000]; // over UDP's 65,507-byte limit
        let queue: Vec<(&[u8], SocketAddr)> = vec![(b"first", to), (&huge, to), (b"third", to)];
        let sent = tx.send_batch(&queue).await.unwrap();
        assert_eq!(sent, 1, "the datagram before the bad one goes out");
        let err = tx.send_batch(&queue[1..]).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
        // Skipping it, the rest goes out and the socket still works.
        assert_eq!(tx.send_batch(&queue[2..]).await.unwrap(), 1);
        let mut batch = RecvBatch::new(4, 64);
        let got = recv_until(&rx, &mut batch, 2).await;
        assert_eq!(
            got,
            [(b"first".to_vec(), false), (b"third".to_vec(), false)]
        );
        // Nothing to send is no error.
        assert_eq!(tx.send_batch(&[]).await.unwrap(), 0);
    });
}

#[test]
fn recv_batch_waits_for_a_datagram_and_a_connected_peer_gone_is_refused() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let sender = overlap::spawn(async move {
            overlap::time::sleep(Duration::from_millis(20)).await;
            let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            tx.send_batch(&[(b"late", to)]).await.unwrap();
        });
        let mut batch = RecvBatch::new(8, 64);
        let got = recv_until(&rx, &mut batch, 1).await;
        assert_eq!(got, [(b"late".to_vec(), false)]);
        sender.await.unwrap();

        // A connected socket whose peer is gone: the ICMP error comes back as an error.
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gone = peer.local_addr().unwrap();
        drop(peer);
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.connect(gone).await.unwrap();
        tx.send_batch(&[(b"anyone?", gone)]).await.unwrap();
        let err = within(
            Duration::from_secs(10),
            tx.recv_batch(&mut batch),
            "recv_batch on a refused socket",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

/// Batches to a connected peer that is gone: the kernel's `sendmmsg` drops the ICMP error of
/// the datagram that stops a batch, but the error still reaches the sender within a few
/// calls, as it would with `send`, instead of never.
#[test]
fn send_batch_to_a_gone_peer_reports_connection_refused() {
    overlap::block_on(async {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gone = peer.local_addr().unwrap();
        drop(peer);
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.connect(gone).await.unwrap();
        let queue: Vec<(&[u8], SocketAddr)> = vec![(b"ping", gone); 64];
        let mut rest = &queue[..];
        let mut calls = 0;
        let err = loop {
            calls += 1;
            match tx.send_batch(rest).await {
                Ok(n) => rest = &rest[n..],
                Err(e) => break e,
            }
            assert!(
                !rest.is_empty(),
                "64 datagrams went out, no error after {calls} calls"
            );
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        assert!(calls <= 8, "the error took {calls} calls");
    });
}
