//! Promises of the `overlap::pipe` rustdoc (and of `fs::File::send_to` /
//! `PositionalFile::send_to`, which feed pipes and sockets) that no other test pinned,
//! each checked on real pipes, FIFOs in a temp dir, loopback TCP and real files:
//! - `File::send_to` leaves the file's own position where it was, sends into a pipe more
//!   than it holds from an offset (waiting for the reader, stopping at the file's end),
//!   and names the file when the pipe's reader has gone; `PositionalFile::send_to` names
//!   it when a TCP peer resets;
//! - `splice_copy` does not shut its destination down, counts every byte from TCP into a
//!   pipe and out of one into TCP, and refuses a pipe's read end or a listening socket as
//!   destination before taking a byte from the source;
//! - `splice_to` out of a pipe whose writers left gives its bytes, then 0 every time;
//! - a packet pipe's receiver reads each packet once told (`set_packet_mode`), and without
//!   it the next packet waits for a later write; a read into a smaller buffer gets the
//!   packet's head, its tail dropped by the kernel;
//! - a `Sender` closed with `poll_close` panics in `into_owned_fd` and `as_fd`;
//! - a read-write FIFO sender with no reader fills the FIFO, then says `WouldBlock`, and a
//!   reader that comes later gets every byte;
//! - `into_blocking_fd` takes the fd off the reactor, blocking: it can be adopted again;
//! - a directory is `InvalidInput` to a read-only open, `IsADirectory` to any open for
//!   writing, the path named either way.

mod support;

use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use overlap::fs::{File, PositionalFile};
use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, UnixStream};
use overlap::pipe::{pipe, splice_copy, OpenOptions, Receiver, Sender};
use overlap::{block_on, spawn};
use support::{mkfifo, panic_message, pattern_seeded, quiet_panics, tcp_pair, within, TempDir};

/// Only a lost wakeup gets near this; a slow machine does not.
const HANG: Duration = Duration::from_secs(60);

/// Whether the open file description of `fd` is non-blocking.
fn non_blocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer argument; the fd is open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// `File::send_to`: "The file's own position does not move." The read-ahead is cut to 4
/// bytes, so the bytes after a send come from the kernel's position, not a buffer.
#[test]
fn file_send_to_leaves_the_files_own_position_where_it_was() {
    let dir = TempDir::new("pipe-audit-position");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789abcdef").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        file.set_max_buf_size(4);
        let mut head = [0u8; 3];
        file.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"012");
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(file.send_to(&a, 8, 4).await.unwrap(), 4);
        let mut sent = [0u8; 4];
        b.read_exact(&mut sent).await.unwrap();
        assert_eq!(&sent, b"89ab");
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"3456789abcdef", "the send moved the file's position");
    });
}

/// `File::send_to` into a pipe ("a socket or a pipe on the reactor"), from an offset, asking
/// for more than the file has and more than the pipe holds: it waits for the reader to make
/// room and sends exactly the file's bytes from the offset, "fewer than `len` only when the
/// file ends first".
#[test]
fn send_to_a_pipe_from_an_offset_waits_for_the_reader_and_stops_at_the_files_end() {
    const LEN: usize = (1 << 20) + 5;
    let dir = TempDir::new("pipe-audit-sendfile-pipe");
    let path = dir.join("f");
    let data = pattern_seeded(LEN, 11);
    std::fs::write(&path, &data).unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (tx, mut rx) = pipe().unwrap();
        let reader = spawn(async move {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.unwrap();
            got
        });
        let n = within(HANG, file.send_to(&tx, 5, 4 << 20), "send_to into a pipe")
            .await
            .unwrap();
        assert_eq!(n, (LEN - 5) as u64);
        drop(tx);
        let got = within(HANG, reader, "reader").await.unwrap();
        assert!(got == data[5..], "bytes lost, added or reordered");
    });
}

/// `File::send_to` errors "name the file (`failed to send /x/y: Broken pipe`)": a pipe whose
/// reader has gone (the sender itself still open) is `BrokenPipe`, and the message says
/// which file.
#[test]
fn send_to_a_pipe_whose_reader_left_is_broken_pipe_naming_the_file() {
    let dir = TempDir::new("pipe-audit-sendfile-epipe");
    let path = dir.join("named-source");
    std::fs::write(&path, b"nobody reads this").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (tx, rx) = pipe().unwrap();
        drop(rx);
        let err = within(HANG, file.send_to(&tx, 0, 17), "send_to a readerless pipe")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        let want = format!("failed to send {}: ", path.display());
        assert!(err.to_string().starts_with(&want), "{err}");
    });
}

