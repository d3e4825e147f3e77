//! Behaviours checked by tokio's Unix pipe tests (`tests/net_unix_pipe.rs`) and the
//! contracts in the docs of its `net::unix::pipe` module, ported to `overlap::pipe`:
//!
//! - FIFO opening: `fifo_simple_send`, `fifo_simple_send_sender_first`,
//!   `fifo_resilient_reader`, `open_detects_not_a_fifo` (also a Unix socket's path, which
//!   `open(2)` refuses with `ENXIO` as for a missing reader). Tokio's `read_write(true)` is
//!   `overlap::pipe::OpenOptions` (`pipe_open_options.rs`); here the FIFO is opened `O_RDWR`
//!   with std and handed to `from_owned_fd`, which takes it for either end, as well.
//! - Taking fds in: `from_file`, `from_file_detects_not_a_fifo`,
//!   `from_file_detects_wrong_access_mode`, `from_file_sets_nonblock`,
//!   `anon_pipe_from_owned_fd` (a `File` goes in through `OwnedFd::from`); also `O_PATH` fds.
//! - Giving fds out: `anon_pipe_into_nonblocking_fd` (overlap's `into_owned_fd`),
//!   `anon_pipe_into_blocking_fd`, `anon_pipe_spawn_echo`.
//! - `try_*` calls: `try_read_write`, `try_read_write_vectored`, `anon_pipe_simple_send`.
//! - From the module docs: end of file only once every writer is gone, `BrokenPipe` (not
//!   SIGPIPE) for a writer whose reader leaves while it waits, writes far bigger than the
//!   pipe, zero-length I/O, `O_NONBLOCK | O_CLOEXEC` on every end, `PIPE_BUF` atomicity, and
//!   a FIFO's writer or reader going on after its peer is replaced.
//!
//! Skipped: `fifo_multiple_writes` (in `pipe_fifo_writers.rs`), `try_read_buf` (`BufMut`),
//! `try_io_readable`/`try_io_writable` (no `try_io` on pipe ends; `WouldBlock` clearing the
//! readiness is in `pipe_try_io.rs`), and `OpenOptions::unchecked` (the type is always
//! checked).

mod support;

use std::ffi::CString;
use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{pipe, Receiver, Sender};
use overlap::process::Command;
use overlap::{block_on, spawn};
use support::{pattern, settle, within, TempDir};

const HANG: Duration = Duration::from_secs(10);
const DATA: &[u8] = b"some bytes for the other end of the pipe";

/// A FIFO named `name` in `dir`.
fn fifo(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.join(name);
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path
}

/// Awaits `fut`, failing the test if it takes longer than [`HANG`].
async fn soon<F: std::future::Future>(fut: F, what: &str) -> F::Output {
    within(HANG, fut, what).await
}

/// `path` opened with std (blocking unless `flags` says otherwise), as an `OwnedFd`.
fn std_open(path: &Path, read: bool, write: bool, flags: libc::c_int) -> OwnedFd {
    std::fs::OpenOptions::new()
        .read(read)
        .write(write)
        .custom_flags(flags)
        .open(path)
        .unwrap()
        .into()
}

/// Whether `fd` is non-blocking and whether it is close-on-exec.
fn flags(fd: RawFd) -> (bool, bool) {
    // SAFETY: F_GETFL and F_GETFD take no pointer argument.
    let (fl, fd_flags) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    };
    assert!(fl >= 0 && fd_flags >= 0, "{}", io::Error::last_os_error());
    (fl & libc::O_NONBLOCK != 0, fd_flags & libc::FD_CLOEXEC != 0)
}

// --- FIFO opening ---

#[test]
fn a_fifo_reader_opened_before_any_writer_waits_rather_than_seeing_eof() {
    let dir = TempDir::new("tokio-pipe-first");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let mut rx = Receiver::open(&path).unwrap();
        // No writer has ever opened it: `read(2)` would say 0, but that is no end of file.
        assert_eq!(
            rx.try_read(&mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let reader = spawn(async move {
            let mut buf = vec![0u8; DATA.len()];
            rx.read_exact(&mut buf).await.map(|()| buf)
        });
        settle().await;
        assert!(!reader.is_finished(), "read ended with no writer yet");
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(DATA).await.unwrap();
        let got = soon(reader, "reader never woke").await.unwrap();
        assert_eq!(got.unwrap(), DATA);
    });
}

