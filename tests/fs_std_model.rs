//! `fs::File` against `std::fs::File`: random sequences of reads, writes, seeks (some of
//! them failing), truncations, flushes and `read_to_end`, in write and in append mode, must
//! give the same bytes, the same results and the same positions after every step, and the
//! same file once both are dropped (overlap's without a flush).

mod support;

use std::io::{Read, Seek, SeekFrom, Write};

use overlap::fs::{self, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{Rng, TempDir};

#[derive(Debug, Clone)]
enum Op {
    Read(usize),
    Write(Vec<u8>),
    Seek(SeekFrom),
    SetLen(u64),
    Flush,
    ReadToEnd,
}

fn gen_op(rng: &mut Rng) -> Op {
    match rng.below(12) {
        0..=2 => Op::Read([0, 1, 7, 100, 5000, 70000, 200000][rng.below(7)]),
        3..=5 => {
            let n = [1, 3, 10, 4096, 70000][rng.below(5)];
            let v = rng.next() as u8;
            Op::Write(vec![v; n])
        }
        6 | 7 => Op::Seek(match rng.below(3) {
            0 => SeekFrom::Start(rng.below(150000) as u64),
            1 => SeekFrom::End(rng.below(200) as i64 - 150),
            _ => SeekFrom::Current(rng.below(100000) as i64 - 60000),
        }),
        8 => Op::SetLen(rng.below(150000) as u64),
        9 => Op::Flush,
        10 => Op::ReadToEnd,
        _ => Op::Read(1),
    }
}

fn run_model(seed: u64, append: bool) {
    let dir = TempDir::new("rv-model");
    let spath = dir.join("std");
    let opath = dir.join("ovl");
    let init: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&spath, &init).unwrap();
    std::fs::write(&opath, &init).unwrap();
    let mut rng = Rng(seed);
    let ops: Vec<Op> = (0..60).map(|_| gen_op(&mut rng)).collect();
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
            match op {
                Op::Read(n) => {
                    let mut a = vec![0u8; *n];
                    let mut b = vec![0u8; *n];
                    // Both read until `n` bytes or end of file: short reads may differ.
                    let ra = fill(&mut s, &mut a);
                    let rb = ofill(&mut f, &mut b).await;
                    assert_eq!(ra, rb, "{ctx}");
                    assert_eq!(a[..ra], b[..rb], "{ctx}");
                }
                Op::Write(v) => {
                    s.write_all(v).unwrap();
                    f.write_all(v).await.unwrap();
                }
                Op::Seek(p) => {
                    let a = s.seek(*p);
                    let b = f.seek(*p).await;
                    assert_eq!(a.as_ref().ok(), b.as_ref().ok(), "{ctx}: {a:?} vs {b:?}");
                }
                Op::SetLen(n) => {
                    let a = s.set_len(*n);
                    let b = f.set_len(*n).await;
                    assert_eq!(a.is_ok(), b.is_ok(), "{ctx}");
                }
                Op::Flush => {
                    s.flush().unwrap();
                    f.flush().await.unwrap();
                }
                Op::ReadToEnd => {
                    let mut a = Vec::new();
                    let mut b = Vec::new();
                    s.read_to_end(&mut a).unwrap();
                    f.read_to_end(&mut b).await.unwrap();
                    assert_eq!(a.len(), b.len(), "{ctx}");
                    assert!(a == b, "{ctx}");
                }
            }
            // Positions agree.
            let pa = s.stream_position().unwrap();
            let pb = f.seek(SeekFrom::Current(0)).await.unwrap();
            assert_eq!(pa, pb, "{ctx}: position");
        }
        if rng.below(2) == 0 {
            f.flush().await.unwrap();
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

fn short(op: &Op) -> String {
    match op {
        Op::Write(v) => format!("Write({} x {})", v.len(), v[0]),
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
    for seed in 1..150 {
        run_model(seed, false);
    }
}

#[test]
fn model_append_mode() {
    for seed in 1..150 {
        run_model(seed, true);
    }
}
