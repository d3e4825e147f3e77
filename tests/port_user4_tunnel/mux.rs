//! The user's tunnel: frames, the multiplexed connection's reader and writer, and one
//! channel's two pumps. Both sides use it; `near` and `far` (in `sides.rs`) differ only in
//! who opens channels.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use overlap::future::FutureExt;
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::sync::mpsc;
use overlap::sync::{oneshot, Notify};

/// Bytes a side may send on a channel before the other grants more.
pub const WINDOW: u32 = 256 * 1024;
/// The largest data frame's payload.
pub const MAX_DATA: usize = 16 * 1024;

const OPEN: u8 = 1;
const DATA: u8 = 2;
const EOF: u8 = 3;
const CLOSE: u8 = 4;
const WINDOW_UPDATE: u8 = 5;

/// One frame: `[len: u32 BE][channel: u32 BE][kind: u8][payload]`, `len` counting channel,
/// kind and payload.
#[derive(Debug)]
pub enum Frame {
    Open(u32),
    Data(u32, Vec<u8>),
    Eof(u32),
    Close(u32),
    Window(u32, u32),
}

impl Frame {
    fn encode(&self, out: &mut Vec<u8>) {
        let (id, kind, payload): (u32, u8, &[u8]) = match self {
            Frame::Open(id) => (*id, OPEN, &[]),
            Frame::Data(id, bytes) => (*id, DATA, bytes),
            Frame::Eof(id) => (*id, EOF, &[]),
            Frame::Close(id) => (*id, CLOSE, &[]),
            Frame::Window(id, n) => {
                out.extend_from_slice(&9u32.to_be_bytes());
                out.extend_from_slice(&id.to_be_bytes());
                out.push(WINDOW_UPDATE);
                out.extend_from_slice(&n.to_be_bytes());
                return;
            }
        };
        out.extend_from_slice(&(5 + payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out.push(kind);
        out.extend_from_slice(payload);
    }

    /// Reads one frame; `Ok(None)` at a clean end between frames.
    async fn read(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 9];
        match r.read(&mut head[..1]).await? {
            0 => return Ok(None),
            _ => r.read_exact(&mut head[1..]).await?,
        }
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let id = u32::from_be_bytes(head[4..8].try_into().unwrap());
        if !(5..=5 + MAX_DATA).contains(&len) {
            return Err(bad(format!("frame length {len}")));
        }
        let mut payload = vec![0u8; len - 5];
        r.read_exact(&mut payload).await?;
        Ok(Some(match head[8] {
            OPEN if payload.is_empty() => Frame::Open(id),
            DATA => Frame::Data(id, payload),
            EOF if payload.is_empty() => Frame::Eof(id),
            CLOSE if payload.is_empty() => Frame::Close(id),
            WINDOW_UPDATE if payload.len() == 4 => {
                Frame::Window(id, u32::from_be_bytes(payload[..].try_into().unwrap()))
            }
            kind => return Err(bad(format!("frame kind {kind}, {} bytes", payload.len()))),
        }))
    }
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// What the mux reader hands a channel's downstream pump.
#[derive(Debug)]
pub enum Inbound {
    Data(Vec<u8>),
    Eof,
}

/// A channel's credit for sending: the bytes the peer will still take.
#[derive(Default)]
pub struct Credit {
    left: Cell<u32>,
    grown: Notify,
}

impl Credit {
    async fn take(&self, most: usize) -> usize {
        loop {
            let left = self.left.get() as usize;
            if left > 0 {
                let n = left.min(most);
                self.left.set((left - n) as u32);
                return n;
            }
            self.grown.notified().await;
        }
    }

    fn grant(&self, n: u32) -> io::Result<()> {
        let sum = self.left.get().checked_add(n).filter(|&s| s <= WINDOW);
        let sum = sum.ok_or_else(|| bad(format!("window grown past {WINDOW}")))?;
        self.left.set(sum);
        self.grown.notify_waiters();
        Ok(())
    }
}

struct ChannelEntry {
    inbound: mpsc::UnboundedSender<Inbound>,
    credit: Rc<Credit>,
    /// Bytes queued in `inbound` and not yet written out: never above the window.
    queued: Rc<Cell<u32>>,
    /// Ends the channel wherever its pumps wait: the peer closed it, or the mux died.
    reset: oneshot::Sender<String>,
}

/// One side's view of the multiplexed connection.
pub struct Mux {
    out: mpsc::Sender<Frame>,
    channels: RefCell<HashMap<u32, ChannelEntry>>,
    /// Why the mux died, once it has.
    dead: RefCell<Option<String>>,
    /// The largest number of bytes any channel had queued, for the tests.
    pub most_queued: Cell<u32>,
}

/// A channel as its pumps see it.
pub struct Channel {
    pub id: u32,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    credit: Rc<Credit>,
    queued: Rc<Cell<u32>>,
    reset: oneshot::Receiver<String>,
    mux: Rc<Mux>,
}

impl Mux {
    /// Starts the writer task; the caller runs [`Mux::read_loop`] with the read half.
    pub fn start(wr: OwnedWriteHalf) -> Rc<Mux> {
        let (out, rx) = mpsc::channel(128);
        let mux = Rc::new(Mux {
            out,
            channels: RefCell::default(),
            dead: RefCell::default(),
            most_queued: Cell::new(0),
        });
        let weak = Rc::downgrade(&mux);
        overlap::spawn(async move {
            let res = write_loop(wr, rx).await;
            if let (Err(e), Some(mux)) = (res, weak.upgrade()) {
                mux.die(format!("mux write: {e}"));
            }
        });
        mux
    }

    /// Registers channel `id`; `None` if the id is taken or the mux is dead.
    pub fn channel(self: &Rc<Self>, id: u32) -> Option<Channel> {
        if self.dead.borrow().is_some() || self.channels.borrow().contains_key(&id) {
            return None;
        }
        let (tx, inbound) = mpsc::unbounded_channel();
        let credit = Rc::new(Credit::default());
        credit.left.set(WINDOW);
        let queued = Rc::new(Cell::new(0));
        let (reset_tx, reset) = oneshot::channel();
        let entry = ChannelEntry {
            inbound: tx,
            credit: credit.clone(),
            queued: queued.clone(),
            reset: reset_tx,
        };
        self.channels.borrow_mut().insert(id, entry);
        Some(Channel {
            id,
            inbound,
            credit,
            queued,
            reset,
            mux: self.clone(),
        })
    }

    pub fn open_channels(&self) -> usize {
        self.channels.borrow().len()
    }

    pub fn dead(&self) -> Option<String> {
        self.dead.borrow().clone()
    }

    pub async fn send(&self, frame: Frame) -> io::Result<()> {
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "mux writer gone");
        self.out.send(frame).await.map_err(|_| gone())
    }

    /// Marks the mux dead and resets every channel with `why`.
    pub fn die(&self, why: String) {
        if self.dead.borrow().is_some() {
            return;
        }
        *self.dead.borrow_mut() = Some(why.clone());
        let channels = std::mem::take(&mut *self.channels.borrow_mut());
        for (_, entry) in channels {
            let _ = entry.reset.send(why.clone());
        }
    }

    /// Reads frames until the connection ends, handing each to its channel; calls `open`
    /// for a peer's `Open`. Kills the mux when it returns.
    pub async fn read_loop(
        self: &Rc<Self>,
        rd: OwnedReadHalf,
        mut open: impl FnMut(Channel) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut rd = BufReader::with_capacity(64 * 1024, rd);
        let res: io::Result<()> = loop {
            let frame = match Frame::read(&mut rd).await {
                Ok(Some(frame)) => frame,
                Ok(None) => break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "mux ended")),
                Err(e) => break Err(e),
            };
            if let Err(e) = self.dispatch(frame, &mut open) {
                break Err(e);
            }
        };
        let e = res.unwrap_err();
        self.die(format!("mux read: {e}"));
        Err(e)
    }

    fn dispatch(
        self: &Rc<Self>,
        frame: Frame,
        open: &mut impl FnMut(Channel) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut channels = self.channels.borrow_mut();
        match frame {
            Frame::Open(id) => {
                drop(channels);
                let ch = self
                    .channel(id)
                    .ok_or_else(|| bad(format!("open of {id} twice")))?;
                open(ch)?;
            }
            Frame::Data(id, bytes) => {
                // A channel we closed may still get what the peer sent before it knew.
                if let Some(entry) = channels.get(&id) {
                    let queued = entry.queued.get() + bytes.len() as u32;
                    if queued > WINDOW {
                        return Err(bad(format!("channel {id} sent past its window")));
                    }
                    entry.queued.set(queued);
                    self.most_queued.set(self.most_queued.get().max(queued));
                    let _ = entry.inbound.send(Inbound::Data(bytes));
                }
            }
            Frame::Eof(id) => {
                if let Some(entry) = channels.get(&id) {
                    let _ = entry.inbound.send(Inbound::Eof);
                }
            }
            Frame::Close(id) => {
                if let Some(entry) = channels.remove(&id) {
                    let _ = entry.reset.send("closed by peer".into());
                }
            }
            Frame::Window(id, n) => {
                if let Some(entry) = channels.get(&id) {
                    entry.credit.grant(n)?;
                }
            }
        }
        Ok(())
    }
}

