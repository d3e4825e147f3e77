//! The control loop: reads the control FIFO, cuts records, runs commands, and answers each
//! client in a task of its own (at most `max_replies` at once), so a slow client holds up
//! nobody. At end of file it does what its `EofMode` says; a half record whose writer left
//! is dropped; the control path is checked every `watch_every`. On shutdown it waits for
//! the reply tasks, which the same token ends, and removes the FIFO if it made it.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::Receiver;
use overlap::sync::{CancellationToken, OwnedSemaphorePermit, Semaphore};
use overlap::task::TaskTracker;
use overlap::time::{interval_at, sleep_until, timeout, Instant};

use super::control::{self, EofMode, Identity, PathState, SPIN_GUARD};
use super::daemon::{Config, Shared};
use super::proto::{self, Command, MAX_RECORD};
use super::records::{Record, Records};
use super::reply::{self, Outcome};

/// The control FIFO as opened: its receiver, which FIFO it is, whether the daemon made it.
pub struct Opened {
    pub rx: Receiver,
    pub ident: Identity,
    pub made: bool,
}

enum Event {
    Read(io::Result<usize>),
    PartialTimeout,
    Watch,
}

/// Commands' side: what a reply task needs.
struct Ctx {
    cfg: Config,
    shared: Rc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
    permits: Rc<Semaphore>,
}

pub async fn run(
    cfg: Config,
    shared: Rc<Shared>,
    token: CancellationToken,
    mut opened: Opened,
) -> io::Result<()> {
    let ctx = Ctx {
        permits: Rc::new(Semaphore::new(cfg.max_replies)),
        tracker: TaskTracker::new(),
        cfg,
        shared,
        token,
    };
    let cfg = &ctx.cfg;
    let mut records = Records::default();
    let mut buf = vec![0u8; cfg.read_size];
    let mut out = Vec::new();
    let mut watch = interval_at(Instant::now() + cfg.watch_every, cfg.watch_every);
    let mut partial_since: Option<Instant> = None;
    let mut zeros_in_a_row = 0u64;
    let res = loop {
        let partial_end = partial_since.map(|t| t + cfg.partial_timeout);
        let event = overlap::select! {
            biased;
            _ = ctx.token.cancelled() => break Ok(()),
            r = opened.rx.read(&mut buf) => Event::Read(r),
            _ = sleep_until(partial_end.unwrap_or_else(Instant::now)), if partial_end.is_some() => {
                Event::PartialTimeout
            }
            _ = watch.tick() => Event::Watch,
        };
        match event {
            Event::Read(Err(e)) => break Err(e),
            Event::Read(Ok(0)) => {
                ctx.shared.count(|s| {
                    s.reads += 1;
                    s.eof_reads += 1;
                });
                if cfg.mode == EofMode::Naive {
                    // "Nothing now": read again. At end of file that is a read of 0 at once,
                    // for ever, until some writer opens the FIFO.
                    zeros_in_a_row += 1;
                    if zeros_in_a_row >= SPIN_GUARD {
                        break Err(io::Error::other(format!(
                            "spinning: {zeros_in_a_row} reads of 0 in a row at end of file"
                        )));
                    }
                    continue;
                }
                // Every writer gone: a half record will never end.
                if records.discard_partial() {
                    ctx.shared.count(|s| s.partial += 1);
                }
                partial_since = None;
                if let Err(e) = reopen(&ctx, &mut opened, &mut records, &mut out, true) {
                    break Err(e);
                }
            }
            Event::Read(Ok(n)) => {
                zeros_in_a_row = 0;
                ctx.shared.count(|s| s.reads += 1);
                records.feed(&buf[..n], &mut out);
                for record in out.drain(..) {
                    handle(&ctx, record);
                }
                // A record's writer writes it whole: one still open when the FIFO is
                // drained has a writer that is slow, or gone.
                partial_since = records.has_partial().then(Instant::now);
            }
            Event::PartialTimeout => {
                if records.discard_partial() {
                    ctx.shared.count(|s| s.partial += 1);
                }
                partial_since = None;
            }
            Event::Watch => {
                if let Err(e) = reopen(&ctx, &mut opened, &mut records, &mut out, false) {
                    break Err(e);
                }
            }
        }
    };
    // Shutdown: the reply and dump tasks end on the same token, then every fd is closed.
    ctx.token.cancel();
    ctx.tracker.close();
    ctx.tracker.wait().await;
    let still_ours = matches!(
        control::check_ident(&cfg.path),
        Some(ident) if ident == opened.ident
    );
    drop(opened.rx);
    if opened.made && still_ours {
        let _ = std::fs::remove_file(&cfg.path);
    }
    res
}

/// Looks at the control path and opens it again if the daemon should: at end of file
/// (`Reopen`), or when it was deleted (made again) or replaced by another FIFO. What the
/// old FIFO still holds is read first; a path that is no FIFO any more is an error.
fn reopen(
    ctx: &Ctx,
    opened: &mut Opened,
    records: &mut Records,
    out: &mut Vec<Record>,
    at_eof: bool,
) -> io::Result<()> {
    let state = control::check_path(&ctx.cfg.path, opened.ident)?;
    match state {
        PathState::Same if !at_eof => return Ok(()),
        PathState::Same => {}
        PathState::Recreated => ctx.shared.count(|s| s.recreated += 1),
        PathState::Replaced => ctx.shared.count(|s| s.replaced += 1),
    }
    if !at_eof {
        // Clients that opened the old FIFO before it went: read what they wrote.
        let mut buf = vec![0u8; MAX_RECORD];
        while let Ok(n @ 1..) = opened.rx.try_read(&mut buf) {
            records.feed(&buf[..n], out);
        }
        for record in out.drain(..) {
            handle(ctx, record);
        }
        if records.discard_partial() {
            ctx.shared.count(|s| s.partial += 1);
        }
    }
    let (rx, ident) = control::open(&ctx.cfg.path, ctx.cfg.mode)?;
    match state {
        PathState::Recreated => opened.made = true,
        PathState::Replaced => opened.made = false,
        PathState::Same => {}
    }
    *opened = Opened {
        rx,
        ident,
        made: opened.made,
    };
    ctx.shared.count(|s| s.reopens += 1);
    Ok(())
}

