//! tokio's `tests/io_async_fd.rs`, ported to overlap's `AsyncFd` (at tokio's path,
//! `overlap::io::unix`): the same behaviour, checked in overlap's terms.
//!
//! Where tokio sleeps 10 ms to show that a wait stays pending, these tests let the loop turn
//! ([`settle`]) and poll the wait once: no timing.
//!
//! Skipped from tokio's file:
//! - `driver_shutdown_wakes_pending_race`, `driver_shutdown_wakes_poll_race`: they drop the
//!   runtime on another thread while this one polls; an overlap runtime is `!Send` and stays
//!   on the thread that made it.
//! - `poll_fns`' claim that `poll_read_ready` keeps only the last waker: overlap keeps every
//!   waker of the shared slot (documented on `AsyncFd`), so the port checks the opposite.
//! - the `Arc`s around shared fds, and the `Barrier`s that wait for spawned tasks to park:
//!   tasks here share an `Rc`, and `settle` lets every spawned task reach its wait.

mod support;

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::io::unix::{AsyncFd, AsyncFdReadyGuard};
use overlap::io::{Interest, Ready};
use overlap::Runtime;
use support::{poll_once, polled, read, send_urgent, set_int_option, settle, socketpair, within};

const HANG: Duration = Duration::from_secs(30);

