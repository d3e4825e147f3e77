//! A data transfer: a task of its own, given the accepted data connection, racing its
//! work against a cancel signal (ABOR, or the control connection gone). LIST writes the
//! listing; RETR sends the file from its REST offset with `File::send_to` (or, as the
//! tokio version does, `seek` and `io::copy`); STOR copies the
//! upload into a temporary file beside the target and renames it into place only once
//! the data connection ended cleanly, so a cut or aborted upload leaves nothing visible.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use overlap::fs::{self, File};
use overlap::io::{AsyncWriteExt, SeekFrom};
use overlap::net::TcpStream;
use overlap::sync::oneshot;
use overlap::task::JoinHandle;

use super::paths;
use super::server::Shared;

/// The work of one transfer command, prepared before the data connection is accepted
/// (so a missing file is a 550 at once).
pub enum Job {
    List(String),
    Retr {
        file: Box<File>,
        offset: u64,
        len: u64,
    },
    Stor {
        dest: PathBuf,
    },
}

/// How a transfer ended.
#[derive(Debug)]
pub enum Outcome {
    /// The whole of it went (the byte count).
    Done(u64),
    /// Cancelled: ABOR, or the session ending.
    Aborted,
    /// The data connection failed.
    Failed(io::Error),
    /// Our side failed (the disk).
    Local(io::Error),
}

/// A transfer in flight: its task, and the signal that cancels it.
pub struct Transfer {
    handle: JoinHandle<Outcome>,
    cancel: oneshot::Sender<()>,
}

/// The job `verb` needs for the real path `real`; RETR from `rest`.
pub async fn prepare(verb: &str, real: PathBuf, rest: u64) -> io::Result<Job> {
    match verb {
        "LIST" | "NLST" => Ok(Job::List(paths::list(&real).await?)),
        "RETR" => {
            let file = File::open(&real).await?;
            let meta = file.metadata().await?;
            if meta.is_dir() {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, "a directory"));
            }
            let len = meta.len();
            Ok(Job::Retr {
                file: Box::new(file),
                offset: rest.min(len),
                len,
            })
        }
        _ => {
            let parent = real.parent().map(PathBuf::from).unwrap_or_default();
            if !fs::metadata(&parent).await?.is_dir() || real.file_name().is_none() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
            }
            Ok(Job::Stor { dest: real })
        }
    }
}

/// Resolves when the transfer in `slot` ends (never, if there is none): a `select!`
/// branch, the slot emptied by the caller.
pub async fn finished(slot: &mut Option<Transfer>) -> Outcome {
    match slot {
        Some(t) => join(&mut t.handle).await,
        None => std::future::pending().await,
    }
}

async fn join(handle: &mut JoinHandle<Outcome>) -> Outcome {
    match handle.await {
        Ok(out) => out,
        Err(e) => Outcome::Local(io::Error::other(format!("transfer task: {e}"))),
    }
}

impl Transfer {
    pub fn spawn(job: Job, data: TcpStream, shared: Rc<Shared>) -> Transfer {
        let (cancel, cancelled) = oneshot::channel();
        let handle = overlap::spawn(run(job, data, cancelled, shared));
        Transfer { handle, cancel }
    }

    /// Cancels the transfer and waits for it to end (it may have finished first).
    pub async fn cancel(mut self) -> Outcome {
        let _ = self.cancel.send(());
        join(&mut self.handle).await
    }

    /// Waits for the transfer to end by itself.
    pub async fn finish(mut self) -> Outcome {
        let out = join(&mut self.handle).await;
        drop(self.cancel);
        out
    }
}

/// A counter for temporary names, unique within the process.
fn next_upload() -> u64 {
    thread_local!(static NEXT: Cell<u64> = const { Cell::new(0) });
    NEXT.with(|n| {
        n.set(n.get() + 1);
        n.get()
    })
}

async fn run(
    job: Job,
    mut data: TcpStream,
    cancelled: oneshot::Receiver<()>,
    shared: Rc<Shared>,
) -> Outcome {
    let out = match job {
        Job::List(text) => {
            let work = async {
                data.write_all(text.as_bytes()).await?;
                data.close().await?;
                Ok(text.len() as u64)
            };
            race(work, cancelled).await
        }
        Job::Retr {
            mut file,
            offset,
            len,
        } => {
            let by_copy = shared.config.retr_by_copy;
            let work = async {
                let sent = if by_copy {
                    file.seek(SeekFrom::Start(offset)).await?;
                    overlap::io::copy(&mut *file, &mut data).await?
                } else {
                    file.send_to(&data, offset, len - offset).await?
                };
                data.close().await?;
                Ok(sent)
            };
            race(work, cancelled).await
        }
        Job::Stor { dest } => store(&mut data, &dest, cancelled).await,
    };
    if matches!(out, Outcome::Aborted) {
        shared.aborted.set(shared.aborted.get() + 1);
    }
    out
}

/// `work` unless the cancel signal (or the sender's drop) comes first.
async fn race(
    work: impl std::future::Future<Output = io::Result<u64>>,
    mut cancelled: oneshot::Receiver<()>,
) -> Outcome {
    // By bare name, `select!` borrows a future (so a loop can poll it again): it must be
    // pinned first, where tokio's moves it in.
    let mut work = std::pin::pin!(work);
    overlap::select! {
        r = work => match r {
            Ok(n) => Outcome::Done(n),
            Err(e) => Outcome::Failed(e),
        },
        _ = cancelled => Outcome::Aborted,
    }
}

/// The upload into `.name.part-N` beside `dest`, renamed over `dest` once whole; the
/// temporary file removed on any other end.
async fn store(
    data: &mut TcpStream,
    dest: &std::path::Path,
    cancelled: oneshot::Receiver<()>,
) -> Outcome {
    let name = dest.file_name().unwrap().to_string_lossy();
    let tmp = dest.with_file_name(format!(".{name}.part-{}", next_upload()));
    // Made before the race: a `File::create` dropped mid-way still runs to its end on the
    // pool, and would leave the file behind after the clean-up below.
    let mut file = match File::create(&tmp).await {
        Ok(f) => f,
        Err(e) => return Outcome::Local(e),
    };
    let work = async {
        let n = overlap::io::copy(data, &mut file).await?;
        Ok(n)
    };
    let out = race(work, cancelled).await;
    let out = match out {
        Outcome::Done(n) => match file.flush().await {
            Ok(()) => {
                drop(file);
                match fs::rename(&tmp, dest).await {
                    Ok(()) => return Outcome::Done(n),
                    Err(e) => Outcome::Local(e),
                }
            }
            Err(e) => Outcome::Local(e),
        },
        other => other,
    };
    let _ = fs::remove_file(&tmp).await;
    out
}
