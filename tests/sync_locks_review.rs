//! An adversarial review of `sync::RwLock` and `sync::Mutex` (the semaphore under them is
//! reviewed in `sync_locks_review_permits.rs`): seeded models drive hand-polled lock
//! requests through random reads, writes, tries, owned and mapped guards, downgrades and
//! cancellations at every stage (woken but not yet polled again included), checking after
//! each step that the lock is handed out in the documented first come, first served order,
//! to exactly the requests the model names, each woken once, and never to a reader and a
//! writer (or two lockers) together. Then the edges the docs promise: a lock held across a
//! panic (no poisoning), a downgrade under a `max_readers` cap, writer preference on a
//! running runtime, and a waker that polls the next holder inside the release. A failing
//! seed is printed with every step that led to it.

mod support;

#[path = "sync_locks_review/fifo_model.rs"]
mod fifo_model;
#[path = "sync_locks_review/inline_waker.rs"]
mod inline_waker;
#[path = "sync_locks_review/mutex_guards.rs"]
mod mutex_guards;
#[path = "sync_locks_review/rw_guards.rs"]
mod rw_guards;

use std::cell::Cell;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use fifo_model::Fifo;
use inline_waker::{saw, take_seen, wait_inline};
use mutex_guards::{transform_mutex, MutexHeld};
use overlap::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rw_guards::{transform_rw, RwHeld};
use support::{within, ManualTask, Rng};

const HANG: Duration = Duration::from_secs(30);

/// The guarded value: every writer sets both halves to its write's number, so a reader
/// that sees them differ, or differ from the model's count, saw a write half done or lost.
type Pair = [u64; 2];

