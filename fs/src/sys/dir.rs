//! Directories by fd, for [`remove_dir_all`](crate::remove_dir_all): one opened inside
//! another without following a symlink, listed with `readdir`, entries unlinked in it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use overlap_runtime::syscall;

/// An open directory stream.
pub(crate) struct Dir {
    /// # Invariant: a stream from `fdopendir`, not yet closed; it owns its fd.
    stream: NonNull<libc::DIR>,
}

/// What the listing says an entry is, from `d_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    /// Anything else: a file, a symlink, a FIFO, a socket, a device.
    NotDir,
    /// The file system does not say (`DT_UNKNOWN`).
    Unknown,
}

impl Dir {
    /// Opens `name` as a directory: inside `parent`, or as a path (relative to the working
    /// directory) when `parent` is `None`. A final symlink is not followed (`ELOOP`, or
    /// `ENOTDIR` on some kernels), and anything but a directory is `ENOTDIR`.
    pub(crate) fn open(parent: Option<&Dir>, name: &CStr) -> io::Result<Dir> {
        let at = parent.map_or(libc::AT_FDCWD, Dir::fd);
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: `name` is NUL-terminated and outlives the call; `at` is AT_FDCWD or the
        // open fd of `parent`, which the borrow keeps open.
        let fd = syscall!(openat(at, name.as_ptr(), flags))?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `fd` is an open directory fd; on success the stream owns it.
        match NonNull::new(unsafe { libc::fdopendir(fd) }) {
            Some(stream) => {
                std::mem::forget(owned);
                Ok(Dir { stream })
            }
            // `owned` closes the fd.
            None => Err(io::Error::last_os_error()),
        }
    }

    fn fd(&self) -> RawFd {
        // SAFETY: the stream is open (the field's invariant).
        unsafe { libc::dirfd(self.stream.as_ptr()) }
    }

    /// The next entry's name and kind (never `.` nor `..`), `None` at the end.
    pub(crate) fn next_entry(&mut self) -> Option<io::Result<(CString, Kind)>> {
        loop {
            // readdir tells its end from an error only by errno, which it leaves alone at
            // the end: clear it first.
            // SAFETY: errno is this thread's, always valid to write.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: the stream is open (the field's invariant) and used by this thread
            // only, through `&mut self`.
            let entry = unsafe { libc::readdir64(self.stream.as_ptr()) };
            if entry.is_null() {
                let err = io::Error::last_os_error();
                return (err.raw_os_error() != Some(0)).then_some(Err(err));
            }
            // SAFETY: a non-null entry from readdir is valid until the next readdir on this
            // stream; `d_name` is NUL-terminated. The name is copied before that.
            let (name, d_type) = unsafe {
                let entry = &*entry;
                (CStr::from_ptr(entry.d_name.as_ptr()), entry.d_type)
            };
            if name == c"." || name == c".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_DIR => Kind::Dir,
                libc::DT_UNKNOWN => Kind::Unknown,
                _ => Kind::NotDir,
            };
            return Some(Ok((name.to_owned(), kind)));
        }
    }

    /// The device and inode numbers of this directory (`fstat`).
    pub(crate) fn id(&self) -> io::Result<(u64, u64)> {
        // SAFETY: a zeroed stat is a valid buffer for fstat to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the fd is open (the stream's) and `st` is a valid, writable buffer.
        syscall!(fstat(self.fd(), &mut st))?;
        Ok((st.st_dev, st.st_ino))
    }

    /// Removes the entry `name` of this directory: an empty directory with `dir`, anything
    /// else without (`unlinkat`).
    pub(crate) fn unlink(&self, name: &CStr, dir: bool) -> io::Result<()> {
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: the fd is open (the stream's) and `name` is NUL-terminated and outlives
        // the call.
        syscall!(unlinkat(self.fd(), name.as_ptr(), flags)).map(drop)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the stream is open (the field's invariant) and closed only here, once.
        unsafe { libc::closedir(self.stream.as_ptr()) };
    }
}
