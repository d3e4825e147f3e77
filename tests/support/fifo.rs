//! FIFOs for the tests that need a write to block: one made at a path, and one drained
//! slowly by a thread, with the check that every byte written has left the writer.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::TempDir;

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A FIFO whose reader thread takes 4 KiB every 2 ms, so a big write job into it is still
/// running when the test acts (drops a runtime, say).
pub struct SlowFifo {
    path: PathBuf,
    /// Bytes read so far, counted under the lock each read holds, so that a snapshot falls
    /// between two reads.
    received: Arc<Mutex<usize>>,
    reader: std::thread::JoinHandle<()>,
}

impl SlowFifo {
    /// Makes the FIFO in `dir`, starts its reader, and opens its write end.
    pub fn open(dir: &TempDir) -> (SlowFifo, std::fs::File) {
        let path = dir.join("fifo");
        mkfifo(&path);
        let received = Arc::new(Mutex::new(0usize));
        let reader = std::thread::spawn({
            let (path, received) = (path.clone(), received.clone());
            move || {
                let mut fifo = std::fs::File::open(&path).unwrap();
                let mut buf = [0u8; 4096];
                loop {
                    std::thread::sleep(Duration::from_millis(2));
                    let mut count = received.lock().unwrap();
                    match fifo.read(&mut buf).unwrap() {
                        0 => return,
                        n => *count += n,
                    }
                }
            }
        });
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        (
            SlowFifo {
                path,
                received,
                reader,
            },
            writer,
        )
    }

    /// Asserts that `total` bytes have left the writing process now (read, or waiting in
    /// the pipe), then waits for the reader to see the end (every writer closed).
    pub fn assert_all_left(self, total: usize) {
        let count = self.received.lock().unwrap();
        let mut in_pipe: libc::c_int = 0;
        let probe = std::os::unix::fs::OpenOptionsExt::custom_flags(
            std::fs::OpenOptions::new().read(true),
            libc::O_NONBLOCK,
        )
        .open(&self.path)
        .unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&probe);
        // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
        assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut in_pipe) }, 0);
        assert_eq!(*count + in_pipe as usize, total, "bytes still unwritten");
        drop(count);
        self.reader.join().unwrap();
    }
}
