//! The collector's rotation, forwarder, load, control socket and shutdown, and a whole
//! run's fds and tasks.

use std::collections::BTreeSet;
use std::time::Duration;

use overlap::io::AsyncWriteExt;

use super::client::{
    file_lines, msg5424, read_frames, send_tcp, send_udp, send_unix, tcp_sender, udp_sender,
    Control, Rig, Upstream,
};
use super::codec::octet_frame;
use super::forward::ForwardConfig;
use super::outputs::{FileConfig, Filter};
use super::support::{open_fds, run_in_child, until, within};

const HANG: Duration = Duration::from_secs(120);

/// The `n`th numbered test message, and its text.
fn numbered(n: usize) -> (String, String) {
    let text = format!("m{n:04}");
    (msg5424(1, 5, "app", &text), text)
}

#[overlap::test]
async fn rotation_keeps_n_files_with_every_message_once() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, dir| {
                let file = |name: &str, keep| FileConfig {
                    name: name.into(),
                    path: dir.join(format!("{name}.log")),
                    filter: Filter::all(),
                    max_bytes: 200,
                    keep,
                };
                // Each line is 21 bytes: nine to a file; a batch written as it comes.
                c.files = vec![file("kept", 3), file("every", 100)];
                c.batch_bytes = 1;
            })
            .await;
            for i in 0..60 {
                send_unix(&rig.config().unix, numbered(i).0).await;
            }
            rig.received(60).await;
            rig.written("kept", 60).await;
            rig.written("every", 60).await;
            let all: Vec<String> = (0..60).map(|i| numbered(i).1).collect();
            // With room for every rotation: each message once, in order, from the highest
            // number (the oldest file) to the live file.
            let mut every = Vec::new();
            for n in (1..=100).rev() {
                every.extend(rig.messages(&format!("every.log.{n}")).await);
            }
            every.extend(rig.messages("every.log").await);
            assert_eq!(every, all);
            // Three kept: `.1` to `.3` and the live file, none past, none over the maximum,
            // and what they hold is the newest messages, each once, in order.
            let mut kept = Vec::new();
            for name in ["kept.log.3", "kept.log.2", "kept.log.1", "kept.log"] {
                let path = rig.dir.join(name);
                let len = std::fs::metadata(&path).unwrap().len();
                assert!(len <= 200, "{name}: {len} bytes");
                kept.extend(rig.messages(name).await);
            }
            // Whole lines only: nine to a file (189 bytes), so six rotations and the
            // last six messages in the live file, however the batches fell.
            assert!(!rig.dir.join("kept.log.4").exists());
            assert_eq!(kept, all[60 - 3 * 9 - 6..]);
            assert_eq!(rig.output("kept").rotations.get(), 6);
            assert_eq!(rig.output("every").rotations.get(), 6);
            assert!(!rig.dir.join("every.log.7").exists());
            assert!(rig.server.shutdown().await);
        },
        "rotation",
    )
    .await;
}

#[overlap::test]
async fn the_forwarder_down_then_up_delivers_its_queue_with_the_oldest_dropped() {
    within(
        HANG,
        async {
            // An address with nothing listening: connects are refused until it is bound.
            let addr = Upstream::bind("127.0.0.1:0".parse().unwrap()).await.addr;
            let rig = Rig::start(|c, _| {
                c.forward = Some(ForwardConfig {
                    upstream: addr,
                    filter: Filter::parse("severity<=5").unwrap(),
                    queue: 5,
                    backoff: (Duration::from_millis(5), Duration::from_millis(50)),
                });
            })
            .await;
            let udp = udp_sender(rig.server.udp).await;
            for i in 0..8 {
                send_udp(&udp, numbered(i).0).await;
            }
            // Not for the forwarder: severity 7.
            send_udp(&udp, msg5424(1, 7, "app", "debug")).await;
            rig.received(9).await;
            let fw = rig.server.state.forward.clone().unwrap();
            assert_eq!((fw.dropped.get(), fw.queue.borrow().len()), (3, 5));
            assert_eq!((fw.connects.get(), fw.sent.get()), (0, 0));
            let upstream = Upstream::bind(addr).await;
            let mut conn = upstream.accept().await;
            let want: Vec<String> = (3..8).map(|i| numbered(i).0).collect();
            assert_eq!(read_frames(&mut conn, 5).await, want);
            // Connected: new ones go at once.
            send_udp(&udp, numbered(8).0).await;
            assert_eq!(read_frames(&mut conn, 1).await, [numbered(8).0]);
            // The upstream goes away and comes back: the next connection carries on.
            // (Connected again before the next message: one written into the closed
            // connection would be lost, as with any TCP forwarder that does not wait for
            // acknowledgements.)
            drop(conn);
            until(
                || fw.connects.get() == 2,
                "the close seen, a new connection",
            )
            .await;
            let mut conn = upstream.accept().await;
            send_udp(&udp, numbered(9).0).await;
            assert_eq!(read_frames(&mut conn, 1).await, [numbered(9).0]);
            let mut control = Control::connect(&rig.config().control).await;
            let st = control.stats().await;
            assert_eq!(
                (st["forwarded"], st["forward_dropped"], st["forward_queued"]),
                (7, 3, 0)
            );
            assert!(rig.server.shutdown().await);
            assert!(overlap::stream::StreamExt::next(&mut conn).await.is_none());
            assert!(control.ended().await);
        },
        "the forwarder",
    )
    .await;
}

