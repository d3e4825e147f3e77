//! `splice` at its edges: a FIFO no writer has opened yet spliced into a socket whose peer
//! is gone, splicing (or copying) a pipe into itself, lengths far over a pipe's capacity, a
//! socket source whose peer closed with data still queued, `splice_copy` into a pipe
//! smaller than its private one and out of one bigger, and a listening socket as the
//! destination.

mod support;

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::pipe::{pipe, Receiver, Sender};
use support::{pattern, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A FIFO named `name` in `dir`.
fn fifo(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.join(name);
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path
}

/// A FIFO's reader that no writer has opened yet waits (a read does); `splice_to` must too,
/// even into a socket whose peer is gone: the kernel's `splice` says 0 for a FIFO with no
/// writer, which is no end of file here. Once a writer comes with data, the dead socket's
/// error is the answer.
#[test]
fn a_fifo_with_no_writer_yet_spliced_to_a_dead_socket_waits_then_fails() {
    let dir = TempDir::new("review-splice-fifo-dead");
    let path = fifo(&dir, "fifo");
    overlap::block_on(async {
        let mut rx = Receiver::open(&path).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let splicer = overlap::spawn(async move { rx.splice_to(&a, 1024).await });
        // Long enough for the loop to see the dead socket; the splice should not end.
        overlap::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !splicer.is_finished(),
            "splice_to ended before any writer opened the FIFO: {:?}",
            splicer.await
        );
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(b"late").await.unwrap();
        let err = within(HANG, splicer, "splice_to never met the dead socket")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    });
}

/// The probe of a dead destination must not turn a real end of file into a wait: a pipe
/// whose writers all left, spliced into a socket whose peer is gone, says 0 at once.
#[test]
fn a_drained_pipe_spliced_to_a_dead_socket_is_end_of_file() {
    overlap::block_on(async {
        let (tx, mut rx) = pipe().unwrap();
        drop(tx);
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let n = within(HANG, rx.splice_to(&a, 1024), "end of file became a wait")
            .await
            .unwrap();
        assert_eq!(n, 0);
    });
}

/// A pipe spliced into itself is refused (`EINVAL` from the kernel), as `InvalidInput`,
/// whether it holds data or not; the data stays.
#[test]
fn splicing_a_pipe_into_itself_is_invalid_input() {
    overlap::block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        tx.write_all(b"kept").await.unwrap();
        let rx_ref = &rx;
        let err = within(HANG, tx.splice_from(rx_ref, 4), "self splice hung")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let mut got = [0u8; 4];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"kept");
    });
}

/// A listening socket as the destination (it is `Registered`, as every socket is) never
/// becomes writable: `splice_to` and `splice_copy` are refused with `InvalidInput`, and the
/// pipe keeps its bytes, where both waited for its room for ever.
#[test]
fn splicing_into_a_listening_socket_is_invalid_input() {
    overlap::block_on(async {
        let listener = overlap::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let (mut tx, mut rx) = pipe().unwrap();
        tx.write_all(b"kept").await.unwrap();
        let err = within(
            HANG,
            rx.splice_to(&listener, 4),
            "splice_to a listener hung",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let copy = overlap::pipe::splice_copy(&rx, &listener);
        let err = within(HANG, copy, "splice_copy to a listener hung")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let mut got = [0u8; 4];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"kept");
    });
}

/// `splice_copy` and `splice_bidirectional` from a pipe into the same pipe (its two ends,
/// or one FIFO opened for both) are refused as `InvalidInput` too: through their private
/// pipe the kernel would take them, and the copy would move the same bytes round for ever,
/// never reaching end of file. Nothing is taken from the pipe, and no fd is left behind.
#[test]
fn copying_a_pipe_into_itself_is_invalid_input_and_keeps_the_data() {
    // Counts the whole process's fds: alone in a child, so that the binary's other tests
    // (their pipes, sockets, runtimes) do not open or close fds between the two counts.
    support::run_in_child(
        "copying_a_pipe_into_itself_is_invalid_input_and_keeps_the_data",
        copying_a_pipe_into_itself_alone,
    );
}

