//! Ports the reading half of tokio-util's `tests/length_delimited.rs` to `overlap::codec`:
//! `LengthDelimitedCodec` under a `FramedRead` over a scripted reader
//! (`support::scripted`, where upstream has its own mock), one poll at a time, with every
//! builder option (offset, field length and type, adjustment, `num_skip`, byte order, the
//! maximum), and the seven layouts of tokio-util's module docs, each in one read and a
//! byte a read. The writing half is `port_tokio_util_codec_length_delimited_write.rs`.
//!
//! What porting found:
//! - A header whose length, adjusted, goes below zero (a field of 1 with an adjustment of
//!   -2) was an error of kind `InvalidData`, where tokio-util's is `InvalidInput` (the same
//!   message). A program matching on the kind saw another one; fixed to tokio-util's.
//! - `Builder::length_field_type::<u16>()` was missing (the README listed it as not here);
//!   added, over the same sealed set of types as tokio-util's (`u8`, `u16`, `u32`, `u64`,
//!   `usize`).
//!
//! Left as documented: a frame over the maximum says its size and the maximum
//! ("frame size too big: 9 bytes, the maximum is 5") where tokio-util's says "frame size
//! too big"; the kind is the same (`InvalidData` decoding, `InvalidInput` encoding).

mod support;

use std::io;
use std::task::Poll;

use overlap::codec::length_delimited::Builder;
use overlap::codec::{
    BytesMut, Decoder, Encoder, FramedRead, LengthDelimitedCodec, LengthDelimitedCodecError,
};
use support::scripted::{data, fail, poll_next, Scripted, Step};

type Reader = FramedRead<Scripted, LengthDelimitedCodec>;

fn reader(steps: impl IntoIterator<Item = Step>) -> Reader {
    FramedRead::new(Scripted::new(steps), LengthDelimitedCodec::new())
}

