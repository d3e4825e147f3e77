//! `Registered`: the readiness of an fd on the reactor, whatever type wraps it.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use super::{Direction, ReadyEvent};

/// An fd registered with the runtime's reactor, seen through its readiness only.
///
/// [`AsyncFd`](crate::AsyncFd) implements it, and so does every overlap I/O type (sockets,
/// pipe ends). It lets code run its own non-blocking syscall on an fd whose wrapper it does
/// not know, and still sleep correctly: poll for readiness, try the syscall, and on
/// `WouldBlock` hand the event back to [`clear_readiness`](Self::clear_readiness) before
/// polling again. `overlap::pipe`'s `splice` functions and `overlap::fs::File::send_to` are
/// built this way.
///
/// The contract is [`AsyncFd`](crate::AsyncFd)'s: readiness is a hint (spurious wakeups
/// happen, so `WouldBlock` must be handled), waits share the fd's per-direction slot unless
/// made inside [`own_waits`](crate::own_waits), and every `Ready` spends one unit of the
/// task's cooperative budget.
///
/// ```
/// use overlap::{Direction, Registered};
/// use overlap::io::AsyncWriteExt;
/// use std::future::poll_fn;
///
/// overlap::block_on(async {
///     let (mut tx, rx) = overlap::pipe::pipe()?;
///     tx.write_all(b"x").await?;
///     // Wait for the read end through the trait, as generic code would.
///     let event = poll_fn(|cx| rx.poll_readiness(cx, Direction::Read)).await?;
///     assert!(event.ready().is_readable());
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub trait Registered: AsRawFd {
    /// Polls the fd's readiness in one direction. On `Pending`, the waker of `cx` is stored
    /// and woken by the next edge in that direction. [`Direction::Error`] waits for an
    /// error only and [`Direction::Priority`] for priority data, as
    /// [`Interest::ERROR`](crate::io::Interest::ERROR) and
    /// [`Interest::PRIORITY`](crate::io::Interest::PRIORITY) do.
    fn poll_readiness(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<ReadyEvent>>;

    /// Forgets the readiness in `event` (its direction only), unless a newer edge arrived
    /// since it was seen. Call it only after that direction's syscall failed with
    /// `WouldBlock` (for an error wait: once the error is taken, say with `SO_ERROR`): that
    /// proves no error is pending, so an error state goes too; so does a
    /// closed state, for an fd whose hang-up may end (see
    /// [`AsyncFd::set_hangup_may_end`](crate::AsyncFd::set_hangup_may_end)).
    fn clear_readiness(&self, event: ReadyEvent);
}
