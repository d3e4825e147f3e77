//! An adversarial review of `AsyncFd`: an edge that arrives between an operation and the
//! clearing of its readiness, a stale epoll entry a `dup` keeps alive after its number was
//! closed and reused, waits outside a registration's interest that only a hang-up or an
//! error may end, `Interrupted` in `async_io` and `try_io`, numbers epoll cannot take, and
//! `into_inner` under a task still waiting on the fd.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::io::{Interest, Ready};
use overlap::{block_on, spawn, AsyncFd, AsyncFdReadyGuard, Direction};
use support::{pipe, polled, read, run_in_child, settle, socketpair, within, write, Polled};

/// Only a lost wakeup gets near this.
const HANG: Duration = Duration::from_secs(20);

/// A new close-on-exec fd for the open file behind `fd`.
fn dup(fd: &OwnedFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer (the lowest fd number to use).
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    assert!(new >= 0, "{}", io::Error::last_os_error());
    // SAFETY: the fd was just created and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(new) }
}

/// Whether `fd` is an open fd of this process.
fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes no pointer; a closed number just fails with EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Writes into `fd` (non-blocking) until it says `WouldBlock`; returns how much went in.
fn fill(fd: RawFd) -> usize {
    let chunk = [7u8; 4096];
    let mut total = 0;
    loop {
        match write(fd, &chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("filling: {e}"),
        }
    }
}

/// Reads `fd` (non-blocking) until it says `WouldBlock`; returns what it read.
fn drain(fd: RawFd) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(fd, &mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return all,
            Err(e) => panic!("draining: {e}"),
        }
    }
}

