//! An adversarial review of `File`'s read path (read-ahead of 64 KiB growing to 2 MiB,
//! taken back before a write or seek): the position a seek reports, the offset handed to
//! std, a file growing or truncated under the reader, reads mixed with writes and
//! `O_APPEND`, dropped reads, `read_exact` at the end, `AsyncBufRead`, procfs, FIFOs, and
//! a random walk checked against a model of the file.

mod support;

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::task::Poll;
use std::time::Duration;

use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use support::{pattern, pattern_seeded, poll_once, Rng, TempDir};

/// A file of `len` pattern bytes in `dir`, and those bytes.
fn data_file(dir: &TempDir, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("data");
    let data = pattern(len);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

#[test]
fn seek_current_zero_reports_the_readers_position_not_the_read_aheads() {
    let dir = TempDir::new("read-review-pos");
    let (path, data) = data_file(&dir, 5 << 20);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut pos = 0usize;
        // Odd sizes, so the reader ends mid-chunk while a read-ahead is fetched or held.
        for n in [1, 7, 65_535, 3, 200_001, 1_000_000] {
            let mut buf = vec![0u8; n];
            file.read_exact(&mut buf).await.unwrap();
            assert!(buf == data[pos..pos + n], "bytes at {pos}");
            pos += n;
            assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), pos as u64);
            assert_eq!(file.stream_position().await.unwrap(), pos as u64);
        }
        // Backwards from the reader's position, not from the fd's.
        assert_eq!(
            file.seek(SeekFrom::Current(-10)).await.unwrap(),
            pos as u64 - 10
        );
        let mut ten = [0u8; 10];
        file.read_exact(&mut ten).await.unwrap();
        assert_eq!(&ten[..], &data[pos - 10..pos]);
    });
}

#[test]
fn into_std_and_try_into_std_after_partial_reads_hand_over_the_readers_offset() {
    let dir = TempDir::new("read-review-into-std");
    let (path, data) = data_file(&dir, 3 << 20);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut head = vec![0u8; 1000];
        file.read_exact(&mut head).await.unwrap();
        let mut std_file = file.into_std().await.unwrap();
        assert_eq!(std_file.stream_position().unwrap(), 1000);
        let mut rest = Vec::new();
        std_file.read_to_end(&mut rest).unwrap();
        assert!(rest == data[1000..]);

        // `try_into_std` refuses while read-ahead is buffered, and after a seek gives the
        // fd at the reader's offset.
        let mut file = File::open(&path).await.unwrap();
        // A small read fetches a whole 64 KiB chunk: the rest stays buffered.
        let mut some = vec![0u8; 1000];
        file.read_exact(&mut some).await.unwrap();
        let mut file = file.try_into_std().expect_err("read-ahead is buffered");
        file.seek(SeekFrom::Current(0)).await.unwrap();
        let mut std_file = file.try_into_std().expect("nothing buffered after a seek");
        assert_eq!(std_file.stream_position().unwrap(), 1000);
        let mut next = [0u8; 16];
        std_file.read_exact(&mut next).unwrap();
        assert_eq!(&next[..], &data[1000..1016]);
    });
}

#[test]
fn a_try_clone_after_partial_reads_reads_on_where_the_original_stopped() {
    let dir = TempDir::new("read-review-clone");
    let (path, data) = data_file(&dir, 1 << 20);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut head = vec![0u8; 70_000];
        file.read_exact(&mut head).await.unwrap();
        let mut clone = file.try_clone().await.unwrap();
        assert_eq!(clone.stream_position().await.unwrap(), 70_000);
        let mut next = vec![0u8; 5];
        clone.read_exact(&mut next).await.unwrap();
        assert_eq!(&next[..], &data[70_000..70_005]);
    });
}

#[test]
fn a_file_growing_under_a_reader_at_its_end_is_read_on_not_a_cached_end() {
    let dir = TempDir::new("read-review-grow");
    let path = dir.join("log");
    let mut appender = std::fs::File::create(&path).unwrap();
    let mut model = Vec::new();
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut got = Vec::new();
        assert_eq!(file.read_to_end(&mut got).await.unwrap(), 0);
        // Sizes below, at and well past the first read-ahead chunk.
        for (i, len) in [10usize, 65_536, 1, 3 << 20, 100].into_iter().enumerate() {
            let bytes = pattern_seeded(len, i as u32 + 1);
            appender.write_all(&bytes).unwrap();
            model.extend_from_slice(&bytes);
            let mut more = Vec::new();
            assert_eq!(file.read_to_end(&mut more).await.unwrap(), len, "round {i}");
            assert!(more == bytes, "round {i}: the appended bytes, exactly");
            got.extend_from_slice(&more);
            // At the end: a read says so again, each time, until the file grows.
            let mut one = [0u8; 1];
            assert_eq!(file.read(&mut one).await.unwrap(), 0);
            assert_eq!(file.read(&mut one).await.unwrap(), 0);
        }
        assert!(got == model);
        assert_eq!(file.stream_position().await.unwrap(), model.len() as u64);
    });
}

