//! Load on the task set and the sync primitives: a hundred thousand tasks aborted at once, or
//! all waiting on one `Notify`, `Semaphore`, `Mutex` or `watch` and then released, finish in
//! linear time (a CPU-time ceiling far above linear and far below quadratic), and a slow
//! `broadcast` receiver never makes the channel hold more than its capacity.

// Each test takes the serialising lock before it builds its runtime: the allocation count is
// the whole process's, and another test's runtime being built meanwhile would add to it.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{broadcast, watch, Mutex, Notify, Semaphore};
use overlap::task::JoinSet;
use support::counting::{live, serial, thread_cpu, Counting};
use support::{settle, within};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Tasks per scenario: a quadratic step would be 10^10 operations, minutes even optimised.
const N: usize = 100_000;

/// A CPU-time ceiling for N of anything linear, in a debug build on a busy machine: linear
/// work here takes well under a second; quadratic work takes minutes.
const CPU_CEILING: Duration = Duration::from_secs(20);

/// Runs `body`, failing if the thread spent more than [`CPU_CEILING`] of CPU on it.
async fn linear<F: std::future::Future<Output = ()>>(what: &str, body: F) {
    let start = thread_cpu();
    let base = live();
    within(Duration::from_secs(120), body, what).await;
    let used = thread_cpu() - start;
    eprintln!(
        "{what}: {used:?} of CPU, {} bytes kept",
        live() as isize - base as isize
    );
    assert!(used < CPU_CEILING, "{what}: {used:?} of CPU for {N} tasks");
}

#[test]
fn a_join_set_of_a_hundred_thousand_pending_tasks_aborts_and_joins_in_linear_time() {
    let _serial = serial();
    overlap::block_on(async {
        linear("abort_all + join", async {
            let mut set = JoinSet::new();
            for _ in 0..N {
                set.spawn(std::future::pending::<()>());
            }
            settle().await;
            set.abort_all();
            let mut cancelled = 0;
            while let Some(res) = set.join_next().await {
                assert!(res.unwrap_err().is_cancelled());
                cancelled += 1;
            }
            assert_eq!(cancelled, N);
        })
        .await;
        linear("drop a full JoinSet", async {
            let dropped = Rc::new(Cell::new(0));
            let mut set = JoinSet::new();
            for _ in 0..N {
                let dropped = dropped.clone();
                set.spawn(async move {
                    let _count = CountOnDrop(dropped);
                    std::future::pending::<()>().await
                });
            }
            settle().await;
            drop(set);
            settle().await;
            assert_eq!(dropped.get(), N, "every aborted task's future was dropped");
        })
        .await;
    });
}

