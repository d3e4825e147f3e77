//! Promises of `sync::mpsc::cross_thread`'s and `udp::UdpFramed`'s rustdoc that no other
//! test held to, each against real threads or real loopback sockets: the async calls under
//! a plain executor on std threads with no runtime; the last sender dropped on another
//! thread waking a task's `recv`; a `close` from another thread failing a parked
//! `blocking_send` with its value while the queue is still received; `try_send` `Full`
//! while a freed slot is promised to a waiting sender; a permit filled after the receiver
//! dropped dropping its value; `send_timeout` with room outside a runtime; and for
//! `UdpFramed` the largest payloads arriving whole, an item readied but not flushed never
//! sent, a codec's discarding carried from one datagram into the next, and `last_sender`
//! after a socket error.

mod support;

use std::io::ErrorKind;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use overlap::codec::{BytesCodec, LinesCodec, LinesCodecError};
use overlap::net::UdpSocket;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::mpsc::cross_thread;
use overlap::sync::mpsc::error::{SendError, SendTimeoutError, TrySendError};
use overlap::udp::UdpFramed;
use support::{on_thread_within, park_on, poll_once, polled, within, Gate};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn send_and_recv_under_a_plain_executor_on_two_std_threads_keep_order_and_end() {
    on_thread_within(LONG, "a plain-executor pipeline", || {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        let producer = thread::spawn(move || {
            park_on(async move {
                for i in 0..2000 {
                    tx.send(i).await.unwrap();
                }
            })
        });
        let consumer = thread::spawn(move || {
            park_on(async move {
                let mut got = Vec::new();
                while let Some(v) = rx.recv().await {
                    got.push(v);
                }
                got
            })
        });
        producer.join().unwrap();
        assert_eq!(consumer.join().unwrap(), (0..2000).collect::<Vec<_>>());
    });
}

#[test]
fn the_last_sender_dropped_on_another_thread_wakes_a_task_waiting_in_recv() {
    let (tx, mut rx) = cross_thread::channel::<u8>(4);
    let gate = Gate::default();
    let opened = gate.clone();
    let thread = thread::spawn(move || {
        let tx2 = tx.clone();
        opened.wait();
        tx.blocking_send(5).unwrap();
        drop(tx);
        drop(tx2);
    });
    overlap::block_on(async {
        {
            let mut recv = pin!(rx.recv());
            assert!(poll_once(&mut recv).await.is_pending(), "nothing sent yet");
            gate.open();
            assert_eq!(within(LONG, recv, "the value").await, Some(5));
        }
        // Whether this one waits or not, the senders' drop on the thread ends it.
        assert_eq!(within(LONG, rx.recv(), "the end").await, None);
    });
    thread.join().unwrap();
}

#[test]
fn a_close_on_another_thread_fails_a_parked_blocking_send_with_its_value() {
    on_thread_within(LONG, "a close releasing a blocked sender", || {
        let (tx, mut rx) = cross_thread::channel::<&str>(1);
        tx.try_send("queued").unwrap();
        let kept = tx.clone();
        let both_started = Arc::new(Barrier::new(2));
        let started = both_started.clone();
        let sender = thread::spawn(move || {
            started.wait();
            // Full: parks until the close (or fails at once if the close came first).
            tx.blocking_send("waiting")
        });
        both_started.wait();
        rx.close();
        assert_eq!(sender.join().unwrap(), Err(SendError("waiting")));
        assert!(kept.is_closed());
        assert_eq!(kept.try_send("late"), Err(TrySendError::Closed("late")));
        // What was queued before the close is still received, then the end, though a
        // sender is still alive.
        assert_eq!(rx.blocking_recv(), Some("queued"));
        assert_eq!(rx.blocking_recv(), None);
        drop(kept);
    });
}

#[test]
fn try_send_is_full_while_a_freed_slot_is_promised_to_a_waiting_sender() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    tx.try_send(1).unwrap();
    let mut waiting = polled(tx.send(2));
    assert!(waiting.poll().is_pending());
    // The freed slot goes to the waiting send, not to a try_send that comes after.
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(waiting.is_woken());
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(waiting.poll(), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(tx.try_send(4), Ok(()));
    assert_eq!(rx.try_recv(), Ok(4));
}

#[test]
fn a_permit_filled_after_the_receiver_dropped_on_another_thread_drops_its_value() {
    let (tx, rx) = cross_thread::channel::<Arc<()>>(2);
    let permit = tx.try_reserve().unwrap();
    thread::spawn(move || drop(rx)).join().unwrap();
    let value = Arc::new(());
    permit.send(value.clone());
    assert_eq!(
        Arc::strong_count(&value),
        1,
        "the value was dropped, not kept"
    );
    assert!(tx.is_closed());
    let back = tx.try_send(value.clone()).unwrap_err();
    assert!(matches!(back, TrySendError::Closed(v) if Arc::ptr_eq(&v, &value)));
}

#[test]
fn send_timeout_with_room_sends_under_a_plain_executor_with_no_runtime() {
    on_thread_within(LONG, "send_timeout with room", || {
        let (tx, mut rx) = cross_thread::channel::<u8>(2);
        let sent = park_on(tx.send_timeout(7, Duration::ZERO));
        assert_eq!(sent, Ok(()));
        let sent = park_on(tx.send_timeout(8, Duration::from_secs(60)));
        assert_eq!(sent, Ok(()));
        drop(tx);
        assert_eq!(rx.blocking_recv(), Some(7));
        assert_eq!(rx.blocking_recv(), Some(8));
        assert_eq!(rx.blocking_recv(), None);
    });
}

