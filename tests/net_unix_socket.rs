//! `UnixSocket`: Unix sockets bound by hand before they listen, connect or become datagram
//! sockets. Also the behaviours of tokio's `uds_socket.rs` (`datagram_echo_server`,
//! `listen_and_stream`, `assert_usage`; overlap refuses a call of the wrong socket type with
//! `InvalidInput` where tokio says `Other`).

mod support;

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::path::Path;
use std::time::Duration;

use futures_util::future::{select, Either};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{UnixListener, UnixSocket, UnixStream};
use support::{open_fds, run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// An abstract socket name unique to this process and `what` (leading NUL included).
fn abstract_name(what: &str) -> String {
    format!("\0overlap-unix-socket-{}-{what}", std::process::id())
}

/// A stream socket bound to `path`, listening with `backlog`.
fn listen_at(path: impl AsRef<Path>, backlog: u32) -> UnixListener {
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(path).unwrap();
    sock.listen(backlog).unwrap()
}

/// The `fcntl` status flags and fd flags of `fd`.
fn fd_flags(fd: &impl AsFd) -> (libc::c_int, libc::c_int) {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: F_GETFL and F_GETFD take no pointer; `fd` is open for the call.
    let (fl, fd_fl) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    };
    assert!(fl >= 0 && fd_fl >= 0, "{}", io::Error::last_os_error());
    (fl, fd_fl)
}

// tokio: uds_socket.rs listen_and_stream
#[overlap::test]
async fn a_bound_client_is_seen_from_its_address() {
    let dir = TempDir::new("unix-socket-bound-client");
    let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
    let listener = listen_at(&server_path, 1024);

    let client = UnixSocket::new_stream().unwrap();
    client.bind(&client_path).unwrap();
    assert_eq!(
        client.local_addr().unwrap().as_pathname(),
        Some(client_path.as_path())
    );
    let (accepted, connected) = overlap::join!(listener.accept(), client.connect(&server_path));
    let ((mut server, from), mut client) = (accepted.unwrap(), connected.unwrap());

    assert_eq!(from.as_pathname(), Some(client_path.as_path()));
    let peer = server.peer_addr().unwrap();
    assert_eq!(peer.as_pathname(), Some(client_path.as_path()));
    let local = client.local_addr().unwrap();
    assert_eq!(local.as_pathname(), Some(client_path.as_path()));
    let server_addr = client.peer_addr().unwrap();
    assert_eq!(server_addr.as_pathname(), Some(server_path.as_path()));

    client.write_all(b"hello").await.unwrap();
    drop(client);
    let mut buf = Vec::new();
    within(HANG, server.read_to_end(&mut buf), "no EOF")
        .await
        .unwrap();
    assert_eq!(buf, b"hello");
    assert_eq!(server.read(&mut [0u8; 8]).await.unwrap(), 0, "EOF again");
}

#[overlap::test]
async fn listen_accept_and_echo() {
    let dir = TempDir::new("unix-socket-echo");
    let path = dir.join("echo.sock");
    let listener = listen_at(&path, 16);
    assert_eq!(
        listener.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    let server = overlap::spawn(async move {
        for _ in 0..3 {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await.unwrap();
            }
        }
    });
    for i in 0..3u8 {
        let mut stream = UnixSocket::new_stream()
            .unwrap()
            .connect(&path)
            .await
            .unwrap();
        let msg = [b'a' + i; 20];
        stream.write_all(&msg).await.unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        within(HANG, stream.read_to_end(&mut back), "no echo")
            .await
            .unwrap();
        assert_eq!(back, msg);
    }
    within(HANG, server, "server").await.unwrap();
}

#[overlap::test]
async fn datagrams_between_bound_sockets_carry_their_sources() {
    let dir = TempDir::new("unix-socket-dgram");
    let (a_path, b_path) = (dir.join("a.sock"), dir.join("b.sock"));
    let a = UnixSocket::new_datagram().unwrap();
    a.bind(&a_path).unwrap();
    let a = a.datagram().unwrap();
    let b = UnixSocket::new_datagram().unwrap();
    b.bind(&b_path).unwrap();
    let b = b.datagram().unwrap();
    assert_eq!(
        a.local_addr().unwrap().as_pathname(),
        Some(a_path.as_path())
    );

    assert_eq!(a.send_to(b"from a", &b_path).await.unwrap(), 6);
    let mut buf = [0u8; 32];
    let (n, from) = within(HANG, b.recv_from(&mut buf), "b got nothing")
        .await
        .unwrap();
    assert_eq!(
        (&buf[..n], from.as_pathname()),
        (&b"from a"[..], Some(a_path.as_path()))
    );

    assert_eq!(b.send_to(b"b replies", &a_path).await.unwrap(), 9);
    let (n, from) = within(HANG, a.recv_from(&mut buf), "a got nothing")
        .await
        .unwrap();
    assert_eq!(
        (&buf[..n], from.as_pathname()),
        (&b"b replies"[..], Some(b_path.as_path()))
    );
}

