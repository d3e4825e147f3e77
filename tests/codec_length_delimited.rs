//! `LengthDelimitedCodec` over real sockets and pipes: big frames byte-exact, a peer that
//! writes one byte at a time, a frame over the maximum, end of file mid-frame, and the
//! builder's layouts checked against wire bytes built by hand.

mod support;

use std::io;
use std::time::Duration;

use overlap::codec::length_delimited::Builder;
use overlap::codec::{BytesMut, Decoder, Encoder, Framed, FramedRead, LengthDelimitedCodec};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use support::{tcp_pair, within};

const LONG: Duration = Duration::from_secs(30);

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn frame(item: Option<io::Result<BytesMut>>) -> BytesMut {
    match item {
        Some(Ok(frame)) => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[overlap::test]
async fn one_mib_frames_byte_exact_over_tcp() {
    let (a, b) = tcp_pair().await;
    let mut a = Framed::new(a, LengthDelimitedCodec::new());
    let mut b = Framed::new(b, LengthDelimitedCodec::new());
    let frames: Vec<Vec<u8>> = (0..8u8)
        .map(|i| pattern(i, 1024 * 1024 + i as usize))
        .collect();
    let send = async {
        for f in &frames {
            a.send(&f[..]).await.unwrap();
        }
        a.send(Vec::new()).await.unwrap(); // an empty frame is a frame
        SinkExt::<&[u8]>::close(&mut a).await.unwrap();
    };
    let receive = async {
        let mut got = Vec::new();
        while let Some(f) = b.next().await {
            got.push(f.unwrap());
        }
        got
    };
    let ((), got) = within(
        LONG,
        async { overlap::join!(send, receive) },
        "1 MiB frames",
    )
    .await;
    assert_eq!(got.len(), frames.len() + 1);
    for (got, want) in got.iter().zip(&frames) {
        assert!(
            got[..] == want[..],
            "a frame of {} bytes differs",
            want.len()
        );
    }
    assert!(got[frames.len()].is_empty());
}

#[overlap::test]
async fn frames_written_one_byte_at_a_time() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let mut wire = BytesMut::new();
    let mut codec = LengthDelimitedCodec::new();
    let frames = [
        pattern(1, 300),
        Vec::new(),
        pattern(2, 5),
        pattern(3, 70_000),
    ];
    for f in &frames {
        codec.encode(&f[..], &mut wire).unwrap();
    }
    let writer = overlap::spawn(async move {
        for &byte in wire.iter() {
            tx.write_all(&[byte]).await.unwrap();
            // Let the reader see each byte alone for the first frames' headers and
            // bodies; the big frame's bytes go faster.
            overlap::yield_now().await;
        }
    });
    let mut reader = FramedRead::new(rx, LengthDelimitedCodec::new());
    for f in &frames {
        assert_eq!(
            frame(within(LONG, reader.next(), "a trickled frame").await),
            f[..]
        );
    }
    assert!(reader.next().await.is_none());
    writer.await.unwrap();
}

#[overlap::test]
async fn a_frame_over_the_maximum_is_refused_and_ends_the_stream() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    // A good frame, then one claiming 1001 bytes against a maximum of 1000.
    tx.write_all(b"\0\0\0\x02ok\0\0\x03\xe9").await.unwrap();
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(1000)
        .new_codec();
    assert_eq!(codec.max_frame_length(), 1000);
    let mut reader = FramedRead::new(rx, codec);
    assert_eq!(frame(reader.next().await), b"ok"[..]);
    let err = reader.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "frame size too big: 1001 bytes, the maximum is 1000"
    );
    assert!(
        reader.next().await.is_none(),
        "the stream ends after the error"
    );

    // Encoding one is refused too, nothing written.
    let mut codec = LengthDelimitedCodec::new();
    codec.set_max_frame_length(4);
    let mut dst = BytesMut::new();
    let err = codec.encode(&b"12345"[..], &mut dst).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "frame size too big: 5 bytes, the maximum is 4"
    );
    assert!(dst.is_empty());
    codec.encode(&b"1234"[..], &mut dst).unwrap();
    assert_eq!(dst, b"\0\0\0\x041234"[..]);
}

#[overlap::test]
async fn end_of_file_mid_frame_is_bytes_remaining() {
    for wire in [&b"\0\0\0\x05abc"[..], b"\0\0"] {
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        tx.write_all(b"\0\0\0\x01z").await.unwrap();
        tx.write_all(wire).await.unwrap();
        drop(tx);
        let mut reader = FramedRead::new(rx, LengthDelimitedCodec::new());
        assert_eq!(frame(reader.next().await), b"z"[..]);
        let err = reader.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(err.to_string(), "bytes remaining on stream");
        assert!(reader.next().await.is_none());
    }
}

/// A header that claims more than memory holds, with no maximum to refuse it, is a frame
/// still to come: the codec does not reserve room for all of it up front (that panicked
/// with "capacity overflow", or took the claimed size of memory), and the end of the
/// stream gives "bytes remaining", while a real frame bigger than the up-front room still
/// decodes whole.
#[overlap::test]
async fn a_header_claiming_more_than_memory_is_waited_for_not_reserved() {
    let mut codec = Builder::new()
        .length_field_length(8)
        .max_frame_length(usize::MAX)
        .new_codec();
    for claimed in [u64::MAX, u64::MAX / 2, 1 << 40] {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&claimed.to_be_bytes());
        buf.extend_from_slice(b"abc");
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() < 64 << 20, "{} reserved", buf.capacity());
    }

    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let mut reader = Builder::new()
        .length_field_length(8)
        .max_frame_length(usize::MAX)
        .new_read(rx);
    let big = pattern(7, 20 << 20);
    let writer = overlap::spawn(async move {
        tx.write_all(&(big.len() as u64).to_be_bytes())
            .await
            .unwrap();
        tx.write_all(&big).await.unwrap();
        tx.write_all(&u64::MAX.to_be_bytes()).await.unwrap();
        tx.write_all(b"tail").await.unwrap();
    });
    let got = within(LONG, reader.next(), "the 20 MiB frame").await;
    assert!(
        frame(got) == pattern(7, 20 << 20),
        "the 20 MiB frame differs"
    );
    writer.await.unwrap();
    let err = within(LONG, reader.next(), "the end")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.to_string(), "bytes remaining on stream");
    assert!(reader.next().await.is_none());
}

