//! `overlap::sync::cross_thread::Semaphore`: permits shared by threads, runtimes and
//! `spawn_blocking` jobs, handed out in the order asked; what closing, adding, forgetting,
//! merging and splitting do; and that its futures run under any executor. The randomized
//! many-thread run is in `sync_cross_thread_semaphore_stress.rs`.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use overlap::sync::cross_thread::{
    Acquire, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
};
use overlap::sync::{AcquireError, TryAcquireError};
use support::{on_thread_within, panic_message, park_on, polled, within};

const HANG: Duration = Duration::from_secs(20);

fn assert_send_sync<T: Send + Sync>() {}

/// `fut`, telling `told` the first time it waits: its waker is registered by then, so a
/// release or a close after the message must wake it.
async fn telling_when_queued<F: Future>(fut: F, told: Sender<()>) -> F::Output {
    let mut fut = pin!(fut);
    let mut told = Some(told);
    std::future::poll_fn(|cx| {
        let res = fut.as_mut().poll(cx);
        if res.is_pending() {
            if let Some(t) = told.take() {
                t.send(()).unwrap();
            }
        }
        res
    })
    .await
}

/// A thread with a runtime of its own, awaiting `sem.acquire_many(n)` and returning what it
/// got; `queued` hears when it waits. The permit is dropped on that thread.
fn waiter_thread(
    sem: &Arc<Semaphore>,
    n: u32,
    queued: &Sender<()>,
) -> JoinHandle<Result<usize, AcquireError>> {
    let (sem, queued) = (sem.clone(), queued.clone());
    thread::spawn(move || {
        overlap::block_on(async move {
            let acquire = telling_when_queued(sem.acquire_many(n), queued);
            let permit = within(HANG, acquire, "the waiter was never woken").await?;
            Ok(permit.num_permits())
        })
    })
}

/// Waits for `n` threads to be queued.
fn wait_queued(heard: &std::sync::mpsc::Receiver<()>, n: usize) {
    for _ in 0..n {
        heard.recv_timeout(HANG).expect("a waiter never queued");
    }
}

