//! The user's static-file server (see the test file's docs): `serve` a directory on a
//! listener, a task per connection, kept alive between requests.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, File};
use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, SeekFrom};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinSet;
use overlap::time::sleep;

/// The longest request head the server reads.
const HEAD_LIMIT: u64 = 8 << 10;

/// How each connection's task ended, in the order they ended.
pub type Log = Rc<RefCell<Vec<io::Result<()>>>>;

/// Serves `root` on `listener`, one task per connection, until aborted (which aborts the
/// connections' tasks too, held in a `JoinSet`).
pub async fn serve(listener: TcpListener, root: PathBuf, log: Log) {
    let root = Rc::new(fs::canonicalize(&root).await.unwrap());
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(_) => {
                // Out of fds, say: as the docs advise, wait a little rather than spin.
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (root, log) = (root.clone(), log.clone());
        connections.spawn(async move {
            let ended = connection(conn, &root).await;
            log.borrow_mut().push(ended);
        });
    }
}

struct Request {
    method: String,
    target: String,
    range: Option<String>,
    keep_alive: bool,
}

async fn connection(conn: TcpStream, root: &Path) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(&conn);
    loop {
        let req = match read_request(&mut reader).await? {
            Some(Ok(req)) => req,
            Some(Err(status)) => return answer(&conn, status, "", false, &[]).await,
            None => return Ok(()),
        };
        respond(&conn, root, &req).await?;
        if !req.keep_alive {
            return Ok(());
        }
    }
}

/// The next request's head; `None` at a clean end of the connection, `Some(Err(status))`
/// for one the server refuses.
async fn read_request(r: &mut BufReader<&TcpStream>) -> io::Result<Option<Result<Request, u16>>> {
    let mut head = r.take(HEAD_LIMIT);
    let mut line = String::new();
    if head.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(Some(Err(400)));
    };
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        range: None,
        keep_alive: version == "HTTP/1.1",
    };
    loop {
        line.clear();
        if head.read_line(&mut line).await? == 0 || !line.ends_with('\n') {
            return Ok(Some(Err(431))); // too long, or cut short
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(Some(Ok(req)));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Ok(Some(Err(400)));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("range") {
            req.range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            req.keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
}

/// Where `target` lies under `root`, or the status that refuses it.
async fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    let path = target.split('?').next().unwrap_or_default();
    let Some(rel) = path.strip_prefix('/') else {
        return Err(400);
    };
    if rel.split('/').any(|seg| seg == "..") {
        return Err(403);
    }
    match fs::canonicalize(root.join(rel)).await {
        Ok(p) if p.starts_with(root) => Ok(p),
        Ok(_) => Err(403), // a symbolic link out of the root
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(404),
        Err(_) => Err(403),
    }
}

async fn respond(conn: &TcpStream, root: &Path, req: &Request) -> io::Result<()> {
    let keep = req.keep_alive;
    if req.method != "GET" {
        return answer(conn, 405, "", keep, &[]).await;
    }
    let path = match resolve(root, &req.target).await {
        Ok(p) => p,
        Err(status) => return answer(conn, status, "", keep, &[]).await,
    };
    if fs::metadata(&path).await?.is_dir() {
        let listing = list(&path).await?;
        return answer(conn, 200, "", keep, listing.as_bytes()).await;
    }
    let mut file = match File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return answer(conn, 404, "", keep, &[]).await
        }
        Err(e) => return Err(e),
    };
    let size = file.metadata().await?.len();
    let (status, start, len, extra) = match req.range.as_deref().map(|r| byte_range(r, size)) {
        None => (200, 0, size, String::new()),
        Some(Some((a, b))) => (
            206,
            a,
            b - a + 1,
            format!("Content-Range: bytes {a}-{b}/{size}\r\n"),
        ),
        Some(None) => {
            let extra = format!("Content-Range: bytes */{size}\r\n");
            return answer(conn, 416, &extra, keep, &[]).await;
        }
    };
    head(conn, status, &extra, keep, len).await?;
    let sent = if req.target.ends_with("?copy") {
        // The way a tokio user sends it: through a buffer, with `io::copy`.
        file.seek(SeekFrom::Start(start)).await?;
        io::copy((&mut file).take(len), &mut { conn }).await?
    } else {
        file.send_to(conn, start, len).await?
    };
    if sent < len {
        // The length went out in the head: all the server can do is close.
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} shrank while sent: {sent} of {len} bytes",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as first and last byte, or `None` if it does not
/// fit a file of `size` bytes.
fn byte_range(spec: &str, size: u64) -> Option<(u64, u64)> {
    let (a, b) = spec.strip_prefix("bytes=")?.split_once('-')?;
    let (first, last) = match (a, b) {
        ("", n) => (size.checked_sub(n.parse().ok()?)?, size.checked_sub(1)?),
        (a, "") => (a.parse().ok()?, size.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (first <= last).then_some((first, last))
}

/// The names in `dir`, sorted, one a line, a directory's with a `/` after it.
async fn list(dir: &Path) -> io::Result<String> {
    let mut names = Vec::new();
    let mut entries = fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().await?.is_dir() {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    Ok(names.iter().map(|n| format!("{n}\n")).collect())
}

async fn head(conn: &TcpStream, status: u16, extra: &str, keep: bool, len: u64) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Request Header Fields Too Large",
    };
    let connection = if keep { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nConnection: {connection}\r\n{extra}\r\n"
    );
    let mut w = conn;
    w.write_all(head.as_bytes()).await
}

async fn answer(
    conn: &TcpStream,
    status: u16,
    extra: &str,
    keep: bool,
    body: &[u8],
) -> io::Result<()> {
    head(conn, status, extra, keep, body.len() as u64).await?;
    let mut w = conn;
    w.write_all(body).await
}
