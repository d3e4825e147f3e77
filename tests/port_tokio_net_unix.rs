//! Behaviours checked by tokio's Unix-socket integration tests, ported to overlap's
//! `UnixListener`, `UnixStream` and `UnixDatagram` in a temp dir (or under abstract names,
//! which leave no file). Each test names the tokio test it follows:
//!
//! - `uds_stream.rs`: `accept_read_write`, `shutdown`, `abstract_socket_name`. Its
//!   readiness tests and `epollhup` are in `port_tokio_net_readiness.rs`.
//! - `uds_datagram.rs`: `echo`, `echo_from`, `split`, `send_recv_poll`.
//! - `uds_split.rs`: `split` (borrowed halves used as `dyn` futures-io objects).
//! - `uds_cred.rs`: `test_socket_pair`.
//!
//! Beyond tokio's files, in the same spirit: the unnamed addresses of pairs and unbound
//! sockets, abstract datagram names, a datagram pair whose peer is gone, a stream's own
//! `shutdown` seen by its readers and writers, a connection closed before it is accepted,
//! and blocking std sockets taken in.
//!
//! Skipped:
//! - `uds_socket.rs`: overlap has no `UnixSocket` (a socket set up before it listens or
//!   connects); `UnixListener::bind`, `UnixStream::connect` and `UnixDatagram::bind` cover
//!   its ordinary uses, not a client bound to a path before connecting.
//! - `uds_datagram.rs` `send_to_recv_from_poll`: overlap's `UnixDatagram` has no
//!   `poll_send_to`, since a full unconnected receiver raises no wake-up for its sender
//!   (see `UnixDatagram::send_to`). `try_send_recv_never_block`, `try_send_to_recv_from`
//!   and `poll_ready` are in `port_tokio_net_readiness.rs`; the `*_buf` forms take `BufMut`.

