//! Behaviours checked by tokio's `io` utility tests, ported to the futures-util combinators
//! (`overlap::io::{BufReader, BufWriter, AsyncBufReadExt, ...}`) run over overlap's own
//! `File` (its read-ahead, its buffered writes, its `AsyncBufRead`) and `DuplexStream`.
//! `io::copy`, `copy_bidirectional` and `duplex` themselves are in `port_tokio_io.rs`.
//!
//! - `io_buf_reader.rs`: `test_buffered_reader_seek`, `test_buffered_reader_seek_relative`,
//!   `maybe_pending_seek`, `test_short_reads`: a `BufReader` seeking a `File` that has
//!   itself read ahead.
//! - `io_buf_writer.rs`: `buf_writer`, `buf_writer_inner_flushes`, `buf_writer_seek`,
//!   `write_vectored_large_total_on_non_vectored`: big writes past the buffer, the flush
//!   on close, a seek that writes the buffer out first.
//! - `io_lines.rs`, `io_read_line.rs`, `io_read_until.rs`: CRLF, a last line without a
//!   newline, empty lines, invalid UTF-8, a delimiter never found; also from a `File`
//!   whose jobs are a few bytes each, so lines span many of them.
//! - `io_read_exact.rs`, `io_read_to_string.rs`: the end of file before the buffer is
//!   full; invalid UTF-8.
//! - `io_write_all.rs`: a writer that takes nothing (`WriteZero`), an empty `write_all`.
//! - `io_take.rs`, `io_chain.rs`: `take` on a `File` then reading on from the `File`;
//!   a `File` chained with a duplex.
//! - `io_split.rs`: `split` and `reunite` of a duplex, the halves used from two tasks.
//!
//! Skipped: tests of tokio's `ReadBuf`/`BufMut` forms on uninit memory have no futures-io
//! equivalent (`read_buf` into a `BytesMut` or `Vec<u8>` is tested in `io_read_buf.rs`); futures-util's own `BufReader` and `BufWriter`
//! over in-memory cursors test futures-util, not overlap.

mod support;

use std::io::SeekFrom;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::fs::{File, OpenOptions};
use overlap::io::{
    duplex, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt,
    BufReader, BufWriter, ErrorKind,
};
use overlap::stream::StreamExt;
use support::{pattern, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

async fn file_with(dir: &TempDir, contents: &[u8]) -> File {
    let path = dir.join("f");
    std::fs::write(&path, contents).unwrap();
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .await
        .unwrap()
}

#[overlap::test]
async fn a_buf_reader_seeks_a_file_that_read_ahead() {
    let dir = TempDir::new("port-io-bufreader-seek");
    let data: Vec<u8> = (0..=255).collect();
    let mut reader = BufReader::with_capacity(16, file_with(&dir, &data).await);
    let mut buf = [0; 4];
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, [0, 1, 2, 3]);
    // Within the BufReader's buffer, behind it, and past what the File read ahead.
    assert_eq!(reader.seek(SeekFrom::Current(2)).await.unwrap(), 6);
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, [6, 7, 8, 9]);
    assert_eq!(reader.seek(SeekFrom::Current(-8)).await.unwrap(), 2);
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, [2, 3, 4, 5]);
    assert_eq!(reader.seek(SeekFrom::End(-3)).await.unwrap(), 253);
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).await.unwrap();
    assert_eq!(tail, [253, 254, 255]);
    assert_eq!(reader.seek(SeekFrom::Start(100)).await.unwrap(), 100);
    assert_eq!(reader.fill_buf().await.unwrap()[0], 100);
    // The File underneath agrees on where the reader is, once the buffer is given back.
    let pos = reader.stream_position().await.unwrap();
    assert_eq!(pos, 100);
    // That seek gave the BufReader's 16 bytes back to the File (a `Current(-16)`, taken
    // from the File's reader, not from what the File itself fetched ahead).
    let mut file = reader.into_inner();
    assert_eq!(file.stream_position().await.unwrap(), 100);
    let mut one = [0; 1];
    file.read_exact(&mut one).await.unwrap();
    assert_eq!(one, [100]);
}

