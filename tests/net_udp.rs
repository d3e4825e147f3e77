//! UDP: datagram boundaries and sources, peeking, connected sockets and ICMP errors.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::Interest;
use overlap::net::UdpSocket;

use support::{datagram, udp_trio, within};

#[test]
fn thousand_datagrams_with_lengths_and_sources() {
    overlap::block_on(async {
        let (rx, (a, a_addr), (b, b_addr)) = udp_trio().await;
        let to = rx.local_addr().unwrap();

        // Batches of 50, so the receive buffer never overflows (UDP would drop silently).
        let mut buf = vec![0u8; 2048];
        for batch in 0..20 {
            for i in batch * 50..(batch + 1) * 50 {
                let sender = if i % 2 == 0 { &a } else { &b };
                let d = datagram(i);
                assert_eq!(sender.send_to(&d, to).await.unwrap(), d.len());
            }
            for i in batch * 50..(batch + 1) * 50 {
                let (n, from) = rx.recv_from(&mut buf).await.unwrap();
                let expected: SocketAddr = if i % 2 == 0 { a_addr } else { b_addr };
                assert_eq!(from, expected, "datagram {i}");
                assert_eq!(&buf[..n], &datagram(i)[..], "datagram {i}");
            }
        }
    });
}

#[test]
fn peek_from_leaves_the_datagram() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = rx.peek_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], tx.local_addr().unwrap()));
        let mut small = [0u8; 3];
        assert_eq!(rx.peek(&mut small).await.unwrap(), 3);
        let (n, _) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
    });
}

#[test]
fn connected_send_and_recv() {
    overlap::block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"ping").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).await.unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        b.send(b"pong!").await.unwrap();
        assert_eq!(a.recv(&mut buf).await.unwrap(), 5);
        assert_eq!(&buf[..5], b"pong!");
    });
}

#[test]
fn connected_socket_whose_peer_is_gone_gets_connection_refused() {
    overlap::block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        a.connect(gone_addr).await.unwrap();
        a.send(b"anyone?").await.unwrap();
        // The ICMP port-unreachable comes back as EPOLLERR, and the next recv reports it.
        let mut buf = [0u8; 8];
        let err = a.recv(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

        // The error was consumed: the socket is usable, and waiting on it sleeps. (The error
        // state used to stay, so every wait found the socket "ready", got EAGAIN and tried
        // again: a task polled without end.)
        let peer = UdpSocket::bind(gone_addr).await.unwrap();
        peer.connect(a.local_addr().unwrap()).await.unwrap();
        let sender = overlap::spawn(async move {
            overlap::time::sleep(std::time::Duration::from_millis(200)).await;
            peer.send(b"late").await.unwrap();
        });
        let before = overlap::metrics().epoll_waits;
        let n = a.recv(&mut buf).await.unwrap();
        let polls = overlap::metrics().epoll_waits - before;
        assert_eq!(&buf[..n], b"late");
        sender.await.unwrap();
        assert!(
            polls < 20,
            "{polls} epoll_wait calls while waiting for one datagram"
        );
    });
}

const HANG: Duration = Duration::from_secs(5);

/// `connect` filters what arrives from then on; a datagram from another address queued
/// before it still comes out of `recv`, with no source to tell it by (a resolver connecting
/// its query socket can take a spoofed answer that landed between its bind and its
/// connect). A send that reports a pending ICMP error has sent nothing.
#[test]
fn connect_keeps_what_was_queued_and_a_send_reporting_an_error_sent_nothing() {
    overlap::block_on(async {
        let (a, (early, _), (peer, peer_addr)) = udp_trio().await;
        let a_addr = a.local_addr().unwrap();
        early.send_to(b"spoofed", a_addr).await.unwrap();
        a.connect(peer_addr).await.unwrap();
        early.send_to(b"dropped", a_addr).await.unwrap();
        peer.send_to(b"answer", a_addr).await.unwrap();
        let mut buf = [0u8; 16];
        let n = within(HANG, a.recv(&mut buf), "recv").await.unwrap();
        assert_eq!(&buf[..n], b"spoofed", "queued before the connect");
        let n = within(HANG, a.recv(&mut buf), "recv").await.unwrap();
        assert_eq!(
            &buf[..n],
            b"answer",
            "from the peer; the later stranger's dropped"
        );

        // The peer goes: the ICMP error it causes fails the next send, which sends nothing.
        drop(peer);
        a.send(b"lost").await.unwrap();
        within(HANG, a.ready(Interest::ERROR), "the ICMP error")
            .await
            .unwrap();
        let back = UdpSocket::bind(peer_addr).await.unwrap();
        let err = a.send(b"not sent").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        a.send(b"sent").await.unwrap();
        let n = within(HANG, back.recv(&mut buf), "recv").await.unwrap();
        assert_eq!(&buf[..n], b"sent");
    });
}

