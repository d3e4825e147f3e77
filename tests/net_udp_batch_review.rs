//! An adversarial review of `UdpSocket::recv_batch` / `send_batch` and `udp::UdpFramed`,
//! adding what `net_udp_batch`, `net_datagram_faults`, `net_udp_framed` and the
//! `review_net_udp_*` files leave out: a batch that fills every slot keeps the readiness
//! (the rest comes with no new edge); slices far past `UIO_MAXIOV` go 32 per call, in order;
//! three different refusals in one batch each stop it where they are and come back alone;
//! a connected socket's refused error comes once and loses none of the datagrams queued
//! behind it; a dual-stack socket sends to IPv4 and IPv6 in one batch, and each source
//! comes back as `recv_from` gives it; a `send_batch` polled once and dropped sent all or
//! nothing; floods let other tasks run (receive, send, and empty datagrams under
//! `UdpFramed`); the largest IPv6 datagram comes whole; buffers are reused. 127.0.0.1 and
//! ::1 only.

mod support;

use std::cell::Cell;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::codec::{BytesCodec, LinesCodec};
use overlap::net::{RecvBatch, UdpSocket};
use overlap::stream::StreamExt;
use overlap::udp::UdpFramed;
use support::{poll_once, steps_before_another_task_runs, within, ManualTask};

const HANG: Duration = Duration::from_secs(10);

/// A std socket on 127.0.0.1 to send from (or to sink into), blocking.
fn std_peer(addr: &str) -> (std::net::UdpSocket, SocketAddr) {
    let s = std::net::UdpSocket::bind(addr).unwrap();
    let at = s.local_addr().unwrap();
    (s, at)
}

/// The datagrams of the next `recv_batch`: bytes and sources.
async fn next_batch(rx: &UdpSocket, batch: &mut RecvBatch) -> Vec<(Vec<u8>, SocketAddr)> {
    let n = within(HANG, rx.recv_batch(batch), "recv_batch")
        .await
        .unwrap();
    assert_eq!(n, batch.len());
    batch.iter().map(|d| (d.data.to_vec(), d.from)).collect()
}

/// Receives until `n` datagrams are in; their bytes.
async fn recv_bytes(rx: &UdpSocket, batch: &mut RecvBatch, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        got.extend(next_batch(rx, batch).await.into_iter().map(|(d, _)| d));
    }
    got
}

/// A batch that took as many datagrams as it had slots cannot know the queue is empty, so
/// it must keep the readiness: with 40 queued and 8 slots, five calls take 8 each, in
/// order, with no datagram arriving in between to make a new edge. Only then is the queue
/// empty, and a receive waits.
#[test]
fn a_batch_that_fills_every_slot_keeps_readiness_for_the_rest_of_the_queue() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let (tx, _) = std_peer("127.0.0.1:0");
        for i in 0..40u8 {
            tx.send_to(&[i, i], to).unwrap();
        }
        let mut batch = RecvBatch::new(8, 4);
        let mut got = Vec::new();
        for call in 0..5 {
            let n = within(HANG, rx.recv_batch(&mut batch), "the rest of the queue")
                .await
                .unwrap();
            assert_eq!(n, 8, "call {call}");
            got.extend(batch.iter().map(|d| d.data[0]));
        }
        assert_eq!(got, (0..40).collect::<Vec<u8>>());
        // Drained now: a receive waits, and the next datagram wakes it.
        let mut waiting = Box::pin(rx.recv_batch(&mut batch));
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        tx.send_to(b"late", to).unwrap();
        assert_eq!(within(HANG, waiting, "late").await.unwrap(), 1);
        assert_eq!(batch.get(0).unwrap().data, b"late");
    });
}

