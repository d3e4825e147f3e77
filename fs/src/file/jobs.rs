//! Starting a [`File`]'s jobs and folding their outcomes back in. At most one is in flight
//! (`File::job`); what each takes over (buffers, the `rewind`) is given back if it never runs.

use std::io::{self, SeekFrom};
use std::task::{ready, Context, Poll};

use super::blocking::{self, Done};
use super::{File, InFlight, Kind};
use crate::job;

impl File {
    /// Drops the read-ahead of a seekable file, returning how far the fd's offset is ahead
    /// of the reader. An unseekable fd's bytes cannot be taken back, so they stay buffered.
    pub(super) fn discard_reads(&mut self) -> u64 {
        if self.seekable {
            self.read.discard()
        } else {
            0
        }
    }

    pub(super) fn submit_read(&mut self, want: usize) {
        debug_assert!(self.job.is_none());
        let (buf, size) = self.read.start_job(want);
        let (std, rewind) = (self.std.clone(), std::mem::take(&mut self.rewind));
        let job = job::spawn(move || blocking::read(&std, buf, size, rewind));
        self.job = Some(InFlight {
            kind: Kind::Read,
            job,
            rewind,
        });
    }

    pub(super) fn submit_write(&mut self) {
        debug_assert!(self.job.is_none() && !self.wbuf.is_empty());
        // The spare buffer stays for the bytes handed to this job (`hand_to_write_job`):
        // moved into `wbuf`, which stays empty while the job runs, it would sit idle while
        // the hand-offs took a third buffer.
        let buf = std::mem::take(&mut self.wbuf);
        {
            let mut h = blocking::lock(&self.handoff);
            h.running = true;
            h.finished = None;
        }
        let write = blocking::WriteJob {
            file: self.std.clone(),
            buf,
            rewind: std::mem::take(&mut self.rewind),
            handoff: self.handoff.clone(),
            ran: false,
            _durable: overlap_runtime::durable_work(),
        };
        let job = job::spawn(move || write.run());
        self.job = Some(InFlight {
            kind: Kind::Write,
            job,
            // A write job that never runs still writes (and rewinds) when it is dropped.
            rewind: 0,
        });
    }

    pub(super) fn submit_seek(&mut self, pos: SeekFrom) {
        debug_assert!(self.job.is_none() && self.wbuf.is_empty());
        self.rewind += self.discard_reads();
        let (std, rewind) = (self.std.clone(), self.rewind);
        self.rewind = 0;
        let job = job::spawn(move || blocking::seek(&std, pos, rewind));
        self.job = Some(InFlight {
            kind: Kind::Seek(pos),
            job,
            rewind,
        });
    }

    pub(super) fn submit_truncate(&mut self, size: u64) {
        debug_assert!(self.job.is_none() && self.wbuf.is_empty());
        // The read-ahead may hold bytes the truncation removes: it goes, and the same job
        // moves the fd's offset back to where the reader is.
        let rewind = std::mem::take(&mut self.rewind) + self.discard_reads();
        let std = self.std.clone();
        let job = job::spawn(move || {
            Done::Truncate(blocking::rewind_by(&std, rewind).and_then(|()| std.set_len(size)))
        });
        self.job = Some(InFlight {
            kind: Kind::Truncate(size),
            job,
            rewind,
        });
    }

    /// Starts a positional read or write, `run`, in the empty slot: it keeps the operations
    /// after it waiting until it is done, though it leaves the fd's offset alone.
    pub(super) fn submit_at(&mut self, kind: Kind, run: impl FnOnce() -> Done + Send + 'static) {
        debug_assert!(self.job.is_none() && self.wbuf.is_empty());
        self.job = Some(InFlight {
            kind,
            job: job::spawn(run),
            rewind: 0,
        });
    }

    /// Takes in a write job's error. The job may have written a prefix of its bytes; the
    /// rest are refused, and the bytes accepted after them go too (reported with this
    /// error): written now, they would land right after the prefix, where the caller did
    /// not put them.
    fn write_failed(&mut self, e: io::Error) {
        self.wbuf.clear();
        // Keep the first error if two are pending.
        let e = self.err(e, "write");
        self.error.get_or_insert(e);
    }

