//! Bytes go in and come back out unchanged: whole-file functions, `File` with odd buffer
//! sizes, seeks after writes, buffered reads.

mod support;

use overlap::fs::{self, File};
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use std::io::SeekFrom;
use support::{open_fresh, open_read_write, pattern, TempDir};

const TEN_MIB: usize = 10 * 1024 * 1024;

#[test]
fn write_then_read_10_mib() {
    let dir = TempDir::new("rt-whole");
    let path = dir.join("big");
    let data = pattern(TEN_MIB);
    let back = overlap::block_on(async {
        fs::write(&path, data.clone()).await.unwrap();
        fs::read(&path).await.unwrap()
    });
    assert_eq!(back.len(), data.len());
    assert!(back == data);
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[test]
fn file_round_trip_10_mib_with_odd_buffer_sizes() {
    let dir = TempDir::new("rt-file");
    let path = dir.join("big");
    let data = pattern(TEN_MIB);
    overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        let sizes = [1, 7, 4093, 65_537, 3, 1_048_583, 12_345];
        let (mut off, mut i) = (0, 0);
        while off < data.len() {
            let end = (off + sizes[i % sizes.len()]).min(data.len());
            file.write_all(&data[off..end]).await.unwrap();
            off = end;
            i += 1;
        }
        file.flush().await.unwrap();
        drop(file);
        assert!(std::fs::read(&path).unwrap() == data);

        let mut file = File::open(&path).await.unwrap();
        let mut back = Vec::with_capacity(data.len());
        let read_sizes = [5, 131_071, 1, 9_999, 2_097_169, 77];
        let mut i = 0;
        loop {
            let mut buf = vec![0; read_sizes[i % read_sizes.len()]];
            let n = file.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
            i += 1;
        }
        assert_eq!(back.len(), data.len());
        assert!(back == data);
        // At the end, reads keep saying end-of-file.
        assert_eq!(file.read(&mut [0; 10]).await.unwrap(), 0);
    });
}

#[test]
fn read_to_end_and_read_to_string() {
    let dir = TempDir::new("rt-to-end");
    let path = dir.join("f");
    std::fs::write(&path, "line one\nline two\n").unwrap();
    overlap::block_on(async {
        let mut s = String::new();
        File::open(&path)
            .await
            .unwrap()
            .read_to_string(&mut s)
            .await
            .unwrap();
        assert_eq!(s, "line one\nline two\n");
        assert_eq!(fs::read_to_string(&path).await.unwrap(), s);
        let empty = dir.join("empty");
        fs::write(&empty, b"").await.unwrap();
        let mut v = Vec::new();
        File::open(&empty)
            .await
            .unwrap()
            .read_to_end(&mut v)
            .await
            .unwrap();
        assert!(v.is_empty());
    });
}

#[test]
fn seek_and_read_after_buffered_writes() {
    let dir = TempDir::new("rt-seek");
    let path = dir.join("f");
    overlap::block_on(async {
        let mut file = open_fresh(&path).await;
        file.write_all(b"hello, ").await.unwrap();
        file.write_all(b"world").await.unwrap();
        // No flush: the seek and the read must still see the written bytes.
        assert_eq!(file.seek(SeekFrom::Start(7)).await.unwrap(), 7);
        let mut buf = [0; 5];
        file.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"world");
        assert_eq!(file.seek(SeekFrom::Current(-5)).await.unwrap(), 7);
        file.write_all(b"WORLD!").await.unwrap();
        assert_eq!(file.seek(SeekFrom::End(-6)).await.unwrap(), 7);
        let mut s = String::new();
        file.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "WORLD!");
        assert_eq!(file.stream_position().await.unwrap(), 13);
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"hello, WORLD!");
}

#[test]
fn write_after_read_ahead_lands_at_the_reader_position() {
    let dir = TempDir::new("rt-rewind");
    let path = dir.join("f");
    let data = pattern(300_000);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        let mut buf = [0; 10];
        file.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf[..], &data[..10]);
        // The file read ahead well past byte 10; the write must still go at byte 10.
        file.write_all(b"XYZ").await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 13);
        file.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf[..], &data[13..23]);
        file.flush().await.unwrap();
        // into_std gives the fd back at the reader's position, not the read-ahead's.
        let mut std_file = file.into_std().await.unwrap();
        use std::io::Seek;
        assert_eq!(std_file.stream_position().unwrap(), 23);
    });
    let mut expected = data.clone();
    expected[10..13].copy_from_slice(b"XYZ");
    assert!(std::fs::read(&path).unwrap() == expected);
}