/// Reads `fd` until it says `WouldBlock`; end of file or another error fails the test.
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    loop {
        match read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => panic!("unexpected end of file"),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

/// Writes to `fd` until its send buffer is full.
fn fill(fd: &OwnedFd) {
    while support::write(fd.as_raw_fd(), &[0; 4096]).is_ok() {}
}

/// After the loop had a chance to deliver any edge, `readable` still does not return.
async fn assert_not_readable<T: AsRawFd>(fd: &AsyncFd<T>) {
    settle().await;
    let polled = poll_once(Box::pin(fd.readable())).await;
    assert!(polled.is_pending(), "readable without news");
}

/// Yields until `woken()` says so (each yield lets the reactor deliver its events).
async fn until(what: &str, woken: impl Fn() -> bool) {
    within(
        HANG,
        async {
            while !woken() {
                overlap::yield_now().await;
            }
        },
        what,
    )
    .await;
}

// tokio: initially_writable
#[overlap::test]
async fn both_ends_of_a_fresh_pair_are_writable_and_not_readable() {
    let (a, b) = socketpair();
    let (a, b) = (AsyncFd::new(a).unwrap(), AsyncFd::new(b).unwrap());
    within(HANG, a.writable(), "a writable")
        .await
        .unwrap()
        .clear_ready();
    within(HANG, b.writable(), "b writable")
        .await
        .unwrap()
        .clear_ready();
    assert_not_readable(&a).await;
    assert_not_readable(&b).await;
}

// tokio: reset_readable
#[overlap::test]
async fn readiness_stays_until_cleared_and_a_new_byte_brings_it_back() {
    let (a, b) = socketpair();
    let fd = AsyncFd::new(a).unwrap();
    let mut waiting = polled(fd.readable());
    settle().await;
    assert!(waiting.poll().is_pending());
    support::write(b.as_raw_fd(), b"0").unwrap();
    until("no read edge", || waiting.is_woken()).await;
    let Poll::Ready(guard) = waiting.poll() else {
        panic!("woken but not readable")
    };
    let mut guard = guard.unwrap();
    let n = guard.try_io(|a| read(a.as_raw_fd(), &mut [0])).unwrap();
    assert_eq!(n.unwrap(), 1);
    // Drained, but nothing said WouldBlock: the readiness is still known.
    within(HANG, fd.readable(), "kept readiness")
        .await
        .unwrap()
        .retain_ready();
    guard.clear_ready();
    assert_not_readable(&fd).await;
    support::write(b.as_raw_fd(), b"0").unwrap();
    within(HANG, fd.readable(), "second byte")
        .await
        .unwrap()
        .clear_ready();
}

// tokio: reset_writable
#[overlap::test]
async fn writing_until_would_block_clears_and_the_peer_reading_restores() {
    let (a, b) = socketpair();
    let fd = AsyncFd::new(a).unwrap();
    let mut guard = within(HANG, fd.writable(), "writable").await.unwrap();
    while guard
        .try_io(|a| support::write(a.as_raw_fd(), &[0; 512]))
        .is_ok()
    {}
    let mut writable = polled(fd.writable());
    settle().await;
    assert!(writable.poll().is_pending(), "writable with a full buffer");
    drain(&b);
    until("room never reported", || writable.is_woken()).await;
    assert!(matches!(writable.poll(), Poll::Ready(Ok(_))));
}

/// Shares its fd through an `Rc`: dropping it closes nothing while another holder lives.
#[derive(Debug)]
struct Shared(Rc<OwnedFd>);

impl AsRawFd for Shared {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

// tokio: drop_closes
#[overlap::test]
async fn dropping_closes_through_the_inner_value_and_into_inner_does_not() {
    let peer_read = |b: &OwnedFd| read(b.as_raw_fd(), &mut [0]);
    let (a, b) = socketpair();
    let fd = AsyncFd::new(a).unwrap();
    assert_eq!(peer_read(&b).unwrap_err().kind(), ErrorKind::WouldBlock);
    drop(fd);
    assert_eq!(peer_read(&b).unwrap(), 0, "the drop closed the fd");

    let (a, b) = socketpair();
    let _a: OwnedFd = AsyncFd::new(a).unwrap().into_inner();
    assert_eq!(peer_read(&b).unwrap_err().kind(), ErrorKind::WouldBlock);

    let (a, b) = socketpair();
    let a = Rc::new(a);
    drop(AsyncFd::new(Shared(a.clone())).unwrap());
    assert_eq!(peer_read(&b).unwrap_err().kind(), ErrorKind::WouldBlock);
    drop(a);
    assert_eq!(peer_read(&b).unwrap(), 0);
}

// tokio: reregister
#[overlap::test]
async fn an_fd_taken_back_with_into_inner_registers_again_and_works() {
    let (a, b) = socketpair();
    let a = AsyncFd::new(a).unwrap().into_inner();
    let fd = AsyncFd::new(a).unwrap();
    support::write(b.as_raw_fd(), b"x").unwrap();
    within(HANG, fd.readable(), "re-registered fd readable")
        .await
        .unwrap()
        .clear_ready();
}

// tokio: try_io
#[overlap::test]
async fn guard_try_io_clears_on_would_block_only() {
    let (a, b) = socketpair();
    support::write(b.as_raw_fd(), b"0").unwrap();
    let fd = AsyncFd::new(a).unwrap();
    let mut guard = within(HANG, fd.readable(), "readable").await.unwrap();
    assert_eq!(read(fd.get_ref().as_raw_fd(), &mut [0]).unwrap(), 1);
    assert!(guard.try_io(|_| Ok(())).is_ok());
    let again = poll_once(Box::pin(fd.readable())).await;
    assert!(matches!(again, Poll::Ready(Ok(_))), "an Ok must not clear");
    let blocked = guard.try_io(|_| io::Result::<()>::Err(ErrorKind::WouldBlock.into()));
    assert!(blocked.is_err());
    let mut readable = polled(fd.readable());
    settle().await;
    assert!(readable.poll().is_pending(), "WouldBlock must clear");
    support::write(b.as_raw_fd(), b"0").unwrap();
    until("the new byte woke nobody", || readable.is_woken()).await;
    assert!(matches!(readable.poll(), Poll::Ready(Ok(_))));
}

// tokio: multiple_waiters
#[overlap::test]
async fn one_edge_wakes_every_task_waiting_to_read() {
    let (a, b) = socketpair();
    let fd = Rc::new(AsyncFd::new(a).unwrap());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let fd = fd.clone();
            overlap::spawn(async move {
                let guard = fd.readable().await;
                overlap::yield_now().await;
                guard.unwrap().clear_ready();
            })
        })
        .collect();
    settle().await;
    assert!(tasks.iter().all(|t| !t.is_finished()), "a task ran early");
    support::write(b.as_raw_fd(), b"0").unwrap();
    for task in tasks {
        within(HANG, task, "a waiter was left asleep")
            .await
            .unwrap();
    }
}

