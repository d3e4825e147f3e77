//! The pidfile: the daemon's pid and a newline, written to a temporary file and renamed
//! into place (a reader never sees half of it), refused while it names a live process,
//! replaced when the process it names is gone (a crash left it), and removed at exit if it
//! still names us.

use std::io;
use std::path::{Path, PathBuf};

/// A pidfile this process wrote.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    pid: u32,
}

/// Whether process `pid` exists (`kill(pid, 0)`; `EPERM` means it does, someone else's).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 takes no pointers and sends nothing.
    let res = unsafe { libc::kill(pid, 0) };
    res == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Pidfile {
    /// Writes `pid` to `path`; `AlreadyExists` if the file names a running process.
    pub async fn create(path: &Path, pid: u32) -> io::Result<Pidfile> {
        match overlap::fs::read_to_string(path).await {
            Ok(text) => match text.trim().parse::<i32>() {
                Ok(old) if old > 0 && alive(old) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: process {old} is running", path.display()),
                    ));
                }
                // A process gone, or garbage: stale, replaced below.
                _ => {}
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let tmp = path.with_extension("pid-new");
        overlap::fs::write(&tmp, format!("{pid}\n")).await?;
        overlap::fs::rename(&tmp, path).await?;
        Ok(Pidfile {
            path: path.to_owned(),
            pid,
        })
    }

    /// Removes the file, unless another process has written its pid there since.
    pub async fn remove(self) -> io::Result<()> {
        let text = overlap::fs::read_to_string(&self.path).await?;
        if text.trim() == self.pid.to_string() {
            overlap::fs::remove_file(&self.path).await?;
        }
        Ok(())
    }
}
