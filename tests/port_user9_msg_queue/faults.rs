//! The broker's bad days: a crash mid-batch and a torn tail, a full disk, no fds left, and
//! what its shutdown leaves behind.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;
use std::rc::Rc;

use crate::broker::Broker;
use crate::client::Conn;
use crate::support::{self, run_in_child, within, TempDir};
use crate::{config, payload, segment_files, LONG};

/// An acked record: its offset and payload.
type Record = (u64, Vec<u8>);

/// The runtime dropped while five publishers are mid-batch, then a torn record appended by
/// hand: the restarted broker cuts the torn tail and serves every acked record exactly
/// once, and new records follow the recovered ones.
#[test]
fn restart_after_a_crash_and_a_torn_tail_serves_every_acked_record_once() {
    let dir = TempDir::new("mq-crash");
    let acked: Rc<RefCell<Vec<Record>>> = Rc::default();
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        let b = Broker::start(config(dir.path(), 4096, 100)).await.unwrap();
        for p in 0..5 {
            let (addr, acked) = (b.addr, acked.clone());
            overlap::spawn(async move {
                let mut conn = Conn::connect(addr).await;
                for seq in 0.. {
                    let body = payload(p, seq);
                    let offset = conn.publish("a", &body).await.unwrap();
                    acked.borrow_mut().push((offset, body));
                }
            });
        }
        support::until(|| acked.borrow().len() >= 150, "150 acked records").await;
        std::mem::forget(b); // a crash: no shutdown
    });
    drop(rt);
    let acked = acked.take();
    let seg_dir = dir.join("a");
    let last = segment_files(&seg_dir).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(seg_dir.join(&last))
        .unwrap();
    // A header promising 100 bytes, and 10 of them.
    f.write_all(&100u32.to_le_bytes()).unwrap();
    f.write_all(&[7; 14]).unwrap();
    drop(f);

    overlap::block_on(async {
        let b = Broker::start(config(dir.path(), 4096, 100)).await.unwrap();
        let topic = &b.topics["a"];
        assert!(
            topic.counts.torn_bytes_cut.get() >= 18,
            "the torn record was cut"
        );
        let end = *topic.committed.borrow();
        assert!(
            end >= acked.len() as u64,
            "{end} records kept, {} acked",
            acked.len()
        );
        let mut cons = Conn::connect(b.addr).await;
        cons.subscribe("a", 0).await;
        let got = crate::take_all(&mut cons, 0, end).await;
        let mut seen = HashSet::new();
        for body in &got {
            assert!(
                seen.insert(body.clone()),
                "{:?} twice",
                String::from_utf8_lossy(body)
            );
        }
        for (offset, body) in &acked {
            assert_eq!(&got[*offset as usize], body, "acked record at {offset}");
        }
        let mut publ = Conn::connect(b.addr).await;
        assert_eq!(publ.publish("a", b"after").await, Ok(end));
        assert_eq!(cons.take().await, (end, b"after".to_vec()));
        b.shutdown().await;
    });
}

/// Ignores `SIGXFSZ` (so a write past the limit fails with `EFBIG` instead of killing the
/// process) and sets the soft file size limit to `soft`.
fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    support::set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

/// A full disk (`RLIMIT_FSIZE` at 4096 bytes): the record that does not fit is refused with
/// the reason, nothing of it stays on disk, a smaller one that fits is taken after it, and
/// consumers, live across the refusal or starting after it, get exactly the acked ones.
#[test]
fn disk_full_refuses_the_publish_and_the_broker_serves_on() {
    run_in_child(
        "faults::disk_full_refuses_the_publish_and_the_broker_serves_on",
        || {
            overlap::block_on(async {
                let dir = TempDir::new("mq-full");
                let b = Broker::start(config(dir.path(), 1 << 20, 100))
                    .await
                    .unwrap();
                set_fsize(4096);
                let mut publ = Conn::connect(b.addr).await;
                // A consumer reading live across the refusal and the cut-back.
                let mut live = Conn::connect(b.addr).await;
                live.subscribe("a", 0).await;
                // 1008 bytes a record: four fit (4032), the fifth does not.
                for i in 0..4 {
                    assert_eq!(publ.publish("a", &[b'0' + i as u8; 1000]).await, Ok(i));
                    assert_eq!(live.take().await, (i, vec![b'0' + i as u8; 1000]));
                }
                let refused = publ.publish("a", &[b'x'; 1000]).await.unwrap_err();
                assert!(
                    refused.starts_with("ERR ") && refused.contains("File too large"),
                    "{refused}"
                );
                let seg = dir.join("a").join("00000000000000000000.seg");
                assert_eq!(
                    std::fs::metadata(&seg).unwrap().len(),
                    4032,
                    "nothing unacked kept"
                );
                assert_eq!(publ.publish("a", &[b's'; 40]).await, Ok(4));
                assert_eq!(live.take().await, (4, vec![b's'; 40]));
                let mut cons = Conn::connect(b.addr).await;
                cons.subscribe("a", 0).await;
                for i in 0..4 {
                    assert_eq!(cons.take().await, (i, vec![b'0' + i as u8; 1000]));
                }
                assert_eq!(cons.take().await, (4, vec![b's'; 40]));
                b.shutdown().await;
            });
        },
    );
}