/// A connected socket never sees a stranger's datagram, and the stranger is told, by ICMP,
/// that nothing is bound there, as `connect`'s docs say: a server answering strangers
/// (TFTP's ERROR 5) must stay unconnected.
#[test]
fn a_strangers_datagram_to_a_connected_socket_is_refused_unseen() {
    overlap::block_on(async {
        let (a, (stranger, _), (peer, peer_addr)) = udp_trio().await;
        let a_addr = a.local_addr().unwrap();
        a.connect(peer_addr).await.unwrap();
        stranger.connect(a_addr).await.unwrap();
        stranger.send(b"wrong TID").await.unwrap();
        let mut buf = [0u8; 16];
        let err = within(HANG, stranger.recv(&mut buf), "the ICMP error")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        peer.send_to(b"right TID", a_addr).await.unwrap();
        let n = within(HANG, a.recv(&mut buf), "recv").await.unwrap();
        assert_eq!(&buf[..n], b"right TID", "the stranger's never queued");
    });
}

/// `recv_from` cuts a datagram longer than its buffer to fit and says only `buf.len()`: a
/// buffer one byte longer than the longest datagram taken tells a cut one, and
/// `recv_batch` says `truncated`.
#[test]
fn a_datagram_longer_than_the_buffer_is_cut_and_a_spare_byte_tells() {
    overlap::block_on(async {
        let (rx, (tx, tx_addr), _) = udp_trio().await;
        let to = rx.local_addr().unwrap();
        for len in [10, 11, 100] {
            tx.send_to(&vec![len as u8; len], to).await.unwrap();
        }
        // At most 10 bytes taken: 11 bytes of room.
        let mut buf = [0u8; 11];
        let mut got = Vec::new();
        for _ in 0..3 {
            let (n, from) = within(HANG, rx.recv_from(&mut buf), "recv_from")
                .await
                .unwrap();
            assert_eq!(from, tx_addr);
            got.push((n, n == buf.len()));
        }
        assert_eq!(got, [(10, false), (11, true), (11, true)]);
        tx.send_to(&[7u8; 100], to).await.unwrap();
        let mut batch = overlap::net::RecvBatch::new(1, 10);
        within(HANG, rx.recv_batch(&mut batch), "recv_batch")
            .await
            .unwrap();
        let d = batch.iter().next().unwrap();
        assert_eq!((d.data, d.truncated), (&[7u8; 10][..], true));
    });
}

/// A dual-stack socket (on `[::]`) sees an IPv4 sender IPv4-mapped, not as the address it
/// sent to: a source check compares the canonical form.
#[test]
fn a_dual_stack_socket_sees_an_ipv4_sender_mapped() {
    overlap::block_on(async {
        let dual = UdpSocket::bind("[::]:0").await.unwrap();
        let port = dual.local_addr().unwrap().port();
        let v4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let v4_addr = v4.local_addr().unwrap();
        dual.send_to(b"query", v4_addr).await.unwrap();
        let mut buf = [0u8; 8];
        let (_, from) = within(HANG, v4.recv_from(&mut buf), "recv_from")
            .await
            .unwrap();
        v4.send_to(b"answer", from).await.unwrap();
        assert_eq!(from.port(), port);
        let (n, from) = within(HANG, dual.recv_from(&mut buf), "recv_from")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"answer");
        assert_ne!(from, v4_addr);
        let mapped = std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped();
        assert_eq!(from.ip(), std::net::IpAddr::V6(mapped));
        assert_eq!(
            (from.ip().to_canonical(), from.port()),
            (v4_addr.ip(), v4_addr.port())
        );
    });
}

#[test]
fn options_round_trip() {
    overlap::block_on(async {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.set_broadcast(true).unwrap();
        assert!(s.broadcast().unwrap());
        s.set_ttl(7).unwrap();
        assert_eq!(s.ttl().unwrap(), 7);
        // A TTL is one byte: more is refused (it used to wrap to -1, "the default").
        for bad in [256, u32::MAX] {
            let err = s.set_ttl(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(s.set_multicast_ttl_v4(bad).is_err());
        }
        assert_eq!(s.ttl().unwrap(), 7, "unchanged");
        s.set_multicast_loop_v4(true).unwrap();
        s.set_multicast_ttl_v4(1).unwrap();
        assert!(s.take_error().unwrap().is_none());
        let std_sock = s.into_std().unwrap();
        let s = UdpSocket::from_std(std_sock).unwrap();
        assert!(s.local_addr().unwrap().ip().is_loopback());
    });
}

/// A stream of datagrams written on the poll functions, as a protocol library would.
struct Datagrams<'a> {
    socket: &'a UdpSocket,
    buf: Vec<u8>,
}

impl overlap::stream::Stream for Datagrams<'_> {
    type Item = std::io::Result<(Vec<u8>, SocketAddr)>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.socket
            .poll_recv_from(cx, &mut this.buf)
            .map(|r| Some(r.map(|(n, from)| (this.buf[..n].to_vec(), from))))
    }
}

