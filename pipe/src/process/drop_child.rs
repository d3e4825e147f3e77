//! What dropping a [`Child`] does: kill it if asked (`kill_on_drop`), or its whole process
//! group (`kill_group_on_drop`), and reap it in the background, or hand it to the orphan
//! reaper when no runtime can, so that no zombie is left.

use std::future::poll_fn;
use std::task::Poll;

use super::{orphans, Child, Proc};

/// What dropping a [`Child`] kills, before it is reaped in the background.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DropKill {
    /// `kill_on_drop`: the child, if it still runs.
    pub(super) child: bool,
    /// `kill_group_on_drop`: the process group the child leads, even once the child has
    /// exited or was reaped (through its pidfd then).
    pub(super) group: bool,
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut proc) = self.proc.take() else {
            return;
        };
        if self.drop_kill.group {
            // Before the reap below: unreaped, even an exited leader keeps its group id from
            // reuse, so the `kill(-pid)` fallback is still right. An error (the group not
            // reachable any more) leaves nothing to do.
            let _ = proc.signal_group(libc::SIGKILL);
        }
        // Reaped, or no longer ours to reap (`ECHILD`: reaped elsewhere, as when `SIGCHLD` is
        // ignored): its pid may name another process by now, so it is neither killed nor
        // watched.
        if proc.status.is_some() || !matches!(proc.try_reap(), Ok(None)) {
            return;
        }
        if self.drop_kill.child {
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
