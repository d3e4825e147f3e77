//! A `Handle` spawn that races the runtime's drop, and whose maker's destructor spawns more
//! (background work started from a destructor, as `try_spawn`'s docs suggest): every future
//! is dropped and every handle resolves. Such a spawn used to be dropped by the last step of
//! the shutdown, on the runtime thread with the runtime still current, and the spawns its
//! destructor made landed in a run queue that nothing ran or dropped.
//!
//! Made deterministic without touching the runtime: the foreign thread's `push_spawn` holds
//! the remote queue's lock while its `Vec::push` allocates; an allocator hook (armed on that
//! thread only, for exactly that allocation) parks it there while the runtime is dropped.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

struct Hook;

static PARKED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to System.
unsafe impl GlobalAlloc for Hook {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // The first push into `Remote::spawns` (capacity 4 of a 16-byte `RemoteSpawn`).
        if l.size() == 64 && l.align() == 8 && ARMED.try_with(|a| a.replace(false)).unwrap_or(false)
        {
            PARKED.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Hook = Hook;

static INNER_MADE: AtomicUsize = AtomicUsize::new(0);
static INNER_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts its drop: stands for any resource a future owns (a socket, a channel end).
struct Tracked;
impl Drop for Tracked {
    fn drop(&mut self) {
        INNER_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Captured by the queued spawn's maker: its destructor starts background work, as
/// `try_spawn`'s docs suggest ("a destructor that wants to finish work in the background").
struct SpawnOnDrop(
    Option<mpsc::Sender<overlap::RemoteJoinHandle<u32>>>,
    overlap::Handle,
);
impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let t = Tracked;
        INNER_MADE.fetch_add(1, Ordering::SeqCst);
        if let Ok(h) = overlap::try_spawn(async move {
            let _t = t;
            std::future::pending::<()>().await
        }) {
            drop(h);
        }
        // And through the runtime's own Handle: its RemoteJoinHandle must report cancelled.
        let t2 = Tracked;
        INNER_MADE.fetch_add(1, Ordering::SeqCst);
        let rjh = self.1.spawn(async move {
            let _t = t2;
            7u32
        });
        if let Some(tx) = self.0.take() {
            let _ = tx.send(rjh);
        }
    }
}

#[test]
fn spawns_made_by_a_destructor_during_shutdown_are_dropped_and_resolve() {
    let rt = overlap::Runtime::new().unwrap();
    let h = rt.handle();
    let (tx, rx) = mpsc::channel();
    let h2 = h.clone();
    let foreign = std::thread::spawn(move || {
        let guard = SpawnOnDrop(Some(tx), h2.clone());
        let big = [0u8; 512]; // keeps the cell's allocation away from 64 bytes
        ARMED.with(|a| a.set(true));
        let jh = h2.spawn_with(move || {
            let _g = guard;
            let _b = big;
            async {}
        });
        ARMED.with(|a| a.set(false));
        jh
    });
    while !PARKED.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // The foreign thread holds the remote lock, its spawn not yet queued.
    drop(rt);
    let outer = foreign.join().unwrap();
    // The queued spawn was dropped by `close`: its handle says cancelled.
    let outer = overlap::block_on(outer);
    assert!(outer.unwrap_err().is_cancelled());

    let inner = rx
        .recv_timeout(Duration::from_secs(1))
        .expect("destructor ran");
    // Awaiting the inner spawn's handle must end (output or cancelled) once the runtime is gone.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = overlap::block_on(inner);
        let _ = done_tx.send(r.map_err(|e| e.to_string()));
    });
    let inner_result = done_rx.recv_timeout(Duration::from_secs(2));
    let made = INNER_MADE.load(Ordering::SeqCst);
    let dropped = INNER_DROPPED.load(Ordering::SeqCst);
    eprintln!(
        "inner futures made {made}, dropped {dropped}; inner RemoteJoinHandle: {inner_result:?}"
    );
    assert_eq!(
        made, dropped,
        "futures spawned during Shared::close are never dropped"
    );
    assert!(
        inner_result.is_ok(),
        "RemoteJoinHandle of a spawn made during close never resolves"
    );
}
