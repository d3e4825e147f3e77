//! `AnyDelimiterCodec` over real pipes: chunks split at any of its delimiters, a last chunk
//! at end of file, a too-long chunk skipped up to its delimiter, and encoding.

use overlap::codec::{
    AnyDelimiterCodec, AnyDelimiterCodecError, BytesMut, FramedRead, FramedWrite,
};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

fn chunk(item: Option<Result<BytesMut, AnyDelimiterCodecError>>) -> BytesMut {
    match item {
        Some(Ok(chunk)) => chunk,
        other => panic!("expected a chunk, got {other:?}"),
    }
}

#[overlap::test]
async fn the_default_splits_at_comma_semicolon_and_line_ends() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    tx.write_all(b"a,b;c\nd\r\ne").await.unwrap();
    drop(tx);
    let mut chunks = FramedRead::new(rx, AnyDelimiterCodec::default());
    // `\r\n` is two delimiters: an empty chunk between them.
    for want in [&b"a"[..], b"b", b"c", b"d", b"", b"e"] {
        assert_eq!(chunk(chunks.next().await), want[..]);
    }
    assert!(chunks.next().await.is_none());
}

#[overlap::test]
async fn a_too_long_chunk_is_an_error_and_the_chunks_after_it_still_arrive() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let codec = AnyDelimiterCodec::new_with_max_length(b"|".to_vec(), b"|".to_vec(), 4);
    assert_eq!(codec.max_length(), 4);
    let mut chunks = FramedRead::new(rx, codec);
    tx.write_all(b"four|").await.unwrap();
    tx.write_all(&[b'x'; 10_000]).await.unwrap();
    tx.write_all(b"|next|").await.unwrap();
    drop(tx);
    assert_eq!(chunk(chunks.next().await), b"four"[..]);
    assert!(matches!(
        chunks.next().await,
        Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded))
    ));
    assert!(
        chunks.next().await.is_none(),
        "an error ends the stream once"
    );
    assert_eq!(chunk(chunks.next().await), b"next"[..]);
    assert!(chunks.next().await.is_none());
}

#[overlap::test]
async fn encode_writes_the_sequence_writer_after_each_chunk() {
    let (tx, mut rx) = overlap::pipe::pipe().unwrap();
    let mut sink = FramedWrite::new(tx, AnyDelimiterCodec::new(b"\n".to_vec(), b"\r\n".to_vec()));
    sink.send("one").await.unwrap();
    sink.send(String::from("two")).await.unwrap();
    SinkExt::<&str>::close(&mut sink).await.unwrap();
    let mut got = Vec::new();
    rx.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"one\r\ntwo\r\n");
}
