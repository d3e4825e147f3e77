//! `io::stdin` under two runtimes in turn: a read cancelled when the first one's `block_on`
//! ends (a timeout) hands its bytes to the next read, under the second, with no error.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::io::AsyncReadExt;

const CHILD_ENV: &str = "OVERLAP_STDIN_RUNTIMES_CHILD";
const NAME: &str = "a_read_cancelled_with_its_runtime_hands_its_bytes_to_the_next_runtime";

fn child() {
    let mut stdin = overlap::io::stdin();
    let mut buf = [0u8; 100];
    let first = overlap::block_on(async {
        overlap::time::timeout(Duration::from_millis(50), stdin.read(&mut buf)).await
    });
    assert!(first.is_err(), "no input yet: the read times out");
    let got = overlap::block_on(async {
        let mut got = Vec::new();
        loop {
            let n = stdin
                .read(&mut buf)
                .await
                .expect("no error for the cancelled read");
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    });
    eprintln!("GOT {:?}", String::from_utf8_lossy(&got));
}

#[test]
fn a_read_cancelled_with_its_runtime_hands_its_bytes_to_the_next_runtime() {
    if std::env::var(CHILD_ENV).is_ok() {
        return child();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    input.write_all(b"hello\n").unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(stderr.contains("GOT \"hello\\n\""), "{stderr}");
}