#[overlap::test]
async fn three_thousand_udp_datagrams_from_six_sockets_are_all_counted() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, _| c.udp_recv_buffer = Some(1 << 20)).await;
            let mut senders = Vec::new();
            for _ in 0..6 {
                senders.push(udp_sender(rig.server.udp).await);
            }
            // Paced by what the collector has taken: at most 120 datagrams in flight, far
            // fewer than its receive buffer holds, so loopback drops none.
            let mut sent = 0;
            for round in 0..25 {
                for (s, sock) in senders.iter().enumerate() {
                    for k in 0..20 {
                        let n = (round * 6 + s) * 20 + k;
                        send_udp(sock, numbered(n).0).await;
                        sent += 1;
                    }
                }
                rig.received(sent).await;
            }
            assert_eq!(sent, 3000);
            rig.written("all", 3000).await;
            let got: BTreeSet<String> = rig.messages("all.log").await.into_iter().collect();
            assert_eq!(got.len(), 3000);
            assert!(got.iter().all(|m| m.starts_with('m')));
            assert_eq!(rig.server.stats().oversized.get(), 0);
            assert!(rig.server.shutdown().await);
        },
        "the load",
    )
    .await;
}

#[overlap::test]
async fn control_commands_answer_and_bad_input_is_refused() {
    within(
        HANG,
        async {
            let rig = Rig::start(|_, _| {}).await;
            let udp = udp_sender(rig.server.udp).await;
            send_udp(&udp, msg5424(1, 6, "app", "before")).await;
            send_udp(&udp, vec![b'x'; 3000]).await;
            rig.received(1).await;
            until(
                || rig.server.stats().oversized.get() == 1,
                "the oversized one",
            )
            .await;
            let mut c = Control::connect(&rig.config().control).await;
            let st = c.stats().await;
            assert_eq!((st["received"], st["udp"], st["oversized"]), (1, 1, 1));
            // rotate: what was written moves to `.1`, answered once done.
            assert_eq!(c.ask("rotate").await, ["OK rotated 1"]);
            assert_eq!(rig.messages("all.log.1").await, ["before"]);
            assert!(rig.messages("all.log").await.is_empty());
            // reload: no file, an unknown output, a bad word: refused, nothing changed.
            let filters = rig.config().filters_file.clone();
            let refused = c.ask("reload").await;
            assert!(
                refused[0].starts_with("ERROR reload: failed to"),
                "{refused:?}"
            );
            std::fs::write(&filters, "all severity<=3\nnosuch *\n").unwrap();
            assert_eq!(
                c.ask("reload").await,
                ["ERROR reload: line 2: no output named nosuch"]
            );
            std::fs::write(&filters, "all severity<=9\n").unwrap();
            assert_eq!(
                c.ask("reload").await,
                ["ERROR reload: line 1: bad severity: 9"]
            );
            send_udp(&udp, msg5424(1, 6, "app", "still all")).await;
            rig.received(2).await;
            rig.written("all", 2).await;
            std::fs::write(&filters, "# errors only\n\nall severity<=3\n").unwrap();
            assert_eq!(c.ask("reload").await, ["OK reloaded 1"]);
            send_udp(&udp, msg5424(1, 6, "app", "filtered out")).await;
            send_udp(&udp, msg5424(1, 2, "app", "critical")).await;
            rig.received(4).await;
            rig.written("all", 3).await;
            assert_eq!(rig.messages("all.log").await, ["still all", "critical"]);
            // Bad input: each answered, the session going on.
            assert_eq!(c.ask("").await, ["ERROR empty command"]);
            assert_eq!(
                c.ask("stats now").await,
                ["ERROR unknown command: stats now"]
            );
            c.send_raw(&"x".repeat(5000)).await;
            assert_eq!(c.answer().await, ["ERROR line over 256 bytes"]);
            assert_eq!(c.stats().await["written"], 3);
            c.send_raw("quit").await;
            assert!(c.ended().await);
            // A session open at shutdown is ended by it.
            let mut open = Control::connect(&rig.config().control).await;
            assert_eq!(open.stats().await["received"], 4);
            assert!(rig.server.shutdown().await);
            assert!(open.ended().await);
            assert!(!rig.config().control.exists());
        },
        "the control socket",
    )
    .await;
}

