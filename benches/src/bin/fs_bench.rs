//! File I/O: overlap::fs against tokio::fs (current-thread runtime) and plain std on this
//! thread (the limit), in one run, page cache warm.
//!
//! ```text
//! cargo build --release -p overlap-benches
//! target/release/fs_bench [DIR]      # default: /dev/shm if present, else the temp dir
//! ```
//!
//! Each case runs a few rounds per contender, interleaved, and keeps the best round.

use std::fs as stdfs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BIG: usize = 1 << 30;
const SMALL_FILES: usize = 10_000;
const SMALL: usize = 4096;
const ROUNDS: usize = 5;
const ROUND_TRIPS: usize = 20_000;
/// Random 4 KiB reads of the big file, with this many in flight at once.
const RANDOM_READS: usize = 40_000;
const IN_FLIGHT: [usize; 3] = [1, 16, 64];
const SMALL_BLOCK: usize = 4096;
/// Random 1 MiB reads of the big file, 4 in flight.
const LARGE_READS: usize = 2_000;
const LARGE_BLOCK: usize = 1 << 20;
/// A file written through a `File` in small writes, then flushed.
const STREAM: usize = 256 << 20;
const STREAM_WRITE: usize = 8 << 10;
/// The tree `remove_dir_all` removes: this many directories of this many subdirectories.
const TREE_DIRS: usize = 20;
const TREE_SUBDIRS: usize = 250;

