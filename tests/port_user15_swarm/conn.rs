//! One connection's task: the handshake, then a loop selecting over the peer's frames,
//! the other connections' commands and the oldest request's deadline; requests kept
//! filled up to the limit, blocks written and pieces checked, uploads served. Whatever
//! ends it (EOF, a bad frame, a timeout, a ban, an I/O error) hands its requests back to
//! the picker for the other connections.

use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use overlap::codec::{Framed, LengthDelimitedCodec};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use overlap::time::{self, Instant};

use super::node::{Cmd, Peer, Shared};
use super::picker::ConnId;
use super::proto::{self, from_bitfield, to_bitfield, Block, Msg, HANDSHAKE_LEN, MAX_FRAME};

/// Why a connection ended.
#[derive(Debug)]
pub enum End {
    Eof,
    Io(io::Error),
    /// A frame over the limit, or one that is not a message.
    Malformed(String),
    Timeout,
    Banned,
}

impl End {
    /// What the node records: `eof`, `io: ..`, `malformed: ..`, `timeout`, `banned`.
    pub fn describe(&self) -> String {
        match self {
            End::Eof => "eof".to_string(),
            End::Io(e) => format!("io: {e}"),
            End::Malformed(what) => format!("malformed: {what}"),
            End::Timeout => "timeout".to_string(),
            End::Banned => "banned".to_string(),
        }
    }
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> End {
        End::Io(e)
    }
}

pub type Frames = Framed<TcpStream, LengthDelimitedCodec>;

/// The codec of the messages after the handshake.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

struct Conn {
    shared: Rc<Shared>,
    id: ConnId,
    frames: Frames,
    /// The pieces the peer holds.
    has: Vec<bool>,
    /// No message yet (a bitfield is allowed only first).
    first: bool,
    peer_choking: bool,
    am_interested: bool,
    choking_peer: bool,
    outstanding: HashMap<Block, Instant>,
}

pub async fn run(shared: Rc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let hs = time::timeout(
        shared.cfg.handshake_timeout,
        handshake(&shared, &mut stream),
    )
    .await;
    let peer_id = match hs {
        Ok(Ok(Ok(peer_id))) => peer_id,
        Ok(Ok(Err(refused))) => {
            shared.stat(|s| *refused(s) += 1);
            return;
        }
        // A handshake cut short, or not finished in time.
        Ok(Err(_)) | Err(_) => {
            shared.stat(|s| s.malformed += 1);
            return;
        }
    };
    let id = shared.next_conn.get();
    shared.next_conn.set(id + 1);
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.peers.borrow_mut().insert(id, Peer { tx, peer_id });
    let n = shared.meta.pieces();
    let mut conn = Conn {
        shared: shared.clone(),
        id,
        frames: Framed::new(stream, codec()),
        has: vec![false; n],
        first: true,
        peer_choking: true,
        am_interested: false,
        choking_peer: true,
        outstanding: HashMap::new(),
    };
    let end = conn.serve(&mut rx).await;
    conn.leave(peer_id, end);
}

type Refusal = fn(&mut super::node::Stats) -> &mut u64;

/// Both sides send theirs at once, then read the other's. The peer's id, or the counter
/// its refusal goes to.
async fn handshake(shared: &Shared, stream: &mut TcpStream) -> io::Result<Result<u64, Refusal>> {
    let info = shared.meta.info_hash();
    stream
        .write_all(&proto::handshake(info, shared.peer_id))
        .await?;
    let mut hs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut hs).await?;
    Ok(match proto::parse_handshake(&hs) {
        Err(_) => Err(|s| &mut s.malformed),
        Ok((their_info, _)) if their_info != info => Err(|s| &mut s.refused),
        Ok((_, peer)) if peer == shared.peer_id || shared.banned.borrow().contains(&peer) => {
            Err(|s| &mut s.refused)
        }
        Ok((_, peer)) => Ok(peer),
    })
}

