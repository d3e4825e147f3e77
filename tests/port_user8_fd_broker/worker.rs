//! The unprivileged side: asks the broker for fds and reads its status lines.

use std::io;
use std::os::fd::OwnedFd;

use overlap::io::AsyncWriteExt;
use overlap::net::UnixStream;

/// One answer: `Ok(fds)` for `OK n` with its n fds, `Err(reason)` for `ERR reason`.
pub type Answer = Result<Vec<OwnedFd>, String>;

/// Sends `req` and reads the answer line with the fds that came with it.
pub async fn ask(conn: &UnixStream, req: &str) -> io::Result<Answer> {
    let mut writer = conn;
    writer.write_all(format!("{req}\n").as_bytes()).await?;
    read_answer(conn).await
}

/// Reads one status line, collecting the fds sent with its bytes.
pub async fn read_answer(conn: &UnixStream) -> io::Result<Answer> {
    let (mut line, mut fds) = (Vec::new(), Vec::new());
    let mut byte = [0u8; 64];
    while !line.ends_with(b"\n") {
        // One byte at a time would be slow; the broker answers one line per request, so
        // reading up to the newline never takes the next answer's bytes.
        let n = conn.recv_with_fds(&mut byte, &mut fds).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        line.extend_from_slice(&byte[..n]);
    }
    let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
    match line.split_once(' ') {
        Some(("OK", n)) if n.parse() == Ok(fds.len()) => Ok(Ok(fds)),
        Some(("ERR", why)) if fds.is_empty() => Ok(Err(why.to_string())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad answer {line:?} with {} fds", fds.len()),
        )),
    }
}
