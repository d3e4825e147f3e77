//! Futures that meet a second runtime on the same thread (`!Send` allows it): a timer moves
//! to the runtime polling it, an fd registered with another runtime is an error instead of a
//! wait that never ends, and an `AsyncFd` whose inner fd was swapped never deregisters a
//! stranger that reuses the old number.

mod support;

use std::future::{poll_fn, Future};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use overlap::time::sleep;
use overlap::{AsyncFd, Runtime};
use support::within;

/// The fd-number test needs no other test opening fds meanwhile.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const HANG: Duration = Duration::from_secs(10);

#[test]
fn a_sleep_first_polled_in_another_runtime_completes_in_this_one() {
    let _g = serial();
    for drop_first in [true, false] {
        let first = Runtime::new().unwrap();
        let mut s = Box::pin(sleep(Duration::from_millis(10)));
        first.block_on(poll_fn(|cx| {
            assert!(
                s.as_mut().poll(cx).is_pending(),
                "registers the timer there"
            );
            Poll::Ready(())
        }));
        let first = if drop_first { None } else { Some(first) };
        let second = Runtime::new().unwrap();
        second.block_on(within(
            HANG,
            s,
            "the sleep never completed in the second runtime",
        ));
        assert_eq!(second.metrics().timers_active, 0);
        if let Some(first) = first {
            assert_eq!(
                first.metrics().timers_active,
                0,
                "its timer left the first runtime"
            );
        }
    }
}

#[test]
fn an_fd_polled_by_a_runtime_it_is_not_registered_with_is_an_error() {
    let _g = serial();
    let (r, w) = support::socketpair();
    let first = Runtime::new().unwrap();
    let fd = first.block_on(async { AsyncFd::new(r).unwrap() });
    support::write(w.as_raw_fd(), b"x").unwrap();
    let second = Runtime::new().unwrap();
    let res = second.block_on(within(HANG, fd.readable(), "readable() never returned"));
    let err = res.expect_err("an error, not a wait on a loop that does not run");
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    // Back in its own runtime it works.
    first.block_on(async { fd.readable().await.unwrap().retain_ready() });
}

#[test]
fn dropping_an_async_fd_whose_inner_fd_was_swapped_leaves_other_fds_registered() {
    let _g = serial();
    overlap::block_on(async {
        let (a, _a_peer) = support::socketpair();
        let mut first = AsyncFd::new(a).unwrap();
        let old = first.as_raw_fd();
        // Swap the inner fd: the old one closes (and leaves epoll with it).
        *first.get_mut() = support::eventfd();
        let (c, c_peer) = support::socketpair();
        // Lowest free number first, and no other test opens fds meanwhile (SERIAL).
        assert_eq!(
            c.as_raw_fd(),
            old,
            "test setup: the old fd number was not reused"
        );
        let second = AsyncFd::new(c).unwrap();
        drop(first); // used to deregister by the old number: `second`'s registration
        support::write(c_peer.as_raw_fd(), b"x").unwrap();
        within(
            HANG,
            second.readable(),
            "the second AsyncFd was never woken",
        )
        .await
        .unwrap()
        .retain_ready();
    });
}