/// `RwLock::with_max_readers(_, n)` against the FIFO model of `n` permits (a reader 1, a
/// writer all): reads, writes, their owned forms, `try_*`, `map`/`try_map`, `downgrade`,
/// `downgrade_map` and `try_downgrade_map`, guards dropped in any order and requests
/// dropped unpolled, waiting, or handed the lock but not yet polled.
#[test]
fn rwlock_serves_reads_and_writes_in_the_order_of_its_model_under_cancellation() {
    support::for_seeds(1..=60, |seed| {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let max_readers = 1 + rng.below(3);
        let lock: &'static Rc<RwLock<Pair>> = Box::leak(Box::new(Rc::new(
            RwLock::with_max_readers([0, 0], max_readers as u32),
        )));
        let mut m: Fifo<RwHeld> = Fifo::new(seed, max_readers);
        let mut held: Vec<RwHeld> = Vec::new();
        let mut writes = 0u64;
        for step in 0..500 {
            let ids = m.ids();
            match rng.below(100) {
                0..=9 if ids.len() < 8 => {
                    let owned = rng.below(2) == 0;
                    m.note(format!("{step}: read (owned: {owned})"));
                    if owned {
                        m.add(1, async {
                            RwHeld::OwnedRead(lock.clone().read_owned().await)
                        });
                    } else {
                        m.add(1, async { RwHeld::Read(lock.read().await) });
                    }
                }
                10..=16 if ids.len() < 8 => {
                    let owned = rng.below(2) == 0;
                    m.note(format!("{step}: write (owned: {owned})"));
                    if owned {
                        m.add(max_readers, async {
                            RwHeld::OwnedWrite(lock.clone().write_owned().await)
                        });
                    } else {
                        m.add(max_readers, async { RwHeld::Write(lock.write().await) });
                    }
                }
                17..=44 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len())];
                    m.note(format!("{step}:"));
                    if let Some(mut g) = m.poll(id) {
                        if g.is_writer() {
                            writes += 1;
                            g.write(writes);
                        }
                        held.push(g);
                    }
                }
                45..=54 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len())];
                    m.note(format!("{step}:"));
                    m.cancel(id);
                }
                55..=62 => {
                    let (write, owned) = (rng.below(3) == 0, rng.below(2) == 0);
                    m.note(format!("{step}: try (write: {write}, owned: {owned})"));
                    let expected = m.try_take(if write { max_readers } else { 1 });
                    let got = match (write, owned) {
                        (false, false) => lock.try_read().ok().map(RwHeld::Read),
                        (false, true) => lock.clone().try_read_owned().ok().map(RwHeld::OwnedRead),
                        (true, false) => lock.try_write().ok().map(RwHeld::Write),
                        (true, true) => lock.clone().try_write_owned().ok().map(RwHeld::OwnedWrite),
                    };
                    m.check(got.is_some() == expected, || {
                        format!(
                            "the try gave a guard: {}, the model: {expected}",
                            got.is_some()
                        )
                    });
                    if let Some(mut g) = got {
                        if write {
                            writes += 1;
                            g.write(writes);
                        }
                        held.push(g);
                    }
                }
                63..=82 if !held.is_empty() => {
                    let g = held.swap_remove(rng.below(held.len()));
                    let n = if g.is_writer() { max_readers } else { 1 };
                    m.note(format!("{step}: drop a guard of {n}"));
                    drop(g);
                    m.release(n);
                }
                83..=99 if !held.is_empty() => {
                    let i = rng.below(held.len());
                    let g = held.swap_remove(i);
                    let (g, freed, what) = transform_rw(g, max_readers, &mut rng);
                    m.note(format!("{step}: {what}"));
                    held.push(g);
                    if freed > 0 {
                        m.release(freed);
                    }
                }
                _ => continue,
            }
            // Readers and a writer never together, at most one writer, never more readers
            // than the lock lets in; and each guard sees the last write whole.
            let writers = held.iter().filter(|g| g.is_writer()).count();
            m.check(writers == 0 || held.len() == 1, || {
                format!("{writers} writers among {} guards", held.len())
            });
            m.check(held.len() <= max_readers, || {
                format!("{} readers in a lock of {max_readers}", held.len())
            });
            for g in &held {
                let seen = g.seen();
                m.check(seen.iter().all(|&v| v == writes), || {
                    format!("a guard sees {seen:?}, the last write was {writes}")
                });
            }
            // Each try's guard, if any, goes at the end of its statement.
            let read = lock.try_read().is_ok();
            let write = lock.try_write().is_ok();
            m.check(
                read == m.would_take(1) && write == m.would_take(max_readers),
                || {
                    format!(
                        "try_read/try_write would succeed: {read}/{write}, the model: {}/{}",
                        m.would_take(1),
                        m.would_take(max_readers)
                    )
                },
            );
            m.check_wakes();
        }
        // Everything goes: the lock is whole again, with the last write in it.
        for id in m.ids() {
            m.cancel(id);
        }
        drop(held);
        let all = lock.try_write();
        m.check(all.is_ok(), || "the lock is not free once all went".into());
        assert_eq!(*all.unwrap(), [writes, writes], "seed {seed}");
    });
}

