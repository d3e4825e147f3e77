//! An adversarial review of `overlap::pipe`'s anonymous pipes (FIFOs opened by several
//! parties are in `pipe_review_fifo.rs`): a write of `PIPE_BUF` bytes into a nearly full
//! pipe waits and then goes whole (never split by the library), a writer task aborted in
//! the middle of a `write_all` leaves exactly what it wrote and then end of file, one
//! waiting on a full pipe goes on when the pipe grows (`F_SETPIPE_SZ`), fds
//! refused by `from_owned_fd` are closed rather than leaked, and `splice` between a pipe
//! and a TCP connection whose peer leaves midway: exact byte counts on both sides, the
//! error returned, nothing lost from the pipe.

mod support;

use std::io::{self, ErrorKind, IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{pipe, Receiver, Sender};
use overlap::{block_on, spawn};
use support::{pattern, pattern_seeded, settle, tcp_pair, within};

const HANG: Duration = Duration::from_secs(20);
/// The size up to which a pipe write is atomic on Linux.
const PIPE_BUF: usize = 4096;

/// Bytes waiting in the pipe `fd` is an end of (`FIONREAD`).
fn in_pipe(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at `n`.
    let res = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(res, 0, "FIONREAD: {}", io::Error::last_os_error());
    n as usize
}

/// Sets the capacity of the pipe `fd` is an end of; returns what the kernel made it.
fn set_pipe_size(fd: &impl AsRawFd, size: usize) -> usize {
    // SAFETY: F_SETPIPE_SZ takes an integer argument; the fd is open.
    let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    assert!(got > 0, "F_SETPIPE_SZ: {}", io::Error::last_os_error());
    got as usize
}

/// The capacity of the pipe `fd` is an end of.
fn pipe_size(fd: &impl AsRawFd) -> usize {
    // SAFETY: F_GETPIPE_SZ takes no argument; the fd is open.
    let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(got > 0, "F_GETPIPE_SZ: {}", io::Error::last_os_error());
    got as usize
}

/// A one-page pipe holding one byte has no free slot: a write of `PIPE_BUF` bytes, plain or
/// vectored, must wait and then go in whole. The kernel refuses it with `EAGAIN` rather
/// than writing the 4095 bytes that would fit; the library must neither split it itself
/// (a write capped below `PIPE_BUF`) nor report a part as written.
#[test]
fn a_pipe_buf_write_into_a_nearly_full_pipe_waits_and_goes_whole() {
    block_on(async {
        let (tx, mut rx) = pipe().unwrap();
        assert_eq!(set_pipe_size(&tx, 4096), 4096);
        within(HANG, tx.writable(), "a new pipe not writable")
            .await
            .unwrap();
        let record = pattern_seeded(PIPE_BUF, 3);
        for round in 0..2 {
            assert_eq!(tx.try_write(b"a").unwrap(), 1);
            let err = tx.try_write(&record).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "round {round}: {err}");
            let (a, b) = record.split_at(1000);
            let (b, c) = b.split_at(2000);
            let slices = [IoSlice::new(a), IoSlice::new(b), IoSlice::new(c)];
            let err = tx.try_write_vectored(&slices).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "round {round}: {err}");
            assert_eq!(
                in_pipe(&rx),
                1,
                "round {round}: a part of the record went in"
            );

            // The same record through the async write (round 0) and write_vectored (round
            // 1), from another task: it waits for the room, not for a part of it.
            let mut tx2 = Sender::from_owned_fd(tx.as_fd().try_clone_to_owned().unwrap()).unwrap();
            let owned = record.clone();
            let writer = spawn(async move {
                if round == 0 {
                    tx2.write(&owned).await
                } else {
                    let (a, b) = owned.split_at(1000);
                    let (b, c) = b.split_at(2000);
                    let slices = [IoSlice::new(a), IoSlice::new(b), IoSlice::new(c)];
                    tx2.write_vectored(&slices).await
                }
            });
            settle().await;
            assert!(
                !writer.is_finished(),
                "round {round}: the write did not wait"
            );
            assert_eq!(
                in_pipe(&rx),
                1,
                "round {round}: a part of the record went in"
            );
            let mut one = [0u8; 1];
            rx.read_exact(&mut one).await.unwrap();
            assert_eq!(&one, b"a");
            let n = within(HANG, writer, "the writer was never woken")
                .await
                .unwrap();
            assert_eq!(n.unwrap(), PIPE_BUF, "round {round}: the record was split");
            let mut got = vec![0u8; PIPE_BUF];
            rx.read_exact(&mut got).await.unwrap();
            assert!(got == record, "round {round}: the record's bytes differ");
            assert_eq!(in_pipe(&rx), 0);
        }
    });
}

