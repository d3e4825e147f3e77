//! Small codecs for the framing tests (tokio-util's own tests' `U32Codec` and `U64Codec`),
//! a reader no test may read, and `Stream` checks polled by hand with a waker that does
//! nothing (see `scripted`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::AsyncRead;
use futures_util::Stream;
use overlap::codec::{BytesMut, Decoder, Encoder};

use super::scripted::poll_next;

/// Frames of a big-endian u32; counts the bytes it decoded.
#[derive(Debug, Default)]
pub struct U32Codec {
    pub decoded_bytes: usize,
    pub decode_calls: usize,
}

impl Decoder for U32Codec {
    type Item = u32;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<u32>> {
        self.decode_calls += 1;
        if buf.len() < 4 {
            return Ok(None);
        }
        self.decoded_bytes += 4;
        Ok(Some(buf.get_u32()))
    }
}

impl Encoder<u32> for U32Codec {
    type Error = io::Error;

    fn encode(&mut self, item: u32, dst: &mut BytesMut) -> io::Result<()> {
        dst.put_u32(item);
        Ok(())
    }
}

/// Frames of a big-endian u64, picking up a `U32Codec`'s count.
#[derive(Debug, Default)]
pub struct U64Codec {
    pub decoded_bytes: usize,
}

impl Decoder for U64Codec {
    type Item = u64;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<u64>> {
        if buf.len() < 8 {
            return Ok(None);
        }
        self.decoded_bytes += 8;
        Ok(Some(buf.get_u64()))
    }
}

impl Encoder<u64> for U64Codec {
    type Error = io::Error;

    fn encode(&mut self, item: u64, dst: &mut BytesMut) -> io::Result<()> {
        dst.put_u64(item);
        Ok(())
    }
}

/// A reader no test may read from: its frames must come from a buffer already there.
#[derive(Debug)]
pub struct NeverRead;

impl AsyncRead for NeverRead {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        panic!("read from a reader that should not have been read")
    }
}

#[track_caller]
pub fn next_is<S, T>(stream: &mut S, want: T)
where
    S: Stream<Item = io::Result<T>> + Unpin,
    T: PartialEq + std::fmt::Debug,
{
    match poll_next(stream) {
        Poll::Ready(Some(Ok(got))) => assert_eq!(got, want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

#[track_caller]
pub fn next_err<S: Stream<Item = io::Result<T>> + Unpin, T: std::fmt::Debug>(
    s: &mut S,
) -> io::Error {
    match poll_next(s) {
        Poll::Ready(Some(Err(e))) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[track_caller]
pub fn next_done<S: Stream + Unpin>(stream: &mut S)
where
    S::Item: std::fmt::Debug,
{
    match poll_next(stream) {
        Poll::Ready(None) => {}
        other => panic!("expected the end, got {other:?}"),
    }
}
