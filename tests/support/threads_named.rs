//! The kernel's view of this process's threads, by name: a pool's threads counted in
//! `/proc/self/task`, not by the pool's own bookkeeping.

use std::fs;

/// The bytes Linux keeps of a thread's name: the first 15 (`TASK_COMM_LEN` less its NUL),
/// cut wherever they fall, in the middle of a UTF-8 character too.
pub fn comm_of(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(15)]
}

/// How many live threads of this process carry `name` (as the kernel keeps it, see
/// [`comm_of`]). A thread that exits between the listing and the read is not counted.
pub fn threads_named(name: &str) -> usize {
    let want = comm_of(name);
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| fs::read(task.path().join("comm")).ok())
        .filter(|comm| comm.strip_suffix(b"\n").unwrap_or(comm) == want)
        .count()
}
