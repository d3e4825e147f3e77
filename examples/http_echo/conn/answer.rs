//! Answers: queued behind one another for pipelined requests, written together, with
//! back-pressure on a client that does not read them; refusals and the linger after them.

use std::io::{self, IoSlice, Write as _};
use std::net::Shutdown;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::time::{timeout_at, Instant};

use super::{Conn, COPY_MAX, LINGER, LINGER_BYTES, OUT_CAP, READ_TOO_SLOWLY, STOPPED_READING};
use crate::date;
use crate::memory::{BodyMemory, PACE_GRACE};
use crate::request::{Framing, Head, HttpError};

impl Conn<'_> {
    /// Queues the echo of one request. Returns false if `body` is too large to be copied,
    /// and must be written after the queued bytes ([`flush_with`](Self::flush_with)).
    #[must_use]
    pub(super) fn respond(&mut self, head: &Head, body: &[u8]) -> bool {
        let (content_type, content): (&[u8], &[u8]) = match head.framing {
            // A head with obs-text in a field value is no UTF-8. The echoed head is always
            // copied: the caller can write only `body` from its own buffer, and the head,
            // re-serialised (a `:` gains a space, a bare LF a CR), may be longer than the
            // `max_head` bytes it came in.
            Framing::Length(0) => match std::str::from_utf8(&head.text) {
                Ok(_) => (b"text/plain; charset=utf-8", &head.text),
                Err(_) => (b"text/plain", &head.text),
            },
            _ => (
                head.content_type
                    .as_deref()
                    .unwrap_or(b"application/octet-stream"),
                body,
            ),
        };
        let connection = match (head.keep_alive, head.minor) {
            (false, _) => "Connection: close\r\n",
            (true, 0) => "Connection: keep-alive\r\n",
            (true, _) => "",
        };
        self.out.extend_from_slice(b"HTTP/1.1 200 OK\r\nDate: ");
        date::append(&mut self.out);
        // A HEAD answer's length is the one a GET would get (RFC 9110 §9.3.2): the echoed
        // request line would then say GET.
        let length = if head.method == "HEAD" && head.framing == Framing::Length(0) {
            content.len() - "HEAD".len() + "GET".len()
        } else {
            content.len()
        };
        // Writing to a Vec cannot fail.
        let _ = write!(self.out, "\r\nContent-Length: {length}\r\n");
        self.out.extend_from_slice(connection.as_bytes());
        self.out.extend_from_slice(b"Content-Type: ");
        self.out.extend_from_slice(content_type);
        self.out.extend_from_slice(b"\r\n\r\n");
        if head.method == "HEAD" {
            return true;
        }
        if content.len() > COPY_MAX && head.framing != Framing::Length(0) {
            return false;
        }
        self.out.extend_from_slice(content);
        true
    }

    /// Writes the queued answers. A client that stops reading for `write_timeout` (its
    /// socket buffer full, no byte taken) is given up on: the connection ends with
    /// `TimedOut`. One that keeps reading, however slowly, gets its whole answer.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        self.flush_with(&[], false).await
    }

    /// Writes the queued answers, then `tail`, as [`flush`](Self::flush) does. If `tail` is
    /// a body holding room in the body memory, its client must also take it at
    /// [`MIN_RATE`](crate::memory::MIN_RATE) while other bodies wait for room (see
    /// [`crate::memory`]), counted from when the socket's buffer first filled up.
    pub(super) async fn flush_with(&mut self, tail: &[u8], holds_room: bool) -> io::Result<()> {
        let mut sent = 0;
        let total = self.out.len() + tail.len();
        // When a write first came back short, the bytes sent by then, and those of them
        // (and of earlier answers) the client had not acknowledged.
        let mut pace: Option<(Instant, usize, usize)> = None;
        while sent < total {
            // Each write that moves bytes starts the stall clock again.
            let stalled = Instant::now() + self.limits.write_timeout;
            let n = loop {
                let paced = match pace {
                    Some((since, sent_then, unacked_then)) if self.memory.contended() => {
                        // What the client took since, as its kernel acknowledged it: a
                        // write waiting for room wakes only once a good part of the send
                        // buffer is free, long after the client began to read on.
                        let unacked = self.stream.unacknowledged().unwrap_or(0);
                        let taken = (sent - sent_then + unacked_then).saturating_sub(unacked);
                        let due = BodyMemory::pace_deadline(since, taken as u64);
                        if due <= Instant::now() {
                            return Err(self.give_up(READ_TOO_SLOWLY));
                        }
                        Some(due)
                    }
                    _ => None,
                };
                // Nobody waits for room now: look again in a while whether someone does.
                let look_again =
                    (pace.is_some() && paced.is_none()).then(|| Instant::now() + PACE_GRACE);
                let deadline = [paced, look_again]
                    .into_iter()
                    .flatten()
                    .fold(stalled, Instant::min);
                match timeout_at(deadline, self.write_from(sent, tail)).await {
                    Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(Ok(n)) => break n,
                    Ok(Err(e)) => return Err(e),
                    Err(_) if deadline == stalled => return Err(self.give_up(STOPPED_READING)),
                    // The pace is due, or whether bodies wait is: looked at again above.
                    Err(_) => {}
                }
            };
            sent += n;
            if holds_room && pace.is_none() && sent < total {
                let unacked = self.stream.unacknowledged().unwrap_or(0);
                pace = Some((Instant::now(), sent, unacked));
            }
        }
        self.out.clear();
        // A large answer's memory goes back at once: an idle kept-alive connection must
        // not hold on to the biggest answer it ever sent.
        if self.out.capacity() > OUT_CAP {
            self.out.shrink_to(OUT_CAP);
        }
        Ok(())
    }

    /// Writes some of the queued answers from their byte `sent` on, then of `tail`. One part
    /// (the usual case) goes out by a plain `send`, cheaper than `writev`.
    async fn write_from(&mut self, sent: usize, tail: &[u8]) -> io::Result<usize> {
        let (out, tail) = match sent.checked_sub(self.out.len()) {
            Some(in_tail) => (&[][..], &tail[in_tail..]),
            None => (&self.out[sent..], tail),
        };
        match (out.is_empty(), tail.is_empty()) {
            (false, true) => self.stream.write(out).await,
            (true, false) => self.stream.write(tail).await,
            _ => {
                let parts = [IoSlice::new(out), IoSlice::new(tail)];
                self.stream.write_vectored(&parts).await
            }
        }
    }

    /// Ends a connection whose client does not take its answer: with a reset rather than a
    /// close, so that the unsent answer is dropped at once instead of sitting in the kernel.
    pub(super) fn give_up(&mut self, why: &'static str) -> io::Error {
        let _ = self.stream.set_linger(Some(Duration::ZERO));
        io::Error::new(io::ErrorKind::TimedOut, why)
    }

    /// Answers a bad request (after the answers already queued), then closes. The answer to
    /// a `HEAD` request has no body (RFC 9110 §9.3.2), only its length.
    pub(super) async fn refuse(&mut self, e: HttpError, head_request: bool) -> io::Result<()> {
        let text = format!("{}\n", e.detail);
        let _ = write!(self.out, "HTTP/1.1 {} {}\r\nDate: ", e.status, e.reason);
        date::append(&mut self.out);
        if e.status == 503 {
            // Busy now, not for long (RFC 9110 §10.2.3).
            self.out.extend_from_slice(b"\r\nRetry-After: 1");
        }
        let _ = write!(
            self.out,
            "\r\nContent-Length: {}\r\nConnection: close\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n",
            text.len()
        );
        if !head_request {
            self.out.extend_from_slice(text.as_bytes());
        }
        self.flush().await?;
        self.linger().await
    }

    /// Closes our side, then drains what the client still sends for a while, so that its
    /// unread bytes do not make the kernel reset the connection before it read our answer.
    pub(super) async fn linger(&mut self) -> io::Result<()> {
        match self.stream.shutdown(Shutdown::Write) {
            // The client reset the connection after the answer was written: nothing is left
            // to drain, and it is no error (a client may close as soon as it has its answer).
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            res => res?,
        }
        let deadline = Instant::now() + LINGER;
        let mut drained = 0;
        let mut scratch = [0u8; 4096];
        while drained < LINGER_BYTES {
            match timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                // EOF, timeout, or an error: nothing more to wait for.
                _ => break,
            }
        }
        Ok(())
    }
}
