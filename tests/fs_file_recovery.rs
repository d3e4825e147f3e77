//! `fs::File` after a failure: a failed seek leaves the position where it was (read-ahead
//! included), and a write job left running by a runtime that was dropped is waited for by
//! the `File`'s next operation under another runtime.

mod support;

use std::io::{Read, Seek, SeekFrom};

use overlap::fs;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::TempDir;

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
