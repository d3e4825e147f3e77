//! Promises of `overlap::codec`'s rustdoc that no other test held to, over real pipes and
//! loopback sockets: a too-long line or chunk is an error as soon as the maximum passes,
//! with the writer still open and no delimiter sent, and decoding resumes after the next
//! delimiter; the `\r` of a `\r\n` counts toward the maximum; an over-long length header
//! is `InvalidData` before any of its body is sent, and an over-long item `InvalidInput`
//! with nothing of it written; a backpressure boundary of 0 writes each item out before
//! the next is taken; `close` shuts down only the write side; bytes written through
//! `get_mut` go before the buffered ones.

mod support;

use std::io::{self, ErrorKind};
use std::time::Duration;

use overlap::codec::{
    AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead, FramedWrite, LengthDelimitedCodec,
    LengthDelimitedCodecError, LinesCodec, LinesCodecError,
};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use support::{tcp_pair, within};

const LONG: Duration = Duration::from_secs(20);

fn line(item: Option<Result<String, LinesCodecError>>) -> String {
    match item {
        Some(Ok(line)) => line,
        other => panic!("expected a line, got {other:?}"),
    }
}

fn too_long(item: Option<Result<String, LinesCodecError>>) {
    match item {
        Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {}
        other => panic!("expected MaxLineLengthExceeded, got {other:?}"),
    }
}

#[overlap::test]
async fn a_too_long_line_is_an_error_before_its_newline_is_sent_and_the_next_line_follows() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let mut lines = FramedRead::new(rx, LinesCodec::new_with_max_length(16));
    tx.write_all(b"fine\n").await.unwrap();
    tx.write_all(&[b'x'; 64]).await.unwrap();
    assert_eq!(line(within(LONG, lines.next(), "fine").await), "fine");
    // The writer is still open and no newline came: the error is there already.
    too_long(within(LONG, lines.next(), "the error without a newline").await);
    assert!(
        lines.next().await.is_none(),
        "the error ends the stream once"
    );
    // Polled again, it drops the rest of the long line, up to its newline, then goes on.
    tx.write_all(b"still the long line\nafter\n").await.unwrap();
    assert_eq!(line(within(LONG, lines.next(), "after").await), "after");
    drop(tx);
    assert!(within(LONG, lines.next(), "the end").await.is_none());
}

#[overlap::test]
async fn an_any_delimiter_chunk_past_the_maximum_is_an_error_and_dropped_up_to_its_delimiter() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let codec = AnyDelimiterCodec::new_with_max_length(b",;".to_vec(), b",".to_vec(), 4);
    let mut chunks = FramedRead::new(rx, codec);
    tx.write_all(b"abcdefgh").await.unwrap();
    match within(LONG, chunks.next(), "the error").await {
        Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {}
        other => panic!("expected MaxChunkLengthExceeded, got {other:?}"),
    }
    assert!(chunks.next().await.is_none());
    tx.write_all(b"ij;ok,").await.unwrap();
    let chunk = within(LONG, chunks.next(), "ok").await.unwrap().unwrap();
    assert_eq!(chunk, b"ok"[..]);
}

#[overlap::test]
async fn the_carriage_return_of_a_crlf_counts_toward_the_maximum() {
    for (max, first) in [(5, None), (6, Some("hello"))] {
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        tx.write_all(b"hello\r\nnext\n").await.unwrap();
        drop(tx);
        let mut lines = FramedRead::new(rx, LinesCodec::new_with_max_length(max));
        match first {
            Some(want) => assert_eq!(line(lines.next().await), want),
            None => {
                too_long(lines.next().await);
                assert!(lines.next().await.is_none());
            }
        }
        assert_eq!(line(lines.next().await), "next", "max {max}");
        assert!(lines.next().await.is_none());
    }
}

#[overlap::test]
async fn an_over_long_length_header_is_invalid_data_before_its_body_is_sent() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(1000)
        .new_codec();
    let mut frames = FramedRead::new(rx, codec);
    // A header claiming 1 MiB, and none of the body: the writer stays open.
    tx.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    let err = within(LONG, frames.next(), "the error")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "frame size too big: 1048576 bytes, the maximum is 1000"
    );
    let inner = err.get_ref().unwrap();
    let inner = inner.downcast_ref::<LengthDelimitedCodecError>().unwrap();
    assert_eq!(
        (inner.frame_length(), inner.max_frame_length()),
        (1 << 20, 1000)
    );
    assert!(frames.next().await.is_none(), "the stream then ends");
}

#[overlap::test]
async fn an_over_long_item_is_invalid_input_and_nothing_of_it_is_written() {
    let (tx, mut rx) = overlap::pipe::pipe().unwrap();
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(8)
        .new_codec();
    let mut frames = FramedWrite::new(tx, codec);
    let err = frames.send(&[1u8; 9][..]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "frame size too big: 9 bytes, the maximum is 8"
    );
    assert!(frames.write_buffer().is_empty());
    frames.send(&b"ok"[..]).await.unwrap();
    drop(frames);
    let mut wire = Vec::new();
    rx.read_to_end(&mut wire).await.unwrap();
    assert_eq!(wire, b"\0\0\0\x02ok");
}

#[overlap::test]
async fn with_a_boundary_of_zero_each_item_is_written_before_the_next_is_taken() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut lines = FramedWrite::new(a, LinesCodec::new());
    lines.set_backpressure_boundary(0);
    lines.feed("one").await.unwrap();
    // Encoded, not written yet.
    assert_eq!(lines.write_buffer(), &b"one\n"[..]);
    lines.feed("two").await.unwrap();
    // Taking "two" wrote "one" out first, and only it.
    assert_eq!(lines.write_buffer(), &b"two\n"[..]);
    let mut buf = [0u8; 64];
    let n = within(LONG, b.read(&mut buf), "the first item")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"one\n");
    drop(lines);
    let n = within(LONG, b.read(&mut buf), "the end").await.unwrap();
    assert_eq!(
        n, 0,
        "an item fed and not flushed is not written when dropped"
    );
}

#[overlap::test]
async fn close_shuts_down_the_write_side_only_so_the_peer_reads_the_end_and_can_reply() {
    let (client, mut server) = tcp_pair().await;
    let mut lines = FramedWrite::new(client, LinesCodec::new());
    lines.feed("one").await.unwrap();
    lines.feed("two").await.unwrap();
    within(LONG, SinkExt::<&str>::close(&mut lines), "close")
        .await
        .unwrap();
    assert!(lines.write_buffer().is_empty());
    let mut got = Vec::new();
    within(LONG, server.read_to_end(&mut got), "the peer's read")
        .await
        .unwrap();
    assert_eq!(got, b"one\ntwo\n", "every byte, then end of file");
    // The read side is still open: the peer's reply arrives.
    server.write_all(b"reply").await.unwrap();
    drop(server);
    let mut reply = Vec::new();
    within(LONG, lines.get_mut().read_to_end(&mut reply), "the reply")
        .await
        .unwrap();
    assert_eq!(reply, b"reply");
}

#[overlap::test]
async fn bytes_written_through_get_mut_go_before_the_buffered_ones() -> io::Result<()> {
    let (client, mut server) = tcp_pair().await;
    let mut lines = FramedWrite::new(client, LinesCodec::new());
    lines.feed("buffered").await.unwrap();
    lines.get_mut().write_all(b"direct\n").await?;
    SinkExt::<&str>::close(&mut lines).await.unwrap();
    let mut got = String::new();
    within(LONG, server.read_to_string(&mut got), "the peer's read").await?;
    assert_eq!(got, "direct\nbuffered\n");
    Ok(())
}
