//! Ports tokio-util's `tests/codecs.rs` (`LinesCodec`, `AnyDelimiterCodec`, `BytesCodec`,
//! decoder by decoder) to `overlap::codec`, rewritten in our style, plus the same codecs
//! under a `FramedRead` over a scripted reader (`support::scripted`): a `\r\n` split
//! across reads, a last line without its newline at end of file, a too-long line as one
//! error and then the lines after it, a line that is not UTF-8.
//!
//! What porting found:
//! - `LinesCodec::decode_eof` emptied a buffer holding a lone `\r`, where tokio-util's
//!   leaves it there (it is no line, but it may be the start of one): a reader that goes on
//!   after end of file (a tty, a file being appended to) lost that `\r`, and tokio-util's
//!   own test (`\r` left, then `k`, gives the line `"\rk"`) failed. Fixed: it stays.
//! - `assert_eq!("abc", frame)` did not compile: `BytesMut` could be compared with a `str`
//!   on its right only, where `bytes`' compares both ways (and with a `String`). Added.

mod support;

use std::io;
use std::task::Poll;

use overlap::codec::{
    AnyDelimiterCodec, AnyDelimiterCodecError, BytesCodec, BytesMut, Decoder, Encoder, FramedRead,
    LinesCodec, LinesCodecError,
};
use support::scripted::{data, fail, poll_next, Scripted, Step};

fn too_long(r: Result<Option<String>, LinesCodecError>) -> bool {
    matches!(r, Err(LinesCodecError::MaxLineLengthExceeded))
}

fn chunk_too_long(r: Result<Option<BytesMut>, AnyDelimiterCodecError>) -> bool {
    matches!(r, Err(AnyDelimiterCodecError::MaxChunkLengthExceeded))
}

// ===== BytesCodec =====

#[test]
fn bytes_codec_decodes_whatever_is_buffered() {
    let mut codec = BytesCodec::new();
    let mut buf = BytesMut::new();
    buf.put_slice(b"xyz");
    assert_eq!("xyz", codec.decode(&mut buf).unwrap().unwrap());
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"q");
    assert_eq!("q", codec.decode(&mut buf).unwrap().unwrap());
    // At end of stream an empty buffer is no frame.
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
}

#[test]
fn bytes_codec_encodes_past_the_capacity_it_was_given() {
    let mut codec = BytesCodec::new();
    let mut buf = BytesMut::with_capacity(16);
    codec.encode(vec![1u8; 17], &mut buf).unwrap();
    codec.encode(&[2u8; 8 * 1024 + 1][..], &mut buf).unwrap();
    codec.encode(BytesMut::from("tail"), &mut buf).unwrap();
    assert_eq!(buf.len(), 17 + 8 * 1024 + 1 + 4);
    assert!(buf[..17].iter().all(|&b| b == 1));
    assert!(buf[17..17 + 8 * 1024 + 1].iter().all(|&b| b == 2));
    assert_eq!(&buf[buf.len() - 4..], b"tail");
}

// ===== LinesCodec =====

#[test]
fn lines_split_at_lf_and_crlf_and_keep_a_lone_cr_at_eof() {
    let mut codec = LinesCodec::new();
    let mut buf = BytesMut::from(&b"first\nsecond\r\nthird\n\r\n\r"[..]);
    for want in ["first", "second", "third", ""] {
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(want));
    }
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    // A lone `\r` at end of stream is no line, and is left where it is.
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    assert_eq!(buf, b"\r"[..]);
    // More bytes after it: they join it, and the `\r` is not an ending but text.
    buf.put_slice(b"k");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap().as_deref(), Some("\rk"));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
}

