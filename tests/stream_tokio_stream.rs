//! What tokio-stream adds to streams, as overlap has it: `StreamMap` over real sockets and
//! channels (keys, removal of ended streams, fairness, `next_many`), the wrappers
//! (`BroadcastStream` with its lag errors, `WatchStream`'s two starts, the listener and
//! channel wrappers, `ReadDirStream` and `LinesStream`), and the timer adapters (`timeout`, `timeout_repeating`, `throttle`,
//! `chunks_timeout`) on a paused clock, so their timing is exact and no test waits; and
//! tokio-stream's `merge` and `map_while`.

use std::time::Duration;

use overlap::codec::{FramedRead, LinesCodec};
use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::wrappers::{
    BroadcastStream, BroadcastStreamRecvError, IntervalStream, LinesStream, ReadDirStream,
    ReceiverStream, TcpListenerStream, WatchStream,
};
use overlap::stream::{self, StreamExt, StreamMap, StreamTimeExt};
use overlap::sync::{broadcast, mpsc, watch};
use overlap::time::{self, Instant};

#[overlap::test]
async fn a_stream_map_tags_each_line_with_its_client_and_drops_clients_that_hang_up() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = TcpListenerStream::new(listener);
    let mut clients = Vec::new();
    let mut lines = StreamMap::new();
    for id in 0..4u32 {
        clients.push(TcpStream::connect(addr).await.unwrap());
        let server_side = accepted.next().await.expect("a listener stream never ends");
        let server_side = server_side.unwrap();
        assert_eq!(
            server_side.peer_addr().unwrap(),
            clients[id as usize].local_addr().unwrap()
        );
        assert!(lines
            .insert(id, FramedRead::new(server_side, LinesCodec::new()))
            .is_none());
    }
    // Each client writes its lines and hangs up.
    for (id, mut client) in clients.into_iter().enumerate() {
        overlap::spawn(async move {
            for n in 0..50 {
                client
                    .write_all(format!("{id}:{n}\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
    }
    let mut seen = vec![Vec::new(); 4];
    while let Some((id, line)) = lines.next().await {
        seen[id as usize].push(line.unwrap());
    }
    for (id, got) in seen.iter().enumerate() {
        let want: Vec<String> = (0..50).map(|n| format!("{id}:{n}")).collect();
        assert_eq!(
            *got, want,
            "client {id}'s lines, in order and under its key"
        );
    }
    assert!(
        lines.is_empty(),
        "each client's stream was removed when it ended"
    );
}

#[overlap::test]
async fn a_stream_map_replaces_removes_and_yields_again_after_running_empty() {
    let mut map: StreamMap<&str, ReceiverStream<u32>> = StreamMap::new();
    assert_eq!(map.next().await, None, "an empty map yields None at once");
    let (tx_a, rx_a) = mpsc::channel(4);
    let (tx_b, rx_b) = mpsc::channel(4);
    map.insert("a", ReceiverStream::new(rx_a));
    assert!(map.contains_key("a"));
    // Inserting under a key already present hands the old stream back.
    let old = map
        .insert("a", ReceiverStream::new(rx_b))
        .expect("replaced");
    tx_a.send(1).await.unwrap();
    tx_b.send(2).await.unwrap();
    assert_eq!(
        map.next().await,
        Some(("a", 2)),
        "the replacement is polled"
    );
    let mut old = old.into_inner();
    assert_eq!(
        old.recv().await,
        Some(1),
        "the replaced stream was not polled"
    );
    assert!(map.remove("a").is_some());
    assert!(map.remove("a").is_none());
    assert_eq!(map.len(), 0);
    assert_eq!(map.next().await, None);
    // An empty map is not done for good: it yields again once a stream goes in.
    let (tx_c, rx_c) = mpsc::channel(4);
    map.insert("c", ReceiverStream::new(rx_c));
    tx_c.send(3).await.unwrap();
    drop(tx_c);
    assert_eq!(map.next().await, Some(("c", 3)));
    assert_eq!(map.next().await, None, "the ended stream is removed");
    assert!(map.is_empty());
}

#[overlap::test]
async fn a_stream_map_does_not_let_an_always_ready_stream_starve_the_others() {
    let mut map = StreamMap::new();
    map.insert(0, stream::repeat(0).boxed_local());
    map.insert(1, stream::iter([1]).boxed_local());
    // Each poll starts at a random stream: the one item of stream 1 comes out within 64
    // items with probability 1 - 2^-64, where a poll from the first stream never gives it.
    let mut polls = 0;
    loop {
        let (key, _) = map.next().await.unwrap();
        polls += 1;
        if key == 1 {
            break;
        }
        assert!(polls < 64, "stream 1's item never came out");
    }
}

#[overlap::test]
async fn next_many_moves_what_is_ready_up_to_the_limit() {
    let mut map = StreamMap::new();
    map.insert('x', stream::iter(0..5));
    map.insert('y', stream::iter(10..12));
    let mut buffer = Vec::new();
    // Each stream is polled once per call: at most one item from each.
    assert_eq!(map.next_many(&mut buffer, 1).await, 1);
    assert_eq!(map.next_many(&mut buffer, 10).await, 2);
    while map.next_many(&mut buffer, 10).await > 0 {}
    buffer.sort();
    let want: Vec<(char, i32)> = (0..5)
        .map(|n| ('x', n))
        .chain((10..12).map(|n| ('y', n)))
        .collect();
    assert_eq!(buffer, want);
    assert!(map.is_empty());
    assert_eq!(map.next_many(&mut buffer, 10).await, 0);
}

#[overlap::test]
async fn a_broadcast_stream_reports_what_it_lost_and_ends_when_the_senders_go() {
    let (tx, rx) = broadcast::channel(4);
    let mut slow = BroadcastStream::new(rx);
    let mut keeping_up = BroadcastStream::new(tx.subscribe());
    let sender = overlap::spawn(async move {
        for i in 0..10u32 {
            tx.send(i).unwrap();
            overlap::task::yield_now().await;
        }
    });
    // The one that keeps up sees everything, in order.
    let mut got = Vec::new();
    while let Some(item) = keeping_up.next().await {
        got.push(item.expect("no lag while keeping up"));
    }
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    sender.await.unwrap();
    // The slow one lost the 6 values the channel no longer held, then reads the rest.
    assert_eq!(
        slow.next().await,
        Some(Err(BroadcastStreamRecvError::Lagged(6)))
    );
    let rest: Vec<u32> = slow.by_ref().map(Result::unwrap).collect().await;
    assert_eq!(rest, [6, 7, 8, 9]);
    assert_eq!(slow.next().await, None, "it stays ended");
}

#[overlap::test]
async fn a_watch_stream_starts_with_the_current_value_or_with_the_next_change() {
    let (tx, rx) = watch::channel(0u32);
    let mut from_now = WatchStream::new(rx.clone());
    let mut changes = WatchStream::from_changes(rx);
    assert_eq!(from_now.next().await, Some(0));
    let mut first_change = overlap::spawn(async move { changes.next().await });
    overlap::task::yield_now().await;
    assert!(!first_change.is_finished(), "no change yet");
    tx.send(1).unwrap();
    assert_eq!((&mut first_change).await.unwrap(), Some(1));
    // Two sends between polls are one change: the latest value.
    tx.send(2).unwrap();
    tx.send(3).unwrap();
    assert_eq!(from_now.next().await, Some(3));
    drop(tx);
    assert_eq!(from_now.next().await, None);
}

#[overlap::test]
async fn a_read_dir_stream_yields_every_entry_then_ends() {
    let dir = std::env::temp_dir().join(format!("overlap-read-dir-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    // As a tokio user writes it: the `ReadDir` wrapped, then the entries as a stream.
    let entries = ReadDirStream::new(overlap::fs::read_dir(&dir).await.unwrap());
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
        .await;
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    let mut entries = ReadDirStream::new(overlap::fs::read_dir(&dir).await.unwrap());
    assert!(entries.as_mut().next_entry().await.unwrap().is_some());
    let rest = entries.into_inner();
    assert_eq!(ReadDirStream::new(rest).count().await, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[overlap::test]
async fn a_lines_stream_yields_each_line_and_gives_its_lines_back() {
    let (client, server) = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        (client, listener.accept().await.unwrap().0)
    };
    let mut client = client;
    client
        .write_all(b"USER alice\r\nPASS x\npartial")
        .await
        .unwrap();
    client.close().await.unwrap();
    let mut lines = LinesStream::new(BufReader::new(server).lines());
    assert_eq!(lines.next().await.unwrap().unwrap(), "USER alice");
    let mut rest = lines.into_inner();
    assert_eq!(rest.next().await.unwrap().unwrap(), "PASS x");
    let mut lines = LinesStream::new(rest);
    assert_eq!(lines.next().await.unwrap().unwrap(), "partial");
    assert!(lines.next().await.is_none());
}

#[overlap::test(start_paused = true)]
async fn timeout_yields_one_elapsed_per_silence_counted_from_the_last_item() {
    let (tx, rx) = mpsc::channel(4);
    let limit = Duration::from_millis(100);
    let mut items = ReceiverStream::new(rx).timeout(limit);
    let start = Instant::now();
    overlap::spawn(async move {
        tx.send('a').await.unwrap();
        time::sleep(Duration::from_millis(90)).await;
        tx.send('b').await.unwrap(); // within the limit, counted from 'a'
        time::sleep(Duration::from_millis(250)).await;
        tx.send('c').await.unwrap(); // after a silence of 2.5 limits: one Elapsed
    });
    assert_eq!(items.next().await, Some(Ok('a')));
    assert_eq!(items.next().await, Some(Ok('b')));
    assert!(items.next().await.unwrap().is_err());
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(190),
        "100 ms after 'b'"
    );
    assert_eq!(
        items.next().await,
        Some(Ok('c')),
        "one Elapsed, then the item"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(340));
    assert_eq!(
        items.next().await,
        None,
        "the sender is gone: the stream ends"
    );
}

#[overlap::test(start_paused = true)]
async fn timeout_repeating_yields_an_elapsed_at_every_silent_tick() {
    let (tx, rx) = mpsc::channel(4);
    let period = Duration::from_millis(10);
    let ticks = time::interval_at(Instant::now() + period, period);
    let mut items = ReceiverStream::new(rx).timeout_repeating(ticks);
    overlap::spawn(async move {
        time::sleep(Duration::from_millis(35)).await;
        tx.send(7).await.unwrap();
    });
    let mut got = Vec::new();
    while let Some(item) = items.next().await {
        got.push(item.ok());
    }
    // Silent ticks at 10, 20 and 30 ms, the item at 35 ms resets the interval, and the
    // sender is gone by then.
    assert_eq!(got, [None, None, None, Some(7)]);
}

#[overlap::test(start_paused = true)]
async fn throttle_spaces_the_items_and_drops_none() {
    let start = Instant::now();
    let mut throttled = IntervalStream::new(time::interval(Duration::from_millis(1)))
        .map(|_| Instant::now())
        .throttle(Duration::from_millis(25));
    let mut at = Vec::new();
    for _ in 0..4 {
        at.push(throttled.next().await.unwrap() - start);
    }
    let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 25, 50, 75], "the first at once, then one per 25 ms");
    let counted: Vec<u32> = stream::iter(0..5)
        .throttle(Duration::from_millis(5))
        .collect()
        .await;
    assert_eq!(counted, [0, 1, 2, 3, 4]);
    // Items at 75, 80, .. 95 ms; the end, too, waits out the delay after the last item
    // (as tokio-stream's does: the stream is polled only once the delay has passed).
    assert_eq!(start.elapsed(), Duration::from_millis(75 + 25));
}

#[overlap::test(start_paused = true)]
async fn chunks_timeout_gives_out_full_batches_and_late_partial_ones() {
    let (tx, rx) = mpsc::channel(16);
    let mut batches = ReceiverStream::new(rx).chunks_timeout(3, Duration::from_millis(50));
    let start = Instant::now();
    overlap::spawn(async move {
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        time::sleep(Duration::from_millis(200)).await;
        tx.send(5).await.unwrap();
        time::sleep(Duration::from_millis(10)).await;
        tx.send(6).await.unwrap();
    });
    assert_eq!(batches.next().await, Some(vec![0, 1, 2]), "full at once");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        batches.next().await,
        Some(vec![3, 4]),
        "due 50 ms after its first"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    // The sender ends 10 ms after 5: the batch goes out then, not at its deadline.
    assert_eq!(batches.next().await, Some(vec![5, 6]));
    assert_eq!(start.elapsed(), Duration::from_millis(210));
    assert_eq!(batches.next().await, None);
}

#[test]
#[should_panic(expected = "at least one item")]
fn chunks_timeout_of_zero_items_panics() {
    overlap::block_on(async {
        let _ = stream::iter([1]).chunks_timeout(0, Duration::from_secs(1));
    });
}

/// `merge` over two sockets' lines: each line as it comes, whichever socket it is on; the
/// merged stream goes on when one socket closes and ends when both have.
#[overlap::test]
async fn merge_gives_lines_from_two_sockets_as_they_come_and_ends_with_both() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut a = TcpStream::connect(addr).await.unwrap();
    let a_side = listener.accept().await.unwrap().0;
    let mut b = TcpStream::connect(addr).await.unwrap();
    let b_side = listener.accept().await.unwrap().0;
    let a_lines = FramedRead::new(a_side, LinesCodec::new()).map(|l| format!("a:{}", l.unwrap()));
    let b_lines = FramedRead::new(b_side, LinesCodec::new()).map(|l| format!("b:{}", l.unwrap()));
    let mut merged = a_lines.merge(b_lines);

    b.write_all(b"first\n").await.unwrap();
    assert_eq!(merged.next().await.as_deref(), Some("b:first"));
    a.write_all(b"second\n").await.unwrap();
    assert_eq!(merged.next().await.as_deref(), Some("a:second"));
    drop(a);
    b.write_all(b"after a closed\n").await.unwrap();
    assert_eq!(merged.next().await.as_deref(), Some("b:after a closed"));
    drop(b);
    assert_eq!(merged.next().await, None, "both closed");
    assert!(stream::FusedStream::is_terminated(&merged));
    assert_eq!(merged.next().await, None);
}

/// Two streams that always have an item take turns, whichever was asked first, so neither
/// starves the other; the size hints add up.
#[overlap::test]
async fn merge_alternates_between_two_ready_streams() {
    let merged = stream::iter(0..4u32).merge(stream::iter(10..12u32));
    assert_eq!(stream::Stream::size_hint(&merged), (6, Some(6)));
    let got: Vec<u32> = merged.collect().await;
    assert_eq!(got, [0, 10, 1, 11, 2, 3]);
    let endless = stream::repeat(1u32).merge(stream::repeat(2u32));
    let first: Vec<u32> = endless.take(6).collect().await;
    assert_eq!(
        first,
        [1, 2, 1, 2, 1, 2],
        "one endless stream starved the other"
    );
}

/// `map_while` ends at the first `None` and does not poll the stream under it again: a
/// channel's later items stay in the channel.
#[overlap::test]
async fn map_while_ends_at_the_first_none_and_leaves_the_rest() {
    let (tx, rx) = mpsc::channel(8);
    for word in ["1", "2", "stop", "4"] {
        tx.send(word).await.unwrap();
    }
    let mut numbers = ReceiverStream::new(rx).map_while(|w| w.parse::<u32>().ok());
    assert_eq!(numbers.next().await, Some(1));
    assert_eq!(numbers.next().await, Some(2));
    assert_eq!(numbers.next().await, None);
    assert!(stream::FusedStream::is_terminated(&numbers));
    assert_eq!(numbers.next().await, None, "polled again after the None");
    assert_eq!(tx.capacity(), 8 - 1, "\"4\" was taken from the channel");
}
