//! The management port: one text command a line (`stats`, `counters`, `gauges`,
//! `delete NAME`, `quit`), each answered with lines ending in `END`, or one `ERROR ...`
//! line; a line over 256 bytes is refused and the session goes on.

use std::rc::Rc;

use overlap::codec::{Framed, LinesCodec, LinesCodecError};
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::CancellationToken;
use overlap::task::TaskTracker;

use super::server::State;

pub const MAX_LINE: usize = 256;

pub async fn serve(
    listener: TcpListener,
    state: Rc<State>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = overlap::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let s = &state.stats.admin_sessions;
        s.set(s.get() + 1);
        tracker.spawn(session(stream, state.clone(), token.clone()));
    }
}

async fn session(stream: TcpStream, state: Rc<State>, token: CancellationToken) {
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    // After an error the stream gives one `None` (as tokio-util's does), then reads on.
    let mut after_error = false;
    loop {
        let line = overlap::select! {
            _ = token.cancelled() => return,
            line = lines.next() => line,
        };
        let reply = match line {
            None if after_error => {
                after_error = false;
                continue;
            }
            None | Some(Err(LinesCodecError::Io(_))) => return,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                after_error = true;
                vec![format!("ERROR line over {MAX_LINE} bytes")]
            }
            Some(Ok(line)) if line.trim() == "quit" => return,
            Some(Ok(line)) => answer(&state, line.trim()),
        };
        for line in reply {
            if lines.feed(line).await.is_err() {
                return;
            }
        }
        if SinkExt::<String>::flush(&mut lines).await.is_err() {
            return;
        }
    }
}

fn answer(state: &State, command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = command.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("stats"), None, _) => {
            let s = &state.stats;
            let outbox = state.link.outbox.borrow();
            let link = &state.link;
            let uptime = state.started.elapsed().as_secs();
            for (k, v) in [
                ("uptime", uptime),
                ("datagrams", s.datagrams.get()),
                ("samples", s.samples.get()),
                ("bad_lines", s.bad_lines.get()),
                ("oversized", s.oversized.get()),
                ("flushes", s.flushes.get()),
                ("buffered", outbox.len() as u64),
                ("dropped", outbox.dropped),
                ("connects", link.connects.get()),
                ("connect_failures", link.connect_failures.get()),
                ("lost_connections", link.lost_connections.get()),
            ] {
                out.push(format!("{k}: {v}"));
            }
        }
        (Some("counters"), None, _) => {
            let metrics = state.metrics.borrow();
            out.extend(metrics.counters().iter().map(|(k, v)| format!("{k} {v}")));
        }
        (Some("gauges"), None, _) => {
            let metrics = state.metrics.borrow();
            out.extend(metrics.gauges().iter().map(|(k, v)| format!("{k} {v}")));
        }
        (Some("delete"), Some(name), None) => {
            if !state.metrics.borrow_mut().delete(name) {
                return vec![format!("ERROR no metric named {name}")];
            }
            out.push(format!("deleted {name}"));
        }
        (Some("delete"), _, _) => return vec!["ERROR usage: delete NAME".into()],
        (None, _, _) => return vec!["ERROR empty command".into()],
        _ => return vec![format!("ERROR unknown command: {command}")],
    }
    out.push("END".into());
    out
}
