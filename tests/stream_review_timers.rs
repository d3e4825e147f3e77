//! An adversarial review of `overlap::stream`'s timer adapters, on the paused clock so every
//! instant is exact: what stream_tokio_stream.rs leaves out (`StreamMap`, `merge` and the
//! wrappers are in stream_review.rs).
//!
//! - `timeout`: the limit counts from the adapter's making, then from each item (items
//!   closer than the limit never elapse, however long they go on); one `Elapsed` per
//!   silence, at its exact instant, and the items after it.
//! - `Duration::MAX` as "no limit" for `timeout`, `throttle` and `chunks_timeout`: never an
//!   `Elapsed`, a second item, or a partial batch before the end (and no panic).
//! - `throttle` behind a source both faster and slower than it: each item's exact instant.
//! - `chunks_timeout`: a full batch before its deadline, a partial one at it (counted from
//!   its own first item), and a partial one at the end of the stream.
//! - Size hints that bound what is left at every step, for each adapter.
//! - A spent cooperative budget: every adapter yields after one poll's budget of items, and
//!   a deadline that passed does not win over an item already queued.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::stream::wrappers::{BroadcastStream, IntervalStream, ReceiverStream};
use overlap::stream::{self, Stream, StreamExt, StreamMap, StreamTimeExt};
use overlap::sync::{broadcast, mpsc};
use overlap::task::coop;
use overlap::time::{self, Instant, MissedTickBehavior};
use support::poll_once;

const MS: Duration = Duration::from_millis(1);

/// Sends `items` on a new channel, each at its instant (ms after now), then drops the sender
/// at `end_ms`: the channel's stream.
fn scripted<T: 'static>(items: Vec<(u64, T)>, end_ms: u64) -> ReceiverStream<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    overlap::spawn(async move {
        for (at, item) in items {
            time::sleep_until(start + Duration::from_millis(at)).await;
            tx.send(item)
                .unwrap_or_else(|_| panic!("the receiver went"));
        }
        time::sleep_until(start + Duration::from_millis(end_ms)).await;
    });
    ReceiverStream::new(rx)
}

/// Every item of `s` with the instant it came (ms after `start`), and the instant of the end.
async fn timed<S: Stream + Unpin>(mut s: S, start: Instant) -> (Vec<(u64, S::Item)>, u64) {
    let ms = || (Instant::now() - start).as_millis() as u64;
    let mut seen = Vec::new();
    while let Some(item) = s.next().await {
        seen.push((ms(), item));
    }
    (seen, ms())
}

#[overlap::test(start_paused = true)]
async fn timeout_counts_from_each_item_and_goes_on_after_each_elapsed() {
    let start = Instant::now();
    // The first item after 1.5 limits; then items 60 ms apart for 180 ms (more than the
    // limit in all, less between any two); a silence; two items; a silence; the end.
    let script = vec![
        (150, 'a'),
        (210, 'b'),
        (270, 'c'),
        (330, 'd'),
        (600, 'e'),
        (650, 'f'),
    ];
    let items = scripted(script, 900).timeout(Duration::from_millis(100));
    let (seen, end) = timed(items, start).await;
    let seen: Vec<(u64, Option<char>)> = seen.into_iter().map(|(t, r)| (t, r.ok())).collect();
    assert_eq!(
        seen,
        [
            (100, None), // counted from the adapter's making
            (150, Some('a')),
            (210, Some('b')),
            (270, Some('c')),
            (330, Some('d')),
            (430, None), // one per silence, 100 ms after the last item
            (600, Some('e')),
            (650, Some('f')),
            (750, None),
        ]
    );
    assert_eq!(
        end, 900,
        "the end when the sender goes, with no Elapsed at 850"
    );
}

#[overlap::test(start_paused = true)]
async fn duration_max_is_no_limit_for_timeout_throttle_and_chunks_timeout() {
    let start = Instant::now();
    let day = 86_400_000;
    let script = vec![(0, 1), (0, 2), (10 * day, 3)];
    let (seen, end) = timed(
        scripted(script.clone(), 20 * day).timeout(Duration::MAX),
        start,
    )
    .await;
    let seen: Vec<(u64, Option<u32>)> = seen.into_iter().map(|(t, r)| (t, r.ok())).collect();
    assert_eq!(
        seen,
        [(0, Some(1)), (0, Some(2)), (10 * day, Some(3))],
        "no Elapsed"
    );
    assert_eq!(end, 20 * day);

    // A throttle of `MAX` lets the first item through and no other, ever.
    let mut throttled = stream::iter([1, 2]).throttle(Duration::MAX);
    assert_eq!(throttled.next().await, Some(1));
    time::advance(Duration::from_secs(100 * 365 * 86_400)).await;
    assert_eq!(poll_once(throttled.next()).await, Poll::Pending);

    // Batches of `MAX` time: full ones, and the partial one only at the end.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut batches = ReceiverStream::new(rx).chunks_timeout(2, Duration::MAX);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(batches.next().await, Some(vec![0, 1]));
    assert_eq!(poll_once(batches.next()).await, Poll::Pending);
    time::advance(Duration::from_secs(100 * 365 * 86_400)).await;
    assert_eq!(poll_once(batches.next()).await, Poll::Pending, "2 is held");
    drop(tx);
    assert_eq!(batches.next().await, Some(vec![2]));
    assert_eq!(batches.next().await, None);
}

