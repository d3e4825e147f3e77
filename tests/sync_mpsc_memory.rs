//! An unbounded `mpsc` channel gives a burst's memory back once the burst has been read: a
//! queue that once held millions of values does not keep their buffer for its whole life.

mod support;

use overlap::sync::mpsc;
use support::counting::{live, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

#[overlap::test]
async fn a_drained_unbounded_channel_gives_its_burst_memory_back() {
    let (tx, mut rx) = mpsc::unbounded_channel::<[u64; 4]>();
    let before = live();
    for round in 0..3u64 {
        for i in 0..500_000 {
            tx.send([i + round; 4]).unwrap();
        }
        let peak = live() - before;
        assert!(peak >= 500_000 * 32, "the burst is queued ({peak} bytes)");
        let mut n = 0;
        while let Ok(v) = rx.try_recv() {
            assert_eq!(v[0], n + round);
            n += 1;
        }
        assert_eq!(n, 500_000);
        let kept = live().saturating_sub(before);
        assert!(
            kept <= 128 * 1024,
            "round {round}: {kept} bytes kept after the burst was read (peak {peak})"
        );
    }
    // Through `recv` as well.
    for i in 0..100_000 {
        tx.send([i; 4]).unwrap();
    }
    for i in 0..100_000 {
        assert_eq!(rx.recv().await.unwrap()[0], i);
    }
    assert!(live().saturating_sub(before) <= 128 * 1024);
}