#[test]
fn an_edge_between_a_short_read_and_its_clear_still_wakes_the_next_wait() {
    block_on(async {
        let (ours, peer) = socketpair();
        let fd = AsyncFd::new(ours).unwrap();
        write(peer.as_raw_fd(), b"ab").unwrap();
        let mut guard = within(HANG, fd.readable(), "first bytes").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(read(fd.as_raw_fd(), &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ab");
        // The peer writes after the read and before the clear: its edge waits in epoll,
        // not yet seen by the loop, so the clear (same tick) goes through...
        write(peer.as_raw_fd(), b"cd").unwrap();
        guard.clear_ready_after_short_io();
        assert!(fd.current_ready(Direction::Read).is_empty());
        // ...and the edge, seen at the next turn, wakes the next wait.
        let mut guard = within(HANG, fd.readable(), "the edge before the clear")
            .await
            .unwrap();
        let n = guard
            .try_io(|s| read(s.as_raw_fd(), &mut buf))
            .expect("readable");
        assert_eq!(&buf[..n.unwrap()], b"cd");
        // The same with the write inside the operation, just after it said WouldBlock:
        // try_io clears what it saw, and the new edge still comes.
        let res = guard.try_io(|s| {
            let res = read(s.as_raw_fd(), &mut buf);
            write(peer.as_raw_fd(), b"ef").unwrap();
            res
        });
        assert!(res.is_err(), "said WouldBlock, readiness cleared");
        assert!(fd.current_ready(Direction::Read).is_empty());
        let mut guard = within(HANG, fd.readable(), "the edge inside try_io")
            .await
            .unwrap();
        let n = guard
            .try_io(|s| read(s.as_raw_fd(), &mut buf))
            .expect("readable");
        assert_eq!(&buf[..n.unwrap()], b"ef");
    });
}

#[test]
fn a_stale_epoll_entry_kept_by_a_dup_never_readies_the_fds_that_reuse_its_number_and_slot() {
    run_in_child(
        "a_stale_epoll_entry_kept_by_a_dup_never_readies_the_fds_that_reuse_its_number_and_slot",
        || {
            block_on(async {
                let (old, old_peer) = socketpair();
                let number = old.as_raw_fd();
                let old_dup = dup(&old);
                let stale = AsyncFd::new(number).unwrap();
                // The owner closes the number, but the file lives on in its dup: epoll
                // keeps the entry (it goes with the file, not the number), under the token
                // of `stale`'s slot.
                drop(old);
                let (reuse, reuse_peer) = socketpair();
                assert_eq!(
                    reuse.as_raw_fd(),
                    number,
                    "the next fd takes the freed number"
                );
                let reuse = AsyncFd::new(reuse).unwrap();
                // The number is `reuse`'s now: `stale` going must not take it out of epoll.
                drop(stale);
                // `next` takes the slot `stale` freed, with a new generation.
                let (next, next_peer) = socketpair();
                let next = AsyncFd::new(next).unwrap();
                let dup_fd = AsyncFd::new(old_dup).unwrap();
                let mut reuse_read = polled(reuse.readable());
                let mut next_read = polled(next.readable());
                assert!(reuse_read.poll().is_pending() && next_read.poll().is_pending());
                // The old file becomes readable: its dup's entry and the stale one fire
                // in the same turn.
                write(old_peer.as_raw_fd(), b"old").unwrap();
                let mut guard = within(HANG, dup_fd.readable(), "the dup").await.unwrap();
                let mut buf = [0u8; 8];
                let n = guard
                    .try_io(|s| read(s.as_raw_fd(), &mut buf))
                    .expect("ready");
                assert_eq!(&buf[..n.unwrap()], b"old");
                settle().await;
                assert!(
                    !reuse_read.is_woken(),
                    "the stale event woke the number's new fd"
                );
                assert!(
                    !next_read.is_woken(),
                    "the stale event woke the slot's new fd"
                );
                assert!(reuse.current_ready(Direction::Read).is_empty());
                assert!(next.current_ready(Direction::Read).is_empty());
                // Each still hears its own file.
                write(reuse_peer.as_raw_fd(), b"new").unwrap();
                support::until(|| reuse_read.is_woken(), "the number's new fd").await;
                assert!(reuse_read.poll().is_ready());
                assert_eq!(drain(reuse.as_raw_fd()), b"new");
                assert!(!next_read.is_woken());
                write(next_peer.as_raw_fd(), b"next").unwrap();
                support::until(|| next_read.is_woken(), "the slot's new fd").await;
                assert!(next_read.poll().is_ready());
                assert_eq!(drain(next.as_raw_fd()), b"next");
            });
        },
    );
}

#[test]
fn a_write_wait_on_a_read_only_registration_ends_on_the_hang_up_only() {
    block_on(async {
        let (ours, peer) = socketpair();
        let filled = fill(ours.as_raw_fd());
        let fd = AsyncFd::with_interest(ours, Interest::READABLE).unwrap();
        let mut writer = polled(fd.writable());
        assert!(writer.poll().is_pending());
        // The peer takes everything: there is room again, but no write edge was asked for.
        assert_eq!(drain(peer.as_raw_fd()).len(), filled);
        settle().await;
        assert!(
            !writer.is_woken(),
            "woken by a write edge it did not register for"
        );
        assert!(fd.current_ready(Direction::Write).is_empty());
        // Reads go on as registered.
        write(peer.as_raw_fd(), b"r").unwrap();
        let mut guard = within(HANG, fd.readable(), "a read").await.unwrap();
        let mut buf = [0u8; 4];
        let n = guard
            .try_io(|s| read(s.as_raw_fd(), &mut buf))
            .expect("ready");
        assert_eq!(&buf[..n.unwrap()], b"r");
        assert!(!writer.is_woken(), "woken by a read edge");
        // The peer goes: the hang-up reaches every wait, whatever the interest.
        drop(peer);
        support::until(|| writer.is_woken(), "the write wait at the hang-up").await;
        assert_eq!(ended_with(&mut writer, "write"), Ready::WRITE_CLOSED);
        let err = write(fd.as_raw_fd(), b"w").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    });
}

/// What a wait that was woken ended with: polled again, it must be ready with a guard.
fn ended_with<'a, T, F>(wait: &mut Polled<F>, what: &str) -> Ready
where
    T: AsRawFd + 'a,
    F: Future<Output = io::Result<AsyncFdReadyGuard<'a, T>>>,
{
    assert!(wait.is_woken(), "the {what} wait was not woken");
    match wait.poll() {
        Poll::Ready(Ok(guard)) => guard.ready(),
        Poll::Ready(Err(e)) => panic!("the {what} wait failed: {e}"),
        Poll::Pending => panic!("the {what} wait did not end"),
    }
}

#[test]
fn a_pipe_write_ends_readers_leaving_is_an_error_to_waits_in_both_directions() {
    block_on(async {
        let (rx, tx) = pipe();
        fill(tx.as_raw_fd());
        let fd = AsyncFd::with_interest(tx, Interest::WRITABLE).unwrap();
        let mut writer = polled(fd.writable());
        let mut reader = polled(fd.readable());
        let mut error = polled(fd.ready(Interest::ERROR));
        assert!(writer.poll().is_pending());
        assert!(reader.poll().is_pending());
        assert!(error.poll().is_pending());
        // A full pipe whose reader leaves: EPOLLERR alone (no room, and no hang-up for a
        // write end).
        drop(rx);
        support::until(|| writer.is_woken(), "the write wait").await;
        assert_eq!(ended_with(&mut writer, "write"), Ready::ERROR);
        assert_eq!(ended_with(&mut reader, "read"), Ready::ERROR);
        assert_eq!(ended_with(&mut error, "error"), Ready::ERROR);
        let err = write(fd.as_raw_fd(), b"w").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    });
}

#[test]
fn interrupted_operations_are_retried_by_async_io_and_keep_a_guards_readiness() {
    block_on(async {
        let (ours, peer) = socketpair();
        let fd = AsyncFd::new(ours).unwrap();
        let calls = Cell::new(0);
        let mut buf = [0u8; 8];
        let reading = fd.async_io(Interest::READABLE, |s| {
            calls.set(calls.get() + 1);
            if calls.get() <= 3 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            read(s.as_raw_fd(), &mut buf)
        });
        let mut reading = polled(reading);
        // No edge yet: the operation is not even tried.
        assert!(reading.poll().is_pending());
        assert_eq!(calls.get(), 0);
        write(peer.as_raw_fd(), b"xyz").unwrap();
        support::until(|| reading.is_woken(), "the read edge").await;
        // One poll: three interruptions retried at once, without a wait between, then the
        // read.
        let Poll::Ready(n) = reading.poll() else {
            panic!("an interrupted operation waited for another edge");
        };
        assert_eq!(n.unwrap(), 3);
        drop(reading);
        assert_eq!(calls.get(), 4);
        assert_eq!(&buf[..3], b"xyz");
        // A guard's try_io hands `Interrupted` back, keeping the readiness it saw.
        write(peer.as_raw_fd(), b"q").unwrap();
        let mut guard = within(HANG, fd.readable(), "the next edge").await.unwrap();
        let res = guard.try_io(|_| Err::<(), _>(io::ErrorKind::Interrupted.into()));
        assert_eq!(
            res.expect("not WouldBlock").unwrap_err().kind(),
            io::ErrorKind::Interrupted
        );
        assert!(guard.ready().is_readable());
        drop(guard);
        assert!(fd.current_ready(Direction::Read).is_readable());
        assert_eq!(drain(fd.as_raw_fd()), b"q");
    });
}

#[test]
fn numbers_epoll_cannot_take_fail_with_the_kernels_error_and_leave_the_next_registration_whole() {
    block_on(async {
        // SAFETY: O_CLOEXEC | O_DIRECTORY open of a path; the fd is owned below.
        let dir = unsafe {
            libc::open(
                c"/".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(dir >= 0);
        // SAFETY: just opened, owned by nobody else.
        let dir = unsafe { OwnedFd::from_raw_fd(dir) };
        let (dir, err) = AsyncFd::try_new(dir).unwrap_err().into_parts();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "a directory");
        assert!(is_open(dir.as_raw_fd()), "handed back open");
        drop(dir);
        for number in [-1, RawFd::MAX] {
            let err = AsyncFd::new(number).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EBADF), "fd {number}");
        }
        // An fd registered twice in one runtime: EEXIST, and the first stays registered.
        let (ours, peer) = socketpair();
        let first = AsyncFd::new(ours.as_raw_fd()).unwrap();
        let err = AsyncFd::new(ours.as_raw_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        // None of the refusals took a slot or a number: the next registrations work, and
        // the first is still woken.
        let (other, other_peer) = socketpair();
        let other = AsyncFd::new(other).unwrap();
        write(peer.as_raw_fd(), b"1").unwrap();
        write(other_peer.as_raw_fd(), b"2").unwrap();
        within(HANG, first.readable(), "the first registration")
            .await
            .unwrap()
            .retain_ready();
        within(HANG, other.readable(), "the next registration")
            .await
            .unwrap()
            .retain_ready();
        assert_eq!(drain(ours.as_raw_fd()), b"1");
        assert_eq!(drain(other.as_raw_fd()), b"2");
        drop(first);
    });
}

#[test]
fn into_inner_under_a_waiting_task_wakes_it_and_hands_back_an_open_unregistered_fd() {
    block_on(async {
        let (ours, peer) = socketpair();
        let shared: Rc<RefCell<Option<AsyncFd<OwnedFd>>>> =
            Rc::new(RefCell::new(Some(AsyncFd::new(ours).unwrap())));
        let waiter_fd = shared.clone();
        let rounds = Rc::new(Cell::new(0));
        let seen = rounds.clone();
        // Waits through a poll function that looks into the shared cell on every poll.
        let waiter = spawn(async move {
            std::future::poll_fn(|cx| {
                seen.set(seen.get() + 1);
                match waiter_fd.borrow().as_ref() {
                    None => Poll::Ready("gone"),
                    Some(fd) => match fd.poll_read_ready(cx) {
                        Poll::Ready(_) => Poll::Ready("readable"),
                        Poll::Pending => Poll::Pending,
                    },
                }
            })
            .await
        });
        settle().await;
        assert_eq!(rounds.get(), 1, "the waiter polled once, then slept");
        let inner = shared.borrow_mut().take().unwrap().into_inner();
        assert_eq!(within(HANG, waiter, "the waiter").await.unwrap(), "gone");
        assert_eq!(rounds.get(), 2);
        // Open, and out of epoll: the same number registers again (no EEXIST) and works.
        assert!(is_open(inner.as_raw_fd()));
        let again = AsyncFd::new(inner).unwrap();
        write(peer.as_raw_fd(), b"again").unwrap();
        within(HANG, again.readable(), "registered again")
            .await
            .unwrap()
            .retain_ready();
        assert_eq!(drain(again.as_raw_fd()), b"again");
    });
}
