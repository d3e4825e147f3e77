//! `accept` when the process is out of file descriptors: the error is returned, a loop that
//! retries at once does not starve other tasks, and the listener recovers once fds are freed.
//!
//! The limit is lowered in a child process (this test binary re-executed with an env var), so
//! the other tests never run short of descriptors.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use support::{exhaust_fds, open_fds, set_soft_nofile, TempDir};

#[test]
fn accept_under_emfile_recovers() {
    support::run_in_child("accept_under_emfile_recovers", child);
}

fn child() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Connect the clients first: the kernel completes their handshakes and queues them
        // on the listener, so only `accept` needs a new descriptor later.
        let mut clients = Vec::new();
        for i in 0..3u8 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&[b'a' + i]).await.unwrap();
            clients.push(c);
        }

        set_soft_nofile(open_fds() as u64 + 16);
        let hoard = Rc::new(RefCell::new(exhaust_fds()));
        assert!(!hoard.borrow().is_empty());

        // Another task that must keep running while accept fails: it frees the fds after
        // 200 turns.
        let ticks = Rc::new(Cell::new(0u32));
        let failures = Rc::new(Cell::new(0u64));
        let ticker = {
            let (ticks, hoard, failures) = (ticks.clone(), hoard.clone(), failures.clone());
            overlap::spawn(async move {
                while ticks.get() < 200 {
                    ticks.set(ticks.get() + 1);
                    overlap::yield_now().await;
                }
                // Accept has been failing all along.
                assert!(failures.get() > 0);
                hoard.borrow_mut().clear();
            })
        };

        // The naive loop: retry at once. The cooperative budget is what lets the ticker run.
        let mut accepted = Vec::new();
        while accepted.len() < 3 {
            match listener.accept().await {
                Ok((stream, peer)) => accepted.push((stream, peer)),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                    failures.set(failures.get() + 1);
                }
            }
        }
        ticker.await.unwrap();
        assert_eq!(ticks.get(), 200);
        assert!(failures.get() >= 200, "failures: {}", failures.get());
        assert!(overlap::metrics().budget_exhausted > 0);

        // The connections were not lost: each carries its client's byte.
        let mut got = Vec::new();
        for (stream, peer) in &mut accepted {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).await.unwrap();
            let client = clients
                .iter()
                .position(|c| c.local_addr().unwrap() == *peer)
                .unwrap();
            assert_eq!(b[0], b'a' + client as u8);
            got.push(b[0]);
        }
        got.sort_unstable();
        assert_eq!(got, b"abc");
    });
}

/// The same for a Unix listener: `EMFILE` comes back as it is, the queued connection stays
/// in the kernel, and the next `accept` after fds are freed takes it, its bytes intact.
#[test]
fn unix_accept_under_emfile_recovers() {
    support::run_in_child("unix_accept_under_emfile_recovers", || {
        overlap::block_on(async {
            let dir = TempDir::new("unix-accept-emfile");
            let listener = UnixListener::bind(dir.join("s")).unwrap();
            let mut client = UnixStream::connect(dir.join("s")).await.unwrap();
            client.write_all(b"queued").await.unwrap();

            set_soft_nofile(open_fds() as u64 + 16);
            let hoard = exhaust_fds();
            assert!(!hoard.is_empty());
            for _ in 0..3 {
                let err = listener.accept().await.unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
            }
            drop(hoard);

            let (mut server, _) = listener.accept().await.unwrap();
            let mut got = [0u8; 6];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"queued");
        });
    });
}

/// A listener shut down through another copy of it (an old generation of a hot-restarted
/// server calling `shutdown` on the listener it handed on, say) stops listening for every
/// copy. A waiting `accept` is woken then, and fails: a TCP one, before, with the kernel's
/// bare `EINVAL` ("Invalid argument"), which said nothing of what happened; now with
/// `InvalidInput` saying the socket no longer listens, the kernel's code kept as the source.
#[test]
fn accept_on_a_listener_shut_down_elsewhere_says_so() {
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::Duration;

    fn shut_down(fd: &impl AsRawFd) {
        // SAFETY: shutdown takes integers; the fd is open for the call.
        let res = unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
        assert_eq!(res, 0, "{}", std::io::Error::last_os_error());
    }
    fn check(what: &str, res: std::io::Result<()>) {
        let err = res.expect_err(what);
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidInput,
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("no longer listens"),
            "{what}: {err}"
        );
        assert_eq!(
            overlap::io::raw_os_error(&err),
            Some(libc::EINVAL),
            "{what}"
        );
    }
    overlap::block_on(async {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let copy = tcp.as_fd().try_clone_to_owned().unwrap();
        let waiting = overlap::spawn(async move { tcp.accept().await.map(drop) });
        overlap::yield_now().await;
        shut_down(&copy);
        let res = support::within(Duration::from_secs(10), waiting, "tcp accept").await;
        check("TcpListener", res.unwrap());

        let dir = TempDir::new("accept-shut-down");
        let unix = UnixListener::bind(dir.join("l.sock")).unwrap();
        let copy = unix.as_fd().try_clone_to_owned().unwrap();
        let waiting = overlap::spawn(async move { unix.accept().await.map(drop) });
        overlap::yield_now().await;
        shut_down(&copy);
        // A Unix listener says `EAGAIN` with its read side shut: not a wait for ever either.
        let res = support::within(Duration::from_secs(10), waiting, "unix accept").await;
        let err = res.unwrap().expect_err("UnixListener");
        assert_eq!(err.kind(), std::io::ErrorKind::NotConnected, "{err}");
        assert!(err.to_string().contains("shut down"), "{err}");
    });
}

/// A host name looked up while the process has no fd free: the resolver cannot read
/// `/etc/hosts` nor ask DNS, and said "Name or service not known" for `localhost`, sending a
/// client that connects by name after its own connections used up the fds off to debug its
/// DNS. The error now says the process was out of descriptors, the `EMFILE` as its source,
/// and the same name resolves once fds are freed.
#[test]
fn a_lookup_out_of_fds_says_so_not_that_the_name_is_unknown() {
    support::run_in_child(
        "a_lookup_out_of_fds_says_so_not_that_the_name_is_unknown",
        || {
            overlap::block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                // The pool's thread starts before the fds run out, so only the lookup meets the limit.
                overlap::spawn_blocking(|| ()).await.unwrap();
                set_soft_nofile(open_fds() as u64 + 16);
                let hoard = exhaust_fds();
                assert!(!hoard.is_empty());

                let err = TcpStream::connect(("localhost", port)).await.unwrap_err();
                let msg = err.to_string();
                assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EMFILE), "{msg}");
                assert!(msg.contains("\"localhost\""), "{msg}");
                assert!(msg.contains("no file descriptor was free"), "{msg}");
                let err = overlap::net::lookup_host(("localhost", port))
                    .await
                    .err()
                    .expect("a lookup needs fds");
                assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EMFILE), "{err}");

                drop(hoard);
                let conn = TcpStream::connect(("localhost", port)).await.unwrap();
                assert!(conn.peer_addr().unwrap().ip().is_loopback());
            });
        },
    );
}
