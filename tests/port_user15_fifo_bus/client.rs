//! The tests' side: clients with their reply FIFOs, a daemon in a fresh temp dir, and the
//! fds of this process that lead into a directory (race-free against the other tests,
//! whose fds lead elsewhere).

use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{Receiver, Sender};

use super::control::EofMode;
use super::daemon::{Config, Daemon};
use crate::support::{mkfifo, within, TempDir};

/// A hang guard only (virtual time on the paused clock).
pub const HANG: Duration = Duration::from_secs(3600);

pub struct Rig {
    pub dir: TempDir,
    pub control: PathBuf,
    pub daemon: Daemon,
}

impl Rig {
    pub fn start(name: &str, mode: EofMode, tweak: impl FnOnce(&mut Config)) -> Rig {
        let dir = TempDir::new(name);
        let control = dir.join("control");
        let mut cfg = Config::new(control.clone(), mode);
        tweak(&mut cfg);
        let daemon = Daemon::start(cfg).unwrap();
        Rig {
            dir,
            control,
            daemon,
        }
    }

    /// A client with its reply FIFO made and open for reading.
    pub fn client(&self, name: &str) -> Client {
        let mut c = self.client_unopened(name);
        c.open();
        c
    }

    /// A client whose reply FIFO is made but not open yet.
    pub fn client_unopened(&self, name: &str) -> Client {
        let reply = self.dir.join(name);
        mkfifo(&reply);
        Client { reply, rx: None }
    }

    /// `client` with its reply FIFO opened afresh: the old receiver, having read its
    /// reply to the end, would read end of file at once until the next writer came.
    pub fn client_reopened(&self, mut client: Client) -> Client {
        client.rx = None;
        client.open();
        client
    }

    /// Writes `record` into the control FIFO as a client does: open, one write, close.
    pub async fn send(&self, record: &[u8]) {
        send(&self.control, record).await
    }

    /// `verb` with `client`'s reply FIFO and `args`, then its whole reply.
    pub async fn ask(&self, client: &mut Client, verb: &str, args: &str) -> String {
        let line = format!("{verb} {} {args}", client.reply.display());
        self.send(format!("{}\n", line.trim_end()).as_bytes()).await;
        String::from_utf8(client.reply().await).unwrap()
    }
}

pub async fn send(control: &Path, record: &[u8]) {
    let mut tx = Sender::open(control).unwrap();
    within(HANG, tx.write_all(record), "writing a record")
        .await
        .unwrap();
}

pub struct Client {
    pub reply: PathBuf,
    pub rx: Option<Receiver>,
}

impl Client {
    pub fn open(&mut self) {
        self.rx = Some(Receiver::open(&self.reply).unwrap());
    }

    /// Reads the reply to its end (the daemon closes the FIFO after it).
    pub async fn reply(&mut self) -> Vec<u8> {
        let rx = self.rx.as_mut().expect("reply FIFO not open");
        let mut got = Vec::new();
        within(HANG, rx.read_to_end(&mut got), "reading a reply")
            .await
            .unwrap();
        got
    }
}

/// The fds of this process that lead into `dir` (FIFOs, files), as `fd -> target`.
pub fn fds_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if target.starts_with(dir) {
                found.push(format!(
                    "{} -> {}",
                    entry.file_name().to_string_lossy(),
                    target.display()
                ));
            }
        }
    }
    found
}
