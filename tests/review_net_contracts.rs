//! Promises of the net crate's rustdoc that no other test pinned, each checked against the
//! kernel over loopback:
//! - `from_std` switches a blocking socket to non-blocking mode, and `into_std` (like
//!   `From<T> for OwnedFd`) hands it back still non-blocking, out of the reactor: the same
//!   socket registers again and works;
//! - `poll_read_ready`/`poll_write_ready` wake every waker stored, not only the last one;
//! - a stream accepted from a lingering listener, or made with `from_std` from a lingering
//!   socket, lingers too, and its drop does not stall the loop in `close`;
//! - `RecvBatch::new` takes sizes of 0 as 1, and a dropped `recv_batch` leaves it empty;
//! - the socket options no other test reads back read back what was set;
//! - a Unix datagram pair whose other end closed reads no end of file, and refuses sends.

mod support;

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net as std_unix;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{
    RecvBatch, TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use support::{fill_send_buffer, settle, tcp_pair, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// Whether `fd`'s open file description is in non-blocking mode.
fn non_blocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer; the fd is open for the call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// `from_std` of each socket type turns the blocking socket non-blocking (for every dup of
/// it); `into_std` and `OwnedFd::from` give it back still non-blocking, and out of the
/// reactor, so that it can be registered again.
#[overlap::test]
async fn from_std_makes_sockets_non_blocking_and_into_std_leaves_them_so() {
    // TCP: a listener and a connected stream, each made from a blocking std socket.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(!non_blocking(std_listener.as_raw_fd()));
    let listener = TcpListener::from_std(std_listener).unwrap();
    assert!(non_blocking(listener.as_raw_fd()), "TcpListener::from_std");
    let std_client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert!(!non_blocking(std_client.as_raw_fd()));
    let client = TcpStream::from_std(std_client).unwrap();
    assert!(non_blocking(client.as_raw_fd()), "TcpStream::from_std");
    let (server, _) = within(HANG, listener.accept(), "accept").await.unwrap();

    let std_listener = listener.into_std().unwrap();
    assert!(
        non_blocking(std_listener.as_raw_fd()),
        "TcpListener::into_std"
    );
    let err = std_listener.accept().expect_err("nothing is queued");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    let std_client = client.into_std().unwrap();
    assert!(non_blocking(std_client.as_raw_fd()), "TcpStream::into_std");
    let mut client = TcpStream::from_std(std_client).unwrap();
    let mut server = TcpStream::try_from(OwnedFd::from(server)).unwrap();
    client.write_all(b"again").await.unwrap();
    let mut got = [0u8; 5];
    within(HANG, server.read_exact(&mut got), "re-registered TCP")
        .await
        .unwrap();
    assert_eq!(&got, b"again");
    let fd = OwnedFd::from(server);
    assert!(non_blocking(fd.as_raw_fd()), "OwnedFd::from(TcpStream)");

    // UDP.
    let std_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::from_std(std_udp).unwrap();
    assert!(non_blocking(udp.as_raw_fd()), "UdpSocket::from_std");
    let std_udp = udp.into_std().unwrap();
    assert!(non_blocking(std_udp.as_raw_fd()), "UdpSocket::into_std");
    let err = std_udp.recv(&mut [0u8; 4]).expect_err("nothing is queued");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    let udp = UdpSocket::from_std(std_udp).unwrap();
    let to = udp.local_addr().unwrap();
    udp.send_to(b"u", to).await.unwrap();
    let mut buf = [0u8; 4];
    let n = within(HANG, udp.recv(&mut buf), "re-registered UDP")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"u");

    // Unix: a listener, a stream and a datagram socket.
    let dir = TempDir::new("review-net-contracts");
    let path = dir.join("listener.sock");
    let std_listener = std_unix::UnixListener::bind(&path).unwrap();
    let listener = UnixListener::from_std(std_listener).unwrap();
    assert!(non_blocking(listener.as_raw_fd()), "UnixListener::from_std");
    let std_listener = listener.into_std().unwrap();
    assert!(
        non_blocking(std_listener.as_raw_fd()),
        "UnixListener::into_std"
    );
    let listener = UnixListener::from_std(std_listener).unwrap();
    let _client = UnixStream::connect(&path).await.unwrap();
    within(HANG, listener.accept(), "re-registered Unix listener")
        .await
        .unwrap();

    let (a, b) = std_unix::UnixStream::pair().unwrap();
    let a = UnixStream::from_std(a).unwrap();
    assert!(non_blocking(a.as_raw_fd()), "UnixStream::from_std");
    let a = a.into_std().unwrap();
    assert!(non_blocking(a.as_raw_fd()), "UnixStream::into_std");
    let (mut a, mut b) = (
        UnixStream::from_std(a).unwrap(),
        UnixStream::from_std(b).unwrap(),
    );
    a.write_all(b"s").await.unwrap();
    let mut one = [0u8; 1];
    within(HANG, b.read_exact(&mut one), "re-registered Unix stream")
        .await
        .unwrap();

    let (a, b) = std_unix::UnixDatagram::pair().unwrap();
    let a = UnixDatagram::from_std(a).unwrap();
    assert!(non_blocking(a.as_raw_fd()), "UnixDatagram::from_std");
    let a = a.into_std().unwrap();
    assert!(non_blocking(a.as_raw_fd()), "UnixDatagram::into_std");
    let (a, b) = (
        UnixDatagram::from_std(a).unwrap(),
        UnixDatagram::from_std(b).unwrap(),
    );
    a.send(b"d").await.unwrap();
    let n = within(HANG, b.recv(&mut buf), "re-registered Unix datagram")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"d");
}