/// `PositionalFile::send_to` points at `File::send_to` "for the errors": a TCP peer that
/// resets is `BrokenPipe` or `ConnectionReset`, never a hang or a short count, and the
/// message names the file.
#[test]
fn positional_send_to_a_reset_tcp_peer_is_an_error_naming_the_file() {
    let dir = TempDir::new("pipe-audit-positional-reset");
    let path = dir.join("positional-source");
    std::fs::write(&path, pattern_seeded(8 << 20, 12)).unwrap();
    block_on(async {
        let file = PositionalFile::open(&path).await.unwrap();
        let (a, b) = tcp_pair().await;
        // SO_LINGER 0: dropping the peer resets the connection.
        b.set_linger(Some(Duration::ZERO)).unwrap();
        drop(b);
        let err = within(HANG, file.send_to(&a, 0, 8 << 20), "send_to a reset peer")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "{err}"
        );
        let want = format!("failed to send {}: ", path.display());
        assert!(err.to_string().starts_with(&want), "{err}");
    });
}

/// `splice_copy`: "`to` is not shut down at the end". After the copy, the destination
/// still takes writes, and its peer sees end of file only once the caller shuts it down.
#[test]
fn splice_copy_leaves_its_destination_open_for_more_writes() {
    block_on(async {
        let (mut client, proxy_in) = tcp_pair().await;
        let (proxy_out, mut server) = tcp_pair().await;
        client.write_all(b"copied").await.unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let n = within(HANG, splice_copy(&proxy_in, &proxy_out), "splice_copy")
            .await
            .unwrap();
        assert_eq!(n, 6);
        let mut got = [0u8; 6];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"copied");
        // Not shut down: no end of file yet, and a write still goes through.
        let mut one = [0u8; 1];
        assert!(server.read(&mut one).now_or_never().is_none());
        let mut out = proxy_out;
        out.write_all(b", then more").await.unwrap();
        out.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        within(HANG, server.read_to_end(&mut rest), "server read")
            .await
            .unwrap();
        assert_eq!(rest, b", then more");
    });
}

/// `splice_copy` between a TCP socket and a pipe both ways: client -> TCP -> copy into a
/// pipe -> copy out of the pipe -> TCP -> server, at once. Each copy returns how many bytes
/// moved: all of them, in order.
#[test]
fn splice_copy_from_tcp_into_a_pipe_and_out_of_it_into_tcp_counts_every_byte() {
    const TOTAL: usize = 3 << 20;
    block_on(async {
        let data = pattern_seeded(TOTAL, 13);
        let (mut client, proxy_in) = tcp_pair().await;
        let (proxy_out, mut server) = tcp_pair().await;
        let (tx, rx) = pipe().unwrap();
        let writer = {
            let data = data.clone();
            spawn(async move {
                client.write_all(&data).await.unwrap();
                client.shutdown(Shutdown::Write).unwrap();
                client
            })
        };
        let reader = spawn(async move {
            let mut got = Vec::with_capacity(TOTAL);
            server.read_to_end(&mut got).await.unwrap();
            got
        });
        let into_pipe = async {
            let n = splice_copy(&proxy_in, &tx).await;
            drop(tx); // the pipe's end of file for the second copy
            n
        };
        let out_of_pipe = async {
            let n = splice_copy(&rx, &proxy_out).await;
            proxy_out.shutdown(Shutdown::Write).unwrap();
            n
        };
        let (there, back) = within(
            HANG,
            async { overlap::join!(into_pipe, out_of_pipe) },
            "copies",
        )
        .await;
        assert_eq!(
            (there.unwrap(), back.unwrap()),
            (TOTAL as u64, TOTAL as u64)
        );
        let _client = writer.await.unwrap();
        let got = within(HANG, reader, "server").await.unwrap();
        assert!(got == data, "bytes lost, added or reordered");
    });
}

/// `splice_copy`: "A `to` that can never be written (a pipe's read end, a listening
/// socket) ... fails with `InvalidInput` too, before any byte is taken from `from`." The
/// source's bytes are all still there to read.
#[test]
fn splice_copy_into_a_read_end_or_a_listener_takes_no_byte_from_the_source() {
    block_on(async {
        let (mut peer, mut src) = UnixStream::pair().unwrap();
        peer.write_all(b"stays queued").await.unwrap();
        let (_tx, rx) = pipe().unwrap();
        let err = within(HANG, splice_copy(&src, &rx), "copy into a read end")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = within(HANG, splice_copy(&src, &listener), "copy into a listener")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let mut got = [0u8; 12];
        within(HANG, src.read_exact(&mut got), "read")
            .await
            .unwrap();
        assert_eq!(&got, b"stays queued");
    });
}