#[test]
fn the_poll_functions_wait_register_and_build_a_stream() {
    use overlap::stream::StreamExt;
    use std::future::poll_fn;

    overlap::block_on(async {
        let (rx, (a, a_addr), (b, b_addr)) = udp_trio().await;
        let to = rx.local_addr().unwrap();
        // Nothing queued: Pending, with the waker kept for the datagram to come.
        let mut buf = [0u8; 16];
        let mut wait = std::pin::pin!(poll_fn(|cx| rx.poll_peek_from(cx, &mut buf)));
        assert!(overlap::future::poll_immediate(wait.as_mut())
            .await
            .is_none());
        poll_fn(|cx| a.poll_send_to(cx, b"first", to))
            .await
            .unwrap();
        let (n, from) = wait.await.unwrap();
        assert_eq!(
            (n, from),
            (5, a_addr),
            "peeked, woken by the datagram's arrival"
        );

        for i in 0..100 {
            let sender = if i % 2 == 0 { &a } else { &b };
            let d = datagram(i);
            poll_fn(|cx| sender.poll_send_to(cx, &d, to)).await.unwrap();
        }
        let stream = Datagrams {
            socket: &rx,
            buf: vec![0; 2048],
        };
        let got: Vec<_> = stream.take(101).collect().await;
        assert_eq!(got[0].as_ref().unwrap(), &(b"first".to_vec(), a_addr));
        for (i, d) in got[1..].iter().enumerate() {
            let expected = if i % 2 == 0 { a_addr } else { b_addr };
            assert_eq!(
                d.as_ref().unwrap(),
                &(datagram(i), expected),
                "datagram {i}"
            );
        }

        // Connected: poll_send / poll_recv.
        a.connect(b_addr).await.unwrap();
        b.connect(a_addr).await.unwrap();
        poll_fn(|cx| a.poll_send(cx, b"ping")).await.unwrap();
        let n = poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
    });
}

/// An unconnected socket is not told of a closed port (Linux passes ICMP errors to
/// connected sockets only): a server answering a gone peer with `send_to` sees no error,
/// and its next `recv_from` is the next datagram, as the docs say.
#[test]
fn an_unconnected_socket_is_not_told_of_a_closed_port() {
    overlap::block_on(async {
        let (server, (a, a_addr), _) = udp_trio().await;
        let gone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        for _ in 0..3 {
            assert_eq!(server.send_to(b"anyone?", gone_addr).await.unwrap(), 7);
        }
        a.send_to(b"next", server.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"next"[..], a_addr));
        assert!(server.take_error().unwrap().is_none());
    });
}

/// A datagram over UDP's largest payload fails with the kernel's `EMSGSIZE` as the docs
/// say, nothing is sent, and the socket goes on working (the largest IPv4 payload passes).
#[test]
fn a_datagram_too_long_is_emsgsize_and_the_socket_goes_on() {
    overlap::block_on(async {
        let (server, (a, a_addr), _) = udp_trio().await;
        let to = server.local_addr().unwrap();
        let err = a.send_to(&vec![7u8; 65_508], to).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
        let largest = vec![9u8; 65_507];
        assert_eq!(a.send_to(&largest, to).await.unwrap(), 65_507);
        let mut buf = vec![0u8; 70_000];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!((n, from), (65_507, a_addr));
        assert_eq!(&buf[..n], &largest[..]);
    });
}

/// `SO_RCVBUF` bounds what the kernel queues: a burst nobody reads yet overflows a small
/// buffer (the excess dropped, silently) and fits in the default one.
#[test]
fn a_small_receive_buffer_drops_a_burst_the_default_one_keeps() {
    overlap::block_on(async {
        let small = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        small.set_recv_buffer_size(4096).unwrap();
        assert_eq!(
            small.recv_buffer_size().unwrap(),
            8192,
            "the kernel doubles it"
        );
        let roomy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sender.set_send_buffer_size(256 * 1024).unwrap();
        assert!(
            sender.send_buffer_size().unwrap() >= 2 * 4608,
            "at least the minimum"
        );
        let payload = [7u8; 1000];
        for to in [&small, &roomy] {
            for _ in 0..40 {
                sender
                    .send_to(&payload, to.local_addr().unwrap())
                    .await
                    .unwrap();
            }
        }
        // `try_recv` trusts the readiness the loop has seen: wait for it, then drain.
        async fn queued(sock: &UdpSocket, len: usize) -> usize {
            sock.readable().await.unwrap();
            let mut buf = [0u8; 2048];
            let mut n = 0;
            loop {
                match sock.try_recv(&mut buf) {
                    Ok(got) => assert_eq!(got, len),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                    Err(e) => panic!("try_recv: {e}"),
                }
                n += 1;
            }
        }
        let kept_small = queued(&small, payload.len()).await;
        assert!(
            (1..40).contains(&kept_small),
            "the small buffer kept {kept_small}"
        );
        assert_eq!(
            queued(&roomy, payload.len()).await,
            40,
            "the default buffer keeps the whole burst"
        );
    });
}
