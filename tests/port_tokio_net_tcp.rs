//! Behaviours checked by tokio's TCP integration tests, ported to overlap's `TcpStream`,
//! `TcpListener` and `TcpSocket` on loopback. Each test names the tokio test it follows:
//!
//! - `tcp_stream.rs`: `set_linger`, `read_closed` and `write_closed` (no false
//!   read-closed or write-closed note on a wait that data or room ended). Its readiness and
//!   `try_*` tests are in `port_tokio_net_readiness.rs`.
//! - `tcp_into_split.rs`: `split` (two peeks then a read on an owned read half),
//!   `reunite` (which must not shut the write side down) and `drop_write`.
//! - `tcp_split.rs`: `split` (peeks on a borrowed read half).
//! - `tcp_shutdown.rs`: `shutdown`, `shutdown_multiple_calls`, `shutdown_after_tcp_reset`.
//! - `tcp_accept.rs`: the bind-address forms, `no_extra_poll`, `accept_many`.
//! - `tcp_peek.rs`: `peek` on a stream made from a std socket.
//! - `tcp_into_std.rs`: `tcp_into_std`, there and back.
//! - `tcp_socket.rs`: `basic_usage_v4`/`_v6`, `bind_before_connect`, `basic_linger`.
//! - `tcp_connect.rs`: `connect_v4`/`_v6` and the connect-address forms.
//!
//! Beyond tokio's files, in the same spirit: a reset peer's error through `take_error`,
//! and a reader woken by its own stream's `shutdown(Read)`.
//!
//! Skipped: `buffer_not_included_in_future` (in `port_tokio_net_readiness.rs`),
//! `try_read_buf` (overlap reads into `&mut [u8]`, not `BufMut`).

mod support;

use std::cell::Cell;
use std::future::poll_fn;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt, Interest};
use overlap::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};
use overlap::stream::{Stream, StreamExt};
use support::{fill_send_buffer, poll_once, polled, settle, tcp_pair, within};

const HANG: Duration = Duration::from_secs(10);
const MSG: &[u8] = b"split";

/// Reads `len` bytes and throws them away, waiting for them with `readable`.
async fn drain(stream: &TcpStream, len: usize) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < len {
        within(HANG, stream.readable(), "the drained bytes never came")
            .await
            .unwrap();
        match stream.try_read(&mut buf) {
            Ok(0) => panic!("end of file after {got} of {len} bytes"),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("try_read: {e}"),
        }
    }
}

// tokio: tcp_stream.rs set_linger
#[overlap::test]
async fn linger_round_trips_on_a_connected_stream() {
    let (stream, _peer) = tcp_pair().await;
    assert_eq!(stream.linger().unwrap(), None);
    stream.set_linger(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(1)));
    stream.set_linger(None).unwrap();
    assert_eq!(stream.linger().unwrap(), None);
}

// tokio: tcp_stream.rs read_closed
#[overlap::test]
async fn a_read_wait_ended_by_data_is_not_read_closed() {
    let (client, mut server) = tcp_pair().await;
    let mut ready = pin!(client.ready(Interest::READABLE));
    assert!(poll_once(ready.as_mut()).await.is_pending());
    server.write_all(b"ping").await.unwrap();
    let ready = within(HANG, ready, "the data did not end the wait").await;
    let ready = ready.unwrap();
    assert!(ready.is_readable() && !ready.is_read_closed(), "{ready:?}");
}

// tokio: tcp_stream.rs write_closed
#[overlap::test]
async fn a_write_wait_ended_by_room_is_not_write_closed() {
    let (client, server) = tcp_pair().await;
    let written = fill_send_buffer(&client);
    let mut ready = pin!(client.ready(Interest::WRITABLE));
    assert!(
        poll_once(ready.as_mut()).await.is_pending(),
        "room in a full buffer"
    );
    drain(&server, written).await;
    let ready = within(HANG, ready, "the room did not end the wait").await;
    let ready = ready.unwrap();
    assert!(ready.is_writable() && !ready.is_write_closed(), "{ready:?}");
}

