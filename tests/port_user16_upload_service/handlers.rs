//! The four methods on `/files/<name>`: PUT streams the body into an upload, GET and HEAD
//! answer the file or a range of it, DELETE removes it.

use std::io::SeekFrom;

use overlap::io::{self, AsyncBufRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::{Body, BodyError};
use super::http::{self, Framing, Head};
use super::names::decode_name;
use super::range::{self, Ranged};
use super::server::{Config, Stats};
use super::storage::{Precondition, Refused, Store};

/// What the connection does after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    /// Closed: an error, or a body left unread.
    Close,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// The largest body of a refused upload that is read (and dropped) to keep the connection.
const DRAIN_MAX: u64 = 64 * 1024;
/// The most a GET reads from its file at a time.
const READ_CHUNK: usize = 64 * 1024;

pub async fn handle<R, W>(
    head: &Head,
    rd: &mut R,
    wr: &mut W,
    store: &std::rc::Rc<Store>,
    stats: &Stats,
    cfg: &Config,
) -> io::Result<Next>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let framing = match head.framing() {
        Ok(f) => f,
        Err(bad) => {
            Stats::bump(&stats.bad_heads);
            http::respond(wr, bad.status, &[], bad.why.as_bytes(), true).await?;
            return Ok(Next::Close);
        }
    };
    // A refusal before the body leaves it unread: the connection must close.
    let after_refusal = if framing == Framing::None {
        Next::KeepAlive
    } else {
        Next::Close
    };
    let close = after_refusal == Next::Close || !head.keep_alive();
    let Some(raw_name) = head.target.strip_prefix("/files/") else {
        http::respond(wr, 404, &[], b"no such resource\n", close).await?;
        return Ok(after_refusal);
    };
    let name = match decode_name(raw_name) {
        Ok(name) => name,
        Err(why) => {
            Stats::bump(&stats.bad_heads);
            let body = format!("bad file name: {why:?}\n");
            http::respond(wr, 400, &[], body.as_bytes(), close).await?;
            return Ok(after_refusal);
        }
    };
    let pre = match precondition(head) {
        Ok(pre) => pre,
        Err(why) => {
            http::respond(wr, 400, &[], why.as_bytes(), close).await?;
            return Ok(after_refusal);
        }
    };
    match head.method.as_str() {
        "PUT" => put(head, framing, &name, &pre, rd, wr, store, stats, cfg).await,
        "GET" | "HEAD" if framing == Framing::None => get(head, &name, wr, store).await,
        "DELETE" if framing == Framing::None => {
            let status = match store.delete(&name, &pre).await {
                Ok(()) => 204,
                Err(Refused::Missing) => 404,
                Err(Refused::Precondition) => 412,
                Err(_) => 500,
            };
            http::respond(wr, status, &[], b"", close).await?;
            Ok(Next::KeepAlive)
        }
        "GET" | "HEAD" | "DELETE" => {
            http::respond(wr, 400, &[], b"a body on a GET, HEAD or DELETE\n", true).await?;
            Ok(Next::Close)
        }
        _ => {
            let allow = [("Allow", "GET, HEAD, PUT, DELETE".to_string())];
            http::respond(wr, 405, &allow, b"", close).await?;
            Ok(after_refusal)
        }
    }
}

/// `If-Match` and `If-None-Match` (only `*` is meaningful for an upload's target).
fn precondition(head: &Head) -> Result<Precondition, &'static str> {
    let matches: Vec<String> = head.all("if-match").flat_map(tags).collect();
    let none_match: Vec<String> = head.all("if-none-match").flat_map(tags).collect();
    match (matches.is_empty(), none_match.is_empty()) {
        (true, true) => Ok(Precondition::None),
        (false, true) => Ok(Precondition::Matches(matches)),
        (true, false) if none_match == ["*"] => Ok(Precondition::Absent),
        (true, false) => Err("If-None-Match takes only *\n"),
        (false, false) => Err("If-Match and If-None-Match together\n"),
    }
}

