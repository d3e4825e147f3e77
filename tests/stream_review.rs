//! An adversarial review of `overlap::stream`'s `StreamMap`, `merge` and wrappers: what
//! stream_tokio_stream.rs leaves out (the timer adapters are in stream_review_timers.rs).
//!
//! - `StreamMap`: streams removed or replaced while pending let go of the map's waker (the
//!   one replaced still holds it until it wakes once, as tokio-stream's does, then never
//!   again); always-ready streams share the items evenly, counted over 40,000 polls, through
//!   `next` and `next_many`; ten thousand streams drained, some replaced midway, against a
//!   model of every key's items and of `size_hint`.
//! - `merge`: a side that ends is never polled again, early, late or together with the
//!   other, and the size hints follow; a side's panic reaches the caller with its message.
//! - `BroadcastStream` lagging twice: each `Lagged(n)` with its exact count, then the values
//!   still held; `WatchStream`: the current value first (a change made before wrapping
//!   counts once), then only changes, and the last change before the senders go.
//! - `IntervalStream`: the scheduled instant of each tick, before and after a stall.

mod support;

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::stream::wrappers::{
    BroadcastStream, BroadcastStreamRecvError, IntervalStream, ReceiverStream, WatchStream,
};
use overlap::stream::{self, FusedStream, Stream, StreamExt, StreamMap, StreamTimeExt};
use overlap::sync::{broadcast, mpsc, watch};
use overlap::time::{self, Instant, MissedTickBehavior};
use support::{panic_message, poll_once, ManualTask};

/// A map of one stream of each kind that waits on something: a channel of each kind and
/// an interval.
type AnyStreams = StreamMap<&'static str, Pin<Box<dyn Stream<Item = u32>>>>;

#[overlap::test]
async fn a_stream_removed_from_a_map_while_pending_never_wakes_the_map_again() {
    let task = ManualTask::default();
    let mut map = AnyStreams::new();
    let (mpsc_tx, mpsc_rx) = mpsc::channel(4);
    let (broadcast_tx, broadcast_rx) = broadcast::channel(4);
    let (watch_tx, watch_rx) = watch::channel(0);
    let hour = Duration::from_secs(3600);
    let ticks = time::interval_at(Instant::now() + hour, hour);
    map.insert("mpsc", Box::pin(ReceiverStream::new(mpsc_rx)));
    map.insert(
        "broadcast",
        Box::pin(BroadcastStream::new(broadcast_rx).map(Result::unwrap)),
    );
    map.insert("watch", Box::pin(WatchStream::from_changes(watch_rx)));
    map.insert("interval", Box::pin(IntervalStream::new(ticks).map(|_| 0)));
    assert!(task.poll(pin!(map.next())).is_pending());
    assert_eq!(
        task.wakers_held(),
        4,
        "each pending stream holds the map's waker"
    );
    for (held, key) in [(3, "mpsc"), (2, "broadcast"), (1, "watch"), (0, "interval")] {
        drop(map.remove(key).expect("it is in"));
        assert_eq!(
            task.wakers_held(),
            held,
            "{key}'s waker outlived its stream"
        );
    }
    // What comes for them, and their senders going, wakes nobody.
    assert!(mpsc_tx.send(1).await.is_err());
    assert!(broadcast_tx.send(1).is_err());
    assert!(watch_tx.send(1).is_err());
    drop((mpsc_tx, broadcast_tx, watch_tx));
    assert!(!task.is_woken(), "a removed stream woke the map");
}

