//! The memory request bodies may hold, all connections together.
//!
//! Each connection keeps a whole body in memory (it echoes it with its `Content-Length`),
//! up to `Limits::max_body`: without a bound for all of them, a thousand clients each sending
//! most of a large body, then a byte now and then, would hold gigabytes. So a body reserves
//! its bytes here before it is read, and gives them back once its echo is written.
//!
//! - A body of up to [`UNCOUNTED`] bytes takes nothing from the budget: like a head, it is
//!   bounded per connection, and small requests are served whatever large ones do.
//! - A larger body of known length (`Content-Length`) reserves all of it at once, waiting
//!   its turn (first come, first served) while the budget is spent, and is sent
//!   `100 Continue` only then. A wait longer than the body timeout gets a 503, as does
//!   one under way when the server starts shutting down (see `Drain`). Waiting
//!   holds nothing, so waits cannot lock each other up, and bodies sent together beyond the
//!   budget are served in turn, not refused.
//! - A chunked body is counted once it passes [`UNCOUNTED`] bytes, and grows its
//!   reservation chunk by chunk (doubling, as its buffer grows) without waiting: a body that
//!   waited while holding part of the budget could lock up with others doing the same. When
//!   the budget is spent, it gets a 503 at once.
//! - Room is reserved for bytes not yet sent, so a client could announce a large body and
//!   send a byte now and then to hold its room. While bodies wait for room, a body holding
//!   some must arrive at [`MIN_RATE`] at least (after [`PACE_GRACE`]): one slower gets a
//!   408 when its pace is due, and its room goes to the bodies waiting in line, ahead of
//!   any new connection. A read waiting for such a body's bytes looks every
//!   [`PACE_GRACE`] whether bodies wait, so one that stalled before contention began is
//!   caught as soon, not only at its stall timeout. Without contention, slow senders harm
//!   nobody and go on at their pace. (Holding room only for bytes received instead would
//!   refuse honest uploads that come together: each would hold part of the budget, none
//!   able to finish.)
//! - Room is given back only once the echo is written, so a client could as well take its
//!   echo a byte now and then. The same pace holds for reading it, counted from when the
//!   socket's buffer first fills up (the kernel holds the rest), in the bytes the client's
//!   kernel acknowledged (not the server's writes: a write waiting for room wakes only once
//!   a good part of the send buffer, up to megabytes, is free): while bodies wait, a reader
//!   slower than [`MIN_RATE`] after [`PACE_GRACE`] is cut off (a reset: its answer has
//!   begun, so no 408 can be sent), and a write waiting on such a reader looks every
//!   [`PACE_GRACE`] whether bodies wait.
//! - Answers to earlier pipelined requests go out before a body reserves room: a client
//!   that does not read them would otherwise hold its room as long as a write may stall
//!   (`Limits::write_timeout`), not as long as the pace allows.

use std::cell::Cell;
use std::time::Duration;

use overlap::sync::{Permit, Semaphore};
use overlap::time::{timeout_at, Instant};

use crate::request::HttpError;

/// While bodies wait for room, those holding some must arrive at least this fast, in bytes
/// per second...
pub const MIN_RATE: u64 = 64 << 10;
/// ... counted from when they got their room, after this long.
pub const PACE_GRACE: Duration = Duration::from_secs(1);

/// Bodies up to this size are not counted (see the module's docs).
pub const UNCOUNTED: u64 = 64 << 10;

/// The budget of every connection's request bodies, in bytes.
#[derive(Debug)]
pub struct BodyMemory {
    bytes: Semaphore,
    capacity: u64,
    /// Bodies waiting for room now.
    waiting: Cell<usize>,
}

/// Bytes of the budget held by one body (buffer capacity, not only length); given back
/// when dropped.
pub type Held<'a> = Permit<'a>;