/// A task that owns a `Sender` and is aborted while its `write_all` waits on a full pipe
/// drops the sender: the reader gets exactly the bytes that went in (a prefix of the
/// data, as many as the pipe held), then end of file; the abort moves no more bytes.
#[test]
fn a_writer_aborted_in_the_middle_of_write_all_leaves_a_prefix_then_end_of_file() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        let capacity = pipe_size(&rx);
        let data = pattern(1 << 20);
        let sent = data.clone();
        let writer = spawn(async move { tx.write_all(&sent).await });
        settle().await;
        assert!(!writer.is_finished(), "1 MiB fitted in a pipe nobody reads");
        assert_eq!(
            in_pipe(&rx),
            capacity,
            "the waiting writer left the pipe not full"
        );
        writer.abort();
        let err = within(HANG, writer, "the aborted writer never ended")
            .await
            .unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert_eq!(in_pipe(&rx), capacity);
        let mut got = Vec::new();
        within(
            HANG,
            rx.read_to_end(&mut got),
            "no end of file after the abort",
        )
        .await
        .unwrap();
        assert_eq!(got.len(), capacity);
        assert!(
            got[..] == data[..capacity],
            "the pipe's bytes are not the prefix"
        );
        assert_eq!(rx.read(&mut [0u8; 8]).await.unwrap(), 0);
    });
}

/// Checks that the fd refused was closed: its peer `theirs` (non-blocking) reads end of file,
/// where a copy left open would make it say `WouldBlock`.
fn peer_sees_end_of_file(what: &str, theirs: OwnedFd) {
    let mut theirs = std::fs::File::from(theirs);
    match theirs.read(&mut [0u8; 8]) {
        Ok(0) => {}
        other => panic!("{what}: the refused fd is still open ({other:?})"),
    }
}

/// A non-blocking Unix socket pair.
fn socket_pair() -> (OwnedFd, OwnedFd) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    (a.into(), b.into())
}

/// A writer waiting on a full pipe is woken when the pipe grows (`F_SETPIPE_SZ` from the
/// reader's side), though nobody reads: its `write_all` ends with every byte in the pipe.
#[test]
fn a_writer_waiting_on_a_full_pipe_goes_on_when_the_pipe_grows() {
    const TOTAL: usize = 256 * 1024;
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        assert_eq!(set_pipe_size(&rx, 4096), 4096);
        let data = pattern_seeded(TOTAL, 7);
        let sent = data.clone();
        let writer = spawn(async move { tx.write_all(&sent).await });
        settle().await;
        assert!(!writer.is_finished(), "256 KiB fitted in a one-page pipe");
        assert_eq!(in_pipe(&rx), 4096);
        assert_eq!(set_pipe_size(&rx, TOTAL), TOTAL);
        within(HANG, writer, "the writer was not woken by the room")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            in_pipe(&rx),
            TOTAL,
            "the writer ended before its bytes were in"
        );
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut rx, &mut got).await.unwrap();
        assert!(got == data, "the bytes differ");
    });
}

