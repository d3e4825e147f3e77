//! `Unblock` over a `Seek` value: `AsyncSeek`, counting from the bytes returned so far.

use std::future::Future;
use std::io::{self, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncSeek;

use super::{lost, State, Unblock};
use crate::blocking::spawn_blocking_or_error;

impl<T: Send + 'static> Unblock<T> {
    /// Waits for the seek job in flight and goes idle, keeping the read-ahead bytes if the
    /// seek failed without moving the value. Only called in the seeking state (any other
    /// reports a lost value).
    pub(super) fn poll_seek_job(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let State::Seeking {
            job, read_ahead, ..
        } = &mut self.state
        else {
            return Poll::Ready(Err(lost()));
        };
        let (pos, filled) = *read_ahead;
        let done = ready!(Pin::new(job).poll(cx));
        self.state = State::Lost;
        let (inner, buf, res, kept) = self.job_value(done, (pos, filled))?;
        let (pos, filled) = if kept { (pos, filled) } else { (0, 0) };
        self.state = State::Idle {
            inner,
            buf,
            pos,
            filled,
        };
        Poll::Ready(res)
    }
}

/// Seeks `inner` to `pos` as seen by a reader that has `unread` bytes of read-ahead left;
/// the flag says whether those bytes are still valid (the seek failed without moving).
fn seek_past_read_ahead<T: Seek>(
    inner: &mut T,
    pos: SeekFrom,
    unread: i64,
) -> (io::Result<u64>, bool) {
    let SeekFrom::Current(off) = pos else {
        return match inner.seek(pos) {
            Ok(at) => (Ok(at), false),
            Err(e) => (Err(e), unread > 0),
        };
    };
    if let Some(adjusted) = off.checked_sub(unread) {
        return match inner.seek(SeekFrom::Current(adjusted)) {
            Ok(at) => (Ok(at), false),
            Err(e) => (Err(e), unread > 0),
        };
    }
    // `off - unread` overflows: back to the reader's position first, then on from there.
    if let Err(e) = inner.seek(SeekFrom::Current(-unread)) {
        return (Err(e), true);
    }
    (inner.seek(SeekFrom::Current(off)), false)
}

impl<T: Seek + Send + 'static> AsyncSeek for Unblock<T> {
    /// Waits for the write in flight, then seeks in a job, counting `SeekFrom::Current`
    /// from the bytes returned so far and dropping the read-ahead (see
    /// [Seeking](Unblock#seeking)).
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        loop {
            match &this.state {
                State::Seeking { pos: p, .. } if *p == pos => return this.poll_seek_job(cx),
                State::Idle {
                    pos: at, filled, ..
                } => {
                    let read_ahead = (*at, *filled);
                    let Some(taken) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    // At most a chunk (64 MiB): always fits.
                    let unread = i64::try_from(read_ahead.1 - read_ahead.0).unwrap_or(i64::MAX);
                    let job = spawn_blocking_or_error(move || {
                        let (mut inner, buf) = taken.take();
                        let (res, kept) = seek_past_read_ahead(&mut inner, pos, unread);
                        (inner, buf, res, kept)
                    });
                    this.state = State::Seeking {
                        job,
                        pos,
                        read_ahead,
                    };
                }
                // A read nobody waits for any more: its bytes become read-ahead, and its
                // error is dropped (a reader meets it again).
                State::Reading(_) => {
                    let _ = ready!(this.poll_idle(cx));
                }
                // Another seek's result is dropped; a write's or flush's error is reported, as
                // is a closed or lost value.
                _ => ready!(this.poll_idle(cx))?,
            }
        }
    }
}
