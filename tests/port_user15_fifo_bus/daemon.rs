//! The daemon: its settings and counters, and the handle that starts it and shuts it down.
//! The control loop itself is in `serve.rs`.

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::CancellationToken;
use overlap::task::JoinHandle;

use super::control::{self, EofMode};
use super::reply::ReplyLimits;
use super::serve;

#[derive(Clone, Debug)]
pub struct Config {
    /// The control FIFO, made if missing.
    pub path: PathBuf,
    pub mode: EofMode,
    pub reply: ReplyLimits,
    /// Replies (and dumps) under way at once; a command beyond is dropped, counted `busy`.
    pub max_replies: usize,
    pub max_blob: usize,
    pub max_dump: u64,
    /// How long a dump may take, its source's writers included.
    pub dump_deadline: Duration,
    /// How long a record begun and not ended may wait for its end (its writer gone).
    pub partial_timeout: Duration,
    /// How often the control path is checked for being deleted or replaced.
    pub watch_every: Duration,
    /// The control FIFO's read buffer.
    pub read_size: usize,
}

impl Config {
    pub fn new(path: PathBuf, mode: EofMode) -> Config {
        Config {
            path,
            mode,
            reply: ReplyLimits {
                open_deadline: Duration::from_secs(2),
                open_retry: Duration::from_millis(50),
                write_deadline: Duration::from_secs(5),
            },
            max_replies: 16,
            max_blob: 4 << 20,
            max_dump: 1 << 20,
            dump_deadline: Duration::from_secs(30),
            partial_timeout: Duration::from_secs(1),
            watch_every: Duration::from_secs(1),
            read_size: 64 * 1024,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Reads of the control FIFO that returned (bytes or 0).
    pub reads: u64,
    /// Of them, reads of 0: end of file.
    pub eof_reads: u64,
    /// The control FIFO opened again (at end of file, or found deleted or replaced).
    pub reopens: u64,
    pub records: u64,
    pub posts: u64,
    pub malformed: u64,
    pub oversized: u64,
    /// Records begun and never ended: dropped at end of file or after `partial_timeout`.
    pub partial: u64,
    pub delivered: u64,
    pub gone: u64,
    pub too_slow: u64,
    /// Reply paths that were no FIFO, never written.
    pub refused: u64,
    /// Commands dropped with `max_replies` replies under way.
    pub busy: u64,
    /// Opens of a reply FIFO refused with `ENXIO` (no reader yet), each then tried again.
    pub enxio: u64,
    pub recreated: u64,
    pub replaced: u64,
    pub dumps: u64,
}

/// What the daemon and its tests share.
#[derive(Debug, Default)]
pub struct Shared {
    pub stats: RefCell<Stats>,
    /// The bus: every `POST`'s text, in order.
    pub posts: RefCell<Vec<String>>,
}

impl Shared {
    pub fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.borrow_mut())
    }
}

pub struct Daemon {
    shared: Rc<Shared>,
    token: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl Daemon {
    /// Makes (or checks) the control FIFO and opens it, then serves it in a task. A path
    /// that is no FIFO, or cannot be opened, fails here.
    pub fn start(cfg: Config) -> io::Result<Daemon> {
        let made = control::ensure_fifo(&cfg.path)?;
        let (rx, ident) = match control::open(&cfg.path, cfg.mode) {
            Ok(opened) => opened,
            Err(e) => {
                if made {
                    let _ = std::fs::remove_file(&cfg.path);
                }
                return Err(e);
            }
        };
        let shared = Rc::new(Shared::default());
        let token = CancellationToken::new();
        let task = overlap::spawn(serve::run(
            cfg,
            shared.clone(),
            token.clone(),
            serve::Opened { rx, ident, made },
        ));
        Ok(Daemon {
            shared,
            token,
            task,
        })
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.borrow().clone()
    }

    pub fn posts(&self) -> Vec<String> {
        self.shared.posts.borrow().clone()
    }

    /// Stops reading, ends every reply and dump under way, closes every fd, removes the
    /// control FIFO if the daemon made it; the counters at the end.
    pub async fn shutdown(self) -> io::Result<Stats> {
        self.token.cancel();
        let (res, stats) = self.finished().await;
        res.map(|()| stats)
    }

    /// Waits for the daemon to end by itself (an error: the control path no FIFO any
    /// more, the naive loop spinning): how it ended, and the counters then.
    pub async fn finished(self) -> (io::Result<()>, Stats) {
        let res = self.task.await.expect("the daemon panicked");
        (res, self.shared.stats.borrow().clone())
    }
}
