//! The follow API on a Unix stream socket: a reader sends `FOLLOW <seq>\n` and gets every
//! entry from that seq on, the past ones read from the journal files with
//! `PositionalFile::read_vec_at`, then the live ones from a `broadcast` channel, across
//! rotations, each once and in order. A follower that falls more than the channel's
//! capacity behind (`RecvError::Lagged`) gets a cut-off marker and is closed: the daemon
//! never waits for a follower.

use std::rc::Weak;

use overlap::fs::PositionalFile;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{UnixListener, UnixStream};
use overlap::sync::broadcast::error::RecvError;

use super::daemon::Shared;
use super::format::{self, Record};

/// The longest request line.
const MAX_REQUEST: usize = 64;

pub async fn accept_loop(shared: Weak<Shared>, listener: UnixListener) {
    let Some(token) = shared.upgrade().map(|s| s.token.clone()) else {
        return;
    };
    loop {
        let stream = overlap::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let Some(s) = shared.upgrade() else { return };
        s.stats.borrow_mut().followers += 1;
        let token = token.clone();
        let shared = shared.clone();
        s.tracker.spawn(async move {
            overlap::select! {
                _ = token.cancelled() => {}
                _ = follow(shared, stream) => {}
            }
        });
    }
}

async fn follow(shared: Weak<Shared>, stream: UnixStream) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    // A line of at most MAX_REQUEST bytes, in time; a peer gone before its end is gone.
    let limit = shared.upgrade().map(|s| s.cfg.request_timeout);
    let limit = limit.ok_or(std::io::ErrorKind::BrokenPipe)?;
    let mut limited = (&mut rd).take(MAX_REQUEST as u64);
    let read = limited.read_until(b'\n', &mut line);
    let Ok(n) = overlap::time::timeout(limit, read).await else {
        if let Some(s) = shared.upgrade() {
            s.stats.borrow_mut().request_timeouts += 1;
        }
        return wr.close().await;
    };
    let n = n?;
    let from = match parse_request(&line[..n]) {
        Some(from) => from,
        None => {
            if let Some(s) = shared.upgrade() {
                s.stats.borrow_mut().bad_requests += 1;
            }
            wr.write_all(b"ERR bad request\n").await?;
            return wr.close().await;
        }
    };
    // Subscribe first, then read the files: an entry is either in a file by now or comes
    // through the channel (or both, and the seq tells).
    let (mut rx, files) = {
        let s = shared.upgrade().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let files = s.files.borrow().clone();
        (s.live.subscribe(), files)
    };
    let mut next = from;
    for f in files {
        // Deleted by retention meanwhile: its entries are gone.
        let Ok(file) = PositionalFile::open(&f.path).await else {
            continue;
        };
        let len = file.metadata().await?.len();
        let bytes = file.read_vec_at(len as usize, 0).await?;
        let mut at = format::HEADER;
        while at < bytes.len() {
            // A record still being written reads as short or bad: the channel brings it.
            let Record::Entry(e, n) = format::decode(&bytes[at..]) else {
                break;
            };
            if e.seq >= next {
                wr.write_all(&bytes[at..at + n]).await?;
                next = e.seq + 1;
            }
            at += n;
        }
    }
    loop {
        match rx.recv().await {
            Ok((seq, _)) if seq < next => {}
            Ok((seq, record)) => {
                wr.write_all(&record).await?;
                next = seq + 1;
            }
            Err(RecvError::Lagged(_)) => {
                if let Some(s) = shared.upgrade() {
                    s.stats.borrow_mut().followers_cut += 1;
                }
                wr.write_all(&format::marker(next)).await?;
                return wr.close().await;
            }
            Err(RecvError::Closed) => return wr.close().await,
        }
    }
}

fn parse_request(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?.strip_suffix('\n')?;
    line.strip_prefix("FOLLOW ")?.parse().ok()
}
