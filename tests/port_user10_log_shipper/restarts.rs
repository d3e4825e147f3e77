//! A shipper restarted from its checkpoint (after a clean shutdown and after a crash),
//! the syslog input, the backoff on a paused clock, and what a shutdown leaves behind.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::net::UdpSocket;
use overlap::sync::mpsc;
use overlap::time::Instant;

use super::*;
use crate::shipper::{Connect, Reader, ShipStats, Writer};
use crate::tailer::Line;

/// A clean shutdown, lines appended and a rotation while the shipper is down, then a
/// restart: it goes on from the checkpoint (the renamed file found by its inode and read
/// to its end), sending no line twice. Then a crash mid-stream: the next start sends
/// again what was not acked, and the collector keeps each line once.
#[overlap::test]
async fn a_restarted_shipper_goes_on_from_its_checkpoint() {
    let dir = TempDir::new("ship-resume");
    let store: Rc<RefCell<Received>> = Rc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), store.clone(), None).await;
    let path = dir.join("a.log");
    let agent = Agent::start(setup(&dir, vec!["a.log"], col.addr))
        .await
        .unwrap();
    append_lines(&path, &lines("a", 0..200));
    wait_for(&store, 200).await;
    agent.shutdown().await.unwrap();
    assert_eq!(saved(&dir).await.marks["a.log"], mark_of(&path, 200));

    // While it is down: more lines, a rotation, lines in the new file.
    append_lines(&path, &lines("a", 200..250));
    std::fs::rename(&path, dir.join("a.log.1")).unwrap();
    append_lines(&path, &lines("b", 0..30));
    let agent = Agent::start(setup(&dir, vec!["a.log"], col.addr))
        .await
        .unwrap();
    wait_for(&store, 280).await;
    assert_eq!(store.borrow().duplicates, 0, "nothing sent twice");
    assert_eq!(agent.tails[0].rotations.get(), 1);

    // A crash with lines in flight.
    append_lines(&path, &lines("b", 30..2000));
    until(|| store.borrow().total() >= 500, "some of them shipped").await;
    agent.kill();
    let agent = Agent::start(setup(&dir, vec!["a.log"], col.addr))
        .await
        .unwrap();
    wait_for(&store, 2250).await;
    agent.shutdown().await.unwrap();
    let want = [lines("a", 0..250), lines("b", 0..2000)].concat();
    assert_eq!(store.borrow().texts("a.log"), want);
    assert_eq!(saved(&dir).await.marks["a.log"], mark_of(&path, 2250));
}

/// RFC 3164 datagrams over UDP join the files' lines in the same pipeline.
#[overlap::test]
async fn syslog_datagrams_are_shipped_with_the_files() {
    let dir = TempDir::new("ship-syslog");
    let store: Rc<RefCell<Received>> = Rc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), store.clone(), None).await;
    let mut s = setup(&dir, vec!["a.log"], col.addr);
    s.syslog = true;
    let agent = Agent::start(s).await.unwrap();
    let to = agent.syslog_addr.unwrap();
    let app = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    append_lines(&dir.join("a.log"), &lines("a", 0..50));
    let mut want = Vec::new();
    for i in 0..100 {
        let msg = format!(
            "<134>Feb  5 17:32:{:02} web-1 nginx[42]: request {i}\n",
            i % 60
        );
        app.send_to(msg.as_bytes(), to).await.unwrap();
        want.push(format!("local0.info web-1 nginx[42]: request {i}"));
        if i % 10 == 0 {
            // Paced: a burst past the socket's buffer would be dropped, as UDP may.
            until(|| store.borrow().texts("syslog").len() > i, "a datagram").await;
        }
    }
    wait_for(&store, 150).await;
    agent.shutdown().await.unwrap();
    assert_eq!(store.borrow().texts("syslog"), want);
    assert_eq!(store.borrow().texts("a.log"), lines("a", 0..50));
    assert_eq!(
        saved(&dir).await.marks["syslog"],
        Mark {
            inode: 0,
            offset: 0,
            seq: 100
        }
    );
}

