//! `File::send_to` (`sendfile`): exact ranges to sockets and pipes, end of file, a full
//! socket, unflushed writes, a reset peer, bad destinations, and cancellation.

mod support;

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use overlap::fs::{self, File};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::time::{sleep, timeout};
use overlap::{block_on, spawn, AsyncFd};
use support::{eventfd, open_fresh, pattern_seeded, tcp_pair, within, TempDir};

/// Only a lost wakeup gets near this; a slow machine does not.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn ten_mib_and_a_middle_range_reach_a_tcp_peer_exactly() {
    let dir = TempDir::new("sendfile-tcp");
    let path = dir.join("big");
    let data = pattern_seeded(10 << 20, 5);
    std::fs::write(&path, &data).unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (a, mut b) = tcp_pair().await;
        let reader = spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        let whole = within(HANG, file.send_to(&a, 0, data.len() as u64), "send_to hung")
            .await
            .unwrap();
        assert_eq!(whole, data.len() as u64);
        let part = file.send_to(&a, 1_000_001, 333_333).await.unwrap();
        assert_eq!(part, 333_333);
        a.shutdown(Shutdown::Write).unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), data.len() + 333_333);
        assert!(got[..data.len()] == data[..], "whole file differs");
        assert!(
            got[data.len()..] == data[1_000_001..1_333_334],
            "range differs"
        );
        // The file's own position did not move.
        let mut first = [0u8; 16];
        file.read_exact(&mut first).await.unwrap();
        assert_eq!(first, data[..16]);
    });
}

#[test]
fn the_file_ending_first_shortens_the_count() {
    let dir = TempDir::new("sendfile-eof");
    let path = dir.join("small");
    std::fs::write(&path, b"0123456789").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(file.send_to(&a, 4, 1000).await.unwrap(), 6);
        assert_eq!(file.send_to(&a, 10, 1000).await.unwrap(), 0);
        assert_eq!(file.send_to(&a, 99, 1000).await.unwrap(), 0);
        assert_eq!(file.send_to(&a, 0, 0).await.unwrap(), 0);
        // However far past the end, and whatever the kernel makes of such an offset (it
        // refuses some beyond the file system's largest file), past the end sends nothing.
        for far in [
            1 << 44,
            1 << 62,
            i64::MAX as u64 - 5,
            i64::MAX as u64,
            u64::MAX,
        ] {
            assert_eq!(file.send_to(&a, far, 10).await.unwrap(), 0, "offset {far}");
        }
        let mut got = [0u8; 6];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"456789");
    });
}

#[test]
fn a_full_socket_is_waited_for_until_the_peer_reads() {
    let dir = TempDir::new("sendfile-full");
    let path = dir.join("big");
    let data = pattern_seeded(4 << 20, 6);
    std::fs::write(&path, &data).unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        // The reader starts late: the socket buffer fills long before.
        let reader = spawn(async move {
            sleep(Duration::from_millis(50)).await;
            let mut got = vec![0u8; 4 << 20];
            b.read_exact(&mut got).await.unwrap();
            got
        });
        let n = within(
            HANG,
            file.send_to(&a, 0, 4 << 20),
            "send_to slept through the socket's room",
        )
        .await
        .unwrap();
        assert_eq!(n, 4 << 20);
        assert!(reader.await.unwrap() == data);
    });
}

#[test]
fn unflushed_writes_are_sent_too() {
    let dir = TempDir::new("sendfile-unflushed");
    let path = dir.join("fresh");
    block_on(async {
        let mut file = open_fresh(&path).await;
        // Accepted into the File's buffer; no flush before the send.
        file.write_all(b"written, then sent").await.unwrap();
        let (tx, mut rx) = overlap::pipe::pipe().unwrap();
        assert_eq!(file.send_to(&tx, 0, 64).await.unwrap(), 18);
        let mut got = [0u8; 18];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"written, then sent");
    });
}

#[test]
fn a_reset_peer_is_an_error_naming_the_file() {
    let dir = TempDir::new("sendfile-reset");
    let path = dir.join("big");
    std::fs::write(&path, pattern_seeded(8 << 20, 7)).unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (a, b) = tcp_pair().await;
        b.set_linger(Some(Duration::ZERO)).unwrap();
        drop(b);
        sleep(Duration::from_millis(20)).await;
        let err = within(
            HANG,
            file.send_to(&a, 0, 8 << 20),
            "send_to hung on a dead socket",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("failed to send "), "{err}");
        assert!(err.to_string().contains("big"), "{err}");
    });
}

#[test]
fn a_destination_the_kernel_refuses_is_invalid_input() {
    let dir = TempDir::new("sendfile-einval");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let efd = AsyncFd::new(eventfd()).unwrap();
        let err = file.send_to(&efd, 0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn a_dropped_send_delivers_a_clean_prefix_and_the_file_stays_usable() {
    let dir = TempDir::new("sendfile-cancel");
    let path = dir.join("big");
    let data = pattern_seeded(8 << 20, 8);
    std::fs::write(&path, &data).unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        // Nobody reads yet: the send waits for room, and the timeout drops it.
        assert!(
            timeout(Duration::from_millis(30), file.send_to(&a, 0, 8 << 20))
                .await
                .is_err()
        );
        // Closing our end is safe even if a pool run is still sending (it holds its own
        // fd). The peer then reads some prefix of the file, intact, and end of file.
        drop(a);
        let mut got = Vec::new();
        within(HANG, b.read_to_end(&mut got), "the socket never closed")
            .await
            .unwrap();
        assert!(!got.is_empty() && got.len() <= data.len());
        assert!(got == data[..got.len()], "the bytes sent are not a prefix");
        // The same File serves another send.
        let (c, mut d) = UnixStream::pair().unwrap();
        assert_eq!(file.send_to(&c, 0, 5).await.unwrap(), 5);
        let mut five = [0u8; 5];
        d.read_exact(&mut five).await.unwrap();
        assert_eq!(five, data[..5]);
        fs::remove_file(&path).await.unwrap();
    });
}

