//! `overlap::sync`'s owned and mapped lock guards, `RwLock::with_max_readers` and
//! `downgrade` (and `downgrade_map`): guards that move into tasks keep the others out until they drop, and hand
//! the lock on in line order.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use overlap::sync::{
    Mutex, MutexGuard, OwnedMutexGuard, OwnedRwLockWriteGuard, RwLock, RwLockReadGuard,
    RwLockWriteGuard,
};
use support::settle;

type Log = Rc<RefCell<Vec<String>>>;

fn log_in(log: &Log, what: impl Into<String>) {
    log.borrow_mut().push(what.into());
}

/// A task that waits for the mutex in line, logs `name` once it has it, and lets go.
fn waiter(log: &Log, mutex: &Rc<Mutex<Vec<u32>>>, name: &'static str) -> overlap::JoinHandle<()> {
    let (log, mutex) = (log.clone(), mutex.clone());
    overlap::spawn(async move {
        let _guard = mutex.lock_owned().await;
        log_in(&log, name);
    })
}

#[overlap::test]
async fn an_owned_guard_moved_into_a_task_keeps_others_out_then_hands_on_in_order() {
    let log = Log::default();
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let mut guard = mutex.clone().lock_owned().await;
    let release = Rc::new(overlap::sync::Notify::new());
    let holder = {
        let (log, release) = (log.clone(), release.clone());
        overlap::spawn(async move {
            guard.push(1);
            release.notified().await;
            log_in(&log, "holder done");
            drop(guard);
        })
    };
    let first = waiter(&log, &mutex, "first");
    settle().await;
    let second = waiter(&log, &mutex, "second");
    settle().await;
    assert!(log.borrow().is_empty(), "both wait for the task's guard");
    assert!(mutex.clone().try_lock_owned().is_err());
    release.notify_one();
    for t in [holder, first, second] {
        t.await.unwrap();
    }
    assert_eq!(*log.borrow(), ["holder done", "first", "second"]);
    assert_eq!(*mutex.lock().await, [1]);
}

#[overlap::test]
async fn mapped_guards_write_through_and_still_release_the_lock() {
    let mutex = Rc::new(Mutex::new((0, vec![1, 2])));
    let mut second = MutexGuard::map(mutex.lock().await, |p| &mut p.1);
    second.push(3);
    assert!(mutex.try_lock().is_err(), "a mapped guard holds the lock");
    drop(second);

    let guard = mutex.clone().lock_owned().await;
    let guard = OwnedMutexGuard::try_map(guard, |p| p.1.get_mut(9)).unwrap_err();
    assert!(Rc::ptr_eq(OwnedMutexGuard::mutex(&guard), &mutex));
    let mut last = OwnedMutexGuard::try_map(guard, |p| p.1.last_mut()).unwrap();
    let task = overlap::spawn(async move { *last = 30 });
    task.await.unwrap();
    assert_eq!(
        *mutex.try_lock().expect("released with the task"),
        (0, vec![1, 2, 30])
    );
}

#[overlap::test]
async fn max_readers_caps_the_readers_inside_and_the_next_waits_for_one_to_go() {
    let lock = Rc::new(RwLock::with_max_readers(7, 2));
    let a = lock.clone().read_owned().await;
    let b = lock.clone().read_owned().await;
    let third = {
        let lock = lock.clone();
        overlap::spawn(async move { *lock.read().await })
    };
    settle().await;
    assert!(!third.is_finished(), "a third reader waits");
    assert!(lock.try_read().is_err());
    drop(a);
    assert_eq!(third.await.unwrap(), 7);
    // A writer takes every reader's place.
    drop(b);
    let w = lock.clone().try_write_owned().unwrap();
    assert!(lock.try_read().is_err());
    drop(w);
    assert!(lock.try_read().is_ok());
}

#[overlap::test]
#[should_panic(expected = "between 1 and")]
async fn an_rwlock_with_no_readers_is_refused() {
    let _ = RwLock::with_max_readers((), 0);
}