#[test]
fn a_line_that_is_not_utf8_is_an_invalid_data_error_and_is_dropped() {
    let mut codec = LinesCodec::new();
    let mut buf = BytesMut::from(&b"bad \xc3\x28"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    match codec.decode_eof(&mut buf) {
        Err(LinesCodecError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
        other => panic!("expected an InvalidData error, got {other:?}"),
    }
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    buf.put_slice(b"good line after it\n");
    assert_eq!(
        codec.decode(&mut buf).unwrap().as_deref(),
        Some("good line after it")
    );
    // The same in the middle of a stream: that line is consumed, the next one decodes.
    buf.put_slice(b"\xff\xfe\nok\n");
    assert!(matches!(
        codec.decode(&mut buf),
        Err(LinesCodecError::Io(_))
    ));
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("ok"));
}

#[test]
fn too_long_lines_are_errors_and_the_codec_goes_on_after_them() {
    const MAX: usize = 6;
    let mut codec = LinesCodec::new_with_max_length(MAX);
    assert_eq!(codec.max_length(), MAX);
    let mut buf = BytesMut::from(&b"this line is long\nline 2\nline 3\r\nline 4\n\r\n\r"[..]);
    assert!(too_long(codec.decode(&mut buf)));
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("line 2"));
    // "line 3\r" is 7 bytes: the `\r` counts toward the maximum, as in tokio-util.
    assert!(too_long(codec.decode(&mut buf)));
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("line 4"));
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(""));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    buf.put_slice(b"k");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap().as_deref(), Some("\rk"));
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    // One byte over, with no newline to look past: an error, no out-of-bounds peek.
    buf.put_slice(b"sevenby");
    assert!(too_long(codec.decode(&mut buf)));
}

#[test]
fn a_too_long_line_is_found_as_soon_as_it_passes_the_maximum() {
    let mut codec = LinesCodec::new_with_max_length(6);
    let mut buf = BytesMut::new();
    buf.put_slice(b"line ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too l");
    assert!(too_long(codec.decode(&mut buf)));
    buf.put_slice(b"ong\n");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty(), "dropped up to its newline: {buf:?}");
    buf.put_slice(b"line 2");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"\n");
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("line 2"));
}

#[test]
fn a_too_long_line_in_bursts_or_one_burst_is_one_error() {
    let mut codec = LinesCodec::new_with_max_length(10);
    let mut buf = BytesMut::new();
    buf.put_slice(b"line ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too l");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"ong\n");
    assert!(too_long(codec.decode(&mut buf)));
    assert_eq!(codec.decode(&mut buf).unwrap(), None, "one error per line");

    let mut codec = LinesCodec::new_with_max_length(10);
    let mut buf = BytesMut::from("line ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too long!\n");
    assert!(too_long(codec.decode(&mut buf)));
}

#[test]
fn a_newline_right_at_the_maximum_is_a_line() {
    let mut codec = LinesCodec::new_with_max_length(5);
    let mut buf = BytesMut::from("hello");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"\nworld");
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("hello"));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(
        codec.decode_eof(&mut buf).unwrap().as_deref(),
        Some("world")
    );
}

#[test]
fn discarding_a_line_with_a_maximum_of_one_does_not_loop() {
    let mut codec = LinesCodec::new_with_max_length(1);
    let mut buf = BytesMut::from("aa");
    assert!(too_long(codec.decode(&mut buf)));
    buf.put_slice(b"a");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
}

#[test]
fn discarding_across_several_reads_then_a_short_line() {
    let mut codec = LinesCodec::new_with_max_length(11);
    let mut buf = BytesMut::from("line ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too very l");
    assert!(too_long(codec.decode(&mut buf)));
    buf.put_slice(&[b'a'; 23]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"ong\nshort\n");
    assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("short"));
}

#[test]
fn lines_encode_with_a_newline() {
    let mut codec = LinesCodec::new();
    let mut buf = BytesMut::new();
    codec.encode("one", &mut buf).unwrap();
    assert_eq!("one\n", buf);
    codec.encode(String::from("two"), &mut buf).unwrap();
    assert_eq!("one\ntwo\n", buf);
    assert_eq!(buf, String::from("one\ntwo\n"));
}

// ===== AnyDelimiterCodec =====

