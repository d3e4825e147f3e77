//! `ReaderStream` (tokio-util's `io::ReaderStream`): a pipe's and a TCP stream's bytes as
//! chunks, byte-exact, each within the capacity; the end and an error end the stream; and
//! the other way round through `TryStreamExt::into_async_read`.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use overlap::block_on;
use overlap::codec::ReaderStream;
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use overlap::stream::{StreamExt, TryStreamExt};
use support::tcp_pair;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_pipe_comes_through_byte_exact_in_chunks_within_the_capacity() {
    block_on(async {
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        let data = pattern(1 << 20);
        let sent = data.clone();
        let writer = overlap::spawn(async move {
            for piece in sent.chunks(3000) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let mut chunks = ReaderStream::with_capacity(rx, 8192);
        let mut got = Vec::new();
        let mut count = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= 8192, "{}", chunk.len());
            got.extend_from_slice(&chunk);
            count += 1;
        }
        assert_eq!(got, data);
        assert!(count >= (1 << 20) / 8192, "{count} chunks");
        // Ended: it stays ended.
        assert!(chunks.next().await.is_none());
        writer.await.unwrap();
    });
}

#[test]
fn a_tcp_stream_round_trips_through_reader_stream_and_into_async_read() {
    block_on(async {
        let (mut a, b) = tcp_pair().await;
        let data = pattern(300_000);
        let sent = data.clone();
        let writer = overlap::spawn(async move {
            a.write_all(&sent).await.unwrap();
        });
        // Reader -> stream of chunks -> reader again (tokio-util's StreamReader).
        let mut back = ReaderStream::new(b).into_async_read();
        let mut got = Vec::new();
        back.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        writer.await.unwrap();
    });
}

/// Gives `ok` bytes, then fails with `ConnectionReset`.
struct FailsAfter {
    ok: usize,
}

impl AsyncRead for FailsAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.ok == 0 {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let n = self.ok.min(buf.len());
        buf[..n].fill(1);
        self.ok -= n;
        Poll::Ready(Ok(n))
    }
}

#[test]
fn a_read_error_is_yielded_once_and_ends_the_stream() {
    block_on(async {
        let mut chunks = ReaderStream::with_capacity(FailsAfter { ok: 10 }, 4);
        let mut sizes = Vec::new();
        let err = loop {
            match chunks.next().await.expect("ended before the error") {
                Ok(c) => sizes.push(c.len()),
                Err(e) => break e,
            }
        };
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert!(
            chunks.next().await.is_none(),
            "the stream goes on after an error"
        );
        assert!(chunks.next().await.is_none());
    });
}
