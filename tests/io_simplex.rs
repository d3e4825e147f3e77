//! `io::simplex` and `SimplexStream`: a one-way in-memory pipe with a bounded buffer, an
//! end of file when the writer closes or goes, and `BrokenPipe` when the reader goes.

mod support;

use std::io::{ErrorKind, IoSlice};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{self, simplex, AsyncReadExt, AsyncWriteExt, SimplexStream};
use overlap::{block_on, spawn};
use support::{pattern_seeded, within};

const HANG: Duration = Duration::from_secs(30);

/// A producer and a consumer in two tasks, through a buffer far smaller than what they
/// move: every byte arrives once, in order, and the writer's drop is the end of file.
#[test]
fn a_quarter_mebibyte_through_a_small_buffer_arrives_intact_then_eof() {
    block_on(async {
        let (mut rx, mut tx) = simplex(1000);
        let data = pattern_seeded(256 << 10, 7);
        let sent = data.clone();
        let producer = spawn(async move {
            for chunk in sent.chunks(3001) {
                tx.write_all(chunk).await?;
            }
            std::io::Result::Ok(()) // dropped, not closed
        });
        let mut got = Vec::new();
        within(HANG, rx.read_to_end(&mut got), "simplex transfer stalled")
            .await
            .unwrap();
        producer.await.unwrap().unwrap();
        assert!(got == data, "bytes changed in transit");
    });
}

#[test]
fn a_full_buffer_makes_the_writer_wait_until_the_reader_reads() {
    block_on(async {
        let (mut rx, mut tx) = simplex(4);
        assert_eq!(tx.write(b"abcdef").await.unwrap(), 4, "only what fits");
        assert!(
            tx.write(b"x").now_or_never().is_none(),
            "full: the write waits"
        );
        let writer = spawn(async move {
            tx.write_all(b"xyz").await.unwrap();
            tx
        });
        overlap::yield_now().await;
        let mut two = [0u8; 2];
        rx.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ab");
        let mut rest = [0u8; 5];
        rx.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"cdxyz", "the waiting writer was woken and went on");
        let tx = within(HANG, writer, "the writer was never woken").await;
        drop(tx.unwrap());
        let eof = within(HANG, rx.read(&mut rest), "no end of file after the drop").await;
        assert_eq!(eof.unwrap(), 0);
    });
}

#[test]
fn close_gives_eof_after_the_rest_and_later_writes_fail() {
    block_on(async {
        let (mut rx, mut tx) = simplex(16);
        tx.write_all(b"last").await.unwrap();
        tx.close().await.unwrap();
        let err = tx.write(b"more").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(err.to_string().contains("closed for writing"), "{err}");
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
        // End of file again, not a wait.
        assert_eq!(rx.read(&mut [0u8; 4]).await.unwrap(), 0);
    });
}

/// The reader's drop wakes a writer waiting on a full buffer with `BrokenPipe`, and the
/// bytes nobody will read are let go.
#[test]
fn dropping_the_reader_breaks_the_pipe_for_a_waiting_writer() {
    block_on(async {
        let (rx, mut tx) = simplex(2);
        tx.write_all(b"ab").await.unwrap();
        let writer = spawn(async move { tx.write_all(b"cd").await });
        overlap::yield_now().await;
        assert!(format!("{rx:?}").contains("unread_bytes: 2"), "{rx:?}");
        drop(rx);
        let res = within(HANG, writer, "the blocked writer was never woken").await;
        let err = res.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(err.to_string().contains("reading end"), "{err}");
    });
}

#[test]
fn a_reader_waiting_on_an_empty_pipe_gets_eof_when_the_writer_drops() {
    block_on(async {
        let (mut rx, tx) = simplex(8);
        let reader = spawn(async move { rx.read(&mut [0u8; 8]).await });
        overlap::yield_now().await;
        drop(tx);
        let res = within(HANG, reader, "the waiting reader was never woken").await;
        assert_eq!(res.unwrap().unwrap(), 0);
    });
}

/// One vectored write moves every slice that fits, in order, the last one partly.
#[test]
fn one_vectored_write_moves_all_the_slices_that_fit_in_order() {
    block_on(async {
        let (mut rx, mut tx) = simplex(100);
        let data = pattern_seeded(140, 4);
        let pieces: Vec<IoSlice<'_>> = data.chunks(7).map(IoSlice::new).collect();
        assert_eq!(tx.write_vectored(&pieces).await.unwrap(), 100);
        let mut got = vec![0u8; 100];
        rx.read_exact(&mut got).await.unwrap();
        assert!(got[..] == data[..100], "bytes out of order or changed");
    });
}

/// Unsplit, a `SimplexStream` is a bounded byte queue: what it writes it reads back, at
/// most its size at once, and after `close` the rest then end of file.
#[test]
fn an_unsplit_simplex_stream_reads_back_what_it_wrote() {
    block_on(async {
        let mut queue = SimplexStream::new_unsplit(8);
        assert_eq!(queue.write(b"0123456789").await.unwrap(), 8);
        assert!(queue.write(b"x").now_or_never().is_none(), "full");
        let mut four = [0u8; 4];
        queue.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"0123");
        queue.write_all(b"ab").await.unwrap();
        queue.close().await.unwrap();
        assert_eq!(
            queue.write(b"c").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        let mut rest = Vec::new();
        queue.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"4567ab");
    });
}

/// Split with `io::split`, as tokio's `simplex` hands it out, its halves are a producer's
/// and a consumer's ends: the consumer waits for the producer and sees end of file after
/// the producer's `close`.
#[test]
fn a_split_simplex_stream_carries_bytes_between_tasks() {
    block_on(async {
        let (mut read, mut write) = io::split(SimplexStream::new_unsplit(5));
        let data = pattern_seeded(10_000, 9);
        let sent = data.clone();
        let producer = spawn(async move {
            write.write_all(&sent).await?;
            write.close().await
        });
        let mut got = Vec::new();
        within(HANG, read.read_to_end(&mut got), "split simplex stalled")
            .await
            .unwrap();
        producer.await.unwrap().unwrap();
        assert!(got == data, "bytes changed in transit");
    });
}
