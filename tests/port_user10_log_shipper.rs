//! A user's log shipper (a tiny Filebeat/Vector agent), sketched as one would for tokio and
//! then written for overlap: a tailer task per log file polling for growth on an interval,
//! following rotation by rename (the old file read to its end, then the new inode at the
//! path) and by copytruncate (the file shorter than what was read: from 0 again), a
//! partial last line held until its newline (`port_user10_log_shipper/tailer.rs`); a UDP
//! syslog input, RFC 3164 lines (`syslog.rs`); one bounded channel to the shipper, which
//! batches lines, frames them (`u32` length, a batch id, `source \t seq \t text` lines) to
//! a collector over TCP, keeps each batch until its `u64` ack, resends the unacked ones
//! after a reconnect with exponential backoff, and moves a checkpoint written atomically
//! (temp file, `sync_all`, rename, directory `sync_all`) past each acked batch
//! (`shipper.rs`, `checkpoint.rs`); the collector, dropping a line whose per-source sequence
//! number it already passed (`collector.rs`); the wiring and one cancellation token
//! (`agent.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! // a tailer
//! let mut tick = tokio::time::interval(poll);
//! tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
//! loop {
//!     tokio::select! { _ = token.cancelled() => return Ok(()), _ = tick.tick() => {} }
//!     let at_path = tokio::fs::metadata(&path).await.ok().map(|m| m.ino());
//!     if file.metadata().await?.len() < offset { file.seek(SeekFrom::Start(0)).await?; offset = 0 }
//!     loop {                                             // drain to the end
//!         let n = file.read(&mut buf).await?; if n == 0 { break }
//!         partial.extend_from_slice(&buf[..n]);
//!         while let Some(nl) = memchr(b'\n', &partial) { tx.send(line(..)).await? } // bounded
//!     }
//!     if at_path.is_some_and(|ino| ino != inode) { file = File::open(&path).await?; offset = 0 }
//! }
//! // the shipper
//! loop {
//!     tokio::select! {
//!         biased;
//!         id = acks.next(), if conn.is_some() => { unacked.pop_front(); save_checkpoint().await? }
//!         Some(line) = rx.recv(), if unacked.len() < window => { batch.push(line) }
//!         _ = sleep_until(flush_at), if !batch.is_empty() => seal_and_send(),
//!         _ = sleep_until(retry_at), if conn.is_none() => reconnect_and_resend_all(),
//!     }
//! }
//! // the checkpoint
//! let mut f = File::create(&tmp).await?; f.write_all(&bytes).await?; f.sync_all().await?;
//! tokio::fs::rename(&tmp, &path).await?; File::open(dir).await?.sync_all().await?;
//! ```
//!
//! The tests check: three files written in pieces, a line split across two writes held
//! until its newline, every line shipped once in order and the checkpoint at each file's
//! end; a rename rotation (with lines the app wrote to the old file after the rename) and a
//! copytruncate followed in order; a collector dying before an ack and restarted on the
//! same port, every unacked batch sent again, each line kept once; a dead collector
//! stopping the tailers (bounded channel, a window of unacked batches) until one comes;
//! a shipper shut down and restarted (with a rotation while it was down) sending no line
//! twice, and one killed mid-stream losing none; a shutdown with the collector dead ending
//! after its grace time with the checkpoint at the last ack; syslog datagrams in the same
//! pipeline;
//! the backoff's exact schedule on a paused clock; no fd or task left.
//!
//! What the port changed, against tokio: its first version, written against
//! futures-util's `select!`, turned tokio's `, if cond` preconditions into async blocks
//! that wait forever when the branch is off, each pinned with `pin_mut!`; with overlap's
//! own `select!` the shipper's loop is tokio's as written (`biased;`, preconditions, a
//! `Some(ack) =` branch disabled while there is no connection). The ack reader
//! keeps a half-read `u64` in a struct, as tokio's `read_u64` is not cancel-safe there
//! either. `tokio_util::sync::CancellationToken` is `overlap::sync::CancellationToken`,
//! `JoinSet`, `interval` and `MissedTickBehavior` are the same names. `File`'s read-ahead
//! did not get in the way of a tailer: a read at the end of the file returns 0 and the
//! next one sees bytes appended since, and a seek after a copytruncate drops what was
//! read ahead, as the `File` docs say. `DirEntry::ino` (tokio has it too) finds the file
//! a rotation renamed while the shipper was down. tokio-util's codecs (`Framed`,
//! `LengthDelimitedCodec`), which a tokio shipper would frame its batches with, had no
//! overlap counterpart when this port was written (`overlap::codec` has them now): the
//! frames are written and read by hand (`write_all` of a length-prefixed buffer,
//! `read_u32` then `read_exact`).
//!
//! Things the port got wrong at first were the user's, and are as in tokio: a collector
//! stopped by dropping its `JoinSet` still held its port until the runtime's next turn (an
//! abort drops the task's future then, as tokio's does), so a restart binding the port in
//! the same breath would meet `AddrInUse`; the tests restart it after the shipper's
//! refused reconnects. And a file made and renamed between two polls is never opened (its
//! lines are lost, as a Filebeat scan missing it loses them): the tests let a file be seen
//! before rotating it. The syslog input is at-most-once, as UDP is: its sequence numbers go
//! on from the checkpoint, so datagrams read and not acked before a crash are lost, not
//! sent twice.

