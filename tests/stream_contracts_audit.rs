//! A contract audit of `overlap::stream`: promises of its rustdoc that stream_tokio_stream.rs,
//! stream_review.rs and stream_review_timers.rs leave unpinned, the timer adapters on the
//! paused clock.
//!
//! - `StreamMap`: keys borrowed as `&str` for `contains_key` and `remove`; `keys`, `values`,
//!   `values_mut` and `with_capacity`; `from_iter` and `extend` keeping the last stream of a
//!   repeated key; `next_many` with a limit of 0, while no stream has an item, and once the
//!   last stream ends.
//! - `ReceiverStream`: `close` ends it once the queue is empty though senders live; `From`,
//!   `AsMut`, and `UnboundedReceiverStream` over an unbounded channel.
//! - `BroadcastStream`: what the receiver had not read before it was wrapped; its error at
//!   tokio-stream's path, with its message.
//! - `WatchStream::new`: the value current at the first poll, not at wrapping; with the
//!   senders gone, `new` still gives the value, `from_changes` only an unseen change.
//! - `SignalStream`, `UnixListenerStream`: their items, and their inner values given back; a
//!   Unix accept that fails is an item, and the stream goes on.
//! - `LinesStream`: a line cut short by a cancelled poll stays in it; `ReadDirStream` is
//!   terminated only once it has returned `None`.
//! - `timeout`: the limit counts from the adapter's making, not from its first poll.
//! - `timeout_repeating`: an `interval`'s first tick is at once; each item restarts the
//!   period, so the next `Elapsed` is one period after the item, off the old grid.
//! - `throttle`: `get_ref`, `get_mut` (items taken through it skip the delay) and
//!   `into_inner`.
//! - `chunks_timeout` and `timeout`: terminated only once the last batch (or item) is out
//!   and the end has been seen.
//! - `chunks_timeout(usize::MAX, ..)`: no panic (only 0 panics), batches by time only.

mod support;

use std::os::fd::AsFd;
use std::task::Poll;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{UnixListener, UnixStream};
use overlap::signal::{signal, SignalKind};
use overlap::stream::wrappers::{
    errors, BroadcastStream, LinesStream, ReadDirStream, ReceiverStream, SignalStream,
    UnboundedReceiverStream, UnixListenerStream, WatchStream,
};
use overlap::stream::{self, FusedStream, Stream, StreamExt, StreamMap, StreamTimeExt};
use overlap::sync::{broadcast, mpsc, watch};
use overlap::time::{self, Instant};
use support::{poll_once, within, TempDir};

/// Only a lost wakeup gets near this.
const HANG: Duration = Duration::from_secs(30);

const MS: Duration = Duration::from_millis(1);

#[overlap::test]
async fn a_stream_map_finds_string_keys_by_str_and_lists_its_keys_and_streams() {
    let mut map: StreamMap<String, ReceiverStream<u32>> = StreamMap::with_capacity(8);
    assert!(map.capacity() >= 8, "room for 8 without reallocating");
    let mut senders = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (tx, rx) = mpsc::channel(4);
        assert!(map.insert(name.to_string(), rx.into()).is_none());
        senders.push(tx);
    }
    // `K: Borrow<Q>`: a `String` key is found and removed by a `&str`.
    assert!(map.contains_key("bob"));
    assert!(!map.contains_key("dave"));
    let mut bob = map.remove("bob").expect("bob is in");
    assert!(!map.contains_key("bob"));
    assert!(map.remove("bob").is_none());
    senders[1].send(7).await.unwrap();
    assert_eq!(bob.next().await, Some(7), "the stream removed is bob's");

    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["alice", "carol"]);
    assert_eq!(map.values().count(), 2);
    assert_eq!(map.iter().count(), 2);
    // `values_mut` reaches the streams themselves: closing them all ends the map once
    // what is queued has come out.
    senders[0].send(1).await.unwrap();
    senders[2].send(3).await.unwrap();
    for stream in map.values_mut() {
        stream.close();
    }
    let mut got = Vec::new();
    while let Some((key, n)) = within(HANG, map.next(), "the closed streams' items").await {
        got.push((key, n));
    }
    got.sort();
    assert_eq!(got, [("alice".to_string(), 1), ("carol".to_string(), 3)]);
    assert!(map.is_empty(), "each closed stream ended and was removed");
}

