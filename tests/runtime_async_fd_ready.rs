//! `AsyncFd`'s tokio-style readiness calls: `with_interest` (one direction registered),
//! `try_new` (the value back when epoll refuses the fd), `ready` for several directions, and
//! the `*_mut` guards.

mod support;

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{Interest, Ready};
use overlap::{block_on, AsyncFd, Direction};
use support::{pipe, settle, socketpair, within};

const HANG: Duration = Duration::from_secs(30);

/// A write-only registration hears no read events: data arriving on the socket leaves its
/// read readiness unknown, where a full registration sees it.
#[test]
fn with_interest_writable_registers_one_direction() {
    block_on(async {
        let (mine, peer) = socketpair();
        let (full, full_peer) = socketpair();
        let fd = AsyncFd::with_interest(mine, Interest::WRITABLE).unwrap();
        let full = AsyncFd::new(full).unwrap();
        assert!(within(HANG, fd.writable(), "writable")
            .await
            .unwrap()
            .ready()
            .is_writable());
        // The peers stay open: a hang-up is reported whatever the interest.
        let (mut peer, mut full_peer) = (File::from(peer), File::from(full_peer));
        peer.write_all(b"x").unwrap();
        full_peer.write_all(b"x").unwrap();
        // The guard is dropped: the readiness it saw stays.
        let _ = within(HANG, full.readable(), "full registration readable")
            .await
            .unwrap();
        settle().await;
        let r = fd.current_ready(Direction::Read);
        assert!(r.is_empty(), "{r:?}");
    });
}

#[test]
fn with_interest_writable_on_a_pipe_write_end() {
    block_on(async {
        let (rx, tx) = pipe();
        let fd = AsyncFd::with_interest(File::from(tx), Interest::WRITABLE).unwrap();
        let chunk = [5u8; 4096];
        let mut filled = 0;
        loop {
            let mut guard = within(HANG, fd.writable(), "room").await.unwrap();
            match guard.try_io(|mut f| f.write(&chunk)) {
                Ok(n) => filled += n.unwrap(),
                Err(_would_block) => break,
            }
        }
        assert!(filled > 0);
        assert!(fd.writable().now_or_never().is_none(), "the pipe is full");
        let mut rx = File::from(rx);
        let mut buf = vec![0u8; filled];
        rx.read_exact(&mut buf).unwrap();
        let guard = within(HANG, fd.writable(), "room again").await.unwrap();
        assert!(guard.ready().is_writable());
    });
}

#[test]
fn try_new_gives_back_what_epoll_refuses() {
    block_on(async {
        let file = File::open("/proc/self/status").unwrap();
        let (file, err) = AsyncFd::try_new(file).unwrap_err().into_parts();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(file.metadata().unwrap().is_file(), "still open");
        let res = AsyncFd::try_with_interest(file, Interest::READABLE);
        let err: io::Error = res.unwrap_err().into();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    });
    let (a, _b) = socketpair();
    let (a, err) = AsyncFd::try_new(a).unwrap_err().into_parts();
    assert_eq!(err.kind(), ErrorKind::Other, "outside a runtime");
    let _: OwnedFd = a;
}

/// An inner type whose I/O takes `&mut self`, as the `*_mut` guards lend it.
struct Counted {
    sock: File,
    reads: usize,
}

impl std::os::fd::AsRawFd for Counted {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

#[test]
fn mut_guards_lend_the_inner_value_mutably() {
    block_on(async {
        let (mine, peer) = socketpair();
        let mut fd = AsyncFd::new(Counted {
            sock: File::from(mine),
            reads: 0,
        })
        .unwrap();
        let mut peer = File::from(peer);
        let mut guard = within(HANG, fd.writable_mut(), "writable").await.unwrap();
        assert_eq!(guard.try_io(|c| c.sock.write(b"hi")).unwrap().unwrap(), 2);
        peer.write_all(b"yo").unwrap();
        let mut buf = [0u8; 4];
        let n = loop {
            let mut guard = within(HANG, fd.readable_mut(), "readable").await.unwrap();
            let res = guard.try_io(|c| {
                c.reads += 1;
                c.sock.read(&mut buf)
            });
            if let Ok(n) = res {
                break n.unwrap();
            }
        };
        assert_eq!(&buf[..n], b"yo");
        let both = Interest::READABLE | Interest::WRITABLE;
        let mut guard = within(HANG, fd.ready_mut(both), "ready").await.unwrap();
        assert!(guard.ready().is_writable());
        guard.get_inner_mut().reads += 10;
        assert!(fd.get_ref().reads >= 11);
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    });
}

/// After a wait for both directions, a read that says `WouldBlock` clears only the read
/// readiness: the write readiness seen stays.
#[test]
fn clear_ready_matching_keeps_the_other_direction() {
    block_on(async {
        let (mine, _peer) = socketpair();
        let fd = AsyncFd::new(File::from(mine)).unwrap();
        let _ = within(HANG, fd.writable(), "writable").await.unwrap();
        let both = Interest::READABLE | Interest::WRITABLE;
        let mut guard = fd.ready(both).await.unwrap();
        assert!(guard.ready().is_writable() && !guard.ready().is_readable());
        guard.clear_ready_matching(Ready::READABLE);
        assert!(guard.ready().is_writable());
        assert!(
            fd.writable().now_or_never().is_some(),
            "write readiness kept"
        );
        let mut guard = fd.ready(Interest::WRITABLE).await.unwrap();
        guard.clear_ready_matching(Ready::WRITABLE);
        assert!(guard.ready().is_empty());
        assert!(fd.ready(both).now_or_never().is_none(), "nothing left");
    });
}
