//! `io::Unblock` as `AsyncSeek` over a real file: reads, seeks (from the start, the end and
//! the current position, negative ones, failing ones) and writes, compared byte for byte
//! with a `std::fs::File` doing the same.

mod support;

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, Unblock};
use support::{pattern, within, Rng, TempDir};

const HANG: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Op {
    Read(usize),
    Seek(SeekFrom),
    /// `len` bytes of `seed`'s pattern, after a `Seek(Current(0))` (see `Unblock`'s docs).
    Write(usize, u32),
}

/// Reads until `len` bytes or end of file.
fn model_read(f: &mut std::fs::File, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    Read::by_ref(f)
        .take(len as u64)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn unblock_read(u: &mut Unblock<std::fs::File>, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = u.read(&mut out[got..]).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    out.truncate(got);
    out
}

fn outcome(res: io::Result<u64>) -> Result<u64, io::ErrorKind> {
    res.map_err(|e| e.kind())
}

/// Runs `ops` on an `Unblock` with `chunk` and on a plain file, both starting from the same
/// 1000 bytes, comparing every result and then the files.
async fn compare(ops: &[Op], chunk: usize) {
    let dir = TempDir::new("unblock-seek");
    let start = pattern(1000);
    std::fs::write(dir.join("model"), &start).unwrap();
    std::fs::write(dir.join("unblock"), &start).unwrap();
    let open = |name| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(name))
            .unwrap()
    };
    let mut model = open("model");
    let mut u = Unblock::with_capacity(chunk, open("unblock"));
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Read(len) => {
                let want = model_read(&mut model, len);
                let got = unblock_read(&mut u, len).await;
                assert!(
                    got == want,
                    "op {i} {op:?}: read {got:?}, the model {want:?}"
                );
            }
            Op::Seek(pos) => {
                let want = outcome(model.seek(pos));
                let got = outcome(u.seek(pos).await);
                assert_eq!(got, want, "op {i} {op:?} (chunk {chunk})");
            }
            Op::Write(len, seed) => {
                let bytes = support::pattern_seeded(len, seed);
                let want = model.stream_position().unwrap();
                assert_eq!(u.seek(SeekFrom::Current(0)).await.unwrap(), want, "op {i}");
                model.write_all(&bytes).unwrap();
                u.write_all(&bytes).await.unwrap();
            }
        }
    }
    // The position is exact at the end too, then the contents.
    let at = model.stream_position().unwrap();
    assert_eq!(u.seek(SeekFrom::Current(0)).await.unwrap(), at);
    u.flush().await.unwrap();
    drop(u.into_inner().await.unwrap());
    let (want, got) = (
        std::fs::read(dir.join("model")).unwrap(),
        std::fs::read(dir.join("unblock")).unwrap(),
    );
    assert_eq!(got.len(), want.len(), "file lengths differ");
    assert!(got == want, "file contents differ (chunk {chunk})");
}

/// The cases by hand: `Current` seeks with read-ahead left (forward, backward, zero), seeks
/// that fail (before the start, `i64::MIN` from the current position) and keep the
/// position, seeks past the end, writes and reads over them.
#[overlap::test]
async fn seeks_reads_and_writes_match_a_std_file() {
    use Op::*;
    use SeekFrom::*;
    let ops = [
        Read(3),
        Seek(Current(0)),
        Read(5),
        Seek(Current(-4)),
        Read(10),
        Seek(Current(7)),
        Read(2),
        Seek(Current(-100)),
        Read(4),
        Seek(Current(i64::MIN)),
        Read(6),
        Seek(End(-10)),
        Read(20),
        Seek(End(5)),
        Write(3, 1),
        Seek(Start(100)),
        Read(1),
        Write(50, 2),
        Read(30),
        Seek(Current(-60)),
        Read(70),
        Seek(Start(0)),
        Write(1, 3),
        Read(1),
        Seek(Current(-2)),
        Read(2),
    ];
    for chunk in [1, 16, 4096] {
        within(HANG, compare(&ops, chunk), "the sequence hung").await;
    }
}

/// Many random sequences of the same operations, with a small chunk so that read-ahead is
/// left over at most seeks.
#[overlap::test]
async fn random_seeks_reads_and_writes_match_a_std_file() {
    let mut rng = Rng(0x5eed_f00d);
    for round in 0..20u32 {
        let ops: Vec<Op> = (0..60)
            .map(|_| match rng.below(6) {
                0 | 1 => Op::Read(rng.below(40)),
                2 => Op::Seek(SeekFrom::Start(rng.below(1100) as u64)),
                3 => Op::Seek(SeekFrom::End(rng.below(200) as i64 - 150)),
                4 => Op::Seek(SeekFrom::Current(rng.below(300) as i64 - 150)),
                _ => Op::Write(rng.below(30) + 1, round * 100 + rng.below(100) as u32),
            })
            .collect();
        let chunk = [3, 16, 64][round as usize % 3];
        within(HANG, compare(&ops, chunk), "a random sequence hung").await;
    }
}

/// Fails every write; counts seeks.
struct Full {
    seeks: usize,
}

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::StorageFull, "no room"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Full {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        self.seeks += 1;
        Ok(42)
    }
}

/// A seek waits for the write in flight and reports its error instead of seeking; the
/// next seek runs.
#[overlap::test]
async fn a_seek_reports_the_error_of_the_write_before_it() {
    let mut u = Unblock::new(Full { seeks: 0 });
    assert_eq!(u.write(b"lost").await.unwrap(), 4, "accepted at once");
    let err = u.seek(SeekFrom::Start(0)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(u.seek(SeekFrom::Start(0)).await.unwrap(), 42);
    assert_eq!(u.into_inner().await.unwrap().seeks, 1);
}

/// A flush between reads does not move the file: the bytes read ahead are still the next
/// ones, and a seek from the current position counts from the bytes returned, as for a
/// plain file (whose `flush` does nothing).
#[overlap::test]
async fn a_flush_between_reads_keeps_the_read_ahead_and_the_position() {
    let dir = TempDir::new("unblock-seek-flush");
    let data = pattern(1000);
    std::fs::write(dir.join("f"), &data).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("f"))
        .unwrap();
    let mut u = Unblock::with_capacity(100, file);
    let mut first = [0u8; 10];
    within(HANG, u.read_exact(&mut first), "first read")
        .await
        .unwrap();
    assert_eq!(first, data[..10]);
    within(HANG, u.flush(), "flush").await.unwrap();
    let mut next = [0u8; 10];
    within(HANG, u.read_exact(&mut next), "read after the flush")
        .await
        .unwrap();
    assert_eq!(next, data[10..20], "the read-ahead survived the flush");
    within(HANG, u.flush(), "second flush").await.unwrap();
    let at = within(HANG, u.seek(SeekFrom::Current(0)), "seek").await;
    assert_eq!(at.unwrap(), 20);
}