#[overlap::test]
async fn a_buf_writer_passes_big_writes_through_and_writes_out_before_a_seek() {
    let dir = TempDir::new("port-io-bufwriter");
    let path = dir.join("f");
    let mut writer = BufWriter::with_capacity(8, File::create(&path).await.unwrap());
    writer.write_all(b"abc").await.unwrap();
    assert_eq!(writer.buffer(), b"abc");
    // Bigger than the buffer: the buffer goes first, then the write straight through.
    let big = pattern(100);
    writer.write_all(&big).await.unwrap();
    assert!(writer.buffer().is_empty());
    writer.write_all(b"de").await.unwrap();
    // A seek writes "de" out, then moves the File: the next bytes overwrite from 1.
    assert_eq!(writer.seek(SeekFrom::Start(1)).await.unwrap(), 1);
    writer.write_all(b"XY").await.unwrap();
    assert_eq!(writer.buffer(), b"XY");
    // close writes out the buffer and flushes the File: nothing is left for its drop.
    writer.close().await.unwrap();
    let mut expected = b"aXY".to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"de");
    assert!(std::fs::read(&path).unwrap() == expected);

    // Vectored writes bigger than the buffer in total reach a File whole.
    let mut writer = BufWriter::with_capacity(8, File::create(&path).await.unwrap());
    let slices = [b"0123456".as_slice(), b"789", b"abcdefghijk"];
    let io_slices: Vec<_> = slices.iter().map(|s| std::io::IoSlice::new(s)).collect();
    let mut written = 0;
    while written < 21 {
        // Each call takes a prefix; the rest is given again.
        let mut rest = Vec::new();
        let mut skip = written;
        for s in &io_slices {
            if skip >= s.len() {
                skip -= s.len();
                continue;
            }
            rest.push(std::io::IoSlice::new(&s[skip..]));
            skip = 0;
        }
        let n = writer.write_vectored(&rest).await.unwrap();
        assert!(n > 0);
        written += n;
    }
    writer.close().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456789abcdefghijk");
}

#[overlap::test]
async fn lines_end_at_lf_or_crlf_and_keep_a_last_line_without_one() {
    let (mut tx, rx) = duplex(5);
    let writer = overlap::spawn(async move {
        tx.write_all(b"one\r\ntwo\n\n\r\nthree\rthree\nlast")
            .await
            .unwrap();
    });
    let mut lines = BufReader::new(rx).lines();
    let mut got = Vec::new();
    while let Some(line) = within(HANG, lines.next(), "lines stalled").await {
        got.push(line.unwrap());
    }
    assert_eq!(got, ["one", "two", "", "", "three\rthree", "last"]);
    assert!(lines.next().await.is_none(), "stays ended");
    writer.await.unwrap();
}

/// tokio-util's `LinesCodec::new_with_max_length` and tokio's `Lines::into_inner` have no
/// futures-util twin; the README's recipe: `take(limit)` over `&mut reader` bounds each
/// `read_until`, a line past the limit is skipped to its newline through `fill_buf`, and
/// the `BufReader` itself, never wrapped in a `Lines`, can still be taken apart.
/// One line of at most 100 bytes into `line` (cleared first).
async fn bounded_line<R: overlap::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> usize {
    line.clear();
    reader.take(100).read_until(b'\n', line).await.unwrap()
}

