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