#[test]
fn a_read_write_sender_opens_without_a_reader_and_never_sees_broken_pipe() {
    let dir = TempDir::new("tokio-pipe-rdwr-tx");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let err = Sender::open(&path).unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENXIO), "{err}");
        // Tokio's `read_write(true)`: the sender is a reader too, so the open succeeds.
        let mut tx = Sender::from_owned_fd(std_open(&path, true, true, 0)).unwrap();
        assert_eq!(flags(tx.as_raw_fd()), (true, true));
        tx.write_all(DATA).await.unwrap();
        let mut rx = Receiver::open(&path).unwrap();
        let mut got = vec![0u8; DATA.len()];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(got, DATA);
        drop(rx);
        // Its own read side keeps the FIFO open: writes still go in.
        soon(tx.write_all(b"still open"), "write hung")
            .await
            .unwrap();
    });
}

#[test]
fn a_read_write_receiver_sees_no_eof_between_writers() {
    let dir = TempDir::new("tokio-pipe-rdwr-rx");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let mut rx = Receiver::from_owned_fd(std_open(&path, true, true, 0)).unwrap();
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(DATA).await.unwrap();
        drop(tx);
        let mut got = vec![0u8; DATA.len()];
        rx.read_exact(&mut got).await.unwrap();
        let second = spawn(async move {
            let mut buf = vec![0u8; DATA.len()];
            rx.read_exact(&mut buf).await.map(|()| buf)
        });
        settle().await;
        assert!(!second.is_finished(), "a read-write reader saw end of file");
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(DATA).await.unwrap();
        drop(tx);
        let got = soon(second, "second writer not read").await;
        assert_eq!(got.unwrap().unwrap(), DATA);
    });
}

#[test]
fn opening_what_is_no_fifo_is_invalid_input_naming_the_path() {
    let dir = TempDir::new("tokio-pipe-notfifo");
    block_on(async {
        for path in [Path::new("/dev/null"), dir.path()] {
            let err = Receiver::open(path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path:?}: {err}");
            assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        }
        let err = Sender::open("/dev/null").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // A directory cannot even be opened for writing: the kernel's own error.
        let err = Sender::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
    });
}

// --- Taking fds in ---

