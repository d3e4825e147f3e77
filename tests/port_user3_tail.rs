//! A user's log tailer (`tail -f` with truncation), sketched as one would for tokio
//! (`fs::OpenOptions` in append mode for the writer; `fs::File` in a `BufReader` read with
//! `read_line` for the follower, which sleeps on an inotify fd wrapped in
//! `io::unix::AsyncFd` between bursts, and starts over from offset 0 when the file shrinks
//! below what it has read) and then written for overlap.
//!
//! A writer task appends lines in bursts, some split across two flushed writes, and once
//! truncates the file with `set_len(0)` and goes on writing. The test checks that the
//! follower sees every line exactly once, in order, whole, across the truncation.
//!
//! The two tasks hand off around the truncation (the writer waits until the follower has
//! read everything before truncating, and until it has noticed the truncation before
//! writing again): without that, any tailer that detects truncation by size, tokio-based or
//! `tail -F`, can miss lines or read from the middle of new ones. Nothing else is timed.
//!
//! What the port changed, against tokio: `AsyncFd`'s guard hands `try_io` the inner value
//! (not the `AsyncFd`); `BufReader`, `read_line` and `seek` are futures-io's, re-exported
//! by `overlap::io` (the same calls); tokio's `lines().next_line()` returning `None` at the
//! end is the `read_line` returning 0 here, and a tailer wants `read_line` in both, since a
//! partial last line must wait for its newline.

mod support;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{File, OpenOptions};
use overlap::io::unix::AsyncFd;
use overlap::io::{self, AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, SeekFrom};
use overlap::sync::watch;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(30);

/// Raw inotify, as a user would wrap it: only this module touches libc.
mod sys {
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// An inotify instance, non-blocking.
    pub struct Inotify(OwnedFd);

    impl Inotify {
        pub fn new() -> io::Result<Inotify> {
            // SAFETY: inotify_init1 takes no pointers.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
            Ok(Inotify(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// Watches `path` for writes and truncations (`IN_MODIFY`).
        pub fn watch_modify(&self, path: &Path) -> io::Result<()> {
            let c = CString::new(path.as_os_str().as_bytes())?;
            // SAFETY: `c` is a NUL-terminated path that outlives the call.
            let wd =
                unsafe { libc::inotify_add_watch(self.0.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
            if wd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Reads and throws away every queued event; `WouldBlock` if there was none.
        /// Returns how many bytes of events there were.
        pub fn drain(&self) -> io::Result<usize> {
            let mut buf = [0u8; 4096];
            let mut total = 0;
            loop {
                // SAFETY: `buf` is valid for writes of its length for the whole call.
                let n =
                    unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    total += n as usize;
                    continue;
                }
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock if total > 0 => Ok(total),
                    _ => Err(err),
                };
            }
        }
    }

    impl AsRawFd for Inotify {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }
}

/// What the follower has done, for the writer to wait on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Progress {
    lines: usize,
    restarts: usize,
}

/// Follows `path` until it reads the line `END`, pushing each whole line to `seen`.
async fn follow(
    path: &Path,
    seen: Rc<RefCell<Vec<String>>>,
    progress: watch::Sender<Progress>,
) -> io::Result<()> {
    let inotify = AsyncFd::new(sys::Inotify::new()?)?;
    // Watch first, then open: a write between the two is not missed.
    inotify.get_ref().watch_modify(path)?;
    let mut reader = BufReader::new(File::open(path).await?);
    let mut pos = 0u64;
    let mut line = String::new();
    loop {
        let n = reader.read_line(&mut line).await?;
        pos += n as u64;
        if line.ends_with('\n') {
            line.pop();
            if line == "END" {
                return Ok(());
            }
            seen.borrow_mut().push(std::mem::take(&mut line));
            progress.send_modify(|p| p.lines += 1);
            continue;
        }
        if n > 0 {
            continue; // a partial line: read on, it may be complete already
        }
        // At the end. Shorter than what was read: truncated, start over.
        if reader.get_ref().metadata().await?.len() < pos {
            reader.seek(SeekFrom::Start(0)).await?;
            pos = 0;
            line.clear();
            progress.send_modify(|p| p.restarts += 1);
            continue;
        }
        // Sleep until the file changes.
        let mut guard = inotify.readable().await?;
        match guard.try_io(|i| i.drain()) {
            Ok(res) => {
                res?;
            }
            Err(_would_block) => continue,
        }
    }
}

/// Appends lines `range` in bursts of 16, flushing after each; every 7th line goes out in
/// two writes, flushed apart, so the follower may see half a line first.
async fn append_lines(log: &mut File, range: std::ops::Range<usize>) -> io::Result<()> {
    for i in range {
        let text = format!("line {i:05} {}\n", "*".repeat(i % 61));
        if i % 7 == 0 {
            let (a, b) = text.split_at(text.len() / 2);
            log.write_all(a.as_bytes()).await?;
            log.flush().await?;
            overlap::task::yield_now().await;
            log.write_all(b.as_bytes()).await?;
        } else {
            log.write_all(text.as_bytes()).await?;
        }
        if i % 16 == 15 {
            log.flush().await?;
            overlap::task::yield_now().await;
        }
    }
    log.flush().await
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("line {i:05} {}", "*".repeat(i % 61)))
        .collect()
}

#[overlap::test]
async fn the_follower_sees_every_line_once_in_order_across_a_truncation() {
    let dir = TempDir::new("tail");
    let path = dir.join("app.log");
    std::fs::write(&path, "").unwrap();
    if let Err(e) = sys::Inotify::new() {
        eprintln!("skipped: the kernel refuses inotify here ({e})");
        return;
    }
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (progress, mut watched) = watch::channel(Progress::default());
    let follower = overlap::spawn({
        let (path, seen) = (path.clone(), seen.clone());
        async move { follow(&path, seen, progress).await }
    });
    // Before the truncation: enough to span several of the `File`'s 64 KiB reads.
    const BEFORE: usize = 3000;
    const AFTER: usize = 500;
    let truncated = Rc::new(Cell::new(false));
    let writer = overlap::spawn({
        let (path, truncated) = (path.clone(), truncated.clone());
        async move {
            let mut log = OpenOptions::new().append(true).open(&path).await?;
            append_lines(&mut log, 0..BEFORE).await?;
            watched.wait_for(|p| p.lines == BEFORE).await.ok();
            log.set_len(0).await?;
            truncated.set(true);
            watched.wait_for(|p| p.restarts == 1).await.ok();
            append_lines(&mut log, BEFORE..BEFORE + AFTER).await?;
            log.write_all(b"END\n").await?;
            log.flush().await?;
            io::Result::Ok(log.metadata().await?.len())
        }
    });
    let after_len = within(HANG, writer, "the writer").await.unwrap().unwrap();
    within(HANG, follower, "the follower")
        .await
        .unwrap()
        .unwrap();
    assert!(truncated.get());
    let want = expected(0..BEFORE + AFTER);
    let seen = seen.borrow();
    assert_eq!(seen.len(), want.len(), "lines seen");
    if let Some(i) = (0..want.len()).find(|&i| seen[i] != want[i]) {
        panic!("line {i}: saw {:?}, expected {:?}", seen[i], want[i]);
    }
    // The file holds only what came after the truncation, appended from offset 0.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len() as u64, after_len);
    let mut tail = expected(BEFORE..BEFORE + AFTER).join("\n");
    tail.push_str("\nEND\n");
    assert_eq!(text, tail);
}