// tokio: poll_fns
#[overlap::test]
async fn poll_functions_keep_every_waker_and_each_direction_apart() {
    let (a, b) = socketpair();
    let fd = Rc::new(AsyncFd::new(a).unwrap());
    let peer = AsyncFd::new(b).unwrap();
    fill(fd.get_ref());
    let mut by_hand = polled(poll_fn(|cx| fd.poll_read_ready(cx).map_ok(drop)));
    assert!(by_hand.poll().is_pending());
    let mut writer = polled(poll_fn(|cx| fd.poll_write_ready(cx).map_ok(drop)));
    settle().await;
    assert!(writer.poll().is_pending(), "writable with a full buffer");
    let reader_fd = fd.clone();
    let reader =
        overlap::spawn(
            async move { poll_fn(|cx| reader_fd.poll_read_ready(cx).map_ok(drop)).await },
        );
    let readable = Box::pin(fd.readable());
    let mut readable = polled(readable);
    settle().await;
    assert!(readable.poll().is_pending());
    support::write(peer.get_ref().as_raw_fd(), b"0").unwrap();
    until("readable() not woken", || readable.is_woken()).await;
    within(HANG, reader, "poll_read_ready task not woken")
        .await
        .unwrap()
        .unwrap();
    // tokio keeps only the last waker of `poll_read_ready`, so its first one is never woken;
    // overlap keeps them all (a given-up one is woken once, harmlessly).
    assert!(
        by_hand.is_woken(),
        "overlap wakes every poll_read_ready waker"
    );
    assert!(!writer.is_woken(), "a read edge woke the writer");
    drain(peer.get_ref());
    until("room never reported", || writer.is_woken()).await;
    assert!(matches!(writer.poll(), Poll::Ready(Ok(()))));
}

// tokio: driver_shutdown_wakes_currently_pending, driver_shutdown_wakes_future_pending,
// driver_shutdown_wakes_currently_pending_polls, driver_shutdown_wakes_poll
#[test]
fn waits_pending_when_the_runtime_drops_are_woken_and_fail() {
    let rt = Runtime::new().unwrap();
    let (a, _b) = socketpair();
    let fd = {
        let _enter = rt.enter();
        AsyncFd::new(a).unwrap()
    };
    fill(fd.get_ref());
    let (c, _d) = socketpair();
    let other = {
        let _enter = rt.enter();
        AsyncFd::new(c).unwrap()
    };
    // A guard that outlives the runtime (`fd`, full and unread, has no readiness to show).
    let mut held = rt.block_on(other.writable()).unwrap();
    let mut readable = polled(fd.readable());
    let mut poll_read = polled(poll_fn(|cx| fd.poll_read_ready(cx).map_ok(drop)));
    let mut poll_write = polled(poll_fn(|cx| fd.poll_write_ready(cx).map_ok(drop)));
    {
        let _enter = rt.enter();
        assert!(readable.poll().is_pending());
        assert!(poll_read.poll().is_pending());
        assert!(poll_write.poll().is_pending());
    }
    drop(rt);
    assert!(readable.is_woken() && poll_read.is_woken() && poll_write.is_woken());
    // A guard from before the drop still clears, and its `try_io` still runs.
    assert!(held.try_io(|_| Ok(())).is_ok());
    held.clear_ready();
    assert!(matches!(readable.poll(), Poll::Ready(Err(_))));
    assert!(matches!(poll_read.poll(), Poll::Ready(Err(_))));
    assert!(matches!(poll_write.poll(), Poll::Ready(Err(_))));
    // Waits that start after the drop fail at once.
    assert!(matches!(polled(fd.readable()).poll(), Poll::Ready(Err(_))));
    let writable = poll_fn(|cx| fd.poll_write_ready(cx).map_ok(drop));
    assert!(matches!(polled(writable).poll(), Poll::Ready(Err(_))));
}

// tokio: priority_event_on_oob_data
#[overlap::test]
async fn urgent_data_ends_a_priority_wait() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    let client = AsyncFd::with_interest(client, Interest::PRIORITY).unwrap();
    let (server, _) = listener.accept().unwrap();
    send_urgent(server.as_raw_fd(), b'!');
    let guard = within(HANG, client.ready(Interest::PRIORITY), "no priority event")
        .await
        .unwrap();
    assert_eq!(guard.ready(), Ready::PRIORITY);
}

/// Waits for both directions on a pair whose peer wrote a byte, then clears them one by one.
fn clears_one_direction_at_a_time<G>(
    mut guard: G,
    ready: impl Fn(&G) -> Ready,
    clear: impl Fn(&mut G, Ready),
) {
    assert_eq!(ready(&guard), Ready::READABLE | Ready::WRITABLE);
    clear(&mut guard, Ready::READABLE);
    assert_eq!(ready(&guard), Ready::WRITABLE);
    clear(&mut guard, Ready::WRITABLE);
    assert_eq!(ready(&guard), Ready::EMPTY);
}

