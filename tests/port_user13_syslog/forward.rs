//! The forwarder: records its filter takes wait in a bounded queue (the oldest dropped
//! and counted when it is full) for a TCP connection to the upstream, made again with a
//! doubling backoff whenever it fails or closes. Each message goes octet-counted, taken
//! off the queue once written whole; one cut short goes again on the next connection.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{BytesMut, Encoder};
use overlap::io::{AsyncReadExt, AsyncWriteBufExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sync::{CancellationToken, Notify};

use super::codec::SyslogCodec;
use super::outputs::Filter;
use super::parse::Record;

#[derive(Clone, Debug)]
pub struct ForwardConfig {
    pub upstream: SocketAddr,
    pub filter: Filter,
    pub queue: usize,
    /// The first wait after a failed connect, and the most it doubles to.
    pub backoff: (Duration, Duration),
}

pub struct Forward {
    pub config: ForwardConfig,
    pub filter: RefCell<Filter>,
    pub queue: RefCell<VecDeque<Vec<u8>>>,
    pub wake: Notify,
    pub sent: Cell<u64>,
    pub dropped: Cell<u64>,
    pub connects: Cell<u64>,
    pub connected: Cell<bool>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

impl Forward {
    pub fn new(config: ForwardConfig) -> Forward {
        Forward {
            filter: RefCell::new(config.filter.clone()),
            config,
            queue: RefCell::default(),
            wake: Notify::new(),
            sent: Cell::new(0),
            dropped: Cell::new(0),
            connects: Cell::new(0),
            connected: Cell::new(false),
        }
    }

    /// Queues the raw message if the filter takes `r`, dropping the oldest when full.
    pub fn offer(&self, r: &Record, raw: &[u8]) {
        if !self.filter.borrow().matches(r) {
            return;
        }
        let mut q = self.queue.borrow_mut();
        if q.len() >= self.config.queue {
            q.pop_front();
            bump(&self.dropped);
        }
        q.push_back(raw.to_vec());
        self.wake.notify_one();
    }
}

/// Sends the queue over one connection until it fails, closes, or (once `token` is
/// cancelled) the queue is empty; whether to go on.
async fn serve(fw: &Forward, stream: TcpStream, token: &CancellationToken) -> bool {
    let (mut rd, mut wr) = stream.into_split();
    let mut peek = [0u8; 64];
    let mut codec = SyslogCodec::new(usize::MAX);
    loop {
        let next = fw.queue.borrow_mut().pop_front();
        let Some(msg) = next else {
            if token.is_cancelled() {
                let _ = wr.close().await;
                return false;
            }
            overlap::select! {
                _ = fw.wake.notified() => {}
                _ = token.cancelled() => {}
                // The upstream sends nothing: a read ends only when it goes away.
                _ = rd.read(&mut peek) => return true,
            }
            continue;
        };
        let mut frame = BytesMut::new();
        codec.encode(&msg[..], &mut frame).unwrap();
        if wr.write_all_buf(&mut frame).await.is_err() {
            // Not taken off after all: first again, unless newer ones filled the queue.
            let mut q = fw.queue.borrow_mut();
            if q.len() >= fw.config.queue {
                bump(&fw.dropped);
            } else {
                q.push_front(msg);
            }
            return true;
        }
        bump(&fw.sent);
    }
}

pub async fn forwarder(fw: Rc<Forward>, token: CancellationToken) {
    let (first, most) = fw.config.backoff;
    let mut backoff = first;
    loop {
        let connected = overlap::select! {
            _ = token.cancelled() => return,
            r = TcpStream::connect(fw.config.upstream) => r,
        };
        match connected {
            Ok(stream) => {
                backoff = first;
                bump(&fw.connects);
                fw.connected.set(true);
                let again = serve(&fw, stream, &token).await;
                fw.connected.set(false);
                if !again {
                    return;
                }
            }
            Err(_) => {
                overlap::select! {
                    _ = token.cancelled() => return,
                    _ = overlap::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(most);
            }
        }
    }
}
