//! Ports the writing half of tokio-util's `tests/length_delimited.rs` to `overlap::codec`:
//! `LengthDelimitedCodec` under a `FramedWrite` over a scripted writer
//! (`support::scripted`), one poll at a time (frames written head then data, flushes cut
//! short by `Pending`, the maximum lowered between and during writes, a writer that takes
//! nothing), and the codec alone (a full buffer grown, the maximum clipped to what the
//! length field can hold, `set_max_frame_length` clipped too).
//!
//! Nothing diverged here; `length_field_type` (added with the reading half's port) is
//! checked on the wire too.

mod support;

use std::io;
use std::pin::Pin;
use std::task::Poll;

use overlap::codec::length_delimited::Builder;
use overlap::codec::{BytesMut, Encoder, FramedWrite, LengthDelimitedCodec};
use overlap::sink::Sink;
use support::scripted::{data, noop_cx, Scripted, Step};

type Writer = FramedWrite<Scripted, LengthDelimitedCodec>;

fn poll_ready(io: &mut Writer) -> Poll<io::Result<()>> {
    Sink::<&[u8]>::poll_ready(Pin::new(io), &mut noop_cx())
}

fn poll_flush(io: &mut Writer) -> Poll<io::Result<()>> {
    Sink::<&[u8]>::poll_flush(Pin::new(io), &mut noop_cx())
}

fn start_send(io: &mut Writer, item: &'static [u8]) -> io::Result<()> {
    Pin::new(io).start_send(item)
}

fn writer(builder: &Builder, steps: impl IntoIterator<Item = Step>) -> Writer {
    builder.new_write(Scripted::new(steps))
}

#[test]
fn writing_nothing_writes_nothing() {
    let mut io = writer(&Builder::new(), []);
    assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    assert_eq!(io.get_ref().flushes, 1);
}

#[test]
fn one_frame_written_head_then_data() {
    // The head and the data are one write here; the script takes them in two.
    let mut io = writer(
        &Builder::new(),
        [data(b"\x00\x00\x00\x09"), data(b"abcdefghi"), Step::Flush],
    );
    assert!(matches!(poll_ready(&mut io), Poll::Ready(Ok(()))));
    start_send(&mut io, b"abcdefghi").unwrap();
    assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    assert!(io.get_ref().is_done());
}

#[test]
fn several_frames_one_flush_or_a_flush_each() {
    let mut io = writer(
        &Builder::new(),
        [
            data(b"\x00\x00\x00\x09abcdefghi"),
            data(b"\x00\x00\x00\x03123"),
            data(b"\x00\x00\x00\x0bhello world"),
            Step::Flush,
        ],
    );
    for item in [&b"abcdefghi"[..], b"123", b"hello world"] {
        assert!(matches!(poll_ready(&mut io), Poll::Ready(Ok(()))));
        start_send(&mut io, item).unwrap();
    }
    assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    assert!(io.get_ref().is_done());

    let mut io = writer(
        &Builder::new(),
        [
            data(b"\x00\x00\x00\x09abcdefghi"),
            Step::Flush,
            data(b"\x00\x00\x00\x03123"),
            Step::Flush,
        ],
    );
    for item in [&b"abcdefghi"[..], b"123"] {
        assert!(matches!(poll_ready(&mut io), Poll::Ready(Ok(()))));
        start_send(&mut io, item).unwrap();
        assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    }
    assert!(io.get_ref().is_done());
}

#[test]
fn a_flush_that_would_block_resumes_where_it_was() {
    let mut io = writer(
        &Builder::new(),
        [
            Step::Pending,
            data(b"\x00\x00"),
            Step::Pending,
            data(b"\x00\x09"),
            data(b"abcdefghi"),
            Step::Flush,
        ],
    );
    assert!(matches!(poll_ready(&mut io), Poll::Ready(Ok(()))));
    start_send(&mut io, b"abcdefghi").unwrap();
    assert!(poll_flush(&mut io).is_pending());
    assert!(poll_flush(&mut io).is_pending());
    assert_eq!(io.write_buffer(), &b"\x00\x09abcdefghi"[..]);
    assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    assert!(io.get_ref().is_done());
}

