//! `overlap::io`'s rustdoc, sentence by sentence, where no other test held the code to it:
//! what `copy` and `copy_buf` leave behind (the writer open after the final flush, every
//! unsent byte in a buffered reader cut short), `Interrupted` retried (by the number helpers
//! too), what a dropped `copy_bidirectional` leaves (both streams open), `BufStream`'s flush
//! and close ordering (reading does not flush, `close` flushes then shuts only the write side,
//! a drop loses the write buffer, a seek flushes and counts from the reader), `join`'s
//! `close` (the writer's side ends, the reader reads on) and what `InspectReader` shows of a
//! vectored read.
//! `Unblock`'s promises are in `io_contracts_audit_more.rs`.
//!
//! Every stream is a real one (Unix socket pairs, pipes, files in a temp dir) unless the
//! promise is about a stream's answers: `Interrupted`, which a script plays, and a vectored
//! read filling several slices, which a `Cursor` makes (overlap's sockets read into the
//! first slice only).

mod support;

use std::io::{ErrorKind, IoSliceMut, SeekFrom};
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use overlap::io::{
    copy, copy_bidirectional, copy_buf, AsyncReadExt, AsyncReadIntExt, AsyncSeekExt, AsyncWriteExt,
    AsyncWriteIntExt, BufReader, BufStream, BufWriter, Cursor, InspectReader,
};
use overlap::net::UnixStream;
use support::scripted::{data, fail, Scripted};
use support::{open_read_write, pattern, within, TempDir};

const HANG: Duration = Duration::from_secs(20);

/// `copy`: "Copies `reader` to `writer` until end of file, then flushes `writer` [...].
/// `writer` is not closed." The source is at its end before the copy starts, so nothing but
/// the final flush takes the bytes out of a 64 KiB `BufWriter`; the writer then takes more
/// bytes, which reach the peer after the first ones with no end of file between.
#[overlap::test]
async fn copy_flushes_at_the_end_and_leaves_the_writer_open() {
    let (mut client, proxy_in) = UnixStream::pair().unwrap();
    let (proxy_out, mut server) = UnixStream::pair().unwrap();
    client.write_all(b"abc").await.unwrap();
    client.close().await.unwrap();
    let mut writer = BufWriter::with_capacity(64 << 10, proxy_out);
    let copied = within(HANG, copy(proxy_in, &mut writer), "copy").await;
    assert_eq!(copied.unwrap(), 3);
    assert_eq!(
        writer.buffer(),
        b"",
        "copy returned with bytes in the writer"
    );
    let mut first = [0u8; 3];
    within(HANG, server.read_exact(&mut first), "the copied bytes")
        .await
        .unwrap();
    assert_eq!(&first, b"abc");
    // Not closed: the writer goes on, and the peer's end of file comes only with our close.
    writer.write_all(b"def").await.unwrap();
    writer.close().await.unwrap();
    let mut rest = Vec::new();
    within(HANG, server.read_to_end(&mut rest), "the later bytes")
        .await
        .unwrap();
    assert_eq!(rest, b"def");
}

/// `Interrupted` is no error: `copy` and `copy_buf` say it "is retried on both sides", the
/// number helpers (`AsyncReadIntExt`, `AsyncWriteIntExt`) that "`Interrupted` errors are
/// retried". A read or write interrupted between two that move bytes loses or doubles none.
#[overlap::test]
async fn copies_and_number_helpers_retry_an_interrupted_read_or_write() {
    let script = || {
        Scripted::new([
            data(b"ab"),
            fail(ErrorKind::Interrupted),
            data(b"cd"),
            fail(ErrorKind::Interrupted),
        ])
    };
    let mut out = Vec::new();
    assert_eq!(copy(script(), &mut out).await.unwrap(), 4);
    assert_eq!(out, b"abcd", "copy");
    let mut out = Vec::new();
    let n = copy_buf(BufReader::new(script()), &mut out).await.unwrap();
    assert_eq!((n, &out[..]), (4, &b"abcd"[..]), "copy_buf");

    let mut reader = Scripted::new([
        data(&[0x01, 0x02]),
        fail(ErrorKind::Interrupted),
        data(&[0x03, 0x04]),
    ]);
    assert_eq!(reader.read_u32().await.unwrap(), 0x0102_0304, "read_u32");
    let mut writer = Scripted::new([
        fail(ErrorKind::Interrupted),
        data(&[0x0a]),
        fail(ErrorKind::Interrupted),
        data(&[0x0b]),
    ]);
    writer.write_u16(0x0a0b).await.unwrap();
    assert!(writer.is_done(), "write_u16 stopped before its second byte");
}