#[track_caller]
fn next_is(io: &mut Reader, want: &[u8]) {
    match poll_next(io) {
        Poll::Ready(Some(Ok(frame))) => assert_eq!(frame, want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

#[track_caller]
fn next_pending(io: &mut Reader) {
    let got = poll_next(io);
    assert!(got.is_pending(), "expected Pending, got {got:?}");
}

#[track_caller]
fn next_err(io: &mut Reader) -> io::Error {
    match poll_next(io) {
        Poll::Ready(Some(Err(e))) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[track_caller]
fn next_done(io: &mut Reader) {
    match poll_next(io) {
        Poll::Ready(None) => {}
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn an_empty_reader_yields_nothing() {
    next_done(&mut reader([]));
}

#[test]
fn one_frame_in_one_read() {
    let mut io = reader([data(b"\x00\x00\x00\x09abcdefghi")]);
    next_is(&mut io, b"abcdefghi");
    next_done(&mut io);
}

#[test]
fn little_native_and_big_endian_fields() {
    let mut io = Builder::new()
        .little_endian()
        .new_read(Scripted::new([data(b"\x09\x00\x00\x00abcdefghi")]));
    next_is(&mut io, b"abcdefghi");
    next_done(&mut io);

    let wire: &[u8] = if cfg!(target_endian = "big") {
        b"\x00\x00\x00\x09abcdefghi"
    } else {
        b"\x09\x00\x00\x00abcdefghi"
    };
    let mut io = Builder::new()
        .native_endian()
        .new_read(Scripted::new([data(wire)]));
    next_is(&mut io, b"abcdefghi");
    next_done(&mut io);

    // big_endian() after little_endian() wins: the last call counts.
    let mut io = Builder::new()
        .little_endian()
        .big_endian()
        .new_read(Scripted::new([data(b"\x00\x00\x00\x02hi")]));
    next_is(&mut io, b"hi");
}

#[test]
fn several_frames_in_one_read() {
    let mut io = reader([data(
        b"\x00\x00\x00\x09abcdefghi\x00\x00\x00\x03123\x00\x00\x00\x0bhello world",
    )]);
    next_is(&mut io, b"abcdefghi");
    next_is(&mut io, b"123");
    next_is(&mut io, b"hello world");
    next_done(&mut io);
}

#[test]
fn frames_split_across_reads_anywhere() {
    let mut io = reader([
        data(b"\x00\x00"),
        data(b"\x00\x09abc"),
        data(b"defghi"),
        data(b"\x00\x00\x00\x0312"),
        data(b"3\x00\x00\x00\x0bhello world"),
    ]);
    next_is(&mut io, b"abcdefghi");
    next_is(&mut io, b"123");
    next_is(&mut io, b"hello world");
    next_done(&mut io);
}

#[test]
fn frames_split_across_reads_with_pending_between() {
    let mut io = reader([
        data(b"\x00\x00"),
        Step::Pending,
        data(b"\x00\x09abc"),
        Step::Pending,
        data(b"defghi"),
        Step::Pending,
        data(b"\x00\x00\x00\x0312"),
        Step::Pending,
        data(b"3\x00\x00\x00\x0bhello world"),
        Step::Pending,
    ]);
    next_pending(&mut io);
    next_pending(&mut io);
    next_is(&mut io, b"abcdefghi");
    next_pending(&mut io);
    next_pending(&mut io);
    next_is(&mut io, b"123");
    next_is(&mut io, b"hello world");
    next_pending(&mut io);
    next_done(&mut io);
    assert!(io.get_ref().is_done());
}

#[test]
fn end_of_file_in_a_head_or_a_payload_is_an_error() {
    let mut io = reader([data(b"\x00\x00")]);
    let e = next_err(&mut io);
    assert_eq!(e.kind(), io::ErrorKind::Other);
    assert_eq!(e.to_string(), "bytes remaining on stream");
    next_done(&mut io);

    let mut io = reader([Step::Pending, data(b"\x00"), Step::Pending]);
    next_pending(&mut io);
    next_pending(&mut io);
    next_err(&mut io);

    let mut io = reader([
        data(b"\x00\x00\x00\x09ab"),
        Step::Pending,
        data(b"cd"),
        Step::Pending,
    ]);
    next_pending(&mut io);
    next_pending(&mut io);
    next_err(&mut io);
    next_done(&mut io);
}

#[test]
fn a_read_error_mid_frame_then_the_rest_of_it() {
    let mut io = reader([
        data(b"\x00\x00\x00\x05he"),
        fail(io::ErrorKind::ConnectionAborted),
        data(b"llo"),
    ]);
    assert_eq!(next_err(&mut io).kind(), io::ErrorKind::ConnectionAborted);
    next_done(&mut io);
    // Polled on, the frame completes from what was kept and what comes next.
    next_is(&mut io, b"hello");
    next_done(&mut io);
}

#[test]
fn a_frame_over_the_maximum_is_an_invalid_data_error() {
    let mut io = Builder::new()
        .max_frame_length(5)
        .new_read(Scripted::new([data(b"\x00\x00\x00\x09abcdefghi")]));
    let e = next_err(&mut io);
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    let inner = e.get_ref().unwrap();
    let inner = inner.downcast_ref::<LengthDelimitedCodecError>().unwrap();
    assert_eq!((inner.frame_length(), inner.max_frame_length()), (9, 5));
    next_done(&mut io);
}

#[test]
fn after_a_frame_over_the_maximum_its_head_stays_until_the_caller_drops_it() {
    // As tokio-util's: the codec does not skip the frame. Polled on, the same head is the
    // same error; a caller that wants to go on drops the frame's bytes itself.
    let mut io = Builder::new().max_frame_length(5).new_read(Scripted::new([
        data(b"\x00\x00\x00\x09abcd"),
        Step::Pending,
        data(b"efghi\x00\x00\x00\x02ok"),
    ]));
    assert_eq!(next_err(&mut io).kind(), io::ErrorKind::InvalidData);
    next_done(&mut io);
    assert_eq!(io.read_buffer(), &b"\x00\x00\x00\x09abcd"[..]);
    next_pending(&mut io);
    assert_eq!(next_err(&mut io).kind(), io::ErrorKind::InvalidData);
    next_done(&mut io);
    // Skip the head and the nine bytes it announced; the next frame decodes.
    io.read_buffer_mut().advance(4 + 9);
    next_is(&mut io, b"ok");
    next_done(&mut io);
}

#[test]
fn the_maximum_changed_between_frames_and_in_flight() {
    let mut io = Builder::new().new_read(Scripted::new([
        data(b"\x00\x00\x00\x09abcdefghi"),
        data(b"\x00\x00\x00\x09abcdefghi"),
    ]));
    next_is(&mut io, b"abcdefghi");
    io.decoder_mut().set_max_frame_length(5);
    next_err(&mut io);

    // A frame whose head was read before the change is let through; the next is not.
    let mut io = Builder::new().new_read(Scripted::new([
        data(b"\x00\x00\x00\x09abcd"),
        Step::Pending,
        data(b"efghi"),
        data(b"\x00\x00\x00\x09abcdefghi"),
    ]));
    next_pending(&mut io);
    io.decoder_mut().set_max_frame_length(5);
    next_is(&mut io, b"abcdefghi");
    next_err(&mut io);
}

#[test]
fn a_one_byte_field_and_a_field_after_a_header() {
    let mut io = Builder::new()
        .length_field_length(1)
        .new_read(Scripted::new([data(b"\x09abcdefghi")]));
    next_is(&mut io, b"abcdefghi");
    next_done(&mut io);

    let mut io = Builder::new()
        .length_field_length(2)
        .length_field_offset(4)
        .new_read(Scripted::new([data(b"zzzz\x00\x09abcdefghi")]));
    next_is(&mut io, b"abcdefghi");
    next_done(&mut io);
}

#[test]
fn the_whole_frame_kept_with_num_skip_zero_and_a_positive_adjustment() {
    let mut io = Builder::new()
        .length_field_length(2)
        .length_field_offset(2)
        .num_skip(0)
        .length_adjustment(4)
        .new_read(Scripted::new([data(
            b"xx\x00\x09abcdefghiyy\x00\x03123zz\x00\x0bhello world",
        )]));
    next_is(&mut io, b"xx\x00\x09abcdefghi");
    next_is(&mut io, b"yy\x00\x03123");
    next_is(&mut io, b"zz\x00\x0bhello world");
    next_done(&mut io);
}

#[test]
fn num_skip_past_the_field_drops_a_trailing_header_byte() {
    let mut io = Builder::new()
        .length_field_offset(0)
        .length_field_length(3)
        .length_adjustment(0)
        .num_skip(4)
        .new_read(Scripted::new([data(b"\x00\x00\x0b\x0cHello world")]));
    next_is(&mut io, b"Hello world");
    next_done(&mut io);
}

#[test]
fn a_length_that_counts_its_own_field() {
    let mut io = Builder::new()
        .length_field_length(2)
        .length_adjustment(-2)
        .new_read(Scripted::new([data(
            b"\x00\x0babcdefghi\x00\x05123\x00\x0dhello world",
        )]));
    next_is(&mut io, b"abcdefghi");
    next_is(&mut io, b"123");
    next_is(&mut io, b"hello world");
    next_done(&mut io);
}

#[test]
fn a_length_below_its_adjustment_is_an_invalid_input_error() {
    let mut codec = Builder::new()
        .length_field_length(1)
        .length_adjustment(-2)
        .new_codec();
    let mut buf = BytesMut::from(&b"\x01x"[..]);
    let e = codec.decode(&mut buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "provided length would overflow after adjustment"
    );
}

#[test]
fn length_field_type_sets_the_field_length() {
    let mut io = LengthDelimitedCodec::builder()
        .length_field_type::<u16>()
        .new_read(Scripted::new([data(b"\x00\x0bhello world")]));
    next_is(&mut io, b"hello world");
    next_done(&mut io);
    for (codec, len) in [
        (Builder::new().length_field_type::<u8>().new_codec(), 1),
        (Builder::new().length_field_type::<u32>().new_codec(), 4),
        (Builder::new().length_field_type::<u64>().new_codec(), 8),
        (
            Builder::new().length_field_type::<usize>().new_codec(),
            std::mem::size_of::<usize>(),
        ),
    ] {
        let mut codec = codec;
        let mut out = BytesMut::new();
        codec.encode(&b"ab"[..], &mut out).unwrap();
        assert_eq!(out.len(), len + 2, "a {len}-byte field");
        assert_eq!(out[len - 1], 2);
    }
}

/// The layouts of tokio-util's `length_delimited` module docs: the builder, the wire, the
/// frame handed out.
fn documented_layouts() -> Vec<(Builder, &'static [u8], &'static [u8])> {
    vec![
        // 1: a u16 length of the payload, the head dropped.
        (
            *Builder::new().length_field_type::<u16>(),
            b"\x00\x0BHello world",
            b"Hello world",
        ),
        // 2: the same, the head kept.
        (
            *Builder::new()
                .length_field_type::<u16>()
                .length_adjustment(2)
                .num_skip(0),
            b"\x00\x0BHello world",
            b"\x00\x0BHello world",
        ),
        // 3: a length that counts its own field.
        (
            *Builder::new()
                .length_field_type::<u16>()
                .length_adjustment(-2),
            b"\x00\x0DHello world",
            b"Hello world",
        ),
        // 4: a 3-byte length then 2 more head bytes, all kept.
        (
            *Builder::new()
                .length_field_length(3)
                .length_adjustment(3 + 2)
                .num_skip(0),
            b"\x00\x00\x0B\xCA\xFEHello world",
            b"\x00\x00\x0B\xCA\xFEHello world",
        ),
        // 5: a byte, a u16 length, a byte kept with the payload.
        (
            *Builder::new()
                .length_field_offset(1)
                .length_field_type::<u16>()
                .length_adjustment(1)
                .num_skip(3),
            b"\xCA\x00\x0B\xFEHello world",
            b"\xFEHello world",
        ),
        // 6: the same with a length that counts the whole head.
        (
            *Builder::new()
                .length_field_offset(1)
                .length_field_type::<u16>()
                .length_adjustment(-3)
                .num_skip(3),
            b"\xCA\x00\x0F\xFEHello world",
            b"\xFEHello world",
        ),
        // 7: a 3-byte length and a byte after it, both dropped.
        (
            *Builder::new().length_field_length(3).num_skip(4),
            b"\x00\x00\x0B\xFFHello world",
            b"Hello world",
        ),
    ]
}

#[test]
fn the_documented_layouts_in_one_read_and_a_byte_a_read() {
    for (i, (builder, wire, want)) in documented_layouts().into_iter().enumerate() {
        // Twice over, so the second frame starts where the first ended.
        let twice: Vec<u8> = [wire, wire].concat();
        let mut io = builder.new_read(Scripted::new([data(&twice)]));
        next_is(&mut io, want);
        next_is(&mut io, want);
        next_done(&mut io);

        let mut steps = Vec::new();
        for &byte in &twice {
            steps.push(data(&[byte]));
            steps.push(Step::Pending);
        }
        let mut io = builder.new_read(Scripted::new(steps));
        let mut frames = 0;
        while frames < 2 {
            match poll_next(&mut io) {
                Poll::Pending => {}
                Poll::Ready(Some(Ok(frame))) => {
                    assert_eq!(frame, want, "layout {}", i + 1);
                    frames += 1;
                }
                other => panic!("layout {}: {other:?}", i + 1),
            }
        }
        while poll_next(&mut io).is_pending() {}
        assert!(io.get_ref().is_done(), "layout {}", i + 1);
    }
}
