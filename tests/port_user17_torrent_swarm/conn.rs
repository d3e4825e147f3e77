//! One connection's task: the handshake, then a biased loop over the peer's frames, the
//! other connections' commands, the upload queue and the oldest request's deadline;
//! requests kept filled up to the pipeline's depth, blocks written and pieces checked,
//! uploads sent from the file with `send_to` after their header. Whatever ends it (EOF, a
//! bad frame, a timeout, a ban, an I/O error) hands its requests back to the picker.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::rc::Rc;

use overlap::codec::Framed;
use overlap::net::TcpStream;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use overlap::time::{self, Instant};

use super::node::{Cmd, Peer, Shared};
use super::picker::ConnId;
use super::wire::{from_bitfield, to_bitfield, Block, Msg, WireCodec};

/// Requests queued from one peer at most; more is a protocol violation.
pub const MAX_QUEUED_UPLOADS: usize = 64;

/// Why a connection ended.
#[derive(Debug)]
pub enum End {
    Eof,
    Io(io::Error),
    /// A frame the codec refused, or a message that breaks the protocol.
    Malformed(String),
    Timeout,
    Banned,
    Refused(&'static str),
}

impl End {
    /// What the node records: `eof`, `io: ..`, `malformed: ..`, `timeout`, `banned`,
    /// `refused: ..`.
    pub fn describe(&self) -> String {
        match self {
            End::Eof => "eof".to_string(),
            End::Io(e) => format!("io: {e}"),
            End::Malformed(what) => format!("malformed: {what}"),
            End::Timeout => "timeout".to_string(),
            End::Banned => "banned".to_string(),
            End::Refused(why) => format!("refused: {why}"),
        }
    }
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> End {
        match e.kind() {
            io::ErrorKind::InvalidData => End::Malformed(e.to_string()),
            _ => End::Io(e),
        }
    }
}

pub type Frames = Framed<TcpStream, WireCodec>;

struct Conn {
    shared: Rc<Shared>,
    id: ConnId,
    frames: Frames,
    has: Vec<bool>,
    /// No message yet after the handshake (a bitfield is allowed only first).
    first: bool,
    peer_choking: bool,
    am_interested: bool,
    choking_peer: bool,
    outstanding: HashMap<Block, Instant>,
    /// Blocks we cancelled: a copy that crossed the cancel is no violation.
    cancelled: HashSet<Block>,
    uploads: VecDeque<Block>,
}

pub async fn run(shared: Rc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut frames = Framed::new(stream, WireCodec);
    let peer_id = match time::timeout(
        shared.cfg.handshake_timeout,
        handshake(&shared, &mut frames),
    )
    .await
    {
        Ok(Ok(peer_id)) => peer_id,
        Ok(Err(end)) => return record(&shared, end),
        Err(_) => return record(&shared, End::Timeout),
    };
    let id = shared.next_conn.get();
    shared.next_conn.set(id + 1);
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.peers.borrow_mut().insert(id, Peer { tx, peer_id });
    let mut conn = Conn {
        shared: shared.clone(),
        id,
        frames,
        has: vec![false; shared.meta.pieces()],
        first: true,
        peer_choking: true,
        am_interested: false,
        choking_peer: true,
        outstanding: HashMap::new(),
        cancelled: HashSet::new(),
        uploads: VecDeque::new(),
    };
    let end = conn.serve(&mut rx).await;
    conn.leave(peer_id, end);
}

fn record(shared: &Shared, end: End) {
    if let End::Refused(_) = end {
        shared.stat(|s| s.refused += 1);
    }
    shared.ends.borrow_mut().push(end.describe());
}

/// Both sides send theirs at once, then read the other's: the peer's id.
async fn handshake(shared: &Shared, frames: &mut Frames) -> Result<u64, End> {
    let info = shared.meta.info_hash();
    frames
        .send(Msg::Handshake {
            info_hash: info,
            peer_id: shared.peer_id,
        })
        .await?;
    match frames.next().await.ok_or(End::Eof)?? {
        Msg::Handshake { info_hash, .. } if info_hash != info => Err(End::Refused("info-hash")),
        Msg::Handshake { peer_id, .. } if peer_id == shared.peer_id => Err(End::Refused("self")),
        Msg::Handshake { peer_id, .. } if shared.banned.borrow().contains(&peer_id) => {
            Err(End::Refused("banned"))
        }
        Msg::Handshake { peer_id, .. } => Ok(peer_id),
        other => Err(End::Malformed(format!("{other:?} before the handshake"))),
    }
}

impl Conn {
    async fn send(&mut self, msg: Msg) -> io::Result<()> {
        self.frames.send(msg).await
    }

