//! The process-wide half of signal handling: one handler per signal, a count per signal,
//! the self-pipe the handler pokes, and the listeners to wake.
//!
//! # Invariants
//! - The handler touches only `Slot::count` and `Slot::previous` (atomics) and the pipe's
//!   write end (a `write` that keeps `errno`): nothing that could deadlock or allocate in a
//!   signal handler. It first calls the handler the signal had before ours (another
//!   library's, such as signal-hook's), whose action `previous` holds from before ours is
//!   installed, so that handler keeps hearing the signal.
//! - A slot's count is raised before the pipe is poked, and a runtime's reader drains the
//!   pipe and copies the count to `delivered` before it wakes listeners, so a woken listener
//!   always sees the new count. Listeners read only `delivered`.
//! - Every runtime's read end shares one pipe, so whichever reader drains it broadcasts for
//!   all; the broadcast then nudges every other runtime's reader, so each runtime catches
//!   up with what was handed out (`HandedOut`) between its own task polls.
//! - Handlers are installed under `GLOBAL`'s lock, once per signal, and never removed.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;

use crate::sys::signal as sys;

/// Signal numbers go up to `SIGRTMAX`, 64 on Linux.
pub(crate) const SIGNALS: usize = 65;

/// One signal's state.
#[derive(Debug)]
pub(crate) struct Slot {
    /// How many times the signal arrived since its handler was installed (coalesced by the
    /// kernel while it is pending).
    pub(crate) count: AtomicU64,
    /// The count as of the last broadcast: what listeners have been told. A listener made
    /// now takes this as its start, so an arrival not handed out yet (its handler ran while
    /// the task about to listen was busy) still reaches it, as with tokio.
    pub(crate) delivered: AtomicU64,
    installed: AtomicBool,
    /// The action the signal had before ours (null until ours is installed): ours calls its
    /// handler on each arrival. One pointer, so the handler never sees a function from one
    /// action with the `SA_SIGINFO` flag of another.
    ///
    /// # Invariant
    /// Null or from `Box::into_raw`, never freed: a handler may be reading it at any time.
    previous: AtomicPtr<sys::Previous>,
    listeners: Mutex<Vec<Weak<Listener>>>,
}

/// What a `Signal` shares with the broadcaster: the waker of the task waiting on it.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    pub(crate) waker: Mutex<Option<Waker>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    count: AtomicU64::new(0),
    delivered: AtomicU64::new(0),
    installed: AtomicBool::new(false),
    previous: AtomicPtr::new(std::ptr::null_mut()),
    listeners: Mutex::new(Vec::new()),
};

pub(crate) static SLOTS: [Slot; SIGNALS] = [EMPTY_SLOT; SIGNALS];

/// The self-pipe's write end, for the handler; -1 until the pipe exists.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The self-pipe's read end, which each runtime's reader duplicates; made on first use.
static GLOBAL: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Every live runtime's reader, to nudge after a broadcast.
static READERS: Mutex<Vec<Weak<Nudge>>> = Mutex::new(Vec::new());

/// How a broadcast tells one runtime's reader that `delivered` moved, when another
/// runtime's reader drained the pipe first.
#[derive(Debug, Default)]
pub(crate) struct Nudge {
    nudged: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Nudge {
    /// A new reader's nudge, listed for broadcasts until it is dropped.
    pub(crate) fn new_listed() -> Arc<Nudge> {
        let nudge = Arc::new(Nudge::default());
        let mut readers = lock(&READERS);
        readers.retain(|r| r.strong_count() > 0);
        readers.push(Arc::downgrade(&nudge));
        nudge
    }

    /// Whether a broadcast nudged this reader since the last call; if not, the task of `cx`
    /// is woken by the next one.
    pub(crate) fn take(&self, cx: &std::task::Context<'_>) -> bool {
        *lock(&self.waker) = Some(cx.waker().clone());
        // After the waker is stored: `broadcast` sets the flag before it takes the waker.
        self.nudged.swap(false, Ordering::SeqCst)
    }
}

/// Whether some runtime in the process still has a reader of the self-pipe (one that could
/// hand out an arrival and wake a listener polled outside any runtime).
pub(crate) fn read_anywhere() -> bool {
    lock(&READERS).iter().any(|r| r.strong_count() > 0)
}

use crate::poison::lock;

extern "C" fn handler(signum: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if let Some(slot) = usize::try_from(signum).ok().and_then(|i| SLOTS.get(i)) {
        // First, so that a listener woken by the poke below finds the other handler's work
        // done too.
        if let Some(prev) = slot.previous_to_call() {
            sys::call_previous(prev, signum, info, ctx);
        }
        slot.count.fetch_add(1, Ordering::SeqCst);
    }
    poke();
}

/// Makes the self-pipe readable, so that some runtime's reader broadcasts. Async-signal-safe.
fn poke() {
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        sys::poke_from_handler(fd);
    }
}