mod support;

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use overlap::net::{UnixDatagram, UnixListener, UnixStream};
use support::{settle, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// An abstract socket name unique to this process and `what` (leading NUL included).
fn abstract_name(what: &str) -> String {
    format!("\0overlap-port-tokio-{}-{what}", std::process::id())
}

// tokio: uds_stream.rs accept_read_write
#[overlap::test]
async fn accept_then_read_to_end_then_zero_again() {
    let dir = TempDir::new("port-tokio-uds-arw");
    let path = dir.join("connect.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (accepted, client) = overlap::join!(listener.accept(), UnixStream::connect(&path));
    let ((mut server, from), mut client) = (accepted.unwrap(), client.unwrap());
    assert!(from.is_unnamed(), "an unbound client: {from:?}");
    client.write_all(b"hello").await.unwrap();
    drop(client);
    let mut buf = Vec::new();
    within(HANG, server.read_to_end(&mut buf), "no EOF")
        .await
        .unwrap();
    assert_eq!(buf, b"hello");
    assert_eq!(server.read(&mut [0u8; 8]).await.unwrap(), 0);
}

// Beyond tokio: a client gone before its connection is accepted still leaves a stream,
// with what it wrote and then end of file.
#[overlap::test]
async fn a_connection_closed_before_accept_is_accepted_with_its_data() {
    let dir = TempDir::new("port-tokio-uds-early");
    let path = dir.join("connect.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut client = UnixStream::connect(&path).await.unwrap();
    client.write_all(b"early").await.unwrap();
    drop(client);
    let (mut server, from) = listener.accept().await.unwrap();
    assert!(from.is_unnamed(), "{from:?}");
    let mut got = Vec::new();
    within(HANG, server.read_to_end(&mut got), "no EOF")
        .await
        .unwrap();
    assert_eq!(got, b"early");
}

/// Whether `fd` has `O_NONBLOCK` set.
fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an open fd reads its flags; no pointers are involved.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

// Beyond tokio (whose `from_std` leaves the mode to the caller): blocking std sockets are
// switched to non-blocking mode on the way in, and stay so on the way out.
#[overlap::test]
async fn blocking_std_unix_sockets_come_in_non_blocking() {
    let dir = TempDir::new("port-tokio-uds-std");
    let listener = std::os::unix::net::UnixListener::bind(dir.join("l.sock")).unwrap();
    let listener = UnixListener::from_std(listener).unwrap();
    assert!(is_nonblocking(&listener));
    assert!(is_nonblocking(&listener.into_std().unwrap()));
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(is_nonblocking(&UnixStream::from_std(a).unwrap()));
    assert!(is_nonblocking(
        &UnixStream::try_from(OwnedFd::from(b)).unwrap()
    ));
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let a = UnixDatagram::from_std(a).unwrap();
    assert!(is_nonblocking(&a));
    let b = UnixDatagram::try_from(OwnedFd::from(b)).unwrap();
    assert!(is_nonblocking(&b));
    // And they work: a recv waits instead of blocking the thread.
    let mut buf = [0u8; 4];
    let mut recv = std::pin::pin!(b.recv(&mut buf));
    assert!(support::poll_once(recv.as_mut()).await.is_pending());
    a.send(b"ok").await.unwrap();
    assert_eq!(within(HANG, recv, "no datagram").await.unwrap(), 2);
}

// tokio: uds_stream.rs shutdown
#[overlap::test]
async fn a_closed_client_reads_as_eof_and_its_writes_fail() {
    let dir = TempDir::new("port-tokio-uds-shutdown");
    let path = dir.join("connect.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (accepted, client) = overlap::join!(listener.accept(), UnixStream::connect(&path));
    let ((mut server, _), mut client) = (accepted.unwrap(), client.unwrap());
    client.close().await.unwrap();
    let n = within(HANG, server.read(&mut [0u8; 1]), "no EOF").await;
    assert_eq!(n.unwrap(), 0);

    // Beyond tokio: the write side stays shut, at once and without waiting.
    let ready = client.ready(Interest::WRITABLE).await.unwrap();
    assert!(ready.is_write_closed(), "{ready:?}");
    let err = client.try_write(b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    let err = client.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    // The other direction still works.
    server.write_all(b"reply").await.unwrap();
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"reply");
}

// tokio: uds_stream.rs abstract_socket_name
#[overlap::test]
async fn streams_meet_under_an_abstract_name() {
    let name = abstract_name("stream");
    let listener = UnixListener::bind(&name).unwrap();
    let bare = &name.as_bytes()[1..];
    assert_eq!(
        listener.local_addr().unwrap().as_abstract_name(),
        Some(bare)
    );
    let (accepted, client) = overlap::join!(listener.accept(), UnixStream::connect(&name));
    let ((mut server, _), mut client) = (accepted.unwrap(), client.unwrap());
    assert_eq!(server.local_addr().unwrap().as_abstract_name(), Some(bare));
    assert_eq!(client.peer_addr().unwrap().as_abstract_name(), Some(bare));
    let std_server = server.into_std().unwrap();
    assert_eq!(
        std_server.local_addr().unwrap().as_abstract_name(),
        Some(bare)
    );
    server = UnixStream::from_std(std_server).unwrap();
    client.write_all(b"abstract").await.unwrap();
    let mut buf = [0u8; 8];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"abstract");

    // The name is taken while the listener lives, and free once it is gone.
    let err = UnixListener::bind(&name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    drop(listener);
    let err = UnixStream::connect(&name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    UnixListener::bind(&name).unwrap();
}

/// tokio's `echo_server`: sends each datagram back to its sender, if the sender is bound.
async fn echo_server(socket: UnixDatagram) {
    let mut buf = [0u8; 1024];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await.unwrap();
        if let Some(path) = from.as_pathname() {
            socket.send_to(&buf[..n], path).await.unwrap();
        } else if let Some(name) = from.as_abstract_name() {
            let mut named = vec![0u8];
            named.extend_from_slice(name);
            let name = std::ffi::OsStr::from_bytes(&named);
            socket.send_to(&buf[..n], name).await.unwrap();
        }
    }
}

// tokio: uds_datagram.rs echo, echo_from
#[overlap::test]
async fn a_bound_client_gets_its_datagram_echoed_by_path() {
    let dir = TempDir::new("port-tokio-uds-echo");
    let server_path = dir.join("server.sock");
    let server = UnixDatagram::bind(&server_path).unwrap();
    overlap::spawn(echo_server(server));
    let client = UnixDatagram::bind(dir.join("client.sock")).unwrap();
    client.connect(&server_path).unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_pathname(),
        Some(&*server_path)
    );
    client.send(b"ECHO").await.unwrap();
    let mut buf = [0u8; 16];
    let n = within(HANG, client.recv(&mut buf), "no echo")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"ECHO");
    client.send(b"ECHO2").await.unwrap();
    let (n, from) = within(HANG, client.recv_from(&mut buf), "no echo")
        .await
        .unwrap();
    assert_eq!(
        (&buf[..n], from.as_pathname()),
        (&b"ECHO2"[..], Some(&*server_path))
    );
}

// Beyond tokio: the same echo under abstract names, both ends.
#[overlap::test]
async fn datagrams_are_echoed_between_abstract_names() {
    let server_name = abstract_name("dgram-server");
    let server = UnixDatagram::bind(&server_name).unwrap();
    overlap::spawn(echo_server(server));
    let client_name = abstract_name("dgram-client");
    let client = UnixDatagram::bind(&client_name).unwrap();
    let bare = &client_name.as_bytes()[1..];
    assert_eq!(client.local_addr().unwrap().as_abstract_name(), Some(bare));
    client.send_to(b"ping", &server_name).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = within(HANG, client.recv_from(&mut buf), "no echo")
        .await
        .unwrap();
    let server_bare = &server_name.as_bytes()[1..];
    assert_eq!(
        (&buf[..n], from.as_abstract_name()),
        (&b"ping"[..], Some(server_bare))
    );
    assert_eq!(client.try_send_to(b"pong", &server_name).unwrap(), 4);
    let (n, _) = within(HANG, client.recv_from(&mut buf), "no echo")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"pong");
}

// tokio: uds_datagram.rs split
#[overlap::test]
async fn a_shared_datagram_socket_sends_to_its_own_path() {
    let dir = TempDir::new("port-tokio-uds-split");
    let path = dir.join("split.sock");
    let socket = Rc::new(UnixDatagram::bind(&path).unwrap());
    let (sent, received) = overlap::join!(socket.send_to(b"hello", &path), async {
        let mut buf = [0u8; 32];
        let (n, from) = socket.recv_from(&mut buf).await?;
        assert_eq!(from.as_pathname(), Some(&*path));
        io::Result::Ok(buf[..n].to_vec())
    });
    assert_eq!(sent.unwrap(), 5);
    assert_eq!(received.unwrap(), b"hello");
}

// tokio: uds_datagram.rs send_recv_poll
#[overlap::test]
async fn connected_bound_datagrams_poll_send_and_poll_recv() {
    let dir = TempDir::new("port-tokio-uds-poll");
    let (sender_path, receiver_path) = (dir.join("sender.sock"), dir.join("receiver.sock"));
    let sender = UnixDatagram::bind(&sender_path).unwrap();
    let receiver = UnixDatagram::bind(&receiver_path).unwrap();
    sender.connect(&receiver_path).unwrap();
    receiver.connect(&sender_path).unwrap();
    poll_fn(|cx| sender.poll_send(cx, b"hello")).await.unwrap();
    let mut buf = [0u8; 32];
    let n = within(HANG, poll_fn(|cx| receiver.poll_recv(cx, &mut buf)), "none").await;
    assert_eq!(&buf[..n.unwrap()], b"hello");
    poll_fn(|cx| receiver.poll_send(cx, b"back")).await.unwrap();
    let got = poll_fn(|cx| sender.poll_recv_from(cx, &mut buf));
    let (n, from) = within(HANG, got, "none").await.unwrap();
    assert_eq!(
        (&buf[..n], from.as_pathname()),
        (&b"back"[..], Some(&*receiver_path))
    );
}

// Beyond tokio: what an unbound datagram socket and a pair are called.
#[overlap::test]
async fn unbound_and_paired_sockets_have_unnamed_addresses() {
    let dir = TempDir::new("port-tokio-uds-unnamed");
    let path = dir.join("receiver.sock");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let unbound = UnixDatagram::unbound().unwrap();
    assert!(unbound.local_addr().unwrap().is_unnamed());
    let err = unbound.peer_addr().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    unbound.send_to(b"anon", &path).await.unwrap();
    unbound.connect(&path).unwrap();
    assert!(
        unbound.local_addr().unwrap().is_unnamed(),
        "connect binds no name"
    );
    assert_eq!(unbound.peer_addr().unwrap().as_pathname(), Some(&*path));
    unbound.send(b"anon2").await.unwrap();
    let mut buf = [0u8; 8];
    for want in [&b"anon"[..], b"anon2"] {
        let (n, from) = within(HANG, receiver.recv_from(&mut buf), "none")
            .await
            .unwrap();
        assert_eq!(&buf[..n], want);
        assert!(
            from.is_unnamed() && from.as_pathname().is_none(),
            "{from:?}"
        );
    }

    let (a, b) = UnixDatagram::pair().unwrap();
    assert!(a.local_addr().unwrap().is_unnamed());
    assert!(b.peer_addr().unwrap().is_unnamed());
    let (a, b) = UnixStream::pair().unwrap();
    assert!(a.local_addr().unwrap().is_unnamed());
    assert!(b.peer_addr().unwrap().is_unnamed());
}

// Beyond tokio: a datagram pair whose peer is gone refuses sends instead of waiting.
#[overlap::test]
async fn a_datagram_pair_whose_peer_is_gone_refuses_sends() {
    let (a, b) = UnixDatagram::pair().unwrap();
    b.send(b"before").await.unwrap();
    drop(b);
    let mut buf = [0u8; 8];
    let n = a.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"before", "queued datagrams outlive the sender");
    let err = within(HANG, a.send(b"after"), "send waited")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    // The refusal also disconnected the socket (the kernel drops a dead peer).
    a.writable().await.unwrap();
    let err = a.try_send(b"after").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    assert!(a.take_error().unwrap().is_none());
}

