//! One run of a script: spawned in a process group of its own with the CGI environment,
//! the request body fed to its stdin while its stdout is parsed and streamed to the client
//! (so neither pipe can fill and stall the other), its stderr logged line by line, the
//! client watched for going away, the deadline kept; then the script reaped, its whole
//! group killed first whenever it did not end by itself, and after the reap otherwise (so
//! that nothing it left in the background outlives the request).

use std::cell::Cell;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use overlap::time::{sleep_until, timeout_at, Instant};

use super::cgi::{head_end, parse_head, HeadError, HeadKind, MAX_CGI_HEAD};
use super::http::{chunk, client_gone, response_head, LAST_CHUNK};
use super::server::Log;

/// The client's connection, split so the body can be read while the response is written.
#[derive(Debug)]
pub struct Conn {
    pub rh: OwnedReadHalf,
    pub wh: OwnedWriteHalf,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The whole response went out.
    Served,
    /// The script gave a `Content-Length` and wrote less: the response was cut there.
    Truncated,
    /// The script ended before a head: 502.
    NoHead,
    /// The script's head was refused: 502.
    BadHead(HeadError),
    /// The script asked for a local redirect to this path.
    Redirect(String),
    /// Over the deadline: 504, or the response cut if its head was out.
    TimedOut,
    /// The client went away: the script was killed.
    ClientGone,
}

/// What the server keeps of each run.
#[derive(Debug, Clone)]
pub struct Record {
    pub script: String,
    pub pid: u32,
    pub status: ExitStatus,
    pub outcome: Outcome,
    /// Whether the response's head had gone out to the client.
    pub head_sent: bool,
    /// The status of that head (0 if none went out).
    pub http_status: u16,
    /// Request body bytes the script took on its stdin.
    pub stdin_bytes: u64,
    /// Body bytes of the script's document sent on.
    pub body_bytes: u64,
}

/// Spawns `script` with `env` in `dir`.
pub fn spawn(script: &Path, env: &[(String, Vec<u8>)], dir: &Path) -> io::Result<Child> {
    let mut cmd = Command::new(script);
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, OsStr::from_bytes(v))))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a kill reaches what the script started (a `sleep`, a
        // pipeline), which holds its stdout as long as it lives.
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
}

/// Runs the spawned `child` for one request. `leftover` is the body's start, read with
/// the head; `remaining` counts the body bytes still on the socket (and goes down as they
/// are read, whatever happens to this future).
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    name: &str,
    mut child: Child,
    conn: &mut Conn,
    leftover: Vec<u8>,
    remaining: &Cell<u64>,
    deadline: Instant,
    log: &Log,
) -> io::Result<Record> {
    let pid = child.id().expect("just spawned");
    // Held here, not by the client's side: see where it is dropped.
    let mut stdin = Some(child.stdin.take().expect("piped"));
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let mut stderr_task = overlap::spawn(log_stderr(stderr, format!("{name}[{pid}]"), log.clone()));
    let (head_sent, stdin_bytes, body_bytes) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let outcome = {
        let mut client = pin!(client_side(
            &mut conn.rh,
            &mut stdin,
            leftover,
            remaining,
            &stdin_bytes
        ));
        let mut reply = pin!(respond(&mut stdout, &mut conn.wh, &head_sent, &body_bytes));
        overlap::select! {
            o = reply => o,
            () = client => Outcome::ClientGone,
            () = sleep_until(deadline) => Outcome::TimedOut,
        }
    };
    // Served, or no head at all: the script is ending by itself (within the deadline).
    // Otherwise (cut off, refused, or to be redirected) it has nothing more to say.
    let waited = match outcome {
        Outcome::Served | Outcome::NoHead | Outcome::Redirect(_) => {
            // Its input ends, as it did when the client's side was dropped mid-upload.
            stdin = None;
            timeout_at(deadline, child.wait()).await.ok()
        }
        _ => None,
    };
    let (status, outcome) = match waited {
        Some(status) => {
            // Ended by itself, and reaped: what it left in the background (a `sleep` with
            // its own stdio) goes too, reached through the group the script led.
            match child.send_signal_to_group(libc::SIGKILL) {
                Ok(()) => {}
                Err(e) => log.push(format!("{name}[{pid}]: could not clean its group: {e}")),
            }
            (status?, outcome)
        }
        None => {
            let status = kill_group(&mut child).await?;
            let outcome = match outcome {
                Outcome::Served | Outcome::NoHead => {
                    log.push(format!(
                        "{name}[{pid}]: still running at the deadline: killed"
                    ));
                    outcome
                }
                other => other,
            };
            (status, outcome)
        }
    };
    // Closed only now: closed before the kill, a script still writing would die of
    // SIGPIPE first, and a script still reading would see its input end and might exit
    // by itself first; either way its status would not say that the server ended it.
    drop((stdout, stdin));
    // The group is gone or the script ended: its stderr ends too, unless something it left
    // behind holds it; not waited for past the deadline.
    if timeout_at(deadline, &mut stderr_task).await.is_err() {
        stderr_task.abort();
        log.push(format!("{name}[{pid}]: stderr still open at the deadline"));
    }
    log.push(format!("{name}[{pid}]: {}", describe(status)));
    Ok(Record {
        script: name.to_owned(),
        pid,
        status,
        outcome,
        head_sent: head_sent.get() != 0,
        http_status: head_sent.get(),
        stdin_bytes: stdin_bytes.get(),
        body_bytes: body_bytes.get(),
    })
}

