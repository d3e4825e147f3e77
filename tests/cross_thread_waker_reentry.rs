//! Cloning a waker is user code: a custom `RawWakerVTable::clone` may call back into the
//! very primitive the waker is being registered with. The cross-thread primitives keep
//! their state under a std `Mutex`, which is not re-entrant, so each must clone with its
//! lock released, then look again under it before it registers (no wake is lost: a value,
//! a free slot or a close that came during the clone is seen), and clone nothing when the
//! same task polls again. Each test runs on a thread of its own, so a deadlock fails it
//! instead of hanging the suite: `oneshot::cross_thread`'s receiver and `Sender::closed`,
//! `SetOnce::wait` (and `sync::cross_thread::Semaphore`'s acquire, in
//! `review_new_today_wakers.rs`). `mpsc::cross_thread` still clones under its lock: doing
//! it outside cost its cross-thread ping-pong a third of its speed (see its docs).

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use overlap::sync::oneshot::cross_thread as oneshot;
use overlap::sync::SetOnce;
use support::on_thread_within;

const HANG: Duration = Duration::from_secs(60);

thread_local! {
    /// What a clone of this thread's calling-back waker runs before it returns.
    static ON_CLONE: RefCell<Option<Rc<dyn Fn()>>> = RefCell::new(None);
    /// Clones made of this thread's calling-back waker.
    static CLONES: Cell<usize> = const { Cell::new(0) };
    /// Wakes of this thread's calling-back waker (all come from this thread here).
    static WAKES: Cell<usize> = const { Cell::new(0) };
}

static CALLS_BACK_ON_CLONE: RawWakerVTable =
    RawWakerVTable::new(clone_calling_back, count_wake, count_wake, |_| {});

fn clone_calling_back(_: *const ()) -> RawWaker {
    CLONES.with(|c| c.set(c.get() + 1));
    // Taken out of the cell first: the call may clone again.
    let call = ON_CLONE.with(|f| f.borrow().clone());
    if let Some(call) = call {
        call();
    }
    RawWaker::new(std::ptr::null(), &CALLS_BACK_ON_CLONE)
}

fn count_wake(_: *const ()) {
    WAKES.with(|w| w.set(w.get() + 1));
}

/// A waker each clone of which runs `on_clone` on this thread. Every such waker is the same
/// one (`will_wake` holds between any two), so a future polled again with it keeps the
/// waker it stored and must not clone it again.
fn calling_back_on_clone(on_clone: impl Fn() + 'static) -> Waker {
    ON_CLONE.with(|f| *f.borrow_mut() = Some(Rc::new(on_clone)));
    // SAFETY: the vtable's functions ignore the data pointer, so null is fine, and they
    // uphold RawWaker's contract (a clone is an equivalent waker; wake and drop free nothing).
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &CALLS_BACK_ON_CLONE)) }
}

fn clones() -> usize {
    CLONES.with(Cell::get)
}

fn wakes() -> usize {
    WAKES.with(Cell::get)
}

fn poll_with<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

/// A oneshot receive whose waker's clone sends the value: it is returned at once.
#[test]
fn a_oneshot_receive_whose_waker_clone_sends_returns_the_value() {
    on_thread_within(HANG, "oneshot recv, clone sends", || {
        let (tx, rx) = oneshot::channel::<u32>();
        let tx = Mutex::new(Some(tx));
        let waker = calling_back_on_clone(move || {
            if let Some(tx) = tx.lock().unwrap().take() {
                tx.send(42).unwrap();
            }
        });
        let mut rx = pin!(rx);
        assert_eq!(poll_with(rx.as_mut(), &waker), Poll::Ready(Ok(42)));
        assert_eq!((clones(), wakes()), (1, 0));
    });
}

/// A oneshot receive whose waker's clone reads the sender: it waits, polled again clones
/// nothing, and the send wakes it.
#[test]
fn a_oneshot_receive_whose_waker_clone_reads_the_channel_waits_and_is_woken() {
    on_thread_within(HANG, "oneshot recv, clone reads", || {
        let (tx, rx) = oneshot::channel::<u32>();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let sender = tx.clone();
        let waker = calling_back_on_clone(move || {
            let closed = sender
                .lock()
                .unwrap()
                .as_ref()
                .map(oneshot::Sender::is_closed);
            assert_eq!(closed, Some(false));
        });
        let mut rx = pin!(rx);
        assert!(poll_with(rx.as_mut(), &waker).is_pending());
        assert!(poll_with(rx.as_mut(), &waker).is_pending());
        assert_eq!(clones(), 1);
        let tx = tx.lock().unwrap().take().unwrap();
        tx.send(5).unwrap();
        assert_eq!(wakes(), 1);
        assert_eq!(poll_with(rx.as_mut(), &waker), Poll::Ready(Ok(5)));
    });
}

/// A oneshot `Sender::closed` whose waker's clone reads the receiver: it waits, polled
/// again clones nothing, and the receiver's close wakes it.
#[test]
fn a_oneshot_closed_whose_waker_clone_reads_the_receiver_waits_for_the_close() {
    on_thread_within(HANG, "oneshot closed, clone reads", || {
        let (mut tx, rx) = oneshot::channel::<u32>();
        let rx = Arc::new(Mutex::new(rx));
        let receiver = rx.clone();
        let waker = calling_back_on_clone(move || assert!(receiver.lock().unwrap().is_empty()));
        {
            let mut closed = pin!(tx.closed());
            assert!(poll_with(closed.as_mut(), &waker).is_pending());
            assert!(poll_with(closed.as_mut(), &waker).is_pending());
            assert_eq!(clones(), 1);
            rx.lock().unwrap().close();
            assert_eq!(wakes(), 1);
            assert_eq!(poll_with(closed.as_mut(), &waker), Poll::Ready(()));
        }
        assert!(tx.is_closed());
    });
}

/// A `SetOnce::wait` whose waker's clone sets the value: the value is seen when it looks
/// again, and returned at once.
#[test]
fn a_set_once_wait_whose_waker_clone_sets_the_value_returns_it() {
    on_thread_within(HANG, "SetOnce wait, clone sets", || {
        let once = Arc::new(SetOnce::<u32>::new());
        let setter = once.clone();
        let waker = calling_back_on_clone(move || setter.set(11).unwrap());
        let mut wait = pin!(once.wait());
        assert_eq!(poll_with(wait.as_mut(), &waker), Poll::Ready(&11));
        assert_eq!((clones(), wakes()), (1, 0));
    });
}

/// A `SetOnce::wait` whose waker's clone looks at the value: it waits, polled again clones
/// nothing, and the set wakes it.
#[test]
fn a_set_once_wait_whose_waker_clone_reads_it_waits_and_is_woken() {
    on_thread_within(HANG, "SetOnce wait, clone reads", || {
        let once = Arc::new(SetOnce::<u32>::new());
        let reader = once.clone();
        let waker = calling_back_on_clone(move || assert_eq!(reader.get(), None));
        let mut wait = pin!(once.wait());
        assert!(poll_with(wait.as_mut(), &waker).is_pending());
        assert!(poll_with(wait.as_mut(), &waker).is_pending());
        assert_eq!(clones(), 1);
        once.set(3).unwrap();
        assert_eq!(wakes(), 1);
        assert_eq!(poll_with(wait.as_mut(), &waker), Poll::Ready(&3));
    });
}