/// Encodes `data` with `builder`'s codec and checks the wire bytes, then decodes `wire`
/// (split at every point into two reads) and checks the frame handed out.
fn check_layout(builder: &Builder, data: &[u8], encoded: &[u8], wire: &[u8], decoded: &[u8]) {
    let mut dst = BytesMut::new();
    builder.new_codec().encode(data, &mut dst).unwrap();
    assert_eq!(dst, encoded[..], "encoding {data:?}");
    for cut in 0..=wire.len() {
        let mut codec = builder.new_codec();
        let mut src = BytesMut::from(&wire[..cut]);
        let first = codec.decode(&mut src).unwrap();
        let got = match first {
            Some(frame) => frame,
            None => {
                src.extend_from_slice(&wire[cut..]);
                codec
                    .decode(&mut src)
                    .unwrap()
                    .expect("the whole frame is there")
            }
        };
        assert_eq!(got, decoded[..], "decoding {wire:?} cut at {cut}");
        assert!(src.is_empty());
    }
}

#[test]
fn layouts_against_hand_built_wire_bytes() {
    // Default: 4-byte big-endian length, data only.
    check_layout(
        &Builder::new(),
        b"abc",
        b"\0\0\0\x03abc",
        b"\0\0\0\x03abc",
        b"abc",
    );
    // 2-byte little-endian.
    let mut b = Builder::new();
    b.length_field_length(2).little_endian();
    check_layout(&b, b"hello", b"\x05\x00hello", b"\x05\x00hello", b"hello");
    // 3-byte big-endian, a length over 65535.
    let big = pattern(9, 70_000);
    let mut wire = b"\x01\x11\x70".to_vec();
    wire.extend_from_slice(&big);
    let mut b = Builder::new();
    b.length_field_length(3);
    check_layout(&b, &big, &wire, &wire, &big);
    // 8-byte little-endian.
    let mut b = Builder::new();
    b.length_field_length(8).little_endian();
    check_layout(
        &b,
        b"x",
        b"\x01\0\0\0\0\0\0\0x",
        b"\x01\0\0\0\0\0\0\0x",
        b"x",
    );
    // A 1-byte type before a 2-byte length counting the 3-byte header, all dropped.
    let mut b = Builder::new();
    b.length_field_offset(1)
        .length_field_length(2)
        .length_adjustment(-3);
    check_layout(&b, b"hi", b"\x00\x05hi", b"\x09\x00\x05hi", b"hi");
    // The same, with the header kept (num_skip 0, the field counting the whole frame).
    let mut b = Builder::new();
    b.length_field_offset(1).length_field_length(2).num_skip(0);
    check_layout(
        &b,
        b"\x09\x00\x05hi",
        b"\x00\x05\x09\x00\x05hi",
        b"\x09\x00\x05hi",
        b"\x09\x00\x05hi",
    );
    // A field counting the data only, the 2-byte header kept: adjustment +2.
    let mut b = Builder::new();
    b.length_field_length(2).length_adjustment(2).num_skip(0);
    check_layout(
        &b,
        b"\x00\x02hi",
        b"\x00\x02\x00\x02hi",
        b"\x00\x02hi",
        b"\x00\x02hi",
    );
    // Native order is little-endian here.
    let mut b = Builder::new();
    b.length_field_length(2).native_endian();
    let native: &[u8] = if cfg!(target_endian = "little") {
        b"\x01\x00z"
    } else {
        b"\x00\x01z"
    };
    check_layout(&b, b"z", native, native, b"z");
}

#[test]
fn a_length_field_too_small_for_the_frame() {
    // A 1-byte field can say 255 at most: the maximum is clipped to it.
    let mut b = Builder::new();
    b.length_field_length(1);
    let mut codec = b.new_codec();
    assert_eq!(codec.max_frame_length(), 255);
    let mut dst = BytesMut::new();
    codec.encode(&[0u8; 255][..], &mut dst).unwrap();
    assert_eq!(dst.len(), 256);
    let err = codec.encode(&[0u8; 256][..], &mut dst).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
#[should_panic(expected = "invalid length field length")]
fn a_length_field_of_nine_bytes_panics() {
    Builder::new().length_field_length(9);
}

#[overlap::test]
async fn builder_makes_reads_writes_and_framed() {
    let (a, b) = tcp_pair().await;
    let (ra, wa) = a.into_split();
    let mut builder = LengthDelimitedCodec::builder();
    builder.length_field_length(2);
    let mut write = builder.new_write(wa);
    let mut read = builder.new_read(ra);
    let mut both = builder.new_framed(b);
    write.send(&b"to b"[..]).await.unwrap();
    assert_eq!(frame(both.next().await), b"to b"[..]);
    both.send(&b"to a"[..]).await.unwrap();
    assert_eq!(frame(read.next().await), b"to a"[..]);
    let mut raw = both.into_inner();
    write.send(&b"raw"[..]).await.unwrap();
    let mut wire = [0u8; 5];
    raw.read_exact(&mut wire).await.unwrap();
    assert_eq!(&wire, b"\0\x03raw");
}