    async fn serve(&mut self, rx: &mut mpsc::UnboundedReceiver<Cmd>) -> Result<(), End> {
        let bits = to_bitfield(&self.shared.picker.borrow().have);
        self.send(Msg::Bitfield(bits)).await?;
        loop {
            self.update_interest().await?;
            self.fill().await?;
            let deadline = self.outstanding.values().min().copied();
            let timer = time::sleep_until(deadline.unwrap_or_else(Instant::now));
            overlap::select! {
                biased;
                frame = self.frames.next() => match frame {
                    None => return Err(End::Eof),
                    Some(frame) => self.on_msg(frame?).await?,
                },
                Some(cmd) = rx.recv() => self.on_cmd(cmd).await?,
                _ = std::future::ready(()), if !self.uploads.is_empty() => self.upload_one().await?,
                _ = { timer }, if deadline.is_some() => return Err(End::Timeout),
            }
        }
    }

    async fn update_interest(&mut self) -> io::Result<()> {
        let wants = self.shared.picker.borrow().wants_from(&self.has);
        if wants != self.am_interested {
            self.am_interested = wants;
            self.send(if wants {
                Msg::Interested
            } else {
                Msg::NotInterested
            })
            .await?;
        }
        Ok(())
    }

    /// Asks for blocks until `max_outstanding` are in flight or there is nothing to ask.
    async fn fill(&mut self) -> io::Result<()> {
        if self.peer_choking || !self.am_interested {
            return Ok(());
        }
        while self.outstanding.len() < self.shared.cfg.max_outstanding {
            let picked = self.shared.picker.borrow_mut().pick(self.id, &self.has);
            let Some((block, dup)) = picked else { break };
            self.outstanding
                .insert(block, Instant::now() + self.shared.cfg.request_timeout);
            self.cancelled.remove(&block);
            self.shared.stat(|s| {
                s.requests_sent += 1;
                s.endgame_requests += dup as u64;
            });
            self.send(Msg::Request(block)).await?;
        }
        Ok(())
    }

    async fn on_msg(&mut self, msg: Msg) -> Result<(), End> {
        let first = std::mem::replace(&mut self.first, false);
        let meta = self.shared.meta.clone();
        let bad = |what: &str| Err(End::Malformed(what.to_string()));
        match msg {
            Msg::KeepAlive | Msg::NotInterested => {}
            Msg::Handshake { .. } => return bad("a second handshake"),
            Msg::PieceHeader(_) => unreachable!("never decoded"),
            Msg::Choke => {
                // A peer that chokes us drops the requests we made.
                self.peer_choking = true;
                self.release_all();
            }
            Msg::Unchoke => self.peer_choking = false,
            Msg::Interested => {
                if self.choking_peer {
                    self.choking_peer = false;
                    self.send(Msg::Unchoke).await?;
                }
            }
            Msg::Have(i) if i as usize >= meta.pieces() => return bad("have out of range"),
            Msg::Have(i) => {
                if !std::mem::replace(&mut self.has[i as usize], true) {
                    self.shared.picker.borrow_mut().avail[i as usize] += 1;
                }
            }
            Msg::Bitfield(_) if !first => return bad("bitfield after the first message"),
            Msg::Bitfield(bits) => {
                let Some(has) = from_bitfield(&bits, meta.pieces()) else {
                    return bad("bitfield of the wrong size");
                };
                self.shared.picker.borrow_mut().add_peer(&has, 1);
                self.has = has;
            }
            Msg::Request(b) if !meta.is_block(b) => return bad("request out of range"),
            Msg::Request(b) => {
                let held = self.shared.picker.borrow().have[b.index as usize];
                // Requests while choked, or for what we lack, are ignored.
                if !self.choking_peer && held {
                    if self.uploads.len() >= MAX_QUEUED_UPLOADS {
                        return bad("too many requests queued");
                    }
                    self.uploads.push_back(b);
                }
            }
            Msg::Cancel(b) if !meta.is_block(b) => return bad("cancel out of range"),
            Msg::Cancel(b) => {
                if let Some(at) = self.uploads.iter().position(|&q| q == b) {
                    self.uploads.remove(at);
                    self.shared.stat(|s| s.uploads_cancelled += 1);
                }
            }
            Msg::Piece { index, begin, data } => {
                let b = Block {
                    index,
                    begin,
                    len: data.len() as u32,
                };
                self.on_block(b, &data).await?;
            }
        }
        Ok(())
    }

