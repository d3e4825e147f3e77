//! Running one test in a child process of its own, for process-wide changes (resource
//! limits, uids) that must not touch the other tests of the binary.

use std::process::Command;

/// The variable that tells a copy of the test binary it is the child for a test.
const CHILD_ENV: &str = "OVERLAP_TEST_CHILD";

/// Called first thing by the test `test_name`: in the parent, runs this test binary again
/// with only `test_name`, as a child that runs `body`, and fails unless `body` returned
/// there; in that child, runs `body`.
pub fn run_in_child(test_name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        body();
        println!("child ok: {test_name}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("child ok: {test_name}")),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}
