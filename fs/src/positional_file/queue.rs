//! The request queue of a [`PositionalFile`](super::PositionalFile): reads and writes wait in
//! one queue per file, drained by pool jobs ("workers") that each run requests one after
//! another until the queue is empty. A request submitted while a worker runs costs no new
//! job, only a place in the queue; a new worker starts when none runs or when requests
//! outnumber the workers, up to the file's `max_jobs` (by default the number of CPUs: more
//! threads than CPUs only take turns when the page cache serves the requests, while a slow
//! device serves more at once, which `set_max_jobs` opens up).

use std::collections::VecDeque;
use std::fs::File as StdFile;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::at_offset;
use crate::job;

/// The default of the most workers one file's queue runs at once: the CPUs there are.
fn default_max_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// What a request does.
#[derive(Debug)]
pub(super) enum Op {
    /// `pread` of `len` bytes at `offset`; with `exact`, on until full or the end.
    Read {
        offset: u64,
        len: usize,
        exact: bool,
    },
    /// `pwrite` of `bytes` at `offset`; with `all`, on until all are written.
    Write {
        offset: u64,
        bytes: Vec<u8>,
        all: bool,
    },
    /// `ftruncate` to `size`.
    SetLen { size: u64 },
    /// `fdatasync` (`data_only`) or `fsync`.
    Sync { data_only: bool },
    /// `fallocate(PUNCH_HOLE | KEEP_SIZE)` of `len` bytes at `offset`.
    PunchHole { offset: u64, len: u64 },
}

impl Op {
    /// The outcome of a read or write of no bytes, which needs no job (a write's empty
    /// buffer given back, as a job would); `Err(self)` for any other.
    pub(super) fn without_a_job(self) -> Result<Outcome, Op> {
        match self {
            Op::Read { len: 0, .. } => Ok(Ok((0, Vec::new()))),
            Op::Write { bytes, .. } if bytes.is_empty() => Ok(Ok((0, bytes))),
            op => Err(op),
        }
    }
}

/// A request's outcome: the count, and the bytes: for a read, those read; for a write, the
/// buffer written from, given back.
pub(super) type Outcome = io::Result<(usize, Vec<u8>)>;

/// A file and the requests waiting for it.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) std: StdFile,
    queue: Mutex<Queue>,
}

#[derive(Debug)]
struct Queue {
    pending: VecDeque<Arc<Request>>,
    /// Workers submitted and not yet gone.
    workers: usize,
    /// The most workers at once, at least 1.
    max_workers: usize,
}

#[derive(Debug)]
struct Request {
    slot: Mutex<Slot>,
}

#[derive(Debug)]
enum Slot {
    Queued {
        op: Op,
        waker: Option<Waker>,
    },
    Running {
        waker: Option<Waker>,
    },
    Done(Outcome),
    /// Its outcome was taken, or it was a read whose future was dropped while queued.
    Gone,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only moves of requests and outcomes happen under these locks: a poisoned one is
    // still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn new(std: StdFile) -> Shared {
        Shared {
            std,
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                workers: 0,
                max_workers: default_max_jobs(),
            }),
        }
    }

    pub(super) fn max_jobs(&self) -> usize {
        lock(&self.queue).max_workers
    }

    /// Sets the most workers at once (`0` is taken as 1); workers running past a lowered
    /// limit finish their current request and go on draining.
    pub(super) fn set_max_jobs(&self, n: usize) {
        lock(&self.queue).max_workers = n.max(1);
    }

    /// Queues `op`, starting a worker if it needs one; the future gives its outcome.
    pub(super) fn submit(self: &Arc<Shared>, op: Op) -> Submitted {
        let req = Arc::new(Request {
            slot: Mutex::new(Slot::Queued { op, waker: None }),
        });
        let start_worker = {
            let mut q = lock(&self.queue);
            q.pending.push_back(req.clone());
            let start =
                q.workers < q.max_workers && (q.workers == 0 || q.pending.len() > q.workers);
            if start {
                q.workers += 1;
            }
            start
        };
        if start_worker {
            let worker = Worker {
                shared: self.clone(),
                counted: true,
            };
            // Detached: the worker answers through the requests. If it never runs (the
            // runtime shut down first, or no thread could start), its drop fails the
            // requests no other worker is left to run.
            drop(job::spawn(move || worker.run()));
        }
        Submitted { req }
    }
}

/// A pool job draining a file's queue.
struct Worker {
    shared: Arc<Shared>,
    /// Still counted in `Queue::workers`: cleared when it leaves the count itself.
    counted: bool,
}

impl Worker {
    /// Runs requests until the queue is empty. The worker lets go of the file before the
    /// last request's outcome is out, so that a task finding all its requests done finds
    /// no job still holding the fd ([`try_into_std`](super::PositionalFile::try_into_std)).
    fn run(mut self) {
        let Some(mut req) = self.next_request() else {
            return;
        };
        loop {
            let outcome = self.serve(&req);
            match self.next_request() {
                Some(next) => {
                    finish(&req, outcome);
                    req = next;
                }
                None => {
                    drop(self);
                    finish(&req, outcome);
                    return;
                }
            }
        }
    }

    /// The next request in the queue; with none, the worker leaves the count (any request
    /// queued after that starts a worker of its own).
    fn next_request(&mut self) -> Option<Arc<Request>> {
        let mut q = lock(&self.shared.queue);
        let req = q.pending.pop_front();
        if req.is_none() {
            q.workers -= 1;
            self.counted = false;
        }
        req
    }

