//! The adversarial review of `overlap::codec`, its write side and buffers (the decoders
//! are in `codec_review.rs`): `FramedWrite` into a writer taking one or two bytes a write
//! with `Pending` between (every byte in order, `poll_ready` free below the boundary and,
//! past it, ready only once written back under it, `poll_flush` ready only once all is
//! written and flushed); `WriteZero` and a write error in the middle of the buffer, the
//! rest kept; `into_parts`/`from_parts` in the middle of a frame both ways over a Unix
//! socket pair; `ReaderStream` with a capacity of 0 and 1; `BytesMut` against a `Vec`
//! model; lengths that leave `usize` or go below zero after a `LengthDelimitedCodec`'s
//! adjustment, decoding and encoding. And the read side's guard at end of file: a `decode_eof` that keeps failing on
//! the same bytes is asked once more and the stream ends, while one that takes a byte per
//! failure gives every failure.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::codec::{
    BytesMut, Decoder, Framed, FramedRead, FramedWrite, LengthDelimitedCodec, ReaderStream,
};
use overlap::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::sink::{Sink, SinkExt};
use overlap::stream::{Stream, StreamExt};
use support::scripted::{data, fail, noop_cx, poll_next, Scripted, Step};
use support::{within, Rng};

const LONG: Duration = Duration::from_secs(20);

/// A decoder of nothing whose `decode_eof` fails while bytes are left, taking `takes` of
/// them per failure; it counts its `decode_eof` calls.
struct FailsAtEnd {
    takes: usize,
    eof_calls: usize,
}

impl Decoder for FailsAtEnd {
    type Item = Vec<u8>;
    type Error = io::Error;
    fn decode(&mut self, _: &mut BytesMut) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Vec<u8>>> {
        self.eof_calls += 1;
        if buf.is_empty() {
            return Ok(None);
        }
        let n = self.takes.min(buf.len());
        buf.advance(n);
        Err(io::Error::other(format!("{} left", buf.len() + n)))
    }
}

#[test]
fn a_decode_eof_failing_on_the_same_bytes_is_asked_once_more_then_the_stream_ends() {
    let mut framed = FramedRead::new(
        Scripted::new([data(b"abc")]),
        FailsAtEnd {
            takes: 0,
            eof_calls: 0,
        },
    );
    assert!(matches!(poll_next(&mut framed), Poll::Ready(Some(Err(_)))));
    for _ in 0..3 {
        assert!(matches!(poll_next(&mut framed), Poll::Ready(None)));
    }
    assert_eq!(framed.decoder().eof_calls, 2, "asked once more, not again");
    assert_eq!(framed.read_buffer(), &b"abc"[..]);

    // Taking a byte per failure, each failure is its own: all three come, then the end.
    let mut framed = FramedRead::new(
        Scripted::new([data(b"abc")]),
        FailsAtEnd {
            takes: 1,
            eof_calls: 0,
        },
    );
    for left in ["3 left", "2 left", "1 left"] {
        match poll_next(&mut framed) {
            Poll::Ready(Some(Err(e))) => assert_eq!(e.to_string(), left),
            other => panic!("expected {left:?}, got {other:?}"),
        }
        assert!(matches!(poll_next(&mut framed), Poll::Ready(None)));
    }
    assert!(matches!(poll_next(&mut framed), Poll::Ready(None)));
    assert_eq!(framed.decoder().eof_calls, 4);
}

