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