/// `copy_buf`: "a byte leaves `reader`'s buffer only once `writer` has taken it, so a copy
/// from `&mut reader` cut short [...] leaves the rest there for the next read". A mebibyte
/// goes from one socket pair into another whose peer does not read; the copy is cut by a
/// timeout (on the paused clock), then what the peer got and what the reader still gives
/// are, together, every byte once and in order.
#[overlap::test(start_paused = true)]
async fn copy_buf_cut_short_leaves_every_unsent_byte_in_the_reader() {
    let sent_by_feeder = pattern(1 << 20);
    let (mut feed, source) = UnixStream::pair().unwrap();
    let (mut near, mut far) = UnixStream::pair().unwrap();
    let all = sent_by_feeder.clone();
    let feeder = overlap::spawn(async move {
        feed.write_all(&all).await?;
        feed.close().await
    });
    let mut source = BufReader::with_capacity(8 << 10, source);
    let cut =
        overlap::time::timeout(Duration::from_millis(1), copy_buf(&mut source, &mut near)).await;
    assert!(cut.is_err(), "nobody reads `far`: the copy cannot finish");
    // Real time again: the rest waits on sockets, which a paused clock does not wait for.
    overlap::time::resume();
    near.close().await.unwrap(); // the peer reads what the copy sent, then end of file
    let mut sent = Vec::new();
    within(HANG, far.read_to_end(&mut sent), "the sent bytes")
        .await
        .unwrap();
    let mut rest = Vec::new();
    within(HANG, source.read_to_end(&mut rest), "the rest")
        .await
        .unwrap();
    within(HANG, feeder, "the feeder").await.unwrap().unwrap();
    assert!(!sent.is_empty(), "the copy sent nothing before its cut");
    assert!(!rest.is_empty(), "the copy was not cut midway");
    assert_eq!(
        sent.len() + rest.len(),
        sent_by_feeder.len(),
        "bytes lost or doubled"
    );
    sent.extend_from_slice(&rest);
    assert!(sent == sent_by_feeder, "the bytes came out of order");
}

/// `copy_bidirectional`: "Dropping the future stops both directions at once, leaving the
/// streams open". Bytes cross both ways while it runs; once it is dropped, each proxy end
/// still writes to its peer and reads from it (no write side was shut down).
#[overlap::test]
async fn copy_bidirectional_dropped_leaves_both_streams_open() {
    let (mut client, mut proxy_in) = UnixStream::pair().unwrap();
    let (mut proxy_out, mut server) = UnixStream::pair().unwrap();
    {
        let proxy = pin!(copy_bidirectional(&mut proxy_in, &mut proxy_out));
        let exchange = pin!(async {
            client.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            server.read_exact(&mut got).await.unwrap();
            server.write_all(b"pong").await.unwrap();
            let mut back = [0u8; 4];
            client.read_exact(&mut back).await.unwrap();
            (got, back)
        });
        match within(HANG, select(proxy, exchange), "the exchange").await {
            Either::Right(((got, back), _proxy)) => {
                assert_eq!((&got, &back), (b"ping", b"pong"));
            }
            Either::Left((res, _)) => panic!("the copy ended by itself: {res:?}"),
        }
    } // the copy is dropped here
    proxy_out.write_all(b"direct").await.unwrap();
    proxy_out.close().await.unwrap();
    let mut got = Vec::new();
    within(HANG, server.read_to_end(&mut got), "server")
        .await
        .unwrap();
    assert_eq!(got, b"direct");
    proxy_in.write_all(b"back").await.unwrap();
    proxy_in.close().await.unwrap();
    let mut got = Vec::new();
    within(HANG, client.read_to_end(&mut got), "client")
        .await
        .unwrap();
    assert_eq!(got, b"back");
    client.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    within(HANG, proxy_in.read_exact(&mut one), "proxy_in")
        .await
        .unwrap();
    assert_eq!(&one, b"x");
}

/// `BufStream::poll_close`: "Flushes the write buffer, then closes the stream's write side."
/// The peer reads the buffered bytes, then end of file; the read side stays open, so the
/// peer's answer is still read.
#[overlap::test]
async fn buf_stream_close_flushes_then_shuts_only_the_write_side() {
    let (near, mut far) = UnixStream::pair().unwrap();
    let mut conn = BufStream::new(near);
    conn.write_all(b"hello").await.unwrap();
    assert_eq!(conn.write_buffer(), b"hello", "sent before a flush");
    conn.close().await.unwrap();
    assert_eq!(conn.write_buffer(), b"");
    let mut got = Vec::new();
    within(HANG, far.read_to_end(&mut got), "the request and its end")
        .await
        .unwrap();
    assert_eq!(got, b"hello");
    far.write_all(b"reply").await.unwrap();
    far.close().await.unwrap();
    let mut reply = Vec::new();
    within(HANG, conn.read_to_end(&mut reply), "the reply")
        .await
        .unwrap();
    assert_eq!(reply, b"reply");
}

/// `BufStream`: "As with tokio's, reading does not flush: call `flush().await` after writing
/// a request and before waiting for its answer, or the request waits in the buffer." A read
/// waits until the peer, once the reactor has looked at the sockets (so the stream is known
/// to be writable), answers unasked; the request is still in the buffer after it, and only
/// the flush sends it.
#[overlap::test]
async fn buf_stream_reading_does_not_flush() {
    let (near, mut far) = UnixStream::pair().unwrap();
    let mut conn = BufStream::new(near);
    conn.write_all(b"request").await.unwrap();
    let mut buf = [0u8; 16];
    let answer = async {
        far.writable().await.unwrap();
        far.write_all(b"answer").await.unwrap();
    };
    let (read, ()) = within(
        HANG,
        async { overlap::join!(conn.read(&mut buf), answer) },
        "the answer",
    )
    .await;
    assert_eq!(&buf[..read.unwrap()], b"answer");
    assert_eq!(conn.write_buffer(), b"request", "the read flushed");
    conn.flush().await.unwrap();
    let mut got = [0u8; 7];
    within(HANG, far.read_exact(&mut got), "the request")
        .await
        .unwrap();
    assert_eq!(&got, b"request");
}