#[overlap::test]
async fn read_until_under_take_bounds_a_line_and_leaves_the_reader_whole() {
    let (mut tx, rx) = duplex(64);
    let writer = overlap::spawn(async move {
        tx.write_all(b"short\n").await.unwrap();
        tx.write_all(&[b'x'; 10_000]).await.unwrap();
        tx.write_all(b"\nafter\nSTARTTLS\nrest").await.unwrap();
    });
    let mut reader = BufReader::with_capacity(16, rx);
    let mut line = Vec::new();
    assert_eq!(bounded_line(&mut reader, &mut line).await, 6);
    assert_eq!(line, b"short\n");
    // A line past the limit: 100 bytes and no newline; the rest of it skipped.
    assert_eq!(bounded_line(&mut reader, &mut line).await, 100);
    assert!(!line.ends_with(b"\n"));
    loop {
        let buf = within(HANG, reader.fill_buf(), "the long line")
            .await
            .unwrap();
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => break reader.consume_unpin(i + 1),
            None => {
                let n = buf.len();
                reader.consume_unpin(n);
            }
        }
    }
    assert_eq!(bounded_line(&mut reader, &mut line).await, 6);
    assert_eq!(line, b"after\n");
    assert_eq!(bounded_line(&mut reader, &mut line).await, 9);
    assert_eq!(line, b"STARTTLS\n");
    writer.await.unwrap();
    // What was read ahead shows before the reader is taken apart.
    assert_eq!(reader.buffer(), b"rest");
    let mut rx = reader.into_inner();
    let mut after = Vec::new();
    rx.read_to_end(&mut after).await.unwrap();
    assert!(
        after.is_empty(),
        "the buffered bytes went with the BufReader"
    );
}

#[overlap::test]
async fn lines_and_read_until_span_many_small_file_jobs() {
    let dir = TempDir::new("port-io-lines-file");
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&"x".repeat(i % 23));
        text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
    }
    text.push_str("tail");
    let mut file = file_with(&dir, text.as_bytes()).await;
    file.set_max_buf_size(7);
    let mut lines = file.lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next().await {
        got.push(line.unwrap());
    }
    let want: Vec<_> = text.lines().map(str::to_owned).collect();
    assert_eq!(got, want);

    // read_until without the delimiter: everything to the end, then 0.
    let mut file = file_with(&dir, b"a,bb,ccc").await;
    file.set_max_buf_size(2);
    let mut parts = Vec::new();
    loop {
        let mut part = Vec::new();
        if file.read_until(b',', &mut part).await.unwrap() == 0 {
            break;
        }
        parts.push(part);
    }
    assert_eq!(parts, [b"a,".to_vec(), b"bb,".to_vec(), b"ccc".to_vec()]);
    // The File reads on from where read_until left it, after more is written.
    file.write_all(b",d").await.unwrap();
    let mut part = Vec::new();
    assert_eq!(file.read_until(b',', &mut part).await.unwrap(), 0);
    assert_eq!(file.seek(SeekFrom::Start(6)).await.unwrap(), 6);
    assert_eq!(file.read_until(b',', &mut part).await.unwrap(), 3);
    assert_eq!(part, b"cc,");
}

#[overlap::test]
async fn invalid_utf8_is_invalid_data_and_keeps_no_part_of_the_bad_text() {
    let dir = TempDir::new("port-io-utf8");
    let mut file = file_with(&dir, b"good\n\xff\xfe bad\nafter\n").await;
    let mut line = String::new();
    assert_eq!(file.read_line(&mut line).await.unwrap(), 5);
    assert_eq!(line, "good\n");
    let err = file.read_line(&mut line).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert_eq!(line, "good\n", "nothing of the bad line is kept");
    // The bad line was consumed; reading goes on after it.
    line.clear();
    file.read_line(&mut line).await.unwrap();
    assert_eq!(line, "after\n");

    // (tokio's read_to_string also leaves what the String held before; futures-util's
    // empties it, so that is not checked here.)
    let mut file = file_with(&dir, b"ok \xc3").await;
    let mut s = String::new();
    let err = file.read_to_string(&mut s).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert_eq!(s, "");
}