#[test]
fn send_timeout_on_a_closed_channel_gives_the_value_back_with_no_runtime() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    rx.close();
    let res = park_on(tx.send_timeout(3, Duration::from_secs(60)));
    assert_eq!(res, Err(SendTimeoutError::Closed(3)));
}

async fn bound(addr: &str) -> UdpSocket {
    UdpSocket::bind(addr).await.unwrap()
}

#[test]
fn the_largest_udp_payloads_of_ipv4_and_ipv6_arrive_whole() {
    overlap::block_on(async {
        for (host, largest) in [("127.0.0.1:0", 65_507usize), ("[::1]:0", 65_527)] {
            let raw = bound(host).await;
            let mut framed = UdpFramed::new(bound(host).await, BytesCodec::new());
            let to = framed.get_ref().local_addr().unwrap();
            let payload: Vec<u8> = (0..largest).map(|i| (i % 251) as u8).collect();
            assert_eq!(raw.send_to(&payload, to).await.unwrap(), largest);
            raw.send_to(b"after", to).await.unwrap();
            let (frame, from) = within(LONG, framed.next(), "the big datagram")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(from, raw.local_addr().unwrap());
            assert_eq!(frame.len(), largest, "over {host}");
            assert!(frame[..] == payload[..], "over {host}");
            let (frame, _) = within(LONG, framed.next(), "the next")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(frame, b"after"[..]);
        }
    });
}

#[test]
fn an_item_readied_but_not_flushed_is_never_sent() {
    overlap::block_on(async {
        let peer = bound("127.0.0.1:0").await;
        let to = peer.local_addr().unwrap();
        let mut framed = UdpFramed::new(bound("127.0.0.1:0").await, BytesCodec::new());
        // `feed` readies and encodes the item; only a flush (or the next item) sends it.
        framed.feed((&b"never"[..], to)).await.unwrap();
        drop(framed);
        let other = bound("127.0.0.1:0").await;
        other.send_to(b"marker", to).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = within(LONG, peer.recv_from(&mut buf), "the marker")
            .await
            .unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"marker"[..], other.local_addr().unwrap())
        );
        assert_eq!(
            peer.try_recv_from(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    });
}

#[test]
fn a_codec_discarding_a_too_long_line_carries_that_into_the_next_datagram() {
    overlap::block_on(async {
        let raw = bound("127.0.0.1:0").await;
        let mut framed = UdpFramed::new(
            bound("127.0.0.1:0").await,
            LinesCodec::new_with_max_length(4),
        );
        let to = framed.get_ref().local_addr().unwrap();
        raw.send_to(b"far too long", to).await.unwrap();
        raw.send_to(b"rest of it\nok\n", to).await.unwrap();
        let err = within(LONG, framed.next(), "the error").await.unwrap();
        assert!(matches!(err, Err(LinesCodecError::MaxLineLengthExceeded)));
        // The codec was still dropping the long line: the next datagram's bytes up to its
        // newline went with it.
        let (line, _) = within(LONG, framed.next(), "ok").await.unwrap().unwrap();
        assert_eq!(line, "ok");
        // A fresh codec put in after an error keeps nothing.
        raw.send_to(b"far too long", to).await.unwrap();
        raw.send_to(b"next\n", to).await.unwrap();
        assert!(within(LONG, framed.next(), "the error")
            .await
            .unwrap()
            .is_err());
        *framed.codec_mut() = LinesCodec::new_with_max_length(4);
        let (line, _) = within(LONG, framed.next(), "next").await.unwrap().unwrap();
        assert_eq!(line, "next");
        assert!(framed.read_buffer().is_empty());
    });
}

#[test]
fn last_sender_is_none_after_a_socket_error_and_names_the_next_datagram_s_sender() {
    overlap::block_on(async {
        let gone = bound("127.0.0.1:0").await;
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        let sock = bound("127.0.0.1:0").await;
        let own = sock.local_addr().unwrap();
        let mut framed = UdpFramed::new(sock, LinesCodec::new());
        let peer = bound("127.0.0.1:0").await;
        peer.send_to(b"first\n", own).await.unwrap();
        let (line, _) = within(LONG, framed.next(), "first").await.unwrap().unwrap();
        assert_eq!(line, "first");
        assert_eq!(framed.last_sender(), Some(peer.local_addr().unwrap()));
        // Connected to nobody: the refusal of this send is the socket's own error.
        framed.get_ref().connect(gone_addr).await.unwrap();
        framed.send(("anyone?", gone_addr)).await.unwrap();
        match within(LONG, framed.next(), "the refusal").await.unwrap() {
            Err(LinesCodecError::Io(e)) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            framed.last_sender(),
            None,
            "a socket error comes from no datagram"
        );
        // Connected to the peer now: its datagrams come through again.
        framed
            .get_ref()
            .connect(peer.local_addr().unwrap())
            .await
            .unwrap();
        peer.send_to(b"second\n", own).await.unwrap();
        let (line, from) = within(LONG, framed.next(), "second")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (line.as_str(), from),
            ("second", peer.local_addr().unwrap())
        );
        assert_eq!(framed.last_sender(), Some(from));
    });
}