#[test]
fn from_owned_fd_refuses_files_sockets_and_eventfds_for_either_end() {
    let dir = TempDir::new("tokio-pipe-fromfd");
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    block_on(async {
        let err = Sender::from_owned_fd(std_open(&file, false, true, 0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = Receiver::from_owned_fd(std_open(&file, true, false, 0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let (a, b) = support::socketpair();
        let ev = support::eventfd();
        let ev2 = ev.try_clone().unwrap();
        for (fd, as_sender) in [(a, true), (b, false), (ev, true), (ev2, false)] {
            let err = if as_sender {
                Sender::from_owned_fd(fd).err()
            } else {
                Receiver::from_owned_fd(fd).err()
            };
            assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidInput));
        }
    });
}

#[test]
fn from_owned_fd_refuses_the_wrong_end_of_a_fifo() {
    let dir = TempDir::new("tokio-pipe-access");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let _rx = Receiver::open(&path).unwrap();
        let write_only = std_open(&path, false, true, libc::O_NONBLOCK);
        let err = Receiver::from_owned_fd(write_only).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let read_only = std_open(&path, true, false, libc::O_NONBLOCK);
        let err = Sender::from_owned_fd(read_only).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn from_owned_fd_makes_blocking_fifo_ends_non_blocking_and_they_work() {
    let dir = TempDir::new("tokio-pipe-nonblock");
    let path = fifo(&dir, "fifo");
    block_on(async {
        // Both ends open already, so the blocking std opens below return at once.
        let _rx = Receiver::open(&path).unwrap();
        let _tx = Sender::open(&path).unwrap();
        let read_only = std_open(&path, true, false, 0);
        let write_only = std_open(&path, false, true, 0);
        assert!(!flags(read_only.as_raw_fd()).0 && !flags(write_only.as_raw_fd()).0);
        let mut rx = Receiver::from_owned_fd(read_only).unwrap();
        let mut tx = Sender::from_owned_fd(write_only).unwrap();
        assert!(flags(rx.as_raw_fd()).0 && flags(tx.as_raw_fd()).0);
        let reader = spawn(async move {
            let mut buf = vec![0u8; DATA.len()];
            rx.read_exact(&mut buf).await.map(|()| buf)
        });
        settle().await;
        assert!(!reader.is_finished());
        tx.write_all(DATA).await.unwrap();
        let got = soon(reader, "reader never woke").await;
        assert_eq!(got.unwrap().unwrap(), DATA);
    });
}

// --- Giving fds out ---

#[test]
fn every_end_overlap_makes_is_non_blocking_and_close_on_exec() {
    let dir = TempDir::new("tokio-pipe-flags");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let (tx, rx) = pipe().unwrap();
        assert_eq!(flags(tx.as_raw_fd()), (true, true));
        assert_eq!(flags(rx.as_raw_fd()), (true, true));
        let frx = Receiver::open(&path).unwrap();
        let ftx = Sender::open(&path).unwrap();
        assert_eq!(flags(frx.as_raw_fd()), (true, true));
        assert_eq!(flags(ftx.as_raw_fd()), (true, true));

        // Tokio's `into_nonblocking_fd` is `into_owned_fd`; `into_blocking_fd` keeps
        // close-on-exec too.
        let (tx_fd, rx_fd) = (tx.into_owned_fd(), rx.into_owned_fd());
        assert_eq!(flags(tx_fd.as_raw_fd()), (true, true));
        assert_eq!(flags(rx_fd.as_raw_fd()), (true, true));
        let (ftx_fd, frx_fd) = (
            ftx.into_blocking_fd().unwrap(),
            frx.into_blocking_fd().unwrap(),
        );
        assert_eq!(flags(ftx_fd.as_raw_fd()), (false, true));
        assert_eq!(flags(frx_fd.as_raw_fd()), (false, true));

        // Taken out of the reactor for real: the same fds register again and work.
        let mut tx = Sender::from_owned_fd(tx_fd).unwrap();
        let mut rx = Receiver::from_owned_fd(rx_fd).unwrap();
        tx.write_all(DATA).await.unwrap();
        let mut got = vec![0u8; DATA.len()];
        soon(rx.read_exact(&mut got), "re-registered pipe")
            .await
            .unwrap();
        assert_eq!(got, DATA);

        let mut child = Command::new("cat").stdout(Stdio::piped()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        assert_eq!(flags(out.as_raw_fd()), (true, true));
        child.kill().await.unwrap();
    });
}

#[test]
fn a_child_writes_through_a_blocking_fd_and_its_exit_is_end_of_file() {
    block_on(async {
        let (tx, mut rx) = pipe().unwrap();
        let text = std::str::from_utf8(DATA).unwrap();
        let status = Command::new("printf")
            .arg("%s")
            .arg(text)
            .stdout(tx.into_blocking_fd().unwrap())
            .status();
        let mut got = vec![0u8; DATA.len()];
        soon(rx.read_exact(&mut got), "child output").await.unwrap();
        assert_eq!(got, DATA);
        assert!(status.await.unwrap().success());
        // The child's copy was the last writer: end of file, not a wait.
        soon(rx.readable(), "no hang-up edge").await.unwrap();
        assert_eq!(rx.try_read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(rx.read(&mut [0u8; 8]).await.unwrap(), 0);
    });
}

// --- End of file, broken pipe, big writes ---

#[test]
fn end_of_file_comes_only_once_every_writer_is_gone() {
    block_on(async {
        let (mut tx1, mut rx) = pipe().unwrap();
        let mut tx2 = Sender::from_owned_fd(tx1.as_fd().try_clone_to_owned().unwrap()).unwrap();
        tx1.write_all(b"one ").await.unwrap();
        tx2.write_all(b"two ").await.unwrap();
        drop(tx1);
        let mut buf = [0u8; 8];
        rx.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"one two ");
        let reader = spawn(async move {
            let mut rest = Vec::new();
            rx.read_to_end(&mut rest).await.map(|_| rest)
        });
        settle().await;
        assert!(!reader.is_finished(), "end of file with a writer left");
        tx2.write_all(b"three").await.unwrap();
        settle().await;
        assert!(!reader.is_finished(), "end of file with a writer left");
        drop(tx2);
        let rest = soon(reader, "no end of file").await;
        assert_eq!(rest.unwrap().unwrap(), b"three");
    });
}

#[test]
fn a_writer_waiting_on_a_full_pipe_gets_broken_pipe_when_the_reader_leaves() {
    block_on(async {
        let (mut tx, rx) = pipe().unwrap();
        let writer = spawn(async move {
            let res = tx.write_all(&vec![9u8; 4 << 20]).await;
            (res, tx)
        });
        settle().await;
        assert!(!writer.is_finished(), "4 MiB fitted in a pipe nobody reads");
        drop(rx);
        let (res, tx) = soon(writer, "writer not woken").await.unwrap();
        assert_eq!(res.unwrap_err().kind(), ErrorKind::BrokenPipe);

        // The same through `writable` + `try_write`, waiting on a pipe filled first.
        let (tx2, rx2) = pipe().unwrap();
        drop(tx);
        soon(tx2.writable(), "new pipe").await.unwrap();
        while tx2.try_write(&[1u8; 8192]).is_ok() {}
        let waiter = spawn(async move { tx2.writable().await.map(|()| tx2) });
        settle().await;
        assert!(!waiter.is_finished(), "a full pipe looked writable");
        drop(rx2);
        let tx2 = soon(waiter, "writable not woken").await;
        let tx2 = tx2.unwrap().unwrap();
        assert_eq!(
            tx2.try_write(b"x").unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
    });
}

#[test]
fn writes_far_bigger_than_a_one_page_pipe_arrive_whole_and_in_order() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        // SAFETY: F_SETPIPE_SZ takes an integer argument; the fd is open.
        let size = unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
        assert!(size > 0, "{}", io::Error::last_os_error());
        const TOTAL: usize = 1 << 20;
        let data = pattern(TOTAL);
        let expected = data.clone();
        let writer = spawn(async move {
            // One vectored write_all of uneven slices, then a plain one.
            let (head, tail) = data.split_at(TOTAL / 2);
            let mut slices: Vec<IoSlice<'_>> = head.chunks(777).map(IoSlice::new).collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                let n = tx.write_vectored(slices).await.unwrap();
                IoSlice::advance_slices(&mut slices, n);
            }
            tx.write_all(tail).await.unwrap();
        });
        let mut got = Vec::with_capacity(TOTAL);
        let mut buf = [0u8; 1000];
        loop {
            let n = soon(rx.read(&mut buf), "reader stalled").await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got.len(), TOTAL);
        assert!(got == expected, "bytes out of order or corrupted");
    });
}