#[overlap::test]
async fn shutdown_writes_every_accepted_message() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, _| {
                c.flush_every = Duration::from_secs(3600);
                c.batch_bytes = usize::MAX;
            })
            .await;
            let udp = udp_sender(rig.server.udp).await;
            let mut tcp = tcp_sender(rig.server.tcp).await;
            for i in 0..90 {
                let (msg, _) = numbered(i);
                match i % 3 {
                    0 => send_udp(&udp, &msg).await,
                    1 => send_tcp(&mut tcp, octet_frame(msg.as_bytes())).await,
                    _ => send_unix(&rig.config().unix, &msg).await,
                }
            }
            rig.received(90).await;
            // No interval has passed, no batch was big enough: nothing written yet.
            assert_eq!(rig.output("all").lines.get(), 0);
            assert!(file_lines(&rig.dir.join("all.log")).await.is_empty());
            assert!(rig.server.shutdown().await);
            let mut got = rig.messages("all.log").await;
            got.sort();
            let want: Vec<String> = (0..90).map(|i| numbered(i).1).collect();
            assert_eq!(got, want);
            tcp.close().await.ok();
        },
        "the shutdown",
    )
    .await;
}

/// A shutdown while four connections are still sending: whatever the collector took in is
/// in the file, once (the inputs end before the outputs' last flush).
#[overlap::test]
async fn a_shutdown_mid_burst_writes_every_message_taken_in() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, _| {
                c.flush_every = Duration::from_secs(3600);
                c.batch_bytes = 4096;
            })
            .await;
            let mut senders = Vec::new();
            for s in 0..4 {
                let mut tcp = tcp_sender(rig.server.tcp).await;
                senders.push(overlap::spawn(async move {
                    for chunk in 0..100 {
                        let mut bytes = Vec::new();
                        for k in 0..10 {
                            let n = (s * 100 + chunk) * 10 + k;
                            bytes.extend(octet_frame(numbered(n).0.as_bytes()));
                        }
                        // The collector closes the connection at shutdown: writes then fail.
                        if tcp.write_all(&bytes).await.is_err() {
                            return;
                        }
                        overlap::yield_now().await;
                    }
                }));
            }
            let stats = rig.server.stats();
            until(|| stats.received() >= 500, "the burst under way").await;
            assert!(rig.server.shutdown().await);
            let taken = stats.received();
            let got = rig.messages("all.log").await;
            let distinct: BTreeSet<&String> = got.iter().collect();
            assert_eq!((got.len() as u64, distinct.len() as u64), (taken, taken));
            assert_eq!(rig.output("all").lines.get(), taken);
            for s in senders {
                s.await.unwrap();
            }
        },
        "the shutdown mid-burst",
    )
    .await;
}

#[overlap::test]
async fn the_same_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, _| {
                c.udp = "[::1]:0".parse().unwrap();
                c.tcp = "[::1]:0".parse().unwrap();
            })
            .await;
            let udp = udp_sender(rig.server.udp).await;
            send_udp(&udp, msg5424(1, 5, "v6", "over udp")).await;
            let mut tcp = tcp_sender(rig.server.tcp).await;
            send_tcp(&mut tcp, "<13>Dec  4 10:00:00 h v6: over tcp\n").await;
            rig.received(2).await;
            rig.written("all", 2).await;
            let mut got = rig.messages("all.log").await;
            got.sort();
            assert_eq!(got, ["over tcp", "over udp"]);
            assert!(rig.server.shutdown().await);
        },
        "IPv6",
    )
    .await;
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "traffic::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let upstream = Upstream::bind("127.0.0.1:0".parse().unwrap()).await;
                let rig = Rig::start(|c, _| {
                    c.forward = Some(ForwardConfig {
                        upstream: upstream.addr,
                        filter: Filter::all(),
                        queue: 100,
                        backoff: (Duration::from_millis(5), Duration::from_millis(50)),
                    });
                })
                .await;
                let mut conn = upstream.accept().await;
                let udp = udp_sender(rig.server.udp).await;
                send_udp(&udp, numbered(0).0).await;
                let mut tcp = tcp_sender(rig.server.tcp).await;
                send_tcp(&mut tcp, octet_frame(numbered(1).0.as_bytes())).await;
                send_unix(&rig.config().unix, numbered(2).0).await;
                let mut bad = tcp_sender(rig.server.tcp).await;
                send_tcp(&mut bad, "junk").await;
                rig.received(3).await;
                assert_eq!(read_frames(&mut conn, 3).await.len(), 3);
                let mut control = Control::connect(&rig.config().control).await;
                assert_eq!(control.ask("rotate").await, ["OK rotated 1"]);
                until(|| rig.server.stats().frame_errors.get() == 1, "the junk").await;
                assert!(rig.server.shutdown().await);
                assert!(control.ended().await);
                drop((rig, upstream, conn, udp, tcp, bad, control));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