/// 1,500 datagrams in one slice, past the kernel's `UIO_MAXIOV` (1,024): each call sends
/// at most 32 (overlap's cap), never fails for the slice's length, and all 1,500 arrive
/// once each, in order.
#[test]
fn a_slice_longer_than_uio_maxiov_goes_32_per_call_in_order() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let bodies: Vec<[u8; 2]> = (0..1500u16).map(u16::to_be_bytes).collect();
        let queue: Vec<(&[u8], SocketAddr)> = bodies.iter().map(|b| (&b[..], to)).collect();
        let mut batch = RecvBatch::new(32, 4);
        let (mut rest, mut got) = (&queue[..], Vec::new());
        while !rest.is_empty() {
            let sent = within(HANG, tx.send_batch(rest), "send_batch")
                .await
                .unwrap();
            assert!((1..=32).contains(&sent), "{sent} sent of {}", rest.len());
            // Received before the next call, so the receive queue never overflows.
            got.extend(recv_bytes(&rx, &mut batch, sent).await);
            rest = &rest[sent..];
        }
        let expected: Vec<Vec<u8>> = bodies.iter().map(|b| b.to_vec()).collect();
        assert_eq!(got, expected);
    });
}

/// Three refusals in one batch, each of another kind: an IPv6 destination on an IPv4
/// socket, port 0, and a datagram over 65,507 bytes. Each call stops right before the
/// refused datagram and reports how many went; the next call meets the refusal alone. So
/// the calls go 1, error, 1, error, 1, error, 1, and the four good ones arrive once each.
#[test]
fn each_refusal_in_a_batch_stops_it_there_and_comes_back_alone() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let port_zero: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let huge = vec![1u8; 70_000];
        let queue: Vec<(&[u8], SocketAddr)> = vec![
            (b"a", to),
            (b"x", v6),
            (b"b", to),
            (b"y", port_zero),
            (b"c", to),
            (&huge, to),
            (b"d", to),
        ];
        let mut rest = &queue[..];
        // Each call: how many went, or the refusal's errno and whether it says InvalidInput.
        let mut calls: Vec<Result<usize, (Option<i32>, bool)>> = Vec::new();
        while !rest.is_empty() {
            match within(HANG, tx.send_batch(rest), "send_batch").await {
                Ok(n) => {
                    calls.push(Ok(n));
                    rest = &rest[n..];
                }
                Err(e) => {
                    let invalid = e.kind() == ErrorKind::InvalidInput;
                    calls.push(Err((overlap::io::raw_os_error(&e), invalid)));
                    rest = &rest[1..];
                }
            }
        }
        assert_eq!(
            calls,
            [
                Ok(1),
                Err((Some(libc::EAFNOSUPPORT), true)),
                Ok(1),
                Err((Some(libc::EINVAL), true)),
                Ok(1),
                Err((Some(libc::EMSGSIZE), false)),
                Ok(1),
            ]
        );
        let mut batch = RecvBatch::new(8, 8);
        let got = recv_bytes(&rx, &mut batch, 4).await;
        assert_eq!(
            got,
            [b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
        let mut waiting = Box::pin(rx.recv_batch(&mut batch));
        assert!(
            poll_once(waiting.as_mut()).await.is_pending(),
            "a datagram twice"
        );
    });
}

/// A connected socket holds three datagrams from its peer when the peer goes and a send
/// to it is refused: the refusal is reported once, and all three still come, in order.
#[test]
fn a_refused_error_on_a_connected_socket_loses_none_of_the_queued_datagrams() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = rx.local_addr().unwrap();
        let (peer, peer_at) = std_peer("127.0.0.1:0");
        rx.connect(peer_at).await.unwrap();
        for body in [&b"one"[..], b"two", b"three"] {
            peer.send_to(body, at).unwrap();
        }
        drop(peer);
        rx.send(b"anyone?").await.unwrap();
        let mut batch = RecvBatch::new(8, 8);
        let mut events = Vec::new();
        while events.len() < 4 {
            match within(HANG, rx.recv_batch(&mut batch), "recv_batch").await {
                Ok(_) => events.extend(batch.iter().map(|d| {
                    assert_eq!(d.from, peer_at);
                    Ok(d.data.to_vec())
                })),
                Err(e) => events.push(Err(e.kind())),
            }
        }
        // The kernel reports a pending socket error before the queue.
        assert_eq!(
            events,
            [
                Err(ErrorKind::ConnectionRefused),
                Ok(b"one".to_vec()),
                Ok(b"two".to_vec()),
                Ok(b"three".to_vec()),
            ]
        );
        let mut waiting = Box::pin(rx.recv_batch(&mut batch));
        assert!(
            poll_once(waiting.as_mut()).await.is_pending(),
            "reported twice"
        );
    });
}

