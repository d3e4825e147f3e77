//! `poll_recv_many` on both mpsc channels and `blocking_recv_many` on the cross-thread one
//! (tokio's): batches of at most the limit, in order, nothing lost or repeated, `0` only
//! at the end.

mod support;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::stream::Stream;
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use overlap::sync::mpsc::cross_thread;
use overlap::{block_on, spawn, spawn_blocking};
use support::{tcp_pair, within};

const HANG: Duration = Duration::from_secs(30);

/// A stream of batches of at most `limit` values, written by hand on `poll_recv_many`.
struct Batches<T> {
    rx: mpsc::Receiver<T>,
    limit: usize,
}

impl<T> Stream for Batches<T> {
    type Item = Vec<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<T>>> {
        let me = self.get_mut();
        let mut batch = Vec::new();
        match me.rx.poll_recv_many(cx, &mut batch, me.limit) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(0) => Poll::Ready(None),
            Poll::Ready(n) => {
                assert_eq!(n, batch.len(), "the count is what was moved");
                Poll::Ready(Some(batch))
            }
        }
    }
}

/// Lines read off a TCP socket go through a bounded channel; a hand-written batching
/// stream over `poll_recv_many` gives every line once, in order, in batches of at most 16,
/// and ends when the reader task ends.
#[test]
fn a_hand_written_batch_stream_gets_every_tcp_line_once_in_order() {
    block_on(async {
        let (mut client, server) = tcp_pair().await;
        let (tx, rx) = mpsc::channel(8);
        spawn(async move {
            let mut lines = BufReader::new(server).lines();
            while let Some(line) = lines.next().await {
                tx.send(line.unwrap()).await.unwrap();
            }
        });
        spawn(async move {
            for i in 0..1000 {
                client
                    .write_all(format!("line {i}\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let mut batches = Batches { rx, limit: 16 };
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        let collect = async {
            while let Some(batch) = batches.next().await {
                sizes.push(batch.len());
                all.extend(batch);
            }
        };
        within(HANG, collect, "the batches stalled").await;
        let expected: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
        assert_eq!(all, expected);
        assert!(sizes.iter().all(|&n| (1..=16).contains(&n)), "{sizes:?}");
        assert!(
            sizes.iter().any(|&n| n > 1),
            "never more than one at a time"
        );
    });
}

/// The cross-thread receiver's `poll_recv_many`, fed by a plain thread: `Pending` while
/// empty, then batches, then `0` once the thread's sender is gone; a limit of 0 is `0` at
/// once and takes nothing.
#[test]
fn cross_thread_poll_recv_many_batches_a_plain_threads_values() {
    block_on(async {
        let (tx, mut rx) = cross_thread::channel(4);
        let mut batch = Vec::new();
        std::future::poll_fn(|cx| {
            assert!(rx.poll_recv_many(cx, &mut batch, 3).is_pending());
            Poll::Ready(())
        })
        .await;
        let producer = std::thread::spawn(move || {
            for i in 0..100u32 {
                tx.blocking_send(i).unwrap();
            }
        });
        let mut all = Vec::new();
        loop {
            let got = std::future::poll_fn(|cx| rx.poll_recv_many(cx, &mut all, 3));
            let n = within(HANG, got, "the cross-thread batch stalled").await;
            assert!(n <= 3);
            if n == 0 {
                break;
            }
        }
        producer.join().unwrap();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let zero = std::future::poll_fn(|cx| rx.poll_recv_many(cx, &mut all, 0)).await;
        assert_eq!(zero, 0);
    });
}

/// A `spawn_blocking` job drains a cross-thread channel with `blocking_recv_many` while
/// the runtime's task sends: every value once, in order, batches within the limit, then `0`.
#[test]
fn blocking_recv_many_in_a_pool_job_drains_what_a_task_sends() {
    block_on(async {
        let (tx, mut rx) = cross_thread::channel::<u32>(16);
        let job = spawn_blocking(move || {
            let (mut all, mut sizes) = (Vec::new(), Vec::new());
            assert_eq!(rx.blocking_recv_many(&mut all, 0), 0, "limit 0");
            loop {
                let n = rx.blocking_recv_many(&mut all, 10);
                if n == 0 {
                    return (all, sizes);
                }
                sizes.push(n);
            }
        });
        for i in 0..500 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let (all, sizes) = within(HANG, job, "the pool job never ended").await.unwrap();
        assert_eq!(all, (0..500).collect::<Vec<_>>());
        assert!(sizes.iter().all(|&n| (1..=10).contains(&n)), "{sizes:?}");
    });
}

/// On the thread of a runtime's `block_on` it would stop the loop: it panics, naming
/// itself and what to call instead.
#[test]
fn blocking_recv_many_on_a_block_on_thread_panics_naming_itself() {
    let panic = std::panic::catch_unwind(|| {
        block_on(async {
            let (_tx, mut rx) = cross_thread::channel::<u8>(1);
            rx.blocking_recv_many(&mut Vec::new(), 4)
        })
    })
    .unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("blocking_recv_many"), "{msg}");
    assert!(msg.contains("recv_many(..).await"), "{msg}");
}
