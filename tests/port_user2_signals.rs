//! A user's daemon with signal handling, sketched as one would for tokio
//! (`signal::unix::signal(SignalKind::hangup())` and `user_defined1()` to reload a config
//! file, `signal::ctrl_c()` to stop gracefully, all in one `select!` loop, progress written
//! to an async stdout) and then written for overlap. The test runs the daemon as a real
//! child process (this test binary again, through `overlap::process::Command`), sends it
//! signals with `kill(2)` and reads what it reports on its stdout, line by line: each reload
//! sees the file's new contents, and `SIGINT` ends it with a clean exit and a last word.

mod support;

use std::process::Stdio;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{self, AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::process::{ChildStdout, Command};
use overlap::signal::unix::{signal, SignalKind};
use overlap::stream::StreamExt;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);
/// Set in the daemon's environment: the config file it reads.
const CONFIG_ENV: &str = "OVERLAP_USER2_DAEMON_CONFIG";

/// The daemon: reports `ready <config>`, then `reload <signal> <config>` per reload, and
/// `bye <reloads>` when stopped.
async fn daemon(config_path: &str) -> io::Result<()> {
    let say = |line: String| {
        let bytes = format!("daemon: {line}\n").into_bytes();
        async move {
            let mut out = io::stdout();
            out.write_all(&bytes).await?;
            out.flush().await
        }
    };
    // Install every handler before saying `ready`: a SIGHUP before that would take its
    // default action and end the process.
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut stop = std::pin::pin!(overlap::signal::ctrl_c().fuse());
    let mut config = overlap::fs::read_to_string(config_path).await?;
    say(format!("ready {}", config.trim())).await?;
    let mut reloads = 0;
    loop {
        let by = overlap::select! {
            _ = hup.recv().fuse() => "HUP",
            _ = usr1.recv().fuse() => "USR1",
            r = stop => { r?; break; }
        };
        config = overlap::fs::read_to_string(config_path).await?;
        reloads += 1;
        say(format!("reload {by} {}", config.trim())).await?;
    }
    say(format!("bye {reloads}")).await
}

/// The daemon's side: runs only when the parent test started this binary as the daemon.
#[test]
fn daemon_child() {
    let Ok(path) = std::env::var(CONFIG_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    overlap::block_on(daemon(&path)).unwrap();
}

/// The next `daemon: ` line of the child's stdout (libtest prints its own lines too).
async fn next_report(lines: &mut (impl StreamExt<Item = io::Result<String>> + Unpin)) -> String {
    loop {
        let line = within(HANG, lines.next(), "a line from the daemon")
            .await
            .expect("the daemon's stdout ended early")
            .unwrap();
        // libtest's `test daemon_child ... ` has no newline: the first report follows it.
        if let Some((_, report)) = line.split_once("daemon: ") {
            return report.to_string();
        }
    }
}

fn send(pid: u32, kind: SignalKind) {
    // SAFETY: kill takes no pointers; `pid` is our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, kind.as_raw_value()) }, 0);
}

/// Writes `level` to the config file at `config` and starts this binary as the daemon on
/// it, once it reports ready: the child, its pid and its report lines.
async fn start_daemon(
    config: &std::path::Path,
    level: u32,
) -> (
    overlap::process::Child,
    u32,
    io::Lines<BufReader<ChildStdout>>,
) {
    std::fs::write(config, format!("level={level}\n")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["daemon_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CONFIG_ENV, config)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(
        next_report(&mut lines).await,
        format!("ready level={level}")
    );
    (child, pid, lines)
}

#[overlap::test]
async fn the_daemon_reloads_on_hup_and_usr1_and_stops_cleanly_on_ctrl_c() {
    let dir = TempDir::new("user2-daemon");
    let config = dir.join("daemon.conf");
    let (mut child, pid, mut lines) = start_daemon(&config, 1).await;

    // Each signal is sent once the previous reload is reported: two signals of one kind
    // sent back to back may be delivered as one, as anywhere on Unix.
    overlap::fs::write(&config, "level=2\n").await.unwrap();
    send(pid, SignalKind::hangup());
    assert_eq!(next_report(&mut lines).await, "reload HUP level=2");
    overlap::fs::write(&config, "level=3\n").await.unwrap();
    send(pid, SignalKind::user_defined1());
    assert_eq!(next_report(&mut lines).await, "reload USR1 level=3");
    send(pid, SignalKind::hangup());
    assert_eq!(next_report(&mut lines).await, "reload HUP level=3");

    send(pid, SignalKind::interrupt());
    assert_eq!(next_report(&mut lines).await, "bye 3");
    let status = within(HANG, child.wait(), "daemon exits").await.unwrap();
    assert!(status.success(), "{status:?}");
}

#[overlap::test]
async fn a_signal_the_daemon_does_not_handle_still_takes_its_default_action() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TempDir::new("user2-daemon-term");
    let config = dir.join("daemon.conf");
    let (mut child, pid, _lines) = start_daemon(&config, 9).await;
    // SIGTERM has no handler here: the daemon dies of it, as a tokio program would.
    send(pid, SignalKind::terminate());
    let status = within(HANG, child.wait(), "daemon dies").await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}
