//! The user's object store (see the test file's docs): `serve` on a listener, one task per
//! connection, one request per connection.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, File};
use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinSet;
use overlap::time::{sleep, timeout};

/// The longest request head the server reads.
const HEAD_LIMIT: usize = 8 << 10;

/// How each connection's task ended, in the order they ended.
pub type Log = Rc<RefCell<Vec<io::Result<()>>>>;

/// Where objects live, and the store's limits.
pub struct Store {
    /// Finished objects, one file per key.
    pub objects: PathBuf,
    /// Uploads in progress, one temp file each.
    pub uploads: PathBuf,
    /// The largest body a PUT may bring.
    pub max_body: u64,
    /// How long one request may take, head to last byte of its answer.
    pub request_timeout: Duration,
    next_upload: Cell<u64>,
}

impl Store {
    /// A store under `root` (which exists), with its two directories created.
    pub async fn new(root: &Path, max_body: u64, request_timeout: Duration) -> Rc<Store> {
        let (objects, uploads) = (root.join("objects"), root.join("uploads"));
        fs::create_dir_all(&objects).await.unwrap();
        fs::create_dir_all(&uploads).await.unwrap();
        Rc::new(Store {
            objects,
            uploads,
            max_body,
            request_timeout,
            next_upload: Cell::new(0),
        })
    }
}

/// Serves `store` on `listener` until aborted (which aborts the connections' tasks too,
/// held in a `JoinSet`).
pub async fn serve(listener: TcpListener, store: Rc<Store>, log: Log) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(_) => {
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (store, log) = (store.clone(), log.clone());
        let conn = Conn {
            stream: conn,
            answered: Cell::new(false),
        };
        connections.spawn(async move {
            let ended = match timeout(store.request_timeout, connection(&conn, &store)).await {
                Ok(ended) => ended,
                Err(_) => {
                    // The upload's guard has removed its temp file. The client is told, if
                    // no answer had begun (the first draft wrote this after a GET's head
                    // too, and waited forever on a client that read nothing), and only as
                    // far as its socket takes it now: a timed-out client gets no more time.
                    if !conn.answered.get() {
                        let _ = conn.stream.try_write(STATUS_408);
                    }
                    Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out"))
                }
            };
            log.borrow_mut().push(ended);
        });
    }
}

/// A connection, and whether its answer has begun.
struct Conn {
    stream: TcpStream,
    answered: Cell<bool>,
}

const STATUS_408: &[u8] = b"HTTP/1.1 408 S\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

struct Head {
    method: String,
    key: String,
    content_length: Option<u64>,
    chunked: bool,
}

async fn connection(conn: &Conn, store: &Store) -> io::Result<()> {
    conn.stream.set_nodelay(true)?;
    let mut reader = BufReader::new(&conn.stream);
    let head = match read_head(&mut reader).await? {
        Ok(head) => head,
        Err(status) => return answer(conn, status, &[], b"").await,
    };
    let path = store.objects.join(&head.key);
    match head.method.as_str() {
        "PUT" => put(conn, &mut reader, store, &head, &path).await,
        "GET" => get(conn, &path).await,
        "DELETE" => match fs::remove_file(&path).await {
            Ok(()) => answer(conn, 204, &[], b"").await,
            Err(e) if e.kind() == io::ErrorKind::NotFound => answer(conn, 404, &[], b"").await,
            Err(e) => answer(conn, 500, &[], e.to_string().as_bytes()).await,
        },
        _ => answer(conn, 405, &[], b"").await,
    }
}

/// The request's head, or the status refusing it.
async fn read_head(r: &mut BufReader<&TcpStream>) -> io::Result<Result<Head, u16>> {
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        if raw.len() >= HEAD_LIMIT {
            return Ok(Err(431));
        }
        let n = (&mut *r)
            .take((HEAD_LIMIT - raw.len()) as u64)
            .read_until(b'\n', &mut raw)
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&raw), Ok(httparse::Status::Complete(_))) {
        return Ok(Err(400));
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Ok(Err(400));
    };
    let Some(key) = target.strip_prefix('/').filter(|k| valid_key(k)) else {
        return Ok(Err(400));
    };
    let mut head = Head {
        method: method.to_string(),
        key: key.to_string(),
        content_length: None,
        chunked: false,
    };
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) if head.content_length.is_none() => head.content_length = Some(n),
                _ => return Ok(Err(400)),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Ok(Err(501));
            }
            head.chunked = true;
        }
    }
    if head.chunked && head.content_length.is_some() {
        return Ok(Err(400));
    }
    Ok(Ok(head))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Removes an upload's temp file unless it was renamed into place: on an error, a refused