fn main() {
    let base = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() {
                shm.to_owned()
            } else {
                std::env::temp_dir()
            }
        });
    let dir = base.join(format!("overlap-fs-bench-{}", std::process::id()));
    stdfs::create_dir_all(&dir).unwrap();
    let big = dir.join("big");
    {
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 31 + 7) as u8).collect();
        let mut f = stdfs::File::create(&big).unwrap();
        for _ in 0..BIG >> 20 {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
    }
    // Warm the page cache.
    assert_eq!(std_seq(&big, 1 << 20), BIG);
    println!(
        "fs_bench in {} (1 GiB file, {SMALL_FILES} x {SMALL} B files)",
        dir.display()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "case", "std", "tokio", "overlap", "ov/std", "ov/tokio"
    );

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let overlap_rt = overlap::Runtime::new().unwrap();

    for buf in [64 << 10, 1 << 20] {
        let name = format!("File read, {} KiB buffer", buf >> 10);
        let r = best_of(
            || std_seq(&big, buf),
            || tokio_rt.block_on(tokio_seq(&big, buf)),
            || overlap_rt.block_on(overlap_seq(&big, buf)),
        );
        report(&name, r, BIG as f64, "GiB/s", (1u64 << 30) as f64);
    }

    let r = best_of(
        || stdfs::read(&big).unwrap().len(),
        || tokio_rt.block_on(tokio::fs::read(&big)).unwrap().len(),
        || overlap_rt.block_on(overlap::fs::read(&big)).unwrap().len(),
    );
    report(
        "fs::read whole file",
        r,
        BIG as f64,
        "GiB/s",
        (1u64 << 30) as f64,
    );

    // A file written in 8 KiB `write_all`s and flushed: std's unbuffered writes are one
    // syscall each; tokio's `File` makes one pool job per write (each waits for the one
    // before), overlap's gathers the writes made while a job runs into that job.
    let out = dir.join("stream");
    let r = best_of(
        || std_write_seq(&out),
        || tokio_rt.block_on(tokio_write_seq(&out)),
        || overlap_rt.block_on(overlap_write_seq(&out)),
    );
    let name = format!("File write, {} KiB writes", STREAM_WRITE >> 10);
    report(&name, r, STREAM as f64, "GiB/s", (1u64 << 30) as f64);
    stdfs::remove_file(&out).unwrap();

    // Random 4 KiB reads, 1, 16 and 64 in flight, and 1 MiB reads, 4 in flight: overlap's
    // `PositionalFile` (`read_exact_at` into the task's buffer; `read_vec_at` for 1 MiB,
    // as tokio's way hands over the job's `Vec` too) against tokio's way (`spawn_blocking`
    // around `FileExt::read_at` on an `Arc<std::fs::File>`) and `pread` one after another
    // on this thread.
    let cases = IN_FLIGHT
        .iter()
        .map(|&n| (SMALL_BLOCK, RANDOM_READS, n))
        .chain([(LARGE_BLOCK, LARGE_READS, 4)]);
    for (block, reads, in_flight) in cases {
        let blocks = (BIG / block) as u64;
        let offsets: std::sync::Arc<Vec<u64>> = std::sync::Arc::new(
            (0..reads as u64)
                .map(|i| (i.wrapping_mul(2_654_435_761) % blocks) * block as u64)
                .collect(),
        );
        let r = best_of(
            || std_random(&big, &offsets, block),
            || tokio_rt.block_on(tokio_random(&big, offsets.clone(), block, in_flight)),
            || overlap_rt.block_on(overlap_random(&big, offsets.clone(), block, in_flight)),
        );
        let name = format!("random {} KiB reads, {in_flight} at once", block >> 10);
        if block == SMALL_BLOCK {
            report(&name, r, reads as f64, "k/s", 1e3);
        } else {
            report(
                &name,
                r,
                (reads * block) as f64,
                "GiB/s",
                (1u64 << 30) as f64,
            );
        }
    }

    let small_dir = dir.join("small");
    stdfs::create_dir_all(&small_dir).unwrap();
    let names: Vec<PathBuf> = (0..SMALL_FILES)
        .map(|i| small_dir.join(format!("f{i:05}")))
        .collect();
    let payload = vec![0x5a_u8; SMALL];
    let r = best_of(
        || {
            for p in &names {
                stdfs::write(p, &payload).unwrap();
            }
            SMALL_FILES
        },
        || {
            tokio_rt.block_on(async {
                for p in &names {
                    tokio::fs::write(p, &payload).await.unwrap();
                }
            });
            SMALL_FILES
        },
        || {
            overlap_rt.block_on(async {
                for p in &names {
                    overlap::fs::write(p, payload.as_slice()).await.unwrap();
                }
            });
            SMALL_FILES
        },
    );
    report(
        "write 10k x 4 KiB files",
        r,
        SMALL_FILES as f64,
        "kfiles/s",
        1e3,
    );
    let r = best_of(
        || {
            names
                .iter()
                .map(|p| stdfs::read(p).unwrap().len())
                .sum::<usize>()
        },
        || {
            tokio_rt.block_on(async {
                let mut n = 0;
                for p in &names {
                    n += tokio::fs::read(p).await.unwrap().len();
                }
                n
            })
        },
        || {
            overlap_rt.block_on(async {
                let mut n = 0;
                for p in &names {
                    n += overlap::fs::read(p).await.unwrap().len();
                }
                n
            })
        },
    );
    report(
        "read 10k x 4 KiB files",
        r,
        SMALL_FILES as f64,
        "kfiles/s",
        1e3,
    );

    // A tree removed whole: 20 directories of 250 subdirectories holding a file each.
    // (std's walk keeps a level's listing open while it empties a subdirectory; a walk
    // that lists a directory again after each subdirectory pays for it in a wide tree.)
    let tree = dir.join("tree");
    let r = best_of_prepared(
        || make_tree(&tree),
        || stdfs::remove_dir_all(&tree).unwrap(),
        || tokio_rt.block_on(tokio::fs::remove_dir_all(&tree)).unwrap(),
        || {
            overlap_rt
                .block_on(overlap::fs::remove_dir_all(&tree))
                .unwrap()
        },
    );
    report(
        "remove_dir_all 5k dirs",
        r,
        (TREE_DIRS * TREE_SUBDIRS) as f64,
        "kdirs/s",
        1e3,
    );

    // The limit for a round trip: a job handed to another thread and its answer back.
    let r = best_of(
        || {
            let (tx, rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<usize>>();
            let t = std::thread::spawn(move || {
                for reply in rx {
                    reply.send(1).unwrap();
                }
            });
            let mut n = 0;
            for _ in 0..ROUND_TRIPS {
                let (rtx, rrx) = std::sync::mpsc::channel();
                tx.send(rtx).unwrap();
                n += rrx.recv().unwrap();
            }
            drop(tx);
            t.join().unwrap();
            n
        },
        || {
            tokio_rt.block_on(async {
                let mut n = 0;
                for _ in 0..ROUND_TRIPS {
                    n += tokio::task::spawn_blocking(|| 1).await.unwrap();
                }
                n
            })
        },
        || {
            overlap_rt.block_on(async {
                let mut n = 0;
                for _ in 0..ROUND_TRIPS {
                    n += overlap::spawn_blocking(|| 1).await.unwrap();
                }
                n
            })
        },
    );
    report(
        "spawn_blocking round trip",
        r,
        ROUND_TRIPS as f64,
        "k/s",
        1e3,
    );

    drop(overlap_rt);
    drop(tokio_rt);
    stdfs::remove_dir_all(&dir).unwrap();
}

