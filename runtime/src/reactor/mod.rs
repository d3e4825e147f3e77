//! The epoll reactor: one slot per registered fd, woken per direction.
//!
//! Every fd is registered once, edge-triggered, for read, write, peer-half-close and priority
//! data (`EPOLLPRI`: read readiness with a sticky note for readers, and readiness of its own
//! for priority waiters); errors come whatever is asked. An edge only *adds* readiness bits
//! to the fd's slot and wakes the task(s) waiting on the matching direction; bits are removed
//! only when an operation hits `EAGAIN` (or reads short) and no newer edge arrived since it
//! looked (the slot's `tick`).
//!
//! Read and write waiters (nearly all of them) have a slot each in `ScheduledIo`; priority
//! and error waiters, rare, live only in the `others` and `owned` lists, which an edge walks
//! only when they are not empty: an fd nobody waits on that way pays nothing for them.

mod async_fd;
mod fd_owners;
mod guard;
mod interest;
mod own_wait;
mod owned;
mod ready;
mod registered;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use async_fd::{check_io_runtime, AsyncFd, AsyncFdTryNewError};
pub use guard::{AsyncFdReadyGuard, AsyncFdReadyMutGuard, TryIoError};
pub use interest::Interest;
pub use own_wait::{own_waits, OwnWaits};
pub use ready::{Direction, Ready, ReadyEvent};
pub use registered::Registered;

use crate::sys::epoll::{Epoll, INTEREST};
use fd_owners::FdOwners;
use own_wait::Entries;
use owned::OwnedWaiters;

/// The token of the runtime's own eventfd (never a valid slot: the generation is all ones).
const WAKE_TOKEN: u64 = u64::MAX;

/// Per-fd state: readiness and the waiting tasks.
#[derive(Debug, Default)]
struct ScheduledIo {
    readiness: Ready,
    /// Bumped by every event for this fd; see [`ReadyEvent`].
    tick: u32,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// Further waiters, each once: a task (or future) whose waker was displaced from
    /// `reader`/`writer` by another's, and the priority and error waiters of poll functions
    /// (which have no slot of their own). All are woken with the direction's next edge, so
    /// neither a second waiter nor one that gave up (a `peek` cancelled by a timeout, whose
    /// waker stays behind) strands the first. Empty unless two wait on one direction, or a
    /// poll function waits for priority data or an error.
    others: Vec<(Direction, Waker)>,
    /// Waiters that own their entry (futures made by [`own_waits`], such as every I/O
    /// `async fn`): kept until the future drops, its waker taken by each edge.
    owned: OwnedWaiters,
    /// A hang-up may end (a FIFO gets a new writer): `WouldBlock` then clears it.
    hangup_may_end: bool,
}

/// Displaced waiters kept per fd (see `poll_ready`). Beyond it, the oldest is set aside
/// (`Reactor::evicted`) and woken at the loop's next event or sleep, to wait again: none is
/// forgotten, and waking it at once would make more than this many waiters on one idle fd
/// wake one another for ever.
const MAX_OTHERS: usize = 1024;
/// Waiters let go from full lists, kept per reactor until its next turn that blocked or
/// delivered an event; beyond it they are woken at once.
const MAX_EVICTED: usize = 4096;

/// What a wait on a freed slot sees. Cannot happen while the handle is alive; it reports
/// closed rather than hang.
const GONE: ReadyEvent = ReadyEvent {
    ready: Ready::BOTH_CLOSED,
    tick: 0,
};

