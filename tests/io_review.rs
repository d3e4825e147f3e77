//! An adversarial review of the io helpers, reading and buffering: `read_line`,
//! `read_until`, `read_exact` and `write_all` dropped at a `Pending` (what the string, the
//! vector, the array and the stream hold after, as the docs say), `BufWriter` over a writer
//! that takes nothing or fails mid-flush, `BufReader::seek` with bytes buffered, `take` at
//! its bounds, `chain` after an error, and `read_to_string` on a bad character split
//! across reads. Memory pipes, `split` and `copy_bidirectional` are in io_review_streams.rs.

mod support;

use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use overlap::io::{
    duplex, read_to_end, read_to_string, AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWrite,
    AsyncWriteExt, BufReader, BufWriter, Cursor, SeekFrom,
};
use support::scripted::{data, fail, Scripted, Step};
use support::ManualTask;

/// A reader giving `text` a byte at a time, each byte followed by a `Pending`.
fn trickle(text: &[u8]) -> Scripted {
    Scripted::new(text.iter().flat_map(|&b| [data(&[b]), Step::Pending]))
}

#[overlap::test]
async fn read_line_dropped_at_each_pending_gives_the_string_back_and_loses_the_bytes_taken() {
    // As the BufStream docs say: the bytes a dropped read_line took are gone from the
    // stream; futures-util puts the string's earlier text back (tokio leaves it empty).
    for taken in 1..=3 {
        let mut reader = BufReader::with_capacity(1, trickle(b"one\ntwo\n"));
        let mut line = String::from("old|");
        let task = ManualTask::default();
        {
            let mut cut = pin!(reader.read_line(&mut line));
            for _ in 0..taken {
                assert!(task.poll(cut.as_mut()).is_pending(), "a byte, then Pending");
            }
        }
        assert_eq!(line, "old|", "dropped after {taken} bytes");
        let mut rest = String::new();
        assert_eq!(reader.read_line(&mut rest).await.unwrap(), 4 - taken);
        assert_eq!(rest, &"one\n"[taken..], "dropped after {taken} bytes");
        rest.clear();
        reader.read_line(&mut rest).await.unwrap();
        assert_eq!(rest, "two\n", "the next line is whole");
    }
}

#[overlap::test]
async fn read_until_dropped_at_a_pending_leaves_the_bytes_taken_in_the_vector() {
    // Unlike read_line, the bytes are not lost: they are in the caller's vector, and a
    // second read_until into it finishes the line.
    for taken in 1..=3 {
        let mut reader = BufReader::with_capacity(1, trickle(b"one\ntwo\n"));
        let mut line = b"old|".to_vec();
        let task = ManualTask::default();
        {
            let mut cut = pin!(reader.read_until(b'\n', &mut line));
            for _ in 0..taken {
                assert!(task.poll(cut.as_mut()).is_pending());
            }
        }
        let mut want = b"old|".to_vec();
        want.extend_from_slice(&b"one"[..taken]);
        assert_eq!(line, want, "dropped after {taken} bytes");
        let n = reader.read_until(b'\n', &mut line).await.unwrap();
        assert_eq!((n, &line[..]), (4 - taken, &b"old|one\n"[..]));
    }
}

#[overlap::test]
async fn read_exact_and_write_all_dropped_midway_keep_what_moved_and_lose_the_count() {
    let mut reader = Scripted::new([data(b"ab"), Step::Pending, data(b"cdef")]);
    let mut four = [0u8; 4];
    let task = ManualTask::default();
    assert!(task.poll(pin!(reader.read_exact(&mut four))).is_pending());
    assert_eq!(
        &four, b"ab\0\0",
        "the bytes read are in the array, the count is gone"
    );
    let mut two = [0u8; 2];
    reader.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"cd", "the stream went on after the bytes taken");

    let (mut near, mut far) = duplex(3);
    assert!(task.poll(pin!(near.write_all(b"abcdef"))).is_pending());
    near.close().await.unwrap();
    let mut got = Vec::new();
    far.read_to_end(&mut got).await.unwrap();
    assert_eq!(
        got, b"abc",
        "the part a dropped write_all wrote went out, once"
    );
}

/// A writer taking `per_call` bytes a call, failing the call numbered `fail_on` (from 1)
/// once, and noting when it is closed.
#[derive(Default)]
struct Gate {
    per_call: usize,
    calls: usize,
    fail_on: Option<usize>,
    written: Vec<u8>,
    /// How many bytes were written when `poll_close` was called.
    closed_at: Option<usize>,
}

impl AsyncWrite for Gate {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.calls += 1;
        if self.fail_on == Some(self.calls) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let n = self.per_call.min(buf.len());
        self.written.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.closed_at = Some(self.written.len());
        Poll::Ready(Ok(()))
    }
}

#[overlap::test]
async fn a_buf_writer_over_a_writer_taking_nothing_is_write_zero_and_keeps_its_bytes() {
    let mut w = BufWriter::with_capacity(8, Gate::default());
    w.write_all(b"abc").await.unwrap();
    assert_eq!(w.get_ref().calls, 0, "a short write is only buffered");
    let err = w.flush().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WriteZero, "{err}");
    assert_eq!(w.buffer(), b"abc", "nothing left the buffer");
    let err = w.write_all(&[b'x'; 20]).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WriteZero, "{err}");
    assert_eq!(
        w.buffer(),
        b"abc",
        "a long write neither buffered nor sent a part"
    );

    w.get_mut().per_call = 2;
    w.flush().await.unwrap();
    assert_eq!(
        (w.buffer(), &w.get_ref().written[..]),
        (&b""[..], &b"abc"[..])
    );
}