fn tags(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value)
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn put<R, W>(
    head: &Head,
    framing: Framing,
    name: &str,
    pre: &Precondition,
    rd: &mut R,
    wr: &mut W,
    store: &std::rc::Rc<Store>,
    stats: &Stats,
    cfg: &Config,
) -> io::Result<Next>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let expect = head.tokens("expect");
    let wants_continue = match &expect[..] {
        [] => false,
        [one] if one == "100-continue" => true,
        _ => {
            http::respond(wr, 417, &[], b"", true).await?;
            return Ok(Next::Close);
        }
    };
    let declared = match framing {
        Framing::None => Some(0),
        Framing::Length(n) => Some(n),
        Framing::Chunked => None,
    };
    let mut upload = match store.begin(name, declared, pre).await {
        Ok(upload) => upload,
        Err(refused) => {
            // A small body the client is sending anyway is read and dropped, to keep the
            // connection; a large one, or one the client waits to be asked for, is not.
            let unread = match framing {
                Framing::None => false,
                Framing::Length(n) if n <= DRAIN_MAX && !wants_continue => {
                    let mut body = Body::new(framing, cfg.body_idle);
                    loop {
                        match body.next(rd).await {
                            Ok(Some(piece)) => {
                                let n = piece.len();
                                body.consume(rd, n);
                            }
                            Ok(None) => break false,
                            Err(_) => return Ok(Next::Close),
                        }
                    }
                }
                _ => true,
            };
            return refuse(wr, refused, unread, stats).await;
        }
    };
    // Asked for, the 100 goes only once the upload can start: a refused client never
    // sends its body.
    if wants_continue && framing != Framing::None {
        wr.write_all(CONTINUE).await?;
    }
    let mut body = Body::new(framing, cfg.body_idle);
    loop {
        let piece = match body.next(rd).await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(BodyError::Vanished(e)) => {
                // Nobody to answer. Dropping `upload` removes its temp file.
                drop(upload);
                if e.kind() == io::ErrorKind::ConnectionReset {
                    Stats::bump(&stats.resets);
                }
                Stats::bump(&stats.vanished);
                return Ok(Next::Close);
            }
            Err(BodyError::Malformed(why)) => {
                drop(upload);
                Stats::bump(&stats.malformed_bodies);
                http::respond(wr, 400, &[], format!("{why}\n").as_bytes(), true).await?;
                return Ok(Next::Close);
            }
            Err(BodyError::Idle) => {
                drop(upload);
                Stats::bump(&stats.body_timeouts);
                http::respond(wr, 408, &[], b"", true).await?;
                return Ok(Next::Close);
            }
        };
        let n = piece.len();
        if let Err(refused) = upload.write(piece).await {
            drop(upload);
            // The rest of the body is never read: the connection closes.
            return refuse(wr, refused, true, stats).await;
        }
        body.consume(rd, n);
        stats.body_bytes.set(stats.body_bytes.get() + n as u64);
    }
    let close = !head.keep_alive();
    match upload.commit(pre).await {
        Ok((entry, created)) => {
            Stats::bump(&stats.committed);
            let status = if created { 201 } else { 200 };
            http::respond(wr, status, &[("ETag", entry.etag)], b"", close).await?;
            Ok(Next::KeepAlive)
        }
        Err(refused) => refuse(wr, refused, false, stats).await,
    }
}

/// Answers a refused upload; with its body left unread, the connection then closes.
async fn refuse<W: AsyncWrite + Unpin>(
    wr: &mut W,
    refused: Refused,
    body_unread: bool,
    stats: &Stats,
) -> io::Result<Next> {
    let status = match refused {
        Refused::Precondition => {
            Stats::bump(&stats.precondition_failed);
            412
        }
        Refused::TooLarge => {
            Stats::bump(&stats.too_large);
            413
        }
        Refused::Quota => {
            Stats::bump(&stats.over_quota);
            507
        }
        Refused::Missing => 404,
        Refused::Io(e) => {
            eprintln!("upload service: {e}");
            500
        }
    };
    http::respond(wr, status, &[], b"", body_unread).await?;
    Ok(if body_unread {
        Next::Close
    } else {
        Next::KeepAlive
    })
}

async fn get<W: AsyncWrite + Unpin>(
    head: &Head,
    name: &str,
    wr: &mut W,
    store: &Store,
) -> io::Result<Next> {
    let close = !head.keep_alive();
    let Some((mut file, entry)) = store.open_file(name).await? else {
        http::respond(wr, 404, &[], b"", close).await?;
        return Ok(Next::KeepAlive);
    };
    let range = match head.one("range") {
        Ok(value) => range::resolve(value, entry.len),
        Err(_) => Ranged::Whole,
    };
    let mut fields = vec![
        ("ETag", entry.etag.clone()),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    let (status, first, length) = match range {
        Ranged::Whole => (200, 0, entry.len),
        Ranged::Part { first, last } => {
            let cr = format!("bytes {first}-{last}/{}", entry.len);
            fields.push(("Content-Range", cr));
            (206, first, last - first + 1)
        }
        Ranged::Unsatisfiable => {
            fields.push(("Content-Range", format!("bytes */{}", entry.len)));
            http::respond(wr, 416, &fields, b"", close).await?;
            return Ok(Next::KeepAlive);
        }
    };
    wr.write_all(&http::response_head(status, &fields, length, close))
        .await?;
    if head.method == "HEAD" || length == 0 {
        return Ok(Next::KeepAlive);
    }
    // overlap's `File` reads ahead in chunks doubling up to 2 MiB, so a bounded read
    // would pull up to twice its range off the disk (tokio's reads what is asked): its
    // chunks are held to the size this loop reads.
    file.set_max_buf_size(READ_CHUNK);
    if first > 0 {
        file.seek(SeekFrom::Start(first)).await?;
    }
    let mut buf = vec![0u8; READ_CHUNK.min(length as usize)];
    let mut left = length;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want]).await?;
        if n == 0 {
            // The file is shorter than its entry: the answer cannot be finished, and
            // only closing tells the client so.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        wr.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(Next::KeepAlive)
}
