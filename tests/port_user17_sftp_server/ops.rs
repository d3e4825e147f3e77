//! One request's work: its fields parsed, the path confined, the file or directory
//! handled, and the result as a reply or a status. Open files are `PositionalFile`s
//! shared by every request on their handle, so 64 reads of one handle run at once.

use std::io;
use std::rc::Rc;

use overlap::fs::{OpenOptions, PositionalFile, ReadDir};
use overlap::sync::Mutex;

use super::proto::*;
use super::server::{Session, Shared};

/// An open handle.
#[derive(Clone)]
pub enum Handle {
    File(PositionalFile),
    Dir(Rc<Mutex<ReadDir>>),
}

type Res = Result<Reply, Status>;

fn ok() -> Res {
    Ok(Reply::Status(Status::new(OK, "ok")))
}

fn io_err(e: io::Error) -> Status {
    // EISDIR, ENOTDIR, EEXIST, ENOTEMPTY, EBADF...: FAILURE, the message says which.
    Status::from_io(&e)
}

pub async fn handle(ty: u8, body: &[u8], sess: &Session, shared: &Rc<Shared>) -> Res {
    let mut f = Fields::new(body);
    let jail = &shared.jail;
    match ty {
        OPEN => {
            let path = f.string("path")?;
            let flags = f.u32("flags")?;
            f.end()?;
            open(sess, shared, &path, flags).await
        }
        CLOSE => {
            let h = f.handle()?;
            f.end()?;
            match sess.handles.borrow_mut().remove(&h) {
                Some(_) => {
                    sess.reserved.set(sess.reserved.get() - 1);
                    let s = &shared.stats;
                    s.open_handles.set(s.open_handles.get() - 1);
                    ok()
                }
                None => Err(bad_handle(h)),
            }
        }
        READ => {
            let h = f.handle()?;
            let (off, len) = (f.u64("offset")?, f.u32("length")?);
            f.end()?;
            let file = file_of(sess, h)?;
            // A reply must fit in a packet.
            let len = (len as usize).min(shared.cfg.max_packet as usize - 64);
            let data = file.read_vec_at(len, off).await.map_err(io_err)?;
            if data.is_empty() {
                return Err(Status::new(EOF, format!("end of file (offset {off})")));
            }
            Ok(Reply::Data(data))
        }
        WRITE => {
            let h = f.handle()?;
            let off = f.u64("offset")?;
            let data = f.bytes("data")?.to_vec();
            f.end()?;
            let file = file_of(sess, h)?;
            file.write_vec_at(data, off).await.map_err(io_err)?;
            ok()
        }
        FSTAT => {
            let h = f.handle()?;
            f.end()?;
            let meta = file_of(sess, h)?.metadata().await.map_err(io_err)?;
            Ok(Reply::Attrs(Attrs::from_meta(&meta)))
        }
        STAT => {
            let path = f.string("path")?;
            f.end()?;
            let real = jail.resolve(&path).await.map_err(io_err)?;
            let meta = overlap::fs::metadata(&real).await.map_err(io_err)?;
            Ok(Reply::Attrs(Attrs::from_meta(&meta)))
        }
        OPENDIR => {
            let path = f.string("path")?;
            f.end()?;
            let real = jail.resolve(&path).await.map_err(io_err)?;
            reserve(sess, shared)?;
            match overlap::fs::read_dir(&real).await {
                Ok(dir) => Ok(Reply::Handle(insert(
                    sess,
                    shared,
                    Handle::Dir(Rc::new(Mutex::new(dir))),
                ))),
                Err(e) => {
                    sess.reserved.set(sess.reserved.get() - 1);
                    Err(io_err(e))
                }
            }
        }
        READDIR => {
            let h = f.handle()?;
            f.end()?;
            let dir = match sess.handles.borrow().get(&h) {
                Some(Handle::Dir(d)) => d.clone(),
                Some(Handle::File(_)) => {
                    return Err(Status::new(FAILURE, format!("handle {h} is a file")))
                }
                None => return Err(bad_handle(h)),
            };
            let mut dir = dir.lock().await;
            let mut names = Vec::new();
            while names.len() < shared.cfg.readdir_batch {
                let Some(entry) = dir.next_entry().await.map_err(io_err)? else {
                    break;
                };
                let meta = entry.metadata().await.map_err(io_err)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                names.push((name, Attrs::from_meta(&meta)));
            }
            if names.is_empty() {
                return Err(Status::new(EOF, "no more entries"));
            }
            Ok(Reply::Name(names))
        }
        REMOVE | RMDIR | MKDIR => {
            let path = f.string("path")?;
            f.end()?;
            let real = jail.resolve_parent(&path).await.map_err(io_err)?;
            match ty {
                REMOVE => overlap::fs::remove_file(&real).await,
                RMDIR => overlap::fs::remove_dir(&real).await,
                _ => overlap::fs::create_dir(&real).await,
            }
            .map_err(io_err)?;
            ok()
        }
        RENAME => {
            let (from, to) = (f.string("old path")?, f.string("new path")?);
            f.end()?;
            let from = jail.resolve_parent(&from).await.map_err(io_err)?;
            let to = jail.resolve_parent(&to).await.map_err(io_err)?;
            // SFTP v3: renaming onto an existing name fails.
            if overlap::fs::symlink_metadata(&to).await.is_ok() {
                let msg = format!("{} exists", jail.client_path(&to));
                return Err(Status::new(FAILURE, msg));
            }
            overlap::fs::rename(&from, &to).await.map_err(io_err)?;
            ok()
        }
        REALPATH => {
            let path = f.string("path")?;
            f.end()?;
            let real = jail.resolve(&path).await.map_err(io_err)?;
            let attrs = match overlap::fs::metadata(&real).await {
                Ok(m) => Attrs::from_meta(&m),
                Err(_) => Attrs {
                    size: 0,
                    perm: 0,
                    is_dir: false,
                },
            };
            Ok(Reply::Name(vec![(jail.client_path(&real), attrs)]))
        }
        _ => Err(Status::new(
            OP_UNSUPPORTED,
            format!("unknown packet type {ty}"),
        )),
    }
}