#[test]
fn the_semaphore_its_futures_and_its_permits_are_send_and_sync() {
    assert_send_sync::<Semaphore>();
    assert_send_sync::<Acquire<'static>>();
    assert_send_sync::<AcquireOwned>();
    assert_send_sync::<SemaphorePermit<'static>>();
    assert_send_sync::<OwnedSemaphorePermit>();
    // And an acquire started on one thread completes on another, woken by a third.
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.clone().try_acquire_owned().unwrap();
    let mut acquire = polled(sem.clone().acquire_owned());
    assert!(acquire.poll().is_pending(), "the only permit is held");
    thread::spawn(move || drop(held)).join().unwrap();
    assert!(
        acquire.is_woken(),
        "the drop on another thread woke the waiter"
    );
    let finisher = thread::spawn(move || match acquire.poll() {
        Poll::Ready(permit) => permit.unwrap().num_permits(),
        Poll::Pending => panic!("woken, yet still waiting"),
    });
    assert_eq!(finisher.join().unwrap(), 1);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn acquires_wait_and_complete_under_an_executor_that_is_not_overlap() {
    on_thread_within(HANG, "acquire under a foreign executor", || {
        let sem = Arc::new(Semaphore::new(0));
        let (queued, heard) = channel();
        let waiters: Vec<_> = [2u32, 1]
            .into_iter()
            .map(|n| {
                let (sem, queued) = (sem.clone(), queued.clone());
                thread::spawn(move || {
                    park_on(telling_when_queued(sem.acquire_many_owned(n), queued))
                        .map(|p| p.num_permits())
                })
            })
            .collect();
        wait_queued(&heard, 2);
        sem.add_permits(3);
        let got: Vec<_> = waiters.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(got, [Ok(2), Ok(1)]);
        assert_eq!(
            sem.available_permits(),
            3,
            "both permits dropped on their threads"
        );
        // Zero permits are granted at once, even with nothing free.
        let zero = Semaphore::new(0);
        assert_eq!(park_on(zero.acquire_many(0)).unwrap().num_permits(), 0);
    });
}

#[test]
fn waiters_queued_in_a_known_order_are_served_in_that_order() {
    on_thread_within(HANG, "FIFO waiters", || {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.try_acquire().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Each acquire joins the line here, in order, then moves to a thread of its own.
        let waiters: Vec<_> = (0..6)
            .map(|i| {
                let mut acquire = Box::pin(sem.clone().acquire_owned());
                let noop = Waker::noop();
                let first = acquire.as_mut().poll(&mut Context::from_waker(noop));
                assert!(first.is_pending(), "waiter {i} got a held permit");
                let order = order.clone();
                thread::spawn(move || {
                    overlap::block_on(async move {
                        let permit = within(HANG, acquire, "never served").await.unwrap();
                        // Recorded while the permit is held: the next is served after.
                        order.lock().unwrap().push(i);
                        drop(permit);
                    })
                })
            })
            .collect();
        drop(held);
        waiters.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn a_big_request_at_the_head_of_the_line_holds_back_smaller_ones_behind_it() {
    on_thread_within(HANG, "a big request first", || {
        let sem = Arc::new(Semaphore::new(3));
        let two = sem.try_acquire_many(2).unwrap();
        let (queued, heard) = channel();
        let big = waiter_thread(&sem, 3, &queued);
        wait_queued(&heard, 1);
        // One permit is free, but it is set aside for the big request.
        assert_eq!(sem.available_permits(), 0);
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
        let mut small = polled(sem.acquire());
        assert!(
            small.poll().is_pending(),
            "a small request overtook a big one"
        );
        drop(two);
        assert_eq!(big.join().unwrap(), Ok(3));
        // The big one dropped its three: the small one behind it is served.
        assert!(small.is_woken());
        match small.poll() {
            Poll::Ready(p) => assert_eq!(p.unwrap().num_permits(), 1),
            Poll::Pending => panic!("the small request still waits"),
        }
        assert_eq!(sem.available_permits(), 3);
    });
}

#[test]
fn a_cancelled_big_request_at_the_head_lets_the_smaller_ones_behind_it_go() {
    let sem = Semaphore::new(3);
    let held = sem.try_acquire_many(2).unwrap();
    let mut big = polled(sem.acquire_many(3));
    let mut small = polled(sem.acquire());
    assert!(big.poll().is_pending());
    assert!(small.poll().is_pending());
    big.cancel();
    assert!(
        small.is_woken(),
        "the head left: the free permit serves the next"
    );
    let Poll::Ready(Ok(permit)) = small.poll() else {
        panic!("the small request still waits");
    };
    assert_eq!((permit.num_permits(), sem.available_permits()), (1, 0));
    drop((permit, held));
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn permits_granted_to_an_acquire_dropped_before_it_looked_go_to_the_next_waiter() {
    let sem = Arc::new(Semaphore::new(2));
    let held = sem.clone().try_acquire_many_owned(2).unwrap();
    let mut first = polled(sem.clone().acquire_many_owned(2));
    let mut second = polled(sem.clone().acquire_many_owned(2));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    thread::spawn(move || drop(held)).join().unwrap();
    assert!(first.is_woken(), "the release granted the first waiter");
    assert!(!second.is_woken(), "one grant, to the first only");
    first.cancel(); // granted, never polled: its two permits move on
    assert!(second.is_woken());
    let Poll::Ready(Ok(permit)) = second.poll() else {
        panic!("the permits of the dropped grant were lost");
    };
    assert_eq!(permit.num_permits(), 2);
    drop(permit);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn owned_permits_moved_into_spawn_blocking_jobs_cap_how_many_run_at_once() {
    overlap::block_on(async {
        let sem = Arc::new(Semaphore::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // The first two jobs meet here: both run at once, which two permits allow.
        let first_two = Arc::new(Barrier::new(2));
        let mut jobs = Vec::new();
        for n in 0..8u64 {
            let permit = within(HANG, sem.clone().acquire_owned(), "no permit came back")
                .await
                .unwrap();
            let (running, most, first_two) = (running.clone(), most.clone(), first_two.clone());
            jobs.push(overlap::spawn_blocking(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if n < 2 {
                    first_two.wait();
                }
                running.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                n * 10
            }));
        }
        let mut got = Vec::new();
        for job in jobs {
            got.push(within(HANG, job, "a job never ended").await.unwrap());
        }
        assert_eq!(got, [0, 10, 20, 30, 40, 50, 60, 70]);
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn close_wakes_the_waiters_of_every_thread_with_acquire_error_and_held_permits_stay_valid() {
    on_thread_within(HANG, "close", || {
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.clone().try_acquire_many_owned(2).unwrap();
        let (queued, heard) = channel();
        let waiters: Vec<_> = [1, 2, 1].map(|n| waiter_thread(&sem, n, &queued)).into();
        wait_queued(&heard, 3);
        sem.close();
        assert!(sem.is_closed());
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(AcquireError));
        }
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
        assert_eq!(held.num_permits(), 2, "a held permit outlives the close");
        thread::spawn(move || drop(held)).join().unwrap();
        assert_eq!(sem.available_permits(), 2, "and comes back when dropped");
        let later = overlap::block_on(sem.acquire());
        assert_eq!(later.unwrap_err(), AcquireError);
    });
}

#[test]
fn add_permits_wakes_waiters_on_other_threads_in_line_order() {
    on_thread_within(HANG, "add_permits", || {
        let sem = Arc::new(Semaphore::new(0));
        let (queued, heard) = channel();
        let two = waiter_thread(&sem, 2, &queued);
        wait_queued(&heard, 1);
        let one = waiter_thread(&sem, 1, &queued);
        wait_queued(&heard, 1);
        let mut third = polled(sem.acquire());
        assert!(third.poll().is_pending());
        sem.add_permits(1); // the head wants two: nobody is served yet
        assert_eq!(sem.available_permits(), 0);
        assert!(!third.is_woken());
        sem.add_permits(2); // now the head, then the one behind it
        assert_eq!(two.join().unwrap(), Ok(2));
        assert_eq!(one.join().unwrap(), Ok(1));
        // Their permits came back when the threads dropped them: the third is served too.
        assert!(third.is_woken());
        assert!(matches!(third.poll(), Poll::Ready(Ok(_))));
        assert_eq!(sem.available_permits(), 3);
    });
}

#[test]
fn forget_and_forget_permits_take_permits_out_for_good() {
    let sem = Arc::new(Semaphore::new(5));
    sem.try_acquire_many(2).unwrap().forget();
    assert_eq!(sem.available_permits(), 3);
    let owned = sem.clone().try_acquire_owned().unwrap();
    thread::spawn(move || owned.forget()).join().unwrap();
    assert_eq!(sem.available_permits(), 2);
    // Only free permits: held ones are not touched, and neither are those set aside.
    let held = sem.try_acquire().unwrap();
    assert_eq!(sem.forget_permits(4), 1);
    let mut waiting = polled(sem.acquire_many(2));
    assert!(waiting.poll().is_pending());
    drop(held);
    assert!(!waiting.is_woken(), "one permit is not two");
    assert_eq!(
        sem.forget_permits(1),
        0,
        "the free permit is set aside for the waiter"
    );
    sem.add_permits(1);
    let Poll::Ready(Ok(two)) = waiting.poll() else {
        panic!("the waiter lost its set-aside permit");
    };
    drop(two);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn merge_and_split_move_permits_and_merging_across_semaphores_panics() {
    let a = Arc::new(Semaphore::new(4));
    let b = Arc::new(Semaphore::new(4));
    let mut mine = a.clone().try_acquire_many_owned(1).unwrap();
    mine.merge(a.clone().try_acquire_many_owned(2).unwrap());
    assert_eq!((mine.num_permits(), a.available_permits()), (3, 1));
    let part = mine.split(2).unwrap();
    assert!(mine.split(2).is_none(), "one left: nothing moves");
    assert_eq!(mine.num_permits(), 1);
    assert!(Arc::ptr_eq(part.semaphore(), &a));
    thread::spawn(move || drop(part)).join().unwrap();
    assert_eq!(a.available_permits(), 3);

    let other = b.clone().try_acquire_owned().unwrap();
    let owned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mine.merge(other)));
    let message = panic_message(owned.unwrap_err());
    assert_eq!(message, "merging permits of different semaphores");
    assert_eq!(
        b.available_permits(),
        4,
        "the other permit went home as it dropped"
    );
    assert_eq!(mine.num_permits(), 1, "and added nothing");

    let mut borrowed = a.try_acquire().unwrap();
    let foreign = b.try_acquire().unwrap();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| borrowed.merge(foreign)));
    assert_eq!(
        panic_message(res.unwrap_err()),
        "merging permits of different semaphores"
    );
    assert_eq!((borrowed.num_permits(), a.available_permits()), (1, 2));
    assert_eq!(b.available_permits(), 4);
    drop((borrowed, mine));
    assert_eq!(a.available_permits(), 4);
}

#[test]
fn permits_past_max_permits_panic_in_new_and_add_permits_adding_nothing() {
    assert_eq!(Semaphore::MAX_PERMITS, usize::MAX >> 3);
    let full = Semaphore::new(Semaphore::MAX_PERMITS);
    assert_eq!(full.available_permits(), Semaphore::MAX_PERMITS);
    let past = std::panic::catch_unwind(|| Semaphore::new(Semaphore::MAX_PERMITS + 1));
    assert_eq!(
        panic_message(past.unwrap_err()),
        "a semaphore holds at most Semaphore::MAX_PERMITS permits"
    );

    let sem = Semaphore::new(Semaphore::MAX_PERMITS - 1);
    sem.add_permits(1);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sem.add_permits(1)));
    assert_eq!(
        panic_message(res.unwrap_err()),
        format!(
            "number of added permits (1) would overflow Semaphore::MAX_PERMITS ({})",
            Semaphore::MAX_PERMITS
        )
    );
    assert_eq!(
        sem.available_permits(),
        Semaphore::MAX_PERMITS,
        "nothing added"
    );
    // The lock is not left poisoned, nor the semaphore broken.
    assert_eq!(sem.try_acquire().unwrap().num_permits(), 1);
}

#[test]
fn one_limit_shared_by_the_tasks_of_two_runtimes_on_two_threads() {
    on_thread_within(HANG, "two runtimes", || {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let runtimes: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
                thread::spawn(move || {
                    overlap::block_on(async move {
                        let tasks: Vec<_> = (0..5)
                            .map(|_| {
                                let (sem, inside, most) =
                                    (sem.clone(), inside.clone(), most.clone());
                                overlap::spawn(async move {
                                    for _ in 0..20 {
                                        let p = sem.acquire_many(1).await.unwrap();
                                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                                        most.fetch_max(now, Ordering::SeqCst);
                                        overlap::task::yield_now().await;
                                        inside.fetch_sub(1, Ordering::SeqCst);
                                        drop(p);
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    })
                })
            })
            .collect();
        runtimes.into_iter().for_each(|t| t.join().unwrap());
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "more holders than permits"
        );
        assert_eq!(sem.available_permits(), 3);
    });
}

#[test]
fn an_always_ready_acquire_loop_lets_the_other_tasks_of_its_runtime_run() {
    overlap::block_on(async {
        let sem = Arc::new(Semaphore::new(1));
        let steps = support::steps_before_another_task_runs(10_000, move || {
            let sem = sem.clone();
            async move {
                drop(sem.acquire().await.unwrap());
                true
            }
        })
        .await;
        assert!(steps < 10_000, "the acquire loop never yielded");
    });
}
