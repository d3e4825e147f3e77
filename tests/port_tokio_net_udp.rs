//! Behaviours checked by tokio's `tests/udp.rs`, ported to overlap's `UdpSocket` on
//! loopback, where `net_udp.rs`, `net_peek.rs` and `port_tokio_net_readiness.rs` do not
//! check them already. Each test names the tokio test it follows.
//!
//! Skipped: `recv_buf`, `recv_buf_from`, `try_recv_buf` and `try_recv_buf_from` (overlap
//! receives into `&mut [u8]`, not `BufMut`; the slice forms are ported), and the tests
//! already ported elsewhere (`send_recv`, `send_to_recv_from`, `try_send_recv`,
//! `try_send_to_recv_from`, `poll_ready`, `try_send_spawn`, `send_to_try_peek_from`).
//!
//! Beyond tokio's file, in the same spirit: empty datagrams (which are not an end of file),
//! truncation by a short buffer, `peer_addr`/`connect` on an unconnected socket, and a
//! blocking std socket taken in.

mod support;

use std::future::poll_fn;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use support::within;

const HANG: Duration = Duration::from_secs(10);
const MSG: &[u8] = b"hello";

async fn bound() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

// tokio: udp.rs send_recv_poll
#[overlap::test]
async fn connected_poll_send_and_poll_recv() {
    let (sender, receiver) = (bound().await, bound().await);
    sender
        .connect(receiver.local_addr().unwrap())
        .await
        .unwrap();
    receiver
        .connect(sender.local_addr().unwrap())
        .await
        .unwrap();
    let sent = poll_fn(|cx| sender.poll_send(cx, MSG)).await.unwrap();
    assert_eq!(sent, MSG.len());
    let mut buf = [0u8; 32];
    let n = poll_fn(|cx| receiver.poll_recv(cx, &mut buf));
    let n = within(HANG, n, "no datagram").await.unwrap();
    assert_eq!(&buf[..n], MSG);
}

// tokio: udp.rs send_to_peek_from, send_to_peek_from_poll
#[overlap::test]
async fn peek_from_twice_then_recv_from_by_future_and_by_poll() {
    let (sender, receiver) = (bound().await, bound().await);
    let (from, to) = (sender.local_addr().unwrap(), receiver.local_addr().unwrap());
    for by_poll in [false, true] {
        poll_fn(|cx| sender.poll_send_to(cx, MSG, to))
            .await
            .unwrap();
        for _ in 0..2 {
            let mut buf = [0u8; 32];
            let (n, addr) = if by_poll {
                let peek = poll_fn(|cx| receiver.poll_peek_from(cx, &mut buf));
                within(HANG, peek, "no datagram").await.unwrap()
            } else {
                within(HANG, receiver.peek_from(&mut buf), "no datagram")
                    .await
                    .unwrap()
            };
            assert_eq!((&buf[..n], addr), (MSG, from));
        }
        let mut buf = [0u8; 32];
        let (n, addr) = if by_poll {
            poll_fn(|cx| receiver.poll_recv_from(cx, &mut buf))
                .await
                .unwrap()
        } else {
            receiver.recv_from(&mut buf).await.unwrap()
        };
        assert_eq!((&buf[..n], addr), (MSG, from));
        let mut buf = [0u8; 32];
        let err = receiver.try_recv_from(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "taken once only");
    }
}

// tokio: udp.rs poll_peek_sender
#[overlap::test]
async fn poll_peek_sender_names_the_sender_and_poll_recv_from_still_gets_it() {
    let (sender, receiver) = (bound().await, bound().await);
    let msg = b"Hello, world!";
    let to = receiver.local_addr().unwrap();
    poll_fn(|cx| sender.poll_send_to(cx, msg, to))
        .await
        .unwrap();
    let peeked = poll_fn(|cx| receiver.poll_peek_sender(cx));
    let peeked = within(HANG, peeked, "no datagram").await.unwrap();
    assert_eq!(peeked, sender.local_addr().unwrap());
    let mut buf = [0u8; 32];
    let (n, addr) = poll_fn(|cx| receiver.poll_recv_from(cx, &mut buf))
        .await
        .unwrap();
    assert_eq!((&buf[..n], addr), (&msg[..], peeked));
}

