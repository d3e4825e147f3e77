//! `overlap::io`'s stdio-like paths, without the real terminal: `Unblock` over a blocking
//! pipe or a file, and `io::copy`, `copy_buf` and `copy_bidirectional` relaying between
//! pipes and sockets, cut midway.
//!
//! A relayed stream has the usual writer and reader tasks (see `streams`) on either side of
//! a relay task. A copy is not cancel-safe (a cut one loses the bytes it held), so the first
//! cut ends the relay, which then drops its ends: from there the reader must get a prefix of
//! what was sent (each byte is checked against the pattern, so nothing can be repeated or
//! skipped), and either end may see the relay's ends close. A copy that completes hands on
//! every byte the writer was told went.
//!
//! A file written through cut `Unblock` writes and flushes holds exactly the bytes those
//! writes took once it is closed (through cut `close`s, called again until one completes),
//! and cut `Unblock` reads give them back in order.

use std::rc::Rc;

use overlap::io::{
    copy, copy_bidirectional, copy_buf, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
    BufReader, Unblock,
};
use overlap::net::UnixStream;

use crate::cut::{clear, cut, peer_gone, pick, seed, SetOnDrop};
use crate::streams::{self, Tally};
use crate::support::{pattern_seeded, tcp_pair, Rng};
use crate::sync::Tasks;

type Writer = Box<dyn AsyncWrite + Unpin>;
type Reader = Box<dyn AsyncRead + Unpin>;

/// A one-way connection of a random kind: its writing end, its reading end, what it is.
/// `Unblock` over a blocking pipe only on a running clock: a pool job blocked in `read`
/// holds a paused clock still, and the task that would feed it may be sleeping on it.
async fn hop(rng: &mut Rng) -> (Writer, Reader, &'static str) {
    let real_clock = !overlap::time::is_paused();
    match rng.below(if real_clock { 5 } else { 3 }) {
        0 => {
            let (tx, rx) = overlap::pipe::pipe().unwrap();
            (Box::new(tx), Box::new(rx), "pipe")
        }
        1 => {
            let (a, b) = UnixStream::pair().unwrap();
            (Box::new(a), Box::new(b), "unix")
        }
        2 => {
            let (a, b) = tcp_pair().await;
            (Box::new(a), Box::new(b), "tcp")
        }
        3 => {
            let (tx, rx) = overlap::pipe::pipe().unwrap();
            let rx = std::fs::File::from(rx.into_blocking_fd().unwrap());
            let rx = Unblock::with_capacity(1 + rng.below(64 * 1024), rx);
            (Box::new(tx), Box::new(rx), "pipe>unblock")
        }
        _ => {
            let (tx, rx) = overlap::pipe::pipe().unwrap();
            let tx = std::fs::File::from(tx.into_blocking_fd().unwrap());
            let tx = Unblock::with_capacity(1 + rng.below(64 * 1024), tx);
            (Box::new(tx), Box::new(rx), "unblock>pipe")
        }
    }
}

/// Spawns one relayed stream (or, through `copy_bidirectional`, one each way) with its
/// writer, relay and reader tasks; the tallies to check at the end.
pub async fn relayed(rng: &mut Rng, tasks: &mut Tasks, id: u32) -> Vec<Rc<Tally>> {
    if rng.below(3) == 0 {
        return bidirectional(rng, tasks, id).await;
    }
    let (w, from, first) = hop(rng).await;
    let (to, r, second) = hop(rng).await;
    let buffered = rng.below(2) == 0;
    let how = if buffered { "copy_buf" } else { "copy" };
    let data = streams::data_for(rng, id);
    let t = Rc::new(Tally::new(format!(
        "{first} | {how} | {second} ({} bytes)",
        data.len()
    )));
    let stop = (rng.below(8) == 0).then(|| rng.below(data.len() + 1));
    let writer = streams::writer(w, data.clone(), t.clone(), Rng(rng.next() | 1));
    tasks.spawn(format!("{} writer", t.what), true, writer);
    let (t2, mut crng) = (t.clone(), Rng(rng.next() | 1));
    tasks.spawn(format!("{} relay", t.what), true, async move {
        let mut to = to;
        // Set if the relay ends short: cut, failed, or aborted.
        let gone = SetOnDrop(t2.relay_gone_flag());
        let what = format!("{} relay", t2.what);
        let res = if buffered {
            let from = BufReader::with_capacity(1 + crng.below(20_000), from);
            cut(pick(&mut crng), copy_buf(from, &mut to)).await
        } else {
            cut(pick(&mut crng), copy(from, &mut to)).await
        };
        match res {
            // Every byte read is written and flushed; the reader's end sees end of file
            // once `to` is dropped.
            Some(Ok(_)) => std::mem::forget(gone),
            Some(Err(e)) => relay_failed(&what, &e, &[&t2]),
            None => {}
        }
    });
    let reader = streams::reader(r, data, t.clone(), Rng(rng.next() | 1), stop);
    tasks.spawn(format!("{} reader", t.what), true, reader);
    vec![t]
}

/// A relay's error is fine only once a reader it serves is gone.
fn relay_failed(what: &str, e: &std::io::Error, tallies: &[&Tally]) {
    clear(what, e);
    assert!(
        tallies.iter().any(|t| t.reader_gone()) && peer_gone(e),
        "seed {}: {what} failed while the readers live: {e:?}",
        seed()
    );
}

