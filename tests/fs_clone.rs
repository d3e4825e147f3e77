//! `File::try_clone` and `File::try_into_std`: the fd handed on sits where the reader is,
//! after every byte written, whatever was buffered or in flight; on a pipe, bytes already
//! buffered stay with the original (`try_clone`) or go (`into_std`).

mod support;

use std::io::{Read, Seek, SeekFrom};

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{open_fresh, open_read_write, pattern, pattern_seeded, TempDir};

const HANG: std::time::Duration = std::time::Duration::from_secs(10);

#[test]
fn writes_through_a_clone_land_after_the_originals() {
    let dir = TempDir::new("clone-write");
    let path = dir.join("f");
    // Big enough that part is in a write job and part still buffered when cloning.
    let (a, b) = (pattern(3 << 20), pattern_seeded(100_000, 1));
    overlap::block_on(async {
        let mut file = open_fresh(&path).await;
        file.write_all(&a).await.unwrap();
        let mut clone = file.try_clone().await.unwrap();
        clone.write_all(&b).await.unwrap();
        clone.flush().await.unwrap();
        // One offset: the original goes on after the clone's bytes.
        file.write_all(b"end").await.unwrap();
        file.flush().await.unwrap();
    });
    let want = [&a[..], &b[..], b"end"].concat();
    assert!(std::fs::read(&path).unwrap() == want);
}

#[test]
fn a_clone_reads_from_where_the_originals_reader_is() {
    let dir = TempDir::new("clone-read");
    let path = dir.join("f");
    let data = pattern(1 << 20);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        // Small sequential reads: a chunk is buffered and the next one is read ahead.
        let mut head = vec![0; 200_001];
        for part in head.chunks_mut(10_000) {
            file.read_exact(part).await.unwrap();
        }
        assert!(head == data[..200_001]);
        let mut clone = file.try_clone().await.unwrap();
        let mut next = vec![0; 5000];
        clone.read_exact(&mut next).await.unwrap();
        assert!(next == data[200_001..205_001]);
        // The clone hands back by seeking; the original reads on from there.
        assert_eq!(clone.seek(SeekFrom::Current(0)).await.unwrap(), 205_001);
        let mut more = vec![0; 7];
        file.read_exact(&mut more).await.unwrap();
        assert_eq!(more, data[205_001..205_008]);
    });
}

#[test]
fn try_into_std_refuses_while_bytes_are_buffered_or_in_flight() {
    let dir = TempDir::new("try-into-std");
    let path = dir.join("f");
    let data = pattern(300_000);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        // Written bytes not yet out: refused, and the file is given back unchanged.
        file.write_all(b"abc").await.unwrap();
        let mut file = file.try_into_std().expect_err("a write is pending");
        file.flush().await.unwrap();
        let std_file = file.try_into_std().expect("flushed");
        assert_eq!(std::fs::read(&path).unwrap()[..3], *b"abc");

        // Read-ahead buffered: the fd's offset is past the reader, so refused too.
        let mut file = overlap::fs::File::from_std(std_file);
        let mut buf = [0; 10];
        file.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, data[3..13]);
        let mut file = file.try_into_std().expect_err("read-ahead is buffered");
        // A seek gives the read-ahead back; then the fd is where the reader is.
        assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 13);
        let mut std_file = file.try_into_std().expect("nothing buffered");
        assert_eq!(std_file.stream_position().unwrap(), 13);
        let mut rest = Vec::new();
        std_file.read_to_end(&mut rest).unwrap();
        assert!(rest == data[13..]);
    });
}

#[test]
fn try_into_std_on_a_fresh_file_succeeds() {
    let dir = TempDir::new("try-into-std-fresh");
    let path = dir.join("f");
    std::fs::write(&path, b"hello").unwrap();
    overlap::block_on(async {
        let file = overlap::fs::File::open(&path).await.unwrap();
        let mut std_file = file.try_into_std().expect("nothing done yet");
        let mut s = String::new();
        std_file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    });
}

#[test]
fn a_try_clone_dropped_midway_leaves_the_reader_and_writes_in_place() {
    use std::future::Future;
    use std::task::Poll;
    let dir = TempDir::new("clone-cancel");
    let path = dir.join("f");
    let data = pattern(1 << 20);
    // Dropped after 1, 2, ... polls: waiting for a write job, or with its seek in flight.
    for polls in 1..16 {
        std::fs::write(&path, &data).unwrap();
        overlap::block_on(async {
            let mut file = open_read_write(&path).await;
            let (mut pos, mut part) = (0, vec![0; 10_000]);
            for _ in 0..3 {
                file.read_exact(&mut part).await.unwrap();
                pos += 10_000;
            }
            let mut expect = data.clone();
            if polls % 2 == 0 {
                file.write_all(b"xy").await.unwrap();
                expect[pos..pos + 2].copy_from_slice(b"xy");
                pos += 2;
            }
            {
                let mut clone = std::pin::pin!(file.try_clone());
                for _ in 0..polls {
                    let done =
                        std::future::poll_fn(|cx| Poll::Ready(clone.as_mut().poll(cx).is_ready()))
                            .await;
                    if done {
                        break;
                    }
                    overlap::task::yield_now().await;
                }
            }
            for _ in 0..3 {
                file.read_exact(&mut part).await.unwrap();
                assert!(part == expect[pos..pos + 10_000], "{polls} polls, at {pos}");
                pos += 10_000;
            }
            let mut clone = file.try_clone().await.unwrap();
            clone.read_exact(&mut part).await.unwrap();
            assert!(
                part == expect[pos..pos + 10_000],
                "the clone, {polls} polls"
            );
        });
    }
}

/// On a pipe, which cannot seek, bytes a `File` buffered and its user has not consumed stay
/// with it after `try_clone` (they cannot be given back to the fd); the clone reads what
/// comes next from the fd. `into_std` drops them, as documented, and hands on the fd.
#[test]
fn a_clone_of_a_pipe_file_leaves_its_buffered_bytes_with_the_original() {
    use overlap::io::AsyncBufReadExt;
    use std::io::Write;
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut file =
        overlap::fs::File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
    overlap::block_on(async {
        writer.write_all(b"abcdef").unwrap();
        // A buffered read takes what the pipe holds; two bytes are consumed.
        let got = support::within(HANG, file.fill_buf(), "fill_buf")
            .await
            .unwrap();
        assert_eq!(got, b"abcdef");
        file.consume_unpin(2);
        let mut clone = support::within(HANG, file.try_clone(), "try_clone")
            .await
            .unwrap();
        writer.write_all(b"gh").unwrap();
        let mut two = [0u8; 2];
        support::within(HANG, clone.read_exact(&mut two), "clone read")
            .await
            .unwrap();
        assert_eq!(&two, b"gh", "the clone reads on from the fd");
        let mut four = [0u8; 4];
        support::within(HANG, file.read_exact(&mut four), "original read")
            .await
            .unwrap();
        assert_eq!(&four, b"cdef", "the original keeps what it had buffered");
        // Buffered again, then handed to std: those bytes go, the fd reads on.
        writer.write_all(b"ijk").unwrap();
        assert_eq!(file.fill_buf().await.unwrap(), b"ijk");
        let mut std_file = support::within(HANG, file.into_std(), "into_std")
            .await
            .unwrap();
        writer.write_all(b"l").unwrap();
        drop(writer);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut std_file, &mut rest).unwrap();
        assert_eq!(rest, b"l");
    });
}
