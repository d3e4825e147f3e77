//! Persistence, as mosquitto's: at shutdown the retained messages and the persistent
//! sessions (subscriptions, messages in flight, messages queued) are written to a file,
//! in the wire format itself (a PUBLISH per retained message, then per session a CONNECT,
//! a SUBSCRIBE and its PUBLISHes: DUP set on those in flight, not on those queued),
//! through a temp file, `sync_all` and a rename; a broker starting reads it back.

use std::io;
use std::path::Path;

use overlap::codec::{FramedRead, FramedWrite};
use overlap::fs::{self, File};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::broker::{Session, Shared};
use super::packet::{Connect, MqttCodec, Packet, Publish, MAX_REMAINING};

fn invalid(what: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A QoS 1 PUBLISH needs a packet id on the wire: a placeholder for those without one.
fn storable(mut p: Publish, dup: bool) -> Publish {
    p.dup = dup && p.qos > 0;
    if p.qos > 0 && p.pid.is_none() {
        p.pid = Some(1);
    }
    if p.qos == 0 {
        p.pid = None;
    }
    p
}

/// The state as packets, in the file's order.
fn snapshot(shared: &Shared) -> Vec<Packet> {
    let mut out: Vec<Packet> = (shared.retained.borrow().values())
        .map(|p| Packet::Publish(storable(p.clone(), false)))
        .collect();
    let sessions = shared.sessions.borrow();
    let mut ids: Vec<&String> = sessions.keys().filter(|id| !sessions[*id].clean).collect();
    ids.sort();
    for id in ids {
        let s = &sessions[id];
        out.push(Packet::Connect(Connect {
            clean_session: false,
            ..Connect::new(id)
        }));
        if !s.subs.is_empty() {
            out.push(Packet::Subscribe {
                pid: 1,
                filters: s.subs.clone(),
            });
        }
        for p in &s.inflight {
            out.push(Packet::Publish(storable(p.clone(), true)));
        }
        for p in &s.queued {
            out.push(Packet::Publish(storable(p.clone(), false)));
        }
    }
    out
}

/// Writes the state to `path` through `path.tmp`: a crash at any point leaves the old
/// file or the new one, whole.
pub async fn save(shared: &Shared, path: &Path) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp).await?;
    let mut frames = FramedWrite::new(file, MqttCodec::new(MAX_REMAINING));
    for p in snapshot(shared) {
        frames.feed(p).await.map_err(invalid)?;
    }
    frames.flush().await.map_err(invalid)?;
    let mut file = frames.into_inner();
    file.sync_all().await?;
    drop(file);
    fs::rename(&tmp, path).await
}

/// Reads the state back from `path`, if there is one; a file cut short or not of this
/// format is `InvalidData`, and nothing of it is taken.
pub async fn load(shared: &Shared, path: &Path) -> io::Result<()> {
    let file = match File::open(path).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        r => r?,
    };
    let mut frames = FramedRead::new(file, MqttCodec::new(MAX_REMAINING));
    let mut retained = Vec::new();
    let mut sessions: Vec<(String, Session)> = Vec::new();
    while let Some(p) = frames.next().await {
        let p = p.map_err(invalid)?;
        match (p, sessions.last_mut()) {
            (Packet::Publish(p), None) if p.retain => retained.push(p),
            (Packet::Connect(c), _) if !c.clean_session => {
                sessions.push((c.client_id, Session::default()))
            }
            (Packet::Subscribe { filters, .. }, Some((_, s))) => s.subs = filters,
            (Packet::Publish(p), Some((_, s))) if p.dup => s.inflight.push_back(p),
            (Packet::Publish(mut p), Some((_, s))) => {
                p.pid = None;
                s.queued.push_back(p);
            }
            (other, _) => return Err(invalid(format!("{other:?} out of place"))),
        }
    }
    let mut into = shared.retained.borrow_mut();
    for p in retained {
        into.insert(p.topic.clone(), p);
    }
    shared.sessions.borrow_mut().extend(sessions);
    Ok(())
}