// --- try_* calls and zero-length I/O ---

#[test]
fn try_writes_fill_a_fifo_and_try_reads_drain_exactly_that() {
    let dir = TempDir::new("tokio-pipe-try");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let rx = Receiver::open(&path).unwrap();
        let tx = Sender::open(&path).unwrap();
        soon(tx.writable(), "new FIFO").await.unwrap();
        let slices: Vec<IoSlice<'_>> = DATA.chunks(3).map(IoSlice::new).collect();
        let mut sent = Vec::new();
        let mut vectored = false;
        while tx.writable().now_or_never().is_some() {
            let res = if vectored {
                tx.try_write_vectored(&slices)
            } else {
                tx.try_write(DATA)
            };
            match res {
                Ok(n) => sent.extend_from_slice(&DATA[..n]),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
                    break;
                }
            }
            vectored = !vectored;
            assert!(sent.len() < 1 << 24, "the FIFO never filled");
        }
        assert!(sent.len() >= 4096, "only {} bytes fitted", sent.len());

        let mut got = vec![0u8; sent.len()];
        let mut at = 0;
        while at < got.len() {
            soon(rx.readable(), "no read edge").await.unwrap();
            let mut bufs: Vec<IoSliceMut<'_>> =
                got[at..].chunks_mut(5000).map(IoSliceMut::new).collect();
            match rx.try_read_vectored(&mut bufs) {
                Ok(0) => panic!("end of file with the writer open"),
                Ok(n) => at += n,
                Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}"),
            }
        }
        assert!(got == sent, "bytes out of order");
        assert_eq!(
            rx.try_read(&mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        // Drained: room again, without anyone waiting.
        soon(tx.writable(), "no write edge").await.unwrap();
        assert_eq!(tx.try_write(DATA).unwrap(), DATA.len());
    });
}