// tokio: uds_socket.rs datagram_echo_server
#[overlap::test]
async fn datagram_echo_to_a_connected_client() {
    let dir = TempDir::new("unix-socket-dgram-echo");
    let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
    let server = UnixSocket::new_datagram().unwrap();
    server.bind(&server_path).unwrap();
    let server = server.datagram().unwrap();
    let echo = overlap::spawn(async move {
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        let back = from.as_pathname().expect("the client is bound").to_owned();
        server.send_to(&buf[..n], back).await.unwrap();
    });

    let client = UnixSocket::new_datagram().unwrap();
    client.bind(&client_path).unwrap();
    let client = client.datagram().unwrap();
    client.connect(&server_path).unwrap();
    client.send(b"ECHO").await.unwrap();
    let mut buf = [0u8; 16];
    let n = within(HANG, client.recv(&mut buf), "no echo")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"ECHO");
    echo.await.unwrap();
}

#[overlap::test]
async fn abstract_names_for_streams_and_datagrams() {
    let name = abstract_name("stream-server");
    let client_name = abstract_name("stream-client");
    let listener = listen_at(&name, 8);
    let client = UnixSocket::new_stream().unwrap();
    client.bind(&client_name).unwrap();
    let (accepted, connected) = overlap::join!(listener.accept(), client.connect(&name));
    let ((_server, from), client) = (accepted.unwrap(), connected.unwrap());
    assert_eq!(from.as_abstract_name(), Some(&client_name.as_bytes()[1..]));
    let peer = client.peer_addr().unwrap();
    assert_eq!(peer.as_abstract_name(), Some(&name.as_bytes()[1..]));

    let dgram_name = abstract_name("dgram");
    let receiver = UnixSocket::new_datagram().unwrap();
    receiver.bind(&dgram_name).unwrap();
    let receiver = receiver.datagram().unwrap();
    let sender = UnixSocket::new_datagram().unwrap().datagram().unwrap();
    sender.send_to(b"abstract", &dgram_name).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = receiver.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"abstract");
    assert!(from.is_unnamed(), "an unbound sender: {from:?}");
}