// tokio: tcp_into_split.rs split
#[overlap::test]
async fn owned_halves_peek_twice_then_read_while_the_other_half_writes() {
    let (client, mut peer) = tcp_pair().await;
    let (mut rd, mut wr) = client.into_split();
    let (a, b, c) = overlap::join!(
        async {
            assert_eq!(peer.write(MSG).await?, MSG.len());
            let mut buf = [0u8; 32];
            let n = peer.read(&mut buf).await?;
            assert_eq!(&buf[..n], MSG);
            io::Result::Ok(())
        },
        async {
            assert_eq!(wr.write(MSG).await?, MSG.len());
            io::Result::Ok(())
        },
        async {
            let mut buf = [0u8; 32];
            let first = rd.peek(&mut buf).await?;
            let second = rd.peek(&mut buf).await?;
            assert_eq!(first, second);
            let n = rd.read(&mut buf).await?;
            assert_eq!((n, &buf[..n]), (first, MSG));
            io::Result::Ok(())
        }
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
}

// tokio: tcp_split.rs split
#[overlap::test]
async fn borrowed_read_half_peeks_twice_then_reads() {
    let (mut client, mut peer) = tcp_pair().await;
    peer.write_all(MSG).await.unwrap();
    let (mut rd, mut wr) = TcpStream::split(&mut client);
    let mut buf = [0u8; 32];
    let first = rd.peek(&mut buf).await.unwrap();
    let second = poll_fn(|cx| rd.poll_peek(cx, &mut buf)).await.unwrap();
    assert_eq!(first, second);
    let n = rd.read(&mut buf).await.unwrap();
    assert_eq!((n, &buf[..n]), (first, MSG));
    wr.write_all(MSG).await.unwrap();
    let mut back = [0u8; 5];
    peer.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, MSG);
}

// tokio: tcp_into_split.rs reunite
#[overlap::test]
async fn reunited_halves_are_the_stream_again_with_its_write_side_open() {
    let (one, mut one_peer) = tcp_pair().await;
    let (two, _two_peer) = tcp_pair().await;
    let (rd1, wr1) = one.into_split();
    let (_rd2, wr2) = two.into_split();
    let err = rd1.reunite(wr2).expect_err("halves of two streams");
    let mut stream = err.0.reunite(wr1).expect("halves of one stream");

    // Reuniting shut nothing down: the peer reads what comes next, then EOF at the drop.
    stream.write_all(b"still open").await.unwrap();
    drop(stream);
    let mut got = Vec::new();
    within(HANG, one_peer.read_to_end(&mut got), "no EOF")
        .await
        .unwrap();
    assert_eq!(got, b"still open");
}

// tokio: tcp_into_split.rs drop_write
#[overlap::test]
async fn dropping_the_write_half_during_a_read_sends_eof_and_the_read_goes_on() {
    let (client, mut peer) = tcp_pair().await;
    let (mut rd, wr) = client.into_split();
    peer.write_all(MSG).await.unwrap();
    let mut buf = [0u8; 32];
    let n = rd.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], MSG);

    // The peer sees EOF once the write half is gone, then closes in turn.
    let peer_task = overlap::spawn(async move {
        let mut buf = [0u8; 32];
        assert_eq!(peer.read(&mut buf).await.unwrap(), 0, "EOF expected");
        drop(peer);
    });
    overlap::spawn(async move {
        settle().await;
        drop(wr);
    });
    let n = within(HANG, rd.read(&mut buf), "the read never ended").await;
    assert_eq!(n.unwrap(), 0);
    peer_task.await.unwrap();
}