/// Adds one to its counter when dropped.
struct CountOnDrop(Rc<Cell<usize>>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// `N` tasks waiting on `notify`, each counting its wake in `woken`.
fn spawn_waiters(notify: &Rc<Notify>, woken: &Rc<Cell<usize>>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for _ in 0..N {
        let (notify, woken) = (notify.clone(), woken.clone());
        set.spawn(async move {
            notify.notified().await;
            woken.set(woken.get() + 1);
        });
    }
    set
}

#[test]
fn a_hundred_thousand_waiters_on_one_notify_are_released_in_linear_time() {
    let _serial = serial();
    overlap::block_on(async {
        let notify = Rc::new(Notify::new());
        let woken = Rc::new(Cell::new(0usize));
        linear("notify_waiters", async {
            let mut set = spawn_waiters(&notify, &woken);
            settle().await;
            notify.notify_waiters();
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
            assert_eq!(woken.get(), N);
        })
        .await;
        woken.set(0);
        linear("notify_one each", async {
            let mut set = spawn_waiters(&notify, &woken);
            settle().await;
            for _ in 0..N {
                notify.notify_one();
            }
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
            assert_eq!(woken.get(), N);
        })
        .await;
        linear("waiters given up from the front", async {
            // Every waiter leaves the line in the order it joined (the front each time), the
            // usual order when a burst of requests times out.
            let mut set = JoinSet::new();
            let mut handles = Vec::with_capacity(N);
            for _ in 0..N {
                let notify = notify.clone();
                handles.push(set.spawn(async move { notify.notified().await }));
            }
            settle().await;
            for h in &handles {
                h.abort();
            }
            while let Some(r) = set.join_next().await {
                assert!(r.unwrap_err().is_cancelled());
            }
        })
        .await;
    });
}

#[test]
fn a_hundred_thousand_waiters_on_a_semaphore_are_released_in_linear_time() {
    let _serial = serial();
    overlap::block_on(async {
        let sem = Rc::new(Semaphore::new(0));
        linear("add_permits to a long line", async {
            let mut set = JoinSet::new();
            for _ in 0..N {
                let sem = sem.clone();
                set.spawn(async move { sem.acquire().await.unwrap().forget() });
            }
            settle().await;
            sem.add_permits(N);
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
            assert_eq!(sem.available_permits(), 0);
        })
        .await;
        linear("close with a long line", async {
            let mut set = JoinSet::new();
            for _ in 0..N {
                let sem = sem.clone();
                set.spawn(async move { assert!(sem.acquire().await.is_err()) });
            }
            settle().await;
            sem.close();
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        })
        .await;
    });
}

#[test]
fn a_hundred_thousand_tasks_queued_on_one_mutex_each_get_it_in_linear_time() {
    let _serial = serial();
    overlap::block_on(async {
        let lock = Rc::new(Mutex::new(0usize));
        linear("mutex hand-over", async {
            let guard = lock.lock().await;
            let mut set = JoinSet::new();
            for _ in 0..N {
                let lock = lock.clone();
                set.spawn(async move { *lock.lock().await += 1 });
            }
            settle().await;
            drop(guard);
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
            assert_eq!(*lock.lock().await, N);
        })
        .await;
    });
}

#[test]
fn a_hundred_thousand_watch_receivers_see_one_change_in_linear_time() {
    let _serial = serial();
    overlap::block_on(async {
        let (tx, rx) = watch::channel(0u32);
        linear("watch change", async {
            let mut set = JoinSet::new();
            for _ in 0..N {
                let mut rx = rx.clone();
                set.spawn(async move {
                    rx.changed().await.unwrap();
                    assert_eq!(*rx.borrow_and_update(), 1);
                });
            }
            settle().await;
            tx.send(1).unwrap();
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        })
        .await;
    });
}

#[test]
fn a_broadcast_receiver_that_never_reads_keeps_at_most_the_capacity() {
    let _serial = serial();
    overlap::block_on(async {
        const CAP: usize = 16;
        const VALUE: usize = 4096;
        let (tx, mut slow) = broadcast::channel::<Rc<Vec<u8>>>(CAP);
        let mut fast = tx.subscribe();
        let before = live();
        let mut peak = 0;
        for i in 0..100_000usize {
            tx.send(Rc::new(vec![i as u8; VALUE])).unwrap();
            // The fast receiver keeps up; the slow one never reads.
            assert_eq!(fast.recv().await.unwrap()[0], i as u8);
            peak = peak.max(live().saturating_sub(before));
        }
        eprintln!("broadcast peak: {peak} bytes");
        assert!(
            peak <= (CAP + 2) * (VALUE + 256) + 64 * 1024,
            "{peak} bytes held for a capacity of {CAP} values of {VALUE} bytes"
        );
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n as usize, 100_000 - CAP),
            other => panic!("expected a lag, got {:?}", other.map(|v| v[0])),
        }
        for i in 100_000 - CAP..100_000 {
            assert_eq!(slow.recv().await.unwrap()[0], i as u8);
        }
    });
}

/// Polls each of `futs` once, in order, from the calling task (outside the cooperative
/// budget, which would otherwise stop it after 128); returns what each gave.
async fn poll_each<F: std::future::Future>(
    futs: &mut [std::pin::Pin<Box<F>>],
) -> Vec<std::task::Poll<F::Output>> {
    overlap::task::unconstrained(std::future::poll_fn(|cx| {
        std::task::Poll::Ready(futs.iter_mut().map(|f| f.as_mut().poll(cx)).collect())
    }))
    .await
}

/// What a primitive may keep once a burst of waiters is served and gone.
const KEPT_AFTER_BURST: usize = 128 * 1024;