#[overlap::test]
async fn connect_to_a_missing_path_is_not_found() {
    let dir = TempDir::new("unix-socket-missing");
    let err = UnixSocket::new_stream()
        .unwrap()
        .connect(dir.join("nobody.sock"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[overlap::test]
async fn connect_to_a_socket_that_does_not_listen_is_refused() {
    let dir = TempDir::new("unix-socket-refused");
    let path = dir.join("quiet.sock");
    let quiet = UnixSocket::new_stream().unwrap();
    quiet.bind(&path).unwrap();
    let err = UnixSocket::new_stream()
        .unwrap()
        .connect(&path)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

    // The same once the socket behind the file is gone: the file alone is no listener.
    drop(quiet);
    assert!(path.exists());
    let err = UnixStream::connect(&path).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

// tokio: uds_socket.rs assert_usage
#[overlap::test]
async fn calls_for_the_other_socket_type_are_invalid_input() {
    let dir = TempDir::new("unix-socket-usage");
    let path = dir.join("listener.sock");
    let _listener = listen_at(&path, 8);

    let err = UnixSocket::new_datagram()
        .unwrap()
        .connect(&path)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("connect"), "{err}");
    assert!(err.to_string().contains("datagram"), "{err}");

    let err = UnixSocket::new_datagram().unwrap().listen(8).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("listen"), "{err}");

    let err = UnixSocket::new_stream().unwrap().datagram().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("stream"), "{err}");

    // A socket of a third type, made from an fd, is refused by all three.
    let (seq, _peer) = seqpacket_pair();
    let err = UnixSocket::from(seq).listen(1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let (seq, _peer) = seqpacket_pair();
    let err = UnixSocket::from(seq).connect(&path).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let (seq, _peer) = seqpacket_pair();
    let err = UnixSocket::from(seq).datagram().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

/// A `SOCK_SEQPACKET` socket pair.
fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    let ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two fds socketpair writes.
    let res = unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) };
    assert_eq!(res, 0, "{}", io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[overlap::test]
async fn a_bad_path_is_invalid_input() {
    let sock = UnixSocket::new_stream().unwrap();
    let err = sock.bind("").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = sock.bind("x".repeat(200)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = sock.connect("").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

#[overlap::test]
async fn sockets_are_nonblocking_and_close_on_exec() {
    for sock in [UnixSocket::new_stream(), UnixSocket::new_datagram()] {
        let (fl, fd_fl) = fd_flags(&sock.unwrap());
        assert_ne!(fl & libc::O_NONBLOCK, 0);
        assert_ne!(fd_fl & libc::FD_CLOEXEC, 0);
    }

    // A blocking fd handed over is switched to non-blocking mode once it is used.
    let std_dgram = std::os::unix::net::UnixDatagram::unbound().unwrap();
    assert_eq!(fd_flags(&std_dgram).0 & libc::O_NONBLOCK, 0);
    let dgram = UnixSocket::from(OwnedFd::from(std_dgram))
        .datagram()
        .unwrap();
    assert_ne!(fd_flags(&dgram).0 & libc::O_NONBLOCK, 0);

    let dir = TempDir::new("unix-socket-blocking-fd");
    let path = dir.join("std.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    assert_eq!(fd_flags(&std_listener).0 & libc::O_NONBLOCK, 0);
    let listener = UnixSocket::from(OwnedFd::from(std_listener))
        .listen(8)
        .unwrap();
    assert_ne!(fd_flags(&listener).0 & libc::O_NONBLOCK, 0);
    // An accept with nobody connecting waits instead of blocking the thread.
    let res = overlap::time::timeout(Duration::from_millis(20), listener.accept()).await;
    assert!(res.is_err(), "nobody connected");
}

#[overlap::test]
async fn fd_conversions_keep_the_socket() {
    let dir = TempDir::new("unix-socket-fds");
    let path = dir.join("bound.sock");
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(&path).unwrap();
    let raw = sock.as_raw_fd();
    assert_eq!(sock.as_fd().as_raw_fd(), raw);

    let debug = format!("{sock:?}");
    assert!(debug.contains("UnixSocket"), "{debug}");
    assert!(debug.contains("stream"), "{debug}");
    assert!(debug.contains("bound.sock"), "{debug}");
    assert!(debug.contains(&format!("fd: {raw}")), "{debug}");

    let back = sock.into_raw_fd();
    assert_eq!(back, raw);
    // SAFETY: `back` came from `into_raw_fd` just above; nothing else owns it.
    let sock = unsafe { UnixSocket::from_raw_fd(back) };
    let fd = OwnedFd::from(sock);
    assert_eq!(fd.as_raw_fd(), raw);
    let sock = UnixSocket::from(fd);
    assert_eq!(
        sock.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );

    // Still the same bound socket: it listens where it was bound.
    let listener = sock.listen(8).unwrap();
    assert_eq!(listener.as_raw_fd(), raw);
    let (accepted, connected) = overlap::join!(listener.accept(), UnixStream::connect(&path));
    accepted.unwrap();
    connected.unwrap();

    let dgram = UnixSocket::new_datagram().unwrap();
    let debug = format!("{dgram:?}");
    assert!(
        debug.contains("datagram") && !debug.contains("addr"),
        "{debug}"
    );
}

/// Connects to `path` (a listener of backlog 0 that never accepts) until a connect has to
/// wait: returns the connections that got in and the connect left waiting, polled once.
async fn fill_backlog(
    path: &Path,
) -> (
    Vec<UnixStream>,
    std::pin::Pin<Box<impl std::future::Future<Output = io::Result<UnixStream>>>>,
) {
    use std::future::Future;
    use std::task::Poll;
    let mut queued = Vec::new();
    loop {
        assert!(
            queued.len() < 4,
            "four connects went through a backlog of 0"
        );
        let mut connect = Box::pin(UnixStream::connect(path.to_path_buf()));
        let got = std::future::poll_fn(|cx| match connect.as_mut().poll(cx) {
            Poll::Ready(res) => Poll::Ready(Some(res.unwrap())),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        match got {
            Some(stream) => queued.push(stream),
            None => return (queued, connect),
        }
    }
}

#[overlap::test]
async fn a_connect_waiting_on_a_full_backlog_keeps_its_bound_address() {
    let dir = TempDir::new("unix-socket-backlog");
    let path = dir.join("slow.sock");
    // Backlog 0: the queue holds one connection, and a connect beyond it waits.
    let listener = listen_at(&path, 0);
    let (queued, pending) = fill_backlog(&path).await;
    drop(pending);

    // The queue is full: a bound client waits, then gets in once the listener makes room.
    let client_path = dir.join("patient.sock");
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(&client_path).unwrap();
    let waiting = overlap::spawn(sock.connect(path.clone()));
    overlap::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiting.is_finished(), "the connect did not wait");
    let mut seen = Vec::new();
    for _ in 0..=queued.len() {
        let (_, from) = within(HANG, listener.accept(), "accept").await.unwrap();
        seen.push(from.as_pathname().map(Path::to_path_buf));
    }
    let stream = within(HANG, waiting, "the waiting connect").await.unwrap();
    let local = stream.unwrap().local_addr().unwrap();
    assert_eq!(local.as_pathname(), Some(client_path.as_path()));
    assert_eq!(seen.last().unwrap().as_deref(), Some(client_path.as_path()));
}

#[test]
fn dropping_a_pending_connect_closes_its_socket() {
    // Alone in a child process, so that no other test opens or closes fds meanwhile.
    run_in_child("dropping_a_pending_connect_closes_its_socket", || {
        overlap::block_on(pending_connect_closes_its_socket())
    });
}

async fn pending_connect_closes_its_socket() {
    let dir = TempDir::new("unix-socket-cancel");
    let path = dir.join("full.sock");
    // Backlog 0 and nobody accepting: after one queued connection, connects wait.
    let listener = listen_at(&path, 0);
    let mut queued = Vec::new();
    for i in 0..8 {
        let fds = open_fds();
        let registered = overlap::metrics().registered_fds;
        let sock = UnixSocket::new_stream().unwrap();
        sock.bind(dir.join(&format!("client-{i}.sock"))).unwrap();
        assert_eq!(open_fds(), fds + 1);
        // Boxed, so that dropping `pending` below really drops the future.
        let connect = Box::pin(sock.connect(&path));
        let timeout = Box::pin(overlap::time::sleep(Duration::from_millis(100)));
        match select(connect, timeout).await {
            Either::Left((res, _)) => queued.push(res.unwrap()),
            Either::Right(((), pending)) => {
                assert_eq!(open_fds(), fds + 1, "the waiting connect holds its socket");
                assert_eq!(overlap::metrics().registered_fds, registered + 1);
                drop(pending);
                assert_eq!(open_fds(), fds, "the abandoned socket was not closed");
                assert_eq!(overlap::metrics().registered_fds, registered);

                // The same under `time::timeout`.
                let sock = UnixSocket::new_stream().unwrap();
                let res = overlap::time::timeout(Duration::from_millis(50), sock.connect(&path));
                assert!(res.await.is_err(), "the backlog is still full");
                assert_eq!(open_fds(), fds);
                assert_eq!(overlap::metrics().registered_fds, registered);
                drop(listener);
                return;
            }
        }
    }
    panic!("every connect completed: the backlog never filled up");
}

/// A connect waiting on a full backlog (sleeping between its retries) follows the runtime
/// rule of the socket it made: polled outside any runtime after that runtime was dropped,
/// it fails with an `Other` error, where its retry's timer panicked.
#[test]
fn a_connect_waiting_on_a_full_backlog_fails_once_its_runtime_is_gone() {
    use std::task::Poll;
    let dir = TempDir::new("unix-socket-backlog-gone");
    let path = dir.join("full.sock");
    let first = overlap::Runtime::new().unwrap();
    let (_listener, _queued, waiting) = first.block_on(async {
        // Backlog 0: the queue holds one connection, and a connect beyond it waits.
        let listener = listen_at(&path, 0);
        let (queued, connect) = fill_backlog(&path).await;
        (listener, queued, connect)
    });
    drop(first);
    let mut waiting = support::polled(waiting);
    let outside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waiting.poll()));
    match outside {
        Ok(Poll::Ready(Err(e))) => assert_eq!(e.kind(), io::ErrorKind::Other, "{e}"),
        Ok(Poll::Ready(Ok(_))) => panic!("connected through a full backlog"),
        Ok(Poll::Pending) => panic!("waits outside any runtime"),
        Err(p) => panic!("panicked: {}", support::panic_message(p)),
    }
}

#[test]
fn a_second_bind_is_refused_naming_the_path_the_socket_has() {
    let dir = support::TempDir::new("unix-socket-rebind");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(&first).unwrap();
    let err = sock.bind(&second).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("already bound"), "{err}");
    assert!(err.to_string().contains("first"), "{err}");
    assert!(!second.exists(), "no second socket file");
    overlap::block_on(async {
        let listener = sock.listen(8).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(first.as_path())
        );
    });
}
