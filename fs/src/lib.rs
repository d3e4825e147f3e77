//! Files and directories for overlap, with the blocking work on the runtime's pool.
//!
//! Regular files cannot join epoll (`epoll_ctl` refuses them with `EPERM`), so every
//! blocking file operation here runs as a job on the runtime's blocking pool
//! ([`overlap_runtime::spawn_blocking`]); the event-loop thread never blocks on a file. A
//! job's completion wakes the loop through the runtime's cross-thread wake path.
//!
//! Trips to the pool cost a few microseconds each, so the work is cut into coarse jobs:
//!
//! - the free functions ([`read`], [`write`](fn@write), [`copy`], [`metadata`], ...) are one job each,
//!   whole std call included (`read` opens, sizes, reads and closes in one job);
//! - [`File`] reads ahead in chunks of 64 KiB to 2 MiB and batches writes (up to 1 MiB);
//!   [`File::set_max_buf_size`] moves those limits. Its writes are write-behind: another
//!   handle on the path sees the bytes once `flush` has returned (see [`File`]);
//! - [`read_dir`] fetches entries 256 at a time.
//! - [`PositionalFile`] reads and writes at offsets only (`pread`/`pwrite`), one job per
//!   call, any number in flight at once on one shared file;
//! - [`File::send_to`] sends a file's bytes to a socket or pipe with `sendfile`, one pool
//!   job per socket buffer's worth, without copying them through user memory.
//!
//! Names and error kinds follow `std::fs`; messages also name the path (`failed to open
//! /x/y: No such file or directory (os error 2)`). Such an error wraps std's, so its
//! `raw_os_error()` is `None`: `overlap::io::raw_os_error(&err)` reads the code. An
//! operation that never ran (no pool thread could be started for its job, the runtime
//! shut down with the job still queued, or it was polled outside any runtime, where there
//! is no pool) fails instead with an `Other` error that says so, naming no path; a [`File`]
//! or [`ReadDir`] goes on from where it was in the next runtime. (A [`File`]'s accepted
//! bytes are the exception: outside a runtime they are written on the polling thread.)
//!
//! # Cancellation
//! Dropping an fs future before it completes does not stop its job: it runs to the end in
//! the background and its result is discarded, so a dropped `write` may still write its
//! file and a dropped `remove_file` may still remove it. Opens are the exception while
//! queued: a [`File::open`], [`File::create`], [`File::create_new`] or
//! [`OpenOptions::open`] dropped before its job started (waiting for a busy pool) never
//! runs; once started, it may still create its file (closing the `File` it opened). A
//! program that removes its temporary files when a timeout cuts it short names them before
//! creating them and removes them then: that leaves none behind, save from a create
//! running on a pool thread at that very moment, which a later sweep catches. Dropping the runtime drops the jobs
//! still queued (they never run, and a future awaited after that fails with an error that
//! says so; a [`ReadDir`] fetches such a batch again on its next call) and lets running ones
//! finish. A [`File`]'s writes are the exception: the bytes a
//! `write` accepted are still written, and the runtime's drop waits for them (up to 10 s).
//!
//! A job's result goes straight to the task awaiting it, in whichever runtime: a [`File`]
//! whose operation was left in flight under one `block_on` carries on under the next, also
//! while the first runtime lives on undriven. Inside a blocking job, these functions run
//! on the job's runtime's pool (through [`Handle::current`](overlap_runtime::Handle::current)),
//! each taking a pool thread of its own while the blocking job waits for it: with every pool
//! thread held by such a wait (`max_blocking_threads(1)`, say), the wait never ends.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("overlap-doc-lib-{}", std::process::id()));
//! overlap::block_on(async {
//!     overlap::fs::create_dir_all(&dir).await?;
//!     let path = dir.join("notes.txt");
//!     overlap::fs::write(&path, "one job").await?;
//!     assert_eq!(overlap::fs::read_to_string(&path).await?, "one job");
//!     let err = overlap::fs::read(dir.join("missing")).await.unwrap_err();
//!     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
//!     assert!(err.to_string().starts_with("failed to read "));
//!     overlap::fs::remove_dir_all(&dir).await
//! }).unwrap();
//! ```

mod at_offset;
mod dir_builder;
mod error;
mod file;
mod job;
mod open_options;
mod ops;
mod positional_file;
mod read_dir;
mod read_dir_stream;
mod remove_tree;
mod send_range;
mod sys;

pub use dir_builder::DirBuilder;
pub use file::File;
pub use open_options::OpenOptions;
pub use ops::{
    canonicalize, copy, create_dir, create_dir_all, hard_link, metadata, read, read_link,
    read_to_string, remove_dir, remove_dir_all, remove_file, rename, set_permissions, symlink,
    symlink_metadata, try_exists, write,
};
pub use positional_file::PositionalFile;
pub use read_dir::{read_dir, DirEntry, ReadDir};
pub use read_dir_stream::ReadDirStream;
pub use std::fs::{FileTimes, FileType, Metadata, Permissions};