/// A socket, whole.
trait Duplex: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Duplex for T {}

/// A connected socket pair of a random kind: the first end split into its writing and
/// reading halves, the second whole.
async fn half_and_whole(rng: &mut Rng) -> ((Writer, Reader), Box<dyn Duplex>, &'static str) {
    if rng.below(2) == 0 {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = a.into_split();
        ((Box::new(w), Box::new(r)), Box::new(b), "unix")
    } else {
        let (a, b) = tcp_pair().await;
        let (r, w) = a.into_split();
        ((Box::new(w), Box::new(r)), Box::new(b), "tcp")
    }
}

/// client <-> proxy (`copy_bidirectional`) <-> server, a stream each way.
async fn bidirectional(rng: &mut Rng, tasks: &mut Tasks, id: u32) -> Vec<Rc<Tally>> {
    let ((client_w, client_r), mut proxy_a, kind_a) = half_and_whole(rng).await;
    let ((server_w, server_r), mut proxy_b, kind_b) = half_and_whole(rng).await;
    let ways = [(client_w, server_r, "there"), (server_w, client_r, "back")];
    let mut tallies = Vec::new();
    for (i, (w, r, way)) in ways.into_iter().enumerate() {
        let data = streams::data_for(rng, id ^ ((i as u32 + 1) << 16));
        let what = format!(
            "{kind_a} | copy_bidirectional | {kind_b} {way} ({} bytes)",
            data.len()
        );
        let t = Rc::new(Tally::new(what));
        let writer = streams::writer(w, data.clone(), t.clone(), Rng(rng.next() | 1));
        tasks.spawn(format!("{} writer", t.what), true, writer);
        // The reader stays to the end: a half whose other half lives on would keep its
        // writer waiting for ever.
        let reader = streams::reader(r, data, t.clone(), Rng(rng.next() | 1), None);
        tasks.spawn(format!("{} reader", t.what), false, reader);
        tallies.push(t);
    }
    let (ts, mut prng) = (tallies.clone(), Rng(rng.next() | 1));
    tasks.spawn(format!("{} proxy", tallies[0].what), true, async move {
        // Set if the proxy ends short: cut, failed, or aborted.
        let gone = [
            SetOnDrop(ts[0].relay_gone_flag()),
            SetOnDrop(ts[1].relay_gone_flag()),
        ];
        let what = format!("{} proxy", ts[0].what);
        let proxy = copy_bidirectional(&mut *proxy_a, &mut *proxy_b);
        let res = cut(pick(&mut prng), proxy).await;
        match res {
            // Both ways reached end of file and passed it on as a write shutdown.
            Some(Ok(_)) => std::mem::forget(gone),
            Some(Err(e)) => relay_failed(&what, &e, &[&ts[0], &ts[1]]),
            None => {}
        }
    });
    tallies
}

/// Writes a file through cut `Unblock` writes, closes it, and reads it back through cut
/// `Unblock` reads: the bytes the writes reported, in order, then end of file.
pub async fn unblock_file(path: std::path::PathBuf, mut rng: Rng) {
    let data = pattern_seeded(rng.below(300_000), rng.next() as u32);
    let file = std::fs::File::create(&path).unwrap();
    let mut w = Unblock::with_capacity(1 + rng.below(64 * 1024), file);
    let mut accepted = 0;
    while accepted < data.len() {
        let at = accepted;
        let end = (at + 1 + rng.below(40_000)).min(data.len());
        let res = if rng.below(5) == 0 {
            cut(pick(&mut rng), w.flush())
                .await
                .map(|r| r.map(|()| None))
        } else {
            cut(pick(&mut rng), w.write(&data[at..end]))
                .await
                .map(|r| r.map(Some))
        };
        match res {
            Some(Ok(Some(n))) => {
                assert!(
                    n > 0 && n <= end - at,
                    "seed {}: unblock file: wrote {n}",
                    seed()
                );
                accepted = at + n;
            }
            Some(Ok(None)) => {}
            Some(Err(e)) => unblock_failed("write", &e),
            None => {}
        }
    }
    // A cut `close` is called again: it goes on with the same job, and takes every byte.
    loop {
        match cut(pick(&mut rng), w.close()).await {
            Some(Ok(())) => break,
            Some(Err(e)) => unblock_failed("close", &e),
            None => {}
        }
    }
    let file = std::fs::File::open(&path).unwrap();
    let mut r = Unblock::with_capacity(1 + rng.below(64 * 1024), file);
    let mut buf = vec![0u8; 70_000];
    let mut read = 0;
    loop {
        let want = 1 + rng.below(buf.len());
        match cut(pick(&mut rng), r.read(&mut buf[..want])).await {
            Some(Ok(0)) => break,
            Some(Ok(n)) => {
                assert!(
                    read + n <= data.len() && buf[..n] == data[read..read + n],
                    "seed {}: unblock file: wrong {n} bytes at {read} of {}",
                    seed(),
                    data.len()
                );
                read += n;
            }
            Some(Err(e)) => unblock_failed("read", &e),
            None => {}
        }
    }
    assert_eq!(read, data.len(), "seed {}: unblock file: short", seed());
}

fn unblock_failed(op: &str, e: &std::io::Error) -> ! {
    clear(op, e);
    panic!("seed {}: unblock file {op}: {e:?}", seed());
}
