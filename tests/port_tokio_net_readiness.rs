//! The readiness and `try_*` tests of tokio's `tests/tcp_stream.rs`, `uds_stream.rs`,
//! `udp.rs` and `uds_datagram.rs`, and those of `io_driver_drop.rs` (`drop_wakes`,
//! `tcp_doesnt_block`: a socket's wait outliving its runtime), ported to overlap's sockets:
//! the same behaviour, checked in overlap's terms, on loopback and in a temp dir.
//!
//! Skipped from tokio's files:
//! - `try_read_buf`, `try_recv_buf`, `try_recv_buf_from` and the `bytes` forms: overlap's
//!   sockets take `&mut [u8]` (futures-io), not `BufMut`; the slice forms are ported.
//! - `epollhup`'s first step, a Unix `connect` polled once and found pending: the kernel
//!   completes a Unix stream connect at once (the listener's backlog takes it), and
//!   overlap's `connect` reports that at once too, where tokio's waits for a write edge
//!   first. The rest (a listener dropped before accepting resets the connection) is ported.
//! - tests of sending and receiving in general (`send_recv`, `split`, `peek`, ...): covered
//!   by `net_udp.rs`, `net_unix.rs` and `net_peek.rs`; only the readiness ones are here.
//! - `try_send_spawn`'s last step, a `try_send` from another thread: overlap's sockets are
//!   `!Send`, belonging to their runtime's thread. The steps before it are ported.
//!
//! One difference the ports meet: overlap's `readable`/`writable`/`ready` spend the task's
//! cooperative budget (tokio's do not), so a loop checking readiness 128 times without
//! waiting runs `unconstrained` (see `try_read_write`).

mod support;

use std::future::poll_fn;
use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::task::Poll;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt, Interest, Ready};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use overlap::Runtime;
use support::{poll_once, polled, settle, tcp_pair, within, TempDir};

const HANG: Duration = Duration::from_secs(30);

/// The readiness calls tokio's stream tests use, on both stream types.
trait ReadyStream: overlap::io::AsyncRead + overlap::io::AsyncWrite + Unpin {
    async fn readable(&self) -> io::Result<()>;
    async fn writable(&self) -> io::Result<()>;
    async fn ready(&self, interest: Interest) -> io::Result<Ready>;
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>;
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>>;
    fn poll_write_ready(&self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>>;
}

macro_rules! ready_stream {
    ($($t:ty),*) => {$(
        impl ReadyStream for $t {
            async fn readable(&self) -> io::Result<()> {
                <$t>::readable(self).await
            }
            async fn writable(&self) -> io::Result<()> {
                <$t>::writable(self).await
            }
            async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                <$t>::ready(self, interest).await
            }
            fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                <$t>::try_read(self, buf)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, buf)
            }
            fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                <$t>::try_read_vectored(self, bufs)
            }
            fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                <$t>::try_write_vectored(self, bufs)
            }
            fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_read_ready(self, cx)
            }
            fn poll_write_ready(&self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_write_ready(self, cx)
            }
        }
    )*};
}
ready_stream!(TcpStream, UnixStream);

