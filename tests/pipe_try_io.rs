//! `readable`/`writable` and the `try_*` calls on pipes: no waiting, `WouldBlock` when
//! nothing can move (which clears the readiness, so the next wait sleeps), and the pipe's
//! end-of-file and broken-pipe states.

mod support;

use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::pipe;
use overlap::{block_on, spawn};
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[test]
fn try_read_says_would_block_on_an_empty_pipe_then_reads_after_readable_then_eof() {
    block_on(async {
        let (mut tx, rx) = pipe().unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            rx.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        // Nothing is known ready: a wait now is pending, not a spin.
        assert!(rx.readable().now_or_never().is_none());

        tx.write_all(b"hello").await.unwrap();
        within(HANG, rx.readable(), "no read edge").await.unwrap();
        assert_eq!(rx.try_read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");

        // Drained: the next try says WouldBlock, and that clears the readiness.
        assert_eq!(
            rx.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(rx.readable().now_or_never().is_none());

        drop(tx);
        within(HANG, rx.readable(), "no hang-up edge")
            .await
            .unwrap();
        assert_eq!(rx.try_read(&mut buf).unwrap(), 0);
        assert_eq!(rx.try_read(&mut buf).unwrap(), 0, "EOF repeats");
    });
}

#[test]
fn a_cancelled_readable_leaves_the_next_wait_working() {
    block_on(async {
        let (mut tx, rx) = pipe().unwrap();
        // Polled once and dropped: the wait is cancelled while pending.
        assert!(rx.readable().now_or_never().is_none());
        let waiter = async {
            rx.readable().await.unwrap();
            let mut buf = [0u8; 8];
            rx.try_read(&mut buf).unwrap()
        };
        let writer = async {
            overlap::yield_now().await;
            tx.write_all(b"late").await.unwrap();
        };
        let (n, ()) = within(HANG, async { overlap::join!(waiter, writer) }, "no wake").await;
        assert_eq!(n, 4);
    });
}

#[test]
fn try_write_fills_the_pipe_then_writable_waits_for_the_reader() {
    block_on(async {
        let (tx, mut rx) = pipe().unwrap();
        // A new pipe's readiness is unknown until the loop has seen its first edge.
        within(HANG, tx.writable(), "a new pipe is writable")
            .await
            .unwrap();
        let chunk = [7u8; 16 * 1024];
        let mut sent = 0usize;
        loop {
            match tx.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("try_write: {e}"),
            }
            assert!(sent < 1 << 30, "the pipe never filled");
        }
        assert!(sent > 0);
        assert!(
            tx.writable().now_or_never().is_none(),
            "a full pipe must not look writable"
        );
        let reader = spawn(async move {
            let mut got = vec![0u8; sent];
            rx.read_exact(&mut got).await.unwrap();
            assert!(got.iter().all(|&b| b == 7));
            rx
        });
        within(HANG, tx.writable(), "no write edge").await.unwrap();
        assert!(tx.try_write(b"more").unwrap() > 0);
        let rx = reader.await.unwrap();
        drop(rx);
        // Every reader gone: writable returns at once, and the write fails.
        within(HANG, tx.writable(), "no error edge").await.unwrap();
        assert_eq!(
            tx.try_write(b"x").unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
    });
}

#[test]
fn vectored_tries_move_every_slice_in_order() {
    block_on(async {
        let (tx, rx) = pipe().unwrap();
        within(HANG, tx.writable(), "a new pipe is writable")
            .await
            .unwrap();
        // A long run of empty slices first: more than one writev takes.
        let mut out = vec![IoSlice::new(b""); 2000];
        out.push(IoSlice::new(b"head"));
        out.push(IoSlice::new(b""));
        out.push(IoSlice::new(b"body"));
        assert_eq!(tx.try_write_vectored(&out).unwrap(), 8);
        assert_eq!(tx.try_write_vectored(&[IoSlice::new(b"")]).unwrap(), 0);

        within(HANG, rx.readable(), "no read edge").await.unwrap();
        let (mut a, mut b) = ([0u8; 3], [0u8; 16]);
        let mut empties: Vec<[u8; 0]> = vec![[]; 2000];
        let mut bufs: Vec<IoSliceMut<'_>> =
            empties.iter_mut().map(|e| IoSliceMut::new(e)).collect();
        bufs.push(IoSliceMut::new(&mut a));
        bufs.push(IoSliceMut::new(&mut b));
        assert_eq!(rx.try_read_vectored(&mut bufs).unwrap(), 8);
        drop(bufs);
        assert_eq!((&a, &b[..5]), (b"hea", &b"dbody"[..]));
        assert_eq!(rx.try_read_vectored(&mut []).unwrap(), 0);
    });
}

#[test]
fn a_closed_sender_refuses_waits_and_writes() {
    block_on(async {
        let (mut tx, _rx) = pipe().unwrap();
        tx.close().await.unwrap();
        assert_eq!(
            tx.writable().await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        assert_eq!(
            tx.try_write(b"x").unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        assert_eq!(
            tx.try_write_vectored(&[IoSlice::new(b"x")])
                .unwrap_err()
                .kind(),
            ErrorKind::BrokenPipe
        );
    });
}
