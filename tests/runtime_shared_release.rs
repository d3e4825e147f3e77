//! A runtime's shared state is freed once the last thing that can reach it goes, whichever
//! goes last: the runtime, a task's waker dropped on another thread, or a `JoinHandle`
//! kept past the runtime. Task cells keep it alive by a count the loop mostly keeps without
//! atomics (`task/raw/units.rs`); a count that never returns to zero would leak it, one that
//! reaches zero early would free it under a live cell.
//!
//! Counted with a global allocator: this file holds one test, so nothing else allocates
//! in the process meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use overlap::{spawn, yield_now, Runtime};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One runtime whose tasks outlive it in each way: a waker on another thread, dropped after
/// the runtime; a `JoinHandle` dropped after it; tasks spawned and freed while it runs.
fn one_round() {
    let rt = Runtime::new().unwrap();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (handle, parked) = rt.block_on(async {
        // Cells taken from and given back to the loop's credit.
        for i in 0..3000u64 {
            drop(spawn(async move { std::hint::black_box(i) }));
        }
        let s = slot.clone();
        let parked = spawn(std::future::poll_fn(move |cx| {
            *s.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        let handle = spawn(std::future::pending::<()>());
        while slot.lock().unwrap().is_none() {
            yield_now().await;
        }
        (handle, parked)
    });
    drop(parked);
    let waker = slot.lock().unwrap().take().unwrap();
    let thread = std::thread::spawn(move || waker);
    drop(rt);
    // The other thread's waker is now the last claim on its task; dropping it there frees
    // the cell, and the runtime's shared state with it if the handle went first.
    let waker = thread.join().unwrap();
    let other = std::thread::spawn(move || drop(waker));
    other.join().unwrap();
    drop(handle);
}

#[test]
fn the_shared_state_is_freed_by_whatever_goes_last() {
    // Warm up: thread-locals, the first thread spawn, lazily made statics.
    for _ in 0..3 {
        one_round();
    }
    let before = LIVE.load(Ordering::Relaxed);
    const ROUNDS: isize = 200;
    for _ in 0..ROUNDS {
        one_round();
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    // A leaked runtime state is hundreds of bytes a round; allow a little for caches.
    assert!(
        grown < ROUNDS * 16,
        "{grown} bytes still allocated after {ROUNDS} rounds: something leaks each round"
    );
}