#[test]
fn any_delimiter_splits_at_each_delimiter_byte() {
    let mut codec = AnyDelimiterCodec::new(b",;\n\r".to_vec(), b",".to_vec());
    let mut buf = BytesMut::from(&b"chunk 1,chunk 2;chunk 3\n\r"[..]);
    for want in ["chunk 1", "chunk 2", "chunk 3", ""] {
        assert_eq!(want, codec.decode(&mut buf).unwrap().unwrap());
    }
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    buf.put_slice(b"k");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!("k", codec.decode_eof(&mut buf).unwrap().unwrap());
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
}

#[test]
fn any_delimiter_too_long_chunks_are_errors_and_the_codec_goes_on() {
    const MAX: usize = 7;
    let mut codec = AnyDelimiterCodec::new_with_max_length(b",;\n\r".to_vec(), b",".to_vec(), MAX);
    let mut buf = BytesMut::from(&b"chunk 1 is too long\nchunk 2\nchunk 3\r\nchunk 4\n\r\n"[..]);
    assert!(chunk_too_long(codec.decode(&mut buf)));
    // `\r\n` is two delimiters: an empty chunk between them.
    for want in ["chunk 2", "chunk 3", "", "chunk 4", "", ""] {
        let chunk = codec.decode(&mut buf).unwrap().unwrap();
        assert!(chunk.len() <= MAX);
        assert_eq!(want, chunk);
    }
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    buf.put_slice(b"k");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!("k", codec.decode_eof(&mut buf).unwrap().unwrap());
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    buf.put_slice(b"aaabbbcc");
    assert!(chunk_too_long(codec.decode(&mut buf)));
}

#[test]
fn any_delimiter_underruns_bursts_and_repeats() {
    let delims = || b",;\n\r".to_vec();
    // Found too long in the second piece, dropped to the delimiter, then a chunk.
    let mut codec = AnyDelimiterCodec::new_with_max_length(delims(), b",".to_vec(), 7);
    let mut buf = BytesMut::from("chunk ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too l");
    assert!(chunk_too_long(codec.decode(&mut buf)));
    buf.put_slice(b"ong\n");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"chunk 2");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b",");
    assert_eq!("chunk 2", codec.decode(&mut buf).unwrap().unwrap());

    // Dropping across several pieces.
    let mut codec = AnyDelimiterCodec::new_with_max_length(delims(), b",".to_vec(), 11);
    let mut buf = BytesMut::from("chunk ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too very l");
    assert!(chunk_too_long(codec.decode(&mut buf)));
    buf.put_slice(&[b'a'; 23]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"ong\nshort\n");
    assert_eq!("short", codec.decode(&mut buf).unwrap().unwrap());

    // Found too long only when the delimiter comes.
    let mut codec = AnyDelimiterCodec::new_with_max_length(delims(), b",".to_vec(), 11);
    let mut buf = BytesMut::from("chunk ");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b"too long!\n");
    assert!(chunk_too_long(codec.decode(&mut buf)));

    // A delimiter right at the maximum.
    let mut codec = AnyDelimiterCodec::new_with_max_length(delims(), b",".to_vec(), 5);
    let mut buf = BytesMut::from("hello");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(b",world");
    assert_eq!("hello", codec.decode(&mut buf).unwrap().unwrap());

    // A maximum of one: no endless loop while dropping.
    let mut codec = AnyDelimiterCodec::new_with_max_length(delims(), b",".to_vec(), 1);
    let mut buf = BytesMut::from("aa");
    assert!(chunk_too_long(codec.decode(&mut buf)));
    buf.put_slice(b"a");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
}

#[test]
fn any_delimiter_encodes_with_its_sequence_writer() {
    let mut codec = AnyDelimiterCodec::new(b",".to_vec(), b";--;".to_vec());
    let mut buf = BytesMut::new();
    codec.encode("chunk 1", &mut buf).unwrap();
    assert_eq!("chunk 1;--;", buf);
    codec.encode(String::from("chunk 2"), &mut buf).unwrap();
    assert_eq!("chunk 1;--;chunk 2;--;", buf);
}

