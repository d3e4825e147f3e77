//! Ports tokio-util's `tests/framed_write.rs` to `overlap::codec::FramedWrite`, over a
//! scripted writer (`support::scripted`) polled by hand: frames buffered until a flush, an
//! encoder changed with `map_encoder` keeping what was not written, the backpressure
//! boundary (`poll_ready` writing the buffer out once it holds that much, `Pending` then
//! all of it), flushes cut short by partial writes, `Pending` and errors (what was not
//! written kept for the next flush), and flush and close errors of the writer.
//!
//! What porting found:
//! - `FramedWrite::into_parts` and `encoder_pin_mut` were missing (tokio-util has them;
//!   `into_inner` drops what was not yet written). Added.
//! - A `FramedWrite` over a writer that is also a `Stream` was no stream. Added: items
//!   pass straight through, as tokio-util's do.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use overlap::codec::{FramedWrite, LinesCodec};
use overlap::sink::{Sink, SinkExt};
use overlap::stream::{Stream, StreamExt};
use support::scripted::{data, fail, noop_cx, Scripted, Step};
use support::word_codecs::{U32Codec, U64Codec};

fn ready<S: Sink<u32, Error = io::Error> + Unpin>(sink: &mut S) -> Poll<io::Result<()>> {
    Pin::new(sink).poll_ready(&mut noop_cx())
}

fn flush<S: Sink<u32, Error = io::Error> + Unpin>(sink: &mut S) -> Poll<io::Result<()>> {
    Pin::new(sink).poll_flush(&mut noop_cx())
}

#[test]
fn frames_are_buffered_until_a_flush() {
    let writer = Scripted::new([data(b"\0\0\0\0\0\0\0\x01\0\0\0\x02")]);
    let mut framed = FramedWrite::new(writer, U32Codec::default());
    for n in 0..3 {
        assert!(matches!(ready(&mut framed), Poll::Ready(Ok(()))));
        Pin::new(&mut framed).start_send(n).unwrap();
    }
    assert_eq!(framed.get_ref().steps.len(), 1, "nothing written yet");
    assert_eq!(framed.write_buffer().len(), 12);
    assert!(matches!(flush(&mut framed), Poll::Ready(Ok(()))));
    assert!(framed.get_ref().is_done());
    assert_eq!(framed.get_ref().flushes, 1);
}

#[test]
fn map_encoder_keeps_the_bytes_not_yet_written() {
    let writer = Scripted::new([data(b"\0\0\0\x04\0\0\0\0\0\0\0\x08")]);
    let mut framed = FramedWrite::new(writer, U32Codec::default());
    Pin::new(&mut framed).start_send(4u32).unwrap();
    let mut framed = framed.map_encoder(|_| U64Codec::default());
    Pin::new(&mut framed).start_send(8u64).unwrap();
    assert_eq!(framed.get_ref().steps.len(), 1);
    assert!(matches!(
        Sink::<u64>::poll_flush(Pin::new(&mut framed), &mut noop_cx()),
        Poll::Ready(Ok(()))
    ));
    assert!(framed.get_ref().is_done());
}

#[test]
fn poll_ready_writes_out_at_the_backpressure_boundary() {
    const CHUNK: usize = 2 * 1024;
    // The writer: Pending once, then 2 KiB a write, then the last frame alone.
    let mut steps = vec![Step::Pending];
    let wire: Vec<u8> = (0..(CHUNK * 2) as u32).flat_map(u32::to_be_bytes).collect();
    steps.extend(wire.chunks(CHUNK).map(data));
    steps.push(data(&((CHUNK * 2) as u32).to_be_bytes()));
    assert_eq!(steps.len(), 10);

    let mut framed = FramedWrite::new(Scripted::new(steps), U32Codec::default());
    framed.set_backpressure_boundary(CHUNK * 8);
    assert_eq!(framed.backpressure_boundary(), CHUNK * 8);
    // 16 KiB in: each poll_ready is ready, nothing is written.
    for n in 0..(CHUNK * 2) as u32 {
        assert!(matches!(ready(&mut framed), Poll::Ready(Ok(()))));
        Pin::new(&mut framed).start_send(n).unwrap();
    }
    assert_eq!(framed.get_ref().steps.len(), 10);
    // At the boundary, poll_ready writes the buffer out: Pending, then all of it.
    assert!(ready(&mut framed).is_pending());
    assert!(matches!(ready(&mut framed), Poll::Ready(Ok(()))));
    assert!(framed.write_buffer().is_empty());
    Pin::new(&mut framed)
        .start_send((CHUNK * 2) as u32)
        .unwrap();
    assert!(matches!(flush(&mut framed), Poll::Ready(Ok(()))));
    assert!(framed.get_ref().is_done());
}