/// `Receiver::splice_to`: "0 means every write end is closed and the pipe is drained", and
/// as for a read ("keeps returning 0 after that"), again and again.
#[test]
fn splice_to_out_of_a_pipe_whose_writers_left_gives_its_bytes_then_zero_each_time() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        tx.write_all(b"last words").await.unwrap();
        drop(tx);
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(
            within(HANG, rx.splice_to(&a, 64), "splice").await.unwrap(),
            10
        );
        for round in 0..3 {
            let n = within(HANG, rx.splice_to(&a, 64), "splice at end of file").await;
            assert_eq!(n.unwrap(), 0, "round {round}");
        }
        let mut byte = [0u8; 1];
        assert_eq!(within(HANG, rx.read(&mut byte), "read").await.unwrap(), 0);
        let mut got = [0u8; 10];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"last words");
    });
}

/// A pipe whose write end is in packet mode (`O_DIRECT`), `(write end, read end)`.
fn packet_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_DIRECT | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    // SAFETY: pipe2 just made both fds, and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[1]), OwnedFd::from_raw_fd(fds[0])) }
}

/// The `Receiver` docs on packet mode: "each read returns one packet, and a short read says
/// nothing about the rest. Such a receiver needs `set_packet_mode`, or the next packet waits
/// for a later write to be read." Both halves: without it the queued second packet waits
/// for a third write; with it every queued packet is read, one a read, in order.
#[test]
fn a_packet_pipe_needs_set_packet_mode_or_the_next_packet_waits_for_a_later_write() {
    block_on(async {
        let (w, r) = packet_pipe();
        let mut rx = Receiver::from_owned_fd(r).unwrap();
        let mut w = std::fs::File::from(w);
        use std::io::Write;
        w.write_all(b"one").unwrap();
        w.write_all(b"two").unwrap();
        let mut buf = [0u8; 64];
        let n = within(HANG, rx.read(&mut buf), "first packet")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"one");
        // Not told: the short read was taken as a drained pipe.
        assert!(rx.read(&mut buf).now_or_never().is_none());
        w.write_all(b"three").unwrap();
        rx.set_packet_mode(true);
        for want in [&b"two"[..], b"three"] {
            let n = within(HANG, rx.read(&mut buf), "a queued packet")
                .await
                .unwrap();
            assert_eq!(&buf[..n], want);
        }
        assert!(rx.read(&mut buf).now_or_never().is_none(), "no packet left");
        drop(w);
        let n = within(HANG, rx.read(&mut buf), "end of file")
            .await
            .unwrap();
        assert_eq!(n, 0);
    });
}

/// `Sender::into_owned_fd` and `AsFd for Sender`: "# Panics If the sender was already
/// closed with `poll_close`", with a message saying so.
#[test]
fn a_closed_sender_panics_in_into_owned_fd_and_as_fd() {
    block_on(async {
        let (mut tx, _rx) = pipe().unwrap();
        tx.close().await.unwrap();
        quiet_panics("Sender already closed");
        let payload = catch_unwind(AssertUnwindSafe(|| tx.as_fd().as_raw_fd())).unwrap_err();
        assert!(panic_message(payload).contains("closed"));
        let payload = catch_unwind(AssertUnwindSafe(move || tx.into_owned_fd())).unwrap_err();
        assert!(panic_message(payload).contains("closed"));
    });
}

/// `OpenOptions::open_sender` with `read_write(true)`: "the open succeeds with no reader,
/// and writes go into the FIFO until it is full, for a reader to come". Full, a try says
/// `WouldBlock` (not `BrokenPipe`); a reader opening later gets exactly what was written,
/// and end of file once the sender goes.
#[test]
fn a_read_write_fifo_sender_fills_the_fifo_for_a_reader_that_comes_later() {
    let dir = TempDir::new("pipe-audit-rw-fill");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let tx = OpenOptions::new()
            .read_write(true)
            .open_sender(&path)
            .unwrap();
        within(HANG, tx.writable(), "a new sender is writable")
            .await
            .unwrap();
        let chunk = pattern_seeded(1000, 14);
        let mut written = Vec::new();
        loop {
            match tx.try_write(&chunk) {
                Ok(n) => written.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("a read-write sender with no reader: {e}"),
            }
            assert!(written.len() < 1 << 30, "the FIFO never filled");
        }
        assert!(!written.is_empty());
        let mut rx = Receiver::open(&path).unwrap();
        let mut got = vec![0u8; written.len()];
        within(HANG, rx.read_exact(&mut got), "the late reader")
            .await
            .unwrap();
        assert!(got == written, "bytes lost or reordered");
        let mut more = [0u8; 8];
        assert_eq!(
            rx.try_read(&mut more).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        drop(tx);
        let n = within(HANG, rx.read(&mut more), "end of file")
            .await
            .unwrap();
        assert_eq!(n, 0);
    });
}

