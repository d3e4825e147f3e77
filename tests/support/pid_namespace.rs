//! Running one test as PID 1 of a pid namespace of its own, where it chooses the pids
//! handed out next (to reuse a pid on purpose).

use std::process::Stdio;

/// The variable that tells a copy of the test binary it runs a test in its namespace.
const NS_CHILD_ENV: &str = "OVERLAP_TEST_PID_NAMESPACE_CHILD";

/// In the test `test_name`: runs this test binary again, with only `test_name`, as PID 1
/// of new user, mount and pid namespaces (`/proc` mounted anew), where it runs `body`;
/// fails unless `body` returned there. Passes, saying so, where namespaces are denied.
pub fn run_in_pid_namespace(test_name: &str, body: impl FnOnce()) {
    if std::env::var(NS_CHILD_ENV).as_deref() == Ok(test_name) {
        assert_eq!(std::process::id(), 1, "PID 1 of a namespace of its own");
        body();
        println!("child ok: {test_name}");
        return;
    }
    let unshare = ["-Urpf", "--mount-proc"];
    let allowed = std::process::Command::new("unshare")
        .args(unshare)
        .arg("true")
        .stderr(Stdio::null())
        .status();
    if !allowed.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no `unshare`, or this machine denies user and pid namespaces");
        return;
    }
    let out = std::process::Command::new("unshare")
        .args(unshare)
        .arg(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(NS_CHILD_ENV, test_name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("child ok: {test_name}")),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Makes `pid` the next pid this namespace hands out (unless it is in use).
pub fn next_pid_is(pid: u32) {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
}