#[test]
fn buffered_lines() {
    let dir = TempDir::new("rt-lines");
    let path = dir.join("f");
    let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&path, &text).unwrap();
    overlap::block_on(async {
        let mut lines = File::open(&path).await.unwrap().lines();
        let mut n = 0;
        while let Some(line) = futures_util::StreamExt::next(&mut lines).await {
            assert_eq!(line.unwrap(), format!("line {n}"));
            n += 1;
        }
        assert_eq!(n, 5000);
    });
}

#[test]
fn file_metadata_set_len_sync_and_std_conversion() {
    let dir = TempDir::new("rt-meta");
    let path = dir.join("f");
    overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        file.write_all(&[1; 1000]).await.unwrap();
        file.sync_all().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 1000);
        file.set_len(10).await.unwrap();
        file.sync_data().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 10);
        let std_file = file.into_std().await.unwrap();
        let mut file = File::from_std(std_file);
        file.write_all(b"tail").await.unwrap();
        file.flush().await.unwrap();
    });
    let mut expected = vec![1; 10];
    expected.resize(1000, 0);
    expected.extend_from_slice(b"tail");
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

#[test]
fn set_len_after_a_read_keeps_the_readers_position() {
    let dir = TempDir::new("rt-setlen-read");
    let path = dir.join("f");
    let data = pattern(200_000);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = open_read_write(&path).await;
        let mut head = [0u8; 10];
        file.read_exact(&mut head).await.unwrap(); // the File reads well ahead of this
        assert_eq!(head, data[..10]);
        file.set_len(data.len() as u64).await.unwrap();
        let mut next = [0u8; 10];
        file.read_exact(&mut next).await.unwrap();
        assert_eq!(next, data[10..20], "the read after set_len skipped ahead");
        // Shrinking below the read-ahead: the bytes cut off are not served from it.
        file.set_len(25).await.unwrap();
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, data[20..25]);
    });
}

#[test]
fn path_functions() {
    let dir = TempDir::new("rt-paths");
    overlap::block_on(async {
        let a = dir.join("a");
        fs::write(&a, b"abc").await.unwrap();
        assert_eq!(fs::copy(&a, dir.join("b")).await.unwrap(), 3);
        fs::rename(dir.join("b"), dir.join("c")).await.unwrap();
        assert!(!fs::try_exists(dir.join("b")).await.unwrap());
        assert!(fs::try_exists(dir.join("c")).await.unwrap());
        fs::hard_link(&a, dir.join("h")).await.unwrap();
        assert_eq!(fs::metadata(&a).await.unwrap().len(), 3);
        std::os::unix::fs::symlink(&a, dir.join("s")).unwrap();
        assert_eq!(fs::read_link(dir.join("s")).await.unwrap(), a);
        assert!(fs::symlink_metadata(dir.join("s"))
            .await
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::canonicalize(dir.join("s")).await.unwrap(),
            fs::canonicalize(&a).await.unwrap()
        );
        let mut perm = fs::metadata(&a).await.unwrap().permissions();
        perm.set_readonly(true);
        fs::set_permissions(&a, perm).await.unwrap();
        assert!(fs::metadata(&a).await.unwrap().permissions().readonly());
        fs::remove_file(dir.join("c")).await.unwrap();
        fs::create_dir(dir.join("d")).await.unwrap();
        fs::remove_dir(dir.join("d")).await.unwrap();
        fs::create_dir_all(dir.join("x/y/z")).await.unwrap();
        fs::write(dir.join("x/y/z/f"), b"").await.unwrap();
        fs::remove_dir_all(dir.join("x")).await.unwrap();
        assert!(!fs::try_exists(dir.join("x")).await.unwrap());
    });
}

/// A vectored write takes every slice (up to the write buffer's room), in order, not only
/// the first; `write_all_vectored`-style loops then end in one call.
#[test]
fn vectored_writes_take_every_slice() {
    use std::io::IoSlice;
    let dir = TempDir::new("rt-vectored");
    let path = dir.join("v");
    let big = pattern(3 << 20);
    overlap::block_on(async {
        let mut f = File::create(&path).await.unwrap();
        let parts = [&b"hello, "[..], &b""[..], &b"vectored "[..], &b"world"[..]];
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        assert_eq!(f.write_vectored(&slices).await.unwrap(), 21);
        // More than the buffer holds: some is taken, the count says how much, and a loop
        // gets the rest in order.
        let halves = [IoSlice::new(&big[..1 << 20]), IoSlice::new(&big[1 << 20..])];
        let mut done = 0;
        while done < big.len() {
            let n = if done < 1 << 20 {
                let rest = [IoSlice::new(&big[done..1 << 20]), halves[1]];
                f.write_vectored(&rest).await.unwrap()
            } else {
                f.write_vectored(&[IoSlice::new(&big[done..])])
                    .await
                    .unwrap()
            };
            assert!(n > 0);
            done += n;
        }
        f.flush().await.unwrap();
    });
    let mut want = b"hello, vectored world".to_vec();
    want.extend_from_slice(&big);
    assert!(std::fs::read(&path).unwrap() == want);
}