    /// Runs `req` and gives its outcome, unless its future went away while it was queued.
    fn serve(&self, req: &Request) -> Option<Outcome> {
        let op = {
            let mut slot = lock(&req.slot);
            match std::mem::replace(&mut *slot, Slot::Gone) {
                Slot::Queued { op, waker } => {
                    *slot = Slot::Running { waker };
                    op
                }
                // A read nobody waits for any more.
                _ => return None,
            }
        };
        Some(run_op(&self.shared.std, op))
    }
}

/// Hands `req` its outcome (if it ran) and wakes the task waiting for it.
fn finish(req: &Request, outcome: Option<Outcome>) {
    let Some(outcome) = outcome else {
        return;
    };
    let waker = {
        let mut slot = lock(&req.slot);
        match std::mem::replace(&mut *slot, Slot::Done(outcome)) {
            Slot::Running { waker } => waker,
            _ => None,
        }
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        // It never ran: if no other worker is left, nothing will run the queue.
        let orphans = {
            let mut q = lock(&self.shared.queue);
            q.workers -= 1;
            if q.workers == 0 {
                std::mem::take(&mut q.pending)
            } else {
                VecDeque::new()
            }
        };
        for req in orphans {
            let err = io::Error::other(
                "the file operation did not run: no runtime's pool ran it (it was polled \
                 outside a runtime, the runtime shut down first, or no pool thread could start)",
            );
            let mut slot = lock(&req.slot);
            if let Slot::Queued { waker, .. } = std::mem::replace(&mut *slot, Slot::Done(Err(err)))
            {
                drop(slot);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }
}

fn run_op(std: &StdFile, op: Op) -> Outcome {
    match op {
        Op::Read { offset, len, exact } => read(std, offset, len, exact),
        Op::Write { offset, bytes, all } => {
            at_offset::write_at(std, &bytes, offset, all).map(|n| (n, bytes))
        }
        Op::SetLen { size } => std.set_len(size).map(|()| (0, Vec::new())),
        Op::Sync { data_only: true } => std.sync_data().map(|()| (0, Vec::new())),
        Op::Sync { data_only: false } => std.sync_all().map(|()| (0, Vec::new())),
        Op::PunchHole { offset, len } => {
            crate::sys::punch_hole(std.as_raw_fd(), offset, len).map(|()| (0, Vec::new()))
        }
    }
}

/// Reads longer than this look at the file's size first.
const SIZE_CHECK_PAST: usize = 1 << 20;
/// What a read that filled the buffer its guess of the file's size gave reads next.
const PROBE: usize = 4096;

/// A read of `len` bytes at `offset` into a buffer of its own. A long read of a regular
/// file first sizes its buffer by the bytes from `offset` to the file's end (as `fstat`
/// sees it), so that a length read from a corrupt header costs no buffer that long; the
/// size is only a guess (a file may grow meanwhile, and procfs says 0), so a read that
/// fills the buffer goes on into a bigger one.
fn read(std: &StdFile, offset: u64, len: usize, exact: bool) -> Outcome {
    let mut room = sized_guess(std, offset, len);
    let mut bytes = buffer_for(room)?;
    let mut n = at_offset::read_to_spare_at(std, &mut bytes, room, offset, exact)?;
    // Full up to the guess, and more asked for: a small read tells the end of the file
    // from a wrong guess; past it, an exact read goes on, in steps as long as what it
    // has, to the end or to `len` (another one only needed a byte).
    let mut step = PROBE;
    while n == room && n < len && (exact || n == 0) {
        let more = (len - n).min(step);
        step = n.max(PROBE);
        bytes.try_reserve_exact(more).map_err(|_| too_long(len))?;
        let at = offset.saturating_add(n as u64);
        let got = at_offset::read_to_spare_at(std, &mut bytes, more, at, exact)?;
        n += got;
        room += more;
        if got == 0 {
            break;
        }
    }
    Ok((n, bytes))
}

/// `len`, or for a long read of a regular file, no more than the bytes from `offset` to
/// its end. Other files (a block device says size 0) keep `len`.
fn sized_guess(std: &StdFile, offset: u64, len: usize) -> usize {
    if len <= SIZE_CHECK_PAST {
        return len;
    }
    match std.metadata() {
        Ok(meta) if meta.file_type().is_file() => {
            let left = meta.len().saturating_sub(offset);
            len.min(usize::try_from(left).unwrap_or(usize::MAX))
        }
        _ => len,
    }
}

/// An empty buffer with room for `len` bytes, or an `OutOfMemory` error if no buffer that
/// long can be had (a length the caller chose, as `read_vec_at`'s, may be anything). Its
/// pages are touched only as reads fill them.
fn buffer_for(len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(|_| too_long(len))?;
    Ok(bytes)
}

fn too_long(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("cannot allocate a buffer of {len} bytes to read into"),
    )
}

/// A submitted request's outcome, as a future. Dropped before it completes, a read still
/// queued is skipped; anything else runs, its outcome discarded.
#[derive(Debug)]
pub(super) struct Submitted {
    req: Arc<Request>,
}

impl Future for Submitted {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut slot = lock(&self.req.slot);
        match std::mem::replace(&mut *slot, Slot::Gone) {
            Slot::Done(outcome) => Poll::Ready(outcome),
            Slot::Gone => Poll::Ready(Err(io::Error::other(
                "the file operation's outcome was already taken",
            ))),
            mut waiting => {
                if let Slot::Queued { waker, .. } | Slot::Running { waker } = &mut waiting {
                    match waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => *waker = Some(cx.waker().clone()),
                    }
                }
                *slot = waiting;
                Poll::Pending
            }
        }
    }
}

impl Drop for Submitted {
    fn drop(&mut self) {
        let mut slot = lock(&self.req.slot);
        if matches!(
            &*slot,
            Slot::Queued {
                op: Op::Read { .. },
                ..
            }
        ) {
            *slot = Slot::Gone;
        }
    }
}