#[test]
fn a_truncation_by_another_handle_is_seen_after_a_seek_as_documented() {
    let dir = TempDir::new("read-review-truncate");
    let (path, data) = data_file(&dir, 1 << 20);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut head = [0u8; 10];
        file.read_exact(&mut head).await.unwrap();
        // Another handle cuts the file to 100 bytes and writes a new tail.
        let other = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        other.set_len(100).unwrap();
        let tail = b"NEW TAIL";
        std::os::unix::fs::FileExt::write_all_at(&other, tail, 100).unwrap();
        // Documented: the bytes read ahead are the file as it was when fetched...
        let mut stale = [0u8; 20];
        file.read_exact(&mut stale).await.unwrap();
        assert_eq!(&stale[..], &data[10..30]);
        // ... until a seek, any seek, drops them: then the file as it is now.
        assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 30);
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).await.unwrap();
        let mut expected = data[30..100].to_vec();
        expected.extend_from_slice(tail);
        assert_eq!(rest, expected);
        assert_eq!(file.stream_position().await.unwrap(), 108);
    });
}

#[test]
fn read_exact_running_into_the_end_is_unexpected_eof_with_the_position_at_the_end() {
    let dir = TempDir::new("read-review-read-exact");
    let (path, data) = data_file(&dir, 100_000);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut head = vec![0u8; 99_990];
        file.read_exact(&mut head).await.unwrap();
        let mut twenty = [0u8; 20];
        let err = file.read_exact(&mut twenty).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        // As std's: the ten bytes there were are consumed, into the buffer's head.
        assert_eq!(&twenty[..10], &data[99_990..]);
        assert_eq!(file.stream_position().await.unwrap(), 100_000);
        let mut one = [0u8; 1];
        assert_eq!(file.read(&mut one).await.unwrap(), 0);
        // And from the start again, whole.
        file.rewind().await.unwrap();
        let mut all = Vec::new();
        file.read_to_end(&mut all).await.unwrap();
        assert!(all == data);
    });
}

#[test]
fn reads_and_writes_interleaved_see_each_other_at_the_readers_position() {
    let dir = TempDir::new("read-review-mixed");
    let (path, mut model) = data_file(&dir, 400_000);
    overlap::block_on(async {
        let mut file = support::open_read_write(&path).await;
        let mut pos = 0usize;
        let mut rng = Rng(0x5eed_0001);
        for round in 0..40 {
            let n = 1 + rng.below(90_000);
            let mut buf = vec![0u8; n];
            let got = file.read(&mut buf).await.unwrap();
            let want = n.min(model.len() - pos);
            assert!(
                got <= want && (got > 0 || want == 0),
                "round {round}: {got} of {want}"
            );
            assert!(
                buf[..got] == model[pos..pos + got],
                "round {round}: read at {pos}"
            );
            pos += got;
            // A write after the read lands right after what was read (not after the
            // read-ahead), and the next read goes on after the written bytes.
            let w = pattern_seeded(1 + rng.below(3000), round + 100);
            file.write_all(&w).await.unwrap();
            let end = (pos + w.len()).min(model.len());
            model.splice(pos..end, w.iter().copied());
            pos += w.len();
        }
        file.flush().await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), pos as u64);
        file.rewind().await.unwrap();
        let mut all = Vec::new();
        file.read_to_end(&mut all).await.unwrap();
        assert!(all == model, "read back through the same File");
    });
    assert!(std::fs::read(&path).unwrap() == model, "on disk");
}

#[test]
fn an_append_mode_file_writes_at_the_end_and_reads_from_its_offset() {
    let dir = TempDir::new("read-review-append");
    let (path, data) = data_file(&dir, 300_000);
    overlap::block_on(async {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .await
            .unwrap();
        let mut head = [0u8; 10];
        file.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..], &data[..10]);
        // The write goes to the end however far the read-ahead went, and, as with std,
        // leaves the offset there.
        file.write_all(b"APPENDED").await.unwrap();
        file.flush().await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 300_008);
        let mut one = [0u8; 1];
        assert_eq!(file.read(&mut one).await.unwrap(), 0);
        // A seek back reads the old bytes, then the appended ones, once.
        file.seek(SeekFrom::Start(299_990)).await.unwrap();
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).await.unwrap();
        let mut expected = data[299_990..].to_vec();
        expected.extend_from_slice(b"APPENDED");
        assert_eq!(tail, expected);
    });
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk.len(), 300_008);
    assert!(on_disk[..300_000] == data[..]);
}

