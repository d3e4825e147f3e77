//! Task cells released from every side at once while their runtime ends: other threads
//! wake, clone, drop and abort through wakers (made at home and abroad) and `AbortHandle`s,
//! while the runtime thread polls, cancels at shutdown (some futures panicking in their
//! destructors, some spawning more tasks there) and later drops the `JoinHandle`s it kept.
//! Each cell and each payload must go exactly once (CI runs this under valgrind, which also
//! sees a cell or `Shared` freed early or never).

use std::future::{pending, poll_fn, Future};
use std::panic::panic_any;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Waker};
use std::thread;

use overlap::{spawn, yield_now, AbortHandle, Runtime};

/// What a task's code hands to the other threads.
enum Item {
    Waker(Waker),
    Abort(AbortHandle),
}

/// Counts its drops; panics in its destructor if its flag says so.
struct Counted(Arc<AtomicUsize>, bool);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if self.1 {
            panic!("a payload's destructor panics");
        }
    }
}

/// Dropped with a task's future: panics with a counted payload, or spawns a task.
struct OnDrop {
    drops: Arc<AtomicUsize>,
    kind: usize,
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        match self.kind {
            // (Not while the future's own panic unwinds: that would abort.)
            _ if thread::panicking() => {}
            0 => panic_any(Counted(self.drops.clone(), false)),
            1 => panic_any(Counted(self.drops.clone(), true)),
            _ => drop(spawn(async { yield_now().await })),
        }
    }
}

/// A thread that plays with every item it receives until told to stop, then drops them.
fn player(rx: mpsc::Receiver<Item>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut held: Vec<Item> = Vec::new();
        let mut n = 0usize;
        while !stop.load(Ordering::Acquire) || !held.is_empty() {
            while let Ok(item) = rx.try_recv() {
                held.push(item);
            }
            if held.is_empty() {
                thread::yield_now();
                continue;
            }
            n = n.wrapping_mul(31).wrapping_add(7);
            let i = n % held.len();
            match (&held[i], n % 5) {
                (Item::Waker(w), 0) => w.wake_by_ref(),
                (Item::Waker(w), 1) => held.push(Item::Waker(w.clone())),
                (Item::Abort(a), 0) => a.abort(),
                (Item::Abort(a), 1) => {
                    let _ = a.is_finished();
                }
                _ => match held.swap_remove(i) {
                    Item::Waker(w) if n % 2 == 0 => w.wake(),
                    other => drop(other),
                },
            }
            if stop.load(Ordering::Acquire) && held.len() > 4 {
                held.truncate(4);
            }
        }
    })
}

fn round(round: usize) {
    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut players = Vec::new();
    for _ in 0..3 {
        let (tx, rx) = mpsc::channel();
        senders.push(tx);
        players.push(player(rx, stop.clone()));
    }
    let rt = Runtime::new().unwrap();
    let kept = rt.block_on(async {
        let mut kept = Vec::new();
        for i in 0..96usize {
            let tx = senders[i % senders.len()].clone();
            let guard = OnDrop {
                drops: drops.clone(),
                kind: (i + round) % 3,
            };
            made.fetch_add(1, Ordering::SeqCst);
            let handle = spawn(async move {
                let _guard = guard;
                // The home waker (local) and one counted abroad (shared), both sent away.
                poll_fn(|cx: &mut Context<'_>| {
                    let _ = tx.send(Item::Waker(cx.waker().clone()));
                    Poll::Ready(())
                })
                .await;
                for _ in 0..i % 4 {
                    yield_now().await;
                }
                match i % 4 {
                    0 => panic_any(Counted(Arc::new(AtomicUsize::new(0)), i % 8 == 0)),
                    1 => i,
                    _ => pending().await,
                }
            });
            let _ = senders[(i + 1) % senders.len()].send(Item::Abort(handle.abort_handle()));
            match i % 3 {
                0 => kept.push(handle),
                1 => drop(handle),
                _ => {}
            }
        }
        for _ in 0..8 {
            yield_now().await;
        }
        kept
    });
    // Shut down while the other threads still hold and use the tasks' wakers and handles.
    drop(rt);
    for mut handle in kept {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(&mut handle).poll(&mut cx) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => {
                assert!(e.is_cancelled() || e.is_panic());
                // Some payloads panic in their destructor.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(e)));
            }
            Poll::Pending => panic!("a task of a dropped runtime is finished"),
        }
    }
    stop.store(true, Ordering::Release);
    drop(senders);
    for p in players {
        p.join().unwrap();
    }
    assert!(drops.load(Ordering::SeqCst) >= made.load(Ordering::SeqCst));
}

#[test]
fn cells_released_from_every_thread_while_the_runtime_ends_go_once() {
    for r in 0..6 {
        round(r);
    }
}