/// Sends frames in batches: whatever is queued goes out in one write.
async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Frame>) -> io::Result<()> {
    let mut batch = Vec::new();
    let mut bytes = Vec::with_capacity(256 * 1024);
    while rx.recv_many(&mut batch, 64).await > 0 {
        bytes.clear();
        for frame in batch.drain(..) {
            frame.encode(&mut bytes);
        }
        wr.write_all(&bytes).await?;
    }
    Ok(())
}

impl Channel {
    /// Gives the channel up before it ran (its local end could not be had).
    pub async fn refuse(self) {
        if self.mux.channels.borrow_mut().remove(&self.id).is_some() {
            let _ = self.mux.send(Frame::Close(self.id)).await;
        }
    }

    /// Runs both directions between `rd`/`wr` (the local stream's halves) and the peer,
    /// until both have ended (`Ok`) or either failed: then the peer is told (a `Close`)
    /// and the error returned, the caller deciding what the local stream gets.
    pub async fn run(
        mut self,
        rd: &mut (impl AsyncRead + Unpin),
        wr: &mut (impl AsyncWrite + Unpin),
    ) -> io::Result<()> {
        let id = self.id;
        let mux = self.mux.clone();
        let res = {
            let up = upstream(id, &mux, &self.credit, rd);
            let down = downstream(id, &mux, &mut self.inbound, &self.queued, wr);
            overlap::select! {
                res = overlap::future::try_join(up, down).fuse() => res.map(|_| ()),
                why = self.reset => {
                    let why = why.unwrap_or_else(|_| "mux gone".into());
                    Err(io::Error::new(io::ErrorKind::ConnectionReset, why))
                }
            }
        };
        // An entry still there means the peer has not closed the channel: tell it.
        let ours = mux.channels.borrow_mut().remove(&id).is_some();
        if ours && res.is_err() {
            let _ = mux.send(Frame::Close(id)).await;
        }
        res
    }
}

