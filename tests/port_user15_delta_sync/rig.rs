//! The tests' rig: a sender and a receiver joined over a loopback TCP pair, a transfer
//! that must succeed (the target checked against the new file), and a receiver fed a
//! hand-written instruction stream that must be refused (the target checked untouched).

use std::io;
use std::path::Path;

use overlap::io::AsyncWriteExt;

use crate::proto::{encode, read_signatures, Instr};
use crate::receiver::{receive, temp_path, RecvStats};
use crate::sender::{send, SendStats};
use crate::support::{tcp_pair, TempDir};
use crate::BS;

/// Runs a sender of `new` against a receiver of `target` over `tcp_pair`.
pub async fn transfer(
    target: &Path,
    new: &Path,
    bs: u32,
) -> (io::Result<SendStats>, io::Result<()>, RecvStats) {
    let (a, b) = tcp_pair().await;
    let stats = RecvStats::default();
    let (sent, got) = overlap::join!(send(a, new), receive(b, target, bs, &stats));
    (sent, got, stats)
}

/// A transfer that must succeed: the target ends equal to `new`, no temp file is left,
/// and both sides agree on the counts. The sender's counts.
pub async fn synced(dir: &TempDir, old: Option<&[u8]>, new: &[u8], bs: u32) -> SendStats {
    let (target, src) = (dir.join("target.bin"), dir.join("new.bin"));
    let _ = std::fs::remove_file(&target);
    if let Some(old) = old {
        std::fs::write(&target, old).unwrap();
    }
    std::fs::write(&src, new).unwrap();
    let (sent, got, stats) = transfer(&target, &src, bs).await;
    got.unwrap();
    let sent = sent.unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), new);
    assert!(!temp_path(&target).exists());
    assert_eq!(
        (stats.copies.get(), stats.literal_bytes.get()),
        (sent.copies, sent.literal_bytes)
    );
    sent
}

/// Encodes `instrs` as the sender would.
pub fn script(instrs: &[Instr]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in instrs {
        encode(i, &mut out);
    }
    out
}

/// A receiver of a target holding `old` against a hand-driven sender that reads the
/// signatures, writes `bytes` and goes away. The receiver's error, after checking the
/// target untouched and the directory holding nothing else.
pub async fn refused(dir: &TempDir, old: &[u8], bytes: Vec<u8>) -> io::Error {
    let target = dir.join("target.bin");
    std::fs::write(&target, old).unwrap();
    let (mut a, b) = tcp_pair().await;
    let stats = RecvStats::default();
    let (sigs, got) = overlap::join!(
        async move {
            let sigs = read_signatures(&mut a).await.unwrap();
            a.write_all(&bytes).await.unwrap();
            sigs
        },
        receive(b, &target, BS, &stats)
    );
    assert_eq!(sigs.old_len, old.len() as u64);
    let err = got.unwrap_err();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        old,
        "target touched ({err})"
    );
    assert_only_target(dir);
    err
}

/// The directory holds the target and nothing else (no temp file).
pub fn assert_only_target(dir: &TempDir) {
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "new.bin")
        .collect();
    names.sort();
    assert_eq!(names, ["target.bin"]);
}
