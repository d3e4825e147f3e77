//! An adversarial review of `sync::Semaphore`'s permits (the locks built on it are reviewed
//! in `sync_locks_review.rs`): a seeded model drives hand-polled `acquire_many` requests,
//! borrowed and owned, through permits split, merged, forgotten and dropped in any order,
//! `add_permits`, `forget_permits`, tries for any count (zero included) and requests
//! dropped at every stage (woken but not yet polled again included), checking after each
//! step the exact count, the strictly first come, first served line and each request's
//! wakes. Then the count at its saturation point and a close with a request already served.
//! A failing seed is printed with every step that led to it.

mod support;

#[path = "sync_locks_review/fifo_model.rs"]
mod fifo_model;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use fifo_model::Fifo;
use overlap::sync::{OwnedPermit, Permit, Semaphore};
use support::{ManualTask, Rng};

/// Permits the model holds, borrowed or owned.
enum Held {
    Borrowed(Permit<'static>),
    Owned(OwnedPermit),
}

impl Held {
    fn num_permits(&self) -> usize {
        match self {
            Held::Borrowed(p) => p.num_permits(),
            Held::Owned(p) => p.num_permits(),
        }
    }
}

/// `Semaphore::new(n)` for `n` in 0..=4 against the FIFO model: a request for more than
/// is free waits, and holds back every later one, however small (zero aside, granted at
/// once); permits split off or merged go back exactly as many as they hold, whichever part
/// drops first; a forgotten permit never comes back; `forget_permits` takes only what a new
/// request could take.
#[test]
fn permits_split_merged_forgotten_and_dropped_keep_the_count_and_the_line() {
    for seed in 1..=80u64 {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| permit_model(seed))) {
            eprintln!("failing seed: {seed}");
            resume_unwind(panic);
        }
    }
}

