//! `fs::PositionalFile`: one shared file, many positional reads and writes in flight at
//! once from many tasks (and from two runtimes on two threads), jobs of at most 2 MiB, the
//! hand-over from a `File` with its buffered bytes, and refusals (a read-only fd, a FIFO,
//! an offset too large, the end of the file) as errors naming the file, and the owned-buffer
//! calls (`read_vec_at`, `write_vec_at`) that move a `Vec` through one request each.

mod support;

use std::io::ErrorKind;

use overlap::fs::{File, PositionalFile};
use overlap::io::AsyncWriteExt;
use support::{
    mkfifo, open_fresh, open_read_write, pattern, pattern_seeded, poll_once,
    runtime_with_a_busy_pool, Rng, TempDir,
};

const MIB: usize = 1024 * 1024;

#[test]
fn many_reads_from_many_tasks_at_once_each_get_their_bytes() {
    let dir = TempDir::new("positional-file-reads");
    let path = dir.join("f");
    let data = pattern(MIB);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let file = PositionalFile::open(&path).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..64u64 {
            let (file, data) = (file.clone(), data.clone());
            tasks.push(overlap::spawn(async move {
                let mut rng = Rng(t + 1);
                let mut buf = vec![0u8; 4096];
                for _ in 0..16 {
                    let at = rng.below(data.len() - 4096);
                    file.read_exact_at(&mut buf, at as u64).await.unwrap();
                    assert!(buf == data[at..at + 4096], "task {t} at {at}");
                }
                // Near the end: a short read, then none.
                let tail = data.len() as u64 - 100;
                assert_eq!(file.read_at(&mut buf, tail).await.unwrap(), 100);
                assert_eq!(file.read_at(&mut buf, data.len() as u64).await.unwrap(), 0);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn disjoint_writes_from_many_tasks_and_two_threads_all_land() {
    let dir = TempDir::new("positional-file-writes");
    let path = dir.join("f");
    const BLOCK: usize = 8 * 1024;
    let data = pattern_seeded(BLOCK * 128, 3);
    let file =
        overlap::block_on(async { PositionalFile::from_file(open_fresh(&path).await).await })
            .unwrap();
    // Two runtimes on two threads write the even and the odd blocks through clones of one
    // handle, 64 tasks each.
    let threads: Vec<_> = (0..2)
        .map(|parity| {
            let (file, data) = (file.clone(), data.clone());
            std::thread::spawn(move || {
                overlap::block_on(async move {
                    let tasks: Vec<_> = (parity..128)
                        .step_by(2)
                        .map(|b| {
                            let (file, data) = (file.clone(), data.clone());
                            overlap::spawn(async move {
                                let at = b * BLOCK;
                                file.write_all_at(&data[at..at + BLOCK], at as u64).await
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    overlap::block_on(async {
        file.sync_all().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), data.len() as u64);
    });
    assert!(std::fs::read(&path).unwrap() == data);
    // The last handle gives the std file back; a shared one does not.
    let other = file.clone();
    let file = file.try_into_std().unwrap_err();
    drop(other);
    let std = file.try_into_std().unwrap();
    assert_eq!(std.metadata().unwrap().len(), data.len() as u64);
}

#[test]
fn big_buffers_go_in_jobs_of_two_mib() {
    let dir = TempDir::new("positional-file-big");
    let path = dir.join("f");
    let data = pattern_seeded(5 * MIB + 123, 9);
    overlap::block_on(async {
        let file = PositionalFile::from_file(open_fresh(&path).await)
            .await
            .unwrap();
        // One call, one job: 2 MiB of it.
        assert_eq!(file.write_at(&data, 0).await.unwrap(), 2 * MIB);
        file.write_all_at(&data[2 * MIB..], 2 * MIB as u64)
            .await
            .unwrap();
        let mut back = vec![0u8; data.len()];
        assert_eq!(file.read_at(&mut back, 0).await.unwrap(), 2 * MIB);
        file.read_exact_at(&mut back, 0).await.unwrap();
        assert!(back == data);
        // Ending in the third job's chunk: `UnexpectedEof`, naming the file.
        let err = file.read_exact_at(&mut back, 200).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        file.set_len(10).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 10);
    });
}

#[test]
fn a_read_exact_at_past_the_end_says_where_the_file_ended() {
    let dir = TempDir::new("positional-file-short");
    let path = dir.join("f");
    std::fs::write(&path, pattern(MIB + 10)).unwrap();
    overlap::block_on(async {
        let file = PositionalFile::open(&path).await.unwrap();
        // 3 MiB asked for from 100: the first 2 MiB job comes short at the file's end,
        // which the error gives, with the whole range asked for (not the job's end).
        let mut buf = vec![0u8; 3 * MIB];
        let err = file.read_exact_at(&mut buf, 100).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        let want = format!(
            "the file ends at offset {}, before offset {} (the end of the {} bytes asked for \
             from offset 100)",
            MIB + 10,
            3 * MIB + 100,
            3 * MIB
        );
        assert!(msg.contains(&want), "{msg}");
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        // Nothing at all there: the read starts at or past the end.
        let err = file
            .read_exact_at(&mut buf[..8], 5 * MIB as u64)
            .await
            .unwrap_err();
        let want = format!(
            "the file ends at or before offset {}, where the 8 bytes",
            5 * MIB
        );
        assert!(err.to_string().contains(&want), "{err}");
        // The same from a `File`, whose jobs are its buffer's size.
        let mut std_file = overlap::fs::File::open(&path).await.unwrap();
        std_file.set_max_buf_size(4096);
        let err = std_file
            .read_exact_at(&mut buf[..10_000], MIB as u64)
            .await
            .unwrap_err();
        let want = format!(
            "the file ends at offset {}, before offset {}",
            MIB + 10,
            MIB + 10_000
        );
        assert!(err.to_string().contains(&want), "{err}");
    });
}

#[test]
fn from_file_writes_out_buffered_bytes_and_keeps_the_path() {
    let dir = TempDir::new("positional-file-from-file");
    let path = dir.join("f");
    overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        file.write_all(b"buffered, not flushed").await.unwrap();
        let file = PositionalFile::from_file(file).await.unwrap();
        let mut back = [0u8; 8];
        // `File::create` opened it write-only.
        let err = file.read_at(&mut back, 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF));
        assert!(err.to_string().contains("not open for reading"), "{err}");
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        assert_eq!(file.metadata().await.unwrap().len(), 21);
        // From std: no path to name.
        let std = std::fs::File::open(&path).unwrap();
        let file = PositionalFile::from(std);
        let mut word = [0u8; 7];
        file.read_exact_at(&mut word, 14).await.unwrap();
        assert_eq!(&word, b"flushed");
        let err = file.read_exact_at(&mut back, 14).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert!(!err.to_string().contains(path.to_str().unwrap()), "{err}");
    });
}

#[test]
fn refusals_are_clear_errors() {
    let dir = TempDir::new("positional-file-refusals");
    let path = dir.join("f");
    std::fs::write(&path, b"kept").unwrap();
    overlap::block_on(async {
        let ro = PositionalFile::open(&path).await.unwrap();
        let err = ro.write_all_at(b"no", 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF));
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        assert!(err.to_string().contains("not open for writing"), "{err}");
        let err = ro.set_len(0).await.unwrap_err();
        assert!(err.to_string().contains("not open for writing"), "{err}");
        let err = ro
            .read_at(&mut [0u8; 1], i64::MAX as u64 + 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = ro.set_len(u64::MAX).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(ro.read_at(&mut [], 0).await.unwrap(), 0);
        assert!(ro.write_at(&[], 0).await.is_ok());

        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        let f = PositionalFile::from_file(open_read_write(&fifo).await)
            .await
            .unwrap();
        let err = f.read_at(&mut [0u8; 4], 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ESPIPE));
        assert!(err.to_string().contains(fifo.to_str().unwrap()), "{err}");
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");
}

#[test]
fn with_one_job_at_most_requests_run_in_the_order_they_were_made() {
    let dir = TempDir::new("positional-file-one-job");
    let path = dir.join("f");
    overlap::block_on(async {
        let file = PositionalFile::from_file(open_fresh(&path).await)
            .await
            .unwrap();
        file.set_max_jobs(0);
        assert_eq!(file.max_jobs(), 1, "0 is taken as 1");
        // Twenty tasks write the same bytes, then one reads them, all queued at once: the
        // tasks first run (and submit) in the order they were spawned.
        let writers: Vec<_> = (0..20u8)
            .map(|i| {
                let file = file.clone();
                overlap::spawn(async move { file.write_all_at(&[i; 4096], 0).await })
            })
            .collect();
        let reader = {
            let file = file.clone();
            overlap::spawn(async move {
                let mut b = [0u8; 4096];
                file.read_exact_at(&mut b, 0).await.map(|()| b)
            })
        };
        for w in writers {
            w.await.unwrap().unwrap();
        }
        let seen = reader.await.unwrap().unwrap();
        assert!(
            seen.iter().all(|&b| b == 19),
            "the read ran before the last write"
        );
    });
    assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 19));
}

#[test]
fn with_one_job_at_most_set_len_waits_for_the_requests_made_before_it() {
    let dir = TempDir::new("positional-file-one-job-set-len");
    let path = dir.join("f");
    overlap::block_on(async {
        let file = PositionalFile::from_file(open_fresh(&path).await)
            .await
            .unwrap();
        file.set_max_jobs(1);
        // Two hundred writes queued, then a truncation made after all of them: with one
        // job, it runs after them, as a later write would, and the file ends empty.
        let writers: Vec<_> = (0..200u64)
            .map(|i| {
                let file = file.clone();
                overlap::spawn(async move { file.write_all_at(&[1; 4096], i * 4096).await })
            })
            .collect();
        let truncate = {
            let file = file.clone();
            overlap::spawn(async move {
                file.set_len(0).await?;
                file.sync_data().await
            })
        };
        for w in writers {
            w.await.unwrap().unwrap();
        }
        truncate.await.unwrap().unwrap();
        assert_eq!(
            file.metadata().await.unwrap().len(),
            0,
            "the truncation ran before writes made ahead of it"
        );
    });
}

#[test]
fn a_request_whose_runtime_shut_down_before_it_ran_fails_and_the_file_goes_on() {
    let dir = TempDir::new("positional-file-never-ran");
    let path = dir.join("f");
    std::fs::write(&path, b"still here").unwrap();
    let file = PositionalFile::from_std(std::fs::File::open(&path).unwrap());
    let mut buf = [0u8; 10];
    {
        let mut read = Box::pin(file.read_exact_at(&mut buf, 0));
        let (rt, gate) = runtime_with_a_busy_pool();
        rt.block_on(async { assert!(poll_once(&mut read).await.is_pending()) });
        // The queued job goes unrun with its runtime: the request must not wait forever.
        drop(rt);
        gate.wait();
        let err = overlap::block_on(read).unwrap_err();
        assert!(err.to_string().contains("did not run"), "{err}");
    }
    overlap::block_on(file.read_exact_at(&mut buf, 0)).unwrap();
    assert_eq!(&buf, b"still here");
}

#[test]
fn open_options_open_a_positional_file_in_one_step() {
    let dir = TempDir::new("positional-file-open");
    let path = dir.join("f");
    overlap::block_on(async {
        let mut opts = overlap::fs::OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        let file = opts.open_positional(&path).await.unwrap();
        file.write_all_at(b"tail", 8).await.unwrap();
        let mut all = [0xffu8; 12];
        file.read_exact_at(&mut all, 0).await.unwrap();
        assert_eq!(&all, b"\0\0\0\0\0\0\0\0tail");
        // The same options again: the file exists, and the error says which.
        let err = opts.open_positional(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        let err = PositionalFile::open(dir.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().starts_with("failed to open "), "{err}");
    });
}

#[test]
fn send_to_sends_ranges_of_one_shared_file_to_several_sockets_at_once() {
    use overlap::io::AsyncReadExt;
    let dir = TempDir::new("positional-file-send");
    let path = dir.join("f");
    let data = pattern_seeded(4 * MIB, 5);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let file = PositionalFile::open(&path).await.unwrap();
        // Four ranges of 3 MiB (many times a Unix socket's buffer: several sendfile runs
        // each), to four connections at once.
        let mut tasks = Vec::new();
        for t in 0..4usize {
            let (tx, mut rx) = overlap::net::UnixStream::pair().unwrap();
            let file = file.clone();
            let at = t * 256 * 1024;
            tasks.push(overlap::spawn(async move {
                let send = async {
                    let n = file.send_to(&tx, at as u64, 3 * MIB as u64).await.unwrap();
                    drop(tx);
                    n
                };
                let mut got = Vec::new();
                let (n, read) = overlap::join!(send, rx.read_to_end(&mut got));
                read.unwrap();
                (at, n, got)
            }));
        }
        for t in tasks {
            let (at, n, got) = t.await.unwrap();
            assert_eq!(n, 3 * MIB as u64);
            assert!(got == data[at..at + 3 * MIB], "range at {at}");
        }
        // The file ends first: a short count; nothing asked, nothing sent.
        let (tx, mut rx) = support::tcp_pair().await;
        assert_eq!(
            file.send_to(&tx, 4 * MIB as u64 - 10, 100).await.unwrap(),
            10
        );
        assert_eq!(file.send_to(&tx, 0, 0).await.unwrap(), 0);
        drop(tx);
        let mut tail = Vec::new();
        rx.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, &data[4 * MIB - 10..]);
        // Write-only: refused, naming the file.
        let wo = PositionalFile::from_file(File::create(dir.join("w")).await.unwrap())
            .await
            .unwrap();
        let (tx, _rx) = support::tcp_pair().await;
        let err = wo.send_to(&tx, 0, 10).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("failed to send"), "{err}");
    });
}

#[test]
fn owned_buffers_go_in_one_request_each_and_come_back_as_long_as_the_file_allows() {
    let dir = TempDir::new("positional-file-owned");
    let path = dir.join("f");
    let data = pattern_seeded(5 * MIB + 123, 21);
    overlap::block_on(async {
        let file = PositionalFile::from_file(open_fresh(&path).await)
            .await
            .unwrap();
        // Past 2 MiB, in one request: all of it lands.
        file.write_vec_at(data.clone(), 4096).await.unwrap();
        let end = 4096 + data.len() as u64;
        assert_eq!(file.metadata().await.unwrap().len(), end);
        // Sixteen tasks overwrite the first sixteen 256-byte blocks at once.
        let writers: Vec<_> = (0..16u8)
            .map(|i| {
                let file = file.clone();
                overlap::spawn(async move { file.write_vec_at(vec![i; 256], i as u64 * 256).await })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        let head = file.read_vec_at(4096, 0).await.unwrap();
        let want: Vec<u8> = (0..16u8).flat_map(|i| [i; 256]).collect();
        assert!(head == want);
        let back = file.read_vec_at(data.len(), 4096).await.unwrap();
        assert!(back == data, "one 5 MiB read gave {} bytes", back.len());
        // The file ends first: the bytes there are; at or past the end: none.
        let tail = file.read_vec_at(1000, end - 10).await.unwrap();
        assert_eq!(tail, data[data.len() - 10..]);
        assert!(file.read_vec_at(1000, end).await.unwrap().is_empty());
        assert!(file.read_vec_at(0, 0).await.unwrap().is_empty());
        // The buffer comes back as it went, for reuse; an empty one too, capacity and all.
        let back = file.write_vec_at(b"reused".to_vec(), 0).await.unwrap();
        assert_eq!(back, b"reused");
        assert_eq!(file.read_vec_at(6, 0).await.unwrap(), b"reused");
        let empty = file.write_vec_at(Vec::with_capacity(100), 0).await.unwrap();
        assert!(empty.is_empty() && empty.capacity() >= 100);
        assert_eq!(file.metadata().await.unwrap().len(), end);
    });
}

#[test]
fn owned_buffer_refusals_are_clear_errors_and_the_file_goes_on() {
    let dir = TempDir::new("positional-file-owned-refusals");
    let path = dir.join("f");
    std::fs::write(&path, b"kept").unwrap();
    overlap::block_on(async {
        let ro = PositionalFile::open(&path).await.unwrap();
        // A length from a corrupt header: a regular file's size bounds the buffer.
        for len in [usize::MAX, isize::MAX as usize, 3 << 20] {
            let got = ro.read_vec_at(len, 1).await.unwrap();
            assert_eq!(got, b"ept");
            assert!(got.capacity() <= 8192, "{len}: {}", got.capacity());
        }
        // A file whose size says nothing (procfs says 0) is read all the same.
        let proc = PositionalFile::open("/proc/self/cmdline").await.unwrap();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert!(!cmdline.is_empty());
        assert_eq!(proc.read_vec_at(3 << 20, 0).await.unwrap(), cmdline);
        let mut big = vec![0u8; 3 << 20];
        assert_eq!(proc.read_at(&mut big, 1).await.unwrap(), cmdline.len() - 1);
        assert_eq!(big[..cmdline.len() - 1], cmdline[1..]);
        // A device has no size to go by: no buffer this long can be had, an error, not an
        // abort.
        let zero = PositionalFile::open("/dev/zero").await.unwrap();
        for len in [usize::MAX, isize::MAX as usize] {
            let err = zero.read_vec_at(len, 0).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{len}: {err}");
            assert!(
                err.to_string().contains("cannot allocate a buffer"),
                "{err}"
            );
            assert!(err.to_string().contains("/dev/zero"), "{err}");
        }
        assert_eq!(
            zero.read_vec_at(3 << 20, 0).await.unwrap(),
            vec![0; 3 << 20]
        );
        let err = ro.write_vec_at(b"no".to_vec(), 0).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF));
        assert!(err.to_string().contains("not open for writing"), "{err}");
        let far = i64::MAX as u64 + 1;
        let err = ro.read_vec_at(1, far).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = ro.write_vec_at(b"x".to_vec(), far).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        // A read that reaches past `i64::MAX` gives what lies before it (nothing here).
        assert!(ro
            .read_vec_at(16, i64::MAX as u64 - 4)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(ro.read_vec_at(64, 0).await.unwrap(), b"kept");
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");
}

#[test]
fn the_last_handle_gives_the_std_file_back_as_soon_as_its_requests_are_done() {
    let dir = TempDir::new("positional-file-hand-back");
    let path = dir.join("f");
    let mut std = std::fs::File::create(&path).unwrap();
    // The pool thread that ran a request must have let go of the file by the time the
    // task learns the request is done: try it many times, as the race is narrow.
    for i in 0..2000u64 {
        let file = PositionalFile::from_std(std);
        overlap::block_on(file.write_all_at(&i.to_le_bytes(), i * 8)).unwrap();
        std = match file.try_into_std() {
            Ok(std) => std,
            Err(_) => panic!("round {i}: a job still held the file after its write was done"),
        };
    }
    assert_eq!(std.metadata().unwrap().len(), 2000 * 8);
}

#[test]
fn a_punched_hole_reads_as_zeros_frees_its_blocks_and_keeps_the_size() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("positional-file-punch-hole");
    let path = dir.join("f");
    overlap::block_on(async {
        let file = PositionalFile::from_file(open_fresh(&path).await)
            .await
            .unwrap();
        let data = pattern(MIB);
        file.write_vec_at(data.clone(), 0).await.unwrap();
        file.sync_data().await.unwrap();
        let before = file.metadata().await.unwrap().blocks();
        // From inside the second block to past the end: partial blocks zeroed in place.
        file.punch_hole(5000, MIB as u64).await.unwrap();
        let got = file.read_vec_at(MIB, 0).await.unwrap();
        assert_eq!(got.len(), MIB, "the size stays");
        assert!(got[..5000] == data[..5000], "the bytes before the hole");
        assert!(
            got[5000..].iter().all(|&b| b == 0),
            "the hole reads as zeros"
        );
        let after = file.metadata().await.unwrap().blocks();
        assert!(after < before / 2, "blocks freed: {before} -> {after}");
        // Nothing to punch, and a range past the largest offset.
        file.punch_hole(0, 0).await.unwrap();
        let err = file.punch_hole(i64::MAX as u64, 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(file.read_vec_at(4, 0).await.unwrap(), data[..4]);

        let ro = PositionalFile::open(&path).await.unwrap();
        let err = ro.punch_hole(0, 4096).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF));
        assert!(err.to_string().contains("not open for writing"), "{err}");
        assert!(err.to_string().contains("punch a hole in"), "{err}");
    });
}