// tokio: clear_ready_matching_clears_ready, clear_ready_matching_clears_ready_mut
#[overlap::test]
async fn clear_ready_matching_clears_only_what_it_names() {
    let both = Interest::READABLE | Interest::WRITABLE;
    let (a, b) = socketpair();
    let mut fd = AsyncFd::new(a).unwrap();
    support::write(b.as_raw_fd(), b"0").unwrap();
    settle().await;
    let guard: AsyncFdReadyGuard<'_, _> = within(HANG, fd.ready(both), "ready").await.unwrap();
    clears_one_direction_at_a_time(guard, |g| g.ready(), |g, r| g.clear_ready_matching(r));
    support::write(b.as_raw_fd(), b"0").unwrap();
    settle().await;
    let guard = within(HANG, fd.ready_mut(both), "ready_mut").await.unwrap();
    clears_one_direction_at_a_time(guard, |g| g.ready(), |g, r| g.clear_ready_matching(r));
}

// tokio: await_error_readiness_timestamping. tokio's test sets `SO_TIMESTAMP` with
// `SO_TIMESTAMPING`'s flags and sends to port 0, so its error is the ICMP refusal; this port
// asks for send timestamps (`SO_TIMESTAMPING`) and sends to a live peer, so the only error
// readiness is the timestamp queued on the error queue.
#[overlap::test]
async fn a_send_timestamp_on_the_error_queue_ends_an_error_wait() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let flags = libc::SOF_TIMESTAMPING_SOFTWARE | libc::SOF_TIMESTAMPING_TX_SOFTWARE;
    let raw = socket.as_raw_fd();
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as i32).unwrap();
    socket.connect(peer.local_addr().unwrap()).unwrap();
    let fd = AsyncFd::new(socket).unwrap();
    within(HANG, fd.writable(), "writable")
        .await
        .unwrap()
        .retain_ready();
    let mut error = polled(fd.ready(Interest::ERROR));
    settle().await;
    assert!(
        error.poll().is_pending(),
        "an error wait ended on mere writability"
    );
    fd.get_ref().send(b"hello there").unwrap();
    until("the timestamp raised no error", || error.is_woken()).await;
    let Poll::Ready(guard) = error.poll() else {
        panic!("woken without error readiness")
    };
    assert_eq!(guard.unwrap().ready(), Ready::ERROR);
}

// tokio: await_error_readiness_invalid_address
#[overlap::test]
async fn an_icmp_error_with_ip_recverr_ends_an_error_wait() {
    // A port nobody listens on: bound for its number, then closed.
    let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = gone.local_addr().unwrap();
    drop(gone);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    set_int_option(socket.as_raw_fd(), libc::SOL_IP, libc::IP_RECVERR, 1).unwrap();
    // Registered for errors alone, which tokio allows too (epoll reports them always).
    let fd = AsyncFd::with_interest(socket, Interest::ERROR).unwrap();
    fd.get_ref().send_to(b"Hello, Socket!", dest).unwrap();
    let guard = within(HANG, fd.ready(Interest::ERROR), "no error readiness")
        .await
        .unwrap();
    assert_eq!(guard.ready(), Ready::ERROR);
}

/// An `AsRawFd` whose fd is not one: epoll refuses it.
#[derive(Debug)]
struct NotAnFd;

impl AsRawFd for NotAnFd {
    fn as_raw_fd(&self) -> RawFd {
        -1
    }
}

// tokio: try_new, try_with_interest
#[overlap::test]
async fn a_refused_fd_comes_back_with_the_error() {
    let original = Rc::new(NotAnFd);
    let (back, error) = AsyncFd::try_new(original.clone()).unwrap_err().into_parts();
    assert!(Rc::ptr_eq(&original, &back));
    assert_eq!(error.raw_os_error(), Some(libc::EBADF));
    let refused = AsyncFd::try_with_interest(original.clone(), Interest::READABLE);
    let (back, error) = refused.unwrap_err().into_parts();
    assert!(Rc::ptr_eq(&original, &back));
    assert_eq!(error.raw_os_error(), Some(libc::EBADF));
}

// Not in tokio's file, next to `reregister`: the same fd registered twice at once.
#[overlap::test]
async fn registering_an_fd_twice_is_refused_and_the_first_keeps_working() {
    let (a, b) = socketpair();
    let a = Rc::new(a);
    let first = AsyncFd::new(Shared(a.clone())).unwrap();
    let (_, error) = AsyncFd::try_new(Shared(a.clone()))
        .unwrap_err()
        .into_parts();
    assert_eq!(error.raw_os_error(), Some(libc::EEXIST));
    support::write(b.as_raw_fd(), b"x").unwrap();
    within(HANG, first.readable(), "the first registration went deaf")
        .await
        .unwrap()
        .clear_ready();
}