#[overlap::test]
async fn a_buf_writer_failing_mid_flush_keeps_the_unsent_tail_and_close_flushes_first() {
    let gate = Gate {
        per_call: 2,
        fail_on: Some(2),
        ..Gate::default()
    };
    let mut w = BufWriter::with_capacity(8, gate);
    w.write_all(b"abcdef").await.unwrap();
    let err = w.flush().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(w.get_ref().written, b"ab");
    assert_eq!(w.buffer(), b"cdef", "the unsent tail stays, in order");
    w.flush().await.unwrap();
    assert_eq!(
        w.get_ref().written,
        b"abcdef",
        "each byte once after the retry"
    );

    w.write_all(b"xy").await.unwrap();
    w.close().await.unwrap();
    let gate = w.into_inner();
    assert_eq!(gate.written, b"abcdefxy");
    assert_eq!(
        gate.closed_at,
        Some(8),
        "close flushed before closing the writer"
    );
}

#[overlap::test]
async fn a_buf_reader_seek_from_current_counts_the_buffered_bytes() {
    let mut r = BufReader::with_capacity(4, Cursor::new(b"0123456789".to_vec()));
    let mut one = [0u8; 1];
    r.read_exact(&mut one).await.unwrap();
    assert_eq!((&one, r.buffer()), (b"0", &b"123"[..]));
    assert_eq!(
        r.get_ref().position(),
        4,
        "the cursor is past the read-ahead"
    );
    assert_eq!(r.seek(SeekFrom::Current(0)).await.unwrap(), 1);

    r.read_exact(&mut one).await.unwrap();
    assert_eq!((&one, r.buffer()), (b"1", &b"234"[..]));
    assert_eq!(r.seek(SeekFrom::Current(2)).await.unwrap(), 4);
    r.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"4");
    assert_eq!(r.seek(SeekFrom::Current(-3)).await.unwrap(), 2, "back");
    r.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"2");

    // Before the start: refused, and the reader is where it was.
    let err = r.seek(SeekFrom::Current(-10)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    r.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"3", "a refused seek moved the reader");
    let mut rest = String::new();
    r.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "456789");
}

#[overlap::test]
async fn take_at_zero_and_at_u64_max_and_chain_after_an_error() {
    // A limit of 0 is end of file without asking the reader (which would fail).
    let mut failing = Scripted::new([fail(io::ErrorKind::ConnectionReset)]);
    let mut got = Vec::new();
    assert_eq!(
        (&mut failing).take(0).read_to_end(&mut got).await.unwrap(),
        0
    );
    assert_eq!(failing.reads, 0);

    let mut unbounded = Cursor::new(b"abc".to_vec()).take(u64::MAX);
    unbounded.read_to_end(&mut got).await.unwrap();
    assert_eq!((&got[..], unbounded.limit()), (&b"abc"[..], u64::MAX - 3));

    // A failure of the first reader ends the read with the bytes before it; the next read
    // goes on with the first reader, then the second.
    let first = Scripted::new([
        data(b"ab"),
        fail(io::ErrorKind::ConnectionReset),
        data(b"cd"),
    ]);
    let mut chained = first.chain(Cursor::new(b"XY".to_vec()));
    let mut got = Vec::new();
    let err = read_to_end(&mut chained, &mut got).await.unwrap_err();
    assert_eq!(
        (err.kind(), &got[..]),
        (io::ErrorKind::ConnectionReset, &b"ab"[..])
    );
    assert_eq!(read_to_end(&mut chained, &mut got).await.unwrap(), 4);
    assert_eq!(got, b"abcdXY");
}

#[overlap::test]
async fn read_to_string_refuses_a_bad_character_split_across_reads_and_keeps_the_string() {
    // 0xc3 starts a two-byte character; "(" cannot continue it. The first read ends
    // inside it, so only the second shows it is not UTF-8.
    let mut r = Scripted::new([data(b"ok \xc3"), Step::Pending, data(b"(tail")]);
    let mut text = String::from("kept");
    let err = read_to_string(&mut r, &mut text).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert_eq!(text, "kept");
    assert!(r.is_done(), "read to the end before refusing");

    // The stream ends inside a character.
    let mut r = Scripted::new([data(b"ok \xc3"), Step::Pending]);
    let err = read_to_string(&mut r, &mut text).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert_eq!(text, "kept");
}

#[overlap::test]
async fn lines_keep_a_cr_inside_a_line_and_take_crlf_split_between_reads() {
    // "\r\n" split across two fills ends the line (the \r is dropped); a lone \r mid-line
    // and a last line without its newline are kept as they are.
    use overlap::stream::StreamExt;
    let reader = BufReader::with_capacity(1, trickle(b"a\rb\r\nc\r\n\r\nlast\r"));
    let lines: Vec<String> = reader.lines().map(Result::unwrap).collect().await;
    assert_eq!(lines, ["a\rb", "c", "", "last\r"]);
}