impl BodyMemory {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: u64) -> BodyMemory {
        let capacity = capacity.min(Semaphore::MAX_PERMITS as u64);
        BodyMemory {
            bytes: Semaphore::new(capacity as usize),
            capacity,
            waiting: Cell::new(0),
        }
    }

    /// The whole budget, in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// `n` bytes if they are free now and no body waits for its turn.
    pub fn try_reserve(&self, n: u64) -> Option<Held<'_>> {
        let n = u32::try_from(n).ok()?;
        self.bytes.try_acquire_many(n).ok()
    }

    /// Waits (until `deadline`) for `n` bytes, which must be at most the capacity.
    pub async fn reserve(&self, n: u64, deadline: Instant) -> Result<Held<'_>, HttpError> {
        let Ok(n) = u32::try_from(n) else {
            return Err(crate::request::body_too_large());
        };
        self.waiting.set(self.waiting.get() + 1);
        // Counted out however the wait ends, a dropped connection's too.
        let _waiting = Waiting(&self.waiting);
        match timeout_at(deadline, self.bytes.acquire_many(n)).await {
            Ok(Ok(held)) => Ok(held),
            // Never closed; a timeout is the busy case.
            _ => Err(busy()),
        }
    }

    /// Whether bodies wait for room now.
    pub fn contended(&self) -> bool {
        self.waiting.get() > 0
    }

    /// By when a body holding room since `since`, of which `received` bytes arrived since,
    /// must have its next bytes while others wait for room (see [`MIN_RATE`]).
    pub fn pace_deadline(since: Instant, received: u64) -> Instant {
        since + PACE_GRACE + Duration::from_secs_f64(received as f64 / MIN_RATE as f64)
    }

    /// Grows `held` to cover `needed` bytes (at most `most`, the largest body) now, without
    /// waiting: to twice what it holds if that much is free (so a body arriving in many small
    /// chunks reserves, and reallocates, a logarithmic number of times), but never past
    /// `most`, which no body outgrows; else by just what is missing. Returns the bytes
    /// `held` now covers; a 503 if even `needed` is not free.
    pub fn grow(&self, held: &mut Held<'_>, needed: u64, most: u64) -> Result<u64, HttpError> {
        let have = held.num_permits() as u64;
        if needed <= have {
            return Ok(have);
        }
        let doubled = (2 * have).min(most).min(self.capacity).max(needed);
        for want in [doubled, needed] {
            let Ok(more) = u32::try_from(want - have) else {
                continue;
            };
            if let Ok(extra) = self.bytes.try_acquire_many(more) {
                held.merge(extra);
                return Ok(want);
            }
        }
        Err(busy())
    }

    /// An empty reservation, for a body whose size is not known yet.
    pub fn none(&self) -> Held<'_> {
        self.bytes
            .try_acquire_many(0)
            .expect("the budget's semaphore is never closed")
    }
}

/// One body in [`BodyMemory::waiting`] while it lives.
struct Waiting<'a>(&'a Cell<usize>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Buffers at least this large get pages of their own from the kernel (see
/// [`give_bodies_back`]): glibc's initial threshold.
#[cfg(target_env = "gnu")]
const MAPPED_ALONE: i32 = 128 << 10;

/// Has the allocator map each large buffer (a body, mostly) on its own and unmap it when
/// it is freed, so the process holds about what the budget counts. By default glibc raises
/// that threshold to the largest block freed so far (up to 32 MiB): bodies then come from
/// its heap, where a freed one stays resident and leaves a hole that a larger body does not
/// fit. Four bodies of 4 MiB, two of them freed, then one of 8 MiB took the server to 24
/// MiB for a 16 MiB budget, and it kept 26 MiB once all were gone. The cost: every large
/// body is a fresh mapping, its pages faulted in as it is read. Call before serving.
pub fn give_bodies_back() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator (under the
    // allocator's own lock); it hands out and takes back no memory. A failure (0) leaves
    // the default, which is only less thrifty.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_ALONE);
    }
}

/// The answer to a body that finds no room.
pub fn busy() -> HttpError {
    HttpError::new(
        503,
        "Service Unavailable",
        "too many request bodies in memory; try again later",
    )
}

/// The answer to a body still waiting for room when the server starts shutting down.
pub fn shutting_down() -> HttpError {
    HttpError::new(
        503,
        "Service Unavailable",
        "the server is shutting down; send this body elsewhere or later",
    )
}
