//! Bad input, vanishing peers, limits, timeouts and failures: each refused or survived
//! with a clear error while everything else goes on, and nothing left behind.

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};

use super::broker::{self, frame, Broker};
use super::client::{connect, publish_all, read_reply, Consumer, Reply};
use super::support::{open_fds, run_in_child, seccomp, until, within, TempDir};
use super::{messages, publish_from, spool, start, HANG};

/// Sends `bytes` on a new connection: the replies up to the broker's close.
async fn replies_to(broker: &Broker, bytes: &[u8]) -> Vec<Reply> {
    let mut stream = connect(broker.addr).await;
    stream.write_all(bytes).await.unwrap();
    let mut replies = Vec::new();
    loop {
        let reply = read_reply(&mut stream).await.unwrap();
        let closed = reply == Reply::Closed;
        replies.push(reply);
        if closed {
            return replies;
        }
    }
}

fn error(why: &str) -> Vec<Reply> {
    vec![Reply::Error(why.to_string()), Reply::Closed]
}

#[overlap::test]
async fn bad_frames_get_an_error_and_a_close_while_a_producer_goes_on() {
    let dir = TempDir::new("spool-bad-frames");
    let broker = start(dir.path(), Default::default(), Default::default()).await;
    within(
        HANG,
        async {
            let good = messages(1, 2000, 30);
            let (acks, ()) = overlap::join!(publish_all(broker.addr, &good), async {
                let huge = (1u32 << 20).to_le_bytes();
                assert_eq!(
                    replies_to(&broker, &huge).await,
                    error("a frame of 1048576 bytes, over the limit of 65536")
                );
                assert_eq!(
                    replies_to(&broker, &[0, 0, 0, 0]).await,
                    error("an empty frame")
                );
                assert_eq!(
                    replies_to(&broker, &frame(b'Z', b"zz", &[])).await,
                    error("a frame of unknown kind 0x5a")
                );
                assert_eq!(
                    replies_to(&broker, &frame(b'P', &[], &[])).await,
                    error("an empty message")
                );
                assert_eq!(
                    replies_to(&broker, &frame(b'S', b"ab", &[])).await,
                    error("a subscribe of 3 bytes (9 at least)")
                );
                let no_group = frame(b'S', &u64::MAX.to_le_bytes(), &[]);
                assert_eq!(
                    replies_to(&broker, &no_group).await,
                    error("no group to take the offset from")
                );
                // What came before the bad frame is acked first.
                let mut two = frame(b'P', b"fine", &[]);
                two.extend(frame(b'Q', &[], &[]));
                let replies = replies_to(&broker, &two).await;
                assert!(matches!(replies[0], Reply::Ack(_)), "{replies:?}");
                assert_eq!(replies[1..], error("a frame of unknown kind 0x51"));
                // A subscription past the end, a commit past the end.
                let far = frame(b'S', &(1u64 << 40).to_le_bytes(), &[]);
                let [Reply::Error(why), Reply::Closed] = &replies_to(&broker, &far).await[..]
                else {
                    panic!()
                };
                assert!(
                    why.starts_with("offset 1099511627776 is past the end ("),
                    "{why}"
                );
                let mut c = Consumer::subscribe(broker.addr, 0, "c").await;
                c.commit(1 << 40).await;
                loop {
                    match c.next().await {
                        Reply::Record(..) => continue,
                        Reply::Error(why) => {
                            assert!(
                                why.starts_with("a commit of offset 1099511627776, past the end ("),
                                "{why}"
                            );
                            break;
                        }
                        other => panic!("{other:?}"),
                    }
                }
                assert_eq!(c.next().await, Reply::Closed);
            });
            assert_eq!(acks.unwrap().len(), 2000);
            assert_eq!(broker.stats.errors.get(), 9);
        },
        "the bad frames",
    )
    .await;
    broker.shutdown().await;
}

#[overlap::test]
async fn a_consumer_vanishing_mid_stream_keeps_its_groups_commit() {
    let dir = TempDir::new("spool-vanish");
    let broker = start(dir.path(), Default::default(), Default::default()).await;
    within(
        HANG,
        async {
            let acked = publish_from(&broker, 1, 500, 2000).await;
            let mut g = Consumer::subscribe(broker.addr, 0, "g").await;
            g.take(100).await;
            g.commit(100).await;
            let groups = dir.path().join("groups");
            until(
                || std::fs::read_to_string(&groups).unwrap() == "g 100\n",
                "the commit",
            )
            .await;
            assert_eq!(
                broker.spool.group_writes().await,
                2,
                "joined at 0, then 100"
            );
            // Gone with 400 records unread, most still on their way.
            drop(g);
            until(|| broker.stats.sessions.get() == 0, "the session's end").await;
            let more = publish_all(broker.addr, &[b"still here".to_vec()])
                .await
                .unwrap();
            assert_eq!(more, [500]);
            let mut again = Consumer::subscribe(broker.addr, u64::MAX, "g").await;
            let got = again.take(401).await;
            assert_eq!(got[0], (100, acked[&100].clone()));
            assert_eq!(got[400], (500, b"still here".to_vec()));
        },
        "the vanishing consumer",
    )
    .await;
    broker.shutdown().await;
}