#[test]
fn lengths_that_leave_usize_or_go_below_zero_after_the_adjustment() {
    // An 8-byte field at u64::MAX with the maximum lifted: the field passes the maximum,
    // the adjustment of +1 overflows. InvalidInput, and the header stays.
    let mut codec = LengthDelimitedCodec::builder()
        .length_field_type::<u64>()
        .length_adjustment(1)
        .max_frame_length(usize::MAX)
        .new_codec();
    assert_eq!(codec.max_frame_length(), usize::MAX);
    let mut wire = BytesMut::from(&[0xff; 8][..]);
    let e = codec.decode(&mut wire).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "provided length would overflow after adjustment"
    );
    assert_eq!(wire, [0xff; 8], "the header stays");

    // A field of 2 with an adjustment of -3 would be -1 bytes: InvalidInput, not a huge
    // frame waited for; a field of 3 is an empty frame.
    let mut codec = LengthDelimitedCodec::builder()
        .length_field_length(2)
        .length_adjustment(-3)
        .new_codec();
    let mut wire = BytesMut::from(&b"\x00\x02rest"[..]);
    let e = codec.decode(&mut wire).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(wire, b"\x00\x02rest"[..]);
    let mut wire = BytesMut::from(&b"\x00\x03rest"[..]);
    assert_eq!(codec.decode(&mut wire).unwrap().unwrap(), b""[..]);
    assert_eq!(wire, b"rest"[..]);

    // Encoding the other way round: a payload shorter than a positive adjustment has no
    // field value, and a field of 2 cannot hold 65536.
    let mut codec = LengthDelimitedCodec::builder()
        .length_field_length(2)
        .length_adjustment(4)
        .num_skip(0)
        .new_codec();
    let mut out = BytesMut::new();
    let e = overlap::codec::Encoder::encode(&mut codec, &b"abc"[..], &mut out).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(out.is_empty());
    let mut codec = LengthDelimitedCodec::builder()
        .length_field_length(2)
        .length_adjustment(-1)
        .new_codec();
    codec.set_max_frame_length(usize::MAX);
    assert_eq!(
        codec.max_frame_length(),
        65534,
        "clipped to what the field holds"
    );
}

/// A writer taking 1 or 2 bytes a write, `Pending` (woken at once) before about one write
/// in two; it records what it took, and how much it had taken at each flush.
struct Trickle {
    taken: Vec<u8>,
    writes: usize,
    flushed_at: Vec<usize>,
    rng: Rng,
}

impl AsyncWrite for Trickle {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.rng.below(2) == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = (1 + self.rng.below(2)).min(buf.len());
        self.taken.extend_from_slice(&buf[..n]);
        self.writes += 1;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let at = self.taken.len();
        self.flushed_at.push(at);
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

type Frames = FramedWrite<Trickle, LengthDelimitedCodec>;

/// Polls `f` on `frames` until it is ready (the writer wakes at once, so it soon is).
fn until_ready(
    frames: &mut Frames,
    mut f: impl FnMut(Pin<&mut Frames>, &mut Context<'_>) -> Poll<io::Result<()>>,
) {
    for _ in 0..100_000 {
        if let Poll::Ready(result) = f(Pin::new(&mut *frames), &mut noop_cx()) {
            return result.unwrap();
        }
    }
    panic!("never ready");
}

#[test]
fn framed_write_into_a_trickling_writer_keeps_order_boundary_and_flush() {
    for seed in [3u64, 77, 1234, 99_999] {
        let writer = Trickle {
            taken: Vec::new(),
            writes: 0,
            flushed_at: Vec::new(),
            rng: Rng(seed),
        };
        let mut frames = FramedWrite::new(writer, LengthDelimitedCodec::new());
        frames.set_backpressure_boundary(16);
        let mut rng = Rng(seed ^ 0x5eed);
        let mut want = Vec::new();
        let mut frame_ends = vec![0];
        for n in 0..40u8 {
            let payload = vec![n; rng.below(12)];
            let buffered = frames.write_buffer().len();
            let writes = frames.get_ref().writes;
            until_ready(&mut frames, Sink::<&[u8]>::poll_ready);
            if buffered < 16 {
                assert_eq!(frames.get_ref().writes, writes, "free below the boundary");
                assert_eq!(frames.write_buffer().len(), buffered);
            } else {
                // Past the boundary it writes; a poll after a `Pending` is ready as soon
                // as the buffer is under the boundary again, as tokio-util's.
                assert!(
                    frames.write_buffer().len() < 16,
                    "ready only under the boundary"
                );
                assert!(frames.get_ref().writes > writes);
            }
            Pin::new(&mut frames).start_send(&payload[..]).unwrap();
            want.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            want.extend_from_slice(&payload);
            frame_ends.push(want.len());
            if n % 13 == 12 {
                until_ready(&mut frames, Sink::<&[u8]>::poll_flush);
                assert!(frames.write_buffer().is_empty());
                assert_eq!(frames.get_ref().taken, want, "seed {seed}");
                let at = *frames.get_ref().flushed_at.last().unwrap();
                assert_eq!(at, want.len(), "the writer flushed after the last byte");
            }
        }
        until_ready(&mut frames, Sink::<&[u8]>::poll_close);
        let writer = frames.into_inner();
        assert_eq!(writer.taken, want, "seed {seed}");
        // The writer was flushed only with the whole buffer written: at a frame's end.
        for at in &writer.flushed_at {
            assert!(
                frame_ends.contains(at),
                "a flush after {at} bytes, mid-frame"
            );
        }
        assert_eq!(writer.flushed_at.last(), Some(&want.len()));
    }
}

#[test]
fn write_zero_and_a_write_error_mid_buffer_keep_the_rest() {
    for (stop, kind) in [
        (data(b""), io::ErrorKind::WriteZero),
        (fail(io::ErrorKind::BrokenPipe), io::ErrorKind::BrokenPipe),
    ] {
        let script = Scripted::new([data(b"\0\0"), Step::Pending, data(b"\0\x03a"), stop]);
        let mut frames = FramedWrite::new(script, LengthDelimitedCodec::new());
        Pin::new(&mut frames).start_send(&b"abc"[..]).unwrap();
        Pin::new(&mut frames).start_send(&b"de"[..]).unwrap();
        let mut cx = noop_cx();
        let flush = |f: &mut FramedWrite<Scripted, _>, cx: &mut Context<'_>| {
            Sink::<&[u8]>::poll_flush(Pin::new(f), cx)
        };
        assert!(flush(&mut frames, &mut cx).is_pending());
        match flush(&mut frames, &mut cx) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), kind),
            other => panic!("expected {kind:?}, got {other:?}"),
        }
        assert_eq!(
            frames.write_buffer(),
            &b"bc\0\0\0\x02de"[..],
            "the rest kept"
        );
        assert_eq!(frames.get_ref().flushes, 0, "no flush after a failed write");
        // A writer that works again takes the rest, in order.
        frames
            .get_mut()
            .steps
            .extend([data(b"bc\0\0\0\x02de"), Step::Flush]);
        assert!(matches!(flush(&mut frames, &mut cx), Poll::Ready(Ok(()))));
        assert!(frames.get_ref().is_done() && frames.write_buffer().is_empty());
    }
}

