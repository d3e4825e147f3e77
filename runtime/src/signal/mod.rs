//! Unix signals as async events: [`ctrl_c`] and [`signal`], for graceful shutdown and
//! reload-on-`SIGHUP`.
//!
//! A signal is caught by a process-wide handler that counts it and writes a byte to a
//! self-pipe. Each runtime that listens for signals runs a small reader task on that pipe
//! (started by the first [`signal`] call on the runtime), which hands the arrivals out and
//! wakes every listener, in this runtime or any other; a listener then compares its signal's
//! handed-out count with the last one it saw.
//!
//! # Contract
//! - **Coalescing:** signals that arrive while a [`Signal`] is not being awaited are merged:
//!   one `recv` reports any number of them.
//! - **When an arrival counts:** the runtime hands arrivals out between task polls (its
//!   reader task does), as tokio's driver does. A `Signal` made before that hears it, even if
//!   the handler ran earlier while the task making it was busy: a loop that makes a fresh
//!   `ctrl_c()` each round (and may not even poll it in a round where other work is ready)
//!   does not lose a Ctrl-C pressed during a round that runs without waiting. That holds
//!   per runtime: in a process with several, another runtime handing the arrival out
//!   meanwhile does not count for this one. Arrivals this runtime handed out before the
//!   `Signal` was made (its reader did, or another listener polled here reported them) are
//!   not reported: so a Ctrl-C pressed during a round whose work awaits (a write, a sleep)
//!   is handed out while it waits, with no `ctrl_c()` listening, and is lost. Such a loop
//!   keeps one `Signal` from `signal(SignalKind::interrupt())` and selects on its `recv`.
//! - **The handler stays:** once a signal has been listened for, the process keeps catching
//!   it, even after every `Signal` is dropped. For `SIGINT` and `SIGTERM` this means the
//!   default action (ending the process) no longer happens: the program must exit by itself.
//!   For `SIGCHLD` in a process that ignored it (`SIG_IGN`) or whose handler had
//!   `SA_NOCLDWAIT`, it means the kernel no longer reaps children as they end: each waits,
//!   a zombie, for a `wait` (std's `Child::wait`, `overlap::process`'s), as in any process
//!   that catches `SIGCHLD`, where before a `wait` failed with `ECHILD`.
//!   So does the self-pipe, made by the first [`signal`] call: its two fds stay open for the
//!   rest of the process, and each runtime that listens holds a third until it is dropped
//!   (all close-on-exec, so no child inherits them). A program that counts its open fds (to
//!   find leaks, say) counts from after its first `signal`.
//! - **Other handlers keep theirs:** a handler the signal already had when overlap
//!   installed its own (another library's: signal-hook's, `ctrlc`'s, or the program's own
//!   `sigaction`) is called first by overlap's on each arrival, with the same `siginfo_t`,
//!   the signals it asked to block (`sa_mask`) blocked, and on the alternate signal stack
//!   if it asked for one (`SA_ONSTACK`): as the kernel would have called it, so code that
//!   catches the signal its own way keeps working once something listens through overlap.
//!   Its `SA_NODEFER` leaves the signal unblocked while it runs, its `SA_RESTART` (or its
//!   absence) decides as before whether a system call the signal interrupts resumes or
//!   fails with `EINTR` (a signal that had no handler gets `SA_RESTART`), and a handler installed
//!   with `SA_RESETHAND` is called for the first arrival only (the kernel would have reset
//!   the signal to its default action then, which overlap's listening replaces). A
//!   `SIGCHLD` handler installed with `SA_NOCLDSTOP` is not called when a child stops or
//!   continues (a `Signal` for `SIGCHLD` still hears those). A handler installed *after*
//!   overlap's replaces it, unless it calls the one it found (as signal-hook's do).
//! - **Not every signal:** `SIGKILL` and `SIGSTOP` cannot be caught, and the fault signals
//!   (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) are refused, as are the real-time signals
//!   the C library keeps for itself (32 and 33 with glibc): those give `InvalidInput`.
//! - **Signal masks:** the handler runs on whichever thread the kernel picks among those
//!   that do not block the signal, and a listener hears it from any of them: a signal the
//!   runtime's thread blocks is still heard when sent to the process (another thread takes
//!   it), and one sent to that thread alone (`pthread_kill`) waits until the thread
//!   unblocks it. A signal every thread blocks is never heard (a program that means to
//!   take it with `sigwait` blocks it so).
//! - **Spurious wakeups** are absorbed: `recv` returns only when the count moved.
//! - **Runtime:** a `Signal` works in whichever runtime polls it, on any thread (that
//!   runtime starts reading the self-pipe too), also after the one that made it is gone.
//!   Polled outside any runtime it is woken by another runtime's reader; with none left in
//!   the process, nothing could wake it, and it panics instead (as a timer does there).
//! - **Budgeted:** a `recv` that reports an arrival spends a unit of the task's cooperative
//!   budget, as a channel receive does; one that waits spends none.
//!
//! ```
//! use overlap::signal::{signal, SignalKind};
//!
//! overlap::block_on(async {
//!     let mut hup = signal(SignalKind::hangup())?;
//!     // (Here, `kill -HUP <pid>` from a shell.)
//!     // SAFETY: kill and getpid take no pointers.
//!     unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
//!     hup.recv().await;
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

