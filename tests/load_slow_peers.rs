//! Hostile or slow peers: a copy into a connection whose peer never reads, a proxy between an
//! endless writer and a peer that never reads, and an `Unblock` writer into a pipe nobody
//! drains all stall with bounded memory and are not polled while stalled; and a thousand
//! tasks each waiting on its own socket progress while another task loops on always-ready
//! I/O.

// Each test takes the serialising lock before it builds its runtime: the allocation count is
// the whole process's, and another test's runtime being built meanwhile would add to it.

mod support;

use std::cell::Cell;
use std::io::{Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Unblock};
use overlap::task::JoinSet;
use support::counting::{live, serial, Counting};
use support::{tcp_pair, within};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Memory a stalled copy may hold: its buffer and the futures', not what it could not send.
const STALLED_BYTES: usize = 1024 * 1024;

/// An endless reader of zeros that counts what it gave.
struct Endless(Rc<Cell<u64>>);

impl AsyncRead for Endless {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        buf.fill(0);
        self.0.set(self.0.get() + buf.len() as u64);
        Poll::Ready(Ok(buf.len()))
    }
}

/// Waits until `count` stops moving across a few idle turns of the loop: the copy behind it
/// has stalled. Then checks that the loop, left idle a while, polls nothing and that the
/// count stays put.
async fn assert_stalled(count: &Cell<u64>, what: &str) {
    within(
        Duration::from_secs(30),
        async {
            loop {
                let before = count.get();
                overlap::time::sleep(Duration::from_millis(50)).await;
                if count.get() == before && before > 0 {
                    return;
                }
            }
        },
        what,
    )
    .await;
    let before = overlap::metrics();
    let moved = count.get();
    overlap::time::sleep(Duration::from_millis(200)).await;
    let after = overlap::metrics();
    assert_eq!(count.get(), moved, "{what}: bytes still moving");
    // The sleep's own task is polled once; a stalled copy is not polled at all.
    assert!(
        after.task_polls - before.task_polls <= 2,
        "{what}: {} polls while stalled",
        after.task_polls - before.task_polls
    );
}

#[test]
fn a_copy_into_a_connection_that_never_reads_stalls_with_bounded_memory() {
    let _serial = serial();
    overlap::block_on(async {
        let (mut to_peer, _peer_never_reads) = tcp_pair().await;
        let base = live();
        let given = Rc::new(Cell::new(0));
        let source = Endless(given.clone());
        let copy = overlap::spawn(async move { overlap::io::copy(source, &mut to_peer).await });
        assert_stalled(&given, "io::copy into a full socket").await;
        let held = live().saturating_sub(base);
        eprintln!(
            "io::copy stalled after {} bytes, holding {held} bytes",
            given.get()
        );
        assert!(held <= STALLED_BYTES, "{held} bytes held by a stalled copy");
        assert!(!copy.is_finished());
        copy.abort();
    });
}

#[test]
fn a_proxy_between_an_endless_writer_and_a_peer_that_never_reads_stalls_with_bounded_memory() {
    let _serial = serial();
    overlap::block_on(async {
        let (mut client, mut proxy_in) = tcp_pair().await;
        let (mut proxy_out, _server_never_reads) = tcp_pair().await;
        let base = live();
        let sent = Rc::new(Cell::new(0u64));
        let writer = {
            let sent = sent.clone();
            overlap::spawn(async move {
                let chunk = vec![7u8; 64 * 1024];
                loop {
                    let n = client.write(&chunk).await.unwrap();
                    sent.set(sent.get() + n as u64);
                }
            })
        };
        let proxy = overlap::spawn(async move {
            overlap::io::copy_bidirectional(&mut proxy_in, &mut proxy_out).await
        });
        assert_stalled(&sent, "copy_bidirectional towards a full socket").await;
        let held = live().saturating_sub(base);
        eprintln!(
            "copy_bidirectional stalled after {} bytes, holding {held} bytes",
            sent.get()
        );
        assert!(
            held <= STALLED_BYTES,
            "{held} bytes held by a stalled proxy"
        );
        assert!(!proxy.is_finished());
        proxy.abort();
        writer.abort();
    });
}

#[test]
fn an_unblock_writer_into_a_pipe_nobody_drains_stalls_then_delivers_everything() {
    let _serial = serial();
    overlap::block_on(async {
        // Blocking ends, as a blocking writer on the pool would have.
        let (mut reader, write_end) = std::io::pipe().unwrap();
        let base = live();
        let written = Rc::new(Cell::new(0u64));
        const TOTAL: u64 = 16 * 1024 * 1024;
        let writer = {
            let written = written.clone();
            overlap::spawn(async move {
                let mut w = Unblock::new(write_end);
                let chunk = vec![3u8; 4096];
                while written.get() < TOTAL {
                    w.write_all(&chunk).await.unwrap();
                    written.set(written.get() + chunk.len() as u64);
                }
                w.flush().await.unwrap();
            })
        };
        assert_stalled(&written, "Unblock into a full pipe").await;
        let held = live().saturating_sub(base);
        eprintln!(
            "Unblock stalled after {} bytes, holding {held} bytes",
            written.get()
        );
        assert!(
            held <= 4 * STALLED_BYTES,
            "{held} bytes held by a stalled Unblock writer"
        );
        // Once read, everything arrives and the writer finishes.
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0u64;
            while got < TOTAL {
                let n = reader.read(&mut buf).unwrap();
                assert!(n > 0, "the writer stopped early");
                assert!(buf[..n].iter().all(|&b| b == 3));
                got += n as u64;
            }
            got
        });
        within(Duration::from_secs(60), writer, "the writer finishing")
            .await
            .unwrap();
        assert_eq!(drain.join().unwrap(), TOTAL);
    });
}

#[test]
fn a_thousand_waiting_tasks_progress_while_another_loops_on_ready_io() {
    let _serial = serial();
    overlap::block_on(async {
        // The hot task: reads a connection a thread fills without pause, for ever.
        let (mut hot, hot_peer) = tcp_pair().await;
        let hot_peer = hot_peer.into_std().unwrap();
        hot_peer.set_nonblocking(false).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let feeder = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut peer = hot_peer;
                let chunk = [1u8; 16 * 1024];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if peer.write_all(&chunk).is_err() {
                        break;
                    }
                }
            })
        };
        let hot_bytes = Rc::new(Cell::new(0u64));
        let hot_task = {
            let hot_bytes = hot_bytes.clone();
            overlap::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = hot.read(&mut buf).await.unwrap();
                    hot_bytes.set(hot_bytes.get() + n as u64);
                }
            })
        };
        const WAITERS: usize = 1000;
        let mut set = JoinSet::new();
        let mut pokes = Vec::with_capacity(WAITERS);
        for i in 0..WAITERS {
            let (mut mine, poke) = tcp_pair().await;
            pokes.push(poke);
            set.spawn(async move {
                let mut b = [0u8; 1];
                mine.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], i as u8);
            });
        }
        for (i, poke) in pokes.iter_mut().enumerate() {
            poke.write_all(&[i as u8]).await.unwrap();
        }
        let hot_before = hot_bytes.get();
        within(
            Duration::from_secs(60),
            async {
                while let Some(r) = set.join_next().await {
                    r.unwrap();
                }
            },
            "every waiting task being served beside the hot one",
        )
        .await;
        assert!(
            hot_bytes.get() > hot_before,
            "the hot task kept running as well"
        );
        hot_task.abort();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(hot_task);
        overlap::yield_now().await;
        feeder.join().unwrap();
    });
}