#[overlap::test]
async fn parts_taken_mid_frame_both_ways_lose_nothing() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let mut framed = Framed::new(ours, LengthDelimitedCodec::new());
    peer.write_all(b"\0\0\0\x03one\0\0\0\x06tw").await.unwrap();
    let first = within(LONG, framed.next(), "the first frame").await;
    assert_eq!(first.unwrap().unwrap(), b"one"[..]);
    // The next poll takes the second frame's head and waits for the rest of it.
    let mut cx = noop_cx();
    let polled = Pin::new(&mut framed).poll_next(&mut cx);
    assert!(
        polled.is_pending(),
        "the second frame is not all there: {polled:?}"
    );
    assert_eq!(framed.read_buffer(), &b"tw"[..], "the head was taken");
    // An item encoded, not written.
    framed.feed(&b"back"[..]).await.unwrap();

    let mut parts = framed.into_parts();
    assert_eq!(parts.read_buf, b"tw"[..]);
    assert_eq!(parts.write_buf, b"\0\0\0\x04back"[..]);
    // Something of our own to send first, put in front of what is buffered.
    let mut write_buf = BytesMut::from(&b"\0\0\0\x01!"[..]);
    write_buf.unsplit(std::mem::take(&mut parts.write_buf));
    parts.write_buf = write_buf;
    let mut framed = Framed::from_parts(parts);
    peer.write_all(b"o!!!").await.unwrap();
    let second = within(LONG, framed.next(), "the second frame").await;
    assert_eq!(
        second.unwrap().unwrap(),
        b"two!!!"[..],
        "the codec kept its head"
    );
    within(LONG, SinkExt::<&[u8]>::flush(&mut framed), "the flush")
        .await
        .unwrap();
    let mut wire = [0u8; 13];
    within(LONG, peer.read_exact(&mut wire), "the peer's read")
        .await
        .unwrap();
    assert_eq!(&wire, b"\0\0\0\x01!\0\0\0\x04back");
}

