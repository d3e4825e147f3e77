//! The end of a runtime: `Core::shutdown`, run once when the `Runtime` is dropped.

use std::time::Duration;

use super::{Core, PoolWait};

/// How long the runtime's drop waits for durable blocking work (file writes) to end.
const DURABLE_WAIT: Duration = Duration::from_secs(10);

impl Core {
    /// Drops every task's future on this thread and releases every queue entry, then waits
    /// for the blocking pool as `wait` says. Called once, when the `Runtime` is dropped, with
    /// this core entered.
    pub(crate) fn shutdown(&self, wait: PoolWait) {
        // From here a `Handle` spawn is refused on its own thread: one thread spawning
        // without pause cannot keep the loop below going, and none lands after it.
        self.shared.refuse_spawns();
        self.shared.blocking.shutdown();
        loop {
            // No edge will come any more: wake whatever waits on an fd (a task, queued and
            // then dropped below; a future polled elsewhere, whose next poll fails).
            self.reactor.wake_all();
            // Dropping a future may spawn or wake tasks, here or remotely; repeat until
            // nothing is left.
            self.drain_remote();
            // Set-aside tasks go back in the run queue, whose entries are released below.
            self.wake_deferred();
            let tasks = self.tasks.borrow_mut().drain();
            if tasks.is_empty() && !self.has_ready_tasks() && !self.shared.maybe_pending() {
                break;
            }
            for task in tasks {
                if task.set_cancelled() {
                    let err = self.cancel(task);
                    task.finish(Some(err));
                }
                task.ref_dec_local();
            }
            while let Some(task) = self.pop() {
                task.unschedule_local();
            }
        }
        // No task is queued locally any more: leave owner context for good, then shut the
        // remote path, which applies whatever other threads queued meanwhile.
        self.closed.set(true);
        crate::executor::context::leave_owner(self);
        self.shared.close();
        // Nothing will advance a paused clock any more: it runs on from where it stands, for
        // the blocking jobs that read it still (waited for below, or outliving the runtime),
        // so that their readings go on and never go back.
        self.timers.resume();
        // Jobs still running finish detached, but a file's write job is waited for, for a
        // while: a process that exits right after this drop would cut it short, losing
        // bytes a `write` accepted.
        match wait {
            PoolWait::Durable => self.shared.blocking.wait_durable(DURABLE_WAIT),
            PoolWait::All(limit) => self.shared.blocking.wait_stopped(limit),
            PoolWait::Nothing => true,
        };
    }
}