/// tokio's `send_recv_all`: write all, shut the write side, read to the end.
async fn send_recv_all(
    read: &mut (dyn AsyncRead + Unpin),
    write: &mut (dyn AsyncWrite + Unpin),
    input: &[u8],
) -> io::Result<Vec<u8>> {
    write.write_all(input).await?;
    write.close().await?;
    let mut output = Vec::new();
    read.read_to_end(&mut output).await?;
    Ok(output)
}

// tokio: uds_split.rs split
#[overlap::test]
async fn borrowed_halves_as_dyn_objects_close_and_read_to_the_end() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let (mut a_read, mut a_write) = UnixStream::split(&mut a);
    let (mut b_read, mut b_write) = UnixStream::split(&mut b);
    let (from_b, from_a) = overlap::join!(
        send_recv_all(&mut a_read, &mut a_write, b"A"),
        send_recv_all(&mut b_read, &mut b_write, b"B"),
    );
    assert_eq!(from_b.unwrap(), b"B");
    assert_eq!(from_a.unwrap(), b"A");
}

// tokio: uds_cred.rs test_socket_pair
#[overlap::test]
async fn both_ends_of_a_pair_see_the_same_credentials() {
    let (a, b) = UnixStream::pair().unwrap();
    let (cred_a, cred_b) = (a.peer_cred().unwrap(), b.peer_cred().unwrap());
    assert_eq!(cred_a, cred_b);
    // SAFETY: geteuid and getegid take no arguments and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((cred_a.uid(), cred_a.gid()), (uid, gid));
    assert_eq!(cred_a.pid(), Some(std::process::id() as i32));
}

// Beyond tokio: a stream's own `shutdown(Read)` ends a read waiting on it, with EOF.
#[overlap::test]
async fn shutting_down_the_read_side_wakes_a_waiting_reader_with_eof() {
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let reader = overlap::spawn({
        let a = a.clone();
        async move { (&*a).read(&mut [0u8; 8]).await }
    });
    settle().await;
    a.shutdown(Shutdown::Read).unwrap();
    let n = within(HANG, reader, "the reader slept through the shutdown").await;
    assert_eq!(n.unwrap().unwrap(), 0);
    assert!(a.ready(Interest::READABLE).await.unwrap().is_read_closed());
    assert_eq!(a.try_read(&mut [0u8; 8]).unwrap(), 0);
}