#[test]
fn reader_stream_with_a_capacity_of_0_or_1_gives_a_byte_a_chunk() {
    for capacity in [0, 1] {
        let script = Scripted::new([data(b"ab"), Step::Pending, data(b"c")]);
        let mut chunks = ReaderStream::with_capacity(script, capacity);
        let mut got = Vec::new();
        loop {
            match poll_next(&mut chunks) {
                Poll::Pending => {}
                Poll::Ready(Some(chunk)) => got.push(chunk.unwrap().to_vec()),
                Poll::Ready(None) => break,
            }
        }
        assert_eq!(got, [b"a", b"b", b"c"], "capacity {capacity}");
        assert!(
            matches!(poll_next(&mut chunks), Poll::Ready(None)),
            "ended for good"
        );
    }
    // A read error with a capacity of 1: after the bytes, once, then the end.
    let script = Scripted::new([data(b"x"), fail(io::ErrorKind::ConnectionReset), data(b"y")]);
    let mut chunks = ReaderStream::with_capacity(script, 1);
    assert_eq!(
        poll_next(&mut chunks).map(|c| c.unwrap().unwrap()),
        Poll::Ready(b"x"[..].into())
    );
    match poll_next(&mut chunks) {
        Poll::Ready(Some(Err(e))) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected the error, got {other:?}"),
    }
    assert!(matches!(poll_next(&mut chunks), Poll::Ready(None)));
    assert!(matches!(poll_next(&mut chunks), Poll::Ready(None)));
}

#[test]
fn bytes_mut_random_operations_against_a_vec_model() {
    for seed in [1u64, 0xb17e5, 0xdead_beef, 42] {
        let mut rng = Rng(seed);
        let mut buf = BytesMut::new();
        let mut model: Vec<u8> = Vec::new();
        let mut next_byte = 0u8;
        let mut fresh = |rng: &mut Rng| -> Vec<u8> {
            (0..rng.below(40))
                .map(|_| {
                    next_byte = next_byte.wrapping_add(1);
                    next_byte
                })
                .collect()
        };
        for step in 0..3000 {
            let len = model.len();
            let op = rng.below(14);
            match op {
                0 | 1 => {
                    let bytes = fresh(&mut rng);
                    buf.extend_from_slice(&bytes);
                    model.extend_from_slice(&bytes);
                }
                2 => {
                    let n = rng.below(len + 1);
                    buf.advance(n);
                    model.drain(..n);
                }
                3 => {
                    let at = rng.below(len + 1);
                    let front = buf.split_to(at);
                    assert_eq!(front, model.drain(..at).collect::<Vec<_>>());
                }
                4 => {
                    let at = rng.below(len + 1);
                    let back = buf.split_off(at);
                    assert_eq!(back, model.split_off(at));
                }
                5 => {
                    let n = rng.below(100);
                    buf.reserve(n);
                    assert!(buf.capacity() - buf.len() >= n, "reserve({n})");
                }
                6 => {
                    let n = rng.below(len + 10);
                    buf.truncate(n);
                    model.truncate(n);
                }
                7 => {
                    let all = buf.split();
                    assert_eq!(all, model);
                    // Put back, sometimes through unsplit.
                    if rng.below(2) == 0 {
                        buf.unsplit(all);
                    } else {
                        buf = all;
                    }
                }
                8 => {
                    let tail = BytesMut::from(fresh(&mut rng));
                    model.extend_from_slice(&tail);
                    buf.unsplit(tail);
                }
                9 if len > 0 => {
                    let start = rng.below(len);
                    let end = start + rng.below(len - start + 1);
                    buf.extend_from_within(start..end);
                    model.extend_from_within(start..end);
                }
                10 => {
                    let (n, value) = (rng.below(30), rng.below(256) as u8);
                    let new_len = if rng.below(2) == 0 {
                        len + n
                    } else {
                        len.saturating_sub(n)
                    };
                    buf.resize(new_len, value);
                    model.resize(new_len, value);
                }
                11 => {
                    let bytes = fresh(&mut rng);
                    buf.extend(bytes.iter().copied());
                    model.extend_from_slice(&bytes);
                }
                12 if len >= 4 => {
                    let word = u32::from_be_bytes(model[..4].try_into().unwrap());
                    assert_eq!(buf.get_u32(), word);
                    model.drain(..4);
                }
                13 if len > 0 => {
                    // Writing through the slice changes the bytes in place.
                    let i = rng.below(len);
                    buf[i] ^= 0xff;
                    model[i] ^= 0xff;
                }
                _ => {
                    buf.clear();
                    model.clear();
                }
            }
            assert_eq!(buf, model, "seed {seed}, step {step}, op {op}");
            assert_eq!(buf.len(), model.len());
            assert_eq!(buf.is_empty(), model.is_empty());
            assert!(buf.capacity() >= buf.len());
        }
    }
}
