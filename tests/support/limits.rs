//! Fd limits and counts, and the byte pattern every test uses.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    lim.rlim_cur
}

/// Sets this process's soft limit on `resource` (`libc::RLIMIT_*`) to `soft`, capped at the
/// hard limit.
pub fn set_soft_limit(resource: libc::__rlimit_resource_t, soft: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill in, then to read.
    unsafe {
        assert_eq!(libc::getrlimit(resource, &mut lim), 0);
        lim.rlim_cur = soft.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(resource, &lim), 0);
    }
}

/// Sets the soft `RLIMIT_NOFILE`.
pub fn set_soft_nofile(soft: u64) {
    set_soft_nofile_of(0, soft);
}

/// Sets the soft `RLIMIT_NOFILE` of the process `pid` (0: this one), a child of ours.
pub fn set_soft_nofile_of(pid: u32, soft: u64) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: no new limit is passed; `lim` is a valid, writable rlimit for the old one.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut lim) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    lim.rlim_cur = soft;
    // SAFETY: `lim` is a valid rlimit; lowering the soft limit is always allowed.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// Opens descriptors (close-on-exec duplicates of stdin) until the process limit is hit
/// (`EMFILE`); returns them.
pub fn exhaust_fds() -> Vec<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut fds = Vec::new();
    loop {
        // SAFETY: fcntl takes integers; the result is checked before being owned.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
            return fds;
        }
        // SAFETY: `fd` is a new descriptor owned by nobody else.
        fds.push(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    }
}

/// How many fds this process has open now.
pub fn open_fds() -> usize {
    // The directory handle itself is one more entry while iterating; subtract it.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

/// A deterministic byte pattern that does not repeat every 256 bytes, so a dropped or
/// duplicated chunk is caught.
pub fn pattern_seeded(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
