//! Readers and writers that claim more bytes than the buffer they were given, met by
//! `io::read_to_end` and by `io::Unblock`'s write jobs: each ends with `InvalidData`, as
//! `io::copy` and the number helpers already do, instead of keeping bytes the reader never
//! produced or panicking on a slice.

mod support;

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::io::AsyncRead;
use overlap::io::{read_to_end, AsyncWriteExt, Unblock};
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// Reads a real pipe one byte at a time; from the second read on, reports more bytes than
/// it was given room for (having put only that one real byte in it).
struct Overclaiming {
    pipe: std::fs::File,
    reads: usize,
}

impl AsyncRead for Overclaiming {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.reads += 1;
        let n = self.pipe.read(&mut out[..1])?;
        let lie = self.reads > 1 && n > 0;
        Poll::Ready(Ok(if lie { out.len() + 1 } else { n }))
    }
}

/// A pipe holding `bytes`, its write end closed.
fn pipe_holding(bytes: &[u8]) -> std::fs::File {
    let (w, r) = overlap::pipe::pipe().unwrap();
    let mut w = std::fs::File::from(w.into_blocking_fd().unwrap());
    io::Write::write_all(&mut w, bytes).unwrap();
    std::fs::File::from(r.into_blocking_fd().unwrap())
}

#[overlap::test]
async fn read_to_end_refuses_a_reader_claiming_more_than_its_room() {
    let mut reader = Overclaiming {
        pipe: pipe_holding(b"XY"),
        reads: 0,
    };
    // The first read takes "X" honestly; the second takes "Y" and claims more than the
    // room it was given, the rest of which holds nothing the reader wrote.
    let mut buf = b">".to_vec();
    let err = within(HANG, read_to_end(&mut reader, &mut buf), "read_to_end")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("more bytes"), "{err}");
    assert_eq!(buf, b">X", "only the bytes really read stay");
}

/// Writes to a real file, then claims one byte more than it was given.
struct OverclaimingWriter(std::fs::File);

impl io::Write for OverclaimingWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        Ok(self.0.write(bytes)? + 1)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `Unblock`'s write job meets a writer claiming more than it was given: the next call
/// fails with `InvalidData`, and the value stays usable (it was not lost to a panic in the
/// job, which std's `write_all` would have caused by slicing past the buffer's end).
#[overlap::test]
async fn unblock_refuses_a_writer_claiming_more_than_it_was_given() {
    let dir = support::TempDir::new("unblock-overclaiming-writer");
    let file = std::fs::File::create(dir.join("out")).unwrap();
    let mut u = Unblock::new(OverclaimingWriter(file));
    let n = within(HANG, u.write(b"abc"), "write").await.unwrap();
    assert_eq!(n, 3, "the write is accepted, its job runs later");
    let err = within(HANG, u.flush(), "flush").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("more bytes"), "{err}");
    // The value is still there: a flush goes through to it, and it can be taken back.
    within(HANG, u.flush(), "second flush").await.unwrap();
    let inner = within(HANG, u.into_inner(), "into_inner").await.unwrap();
    drop(inner);
    assert_eq!(std::fs::read(dir.join("out")).unwrap(), b"abc");
}
