//! The collector: three inputs (UDP, TCP, a Unix datagram socket like `/dev/log`) parse
//! into records routed to the file outputs and the forwarder, a control socket, and a
//! shutdown in two steps: the inputs end first, so that nothing is routed after the
//! outputs' last flush, then the outputs flush and end.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{BytesMut, FramedRead};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener};
use overlap::stream::StreamExt;
use overlap::sync::CancellationToken;
use overlap::task::TaskTracker;
use overlap::time::timeout;

use super::codec::SyslogCodec;
use super::forward::{self, Forward, ForwardConfig};
use super::outputs::{self, FileConfig, FileOut};
use super::parse::parse;

#[derive(Clone, Debug)]
pub struct Config {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// The datagram socket local programs log to, as they do to `/dev/log`.
    pub unix: PathBuf,
    pub control: PathBuf,
    /// Filters read by `reload`: lines of `OUTPUT FILTER` (see `outputs::Filter::parse`).
    pub filters_file: PathBuf,
    pub files: Vec<FileConfig>,
    pub forward: Option<ForwardConfig>,
    /// The longest message taken, from any input.
    pub max_message: usize,
    pub flush_every: Duration,
    /// A batch this long is written at once, without waiting for the interval.
    pub batch_bytes: usize,
    pub udp_recv_buffer: Option<u32>,
    pub drain: Duration,
}

impl Config {
    /// Everything on loopback and in `dir`, one catch-all file output `all.log`.
    pub fn new(dir: &std::path::Path) -> Config {
        Config {
            udp: "127.0.0.1:0".parse().unwrap(),
            tcp: "127.0.0.1:0".parse().unwrap(),
            unix: dir.join("log.sock"),
            control: dir.join("control.sock"),
            filters_file: dir.join("filters.conf"),
            files: vec![FileConfig {
                name: "all".into(),
                path: dir.join("all.log"),
                filter: outputs::Filter::all(),
                max_bytes: 1 << 30,
                keep: 3,
            }],
            forward: None,
            max_message: 2048,
            flush_every: Duration::from_millis(50),
            batch_bytes: 64 * 1024,
            udp_recv_buffer: None,
            drain: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub udp: Cell<u64>,
    pub tcp: Cell<u64>,
    pub unix: Cell<u64>,
    pub malformed: Cell<u64>,
    pub oversized: Cell<u64>,
    pub connections: Cell<u64>,
    pub frame_errors: Cell<u64>,
    pub last_frame_error: RefCell<String>,
}

impl Stats {
    pub fn received(&self) -> u64 {
        self.udp.get() + self.tcp.get() + self.unix.get()
    }
}

pub fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

pub struct State {
    pub stats: Stats,
    pub files: Vec<Rc<FileOut>>,
    pub forward: Option<Rc<Forward>>,
    pub config: Config,
}

#[derive(Clone, Copy)]
enum Input {
    Udp,
    Tcp,
    Unix,
}

impl State {
    /// Parses and routes one message.
    fn accept(&self, input: Input, raw: &[u8]) {
        let stats = &self.stats;
        bump(match input {
            Input::Udp => &stats.udp,
            Input::Tcp => &stats.tcp,
            Input::Unix => &stats.unix,
        });
        let record = parse(raw);
        if record.malformed() {
            bump(&stats.malformed);
        }
        let line = record.line();
        for out in &self.files {
            out.offer(&record, &line, self.config.batch_bytes);
        }
        if let Some(fw) = &self.forward {
            fw.offer(&record, raw);
        }
    }
}

pub struct Server {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub state: Rc<State>,
    inputs: (CancellationToken, TaskTracker),
    outputs: (CancellationToken, TaskTracker),
}

impl Server {
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let udp = UdpSocket::bind(config.udp).await?;
        if let Some(size) = config.udp_recv_buffer {
            udp.set_recv_buffer_size(size)?;
        }
        let tcp = TcpListener::bind(config.tcp).await?;
        let unix = UnixDatagram::bind(&config.unix)?;
        let control = UnixListener::bind(&config.control)?;
        let state = Rc::new(State {
            stats: Stats::default(),
            files: config
                .files
                .iter()
                .cloned()
                .map(FileOut::new)
                .map(Rc::new)
                .collect(),
            forward: config.forward.clone().map(Forward::new).map(Rc::new),
            config,
        });
        let inputs = (CancellationToken::new(), TaskTracker::new());
        let outputs = (CancellationToken::new(), TaskTracker::new());
        let server = Server {
            udp: udp.local_addr()?,
            tcp: tcp.local_addr()?,
            state: state.clone(),
            inputs: inputs.clone(),
            outputs: outputs.clone(),
        };
        let (token, tracker) = inputs;
        tracker.spawn(receive_datagrams(
            Input::Udp,
            state.clone(),
            token.clone(),
            async move |buf: &mut BytesMut| udp.recv_buf_from(buf).await.map(drop),
        ));
        tracker.spawn(receive_datagrams(
            Input::Unix,
            state.clone(),
            token.clone(),
            async move |buf: &mut BytesMut| unix.recv_buf_from(buf).await.map(drop),
        ));
        tracker.spawn(accept_tcp(
            tcp,
            state.clone(),
            token.clone(),
            tracker.clone(),
        ));
        tracker.spawn(super::control::serve(
            control,
            state.clone(),
            token,
            tracker.clone(),
        ));
        let (token, tracker) = outputs;
        for out in &state.files {
            let every = state.config.flush_every;
            tracker.spawn(outputs::writer(out.clone(), every, token.clone()));
        }
        if let Some(fw) = &state.forward {
            tracker.spawn(forward::forwarder(fw.clone(), token));
        }
        Ok(server)
    }

    /// Ends the inputs, then the outputs (each file flushed a last time, the forwarder's
    /// queue sent if it is connected), removes the sockets' paths; whether every task
    /// ended within the drain time.
    pub async fn shutdown(&self) -> bool {
        let drain = self.state.config.drain;
        let mut ok = true;
        for (token, tracker) in [&self.inputs, &self.outputs] {
            token.cancel();
            tracker.close();
            ok &= timeout(drain, tracker.wait()).await.is_ok();
        }
        for path in [&self.state.config.unix, &self.state.config.control] {
            let _ = overlap::fs::remove_file(path).await;
        }
        ok
    }

    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }
}

