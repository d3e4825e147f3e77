//! `AsyncFd` on real kernel fds: eventfds, pipes and socket pairs.

mod support;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use overlap::{block_on, spawn, yield_now, AsyncFd};
use support::{eventfd, eventfd_add, pipe, read, socketpair, write};

/// Reads up to `buf.len()` bytes, waiting for readiness; 0 means EOF.
async fn read_some(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> io::Result<usize> {
    fd.async_io_read(|inner| read(inner.as_raw_fd(), buf)).await
}

async fn write_all(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = fd
            .async_io_write(|inner| write(inner.as_raw_fd(), data))
            .await?;
        data = &data[n..];
    }
    Ok(())
}

#[test]
fn eventfd_wakes_a_waiting_task() {
    block_on(async {
        let efd = AsyncFd::new(eventfd()).unwrap();
        let raw = efd.as_raw_fd();
        let waiter = spawn(async move {
            let mut buf = [0u8; 8];
            read_some(&efd, &mut buf).await.unwrap();
            u64::from_ne_bytes(buf)
        });
        yield_now().await; // the waiter parks on the fd
        assert!(!waiter.is_finished());
        write(raw, &5u64.to_ne_bytes()).unwrap();
        assert_eq!(waiter.await.unwrap(), 5);
    });
}