mod support;

#[path = "port_user10_log_shipper/agent.rs"]
mod agent;
#[path = "port_user10_log_shipper/checkpoint.rs"]
mod checkpoint;
#[path = "port_user10_log_shipper/collector.rs"]
mod collector;
#[path = "port_user10_log_shipper/shipper.rs"]
mod shipper;
#[path = "port_user10_log_shipper/syslog.rs"]
mod syslog;
#[path = "port_user10_log_shipper/tailer.rs"]
mod tailer;

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use agent::{Agent, Setup};
use checkpoint::{Checkpoint, Mark};
use collector::{Collector, Received};
use support::{until, TempDir};

fn setup(dir: &TempDir, files: Vec<&'static str>, addr: SocketAddr) -> Setup {
    Setup {
        dir: dir.path().to_path_buf(),
        files,
        syslog: false,
        connect: shipper::tcp(addr),
        channel: 64,
        poll: Duration::from_millis(5),
        ship: shipper::Config {
            batch_max: 50,
            flush_every: Duration::from_millis(10),
            window: 4,
            backoff_min: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
            checkpoint: dir.join("checkpoint"),
        },
        grace: Duration::from_secs(10),
    }
}

fn line(file: &str, i: usize) -> String {
    format!("{file} line {i:05} {}", "x".repeat(i % 13))
}

fn lines(file: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| line(file, i)).collect()
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn append_lines(path: &Path, lines: &[String]) {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    append(path, text.as_bytes());
}

fn mark_of(path: &Path, seq: u64) -> Mark {
    let meta = std::fs::metadata(path).unwrap();
    Mark {
        inode: meta.ino(),
        offset: meta.len(),
        seq,
    }
}

async fn saved(dir: &TempDir) -> Checkpoint {
    Checkpoint::load(&dir.join("checkpoint")).await.unwrap()
}

async fn wait_for(store: &Rc<RefCell<Received>>, total: usize) {
    until(
        || store.borrow().total() >= total,
        "the lines at the collector",
    )
    .await;
    let got = store.borrow();
    assert_eq!(got.total(), total, "no more lines than written");
    assert_eq!(got.gaps, [], "no line lost");
}

/// Three files written in pieces, one line split over two writes with a poll between:
/// each line reaches the collector once, whole, in its file's order, and after the
/// shutdown the checkpoint stands at each file's end.
#[overlap::test]
async fn every_line_of_three_files_is_shipped_once_in_order() {
    let dir = TempDir::new("ship-three");
    let store = Rc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), Rc::clone(&store), None).await;
    let files = vec!["a.log", "b.log", "c.log"];
    let agent = Agent::start(setup(&dir, files.clone(), col.addr))
        .await
        .unwrap();
    for chunk in 0..10 {
        for f in &files {
            append_lines(&dir.join(f), &lines(f, chunk * 30..chunk * 30 + 30));
        }
    }
    // A line in two writes: the tailer reads its first half and waits for the newline.
    let half = line("a.log", 300);
    let (first, second) = half.split_at(10);
    append(&dir.join("a.log"), first.as_bytes());
    let size = std::fs::metadata(dir.join("a.log")).unwrap().len();
    let tail = agent.tails[0].clone();
    until(|| tail.bytes_read.get() == size, "the half line read").await;
    wait_for(&store, 900).await;
    append(&dir.join("a.log"), format!("{second}\n").as_bytes());
    wait_for(&store, 901).await;
    agent.shutdown().await.unwrap();
    {
        let got = store.borrow();
        assert_eq!(got.texts("a.log"), lines("a.log", 0..301));
        assert_eq!(got.texts("b.log"), lines("b.log", 0..300));
        assert_eq!(got.texts("c.log"), lines("c.log", 0..300));
        assert_eq!(got.duplicates, 0, "nothing resent without a fault");
    }
    let ck = saved(&dir).await;
    assert_eq!(ck.marks["a.log"], mark_of(&dir.join("a.log"), 301));
    assert_eq!(ck.marks["b.log"], mark_of(&dir.join("b.log"), 300));
    assert_eq!(ck.marks["c.log"], mark_of(&dir.join("c.log"), 300));
    assert_eq!(ck.marks.len(), 3);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp")),
        "a temp file left: {names:?}"
    );
}