fn copying_a_pipe_into_itself_alone() {
    let dir = TempDir::new("review-splice-copy-self");
    let path = fifo(&dir, "both");
    overlap::block_on(async {
        let before = support::open_fds();
        let (mut tx, mut rx) = pipe().unwrap();
        tx.write_all(b"kept").await.unwrap();
        let err = within(
            HANG,
            overlap::pipe::splice_copy(&rx, &tx),
            "copy into itself",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let err = within(
            HANG,
            overlap::pipe::splice_bidirectional(&rx, &tx),
            "both ways into itself",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let mut got = [0u8; 4];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"kept");

        // A FIFO opened for reading and writing, adopted as both ends.
        let both = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut fifo_tx = Sender::from_owned_fd(both.try_clone().unwrap().into()).unwrap();
        let mut fifo_rx = Receiver::from_owned_fd(both.into()).unwrap();
        fifo_tx.write_all(b"fifo").await.unwrap();
        let err = within(
            HANG,
            overlap::pipe::splice_copy(&fifo_rx, &fifo_tx),
            "FIFO copy",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let mut got = [0u8; 4];
        fifo_rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"fifo");
        drop((tx, rx, fifo_tx, fifo_rx));
        assert_eq!(support::open_fds(), before, "an fd left behind");
    });
}

/// Asking for far more than a pipe holds moves what fits, never more, and loses nothing:
/// a socket with 1 MiB queued fills the pipe, the pipe drains into another socket, and
/// the bytes come out whole and in order.
#[test]
fn lengths_over_the_pipe_capacity_move_what_fits_and_lose_nothing() {
    const TOTAL: usize = 1 << 20;
    overlap::block_on(async {
        let data = pattern(TOTAL);
        let (mut src_peer, src) = UnixStream::pair().unwrap();
        let (dst, mut dst_peer) = UnixStream::pair().unwrap();
        let (mut tx, mut rx) = pipe().unwrap();
        let writer = {
            let data = data.clone();
            overlap::spawn(async move {
                src_peer.write_all(&data).await.unwrap();
                // Closed: the source ends with the data.
            })
        };
        let reader = overlap::spawn(async move {
            let mut got = Vec::new();
            dst_peer.read_to_end(&mut got).await.map(|_| got)
        });
        let mut total = 0;
        loop {
            let n = within(HANG, tx.splice_from(&src, usize::MAX), "splice_from hung")
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= 1 << 16, "more than a default pipe holds: {n}");
            let mut left = n;
            while left > 0 {
                let m = within(HANG, rx.splice_to(&dst, usize::MAX), "splice_to hung")
                    .await
                    .unwrap();
                assert!(m > 0 && m <= left, "moved {m} of {left}");
                left -= m;
            }
            total += n;
        }
        writer.await.unwrap();
        assert_eq!(total, TOTAL);
        dst.shutdown(std::net::Shutdown::Write).unwrap();
        let got = reader.await.unwrap().unwrap();
        assert!(got == data, "bytes lost or reordered");
    });
}

/// A socket whose peer wrote and closed: `splice_from` moves the queued bytes first, then
/// says 0, and keeps saying 0.
#[test]
fn a_closed_socket_source_gives_its_data_then_end_of_file() {
    overlap::block_on(async {
        let (mut peer, src) = UnixStream::pair().unwrap();
        peer.write_all(b"last words").await.unwrap();
        drop(peer);
        let (mut tx, mut rx) = pipe().unwrap();
        let mut moved = 0;
        loop {
            let n = within(HANG, tx.splice_from(&src, 4), "splice_from hung")
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            moved += n;
        }
        assert_eq!(moved, 10);
        assert_eq!(tx.splice_from(&src, 4).await.unwrap(), 0);
        drop(tx);
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
    });
}

/// Sets the capacity of the pipe behind `fd` (`F_SETPIPE_SZ`), returning the size the
/// kernel chose.
fn set_pipe_size(fd: &impl AsRawFd, size: usize) -> usize {
    // SAFETY: F_SETPIPE_SZ takes an integer argument; the fd is open.
    let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    assert!(got > 0, "{}", io::Error::last_os_error());
    got as usize
}

/// `splice_copy` through pipes of other sizes than its private one: from a socket into a
/// one-page pipe (every drain a partial one), read back a few bytes at a time, and from a
/// 256 KiB pipe (four times the private one), full before the copy starts, into a socket.
/// Every byte comes out once, in order.
#[test]
fn splice_copy_into_a_one_page_pipe_and_out_of_a_big_one_loses_nothing() {
    const TOTAL: usize = 1 << 20;
    overlap::block_on(async {
        let data = pattern(TOTAL);

        // Socket -> one-page pipe, read in dribbles.
        let (mut peer, src) = UnixStream::pair().unwrap();
        let (tx, mut rx) = pipe().unwrap();
        assert_eq!(set_pipe_size(&tx, 4096), 4096);
        let writer = {
            let data = data.clone();
            overlap::spawn(async move { peer.write_all(&data).await.unwrap() })
        };
        let reader = overlap::spawn(async move {
            let mut got = Vec::with_capacity(TOTAL);
            let mut buf = [0u8; 1000];
            loop {
                match rx.read(&mut buf[..got.len() % 997 + 1]).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let n = within(HANG, overlap::pipe::splice_copy(&src, &tx), "copy hung")
            .await
            .unwrap();
        assert_eq!(n, TOTAL as u64);
        writer.await.unwrap();
        drop(tx);
        let got = within(HANG, reader, "reader hung").await.unwrap();
        assert!(
            got == data,
            "bytes lost or reordered through the small pipe"
        );

        // A full 256 KiB pipe -> socket (well under the default `pipe-max-size`).
        const BIG: usize = 256 << 10;
        let data = &data[..BIG];
        let (mut tx, rx) = pipe().unwrap();
        assert!(set_pipe_size(&tx, BIG) >= BIG);
        within(HANG, tx.write_all(data), "filling the big pipe hung")
            .await
            .unwrap();
        drop(tx);
        let (dst, mut peer) = UnixStream::pair().unwrap();
        let reader = overlap::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.map(|_| got)
        });
        let n = within(HANG, overlap::pipe::splice_copy(&rx, &dst), "copy hung")
            .await
            .unwrap();
        assert_eq!(n, BIG as u64);
        dst.shutdown(std::net::Shutdown::Write).unwrap();
        let got = reader.await.unwrap().unwrap();
        assert!(got == data, "bytes lost or reordered out of the big pipe");
    });
}
