//! `time::DelayQueue`: values out in deadline order (insertion order among equals), taken
//! back or moved by key, stale keys refused; and the task waiting on it woken whenever the
//! first value changes: an earlier insert, a removal or a reset (also to a past deadline),
//! the last value removed, a clear, an insert into an empty queue. Those wakes are the
//! bugs tokio-util's queue had over the years (tokio issues #854, #1700, #4161, #6751,
//! #8274, #8320): each has a test here. Paused-clock tests check exact virtual instants.

mod support;

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use overlap::stream::{FusedStream, StreamExt};
use overlap::time::{self, advance, DelayQueue, Instant};
use support::ManualTask;

const MS: Duration = Duration::from_millis(1);

/// Polls `q` once with `task`'s waker.
fn poll_once<T>(task: &ManualTask, q: &mut DelayQueue<T>) -> Poll<Option<T>> {
    task.poll(pin!(poll_fn(|cx| q.poll_expired(cx))))
        .map(|e| e.map(|e| e.into_inner()))
}

#[overlap::test(start_paused = true)]
async fn values_come_out_in_deadline_order_at_their_exact_instants() {
    let start = time::now();
    let mut q = DelayQueue::new();
    q.insert("c", 30 * MS);
    q.insert("a", 10 * MS);
    q.insert("b1", 20 * MS);
    q.insert("b2", 20 * MS); // same deadline: after b1, inserted first
    q.insert_at("past", start - Duration::from_secs(1));
    assert_eq!(q.len(), 5);
    let mut got = Vec::new();
    while let Some(e) = q.next().await {
        got.push((e.get_ref().to_string(), time::now() - start, e.deadline()));
    }
    let want = [("past", 0), ("a", 10), ("b1", 20), ("b2", 20), ("c", 30)];
    for ((name, at, deadline), (want_name, want_ms)) in got.iter().zip(want) {
        assert_eq!((name.as_str(), *at), (want_name, want_ms * MS));
        if want_ms > 0 {
            assert_eq!(*deadline, start + want_ms * MS);
        }
    }
    assert_eq!(got.len(), 5);
    assert!(
        q.is_empty() && q.is_terminated(),
        "drained: the stream says so"
    );
}

#[overlap::test(start_paused = true)]
async fn keys_take_back_move_and_go_stale() {
    let start = time::now();
    let mut q = DelayQueue::with_capacity(4);
    assert!(q.capacity() >= 4);
    let a = q.insert('a', 10 * MS);
    let b = q.insert('b', 20 * MS);
    assert_eq!(q.peek(), Some(a));
    assert_eq!(q.deadline(&b), start + 20 * MS);
    q.reset(&b, 5 * MS);
    assert_eq!((q.peek(), q.deadline(&b)), (Some(b), start + 5 * MS));
    let taken = q.remove(&a);
    assert_eq!((taken.into_inner(), q.len()), ('a', 1));
    assert!(q.try_remove(&a).is_none(), "removed already");

    // The freed slot holds a new value: the old key does not name it.
    let c = q.insert('c', 50 * MS);
    assert_ne!(a, c);
    assert!(q.try_remove(&a).is_none());
    let stale = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.remove(&a)));
    assert!(
        stale.is_err(),
        "remove of a stale key panics, as documented"
    );
    assert_eq!(q.len(), 2, "and took nothing");

    let first = q.next().await.unwrap();
    assert_eq!((first.key(), *first.get_ref()), (b, 'b'));
    assert_eq!(time::now() - start, 5 * MS);
    assert!(q.try_remove(&b).is_none(), "expired keys are stale");
    assert_eq!(q.remove(&c).into_inner(), 'c');
    assert!(q.next().await.is_none());
}

/// tokio #854 and #1700: a value inserted after the task went to sleep on a later one must
/// wake it at its own, earlier deadline.
#[overlap::test(start_paused = true)]
async fn an_earlier_insert_wakes_the_waiting_task_at_its_deadline() {
    let task = ManualTask::default();
    let mut q = DelayQueue::new();
    q.insert("late", 100 * MS);
    assert!(poll_once(&task, &mut q).is_pending());
    q.insert("early", 10 * MS);
    advance(9 * MS).await;
    assert!(!task.is_woken(), "woken before the early deadline");
    advance(MS).await;
    assert!(task.is_woken(), "not woken at the early deadline");
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(Some("early")));
    assert!(poll_once(&task, &mut q).is_pending());
}

