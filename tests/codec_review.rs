//! An adversarial review of the decoders: `LinesCodec`, `AnyDelimiterCodec` and
//! `LengthDelimitedCodec` fed every split of a multi-frame input (one byte a call, every
//! two-piece cut, and seeded random cuts, both straight into `decode` and through a
//! `FramedRead` over a reader of random short reads with `Pending` between) give the frames
//! and errors of an independent model; end of file inside a frame is one error, then the
//! end, at every cut; the length field's maximum exactly at and one over for every field
//! length; and the lines buffered after a too-long one in a `FramedRead`: they come with the next read
//! (as tokio-util's), and are not dropped when the end of file was read first.
//!
//! The model checks found that last one: after an error of `decode_eof`, a `FramedRead`
//! polled on read again, found the end again and ended, dropping every frame still
//! buffered, so which lines came depended on whether the end of file arrived before or
//! after the too-long line was seen.
//!
//! Lengths that leave `usize` or go below zero after the adjustment, the write side,
//! `into_parts`/`from_parts`, `ReaderStream` and `BytesMut` are in `codec_review_io.rs`.

mod support;

use std::fmt::Display;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use overlap::codec::{
    AnyDelimiterCodec, BytesMut, Decoder, FramedRead, LengthDelimitedCodec,
    LengthDelimitedCodecError, LinesCodec,
};
use overlap::io::AsyncRead;
use overlap::stream::Stream;
use support::scripted::{data, noop_cx, poll_next, Scripted, Step};
use support::Rng;

/// What a decoder gave: a frame's bytes, or an error's message.
type Out = Result<Vec<u8>, String>;

/// A reader of `bytes` that gives 1 to `most` of them per read, `Pending` (woken at once)
/// before about one read in three, and end of file after the last.
struct ShortReads {
    bytes: Vec<u8>,
    at: usize,
    most: usize,
    rng: Rng,
}

impl AsyncRead for ShortReads {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.rng.below(3) == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let most = self.most;
        let want = 1 + self.rng.below(most);
        let n = want.min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

/// Splits `wire` into pieces at `cuts` (sorted, within it).
fn pieces<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        out.push(&wire[from..cut]);
        from = cut;
    }
    out.push(&wire[from..]);
    out
}

/// Every way of cutting `wire` this test tries: a byte at a time, every cut in two, and
/// 40 random cuttings.
fn cuttings(wire: &[u8], rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut all = vec![(1..wire.len()).collect::<Vec<_>>(), vec![]];
    all.extend((1..wire.len()).map(|cut| vec![cut]));
    for _ in 0..40 {
        let mut cuts: Vec<usize> = (0..rng.below(6))
            .map(|_| rng.below(wire.len() + 1))
            .collect();
        cuts.sort_unstable();
        all.push(cuts);
    }
    all
}

/// Feeds `codec` the pieces one after the other, decoding after each until it wants more
/// (an error is recorded and decoding goes on, as a `FramedRead` polled on would), then
/// `decode_eof` until it gives `None`. A decoder that never stops fails the test.
fn decode_pieces<D>(mut codec: D, pieces: &[&[u8]]) -> Vec<Out>
where
    D: Decoder,
    D::Item: AsRef<[u8]>,
    D::Error: Display,
{
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        for turn in 0.. {
            assert!(turn < 1000, "decode never asked for more");
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame.as_ref().to_vec())),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }
    for turn in 0.. {
        assert!(turn < 1000, "decode_eof never gave None");
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => out.push(Ok(frame.as_ref().to_vec())),
            Ok(None) => break,
            Err(e) => out.push(Err(e.to_string())),
        }
    }
    out
}

/// Everything a `FramedRead` of `codec` over short reads of `wire` gives, polled on past
/// the `None` that follows an error, up to the `None` of the end.
fn through_framed_read<D>(codec: D, wire: &[u8], seed: u64) -> Vec<Out>
where
    D: Decoder,
    D::Item: AsRef<[u8]>,
    D::Error: Display,
{
    let reader = ShortReads {
        bytes: wire.to_vec(),
        at: 0,
        most: 1 + (seed % 7) as usize,
        rng: Rng(seed),
    };
    let mut framed = FramedRead::new(reader, codec);
    let mut out = Vec::new();
    let mut after_error = false;
    for _ in 0..100_000 {
        match Pin::new(&mut framed).poll_next(&mut noop_cx()) {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                out.push(Ok(frame.as_ref().to_vec()));
                after_error = false;
            }
            Poll::Ready(Some(Err(e))) => {
                out.push(Err(e.to_string()));
                after_error = true;
            }
            Poll::Ready(None) if after_error => after_error = false,
            Poll::Ready(None) => return out,
        }
    }
    panic!("the FramedRead never ended");
}

