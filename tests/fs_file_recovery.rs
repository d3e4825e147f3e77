//! `fs::File` after a failure: a failed seek leaves the position where it was (read-ahead
//! included), and a write job left running by a runtime that was dropped is waited for by
//! the `File`'s next operation under another runtime. Outside any runtime (the one a `File`
//! or `ReadDir` was made in dropped) an operation fails with an `Other` error, as one whose
//! job never ran does, and the next runtime carries on with nothing lost.

mod support;

use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::task::Poll;

use overlap::fs;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{polled, TempDir};

/// The result of `fut` polled once outside any runtime, which must not be `Pending`.
fn poll_outside<T>(fut: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    match polled(fut).poll() {
        Poll::Ready(res) => res,
        Poll::Pending => panic!("waits outside any runtime, where nothing runs its job"),
    }
}

/// An fs operation polled outside any runtime fails with an `Other` error saying so (the
/// crate docs' rule for an operation whose job never ran), where it panicked; the `File`
/// and the `ReadDir` made in a runtime since dropped go on in the next one, losing nothing.
#[test]
fn operations_outside_any_runtime_fail_and_the_next_runtime_goes_on() {
    let dir = TempDir::new("rv-outside");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let w = dir.join("w");
    std::fs::write(&w, b"").unwrap();
    let first = overlap::Runtime::new().unwrap();
    let (mut f, mut entries) = first.block_on(async {
        let f = fs::File::open(&path).await.unwrap();
        (f, fs::read_dir(dir.path()).await.unwrap())
    });
    drop(first);
    let mut b = [0u8; 4];
    for err in [
        poll_outside(f.read(&mut b)).map(drop).unwrap_err(),
        poll_outside(entries.next_entry()).map(drop).unwrap_err(),
        poll_outside(fs::read(&path)).map(drop).unwrap_err(),
        poll_outside(fs::metadata(&path)).map(drop).unwrap_err(),
    ] {
        assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
        assert!(err.to_string().contains("outside"), "{err}");
    }
    // Accepted bytes are still written (on this thread, as a dropped `File`'s are there).
    let mut out = overlap::block_on(fs::File::create(&w)).unwrap();
    let wrote = poll_outside(async {
        out.write_all(b"out").await?;
        out.flush().await
    });
    wrote.unwrap();
    assert_eq!(std::fs::read(&w).unwrap(), b"out");
    overlap::block_on(async {
        f.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"0123");
        let entry = entries
            .next_entry()
            .await
            .unwrap()
            .expect("the entry was kept");
        let mut names = vec![entry.file_name()];
        while let Some(entry) = entries.next_entry().await.unwrap() {
            names.push(entry.file_name());
        }
        names.sort();
        assert_eq!(names, ["f", "w"]);
    });
}

#[test]
fn failed_seek_after_read_ahead_keeps_position() {
    let dir = TempDir::new("rv-seek");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let mut s = std::fs::File::open(&path).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert!(s.seek(SeekFrom::Current(-100)).is_err());
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"1", "std");
    overlap::block_on(async {
        let mut f = fs::File::open(&path).await.unwrap();
        let mut b = [0u8; 1];
        f.read_exact(&mut b).await.unwrap();
        assert!(f.seek(SeekFrom::Current(-100)).await.is_err());
        let n = f.read(&mut b).await.unwrap();
        assert_eq!((n, &b), (1, b"1"), "overlap after failed seek");
    });
}

#[test]
fn failed_seek_end_after_read_ahead_keeps_position() {
    let dir = TempDir::new("rv-seek2");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    overlap::block_on(async {
        let mut f = fs::File::open(&path).await.unwrap();
        let mut b = [0u8; 1];
        f.read_exact(&mut b).await.unwrap();
        assert!(f.seek(SeekFrom::End(-100)).await.is_err());
        let pos = f.seek(SeekFrom::Current(0)).await.unwrap();
        assert_eq!(pos, 1, "position after failed seek");
    });
}

#[test]
fn flush_in_a_second_runtime_waits_for_the_write_the_first_left_running() {
    let dir = TempDir::new("rv-xrt2");
    let path = dir.join("f");
    let mut errors = 0;
    let mut short = 0;
    for _ in 0..50 {
        let mut f = overlap::block_on(async {
            let mut f = fs::File::create(&path).await.unwrap();
            f.write_all(&vec![b'a'; 2 << 20]).await.unwrap();
            f
        });
        let res = overlap::block_on(async { f.flush().await });
        let len_now = std::fs::metadata(&path).unwrap().len();
        if res.is_err() {
            errors += 1;
            println!("{res:?} len at return {len_now}");
        }
        if len_now != 2 << 20 {
            short += 1;
        }
        drop(f);
    }
    assert_eq!((errors, short), (0, 0));
}
