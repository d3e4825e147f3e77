//! Futures that meet a second runtime on the same thread (`!Send` allows it): a timer moves
//! to the runtime polling it, an fd registered with another runtime is an error instead of a
//! wait that never ends (also for the calls that send without waiting for readiness, as
//! `UnixDatagram::send_to` does), and an `AsyncFd` whose inner fd was swapped never
//! deregisters a stranger that reuses the old number. A `Signal` polled outside any runtime
//! while none reads signals panics saying so, as a timer does there, instead of waiting for
//! ever.

mod support;

use std::future::{poll_fn, Future};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use overlap::net::UnixDatagram;
use overlap::time::sleep;
use overlap::{AsyncFd, Runtime};
use support::{polled, within, TempDir};

/// The fd-number test needs no other test opening fds meanwhile.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const HANG: Duration = Duration::from_secs(10);

/// The result of `fut` polled once outside any runtime, which must not be `Pending`.
fn poll_once_outside<T>(fut: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    match polled(fut).poll() {
        Poll::Ready(res) => res,
        Poll::Pending => panic!("waits outside any runtime, where nothing can wake it"),
    }
}

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

/// `UnixDatagram::send_to` and `try_send_to` send without waiting for the socket's
/// readiness, yet follow the rule the other calls do: under a runtime the socket is not
/// registered with, or outside any, they fail with an `Other` error and send nothing, where
/// they used to send (and outside a runtime, with the receiver's queue full, to panic in
/// the retry's sleep).
#[test]
fn unix_datagram_send_to_under_another_runtime_is_an_error() {
    let _g = serial();
    let dir = TempDir::new("cross-send-to");
    let path = dir.join("rx");
    let first = Runtime::new().unwrap();
    let (rx, tx) = first.block_on(async {
        let rx = UnixDatagram::bind(&path).unwrap();
        (rx, UnixDatagram::unbound().unwrap())
    });
    let second = Runtime::new().unwrap();
    let res = second.block_on(within(HANG, tx.send_to(b"x", &path), "send_to hung"));
    let err = res.expect_err("send_to under another runtime");
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    let err = second
        .block_on(async { tx.try_send_to(b"x", &path) })
        .expect_err("try_send_to under another runtime");
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    let err = poll_once_outside(tx.send_to(b"x", &path)).expect_err("send_to outside");
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    let mut buf = [0u8; 4];
    first.block_on(async {
        let err = rx.try_recv(&mut buf).expect_err("nothing was sent");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
        // In its own runtime it sends.
        assert_eq!(tx.send_to(b"ok", &path).await.unwrap(), 2);
        assert_eq!(tx.try_send_to(b"ok", &path).unwrap(), 2);
        assert_eq!(rx.recv(&mut buf).await.unwrap(), 2);
    });
    drop(first);
    let err = poll_once_outside(tx.send_to(b"x", &path)).expect_err("its runtime is gone");
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
}

/// A `Signal` whose runtime was dropped, polled outside any runtime while no runtime in the
/// process reads signals, panics saying so (as a timer polled there does), where it waited
/// for ever: nothing would ever wake it. Polled in a new runtime, it hears the next arrival.
#[test]
fn a_signal_polled_outside_any_runtime_with_none_reading_panics_instead_of_waiting() {
    use overlap::signal::{signal, SignalKind};
    let _g = serial();
    let first = Runtime::new().unwrap();
    let mut sig = first.block_on(async { signal(SignalKind::user_defined2()).unwrap() });
    drop(first); // and with it the only reader of the signal pipe
    let outside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        polled(sig.recv()).poll().is_ready()
    }));
    let payload = outside.expect_err("it waited, with nothing in the process to wake it");
    let msg = support::panic_message(payload);
    assert!(msg.contains("outside of a runtime"), "{msg}");
    let second = Runtime::new().unwrap();
    let heard = second.block_on(within(
        HANG,
        async {
            let mut recv = Box::pin(sig.recv());
            assert!(support::poll_once(recv.as_mut()).await.is_pending());
            // SAFETY: kill and getpid take no pointers.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
            recv.await
        },
        "the signal was not heard in the new runtime",
    ));
    assert_eq!(heard, Some(()));
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