/// A dual-stack socket (bound to `[::]`) sends one batch to an IPv4 and an IPv6 receiver,
/// interleaved, an empty datagram among them: one call sends all four, and each receiver
/// sees the sender as itself would name it. A dual-stack receiver gets an IPv4 and an IPv6
/// sender in one batch, the IPv4 one v4-mapped, exactly as `recv_from` names them.
#[test]
fn a_dual_stack_batch_reaches_both_families_and_names_sources_as_recv_from_does() {
    overlap::block_on(async {
        let tx = UdpSocket::bind("[::]:0").await.unwrap();
        let port = tx.local_addr().unwrap().port();
        let r4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let r6 = UdpSocket::bind("[::1]:0").await.unwrap();
        let (to4, to6) = (r4.local_addr().unwrap(), r6.local_addr().unwrap());
        let queue: Vec<(&[u8], SocketAddr)> =
            vec![(b"v4a", to4), (b"v6a", to6), (b"", to4), (b"v6b", to6)];
        assert_eq!(tx.send_batch(&queue).await.unwrap(), 4);
        let mut batch = RecvBatch::new(8, 8);
        let from4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let from6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        assert_eq!(
            next_batch(&r4, &mut batch).await,
            [(b"v4a".to_vec(), from4), (vec![], from4)]
        );
        assert_eq!(
            next_batch(&r6, &mut batch).await,
            [(b"v6a".to_vec(), from6), (b"v6b".to_vec(), from6)]
        );

        // A dual-stack receiver: one batch from both families.
        let rx = UdpSocket::bind("[::]:0").await.unwrap();
        let rx_port = rx.local_addr().unwrap().port();
        let (s4, s4_at) = std_peer("127.0.0.1:0");
        let (s6, s6_at) = std_peer("[::1]:0");
        s4.send_to(b"four", ("127.0.0.1", rx_port)).unwrap();
        s6.send_to(b"six", ("::1", rx_port)).unwrap();
        let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", s4_at.port())
            .parse()
            .unwrap();
        assert_eq!(
            next_batch(&rx, &mut batch).await,
            [(b"four".to_vec(), mapped), (b"six".to_vec(), s6_at)]
        );
        // `recv_from` names them the same way.
        s4.send_to(b"four", ("127.0.0.1", rx_port)).unwrap();
        s6.send_to(b"six", ("::1", rx_port)).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv_from(&mut buf).await.unwrap(), (4, mapped));
        assert_eq!(rx.recv_from(&mut buf).await.unwrap(), (3, s6_at));
    });
}