// tokio: udp.rs try_peek_sender
#[overlap::test]
async fn try_peek_sender_keeps_the_readiness_for_try_recv_from() {
    let (sender, receiver) = (bound().await, bound().await);
    let err = receiver.try_peek_sender().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let msg = b"Hello, world!";
    sender
        .send_to(msg, receiver.local_addr().unwrap())
        .await
        .unwrap();
    let wait = async {
        loop {
            match receiver.try_peek_sender() {
                Err(e) if e.kind() == ErrorKind::WouldBlock => receiver.readable().await.unwrap(),
                res => return res.unwrap(),
            }
        }
    };
    let peeked = within(HANG, wait, "no datagram").await;
    assert_eq!(peeked, sender.local_addr().unwrap());
    // The peek left the datagram, and the readiness that says so: no wait needed.
    let mut buf = [0u8; 32];
    let (n, addr) = receiver.try_recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], addr), (&msg[..], peeked));
}

// tokio: udp.rs split
#[overlap::test]
async fn a_shared_socket_sends_to_itself_from_another_task() {
    let socket = Rc::new(bound().await);
    let addr = socket.local_addr().unwrap();
    overlap::spawn({
        let socket = socket.clone();
        async move { socket.send_to(MSG, addr).await.unwrap() }
    });
    let mut buf = [0u8; 32];
    let (n, from) = within(HANG, socket.recv_from(&mut buf), "no datagram")
        .await
        .unwrap();
    assert_eq!((&buf[..n], from), (MSG, addr));
}

/// tokio's `split_chan` echo server: one task receives and queues each datagram with its
/// source, another sends it back; `by_poll` uses the poll functions.
fn spawn_echo(socket: UdpSocket, by_poll: bool) {
    let socket = Rc::new(socket);
    let (tx, mut rx) = overlap::sync::mpsc::channel::<(Vec<u8>, std::net::SocketAddr)>(1000);
    overlap::spawn({
        let socket = socket.clone();
        async move {
            while let Some((bytes, to)) = rx.recv().await {
                if by_poll {
                    poll_fn(|cx| socket.poll_send_to(cx, &bytes, to)).await
                } else {
                    socket.send_to(&bytes, to).await
                }
                .unwrap();
            }
        }
    });
    overlap::spawn(async move {
        let mut buf = [0u8; 32];
        loop {
            let (n, from) = if by_poll {
                poll_fn(|cx| socket.poll_recv_from(cx, &mut buf)).await
            } else {
                socket.recv_from(&mut buf).await
            }
            .unwrap();
            tx.send((buf[..n].to_vec(), from)).await.unwrap();
        }
    });
}

// tokio: udp.rs split_chan, split_chan_poll
#[overlap::test]
async fn an_echo_split_over_two_tasks_and_a_channel_answers() {
    for by_poll in [false, true] {
        let server = bound().await;
        let addr = server.local_addr().unwrap();
        spawn_echo(server, by_poll);
        let client = bound().await;
        for i in 0..10u8 {
            client.send_to(&[i; 3], addr).await.unwrap();
            let mut buf = [0u8; 32];
            let (n, from) = within(HANG, client.recv_from(&mut buf), "no echo")
                .await
                .unwrap();
            assert_eq!((&buf[..n], from), (&[i; 3][..], addr));
        }
    }
}