// Beyond tokio: `forget` keeps the write side open.
#[overlap::test]
async fn a_forgotten_write_half_leaves_the_peer_without_eof_until_the_read_half_drops() {
    let (client, mut peer) = tcp_pair().await;
    let (mut rd, wr) = client.into_split();
    wr.forget();
    peer.write_all(MSG).await.unwrap();
    let mut buf = [0u8; 5];
    rd.read_exact(&mut buf).await.unwrap();
    settle().await;
    let mut peer_read = pin!(peer.read(&mut buf));
    assert!(
        poll_once(peer_read.as_mut()).await.is_pending(),
        "EOF too early"
    );
    drop(rd);
    let n = within(HANG, peer_read, "no EOF after both halves dropped").await;
    assert_eq!(n.unwrap(), 0);
}

// tokio: tcp_shutdown.rs shutdown
#[overlap::test]
async fn a_half_closed_client_reads_eof_after_the_server_copies_nothing_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = overlap::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.close().await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let (rd, mut wr) = TcpStream::split(&mut stream);
    let copied = within(HANG, overlap::io::copy(rd, &mut wr), "copy never ended").await;
    assert_eq!(copied.unwrap(), 0);
    stream.close().await.unwrap();
    within(HANG, client, "the client never read EOF")
        .await
        .unwrap();
}

// tokio: tcp_shutdown.rs shutdown_multiple_calls
#[overlap::test]
async fn closing_three_times_is_fine_and_writes_then_fail_at_once() {
    let (mut client, mut server) = tcp_pair().await;
    for _ in 0..3 {
        client.close().await.unwrap();
    }
    server.close().await.unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    let err = client.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

    // Beyond tokio: the shut write side is reported at once, to the stream and its halves.
    let ready = client.ready(Interest::WRITABLE).await.unwrap();
    assert!(ready.is_write_closed(), "{ready:?}");
    let err = client.try_write(b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    let (_rd, wr) = client.into_split();
    assert!(wr
        .ready(Interest::WRITABLE)
        .await
        .unwrap()
        .is_write_closed());
}

// tokio: tcp_shutdown.rs shutdown_after_tcp_reset; beyond it, `take_error` and the calls
// after it.
#[overlap::test]
async fn a_reset_peer_leaves_an_error_for_take_error_and_close_still_succeeds() {
    let (mut client, server) = tcp_pair().await;
    server.set_zero_linger().unwrap();
    drop(server);
    let ready = within(HANG, client.ready(Interest::ERROR), "no reset seen").await;
    assert!(ready.unwrap().is_error());
    let err = client.take_error().unwrap().expect("the reset's error");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(client.take_error().unwrap().is_none(), "taken twice");
    client.close().await.unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    let err = client.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

// Beyond tokio: a stream's own `shutdown(Read)` ends a read that waits on it.
#[overlap::test]
async fn shutting_down_the_read_side_wakes_a_waiting_reader_with_eof() {
    let (client, _peer) = tcp_pair().await;
    let client = Rc::new(client);
    let reader = overlap::spawn({
        let client = client.clone();
        async move {
            let mut buf = [0u8; 8];
            (&*client).read(&mut buf).await
        }
    });
    settle().await;
    client.shutdown(Shutdown::Read).unwrap();
    let n = within(HANG, reader, "the reader slept through the shutdown").await;
    assert_eq!(n.unwrap().unwrap(), 0);
    let ready = client.ready(Interest::READABLE).await.unwrap();
    assert!(ready.is_read_closed(), "{ready:?}");
}

/// tokio's `test_accept!` body: the accepted stream's peer is the client.
async fn accept_from(target: impl ToSocketAddrs) {
    let listener = TcpListener::bind(target).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = overlap::spawn(async move { listener.accept().await.unwrap() });
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, from) = within(HANG, server, "no accept").await.unwrap();
    assert_eq!(client.local_addr().unwrap(), server.peer_addr().unwrap());
    assert_eq!(from, server.peer_addr().unwrap());
}

// tokio: tcp_accept.rs ip_str, host_str, socket_addr, str_port_tuple, ip_port_tuple
#[overlap::test]
async fn listeners_bound_from_each_address_form_accept() {
    accept_from("127.0.0.1:0").await;
    accept_from("localhost:0").await;
    accept_from("127.0.0.1:0".parse::<SocketAddr>().unwrap()).await;
    accept_from(("127.0.0.1", 0)).await;
    accept_from((IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await;
    accept_from(String::from("127.0.0.1:0")).await;
}

/// A stream of `poll_accept` results that counts its polls (tokio's `TrackPolls`).
struct TrackPolls<'a> {
    polls: Rc<Cell<usize>>,
    listener: &'a TcpListener,
}

impl Stream for TrackPolls<'_> {
    type Item = io::Result<(TcpStream, SocketAddr)>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        self.polls.set(self.polls.get() + 1);
        self.listener.poll_accept(cx).map(Some)
    }
}

