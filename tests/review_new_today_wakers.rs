//! An adversarial review of `sync::cross_thread::Semaphore`'s wakers: wakers that call
//! back into the semaphore from `wake`, from their drop and from their clone, and one that
//! panics. The lock must be free whenever user code runs, and no wake may be lost.

mod support;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use overlap::sync::cross_thread::Semaphore;
use overlap::sync::TryAcquireError;
use support::{on_thread_within, quiet_panics};

const HANG: Duration = Duration::from_secs(60);

/// A waker whose `wake` runs `on_wake` (user code that may call back into the semaphore),
/// counting its wakes.
struct Reentrant<F: Fn() + Send + Sync + 'static> {
    on_wake: F,
    wakes: AtomicUsize,
}

impl<F: Fn() + Send + Sync + 'static> Wake for Reentrant<F> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        (self.on_wake)();
    }
}

fn reentrant<F: Fn() + Send + Sync + 'static>(on_wake: F) -> Arc<Reentrant<F>> {
    Arc::new(Reentrant {
        on_wake,
        wakes: AtomicUsize::new(0),
    })
}

/// A waker whose last drop runs `on_drop` (user code run where the semaphore lets a
/// replaced waker go).
struct DropCalls<F: Fn() + Send + Sync + 'static>(F);

impl<F: Fn() + Send + Sync + 'static> Wake for DropCalls<F> {
    fn wake(self: Arc<Self>) {}
}

impl<F: Fn() + Send + Sync + 'static> Drop for DropCalls<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn poll_with<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

/// The first waiter's waker, woken by a release, acquires and releases from inside `wake`:
/// that second release grants the next waiter, and a waker dropped when replaced reads the
/// semaphore. Were the lock held while waking or dropping wakers, this would deadlock.
#[test]
fn a_waker_that_calls_back_into_the_semaphore_neither_deadlocks_nor_loses_a_wake() {
    on_thread_within(HANG, "a re-entrant waker", || {
        let sem = Arc::new(Semaphore::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, log) = (sem.clone(), seen.clone());
        let first_waker = reentrant(move || {
            // The line still holds the second waiter: nothing for a newcomer.
            let refused = s.try_acquire().map(|p| p.num_permits());
            log.lock().unwrap().push(format!("{refused:?}"));
            s.add_permits(1);
        });
        let second_waker = Arc::new(support::WakeCount(AtomicUsize::new(0)));

        let mut first = pin!(sem.clone().acquire_owned());
        let s = sem.clone();
        let reads_on_drop = Waker::from(Arc::new(DropCalls(move || {
            let _ = s.available_permits();
        })));
        assert!(poll_with(first.as_mut(), &reads_on_drop).is_pending());
        drop(reads_on_drop);
        // Polled again with another waker: the one it replaces is dropped, reading the
        // semaphore from its destructor.
        assert!(poll_with(first.as_mut(), &Waker::from(first_waker.clone())).is_pending());
        let mut second = pin!(sem.clone().acquire_owned());
        assert!(poll_with(second.as_mut(), &Waker::from(second_waker.clone())).is_pending());

        sem.add_permits(1);
        assert_eq!(first_waker.wakes.load(Ordering::SeqCst), 1);
        assert_eq!(seen.lock().unwrap().as_slice(), ["Err(NoPermits)"]);
        assert_eq!(
            second_waker.0.load(Ordering::SeqCst),
            1,
            "granted from wake()"
        );
        let noop = Waker::noop();
        let Poll::Ready(Ok(a)) = poll_with(first.as_mut(), noop) else {
            panic!("the first waiter was granted");
        };
        let Poll::Ready(Ok(b)) = poll_with(second.as_mut(), noop) else {
            panic!("the second waiter was granted by the first one's wake");
        };
        assert_eq!((a.num_permits(), b.num_permits()), (1, 1));
        assert_eq!(sem.available_permits(), 0);
        drop((a, b));
        assert_eq!(sem.available_permits(), 2);
    });
}

/// A waker that panics: the release that woke it panics after the fact, yet the waiters
/// behind it are woken, both grants stand, and the semaphore goes on working.
#[test]
fn a_panicking_waker_loses_neither_its_grant_nor_the_wakes_of_the_others() {
    quiet_panics("review: waker boom");
    let sem = Semaphore::new(0);
    let boom = Waker::from(reentrant(|| panic!("review: waker boom")));
    let counting = Arc::new(support::WakeCount(AtomicUsize::new(0)));
    let mut first = pin!(sem.acquire());
    let mut second = pin!(sem.acquire());
    assert!(poll_with(first.as_mut(), &boom).is_pending());
    assert!(poll_with(second.as_mut(), &Waker::from(counting.clone())).is_pending());

    let released = catch_unwind(AssertUnwindSafe(|| sem.add_permits(2)));
    assert!(released.is_err(), "the waker's panic reaches the releaser");
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        1,
        "woken despite the panic"
    );
    let noop = Waker::noop();
    assert!(matches!(
        poll_with(first.as_mut(), noop),
        Poll::Ready(Ok(_))
    ));
    assert!(matches!(
        poll_with(second.as_mut(), noop),
        Poll::Ready(Ok(_))
    ));
    assert_eq!(sem.available_permits(), 2, "both permits back once dropped");
    assert_eq!(sem.try_acquire_many(2).unwrap().num_permits(), 2);
    sem.close();
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
}

/// The semaphore the cloning waker below calls into: a `RawWaker` carries no data here.
static CLONED_INTO: Semaphore = Semaphore::const_new(0);

/// Clones made, each of which read [`CLONED_INTO`] and tried to take a permit of it.
static CLONES: AtomicUsize = AtomicUsize::new(0);

static CALLS_BACK_ON_CLONE: RawWakerVTable =
    RawWakerVTable::new(clone_calling_back, |_| {}, |_| {}, |_| {});

fn clone_calling_back(_: *const ()) -> RawWaker {
    CLONES.fetch_add(1, Ordering::SeqCst);
    let _ = CLONED_INTO.available_permits();
    assert_eq!(
        CLONED_INTO.try_acquire().map(|p| p.num_permits()),
        Err(TryAcquireError::NoPermits)
    );
    RawWaker::new(std::ptr::null(), &CALLS_BACK_ON_CLONE)
}

/// Cloning a waker is user code too: a waker whose clone reads the semaphore and tries to
/// take a permit, given to an acquire that must wait, has it registered (it is woken by
/// the next release) and does not deadlock on the semaphore's lock.
#[test]
fn a_waker_whose_clone_calls_back_into_the_semaphore_does_not_deadlock() {
    on_thread_within(HANG, "a waker cloned under the lock", || {
        // SAFETY: the vtable's functions ignore the data pointer, so null is fine, and
        // they uphold RawWaker's contract (the clone is an equivalent waker).
        let waker =
            unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &CALLS_BACK_ON_CLONE)) };
        let mut acquire = pin!(CLONED_INTO.acquire());
        assert!(poll_with(acquire.as_mut(), &waker).is_pending());
        assert_eq!(CLONES.load(Ordering::SeqCst), 1, "cloned once, to be kept");
        // Polled again with a waker that will_wake the kept one: no clone at all.
        assert!(poll_with(acquire.as_mut(), &waker).is_pending());
        assert_eq!(CLONES.load(Ordering::SeqCst), 1);
        CLONED_INTO.add_permits(1);
        let Poll::Ready(Ok(permit)) = poll_with(acquire.as_mut(), &waker) else {
            panic!("the release granted the waiting acquire");
        };
        assert_eq!(permit.num_permits(), 1);
    });
}