/// Checks `make()`'s codec against `want` over every cutting of `wire` and through a
/// `FramedRead` over short reads.
fn check_every_split<D>(make: impl Fn() -> D, wire: &[u8], want: &[Out], rng: &mut Rng)
where
    D: Decoder,
    D::Item: AsRef<[u8]>,
    D::Error: Display,
{
    for cuts in cuttings(wire, rng) {
        let got = decode_pieces(make(), &pieces(wire, &cuts));
        assert_eq!(got, want, "wire {wire:?} cut at {cuts:?}");
    }
    for _ in 0..20 {
        let seed = rng.next() | 1;
        let got = through_framed_read(make(), wire, seed);
        assert_eq!(got, want, "wire {wire:?} through short reads, seed {seed}");
    }
}

/// The model of a delimited codec: chunks ended by a byte of `delimiters`; one longer than
/// `max` is `too_long`; the last, unended, is a chunk unless empty (or `ignored_last`).
fn delimited_model(
    wire: &[u8],
    delimiters: &[u8],
    max: usize,
    too_long: &str,
    mut chunk: impl FnMut(&[u8]) -> Out,
    ignored_last: &[u8],
) -> Vec<Out> {
    let mut out = Vec::new();
    let mut rest = wire;
    while let Some(at) = rest.iter().position(|b| delimiters.contains(b)) {
        out.push(if at > max {
            Err(too_long.to_string())
        } else {
            chunk(&rest[..at])
        });
        rest = &rest[at + 1..];
    }
    if rest.len() > max {
        out.push(Err(too_long.to_string()));
    } else if !rest.is_empty() && rest != ignored_last {
        out.push(chunk(rest));
    }
    out
}

/// A line as the model decodes it: one `\r` before the end dropped, then UTF-8 or not.
fn model_line(line: &[u8]) -> Out {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match std::str::from_utf8(line) {
        Ok(text) => Ok(text.as_bytes().to_vec()),
        Err(_) => Err("line is not valid UTF-8".to_string()),
    }
}

/// Random text of `count` parts over an alphabet that has the delimiters, `\r`, and bytes
/// that are not UTF-8 (a lone continuation byte, a cut two-byte sequence) next to a whole
/// `é`.
fn random_text(rng: &mut Rng, count: usize) -> Vec<u8> {
    const PARTS: [&[u8]; 10] = [
        b"a",
        b"bc",
        b"\n",
        b"\r",
        b"\r\n",
        b",",
        b";",
        b"\xff",
        b"\xc3",
        "é".as_bytes(),
    ];
    (0..count)
        .flat_map(|_| PARTS[rng.below(PARTS.len())].iter().copied())
        .collect()
}

#[test]
fn lines_in_every_split_and_short_read_give_the_model_s_lines_and_errors() {
    let mut rng = Rng(0x11e5);
    for round in 0..60 {
        let wire = random_text(&mut rng, 4 + round % 14);
        for max in [0, 1, 2, 3, 5, 8, usize::MAX] {
            let want = delimited_model(
                &wire,
                b"\n",
                max,
                "max line length exceeded",
                model_line,
                b"\r",
            );
            check_every_split(
                || LinesCodec::new_with_max_length(max),
                &wire,
                &want,
                &mut rng,
            );
        }
    }
}

#[test]
fn any_delimiter_in_every_split_and_short_read_gives_the_model_s_chunks() {
    let mut rng = Rng(0xa11);
    for round in 0..60 {
        let wire = random_text(&mut rng, 4 + round % 14);
        for max in [0, 1, 2, 4, usize::MAX] {
            let want = delimited_model(
                &wire,
                b",;\r",
                max,
                "max chunk length exceeded",
                |c| Ok(c.to_vec()),
                b"",
            );
            let make =
                || AnyDelimiterCodec::new_with_max_length(b",;\r".to_vec(), b",".to_vec(), max);
            check_every_split(make, &wire, &want, &mut rng);
        }
    }
}

/// One layout of the length-delimited tests.
#[derive(Debug, Clone, Copy)]
struct Layout {
    field_len: usize,
    offset: usize,
    big_endian: bool,
    adjustment: isize,
    /// `None`: the default (the header dropped); `Some(0)`: the whole frame handed out;
    /// `Some(h + 1)`: a byte after the field dropped too.
    num_skip: Option<usize>,
}

