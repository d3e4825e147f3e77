//! An `AsyncFd` whose fd its owner closed first (an `AsyncFd<RawFd>` only borrows the
//! number): when it drops, its deregistration must not take out the registration that
//! reuses that number, which would then never be woken again.
//!
//! Each test runs alone in a child process, so that the closed number is the lowest free
//! one and the next fd made takes it.

mod support;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use overlap::AsyncFd;
use support::{run_in_child, socketpair, within, write};

const HANG: Duration = Duration::from_secs(10);

/// Registers a borrowed fd number, then closes its fd behind the `AsyncFd`'s back: what
/// was registered is gone, and the number is free for the next fd made.
fn registered_then_closed() -> (AsyncFd<RawFd>, RawFd, OwnedFd) {
    let (a, peer) = socketpair();
    let number = a.as_raw_fd();
    let borrowed = AsyncFd::new(number).unwrap();
    drop(a); // the owner closes it first
    (borrowed, number, peer)
}

#[test]
fn the_async_fd_that_reuses_the_number_keeps_its_wakes() {
    run_in_child(
        "the_async_fd_that_reuses_the_number_keeps_its_wakes",
        || {
            overlap::block_on(async {
                let (stale, number, _peer) = registered_then_closed();
                let (b, peer_b) = socketpair();
                assert_eq!(b.as_raw_fd(), number, "the number was not reused");
                let fresh = AsyncFd::new(b).unwrap();
                drop(stale);
                write(peer_b.as_raw_fd(), b"x").unwrap();
                let guard = within(HANG, fresh.readable(), "the reused number went deaf")
                    .await
                    .unwrap();
                assert!(guard.ready().is_readable());
            });
        },
    );
}

#[test]
fn a_socket_that_reuses_the_number_keeps_working() {
    run_in_child("a_socket_that_reuses_the_number_keeps_working", || {
        overlap::block_on(async {
            let (stale, number, _peer) = registered_then_closed();
            let (mut a, mut b) = overlap::net::UnixStream::pair().unwrap();
            assert_eq!(a.as_raw_fd(), number, "the number was not reused");
            drop(stale);
            let echo = overlap::spawn(async move {
                let mut buf = [0u8; 4];
                b.read_exact(&mut buf).await.unwrap();
                b.write_all(&buf).await.unwrap();
            });
            // The reply's wait is the one that needs the socket's registration.
            let reply = async {
                a.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                a.read_exact(&mut buf).await.unwrap();
                buf
            };
            assert_eq!(&within(HANG, reply, "the socket went deaf").await, b"ping");
            echo.await.unwrap();
        });
    });
}
