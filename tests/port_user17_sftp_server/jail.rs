//! Confinement to the served root: a client's path ("/a/b", "a/b", with `.` and `..`) is
//! taken lexically first (a `..` above the root is refused), then resolved on disk, and a
//! result whose real path (every symlink followed) leaves the root is refused with
//! `PERMISSION_DENIED`. Checked by path, then used by path: a symlink swapped in between
//! (a local user racing the server) is not caught; a tokio server has the same window
//! (no `openat2(RESOLVE_BENEATH)` in either).

use std::io;
use std::path::{Component, Path, PathBuf};

pub struct Jail {
    /// The root, canonical.
    root: PathBuf,
}

fn refused(path: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("{path:?}: {why}"))
}

impl Jail {
    pub async fn new(root: &Path) -> io::Result<Jail> {
        Ok(Jail {
            root: overlap::fs::canonicalize(root).await?,
        })
    }

    /// The path under the root that `path` names, `.` and `..` applied by name.
    fn lexical(&self, path: &str) -> io::Result<PathBuf> {
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(p) => parts.push(p),
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(refused(path, "goes above the root"));
                    }
                }
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        Ok(parts.iter().fold(self.root.clone(), |p, c| p.join(c)))
    }

    fn check_inside(&self, path: &str, real: PathBuf) -> io::Result<PathBuf> {
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(refused(path, "leads outside the root"))
        }
    }

    /// `path`'s real location, every symlink followed; for a name that does not exist
    /// yet, its real parent joined with the name (so it can be created), unless the name
    /// is a dangling symlink (creating through it would land wherever it points).
    pub async fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        let full = self.lexical(path)?;
        match overlap::fs::canonicalize(&full).await {
            Ok(real) => self.check_inside(path, real),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if overlap::fs::symlink_metadata(&full).await.is_ok() {
                    return Err(refused(path, "is a dangling symlink"));
                }
                self.resolve_parent(path).await
            }
            Err(e) => Err(e),
        }
    }

    /// `path`'s real parent joined with its last name, which is not followed: what
    /// REMOVE, RENAME, MKDIR and RMDIR act on (a symlink itself, not its target).
    pub async fn resolve_parent(&self, path: &str) -> io::Result<PathBuf> {
        let full = self.lexical(path)?;
        let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
            return Err(refused(path, "is the root itself"));
        };
        if full == self.root {
            return Err(refused(path, "is the root itself"));
        }
        let parent = overlap::fs::canonicalize(parent).await?;
        self.check_inside(path, parent.join(name))
    }

    /// How a client sees a real path under the root: "/" and the rest.
    pub fn client_path(&self, real: &Path) -> String {
        let rel = real.strip_prefix(&self.root).unwrap_or(Path::new(""));
        format!("/{}", rel.display())
    }
}
