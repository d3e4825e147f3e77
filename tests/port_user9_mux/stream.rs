//! A logical stream: futures-io `AsyncRead` + `AsyncWrite` over the session's shared
//! state, with a receive window credited back as the application reads and a send window
//! the peer's updates refill.

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use overlap::io::{AsyncRead, AsyncWrite};
use overlap::sync::OwnedSemaphorePermit;

use super::frame::{self, Frame};
use super::session::Shared;

/// One logical stream. Dropped before both sides finished (FIN each way), it resets: the
/// peer's reads and writes on it fail with `ConnectionReset`.
#[derive(Debug)]
pub struct Stream {
    shared: Rc<Shared>,
    id: u32,
    /// The session's slot, given back on drop.
    _permit: OwnedSemaphorePermit,
}

impl Stream {
    pub(super) fn new(shared: Rc<Shared>, id: u32, permit: OwnedSemaphorePermit) -> Stream {
        Stream {
            shared,
            id,
            _permit: permit,
        }
    }

    /// The stream's id (odd if the client opened it).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The error for this stream if the session ended, or the stream was reset.
    fn failed(&self) -> Option<io::Error> {
        if let Some(e) = self.shared.dead_error() {
            return Some(e);
        }
        match self.shared.streams.borrow().get(&self.id) {
            Some(s) if !s.reset => None,
            s => Some(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!(
                    "stream {} was reset {}",
                    self.id,
                    s.map_or("", |s| s.reset_why)
                ),
            )),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut streams = self.shared.streams.borrow_mut();
        // What came before the session ended is still read, up to the peer's FIN: a
        // session closed gracefully right after its last stream's end loses nothing.
        let s = match streams.get_mut(&self.id) {
            Some(s) if !s.reset && (!s.recv.is_empty() || s.remote_fin) => s,
            _ => {
                drop(streams);
                if let Some(e) = self.failed() {
                    return Poll::Ready(Err(e));
                }
                streams = self.shared.streams.borrow_mut();
                streams.get_mut(&self.id).expect("checked by failed()")
            }
        };
        if s.recv.is_empty() {
            if s.remote_fin || buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            s.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = io::Read::read(&mut s.recv, buf)?;
        self.shared.touch(s);
        s.consumed += n as u32;
        // Credit back in halves of the window, not per read.
        if s.consumed >= self.shared.config.window / 2 && !s.remote_fin {
            let credit = std::mem::take(&mut s.consumed);
            s.recv_credit += credit;
            drop(streams);
            self.shared
                .send(Frame::control(frame::WINDOW_UPDATE, 0, self.id, credit));
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.failed() {
            return Poll::Ready(Err(e));
        }
        let mut streams = self.shared.streams.borrow_mut();
        let s = streams.get_mut(&self.id).expect("checked by failed()");
        if s.local_fin {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("stream {} was closed for writing", self.id),
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if s.send_credit == 0 {
            self.shared
                .window_waits
                .set(self.shared.window_waits.get() + 1);
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(s.send_credit as usize).min(frame::MAX_DATA);
        s.send_credit -= n as u32;
        self.shared.touch(s);
        drop(streams);
        self.shared.send(Frame::data(self.id, 0, buf[..n].to_vec()));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.failed() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Half-close: a FIN; reads go on until the peer's FIN.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.failed() {
            return Poll::Ready(Err(e));
        }
        let mut streams = self.shared.streams.borrow_mut();
        let s = streams.get_mut(&self.id).expect("checked by failed()");
        if !s.local_fin {
            s.local_fin = true;
            drop(streams);
            self.shared
                .send(Frame::data(self.id, frame::FIN, Vec::new()));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let finished = match self.shared.streams.borrow().get(&self.id) {
            Some(s) => s.reset || (s.local_fin && s.remote_fin),
            None => true,
        };
        if !finished {
            self.shared
                .send(Frame::control(frame::WINDOW_UPDATE, frame::RST, self.id, 0));
        }
        self.shared.forget(self.id);
    }
}