fn permit_model(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = rng.below(5);
    let sem: &'static Rc<Semaphore> = Box::leak(Box::new(Rc::new(Semaphore::new(start))));
    let mut m: Fifo<Held> = Fifo::new(seed, start);
    let mut held: Vec<Held> = Vec::new();
    for step in 0..500 {
        let ids = m.ids();
        // Up to one more than there are: a request nobody can serve yet.
        let n = rng.below(m.total + 2);
        match rng.below(100) {
            0..=14 if ids.len() < 8 => {
                let owned = rng.below(2) == 0;
                m.note(format!("{step}: acquire_many({n}) (owned: {owned})"));
                if owned {
                    m.add(n, async move {
                        Held::Owned(sem.clone().acquire_many_owned(n as u32).await.unwrap())
                    });
                } else {
                    m.add(n, async move {
                        Held::Borrowed(sem.acquire_many(n as u32).await.unwrap())
                    });
                }
            }
            15..=39 if !ids.is_empty() => {
                let id = ids[rng.below(ids.len())];
                let wants = m.wants(id);
                m.note(format!("{step}:"));
                if let Some(p) = m.poll(id) {
                    m.check(p.num_permits() == wants, || {
                        format!("#{id} got {} permits of {wants}", p.num_permits())
                    });
                    held.push(p);
                }
            }
            40..=49 if !ids.is_empty() => {
                m.note(format!("{step}:"));
                m.cancel(ids[rng.below(ids.len())]);
            }
            50..=57 => {
                let owned = rng.below(2) == 0;
                m.note(format!("{step}: try_acquire_many({n}) (owned: {owned})"));
                let expected = m.try_take(n);
                let got = if owned {
                    sem.clone()
                        .try_acquire_many_owned(n as u32)
                        .ok()
                        .map(Held::Owned)
                } else {
                    sem.try_acquire_many(n as u32).ok().map(Held::Borrowed)
                };
                m.check(got.is_some() == expected, || {
                    format!(
                        "the try gave permits: {}, the model: {expected}",
                        got.is_some()
                    )
                });
                if let Some(p) = got {
                    m.check(p.num_permits() == n, || {
                        format!("{} permits", p.num_permits())
                    });
                    held.push(p);
                }
            }
            58..=71 if !held.is_empty() => {
                let p = held.swap_remove(rng.below(held.len()));
                let k = p.num_permits();
                m.note(format!("{step}: drop a permit of {k}"));
                drop(p);
                m.release(k);
            }
            72..=79 if !held.is_empty() => {
                let i = rng.below(held.len());
                let k = rng.below(held[i].num_permits() + 2);
                m.note(format!(
                    "{step}: split({k}) a permit of {}",
                    held[i].num_permits()
                ));
                let before = held[i].num_permits();
                let part = match &mut held[i] {
                    Held::Borrowed(p) => p.split(k).map(Held::Borrowed),
                    Held::Owned(p) => p.split(k).map(Held::Owned),
                };
                m.check(part.is_some() == (k <= before), || {
                    format!("split({k}) of {before}")
                });
                m.check(
                    held[i].num_permits() + part.as_ref().map_or(0, Held::num_permits) == before,
                    || "a split lost or made permits".into(),
                );
                held.extend(part);
            }
            80..=85 if held.len() >= 2 => {
                let a = held.swap_remove(rng.below(held.len()));
                let b = held.swap_remove(rng.below(held.len()));
                let sum = a.num_permits() + b.num_permits();
                m.note(format!(
                    "{step}: merge {} and {}",
                    a.num_permits(),
                    b.num_permits()
                ));
                let merged = match (a, b) {
                    (Held::Borrowed(mut a), Held::Borrowed(b)) => {
                        a.merge(b);
                        vec![Held::Borrowed(a)]
                    }
                    (Held::Owned(mut a), Held::Owned(b)) => {
                        a.merge(b);
                        vec![Held::Owned(a)]
                    }
                    (a, b) => vec![a, b], // different kinds: kept apart
                };
                let after: usize = merged.iter().map(Held::num_permits).sum();
                m.check(after == sum, || {
                    format!("{sum} permits merged into {after}")
                });
                held.extend(merged);
            }
            86..=89 if !held.is_empty() => {
                let p = held.swap_remove(rng.below(held.len()));
                let k = p.num_permits();
                m.note(format!("{step}: forget a permit of {k}"));
                match p {
                    Held::Borrowed(p) => p.forget(),
                    Held::Owned(p) => p.forget(),
                }
                m.total -= k;
            }
            90..=94 => {
                m.note(format!("{step}: add_permits({n})"));
                sem.add_permits(n);
                m.total += n;
                m.release(n);
            }
            95..=99 => {
                let expected = n.min(m.available());
                m.note(format!("{step}: forget_permits({n}), expecting {expected}"));
                let taken = sem.forget_permits(n);
                m.check(taken == expected, || format!("forget_permits took {taken}"));
                m.free -= taken;
                m.total -= taken;
            }
            _ => continue,
        }
        m.check(sem.available_permits() == m.available(), || {
            format!(
                "available_permits {}, the model {} ({} free)",
                sem.available_permits(),
                m.available(),
                m.free
            )
        });
        m.check_wakes();
    }
    for id in m.ids() {
        m.cancel(id);
    }
    let held_sum: usize = held.iter().map(Held::num_permits).sum();
    drop(held);
    m.release(held_sum);
    assert_eq!(
        sem.available_permits(),
        m.total,
        "seed {seed}: every permit back"
    );
}
/// The count saturates at `usize::MAX` (documented, where tokio panics): the largest
/// request there is (`u32::MAX` permits) waits in line ahead of a one-permit request while
/// neither can be served, is served first once `u32::MAX` permits are added, and a release
/// on a saturated count leaves it at `usize::MAX`.
#[test]
fn the_largest_requests_keep_their_order_up_to_a_saturated_count() {
    let sem = Semaphore::new(Semaphore::MAX_PERMITS);
    let held = sem.try_acquire_many(u32::MAX).unwrap();
    assert_eq!(
        sem.forget_permits(usize::MAX),
        Semaphore::MAX_PERMITS - u32::MAX as usize
    );
    assert_eq!(sem.available_permits(), 0);
    let (big_task, small_task) = (ManualTask::default(), ManualTask::default());
    let mut big = pin!(sem.acquire_many(u32::MAX));
    let mut small = pin!(sem.acquire_many(1));
    assert!(big_task.poll(big.as_mut()).is_pending());
    assert!(small_task.poll(small.as_mut()).is_pending());
    sem.add_permits(u32::MAX as usize - 1);
    assert!(
        !big_task.is_woken() && !small_task.is_woken(),
        "one short of the first"
    );
    assert!(
        sem.try_acquire_many(0).is_ok(),
        "zero is granted behind the line"
    );
    sem.add_permits(1);
    assert!(
        big_task.is_woken() && !small_task.is_woken(),
        "the first in line only"
    );
    let Poll::Ready(Ok(big_permit)) = big_task.poll(big.as_mut()) else {
        panic!("the woken request is not served")
    };
    assert_eq!(big_permit.num_permits(), u32::MAX as usize);
    sem.add_permits(usize::MAX);
    assert!(small_task.is_woken());
    let Poll::Ready(Ok(one)) = small_task.poll(small.as_mut()) else {
        panic!("the second request is not served")
    };
    assert_eq!(sem.available_permits(), usize::MAX - 1);
    drop(held); // u32::MAX more: saturated
    assert_eq!(sem.available_permits(), usize::MAX);
    drop((big_permit, one));
    assert_eq!(sem.available_permits(), usize::MAX);
    assert_eq!(
        sem.try_acquire_many(u32::MAX).unwrap().num_permits(),
        u32::MAX as usize
    );
}

