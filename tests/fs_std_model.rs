//! `fs::File` against `std::fs::File` on a twin file: random sequences of reads of odd sizes,
//! `fill_buf`/`consume`, writes (plain and vectored), seeks (from the start, the end and the
//! current position, some failing), `set_len` (shrinking and growing), `flush`, `sync_all`,
//! `metadata` and `read_to_end`, handovers to a new `File` (`try_clone`, `into_std`,
//! `try_into_std`), and `set_max_buf_size` changes (0, 1, odd sizes, huge; between any two
//! operations, so also while a read-ahead or write job is in flight), positional reads and
//! writes (`read_at`, `write_all_at`: against std's `FileExt`, the position must not move
//! and the read-ahead must not hide their bytes), in write and in append mode (where Linux's
//! `pwrite` appends).
//!
//! Every read must return the same bytes as std's, and every operation the same outcome.
//! Positions are probed only now and then (a probe is a seek, which waits for the job in
//! flight and drops the read-ahead), so most operations run while read-ahead bytes are
//! buffered or a read-ahead or write job is in flight. After a `flush` both files hold the
//! same bytes; at the end they do too, once both are dropped (overlap's without a flush).

mod support;

use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use overlap::fs::{self, OpenOptions};
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use support::{Rng, TempDir};

#[derive(Debug, Clone)]
enum Op {
    Read(usize),
    /// `fill_buf`, then `consume` this many of the bytes it shows (at most all of them).
    FillBuf(usize),
    Write(Vec<u8>),
    WriteVectored(Vec<Vec<u8>>),
    Seek(SeekFrom),
    SetLen(SetLen),
    /// `flush`, then compare the whole files and `metadata().len()`.
    Flush,
    /// The same, with `sync_all`.
    SyncAll,
    ReadToEnd,
    /// Go on with a `File` made by this handover (std's file is kept).
    Handover(Handover),
    /// `set_max_buf_size` on overlap's file (std's has no such knob).
    SetMaxBuf(usize),
    /// `read_at` this many bytes at this offset, until full or the end of the file.
    ReadAt(u64, usize),
    /// `write_all_at` these bytes at this offset.
    WriteAt(u64, Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum Handover {
    TryClone,
    IntoStd,
    /// Goes on with the same `File` if it refuses.
    TryIntoStd,
}

/// A `set_len` target, relative to the file's length when it runs.
#[derive(Debug, Clone, Copy)]
enum SetLen {
    Shrink(u64),
    Grow(u64),
    To(u64),
}

/// Whether `op` may move hundreds of bytes or more (one job each few bytes under a tiny
/// `max_buf_size`).
fn moves_many_bytes(op: &Op) -> bool {
    match op {
        Op::Read(n) => *n >= 300,
        Op::Write(b) => b.len() >= 300,
        Op::WriteVectored(bufs) => bufs.iter().map(Vec::len).sum::<usize>() >= 300,
        Op::ReadToEnd => true,
        Op::ReadAt(_, n) => *n >= 300,
        Op::WriteAt(_, b) => b.len() >= 300,
        _ => false,
    }
}

fn gen_op(rng: &mut Rng) -> Op {
    match rng.below(25) {
        0..=3 => Op::Read([1, 7, 100, 4099, 65_535, 65_537, 70_001, 150_000][rng.below(8)]),
        4 | 5 => Op::FillBuf([0, 1, 13, 4096, 70_000, usize::MAX][rng.below(6)]),
        6..=8 => Op::Write(bytes([1, 3, 10, 4097, 70_000][rng.below(5)], rng)),
        9 => Op::WriteVectored(
            (0..1 + rng.below(4))
                .map(|_| bytes([0, 1, 5, 3000, 20_000][rng.below(5)], rng))
                .collect(),
        ),
        10..=12 => Op::Seek(match rng.below(3) {
            0 => SeekFrom::Start(rng.below(150_000) as u64),
            1 => SeekFrom::End(rng.below(70_000) as i64 - 60_000),
            _ => SeekFrom::Current(rng.below(140_000) as i64 - 70_000),
        }),
        13 | 14 => Op::SetLen(match rng.below(3) {
            0 => SetLen::Shrink(rng.below(80_000) as u64),
            1 => SetLen::Grow(rng.below(80_000) as u64),
            _ => SetLen::To(rng.below(150_000) as u64),
        }),
        15 => Op::Flush,
        16 => Op::SyncAll,
        17 => Op::ReadToEnd,
        18 => Op::Handover(
            [Handover::TryClone, Handover::IntoStd, Handover::TryIntoStd][rng.below(3)],
        ),
        19 => Op::SetMaxBuf([0, 1, 3, 100, 4097, 65_537, 1 << 20, usize::MAX][rng.below(8)]),
        20 | 21 => Op::ReadAt(
            rng.below(320_000) as u64,
            [1, 99, 4096, 70_001, 200_000][rng.below(5)],
        ),
        22 => Op::WriteAt(
            rng.below(320_000) as u64,
            bytes([1, 17, 4097, 70_000][rng.below(4)], rng),
        ),
        _ => Op::Read(1 + rng.below(300)),
    }
}

fn bytes(n: usize, rng: &mut Rng) -> Vec<u8> {
    let v = rng.next() as u8;
    (0..n).map(|i| v.wrapping_add((i % 7) as u8)).collect()
}

fn run_model(seed: u64, append: bool) {
    let dir = TempDir::new("rv-model");
    let spath = dir.join("std");
    let opath = dir.join("ovl");
    let mut rng = Rng(seed);
    let init_len = [0, 1000, 100_000, 300_000][rng.below(4)];
    let init: Vec<u8> = (0..init_len as u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&spath, &init).unwrap();
    std::fs::write(&opath, &init).unwrap();
    let ops: Vec<Op> = (0..80).map(|_| gen_op(&mut rng)).collect();
    // Each step probes the position with this chance, in percent.
    let probe = [0, 5, 20][rng.below(3)];
    let mut so = std::fs::OpenOptions::new();
    so.read(true);
    if append {
        so.append(true);
    } else {
        so.write(true);
    }
    let mut s = so.open(&spath).unwrap();
    overlap::block_on(async {
        let mut oo = OpenOptions::new();
        oo.read(true);
        if append {
            oo.append(true);
        } else {
            oo.write(true);
        }
        let mut f = oo.open(&opath).await.unwrap();
        for (i, op) in ops.iter().enumerate() {
            let ctx = format!("seed {seed} append {append} op {i} {:?}", short(op));
            if f.max_buf_size() < 4096 && moves_many_bytes(op) {
                // A few bytes per job: big reads and writes would take minutes.
                f.set_max_buf_size(4096);
            }
            f = match op {
                Op::Handover(Handover::TryClone) => f.try_clone().await.unwrap(),
                Op::Handover(Handover::IntoStd) => fs::File::from_std(f.into_std().await.unwrap()),
                Op::Handover(Handover::TryIntoStd) => match f.try_into_std() {
                    Ok(std) => fs::File::from_std(std),
                    Err(f) => f,
                },
                _ => {
                    step(&mut s, &mut f, op, &ctx, (&spath, &opath)).await;
                    f
                }
            };
            if rng.below(100) < probe {
                let pa = s.stream_position().unwrap();
                let pb = f.seek(SeekFrom::Current(0)).await.unwrap();
                assert_eq!(pa, pb, "{ctx}: position");
            }
        }
        let pa = s.stream_position().unwrap();
        let pb = f.seek(SeekFrom::Current(0)).await.unwrap();
        assert_eq!(pa, pb, "seed {seed} append {append}: final position");
        // Leave a write in flight or buffered at the drop, some of the time.
        if rng.below(2) == 0 {
            let tail = bytes(5000, &mut rng);
            s.write_all(&tail).unwrap();
            f.write_all(&tail).await.unwrap();
        }
        drop(f);
    });
    drop(s);
    // Dropped without flush: the bytes still land (give the pool a moment).
    let want = std::fs::read(&spath).unwrap();
    assert!(
        support::wait_until(std::time::Duration::from_secs(5), || std::fs::read(&opath)
            .unwrap()
            == want),
        "seed {seed} append {append}: contents differ"
    );
}

/// Runs `op` on both files and compares what they return.
async fn step(
    s: &mut std::fs::File,
    f: &mut fs::File,
    op: &Op,
    ctx: &str,
    (spath, opath): (&std::path::Path, &std::path::Path),
) {
    match op {
        Op::Read(n) => {
            let mut a = vec![0u8; *n];
            let mut b = vec![0u8; *n];
            // Both read until `n` bytes or end of file: short reads may differ.
            let ra = fill(s, &mut a);
            let rb = ofill(f, &mut b).await;
            assert_eq!(ra, rb, "{ctx}");
            assert!(a[..ra] == b[..rb], "{ctx}");
        }
        Op::FillBuf(k) => {
            let at = s.stream_position().unwrap();
            let len = s.metadata().unwrap().len();
            let shown = f.fill_buf().await.unwrap().to_vec();
            assert_eq!(shown.is_empty(), at >= len, "{ctx}: {} shown", shown.len());
            // The bytes shown are the file's next ones, in std's file too.
            let mut want = vec![0u8; shown.len()];
            s.read_exact_at(&mut want, at).unwrap();
            assert!(shown == want, "{ctx}");
            let k = (*k).min(shown.len());
            f.consume_unpin(k);
            s.seek(SeekFrom::Current(k as i64)).unwrap();
        }
        Op::Write(v) => {
            s.write_all(v).unwrap();
            f.write_all(v).await.unwrap();
        }
        Op::WriteVectored(parts) => {
            let all = parts.concat();
            s.write_all(&all).unwrap();
            let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let n = f.write_vectored(&slices).await.unwrap();
            assert!(n > 0 || all.is_empty(), "{ctx}");
            f.write_all(&all[n..]).await.unwrap();
        }
        Op::Seek(p) => {
            let a = s.seek(*p);
            let b = f.seek(*p).await;
            assert_eq!(a.as_ref().ok(), b.as_ref().ok(), "{ctx}: {a:?} vs {b:?}");
        }
        Op::SetLen(to) => {
            let len = s.metadata().unwrap().len();
            let n = match *to {
                SetLen::Shrink(k) => len.saturating_sub(k),
                SetLen::Grow(k) => len + k,
                SetLen::To(n) => n,
            };
            let a = s.set_len(n);
            let b = f.set_len(n).await;
            assert_eq!(a.is_ok(), b.is_ok(), "{ctx}");
        }
        Op::Flush | Op::SyncAll => {
            if let Op::Flush = op {
                s.flush().unwrap();
                f.flush().await.unwrap();
            } else {
                s.sync_all().unwrap();
                f.sync_all().await.unwrap();
            }
            // Every byte written is out, and `metadata` counts it.
            let (a, b) = (
                s.metadata().unwrap().len(),
                f.metadata().await.unwrap().len(),
            );
            assert_eq!(a, b, "{ctx}: length");
            assert!(
                std::fs::read(spath).unwrap() == std::fs::read(opath).unwrap(),
                "{ctx}: contents"
            );
        }
        Op::ReadToEnd => {
            let mut a = Vec::new();
            let mut b = Vec::new();
            s.read_to_end(&mut a).unwrap();
            f.read_to_end(&mut b).await.unwrap();
            assert_eq!(a.len(), b.len(), "{ctx}");
            assert!(a == b, "{ctx}");
        }
        Op::SetMaxBuf(n) => {
            f.set_max_buf_size(*n);
            assert_eq!(f.max_buf_size(), (*n).max(1), "{ctx}");
        }
        Op::ReadAt(at, n) => {
            let mut a = vec![0u8; *n];
            let mut b = vec![0u8; *n];
            let ra = fill_at(s, &mut a, *at);
            let rb = ofill_at(f, &mut b, *at).await;
            assert_eq!(ra, rb, "{ctx}");
            assert!(a[..ra] == b[..rb], "{ctx}");
        }
        Op::WriteAt(at, v) => {
            s.write_all_at(v, *at).unwrap();
            f.write_all_at(v, *at).await.unwrap();
        }
        Op::Handover(_) => unreachable!("handled by the caller"),
    }
}

fn short(op: &Op) -> String {
    match op {
        Op::Write(v) => format!("Write({} x {})", v.len(), v[0]),
        Op::WriteVectored(p) => format!(
            "WriteVectored({:?})",
            p.iter().map(Vec::len).collect::<Vec<_>>()
        ),
        Op::WriteAt(at, v) => format!("WriteAt({at}, {} x {})", v.len(), v[0]),
        o => format!("{o:?}"),
    }
}

fn fill(s: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn fill_at(s: &mut std::fs::File, buf: &mut [u8], at: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match s.read_at(&mut buf[n..], at + n as u64).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

async fn ofill_at(f: &mut fs::File, buf: &mut [u8], at: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], at + n as u64).await.unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

async fn ofill(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).await.unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

#[test]
fn model_write_mode() {
    for seed in 1..120 {
        run_model(seed, false);
    }
}

#[test]
fn model_append_mode() {
    for seed in 1..120 {
        run_model(seed, true);
    }
}