// tokio: tcp_accept.rs no_extra_poll
#[overlap::test]
async fn an_accept_loop_is_polled_once_idle_and_twice_per_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let polls = Rc::new(Cell::new(0));
    let (accepted_tx, mut accepted_rx) = overlap::sync::mpsc::unbounded_channel();
    overlap::spawn({
        let polls = polls.clone();
        async move {
            let mut incoming = TrackPolls {
                polls,
                listener: &listener,
            };
            while let Some(conn) = incoming.next().await {
                accepted_tx.send(conn.unwrap()).unwrap();
            }
        }
    });
    settle().await;
    assert_eq!(polls.get(), 1, "the first poll only");
    let _client = TcpStream::connect(addr).await.unwrap();
    within(HANG, accepted_rx.recv(), "no connection")
        .await
        .unwrap();
    assert_eq!(polls.get(), 3, "once for the connection, once more to wait");
    settle().await;
    assert_eq!(polls.get(), 3, "polled again without a wake");
}

// tokio: tcp_accept.rs accept_many
#[overlap::test]
async fn one_connection_wakes_every_pending_accept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut accepts: Vec<_> = (0..50).map(|_| polled(listener.accept())).collect();
    for accept in &mut accepts {
        assert!(accept.poll().is_pending());
    }
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let all_woken = async {
        while !accepts.iter().all(|a| a.is_woken()) {
            overlap::yield_now().await;
        }
    };
    within(HANG, all_woken, "some accepts were never woken").await;
}

// tokio: tcp_peek.rs peek
#[overlap::test]
async fn a_stream_from_a_std_socket_peeks_then_reads_the_same_bytes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let left = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut right, _) = listener.accept().unwrap();
    right.write_all(&[1, 2, 3, 4]).unwrap();
    left.set_nonblocking(true).unwrap();
    let mut left = TcpStream::try_from(OwnedFd::from(left)).unwrap();
    let mut buf = [0u8; 16];
    let n = within(HANG, left.peek(&mut buf), "no data").await.unwrap();
    assert_eq!(&buf[..n], [1, 2, 3, 4]);
    let n = left.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], [1, 2, 3, 4]);
}

/// Whether `fd` has `O_NONBLOCK` set.
fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an open fd reads its flags; no pointers are involved.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

// tokio: tcp_into_std.rs tcp_into_std
#[overlap::test]
async fn into_std_then_a_blocking_read_then_back_with_from_std() {
    let (mut client, server) = tcp_pair().await;
    let mut std_stream = server.into_std().unwrap();
    assert!(
        is_nonblocking(&std_stream),
        "into_std keeps non-blocking mode"
    );
    std_stream.set_nonblocking(false).unwrap();
    client.write_all(b"Hello world!").await.unwrap();
    let mut data = [0u8; 12];
    std_stream.read_exact(&mut data).unwrap();
    assert_eq!(&data, b"Hello world!");

    // Back, from a blocking std stream: `from_std` switches it to non-blocking mode.
    let mut server = TcpStream::from_std(std_stream).unwrap();
    assert!(is_nonblocking(&server));
    let mut read = pin!(server.read_exact(&mut data));
    assert!(
        poll_once(read.as_mut()).await.is_pending(),
        "nothing sent yet"
    );
    client.write_all(b"Hello again!").await.unwrap();
    within(HANG, read, "no data").await.unwrap();
    assert_eq!(&data, b"Hello again!");
}