/// body, the client gone or the request's timeout dropping the task.
struct Upload {
    path: PathBuf,
    done: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a body's reading ended with, short of an I/O error.
enum Body {
    /// All of it, with its checksum.
    Complete(u64),
    /// More than the store takes.
    TooLarge,
    /// The file refused it (EFBIG, ENOSPC, EDQUOT).
    DiskRefused(io::Error),
}

async fn put(
    conn: &Conn,
    r: &mut BufReader<&TcpStream>,
    store: &Store,
    head: &Head,
    path: &Path,
) -> io::Result<()> {
    if head.content_length.is_some_and(|n| n > store.max_body) {
        return refuse(conn, r, 413, b"").await;
    }
    if head.content_length.is_none() && !head.chunked {
        return answer(conn, 411, &[], b"").await;
    }
    let n = store.next_upload.get();
    store.next_upload.set(n + 1);
    let mut upload = Upload {
        path: store.uploads.join(format!("{}.{n}.part", head.key)),
        done: false,
    };
    let mut file = File::create(&upload.path).await?;
    let body = if head.chunked {
        chunked_body(r, &mut file, store.max_body).await?
    } else {
        sized_body(r, &mut file, head.content_length.unwrap_or(0)).await?
    };
    let sum = match body {
        Body::Complete(sum) => sum,
        Body::TooLarge => return refuse(conn, r, 413, b"").await,
        Body::DiskRefused(e) => return refuse(conn, r, 507, e.to_string().as_bytes()).await,
    };
    if let Err(e) = file.sync_all().await {
        return match disk_refused(e) {
            Ok(e) => answer(conn, 507, &[], e.to_string().as_bytes()).await,
            Err(e) => Err(e),
        };
    }
    drop(file);
    fs::rename(&upload.path, path).await?;
    upload.done = true;
    let sum = format!("{sum:016x}");
    answer(conn, 201, &[("x-checksum", &sum)], b"").await
}

/// An error the disk gave for a write: `Ok` for one the client is told of with 507.
fn disk_refused(e: io::Error) -> io::Result<io::Error> {
    match e.kind() {
        io::ErrorKind::FileTooLarge | io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Ok(e)
        }
        _ => Err(e),
    }
}

/// The checksum: FNV-1a, 64 bits, computed as the bytes arrive.
pub fn fnv(mut sum: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        sum ^= b as u64;
        sum = sum.wrapping_mul(0x100_0000_01b3);
    }
    sum
}

/// The checksum's starting value.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Writes the buffered reader's bytes to `file` as they come, `len` of them.
async fn sized_body(r: &mut BufReader<&TcpStream>, file: &mut File, len: u64) -> io::Result<Body> {
    let mut sum = FNV_START;
    if let Some(refused) = copy_summed(r, file, len, &mut sum).await? {
        return Ok(refused);
    }
    if let Err(e) = file.flush().await {
        return disk_refused(e).map(Body::DiskRefused);
    }
    Ok(Body::Complete(sum))
}

/// Writes the next `len` bytes of the buffered reader to `file` as they come, folding them
/// into `sum`: `Some(Body::DiskRefused)` if the disk refused them, `None` once all are written.
async fn copy_summed(
    r: &mut BufReader<&TcpStream>,
    file: &mut File,
    len: u64,
    sum: &mut u64,
) -> io::Result<Option<Body>> {
    let mut left = len;
    while left > 0 {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = buf.len().min(left as usize);
        *sum = fnv(*sum, &buf[..n]);
        if let Err(e) = file.write_all(&buf[..n]).await {
            return disk_refused(e).map(|refused| Some(Body::DiskRefused(refused)));
        }
        r.consume_unpin(n);
        left -= n as u64;
    }
    Ok(None)
}

/// A chunked body, to `file`, no more than `max` bytes of it.
async fn chunked_body(
    r: &mut BufReader<&TcpStream>,
    file: &mut File,
    max: u64,
) -> io::Result<Body> {
    let mut total = 0u64;
    let mut sum = FNV_START;
    loop {
        let mut line = String::new();
        (&mut *r).take(64).read_line(&mut line).await?;
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            let mut end = String::new();
            (&mut *r).take(2).read_line(&mut end).await?;
            break;
        }
        total = total.saturating_add(size);
        if total > max {
            return Ok(Body::TooLarge);
        }
        if let Some(refused) = copy_summed(r, file, size, &mut sum).await? {
            return Ok(refused);
        }
        let mut crlf = [0; 2];
        r.read_exact(&mut crlf).await?;
        if &crlf != b"\r\n" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk without CRLF",
            ));
        }
    }
    if let Err(e) = file.flush().await {
        return disk_refused(e).map(Body::DiskRefused);
    }
    Ok(Body::Complete(sum))
}

/// Answers a request whose body is left unread, then closes the connection gently: the
/// write side first, then what the client still sends is read and dropped (up to a limit),
/// so the close does not reset the connection and destroy the answer before the client
/// reads it (a "lingering close", as web servers do).
async fn refuse(
    conn: &Conn,
    r: &mut BufReader<&TcpStream>,
    status: u16,
    body: &[u8],
) -> io::Result<()> {
    answer(conn, status, &[], body).await?;
    conn.stream.shutdown(std::net::Shutdown::Write)?;
    let mut sink = (&mut *r).take(LINGER_LIMIT);
    io::copy(&mut sink, &mut io::sink()).await?;
    Ok(())
}

/// How much of a refused body the server reads and drops before closing.
const LINGER_LIMIT: u64 = 16 << 20;

async fn get(conn: &Conn, path: &Path) -> io::Result<()> {
    let mut file = match File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return answer(conn, 404, &[], b"").await,
        Err(e) => return Err(e),
    };
    let len = file.metadata().await?.len();
    head(conn, 200, &[], len).await?;
    let sent = file.send_to(&conn.stream, 0, len).await?;
    if sent != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "object shrank",
        ));
    }
    Ok(())
}

async fn head(conn: &Conn, status: u16, extra: &[(&str, &str)], len: u64) -> io::Result<()> {
    let mut text = format!("HTTP/1.1 {status} S\r\ncontent-length: {len}\r\nconnection: close\r\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    conn.answered.set(true);
    (&conn.stream).write_all(text.as_bytes()).await
}

async fn answer(conn: &Conn, status: u16, extra: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
    head(conn, status, extra, body.len() as u64).await?;
    (&conn.stream).write_all(body).await?;
    (&conn.stream).flush().await
}