/// The slot of `signum`. Fails with `InvalidInput` for a number out of range or a signal
/// that must not be caught (`SIGKILL`, `SIGSTOP`, and the fault signals `SIGSEGV`, `SIGBUS`,
/// `SIGILL`, `SIGFPE`, whose default action the process relies on).
pub(crate) fn slot(signum: i32) -> io::Result<&'static Slot> {
    const FORBIDDEN: [i32; 6] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    let slot = usize::try_from(signum)
        .ok()
        .filter(|&i| i > 0 && !FORBIDDEN.contains(&signum))
        .and_then(|i| SLOTS.get(i))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {signum} cannot be listened for"),
            )
        })?;
    Ok(slot)
}

/// Makes the self-pipe the handlers poke, unless it exists.
pub(crate) fn open_pipe() -> io::Result<()> {
    let mut global = lock(&GLOBAL);
    if global.is_none() {
        let (read, write) = sys::pipe()?;
        // The write end lives as long as the process: a handler may run at any time.
        PIPE_WRITE.store(write.into_raw_fd(), Ordering::SeqCst);
        *global = Some(read);
    }
    Ok(())
}

/// A new fd for the self-pipe's read end (for one runtime's reader). `register` made it.
pub(crate) fn reader_fd() -> io::Result<OwnedFd> {
    let global = lock(&GLOBAL);
    let read: RawFd = global
        .as_ref()
        .map(AsRawFd::as_raw_fd)
        .ok_or_else(|| io::Error::other("no signal was registered"))?;
    sys::dup(read)
}

/// Empties the self-pipe through `fd`; true if it held anything.
pub(crate) fn drain(fd: RawFd) -> bool {
    sys::drain(fd)
}

impl Slot {
    /// Makes sure signal `signum`, whose slot this is, has our handler. The last step of
    /// `signal()`, once nothing else can fail: a handler installed for a call that then
    /// fails would swallow the signal for good with nobody listening.
    pub(crate) fn install(&self, signum: i32) -> io::Result<()> {
        if self.installed.load(Ordering::Acquire) {
            return Ok(());
        }
        let _global = lock(&GLOBAL);
        if !self.installed.load(Ordering::Acquire) {
            // The action ours replaces is recorded before ours can run, so that no arrival
            // misses the other handler; if it changed meanwhile (another thread's
            // `sigaction`), the one actually replaced is recorded after.
            let before = sys::current(signum).map_err(|e| refused(signum, e))?;
            self.set_previous(before);
            let replaced =
                sys::install(signum, handler, &before).map_err(|e| refused(signum, e))?;
            if replaced.handler != before.handler || replaced.siginfo != before.siginfo {
                self.set_previous(replaced);
            }
            // SeqCst, as `broadcast`'s load of it and the counts below: see next.
            self.installed.store(true, Ordering::SeqCst);
            // A signal handled between `sigaction` and the store just above pokes the pipe,
            // but another runtime's reader may take that byte and broadcast while the flag
            // still reads clear, skipping this slot: the arrival would wait for the next
            // signal. A broadcast that read the flag clear comes before the store in the
            // single order of SeqCst operations, and so does the handler's count, which
            // the loads here therefore see; then poke again (a spare poke costs one
            // broadcast).
            if self.count.load(Ordering::SeqCst) != self.delivered.load(Ordering::SeqCst) {
                poke();
            }
        }
        Ok(())
    }

