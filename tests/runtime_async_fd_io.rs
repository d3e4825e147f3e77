//! `AsyncFd`'s tokio-shaped operation runners on real socket pairs and eventfds:
//! `try_io(Interest, f)`, `async_io(Interest, f)` and `async_io_mut`, with one direction or
//! both, and the `Direction` form the existing callers use.

mod support;

use std::cell::Cell;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::task::Poll;
use std::time::Duration;

use overlap::io::Interest;
use overlap::{block_on, AsyncFd, Direction};
use support::{eventfd, eventfd_add, polled, read, socketpair, within, write};

const HANG: Duration = Duration::from_secs(30);
const BOTH: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// Waits for readiness in `interest`, and keeps it for what comes next.
async fn keep_ready<T: AsRawFd>(fd: &AsyncFd<T>, interest: Interest) {
    let guard = within(HANG, fd.ready(interest), "no edge").await;
    guard.unwrap().retain_ready();
}

/// A socket pair's first end registered, its write readiness seen (and kept), and the
/// other end.
async fn write_ready_pair() -> (AsyncFd<OwnedFd>, OwnedFd) {
    let (a, b) = socketpair();
    let fd = AsyncFd::new(a).unwrap();
    keep_ready(&fd, Interest::WRITABLE).await;
    (fd, b)
}

/// Reads what is there (up to 16 bytes), counting the attempts.
fn counted_read(fd: &OwnedFd, calls: &Cell<u32>) -> io::Result<Vec<u8>> {
    calls.set(calls.get() + 1);
    let mut buf = [0u8; 16];
    read(fd.as_raw_fd(), &mut buf).map(|n| buf[..n].to_vec())
}

#[test]
fn try_io_with_both_directions_runs_on_either_and_clears_both() {
    block_on(async {
        let (fd, b) = write_ready_pair().await;
        let calls = Cell::new(0);

        // Read readiness alone is not known: no call.
        let err = fd
            .try_io(Interest::READABLE, |s| counted_read(s, &calls))
            .unwrap_err();
        assert_eq!((err.kind(), calls.get()), (ErrorKind::WouldBlock, 0));
        // Either direction will do: the write readiness lets the read run, and it blocks.
        let err = fd.try_io(BOTH, |s| counted_read(s, &calls)).unwrap_err();
        assert_eq!((err.kind(), calls.get()), (ErrorKind::WouldBlock, 1));
        // Its WouldBlock cleared all it saw, the write readiness included.
        assert!(fd.current_ready(Direction::Write).is_empty());
        let err = fd.try_io(Interest::WRITABLE, |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        let err = fd.try_io(BOTH, |s| counted_read(s, &calls)).unwrap_err();
        assert_eq!(
            (err.kind(), calls.get()),
            (ErrorKind::WouldBlock, 1),
            "no call"
        );

        write(b.as_raw_fd(), b"hey").unwrap();
        keep_ready(&fd, Interest::READABLE).await;
        assert_eq!(
            fd.try_io(BOTH, |s| counted_read(s, &calls)).unwrap(),
            b"hey"
        );
        // The `Direction` form of the existing callers is the same call.
        write(b.as_raw_fd(), b"you").unwrap();
        keep_ready(&fd, Interest::READABLE).await;
        let got = fd
            .try_io(Direction::Read, |s| counted_read(s, &calls))
            .unwrap();
        assert_eq!((got, calls.get()), (b"you".to_vec(), 3));
    });
}

#[test]
fn async_io_with_both_directions_waits_after_would_block_instead_of_spinning() {
    block_on(async {
        let (fd, b) = write_ready_pair().await;
        let calls = Cell::new(0);
        let mut io = polled(fd.async_io(BOTH, |s| counted_read(s, &calls)));
        assert!(io.poll().is_pending());
        assert_eq!(calls.get(), 1, "ran on the write readiness, then waited");
        assert!(io.poll().is_pending());
        assert_eq!(
            calls.get(),
            1,
            "the readiness it saw was cleared: no second run"
        );

        write(b.as_raw_fd(), b"ping").unwrap();
        keep_ready(&fd, Interest::READABLE).await;
        assert!(io.is_woken(), "the read edge woke the waiting async_io");
        match io.poll() {
            Poll::Ready(got) => assert_eq!(got.unwrap(), b"ping"),
            Poll::Pending => panic!("readable, yet still waiting"),
        }
        assert_eq!(calls.get(), 2);
    });
}

#[test]
fn async_io_returns_other_errors_and_takes_a_direction() {
    block_on(async {
        let efd = AsyncFd::new(eventfd()).unwrap();
        eventfd_add(efd.get_ref(), 7);
        let mut buf = [0u8; 8];
        let n = within(
            HANG,
            efd.async_io(Direction::Read, |s| read(s.as_raw_fd(), &mut buf)),
            "no eventfd edge",
        )
        .await
        .unwrap();
        assert_eq!((n, u64::from_ne_bytes(buf)), (8, 7));
        // An eventfd read into fewer than 8 bytes is EINVAL: returned, not retried.
        let err = efd
            .async_io(Interest::WRITABLE, |s| read(s.as_raw_fd(), &mut [0u8; 4]))
            .await
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    });
}

#[test]
fn async_io_mut_lends_the_inner_value_mutably_and_retries() {
    block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut fd = AsyncFd::new(a).unwrap();
        keep_ready(&fd, Interest::WRITABLE).await;
        let mut calls = 0;
        let got = within(
            HANG,
            fd.async_io_mut(BOTH, |sock: &mut UnixStream| {
                calls += 1;
                let mut buf = [0u8; 16];
                let res = sock.read(&mut buf).map(|n| buf[..n].to_vec());
                if calls == 1 {
                    // Blocked on the first try: the peer writes only now, so the data
                    // comes with a new edge, after the WouldBlock.
                    assert_eq!(res.as_ref().unwrap_err().kind(), ErrorKind::WouldBlock);
                    std::io::Write::write_all(&mut &b, b"late").unwrap();
                }
                res
            }),
            "no read edge after the WouldBlock",
        )
        .await
        .unwrap();
        assert_eq!((got, calls), (b"late".to_vec(), 2));
    });
}