fn bad_handle(h: u32) -> Status {
    Status::new(BAD_MESSAGE, format!("no such handle {h}"))
}

fn file_of(sess: &Session, h: u32) -> Result<PositionalFile, Status> {
    match sess.handles.borrow().get(&h) {
        Some(Handle::File(f)) => Ok(f.clone()),
        Some(Handle::Dir(_)) => Err(Status::new(FAILURE, format!("handle {h} is a directory"))),
        None => Err(bad_handle(h)),
    }
}

/// Takes a slot for a handle about to be opened, or refuses at the limit.
fn reserve(sess: &Session, shared: &Shared) -> Result<(), Status> {
    let max = shared.cfg.max_handles;
    if sess.reserved.get() >= max {
        return Err(Status::new(
            FAILURE,
            format!("too many open handles (max {max})"),
        ));
    }
    sess.reserved.set(sess.reserved.get() + 1);
    Ok(())
}

fn insert(sess: &Session, shared: &Shared, h: Handle) -> u32 {
    let id = sess.next_handle.get();
    sess.next_handle.set(id + 1);
    sess.handles.borrow_mut().insert(id, h);
    let s = &shared.stats;
    s.open_handles.set(s.open_handles.get() + 1);
    id
}

async fn open(sess: &Session, shared: &Shared, path: &str, flags: u32) -> Res {
    if flags & (F_READ | F_WRITE) == 0 {
        return Err(Status::new(
            BAD_MESSAGE,
            "open flags ask for neither read nor write",
        ));
    }
    let known = F_READ | F_WRITE | F_CREAT | F_TRUNC | F_EXCL;
    if flags & !known != 0 {
        let msg = format!("open flags {:#x} unsupported", flags & !known);
        return Err(Status::new(OP_UNSUPPORTED, msg));
    }
    let real = shared.jail.resolve(path).await.map_err(io_err)?;
    reserve(sess, shared)?;
    let opened = async {
        let file = OpenOptions::new()
            .read(flags & F_READ != 0)
            .write(flags & F_WRITE != 0)
            .create(flags & F_CREAT != 0)
            .truncate(flags & F_TRUNC != 0)
            .create_new(flags & F_CREAT != 0 && flags & F_EXCL != 0)
            .open_positional(&real)
            .await
            .map_err(io_err)?;
        // Linux opens a directory read-only without complaint; a file handle on one is
        // no use to anyone.
        if file.metadata().await.map_err(io_err)?.is_dir() {
            return Err(Status::new(FAILURE, format!("{path:?} is a directory")));
        }
        Ok(file)
    };
    match opened.await {
        Ok(file) => Ok(Reply::Handle(insert(sess, shared, Handle::File(file)))),
        Err(s) => {
            sess.reserved.set(sess.reserved.get() - 1);
            Err(s)
        }
    }
}
