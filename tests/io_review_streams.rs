//! An adversarial review of the io helpers, streams: `duplex` and `simplex` ends dropped
//! while their task waits (no waker of it may stay behind), a mebibyte through a one-byte
//! `duplex`, `split` halves in two tasks that spend their budget, and `copy_bidirectional`
//! whose passing-on of a half-close fails. Reading and buffering are in io_review.rs.

mod support;

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::{
    copy_bidirectional, duplex, simplex, split, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
    DuplexStream,
};
use support::{abandon_slot, within};

const HANG: Duration = Duration::from_secs(60);

/// How many wakers of a task are still held after it waited on `wait` once and dropped
/// it; `wait` owns the end it waits on, so the end goes with it.
fn waker_left_behind<F: std::future::Future>(wait: F) -> usize {
    abandon_slot(wait).wakers_held()
}

#[overlap::test]
async fn a_dropped_memory_pipe_end_keeps_no_waker_of_the_task_that_waited_on_it() {
    // The other end lives on and never reads or writes again: a waker left in the shared
    // buffer would keep the waiting task's memory for as long as it lives.
    let (mut a, b) = duplex(4);
    let held = waker_left_behind(async move { a.read(&mut [0u8; 4]).await });
    assert_eq!(held, 0, "duplex: a reader's waker outlived its end");
    drop(b);

    let (mut a, b) = duplex(4);
    a.write_all(b"full").await.unwrap();
    let held = waker_left_behind(async move { a.write(b"x").await });
    assert_eq!(held, 0, "duplex: a writer's waker outlived its end");
    drop(b);

    let (mut r, w) = simplex(4);
    let held = waker_left_behind(async move { r.read(&mut [0u8; 4]).await });
    assert_eq!(held, 0, "simplex: the reader's waker outlived it");
    drop(w);

    let (r, mut w) = simplex(4);
    w.write_all(b"full").await.unwrap();
    let held = waker_left_behind(async move { w.write(b"x").await });
    assert_eq!(held, 0, "simplex: the writer's waker outlived it");
    drop(r);
}

#[overlap::test]
async fn the_end_left_after_a_waiter_dropped_its_end_sees_eof_and_broken_pipe() {
    let (mut a, mut b) = duplex(4);
    a.write_all(b"hi").await.unwrap();
    abandon_slot(async move { a.read(&mut [0u8; 1]).await });
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hi", "what the dropped end wrote, then end of file");
    let err = b.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
}

/// `len` bytes that show where each sits (a byte lost, doubled or moved shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Writes `send` into `end` while reading `want.len()` bytes from it, in one task.
async fn exchange(end: DuplexStream, send: Vec<u8>, len: usize) -> Vec<u8> {
    let (mut r, mut w) = split(end);
    let mut got = vec![0u8; len];
    let (sent, read) = overlap::join!(
        async {
            w.write_all(&send).await?;
            w.close().await
        },
        r.read_exact(&mut got)
    );
    sent.unwrap();
    read.unwrap();
    let mut more = [0u8; 1];
    assert_eq!(
        r.read(&mut more).await.unwrap(),
        0,
        "end of file after the last byte"
    );
    got
}

#[overlap::test]
async fn a_mebibyte_each_way_through_a_one_byte_duplex_arrives_in_order() {
    const LEN: usize = 1 << 20;
    let (a, b) = duplex(1);
    let (to_b, to_a) = (pattern(LEN, 0x00), pattern(LEN, 0x5a));
    let a_side = overlap::spawn(exchange(a, to_b.clone(), LEN));
    let b_side = overlap::spawn(exchange(b, to_a.clone(), LEN));
    let (at_a, at_b) = within(
        HANG,
        async { (a_side.await.unwrap(), b_side.await.unwrap()) },
        "a mebibyte each way",
    )
    .await;
    assert!(at_b == to_b, "a to b: bytes lost, doubled or reordered");
    assert!(at_a == to_a, "b to a: bytes lost, doubled or reordered");
}

#[overlap::test]
async fn split_halves_in_two_tasks_spending_their_budget_let_a_third_run() {
    // The buffer is never full: each one-byte write is ready at once, so only the budget
    // makes the writing task yield; the reading half waits in its own task.
    const LEN: usize = 10_000;
    let (near, far) = duplex(2 * LEN);
    let (mut far_read, _far_write) = split(far);
    let (_near_read, mut near_write) = split(near);
    let events = Rc::new(RefCell::new(Vec::new()));
    let reader = overlap::spawn(async move {
        let mut got = Vec::new();
        far_read.read_to_end(&mut got).await.unwrap();
        got
    });
    let sent = pattern(LEN, 0x33);
    let (log, bytes) = (events.clone(), sent.clone());
    let writer = overlap::spawn(async move {
        for byte in &bytes {
            assert_eq!(
                near_write.write(std::slice::from_ref(byte)).await.unwrap(),
                1
            );
        }
        log.borrow_mut().push("writes done");
        near_write.close().await.unwrap();
    });
    let log = events.clone();
    let third = overlap::spawn(async move { log.borrow_mut().push("third task ran") });
    within(HANG, writer, "the writing half").await.unwrap();
    let got = within(HANG, reader, "the reading half").await.unwrap();
    third.await.unwrap();
    assert!(
        got == sent,
        "bytes lost, doubled or reordered through the halves"
    );
    assert_eq!(*events.borrow(), ["third task ran", "writes done"]);
}

/// A duplex end whose `poll_close` fails with `NotConnected`, as a shutdown of a socket
/// that the peer already reset may.
struct CloseFails(DuplexStream);

impl AsyncRead for CloseFails {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for CloseFails {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
    }
}

#[overlap::test]
async fn copy_bidirectional_ends_with_the_error_of_a_half_close_it_passes_on() {
    let (mut client, mut proxy_in) = duplex(64);
    let (proxy_out, mut server) = duplex(64);
    let mut proxy_out = CloseFails(proxy_out);
    let proxy =
        overlap::spawn(async move { copy_bidirectional(&mut proxy_in, &mut proxy_out).await });
    server.write_all(b"hello").await.unwrap();
    let mut hello = [0u8; 5];
    client.read_exact(&mut hello).await.unwrap();
    client.write_all(b"bye").await.unwrap();
    client.close().await.unwrap();
    let err = within(HANG, proxy, "the proxy").await.unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    let mut bye = [0u8; 3];
    server.read_exact(&mut bye).await.unwrap();
    assert_eq!(
        (&hello, &bye),
        (b"hello", b"bye"),
        "bytes before the failed close"
    );
}
