//! A user's CPU-bound job feeding async code, sketched as one would for tokio
//! (`spawn_blocking` with `tx.blocking_send(..)` into a bounded `mpsc`, a task receiving)
//! and then written for overlap. overlap's `mpsc` ends are not `Send`; the two ways its docs
//! point to are tested here end to end: one pool job per chunk with the results forwarded by
//! a task into overlap's `mpsc`, and one long job sending through
//! `mpsc::cross_thread`, whose ends are `Send`, with tokio's very `tx.blocking_send(..)`, so
//! a slow consumer holds it back.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use overlap::sync::mpsc::cross_thread;
use support::within;

const HANG: Duration = Duration::from_secs(20);

/// Some real CPU work: FNV-1a over `len` bytes derived from `seed`, iterated.
fn digest(seed: u64, len: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u64 {
        for i in 0..len as u64 {
            h ^= (seed.wrapping_mul(31) ^ i ^ round) & 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[overlap::test]
async fn one_pool_job_per_chunk_feeds_an_mpsc_in_order() {
    let (tx, mut rx) = mpsc::channel::<(u64, u64)>(2);
    // The producer: one blocking job at a time, each result forwarded (and held back by the
    // bounded channel when the consumer lags).
    let producer = overlap::spawn(async move {
        for seed in 0..40u64 {
            let h = overlap::spawn_blocking(move || digest(seed, 20_000)).await?;
            if tx.send((seed, h)).await.is_err() {
                break; // the consumer left
            }
        }
        Ok::<_, overlap::task::JoinError>(())
    });
    let mut got = Vec::new();
    while let Some(item) = within(HANG, rx.recv(), "a digest").await {
        got.push(item);
        if got.len() % 8 == 0 {
            overlap::time::sleep(Duration::from_millis(1)).await; // a slow consumer
        }
    }
    producer.await.unwrap().unwrap();
    let want: Vec<_> = (0..40).map(|s| (s, digest(s, 20_000))).collect();
    assert_eq!(got, want);
}

#[overlap::test]
async fn a_long_job_streams_through_a_send_channel_with_backpressure() {
    const BUFFER: usize = 3;
    const ITEMS: u64 = 60;
    let (tx, mut rx) = cross_thread::channel::<(u64, u64)>(BUFFER);
    let sent = Arc::new(AtomicUsize::new(0));
    let job_sent = sent.clone();
    let job = overlap::spawn_blocking(move || {
        for seed in 0..ITEMS {
            let item = (seed, digest(seed, 5_000));
            if tx.blocking_send(item).is_err() {
                return false; // the receiver is gone
            }
            job_sent.fetch_add(1, Ordering::SeqCst);
        }
        true
    });
    let mut got = Vec::new();
    while let Some(item) = within(HANG, rx.recv(), "a digest").await {
        got.push(item);
        // The job may be at most the buffer (plus its own slot) ahead of what was taken.
        let ahead = sent.load(Ordering::SeqCst).saturating_sub(got.len());
        assert!(ahead <= BUFFER + 1, "the job ran {ahead} items ahead");
        if got.len() == 10 {
            // Stall: the job fills the channel and must then wait.
            for _ in 0..20 {
                overlap::time::sleep(Duration::from_millis(1)).await;
            }
            let ahead = sent.load(Ordering::SeqCst) - got.len();
            assert!(
                ahead <= BUFFER + 1,
                "the job ran {ahead} items ahead while stalled"
            );
        }
    }
    assert!(within(HANG, job, "the job").await.unwrap());
    let want: Vec<_> = (0..ITEMS).map(|s| (s, digest(s, 5_000))).collect();
    assert_eq!(got, want);
}

#[overlap::test]
async fn the_job_sees_the_consumer_leave() {
    let (tx, rx) = cross_thread::channel::<u64>(1);
    let job = overlap::spawn_blocking(move || {
        let mut sent = 0u64;
        while tx.blocking_send(sent).is_ok() {
            sent += 1;
        }
        sent
    });
    let mut rx = rx.take(5);
    let mut got = Vec::new();
    while let Some(n) = within(HANG, rx.next(), "a number").await {
        got.push(n);
    }
    drop(rx);
    let sent = within(HANG, job, "the job ends").await.unwrap();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!((5..=7).contains(&sent), "sent {sent}");
}