impl ScheduledIo {
    /// Moves the wakers waiting on a direction in `ready` to `to_wake`.
    fn take_wakers(&mut self, ready: Ready, to_wake: &mut Vec<Waker>) {
        if ready.intersects(Ready::READ_INTEREST) {
            to_wake.extend(self.reader.take());
        }
        if ready.intersects(Ready::WRITE_INTEREST) {
            to_wake.extend(self.writer.take());
        }
        self.owned.take_wakers(ready, to_wake);
        let mut i = 0;
        while i < self.others.len() {
            if ready.intersects(self.others[i].0.interest()) {
                to_wake.push(self.others.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
    }

    /// The readiness known in direction `dir` (with the priority note for reads, and
    /// `PRIORITY` shown for a priority edge), if any.
    fn event(&self, dir: Direction) -> Option<ReadyEvent> {
        let ready = self.readiness & dir.interest();
        if ready.is_empty() {
            return None;
        }
        let note = match dir {
            Direction::Read => self.readiness & Ready::PRIORITY,
            Direction::Priority if ready.intersects(Ready::PRIORITY_EDGE) => Ready::PRIORITY,
            _ => Ready::EMPTY,
        };
        Some(ReadyEvent {
            ready: ready | note,
            tick: self.tick,
        })
    }
}

#[derive(Debug)]
struct Slot {
    /// Bumped when the slot is freed, so events for a closed fd (whose number may already be
    /// reused by a new registration in another slot or this one) are recognised and dropped.
    generation: u32,
    io: Option<ScheduledIo>,
}

/// The key of a registration: slot index and generation. It is also the epoll token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IoKey {
    index: u32,
    generation: u32,
}

impl IoKey {
    fn token(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }
    fn from_token(t: u64) -> IoKey {
        IoKey {
            index: t as u32,
            generation: (t >> 32) as u32,
        }
    }
}

/// The epoll instance and the slots of every registered fd. Runtime thread only.
#[derive(Debug)]
pub(crate) struct Reactor {
    epoll: Epoll,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    registered: Cell<usize>,
    /// Which registration each fd number belongs to (see `fd_owners.rs`).
    owners: FdOwners,
    events: RefCell<Vec<libc::epoll_event>>,
    to_wake: RefCell<Vec<Waker>>,
    /// Waiters let go from a full `others` list: woken by the next turn that blocked or
    /// delivered an event (or a deregistration), not at once, so more waiters than the
    /// list holds do not wake one another in a loop while their fd stays idle.
    evicted: RefCell<Vec<Waker>>,
}

impl Reactor {
    pub(crate) fn new(wake_fd: RawFd, max_events: usize) -> io::Result<Reactor> {
        let epoll = Epoll::new()?;
        epoll.add(wake_fd, WAKE_TOKEN, INTEREST)?;
        Ok(Reactor {
            epoll,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            registered: Cell::new(0),
            owners: FdOwners::default(),
            events: RefCell::new(Vec::with_capacity(max_events.max(1))),
            to_wake: RefCell::new(Vec::new()),
            evicted: RefCell::new(Vec::new()),
        })
    }

    /// Number of fds currently registered (not counting the runtime's own eventfd).
    pub(crate) fn registered(&self) -> usize {
        self.registered.get()
    }

    /// Registers `fd` for the events of `interest` (edge-triggered; errors and hang-ups are
    /// always reported).
    pub(crate) fn register(&self, fd: RawFd, interest: Interest) -> io::Result<IoKey> {
        let mut slots = self.slots.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(slots.len()).map_err(|_| io::Error::other("too many fds"))?;
                slots.push(Slot {
                    generation: 0,
                    io: None,
                });
                i
            }
        };
        let slot = &mut slots[index as usize];
        let key = IoKey {
            index,
            generation: slot.generation,
        };
        if let Err(e) = self.epoll.add(fd, key.token(), interest.epoll_events()) {
            self.free.borrow_mut().push(index);
            return Err(e);
        }
        slot.io = Some(ScheduledIo::default());
        self.registered.set(self.registered.get() + 1);
        self.owners.claim(fd, key);
        Ok(key)
    }