/// `close` with a line of every kind of request: each still waiting is woken exactly once
/// and fails; one handed its permits just before (woken, not yet polled) still gets them;
/// one not yet polled fails at its first poll, zero permits included; the permits held and
/// the one handed out all come back to the count.
#[test]
fn close_fails_the_line_once_each_but_not_a_request_already_served() {
    let sem = Semaphore::new(3);
    let held = sem.try_acquire_many(3).unwrap();
    let tasks: Vec<ManualTask> = (0..4).map(|_| ManualTask::default()).collect();
    let mut served = pin!(sem.acquire_many(1));
    let mut two = pin!(sem.acquire_many(2));
    let mut three = pin!(sem.acquire_many(3));
    let mut unpolled = pin!(sem.acquire_many(0));
    assert!(tasks[0].poll(served.as_mut()).is_pending());
    assert!(tasks[1].poll(two.as_mut()).is_pending());
    assert!(tasks[2].poll(three.as_mut()).is_pending());
    let mut held = held;
    drop(held.split(1).unwrap()); // to the first in line only
    assert!(tasks[0].is_woken() && !tasks[1].is_woken() && !tasks[2].is_woken());
    sem.close();
    assert!(tasks[1].is_woken() && tasks[2].is_woken());
    assert!(
        matches!(tasks[0].poll(served.as_mut()), Poll::Ready(Ok(ref p)) if p.num_permits() == 1)
    );
    assert!(matches!(tasks[1].poll(two.as_mut()), Poll::Ready(Err(_))));
    assert!(matches!(tasks[2].poll(three.as_mut()), Poll::Ready(Err(_))));
    assert!(matches!(
        tasks[3].poll(unpolled.as_mut()),
        Poll::Ready(Err(_))
    ));
    assert!(!tasks[3].is_woken(), "never in line, never woken");
    // The permit `served` got went back when its result was dropped above.
    assert_eq!(sem.available_permits(), 1);
    drop(held);
    assert_eq!(
        sem.available_permits(),
        3,
        "permits held through the close come back"
    );
}