#[overlap::test]
async fn read_exact_past_the_end_is_unexpected_eof() {
    let dir = TempDir::new("port-io-read-exact");
    let mut file = file_with(&dir, b"short").await;
    let mut buf = [0; 8];
    let err = file.read_exact(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    // At the end already: the same, and an empty read_exact is fine.
    let err = file.read_exact(&mut buf[..1]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    file.read_exact(&mut []).await.unwrap();

    let (mut tx, mut rx) = duplex(4);
    tx.write_all(b"abc").await.unwrap();
    tx.close().await.unwrap();
    let err = rx.read_exact(&mut buf[..4]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

/// A writer that accepts nothing.
struct Zero;

impl AsyncWrite for Zero {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[overlap::test]
async fn write_all_into_a_writer_that_takes_nothing_is_write_zero() {
    let err = Zero.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriteZero, "{err}");
    Zero.write_all(b"").await.unwrap();
    // A File takes every byte, in as many calls as its buffer needs.
    let dir = TempDir::new("port-io-write-all");
    let mut file = File::create(dir.join("f")).await.unwrap();
    file.set_max_buf_size(4);
    let data = pattern(1001);
    file.write_all(&data).await.unwrap();
    file.write_all(b"").await.unwrap();
    file.flush().await.unwrap();
    assert!(std::fs::read(dir.join("f")).unwrap() == data);
}

#[overlap::test]
async fn take_stops_at_its_limit_and_the_file_reads_on_from_there() {
    let dir = TempDir::new("port-io-take");
    let file = file_with(&dir, b"0123456789").await;
    let mut first = file.take(4);
    let mut got = Vec::new();
    first.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"0123");
    assert_eq!(first.limit(), 0);
    let mut file = first.into_inner();
    let mut rest = String::new();
    file.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "456789");
}

#[overlap::test]
async fn chain_reads_a_file_then_a_duplex() {
    let dir = TempDir::new("port-io-chain");
    let file = file_with(&dir, b"from the file, ").await;
    let (mut tx, rx) = duplex(8);
    let writer = overlap::spawn(async move {
        tx.write_all(b"then the duplex").await.unwrap();
    });
    let mut chained = file.chain(rx);
    let mut s = String::new();
    within(HANG, chained.read_to_string(&mut s), "chain stalled")
        .await
        .unwrap();
    assert_eq!(s, "from the file, then the duplex");
    writer.await.unwrap();
}

#[overlap::test]
async fn split_halves_work_from_two_tasks_and_reunite() {
    let (a, mut b) = duplex(4);
    let (mut read_half, mut write_half) = a.split();
    let echo = overlap::spawn(async move {
        let mut buf = [0; 3];
        b.read_exact(&mut buf).await.unwrap();
        b.write_all(&buf).await.unwrap();
        b
    });
    let writer = overlap::spawn(async move {
        write_half.write_all(b"abc").await.unwrap();
        write_half
    });
    let mut buf = [0; 3];
    within(HANG, read_half.read_exact(&mut buf), "split stalled")
        .await
        .unwrap();
    assert_eq!(&buf, b"abc");
    let write_half = writer.await.unwrap();
    let mut a = read_half.reunite(write_half).unwrap();
    let mut b = echo.await.unwrap();
    a.write_all(b"z").await.unwrap();
    let mut one = [0; 1];
    b.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"z");
}

/// Checks that a reader's short reads still fill a `BufReader` line by line.
struct OneByOne<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for OneByOne<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(1);
        Pin::new(&mut self.0).poll_read(cx, &mut buf[..n])
    }
}

#[overlap::test]
async fn a_buf_reader_over_one_byte_reads_of_a_file_gets_whole_lines() {
    let dir = TempDir::new("port-io-short-reads");
    let file = file_with(&dir, b"alpha\nbeta\r\ngamma").await;
    let mut lines = BufReader::new(OneByOne(file)).lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next().await {
        got.push(line.unwrap());
    }
    assert_eq!(got, ["alpha", "beta", "gamma"]);
}
