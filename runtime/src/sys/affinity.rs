//! How many CPUs the calling thread may run on (`sched_getaffinity`).

use std::io;
use std::mem;

/// The number of CPUs in the calling thread's affinity mask. One syscall: cheap enough to
/// ask afresh whenever a runtime is built (a process may pin itself at any time).
pub(crate) fn cpus() -> io::Result<usize> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of exactly the size passed; pid 0 means
    // the calling thread.
    syscall!(sched_getaffinity(
        0,
        mem::size_of::<libc::cpu_set_t>(),
        &mut set
    ))?;
    // SAFETY: CPU_COUNT only reads the set the kernel just filled.
    Ok(unsafe { libc::CPU_COUNT(&set) } as usize)
}

#[cfg(test)]
mod tests {
    /// The kernel's own account of the same mask, for this thread: "0-1,4" style ranges.
    fn allowed_list() -> usize {
        let tid = tid();
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap();
        line.trim()
            .split(',')
            .map(|r| match r.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                None => 1,
            })
            .sum()
    }

    fn tid() -> libc::pid_t {
        // gettid cannot fail.
        crate::syscall!(gettid()).unwrap()
    }

    #[test]
    fn counts_the_cpus_the_kernel_lists_for_this_thread() {
        assert_eq!(super::cpus().unwrap(), allowed_list());
    }
}
