//! The TCP side: the accept loop, a connection's reader (frames in, pings answered at
//! once, each job on a task of its own) and writer (replies out, in the order they were
//! queued), and the graceful shutdown: stop accepting, refuse new jobs, wait for the
//! running ones up to a deadline, give up the rest and say how many, then close the
//! connections once their last replies are written.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{FramedRead, FramedWrite, LengthDelimitedCodec, LengthDelimitedCodecError};
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, CancellationToken};
use overlap::task::{JoinHandle, TaskTracker};
use overlap::time;

use super::farm::Farm;
use super::proto::{Reply, Request};

/// A request frame's most bytes besides the payload: kind, id, op length and name.
const REQUEST_OVERHEAD: usize = 1 + 4 + 1 + 255;
/// Replies queued for one connection's writer.
const OUT_QUEUE: usize = 64;

pub struct Server {
    pub addr: SocketAddr,
    pub farm: Rc<Farm>,
    stop_accepting: CancellationToken,
    /// The connections are told to close (after the shutdown has dealt with the jobs).
    closing: CancellationToken,
    conns: TaskTracker,
    acceptor: RefCell<Option<JoinHandle<()>>>,
}

/// What a shutdown did.
#[derive(Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs running when it began.
    pub running_at_start: u64,
    /// Jobs still running at the deadline, given up.
    pub abandoned: u64,
    /// Whether every connection closed within the deadline after that.
    pub connections_closed: bool,
}

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max_frame)
        .new_codec()
}

impl Server {
    pub async fn start(listener: TcpListener, farm: Rc<Farm>) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop_accepting = CancellationToken::new();
        let closing = CancellationToken::new();
        let conns = TaskTracker::new();
        let acceptor = overlap::spawn({
            let (farm, stop, closing, conns) = (
                farm.clone(),
                stop_accepting.clone(),
                closing.clone(),
                conns.clone(),
            );
            async move {
                loop {
                    overlap::select! {
                        _ = stop.cancelled() => break,
                        res = listener.accept() => match res {
                            Ok((stream, _)) => {
                                conns.spawn(serve_conn(farm.clone(), stream, closing.clone()));
                            }
                            // A failed accept (EMFILE, a reset in the backlog) ends nothing.
                            Err(_) => time::sleep(Duration::from_millis(10)).await,
                        },
                    }
                }
                // The listener is dropped here: connecting is refused from now on.
            }
        });
        Ok(Server {
            addr,
            farm,
            stop_accepting,
            closing,
            conns,
            acceptor: RefCell::new(Some(acceptor)),
        })
    }

    /// The graceful shutdown, `deadline` for the running jobs and as much again for the
    /// connections' last replies.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.stop_accepting.cancel();
        let acceptor = self.acceptor.borrow_mut().take();
        if let Some(acceptor) = acceptor {
            acceptor.await.unwrap();
        }
        let farm = &self.farm;
        let running_at_start = farm.running();
        farm.stopping.cancel();
        farm.jobs.close();
        let abandoned = match time::timeout(deadline, farm.jobs.wait()).await {
            Ok(()) => 0,
            Err(_) => farm.running(),
        };
        farm.abandon.cancel();
        self.closing.cancel();
        self.conns.close();
        let connections_closed = time::timeout(deadline, self.conns.wait()).await.is_ok();
        ShutdownReport {
            running_at_start,
            abandoned,
            connections_closed,
        }
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

async fn serve_conn(farm: Rc<Farm>, stream: TcpStream, closing: CancellationToken) {
    // Replies are small frames a client waits for: no Nagle delay.
    let _ = stream.set_nodelay(true);
    let max_payload = farm.cfg.max_payload;
    let (rd, wr) = stream.into_split();
    let mut frames = FramedRead::new(rd, codec(max_payload + REQUEST_OVERHEAD));
    let (out, mut replies) = mpsc::channel::<Reply>(OUT_QUEUE);
    // Cancelled when the client is gone: its jobs stop, their results are not sent.
    let gone = CancellationToken::new();
    let writer = overlap::spawn({
        let gone = gone.clone();
        async move {
            let mut sink = FramedWrite::new(wr, LengthDelimitedCodec::new());
            while let Some(reply) = replies.recv().await {
                if sink.send(reply.encode()).await.is_err() {
                    gone.cancel();
                    return;
                }
            }
            // Every sender gone: the last reply is out; the client reads end of file.
            // Three `Encoder` impls (tokio-util's codec has one): the item type is named.
            let _ = SinkExt::<Vec<u8>>::close(&mut sink).await;
        }
    });
    loop {
        let frame = overlap::select! {
            _ = closing.cancelled() => break,
            frame = frames.next() => frame,
        };
        match frame {
            None => {
                gone.cancel();
                break;
            }
            Some(Err(e)) => {
                gone.cancel();
                if let Some(too_big) = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<LengthDelimitedCodecError>())
                {
                    farm.note(|s| s.oversized_frames += 1);
                    let message = format!(
                        "frame of {} bytes over the limit of {}",
                        too_big.frame_length(),
                        too_big.max_frame_length()
                    );
                    let _ = out.send(Reply::Error { id: 0, message }).await;
                } else {
                    // Cut off mid-frame (the peer vanished), or a read error.
                    farm.note(|s| s.truncated_frames += 1);
                }
                break;
            }
            Some(Ok(frame)) => match Request::decode(&frame, max_payload) {
                Ok(Request::Ping { id }) => {
                    farm.note(|s| s.pings += 1);
                    let _ = out.send(Reply::Pong { id }).await;
                }
                Ok(Request::Job(job)) => {
                    let task = farm.clone().serve_job(job, out.clone(), gone.clone());
                    farm.jobs.spawn(task);
                }
                Err(bad) => {
                    farm.note(|s| s.bad_requests += 1);
                    let (id, message) = (bad.id(), bad.to_string());
                    let _ = out.send(Reply::Error { id, message }).await;
                }
            },
        }
    }
    drop(frames);
    drop(out);
    let _ = writer.await;
}