    /// Sends the first queued block: from memory (read with `read_exact_at`) by a lying
    /// peer, else its header through the codec and its bytes with `send_to`.
    async fn upload_one(&mut self) -> Result<(), End> {
        let b = self.uploads.pop_front().expect("a queued upload");
        let storage = self.shared.storage.clone();
        if self.shared.cfg.corrupt_uploads {
            let mut data = storage.read_block(b).await?;
            data[0] ^= 0xff;
            self.send(Msg::Piece {
                index: b.index,
                begin: b.begin,
                data,
            })
            .await?;
        } else {
            // `send` flushes the header, so the file's bytes go after it.
            self.send(Msg::PieceHeader(b)).await?;
            storage.send_block(b, self.frames.get_ref()).await?;
        }
        self.shared.stat(|s| s.blocks_out += 1);
        Ok(())
    }

    async fn on_block(&mut self, b: Block, data: &[u8]) -> Result<(), End> {
        if self.outstanding.remove(&b).is_none() {
            if self.cancelled.remove(&b) {
                self.shared.stat(|s| s.wasted += 1);
                return Ok(());
            }
            return Err(End::Malformed(format!("unrequested piece {b:?}")));
        }
        if !self.shared.picker.borrow().is_asked(self.id, &b) {
            // Received from another peer meanwhile (its cancel not yet sent).
            self.shared.stat(|s| s.wasted += 1);
            return Ok(());
        }
        self.shared.storage.write_block(b, data).await?;
        let received = self.shared.picker.borrow_mut().received(self.id, b);
        let Some(received) = received else {
            self.shared.stat(|s| s.wasted += 1);
            return Ok(());
        };
        self.shared.stat(|s| s.blocks_in += 1);
        for other in received.cancel {
            self.shared.tell(other, Cmd::Cancel(b));
        }
        if received.piece_done {
            self.check_piece(b.index).await?;
        }
        Ok(())
    }

    /// Reads a finished piece back from the file and checks it: announced if good,
    /// refetched (and its senders banned) if not.
    async fn check_piece(&mut self, index: u32) -> Result<(), End> {
        let shared = self.shared.clone();
        if shared.storage.verify(index).await? {
            shared.picker.borrow_mut().verified(index);
            shared.broadcast(None, || Cmd::Have(index));
            if shared.picker.borrow().complete() {
                shared.complete.send_replace(true);
            }
            return Ok(());
        }
        shared.stat(|s| s.hash_fails += 1);
        let senders = shared.picker.borrow_mut().failed(index);
        let mut me = false;
        for conn in senders {
            if let Some(peer_id) = shared.peers.borrow().get(&conn).map(|p| p.peer_id) {
                shared.banned.borrow_mut().insert(peer_id);
            }
            if conn == self.id {
                me = true;
            } else {
                shared.tell(conn, Cmd::Ban);
            }
        }
        shared.broadcast(Some(self.id), || Cmd::Refill);
        if me {
            return Err(End::Banned);
        }
        Ok(())
    }

    async fn on_cmd(&mut self, cmd: Cmd) -> Result<(), End> {
        match cmd {
            Cmd::Have(i) => self.send(Msg::Have(i)).await?,
            Cmd::Cancel(b) => {
                if self.outstanding.remove(&b).is_some() {
                    self.cancelled.insert(b);
                    self.shared.stat(|s| s.cancels_sent += 1);
                    self.send(Msg::Cancel(b)).await?;
                }
            }
            Cmd::Refill => {}
            Cmd::Ban => return Err(End::Banned),
        }
        Ok(())
    }

    /// Every outstanding request handed back to the picker, the others told to refill.
    fn release_all(&mut self) {
        let mut picker = self.shared.picker.borrow_mut();
        let n = self.outstanding.len() as u64;
        for (b, _) in self.outstanding.drain() {
            picker.release(self.id, &b);
        }
        drop(picker);
        self.shared.stat(|s| s.released += n);
        self.shared.broadcast(Some(self.id), || Cmd::Refill);
    }

    /// The connection is over: its requests go back to the picker (and to the other
    /// connections), the pieces it had no longer count, a banned peer's blocks go.
    fn leave(mut self, peer_id: u64, end: Result<(), End>) {
        let shared = self.shared.clone();
        shared.peers.borrow_mut().remove(&self.id);
        if let Err(End::Timeout) = end {
            let n = self.outstanding.len() as u64;
            shared.stat(|s| s.timeouts += n);
        }
        self.release_all();
        {
            let mut picker = shared.picker.borrow_mut();
            picker.add_peer(&self.has, -1);
            if shared.banned.borrow().contains(&peer_id) {
                picker.forget_from(self.id);
            }
        }
        let why = end.as_ref().err().map_or("done".to_string(), End::describe);
        shared.ends.borrow_mut().push(why);
    }
}
