//! `io::Unblock`: blocking readers and writers on the pool, with exact bytes, errors that
//! come back (from the call or the next one), panics that become errors, and a loop that
//! keeps running while a job blocks.

mod support;

use std::io::{self, Read, Write};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt, Unblock};
use support::within;

const HANG: Duration = Duration::from_secs(30);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[overlap::test]
async fn a_file_round_trips_through_small_chunks() {
    let path = std::env::temp_dir().join(format!("overlap-unblock-{}", std::process::id()));
    let data = pattern(1 << 20);
    let mut out = Unblock::with_capacity(1000, std::fs::File::create(&path).unwrap());
    for piece in data.chunks(4096) {
        out.write_all(piece).await.unwrap();
    }
    out.flush().await.unwrap();
    let file = out.into_inner().await.unwrap();
    assert_eq!(file.metadata().unwrap().len(), data.len() as u64);
    // A plain read loop: futures-util's `read_to_end` zero-fills its spare capacity again
    // after every `Pending`, which is slow in debug builds with many small jobs.
    let mut back = vec![0u8; data.len() + 1];
    let mut input = Unblock::with_capacity(1000, std::fs::File::open(&path).unwrap());
    let mut got = 0;
    loop {
        let n = input.read(&mut back[got..]).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 1000, "a job read more than its chunk");
        got += n;
    }
    assert!(back[..got] == data[..], "bytes differ");
    assert_eq!(
        input.read(&mut [0u8; 8]).await.unwrap(),
        0,
        "end of file again"
    );
    std::fs::remove_file(&path).unwrap();
}

/// Accepts `room` bytes, then fails every write; counts flushes.
struct Cramped {
    room: usize,
    flushes: usize,
}

impl Write for Cramped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no room"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

#[overlap::test]
async fn a_write_error_comes_back_from_the_next_call() {
    let mut w = Unblock::new(Cramped {
        room: 10,
        flushes: 0,
    });
    // Accepted at once; the job fails on the pool.
    assert_eq!(w.write(&[1u8; 20]).await.unwrap(), 20);
    let err = w.flush().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    // The value survived its error: flushing again runs its flush.
    w.flush().await.unwrap();
    assert_eq!(w.into_inner().await.unwrap().flushes, 1);
}

/// Fails once with `Interrupted`, then with a real error, then gives `data`, then panics.
struct Moody {
    step: usize,
}

impl Read for Moody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step += 1;
        match self.step {
            1 => Err(io::ErrorKind::Interrupted.into()),
            2 => Err(io::Error::new(io::ErrorKind::InvalidData, "bad sector")),
            3 => {
                buf[..4].copy_from_slice(b"data");
                Ok(4)
            }
            _ => panic!("the reader broke"),
        }
    }
}

#[overlap::test]
async fn read_errors_and_panics_become_io_errors() {
    let mut r = Unblock::new(Moody { step: 0 });
    let mut buf = [0u8; 16];
    // Interrupted is retried inside the job; the next error is the caller's.
    let err = r.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(r.read(&mut buf).await.unwrap(), 4);
    assert_eq!(&buf[..4], b"data");
    let err = r.read(&mut buf).await.unwrap_err();
    assert!(err.to_string().contains("job"), "{err}");
    // The value went down with the job: later calls say so, without panicking.
    let err = r.read(&mut buf).await.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(r.into_inner().await.is_err());
}

#[overlap::test]
async fn a_blocked_read_leaves_the_loop_running() {
    let (reader, mut writer) = io::pipe().unwrap();
    let mut r = Unblock::new(reader);
    // The only writer is a task on this runtime: if the read blocked the loop, it could
    // never run, and the read never end.
    let feeder = overlap::spawn(async move {
        for _ in 0..100 {
            overlap::yield_now().await;
        }
        writer.write_all(b"from a task").unwrap();
    });
    let mut buf = [0u8; 32];
    let n = within(HANG, r.read(&mut buf), "the read blocked the loop")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"from a task");
    feeder.await.unwrap();
}

/// A reader that blocks until told to go on, and records the thread that drops it.
struct Gated {
    go: std::sync::mpsc::Receiver<()>,
    dropped_on: std::sync::mpsc::Sender<std::thread::ThreadId>,
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = self.go.recv();
        buf[0] = b'x';
        Ok(1)
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = self.dropped_on.send(std::thread::current().id());
    }
}