#[test]
fn a_burst_of_waiters_gives_its_memory_back_once_served() {
    let _serial = serial();
    overlap::block_on(async {
        let sem = Semaphore::new(0);
        let base = live();
        let mut waits: Vec<_> = (0..N).map(|_| Box::pin(sem.acquire())).collect();
        assert!(poll_each(&mut waits).await.iter().all(|p| p.is_pending()));
        sem.add_permits(N);
        for p in poll_each(&mut waits).await {
            let std::task::Poll::Ready(Ok(permit)) = p else {
                panic!("not served")
            };
            permit.forget();
        }
        drop(waits);
        let kept = live().saturating_sub(base);
        eprintln!("semaphore: {kept} bytes kept");
        assert!(
            kept <= KEPT_AFTER_BURST,
            "semaphore: {kept} bytes kept after {N} waiters"
        );

        let notify = Notify::new();
        let base = live();
        let mut waits: Vec<_> = (0..N).map(|_| Box::pin(notify.notified())).collect();
        assert!(poll_each(&mut waits).await.iter().all(|p| p.is_pending()));
        for _ in 0..N {
            notify.notify_one();
        }
        assert!(poll_each(&mut waits).await.iter().all(|p| p.is_ready()));
        drop(waits);
        let kept = live().saturating_sub(base);
        eprintln!("notify: {kept} bytes kept");
        assert!(
            kept <= KEPT_AFTER_BURST,
            "notify: {kept} bytes kept after {N} waiters"
        );

        let lock = Mutex::new(0usize);
        let base = live();
        let guard = lock.lock().await;
        let mut waits: Vec<_> = (0..N).map(|_| Box::pin(lock.lock())).collect();
        assert!(poll_each(&mut waits).await.iter().all(|p| p.is_pending()));
        drop(guard);
        for w in &mut waits {
            let polled = overlap::task::unconstrained(support::poll_once(w.as_mut())).await;
            let std::task::Poll::Ready(mut g) = polled else {
                panic!("the lock was not handed on")
            };
            *g += 1;
        }
        drop(waits);
        assert_eq!(*lock.lock().await, N);
        let kept = live().saturating_sub(base);
        eprintln!("mutex: {kept} bytes kept");
        assert!(
            kept <= KEPT_AFTER_BURST,
            "mutex: {kept} bytes kept after {N} waiters"
        );

        let (tx, _rx) = watch::channel(0u32);
        let base = live();
        let mut receivers: Vec<_> = (0..N).map(|_| tx.subscribe()).collect();
        let mut waits: Vec<_> = receivers
            .iter_mut()
            .map(|rx| Box::pin(rx.changed()))
            .collect();
        assert!(poll_each(&mut waits).await.iter().all(|p| p.is_pending()));
        tx.send(1).unwrap();
        assert!(poll_each(&mut waits).await.iter().all(|p| p.is_ready()));
        drop(waits);
        drop(receivers);
        // The next change prunes the entries of the receivers gone.
        tx.send(2).unwrap();
        let kept = live().saturating_sub(base);
        eprintln!("watch: {kept} bytes kept");
        assert!(
            kept <= KEPT_AFTER_BURST,
            "watch: {kept} bytes kept after {N} receivers"
        );
    });
}

#[test]
fn a_burst_of_tasks_leaves_only_the_task_registry_once_the_loop_is_idle() {
    let _serial = serial();
    let rt = overlap::Runtime::new().unwrap();
    let base = live();
    rt.block_on(async {
        let notify = Rc::new(Notify::new());
        let mut set = JoinSet::new();
        for _ in 0..N {
            let notify = notify.clone();
            set.spawn(async move { notify.notified().await });
        }
        settle().await;
        // All woken at once: the run queue holds every task.
        notify.notify_waiters();
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    // The loop goes idle once more.
    rt.block_on(overlap::time::sleep(Duration::from_millis(1)));
    let kept = live().saturating_sub(base);
    eprintln!("{N} tasks run and gone: {kept} bytes kept");
    // The registry of tasks keeps a 16-byte slot per task at the peak, for reuse (about
    // 2 MiB here); the run queue, as long as the burst, goes back.
    assert!(
        kept <= 2 * 1024 * 1024 + 256 * 1024,
        "{kept} bytes kept once {N} tasks ran"
    );
}

#[test]
fn a_long_lived_join_set_gives_a_burst_of_members_back_once_they_are_joined() {
    let _serial = serial();
    overlap::block_on(async {
        // Grow the runtime's own tables first, so only the set's memory is measured.
        let mut warm = JoinSet::new();
        for _ in 0..N {
            warm.spawn(async {});
        }
        while warm.join_next().await.is_some() {}
        drop(warm);
        overlap::time::sleep(Duration::from_millis(1)).await;
        let base = live();
        // A server's set of connections: it lives on after a burst.
        let mut set = JoinSet::new();
        for round in 0..2 {
            for i in 0..N {
                set.spawn(async move { i });
            }
            let mut sum = 0;
            while let Some(r) = set.join_next().await {
                sum += r.unwrap();
            }
            assert_eq!(sum, N * (N - 1) / 2);
            overlap::time::sleep(Duration::from_millis(1)).await;
            let kept = live().saturating_sub(base);
            eprintln!("round {round}: an empty set that held {N} tasks keeps {kept} bytes");
            assert!(
                kept <= KEPT_AFTER_BURST,
                "round {round}: {kept} bytes kept by an empty set"
            );
        }
        set.spawn(async { 7 });
        assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
    });
}