/// `BufStream`: "Dropping it loses the bytes still in the write buffer (a drop cannot wait
/// for a write)." The peer reads end of file and nothing else.
#[overlap::test]
async fn buf_stream_dropped_loses_its_write_buffer() {
    let (near, mut far) = UnixStream::pair().unwrap();
    let mut conn = BufStream::new(near);
    conn.write_all(b"never sent").await.unwrap();
    drop(conn);
    let mut got = Vec::new();
    within(HANG, far.read_to_end(&mut got), "end of file")
        .await
        .unwrap();
    assert_eq!(got, b"");
}

/// `BufStream::poll_seek`: "Flushes the write buffer and drops the read buffer, then seeks
/// (a `SeekFrom::Current` offset counts from the position the reader has reached)." Over a
/// file: the position after two bytes read is 2 though the reader fetched all ten; bytes
/// written reach the file by the next seek; what is read after it is the file's, not the
/// dropped read buffer's.
#[overlap::test]
async fn buf_stream_seek_flushes_and_counts_from_the_reader() {
    let dir = TempDir::new("io-audit-bufstream-seek");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let mut conn = BufStream::new(open_read_write(&path).await);
    let mut two = [0u8; 2];
    conn.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"01");
    assert_eq!(conn.read_buffer(), b"23456789", "the reader fetched ahead");
    assert_eq!(conn.seek(SeekFrom::Current(0)).await.unwrap(), 2);
    assert_eq!(conn.read_buffer(), b"", "the seek kept the read buffer");
    conn.write_all(b"AB").await.unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"0123456789",
        "written unflushed"
    );
    assert_eq!(conn.seek(SeekFrom::Current(0)).await.unwrap(), 4);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"01AB456789",
        "the seek flushed"
    );
    let mut three = [0u8; 3];
    conn.read_exact(&mut three).await.unwrap();
    assert_eq!(&three, b"456");
    assert_eq!(conn.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    let mut all = Vec::new();
    conn.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"01AB456789");
}

/// `io::join`: "writes, flushes and `close` go to the writer only, so closing the joined
/// value ends the writer's side [...] and leaves the reader readable to its end." Two pipes
/// joined at each end: after the near end's `close` the far end reads end of file, and the
/// near end still reads what the far end writes afterwards.
#[overlap::test]
async fn join_close_ends_the_writer_and_leaves_the_reader_readable() {
    let (to_far, from_near) = overlap::pipe::pipe().unwrap();
    let (to_near, from_far) = overlap::pipe::pipe().unwrap();
    let mut near = overlap::io::join(from_far, to_far);
    let mut far = overlap::io::join(from_near, to_near);
    near.write_all(b"last words").await.unwrap();
    near.close().await.unwrap();
    let mut got = Vec::new();
    within(
        HANG,
        far.read_to_end(&mut got),
        "the near end's end of file",
    )
    .await
    .unwrap();
    assert_eq!(got, b"last words");
    far.write_all(b"late reply").await.unwrap();
    far.close().await.unwrap();
    let mut reply = Vec::new();
    within(HANG, near.read_to_end(&mut reply), "the reply after close")
        .await
        .unwrap();
    assert_eq!(reply, b"late reply");
}

/// `InspectReader`: "`f` sees exactly the bytes each read returns, in as many pieces as there
/// were reads (slice by slice for a vectored read), and nothing for a read that [...] is at
/// end of file." One vectored read filling a 3-byte slice, skipping an empty one and filling
/// 5 bytes of a 10-byte one shows `f` two pieces, the second cut to the bytes read.
#[overlap::test]
async fn an_inspect_reader_shows_a_vectored_read_slice_by_slice() {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let record = |chunk: &[u8]| seen.push(chunk.to_vec());
    let mut reader = InspectReader::new(Cursor::new(b"abcdefgh".to_vec()), record);
    let (mut first, mut empty, mut last) = ([0u8; 3], [0u8; 0], [0u8; 10]);
    let mut slices = [
        IoSliceMut::new(&mut first),
        IoSliceMut::new(&mut empty),
        IoSliceMut::new(&mut last),
    ];
    assert_eq!(reader.read_vectored(&mut slices).await.unwrap(), 8);
    let mut again = [IoSliceMut::new(&mut empty), IoSliceMut::new(&mut first)];
    assert_eq!(
        reader.read_vectored(&mut again).await.unwrap(),
        0,
        "end of file"
    );
    drop(reader); // ends the closure's borrow
    assert_eq!(&last[..5], b"defgh");
    assert_eq!(seen, [b"abc".to_vec(), b"defgh".to_vec()]);
}
