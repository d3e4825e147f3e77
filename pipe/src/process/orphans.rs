//! Children dropped while still running whose runtime ended before they did: no background
//! task is left to reap them, so a process-wide thread waits for them instead, and no
//! zombie outlives them.

use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::thread;

/// Children no runtime will reap, and whether the reaping thread runs.
struct Orphans {
    children: Vec<Child>,
    reaper_running: bool,
}

static ORPHANS: Mutex<Orphans> = Mutex::new(Orphans {
    children: Vec::new(),
    reaper_running: false,
});

fn lock() -> MutexGuard<'static, Orphans> {
    // Only pushes and pops happen under this lock: a poisoned one is consistent.
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `child`, still running, to the orphan reaper: a thread that blocks in `waitpid`
/// for each orphan in turn and ends when none is left. It starts with the first orphan; if
/// no thread can start, the child is left to the operating system (a zombie until this
/// process exits), as before there was a reaper.
pub(super) fn adopt(child: Child) {
    let mut orphans = lock();
    orphans.children.push(child);
    if orphans.reaper_running {
        return;
    }
    let started = thread::Builder::new()
        .name("overlap-orphan-reaper".into())
        .spawn(reap_all);
    orphans.reaper_running = started.is_ok();
}

/// The reaper thread: waits for each orphan (outside the lock) until the list is empty.
fn reap_all() {
    loop {
        let next = {
            let mut orphans = lock();
            match orphans.children.pop() {
                Some(child) => child,
                None => {
                    orphans.reaper_running = false;
                    return;
                }
            }
        };
        let mut child = next;
        // Nobody is left to read the status.
        let _ = child.wait();
    }
}