    /// Removes `fd` from epoll (before the caller closes it) and frees its slot. Tasks still
    /// waiting on it are woken, as tokio does: one that shares the handle (say through an
    /// `Rc<RefCell<Option<_>>>`) must see it gone rather than sleep forever. A task that
    /// dropped its own handle pays one spurious poll at most.
    ///
    /// Only the registration that holds `fd`'s number removes it from epoll: one whose fd
    /// was closed behind its back, its number since registered again for another file, leaves
    /// that registration alone.
    pub(crate) fn deregister(&self, fd: RawFd, key: IoKey) {
        // EBADF/ENOENT here mean the fd is already gone from the interest list; either way
        // nothing is left to remove.
        if self.owners.release(fd, key) {
            let _ = self.epoll.delete(fd);
        }
        let io = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[key.index as usize];
            if slot.generation != key.generation {
                return;
            }
            slot.generation = slot.generation.wrapping_add(1);
            slot.io.take()
        };
        self.free.borrow_mut().push(key.index);
        self.registered.set(self.registered.get() - 1);
        // Only now, with the slots released: a waker may run arbitrary code, even panic.
        // Waiters let go from a full list may have waited on this fd: they see it gone.
        let evicted = std::mem::take(&mut *self.evicted.borrow_mut());
        if let Some(io) = io {
            let others = io.others.into_iter().map(|(_, w)| w);
            let owned = io.owned.into_wakers();
            wake_each(
                [io.reader, io.writer]
                    .into_iter()
                    .flatten()
                    .chain(others)
                    .chain(owned),
            );
        }
        wake_each(evicted);
    }

    /// Wakes every waiter of every fd, keeping the readiness: the runtime is shutting down,
    /// so no edge will come. A future that outlives the runtime (polled by hand, or by
    /// another executor) then polls again and fails, its runtime gone, instead of sleeping
    /// for ever, as tokio's do when their driver shuts down.
    pub(crate) fn wake_all(&self) {
        let every = Ready::READ_INTEREST | Ready::WRITE_INTEREST | Ready::PRIORITY_INTEREST;
        let mut to_wake = Vec::new();
        {
            let mut slots = self.slots.borrow_mut();
            for io in slots.iter_mut().filter_map(|slot| slot.io.as_mut()) {
                io.take_wakers(every, &mut to_wake);
            }
        }
        to_wake.append(&mut self.evicted.borrow_mut());
        // Only now, with the slots released: a waker may run arbitrary code, even panic.
        wake_each(to_wake);
    }

    /// Polls readiness for one direction, storing `cx`'s waker: in the polling future's own
    /// entry inside an [`OwnWaits`], else in the direction's slot (another task's waker,
    /// already there, moves to `others`), or, for priority and error waits, which have no
    /// slot, in `others`.
    pub(crate) fn poll_ready(
        self: &Rc<Self>,
        key: IoKey,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<ReadyEvent> {
        let mut slots = self.slots.borrow_mut();
        let Some(io) = slots[key.index as usize].io.as_mut() else {
            return Poll::Ready(GONE);
        };
        if let Some(event) = io.event(dir) {
            return Poll::Ready(event);
        }
        let waker = cx.waker();
        if let Some(displaced) =
            Entries::with_current(|entries| self.wait_owned(io, entries, key, dir, waker))
        {
            // Dropped after the slots are released: a waker's drop is user code.
            drop(slots);
            drop(displaced);
            return Poll::Pending;
        }
        let (mut dropped, mut dropped_old, mut evicted) = (None, None, None);
        let slot = match dir {
            Direction::Read => &mut io.reader,
            Direction::Write => &mut io.writer,
            Direction::Priority | Direction::Error => {
                // Rare waits have no slot of their own: straight into `others`, once.
                if io
                    .others
                    .iter()
                    .any(|(d, w)| *d == dir && w.will_wake(waker))
                {
                    return Poll::Pending;
                }
                let evicted = push_other(&mut io.others, dir, waker.clone());
                drop(slots);
                self.set_aside(evicted);
                return Poll::Pending;
            }
        };
        let displaced = match slot {
            Some(w) if w.will_wake(cx.waker()) => return Poll::Pending,
            _ => slot.replace(cx.waker().clone()),
        };
        if let Some(old) = displaced {
            // Each waiter once: the new one leaves `others` (it is in the slot now), the
            // displaced one joins it unless it is there already.
            let others = &mut io.others;
            if let Some(i) = others
                .iter()
                .position(|(d, w)| *d == dir && w.will_wake(cx.waker()))
            {
                dropped = Some(others.swap_remove(i).1);
            }
            if others.iter().any(|(d, w)| *d == dir && w.will_wake(&old)) {
                dropped_old = Some(old);
            } else {
                evicted = push_other(others, dir, old);
            }
        }
        // Dropped (and woken) after the slots are released: a waker's drop is user code,
        // which may register or poll I/O.
        drop(slots);
        drop(dropped);
        drop(dropped_old);
        self.set_aside(evicted);
        Poll::Pending
    }

    /// Keeps a waiter let go from a full `others` list for the next turn. Not woken here:
    /// it would poll again, evict the next, and so on, while the fd stays idle. Unless too
    /// many wait for it (a future polled with a fresh waker many times between turns):
    /// those are woken now. Call with the slots released.
    fn set_aside(&self, evicted: Option<Waker>) {
        if let Some(w) = evicted {
            let mut list = self.evicted.borrow_mut();
            list.push(w);
            let flush = (list.len() >= MAX_EVICTED).then(|| std::mem::take(&mut *list));
            drop(list);
            wake_each(flush.into_iter().flatten());
        }
    }

    /// Stores `waker` in the entry `entries` own for `key` and `dir`, made on first use.
    /// Returns the waker it replaced, if any.
    fn wait_owned(
        self: &Rc<Self>,
        io: &mut ScheduledIo,
        entries: &Entries,
        key: IoKey,
        dir: Direction,
        waker: &Waker,
    ) -> Option<Waker> {
        let found = entries.find(self, key, dir);
        if let Some(slot) = found.and_then(|i| io.owned.waker_mut(i)) {
            return match slot {
                Some(w) if w.will_wake(waker) => None,
                _ => slot.replace(waker.clone()),
            };
        }
        let index = io.owned.insert(dir, waker.clone());
        entries.record(self, key, dir, index);
        None
    }

    /// Removes an owned waiter entry (its future is dropping). Nothing to do if the fd was
    /// deregistered since: its entries went with it.
    pub(crate) fn remove_owned(&self, key: IoKey, index: usize) {
        let removed = {
            // Borrowed only if a waker's `clone` (called under the borrow) dropped a future:
            // its entry then stays, costing one spurious wake at most, until the fd goes.
            let Ok(mut slots) = self.slots.try_borrow_mut() else {
                return;
            };
            match slots.get_mut(key.index as usize) {
                Some(slot) if slot.generation == key.generation => {
                    slot.io.as_mut().and_then(|io| io.owned.remove(index))
                }
                _ => None,
            }
        };
        // Dropped after the slots are released: a waker's drop is user code.
        drop(removed);
    }

    /// The readiness known now in direction `dir`, if any; unlike `poll_ready`, stores no
    /// waker when there is none.
    pub(crate) fn current_readiness(&self, key: IoKey, dir: Direction) -> Option<ReadyEvent> {
        match self.slots.borrow()[key.index as usize].io.as_ref() {
            Some(io) => io.event(dir),
            None => Some(GONE),
        }
    }

    /// Clears the bits of `event` that may be cleared, unless a newer edge arrived.
    pub(crate) fn clear_readiness(&self, key: IoKey, event: ReadyEvent) {
        self.clear_bits(key, event, false);
    }

    /// Clears `event` after its direction's operation failed with `EAGAIN`. For an fd whose
    /// hang-up may end (see [`set_hangup_may_end`](Self::set_hangup_may_end)) the closed
    /// bit of that direction goes too, since `EAGAIN` proves the hang-up is over: a FIFO
    /// whose writers all left gets a new one, and its reader, still seeing the old hang-up,
    /// would otherwise retry a read that keeps failing with `EAGAIN`, without ever waiting.
    /// Elsewhere a hang-up is final, even where `EAGAIN` follows it (a datagram socket shut
    /// down for reading).
    pub(crate) fn clear_after_would_block(&self, key: IoKey, event: ReadyEvent) {
        self.clear_bits(key, event, true);
    }

    /// Marks the fd's write side closed (its owner shut it down) and wakes the task waiting
    /// to write, which then meets the closed side in its syscall. For fds whose kernel poll
    /// reports no edge for that (a Unix stream shut down for writing while its buffer is
    /// full: neither `EPOLLOUT` nor `EPOLLHUP`).
    pub(crate) fn set_write_closed(&self, key: IoKey) {
        let wakers = {
            let mut slots = self.slots.borrow_mut();
            let Some(io) = slots[key.index as usize].io.as_mut() else {
                return;
            };
            io.readiness = io.readiness | Ready::WRITE_CLOSED;
            io.tick = io.tick.wrapping_add(1);
            let mut wakers = Vec::new();
            io.take_wakers(Ready::WRITE_CLOSED, &mut wakers);
            wakers
        };
        wake_each(wakers);
    }

    /// Marks whether the fd's hang-up may end (see `clear_after_would_block`).
    pub(crate) fn set_hangup_may_end(&self, key: IoKey, may_end: bool) {
        if let Some(io) = self.slots.borrow_mut()[key.index as usize].io.as_mut() {
            io.hangup_may_end = may_end;
        }
    }

    fn clear_bits(&self, key: IoKey, event: ReadyEvent, would_block: bool) {
        let mut slots = self.slots.borrow_mut();
        if let Some(io) = slots[key.index as usize].io.as_mut() {
            if io.tick == event.tick {
                let clearable = if would_block && io.hangup_may_end {
                    Ready::CLEARABLE | Ready::BOTH_CLOSED
                } else {
                    Ready::CLEARABLE
                };
                io.readiness = io.readiness - (event.ready & clearable);
            }
        }
    }

    /// Waits for events for at most `timeout` and wakes the tasks they concern. Returns
    /// `(events delivered to slots, whether the runtime's eventfd fired)`.
    pub(crate) fn turn(&self, timeout: Option<Duration>) -> io::Result<(usize, bool)> {
        let mut events = self.events.borrow_mut();
        self.epoll.wait(&mut events, timeout)?;
        let mut woke_remote = false;
        let mut delivered = 0;
        let mut to_wake = std::mem::take(&mut *self.to_wake.borrow_mut());
        {
            let mut slots = self.slots.borrow_mut();
            for ev in events.iter() {
                let token = ev.u64;
                if token == WAKE_TOKEN {
                    woke_remote = true;
                    continue;
                }
                let key = IoKey::from_token(token);
                let Some(slot) = slots.get_mut(key.index as usize) else {
                    continue;
                };
                if slot.generation != key.generation {
                    continue; // stale event for a closed fd
                }
                let Some(io) = slot.io.as_mut() else { continue };
                let ready = Ready::from_epoll(ev.events);
                io.readiness = io.readiness | ready;
                io.tick = io.tick.wrapping_add(1);
                delivered += 1;
                io.take_wakers(ready, &mut to_wake);
            }
        }
        drop(events);
        if delivered > 0 || timeout != Some(Duration::ZERO) {
            to_wake.append(&mut self.evicted.borrow_mut());
        }
        // Wake only after the slots are released: a woken waker may poll or register I/O.
        wake_each(to_wake.drain(..));
        *self.to_wake.borrow_mut() = to_wake;
        Ok((delivered, woke_remote))
    }
}

/// Adds `waker` to `others`; returns the oldest waiter if the list was full, to be set
/// aside (see `Reactor::set_aside`). A future polled with a new waker each time (a
/// `FuturesUnordered` made afresh in a select loop) would add one per poll until the next
/// edge: so the list stays bounded.
fn push_other(others: &mut Vec<(Direction, Waker)>, dir: Direction, waker: Waker) -> Option<Waker> {
    let evicted = (others.len() >= MAX_OTHERS).then(|| others.remove(0).1);
    others.push((dir, waker));
    evicted
}

/// Wakes each waker; one that panics is caught (with a payload that panics when dropped
/// too), so it can neither take the runtime down nor cost the others their wake.
fn wake_each(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        crate::unwind::contain(|| w.wake());
    }
}