#[test]
fn reads_dropped_after_one_poll_lose_and_repeat_no_byte() {
    let dir = TempDir::new("read-review-dropped");
    let (path, data) = data_file(&dir, 6 << 20);
    for seed in [1u64, 7, 42, 0xdead_beef] {
        let mut rng = Rng(seed);
        overlap::block_on(async {
            let mut file = File::open(&path).await.unwrap();
            let mut got = Vec::with_capacity(data.len());
            loop {
                let mut buf = vec![0u8; 1 + rng.below(300_000)];
                if rng.below(3) == 0 {
                    // Polled once and dropped: its job may run on, its bytes stay buffered;
                    // one served from the buffer at once has read its bytes.
                    for _ in 0..1 + rng.below(2) {
                        if let Poll::Ready(n) = poll_once(Box::pin(file.read(&mut buf))).await {
                            got.extend_from_slice(&buf[..n.unwrap()]);
                        }
                    }
                    continue;
                }
                let n = file.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if rng.below(8) == 0 {
                    let at = file.seek(SeekFrom::Current(0)).await.unwrap();
                    assert_eq!(at, got.len() as u64, "seed {seed}");
                }
            }
            assert_eq!(got.len(), data.len(), "seed {seed}");
            assert!(got == data, "seed {seed}: every byte once, in order");
        });
    }
}

#[test]
fn fill_buf_and_consume_walk_the_file_byte_exactly() {
    let dir = TempDir::new("read-review-bufread");
    let (path, data) = data_file(&dir, 3 << 20);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut rng = Rng(0x00b0_f0e5);
        let mut got = Vec::new();
        loop {
            let available = file.fill_buf().await.unwrap();
            if available.is_empty() {
                break;
            }
            // Nothing consumed: the same bytes again, not the next ones.
            let len = available.len();
            let first = available[0];
            let again = file.fill_buf().await.unwrap();
            assert_eq!((again.len(), again[0]), (len, first));
            let take = rng.below(len.min(200_000) + 1);
            got.extend_from_slice(&again[..take]);
            file.consume_unpin(take);
            if rng.below(10) == 0 {
                let at = file.stream_position().await.unwrap();
                assert_eq!(at, got.len() as u64);
            }
        }
        assert!(got == data);
    });
}

#[test]
fn read_to_end_of_a_procfs_file_reports_size_zero_yet_reads_it_all() {
    overlap::block_on(async {
        let mut file = File::open("/proc/self/status").await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 0);
        let mut text = String::new();
        file.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("Name:\t"), "{text}");
        let pid_line = format!("\nPid:\t{}\n", std::process::id());
        assert!(text.contains(&pid_line), "{text}");
        assert!(text.ends_with('\n'));
        // Every line a `Key:\tvalue` one: nothing cut or repeated across job boundaries.
        assert!(text.lines().all(|l| l.contains(':')), "{text}");
    });
}

#[test]
fn a_fifo_file_reads_only_what_is_asked_and_refuses_to_seek() {
    let dir = TempDir::new("read-review-fifo");
    let path = dir.join("fifo");
    support::mkfifo(&path);
    // Read-write: opening it does not wait for a reader, and it reads what remains.
    let mut other_end = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let data = pattern(100);
    other_end.write_all(&data).unwrap();
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut ten = [0u8; 10];
        file.read_exact(&mut ten).await.unwrap();
        assert_eq!(&ten[..], &data[..10]);
        let err = file.seek(SeekFrom::Current(0)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotSeekable, "{err}");
        // The other 90 are still in the pipe: nothing was read ahead.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut rest = [0u8; 90];
            other_end.read_exact(&mut rest).unwrap();
            tx.send(rest).unwrap();
        });
        let rest = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the 90 bytes are still in the pipe (hang guard)");
        assert_eq!(&rest[..], &data[10..]);
        drop(file);
    });
}

#[test]
fn one_byte_reads_cost_a_job_per_chunk_not_one_per_byte() {
    let dir = TempDir::new("read-review-one-byte");
    let (path, data) = data_file(&dir, 1 << 20);
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let before = overlap::metrics().blocking_jobs;
        let mut got = Vec::with_capacity(data.len());
        let mut one = [0u8; 1];
        while file.read(&mut one).await.unwrap() == 1 {
            got.push(one[0]);
        }
        let jobs = overlap::metrics().blocking_jobs - before;
        assert!(got == data);
        // 64 KiB, 128 KiB, 256 KiB, 512 KiB, then the rest and the end: a handful of jobs,
        // never one per byte nor one per 64 KiB.
        assert!(
            (2..=8).contains(&jobs),
            "{jobs} jobs for 1 MiB read a byte at a time"
        );
    });
}