/// Kills `child`'s whole process group (it leads it), then reaps `child`.
async fn kill_group(child: &mut Child) -> io::Result<ExitStatus> {
    child.send_signal_to_group(libc::SIGKILL)?;
    child.kill().await?;
    child.wait().await
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{status}"),
    }
}

/// The client's side while the script runs: the request body to the script's stdin (what
/// came with the head, then the rest from the socket), the stdin closed after it; then
/// the socket watched. Returns only when the client is gone (an end of file or an error
/// before the response is done). A script that stops reading (its stdin closed) gets no
/// more, but the body is still read off the socket, so that the client's upload is not
/// refused with a reset while it waits for the response. A client gone mid-upload leaves
/// `stdin` open, for the caller to close after the kill.
async fn client_side(
    rh: &mut OwnedReadHalf,
    stdin: &mut Option<ChildStdin>,
    leftover: Vec<u8>,
    remaining: &Cell<u64>,
    fed: &Cell<u64>,
) {
    if !leftover.is_empty() {
        *stdin = feed(stdin.take(), &leftover, fed).await;
    }
    let mut buf = vec![0u8; 64 * 1024];
    while remaining.get() > 0 {
        let want = remaining.get().min(buf.len() as u64) as usize;
        match rh.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => return, // gone mid-upload
            Ok(n) => {
                remaining.set(remaining.get() - n as u64);
                *stdin = feed(stdin.take(), &buf[..n], fed).await;
            }
        }
    }
    *stdin = None; // the script's end of input
    loop {
        match rh.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {} // a pipelined request: not taken (Connection: close)
        }
    }
}

/// Writes `data` to the script's stdin: the pipe back, or `None` once it is not read any
/// more (`EPIPE`: the script closed it or ended), the bytes then dropped.
async fn feed(mut pipe: Option<ChildStdin>, data: &[u8], fed: &Cell<u64>) -> Option<ChildStdin> {
    let p = pipe.as_mut()?;
    p.write_all(data).await.ok()?;
    fed.set(fed.get() + data.len() as u64);
    pipe
}

/// Reads the script's head, then sends the response: the head, and the body as it comes
/// (chunked unless the script gave a length).
async fn respond(
    stdout: &mut ChildStdout,
    wh: &mut OwnedWriteHalf,
    head_sent: &Cell<u16>,
    body_bytes: &Cell<u64>,
) -> Outcome {
    let mut buf = Vec::new();
    let mut chunk_buf = vec![0u8; 64 * 1024];
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_CGI_HEAD {
            return Outcome::BadHead(HeadError::TooLong);
        }
        match stdout.read(&mut chunk_buf).await {
            Ok(0) | Err(_) => return Outcome::NoHead,
            Ok(n) => buf.extend_from_slice(&chunk_buf[..n]),
        }
    };
    if end > MAX_CGI_HEAD {
        return Outcome::BadHead(HeadError::TooLong);
    }
    let head = match parse_head(&buf[..end]) {
        Ok(head) => head,
        Err(e) => return Outcome::BadHead(e),
    };
    if let HeadKind::LocalRedirect(path) = head.kind {
        return Outcome::Redirect(path);
    }
    let mut first = response_head(&head);
    let rest = &buf[end..];
    let result = match head.content_length {
        Some(len) => {
            let take = rest.len().min(len as usize);
            first.extend_from_slice(&rest[..take]);
            head_sent.set(head.status);
            body_bytes.set(take as u64);
            send_sized(
                stdout,
                wh,
                first,
                len - take as u64,
                &mut chunk_buf,
                body_bytes,
            )
            .await
        }
        None => {
            if !rest.is_empty() {
                first.extend_from_slice(&chunk(rest));
            }
            head_sent.set(head.status);
            body_bytes.set(rest.len() as u64);
            send_chunked(stdout, wh, first, &mut chunk_buf, body_bytes).await
        }
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) if client_gone(&e) => Outcome::ClientGone,
        Err(_) => Outcome::ClientGone,
    }
}

async fn send_sized(
    stdout: &mut ChildStdout,
    wh: &mut OwnedWriteHalf,
    first: Vec<u8>,
    mut left: u64,
    buf: &mut [u8],
    sent: &Cell<u64>,
) -> io::Result<Outcome> {
    wh.write_all(&first).await?;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = stdout.read(&mut buf[..want]).await.unwrap_or(0);
        if n == 0 {
            return Ok(Outcome::Truncated);
        }
        wh.write_all(&buf[..n]).await?;
        left -= n as u64;
        sent.set(sent.get() + n as u64);
    }
    Ok(Outcome::Served)
}

async fn send_chunked(
    stdout: &mut ChildStdout,
    wh: &mut OwnedWriteHalf,
    first: Vec<u8>,
    buf: &mut [u8],
    sent: &Cell<u64>,
) -> io::Result<Outcome> {
    wh.write_all(&first).await?;
    loop {
        let n = stdout.read(buf).await.unwrap_or(0);
        if n == 0 {
            wh.write_all(LAST_CHUNK).await?;
            return Ok(Outcome::Served);
        }
        wh.write_all(&chunk(&buf[..n])).await?;
        sent.set(sent.get() + n as u64);
    }
}

/// Logs each line of the script's stderr as `tag: line`.
async fn log_stderr(stderr: ChildStderr, tag: String, log: Log) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                log.push(format!("{tag}: {}", text.trim_end_matches(['\n', '\r'])));
            }
        }
    }
}
