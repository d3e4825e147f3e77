//! What dropping a [`Child`] does: kill it if asked (`kill_on_drop`), and reap it in the
//! background, or hand it to the orphan reaper when no runtime can, so that no zombie is
//! left.

use std::future::poll_fn;
use std::task::Poll;

use super::{orphans, Child, Proc};

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut proc) = self.proc.take() else {
            return;
        };
        // Reaped, or no longer ours to reap (`ECHILD`: reaped elsewhere, as when `SIGCHLD` is
        // ignored): its pid may name another process by now, so it is neither killed nor
        // watched.
        if proc.status.is_some() || !matches!(proc.try_reap(), Ok(None)) {
            return;
        }
        if self.kill_on_drop {
            let _ = proc.signal(libc::SIGKILL);
        }
        // Still running: reap it in the background, so it does not linger as a zombie. If
        // the runtime ends first (or there is none), the orphan reaper thread takes over.
        let mut reaper = Reaper(Some(proc));
        let reaping = async move {
            // Reaped, or (failing to watch it) handed to the orphan reaper when `reaper`
            // drops: either way no zombie is left.
            let _ = poll_fn(|cx| {
                reaper
                    .0
                    .as_mut()
                    .map_or(Poll::Ready(Ok(())), |p| p.poll_exit(cx).map_ok(drop))
            })
            .await;
        };
        if let Ok(task) = overlap_runtime::try_spawn(reaping) {
            drop(task); // detached
        }
    }
}

/// A dropped child's process, waited for by a background task; handed to the orphan
/// reaper if the task goes (its runtime ended) before the process did.
struct Reaper(Option<Proc>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut proc) = self.0.take() {
            // Still running; not if reaped meanwhile, here or elsewhere (`ECHILD`).
            if matches!(proc.try_reap(), Ok(None)) {
                orphans::adopt(proc.std);
            }
        }
    }
}