/// `from_owned_fd` takes the fd: refused (no pipe, the wrong end, or no runtime), it must
/// close it, not leak it. Each refused fd here has a peer that then reads end of file,
/// which it would not while a copy stayed open in this process.
#[test]
fn fds_refused_by_from_owned_fd_are_closed_not_leaked() {
    block_on(async {
        let (a, b) = socket_pair();
        let err = Receiver::from_owned_fd(a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        peer_sees_end_of_file("a socket as a receiver", b);

        let (a, b) = socket_pair();
        let err = Sender::from_owned_fd(a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        peer_sees_end_of_file("a socket as a sender", b);

        // The write end offered as a receiver.
        let (r, w) = support::pipe();
        let err = Receiver::from_owned_fd(w).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        peer_sees_end_of_file("a write end as a receiver", r);
    });
    // Outside a runtime: refused before registration, and closed all the same.
    let (r, w) = support::pipe();
    let err = Sender::from_owned_fd(w).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
    peer_sees_end_of_file("a sender outside a runtime", r);
}

/// A pipe spliced into a TCP connection whose peer reads 100 000 bytes and leaves (with
/// bytes unread, so it resets): `splice_to` returns the error instead of 0 or a wait, the
/// peer got exactly the first 100 000 bytes, and the pipe still holds exactly what was not
/// spliced, in order: `spliced + left == written`, byte for byte.
#[test]
fn splice_to_a_tcp_peer_that_leaves_midway_fails_and_the_pipe_keeps_the_rest() {
    const TOTAL: usize = 32 << 20; // far more than both sockets' buffers hold
    const READ: usize = 100_000;
    block_on(async {
        let (ours, mut peer) = tcp_pair().await;
        let (mut tx, mut rx) = pipe().unwrap();
        let data = pattern_seeded(TOTAL, 5);
        let sent = data.clone();
        let writer = spawn(async move { tx.write_all(&sent).await });
        let reader = spawn(async move {
            let mut got = vec![0u8; READ];
            peer.read_exact(&mut got).await.unwrap();
            got // `peer` closes here with bytes unread: a reset.
        });
        let mut spliced = 0usize;
        let err = loop {
            match within(HANG, rx.splice_to(&ours, 1 << 20), "the splice stalled").await {
                Ok(0) => panic!("end of file after {spliced} of {TOTAL} bytes"),
                Ok(n) => spliced += n,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{err}"
        );
        let got = within(HANG, reader, "the peer never read").await.unwrap();
        assert!(got[..] == data[..READ], "the peer's bytes differ");
        assert!((READ..TOTAL).contains(&spliced), "{spliced} bytes spliced");
        // The connection stays failed: no later splice moves a byte or reports 0.
        let again = rx.splice_to(&ours, 1 << 20).await.unwrap_err();
        assert!(
            matches!(
                again.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{again}"
        );
        let mut rest = Vec::new();
        within(
            HANG,
            overlap::io::read_to_end(&mut rx, &mut rest),
            "the pipe's rest never came",
        )
        .await
        .unwrap();
        within(HANG, writer, "the writer stalled")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            spliced + rest.len(),
            TOTAL,
            "bytes lost or doubled in the pipe"
        );
        assert!(rest[..] == data[spliced..], "the pipe's rest differs");
    });
}

/// A TCP peer that sends 1 MiB and closes, spliced into a one-page pipe that a reader task
/// drains: `splice_from` moves exactly the 1 MiB (never more than it was asked for), then
/// says 0 for end of file, and 0 again.
#[test]
fn splice_from_a_tcp_peer_that_sends_and_closes_moves_exactly_its_bytes_then_zero() {
    const TOTAL: usize = 1 << 20;
    block_on(async {
        let (ours, mut peer) = tcp_pair().await;
        let (mut tx, mut rx) = pipe().unwrap();
        assert_eq!(set_pipe_size(&tx, 4096), 4096);
        let data = pattern_seeded(TOTAL, 9);
        let sent = data.clone();
        let sender = spawn(async move {
            peer.write_all(&sent).await.unwrap();
            // Dropped: end of file after the last byte.
        });
        let reader = spawn(async move {
            let mut got = Vec::new();
            overlap::io::read_to_end(&mut rx, &mut got)
                .await
                .map(|_| got)
        });
        let mut moved = 0usize;
        let mut ask = 1usize;
        loop {
            let n = within(HANG, tx.splice_from(&ours, ask), "the splice stalled")
                .await
                .unwrap();
            assert!(n <= ask, "asked for {ask}, moved {n}");
            if n == 0 {
                break;
            }
            moved += n;
            ask = ask % 9000 + 1777; // uneven sizes, some over the pipe's capacity
        }
        assert_eq!(moved, TOTAL);
        assert_eq!(
            tx.splice_from(&ours, 4096).await.unwrap(),
            0,
            "not end of file again"
        );
        sender.await.unwrap();
        drop(tx);
        let got = within(HANG, reader, "the reader stalled")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), TOTAL);
        assert!(got == data, "the bytes differ");
    });
}