    /// Waits for the job in flight, if any, and folds its outcome in. Returns the result of
    /// a seek or truncation job (0 for the latter).
    ///
    /// A job that never ran (no thread could start, or its runtime shut down first) is
    /// submitted again, once, in the runtime polling now: an operation dropped with its
    /// runtime still takes effect, in order. If that one does not run either, a read
    /// reports the error, and a seek or truncation leaves it for the next operation.
    pub(super) fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<u64>>> {
        loop {
            let Some(inflight) = &mut self.job else {
                return Poll::Ready(None);
            };
            let res = ready!(inflight.job.poll_value(cx));
            let (kind, rewind) = (inflight.kind, inflight.rewind);
            // A job its runtime dropped may still have run (or be running) on a pool
            // thread: only one that is now sure never to run may be submitted again.
            let never_runs = res.is_err() && kind != Kind::Write && inflight.job.abandon();
            self.job = None;
            let done = match res {
                Ok(done) => {
                    self.never_ran = false;
                    done
                }
                Err(mut e) => {
                    if !never_runs && kind != Kind::Write {
                        // It started, and reports no result of its own: it panicked.
                        e = io::Error::other(
                            "the file operation's job failed after it started: its outcome, \
                             and the file's position, are unknown",
                        );
                    }
                    // The fd's offset is still ahead of the reader by what it was to rewind.
                    self.rewind += rewind;
                    let retry = never_runs && !std::mem::replace(&mut self.never_ran, true);
                    match kind {
                        // Submitted again by the read that wants it.
                        Kind::Read if retry => {}
                        Kind::Read => {
                            self.never_ran = false;
                            self.read.complete(Vec::new(), 0, Err(e));
                        }
                        // It never ran on the pool (its destructor wrote the bytes), or ran
                        // on a pool thread of a runtime now gone. Take its outcome; if it
                        // still writes, detached, wait for it so what comes next stays in
                        // order.
                        Kind::Write => {
                            self.never_ran = false;
                            match blocking::finished_write(&self.handoff) {
                                Some(Ok(())) => {}
                                Some(Err(written)) => self.write_failed(written),
                                None => {
                                    let handoff = self.handoff.clone();
                                    self.job = Some(InFlight {
                                        kind: Kind::Write,
                                        job: job::spawn(move || blocking::wait_for_write(&handoff)),
                                        rewind: 0,
                                    });
                                    continue;
                                }
                            }
                        }
                        Kind::Seek(pos) if retry => {
                            self.submit_seek(pos);
                            continue;
                        }
                        Kind::Truncate(size) if retry => {
                            self.submit_truncate(size);
                            continue;
                        }
                        Kind::Seek(_) | Kind::Truncate(_) => {
                            self.never_ran = false;
                            self.error.get_or_insert(e);
                        }
                        // Its caller awaits it through `poll_at`; this one was dropped.
                        Kind::ReadAt | Kind::WriteAt => self.never_ran = false,
                    }
                    return Poll::Ready(None);
                }
            };
            return Poll::Ready(match done {
                Done::Read { buf, want, res } => {
                    let res = res.map_err(|e| self.err(e, "read"));
                    self.read.complete(buf, want, res);
                    None
                }
                Done::Write { buf, res } => {
                    self.keep_wspare(buf);
                    if let Err(e) = res {
                        self.write_failed(e);
                    }
                    None
                }
                Done::Seek(res) => {
                    if res.is_err() {
                        // A failed `lseek` (or an offset found out of range before it) left
                        // the fd where it was: still `rewind` ahead of the reader.
                        self.rewind += rewind;
                    }
                    Some(res.map_err(|e| self.err(e, "seek")))
                }
                Done::Truncate(res) => Some(res.map(|()| 0).map_err(|e| self.err(e, "truncate"))),
                // A dropped `read_at` or `write_at`: nobody wants its outcome.
                Done::At { mut buf, .. } => {
                    buf.clear();
                    self.keep_wspare(buf);
                    None
                }
            });
        }
    }
}