#[test]
fn a_flush_cut_short_by_partial_writes_resumes_where_it_was() {
    let steps = [
        data(b"\0\0\0"),
        Step::Pending,
        data(b"\x01\0"),
        Step::Pending,
        data(b"\0\0\x02"),
        Step::Flush,
    ];
    let mut framed = FramedWrite::new(Scripted::new(steps), U32Codec::default());
    Pin::new(&mut framed).start_send(1).unwrap();
    Pin::new(&mut framed).start_send(2).unwrap();
    assert!(flush(&mut framed).is_pending());
    assert_eq!(framed.write_buffer(), &b"\x01\0\0\0\x02"[..]);
    assert!(flush(&mut framed).is_pending());
    assert_eq!(framed.write_buffer(), &b"\0\0\x02"[..]);
    assert!(matches!(flush(&mut framed), Poll::Ready(Ok(()))));
    assert!(framed.get_ref().is_done());
}

#[test]
fn a_write_error_keeps_what_was_not_written() {
    let steps = [
        data(b"\0\0"),
        fail(io::ErrorKind::BrokenPipe),
        data(b"\0\x09"),
        Step::Flush,
    ];
    let mut framed = FramedWrite::new(Scripted::new(steps), U32Codec::default());
    Pin::new(&mut framed).start_send(9).unwrap();
    match flush(&mut framed) {
        Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
        other => panic!("expected the write error, got {other:?}"),
    }
    assert_eq!(framed.write_buffer(), &b"\0\x09"[..]);
    assert!(matches!(flush(&mut framed), Poll::Ready(Ok(()))));
    assert!(framed.get_ref().is_done());
}

#[test]
fn flush_and_close_errors_of_the_writer_surface() {
    let steps = [data(b"\0\0\0\x01"), fail(io::ErrorKind::TimedOut)];
    let mut framed = FramedWrite::new(Scripted::new(steps), U32Codec::default());
    Pin::new(&mut framed).start_send(1).unwrap();
    assert!(
        matches!(flush(&mut framed), Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::TimedOut)
    );

    let steps = [
        data(b"\0\0\0\x01"),
        Step::Flush,
        fail(io::ErrorKind::NotConnected),
    ];
    let mut framed = FramedWrite::new(Scripted::new(steps), U32Codec::default());
    Pin::new(&mut framed).start_send(1).unwrap();
    let closed = Sink::<u32>::poll_close(Pin::new(&mut framed), &mut noop_cx());
    assert!(matches!(closed, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::NotConnected));
    assert!(!framed.get_ref().closed);
    let closed = Sink::<u32>::poll_close(Pin::new(&mut framed), &mut noop_cx());
    assert!(matches!(closed, Poll::Ready(Ok(()))));
    assert!(framed.get_ref().closed);
}

#[test]
fn send_through_a_writer_that_is_pending_between_writes() {
    let steps = [Step::Pending, data(b"one\n"), Step::Pending, data(b"two\n")];
    let mut framed = FramedWrite::new(Scripted::new(steps), LinesCodec::new());
    overlap::block_on(async {
        framed.send("one").await.unwrap();
        framed.send("two").await.unwrap();
        SinkExt::<&str>::close(&mut framed).await.unwrap();
    });
    assert!(framed.get_ref().is_done());
    assert!(framed.get_ref().closed);
}

#[test]
fn into_parts_keeps_the_bytes_not_yet_written() {
    let mut framed = FramedWrite::new(Scripted::new([]), U32Codec::default());
    Pin::new(&mut framed).start_send(5).unwrap();
    let parts = framed.into_parts();
    assert_eq!(parts.write_buf, &b"\0\0\0\x05"[..]);
    assert!(parts.read_buf.is_empty());
}

/// A writer that is also a stream of numbers.
#[derive(Debug)]
struct WriteAndStream(Scripted, std::vec::IntoIter<u8>);

impl overlap::io::AsyncWrite for WriteAndStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl Stream for WriteAndStream {
    type Item = u8;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u8>> {
        Poll::Ready(self.1.next())
    }
}

#[test]
fn a_framed_write_over_a_stream_passes_items_through() {
    let inner = WriteAndStream(Scripted::new([data(b"x\n")]), vec![1, 2].into_iter());
    let mut framed = FramedWrite::new(inner, LinesCodec::new());
    let got: Vec<u8> = overlap::block_on(async {
        framed.send("x").await.unwrap();
        framed.by_ref().collect().await
    });
    assert_eq!(got, [1, 2]);
    assert!(framed.get_ref().0.is_done());
}
