//! The control socket: line commands over a Unix stream socket. `stats` (lines of
//! `name: value`, then `END`), `rotate` (every file output rotated, answered once done),
//! `reload` (the filters file read again, all of it taken or none), `quit`; anything else,
//! an empty line or one over 256 bytes answered with one `ERROR` line, the session going on.

use std::collections::HashMap;
use std::rc::Rc;

use overlap::codec::{Framed, LinesCodec, LinesCodecError};
use overlap::net::{UnixListener, UnixStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::CancellationToken;
use overlap::task::TaskTracker;

use super::outputs::Filter;
use super::server::State;

pub async fn serve(
    listener: UnixListener,
    state: Rc<State>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = overlap::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        tracker.spawn(session(stream, state.clone(), token.clone()));
    }
}

async fn session(stream: UnixStream, state: Rc<State>, token: CancellationToken) {
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(256));
    let mut after_error = false;
    loop {
        let line = overlap::select! {
            _ = token.cancelled() => return,
            line = lines.next() => line,
        };
        let answer = match line {
            Some(Ok(cmd)) if cmd.trim() == "quit" => return,
            Some(Ok(cmd)) => answer(&state, cmd.trim()).await,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                after_error = true;
                vec!["ERROR line over 256 bytes".to_string()]
            }
            // After an error a `Framed` gives one `None`, then reads on (as tokio-util's).
            None if std::mem::take(&mut after_error) => continue,
            Some(Err(_)) | None => return,
        };
        for line in answer {
            if lines.feed(line).await.is_err() {
                return;
            }
        }
        if SinkExt::<String>::flush(&mut lines).await.is_err() {
            return;
        }
    }
}

async fn answer(state: &State, cmd: &str) -> Vec<String> {
    match cmd {
        "" => vec!["ERROR empty command".into()],
        "stats" => {
            let mut out: Vec<String> = stats(state)
                .into_iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            out.push("END".into());
            out
        }
        "rotate" => {
            let waits: Vec<_> = state.files.iter().map(|f| f.request_rotation()).collect();
            let n = waits.len();
            for w in waits {
                if w.await.is_err() {
                    return vec!["ERROR an output is gone".into()];
                }
            }
            vec![format!("OK rotated {n}")]
        }
        "reload" => match reload(state).await {
            Ok(n) => vec![format!("OK reloaded {n}")],
            Err(e) => vec![format!("ERROR reload: {e}")],
        },
        other => vec![format!("ERROR unknown command: {other}")],
    }
}

pub fn stats(state: &State) -> Vec<(&'static str, u64)> {
    let s = &state.stats;
    let sum = |f: fn(&super::outputs::FileOut) -> u64| state.files.iter().map(|o| f(o)).sum();
    let fw = state.forward.as_deref();
    let fwd = |f: fn(&super::forward::Forward) -> u64| fw.map_or(0, f);
    vec![
        ("received", s.received()),
        ("udp", s.udp.get()),
        ("tcp", s.tcp.get()),
        ("unix", s.unix.get()),
        ("malformed", s.malformed.get()),
        ("oversized", s.oversized.get()),
        ("connections", s.connections.get()),
        ("frame_errors", s.frame_errors.get()),
        ("written", sum(|o| o.lines.get())),
        ("rotations", sum(|o| o.rotations.get())),
        ("forwarded", fwd(|f| f.sent.get())),
        ("forward_dropped", fwd(|f| f.dropped.get())),
        ("forward_queued", fwd(|f| f.queue.borrow().len() as u64)),
    ]
}

/// Reads `OUTPUT FILTER` lines (`#` comments and blank lines skipped); every output named
/// must exist (`forward` names the forwarder), else nothing changes.
async fn reload(state: &State) -> Result<usize, String> {
    let path = &state.config.filters_file;
    let text = overlap::fs::read_to_string(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut new: HashMap<String, Filter> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, filter) = line.split_once(' ').unwrap_or((line, "*"));
        let known = name == "forward" && state.forward.is_some()
            || state.files.iter().any(|f| f.config.name == name);
        if !known {
            return Err(format!("line {}: no output named {name}", n + 1));
        }
        let filter = Filter::parse(filter).map_err(|e| format!("line {}: {e}", n + 1))?;
        new.insert(name.to_string(), filter);
    }
    for f in &state.files {
        if let Some(filter) = new.get(&f.config.name) {
            *f.filter.borrow_mut() = filter.clone();
        }
    }
    if let (Some(fw), Some(filter)) = (&state.forward, new.get("forward")) {
        *fw.filter.borrow_mut() = filter.clone();
    }
    Ok(new.len())
}
