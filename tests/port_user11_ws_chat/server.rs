//! The chat server: an accept loop under a `CancellationToken`, each connection a task of
//! a `TaskTracker`; a connection upgrades (`handshake.rs`), moves its stream and the bytes
//! read past the head from the line codec to the WebSocket codec (`into_parts`,
//! `from_parts`), splits the `Framed` into a sink (fed by a writer task through a bounded
//! mpsc) and a stream, and races the stream, its room's `broadcast`, a ping `interval`, an
//! idle `sleep` and the token in one `select!`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{Framed, FramedParts, LinesCodec};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::stream::wrappers::errors::BroadcastStreamRecvError;
use overlap::stream::wrappers::{BroadcastStream, ReceiverStream};
use overlap::stream::StreamExt;
use overlap::sync::mpsc::error::TrySendError;
use overlap::sync::{broadcast, mpsc, CancellationToken};
use overlap::task::TaskTracker;
use overlap::time::{interval, sleep, timeout, Instant, MissedTickBehavior};

use super::frame::{Message, WsCodec, WsError};
use super::handshake::{self, Reject};

#[derive(Clone, Debug)]
pub struct Config {
    pub max_header_line: usize,
    pub max_message: usize,
    /// Each room's broadcast capacity.
    pub room_capacity: usize,
    /// Each connection's outbound queue: a client whose queue is full is dropped.
    pub outbound: usize,
    pub ping_every: Duration,
    pub idle: Duration,
    /// How long a close waits for the client's close, and the shutdown for all of them.
    pub drain: Duration,
    /// `SO_SNDBUF` of the listener (and so of every accepted socket), if set.
    pub send_buffer: Option<u32>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_header_line: 1024,
            max_message: 64 * 1024,
            room_capacity: 1024,
            outbound: 1024,
            ping_every: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            drain: Duration::from_secs(10),
            send_buffer: None,
        }
    }
}

/// A message in a room: who sent it, and its text.
pub type Chat = Rc<str>;

/// How each connection ended, for the tests to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Rejected(Reject),
    /// The client sent a close (its code).
    ClientClosed(Option<u16>),
    /// The server closed it with this code.
    Closed(u16),
    /// Its outbound queue was full: dropped without a close frame.
    TooSlow,
    /// The stream failed or ended without a close.
    Lost,
}

type Rooms = Rc<RefCell<HashMap<String, broadcast::Sender<Chat>>>>;

/// The server's state the tests look at and drive.
pub struct Server {
    pub addr: SocketAddr,
    pub token: CancellationToken,
    pub tracker: TaskTracker,
    pub config: Config,
    rooms: Rooms,
    pub ends: Rc<RefCell<Vec<(String, End)>>>,
    pub connected: Rc<Cell<usize>>,
    next_id: Cell<u64>,
}

impl Server {
    /// Binds `addr` and starts accepting.
    pub async fn start(addr: SocketAddr, config: Config) -> Rc<Server> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .unwrap();
        if let Some(size) = config.send_buffer {
            socket.set_send_buffer_size(size).unwrap();
        }
        socket.bind(addr).unwrap();
        let listener = socket.listen(1024).unwrap();
        let server = Rc::new(Server {
            addr: listener.local_addr().unwrap(),
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            config,
            rooms: Rc::default(),
            ends: Rc::default(),
            connected: Rc::default(),
            next_id: Cell::new(0),
        });
        server.tracker.spawn(accept_loop(server.clone(), listener));
        server
    }

    /// Says `text` in `room` as the server, returning how many connections it reached.
    pub fn announce(&self, room: &str, text: &str) -> usize {
        let tx = self.rooms.borrow().get(room).cloned();
        tx.map_or(0, |tx| {
            tx.send(format!("server: {text}").into()).unwrap_or(0)
        })
    }

    /// How many connections are in `room`.
    pub fn members(&self, room: &str) -> usize {
        self.rooms
            .borrow()
            .get(room)
            .map_or(0, |tx| tx.receiver_count())
    }

    pub fn end_of(&self, name: &str) -> Option<End> {
        let ends = self.ends.borrow();
        ends.iter().find(|(n, _)| n == name).map(|(_, e)| e.clone())
    }

    /// Stops accepting, tells every connection to close, and waits up to the drain time
    /// for all of them; whether they all ended in time.
    pub async fn shutdown(&self) -> bool {
        self.token.cancel();
        self.tracker.close();
        timeout(self.config.drain, self.tracker.wait())
            .await
            .is_ok()
    }

    fn room(&self, name: &str) -> (broadcast::Sender<Chat>, broadcast::Receiver<Chat>) {
        let mut rooms = self.rooms.borrow_mut();
        let tx = rooms
            .entry(name.to_string())
            .or_insert_with(|| broadcast::channel(self.config.room_capacity).0);
        (tx.clone(), tx.subscribe())
    }
}

async fn accept_loop(server: Rc<Server>, listener: TcpListener) {
    loop {
        let (stream, _) = overlap::select! {
            _ = server.token.cancelled() => return,
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(_) => continue,
            },
        };
        let id = server.next_id.get();
        server.next_id.set(id + 1);
        let name = format!("#{id}");
        let conn = server.clone();
        server.tracker.spawn(async move {
            let (name, end) = serve(&conn, stream, name).await;
            conn.ends.borrow_mut().push((name, end));
        });
    }
}