/// Local bytes to the peer, within the credit it grants.
async fn upstream(
    id: u32,
    mux: &Mux,
    credit: &Credit,
    rd: &mut (impl AsyncRead + Unpin),
) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_DATA];
    loop {
        let n = credit.take(MAX_DATA).await;
        let got = rd.read(&mut buf[..n]).await?;
        // Unused credit goes back.
        credit.left.set(credit.left.get() + (n - got) as u32);
        if got == 0 {
            return mux.send(Frame::Eof(id)).await;
        }
        mux.send(Frame::Data(id, buf[..got].to_vec())).await?;
    }
}

/// The peer's bytes to the local stream, granting credit back as they are written.
async fn downstream(
    id: u32,
    mux: &Mux,
    inbound: &mut mpsc::UnboundedReceiver<Inbound>,
    queued: &Cell<u32>,
    wr: &mut (impl AsyncWrite + Unpin),
) -> io::Result<()> {
    loop {
        match inbound.recv().await {
            Some(Inbound::Data(bytes)) => {
                wr.write_all(&bytes).await?;
                queued.set(queued.get() - bytes.len() as u32);
                mux.send(Frame::Window(id, bytes.len() as u32)).await?;
            }
            Some(Inbound::Eof) => return wr.close().await,
            None => return Err(io::Error::new(io::ErrorKind::ConnectionReset, "mux gone")),
        }
    }
}