/// Best of [`ROUNDS`] for each contender, rounds interleaved.
fn best_of(
    mut s: impl FnMut() -> usize,
    mut t: impl FnMut() -> usize,
    mut o: impl FnMut() -> usize,
) -> [Duration; 3] {
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        let mut out = [0; 3];
        for (i, f) in [&mut s as &mut dyn FnMut() -> usize, &mut t, &mut o]
            .into_iter()
            .enumerate()
        {
            let start = Instant::now();
            out[i] = f();
            best[i] = best[i].min(start.elapsed());
        }
        assert!(out[0] == out[1] && out[1] == out[2], "{out:?}");
    }
    best
}

/// Best of [`ROUNDS`] for each contender, rounds interleaved, each timed after `prepare`.
fn best_of_prepared(
    mut prepare: impl FnMut(),
    mut s: impl FnMut(),
    mut t: impl FnMut(),
    mut o: impl FnMut(),
) -> [Duration; 3] {
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        for (i, f) in [&mut s as &mut dyn FnMut(), &mut t, &mut o]
            .into_iter()
            .enumerate()
        {
            prepare();
            let start = Instant::now();
            f();
            best[i] = best[i].min(start.elapsed());
        }
    }
    best
}

/// [`TREE_DIRS`] directories of [`TREE_SUBDIRS`] subdirectories, each holding one file.
fn make_tree(top: &Path) {
    for i in 0..TREE_DIRS {
        for j in 0..TREE_SUBDIRS {
            let sub = top.join(format!("dir-{i:02}/subdirectory-{j:03}"));
            stdfs::create_dir_all(&sub).unwrap();
            stdfs::write(sub.join("file"), b"x").unwrap();
        }
    }
}

fn report(name: &str, d: [Duration; 3], units: f64, unit: &str, scale: f64) {
    let rate = |d: Duration| units / d.as_secs_f64() / scale;
    let [s, t, o] = d.map(rate);
    println!(
        "{name:<28} {:>12} {:>12} {:>12} {:>8.2}x {:>8.2}x",
        format!("{s:.2} {unit}"),
        format!("{t:.2} {unit}"),
        format!("{o:.2} {unit}"),
        o / s,
        o / t
    );
}