/// Writes `response` (if any) and closes the stream the way a server that refuses must:
/// its write side shut, then what the client still sends read and dropped until it
/// closes (or the drain time passes), so the client reads the answer before any reset.
async fn refuse(mut stream: TcpStream, response: Option<String>, drain: Duration) {
    if let Some(response) = response {
        let _ = stream.write_all(response.as_bytes()).await;
    }
    let _ = stream.close().await;
    let linger = async {
        let mut sink = [0u8; 4096];
        while let Ok(1..) = overlap::io::AsyncReadExt::read(&mut stream, &mut sink).await {}
    };
    let _ = timeout(drain, linger).await;
}

async fn serve(server: &Server, stream: TcpStream, mut name: String) -> (String, End) {
    let cfg = &server.config;
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(cfg.max_header_line));
    let request = match handshake::read_request(&mut lines).await {
        Ok(request) => request,
        Err(reject) => {
            refuse(lines.into_inner(), reject.response(), cfg.drain).await;
            return (name, End::Rejected(reject));
        }
    };
    if let Some(given) = request.name {
        name = given;
    }
    // The head is done: keep the bytes read past it (a client may send its first frames
    // with its head) and go on with the WebSocket codec.
    let mut parts = lines.into_parts();
    let accept = handshake::switching_protocols(&request.key);
    if parts.io.write_all(accept.as_bytes()).await.is_err() {
        return (name, End::Lost);
    }
    let mut ws = FramedParts::new::<Message>(parts.io, WsCodec::server(cfg.max_message));
    ws.read_buf = parts.read_buf;
    ws.write_buf = parts.write_buf;
    let framed = Framed::from_parts(ws);
    let room_name = request.path.rsplit('/').next().unwrap_or("").to_string();
    let (room, room_rx) = server.room(&room_name);
    server.connected.set(server.connected.get() + 1);
    let end = chat(server, framed, &name, room, room_rx).await;
    server.connected.set(server.connected.get() - 1);
    (name, end)
}

async fn chat(
    server: &Server,
    framed: Framed<TcpStream, WsCodec>,
    name: &str,
    room: broadcast::Sender<Chat>,
    room_rx: broadcast::Receiver<Chat>,
) -> End {
    let cfg = &server.config;
    let (sink, mut stream) = framed.split();
    let (out, out_rx) = mpsc::channel(cfg.outbound);
    // The writer: what is queued, written as it comes (flushed whenever the queue is
    // empty); once the queue's senders are gone, the sink is closed (its write side shut).
    let mut writer = overlap::spawn(ReceiverStream::new(out_rx).map(Ok).forward(sink));
    let mut room_rx = BroadcastStream::new(room_rx);
    let mut ping = interval(cfg.ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.tick().await; // the first tick is at once
    let mut idle = pin!(sleep(cfg.idle));
    // What the server closes with, if it does.
    let close: (u16, &str) = loop {
        let queued = overlap::select! {
            _ = server.token.cancelled() => break (1001, "going away"),
            frame = stream.next() => {
                idle.as_mut().reset(Instant::now() + cfg.idle);
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let _ = room.send(format!("{name}: {text}").into());
                        Ok(())
                    }
                    Some(Ok(Message::Ping(payload))) => out.try_send(Message::Pong(payload)),
                    Some(Ok(Message::Close(code))) => {
                        // Echo the close, let the writer flush it, and end.
                        let _ = out.try_send(Message::Close(code.clone()));
                        drop(out);
                        let _ = timeout(cfg.drain, &mut writer).await;
                        return End::ClientClosed(code.map(|(c, _)| c));
                    }
                    Some(Ok(_)) => Ok(()), // pongs and binary messages: activity only
                    Some(Err(WsError::Io(_))) | None => {
                        writer.abort();
                        return End::Lost;
                    }
                    Some(Err(e)) => break (e.close_code(), "bad frame"),
                }
            }
            Some(chat) = room_rx.next() => match chat {
                Ok(text) => out.try_send(Message::Text(text.to_string())),
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    out.try_send(Message::Text(format!("server: you missed {n} messages")))
                }
            },
            _ = ping.tick() => out.try_send(Message::Ping(b"ping".to_vec())),
            _ = &mut idle => break (1000, "idle"),
        };
        if let Err(TrySendError::Full(_) | TrySendError::Closed(_)) = queued {
            // The client does not read fast enough (or its writer failed): cut it.
            writer.abort();
            return End::TooSlow;
        }
    };
    // The server closes: a close frame after what is queued, then the client's close
    // awaited (the reads go on, dropping data frames), all within the drain time.
    drop(room_rx);
    let closing = async {
        if out.send(Message::close(close.0, close.1)).await.is_err() {
            return;
        }
        drop(out);
        let _ = (&mut writer).await;
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Close(_) = frame {
                return;
            }
        }
    };
    if timeout(cfg.drain, closing).await.is_err() {
        writer.abort();
    }
    End::Closed(close.0)
}
