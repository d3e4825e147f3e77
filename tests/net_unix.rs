//! Unix-domain sockets: streams through a listener and in pairs, credentials, datagrams.

use std::net::Shutdown;
use std::path::PathBuf;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{UnixDatagram, UnixListener, UnixStream};
use overlap::stream::StreamExt;

/// A fresh socket path in the temp dir, unique per test and process.
fn sock_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("overlap-net-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn stream_through_listener_both_directions() {
    let path = sock_path("stream");
    overlap::block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let p = path.clone();
        let client = overlap::spawn(async move {
            let mut c = UnixStream::connect(&p).await.unwrap();
            assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(p.as_path()));
            let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
            c.write_all(&data).await.unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, data);
        });
        let (mut s, peer) = listener.accept().await.unwrap();
        assert!(peer.is_unnamed());
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 256 * 1024);
        s.write_all(&got).await.unwrap();
        s.close().await.unwrap();
        client.await.unwrap();
    });
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn pair_credentials_and_half_close() {
    overlap::block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let cred = a.peer_cred().unwrap();
        assert_eq!(cred.pid, std::process::id() as i32);
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!((cred.uid, cred.gid), (uid, gid));

        a.write_all(b"from a").await.unwrap();
        a.close().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"from a");
        let mut buf = [0u8; 4];
        assert_eq!(b.read(&mut buf).await.unwrap(), 0);
        b.write_all(b"still").await.unwrap();
        drop(b);
        let mut back = Vec::new();
        a.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"still");
    });
}

#[test]
fn connect_to_missing_path_fails() {
    let path = sock_path("missing");
    overlap::block_on(async {
        let err = UnixStream::connect(&path).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
}

#[test]
fn datagrams_keep_boundaries_and_sources() {
    let rx_path = sock_path("dgram-rx");
    let tx_path = sock_path("dgram-tx");
    overlap::block_on(async {
        let rx = UnixDatagram::bind(&rx_path).unwrap();
        let tx = UnixDatagram::bind(&tx_path).unwrap();
        for i in 0..100usize {
            let msg = vec![i as u8; i + 1];
            assert_eq!(tx.send_to(&msg, &rx_path).await.unwrap(), i + 1);
            let mut buf = [0u8; 256];
            let (n, from) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &msg[..]);
            assert_eq!(from.as_pathname(), Some(tx_path.as_path()));
        }

        // Unbound senders show up unnamed; connected sockets use send/recv.
        let anon = UnixDatagram::unbound().unwrap();
        anon.connect(&rx_path).unwrap();
        anon.send(b"anon").await.unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from.is_unnamed()), (&b"anon"[..], true));

        let (p, q) = UnixDatagram::pair().unwrap();
        p.send(b"x").await.unwrap();
        p.send(b"yz").await.unwrap();
        assert_eq!(q.recv(&mut buf).await.unwrap(), 1);
        assert_eq!(q.recv(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"yz");
    });
    std::fs::remove_file(&rx_path).unwrap();
    std::fs::remove_file(&tx_path).unwrap();
}