impl Layout {
    fn codec(&self) -> LengthDelimitedCodec {
        let mut b = LengthDelimitedCodec::builder();
        b.length_field_length(self.field_len)
            .length_field_offset(self.offset)
            .length_adjustment(self.adjustment);
        if self.big_endian {
            b.big_endian();
        } else {
            b.little_endian();
        }
        if let Some(skip) = self.num_skip {
            b.num_skip(skip);
        }
        b.new_codec()
    }

    /// The length field holding `value`, written byte by byte.
    fn field(&self, value: u64) -> Vec<u8> {
        let byte = |i: usize| (value >> (8 * i)) as u8;
        let mut field: Vec<u8> = (0..self.field_len).map(byte).collect();
        if self.big_endian {
            field.reverse();
        }
        field
    }

    /// A frame on the wire carrying `payload`, and what the decoder hands out for it, or
    /// `None` if the field cannot hold its length.
    fn frame(&self, payload: &[u8], filler: u8) -> Option<(Vec<u8>, Vec<u8>)> {
        let head = self.offset + self.field_len;
        let skip = self.num_skip.unwrap_or(head);
        // The wire: offset bytes, the field, one more header byte if skipped, the payload.
        let extra = usize::from(skip > head);
        // What comes after the skipped bytes: the payload, behind the header if kept.
        let taken = payload.len() + head.saturating_sub(skip);
        let value = i64::try_from(taken).ok()? - self.adjustment as i64;
        let value = u64::try_from(value).ok()?;
        if self.field_len < 8 && value >> (8 * self.field_len) != 0 {
            return None;
        }
        let mut wire = vec![filler; self.offset];
        wire.extend(self.field(value));
        wire.extend(std::iter::repeat_n(filler ^ 0x55, extra));
        wire.extend_from_slice(payload);
        let handed_out = wire[skip..skip + taken].to_vec();
        Some((wire, handed_out))
    }
}

