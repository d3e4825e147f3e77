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
use overlap::io::read_to_end;
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