/// `Mutex` against the FIFO model of one permit: `lock`, `lock_owned`, `try_lock`,
/// `try_lock_owned`, the guards narrowed by `map`/`try_map` (owned or not, a `try_map` that
/// finds nothing giving the guard back still locked), requests dropped at every stage. Never
/// two holders; each new holder sees the last holder's write.
#[test]
fn mutex_hands_the_lock_to_one_holder_at_a_time_in_model_order_under_cancellation() {
    support::for_seeds(1..=60, |seed| {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let lock: &'static Rc<Mutex<Pair>> = Box::leak(Box::new(Rc::new(Mutex::new([0, 0]))));
        let mut m: Fifo<MutexHeld> = Fifo::new(seed, 1);
        let mut held: Option<MutexHeld> = None;
        let mut writes = 0u64;
        for step in 0..500 {
            let ids = m.ids();
            let mut got = None;
            match rng.below(100) {
                0..=14 if ids.len() < 8 => {
                    let owned = rng.below(2) == 0;
                    m.note(format!("{step}: lock (owned: {owned})"));
                    if owned {
                        m.add(1, async {
                            MutexHeld::Owned(lock.clone().lock_owned().await)
                        });
                    } else {
                        m.add(1, async { MutexHeld::Whole(lock.lock().await) });
                    }
                }
                15..=44 if !ids.is_empty() => {
                    m.note(format!("{step}:"));
                    got = m.poll(ids[rng.below(ids.len())]);
                }
                45..=56 if !ids.is_empty() => {
                    m.note(format!("{step}:"));
                    m.cancel(ids[rng.below(ids.len())]);
                }
                57..=66 => {
                    let owned = rng.below(2) == 0;
                    m.note(format!("{step}: try_lock (owned: {owned})"));
                    let expected = m.try_take(1);
                    got = if owned {
                        lock.clone().try_lock_owned().ok().map(MutexHeld::Owned)
                    } else {
                        lock.try_lock().ok().map(MutexHeld::Whole)
                    };
                    m.check(got.is_some() == expected, || {
                        format!(
                            "try_lock gave a guard: {}, the model: {expected}",
                            got.is_some()
                        )
                    });
                }
                67..=84 if held.is_some() => {
                    m.note(format!("{step}: unlock"));
                    held = None;
                    m.release(1);
                }
                85..=99 if held.is_some() => {
                    let (g, what) = transform_mutex(held.take().unwrap(), lock, &mut rng);
                    m.note(format!("{step}: {what}"));
                    held = Some(g);
                    let r = held.as_mut().unwrap().check_and_write(writes, writes);
                    m.check(r.is_ok(), || r.unwrap_err());
                }
                _ => continue,
            }
            if let Some(mut g) = got {
                m.check(held.is_none(), || "a second holder of the mutex".into());
                m.check(g.is_whole(), || "a new holder with a narrowed guard".into());
                writes += 1;
                let r = g.check_and_write(writes - 1, writes);
                m.check(r.is_ok(), || r.unwrap_err());
                held = Some(g);
            }
            // A try that succeeds here finds nobody in line, so its guard, dropped at once,
            // hands nothing on.
            let free = lock.try_lock().is_ok();
            m.check(free == m.would_take(1), || {
                format!(
                    "try_lock would succeed: {free}, the model: {}",
                    m.would_take(1)
                )
            });
            m.check_wakes();
        }
        for id in m.ids() {
            m.cancel(id);
        }
        drop(held);
        assert_eq!(*lock.try_lock().unwrap(), [writes, writes], "seed {seed}");
    });
}

/// No poisoning, as the docs say: a task that panics holding a mutex guard (or a write
/// guard), or is aborted holding an owned one, releases it as it unwinds, and the next task
/// in line gets the value exactly as it was left, half updated.
#[overlap::test]
async fn a_lock_held_across_a_panic_or_an_abort_goes_to_the_next_in_line_as_left() {
    let mutex = Rc::new(Mutex::new([0u64, 0]));
    let rw = Rc::new(RwLock::new([0u64, 0]));
    let (m, r) = (mutex.clone(), rw.clone());
    let panicking = overlap::spawn(async move {
        let mut g = m.lock().await;
        let mut w = r.write().await;
        g[0] = 1;
        w[0] = 1;
        overlap::yield_now().await; // the others queue up meanwhile
        panic!("half way through");
    });
    overlap::yield_now().await;
    let (m, r) = (mutex.clone(), rw.clone());
    let next = overlap::spawn(async move { (*m.lock().await, *r.read().await) });
    let err = within(HANG, panicking, "the panicking task")
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(support::panic_message(err.into_panic()), "half way through");
    let seen = within(HANG, next, "the next in line").await.unwrap();
    assert_eq!(
        seen,
        ([1, 0], [1, 0]),
        "the value as the panicking task left it"
    );

    // An owned guard moved into a task that is aborted while it holds it.
    let guard = mutex.clone().lock_owned().await;
    let holder = overlap::spawn(async move {
        let mut guard = guard;
        guard[1] = 7;
        std::future::pending::<()>().await;
    });
    overlap::yield_now().await;
    let m = mutex.clone();
    let waiter = overlap::spawn(async move { *m.lock().await });
    overlap::yield_now().await;
    assert!(
        mutex.try_lock().is_err(),
        "held by the task, waited for by another"
    );
    holder.abort();
    assert!(within(HANG, holder, "the aborted holder")
        .await
        .unwrap_err()
        .is_cancelled());
    assert_eq!(within(HANG, waiter, "the waiter").await.unwrap(), [1, 7]);
    assert_eq!(*mutex.try_lock().unwrap(), [1, 7]);
    assert_eq!(*rw.try_write().unwrap(), [1, 0]);
}