/// tokio #4161 and #6751: removing the last value, or clearing (tokio #8320), wakes the
/// waiting task, which then sees the queue empty.
#[overlap::test(start_paused = true)]
async fn emptying_the_queue_wakes_the_task_to_see_none() {
    let task = ManualTask::default();
    let mut q = DelayQueue::new();
    let key = q.insert(1, 100 * MS);
    assert!(poll_once(&task, &mut q).is_pending());
    q.remove(&key);
    assert!(task.is_woken(), "the last removal woke nobody");
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(None));

    q.insert(2, 100 * MS);
    q.insert(3, 200 * MS);
    assert!(poll_once(&task, &mut q).is_pending());
    q.clear();
    assert!(task.is_woken(), "the clear woke nobody");
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(None));
}

/// tokio #8274: a value reset to a deadline already past is due at once; the task waiting
/// for a later one is woken for it without time moving.
#[overlap::test(start_paused = true)]
async fn a_reset_into_the_past_wakes_the_task_at_once() {
    let task = ManualTask::default();
    let mut q = DelayQueue::new();
    let key = q.insert("x", 100 * MS);
    assert!(poll_once(&task, &mut q).is_pending());
    q.reset_at(&key, time::now() - MS);
    overlap::yield_now().await; // the runtime's loop fires the moved timer
    assert!(task.is_woken(), "a past deadline did not wake the task");
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(Some("x")));
}

#[overlap::test(start_paused = true)]
async fn an_insert_into_an_empty_queue_wakes_the_task_that_saw_it_empty() {
    let task = ManualTask::default();
    let mut q = DelayQueue::new();
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(None));
    assert!(q.is_terminated());
    q.insert(7, Duration::ZERO);
    assert!(task.is_woken(), "the insert woke nobody");
    assert!(!q.is_terminated(), "a value queued: not terminated");
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(Some(7)));

    // Once more after the queue's timer was armed for another task: the task that saw
    // the queue empty is the one the next insert wakes, at once.
    let other = ManualTask::default();
    let key = q.insert(8, 100 * MS);
    assert!(poll_once(&other, &mut q).is_pending());
    q.remove(&key);
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(None));
    q.insert(9, 10 * MS);
    assert!(
        task.is_woken(),
        "the insert woke the timer's old task, not this one"
    );
}

/// The same once a value has expired: the queue's timer is spent then, and the insert
/// (made by another task, the waiting one asleep on the empty queue) must still wake it,
/// where it moved the spent timer, which had no task to wake, and the waiter slept on.
#[overlap::test(start_paused = true)]
async fn an_insert_after_an_expiry_wakes_the_task_that_saw_the_queue_empty() {
    let task = ManualTask::default();
    let mut q = DelayQueue::new();
    q.insert(1, 10 * MS);
    assert!(poll_once(&task, &mut q).is_pending());
    advance(10 * MS).await;
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(Some(1)));
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(None));
    q.insert(2, 10 * MS);
    advance(10 * MS).await;
    assert!(
        task.is_woken(),
        "the insert woke nobody, not even at its deadline"
    );
    assert_eq!(poll_once(&task, &mut q), Poll::Ready(Some(2)));
}

/// In a `select!` loop, `select_next_some()` on an empty queue sleeps rather than firing
/// at every round: the loop turns once per event (a command inserting a value, a value
/// expiring), not in a spin.
#[overlap::test(start_paused = true)]
async fn select_next_some_sleeps_on_an_empty_queue() {
    let (tx, mut commands) = overlap::sync::mpsc::unbounded_channel::<(u32, Duration)>();
    let start = time::now();
    overlap::spawn(async move {
        for (v, after) in [(1, 50), (2, 10)] {
            time::sleep(20 * MS).await;
            tx.send((v, after * MS)).unwrap();
        }
    });
    let mut q = DelayQueue::new();
    let (mut rounds, mut expired) = (0, Vec::new());
    loop {
        rounds += 1;
        overlap::select! {
            e = q.select_next_some() => expired.push((e.into_inner(), time::now() - start)),
            (v, after) = commands.select_next_some() => {
                q.insert(v, after);
            }
            complete => break, // the commands ended and the queue is drained
        }
        assert!(rounds < 100, "the loop spins");
    }
    assert_eq!(rounds, 5, "two commands, two expiries, the end");
    // Value 1 queued at 20 ms for 50 ms, value 2 at 40 ms for 10 ms.
    assert_eq!(expired, [(2, 50 * MS), (1, 70 * MS)]);
}

#[test]
fn values_expire_on_the_real_clock_too() {
    overlap::block_on(async {
        let start = Instant::now();
        let mut q = DelayQueue::new();
        for i in (0..5u64).rev() {
            q.insert(i, Duration::from_millis((i + 1) * 2));
        }
        let got: Vec<u64> = q.map(|e| e.into_inner()).collect().await;
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert!(start.elapsed() >= 10 * MS, "the last came out early");
    });
}