#[overlap::test(start_paused = true)]
async fn throttle_spaces_a_fast_source_and_passes_a_slow_one_at_once() {
    let start = Instant::now();
    // A burst of three, one item 100 ms in (slower than the throttle), one just after it,
    // and one long after.
    let script = vec![(0, 0), (0, 1), (0, 2), (100, 3), (101, 4), (300, 5)];
    let throttled = scripted(script, 300).throttle(Duration::from_millis(25));
    let (seen, end) = timed(throttled, start).await;
    assert_eq!(
        seen,
        [(0, 0), (25, 1), (50, 2), (100, 3), (125, 4), (300, 5)],
        "the burst spaced out, the slow item at once, the next 25 ms after it"
    );
    assert_eq!(
        end, 325,
        "the end, too, waits out the delay after the last item"
    );
}

#[overlap::test(start_paused = true)]
async fn chunks_timeout_gives_full_batches_early_partial_ones_at_their_deadline_and_at_the_end() {
    let start = Instant::now();
    let script = vec![
        (0, 'a'),
        (20, 'b'),
        (40, 'c'), // full at 40, before a's deadline at 50
        (70, 'd'), // a new batch: due at 120, counted from d, not from the last batch
        (100, 'e'),
        (200, 'f'), // alone until its deadline at 250
        (260, 'g'),
        (260, 'h'),
        (260, 'i'), // full at once
        (260, 'j'), // held when the stream ends at 280, before its deadline at 310
    ];
    let batches = scripted(script, 280).chunks_timeout(3, Duration::from_millis(50));
    let (seen, end) = timed(batches, start).await;
    let seen: Vec<(u64, String)> = seen
        .into_iter()
        .map(|(t, b)| (t, b.into_iter().collect()))
        .collect();
    let want = [
        (40, "abc"),
        (120, "de"),
        (250, "f"),
        (260, "ghi"),
        (280, "j"),
    ];
    let want: Vec<(u64, String)> = want.iter().map(|&(t, b)| (t, b.to_string())).collect();
    assert_eq!(seen, want);
    assert_eq!(end, 280);
}

/// Drains `s`, whose items are all ready, checking before each poll that its size hint
/// bounds the number of items still to come.
async fn hints_hold<S: Stream + Unpin>(mut s: S, what: &str) {
    let mut hints = vec![s.size_hint()];
    while s.next().await.is_some() {
        hints.push(s.size_hint());
    }
    let total = hints.len() - 1;
    for (taken, (low, high)) in hints.into_iter().enumerate() {
        let left = total - taken;
        assert!(low <= left, "{what}: low {low} with {left} left");
        assert!(
            high.is_none_or(|h| h >= left),
            "{what}: high {high:?} with {left} left"
        );
    }
}

#[overlap::test(start_paused = true)]
async fn size_hints_bound_what_is_left_at_every_step() {
    let ten = || stream::iter(0..10u32);
    let hour = Duration::from_secs(3600);
    hints_hold(ten().timeout(hour), "timeout").await;
    hints_hold(ten().throttle(Duration::ZERO), "throttle").await;
    hints_hold(ten().merge(stream::iter(10..13)), "merge").await;
    hints_hold(ten().map_while(|n| (n < 7).then_some(n)), "map_while").await;
    for max_size in [1, 3, 10, 11] {
        hints_hold(ten().chunks_timeout(max_size, hour), "chunks_timeout").await;
    }
    let map: StreamMap<u32, _> = (0..5).map(|k| (k, stream::iter(0..k))).collect();
    hints_hold(map, "StreamMap").await;
    // The exact ones, where the hint can know.
    assert_eq!(ten().timeout(hour).size_hint(), (10, Some(21)));
    assert_eq!(ten().throttle(hour).size_hint(), (10, Some(10)));
    let mut batches = ten().chunks_timeout(4, hour);
    assert_eq!(batches.size_hint().0, 3);
    assert_eq!(batches.next().await, Some(vec![0, 1, 2, 3]));
    assert_eq!(batches.size_hint().0, 2);
}

