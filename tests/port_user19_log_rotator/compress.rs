//! The compressor: one task that, each time a rotation wakes it, pipes every `@<seq>.u`
//! (oldest first) through a child (`gzip -c` by default) into `@<seq>.s`, then applies
//! retention. At most one child runs at a time, with `kill_on_drop`, so a daemon dropped
//! mid-compression leaves no child running.
//!
//! The child's stdin is the rotated file itself; its stdout is a pipe copied into
//! `@<seq>.s.tmp` through an `overlap::fs::File`, which is flushed and synced after the
//! child exited 0, then renamed to `@<seq>.s`; only then is the `.u` removed. A child that
//! fails (cannot start, exits non-zero) leaves the `.u` in place, the `.tmp` removed, and
//! the failure (with the child's stderr) in the stats: the next rotation tries it again.
//! A shutdown that runs out of patience cancels the compressor: its child is killed and
//! reaped, its `.tmp` removed, its `.u` left for the next start.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::rc::Rc;

use overlap::fs::{self, File};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::process::Command;

use super::current::{parse_rotated, rotated_name};
use super::daemon::Shared;

/// Runs until `shared.stopping` is set: a pass per wake, and a last one begun after the
/// stop (a stop during a pass leaves a wake behind, so the pass that looks at the files
/// rotated last is never skipped).
pub async fn run(dir: &Path, keep: usize, shared: Rc<Shared>) {
    loop {
        shared.compress.notified().await;
        let last = shared.stopping.get();
        if let Err(e) = pass(dir, keep, &shared).await {
            shared.report_compress_failure(format!("cannot list {}: {e}", dir.display()));
        }
        if last || shared.cancel.is_cancelled() {
            return;
        }
    }
}

/// Removes the `.s.tmp` files a compression cut short by a crash left: their `.u` files
/// are still there.
pub async fn remove_partial_outputs(dir: &Path) -> io::Result<()> {
    let mut entries = fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if let Some((_, "s.tmp")) = parse_rotated(&entry.file_name().to_string_lossy()) {
            fs::remove_file(entry.path()).await?;
        }
    }
    Ok(())
}

/// The rotated files' sequence numbers, and which of them are still uncompressed.
async fn rotated(dir: &Path) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let (mut all, mut plain) = (Vec::new(), Vec::new());
    let mut entries = fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        match parse_rotated(&entry.file_name().to_string_lossy()) {
            Some((seq, "u")) => {
                all.push(seq);
                plain.push(seq);
            }
            Some((seq, "s")) => all.push(seq),
            _ => {}
        }
    }
    all.sort_unstable();
    all.dedup();
    plain.sort_unstable();
    Ok((all, plain))
}

async fn pass(dir: &Path, keep: usize, shared: &Rc<Shared>) -> io::Result<()> {
    let (_, plain) = rotated(dir).await?;
    for seq in plain {
        if shared.cancel.is_cancelled() {
            return Ok(());
        }
        let argv = shared.compressor.borrow().clone();
        match compress_one(dir, seq, &argv, shared).await {
            Ok(()) => shared.stats.borrow_mut().compressed.push(seq),
            Err(msg) => shared.report_compress_failure(msg),
        }
    }
    // Retention: the newest `keep` rotated files stay, compressed or not.
    let (all, _) = rotated(dir).await?;
    for &seq in all.iter().take(all.len().saturating_sub(keep)) {
        for ext in ["s", "u"] {
            match fs::remove_file(dir.join(rotated_name(seq, ext))).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => shared.report_compress_failure(format!("retention: {e}")),
            }
        }
        shared.stats.borrow_mut().deleted.push(seq);
    }
    Ok(())
}

async fn compress_one(
    dir: &Path,
    seq: u64,
    argv: &[OsString],
    shared: &Shared,
) -> Result<(), String> {
    let plain = dir.join(rotated_name(seq, "u"));
    let tmp = dir.join(rotated_name(seq, "s.tmp"));
    let done = dir.join(rotated_name(seq, "s"));
    let input = File::open(&plain).await.map_err(|e| e.to_string())?;
    let input = input.into_std().await.map_err(|e| e.to_string())?;
    let mut output = File::create(&tmp).await.map_err(|e| e.to_string())?;
    let what = format!("compressor {argv:?} on {}", plain.display());
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            drop(output);
            let _ = fs::remove_file(&tmp).await;
            return Err(format!("{what}: cannot start: {e}"));
        }
    };
    shared.running_compressor(1);
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut complaint = Vec::new();
    let work = async {
        let (copied, _) = overlap::join!(
            overlap::io::copy(&mut stdout, &mut output),
            stderr.read_to_end(&mut complaint)
        );
        (copied, child.wait().await)
    };
    let Some((copied, status)) = shared.cancel.run_until_cancelled(work).await else {
        // Shutdown ran out of patience: the child is killed and reaped here, so none is
        // left behind once the daemon's shutdown returns.
        let killed = child.kill().await;
        shared.running_compressor(-1);
        drop(output);
        let _ = fs::remove_file(&tmp).await;
        return Err(format!("{what}: stopped at shutdown (kill: {killed:?})"));
    };
    shared.running_compressor(-1);
    let written = match (copied, status) {
        (Ok(_), Ok(status)) if status.success() => async {
            output.flush().await?;
            output.sync_data().await
        }
        .await
        .map_err(|e| format!("{what}: {e}")),
        (Err(e), _) | (_, Err(e)) => Err(format!("{what}: {e}")),
        (Ok(_), Ok(status)) => Err(format!(
            "{what}: {status}: {}",
            String::from_utf8_lossy(&complaint).trim()
        )),
    };
    drop(output);
    if let Err(msg) = written {
        let _ = fs::remove_file(&tmp).await;
        return Err(msg);
    }
    fs::rename(&tmp, &done).await.map_err(|e| e.to_string())?;
    fs::remove_file(&plain).await.map_err(|e| e.to_string())
}