/// Draining many values already due is a loop of always-ready polls: it spends the task's
/// budget and lets other tasks run, as a channel's receive loop does.
#[overlap::test]
async fn draining_many_due_values_lets_other_tasks_run() {
    const VALUES: u64 = 10_000;
    let q = std::rc::Rc::new(std::cell::RefCell::new(DelayQueue::new()));
    let past = time::now() - Duration::from_secs(1);
    for i in 0..VALUES {
        q.borrow_mut().insert_at(i, past);
    }
    let n = support::steps_before_another_task_runs(VALUES, move || {
        let q = q.clone();
        async move {
            poll_fn(|cx| q.borrow_mut().poll_expired(cx))
                .await
                .is_some()
        }
    })
    .await;
    assert!(n < VALUES, "{VALUES} due values taken without yielding");
}

/// After a burst, `shrink_to_fit` gives the table back; keys of values still queued keep
/// working, and keys of values gone stay refused, also once their slots are made anew.
#[overlap::test(start_paused = true)]
async fn shrink_to_fit_gives_a_bursts_room_back_and_keeps_keys_honest() {
    let mut q = DelayQueue::new();
    let keep = q.insert(u32::MAX, 10 * MS);
    let burst: Vec<_> = (0..1000).map(|i| q.insert(i, 20 * MS)).collect();
    assert!(q.capacity() < 1000 + q.len(), "room for the burst");
    for key in &burst {
        q.remove(key);
    }
    q.shrink_to_fit();
    assert!(
        q.capacity() < 100,
        "the burst's room kept: {}",
        q.capacity()
    );
    assert_eq!(q.deadline(&keep), time::now() + 10 * MS);
    // New values reuse the indexes the burst had: its keys name none of them.
    let fresh: Vec<_> = (0..1000).map(|i| q.insert(i, 30 * MS)).collect();
    assert!(burst.iter().all(|k| q.try_remove(k).is_none()));
    assert!(fresh.iter().all(|k| q.try_remove(k).is_some()));
    assert_eq!(q.remove(&keep).into_inner(), u32::MAX);
    q.shrink_to_fit();
    assert_eq!(q.capacity(), 0, "an empty queue keeps nothing");
    assert!(q.next().await.is_none());
}

/// `compact` moves the values left after most are removed into the table's first slots
/// and gives the rest back, where `shrink_to_fit` cannot (a value near the end holds the
/// table): every key still reaches its value (deadline, reset, remove, and the key each
/// `Expired` carries), keys of values gone stay refused (also those of the slots moved
/// into), and the values still come out in deadline order at their instants.
#[overlap::test(start_paused = true)]
async fn compact_keeps_every_key_and_gives_the_rest_back() {
    let mut q = DelayQueue::new();
    let keys: Vec<_> = (0..1000u32)
        .map(|i| q.insert(i, (1 + i % 7) * MS))
        .collect();
    // Keep every hundredth value (the last among them), remove the rest.
    let (kept, gone): (Vec<_>, Vec<_>) = keys.iter().enumerate().partition(|(i, _)| i % 100 == 99);
    for (_, key) in &gone {
        q.remove(key);
    }
    q.shrink_to_fit();
    assert!(
        q.capacity() > 900,
        "shrink_to_fit let go below a value still queued"
    );
    q.compact();
    assert!(q.capacity() <= kept.len(), "room kept: {}", q.capacity());
    assert_eq!(q.len(), kept.len());
    assert!(
        gone.iter().all(|(_, k)| q.try_remove(k).is_none()),
        "a stale key took a value"
    );
    // Fresh values reuse freed slots: the stale keys name none of them either.
    let fresh: Vec<_> = (0..50u32).map(|i| q.insert(5000 + i, 100 * MS)).collect();
    assert!(gone.iter().all(|(_, k)| q.try_remove(k).is_none()));

    let (_, moved_early) = kept[0];
    assert_eq!(q.deadline(moved_early), time::now() + (1 + 99 % 7) * MS);
    q.reset(moved_early, 50 * MS);
    let (_, taken) = kept[1];
    assert_eq!(q.remove(taken).into_inner(), 199);
    assert!(
        q.try_remove(taken).is_none(),
        "a moved value's key taken twice"
    );
    let start = Instant::now();
    let mut out = Vec::new();
    while let Some(expired) = q.next().await {
        let value = expired.get_ref().to_owned();
        if value < 1000 {
            assert_eq!(
                expired.key(),
                keys[value as usize],
                "an expired value's key changed"
            );
            out.push((value, expired.deadline() - start));
        } else {
            assert!(fresh.contains(&expired.key()));
        }
    }
    let mut expect: Vec<_> = kept[2..]
        .iter()
        .map(|(i, _)| (*i as u32, (1 + *i as u32 % 7) * MS))
        .collect();
    expect.push((99, 50 * MS));
    expect.sort_by_key(|&(v, d)| (d, v));
    assert_eq!(out, expect);
}