#[test]
fn zero_length_reads_and_writes_move_nothing_and_end_nothing() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        // An empty read of an empty pipe returns at once; an empty write is no end of file.
        assert_eq!(rx.read(&mut []).await.unwrap(), 0);
        assert_eq!(tx.write(b"").await.unwrap(), 0);
        soon(tx.writable(), "new pipe").await.unwrap();
        assert_eq!(tx.try_write(b"").unwrap(), 0);
        assert_eq!(tx.try_write_vectored(&[]).unwrap(), 0);
        assert_eq!(
            rx.try_read(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "an empty write made the pipe readable"
        );

        tx.write_all(b"data").await.unwrap();
        soon(rx.readable(), "no read edge").await.unwrap();
        assert_eq!(rx.try_read(&mut []).unwrap(), 0);
        assert_eq!(
            rx.try_read_vectored(&mut [IoSliceMut::new(&mut [])])
                .unwrap(),
            0
        );
        assert_eq!(rx.read(&mut []).await.unwrap(), 0);
        let mut buf = [0u8; 4];
        assert_eq!(
            rx.try_read(&mut buf).unwrap(),
            4,
            "the empty reads took bytes"
        );
        assert_eq!(&buf, b"data");
    });
}

// --- More edges of the same contracts ---

#[test]
fn a_writer_that_opens_and_leaves_without_writing_is_end_of_file() {
    let dir = TempDir::new("tokio-pipe-empty-writer");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let mut rx = Receiver::open(&path).unwrap();
        let reader = spawn(async move { rx.read(&mut [0u8; 8]).await });
        settle().await;
        assert!(!reader.is_finished());
        drop(Sender::open(&path).unwrap());
        let n = soon(reader, "no end of file").await.unwrap();
        assert_eq!(n.unwrap(), 0);
    });
}

#[test]
fn writes_of_up_to_pipe_buf_from_two_writers_never_interleave() {
    const RECORD: usize = 4096; // PIPE_BUF
    const EACH: usize = 64;
    block_on(async {
        let (tx1, mut rx) = pipe().unwrap();
        let tx2 = Sender::from_owned_fd(tx1.as_fd().try_clone_to_owned().unwrap()).unwrap();
        let writers: Vec<_> = [(1u8, tx1), (2u8, tx2)]
            .into_iter()
            .map(|(id, mut tx)| {
                spawn(async move {
                    for seq in 0..EACH {
                        let fill = id.wrapping_mul(100).wrapping_add(seq as u8);
                        tx.write_all(&[fill; RECORD]).await.unwrap();
                        overlap::yield_now().await;
                    }
                })
            })
            .collect();
        let mut record = vec![0u8; RECORD];
        for _ in 0..2 * EACH {
            soon(rx.read_exact(&mut record), "records stalled")
                .await
                .unwrap();
            assert!(
                record.iter().all(|&b| b == record[0]),
                "two writers' records interleaved"
            );
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(rx.read(&mut record).await.unwrap(), 0);
    });
}

#[test]
fn an_o_path_fd_of_a_fifo_is_invalid_input_for_either_end() {
    let dir = TempDir::new("tokio-pipe-opath");
    let path = fifo(&dir, "fifo");
    block_on(async {
        let err = Receiver::from_owned_fd(std_open(&path, true, false, libc::O_PATH)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = Sender::from_owned_fd(std_open(&path, true, false, libc::O_PATH)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn opening_a_unix_socket_path_as_a_fifo_is_invalid_input_not_a_missing_reader() {
    let dir = TempDir::new("tokio-pipe-sockpath");
    let path = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    block_on(async {
        // `open(2)` says ENXIO for a socket, as for a FIFO with no reader: retrying is no use.
        let err = Sender::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("sock"), "{err}");
        let err = Receiver::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn a_fifo_writer_whose_reader_left_goes_on_with_the_next_reader() {
    let dir = TempDir::new("tokio-pipe-new-reader");
    let path = fifo(&dir, "fifo");
    let done = support::watchdog(30); // a writer spinning on a stale error never yields
    block_on(async {
        let rx = Receiver::open(&path).unwrap();
        let mut tx = Sender::open(&path).unwrap();
        drop(rx);
        soon(tx.writable(), "no error edge").await.unwrap();
        assert_eq!(
            tx.write(b"x").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        let mut rx = Receiver::open(&path).unwrap();
        let data = pattern(1 << 20);
        let expected = data.clone();
        let writer = spawn(async move { tx.write_all(&data).await });
        let mut got = vec![0u8; 1 << 20];
        soon(rx.read_exact(&mut got), "reader stalled")
            .await
            .unwrap();
        soon(writer, "writer stalled").await.unwrap().unwrap();
        assert!(got == expected);
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
}
