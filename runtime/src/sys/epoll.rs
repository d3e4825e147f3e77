//! The epoll instance: create, register, deregister, wait.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Events every registration asks for: edge-triggered read, write and peer-half-close, and
/// priority data (TCP urgent data, after which a short read no longer means "drained").
pub(crate) const INTEREST: u32 =
    (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

/// An epoll file descriptor created with `EPOLL_CLOEXEC`.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// Set once `epoll_pwait2` is known to be unusable, so it is not tried again: missing
/// (`ENOSYS`, before Linux 5.11) or denied by a seccomp filter, which container runtimes
/// and sandboxes configure to answer `ENOSYS` or `EPERM` for syscalls they do not know.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes only a flag.
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        Ok(Epoll {
            // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Registers `fd` once for `events` (typically [`INTEREST`], edge-triggered), tagged
    /// with `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event that outlives the call; a bad `fd` is reported
        // by the kernel as an error, not undefined behaviour.
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    /// Removes `fd` from the interest list. Must be called before `fd` is closed.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; kernels before 2.6.9 wanted a non-null event even for DEL.
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    /// Waits for events, at most `timeout` (`None`: forever), filling `events`.
    ///
    /// Uses `epoll_pwait2` for nanosecond timeouts where the kernel has it and no seccomp
    /// filter denies it (`ENOSYS` or `EPERM`; the syscall itself never fails with `EPERM`);
    /// otherwise `epoll_wait` with the timeout rounded *up* to the next millisecond, so a
    /// short sleep never turns into a busy loop. EINTR counts as zero events.
    pub(crate) fn wait(
        &self,
        events: &mut Vec<libc::epoll_event>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        events.clear();
        let cap = events.capacity().min(i32::MAX as usize) as i32;
        let res = match timeout {
            Some(d) if !d.is_zero() && !NO_PWAIT2.load(Ordering::Relaxed) => {
                let ts = libc::timespec {
                    tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                // SAFETY: `events` has room for `cap` entries; `ts` outlives the call; a null
                // sigmask means "do not change the mask".
                let r = syscall!(epoll_pwait2(
                    self.fd.as_raw_fd(),
                    events.as_mut_ptr(),
                    cap,
                    &ts,
                    std::ptr::null()
                ));
                match r {
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                        NO_PWAIT2.store(true, Ordering::Relaxed);
                        self.wait_ms(events.as_mut_ptr(), cap, Some(d))
                    }
                    other => other,
                }
            }
            other => self.wait_ms(events.as_mut_ptr(), cap, other),
        };
        match res {
            Ok(n) => {
                // SAFETY: the kernel initialised the first `n` entries (n <= cap <= capacity).
                unsafe { events.set_len(n as usize) };
                Ok(n as usize)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn wait_ms(
        &self,
        events: *mut libc::epoll_event,
        cap: i32,
        timeout: Option<Duration>,
    ) -> io::Result<i32> {
        let ms = match timeout {
            None => -1,
            Some(d) => {
                // Round up: a 0.3 ms wait becomes 1 ms, never 0 ms (a busy loop).
                let ms = d.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `events` points at a buffer with room for `cap` entries (the caller's Vec
        // capacity).
        syscall!(epoll_wait(self.fd.as_raw_fd(), events, cap, ms))
    }
}
