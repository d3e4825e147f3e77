//! A process a test started indirectly (a shell script's background `sleep`), which no
//! `Child` owns: killed if the test fails before it ends, so a failing test leaves no
//! process behind.

/// Kills process `.0` with `SIGKILL` when dropped during a panic, unless it has ended.
#[derive(Debug)]
pub struct KillIfPanicking(pub u32);

impl Drop for KillIfPanicking {
    fn drop(&mut self) {
        if std::thread::panicking() && !matches!(super::process_state(self.0), None | Some('Z')) {
            // SAFETY: kill takes integers only; the process was alive a moment ago.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
        }
    }
}