impl Conn {
    async fn send(&mut self, msg: Msg) -> io::Result<()> {
        self.frames.send(msg.encode()).await
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
                frame = self.frames.next() => match frame {
                    None => return Err(End::Eof),
                    Some(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                        return Err(End::Malformed(e.to_string()))
                    }
                    Some(Err(e)) => return Err(End::Io(e)),
                    Some(Ok(frame)) => self.on_frame(&frame).await?,
                },
                Some(cmd) = rx.recv() => self.on_cmd(cmd).await?,
                _ = { timer }, if deadline.is_some() => return Err(End::Timeout),
            }
        }
    }

    async fn update_interest(&mut self) -> io::Result<()> {
        let wants = self.shared.picker.borrow().wants_from(&self.has);
        if wants != self.am_interested {
            self.am_interested = wants;
            let msg = if wants {
                Msg::Interested
            } else {
                Msg::NotInterested
            };
            self.send(msg).await?;
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
            let Some((block, dup)) = picked else {
                break;
            };
            let deadline = Instant::now() + self.shared.cfg.request_timeout;
            self.outstanding.insert(block, deadline);
            self.shared.stat(|s| {
                s.requests_sent += 1;
                s.endgame_requests += dup as u64;
            });
            self.send(Msg::Request(block)).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Result<(), End> {
        let msg = Msg::decode(frame).map_err(|e| End::Malformed(format!("{e:?}")))?;
        let first = std::mem::replace(&mut self.first, false);
        let meta = self.shared.meta.clone();
        let bad = |what: &str| Err(End::Malformed(what.to_string()));
        match msg {
            Msg::KeepAlive | Msg::NotInterested => {}
            Msg::Choke => {
                // Requests outstanding at a peer that chokes us are dropped by it.
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
            Msg::Request(b) if !meta.is_block(b) => return bad("request off the block grid"),
            Msg::Request(b) => {
                let held = self.shared.picker.borrow().have[b.index as usize];
                // Requests while choked, or for what we lack, are ignored.
                if !self.choking_peer && held {
                    let data = self.shared.storage.read_block(b).await?;
                    self.send(Msg::Piece {
                        index: b.index,
                        begin: b.begin,
                        data,
                    })
                    .await?;
                    self.shared.stat(|s| s.blocks_out += 1);
                }
            }
            Msg::Cancel(b) if !meta.is_block(b) => return bad("cancel off the block grid"),
            // Requests are answered as they come: there is never one queued to cancel.
            Msg::Cancel(_) => {}
            Msg::Piece { index, begin, data } => {
                let b = Block {
                    index,
                    begin,
                    len: data.len() as u32,
                };
                if !meta.is_block(b) {
                    return bad("piece off the block grid");
                }
                self.on_block(b, &data).await?;
            }
        }
        Ok(())
    }

    async fn on_block(&mut self, b: Block, data: &[u8]) -> Result<(), End> {
        let asked = self.outstanding.remove(&b).is_some();
        if !asked || !self.shared.picker.borrow().is_asked(self.id, &b) {
            // Never asked, cancelled, or already received from another peer.
            self.shared.picker.borrow_mut().release(self.id, &b);
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
                if shared.banned.borrow_mut().insert(peer_id) {
                    shared.stat(|s| s.banned += 1);
                }
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
                    self.shared.stat(|s| s.cancels_sent += 1);
                    self.send(Msg::Cancel(b)).await?;
                }
            }
            Cmd::Refill => {}
            Cmd::Ban => return Err(End::Banned),
        }
        Ok(())
    }

    fn release_all(&mut self) {
        let mut picker = self.shared.picker.borrow_mut();
        for (b, _) in self.outstanding.drain() {
            picker.release(self.id, &b);
        }
        drop(picker);
        self.shared.broadcast(Some(self.id), || Cmd::Refill);
    }

    /// The connection is over: its requests go back to the picker (and to the other
    /// connections), the pieces it had no longer count, a banned peer's blocks go.
    fn leave(mut self, peer_id: u64, end: Result<(), End>) {
        let shared = self.shared.clone();
        shared.peers.borrow_mut().remove(&self.id);
        let outstanding = self.outstanding.len() as u64;
        self.release_all();
        {
            let mut picker = shared.picker.borrow_mut();
            picker.release_all(self.id);
            picker.add_peer(&self.has, -1);
            if shared.banned.borrow().contains(&peer_id) {
                picker.forget_from(self.id);
            }
        }
        let why = end.as_ref().err().map_or("done".to_string(), End::describe);
        shared.ends.borrow_mut().push(why);
        shared.stat(|s| {
            s.closed += 1;
            match end {
                Err(End::Malformed(_)) => s.malformed += 1,
                Err(End::Timeout) => s.timeouts += outstanding,
                _ => {}
            }
        });
    }
}
