//! A user's own descriptors on the reactor, sketched as one would for tokio
//! (`io::unix::AsyncFd` around an `eventfd`, a `timerfd` and an `inotify` instance made with
//! libc, read with `readable().await` and the guard's `try_io`) and then written for
//! overlap. The eventfd is bumped from another thread; the timerfd ticks on the kernel's
//! clock; the inotify watch sees files created and renamed in a temp dir through
//! `overlap::fs` (skipped with a note where the kernel refuses inotify).

mod support;

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use overlap::io::unix::AsyncFd;
use overlap::io::Interest;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A libc call's result: `-1` becomes the OS error.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A fresh fd from a libc constructor, owned.
fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `read(2)` into `buf`; `WouldBlock` when there is nothing yet.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the whole call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads one 8-byte counter (eventfd, timerfd), waiting on the reactor until there is one.
async fn read_counter(fd: &AsyncFd<OwnedFd>) -> io::Result<u64> {
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; 8];
        match guard.try_io(|inner| read_fd(inner.as_raw_fd(), &mut buf)) {
            Ok(Ok(8)) => return Ok(u64::from_ne_bytes(buf)),
            Ok(Ok(n)) => return Err(io::Error::other(format!("short counter read: {n}"))),
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue, // readiness cleared by `try_io`
        }
    }
}

