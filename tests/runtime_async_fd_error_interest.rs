//! `Interest::ERROR` on `AsyncFd`: a wait that ends only when an error is pending
//! (`EPOLLERR`), never on read or write readiness, and does not spin meanwhile; clearing
//! its guard forgets the error once it is taken; read and error waiters on one fd each get
//! their own wake, through futures that own their wait and through plain poll functions.

mod support;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::io::{Interest, Ready};
use overlap::{AsyncFd, Direction, Registered};
use support::{poll_once, settle, within};

const HANG: Duration = Duration::from_secs(30);

/// A connected loopback TCP pair of std sockets, both non-blocking.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Closes `sock` with `SO_LINGER` {on, 0}: the kernel sends a reset instead of a FIN.
fn reset(sock: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid `struct linger` for the whole call, and its size is given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    drop(sock);
}

/// A UDP socket connected to a loopback port nobody listens on.
fn udp_to_closed_port() -> UdpSocket {
    let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    sock.set_nonblocking(true).unwrap();
    sock
}

/// The pending socket error, taken (`SO_ERROR`).
fn take_so_error(fd: &impl AsRawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes and `len` holds the size of `err`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    err
}

/// The peer's data sits unread, so the socket is readable (and writable) the whole time:
/// the error wait neither returns nor spins until the peer resets the connection.
#[test]
fn an_error_wait_sleeps_through_readability_until_the_peer_resets() {
    overlap::block_on(async {
        let (a, mut b) = tcp_pair();
        let fd = Rc::new(AsyncFd::new(a).unwrap());
        let polls = Rc::new(Cell::new(0u32));
        let waiter = overlap::spawn({
            let (fd, polls) = (fd.clone(), polls.clone());
            async move {
                let mut wait = std::pin::pin!(fd.ready(Interest::ERROR));
                poll_fn(|cx| {
                    polls.set(polls.get() + 1);
                    wait.as_mut().poll(cx).map_ok(|guard| guard.ready())
                })
                .await
            }
        });
        settle().await;
        assert_eq!(polls.get(), 1, "the waiter ran once and sleeps");

        b.write_all(&[7u8; 1000]).unwrap();
        // The data's edge reached the reactor: a reader sees it (and leaves it unread).
        let seen = within(HANG, fd.readable(), "no read edge").await.unwrap();
        assert!(seen.ready().is_readable() && !seen.ready().is_error());
        drop(seen);
        let before = overlap::metrics().task_polls;
        for _ in 0..5 {
            // Real time for any wake the edges caused to run, on an fd that stays ready.
            overlap::time::sleep(Duration::from_millis(5)).await;
            settle().await;
        }
        let spent = overlap::metrics().task_polls - before;
        assert!(!waiter.is_finished(), "the error wait ended on readability");
        assert_eq!(polls.get(), 1, "the error wait was woken by readability");
        assert!(
            spent < 100,
            "{spent} task polls while nothing happened: a spin"
        );

        reset(b);
        let ready = within(HANG, waiter, "the reset never ended the error wait")
            .await
            .unwrap()
            .unwrap();
        assert!(ready.is_error(), "{ready:?}");
        assert!(polls.get() <= 3, "{} polls", polls.get());
        // What the wait reported is what the socket holds: the reset.
        assert_eq!(take_so_error(fd.get_ref()), libc::ECONNRESET);
    });
}

/// An ICMP port-unreachable for a connected UDP socket is an error edge; clearing the
/// guard after taking the error makes the next wait sleep again, until the next error.
#[test]
fn an_icmp_error_ends_the_wait_and_clearing_forgets_it() {
    overlap::block_on(async {
        let mut fd = AsyncFd::new(udp_to_closed_port()).unwrap();
        // Writable from the start, and never an error without a send.
        assert!(poll_once(Box::pin(fd.ready(Interest::ERROR)))
            .await
            .is_pending());

        fd.get_ref().send(b"anyone?").unwrap();
        let mut guard = within(HANG, fd.ready_mut(Interest::ERROR), "no ICMP error")
            .await
            .unwrap();
        assert_eq!(guard.ready(), Ready::ERROR, "only the error is reported");
        let err = guard
            .try_io(|s| s.recv(&mut [0u8; 16]))
            .expect("an error is not WouldBlock")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        guard.clear_ready();
        drop(guard);
        assert!(
            poll_once(Box::pin(fd.ready(Interest::ERROR)))
                .await
                .is_pending(),
            "a cleared error ended the next wait"
        );
        // Still writable: an error wait and a write wait are separate.
        let w = fd.writable().await.unwrap();
        assert!(w.ready().is_writable() && !w.ready().is_error());
        drop(w);

        fd.get_ref().send(b"again?").unwrap();
        let guard = within(HANG, fd.ready(Interest::ERROR), "no second ICMP error")
            .await
            .unwrap();
        assert!(guard.ready().is_error());
        drop(guard);
        assert_eq!(take_so_error(fd.get_ref()), libc::ECONNREFUSED);
    });
}