// ===== The codecs under a FramedRead =====

fn next_line(lines: &mut FramedRead<Scripted, LinesCodec>) -> String {
    match poll_next(lines) {
        Poll::Ready(Some(Ok(line))) => line,
        other => panic!("expected a line, got {other:?}"),
    }
}

#[test]
fn a_crlf_split_across_reads_and_a_last_line_at_eof() {
    let reader = Scripted::new([
        data(b"one\r"),
        Step::Pending,
        data(b"\ntw"),
        data(b"o\r\nthree"),
    ]);
    let mut lines = FramedRead::new(reader, LinesCodec::new());
    assert!(poll_next(&mut lines).is_pending());
    assert_eq!(next_line(&mut lines), "one");
    assert_eq!(next_line(&mut lines), "two");
    // End of file: the last line needs no newline.
    assert_eq!(next_line(&mut lines), "three");
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    assert!(lines.get_ref().is_done());
}

#[test]
fn a_lone_cr_at_eof_joins_what_a_resumed_reader_brings() {
    // A reader that goes on after end of file (a tty, a growing file).
    let reader = Scripted::new([data(b"a\n\r"), data(b""), data(b"b\n")]);
    let mut lines = FramedRead::new(reader, LinesCodec::new());
    assert_eq!(next_line(&mut lines), "a");
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    assert_eq!(lines.read_buffer(), &b"\r"[..], "the \\r is kept");
    assert_eq!(next_line(&mut lines), "\rb");
}

#[test]
fn a_too_long_line_ends_the_stream_once_and_polling_on_reads_the_next() {
    let reader = Scripted::new([
        data(b"ok\nxxxxxxxx"),
        data(b"xxxxxxxxxxxxxxxx"),
        Step::Pending,
        data(b"xxx\nafter\n"),
    ]);
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(5));
    assert_eq!(next_line(&mut lines), "ok");
    assert!(matches!(
        poll_next(&mut lines),
        Poll::Ready(Some(Err(LinesCodecError::MaxLineLengthExceeded)))
    ));
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    // Polled on, the stream reads on and drops the rest of the long line.
    assert!(poll_next(&mut lines).is_pending());
    assert_eq!(next_line(&mut lines), "after");
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
}

#[test]
fn a_read_error_under_lines_is_given_once_then_none() {
    let reader = Scripted::new([
        data(b"par"),
        fail(io::ErrorKind::ConnectionReset),
        data(b"tial\n"),
    ]);
    let mut lines = FramedRead::new(reader, LinesCodec::new());
    match poll_next(&mut lines) {
        Poll::Ready(Some(Err(LinesCodecError::Io(e)))) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset)
        }
        other => panic!("expected the read error, got {other:?}"),
    }
    assert!(matches!(poll_next(&mut lines), Poll::Ready(None)));
    // The bytes read before the error were kept.
    assert_eq!(next_line(&mut lines), "partial");
}

#[test]
fn any_delimiter_and_bytes_codec_under_a_framed_read() {
    let reader = Scripted::new([data(b"a,b"), Step::Pending, data(b";c")]);
    let mut chunks = FramedRead::new(reader, AnyDelimiterCodec::default());
    let mut got = Vec::new();
    overlap::block_on(async {
        use overlap::stream::StreamExt;
        while let Some(chunk) = chunks.next().await {
            got.push(chunk.unwrap().to_vec());
        }
    });
    assert_eq!(got, [&b"a"[..], b"b", b"c"]);

    // BytesCodec: one frame per read, as the reads came.
    let reader = Scripted::new([data(b"abcdef"), Step::Pending, data(b"gh")]);
    let mut raw = FramedRead::new(reader, BytesCodec::new());
    let got: Vec<Vec<u8>> = overlap::block_on(async {
        use overlap::stream::StreamExt;
        raw.by_ref().map(|c| c.unwrap().to_vec()).collect().await
    });
    assert_eq!(got, [b"abcdef".to_vec(), b"gh".to_vec()]);
}