#[test]
fn stream_halves_from_two_tasks_then_reunited() {
    overlap::block_on(async {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (mut rd, mut wr) = a.into_split();
        // The peer echoes every 4-byte frame back.
        let echo = overlap::spawn(async move {
            let mut frame = [0u8; 4];
            while b.read_exact(&mut frame).await.is_ok() {
                b.write_all(&frame).await.unwrap();
            }
            b
        });
        let writer = overlap::spawn(async move {
            for i in 0..500u32 {
                wr.write_all(&i.to_be_bytes()).await.unwrap();
            }
            wr
        });
        let reader = overlap::spawn(async move {
            for i in 0..500u32 {
                let mut frame = [0u8; 4];
                rd.read_exact(&mut frame).await.unwrap();
                assert_eq!(u32::from_be_bytes(frame), i);
            }
            rd
        });
        let (wr, rd) = (writer.await.unwrap(), reader.await.unwrap());
        let (other, _other_wr) = UnixStream::pair().unwrap().0.into_split();
        // Halves of different streams are handed back, not joined.
        let err = other.reunite(wr).unwrap_err();
        let mut a = rd.reunite(err.1).unwrap();
        assert!(a.peer_cred().is_ok());

        // Borrowed halves, in one task.
        let (mut r, mut w) = UnixStream::split(&mut a);
        let (sent, got) = futures_util::join!(w.write_all(b"borrowed"), async {
            let mut buf = [0u8; 8];
            r.read_exact(&mut buf).await.map(|_| buf)
        });
        sent.unwrap();
        assert_eq!(&got.unwrap(), b"borrowed");

        // Dropping an owned write half shuts the write side: the echo task sees EOF.
        let (_rd, wr) = a.into_split();
        drop(wr);
        let mut b = echo.await.unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}

#[test]
fn datagram_poll_functions_wait_and_deliver() {
    use std::future::poll_fn;

    let rx_path = sock_path("dgram-poll");
    overlap::block_on(async {
        let rx = UnixDatagram::bind(&rx_path).unwrap();
        let (p, q) = UnixDatagram::pair().unwrap();
        let mut buf = [0u8; 16];
        // Nothing queued: Pending, with the waker kept for the datagram to come.
        let mut wait = std::pin::pin!(poll_fn(|cx| q.poll_recv(cx, &mut buf)));
        assert!(overlap::future::poll_immediate(wait.as_mut())
            .await
            .is_none());
        poll_fn(|cx| p.poll_send(cx, b"hello")).await.unwrap();
        assert_eq!(wait.await.unwrap(), 5);

        let anon = UnixDatagram::unbound().unwrap();
        anon.connect(&rx_path).unwrap();
        poll_fn(|cx| anon.poll_send(cx, b"from anon"))
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = poll_fn(|cx| rx.poll_recv_from(cx, &mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from.is_unnamed()), (&b"from anon"[..], true));
    });
    std::fs::remove_file(&rx_path).unwrap();
}

/// An unconnected `send_to` to a receiver whose queue is full gets `EAGAIN` and no wake-up
/// (its own socket even looks writable at once): it must back off, not spin, and deliver
/// once the receiver makes room.
#[test]
fn send_to_a_full_receiver_backs_off_then_delivers() {
    let path = sock_path("dgram-full");
    overlap::block_on(async {
        let rx = UnixDatagram::bind(&path).unwrap();
        // Fill rx's queue (net.unix.max_dgram_qlen) from other sockets.
        let mut fillers = Vec::new();
        loop {
            let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
            s.set_nonblocking(true).unwrap();
            let mut sent = 0;
            while s.send_to(b"filler", &path).is_ok() {
                sent += 1;
            }
            fillers.push(s);
            if sent == 0 {
                break;
            }
        }
        let tx = UnixDatagram::unbound().unwrap();
        let before = overlap::metrics().epoll_waits;
        let send = overlap::spawn({
            let path = path.clone();
            async move { tx.send_to(b"mine", &path).await }
        });
        overlap::time::sleep(std::time::Duration::from_millis(300)).await;
        let waits = overlap::metrics().epoll_waits - before;
        assert!(!send.is_finished(), "the queue was not full");
        assert!(waits < 100, "{waits} loop turns in 300 ms: send_to spins");
        // Room: the send goes through, after the fillers.
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        while got.last().map(Vec::as_slice) != Some(&b"mine"[..]) {
            let n = rx.recv(&mut buf).await.unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(send.await.unwrap().unwrap(), 4);
    });
    let _ = std::fs::remove_file(&path);
}

/// The back-off above must not wait for this socket's write readiness: a failed send
/// raises `EPOLLOUT` only while the sender's own buffer is at most a quarter full, and
/// datagrams it queued at another, slow receiver keep it fuller than that.
#[test]
fn send_to_retries_while_the_senders_buffer_is_held_by_another_receiver() {
    use std::time::Duration;
    let slow_path = sock_path("dgram-slow");
    let full_path = sock_path("dgram-full-2");
    overlap::block_on(async {
        let _slow = UnixDatagram::bind(&slow_path).unwrap();
        let rx = UnixDatagram::bind(&full_path).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        // Big datagrams from `tx` wait at a receiver that never reads.
        let big = vec![7u8; 8192];
        while let Ok(Ok(_)) =
            overlap::time::timeout(Duration::from_millis(50), tx.send_to(&big, &slow_path)).await
        {
        }
        // `rx`'s queue is filled by another socket.
        let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
        filler.set_nonblocking(true).unwrap();
        while filler.send_to(b"f", &full_path).is_ok() {}
        let send = overlap::spawn({
            let path = full_path.clone();
            async move { tx.send_to(b"mine", &path).await }
        });
        overlap::time::sleep(Duration::from_millis(50)).await;
        assert!(!send.is_finished(), "the queue was not full");
        // Room: the send goes through, after the filler's datagrams.
        let mut buf = [0u8; 16];
        let read_all = async {
            loop {
                let n = rx.recv(&mut buf).await.unwrap();
                if &buf[..n] == b"mine" {
                    break;
                }
            }
        };
        overlap::time::timeout(Duration::from_secs(20), read_all)
            .await
            .expect("send_to never retried although the receiver made room");
        assert_eq!(send.await.unwrap().unwrap(), 4);
    });
    let _ = std::fs::remove_file(&slow_path);
    let _ = std::fs::remove_file(&full_path);
}

#[test]
fn a_failed_bind_leaves_no_socket_file_and_an_empty_path_is_refused() {
    let path = sock_path("bind-fails");
    // Outside a runtime the socket cannot be registered: an error, and no file left to
    // make the next bind fail with AddrInUse.
    let err = UnixListener::bind(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    assert!(!path.exists(), "the failed bind left its socket file");
    assert!(UnixDatagram::bind(&path).is_err());
    assert!(!path.exists());
    overlap::block_on(async {
        drop(UnixListener::bind(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        // An empty path would bind an abstract name any process could reach.
        for err in [
            UnixListener::bind("").unwrap_err(),
            UnixDatagram::bind("").unwrap_err(),
            UnixStream::connect("").await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        }
    });
}

#[test]
fn incoming_peek_and_into_std_on_unix_sockets() {
    overlap::block_on(async {
        let path = sock_path("incoming");
        let listener = UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let client = overlap::spawn(async move {
            let mut c = UnixStream::connect(&p).await.unwrap();
            c.write_all(b"peeked").await.unwrap();
            c
        });
        let mut incoming = listener.incoming();
        let mut server = incoming.next().await.unwrap().unwrap();
        let _client = client.await.unwrap();
        let mut buf = [0u8; 6];
        assert_eq!(server.peek(&mut buf).await.unwrap(), 6);
        let mut again = [0u8; 6];
        server.read_exact(&mut again).await.unwrap();
        assert_eq!(
            (&buf, &again),
            (b"peeked", b"peeked"),
            "peek left the bytes queued"
        );
        drop(incoming);
        let std_listener = listener.into_std().unwrap();
        assert_eq!(
            std_listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );

        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"dgram").await.unwrap();
        let mut d = [0u8; 8];
        assert_eq!(b.peek(&mut d).await.unwrap(), 5);
        assert_eq!(
            b.recv(&mut d).await.unwrap(),
            5,
            "still queued after the peek"
        );
        let std_b = b.into_std().unwrap();
        a.send(b"x").await.unwrap();
        std_b.set_nonblocking(false).unwrap();
        assert_eq!(std_b.recv(&mut d).unwrap(), 1);
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn tcp_socket_keepalive_and_linger_before_connecting() {
    overlap::block_on(async {
        let s = overlap::net::TcpSocket::new_v4().unwrap();
        assert!(!s.keepalive().unwrap());
        s.set_keepalive(true).unwrap();
        assert!(s.keepalive().unwrap());
        s.set_linger(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        assert_eq!(s.linger().unwrap(), Some(std::time::Duration::from_secs(3)));
        s.set_linger(None).unwrap();
        assert_eq!(s.linger().unwrap(), None);
    });
}

/// A `TcpSocket` made from a blocking fd becomes non-blocking when it listens or connects:
/// a blocking `accept` or `connect` would stall the event loop.
#[test]
fn tcp_socket_from_a_blocking_fd_listens_and_connects_without_blocking() {
    use std::os::fd::{AsRawFd, OwnedFd};
    fn non_blocking(fd: std::os::fd::RawFd) -> bool {
        // SAFETY: F_GETFL reads the flags of an fd the caller keeps open; no pointers.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert!(flags >= 0);
        flags & libc::O_NONBLOCK != 0
    }
    overlap::block_on(async {
        let blocking = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!non_blocking(blocking.as_raw_fd()));
        let listener = overlap::net::TcpSocket::from(OwnedFd::from(blocking))
            .listen(16)
            .unwrap();
        assert!(non_blocking(listener.as_raw_fd()));
        let addr = listener.local_addr().unwrap();
        let blocking = blocking_tcp_socket();
        let stream = overlap::net::TcpSocket::from(blocking)
            .connect(addr)
            .await
            .unwrap();
        assert!(non_blocking(stream.as_raw_fd()));
        listener.accept().await.unwrap();
    });

    /// A fresh blocking IPv4 TCP socket.
    fn blocking_tcp_socket() -> OwnedFd {
        use std::os::fd::FromRawFd;
        // SAFETY: socket takes no pointers.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a new socket that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }
}
