//! `File::read_at`, `read_exact_at`, `write_at` and `write_all_at` (`pread`/`pwrite`, std's
//! `FileExt`): the position does not move, buffered writes go out before them, read-ahead
//! does not hide their bytes, big buffers go in several jobs, a dropped one lands before
//! the next operation, and refusals (an offset too large, a FIFO, a read-only fd, the end
//! of the file) are clear errors naming the file. `tests/fs_std_model.rs` mixes them with
//! every other operation against std's file.

mod support;

use std::io::{ErrorKind, SeekFrom};

use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use support::{
    mkfifo, open_fresh, open_read_write, pattern, pattern_seeded, poll_once_then_drop, Rng, TempDir,
};

#[test]
fn positional_calls_leave_the_position_and_see_buffered_writes() {
    let dir = TempDir::new("positional-position");
    let path = dir.join("f");
    overlap::block_on(async {
        let mut file = open_fresh(&path).await;
        // Still buffered, not flushed: `read_at` writes them out first.
        file.write_all(b"0123456789abcdef").await.unwrap();
        let mut four = [0u8; 4];
        assert_eq!(file.read_at(&mut four, 10).await.unwrap(), 4);
        assert_eq!(&four, b"abcd");
        assert_eq!(file.read_at(&mut four, 14).await.unwrap(), 2);
        assert_eq!(&four[..2], b"ef");
        assert_eq!(file.read_at(&mut four, 16).await.unwrap(), 0);
        assert_eq!(file.read_at(&mut four, 1 << 40).await.unwrap(), 0);
        assert_eq!(file.read_at(&mut [], 3).await.unwrap(), 0);
        assert_eq!(file.stream_position().await.unwrap(), 16);

        // Buffered bytes then a `write_at` over them: they land in that order.
        file.write_all(b"ghij").await.unwrap();
        assert_eq!(file.write_at(b"XY", 17).await.unwrap(), 2);
        assert_eq!(file.stream_position().await.unwrap(), 20);
        // A write at the position goes on from 20, not from where `write_at` ended.
        file.write_all(b"!").await.unwrap();
        // Past the end: the gap reads as zeros.
        file.write_all_at(b"end", 30).await.unwrap();
        file.flush().await.unwrap();
    });
    let mut want = b"0123456789abcdefgXYj!".to_vec();
    want.resize(30, 0);
    want.extend_from_slice(b"end");
    assert_eq!(std::fs::read(&path).unwrap(), want);
}

#[test]
fn a_write_at_replaces_bytes_the_reader_had_fetched_ahead() {
    let dir = TempDir::new("positional-read-ahead");
    let path = dir.join("f");
    let data = pattern(1 << 20);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        // A small read fetches 64 KiB or more, and starts fetching the next chunk.
        let mut head = [0u8; 100];
        file.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..], &data[..100]);
        // Overwrite bytes just ahead of the reader, inside what was fetched.
        file.write_all_at(&[0xEE; 1000], 200).await.unwrap();
        let mut next = vec![0u8; 2000];
        file.read_exact(&mut next).await.unwrap();
        let mut want = data[100..2100].to_vec();
        want[100..1100].fill(0xEE);
        assert!(next == want, "the reader saw the old bytes");
        assert_eq!(file.stream_position().await.unwrap(), 2100);
        // A write at the position still lands where the reader is.
        file.write_all(b"HERE").await.unwrap();
        file.flush().await.unwrap();
    });
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[2100..2104], b"HERE");
    assert_eq!(&on_disk[200..1200], &[0xEE; 1000][..]);
    assert_eq!(on_disk.len(), data.len());
}

#[test]
fn blocks_written_out_of_order_and_read_by_clones_at_once() {
    let dir = TempDir::new("positional-blocks");
    let path = dir.join("f");
    const BLOCK: usize = 16 * 1024;
    const BLOCKS: usize = 64;
    let data = pattern_seeded(BLOCK * BLOCKS, 7);
    overlap::block_on(async {
        let mut file = open_fresh(&path).await;
        // As a piece exchange gets them: in a shuffled order.
        let mut order: Vec<usize> = (0..BLOCKS).collect();
        let mut rng = Rng(11);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for &b in &order {
            let at = b * BLOCK;
            file.write_all_at(&data[at..at + BLOCK], at as u64)
                .await
                .unwrap();
        }
        assert_eq!(file.stream_position().await.unwrap(), 0);
        // Four tasks read blocks at once, each through its own handle.
        let mut tasks = Vec::new();
        for t in 0..4 {
            let mut mine = file.try_clone().await.unwrap();
            let data = data.clone();
            tasks.push(overlap::spawn(async move {
                let mut block = vec![0u8; BLOCK];
                for b in (t..BLOCKS).step_by(4).rev() {
                    let at = b * BLOCK;
                    mine.read_exact_at(&mut block, at as u64).await.unwrap();
                    assert!(block == data[at..at + BLOCK], "block {b}");
                }
                BLOCKS / 4
            }));
        }
        let mut read = 0;
        for t in tasks {
            read += t.await.unwrap();
        }
        assert_eq!(read, BLOCKS);
    });
    assert!(std::fs::read(&path).unwrap() == data);
}