/// A rename rotation (the app writing on to the renamed file until it reopens) is read
/// to the old file's end before the new file; a copytruncate starts again from 0.
#[overlap::test]
async fn rotation_by_rename_and_by_copytruncate_is_followed() {
    let dir = TempDir::new("ship-rotate");
    let store = Rc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), Rc::clone(&store), None).await;
    let agent = Agent::start(setup(&dir, vec!["app.log"], col.addr))
        .await
        .unwrap();
    let path = dir.join("app.log");
    append_lines(&path, &lines("old", 0..100));
    wait_for(&store, 100).await;
    // The app's handle stays on the renamed file, and writes on to it.
    let mut held = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    for l in lines("old", 100..150) {
        writeln!(held, "{l}").unwrap();
    }
    append_lines(&path, &lines("new", 0..100));
    wait_for(&store, 250).await;
    // copytruncate: copied away, cut to 0, and fewer bytes than before written.
    std::fs::copy(&path, dir.join("app.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append_lines(&path, &lines("cut", 0..10));
    wait_for(&store, 260).await;
    append_lines(&path, &lines("cut", 10..20));
    wait_for(&store, 270).await;
    assert_eq!(agent.tails[0].rotations.get(), 1);
    assert_eq!(agent.tails[0].truncations.get(), 1);
    agent.shutdown().await.unwrap();
    let want: Vec<String> = [
        lines("old", 0..150),
        lines("new", 0..100),
        lines("cut", 0..20),
    ]
    .concat();
    assert_eq!(store.borrow().texts("app.log"), want);
    assert_eq!(saved(&dir).await.marks["app.log"], mark_of(&path, 270));
}

/// The collector dies after taking a batch and before acking it, and comes back on the
/// same port: every unacked batch is sent again, the collector keeps each line once.
#[overlap::test]
async fn a_collector_restarted_on_its_port_gets_every_line_once() {
    let dir = TempDir::new("ship-restart-col");
    let store: Rc<RefCell<Received>> = Rc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), store.clone(), Some(3)).await;
    let addr = col.addr;
    let mut s = setup(&dir, vec!["a.log"], addr);
    s.ship.batch_max = 20;
    let agent = Agent::start(s).await.unwrap();
    append_lines(&dir.join("a.log"), &lines("a", 0..500));
    until(|| store.borrow().batches >= 3, "three batches taken").await;
    drop(col);
    let attempts = agent.ship.attempts.borrow().len();
    until(
        || agent.ship.attempts.borrow().len() >= attempts + 3,
        "refused reconnects",
    )
    .await;
    let col = Collector::start(addr, store.clone(), None).await;
    wait_for(&store, 500).await;
    agent.shutdown().await.unwrap();
    {
        let got = store.borrow();
        assert_eq!(got.texts("a.log"), lines("a", 0..500));
        assert!(got.duplicates > 0, "the unacked batch came again");
        assert!(got.connections >= 2);
    }
    assert_eq!(
        saved(&dir).await.marks["a.log"],
        mark_of(&dir.join("a.log"), 500)
    );
    drop(col);
}

/// With no collector, the shipper stops taking lines once `window` batches wait for an
/// ack, the channel fills, and the tailer stops reading: what is held is bounded. A
/// collector coming up on the port gets everything, once, in order.
#[overlap::test]
async fn a_dead_collector_holds_the_tailers_back() {
    let dir = TempDir::new("ship-backpressure");
    let store: Rc<RefCell<Received>> = Rc::default();
    let addr = Collector::start("127.0.0.1:0".parse().unwrap(), store.clone(), None)
        .await
        .addr;
    let mut s = setup(&dir, vec!["a.log"], addr);
    (s.channel, s.ship.batch_max, s.ship.window) = (16, 10, 2);
    let agent = Agent::start(s).await.unwrap();
    let all = lines("a", 0..5000);
    append_lines(&dir.join("a.log"), &all);
    let size = std::fs::metadata(dir.join("a.log")).unwrap().len();
    let ship = agent.ship.clone();
    until(|| ship.taken.get() == 20, "two batches sealed").await;
    until(
        || ship.attempts.borrow().len() >= 5,
        "a few refused connects",
    )
    .await;
    let tail = agent.tails[0].clone();
    assert_eq!(ship.taken.get(), 20, "no line taken past the window");
    assert_eq!(ship.unacked.get(), 2);
    // At most the window, the channel and a read chunk (16 KiB) are held.
    let read = tail.bytes_read.get();
    assert!(read < 20 * 1024, "{read} of {size} bytes read");
    let col = Collector::start(addr, store.clone(), None).await;
    wait_for(&store, 5000).await;
    agent.shutdown().await.unwrap();
    assert_eq!(store.borrow().texts("a.log"), all);
    assert_eq!(store.borrow().duplicates, 0);
    drop(col);
}

#[path = "port_user10_log_shipper/restarts.rs"]
mod restarts;
