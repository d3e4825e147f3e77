//! `io::duplex`: in-memory connected streams with a bounded buffer per direction, half-close
//! and a peer that goes away.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{duplex, AsyncReadExt, AsyncWriteExt};
use overlap::{block_on, spawn};
use support::{pattern_seeded, within};

const HANG: Duration = Duration::from_secs(30);

#[test]
fn a_quarter_mebibyte_each_way_through_a_small_buffer_arrives_intact() {
    block_on(async {
        let (a, b) = duplex(1000);
        let (mut a_read, mut a_write) = a.split();
        let (mut b_read, mut b_write) = b.split();
        let to_b = pattern_seeded(256 << 10, 1);
        let to_a = pattern_seeded(256 << 10, 2);
        let (send_b, send_a) = (to_b.clone(), to_a.clone());
        let w1 = spawn(async move {
            a_write.write_all(&send_b).await.unwrap();
            a_write.close().await.unwrap();
        });
        let w2 = spawn(async move {
            b_write.write_all(&send_a).await.unwrap();
            b_write.close().await.unwrap();
        });
        let (mut got_b, mut got_a) = (Vec::new(), Vec::new());
        let reads = async {
            b_read.read_to_end(&mut got_b).await.unwrap();
            a_read.read_to_end(&mut got_a).await.unwrap();
        };
        within(HANG, reads, "duplex transfer stalled").await;
        w1.await.unwrap();
        w2.await.unwrap();
        assert!(got_b == to_b && got_a == to_a, "bytes changed in transit");
    });
}

#[test]
fn a_full_buffer_makes_the_writer_wait_until_the_reader_reads() {
    block_on(async {
        let (mut a, mut b) = duplex(4);
        assert_eq!(a.write(b"abcdef").await.unwrap(), 4, "only what fits");
        assert!(
            a.write(b"x").now_or_never().is_none(),
            "full: the write waits"
        );
        let mut buf = [0u8; 2];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ab");
        assert_eq!(a.write(b"xyz").await.unwrap(), 2);
    });
}

#[test]
fn close_is_a_half_close_and_drop_ends_both_directions() {
    block_on(async {
        let (mut a, mut b) = duplex(16);
        a.write_all(b"last").await.unwrap();
        a.close().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
        assert_eq!(
            a.write(b"more").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        // The other direction still works after the half-close.
        b.write_all(b"reply").await.unwrap();
        let mut reply = [0u8; 5];
        a.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"reply");

        // A writer waiting on a full buffer is woken by the reader's drop, with an error.
        let (mut c, d) = duplex(2);
        c.write_all(b"ab").await.unwrap();
        let writer = spawn(async move { c.write_all(b"cd").await });
        overlap::yield_now().await;
        drop(d);
        let res = within(HANG, writer, "the blocked writer was never woken").await;
        assert_eq!(res.unwrap().unwrap_err().kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn a_reader_waiting_on_an_empty_buffer_gets_eof_when_the_writer_drops() {
    block_on(async {
        let (a, mut b) = duplex(8);
        let reader = spawn(async move {
            let mut buf = [0u8; 8];
            b.read(&mut buf).await
        });
        overlap::yield_now().await;
        drop(a);
        let res = within(HANG, reader, "the waiting reader was never woken").await;
        assert_eq!(res.unwrap().unwrap(), 0);
    });
}

/// Reads and writes on a duplex stream spend the task's cooperative budget: a loop that is
/// always ready still lets the other tasks run (and timers fire).
#[test]
fn an_always_ready_duplex_loop_lets_other_tasks_run() {
    block_on(async {
        let ran = std::rc::Rc::new(std::cell::Cell::new(false));
        spawn({
            let ran = ran.clone();
            async move { ran.set(true) }
        });
        let looping = async {
            let (mut a, mut b) = duplex(1);
            let mut byte = [0u8; 1];
            let mut rounds = 0u64;
            while !ran.get() {
                a.write_all(&[7]).await.unwrap();
                b.read_exact(&mut byte).await.unwrap();
                rounds += 1;
                assert!(rounds < 1_000_000, "the other task never ran");
            }
        };
        within(HANG, looping, "the loop never yielded").await;
    });
}

/// One vectored write moves every slice that fits, in order, the last one partly: not just
/// the first slice.
#[test]
fn one_vectored_write_moves_all_the_slices_that_fit_in_order() {
    block_on(async {
        let (mut a, mut b) = duplex(1000);
        let data = pattern_seeded(1400, 3);
        let pieces: Vec<std::io::IoSlice<'_>> = data.chunks(7).map(std::io::IoSlice::new).collect();
        assert_eq!(pieces.len(), 200);
        assert_eq!(a.write_vectored(&pieces[..100]).await.unwrap(), 700);
        // 300 bytes of room left: 42 whole slices and 6 bytes of the 43rd.
        assert_eq!(a.write_vectored(&pieces[100..]).await.unwrap(), 300);
        let mut got = vec![0u8; 1000];
        b.read_exact(&mut got).await.unwrap();
        assert!(got[..] == data[..1000], "bytes out of order or changed");
        let empty = [std::io::IoSlice::new(&[]), std::io::IoSlice::new(&[])];
        assert_eq!(a.write_vectored(&empty).await.unwrap(), 0);
    });
}

/// An end dropped with bytes it wrote still unread: the other end reads them, then end of
/// file (as from a socket closed after its last write), while what the other end wrote and
/// the dropped end never read is discarded, and its next write fails.
#[test]
fn bytes_written_before_a_drop_are_still_read() {
    block_on(async {
        let (mut a, mut b) = duplex(64);
        b.write_all(b"never read").await.unwrap();
        a.write_all(b"last words").await.unwrap();
        drop(a);
        let mut got = Vec::new();
        within(HANG, b.read_to_end(&mut got), "read after the drop")
            .await
            .unwrap();
        assert_eq!(got, b"last words");
        assert_eq!(
            b.write(b"x").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
    });
}

/// `duplex(0)` is taken as 1, as documented: bytes go through one at a time, none lost.
#[test]
fn a_zero_sized_duplex_moves_bytes_one_at_a_time() {
    block_on(async {
        let (mut a, mut b) = duplex(0);
        assert_eq!(a.write(b"abc").await.unwrap(), 1);
        let writer = spawn(async move {
            a.write_all(b"bc").await.unwrap();
            a.close().await.unwrap();
        });
        let mut got = Vec::new();
        within(HANG, b.read_to_end(&mut got), "read through duplex(0)")
            .await
            .unwrap();
        assert_eq!(got, b"abc");
        writer.await.unwrap();
    });
}
