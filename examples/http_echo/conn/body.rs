//! A request's body: by length or chunked (with its extensions and trailers bounded).

use std::io;
use std::pin::pin;

use futures_util::future::{select, Either};
use overlap::time::Instant;

use super::Conn;
use crate::memory::{shutting_down, BodyMemory, Held, UNCOUNTED};
use crate::request::{self, Framing, Head, HttpError};

/// A chunk-size line longer than this is refused (its extensions are ignored anyway).
const MAX_CHUNK_LINE: usize = 4096;
/// The chunk extensions of one body, in all, may not pass this (as in hyper): otherwise
/// each body byte could come with a line's worth of them, for 8 MiB of body some 32 GiB.
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;

/// A request body, with the share of the server's body memory it holds until dropped.
pub(super) struct Body<'m> {
    pub bytes: Vec<u8>,
    held: Held<'m>,
}

impl Body<'_> {
    /// Whether the body holds room in the body memory (it is counted).
    pub fn holds_room(&self) -> bool {
        self.held.num_permits() > 0
    }
}

impl<'a> Conn<'a> {
    /// Reads the body that follows `head`, once the server's body memory has room for it
    /// (see [`crate::memory`]).
    pub(super) async fn read_body(
        &mut self,
        head: &Head,
    ) -> io::Result<Result<Body<'a>, HttpError>> {
        let memory: &'a BodyMemory = self.memory;
        let mut held = match head.framing {
            Framing::Length(0) => {
                return Ok(Ok(Body {
                    bytes: Vec::new(),
                    held: memory.none(),
                }))
            }
            // Bounded per connection, as a head is.
            Framing::Length(n) if n <= UNCOUNTED => memory.none(),
            Framing::Length(n) => {
                // Answers already queued go out before any room is taken: a client that
                // does not read them would otherwise hold that room as long as a write may
                // stall, not only as long as its pace allows.
                self.flush().await?;
                match memory.try_reserve(n) {
                    Some(held) => held,
                    None => match self.wait_for_room(memory, n).await {
                        Ok(held) => held,
                        Err(e) => return Ok(Err(e)),
                    },
                }
            }
            Framing::Chunked => memory.none(),
        };
        if head.expect_continue && self.start == self.end {
            // The client waits for this before sending the body: sent once there is room.
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush().await?;
        }
        if held.num_permits() > 0 {
            self.pace = Some((Instant::now(), self.received));
        }
        let done = match head.framing {
            Framing::Length(n) => {
                // Allocated at once (reserved when counted), never grown.
                let mut body = Vec::with_capacity(n as usize);
                self.take(&mut body, n).await?.map(|()| body)
            }
            Framing::Chunked => {
                let mut body = Vec::new();
                let done = self.read_chunked(&mut body, memory, &mut held).await?;
                done.map(|()| body)
            }
        };
        self.pace = None;
        Ok(done.map(|bytes| Body { bytes, held }))
    }

    /// Waits for `n` bytes of room in the body memory, as long as a body may stall. A drain
    /// that starts meanwhile (or has) ends the wait with a 503: the body would have to be
    /// read and echoed before the drain's end closes the connection, and its client can
    /// send it elsewhere now instead of learning nothing then.
    async fn wait_for_room(&self, memory: &'a BodyMemory, n: u64) -> Result<Held<'a>, HttpError> {
        // Made before the flag is read, so a start in between still wakes it.
        let draining = self.drain.notify.notified();
        if self.drain.started() {
            return Err(shutting_down());
        }
        let deadline = Instant::now() + self.limits.body_timeout;
        match select(pin!(memory.reserve(n, deadline)), pin!(draining)).await {
            Either::Left((reserved, _)) => reserved,
            Either::Right(_) => Err(shutting_down()),
        }
    }

    /// Moves the next `n` body bytes into `body`, reading as needed.
    async fn take(&mut self, body: &mut Vec<u8>, n: u64) -> io::Result<Result<(), HttpError>> {
        let mut left = n;
        while left > 0 {
            if self.start == self.end {
                if let Err(e) = self.fill_body().await? {
                    return Ok(Err(e));
                }
            }
            let k = (self.end - self.start).min(usize::try_from(left).unwrap_or(usize::MAX));
            body.extend_from_slice(&self.buf[self.start..self.start + k]);
            self.start += k;
            left -= k as u64;
        }
        Ok(Ok(()))
    }

    /// Decodes a chunked body (RFC 9112 §7.1); extensions (up to [`MAX_CHUNK_EXTENSIONS`] in
    /// all) and trailers are read and ignored.
    async fn read_chunked(
        &mut self,
        body: &mut Vec<u8>,
        memory: &BodyMemory,
        held: &mut Held<'_>,
    ) -> io::Result<Result<(), HttpError>> {
        let bad = |detail| HttpError::new(400, request::BAD_REQUEST, detail);
        // Bytes of chunk-size lines after their digits (extensions, and space before them).
        let mut extensions = 0;
        loop {
            // The chunk-size line ends with CRLF and holds no other control byte (httparse
            // would take a bare LF inside an extension as part of it, where a peer that
            // accepts bare LFs reads a line end: the two would frame the body differently).
            let buffered = self.buffered();
            // `chunk-size = 1*HEXDIG` (RFC 9112 §7.1): httparse reads a line with no digit
            // (`;ext`, or nothing) as size 0, the last chunk, which would cut the body short
            // and make what follows a request of its own.
            if buffered.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                return Ok(Err(bad("invalid chunk size")));
            }
            if let Some(lf) = buffered.iter().position(|&b| b == b'\n') {
                let line = &buffered[..lf];
                let ok = line
                    .strip_suffix(b"\r")
                    .is_some_and(|l| !l.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f));
                if !ok {
                    return Ok(Err(bad("control bytes or a bare LF in a chunk-size line")));
                }
            }
            // A size may have any number of leading zeros, which httparse (refusing more
            // than 16 digits) is not shown; past them, more than 16 digits are more than a
            // u64, and than any body.
            let digits = buffered
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let zeros = buffered[..digits]
                .iter()
                .take_while(|&&b| b == b'0')
                .count()
                .min(digits.saturating_sub(1));
            if digits - zeros > 16 {
                return Ok(Err(request::body_too_large()));
            }
            let size = match httparse::parse_chunk_size(&buffered[zeros..]) {
                // Held to its limit however its bytes came: whole in one read too.
                Ok(httparse::Status::Complete((used, _))) if zeros + used > MAX_CHUNK_LINE => {
                    return Ok(Err(bad("chunk-size line too long")))
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    let used = zeros + used;
                    // The line ends with CRLF (checked above).
                    extensions += used.saturating_sub(digits + 2);
                    if extensions > MAX_CHUNK_EXTENSIONS {
                        return Ok(Err(bad("chunk extensions too long")));
                    }
                    self.start += used;
                    size
                }
                Ok(httparse::Status::Partial) if self.end - self.start > MAX_CHUNK_LINE => {
                    return Ok(Err(bad("chunk-size line too long")))
                }
                Ok(httparse::Status::Partial) => {
                    if let Err(e) = self.fill_body().await? {
                        return Ok(Err(e));
                    }
                    continue;
                }
                Err(_) => return Ok(Err(bad("invalid chunk size"))),
            };
            if size == 0 {
                return self.skip_trailers().await;
            }
            let needed = (body.len() as u64).saturating_add(size);
            if needed > self.limits.max_body {
                return Ok(Err(request::body_too_large()));
            }
            // Counted past `UNCOUNTED`; the buffer then grows only as far as its
            // reservation (the budget counts capacity).
            if needed > UNCOUNTED {
                match memory.grow(held, needed, self.limits.max_body) {
                    Ok(covered) => body.reserve_exact(covered as usize - body.len()),
                    Err(e) => return Ok(Err(e)),
                }
                self.pace.get_or_insert((Instant::now(), self.received));
            }
            if let Err(e) = self.take(body, size).await? {
                return Ok(Err(e));
            }
            let mut crlf = Vec::with_capacity(2);
            if let Err(e) = self.take(&mut crlf, 2).await? {
                return Ok(Err(e));
            }
            if crlf != b"\r\n" {
                return Ok(Err(bad("chunk data not followed by CRLF")));
            }
        }
    }

    /// Reads the trailer section that ends a chunked body (RFC 9112 §7.1.2), parsed by the
    /// same rules as a head's fields (so line ends are read alike; bad fields get a 400)
    /// and held to the same limits (a 431 beyond), and ignored.
    async fn skip_trailers(&mut self) -> io::Result<Result<(), HttpError>> {
        // Parsing looks at every trailer line so far, so it runs only once new bytes end a
        // line (only a line end can complete or spoil the section): a client dripping its
        // trailers a byte at a time would otherwise cost a parse per byte.
        let mut seen: Option<usize> = None;
        loop {
            let ends_a_line = seen.is_none_or(|n| self.buffered()[n..].contains(&b'\n'));
            seen = Some(self.end - self.start);
            let too_large = self.end - self.start > self.limits.max_head;
            if ends_a_line {
                // Rare enough (trailers) to allocate the field slots per attempt.
                let mut fields = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
                match httparse::parse_headers(self.buffered(), &mut fields) {
                    // Held to the head's limit however its bytes came: whole in one
                    // read too.
                    Ok(httparse::Status::Complete((used, _))) if used > self.limits.max_head => {
                        return Ok(Err(trailers_too_large()))
                    }
                    Ok(httparse::Status::Complete((used, _))) => {
                        self.start += used;
                        return Ok(Ok(()));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => return Ok(Err(trailers_too_large())),
                    Err(_) => {
                        return Ok(Err(HttpError::new(
                            400,
                            request::BAD_REQUEST,
                            "malformed trailer field",
                        )))
                    }
                }
            }
            if too_large {
                return Ok(Err(trailers_too_large()));
            }
            if let Err(e) = self.fill_body().await? {
                return Ok(Err(e));
            }
        }
    }
}

/// What trailers past the head's limits (`max_head` bytes, `max_headers` fields) get.
fn trailers_too_large() -> HttpError {
    HttpError::new(
        431,
        "Request Header Fields Too Large",
        "trailer section too large",
    )
}