#[test]
fn written_fields_little_endian_short_and_adjusted() {
    for (builder, head) in [
        (*Builder::new().little_endian(), &b"\x09\x00\x00\x00"[..]),
        (*Builder::new().length_field_length(1), b"\x09"),
        (*Builder::new().length_adjustment(-2), b"\x00\x00\x00\x0b"),
        (*Builder::new().length_field_type::<u16>(), b"\x00\x09"),
    ] {
        let mut io = writer(&builder, [data(head), data(b"abcdefghi"), Step::Flush]);
        assert!(matches!(poll_ready(&mut io), Poll::Ready(Ok(()))));
        start_send(&mut io, b"abcdefghi").unwrap();
        assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
        assert!(io.get_ref().is_done(), "{builder:?}");
    }
}

#[test]
fn a_frame_over_the_maximum_is_refused_before_it_is_buffered() {
    let mut io = writer(Builder::new().max_frame_length(5), []);
    assert!(matches!(poll_ready(&mut io), Poll::Ready(Ok(()))));
    let e = start_send(&mut io, b"abcdef").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(io.write_buffer().is_empty());
}

#[test]
fn the_maximum_lowered_after_a_frame_or_while_it_is_written() {
    let mut io = writer(
        &Builder::new(),
        [data(b"\x00\x00\x00\x06abcdef"), Step::Flush],
    );
    start_send(&mut io, b"abcdef").unwrap();
    assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    io.encoder_mut().set_max_frame_length(5);
    assert!(start_send(&mut io, b"abcdef").is_err());
    assert!(io.get_ref().is_done());

    // A frame already encoded is still written out whole.
    let mut io = writer(
        &Builder::new(),
        [
            data(b"\x00\x00\x00\x06ab"),
            Step::Pending,
            data(b"cdef"),
            Step::Flush,
        ],
    );
    start_send(&mut io, b"abcdef").unwrap();
    assert!(poll_flush(&mut io).is_pending());
    io.encoder_mut().set_max_frame_length(5);
    assert!(matches!(poll_flush(&mut io), Poll::Ready(Ok(()))));
    assert!(start_send(&mut io, b"abcdef").is_err());
    assert!(io.get_ref().is_done());
}

#[test]
fn a_writer_that_takes_nothing_is_a_write_zero_error() {
    let mut io = writer(&Builder::new(), []);
    start_send(&mut io, b"abcdef").unwrap();
    match poll_flush(&mut io) {
        Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::WriteZero),
        other => panic!("expected WriteZero, got {other:?}"),
    }
}

// ===== The codec alone =====

#[test]
fn encoding_grows_a_full_buffer() {
    let mut codec = LengthDelimitedCodec::new();
    let mut buf = BytesMut::with_capacity(1024);
    buf.put_slice(&[b'a'; 1024]);
    codec.encode(&b"hello"[..], &mut buf).unwrap();
    assert_eq!(&buf[1024..], b"\x00\x00\x00\x05hello");
}

#[test]
fn the_maximum_is_clipped_to_what_the_field_holds() {
    let one_byte = |adjust: isize| {
        Builder::new()
            .length_field_length(1)
            .length_adjustment(adjust)
            .new_codec()
    };
    let codec = Builder::new()
        .length_field_length(1)
        .max_frame_length(256)
        .new_codec();
    assert_eq!(codec.max_frame_length(), 255);
    assert_eq!(one_byte(-1).max_frame_length(), 254);
    assert_eq!(one_byte(1).max_frame_length(), 256);
    let usize_field = Builder::new()
        .length_field_length(std::mem::size_of::<usize>())
        .max_frame_length(usize::MAX)
        .new_codec();
    assert_eq!(usize_field.max_frame_length(), usize::MAX);
    let small = Builder::new()
        .max_frame_length(10)
        .length_field_length(8)
        .new_codec();
    assert_eq!(small.max_frame_length(), 10);
}

#[test]
fn set_max_frame_length_is_clipped_too_and_the_largest_frame_fits() {
    for (adjust, max) in [(-1isize, 254usize), (0, 255), (1, 256)] {
        let mut codec = Builder::new()
            .length_field_length(1)
            .length_adjustment(adjust)
            .new_codec();
        codec.set_max_frame_length(1_000);
        assert_eq!(codec.max_frame_length(), max);

        let mut out = BytesMut::new();
        codec.encode(vec![0u8; max], &mut out).unwrap();
        assert_eq!(out[0], u8::MAX);

        // One more is refused, and the buffer is left as it was.
        let mut out = BytesMut::from("prefix");
        let e = codec.encode(vec![0u8; max + 1], &mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(out, "prefix");
    }
}

#[test]
#[should_panic(expected = "invalid length field length")]
fn a_field_of_nine_bytes_panics() {
    Builder::new().length_field_length(9);
}
