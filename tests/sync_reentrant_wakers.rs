//! Wakers and user values dropped while a sync primitive is borrowed or in flux, whose drop
//! re-enters the same primitive: no panic, and no permit, value or notification lost.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use overlap::sync::{
    broadcast, mpsc, oneshot, watch, Barrier, Mutex, Notify, OnceCell, RwLock, Semaphore,
};

thread_local! {
    static ACTION: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
}

fn set_action(f: impl FnOnce() + 'static) {
    ACTION.with(|a| *a.borrow_mut() = Some(Box::new(f)));
}

/// A waker that runs the thread's ACTION when its last clone is dropped.
fn on_drop_waker() -> Waker {
    struct OnDrop;
    impl Wake for OnDrop {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(f) = ACTION.with(|a| a.borrow_mut().take()) {
                f();
            }
        }
    }
    Waker::from(Arc::new(OnDrop))
}

fn poll_with<F: Future + ?Sized>(f: Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(w))
}

/// Polls `fut` with the on-drop waker (pending), lets the primitive hold its last clone,
/// then polls again with another waker: the primitive replaces (drops) the first waker.
/// Returns the outcome of that second poll (Err = it panicked).
fn repoll_replacing_waker<F: Future + ?Sized>(
    mut fut: Pin<&mut F>,
) -> Result<Poll<F::Output>, String> {
    let a = on_drop_waker();
    assert!(
        poll_with(fut.as_mut(), &a).is_pending(),
        "first poll not pending"
    );
    drop(a);
    catch_unwind(AssertUnwindSafe(|| {
        match poll_with(fut.as_mut(), Waker::noop()) {
            // Whatever the waker's drop did must be seen by the next poll (nothing lost).
            Poll::Pending => poll_with(fut.as_mut(), Waker::noop()),
            ready => ready,
        }
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn report<T>(what: &str, r: &Result<Poll<T>, String>) {
    match r {
        Ok(Poll::Ready(_)) => eprintln!("[{what}] second poll: Ready"),
        Ok(Poll::Pending) => eprintln!("[{what}] second poll: Pending"),
        Err(msg) => eprintln!("[{what}] second poll PANICKED: {msg}"),
    }
}

// ---------- a replaced waker whose drop re-enters the primitive ----------

#[test]
fn semaphore_replaced_waker_drop_adds_permit() {
    let sem = Rc::new(Semaphore::new(0));
    let s2 = sem.clone();
    set_action(move || s2.add_permits(1));
    let mut acq = Box::pin(sem.acquire());
    let r = repoll_replacing_waker(acq.as_mut());
    report("semaphore", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn notify_replaced_waker_drop_notifies() {
    let n = Rc::new(Notify::new());
    let n2 = n.clone();
    set_action(move || n2.notify_one());
    let mut f = Box::pin(n.notified());
    let r = repoll_replacing_waker(f.as_mut());
    report("notify", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn mutex_replaced_waker_drop_unlocks() {
    let m: &'static Mutex<u8> = Box::leak(Box::new(Mutex::new(0)));
    let guard = m.try_lock().unwrap();
    set_action(move || drop(guard));
    let mut f = Box::pin(m.lock());
    let r = repoll_replacing_waker(f.as_mut());
    report("mutex", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn rwlock_replaced_waker_drop_unlocks() {
    let m: &'static RwLock<u8> = Box::leak(Box::new(RwLock::new(0)));
    let guard = m.try_write().unwrap();
    set_action(move || drop(guard));
    let mut f = Box::pin(m.read());
    let r = repoll_replacing_waker(f.as_mut());
    report("rwlock", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn barrier_replaced_waker_drop_completes_round() {
    let b: &'static Barrier = Box::leak(Box::new(Barrier::new(2)));
    set_action(move || {
        let mut other = Box::pin(b.wait());
        assert!(poll_with(other.as_mut(), Waker::noop()).is_ready());
    });
    let mut f = Box::pin(b.wait());
    let r = repoll_replacing_waker(f.as_mut());
    report("barrier", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn once_cell_replaced_waker_drop_abandons_initializer() {
    let cell: &'static OnceCell<u8> = Box::leak(Box::new(OnceCell::new()));
    let mut init: Pin<Box<dyn Future<Output = &'static u8>>> =
        Box::pin(cell.get_or_init(std::future::pending::<u8>));
    assert!(poll_with(init.as_mut(), Waker::noop()).is_pending());
    set_action(move || drop(init));
    let mut f = Box::pin(cell.get_or_init(|| async { 7 }));
    let r = repoll_replacing_waker(f.as_mut());
    report("once_cell", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn watch_replaced_waker_drop_sends() {
    let (tx, mut rx) = watch::channel(0u8);
    let tx: &'static watch::Sender<u8> = Box::leak(Box::new(tx));
    set_action(move || tx.send(1).unwrap());
    let mut f = Box::pin(rx.changed());
    let r = repoll_replacing_waker(f.as_mut());
    report("watch", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn broadcast_replaced_waker_drop_sends() {
    let (tx, mut rx) = broadcast::channel(4);
    let tx: &'static broadcast::Sender<u8> = Box::leak(Box::new(tx));
    set_action(move || {
        tx.send(1u8).unwrap();
    });
    let mut f = Box::pin(rx.recv());
    let r = repoll_replacing_waker(f.as_mut());
    report("broadcast", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn mpsc_sender_closed_replaced_waker_drop_drops_receiver() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    set_action(move || drop(rx));
    let mut f = Box::pin(tx.closed());
    let r = repoll_replacing_waker(f.as_mut());
    report("mpsc Sender::closed", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn mpsc_recv_replaced_waker_drop_sends() {
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    let tx2: &'static mpsc::Sender<u8> = Box::leak(Box::new(tx.clone()));
    set_action(move || tx2.try_send(7).unwrap());
    let mut f = Box::pin(rx.recv());
    let r = repoll_replacing_waker(f.as_mut());
    report("mpsc recv (bounded)", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
    drop(tx);
}

#[test]
fn mpsc_unbounded_recv_replaced_waker_drop_drops_last_sender() {
    let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
    set_action(move || drop(tx));
    let mut f = Box::pin(rx.recv());
    let r = repoll_replacing_waker(f.as_mut());
    report("mpsc recv (unbounded, last sender dropped)", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn mpsc_waiting_send_replaced_waker_drop_receives() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    tx.try_send(0).unwrap();
    let rx = Rc::new(RefCell::new(rx));
    let rx2 = rx.clone();
    set_action(move || assert_eq!(rx2.borrow_mut().try_recv().unwrap(), 0));
    let mut f = Box::pin(tx.send(1));
    let r = repoll_replacing_waker(f.as_mut());
    report("mpsc waiting send", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn mpsc_waiting_reserve_replaced_waker_drop_drops_a_permit() {
    let (tx, _rx) = mpsc::channel::<u8>(1);
    let tx: &'static mpsc::Sender<u8> = Box::leak(Box::new(tx));
    let permit = tx.try_reserve().unwrap();
    set_action(move || drop(permit));
    let mut f = Box::pin(tx.reserve());
    let r = repoll_replacing_waker(f.as_mut());
    report("mpsc waiting reserve", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn oneshot_recv_replaced_waker_drop_sends() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    set_action(move || tx.send(5).unwrap());
    let r = repoll_replacing_waker(Pin::new(&mut rx));
    report("oneshot recv", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

#[test]
fn oneshot_sender_closed_replaced_waker_drop_drops_receiver() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    set_action(move || drop(rx));
    let mut f = Box::pin(tx.closed());
    let r = repoll_replacing_waker(f.as_mut());
    report("oneshot Sender::closed", &r);
    assert!(matches!(r, Ok(Poll::Ready(_))), "{:?}", r.as_ref().err());
}

// ---------- user values whose drop re-enters the channel (expected fine) ----------

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A message whose drop runs a closure (once).
struct Msg(Option<Box<dyn FnOnce()>>);
impl Drop for Msg {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
fn msg(f: impl FnOnce() + 'static) -> Msg {
    Msg(Some(Box::new(f)))
}

#[test]
fn mpsc_values_dropped_by_receiver_drop_reenter() {
    let (tx, rx) = mpsc::channel::<Msg>(4);
    let t2 = tx.clone();
    let t3 = tx.clone();
    tx.try_send(msg(move || {
        let r = t2.try_send(Msg(None));
        LOG.with(|l| {
            l.borrow_mut()
                .push(format!("send from drop: {}", r.is_ok()))
        });
        drop(t2);
    }))
    .ok()
    .unwrap();
    tx.try_send(msg(move || drop(t3))).ok().unwrap();
    drop(rx);
    assert!(tx.is_closed());
    drop(tx);
    LOG.with(|l| eprintln!("{:?}", l.borrow()));
}

#[test]
fn mpsc_value_in_cancelled_send_and_permit_after_receiver_gone() {
    let (tx, rx) = mpsc::channel::<Msg>(1);
    tx.try_send(Msg(None)).ok().unwrap();
    let t2 = tx.clone();
    let mut f = Box::pin(tx.send(msg(move || {
        // re-enter: try to send while the cancelled send's value goes
        let _ = t2.try_send(Msg(None));
        drop(t2);
    })));
    assert!(poll_with(f.as_mut(), Waker::noop()).is_pending());
    drop(f);
    // Permit filled after the receiver is dropped: the value's drop re-enters.
    let (tx, rx2) = mpsc::channel::<Msg>(1);
    let permit = tx.try_reserve().unwrap();
    drop(rx2);
    let t3 = tx.clone();
    permit.send(msg(move || {
        assert!(t3.try_send(Msg(None)).is_err());
        drop(t3);
    }));
    drop(rx);
}

#[test]
fn mpsc_unbounded_close_then_drop_values_reenter() {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let t2 = tx.clone();
    tx.send(msg(move || {
        let _ = t2.send(Msg(None));
        drop(t2);
    }))
    .ok()
    .unwrap();
    rx.close();
    let got = rx.try_recv().ok().unwrap();
    drop(got);
    drop(rx);
}

#[test]
fn broadcast_evicted_and_read_values_reenter() {
    let (tx, mut rx) = broadcast::channel::<Rc<Msg>>(1);
    let t2 = Rc::new(tx.clone());
    let t3 = t2.clone();
    tx.send(Rc::new(msg(move || {
        let _ = t2.send(Rc::new(Msg(None)));
    })))
    .unwrap();
    tx.send(Rc::new(Msg(None))).unwrap(); // evicts the first: its drop sends
    let _ = rx.try_recv();
    let _ = rx.try_recv();
    tx.send(Rc::new(msg(move || {
        let _ = t3.send(Rc::new(Msg(None)));
    })))
    .unwrap();
    drop(rx); // pop_read drops it; its drop sends with no receiver
}

#[test]
fn watch_old_value_drop_sends() {
    let (tx, rx) = watch::channel::<Msg>(Msg(None));
    let tx = Rc::new(tx);
    let t2 = tx.clone();
    tx.send(msg(move || {})).ok().unwrap();
    tx.send(Msg(None)).ok().unwrap();
    tx.send_replace(msg(move || {
        let _ = t2.send(Msg(None));
    }));
    tx.send(Msg(None)).ok().unwrap(); // the old value's drop sends again
    drop(rx);
}

#[test]
fn semaphore_close_and_cancel_with_reentrant_waker_drops() {
    let sem = Rc::new(Semaphore::new(0));
    let s2 = sem.clone();
    set_action(move || s2.add_permits(1));
    let a = on_drop_waker();
    let mut f = Box::pin(sem.acquire());
    assert!(poll_with(f.as_mut(), &a).is_pending());
    drop(a);
    sem.close(); // the waker is dropped by close's wake (take_all)
    assert!(matches!(
        poll_with(f.as_mut(), Waker::noop()),
        Poll::Ready(Err(_))
    ));
    assert_eq!(sem.available_permits(), 1);
}