/// Two connected Unix streams through a listener in a temp dir.
async fn unix_pair(dir: &TempDir) -> (UnixStream, UnixStream) {
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Yields until `woken()` says so (each yield lets the reactor deliver its events).
async fn until(what: &str, woken: impl Fn() -> bool) {
    let wait = async {
        while !woken() {
            overlap::yield_now().await;
        }
    };
    within(HANG, wait, what).await;
}

const DATA: &[u8] = b"this is some data to write to the socket";

/// One `try_write` (or, `vectored`, `try_write_vectored` in two slices) of `DATA`.
fn try_write_data<S: ReadyStream>(s: &S, vectored: bool) -> io::Result<usize> {
    if vectored {
        let (a, b) = DATA.split_at(DATA.len() / 2);
        s.try_write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
    } else {
        s.try_write(DATA)
    }
}

/// One `try_read` (or `try_read_vectored` into two halves) into `buf`.
fn try_read_into<S: ReadyStream>(s: &S, buf: &mut [u8], vectored: bool) -> io::Result<usize> {
    if vectored {
        let (a, b) = buf.split_at_mut(buf.len() / 2);
        s.try_read_vectored(&mut [IoSliceMut::new(a), IoSliceMut::new(b)])
    } else {
        s.try_read(buf)
    }
}

/// tokio's `try_read_write`: writes wake a waiting reader; writing until `WouldBlock`
/// leaves the writer waiting, and only then; the reader gets every byte; the peer's close
/// shows as read-closed.
async fn try_read_write<S: ReadyStream>(client: S, server: S) {
    for vectored in [false, true] {
        let mut written = DATA.to_vec();
        let mut readable = polled(server.readable());
        assert!(readable.poll().is_pending(), "readable before any write");
        within(HANG, client.writable(), "writable").await.unwrap();
        assert_eq!(try_write_data(&client, vectored).unwrap(), DATA.len());
        until("the write did not wake the reader", || readable.is_woken()).await;
        drop(readable);
        // Each `writable()` that returns spends a unit of the task's budget in overlap
        // (tokio's `writable()` spends none), so after 128 of them one would say `Pending`
        // to let other tasks run: the filling loop runs unconstrained.
        let fill = async {
            loop {
                let writable = poll_once(Box::pin(client.writable())).await;
                assert!(
                    matches!(writable, Poll::Ready(Ok(()))),
                    "writable went away"
                );
                match try_write_data(&client, vectored) {
                    Ok(n) => written.extend_from_slice(&DATA[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("try_write: {e}"),
                }
            }
        };
        overlap::task::unconstrained(fill).await;
        let full = poll_once(Box::pin(client.writable())).await;
        assert!(full.is_pending(), "writable with a full buffer");
        let mut read = vec![0; written.len()];
        let mut at = 0;
        while at < read.len() {
            within(HANG, server.readable(), "data lost").await.unwrap();
            match try_read_into(&server, &mut read[at..], vectored) {
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_read: {e}"),
            }
        }
        assert!(read == written, "the bytes came back changed");
        // Drained, which only a `WouldBlock` tells (and clears), for the next round.
        let drained = server.try_read(&mut [0; 1]).unwrap_err();
        assert_eq!(drained.kind(), ErrorKind::WouldBlock);
    }
    drop(client);
    let closed = async {
        while !server
            .ready(Interest::READABLE)
            .await
            .unwrap()
            .is_read_closed()
        {
            overlap::yield_now().await;
        }
    };
    within(HANG, closed, "the peer's close not seen").await;
}

// tokio: tcp_stream.rs try_read_write
#[overlap::test]
async fn tcp_try_read_write() {
    let (client, server) = tcp_pair().await;
    try_read_write(client, server).await;
}

// tokio: uds_stream.rs try_read_write
#[overlap::test]
async fn unix_try_read_write() {
    let dir = TempDir::new("port-tokio-try-rw");
    let (client, server) = unix_pair(&dir).await;
    try_read_write(client, server).await;
}

/// Whether `s` is read-ready now, polled once from this task.
async fn read_ready_now<S: ReadyStream>(s: &S) -> bool {
    settle().await;
    poll_fn(|cx| Poll::Ready(s.poll_read_ready(cx).is_ready())).await
}

/// tokio's `poll_read_ready`: not readable at first; readable with data, and still after
/// reading it, until a read says `WouldBlock`; readable again once the peer closes.
async fn poll_read_ready<S: ReadyStream>(mut client: S, mut server: S) {
    assert!(!read_ready_now(&server).await, "readable before any write");
    client.write_all(b"ping").await.unwrap();
    within(HANG, poll_fn(|cx| server.poll_read_ready(cx)), "ping")
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert!(
        read_ready_now(&server).await,
        "cleared without a WouldBlock"
    );
    assert_eq!(
        server.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(!read_ready_now(&server).await, "WouldBlock did not clear");
    drop(client);
    within(HANG, poll_fn(|cx| server.poll_read_ready(cx)), "close")
        .await
        .unwrap();
}

/// tokio's `poll_write_ready`: writable at first; not once the buffer is full; writable
/// again once the peer goes.
async fn poll_write_ready<S: ReadyStream>(client: S, server: S) {
    within(HANG, poll_fn(|cx| client.poll_write_ready(cx)), "writable")
        .await
        .unwrap();
    while client.try_write(&[0; 4096]).is_ok() {}
    settle().await;
    let full = poll_fn(|cx| Poll::Ready(client.poll_write_ready(cx).is_pending())).await;
    assert!(full, "writable with a full buffer");
    drop(server);
    within(HANG, poll_fn(|cx| client.poll_write_ready(cx)), "peer gone")
        .await
        .unwrap();
}

// tokio: tcp_stream.rs poll_read_ready, poll_write_ready
#[overlap::test]
async fn tcp_poll_read_ready_and_poll_write_ready() {
    let (client, server) = tcp_pair().await;
    poll_read_ready(client, server).await;
    let (client, server) = tcp_pair().await;
    poll_write_ready(client, server).await;
}

// tokio: uds_stream.rs poll_read_ready, poll_write_ready
#[overlap::test]
async fn unix_poll_read_ready_and_poll_write_ready() {
    let dir = TempDir::new("port-tokio-poll-ready");
    let (client, server) = unix_pair(&dir).await;
    poll_read_ready(client, server).await;
    let (client, server) = UnixStream::pair().unwrap();
    poll_write_ready(client, server).await;
}

// tokio: tcp_stream.rs buffer_not_included_in_future
#[test]
fn a_read_buffer_between_waits_is_not_kept_in_the_future() {
    const N: usize = 4096;
    let fut = async {
        let stream = TcpStream::connect("127.0.0.1:9").await.unwrap();
        loop {
            stream.readable().await.unwrap();
            let mut buf = [0; N];
            if stream.try_read(&mut buf[..]).unwrap() == 0 {
                break;
            }
        }
    };
    let size = std::mem::size_of_val(&fut);
    assert!(size < 1000, "the future takes {size} bytes");
}

// tokio: uds_stream.rs epollhup
#[overlap::test]
async fn a_listener_dropped_before_accepting_resets_the_connection() {
    let dir = TempDir::new("port-tokio-epollhup");
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let stream = UnixStream::connect(&path).await.unwrap();
    drop(listener);
    let err = within(HANG, stream.readable(), "the reset was not seen")
        .await
        .map(|()| stream.try_read(&mut [0; 8]).unwrap_err())
        .unwrap_or_else(|e| e);
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

// tokio: udp.rs try_send_recv
#[overlap::test]
async fn udp_connected_try_send_and_try_recv_loop_on_readiness() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    server.connect(client.local_addr().unwrap()).await.unwrap();
    client.connect(server.local_addr().unwrap()).await.unwrap();
    for _ in 0..5 {
        loop {
            within(HANG, client.writable(), "writable").await.unwrap();
            match client.try_send(b"hello world") {
                Ok(n) => break assert_eq!(n, 11),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_send: {e}"),
            }
        }
        loop {
            within(HANG, server.readable(), "readable").await.unwrap();
            let mut buf = [0u8; 512];
            match server.try_recv(&mut buf) {
                Ok(n) => break assert_eq!(&buf[..n], b"hello world"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_recv: {e}"),
            }
        }
    }
}

// tokio: udp.rs poll_ready, try_send_to_recv_from, try_peek_sender
#[overlap::test]
async fn udp_poll_ready_with_try_send_to_and_try_recv_from() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (saddr, caddr) = (server.local_addr().unwrap(), client.local_addr().unwrap());
    for round in 0..5 {
        loop {
            let ready = poll_fn(|cx| client.poll_send_ready(cx));
            within(HANG, ready, "send ready").await.unwrap();
            match client.try_send_to(b"hello world", saddr) {
                Ok(n) => break assert_eq!(n, 11),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_send_to: {e}"),
            }
        }
        loop {
            let ready = poll_fn(|cx| server.poll_recv_ready(cx));
            within(HANG, ready, "recv ready").await.unwrap();
            if round % 2 == 1 {
                // Peeking the sender leaves the datagram queued.
                match server.try_peek_sender() {
                    Ok(addr) => assert_eq!(addr, caddr),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => panic!("try_peek_sender: {e}"),
                }
            }
            let mut buf = [0u8; 512];
            match server.try_recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert_eq!((&buf[..n], from), (&b"hello world"[..], caddr));
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_recv_from: {e}"),
            }
        }
    }
}

// tokio: uds_datagram.rs try_send_recv_never_block
#[overlap::test]
async fn unix_datagrams_sent_until_full_all_arrive_then_would_block() {
    let payload = b"PAYLOAD";
    let (a, b) = UnixDatagram::pair().unwrap();
    let mut count = 0;
    loop {
        within(HANG, a.writable(), "writable").await.unwrap();
        match a.try_send(payload) {
            Ok(n) => assert_eq!(n, payload.len()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => break,
            Err(e) => panic!("try_send: {e}"),
        }
        count += 1;
    }
    assert!(count > 0);
    let mut buf = [0u8; 16];
    for _ in 0..count {
        within(HANG, b.readable(), "a datagram lost").await.unwrap();
        let n = b.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], payload);
    }
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

// tokio: uds_datagram.rs poll_ready
#[overlap::test]
async fn unix_datagram_poll_ready_with_try_send_to_and_try_recv_from() {
    let dir = TempDir::new("port-tokio-dgram-ready");
    let (spath, cpath) = (dir.join("server"), dir.join("client"));
    let server = UnixDatagram::bind(&spath).unwrap();
    let client = UnixDatagram::bind(&cpath).unwrap();
    for _ in 0..5 {
        loop {
            let ready = poll_fn(|cx| client.poll_send_ready(cx));
            within(HANG, ready, "send ready").await.unwrap();
            match client.try_send_to(b"hello world", &spath) {
                Ok(n) => break assert_eq!(n, 11),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_send_to: {e}"),
            }
        }
        loop {
            let ready = poll_fn(|cx| server.poll_recv_ready(cx));
            within(HANG, ready, "recv ready").await.unwrap();
            let mut buf = [0u8; 512];
            match server.try_recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert_eq!(&buf[..n], b"hello world");
                    assert_eq!(from.as_pathname(), Some(cpath.as_path()));
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_recv_from: {e}"),
            }
        }
    }
}

// tokio: io_driver_drop.rs drop_wakes, tcp_doesnt_block
#[test]
fn an_accept_outliving_its_runtime_is_woken_and_fails() {
    let rt = Runtime::new().unwrap();
    let listener = {
        let _enter = rt.enter();
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        TcpListener::from_std(std).unwrap()
    };
    let mut accept = polled(listener.accept());
    {
        let _enter = rt.enter();
        assert!(accept.poll().is_pending(), "nobody connected");
    }
    drop(rt);
    assert!(
        accept.is_woken(),
        "the runtime's drop left the accept asleep"
    );
    assert!(matches!(accept.poll(), Poll::Ready(Err(_))));
    // One started after the drop fails at once.
    assert!(matches!(
        polled(listener.accept()).poll(),
        Poll::Ready(Err(_))
    ));
}

// tokio: udp.rs try_send_spawn (but its last send, made from another thread)
#[overlap::test]
async fn udp_try_send_to_then_connect_then_try_send_on_kept_readiness() {
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let raddr = receiver.local_addr().unwrap();
    receiver
        .connect(sender.local_addr().unwrap())
        .await
        .unwrap();
    within(HANG, sender.writable(), "writable").await.unwrap();
    assert_eq!(sender.try_send_to(b"hello", raddr).unwrap(), 5);
    let mut buf = [0u8; 32];
    let first = within(HANG, receiver.recv(&mut buf), "first")
        .await
        .unwrap();
    sender.connect(raddr).await.unwrap();
    // The write readiness seen before `connect` still holds: no wait needed.
    assert_eq!(sender.try_send(b"world!").unwrap(), 6);
    let second = within(HANG, receiver.recv(&mut buf), "second")
        .await
        .unwrap();
    assert_eq!(first + second, 11);
}
