//! [`OpenOptions`]: how to open a [`File`].

use std::fs as stdfs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::with_path;
use crate::file::File;
use crate::job::run_unless_dropped_queued;
use crate::positional_file::PositionalFile;

/// Options for opening a [`File`], the same as [`std::fs::OpenOptions`]; only
/// [`open`](OpenOptions::open) is async (it runs on the pool).
///
/// ```
/// use overlap::fs::OpenOptions;
/// # let path = std::env::temp_dir().join(format!("overlap-doc-open-{}", std::process::id()));
/// overlap::block_on(async {
///     let file = OpenOptions::new().create(true).append(true).open(&path).await?;
///     # drop(file);
///     # std::fs::remove_file(&path)?;
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(stdfs::OpenOptions);

impl OpenOptions {
    /// Options with every flag off; set at least `read`, `write` or `append`.
    pub fn new() -> OpenOptions {
        OpenOptions(stdfs::OpenOptions::new())
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Open for appending: every write goes to the end of the file (`O_APPEND`).
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate an existing file to length 0 (needs `write`).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it is missing (needs `write` or `append`).
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing with [`AlreadyExists`](io::ErrorKind::AlreadyExists) if it
    /// exists (`O_CREAT | O_EXCL`).
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// The permission bits of a newly created file, before the umask. Default `0o666`.
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.0.mode(mode);
        self
    }

    /// Extra `open(2)` flags, such as `libc::O_NOFOLLOW`.
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.0.custom_flags(flags);
        self
    }

    /// Opens `path` with these options, in one job. Errors name the path:
    /// `failed to open /x/y: No such file or directory (os error 2)`.
    ///
    /// Dropped while its job still waits for a pool thread, the open never happens (no file
    /// is created); dropped once the job started, it completes in the background and the
    /// `File` it opened is closed (see the crate's docs on cancellation).
    ///
    /// A FIFO's open waits until the other end is opened, as std's and tokio's do: on a
    /// pool thread, for good if nobody comes, and dropping the future does not end it. A
    /// server opening paths its clients name (a file server, whose directory may hold a
    /// FIFO) adds `custom_flags(libc::O_NONBLOCK)`, which a regular file ignores: a FIFO's
    /// open for reading then returns at once, and the `File`'s
    /// [`metadata`](File::metadata) says what it is (see `tests/fs_liveness.rs`).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let (std, path) = self.open_std(path.as_ref()).await?;
        Ok(File::from_parts(std, Some(path)))
    }

    /// Opens `path` with these options as a [`PositionalFile`], for reads and writes at
    /// offsets from many tasks at once; otherwise as [`open`](OpenOptions::open).
    ///
    /// ```
    /// use overlap::fs::OpenOptions;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-open-positional-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let file = OpenOptions::new()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open_positional(&path).await?;
    ///     file.write_all_at(b"page", 4096).await?;
    ///     assert_eq!(file.metadata().await?.len(), 4100);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn open_positional(&self, path: impl AsRef<Path>) -> io::Result<PositionalFile> {
        let (std, path) = self.open_std(path.as_ref()).await?;
        Ok(PositionalFile::from_parts(std, Some(path)))
    }

    /// The open itself, on the pool: the std file and the path its errors will name.
    async fn open_std(&self, path: &Path) -> io::Result<(stdfs::File, Arc<Path>)> {
        let path: Arc<Path> = path.into();
        let (opts, p) = (self.0.clone(), path.clone());
        let open = move || opts.open(&p).map_err(|e| with_path(e, "open", &p));
        Ok((run_unless_dropped_queued(open).await?, path))
    }
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl From<stdfs::OpenOptions> for OpenOptions {
    fn from(opts: stdfs::OpenOptions) -> OpenOptions {
        OpenOptions(opts)
    }
}