#[overlap::test]
async fn downgrade_lets_waiting_readers_in_but_not_a_writer() {
    let lock = Rc::new(RwLock::new(0));
    let mut w = lock.clone().write_owned().await;
    let reader = {
        let lock = lock.clone();
        overlap::spawn(async move { *lock.read_owned().await })
    };
    let writer = {
        let lock = lock.clone();
        overlap::spawn(async move { *lock.write().await = 100 })
    };
    settle().await;
    *w = 5;
    let r = OwnedRwLockWriteGuard::downgrade(w);
    assert_eq!(
        reader.await.unwrap(),
        5,
        "the reader waiting in line gets in"
    );
    settle().await;
    assert!(!writer.is_finished(), "the downgraded guard still reads");
    assert_eq!(*r, 5);
    drop(r);
    writer.await.unwrap();
    assert_eq!(*lock.read().await, 100);
}

#[overlap::test]
async fn rwlock_mapped_guards_hold_their_lock_until_dropped() {
    let lock = RwLock::new((String::from("a"), 1));
    let name = RwLockReadGuard::map(lock.read().await, |v| &v.0);
    assert!(lock.try_write().is_err());
    let not_there = RwLockReadGuard::try_map(lock.read().await, |v| v.0.get(5..));
    assert!(not_there.is_err());
    drop((name, not_there));
    let mut n = RwLockWriteGuard::map(lock.write().await, |v| &mut v.1);
    *n += 1;
    assert!(lock.try_read().is_err());
    drop(n);
    assert_eq!(*lock.read().await, (String::from("a"), 2));
}

/// tokio's `downgrade_map`: the waiting reader gets in once the writer narrows to a part,
/// the waiting writer not until that part's guard drops.
#[overlap::test]
async fn downgrade_map_narrows_and_lets_readers_in_but_not_a_writer() {
    let lock = Rc::new(RwLock::new((0u32, String::new())));
    let mut w = lock.clone().write_owned().await;
    let reader = {
        let lock = lock.clone();
        overlap::spawn(async move { lock.read().await.0 })
    };
    let writer = {
        let lock = lock.clone();
        overlap::spawn(async move { lock.write().await.0 = 100 })
    };
    settle().await;
    *w = (7, String::from("seven"));
    let name = OwnedRwLockWriteGuard::downgrade_map(w, |v| &v.1);
    assert_eq!(reader.await.unwrap(), 7, "the reader in line gets in");
    settle().await;
    assert!(!writer.is_finished(), "the narrowed guard still reads");
    assert_eq!(&*name, "seven");
    drop(name);
    writer.await.unwrap();
    let w = lock.write().await;
    let w = RwLockWriteGuard::downgrade_map(w, |v| &v.0);
    assert_eq!(*w, 100);
    assert!(lock.try_read().is_ok() && lock.try_write().is_err());
}

/// `try_downgrade_map` finding no part gives the write guard back still exclusive (no
/// reader or writer got in, the value is writable); finding it, a read guard of the part.
#[overlap::test]
async fn try_downgrade_map_gives_the_write_guard_back_when_the_part_is_missing() {
    let lock = Rc::new(RwLock::new(vec![1u32, 2, 3]));
    let w = lock.clone().write_owned().await;
    let reader = {
        let lock = lock.clone();
        overlap::spawn(async move { lock.read().await.len() })
    };
    settle().await;
    let mut w = match OwnedRwLockWriteGuard::try_downgrade_map(w, |v| v.get(10)) {
        Ok(_) => panic!("there is no 11th element"),
        Err(w) => w,
    };
    settle().await;
    assert!(!reader.is_finished(), "still exclusive after the miss");
    assert!(lock.try_read().is_err());
    w.push(4); // still writable
    let third = match OwnedRwLockWriteGuard::try_downgrade_map(w, |v| v.get(2)) {
        Ok(third) => third,
        Err(_) => panic!("the 3rd element is there"),
    };
    assert_eq!(*third, 3);
    assert_eq!(
        reader.await.unwrap(),
        4,
        "the reader in line got in, saw the push"
    );
    drop(third);

    let w = lock.write().await;
    let w = RwLockWriteGuard::try_downgrade_map(w, |v| v.first())
        .ok()
        .unwrap();
    assert_eq!(*w, 1);
    assert!(lock.try_write().is_err());
}