mod reader;
mod registry;

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

pub(crate) use reader::HandedOut;
use registry::{Listener, Slot};

/// Which signal to listen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal by number (`libc::SIGWINCH`, a real-time signal, ...).
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }
    /// The signal's number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }
    /// The signal's number, under tokio's name: the same as [`as_raw`](Self::as_raw).
    pub const fn as_raw_value(self) -> i32 {
        self.0
    }
    /// `SIGALRM`: a timer set with `alarm` or `setitimer` ran out.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }
    /// `SIGIO`: I/O is possible on a descriptor set up for signal-driven I/O.
    pub const fn io() -> SignalKind {
        SignalKind(libc::SIGIO)
    }
    /// `SIGPIPE`: a write to a pipe or socket with no reader left.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }
    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }
    /// `SIGTERM`: the polite request to stop (what `kill` and service managers send).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }
    /// `SIGHUP`: the terminal went away; daemons often reload their configuration on it.
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }
    /// `SIGQUIT`: Ctrl-\ in a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }
    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }
    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }
    /// `SIGCHLD`: a child process changed state.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }
    /// `SIGWINCH`: the terminal's size changed.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<i32> for SignalKind {
    fn from(signum: i32) -> SignalKind {
        SignalKind::from_raw(signum)
    }
}

impl From<SignalKind> for i32 {
    fn from(kind: SignalKind) -> i32 {
        kind.as_raw()
    }
}

/// The same items under tokio's path, `signal::unix::{signal, Signal, SignalKind}`, so code
/// written for tokio compiles unchanged (`Signal::recv` returns an `Option<()>` that is
/// never `None`, as tokio's).
///
/// ```
/// use overlap::signal::unix::{signal, SignalKind};
///
/// overlap::block_on(async {
///     let hup = signal(SignalKind::hangup())?;
///     assert_eq!(hup.kind().as_raw_value(), libc::SIGHUP);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub mod unix {
    pub use super::{signal, Signal, SignalKind};
}

/// A stream of one signal's arrivals, from [`signal`]. Dropping it stops listening (the
/// process-wide handler stays; see the module docs).
pub struct Signal {
    kind: SignalKind,
    slot: &'static Slot,
    listener: Arc<Listener>,
    /// The slot's `delivered` count when this listener last reported.
    seen: u64,
}

