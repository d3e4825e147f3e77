//! The status endpoint: `GET /status` (every check), `GET /checks/<name>` (one), 404 for
//! anything else, 400 for a request that is not HTTP/1.x, 405 for another method; one
//! request a connection.

use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::CancellationToken;
use overlap::task::TaskTracker;

use super::alerts::json_escape;
use super::checker::Inner;
use super::state::View;

/// The longest request head taken.
const MAX_HEAD: usize = 4096;
/// How long a client may take to send its request.
const READ_LIMIT: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    inner: Rc<Inner>,
    tracker: TaskTracker,
    token: CancellationToken,
) {
    loop {
        let (stream, _) = overlap::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => continue,
            },
            _ = token.cancelled() => return,
        };
        let session = session(stream, inner.clone());
        let token = token.clone();
        tracker.spawn(async move { token.run_until_cancelled(session).await });
    }
}

async fn session(mut stream: TcpStream, inner: Rc<Inner>) {
    let (code, body) = match overlap::time::timeout(READ_LIMIT, read_head(&mut stream)).await {
        Ok(Some(head)) => answer(&head, &inner),
        Ok(None) => (400, error("bad request")),
        Err(_) => return,
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
    // A lingering close: what the client sent past a refused head is read and dropped, so
    // closing does not reset the connection before the client has read the answer.
    let mut rest = [0u8; 512];
    let drain = async { while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {} };
    let _ = overlap::time::timeout(Duration::from_secs(1), drain).await;
}

/// The request head up to its blank line; `None` if it is too long or the client stops.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end + 4);
            break;
        }
        if head.len() > MAX_HEAD {
            return None;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(head).ok()
}

/// The status code and body for a request head.
pub fn answer(head: &str, inner: &Inner) -> (u16, String) {
    let line = head.lines().next().unwrap_or("");
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return (400, error("bad request"));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return (400, error("bad request"));
    }
    if method != "GET" {
        return (405, error("method not allowed"));
    }
    if target == "/status" {
        let all: Vec<String> = inner.views().iter().map(|(n, v)| check(n, v)).collect();
        return (200, format!("[{}]", all.join(",")));
    }
    match target
        .strip_prefix("/checks/")
        .and_then(|n| Some((n, inner.view(n)?)))
    {
        Some((name, view)) => (200, check(name, &view)),
        None => (404, error("not found")),
    }
}

fn check(name: &str, v: &View) -> String {
    let status = v.status.map_or("unknown".to_string(), |s| s.to_string());
    format!(
        r#"{{"name":"{}","status":"{status}","output":"{}","runs":{}}}"#,
        json_escape(name),
        json_escape(&v.output),
        v.runs
    )
}

fn error(what: &str) -> String {
    format!(r#"{{"error":"{what}"}}"#)
}