#[test]
fn a_closed_pipe_sender_is_broken_pipe_not_a_panic() {
    let dir = TempDir::new("sendfile-closed");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (mut tx, _rx) = overlap::pipe::pipe().unwrap();
        tx.close().await.unwrap();
        let err = file.send_to(&tx, 0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    });
}

/// A directory opened as a `File` is not blamed on the destination: the error says the
/// source is a directory (`EISDIR`, as a read of it does), not `InvalidInput`.
#[test]
fn a_directory_source_is_a_directory_error() {
    let dir = TempDir::new("sendfile-dir");
    block_on(async {
        let mut file = File::open(dir.path()).await.unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let err = file.send_to(&a, 0, 4).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EISDIR), "{err}");
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory, "{err}");
    });
}

/// Errors found on the destination before any `sendfile` (a closed sender, a pipe's read
/// end given as the destination) name the file too, as the docs promise for every error.
#[test]
fn destination_errors_name_the_file_too() {
    let dir = TempDir::new("sendfile-dest-errors");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        let want = format!("failed to send {}: ", path.display());
        let err = file.send_to(&rx, 0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().starts_with(&want), "{err}");
        tx.close().await.unwrap();
        let err = file.send_to(&tx, 0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        assert!(err.to_string().starts_with(&want), "{err}");
        // The file still sends.
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(file.send_to(&a, 0, 4).await.unwrap(), 4);
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"data");
    });
}

/// A file with bytes whose file system cannot feed `sendfile` (`/proc/<pid>/status`, whose
/// size says 0; the kernel refuses it with `EINVAL`) is an error saying the file is the
/// cause, not an empty file: a send of it is never `Ok(0)`.
#[test]
fn a_source_the_kernel_cannot_send_from_is_an_error_not_an_empty_file() {
    block_on(async {
        let path = "/proc/self/status";
        let mut file = File::open(path).await.unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        match file.send_to(&a, 0, 4096).await {
            // A kernel that splices such files sends their bytes.
            Ok(n) => {
                assert!(n > 5, "{n} bytes sent");
                let mut got = [0u8; 5];
                b.read_exact(&mut got).await.unwrap();
                assert_eq!(&got, b"Name:");
            }
            Err(err) => {
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
                let msg = err.to_string();
                assert!(
                    msg.starts_with(&format!("failed to send {path}: ")),
                    "{msg}"
                );
                assert!(msg.contains("cannot sendfile from this file"), "{msg}");
            }
        }
        // The same File still reads.
        let mut text = String::new();
        file.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("Name:"), "{text}");
    });
}

/// A listening socket never becomes writable: given as the destination (it is `Registered`
/// as every socket is), it is refused with `InvalidInput` naming the file, where the send
/// waited for its room for ever.
#[test]
fn a_listening_socket_destination_is_invalid_input_not_a_wait_for_ever() {
    let dir = TempDir::new("sendfile-listener");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let tcp = overlap::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let unix = overlap::net::UnixListener::bind(dir.join("sock")).unwrap();
        let limit = Duration::from_secs(5);
        let errs = [
            within(limit, file.send_to(&tcp, 0, 4), "waited on a TCP listener").await,
            within(
                limit,
                file.send_to(&unix, 0, 4),
                "waited on a Unix listener",
            )
            .await,
        ];
        for err in errs {
            let err = err.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().starts_with("failed to send "), "{err}");
            assert!(err.to_string().contains("listening"), "{err}");
        }
    });
}

/// A UDP socket never connected has nowhere to send a file's bytes: `NotConnected` naming
/// the file (what `UdpSocket::send` says there), where the kernel's bare `EDESTADDRREQ` had
/// no `ErrorKind` a caller could match.
#[test]
fn an_unconnected_udp_destination_is_not_connected() {
    let dir = TempDir::new("sendfile-udp");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let udp = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let err = within(Duration::from_secs(5), file.send_to(&udp, 0, 4), "hung")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
        assert!(err.to_string().starts_with("failed to send "), "{err}");
    });
}

/// A `File` opened for writing only (an append-only log segment, say) cannot be read by
/// `sendfile`: `InvalidInput` saying the file is not open for reading, where the kernel's
/// bare "Bad file descriptor" read as a closed socket.
#[test]
fn a_file_not_open_for_reading_says_so() {
    let dir = TempDir::new("sendfile-write-only");
    let path = dir.join("segment");
    block_on(async {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        file.write_all(b"record").await.unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let err = file.send_to(&a, 0, 6).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let said = err.to_string();
        assert!(
            said.starts_with(&format!("failed to send {}: ", path.display())),
            "{said}"
        );
        assert!(said.contains("not open for reading"), "{said}");
        // The same file opened for reading sends.
        let mut reader = File::open(&path).await.unwrap();
        assert_eq!(reader.send_to(&a, 0, 6).await.unwrap(), 6);
        let mut got = [0u8; 6];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"record");
    });
}
