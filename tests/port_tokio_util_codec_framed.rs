//! Ports tokio-util's `tests/framed.rs` to `overlap::codec::Framed` and its parts: frames
//! decoded from a read buffer handed in before any read (from a reader that must not be
//! read), `map_codec` keeping that buffer, an empty buffer handed in not decoded before a
//! read, a big one not shrunk, and `into_parts`/`from_parts` keeping both the bytes read
//! ahead and those not yet written.
//!
//! What porting found: `Framed::codec_pin_mut` was missing; added. Adapted, as a
//! documented difference: tokio-util's `external_buf_grows_to_init` checks that
//! `from_parts` reserves 8 KiB in a smaller read buffer at once; overlap makes that room
//! before each read instead, so the test checks the first read is offered it.

mod support;

use std::io;
use std::pin::Pin;
use std::task::Poll;

use overlap::codec::{BytesMut, Framed, FramedParts};
use overlap::sink::Sink;
use support::scripted::{data, noop_cx, Scripted, Step};
use support::word_codecs::{next_err, next_is, NeverRead, U32Codec, U64Codec};

const INITIAL_CAPACITY: usize = 8 * 1024;

fn flush<S: Sink<u32, Error = io::Error> + Unpin>(sink: &mut S) -> Poll<io::Result<()>> {
    Pin::new(sink).poll_flush(&mut noop_cx())
}

#[test]
fn frames_come_from_a_buffer_handed_in_before_any_read() {
    let mut parts = FramedParts::new::<u32>(NeverRead, U32Codec::default());
    parts.read_buf = BytesMut::from(&[0, 0, 0, 42][..]);
    let mut framed = Framed::from_parts(parts);
    next_is(&mut framed, 42);
    assert_eq!(framed.codec().decoded_bytes, 4);
}

#[test]
fn map_codec_keeps_the_buffer_handed_in() {
    let mut parts = FramedParts::new::<u32>(NeverRead, U32Codec::default());
    parts.read_buf = BytesMut::from(&[0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 84][..]);
    let mut framed = Framed::from_parts(parts);
    next_is(&mut framed, 42);
    let mut framed = framed.map_codec(|old| U64Codec {
        decoded_bytes: old.decoded_bytes,
    });
    next_is(&mut framed, 84);
    assert_eq!(framed.codec().decoded_bytes, 12);
}

#[test]
fn a_small_buffer_handed_in_gets_room_for_a_full_read() {
    let mut parts = FramedParts::new::<u32>(Scripted::new([data(b"\0\x07")]), U32Codec::default());
    parts.read_buf = BytesMut::from(&[0, 0][..]);
    let mut framed = Framed::from_parts(parts);
    next_is(&mut framed, 7);
    let sizes = &framed.get_ref().read_sizes;
    assert!(sizes[0] >= INITIAL_CAPACITY - 2, "{sizes:?}");
}

#[test]
fn a_big_buffer_handed_in_is_not_shrunk() {
    let mut parts = FramedParts::new::<u32>(NeverRead, U32Codec::default());
    parts.read_buf = BytesMut::from(vec![0; INITIAL_CAPACITY * 2]);
    let framed = Framed::from_parts(parts);
    let FramedParts { read_buf, .. } = framed.into_parts();
    assert!(read_buf.capacity() >= INITIAL_CAPACITY * 2);
    assert_eq!(read_buf.len(), INITIAL_CAPACITY * 2);
}

#[test]
fn an_empty_buffer_handed_in_is_not_decoded_before_a_read() {
    let reader = Scripted::new([data(&[0, 0, 0, 42])]);
    let mut parts = FramedParts::new::<u32>(reader, U32Codec::default());
    parts.read_buf = BytesMut::with_capacity(INITIAL_CAPACITY);
    let mut framed = Framed::from_parts(parts);
    next_is(&mut framed, 42);
    assert_eq!(
        framed.codec().decode_calls,
        1,
        "decoded once, after the read"
    );
}

#[test]
fn into_parts_and_from_parts_keep_both_buffers() {
    let steps = [
        data(b"\0\0\0\x01\0\0\0\x02\0"),
        data(b"\0\0\0\x09"),
        Step::Flush,
    ];
    let mut framed = Framed::new(Scripted::new(steps), U32Codec::default());
    next_is(&mut framed, 1);
    Pin::new(&mut framed).start_send(9).unwrap();
    let parts = framed.into_parts();
    assert_eq!(parts.read_buf, &b"\0\0\0\x02\0"[..]);
    assert_eq!(parts.write_buf, &b"\0\0\0\x09"[..]);
    let mut framed = Framed::from_parts(parts);
    // The frame read ahead comes first, without a read; the unwritten one goes out.
    next_is(&mut framed, 2);
    assert!(matches!(flush(&mut framed), Poll::Ready(Ok(()))));
    assert!(framed.get_ref().is_done());
    assert_eq!(framed.read_buffer(), &b"\0"[..]);
    let e = next_err(&mut framed);
    assert_eq!(e.to_string(), "bytes remaining on stream");
}