// Beyond tokio: an empty datagram is a datagram, not an end of file, by every receive.
#[overlap::test]
async fn empty_datagrams_are_received_as_datagrams_of_no_bytes() {
    let (sender, receiver) = (bound().await, bound().await);
    let (from, to) = (sender.local_addr().unwrap(), receiver.local_addr().unwrap());
    for _ in 0..4 {
        sender.send_to(&[], to).await.unwrap();
    }
    sender.send_to(b"last", to).await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(receiver.peek_sender().await.unwrap(), from);
    assert_eq!(receiver.peek_from(&mut buf).await.unwrap(), (0, from));
    assert_eq!(receiver.recv_from(&mut buf).await.unwrap(), (0, from));
    let n = poll_fn(|cx| receiver.poll_recv(cx, &mut buf))
        .await
        .unwrap();
    assert_eq!(n, 0);
    receiver.readable().await.unwrap();
    assert_eq!(receiver.try_recv_from(&mut buf).unwrap(), (0, from));
    receiver.connect(from).await.unwrap();
    assert_eq!(receiver.recv(&mut buf).await.unwrap(), 0);
    let n = within(HANG, receiver.recv(&mut buf), "the last datagram").await;
    assert_eq!(&buf[..n.unwrap()], b"last");
}

// Beyond tokio: a short buffer truncates the datagram, and the rest is gone.
#[overlap::test]
async fn a_short_buffer_truncates_the_datagram_and_loses_the_rest() {
    let (sender, receiver) = (bound().await, bound().await);
    let to = receiver.local_addr().unwrap();
    sender.send_to(b"0123456789", to).await.unwrap();
    sender.send_to(b"next", to).await.unwrap();
    let mut small = [0u8; 4];
    assert_eq!(receiver.peek(&mut small).await.unwrap(), 4);
    assert_eq!(&small, b"0123");
    let (n, _) = receiver.recv_from(&mut small).await.unwrap();
    assert_eq!(&small[..n], b"0123");
    let mut buf = [0u8; 16];
    let (n, _) = receiver.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"next");
}

// Beyond tokio: an unconnected socket has no peer; `connect` gives it one, and another
// `connect` replaces it.
#[overlap::test]
async fn peer_addr_follows_connect() {
    let (a, b, c) = (bound().await, bound().await, bound().await);
    let err = a.peer_addr().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    a.connect(b.local_addr().unwrap()).await.unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    a.connect(c.local_addr().unwrap()).await.unwrap();
    assert_eq!(a.peer_addr().unwrap(), c.local_addr().unwrap());
    a.send(MSG).await.unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = within(HANG, c.recv_from(&mut buf), "no datagram")
        .await
        .unwrap();
    assert_eq!((&buf[..n], from), (MSG, a.local_addr().unwrap()));
    // Only the connected peer gets through now.
    b.send_to(b"ignored", a.local_addr().unwrap())
        .await
        .unwrap();
    c.send_to(b"passes", a.local_addr().unwrap()).await.unwrap();
    let n = within(HANG, a.recv(&mut buf), "no datagram").await.unwrap();
    assert_eq!(&buf[..n], b"passes");
}

// Beyond tokio (whose `from_std` leaves the mode to the caller): a blocking std socket is
// switched to non-blocking mode, so a receive waits instead of blocking the thread.
#[overlap::test]
async fn a_blocking_std_socket_comes_in_non_blocking() {
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver = UdpSocket::from_std(std_socket).unwrap();
    // SAFETY: F_GETFL on an open fd reads its flags; no pointers are involved.
    let flags = unsafe { libc::fcntl(receiver.as_raw_fd(), libc::F_GETFL) };
    assert!(
        flags >= 0 && flags & libc::O_NONBLOCK != 0,
        "flags {flags:#x}"
    );
    let mut buf = [0u8; 8];
    let mut recv = std::pin::pin!(receiver.recv_from(&mut buf));
    assert!(support::poll_once(recv.as_mut()).await.is_pending());
    let sender = bound().await;
    sender
        .send_to(MSG, receiver.local_addr().unwrap())
        .await
        .unwrap();
    let (n, from) = within(HANG, recv, "no datagram").await.unwrap();
    assert_eq!((n, from), (MSG.len(), sender.local_addr().unwrap()));
}
