//! Behaviours checked by mio's registration tests (`registering.rs`, `double_register.rs`,
//! `register_multiple_event_loops.rs`, `close_on_drop.rs`, `poll.rs`), ported to overlap's
//! `AsyncFd` and sockets. epoll keys a registration on the fd number *and* the open file
//! behind it, and only drops it when every fd of that file is closed; these tests check
//! that overlap's registrations follow the fd it was given even where dups of the same file
//! live on. Each test names the test it follows.
//!
//! Left out, covered elsewhere: a registration after the fd number is reused
//! (`runtime_async_fd.rs`), a second registration of one fd (`port_tokio_readiness.rs`),
//! regular files refused (`runtime_async_fd.rs`).

mod support;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::UnixStream;
use overlap::AsyncFd;
use support::{read, socketpair, within, write};

const HANG: Duration = Duration::from_secs(10);

/// Reads what `fd` holds once it is readable.
async fn read_when_ready(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> usize {
    loop {
        let mut guard = within(HANG, fd.readable(), "no read edge").await.unwrap();
        match guard.try_io(|inner| read(inner.as_raw_fd(), buf)) {
            Ok(res) => return res.unwrap(),
            Err(_would_block) => continue,
        }
    }
}

// mio: poll.rs (a deregistered fd can be registered again), in epoll's terms: dropping an
// `AsyncFd` must take its fd out of epoll itself, since a dup keeps the file (and so the
// registration) alive after the close. A stale entry would make the next registration of
// the same file under the same number fail with EEXIST.
#[overlap::test]
async fn a_file_whose_registered_fd_was_dropped_registers_again_under_the_same_number() {
    let mut same_number = 0;
    for _ in 0..50 {
        let (a, b) = socketpair();
        let number = a.as_raw_fd();
        let keep = a.try_clone().unwrap(); // the file outlives the registered fd
        let first = AsyncFd::new(a).unwrap();
        drop(first); // closes `number`
                     // The lowest free number: `number` again, unless another test's thread took it.
        let again = keep.try_clone().unwrap();
        same_number += usize::from(again.as_raw_fd() == number);
        let second = AsyncFd::new(again).expect("the dropped registration was left in epoll");
        write(b.as_raw_fd(), b"hi").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(read_when_ready(&second, &mut buf).await, 2);
        // The same through `into_inner`, which hands the fd back still open.
        let back = second.into_inner();
        let third = AsyncFd::new(back).expect("into_inner left the fd in epoll");
        write(b.as_raw_fd(), b"yo").unwrap();
        assert_eq!(read_when_ready(&third, &mut buf).await, 2);
        drop(keep);
    }
    assert!(
        same_number > 0,
        "the fd number was never reused: nothing was checked"
    );
}

// mio: registering.rs (two registrations of one file through two fds); close_on_drop.rs
#[overlap::test]
async fn two_dups_of_one_socket_are_each_woken_and_outlive_each_other() {
    let (a, b) = socketpair();
    let a2 = a.try_clone().unwrap();
    let first = AsyncFd::new(a).unwrap();
    let second = AsyncFd::new(a2).unwrap();
    let waiters = overlap::join!(
        within(HANG, first.readable(), "the first dup was not woken"),
        within(HANG, second.readable(), "the second dup was not woken"),
        async { write(b.as_raw_fd(), b"x").unwrap() },
    );
    let (g1, g2, _) = waiters;
    drop((g1.unwrap(), g2.unwrap()));
    // Dropping one registration (and closing its fd) leaves the other in place.
    drop(first);
    let mut buf = [0u8; 4];
    assert_eq!(read_when_ready(&second, &mut buf).await, 1);
    let mut guard = second.readable().await.unwrap();
    let res = guard.try_io(|inner| read(inner.as_raw_fd(), &mut buf));
    assert!(res.is_err(), "drained, so would block");
    write(b.as_raw_fd(), b"yz").unwrap();
    assert_eq!(read_when_ready(&second, &mut buf).await, 2);
    // The peer sees the file close only when its last fd goes.
    drop(second);
    assert_eq!(read(b.as_raw_fd(), &mut buf).unwrap(), 0);
}

// mio: register_multiple_event_loops.rs (one socket on two event loops)
#[test]
fn one_socket_waited_on_by_two_runtimes_on_two_threads() {
    let (a, b) = socketpair();
    let a2 = a.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        overlap::block_on(async move {
            let fd = AsyncFd::new(a2).unwrap();
            tx.send(()).unwrap();
            let guard = within(HANG, fd.readable(), "the other runtime was not woken").await;
            guard.unwrap().ready().is_readable()
        })
    });
    overlap::block_on(async move {
        let fd = AsyncFd::new(a).unwrap();
        rx.recv().unwrap();
        write(b.as_raw_fd(), b"both").unwrap();
        let guard = within(HANG, fd.readable(), "this runtime was not woken").await;
        assert!(guard.unwrap().ready().is_readable());
    });
    assert!(other.join().unwrap());
}

// mio: close_on_drop.rs (dropping a registered stream closes it for the peer, which a
// waiting peer hears at once); poll.rs drop_cancels_interest_and_shuts_down
#[overlap::test]
async fn dropping_a_stream_that_is_registered_wakes_its_peers_reader() {
    let (a, b) = UnixStream::pair().unwrap();
    let reader = overlap::spawn(async move {
        let mut buf = [0u8; 4];
        (&b).read(&mut buf).await
    });
    support::settle().await;
    drop(a);
    let n = within(HANG, reader, "the peer never heard the close")
        .await
        .unwrap();
    assert_eq!(n.unwrap(), 0);
}

// mio: double_register.rs, with a dup (a different fd number, the same file): epoll
// accepts it, and so does overlap
#[overlap::test]
async fn a_dup_of_a_registered_fd_registers_while_the_same_number_is_refused() {
    let (a, b) = socketpair();
    let first = AsyncFd::new(a).unwrap();
    let borrowed = first.get_ref().as_fd();
    let err = AsyncFd::new(borrowed).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err:?}");
    let dup = first.get_ref().try_clone().unwrap();
    let second = AsyncFd::new(dup).unwrap();
    write(b.as_raw_fd(), b"z").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(read_when_ready(&second, &mut buf).await, 1);
    drop(first);
}