/// A `send_batch` polled once and dropped, on a fresh socket (whose write readiness is not
/// known yet: the poll waits) and on one known writable (the poll sends): it sent all it
/// reports or nothing, so sending the rest afterwards puts every datagram on the wire
/// exactly once, in order.
#[test]
fn a_send_batch_polled_once_and_dropped_sent_all_it_reports_or_nothing() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let mut batch = RecvBatch::new(8, 4);
        let (mut pending, mut ready) = (0, 0);
        for round in 0..50u8 {
            let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if round % 2 == 1 {
                // Its write readiness known, the one poll sends.
                within(HANG, tx.writable(), "writable").await.unwrap();
            }
            let bodies = [[round, 0], [round, 1], [round, 2]];
            let queue: Vec<(&[u8], SocketAddr)> = bodies.iter().map(|b| (&b[..], to)).collect();
            let task = ManualTask::default();
            let mut first = Box::pin(tx.send_batch(&queue));
            let sent = match task.poll(first.as_mut()) {
                Poll::Ready(res) => {
                    ready += 1;
                    res.unwrap()
                }
                Poll::Pending => {
                    pending += 1;
                    0
                }
            };
            drop(first);
            let mut rest = &queue[sent..];
            while !rest.is_empty() {
                rest = &rest[tx.send_batch(rest).await.unwrap()..];
            }
            let got = recv_bytes(&rx, &mut batch, 3).await;
            assert_eq!(got, bodies.map(|b| b.to_vec()), "round {round}");
        }
        // Both ways were tried: a poll that waited, and one that sent.
        assert_eq!((pending, ready), (25, 25));
        let mut waiting = Box::pin(rx.recv_batch(&mut batch));
        assert!(
            poll_once(waiting.as_mut()).await.is_pending(),
            "a datagram twice"
        );
    });
}

/// A receiver that always finds a full batch queued (a sender keeps four ahead of it, so
/// every batch fills its slots and keeps the readiness) must still let other tasks run:
/// `recv_batch` spends the task's budget.
#[test]
fn a_receive_loop_that_never_waits_lets_other_tasks_run() {
    overlap::block_on(async {
        let rx = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let to = rx.local_addr().unwrap();
        let (tx, _) = std_peer("127.0.0.1:0");
        let send_four = move || (0..4).for_each(|_| assert_eq!(tx.send_to(b"x", to).unwrap(), 1));
        let mut first = RecvBatch::new(4, 4);
        // Four ahead, and one receive first so the readiness is known: no step waits.
        send_four();
        send_four();
        let n = within(HANG, rx.recv_batch(&mut first), "first")
            .await
            .unwrap();
        assert_eq!(n, 4);
        // Lent to each step and given back: no borrow is held across the receive.
        let slot = Rc::new(Cell::new(Some(first)));
        let steps = steps_before_another_task_runs(100_000, move || {
            let (rx, slot) = (rx.clone(), slot.clone());
            send_four();
            async move {
                let mut batch = slot.take().unwrap();
                let n = rx.recv_batch(&mut batch).await.unwrap();
                slot.set(Some(batch));
                n == 4
            }
        })
        .await;
        assert!(steps < 1000, "{steps} receives before another task ran");
    });
}

/// A sender whose socket is always writable (its receiver never reads: the kernel drops
/// what overflows) must still let other tasks run: `send_batch` spends the budget.
#[test]
fn a_send_loop_that_never_waits_lets_other_tasks_run() {
    overlap::block_on(async {
        let (_sink, to) = std_peer("127.0.0.1:0");
        let tx = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        // One send first, so the readiness is known and no step waits for the reactor.
        within(HANG, tx.send_batch(&[(&b"first"[..], to)]), "first")
            .await
            .unwrap();
        let steps = steps_before_another_task_runs(100_000, move || {
            let tx = tx.clone();
            async move { tx.send_batch(&[(&b"flood"[..], to); 4]).await.unwrap() == 4 }
        })
        .await;
        assert!(steps < 1000, "{steps} sends before another task ran");
    });
}