#[overlap::test]
async fn an_eventfd_bumped_from_another_thread_wakes_the_task() {
    let efd = owned(
        // SAFETY: eventfd takes no pointers.
        unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) },
    )
    .unwrap();
    let writer = efd.try_clone().unwrap();
    let fd = AsyncFd::with_interest(efd, Interest::READABLE).unwrap();
    let bumper = std::thread::spawn(move || {
        for n in [3u64, 4] {
            let bytes = n.to_ne_bytes();
            // SAFETY: `bytes` is valid for reads of its 8 bytes.
            let w = unsafe { libc::write(writer.as_raw_fd(), bytes.as_ptr().cast(), 8) };
            assert_eq!(w, 8);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let mut total = 0;
    while total < 7 {
        total += within(HANG, read_counter(&fd), "eventfd").await.unwrap();
    }
    assert_eq!(total, 7);
    bumper.join().unwrap();
    // Drained: nothing more is ready, the async read would wait.
    let mut buf = [0u8; 8];
    let err = read_fd(fd.as_raw_fd(), &mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[overlap::test]
async fn a_timerfd_ticks_through_async_io_and_counts_its_expirations() {
    let tfd = owned(
        // SAFETY: timerfd_create takes no pointers.
        unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        },
    )
    .unwrap();
    let every = libc::timespec {
        tv_sec: 0,
        tv_nsec: 2_000_000,
    };
    let spec = libc::itimerspec {
        it_interval: every,
        it_value: every,
    };
    // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
    cvt(unsafe { libc::timerfd_settime(tfd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) }).unwrap();
    let fd = AsyncFd::new(tfd).unwrap();
    // tokio's `fd.async_io(Interest::READABLE, |inner| ..)`: the same call here.
    let mut expirations = 0;
    while expirations < 5 {
        let n = within(
            HANG,
            fd.async_io(Interest::READABLE, |inner| {
                let mut buf = [0u8; 8];
                read_fd(inner.as_raw_fd(), &mut buf).map(|_| u64::from_ne_bytes(buf))
            }),
            "timerfd",
        )
        .await
        .unwrap();
        assert!(n >= 1, "a timerfd read counts at least one expiration");
        expirations += n;
    }
    // Disarm, drain, and the fd goes quiet: a read would block.
    let off: libc::itimerspec =
        // SAFETY: an all-zero itimerspec is valid (it disarms the timer).
        unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    cvt(unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &off, std::ptr::null_mut()) }).unwrap();
    // Drained through the guard: its `try_io` seeing `WouldBlock` is what clears the
    // readiness the reactor cached (a raw `read` past the `AsyncFd` would leave it set, and
    // `readable()` would return at once, as in tokio).
    loop {
        let mut guard = fd.readable().await.unwrap();
        let mut buf = [0u8; 8];
        if guard
            .try_io(|inner| read_fd(inner.as_raw_fd(), &mut buf))
            .is_err()
        {
            break;
        }
    }
    let quiet = overlap::time::timeout(Duration::from_millis(20), fd.readable()).await;
    assert!(quiet.is_err(), "no more expirations once disarmed");
}

/// One inotify event: its mask and the name in the watched directory.
#[derive(Debug, PartialEq)]
struct Event {
    mask: u32,
    name: OsString,
}

/// Reads whatever events are queued, waiting for at least one.
async fn read_events(fd: &AsyncFd<OwnedFd>) -> io::Result<Vec<Event>> {
    let mut buf = vec![0u8; 4096];
    let n = fd
        .async_io(Interest::READABLE, |inner| {
            read_fd(inner.as_raw_fd(), &mut buf)
        })
        .await?;
    let mut events = Vec::new();
    let head = std::mem::size_of::<libc::inotify_event>();
    let mut at = 0;
    while at + head <= n {
        // SAFETY: the kernel wrote a whole `inotify_event` at `at` (it never splits one);
        // `read_unaligned` copes with the byte buffer's alignment.
        let ev: libc::inotify_event =
            unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
        let name = &buf[at + head..at + head + ev.len as usize];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        events.push(Event {
            mask: ev.mask,
            name: OsString::from_vec(name[..end].to_vec()),
        });
        at += head + ev.len as usize;
    }
    Ok(events)
}

#[overlap::test]
async fn an_inotify_watch_sees_files_written_and_renamed_into_a_dir() {
    // SAFETY: inotify_init1 takes no pointers.
    let ifd = match owned(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) }) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("skipped: inotify unavailable here ({e})");
            return;
        }
    };
    let dir = TempDir::new("user2-inotify");
    let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    let mask = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_DELETE;
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    if let Err(e) = cvt(unsafe { libc::inotify_add_watch(ifd.as_raw_fd(), path.as_ptr(), mask) }) {
        eprintln!("skipped: inotify_add_watch refused ({e})");
        return;
    }
    let fd = AsyncFd::new(ifd).unwrap();

    // What a "drop a file in the inbox" tool does: write to a temporary name, rename it.
    let writer = async {
        overlap::fs::write(dir.join("incoming.part"), b"payload").await?;
        overlap::fs::rename(dir.join("incoming.part"), dir.join("incoming.txt")).await?;
        overlap::fs::remove_file(dir.join("incoming.txt")).await
    };
    within(HANG, writer, "writer").await.unwrap();

    let want = [
        (libc::IN_CLOSE_WRITE, "incoming.part"),
        (libc::IN_MOVED_TO, "incoming.txt"),
        (libc::IN_DELETE, "incoming.txt"),
    ];
    let mut got = Vec::new();
    while got.len() < want.len() {
        got.extend(
            within(HANG, read_events(&fd), "inotify events")
                .await
                .unwrap(),
        );
    }
    let got: Vec<(u32, String)> = got
        .into_iter()
        .map(|e| (e.mask, e.name.to_string_lossy().into_owned()))
        .collect();
    let want: Vec<(u32, String)> = want.iter().map(|&(m, n)| (m, n.to_string())).collect();
    assert_eq!(got, want);
}

#[overlap::test]
async fn a_blocking_fd_is_accepted_but_the_docs_say_to_make_it_non_blocking() {
    // As tokio's, `AsyncFd::new` does not change the fd's flags: a blocking eventfd would
    // block the loop in `read`. The user checks the flag, as the README says.
    // SAFETY: eventfd takes no pointers.
    let efd = owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) }).unwrap();
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt(unsafe { libc::fcntl(efd.as_raw_fd(), libc::F_GETFL) }).unwrap();
    assert_eq!(flags & libc::O_NONBLOCK, 0);
    let fd = AsyncFd::new(efd).unwrap();
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) }).unwrap();
    assert_eq!(flags & libc::O_NONBLOCK, 0, "left as it was");
}