#[test]
fn syslog_lines_parse_as_rfc_3164_says() {
    let cases = [
        (
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            "auth.crit mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        ),
        (
            "<13>Feb  5 17:32:18 host app: hi\n",
            "user.notice host app: hi",
        ),
        ("<0>Feb  5 17:32:18 h k: x", "kern.emerg h k: x"),
        ("<191>no timestamp here", "local7.debug - no timestamp here"),
        (
            "<192>Feb  5 17:32:18 h x",
            "user.notice - <192>Feb  5 17:32:18 h x",
        ),
        ("<1x>text", "user.notice - <1x>text"),
        ("plain text", "user.notice - plain text"),
        ("", "user.notice - "),
    ];
    for (datagram, want) in cases {
        assert_eq!(syslog::parse(datagram.as_bytes()), want, "{datagram:?}");
    }
}

/// On a paused clock, with an in-memory collector refusing four connects: the attempts
/// come 5, 10, 20 and 40 ms apart (doubling, capped at 50), the fifth connects, and a
/// batch short of `batch_max` goes out after `flush_every`.
#[overlap::test(start_paused = true)]
async fn reconnects_back_off_exponentially() {
    let dir = TempDir::new("ship-backoff");
    let store: Rc<RefCell<Received>> = Rc::default();
    let tries = Rc::new(Cell::new(0));
    let (t, st) = (tries.clone(), store.clone());
    let connect: Connect = Rc::new(move || {
        let (t, st) = (t.clone(), st.clone());
        async move {
            t.set(t.get() + 1);
            if t.get() <= 4 {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            let (mine, theirs) = overlap::io::duplex(4096);
            overlap::spawn(collector::serve(theirs, st, None));
            let (r, w) = overlap::io::split(mine);
            Ok((Box::new(r) as Reader, Box::new(w) as Writer))
        }
        .boxed_local()
    });
    let (tx, rx) = mpsc::channel(8);
    let mut cfg = setup(&dir, vec![], "127.0.0.1:1".parse().unwrap()).ship;
    cfg.backoff_max = Duration::from_millis(50);
    let stats = Rc::new(ShipStats::default());
    let start = Instant::now();
    let shipper = overlap::spawn(shipper::run(
        rx,
        connect,
        cfg,
        Checkpoint::default(),
        stats.clone(),
    ));
    for seq in 0..3 {
        let source = "x".into();
        let text = format!("line {seq}");
        tx.send(Line {
            source,
            seq,
            inode: 7,
            end: 10 * (seq + 1),
            text,
        })
        .await
        .unwrap();
    }
    until(|| store.borrow().total() == 3, "the batch").await;
    let at: Vec<u128> = stats
        .attempts
        .borrow()
        .iter()
        .map(|t| t.duration_since(start).as_millis())
        .collect();
    assert_eq!(at, [0, 5, 15, 35, 75]);
    assert_eq!(store.borrow().batches, 1, "three lines, one batch");
    drop(tx);
    shipper.await.unwrap().unwrap();
    let ck = saved(&dir).await;
    assert_eq!(
        ck.marks["x"],
        Mark {
            inode: 7,
            offset: 30,
            seq: 3
        }
    );
}

/// After a shutdown, with the collector gone too: every fd and task is back.
#[test]
fn a_shutdown_leaves_no_fd_or_task() {
    support::run_in_child("restarts::a_shutdown_leaves_no_fd_or_task", || {
        overlap::block_on(async {
            let dir = TempDir::new("ship-leaks");
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let store: Rc<RefCell<Received>> = Rc::default();
            let col = Collector::start("127.0.0.1:0".parse().unwrap(), store.clone(), None).await;
            let mut s = setup(&dir, vec!["a.log", "b.log"], col.addr);
            s.syslog = true;
            let agent = Agent::start(s).await.unwrap();
            append_lines(&dir.join("a.log"), &lines("a", 0..100));
            // Seen before it is rotated: a file made and renamed between two polls is
            // never opened (what Filebeat's scan frequency misses too).
            wait_for(&store, 100).await;
            std::fs::rename(dir.join("a.log"), dir.join("a.log.1")).unwrap();
            append_lines(&dir.join("a.log"), &lines("a", 100..200));
            append_lines(&dir.join("b.log"), &lines("b", 0..100));
            wait_for(&store, 300).await;
            agent.shutdown().await.unwrap();
            // And one killed mid-stream, its tasks dropped wherever they stood.
            let mut s = setup(&dir, vec!["a.log", "b.log"], col.addr);
            s.syslog = true;
            let agent = Agent::start(s).await.unwrap();
            append_lines(&dir.join("b.log"), &lines("b", 100..3000));
            until(|| store.borrow().total() >= 400, "some shipped").await;
            agent.kill();
            drop(col);
            until(|| support::open_fds() == fds, "the fds back").await;
            support::settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
        })
    });
}

/// A shutdown while the collector is dead and the tailer waits on a full channel: the
/// token stops the tailer where it waits, the shipper gives up after its grace time, and
/// the checkpoint stays at the last acked line; the next start ships the rest, once.
#[overlap::test]
async fn a_shutdown_with_the_collector_dead_keeps_the_checkpoint_at_the_last_ack() {
    let dir = TempDir::new("ship-dead-shutdown");
    let store: Rc<RefCell<Received>> = Rc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), store.clone(), None).await;
    let addr = col.addr;
    let path = dir.join("a.log");
    let mut s = setup(&dir, vec!["a.log"], addr);
    (s.channel, s.ship.batch_max, s.ship.window) = (16, 10, 2);
    s.grace = Duration::from_millis(100);
    let agent = Agent::start(s).await.unwrap();
    append_lines(&path, &lines("a", 0..100));
    wait_for(&store, 100).await;
    until(|| agent.ship.unacked.get() == 0, "the last ack").await;
    drop(col);
    append_lines(&path, &lines("a", 100..2000));
    let ship = agent.ship.clone();
    until(|| ship.unacked.get() == 2, "the window full").await;
    let ck = saved(&dir).await;
    agent.shutdown().await.unwrap();
    assert_eq!(
        saved(&dir).await,
        ck,
        "nothing checkpointed past the last ack"
    );
    let size_at_100: usize = lines("a", 0..100).iter().map(|l| l.len() + 1).sum();
    assert_eq!(ck.marks["a.log"].offset, size_at_100 as u64);
    assert_eq!(ck.marks["a.log"].seq, 100);

    let col = Collector::start(addr, store.clone(), None).await;
    let agent = Agent::start(setup(&dir, vec!["a.log"], addr))
        .await
        .unwrap();
    wait_for(&store, 2000).await;
    agent.shutdown().await.unwrap();
    assert_eq!(store.borrow().texts("a.log"), lines("a", 0..2000));
    assert_eq!(store.borrow().duplicates, 0);
    assert_eq!(saved(&dir).await.marks["a.log"], mark_of(&path, 2000));
    drop(col);
}