/// `into_blocking_fd` "Removes the fd from the reactor and returns it in blocking mode":
/// the fd comes out blocking, and, being off the reactor, can be adopted again (a second
/// registration of one fd would be refused), non-blocking once more, and still works.
#[test]
fn into_blocking_fd_gives_a_blocking_fd_off_the_reactor_that_can_be_adopted_again() {
    block_on(async {
        let (tx, rx) = pipe().unwrap();
        let (w, r) = (
            tx.into_blocking_fd().unwrap(),
            rx.into_blocking_fd().unwrap(),
        );
        assert!(!non_blocking(&w) && !non_blocking(&r));
        let mut tx = Sender::from_owned_fd(w).unwrap();
        let mut rx = Receiver::from_owned_fd(r).unwrap();
        assert!(non_blocking(&tx) && non_blocking(&rx));
        tx.write_all(b"adopted again").await.unwrap();
        drop(tx);
        let mut got = String::new();
        within(HANG, rx.read_to_string(&mut got), "read")
            .await
            .unwrap();
        assert_eq!(got, "adopted again");
    });
}

/// The `Receiver` docs on packet mode, "each read returns one packet": a read into a buffer
/// smaller than the packet gets its first bytes, and the rest of that packet is gone (the
/// kernel drops it); the next read starts at the next packet.
#[test]
fn a_packet_read_into_a_smaller_buffer_gets_the_packets_head_and_loses_its_tail() {
    block_on(async {
        let (w, r) = packet_pipe();
        let mut rx = Receiver::from_owned_fd(r).unwrap();
        rx.set_packet_mode(true);
        let mut w = std::fs::File::from(w);
        use std::io::Write;
        w.write_all(b"abcdef").unwrap();
        w.write_all(b"gh").unwrap();
        let mut buf = [0u8; 2];
        let n = within(HANG, rx.read(&mut buf), "first packet")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"ab");
        let n = within(HANG, rx.read(&mut buf), "second packet")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"gh", "the first packet's tail was not dropped");
        drop(w);
        assert_eq!(within(HANG, rx.read(&mut buf), "eof").await.unwrap(), 0);
    });
}

/// `Sender::open`, `Receiver::open` and `OpenOptions` on a directory: read-only it is "no
/// FIFO" (`InvalidInput`); opened for writing (a sender, or `read_write`), `open(2)`
/// refuses it first with `EISDIR` (`IsADirectory`). Every error names the path.
#[test]
fn a_directory_is_invalid_input_read_only_and_is_a_directory_for_writing() {
    let dir = TempDir::new("pipe-audit-dir");
    let path = dir.join("not-a-fifo");
    std::fs::create_dir(&path).unwrap();
    block_on(async {
        let rw = || {
            let mut opts = OpenOptions::new();
            opts.read_write(true);
            opts
        };
        let cases = [
            (
                "Receiver::open",
                Receiver::open(&path).map(drop),
                ErrorKind::InvalidInput,
            ),
            (
                "Sender::open",
                Sender::open(&path).map(drop),
                ErrorKind::IsADirectory,
            ),
            (
                "open_sender",
                OpenOptions::new().open_sender(&path).map(drop),
                ErrorKind::IsADirectory,
            ),
            (
                "rw open_sender",
                rw().open_sender(&path).map(drop),
                ErrorKind::IsADirectory,
            ),
            (
                "rw open_receiver",
                rw().open_receiver(&path).map(drop),
                ErrorKind::IsADirectory,
            ),
        ];
        for (what, res, kind) in cases {
            let err = res.unwrap_err();
            assert_eq!(err.kind(), kind, "{what}: {err}");
            assert!(err.to_string().contains("not-a-fifo"), "{what}: {err}");
        }
    });
}
