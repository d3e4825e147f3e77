//! Which registration holds each fd number, so that a deregistration never names a number
//! that another registration now uses.
//!
//! epoll removes an fd by its number. An fd closed behind its `AsyncFd`'s back (an
//! `AsyncFd<RawFd>` whose owner closed it first) leaves epoll by itself, and its number may
//! then be registered again for another file; the old `AsyncFd`'s `EPOLL_CTL_DEL` would then
//! take that newer registration out, and its waiters would never be woken. The number belongs
//! to the registration made with it last: only that one removes it.

use std::cell::RefCell;
use std::os::fd::RawFd;

use super::IoKey;

/// Per fd number, the key of the registration made with it last, while that one lives. It
/// grows to the highest number registered (8 to 12 bytes a number, next to a slot's ~100).
#[derive(Debug, Default)]
pub(super) struct FdOwners(RefCell<Vec<Option<IoKey>>>);

impl FdOwners {
    /// `key` now holds `fd`'s number (the kernel accepted the registration, so any earlier
    /// holder's fd was closed).
    pub(super) fn claim(&self, fd: RawFd, key: IoKey) {
        let Ok(i) = usize::try_from(fd) else { return };
        let mut owners = self.0.borrow_mut();
        if owners.len() <= i {
            owners.resize(i + 1, None);
        }
        owners[i] = Some(key);
    }

    /// Lets go of `fd`'s number if `key` holds it, and says whether it did: if not, the fd
    /// registered under `key` is closed and the number, if in use, is another's.
    pub(super) fn release(&self, fd: RawFd, key: IoKey) -> bool {
        let Ok(i) = usize::try_from(fd) else {
            return false;
        };
        let mut owners = self.0.borrow_mut();
        match owners.get_mut(i) {
            Some(owner) if *owner == Some(key) => {
                *owner = None;
                true
            }
            _ => false,
        }
    }
}