/// Two tasks each poll the read readiness of one stream with their own waker: the next
/// edge wakes both (the rustdoc's "every waker stored is woken, not only the last one's").
/// The same for write readiness, on a stream whose send buffer is full.
#[overlap::test]
async fn poll_ready_wakes_every_task_that_polled() {
    let (mut a, b) = tcp_pair().await;
    let b = Rc::new(b);
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            overlap::spawn(async move { poll_fn(|cx| b.poll_read_ready(cx)).await })
        })
        .collect();
    settle().await;
    assert!(
        readers.iter().all(|t| !t.is_finished()),
        "nothing to read yet"
    );
    a.write_all(b"x").await.unwrap();
    for (i, t) in readers.into_iter().enumerate() {
        within(HANG, t, &format!("reader {i} woken"))
            .await
            .unwrap()
            .unwrap();
    }

    let a = Rc::new(a);
    let filled = fill_send_buffer(&a);
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let a = a.clone();
            overlap::spawn(async move { poll_fn(|cx| a.poll_write_ready(cx)).await })
        })
        .collect();
    settle().await;
    assert!(
        writers.iter().all(|t| !t.is_finished()),
        "the buffer is full"
    );
    // Drain the peer: room frees up.
    let mut reader = &*b;
    let mut sink = vec![0u8; 1 << 16];
    let mut taken = 0;
    while taken < filled {
        taken += within(HANG, reader.read(&mut sink), "drain").await.unwrap();
    }
    for (i, t) in writers.into_iter().enumerate() {
        within(HANG, t, &format!("writer {i} woken"))
            .await
            .unwrap()
            .unwrap();
    }
}

/// `set_linger`'s rustdoc: a stream accepted from a listener whose socket had a linger time,
/// or made with `from_std` from a socket that has one, lingers too, so dropping it with
/// unsent data closes it on the blocking pool instead of stalling the loop in `close`.
#[overlap::test]
async fn streams_that_inherit_a_linger_time_do_not_stall_the_loop_when_dropped() {
    let linger = Some(Duration::from_secs(60));
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_linger(linger).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();

    // Accepted: the listener's linger time is the stream's.
    let never_reads = TcpStream::connect(addr).await.unwrap();
    let (accepted, _) = within(HANG, listener.accept(), "accept").await.unwrap();
    assert_eq!(accepted.linger().unwrap(), linger);
    within(HANG, accepted.writable(), "writable").await.unwrap();
    assert!(fill_send_buffer(&accepted) > 0);
    dropped_at_once(accepted, "an accepted stream");
    drop(never_reads);

    // Through std: a linger time set before `into_std` is found again by `from_std`.
    let never_reads = TcpStream::connect(addr).await.unwrap();
    let (server, _) = within(HANG, listener.accept(), "accept").await.unwrap();
    let std_stream = server.into_std().unwrap();
    let adopted = TcpStream::from_std(std_stream).unwrap();
    assert_eq!(adopted.linger().unwrap(), linger);
    within(HANG, adopted.writable(), "writable").await.unwrap();
    assert!(fill_send_buffer(&adopted) > 0);
    dropped_at_once(adopted, "a stream from from_std");
    drop(never_reads);
}