fn handle(ctx: &Ctx, record: Record) {
    let line = match record {
        Record::Oversized(head) => {
            ctx.shared.count(|s| s.oversized += 1);
            if let Some(to) = proto::reply_of(&head) {
                let msg = format!("ERR record over {MAX_RECORD} bytes\n");
                answer(ctx, to, msg.into_bytes());
            }
            return;
        }
        Record::Line(line) => line,
    };
    ctx.shared.count(|s| s.records += 1);
    match proto::parse(&line) {
        Ok(Command::Ping { reply }) => answer(ctx, reply, b"PONG\n".to_vec()),
        Ok(Command::Echo { reply, text }) => answer(ctx, reply, format!("{text}\n").into()),
        Ok(Command::Post { text }) => {
            ctx.shared.count(|s| s.posts += 1);
            ctx.shared.posts.borrow_mut().push(text);
        }
        Ok(Command::Blob { reply, len }) if len > ctx.cfg.max_blob => {
            let msg = format!("ERR BLOB over {} bytes\n", ctx.cfg.max_blob);
            answer(ctx, reply, msg.into_bytes())
        }
        Ok(Command::Blob { reply, len }) => answer(ctx, reply, proto::blob(len)),
        Ok(Command::Stats { reply }) => {
            let s = ctx.shared.stats.borrow().clone();
            let msg = format!(
                "records={} posts={} malformed={} oversized={} partial={}\n",
                s.records, s.posts, s.malformed, s.oversized, s.partial
            );
            answer(ctx, reply, msg.into_bytes())
        }
        Ok(Command::Dump {
            reply,
            source,
            file,
        }) => {
            let Some(permit) = permit(ctx) else { return };
            let (cfg, shared) = (ctx.cfg.clone(), ctx.shared.clone());
            let token = ctx.token.clone();
            ctx.tracker.spawn(async move {
                let _permit = permit;
                let work = async {
                    let msg = match dump(&source, &file, &cfg).await {
                        Ok(n) => {
                            shared.count(|s| s.dumps += 1);
                            format!("DUMPED {n}\n")
                        }
                        Err(e) => format!("ERR dump: {e}\n"),
                    };
                    deliver(&reply, msg.as_bytes(), &cfg, &shared).await
                };
                overlap::select! {
                    _ = token.cancelled() => {}
                    () = { work } => {}
                }
            });
        }
        Err(bad) => {
            ctx.shared.count(|s| s.malformed += 1);
            if let Some(to) = bad.reply {
                answer(ctx, to, format!("ERR {}\n", bad.reason).into_bytes());
            }
        }
    }
}

fn permit(ctx: &Ctx) -> Option<OwnedSemaphorePermit> {
    let permit = ctx.permits.clone().try_acquire_owned().ok();
    if permit.is_none() {
        ctx.shared.count(|s| s.busy += 1);
    }
    permit
}

/// Answers in a task of its own, holding one of the `max_replies` permits.
fn answer(ctx: &Ctx, to: PathBuf, bytes: Vec<u8>) {
    let Some(permit) = permit(ctx) else { return };
    let (cfg, shared, token) = (ctx.cfg.clone(), ctx.shared.clone(), ctx.token.clone());
    ctx.tracker.spawn(async move {
        let _permit = permit;
        overlap::select! {
            _ = token.cancelled() => {}
            () = deliver(&to, &bytes, &cfg, &shared) => {}
        }
    });
}

async fn deliver(to: &Path, bytes: &[u8], cfg: &Config, shared: &Shared) {
    let (opened, refused) = reply::open_reply(to, &cfg.reply).await;
    shared.count(|s| s.enxio += refused);
    let outcome = match opened {
        Ok(tx) => reply::write_reply(tx, bytes, &cfg.reply).await,
        Err(outcome) => outcome,
    };
    shared.count(|s| match outcome {
        Outcome::Delivered => s.delivered += 1,
        Outcome::Gone => s.gone += 1,
        Outcome::TooSlow => s.too_slow += 1,
        Outcome::Refused(_) => s.refused += 1,
    });
}

/// Copies the FIFO `source` into a new `file` until every writer of the source has closed
/// it, at most `max_dump` bytes and `dump_deadline`. overlap's `splice` moves bytes only
/// between pipes and sockets, so this is a copy through a buffer (as with tokio).
async fn dump(source: &Path, file: &Path, cfg: &Config) -> io::Result<u64> {
    let rx = Receiver::open(source)?;
    let mut out = overlap::fs::File::create(file).await?;
    let limit = cfg.max_dump;
    let copied = timeout(
        cfg.dump_deadline,
        overlap::io::copy(rx.take(limit + 1), &mut out),
    )
    .await;
    let flushed = out.flush().await;
    drop(out);
    let res = match copied {
        Ok(Ok(n)) if n > limit => Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("over {limit} bytes"),
        )),
        Ok(Ok(n)) => flushed.map(|()| n),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
    };
    if res.is_err() {
        let _ = overlap::fs::remove_file(file).await;
    }
    res
}