#[overlap::test]
async fn a_stream_map_built_from_pairs_keeps_the_last_stream_of_a_repeated_key() {
    let pairs = [
        ('a', stream::iter(vec![1, 2])),
        ('b', stream::iter(vec![10])),
        ('a', stream::iter(vec![100])),
    ];
    let mut map: StreamMap<char, _> = pairs.into_iter().collect();
    assert_eq!(map.len(), 2, "'a' counted once");
    // `extend` inserts each pair in turn: a repeated key replaces the stream it had.
    map.extend([
        ('b', stream::iter(vec![20, 21])),
        ('c', stream::iter(vec![30])),
    ]);
    assert_eq!(map.len(), 3);
    let mut got: Vec<(char, i32)> = map.collect().await;
    got.sort();
    assert_eq!(got, [('a', 100), ('b', 20), ('b', 21), ('c', 30)]);
}

#[overlap::test]
async fn next_many_takes_nothing_at_a_limit_of_zero_and_waits_while_no_stream_has_an_item() {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut map = StreamMap::new();
    map.insert("rx", UnboundedReceiverStream::new(rx));
    tx.send(1).unwrap();
    let mut buffer = Vec::new();
    assert_eq!(map.next_many(&mut buffer, 0).await, 0);
    assert!(buffer.is_empty(), "a limit of 0 moves nothing");
    assert_eq!(map.next_many(&mut buffer, 5).await, 1, "1 was still queued");
    assert_eq!(buffer, [("rx", 1)]);
    // No item anywhere: `Pending`, not `Ready(0)`, which would mean the map is empty.
    assert_eq!(
        poll_once(Box::pin(map.next_many(&mut buffer, 5))).await,
        Poll::Pending
    );
    tx.send(2).unwrap();
    assert_eq!(within(HANG, map.next_many(&mut buffer, 5), "2").await, 1);
    // The last stream ends: `Ready(0)` and an empty map.
    drop(tx);
    assert_eq!(
        within(HANG, map.next_many(&mut buffer, 5), "the end").await,
        0
    );
    assert!(map.is_empty());
    assert_eq!(buffer, [("rx", 1), ("rx", 2)]);
}

#[overlap::test]
async fn a_closed_receiver_stream_yields_what_was_queued_then_ends_while_senders_live() {
    let (tx, rx) = mpsc::channel(4);
    let mut stream = ReceiverStream::from(rx);
    tx.send('a').await.unwrap();
    tx.send('b').await.unwrap();
    assert_eq!(
        stream.as_mut().try_recv(),
        Ok('a'),
        "AsMut reaches the receiver"
    );
    stream.close();
    assert!(stream.as_ref().is_closed());
    assert_eq!(tx.send('c').await.unwrap_err().0, 'c', "sends are refused");
    assert_eq!(
        stream.next().await,
        Some('b'),
        "what was queued still comes"
    );
    let end = within(HANG, stream.next(), "the end of a closed stream").await;
    assert_eq!(end, None, "the end, with the sender alive");
    drop(tx);

    // tokio-stream's name for an unbounded channel's stream.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut stream = UnboundedReceiverStream::new(rx);
    tx.send(5u8).unwrap();
    drop(tx);
    assert_eq!(stream.next().await, Some(5));
    assert_eq!(stream.next().await, None);
    assert!(stream.into_inner().is_closed());
}

#[overlap::test]
async fn a_broadcast_stream_yields_what_its_receiver_had_not_read_when_wrapped() {
    let (tx, mut rx) = broadcast::channel(8);
    for i in 0..3u32 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.recv().await, Ok(0), "read before wrapping");
    let mut values = BroadcastStream::new(rx);
    tx.send(3).unwrap();
    drop(tx);
    let got: Vec<u32> = values.by_ref().map(Result::unwrap).collect().await;
    assert_eq!(got, [1, 2, 3], "the unread ones, then what was sent after");
    assert!(values.is_terminated());

    // The error, at tokio-stream's path, says what was lost.
    let lagged = errors::BroadcastStreamRecvError::Lagged(6);
    assert_eq!(
        lagged.to_string(),
        "the receiver lagged behind and lost 6 values"
    );
    let as_error: &dyn std::error::Error = &lagged;
    assert!(as_error.source().is_none());
}

#[overlap::test]
async fn a_watch_stream_new_starts_with_the_value_current_at_its_first_poll() {
    let (tx, rx) = watch::channel(1u32);
    let mut states = WatchStream::new(rx);
    tx.send(2).unwrap();
    // Wrapped at 1, first polled at 2: 2 only, once (not 1, then 2 as a change).
    assert_eq!(states.next().await, Some(2));
    assert_eq!(poll_once(states.next()).await, Poll::Pending);

    // With every sender gone before the first poll: `new` still gives the current value,
    // `from_changes` only a change its receiver had not seen.
    let (tx, rx) = watch::channel("last");
    let seen = rx.clone();
    let mut states = WatchStream::new(rx);
    let mut changes = WatchStream::from_changes(seen);
    drop(tx);
    assert_eq!(states.next().await, Some("last"));
    assert_eq!(states.next().await, None);
    assert_eq!(changes.next().await, None, "no change was made");
    assert!(changes.is_terminated());
}