/// Drops `stream`, whose lingering close would wait a minute on this thread: a hang guard,
/// not a speed check.
fn dropped_at_once(stream: TcpStream, what: &str) {
    let start = std::time::Instant::now();
    drop(stream);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "{what}: drop stalled the loop for {took:?}"
    );
}

/// `RecvBatch`: a capacity and a length of 0 are taken as 1 (a datagram longer than the
/// slot is cut, and marked so), and a `recv_batch` dropped while it waits leaves the batch
/// empty, not holding the previous call's datagrams as if they were new.
#[overlap::test]
async fn recv_batch_sizes_and_a_dropped_receive_leave_the_batch_as_documented() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = rx.local_addr().unwrap();
    let mut batch = RecvBatch::new(0, 0);
    assert_eq!(batch.per_call(), 1);
    assert!(batch.is_empty());
    tx.send_to(b"abc", to).await.unwrap();
    let n = within(HANG, rx.recv_batch(&mut batch), "recv_batch")
        .await
        .unwrap();
    assert_eq!((n, batch.len()), (1, 1));
    let d = batch.get(0).unwrap();
    assert_eq!(
        (d.data, d.truncated, d.from),
        (&b"a"[..], true, tx.local_addr().unwrap())
    );
    assert!(batch.get(1).is_none());

    // Nothing queued: the receive waits, and is dropped.
    support::abandon(rx.recv_batch(&mut batch));
    assert!(batch.is_empty(), "the old datagram still looks received");
    assert!(batch.get(0).is_none());
    assert_eq!(batch.iter().count(), 0);
}

/// Setters and getters no other test reads back: `TcpSocket`'s `SO_REUSEADDR`,
/// `SO_REUSEPORT`, `TCP_NODELAY` (which, its rustdoc says, connections accepted by the
/// listener inherit) and buffer sizes (doubled by the kernel, so at least what was asked;
/// any `u32` is taken), a stream's `SO_KEEPALIVE` turned off again, and UDP's
/// `IP_MULTICAST_LOOP`.
#[overlap::test]
async fn socket_options_read_back_what_was_set() {
    let sock = TcpSocket::new_v4().unwrap();
    for on in [true, false, true] {
        sock.set_reuseaddr(on).unwrap();
        assert_eq!(sock.reuseaddr().unwrap(), on);
        sock.set_reuseport(on).unwrap();
        assert_eq!(sock.reuseport().unwrap(), on);
        sock.set_nodelay(on).unwrap();
        assert_eq!(sock.nodelay().unwrap(), on);
    }
    sock.set_send_buffer_size(64 * 1024).unwrap();
    assert!(sock.send_buffer_size().unwrap() >= 64 * 1024);
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    assert!(sock.recv_buffer_size().unwrap() >= 64 * 1024);
    sock.set_send_buffer_size(u32::MAX).unwrap();
    sock.set_recv_buffer_size(u32::MAX).unwrap();
    assert!(sock.send_buffer_size().unwrap() > 0 && sock.recv_buffer_size().unwrap() > 0);

    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(8).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = within(HANG, listener.accept(), "accept").await.unwrap();
    assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is inherited");
    assert!(!client.nodelay().unwrap(), "the client set none");
    client.set_keepalive(true).unwrap();
    assert!(client.keepalive().unwrap());
    client.set_keepalive(false).unwrap();
    assert!(!client.keepalive().unwrap());

    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for on in [false, true] {
        udp.set_multicast_loop_v4(on).unwrap();
        assert_eq!(udp.multicast_loop_v4().unwrap(), on);
    }
    udp.set_broadcast(false).unwrap();
    assert!(!udp.broadcast().unwrap());
}

/// `UnixDatagram::recv`'s rustdoc: the other end of a pair closing is no end of file (what
/// it sent before is still received, then a receive waits), and a send learns it, as
/// `ConnectionRefused`.
#[overlap::test]
async fn a_datagram_pair_whose_peer_closed_gives_no_end_of_file_and_refuses_sends() {
    let (a, b) = UnixDatagram::pair().unwrap();
    b.send(b"last").await.unwrap();
    drop(b);
    let mut buf = [0u8; 8];
    let n = within(HANG, a.recv(&mut buf), "recv").await.unwrap();
    assert_eq!(&buf[..n], b"last");
    settle().await;
    assert!(a.recv(&mut buf).now_or_never().is_none(), "no end of file");
    let err = within(HANG, a.send(b"x"), "send").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}
