//! An unbounded `mpsc` channel gives a burst's memory back once the burst has been read: a
//! queue that once held millions of values does not keep their buffer for its whole life.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use overlap::sync::mpsc;

/// Counts the bytes this test binary has allocated and not freed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[overlap::test]
async fn a_drained_unbounded_channel_gives_its_burst_memory_back() {
    let (tx, mut rx) = mpsc::unbounded_channel::<[u64; 4]>();
    let before = LIVE.load(Ordering::Relaxed);
    for round in 0..3u64 {
        for i in 0..500_000 {
            tx.send([i + round; 4]).unwrap();
        }
        let peak = LIVE.load(Ordering::Relaxed) - before;
        assert!(peak >= 500_000 * 32, "the burst is queued ({peak} bytes)");
        let mut n = 0;
        while let Ok(v) = rx.try_recv() {
            assert_eq!(v[0], n + round);
            n += 1;
        }
        assert_eq!(n, 500_000);
        let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
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
    assert!(LIVE.load(Ordering::Relaxed).saturating_sub(before) <= 128 * 1024);
}