fn std_seq(path: &Path, buf: usize) -> usize {
    let mut f = stdfs::File::open(path).unwrap();
    let mut b = vec![0; buf];
    let mut total = 0;
    loop {
        let n = f.read(&mut b).unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

async fn tokio_seq(path: &Path, buf: usize) -> usize {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await.unwrap();
    let mut b = vec![0; buf];
    let mut total = 0;
    loop {
        let n = f.read(&mut b).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

async fn overlap_seq(path: &Path, buf: usize) -> usize {
    use overlap::io::AsyncReadExt;
    let mut f = overlap::fs::File::open(path).await.unwrap();
    let mut b = vec![0; buf];
    let mut total = 0;
    loop {
        let n = f.read(&mut b).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// The first byte of each `block`-byte block at `offsets`, summed: the same whatever the
/// order.
fn std_random(path: &Path, offsets: &[u64], block: usize) -> usize {
    use std::os::unix::fs::FileExt;
    let f = stdfs::File::open(path).unwrap();
    let mut b = vec![0u8; block];
    let mut sum = 0;
    for &at in offsets {
        f.read_exact_at(&mut b, at).unwrap();
        sum += b[0] as usize;
    }
    sum
}

async fn tokio_random(
    path: &Path,
    offsets: std::sync::Arc<Vec<u64>>,
    block: usize,
    in_flight: usize,
) -> usize {
    use std::os::unix::fs::FileExt;
    let f = std::sync::Arc::new(stdfs::File::open(path).unwrap());
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let (f, offsets) = (f.clone(), offsets.clone());
            tokio::spawn(async move {
                let mut sum = 0;
                for i in (t..offsets.len()).step_by(in_flight) {
                    let (f, at) = (f.clone(), offsets[i]);
                    let b = tokio::task::spawn_blocking(move || {
                        let mut b = vec![0u8; block];
                        f.read_exact_at(&mut b, at).map(|()| b)
                    })
                    .await
                    .unwrap()
                    .unwrap();
                    sum += b[0] as usize;
                }
                sum
            })
        })
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    sum
}

async fn overlap_random(
    path: &Path,
    offsets: std::sync::Arc<Vec<u64>>,
    block: usize,
    in_flight: usize,
) -> usize {
    let f = overlap::fs::PositionalFile::open(path).await.unwrap();
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let (f, offsets) = (f.clone(), offsets.clone());
            overlap::spawn(async move {
                let mut b = vec![0u8; SMALL_BLOCK];
                let mut sum = 0;
                for i in (t..offsets.len()).step_by(in_flight) {
                    if block == SMALL_BLOCK {
                        f.read_exact_at(&mut b, offsets[i]).await.unwrap();
                        sum += b[0] as usize;
                    } else {
                        let v = f.read_vec_at(block, offsets[i]).await.unwrap();
                        assert_eq!(v.len(), block);
                        sum += v[0] as usize;
                    }
                }
                sum
            })
        })
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    sum
}

fn stream_chunk() -> Vec<u8> {
    (0..STREAM_WRITE).map(|i| (i * 13 + 5) as u8).collect()
}

fn std_write_seq(path: &Path) -> usize {
    let chunk = stream_chunk();
    let mut f = stdfs::File::create(path).unwrap();
    for _ in 0..STREAM / STREAM_WRITE {
        std::io::Write::write_all(&mut f, &chunk).unwrap();
    }
    f.metadata().unwrap().len() as usize
}

async fn tokio_write_seq(path: &Path) -> usize {
    use tokio::io::AsyncWriteExt;
    let chunk = stream_chunk();
    let mut f = tokio::fs::File::create(path).await.unwrap();
    for _ in 0..STREAM / STREAM_WRITE {
        f.write_all(&chunk).await.unwrap();
    }
    f.flush().await.unwrap();
    f.metadata().await.unwrap().len() as usize
}

async fn overlap_write_seq(path: &Path) -> usize {
    use overlap::io::AsyncWriteExt;
    let chunk = stream_chunk();
    let mut f = overlap::fs::File::create(path).await.unwrap();
    for _ in 0..STREAM / STREAM_WRITE {
        f.write_all(&chunk).await.unwrap();
    }
    f.flush().await.unwrap();
    f.metadata().await.unwrap().len() as usize
}
