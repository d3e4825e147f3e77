//! The reactor when the kernel refuses its fds: `epoll_ctl` failing with `ENOMEM` (the
//! kernel's epoll memory, `max_user_watches`) and `eventfd2` with `EMFILE`. Every I/O object
//! then fails to be made with the kernel's error, closes what it opened (no fd leaks),
//! and the runtime keeps serving the fds it has. Each test installs a seccomp filter in a
//! child process of its own.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use overlap::AsyncFd;
use support::{open_fds, run_in_child, tcp_pair, within};

const HANG: Duration = Duration::from_secs(30);

fn assert_enomem<T>(what: &str, res: std::io::Result<T>) {
    match res {
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOMEM), "{what}: {e}"),
        Ok(_) => panic!("{what}: registered although epoll_ctl fails"),
    }
}

#[test]
fn registration_failures_close_their_fds() {
    run_in_child("registration_failures_close_their_fds", || {
        overlap::block_on(async {
            let (mut a, mut b) = tcp_pair().await;
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let peer_addr = peer.local_addr().unwrap();
            let before = open_fds();
            support::seccomp::deny(&[(libc::SYS_epoll_ctl, libc::ENOMEM)]);

            assert_enomem("bind", TcpListener::bind("127.0.0.1:0").await);
            assert_enomem("udp", UdpSocket::bind("127.0.0.1:0").await);
            assert_enomem("pair", UnixStream::pair());
            assert_enomem("pipe", overlap::pipe::pipe());
            assert_enomem("connect", TcpStream::connect(peer_addr).await);
            // The connection is accepted and closed; the listener goes on.
            assert_enomem("accept", within(HANG, listener.accept(), "accept").await);
            let mut cmd = Command::new("true");
            cmd.stdout(Stdio::piped());
            // The child is killed and reaped: no zombie, no pipe left open.
            assert_enomem("spawn", overlap::process::spawn(&mut cmd));
            assert_enomem("AsyncFd::new", AsyncFd::new(support::eventfd()));
            // `try_new` hands the value back.
            let (fd, e) = AsyncFd::try_new(support::eventfd())
                .unwrap_err()
                .into_parts();
            assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
            drop(fd);
            assert_eq!(open_fds(), before, "an fd leaked");

            a.write_all(b"still").await.unwrap();
            let mut buf = [0; 5];
            within(HANG, b.read_exact(&mut buf), "read").await.unwrap();
            assert_eq!(&buf, b"still");
        });
    });
}

#[test]
fn runtime_creation_fails_without_an_eventfd() {
    run_in_child("runtime_creation_fails_without_an_eventfd", || {
        let before = open_fds();
        support::seccomp::deny(&[(libc::SYS_eventfd2, libc::EMFILE)]);
        let err = overlap::Runtime::new().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
        assert_eq!(open_fds(), before, "the epoll fd leaked");
        let panic = std::panic::catch_unwind(|| overlap::block_on(async {})).unwrap_err();
        let msg = support::panic_message(panic);
        assert!(msg.contains("cannot create a runtime") && msg.contains("Too many open files"));
    });
}