/// Receives datagrams (`recv_buf_from` on the UDP or Unix socket) into a `BytesMut` with
/// room for one byte more than the largest message: a datagram that fills it was longer,
/// and is dropped.
async fn receive_datagrams(
    input: Input,
    state: Rc<State>,
    token: CancellationToken,
    mut recv: impl AsyncFnMut(&mut BytesMut) -> std::io::Result<()>,
) {
    let max = state.config.max_message;
    let mut buf = BytesMut::with_capacity(max + 1);
    loop {
        buf.clear();
        buf.reserve(max + 1);
        overlap::select! {
            _ = token.cancelled() => return,
            r = recv(&mut buf) => if r.is_err() { continue },
        }
        if buf.len() > max {
            bump(&state.stats.oversized);
            continue;
        }
        state.accept(input, &buf);
    }
}

async fn accept_tcp(
    listener: TcpListener,
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
        bump(&state.stats.connections);
        tracker.spawn(connection(stream, state.clone(), token.clone()));
    }
}

/// One TCP sender: frames until it closes, or a bad frame closes it (counted, the error
/// kept for `stats`), or shutdown.
async fn connection(stream: TcpStream, state: Rc<State>, token: CancellationToken) {
    let codec = SyslogCodec::new(state.config.max_message);
    let mut frames = FramedRead::new(stream, codec);
    loop {
        overlap::select! {
            _ = token.cancelled() => return,
            frame = frames.next() => match frame {
                Some(Ok(msg)) => state.accept(Input::Tcp, &msg),
                Some(Err(e)) => {
                    bump(&state.stats.frame_errors);
                    *state.stats.last_frame_error.borrow_mut() = e.to_string();
                    return;
                }
                None => return,
            },
        }
    }
}