#[overlap::test]
async fn a_slow_consumer_holds_the_broker_to_one_record() {
    let dir = TempDir::new("spool-slow");
    let cfg = broker::Config {
        send_buffer: Some(16 << 10),
        ..Default::default()
    };
    let broker = start(dir.path(), Default::default(), cfg).await;
    within(
        HANG,
        async {
            let acked = publish_from(&broker, 2, 1000, 4000).await;
            let mut slow = Consumer::subscribe_small(broker.addr, 0, "", 16 << 10).await;
            // Both socket buffers full, the session waits in its write: it stops.
            until(|| broker.stats.delivered.get() > 0, "the first record").await;
            let mut last = 0;
            loop {
                overlap::time::sleep(Duration::from_millis(100)).await;
                let now = broker.stats.delivered.get();
                if now == last {
                    break;
                }
                last = now;
            }
            assert!(
                last < 100,
                "{last} of 2000 records sent to a consumer that reads nothing"
            );
            let one = 4 + 1 + 8 + 4000;
            assert_eq!(broker.stats.max_held.get(), one, "one record held at most");
            let got = slow.take(2000).await;
            assert!(got
                .iter()
                .enumerate()
                .all(|(i, (o, p))| *o == i as u64 && p == &acked[o]));
            assert_eq!(broker.stats.max_held.get(), one);
        },
        "the slow consumer",
    )
    .await;
    broker.shutdown().await;
}

#[overlap::test(start_paused = true)]
async fn a_half_sent_frame_times_out_on_the_paused_clock() {
    let dir = TempDir::new("spool-half-frame");
    let broker = start(dir.path(), Default::default(), Default::default()).await;
    let mut stream = connect(broker.addr).await;
    let started = overlap::time::Instant::now();
    stream
        .write_all(&frame(b'P', b"never finished", &[])[..3])
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await.unwrap();
    assert_eq!(
        reply,
        Reply::Error("an incomplete frame: nothing more within 10s".into())
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    assert_eq!(read_reply(&mut stream).await.unwrap(), Reply::Closed);
    drop(stream);
    // Idle between frames is fine: a producer that waits a minute is still served.
    let mut idle = connect(broker.addr).await;
    overlap::time::sleep(Duration::from_secs(60)).await;
    idle.write_all(&frame(b'P', b"late but whole", &[]))
        .await
        .unwrap();
    assert_eq!(read_reply(&mut idle).await.unwrap(), Reply::Ack(0));
    drop(idle);
    broker.shutdown().await;
}

#[test]
fn a_failed_fsync_acks_nothing_and_cuts_the_bytes_back() {
    const NAME: &str = "faults::a_failed_fsync_acks_nothing_and_cuts_the_bytes_back";
    run_in_child(NAME, || {
        let dir = TempDir::new("spool-eio");
        overlap::block_on(within(
            HANG,
            async {
                let broker = start(dir.path(), Default::default(), Default::default()).await;
                assert_eq!(
                    publish_all(broker.addr, &[b"kept".to_vec()]).await.unwrap(),
                    [0]
                );
                let seg = dir.path().join(super::segment::file_name(0));
                let len = std::fs::metadata(&seg).unwrap().len();
                seccomp::deny(&[(libc::SYS_fdatasync, libc::EIO)]);
                let mut p = connect(broker.addr).await;
                p.write_all(&frame(b'P', b"lost", &[])).await.unwrap();
                let Reply::Error(why) = read_reply(&mut p).await.unwrap() else {
                    panic!()
                };
                assert!(
                    why.starts_with("not stored: ") && why.contains("os error 5"),
                    "{why}"
                );
                assert_eq!(
                    std::fs::metadata(&seg).unwrap().len(),
                    len,
                    "the unsynced record cut"
                );
                assert_eq!(broker.spool.end(), 1);
                let log = broker.spool.log.borrow().join("\n");
                assert!(
                    log.contains("append failed, 1 message(s) not stored"),
                    "{log}"
                );
                broker.shutdown().await;
            },
            "the failed fsync",
        ));
    });
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "faults::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        let dir = TempDir::new("spool-fds");
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let cfg = spool::Config {
                    roll_bytes: 16 << 10,
                    ..Default::default()
                };
                let broker = start(dir.path(), cfg, Default::default()).await;
                publish_from(&broker, 3, 300, 200).await;
                let mut g = Consumer::subscribe(broker.addr, 0, "g").await;
                g.take(900).await;
                g.commit(800).await;
                until(|| broker.spool.oldest() == 800, "retention").await;
                let mut stalled = connect(broker.addr).await;
                stalled.write_all(&[9, 0]).await.unwrap();
                let mut tailing = Consumer::subscribe(broker.addr, 900, "").await;
                until(|| broker.stats.sessions.get() == 2, "both sessions").await;
                broker.shutdown().await;
                let mut rest = Vec::new();
                assert_eq!(tailing.stream.read_to_end(&mut rest).await.unwrap(), 0);
                drop((g, stalled, tailing));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