/// 200 empty datagrams queued ahead of one line: `UdpFramed` skips empty datagrams inside
/// one `poll_next`, so without a budget it would take them all (and, under an endless
/// flood of them, never return). A task spawned after it runs before its line comes, and
/// the line comes whole, from its sender.
#[test]
fn udp_framed_skipping_a_flood_of_empty_datagrams_lets_other_tasks_run() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let (tx, tx_at) = std_peer("127.0.0.1:0");
        let mut framed = UdpFramed::new(rx, LinesCodec::new());
        // One line first, so the readiness is known and the reader's poll does not wait.
        tx.send_to(b"first\n", to).unwrap();
        let first = within(HANG, framed.next(), "first").await;
        assert_eq!(first.unwrap().unwrap(), ("first".to_string(), tx_at));
        for _ in 0..200 {
            tx.send_to(b"", to).unwrap();
        }
        tx.send_to(b"line\n", to).unwrap();
        let other_ran = Rc::new(Cell::new(false));
        let reader = overlap::spawn({
            let other_ran = other_ran.clone();
            async move {
                let item = within(HANG, framed.next(), "the line").await;
                (item.unwrap().unwrap(), other_ran.get())
            }
        });
        overlap::spawn(async move { other_ran.set(true) });
        let (item, other_ran_first) = reader.await.unwrap();
        assert_eq!(item, ("line".to_string(), tx_at));
        assert!(other_ran_first, "200 empty datagrams skipped in one go");
    });
}

/// The largest UDP payload over IPv6 on loopback (65,527 bytes) comes whole through
/// `UdpFramed` and through a `RecvBatch` of the largest slot, neither cut nor marked so.
#[test]
fn the_largest_ipv6_datagram_comes_whole_through_udp_framed_and_recv_batch() {
    overlap::block_on(async {
        const MAX6: usize = 65_527;
        let body: Vec<u8> = (0..MAX6).map(|i| (i % 251) as u8).collect();
        let tx = UdpSocket::bind("[::1]:0").await.unwrap();
        let rx = UdpSocket::bind("[::1]:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        // One byte more is too long for IPv6 (the length field is 16 bits).
        let mut longer = body.clone();
        longer.push(0);
        let err = tx.send_batch(&[(&longer[..], to)]).await.unwrap_err();
        assert_eq!(
            overlap::io::raw_os_error(&err),
            Some(libc::EMSGSIZE),
            "{err}"
        );

        assert_eq!(tx.send_batch(&[(&body[..], to)]).await.unwrap(), 1);
        let mut batch = RecvBatch::new(1, usize::MAX);
        within(HANG, rx.recv_batch(&mut batch), "recv_batch")
            .await
            .unwrap();
        let d = batch.get(0).unwrap();
        assert_eq!((d.data.len(), d.truncated), (MAX6, false));
        assert!(d.data == &body[..]);

        assert_eq!(tx.send_batch(&[(&body[..], to)]).await.unwrap(), 1);
        let mut framed = UdpFramed::new(rx, BytesCodec::new());
        let (frame, from) = within(HANG, framed.next(), "a frame")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, tx.local_addr().unwrap());
        assert_eq!(frame.len(), MAX6);
        assert!(frame[..] == body[..]);
    });
}

/// Buffers are reused: a `RecvBatch` receives into the same memory call after call, and
/// a `UdpFramed`'s read buffer does not grow with the number of datagrams.
#[test]
fn receive_buffers_are_reused_from_call_to_call() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let (tx, _) = std_peer("127.0.0.1:0");
        let mut batch = RecvBatch::new(4, 64);
        let mut slot = None;
        for i in 0..100u8 {
            tx.send_to(&[i], to).unwrap();
            let got = next_batch(&rx, &mut batch).await;
            assert_eq!(got[0].0, [i]);
            let at = batch.get(0).unwrap().data.as_ptr();
            assert_eq!(*slot.get_or_insert(at), at, "receive {i} moved the buffer");
        }

        let mut framed = UdpFramed::new(rx, LinesCodec::new());
        let mut capacities = Vec::new();
        for i in 0..300 {
            tx.send_to(format!("line {i}\n").as_bytes(), to).unwrap();
            let (line, _) = within(HANG, framed.next(), "a line")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(line, format!("line {i}"));
            capacities.push(framed.read_buffer().capacity());
        }
        let most = capacities.iter().max().unwrap();
        assert!(*most <= 64, "the read buffer grew to {most} bytes");
    });
}