/// How many items `s` gives before a task spawned now gets to run, polled from a fresh
/// budget: an adapter that hides its stream's spent budget never lets it run.
async fn items_before_another_task_runs<S: Stream + Unpin>(mut s: S, what: &str) -> usize {
    overlap::yield_now().await;
    let other_ran = Rc::new(Cell::new(false));
    let flag = other_ran.clone();
    overlap::spawn(async move { flag.set(true) });
    let mut n = 0;
    loop {
        s.next().await.unwrap_or_else(|| panic!("{what} ended"));
        if other_ran.get() {
            return n;
        }
        n += 1;
        assert!(
            n < 1_000,
            "{what}: 1,000 items and the other task never ran"
        );
    }
}

/// An unbounded channel's stream with 1,000 values queued, the sender kept open.
fn backlog() -> ReceiverStream<u32> {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..1_000 {
        tx.send(i).unwrap();
    }
    std::mem::forget(tx);
    ReceiverStream::new(rx)
}

#[overlap::test(start_paused = true)]
async fn every_adapter_yields_after_one_polls_budget_of_items() {
    let hour = Duration::from_secs(3600);
    let budget = 128;
    let n = items_before_another_task_runs(backlog(), "the channel").await;
    assert_eq!(n, budget, "the channel's own budget");
    let counts = [
        (
            "timeout",
            items_before_another_task_runs(backlog().timeout(hour), "").await,
        ),
        (
            "throttle",
            items_before_another_task_runs(backlog().throttle(Duration::ZERO), "").await,
        ),
        (
            "merge",
            items_before_another_task_runs(backlog().merge(stream::pending()), "").await,
        ),
        (
            "map_while",
            items_before_another_task_runs(backlog().map_while(Some), "").await,
        ),
        (
            "chunks",
            items_before_another_task_runs(backlog().chunks_timeout(1, hour), "").await,
        ),
        (
            "map",
            items_before_another_task_runs(StreamMap::from_iter([(0, backlog())]), "").await,
        ),
    ];
    for (what, n) in counts {
        assert_eq!(n, budget, "{what}");
    }
    let (tx, rx) = broadcast::channel(1_000);
    for i in 0..1_000 {
        tx.send(i).unwrap();
    }
    let n = items_before_another_task_runs(BroadcastStream::new(rx), "broadcast").await;
    assert_eq!(n, budget, "BroadcastStream");
    // An interval 1,000 ticks behind, in `Burst`: each tick is a sleep already due.
    let mut ticks = time::interval(MS);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    ticks.tick().await;
    time::advance(1_000 * MS).await;
    let n = items_before_another_task_runs(IntervalStream::new(ticks), "interval").await;
    assert_eq!(n, budget, "IntervalStream");
}

/// Spends what is left of the task's budget for this poll, without yielding.
async fn spend_the_budget() {
    while coop::has_budget_remaining() {
        coop::consume_budget().await;
    }
}

#[overlap::test(start_paused = true)]
async fn on_a_spent_budget_a_passed_deadline_does_not_win_over_a_queued_item() {
    let start = Instant::now();
    let limit = Duration::from_millis(100);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut items = ReceiverStream::new(rx).timeout(limit);
    time::advance(limit).await;
    tx.send('a').unwrap();
    // The receive finds the budget spent and waits without looking; the deadline, which has
    // passed, must wait too: the next poll, with a fresh budget, finds 'a'.
    spend_the_budget().await;
    assert_eq!(
        items.next().await,
        Some(Ok('a')),
        "an Elapsed hid a queued item"
    );
    assert_eq!(Instant::now() - start, limit);
    assert!(items.next().await.unwrap().is_err());
    assert_eq!(Instant::now() - start, 2 * limit, "counted from 'a'");

    // A batch past its deadline takes what is queued by then.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut batches = ReceiverStream::new(rx).chunks_timeout(10, limit);
    tx.send(1).unwrap();
    assert_eq!(poll_once(batches.next()).await, Poll::Pending);
    time::advance(limit).await;
    tx.send(2).unwrap();
    spend_the_budget().await;
    assert_eq!(
        batches.next().await,
        Some(vec![1, 2]),
        "2 was queued at the deadline"
    );

    // `timeout_repeating`'s tick, due, waits for the budget too.
    let (tx, rx) = mpsc::unbounded_channel();
    let ticks = time::interval_at(Instant::now() + limit, limit);
    let mut items = ReceiverStream::new(rx).timeout_repeating(ticks);
    time::advance(limit).await;
    tx.send('b').unwrap();
    spend_the_budget().await;
    assert_eq!(
        items.next().await,
        Some(Ok('b')),
        "a tick hid a queued item"
    );
}