/// A random walk of reads, seeks, positional reads, writes and appends by another handle,
/// checked step by step against a model of the file and the reader's position.
#[test]
fn random_walks_match_a_model_of_the_file() {
    let dir = TempDir::new("read-review-model");
    for seed in [3u64, 11, 2026, 0x0123_4567_89ab] {
        let path = dir.join(&format!("walk-{seed}"));
        let mut model = pattern_seeded(3 << 20, seed as u32);
        std::fs::write(&path, &model).unwrap();
        let mut other = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut rng = Rng(seed);
        overlap::block_on(async {
            let mut file = support::open_read_write(&path).await;
            let mut pos = 0usize;
            for step in 0..150 {
                let at = format!("seed {seed} step {step} pos {pos}");
                match rng.below(10) {
                    0..=3 => {
                        let mut buf = vec![0u8; 1 + rng.below(400_000)];
                        let n = file.read(&mut buf).await.unwrap();
                        let want = buf.len().min(model.len() - pos);
                        assert!(n <= want && (n > 0 || want == 0), "{at}: {n} of {want}");
                        assert!(buf[..n] == model[pos..pos + n], "{at}: bytes");
                        pos += n;
                    }
                    4 => {
                        let to = rng.below(model.len() + 1);
                        let delta = to as i64 - pos as i64;
                        let got = file.seek(SeekFrom::Current(delta)).await.unwrap();
                        assert_eq!(got, to as u64, "{at}: seek by {delta}");
                        pos = to;
                    }
                    5 => {
                        let back = rng.below(1000);
                        let got = file.seek(SeekFrom::End(-(back as i64))).await;
                        let to = model.len().checked_sub(back);
                        match to {
                            Some(to) => assert_eq!(got.unwrap(), to as u64, "{at}"),
                            None => assert!(got.is_err(), "{at}"),
                        }
                        pos = to.unwrap_or(pos);
                    }
                    6 => {
                        let off = rng.below(model.len() + 10);
                        let mut buf = vec![0u8; 1 + rng.below(100_000)];
                        let n = file.read_at(&mut buf, off as u64).await.unwrap();
                        let want = buf.len().min(model.len().saturating_sub(off));
                        assert_eq!(n, want, "{at}: read_at {off}");
                        assert!(buf[..n] == model[off..off + n], "{at}: read_at bytes");
                    }
                    7 => {
                        let w = pattern_seeded(1 + rng.below(5000), step);
                        file.write_all(&w).await.unwrap();
                        let end = (pos + w.len()).min(model.len());
                        model.splice(pos..end, w.iter().copied());
                        pos += w.len();
                    }
                    8 => {
                        // Another handle appends; flushed writes first so its end is ours.
                        file.flush().await.unwrap();
                        let w = pattern_seeded(1 + rng.below(200_000), step + 7);
                        other.write_all(&w).unwrap();
                        model.extend_from_slice(&w);
                    }
                    _ => {
                        let got = file.stream_position().await.unwrap();
                        assert_eq!(got, pos as u64, "{at}: position");
                    }
                }
            }
            file.flush().await.unwrap();
            assert_eq!(file.stream_position().await.unwrap(), pos as u64);
        });
        assert!(
            std::fs::read(&path).unwrap() == model,
            "seed {seed}: on disk"
        );
    }
}

/// The read-ahead that runs into the end of the file says nothing about the file when the
/// reader gets there: bytes appended after it ran, but before the reader's read, are read,
/// not hidden behind an end-of-file remembered from the read-ahead.
#[test]
fn an_end_found_by_the_read_ahead_does_not_hide_bytes_appended_since() {
    let dir = TempDir::new("read-review-stale-end");
    let (path, data) = data_file(&dir, 128 * 1024);
    let mut appender = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let mut first = vec![0u8; 64 * 1024];
        file.read_exact(&mut first).await.unwrap();
        // The second chunk is read in order: the `File` reads ahead from its end, and that
        // read-ahead finds the end of the file.
        let mut one = [0u8; 1];
        file.read_exact(&mut one).await.unwrap();
        // A positional read waits for the read-ahead's job, so it has run by now.
        let mut probe = [0u8; 1];
        file.read_exact_at(&mut probe, 0).await.unwrap();
        assert_eq!(probe[0], data[0]);
        appender.write_all(b"appended later").unwrap();
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).await.unwrap();
        let mut expected = data[64 * 1024 + 1..].to_vec();
        expected.extend_from_slice(b"appended later");
        assert_eq!(rest.len(), expected.len(), "the appended bytes are read");
        assert!(rest == expected);
    });
}