#[test]
fn a_buffer_larger_than_max_buf_size_takes_several_jobs() {
    let dir = TempDir::new("positional-chunks");
    let path = dir.join("f");
    let data = pattern(10_000);
    overlap::block_on(async {
        let mut file = open_fresh(&path).await;
        file.set_max_buf_size(1000);
        // One call, one job: at most 1000 bytes.
        assert_eq!(file.write_at(&data, 0).await.unwrap(), 1000);
        file.write_all_at(&data[1000..], 1000).await.unwrap();
        let mut back = vec![0u8; 10_000];
        assert_eq!(file.read_at(&mut back, 0).await.unwrap(), 1000);
        assert_eq!(&back[..1000], &data[..1000]);
        file.read_exact_at(&mut back, 0).await.unwrap();
        assert!(back == data);
        // Ending part-way through a later chunk is an `UnexpectedEof` naming the file.
        let mut more = vec![0u8; 3000];
        let err = file.read_exact_at(&mut more, 8000).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        assert!(msg.contains("before offset 11000"), "{msg}");
        assert_eq!(&more[..2000], &data[8000..]);
    });
}

#[test]
fn refusals_are_clear_errors_and_change_nothing() {
    let dir = TempDir::new("positional-refusals");
    let path = dir.join("f");
    std::fs::write(&path, b"kept").unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        let far = i64::MAX as u64 + 1;
        let err = file.write_at(b"x", far).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("past the largest"), "{err}");
        let err = file
            .read_exact_at(&mut [0u8; 1], u64::MAX)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        // The `File` still works.
        let mut back = [0u8; 4];
        file.read_exact_at(&mut back, 0).await.unwrap();
        assert_eq!(&back, b"kept");

        // Read-only: `pwrite` gets `EBADF`, named.
        let mut ro = File::open(&path).await.unwrap();
        let err = ro.write_at(b"no", 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF));
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        ro.read_exact_at(&mut back, 0).await.unwrap();
        assert_eq!(&back, b"kept");

        // A FIFO has no offsets: `ESPIPE`, named.
        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        let mut f = open_read_write(&fifo).await;
        let err = f.read_at(&mut back, 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ESPIPE));
        assert!(err.to_string().contains(fifo.to_str().unwrap()), "{err}");
        let err = f.write_all_at(b"x", 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ESPIPE));
        // Nothing went into the FIFO: a plain write and read still pair up.
        f.write_all(b"ok").await.unwrap();
        f.flush().await.unwrap();
        let mut two = [0u8; 2];
        f.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ok");
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");
}

#[test]
fn in_append_mode_a_write_at_appends_as_linux_pwrite_does() {
    let dir = TempDir::new("positional-append");
    let path = dir.join("log");
    std::fs::write(&path, b"one\n").unwrap();
    overlap::block_on(async {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .await
            .unwrap();
        assert_eq!(file.write_at(b"two\n", 0).await.unwrap(), 4);
        let mut all = [0u8; 8];
        file.read_exact_at(&mut all, 0).await.unwrap();
        assert_eq!(&all, b"one\ntwo\n");
    });
}

#[test]
fn a_dropped_write_at_lands_before_the_next_operation() {
    let dir = TempDir::new("positional-dropped");
    let path = dir.join("f");
    let data = pattern(256 * 1024);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        for round in 0..200u32 {
            let stamp = round.to_le_bytes().repeat(16);
            let at = (round as u64 * 997) % (data.len() as u64 - 64);
            // With no job in flight (a seek waits for the read-ahead), its first poll starts
            // the job; the future is dropped right away.
            file.stream_position().await.unwrap();
            poll_once_then_drop(file.write_all_at(&stamp, at)).await;
            // A read from the position: its job must not run before the `pwrite`.
            file.seek(SeekFrom::Start(at)).await.unwrap();
            let mut back = vec![0u8; stamp.len()];
            file.read_exact(&mut back).await.unwrap();
            assert_eq!(back, stamp, "round {round}");
            // A dropped `read_at` changes nothing.
            let mut scratch = [0u8; 8];
            poll_once_then_drop(file.read_at(&mut scratch, 0)).await;
        }
    });
}