/// Sends `signum` to this process.
fn raise(signum: i32) {
    // SAFETY: kill and getpid take integers only.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
}

#[overlap::test]
async fn a_signal_stream_yields_each_arrival_and_gives_its_signal_back() {
    // The only test here that touches signals: no other waits on SIGUSR2 in this process.
    let kind = SignalKind::user_defined2();
    let mut arrivals = SignalStream::new(signal(kind).unwrap());
    assert_eq!(arrivals.as_ref().kind(), kind);
    assert_eq!(poll_once(arrivals.next()).await, Poll::Pending, "none yet");
    raise(kind.as_raw());
    assert_eq!(within(HANG, arrivals.next(), "the first").await, Some(()));
    assert_eq!(poll_once(arrivals.next()).await, Poll::Pending, "one only");
    // The signal given back is the one registered: it sees the next arrival.
    let mut inner = arrivals.into_inner();
    raise(kind.as_raw());
    assert_eq!(within(HANG, inner.recv(), "the second").await, Some(()));
}

#[overlap::test]
async fn a_unix_listener_stream_yields_each_connection_and_gives_its_listener_back() {
    let dir = TempDir::new("unix-listener-stream");
    let path = dir.join("sock");
    let mut accepted = UnixListenerStream::new(UnixListener::bind(&path).unwrap());
    assert_eq!(
        accepted.as_ref().local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    for word in [&b"one"[..], b"two"] {
        let mut client = UnixStream::connect(&path).await.unwrap();
        client.write_all(word).await.unwrap();
        drop(client);
        let mut server_side = within(HANG, accepted.next(), "an accept")
            .await
            .expect("a listener stream never ends")
            .unwrap();
        let mut got = Vec::new();
        server_side.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, word, "each connection in turn, with its own bytes");
    }
    let listener = accepted.into_inner();
    let _client = UnixStream::connect(&path).await.unwrap();
    within(HANG, listener.accept(), "the listener given back accepts")
        .await
        .unwrap();

    // An accept that fails is an item, and the stream goes on: shut down through a dup of
    // its fd, the listener refuses every accept.
    let listener = UnixListener::bind(dir.join("shut")).unwrap();
    let dup = listener.as_fd().try_clone_to_owned().unwrap();
    std::os::unix::net::UnixStream::from(dup)
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
    let mut refused = UnixListenerStream::new(listener);
    for attempt in ["first", "second"] {
        let item = within(HANG, refused.next(), "an accept's error").await;
        let err = item.expect("never ends").map(|_| ()).unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::NotConnected,
            "{attempt}: {err}"
        );
    }
}

#[overlap::test]
async fn a_lines_stream_keeps_a_line_cut_short_by_a_cancelled_poll() {
    let (mut writer, reader) = UnixStream::pair().unwrap();
    let mut lines = LinesStream::new(BufReader::new(reader).lines());
    writer.write_all(b"par").await.unwrap();
    // Polled once (reading "par") and dropped, as a `select!` that took another branch.
    assert_eq!(poll_once(lines.next()).await.map(|_| ()), Poll::Pending);
    writer.write_all(b"tial\r\nnext\n").await.unwrap();
    assert_eq!(lines.next().await.unwrap().unwrap(), "partial");
    let pinned = std::pin::Pin::new(&mut lines).as_pin_mut();
    assert_eq!(pinned.get_mut().next().await.unwrap().unwrap(), "next");
    drop(writer);
    assert!(lines.next().await.is_none());
}

#[overlap::test]
async fn a_read_dir_stream_is_terminated_only_once_it_has_returned_none() {
    let dir = TempDir::new("read-dir-stream-fused");
    std::fs::write(dir.join("only"), b"x").unwrap();
    let mut entries = ReadDirStream::new(overlap::fs::read_dir(dir.path()).await.unwrap());
    assert!(!entries.is_terminated());
    let entry = entries.next().await.unwrap().unwrap();
    assert_eq!(entry.file_name(), "only");
    assert!(!entries.is_terminated(), "the end is not known until asked");
    assert!(entries.next().await.is_none());
    assert!(entries.is_terminated());
    assert!(entries.next().await.is_none());
}