#[overlap::test]
async fn a_stream_replaced_in_a_map_while_pending_wakes_the_map_once_at_most() {
    let task = ManualTask::default();
    let mut map = StreamMap::new();
    let mut senders = Vec::new();
    for key in 0..2 {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        map.insert(key, ReceiverStream::new(rx));
        senders.push(tx);
    }
    assert!(task.poll(pin!(map.next())).is_pending());
    // The old stream comes back to the caller, still holding the map's waker from the last
    // poll; the new one has not been polled yet.
    let (tx_new, rx_new) = mpsc::unbounded_channel();
    let old = map
        .insert(0, ReceiverStream::new(rx_new))
        .expect("the stream under key 0 comes back");
    assert_eq!(task.wakers_held(), 2, "the old stream 0 and stream 1");
    senders[0].send(10).unwrap();
    assert!(task.is_woken(), "one stale wake, as tokio-stream's map has");
    assert!(
        task.poll(pin!(map.next())).is_pending(),
        "the replaced stream's item is not the map's"
    );
    assert_eq!(task.wakers_held(), 2, "stream 1 and the new stream 0");
    senders[0].send(11).unwrap();
    drop(senders.remove(0));
    assert!(
        !task.is_woken(),
        "the replaced stream wakes the map no more"
    );

    tx_new.send(20).unwrap();
    assert!(task.is_woken());
    assert_eq!(task.poll(pin!(map.next())), Poll::Ready(Some((0, 20))));
    let mut old = old.into_inner();
    assert_eq!((old.try_recv(), old.try_recv()), (Ok(10), Ok(11)));
    assert_eq!(old.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
    drop(old);
    map.clear();
    assert_eq!(
        task.wakers_held(),
        0,
        "clear drops every stream and its waker"
    );
}

#[overlap::test]
async fn a_stream_map_shares_the_items_of_always_ready_streams_evenly() {
    const STREAMS: usize = 4;
    const ITEMS: usize = 40_000;
    let mut map = StreamMap::new();
    for key in 0..STREAMS {
        map.insert(key, stream::repeat(key));
    }
    // Each poll starts at a random stream, which has an item: a share of 1/4 each, so each
    // count is 10,000 with a standard deviation of 87; the bounds are 11 of those away.
    let mut counts = [0; STREAMS];
    for _ in 0..ITEMS {
        let (key, item) = map.next().await.unwrap();
        assert_eq!(key, item, "an item under another stream's key");
        counts[key] += 1;
    }
    for (key, &n) in counts.iter().enumerate() {
        assert!(
            (9_000..=11_000).contains(&n),
            "stream {key}: {n} of {ITEMS}: {counts:?}"
        );
    }
    // `next_many` with a limit of 2 takes from the start and the stream after it: each
    // stream is in two of the four starts' pairs, so it gets half of the calls' items.
    let mut counts = [0; STREAMS];
    let mut buffer = Vec::new();
    for _ in 0..ITEMS / 2 {
        buffer.clear();
        assert_eq!(map.next_many(&mut buffer, 2).await, 2);
        assert_ne!(
            buffer[0].0, buffer[1].0,
            "one stream polled twice in a round"
        );
        for &(key, item) in &buffer {
            assert_eq!(key, item);
            counts[key] += 1;
        }
    }
    for (key, &n) in counts.iter().enumerate() {
        assert!(
            (9_000..=11_000).contains(&n),
            "next_many, stream {key}: {n}: {counts:?}"
        );
    }
}

/// A stream's items left in the model, under its key.
type Model = HashMap<u32, Vec<u32>>;

fn items_left(model: &Model) -> usize {
    model.values().map(Vec::len).sum()
}

#[overlap::test]
async fn ten_thousand_streams_drain_against_a_model_of_their_items_and_size_hints() {
    const KEYS: u32 = 10_000;
    let mut map = StreamMap::with_capacity(KEYS as usize);
    // What each key has still to give, first item last (popped as it comes).
    let mut model: Model = HashMap::new();
    for key in 0..KEYS {
        let items: Vec<u32> = (0..key % 4).map(|n| key * 10 + n).collect();
        assert!(map.insert(key, stream::iter(items.clone())).is_none());
        model.insert(key, items.into_iter().rev().collect());
    }
    let left = items_left(&model);
    assert_eq!(left, 15_000);
    assert_eq!(map.size_hint(), (left, Some(left)));
    // Streams with no upper bound in another map: the low end saturates, the high end is
    // unknown, and both come back once that stream goes.
    let mut unbounded = StreamMap::new();
    unbounded.insert(0u32, stream::iter(0..usize::MAX));
    unbounded.insert(1, stream::iter(0..5));
    assert_eq!(unbounded.size_hint(), (usize::MAX, None));
    assert!(unbounded.remove(&0).is_some());
    assert_eq!(unbounded.size_hint(), (5, Some(5)));

    let mut taken = 0;
    // Items the replaced streams still held, never taken from the map.
    let mut dropped = 0;
    while let Some((key, item)) = map.next().await {
        let expected = model.get_mut(&key).and_then(Vec::pop);
        assert_eq!(
            Some(item),
            expected,
            "key {key}: out of order, twice, or made up"
        );
        taken += 1;
        if taken % 1_000 == 0 {
            let left = items_left(&model);
            assert_eq!(map.size_hint(), (left, Some(left)), "after {taken} items");
            let with_items = model.values().filter(|v| !v.is_empty()).count();
            assert!(
                map.len() >= with_items,
                "a stream with items left was dropped"
            );
        }
        // Halfway, every 97th key gets a new stream: the old one comes back with exactly
        // what the model says it had left.
        if taken == 7_500 {
            for key in (0..KEYS).step_by(97) {
                let fresh: Vec<u32> = vec![1_000_000 + key];
                let old = map.insert(key, stream::iter(fresh.clone()));
                let left = model[&key].len();
                dropped += left;
                match old {
                    Some(old) => assert_eq!(old.size_hint(), (left, Some(left)), "key {key}"),
                    None => assert_eq!(left, 0, "key {key} was removed with items left"),
                }
                model.insert(key, fresh);
            }
        }
    }
    assert!(
        model.iter().all(|(_, v)| v.is_empty()),
        "every item came out"
    );
    let fresh = (KEYS as usize).div_ceil(97);
    assert_eq!(taken, 15_000 - dropped + fresh);
    assert!(map.is_empty());
    assert_eq!(map.size_hint(), (0, Some(0)));
}

/// A stream of `items` that panics if polled again after it ended, with exact size hints.
struct EndsOnce {
    items: std::vec::IntoIter<u32>,
    ended: Rc<Cell<bool>>,
}

fn ends_once(items: &[u32]) -> (EndsOnce, Rc<Cell<bool>>) {
    let ended = Rc::new(Cell::new(false));
    let stream = EndsOnce {
        items: Vec::from(items).into_iter(),
        ended: ended.clone(),
    };
    (stream, ended)
}

impl Stream for EndsOnce {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        assert!(!self.ended.get(), "polled again after it ended");
        let next = self.items.next();
        self.ended.set(next.is_none());
        Poll::Ready(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

#[overlap::test]
async fn merge_never_polls_a_side_again_after_it_ends_and_passes_a_sides_panic_on() {
    // One side ends early: the other goes on alone; the hints count what is left.
    let (short, short_ended) = ends_once(&[1]);
    let (long, long_ended) = ends_once(&[10, 11, 12]);
    let mut merged = short.merge(long);
    let mut seen = Vec::new();
    loop {
        let hint = merged.size_hint();
        let Some(item) = merged.next().await else {
            assert_eq!(hint, (0, Some(0)));
            break;
        };
        assert_eq!(hint, (4 - seen.len(), Some(4 - seen.len())));
        seen.push(item);
        if seen.len() < 4 {
            assert!(!merged.is_terminated());
        }
    }
    assert_eq!(seen, [1, 10, 11, 12]);
    assert!(short_ended.get() && long_ended.get());
    assert!(merged.is_terminated());
    assert_eq!(merged.next().await, None, "neither side is polled again");

    // Both end on the same poll, after the same number of items.
    let (a, _) = ends_once(&[1, 2]);
    let (b, _) = ends_once(&[3, 4]);
    let both: Vec<u32> = a.merge(b).collect().await;
    assert_eq!(both, [1, 3, 2, 4]);

    // A side that panics: the panic reaches the caller, message and all, after the items
    // that came before it.
    let (calm, _) = ends_once(&[1, 2, 3]);
    let mut polls = 0;
    let panicky = stream::poll_fn(move |_| {
        polls += 1;
        match polls {
            1 => Poll::Ready(Some(100)),
            _ => panic!("side b broke on poll {polls}"),
        }
    });
    let mut merged = calm.merge(panicky);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(
        Pin::new(&mut merged).poll_next(&mut cx),
        Poll::Ready(Some(1))
    );
    assert_eq!(
        Pin::new(&mut merged).poll_next(&mut cx),
        Poll::Ready(Some(100))
    );
    assert_eq!(
        Pin::new(&mut merged).poll_next(&mut cx),
        Poll::Ready(Some(2))
    );
    let caught = catch_unwind(AssertUnwindSafe(|| {
        Pin::new(&mut merged).poll_next(&mut cx)
    }));
    let payload = caught.expect_err("b's second poll panics");
    assert_eq!(panic_message(payload), "side b broke on poll 2");
}

#[overlap::test]
async fn a_broadcast_stream_that_lags_twice_reports_each_loss_with_its_count() {
    let (tx, rx) = broadcast::channel(2);
    let mut values = BroadcastStream::new(rx);
    for i in 0..5u32 {
        tx.send(i).unwrap();
    }
    // The channel holds 3 and 4: 0, 1 and 2 are lost.
    assert_eq!(
        values.next().await,
        Some(Err(BroadcastStreamRecvError::Lagged(3)))
    );
    assert_eq!(values.next().await, Some(Ok(3)));
    for i in 5..10 {
        tx.send(i).unwrap();
    }
    // Next was 4; the channel holds 8 and 9: 4, 5, 6 and 7 are lost.
    assert_eq!(
        values.next().await,
        Some(Err(BroadcastStreamRecvError::Lagged(4)))
    );
    assert_eq!(values.next().await, Some(Ok(8)));
    assert_eq!(values.next().await, Some(Ok(9)));
    assert_eq!(poll_once(values.next()).await, Poll::Pending, "caught up");
    // A lag right before the senders go is still reported, then what is held, then the end.
    for i in 10..13 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(
        values.next().await,
        Some(Err(BroadcastStreamRecvError::Lagged(1)))
    );
    assert_eq!(values.next().await, Some(Ok(11)));
    assert_eq!(values.next().await, Some(Ok(12)));
    assert_eq!(values.next().await, None);
    assert!(values.is_terminated());
    assert_eq!(values.next().await, None);
}

#[overlap::test]
async fn a_watch_stream_gives_the_current_value_first_then_only_changes_then_the_last_one() {
    let (tx, rx) = watch::channel(1u32);
    let unchanged = rx.clone();
    tx.send(2).unwrap();
    // A change made before wrapping: `new` gives the current value once (not again as a
    // change), `from_changes` gives that change.
    let mut states = WatchStream::new(rx);
    let mut changes = WatchStream::from_changes(unchanged);
    assert_eq!(states.next().await, Some(2));
    assert_eq!(changes.next().await, Some(2));
    assert_eq!(poll_once(states.next()).await, Poll::Pending, "2 once only");
    assert_eq!(poll_once(changes.next()).await, Poll::Pending);

    // Two sends between polls are one change; a modification that reports none is none; a
    // send of an equal value is a change (as tokio's `send` marks it).
    tx.send(3).unwrap();
    tx.send(4).unwrap();
    assert_eq!(states.next().await, Some(4));
    assert!(!tx.send_if_modified(|v| {
        *v = 40; // changed in place, reported as unchanged
        false
    }));
    assert_eq!(poll_once(states.next()).await, Poll::Pending);
    tx.send(4).unwrap();
    assert_eq!(states.next().await, Some(4));
    assert_eq!(
        changes.next().await,
        Some(4),
        "3, 40 and 4 were one change for it"
    );

    // The last change before the senders go comes, then the end.
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(states.next().await, Some(5));
    assert_eq!(states.next().await, None);
    assert!(states.is_terminated());
    assert_eq!(changes.next().await, Some(5));
    assert_eq!(changes.next().await, None);
}

/// The next `n` ticks of `ticks`: each tick's scheduled instant and the clock when it came,
/// both from `start`.
async fn ticks_seen(
    ticks: &mut IntervalStream,
    n: usize,
    start: Instant,
) -> Vec<(Duration, Duration)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let tick = ticks.next().await.expect("an interval never ends");
        seen.push((tick - start, time::now() - start));
    }
    seen
}

#[overlap::test(start_paused = true)]
async fn an_interval_stream_yields_the_scheduled_instant_of_each_tick() {
    let period = Duration::from_millis(10);
    let start = Instant::now();
    let mut ticks = IntervalStream::new(time::interval(period));
    let mut seen = ticks_seen(&mut ticks, 3, start).await;
    // A stall of 3.5 periods: by default (`Skip`) the late tick comes at once, the missed
    // ones are dropped and the next is on the old grid.
    time::advance(Duration::from_millis(35)).await;
    seen.extend(ticks_seen(&mut ticks, 2, start).await);
    let ms = |a: u64, b: u64| (Duration::from_millis(a), Duration::from_millis(b));
    assert_eq!(
        seen,
        [ms(0, 0), ms(10, 10), ms(20, 20), ms(30, 55), ms(60, 60)]
    );
    // `Burst`, set through the wrapper: every missed tick comes at once, each with its own
    // scheduled instant.
    ticks
        .as_mut()
        .set_missed_tick_behavior(MissedTickBehavior::Burst);
    time::advance(Duration::from_millis(35)).await;
    let seen = ticks_seen(&mut ticks, 4, start).await;
    assert_eq!(seen, [ms(70, 95), ms(80, 95), ms(90, 95), ms(100, 100)]);
    // The interval inside is the one ticking: it goes on from where the stream left it.
    let mut inner = ticks.into_inner();
    assert_eq!(inner.tick().await - start, Duration::from_millis(110));
}