#[test]
fn pipe_carries_bytes_and_eof() {
    block_on(async {
        let (r, w) = pipe();
        let r = AsyncFd::new(r).unwrap();
        let w = AsyncFd::new(w).unwrap();
        let writer = spawn(async move {
            write_all(&w, b"hello, pipe").await.unwrap();
            // Dropping `w` closes the write end: the reader sees EOF.
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let n = read_some(&r, &mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, b"hello, pipe");
        // A read after EOF returns 0 again instead of hanging.
        assert_eq!(read_some(&r, &mut buf).await.unwrap(), 0);
    });
}

#[test]
fn reader_and_writer_tasks_share_one_fd() {
    block_on(async {
        let (a, b) = socketpair();
        let a = Rc::new(AsyncFd::new(a).unwrap());
        let b = AsyncFd::new(b).unwrap();
        // The peer echoes everything back.
        let echo = spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                let n = read_some(&b, &mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                write_all(&b, &buf[..n]).await.unwrap();
            }
        });
        const TOTAL: usize = 1 << 20;
        let a2 = a.clone();
        let reader = spawn(async move {
            let mut got = Vec::with_capacity(TOTAL);
            let mut buf = [0u8; 4096];
            while got.len() < TOTAL {
                let n = read_some(&a2, &mut buf).await.unwrap();
                assert_ne!(n, 0);
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
        // Writing 1 MiB needs the reader to drain concurrently, or both sides block.
        write_all(&a, &data).await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got, data);
        // SAFETY: shutting down the write side of a socket we own.
        unsafe { libc::shutdown(a.as_raw_fd(), libc::SHUT_WR) };
        echo.await.unwrap();
    });
}

#[test]
fn eight_mib_through_a_1k_buffer_loses_no_edge() {
    block_on(async {
        let (r, w) = socketpair();
        let r = AsyncFd::new(r).unwrap();
        let w = AsyncFd::new(w).unwrap();
        const TOTAL: usize = 8 << 20;
        let writer = spawn(async move {
            let chunk: Vec<u8> = (0..65536).map(|i| (i % 253) as u8).collect();
            let mut sent = 0;
            while sent < TOTAL {
                write_all(&w, &chunk).await.unwrap();
                sent += chunk.len();
            }
        });
        let mut buf = [0u8; 1024];
        let mut total = 0usize;
        let mut pos = 0usize;
        while total < TOTAL {
            let n = read_some(&r, &mut buf).await.unwrap();
            assert!(n > 0, "early EOF after {total} bytes");
            for &b in &buf[..n] {
                assert_eq!(b, (pos % 65536 % 253) as u8);
                pos += 1;
            }
            total += n;
        }
        writer.await.unwrap();
        assert_eq!(total, TOTAL);
    });
}

#[test]
fn busy_tasks_do_not_starve_an_fd() {
    block_on(async {
        let stop = Rc::new(Cell::new(false));
        let spins = Rc::new(Cell::new(0u64));
        // Tasks that never stop waking themselves: the run queue never empties.
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                let spins = spins.clone();
                spawn(async move {
                    while !stop.get() {
                        spins.set(spins.get() + 1);
                        yield_now().await;
                    }
                })
            })
            .collect();
        let efd = AsyncFd::new(eventfd()).unwrap();
        let raw = efd.as_raw_fd();
        let waiter = spawn(async move {
            // An eventfd sums writes that land between two reads, so count the values.
            let mut served = 0;
            let mut buf = [0u8; 8];
            while served < 50 {
                read_some(&efd, &mut buf).await.unwrap();
                served += u64::from_ne_bytes(buf);
            }
            served
        });
        // Another thread feeds the eventfd; the waiter must be served while busy tasks spin.
        let feeder = std::thread::spawn(move || {
            for _ in 0..50 {
                write(raw, &1u64.to_ne_bytes()).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        assert_eq!(waiter.await.unwrap(), 50);
        feeder.join().unwrap();
        stop.set(true);
        for b in busy {
            b.await.unwrap();
        }
        assert!(spins.get() > 0);
    });
}

#[test]
fn budget_makes_an_always_ready_fd_yield() {
    block_on(async {
        let efd = AsyncFd::new(eventfd()).unwrap();
        eventfd_add(efd.get_ref(), 1);
        let _seen = efd.readable().await.unwrap(); // the edge has reached the slot
        let other_ran = Rc::new(Cell::new(false));
        let o = other_ran.clone();
        let other = spawn(async move { o.set(true) });
        // Readiness is never cleared, so every wait is Ready: only the budget makes it yield.
        let mut waits = 0;
        while !other_ran.get() {
            let _guard = efd.readable().await.unwrap();
            waits += 1;
            assert!(waits < 10_000, "the other task never ran");
        }
        other.await.unwrap();
        assert!(overlap::metrics().budget_exhausted >= 1);
    });
}

#[test]
fn async_fd_outside_runtime_is_an_error() {
    let err = AsyncFd::new(eventfd()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(
        err.to_string().contains("outside an overlap runtime"),
        "{err}"
    );
}

#[test]
fn regular_file_is_refused_with_eperm() {
    block_on(async {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let err = AsyncFd::new(f).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    });
}

#[test]
fn into_inner_deregisters_and_keeps_fd_open() {
    block_on(async {
        let (r, w) = pipe();
        let r = AsyncFd::new(r).unwrap();
        assert_eq!(overlap::metrics().registered_fds, 1);
        let owned = r.into_inner();
        assert_eq!(overlap::metrics().registered_fds, 0);
        write(w.as_raw_fd(), b"x").unwrap();
        let mut b = [0u8; 1];
        assert_eq!(read(owned.as_raw_fd(), &mut b).unwrap(), 1);
    });
}

#[test]
fn fd_number_reuse_never_wakes_the_wrong_task() {
    block_on(async {
        for _ in 0..200 {
            let (r1, w1) = pipe();
            let raw = r1.as_raw_fd();
            let a = AsyncFd::new(r1).unwrap();
            write(w1.as_raw_fd(), b"stale").unwrap();
            drop(a); // closes r1; its event may still be queued
            let (r2, _w2) = pipe();
            // The kernel hands out the lowest free number, very likely `raw` again.
            let reused = r2.as_raw_fd() == raw;
            let b = AsyncFd::new(r2).unwrap();
            // Let the reactor turn: any event still queued for the old fd must not land here.
            yield_now().await;
            yield_now().await;
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(
                b.poll_read_ready(&mut cx).is_pending(),
                "empty pipe reported readable (reused={reused})"
            );
            drop(w1);
        }
    });
}

#[test]
fn abort_while_waiting_on_an_fd_drops_the_future_and_deregisters() {
    block_on(async {
        let (r, _w) = pipe();
        let (flag, dropped) = support::DropFlag::new();
        let h = spawn(async move {
            let _flag = flag;
            let r = AsyncFd::new(r).unwrap();
            let mut buf = [0u8; 8];
            read_some(&r, &mut buf).await
        });
        while overlap::metrics().registered_fds == 0 {
            yield_now().await; // until the task is parked on its fd
        }
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert!(dropped.get(), "the future was not dropped");
        assert_eq!(
            overlap::metrics().registered_fds,
            0,
            "its fd was not deregistered"
        );
    });
}

#[test]
fn clearing_with_an_old_event_keeps_a_newer_edge() {
    block_on(async {
        let (r, w) = socketpair();
        let r = AsyncFd::new(r).unwrap();
        write(w.as_raw_fd(), b"first").unwrap();
        let mut guard = r.readable().await.unwrap();
        // A new edge arrives while the guard still holds the readiness it saw.
        write(w.as_raw_fd(), b"second").unwrap();
        yield_now().await; // the reactor turns and records the edge
        yield_now().await;
        guard.clear_ready(); // stale: must not erase the newer edge
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            r.poll_read_ready(&mut cx).is_ready(),
            "a newer edge was lost"
        );
        // Clearing with the current event does clear it.
        let mut guard = r.readable().await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(read(r.as_raw_fd(), &mut buf).unwrap(), 11);
        guard.clear_ready();
        assert!(r.poll_read_ready(&mut cx).is_pending());
    });
}

#[test]
fn dropping_a_shared_async_fd_wakes_the_tasks_waiting_on_it() {
    use std::cell::RefCell;
    use std::task::Poll;
    block_on(async {
        // Two tasks share one socket end, one waiting to read and one (its buffer full) to
        // write; a third drops it. Both must wake and see it gone.
        let (a, _b) = socketpair();
        let shared = Rc::new(RefCell::new(Some(AsyncFd::new(a).unwrap())));
        let fill = [0u8; 4096];
        while write(shared.borrow().as_ref().unwrap().as_raw_fd(), &fill).is_ok() {}
        let waiters: Vec<_> = [true, false]
            .into_iter()
            .map(|reads| {
                let shared = shared.clone();
                spawn(std::future::poll_fn(move |cx| match &*shared.borrow() {
                    None => Poll::Ready("gone"),
                    Some(fd) if reads => fd.poll_read_ready(cx).map(|_| "readable"),
                    Some(fd) => fd.poll_write_ready(cx).map(|_| "writable"),
                }))
            })
            .collect();
        yield_now().await; // both park on the fd
        assert!(waiters.iter().all(|w| !w.is_finished()));
        drop(shared.borrow_mut().take());
        for w in waiters {
            let seen = support::within(
                std::time::Duration::from_secs(30),
                w,
                "a waiter was never woken",
            )
            .await;
            assert_eq!(seen.unwrap(), "gone");
        }
    });
}

/// A waker that counts how many of its kind are alive.
struct CountedWaker(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl std::task::Wake for CountedWaker {
    fn wake(self: std::sync::Arc<Self>) {}
}

impl Drop for CountedWaker {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Polled with a new waker each time (a `FuturesUnordered` made afresh in a select loop)
/// while no edge comes, an fd keeps a bounded number of them: displaced waiters are kept
/// so that all are woken, but not without limit.
#[test]
fn displaced_wakers_stay_bounded_without_an_edge() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    block_on(async {
        let efd = AsyncFd::new(eventfd()).unwrap();
        let live = Arc::new(AtomicUsize::new(0));
        for _ in 0..10_000 {
            live.fetch_add(1, Ordering::SeqCst);
            let waker = std::task::Waker::from(Arc::new(CountedWaker(live.clone())));
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(efd.poll_read_ready(&mut cx).is_pending());
        }
        let kept = live.load(Ordering::SeqCst);
        // 1,025 per fd, and at most 4,096 set aside until the loop's next turn.
        assert!(kept <= 1025 + 4096, "{kept} wakers kept for one idle fd");
    });
}