/// `AsRawFd`/`AsFd` give the very descriptor the file was made from (`From<std::fs::File>`),
/// and after a flush a descriptor cloned from it sees every byte written.
#[test]
fn the_descriptor_is_the_std_files_and_sees_flushed_bytes() {
    use std::os::fd::{AsFd, AsRawFd};
    let dir = TempDir::new("as-fd");
    let path = dir.join("f");
    let std_file = std::fs::File::create(&path).unwrap();
    let raw = std_file.as_raw_fd();
    overlap::block_on(async {
        let mut file: File = std_file.into();
        assert_eq!(file.as_raw_fd(), raw);
        file.write_all(b"through the pool").await.unwrap();
        file.flush().await.unwrap();
        let twin = std::fs::File::from(file.as_fd().try_clone_to_owned().unwrap());
        assert_eq!(twin.metadata().unwrap().len(), 16);
    });
}

/// `set_modified` and `set_times` (std's, which tokio's `File` lacks) set the times a
/// copier keeps, after the bytes still buffered are written: a write landing afterwards
/// would move the mtime on again. A read-only `File` will do, for the file's owner.
#[test]
fn set_modified_lands_after_buffered_writes() {
    use std::time::{Duration, SystemTime};
    let dir = TempDir::new("rt-times");
    let path = dir.join("t");
    let then = SystemTime::UNIX_EPOCH + Duration::new(1_000_000_000, 123_456_789);
    let earlier = then - Duration::from_secs(3600);
    overlap::block_on(async {
        let mut f = File::create(&path).await.unwrap();
        // The second write waits in the buffer while the first one's job runs.
        f.write_all(&pattern(100_000)).await.unwrap();
        f.write_all(&pattern(50_000)).await.unwrap();
        f.set_modified(then).await.unwrap();
        drop(f);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.modified().unwrap()), (150_000, then));

        let mut f = File::open(&path).await.unwrap();
        let times = fs::FileTimes::new()
            .set_accessed(earlier)
            .set_modified(earlier);
        f.set_times(times).await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.accessed().unwrap(), meta.modified().unwrap()),
            (earlier, earlier)
        );
    });
}

/// `File::set_permissions` writes out buffered bytes first: a write landing after the
/// `fchmod` would clear a setuid bit just set (the kernel drops it on a write by a process
/// without `CAP_FSETID`), so a copier keeping a setuid file's mode lost the bit. Run as an
/// ordinary user (a child gives root up), since root keeps the bit anyway.
#[test]
fn set_permissions_lands_after_buffered_writes() {
    support::run_in_child("set_permissions_lands_after_buffered_writes", || {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: setgid and setuid take no pointers; glibc applies them to every thread.
        let ordinary =
            !support::is_root() || unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
        assert!(ordinary, "cannot give root up");
        let dir = TempDir::new("rt-setuid");
        let path = dir.join("s");
        overlap::block_on(async {
            let mut f = File::create(&path).await.unwrap();
            // The second write waits in the buffer while the first one's job runs.
            f.write_all(&pattern(100_000)).await.unwrap();
            f.write_all(&pattern(50_000)).await.unwrap();
            f.set_permissions(std::fs::Permissions::from_mode(0o4755))
                .await
                .unwrap();
            f.flush().await.unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(
                (meta.len(), meta.permissions().mode() & 0o7777),
                (150_000, 0o4755)
            );
        });
    });
}

/// `fs::copy` keeps a setuid source's mode whole: the kernel clears the bit on the copy's
/// own writes (by a process without `CAP_FSETID`), so `std::fs::copy`'s `fchmod` before
/// them lost it; it is set again after. Run as an ordinary user, as above.
#[test]
fn copy_keeps_a_setuid_bit() {
    support::run_in_child("copy_keeps_a_setuid_bit", || {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: setgid and setuid take no pointers; glibc applies them to every thread.
        let ordinary =
            !support::is_root() || unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
        assert!(ordinary, "cannot give root up");
        let dir = TempDir::new("rt-copy-setuid");
        let (from, to) = (dir.join("tool"), dir.join("copy"));
        std::fs::write(&from, pattern(70_000)).unwrap();
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o4750)).unwrap();
        overlap::block_on(async {
            assert_eq!(fs::copy(&from, &to).await.unwrap(), 70_000);
        });
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o4750);
        assert_eq!(std::fs::read(&to).unwrap(), pattern(70_000));
    });
}