/// A listener from a `TcpSocket` bound to `addr`, and a client connected to it from
/// another `TcpSocket`, bound first to `client_bind` if given; checks both ends agree.
async fn socket_pair(addr: SocketAddr, client_bind: Option<SocketAddr>) {
    let new = || {
        if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
    };
    let srv = new().unwrap();
    srv.bind(addr).unwrap();
    let listener = srv.listen(128).unwrap();
    let addr = listener.local_addr().unwrap();
    let cli = new().unwrap();
    let bound = client_bind.map(|a| {
        cli.bind(a).unwrap();
        cli.local_addr().unwrap()
    });
    let client = cli.connect(addr).await.unwrap();
    let (server, from) = listener.accept().await.unwrap();
    assert_eq!(client.local_addr().unwrap(), from);
    assert_eq!(server.local_addr().unwrap(), client.peer_addr().unwrap());
    if let Some(bound) = bound {
        assert_eq!(
            client.local_addr().unwrap(),
            bound,
            "the bound port is kept"
        );
    }
}

/// Whether IPv6 loopback can be bound here (some containers have no `::1`).
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

// tokio: tcp_socket.rs basic_usage_v4, basic_usage_v6, bind_before_connect
#[overlap::test]
async fn tcp_sockets_listen_connect_and_bind_before_connecting() {
    let any_v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket_pair(any_v4, None).await;
    socket_pair(any_v4, Some(any_v4)).await;
    if has_ipv6_loopback() {
        socket_pair("[::1]:0".parse().unwrap(), None).await;
    }
}

// tokio: tcp_socket.rs basic_linger
#[overlap::test]
async fn a_fresh_socket_has_no_linger_and_takes_zero() {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert_eq!(sock.linger().unwrap(), None);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(sock.linger().unwrap(), Some(Duration::ZERO));
}

/// tokio's `connect_v4`/`connect_v6`: each end's local address is the other's peer.
async fn connect_over(bind: &str) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = overlap::spawn(async move {
        let (stream, from) = listener.accept().await.unwrap();
        assert_eq!(from, stream.peer_addr().unwrap());
        stream
    });
    let mine = TcpStream::connect(addr).await.unwrap();
    let theirs = within(HANG, server, "no accept").await.unwrap();
    assert_eq!(mine.local_addr().unwrap(), theirs.peer_addr().unwrap());
    assert_eq!(theirs.local_addr().unwrap(), mine.peer_addr().unwrap());
    assert_eq!(mine.peer_addr().unwrap(), addr);
}

// tokio: tcp_connect.rs connect_v4, connect_v6
#[overlap::test]
async fn both_ends_agree_on_addresses_over_v4_and_v6() {
    connect_over("127.0.0.1:0").await;
    if has_ipv6_loopback() {
        connect_over("[::1]:0").await;
    }
}

/// Connects to `listener` through `target` and accepts: both ends agree.
async fn connect_to(listener: &TcpListener, target: impl ToSocketAddrs) {
    let (client, server) = overlap::join!(TcpStream::connect(target), listener.accept());
    let (client, (server, _)) = (client.unwrap(), server.unwrap());
    assert_eq!(client.local_addr().unwrap(), server.peer_addr().unwrap());
}

// tokio: tcp_connect.rs connect_addr_ip_string, _ip_str_slice, _host_string,
// _ip_port_tuple, _ip_str_port_tuple, _host_str_port_tuple
#[overlap::test]
async fn connect_takes_each_address_form() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = format!("127.0.0.1:{port}");
    connect_to(&listener, text.clone()).await;
    connect_to(&listener, &text[..]).await;
    connect_to(&listener, &text).await;
    connect_to(&listener, format!("localhost:{port}")).await;
    connect_to(&listener, (IpAddr::V4(Ipv4Addr::LOCALHOST), port)).await;
    connect_to(&listener, ("127.0.0.1", port)).await;
    connect_to(&listener, ("localhost", port)).await;
    connect_to(&listener, (String::from("localhost"), port)).await;
}