/// `downgrade` under a `max_readers` cap: of the readers waiting in line, only as many go
/// in as the cap leaves room for beside the downgraded guard, in order; the next waits for a
/// reader to go, not for the writer waiting behind it.
#[test]
fn a_downgrade_lets_in_only_the_readers_the_cap_leaves_room_for() {
    let lock = RwLock::with_max_readers(5u8, 2);
    let w = lock.try_write().unwrap();
    let tasks: Vec<ManualTask> = (0..3).map(|_| ManualTask::default()).collect();
    let mut first = pin!(lock.read());
    let mut second = pin!(lock.read());
    let mut writer = pin!(lock.write());
    assert!(tasks[0].poll(first.as_mut()).is_pending());
    assert!(tasks[1].poll(second.as_mut()).is_pending());
    assert!(tasks[2].poll(writer.as_mut()).is_pending());
    let r = RwLockWriteGuard::downgrade(w);
    assert!(tasks[0].is_woken() && !tasks[1].is_woken() && !tasks[2].is_woken());
    let Poll::Ready(first_guard) = tasks[0].poll(first.as_mut()) else {
        panic!("the first reader is not let in")
    };
    assert_eq!((*r, *first_guard), (5, 5));
    assert!(
        lock.try_read().is_err(),
        "the cap is reached, and readers wait in line"
    );
    drop(r);
    assert!(tasks[1].is_woken() && !tasks[2].is_woken());
    assert!(matches!(tasks[1].poll(second.as_mut()), Poll::Ready(ref g) if **g == 5));
    drop(first_guard);
    assert!(tasks[2].is_woken(), "both readers gone: the writer");
    assert!(tasks[2].poll(writer.as_mut()).is_ready());
}