/// Milliseconds since `start` on the paused clock.
fn ms_since(start: Instant) -> u64 {
    (Instant::now() - start).as_millis() as u64
}

#[overlap::test(start_paused = true)]
async fn timeout_counts_from_the_adapters_making_not_from_its_first_poll() {
    let start = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel::<char>();
    let mut items = ReceiverStream::new(rx).timeout(100 * MS);
    // Made at 0, first polled at 60: the limit ends at 100, not 160.
    time::advance(60 * MS).await;
    assert_eq!(poll_once(items.next()).await, Poll::Pending);
    assert!(items.next().await.unwrap().is_err());
    assert_eq!(ms_since(start), 100);
    // Then counted from each item: 'a' at 130, the next limit at 230.
    time::advance(30 * MS).await;
    tx.send('a').unwrap();
    assert_eq!(items.next().await, Some(Ok('a')));
    assert!(items.next().await.unwrap().is_err());
    assert_eq!(ms_since(start), 230);
}

#[overlap::test(start_paused = true)]
async fn timeout_repeating_restarts_its_period_at_each_item() {
    let start = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut items = ReceiverStream::new(rx).timeout_repeating(time::interval(10 * MS));
    // An `interval`'s first tick is at once: an `Elapsed` at 0.
    assert!(items.next().await.unwrap().is_err());
    assert_eq!(ms_since(start), 0);
    assert!(items.next().await.unwrap().is_err());
    assert_eq!(ms_since(start), 10);
    // An item at 15 restarts the period: the next silent tick is at 25, not at 20.
    time::advance(5 * MS).await;
    tx.send(1).unwrap();
    assert_eq!(items.next().await, Some(Ok(1)));
    let mut at = Vec::new();
    for _ in 0..2 {
        assert!(items.next().await.unwrap().is_err());
        at.push(ms_since(start));
    }
    assert_eq!(at, [25, 35], "one period after the item, then every period");
    drop(tx);
    assert_eq!(items.next().await, None);
}

#[overlap::test(start_paused = true)]
async fn throttle_gives_its_stream_back_and_items_taken_through_get_mut_skip_the_delay() {
    let start = Instant::now();
    let mut throttled = stream::iter(0..6).throttle(50 * MS);
    assert_eq!(throttled.next().await, Some(0));
    assert_eq!(throttled.get_ref().size_hint(), (5, Some(5)));
    // The throttle waits until 50 for its next item; the stream inside does not.
    assert_eq!(throttled.get_mut().next().await, Some(1));
    assert_eq!(ms_since(start), 0);
    assert_eq!(throttled.next().await, Some(2));
    assert_eq!(
        ms_since(start),
        50,
        "the throttle still spaces its own items"
    );
    // Given back: the rest, at once, no throttle left.
    let rest: Vec<i32> = throttled.into_inner().collect().await;
    assert_eq!(rest, [3, 4, 5]);
    assert_eq!(ms_since(start), 50);
}

#[overlap::test(start_paused = true)]
async fn chunks_timeout_and_timeout_are_terminated_only_once_everything_is_out() {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut batches = ReceiverStream::new(rx).chunks_timeout(4, 50 * MS);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert!(!batches.is_terminated());
    assert_eq!(batches.next().await, Some(vec![1, 2]), "the partial batch");
    assert!(batches.is_terminated(), "its stream ended with the batch");
    assert_eq!(batches.next().await, None);

    // A fused stream under `timeout`: terminated once it has ended, not before.
    let mut items = stream::iter([7]).fuse().timeout(50 * MS);
    assert!(!items.is_terminated());
    assert_eq!(items.next().await, Some(Ok(7)));
    assert!(!items.is_terminated());
    assert_eq!(items.next().await, None);
    assert!(items.is_terminated());
}

/// `# Panics` names a `max_size` of 0 only: `usize::MAX`, as "no cap, batches by time
/// only", batches by time.
#[overlap::test(start_paused = true)]
async fn chunks_timeout_of_usize_max_items_batches_by_time_only() {
    let start = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut batches = ReceiverStream::new(rx).chunks_timeout(usize::MAX, 50 * MS);
    tx.send(1).unwrap();
    assert_eq!(poll_once(batches.next()).await, Poll::Pending);
    time::advance(10 * MS).await;
    tx.send(2).unwrap();
    assert_eq!(batches.next().await, Some(vec![1, 2]));
    assert_eq!(ms_since(start), 50, "due 50 ms after its first item");
    tx.send(3).unwrap();
    drop(tx);
    assert_eq!(batches.next().await, Some(vec![3]));
    assert_eq!(batches.next().await, None);
}