#[test]
fn length_delimited_every_layout_in_every_split_gives_its_frames() {
    let mut rng = Rng(0x1e57);
    for field_len in 1..=8 {
        for offset in [0, 2] {
            for big_endian in [true, false] {
                for adjustment in [-3isize, -1, 0, 2] {
                    let head = offset + field_len;
                    for num_skip in [None, Some(0), Some(head + 1)] {
                        let layout = Layout {
                            field_len,
                            offset,
                            big_endian,
                            adjustment,
                            num_skip,
                        };
                        let (mut wire, mut want) = (Vec::new(), Vec::new());
                        for n in 0..3 {
                            let len = [0, 1, 7, 12][rng.below(4)];
                            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + n) as u8).collect();
                            if let Some((frame, out)) = layout.frame(&payload, 0xa0 + n as u8) {
                                wire.extend(frame);
                                want.push(Ok(out));
                            }
                        }
                        check_every_split(|| layout.codec(), &wire, &want, &mut rng);
                        // Encoding writes the field and the payload alone: for the default
                        // layout with no offset it is the wire itself.
                        if offset == 0 && num_skip.is_none() {
                            if let Some((frame, _)) = layout.frame(b"abcdefgh", 0) {
                                let mut out = BytesMut::new();
                                let encoded = overlap::codec::Encoder::encode(
                                    &mut layout.codec(),
                                    &b"abcdefgh"[..],
                                    &mut out,
                                );
                                encoded.unwrap();
                                assert_eq!(out, frame, "{layout:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn end_of_file_at_every_cut_of_a_frame_is_one_error_then_the_end() {
    let layout = Layout {
        field_len: 2,
        offset: 1,
        big_endian: false,
        adjustment: -1,
        num_skip: Some(0),
    };
    let (one, one_out) = layout.frame(b"first", 7).unwrap();
    let (two, _) = layout.frame(b"second!", 8).unwrap();
    let wire = [one.clone(), two].concat();
    for cut in one.len() + 1..wire.len() {
        let mut framed = FramedRead::new(Scripted::new([data(&wire[..cut])]), layout.codec());
        match poll_next(&mut framed) {
            Poll::Ready(Some(Ok(frame))) => assert_eq!(frame, one_out),
            other => panic!("cut at {cut}: expected the first frame, got {other:?}"),
        }
        match poll_next(&mut framed) {
            Poll::Ready(Some(Err(e))) => {
                assert_eq!(
                    (e.kind(), e.to_string()),
                    (io::ErrorKind::Other, "bytes remaining on stream".into())
                )
            }
            other => panic!("cut at {cut}: expected the error, got {other:?}"),
        }
        assert!(
            matches!(poll_next(&mut framed), Poll::Ready(None)),
            "cut at {cut}"
        );
        assert!(
            matches!(poll_next(&mut framed), Poll::Ready(None)),
            "cut at {cut}"
        );
        let reads = framed.get_ref().reads;
        assert!(
            matches!(poll_next(&mut framed), Poll::Ready(None)),
            "cut at {cut}"
        );
        assert_eq!(
            framed.get_ref().reads,
            reads + 1,
            "one read per poll, no loop"
        );
        assert_eq!(
            framed.read_buffer(),
            &wire[one.len()..cut],
            "the cut frame is kept"
        );
    }
}

/// The `LengthDelimitedCodecError` inside a decode error of kind `InvalidData`.
fn too_big(result: io::Result<Option<BytesMut>>) -> (u64, usize) {
    let e = result.expect_err("a frame over the maximum");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    let inner = e
        .get_ref()
        .unwrap()
        .downcast_ref::<LengthDelimitedCodecError>();
    let inner = inner.expect("a LengthDelimitedCodecError");
    (inner.frame_length(), inner.max_frame_length())
}

#[test]
fn the_maximum_exactly_at_and_one_over_for_every_field_length() {
    for field_len in 1..=8usize {
        for big_endian in [true, false] {
            // The largest the field holds, or 300 for the longer fields.
            let max = if field_len == 1 { 254 } else { 300 };
            let layout = Layout {
                field_len,
                offset: 0,
                big_endian,
                adjustment: 0,
                num_skip: None,
            };
            let mut codec = layout.codec();
            codec.set_max_frame_length(max);
            assert_eq!(codec.max_frame_length(), max);
            let payload = vec![9u8; max + 1];

            let mut wire = BytesMut::from(layout.field(max as u64));
            wire.extend_from_slice(&payload[..max]);
            let frame = codec
                .decode(&mut wire)
                .unwrap()
                .expect("the frame at the maximum");
            assert_eq!((frame.len(), wire.len()), (max, 0), "{layout:?}");

            let mut wire = BytesMut::from(layout.field(max as u64 + 1));
            wire.extend_from_slice(&payload);
            let before = wire.clone();
            assert_eq!(too_big(codec.decode(&mut wire)), (max as u64 + 1, max));
            assert_eq!(wire, before, "nothing taken from a refused frame");

            // Encoding: the maximum fits, one more is InvalidInput, nothing written.
            let mut out = BytesMut::new();
            overlap::codec::Encoder::encode(&mut codec, &payload[..max], &mut out).unwrap();
            assert_eq!(out.len(), field_len + max);
            let mut out = BytesMut::new();
            let e = overlap::codec::Encoder::encode(&mut codec, &payload[..], &mut out);
            assert_eq!(e.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert!(out.is_empty());
        }
    }
    // A one-byte field holds at most 255: a larger maximum is clipped to it.
    let mut codec = LengthDelimitedCodec::builder()
        .length_field_length(1)
        .new_codec();
    assert_eq!(codec.max_frame_length(), 255);
    let mut wire = BytesMut::from(&[255u8][..]);
    wire.put_bytes(1, 255);
    assert_eq!(codec.decode(&mut wire).unwrap().unwrap().len(), 255);
}

#[test]
fn after_a_too_long_line_the_next_comes_with_the_next_read_or_at_end_of_file() {
    // As tokio-util's FramedRead: after an error and its None, a poll reads before it
    // decodes, so "ok", already buffered, comes with the next read.
    let reader = Scripted::new([data(b"much too long\nok\n"), Step::Pending]);
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(4));
    assert!(matches!(poll_next(&mut lines), Poll::Ready(Some(Err(_)))));
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    assert_eq!(lines.read_buffer(), &b"much too long\nok\n"[..]);
    assert!(poll_next(&mut lines).is_pending(), "a read first");
    match poll_next(&mut lines) {
        Poll::Ready(Some(Ok(line))) => assert_eq!(line, "ok"),
        other => panic!("expected the buffered line at end of file, got {other:?}"),
    }
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));

    // Two too-long lines and two short ones in one read: the first error comes from
    // `decode`; polled on, the stream reads, finds the end of file, and the second comes
    // from `decode_eof`. The lines after it still come (tokio-util's read again, found
    // the end again, and dropped them), then the end.
    let reader = Scripted::new([data(b"much too long\nalso too long\nok\nlast")]);
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(4));
    for _ in 0..2 {
        assert!(matches!(poll_next(&mut lines), Poll::Ready(Some(Err(_)))));
        assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    }
    for want in ["ok", "last"] {
        match poll_next(&mut lines) {
            Poll::Ready(Some(Ok(line))) => assert_eq!(line, want),
            other => panic!("expected {want:?}, got {other:?}"),
        }
    }
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
}