/// A task waiting to read and one waiting for an error, on one fd: data wakes only the
/// reader; the reset wakes the error waiter (and a reader waiting again).
#[test]
fn read_and_error_waiters_on_one_fd_each_get_their_wake() {
    overlap::block_on(async {
        let (a, mut b) = tcp_pair();
        let fd = Rc::new(AsyncFd::new(a).unwrap());
        let reader = overlap::spawn({
            let fd = fd.clone();
            async move {
                let first = fd.readable().await?.ready();
                let mut buf = [0u8; 64];
                loop {
                    let mut guard = fd.readable().await?;
                    match guard.try_io(|s| io::Read::read(&mut &*s, &mut buf)) {
                        Ok(Ok(0)) => return io::Result::Ok((first, None)),
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => return Ok((first, Some(e.kind()))),
                        Err(_would_block) => continue,
                    }
                }
            }
        });
        let error = overlap::spawn({
            let fd = fd.clone();
            async move { io::Result::Ok(fd.ready(Interest::ERROR).await?.ready()) }
        });
        settle().await;
        b.write_all(b"hello").unwrap();
        within(HANG, fd.readable(), "no read edge")
            .await
            .unwrap()
            .retain_ready();
        settle().await;
        assert!(!error.is_finished(), "data woke the error waiter");

        reset(b);
        let got = within(HANG, error, "the error waiter slept through the reset")
            .await
            .unwrap()
            .unwrap();
        assert!(got.is_error());
        let (first, end) = within(HANG, reader, "the reader slept through the reset")
            .await
            .unwrap()
            .unwrap();
        assert!(first.is_readable());
        assert_eq!(end, Some(ErrorKind::ConnectionReset));
    });
}

/// The same through plain poll functions (the `Registered` trait, whose waits share the
/// fd's lists instead of owning an entry): two error waiters and a priority waiter on a
/// readable fd stay asleep through the data and are woken by the reset.
#[test]
fn poll_function_error_waits_share_the_fd_and_are_all_woken() {
    overlap::block_on(async {
        let (a, mut b) = tcp_pair();
        let fd = Rc::new(AsyncFd::new(a).unwrap());
        let wait = |dir: Direction| {
            let fd = fd.clone();
            overlap::spawn(async move {
                let mut polls = 0u32;
                let event = poll_fn(|cx| {
                    polls += 1;
                    fd.poll_readiness(cx, dir)
                })
                .await?;
                io::Result::Ok((event.ready(), polls))
            })
        };
        let errors = [wait(Direction::Error), wait(Direction::Error)];
        let priority = wait(Direction::Priority);
        settle().await;
        b.write_all(b"data, not an error").unwrap();
        within(HANG, fd.readable(), "no read edge")
            .await
            .unwrap()
            .retain_ready();
        settle().await;
        assert!(errors.iter().all(|t| !t.is_finished()));
        assert!(!priority.is_finished(), "plain data woke a priority waiter");

        reset(b);
        for t in errors {
            let (ready, polls) = within(HANG, t, "an error waiter slept")
                .await
                .unwrap()
                .unwrap();
            assert!(ready.is_error() && !ready.is_readable(), "{ready:?}");
            assert!(polls <= 3, "{polls} polls");
        }
        // A priority wait ends on an error (or the hang-up) too: no urgent data comes now.
        let (ready, _) = within(
            HANG,
            priority,
            "the priority waiter slept through the reset",
        )
        .await
        .unwrap()
        .unwrap();
        assert!(ready.is_error() || ready.is_read_closed(), "{ready:?}");
        assert!(!ready.is_priority(), "no priority data was sent: {ready:?}");
    });
}

/// `try_io` with `Interest::ERROR` runs only once an error is known, and a wait for
/// `READABLE | ERROR` ends on either.
#[test]
fn try_io_and_combined_interests_follow_the_error_bit() {
    overlap::block_on(async {
        let fd = AsyncFd::new(udp_to_closed_port()).unwrap();
        let recv = |s: &UdpSocket| s.recv(&mut [0u8; 16]);
        let err = fd.try_io(Interest::ERROR, recv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "no error known yet");
        let both = Interest::READABLE | Interest::ERROR;
        assert!(poll_once(Box::pin(fd.ready(both))).await.is_pending());

        fd.get_ref().send(b"x").unwrap();
        let guard = within(HANG, fd.ready(both), "no ICMP error").await.unwrap();
        assert!(guard.ready().is_error());
        drop(guard);
        let err = fd.try_io(Interest::ERROR, recv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // The error taken, the next attempt says WouldBlock, which clears it.
        let err = fd.try_io(Interest::ERROR, recv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert_eq!(fd.current_ready(Direction::Error), Ready::EMPTY);
        assert!(matches!(
            poll_once(Box::pin(fd.ready(Interest::ERROR))).await,
            Poll::Pending
        ));
    });
}