/// Out of fds: a publish needing a new segment and a subscription needing to open one are
/// refused with the reason, nothing acked, and a new connection waits unaccepted; with fds
/// back, all three work and nothing was lost.
#[test]
fn out_of_fds_refuses_a_roll_and_a_subscription_then_serves_on() {
    run_in_child(
        "faults::out_of_fds_refuses_a_roll_and_a_subscription_then_serves_on",
        || {
            support::set_soft_nofile(256);
            overlap::block_on(async {
                let dir = TempDir::new("mq-nofile");
                let b = Broker::start(config(dir.path(), 100, 100)).await.unwrap();
                let mut publ = Conn::connect(b.addr).await;
                let mut cons = Conn::connect(b.addr).await;
                assert_eq!(publ.publish("a", &[b'a'; 60]).await, Ok(0));
                let mut hog = support::exhaust_fds();
                // One fd back for a client: its connection waits in the listener's queue,
                // since the broker has none left to accept it with.
                hog.pop();
                let mut late = Conn::connect(b.addr).await;
                // 68 + 68 > 100: this one needs a new segment file.
                let refused = publ.publish("a", &[b'b'; 60]).await.unwrap_err();
                assert!(refused.contains("Too many open files"), "{refused}");
                cons.subscribe("a", 0).await;
                let refused = within(LONG, cons.next(), "the refusal").await.unwrap_err();
                assert!(refused.contains("Too many open files"), "{refused}");
                drop(hog);
                assert_eq!(publ.publish("a", &[b'b'; 60]).await, Ok(1));
                assert_eq!(late.publish("a", b"late").await, Ok(2));
                let mut cons = Conn::connect(b.addr).await;
                cons.subscribe("a", 0).await;
                assert_eq!(cons.take().await, (0, vec![b'a'; 60]));
                assert_eq!(cons.take().await, (1, vec![b'b'; 60]));
                assert_eq!(cons.take().await, (2, b"late".to_vec()));
                b.shutdown().await;
            });
        },
    );
}

/// After publishes, a live consumer, an idle connection, a publisher stalled mid-payload
/// and the shutdown (which waits for none of them), no fd or task is left.
#[test]
fn shutdown_leaves_no_fd_or_task() {
    run_in_child("faults::shutdown_leaves_no_fd_or_task", || {
        overlap::block_on(async {
            let dir = TempDir::new("mq-leaks");
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let b = Broker::start(config(dir.path(), 200, 2)).await.unwrap();
            let mut publ = Conn::connect(b.addr).await;
            let mut cons = Conn::connect(b.addr).await;
            cons.subscribe("a", 0).await;
            for i in 0..20u64 {
                assert_eq!(
                    publ.publish("a", format!("{i:040}").as_bytes()).await,
                    Ok(i)
                );
            }
            cons.take().await;
            let idle = Conn::connect(b.addr).await;
            // A publisher stalled halfway through its payload.
            let mut stalled = overlap::net::TcpStream::connect(b.addr).await.unwrap();
            overlap::io::AsyncWriteExt::write_all(&mut stalled, b"PUB a 100\nhalf")
                .await
                .unwrap();
            support::settle().await;
            within(LONG, b.shutdown(), "the shutdown").await;
            drop((publ, cons, idle, stalled));
            support::settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
            // A segment reader's read-ahead job may still hold its fd for a moment: the
            // fd closes as that job ends (see `File`'s docs).
            support::wait_until(LONG, || support::open_fds() == fds);
            assert_eq!(support::open_fds(), fds, "fds left");
        });
    });
}