#[overlap::test]
async fn dropped_mid_job_the_value_is_dropped_on_the_pool() {
    let (go_tx, go) = std::sync::mpsc::channel();
    let (dropped_tx, dropped_on) = std::sync::mpsc::channel();
    let mut r = Unblock::new(Gated {
        go,
        dropped_on: dropped_tx,
    });
    // Start a read job, then drop the reader while the job blocks.
    let mut buf = [0u8; 8];
    assert!(futures_util::poll!(r.read(&mut buf)).is_pending());
    drop(r);
    // Let the loop run what the drop set in motion, then let the job finish.
    for _ in 0..10 {
        overlap::yield_now().await;
    }
    go_tx.send(()).unwrap();
    // The value is dropped where the job ran, never on the event loop (a `Drop` that
    // blocks, like a `BufWriter` flushing, would stall every task).
    let dropped = async {
        loop {
            match dropped_on.try_recv() {
                Ok(thread) => break thread,
                Err(_) => overlap::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    let thread = within(HANG, dropped, "the value was never dropped").await;
    assert_ne!(thread, std::thread::current().id());
}

/// `close` flushes and then drops the inner value (on the pool, as `blocking::Unblock`
/// does): the reader of the socket it held sees end of file while the `Unblock` lives on,
/// and later calls say it is closed.
#[overlap::test]
async fn close_drops_the_inner_writer_so_its_reader_sees_eof() {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    reader
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut w = Unblock::new(writer);
    w.write_all(b"bye").await.unwrap();
    w.close().await.unwrap();
    let got = overlap::spawn_blocking(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut &reader, &mut v).map(|_| v)
    })
    .await
    .unwrap();
    assert_eq!(got.expect("no end of file after close"), b"bye");
    // Closing again and flushing are fine; writing, reading and taking it back are not.
    w.close().await.unwrap();
    w.flush().await.unwrap();
    let kinds = [
        w.write_all(b"more").await.unwrap_err().kind(),
        w.read(&mut [0u8; 4]).await.unwrap_err().kind(),
        w.into_inner().await.unwrap_err().kind(),
    ];
    assert_eq!(kinds, [std::io::ErrorKind::BrokenPipe; 3]);
}

/// `close` reports the inner value's flush error.
#[overlap::test]
async fn close_reports_the_flush_error() {
    struct FailingFlush;
    impl std::io::Write for FailingFlush {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("flush failed"))
        }
    }
    let mut w = Unblock::new(FailingFlush);
    w.write_all(b"x").await.unwrap();
    assert_eq!(w.close().await.unwrap_err().to_string(), "flush failed");
}

/// A chunk too large to allocate (`usize::MAX`) is taken as the largest chunk: reads get
/// the bytes instead of a "capacity overflow" panic (or an allocation-failure abort).
#[overlap::test]
async fn a_huge_chunk_reads_the_bytes() {
    let mut input = Unblock::with_capacity(usize::MAX, io::Cursor::new(pattern(3000)));
    let mut back = Vec::new();
    let n = within(HANG, input.read_to_end(&mut back), "read_to_end")
        .await
        .unwrap();
    assert_eq!(n, 3000);
    assert!(back == pattern(3000), "bytes differ");
}

/// Gives `src` at most 3 bytes per call and scribbles a marker over the rest of the buffer it
/// is handed; counts the calls whose buffer was a different allocation or had been cleared
/// since the call before.
struct Scribbler {
    src: Vec<u8>,
    at: usize,
    last: Option<(usize, usize)>,
    calls: usize,
    cleared_or_moved: usize,
}

const MARK: u8 = 0xAB;

impl Read for Scribbler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if let Some((ptr, n)) = self.last {
            if ptr != buf.as_ptr() as usize || buf[n..].iter().any(|&b| b != MARK) {
                self.cleared_or_moved += 1;
            }
        }
        let n = (self.src.len() - self.at).min(3).min(buf.len());
        buf[..n].copy_from_slice(&self.src[self.at..self.at + n]);
        buf[n..].fill(MARK);
        self.at += n;
        self.last = Some((buf.as_ptr() as usize, n));
        Ok(n)
    }
}

/// Each read job gets the buffer the last one left, still initialized: it is not zeroed
/// again (the reader sees its own marker bytes), and the bytes read are exact.
#[overlap::test]
async fn read_jobs_reuse_the_initialized_buffer() {
    let data = pattern(3000);
    let mut r = Unblock::with_capacity(
        4096,
        Scribbler {
            src: data.clone(),
            at: 0,
            last: None,
            calls: 0,
            cleared_or_moved: 0,
        },
    );
    let mut got = Vec::new();
    let mut two = [0u8; 2];
    loop {
        let n = r.read(&mut two).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&two[..n]);
    }
    assert!(got == data, "bytes differ");
    let s = r.into_inner().await.unwrap();
    assert_eq!(s.calls, 1001, "1000 reads of 3 bytes, then end of file");
    assert_eq!(
        s.cleared_or_moved, 0,
        "a read job cleared or replaced the buffer"
    );
}

/// Reads one real byte from its first file and claims one more than it was given room
/// for; writes go to the second file.
struct Overclaims(std::fs::File, std::fs::File);

impl Read for Overclaims {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(&mut out[..1])?;
        Ok(if n == 0 { 0 } else { out.len() + 1 })
    }
}

impl Write for Overclaims {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.1.write(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.1.flush()
    }
}

/// A reader claiming more bytes than its buffer holds is `InvalidData`, not a read of
/// whatever the reused buffer held before (here, the bytes of an earlier write).
#[overlap::test]
async fn a_reader_claiming_more_than_its_buffer_is_invalid_data() {
    let dir = support::TempDir::new("unblock-overclaim");
    std::fs::write(dir.join("in"), b"abc").unwrap();
    let input = std::fs::File::open(dir.join("in")).unwrap();
    let output = std::fs::File::create(dir.join("out")).unwrap();
    let mut u = Unblock::with_capacity(8, Overclaims(input, output));
    within(HANG, u.write_all(b"SECRET!!"), "write")
        .await
        .unwrap();
    within(HANG, u.flush(), "flush").await.unwrap();
    let mut out = [0u8; 8];
    let err = within(HANG, u.read(&mut out), "read").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert_eq!(out, [0; 8], "nothing was handed out");
    assert_eq!(std::fs::read(dir.join("out")).unwrap(), b"SECRET!!");
}