/// Writer preference on a running runtime, on the paused clock: readers keep coming,
/// each holding the lock a while; a writer that gives up under a timeout leaves the line
/// (the readers queued behind it get in), and a writer that waits is not starved: no reader
/// that asked after it gets in before it, and every reader that asked before it does.
#[overlap::test(start_paused = true)]
async fn a_waiting_writer_holds_back_later_readers_and_a_timed_out_one_holds_back_none() {
    let lock = Rc::new(RwLock::new(0u32));
    let seq = Rc::new(Cell::new(0u32));
    // (asked at, got in at) of each reader, in sequence numbers.
    let log: Rc<std::cell::RefCell<Vec<(u32, u32)>>> = Rc::default();
    let next = |seq: &Cell<u32>| {
        seq.set(seq.get() + 1);
        seq.get()
    };
    let readers: Vec<_> = (0..4u64)
        .map(|i| {
            let (lock, seq, log) = (lock.clone(), seq.clone(), log.clone());
            overlap::spawn(async move {
                // Readers ask at even milliseconds, the writers at odd ones: no ties.
                overlap::time::sleep(Duration::from_millis(2 * i)).await;
                for _ in 0..12 {
                    let asked = next(&seq);
                    let guard = lock.read().await;
                    log.borrow_mut().push((asked, next(&seq)));
                    overlap::time::sleep(Duration::from_millis(7)).await;
                    drop(guard);
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    overlap::time::sleep(Duration::from_millis(21)).await;
    let gave_up = overlap::time::timeout(Duration::from_millis(2), lock.write()).await;
    assert!(gave_up.is_err(), "readers held the lock throughout");
    let gave_up_at = next(&seq);
    overlap::time::sleep(Duration::from_millis(20)).await;
    let asked = next(&seq);
    let mut guard = within(HANG, lock.write(), "the writer starved").await;
    let got = next(&seq);
    *guard += 1;
    overlap::time::sleep(Duration::from_millis(5)).await;
    drop(guard);
    for r in readers {
        within(HANG, r, "a reader").await.unwrap();
    }
    let log = log.take();
    assert_eq!(log.len(), 48);
    // Readers that asked while the timed-out writer waited got in once it left.
    assert!(log.iter().any(|&(a, g)| a < gave_up_at && g > gave_up_at));
    for &(a, g) in log.iter() {
        if a > asked {
            assert!(
                g > got,
                "a reader that asked at {a} got in at {g}, before the writer at {got}"
            );
        }
        if a < asked {
            assert!(
                g < got,
                "a reader that asked at {a} before the writer got in at {g}, after it"
            );
        }
    }
    assert!(
        log.iter().any(|&(a, _)| a > asked && a < got),
        "readers came while it waited"
    );
    assert_eq!(*lock.read().await, 1);
}

/// Guards release their borrow of the value before their permits: a waker that polls the
/// next holder inside the release (an inline executor) finds the value free, for every
/// guard kind, a downgrade letting readers in included, and each holder sees the last
/// write, in line order. (Were a permit given back first, the next borrow would panic.)
#[test]
fn a_waker_polling_the_next_holder_inside_the_release_finds_the_value_free() {
    let mutex: &'static Rc<Mutex<Vec<&str>>> = Box::leak(Box::new(Rc::new(Mutex::new(vec![]))));
    let held = mutex.try_lock().unwrap();
    wait_inline(1, async {
        let mut g = MutexGuard::map(mutex.lock().await, |v| v);
        g.push("mapped");
        saw(format!("{:?}", *g));
    });
    wait_inline(2, async {
        let mut g = mutex.clone().lock_owned().await;
        g.push("owned");
        saw(format!("{:?}", *g));
    });
    wait_inline(3, async { saw(format!("{:?}", *mutex.lock().await)) });
    // Each release polls the next holder at once, which completes and releases in turn.
    drop(held);
    let lock: &'static RwLock<u32> = Box::leak(Box::new(RwLock::new(0)));
    let mut writer = lock.try_write().unwrap();
    *writer = 1;
    wait_inline(4, async { saw(format!("read {}", *lock.read().await)) });
    wait_inline(5, async {
        let r = RwLockReadGuard::map(lock.read().await, |v| v);
        saw(format!("read {}", *r));
    });
    wait_inline(6, async {
        let mut w = RwLockWriteGuard::map(lock.write().await, |v| v);
        *w += 1;
        saw(format!("wrote {}", *w));
    });
    wait_inline(7, async { saw(format!("read {}", *lock.read().await)) });
    let reader = RwLockWriteGuard::downgrade(writer); // lets in 4 and 5, inline
    saw("downgraded".into());
    drop(reader); // the last reader: 6 writes, inline, then 7 reads
    let (seen, still_waiting) = take_seen();
    assert_eq!(
        seen,
        [
            r#"["mapped"]"#,
            r#"["mapped", "owned"]"#,
            r#"["mapped", "owned"]"#,
            "read 1",
            "read 1",
            "downgraded",
            "wrote 2",
            "read 2"
        ]
    );
    assert!(!still_waiting);
}