/// Listens for `kind` from now on. Must be called inside a runtime.
///
/// Fails with `InvalidInput` for signals that cannot or must not be caught (see the module
/// docs), with `Other` outside a runtime, and with the kernel's error if the self-pipe or
/// the reader cannot be set up (out of fds).
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let slot = registry::slot(kind.0)?;
    registry::open_pipe()?;
    let handed = reader::start()?;
    let signal = Signal {
        kind,
        slot,
        listener: slot.listen(),
        // Not `delivered`: another runtime's reader may have handed out an arrival this
        // runtime has not caught up with yet (see `reader`).
        seen: handed.count(kind.0 as usize),
    };
    // Last, so that a call that fails leaves the signal's disposition as it was.
    slot.install(kind.0)?;
    Ok(signal)
}

/// Waits for the next `SIGINT` (Ctrl-C). The first call makes the process catch `SIGINT`
/// for good: from then on Ctrl-C no longer ends it by itself.
///
/// It listens from its first poll until it completes or is dropped: a Ctrl-C handed out
/// while no `ctrl_c()` future listens is not reported (see the module docs for when an
/// arrival is handed out). To miss none, keep one [`Signal`] from
/// `signal(SignalKind::interrupt())` and call its [`recv`](Signal::recv) each time.
///
/// ```no_run
/// overlap::block_on(async {
///     let server = overlap::spawn(async { /* serve until told to stop */ });
///     overlap::signal::ctrl_c().await?;
///     server.abort();
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    signal(SignalKind::interrupt())?.recv().await;
    Ok(())
}

impl Signal {
    /// Waits until the signal arrives (once or more: arrivals are coalesced). Cancel-safe:
    /// an arrival a dropped `recv` did not return is reported by the next one.
    ///
    /// Always `Some(())`: the stream of arrivals never ends. The `Option` is tokio's shape,
    /// so that `while let Some(()) = sig.recv().await` loops written for it compile.
    ///
    /// # Panics
    /// When polled (by another executor) outside a runtime while no runtime in the process
    /// reads signals (the one it was made in was dropped, say), where no arrival could ever
    /// wake it, as a timer polled outside a runtime panics. Polled in any runtime, on any
    /// thread, it listens there; outside one, it is woken as long as some runtime in the
    /// process listens for signals.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for an arrival since the last one reported; always `Some(())` when ready (see
    /// [`recv`](Self::recv)).
    ///
    /// Spends a unit of the task's cooperative budget when it reports an arrival, as a
    /// channel receive does (tokio's signal receiver does too): a loop that finds arrivals
    /// every time (another runtime in the process handing them out while this task runs)
    /// still lets the other tasks run. Waiting costs nothing.
    ///
    /// # Panics
    /// As [`recv`](Self::recv), outside a runtime while no runtime reads signals.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_now(cx))
    }

    fn poll_recv_now(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        if self.take_arrival() {
            return Poll::Ready(Some(()));
        }
        *crate::poison::lock(&self.listener.waker) = Some(cx.waker().clone());
        // The runtime polling this may not be the one that made it (which may be gone): make
        // sure this one reads the pipe too. Best effort: if it cannot start a reader (out of
        // fds), another runtime's reader still wakes this listener.
        if crate::executor::with_current(|_| ()).is_some() {
            let _ = reader::start();
        } else if !registry::read_anywhere() {
            // Outside any runtime, and none in the process reads the pipe: no arrival could
            // ever wake this. Say so, as a timer polled there does, rather than wait for ever.
            panic!(
                "overlap::signal: a Signal was polled outside of a runtime while no runtime \
                 reads signals (the one it was made in was dropped): poll it inside \
                 `overlap::block_on` or `Runtime::block_on`"
            );
        }
        // A signal handled between the check and the registration is not lost: look again.
        if self.take_arrival() {
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    }

    /// The signal this listens for.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    fn take_arrival(&mut self) -> bool {
        let now = self.slot.delivered.load(Ordering::SeqCst);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        reader::reported_here(self.kind.0 as usize, now);
        true
    }
}

impl Stream for Signal {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Never terminated: the stream of deliveries does not end.
impl futures_core::FusedStream for Signal {
    fn is_terminated(&self) -> bool {
        false
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.slot.forget(&self.listener);
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal").field("kind", &self.kind).finish()
    }
}
