//! Waiting for a child process to be reaped.

use std::time::Duration;

use super::within;

/// Waits until process `pid` has no /proc entry any more (exited and reaped: a zombie keeps
/// its entry), failing with `what` after 30 s.
pub async fn gone(pid: u32, what: &str) {
    let stat = format!("/proc/{pid}/stat");
    within(
        Duration::from_secs(30),
        async {
            while std::fs::metadata(&stat).is_ok() {
                overlap::time::sleep(Duration::from_millis(10)).await;
            }
        },
        what,
    )
    .await
}

/// The pids of this process's children (zombies included), of all its threads, as the
/// kernel lists them.
pub fn children() -> String {
    let mut all = String::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let list = std::fs::read_to_string(task.unwrap().path().join("children"));
        all.push_str(&list.unwrap_or_default());
    }
    all.trim().to_owned()
}
