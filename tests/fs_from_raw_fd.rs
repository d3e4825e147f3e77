//! `fs::File: FromRawFd`, as tokio's: the `File` owns the fd, starts at its offset, and
//! closes it on drop.

mod support;

use std::io::{Seek, SeekFrom};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{wait_until, TempDir};

fn fd_is_open(fd: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

#[overlap::test]
async fn from_raw_fd_owns_the_fd_at_its_offset() {
    let dir = TempDir::new("from-raw-fd");
    let path = dir.join("f");
    std::fs::write(&path, b"skip:tail").unwrap();
    let mut std_file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .unwrap();
    std_file.seek(SeekFrom::Start(5)).unwrap();
    let fd = std_file.into_raw_fd();

    // SAFETY: `fd` was just released by `into_raw_fd`, open, and owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    let mut rest = String::new();
    file.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "tail", "reading starts at the fd's offset");
    file.write_all(b"+more").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"skip:tail+more");

    assert!(fd_is_open(fd));
    drop(file);
    // The last write job may let go of its handle just after reporting: allow for it.
    assert!(
        wait_until(Duration::from_secs(10), || !fd_is_open(fd)),
        "dropping the File closed the fd"
    );
}