    /// The action recorded by `set_previous`, for an arrival to call. One installed with
    /// `SA_RESETHAND` is called for one arrival only, as the kernel would have reset it to
    /// the default action then (which overlap's listening replaces): the first arrival takes
    /// it out of the slot. Async-signal-safe.
    fn previous_to_call(&self) -> Option<sys::Previous> {
        let ptr = self.previous.load(Ordering::SeqCst);
        // SAFETY: null or a leaked box, never freed (the field's invariant).
        let prev = unsafe { ptr.as_ref() }.copied()?;
        if prev.one_shot {
            // Another arrival (on another thread) that took it first calls it instead.
            let taken = self.previous.compare_exchange(
                ptr,
                std::ptr::null_mut(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            taken.ok()?;
        }
        Some(prev)
    }

    /// Records the action ours replaces, for our handler to call; our own handler (were it
    /// somehow the one replaced) is recorded as `SIG_DFL`, so that it never calls itself.
    fn set_previous(&self, prev: sys::Previous) {
        let ours = handler as sys::Handler as libc::sighandler_t;
        let prev_handler = if prev.handler == ours {
            libc::SIG_DFL
        } else {
            prev.handler
        };
        // `SIG_DFL` and `SIG_IGN` are not called: nothing to record.
        let record = if prev_handler == libc::SIG_DFL || prev_handler == libc::SIG_IGN {
            std::ptr::null_mut()
        } else {
            // Leaked (at most twice per signal, see `install`): a handler may still be
            // reading the one this replaces.
            Box::into_raw(Box::new(sys::Previous {
                handler: prev_handler,
                ..prev
            }))
        };
        self.previous.store(record, Ordering::SeqCst);
    }

    /// Adds a listener, to be woken by every broadcast until it is forgotten.
    pub(crate) fn listen(&self) -> Arc<Listener> {
        let l = Arc::new(Listener::default());
        lock(&self.listeners).push(Arc::downgrade(&l));
        l
    }

    /// Removes `listener` (and any dropped ones), so a program that makes and drops many
    /// `Signal`s while no signal arrives does not pile up entries.
    pub(crate) fn forget(&self, listener: &Arc<Listener>) {
        let me = Arc::downgrade(listener);
        lock(&self.listeners).retain(|w| w.strong_count() > 0 && !w.ptr_eq(&me));
    }
}

/// `sigaction`'s error for `signum`, with the reason a refused signal cannot be listened for.
fn refused(signum: i32, e: io::Error) -> io::Error {
    match e.raw_os_error() {
        // The C library keeps a few real-time signals for itself (glibc: 32 and 33).
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} cannot be listened for: the C library keeps it"),
        ),
        _ => e,
    }
}

/// Hands out every signal's arrivals so far (`delivered`), then wakes every live listener
/// of every signal (each checks its own signal's count), and forgets the dropped ones; then
/// nudges every runtime's reader but `from`, the one broadcasting.
pub(crate) fn broadcast(from: &Arc<Nudge>) {
    for slot in &SLOTS {
        if !slot.installed.load(Ordering::SeqCst) {
            continue;
        }
        // Before the wakers are taken: a listener that registers its waker after this
        // looks at `delivered` again (see `Signal::poll_recv`).
        let count = slot.count.load(Ordering::SeqCst);
        slot.delivered.fetch_max(count, Ordering::SeqCst);
        let mut wakers = Vec::new();
        lock(&slot.listeners).retain(|w| match w.upgrade() {
            Some(l) => {
                wakers.extend(lock(&l.waker).take());
                true
            }
            None => false,
        });
        // Outside the lock: a waker may run arbitrary code, and may panic. That must cost
        // neither the other listeners their wake nor the runtime its reader task (which
        // calls this), so each wake is caught on its own.
        for waker in wakers {
            crate::unwind::contain(|| waker.wake());
        }
    }
    let mut readers = Vec::new();
    lock(&READERS).retain(|r| match r.upgrade() {
        Some(reader) => {
            if !Arc::ptr_eq(&reader, from) {
                reader.nudged.store(true, Ordering::SeqCst);
                readers.extend(lock(&reader.waker).take());
            }
            true
        }
        None => false,
    });
    // Reader tasks' wakers: ours, which do not panic.
    readers.into_iter().for_each(Waker::wake);
}
