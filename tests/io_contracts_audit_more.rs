//! `overlap::io::Unblock`'s rustdoc, sentence by sentence, where no other test held the code
//! to it: a write drops the read-ahead (and a seek between puts the position back), an empty
//! write waits for no job and leaves its error, a dropped flush leaves the write's error,
//! `into_inner` writes accepted bytes first (a value taking none is `WriteZero`), a chunk of
//! 0 is taken as 1, and the first call panics outside a runtime but works in a blocking job.

mod support;

use std::future::Future;
use std::io::{self, ErrorKind, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt, Unblock};
use support::{abandon_slot, poll_once, until, within, Gate, TempDir};

const HANG: Duration = Duration::from_secs(20);

/// `fut`'s output if its first poll is ready; panics (naming `what`) if it would wait.
async fn now<F: Future>(fut: F, what: &str) -> F::Output {
    overlap::yield_now().await; // a fresh budget: only the call itself may wait
    match poll_once(pin!(fut)).await {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("{what} waited instead of returning at once"),
    }
}

/// A writer whose every write waits at `gate`, then fails with `StorageFull`; `failed`
/// counts the failures.
struct FailsAfterGate {
    gate: Gate,
    failed: Arc<AtomicUsize>,
    flushes: usize,
}

impl FailsAfterGate {
    fn new(gate: Gate) -> (FailsAfterGate, Arc<AtomicUsize>) {
        let failed = Arc::new(AtomicUsize::new(0));
        let writer = FailsAfterGate {
            gate,
            failed: failed.clone(),
            flushes: 0,
        };
        (writer, failed)
    }
}

impl Write for FailsAfterGate {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        self.gate.wait();
        self.failed.fetch_add(1, Ordering::SeqCst);
        Err(io::Error::new(ErrorKind::StorageFull, "no room"))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

/// A file of `bytes`, opened to read and write.
fn read_write_file(dir: &TempDir, bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
    let path = dir.join("f");
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path, file)
}

/// `Unblock`: "read-ahead moves the inner value's position past the bytes returned so far,
/// and a write drops the read-ahead bytes not yet returned. With a `Seek` value, seek
/// (`SeekFrom::Current(0)` will do) between reading and writing: that puts the value's
/// position back where the reader is." Without the seek, two bytes written after two read
/// land at the end of a ten-byte file (where the read-ahead left the position), and the
/// eight bytes read ahead are never returned; with it, they land at offset 2 and reading
/// goes on after them.
#[overlap::test]
async fn a_write_drops_the_read_ahead_and_a_seek_between_puts_the_position_back() {
    let dir = TempDir::new("io-audit-unblock-read-ahead");
    let (path, file) = read_write_file(&dir, b"0123456789");
    let mut u = Unblock::new(file);
    let mut two = [0u8; 2];
    u.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"01");
    u.write_all(b"AB").await.unwrap();
    u.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456789AB");
    assert_eq!(u.read(&mut [0u8; 8]).await.unwrap(), 0, "read-ahead kept");

    let (path, file) = read_write_file(&dir, b"0123456789");
    let mut u = Unblock::new(file);
    u.read_exact(&mut two).await.unwrap();
    assert_eq!(u.seek(SeekFrom::Current(0)).await.unwrap(), 2);
    u.write_all(b"AB").await.unwrap();
    u.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"01AB456789");
    let mut three = [0u8; 3];
    u.read_exact(&mut three).await.unwrap();
    assert_eq!(&three, b"456");
}

/// `Unblock`: "An empty read or write returns `Ok(0)` at once, whatever the state: it waits
/// for no job, and leaves a job's error for the next call that moves bytes", and "A call's
/// future dropped before it completes [...] loses nothing: its job stays with the
/// `Unblock`, and the next call takes the result (a read's bytes, a write's error)". A
/// write's job is held at a gate: an empty write returns at once all the same, and a flush
/// is dropped waiting for it; once the job has failed, empty writes still say `Ok(0)`, the
/// next write of bytes reports the failure, and the value is still there to flush.
#[overlap::test]
async fn a_write_error_waits_past_empty_writes_and_a_dropped_flush_for_the_next_write() {
    let gate = Gate::default();
    let (writer, failed) = FailsAfterGate::new(gate.clone());
    let mut u = Unblock::new(writer);
    assert_eq!(u.write(b"12345").await.unwrap(), 5, "accepted at once");
    let empty = now(u.write(&[]), "an empty write behind a held job").await;
    assert_eq!(empty.unwrap(), 0);
    abandon_slot(u.flush()); // polled once, the write's job held: dropped waiting
    gate.open();
    until(
        || failed.load(Ordering::SeqCst) == 1,
        "the write job failing",
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            u.write(&[]).await.unwrap(),
            0,
            "an empty write took the error"
        );
    }
    let err = within(HANG, u.write(b"x"), "the next write")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
    within(HANG, u.flush(), "a flush after the error")
        .await
        .unwrap();
    let inner = within(HANG, u.into_inner(), "into_inner").await.unwrap();
    assert_eq!(
        inner.flushes, 1,
        "the value's flush ran once, after the error"
    );
}

/// A writer that takes no byte: every write is `Ok(0)`.
struct TakesNothing;

impl Write for TakesNothing {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Ok(0)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Unblock::into_inner`: "Waits for the job in flight, if any, and hands the value back.
/// [...] bytes accepted by a write are written first (its error, if any, is returned)", and
/// `Unblock`: a value "whose `write` accepts nothing [fails the call that reports it] with
/// `WriteZero`". Bytes written and never flushed are in the value it hands back; bytes the
/// value would not take make it fail with `WriteZero` (where a plain loop would spin).
#[overlap::test]
async fn into_inner_writes_the_accepted_bytes_first_and_returns_their_error() {
    let mut u = Unblock::new(Vec::<u8>::new());
    u.write_all(b"accepted").await.unwrap();
    let back = within(HANG, u.into_inner(), "into_inner").await.unwrap();
    assert_eq!(back, b"accepted");

    let mut u = Unblock::new(TakesNothing);
    assert_eq!(u.write(b"refused").await.unwrap(), 7, "accepted at once");
    let Err(err) = within(HANG, u.into_inner(), "into_inner").await else {
        panic!("into_inner handed the value back past its write's error");
    };
    assert_eq!(err.kind(), ErrorKind::WriteZero, "{err}");
}

/// `Unblock::with_capacity`: "moving at most `chunk` bytes per job (at least 1 [...])". A
/// chunk of 0 is 1: a read job fetches one byte (not zero, which would read as end of file)
/// and a write takes one byte.
#[overlap::test]
async fn a_chunk_of_zero_moves_one_byte_per_job() {
    let dir = TempDir::new("io-audit-unblock-chunk");
    let (_path, file) = read_write_file(&dir, b"abc");
    let mut r = Unblock::with_capacity(0, file);
    let mut got = Vec::new();
    let mut buf = [0u8; 8];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(n, 1, "a job moved more than one byte");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"abc");
    let mut w = Unblock::with_capacity(0, Vec::<u8>::new());
    assert_eq!(w.write(b"xyz").await.unwrap(), 1);
    w.write_all(b"yz").await.unwrap();
    assert_eq!(w.into_inner().await.unwrap(), b"xyz");
}

/// `Unblock`, "# Panics": "The first read or write panics outside a runtime and outside a
/// blocking job (inside one, the job goes to the pool of `Handle::current`)." Polled by
/// hand on a plain thread, a read and a write each panic; in a blocking job, under
/// `Handle::block_on`, the same calls read and write.
#[test]
fn the_first_read_or_write_panics_outside_a_runtime_and_works_in_a_blocking_job() {
    let mut cx = Context::from_waker(Waker::noop());
    let mut reader = Unblock::new(&b"abc"[..]);
    let read = catch_unwind(AssertUnwindSafe(|| {
        let _ = Pin::new(&mut reader).poll_read(&mut cx, &mut [0u8; 4]);
    }));
    let said = support::panic_message(read.expect_err("a read outside a runtime"));
    assert!(said.contains("outside of a runtime"), "{said}");
    let mut writer = Unblock::new(Vec::<u8>::new());
    let write = catch_unwind(AssertUnwindSafe(|| {
        let _ = Pin::new(&mut writer).poll_write(&mut cx, b"abc");
    }));
    let said = support::panic_message(write.expect_err("a write outside a runtime"));
    assert!(said.contains("outside of a runtime"), "{said}");

    let in_job = overlap::block_on(async {
        let job = overlap::spawn_blocking(|| {
            overlap::Handle::current().block_on(async {
                let mut text = String::new();
                Unblock::new(&b"abc"[..]).read_to_string(&mut text).await?;
                let mut out = Unblock::new(Vec::<u8>::new());
                out.write_all(b"xyz").await?;
                io::Result::Ok((text, out.into_inner().await?))
            })
        });
        within(HANG, job, "the blocking job").await
    });
    let (text, written) = in_job.unwrap().unwrap();
    assert_eq!((text.as_str(), &written[..]), ("abc", &b"xyz"[..]));
}
