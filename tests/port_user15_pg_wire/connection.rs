//! The connection task (tokio-postgres's `Connection`): it owns the socket, writes the
//! requests queued by any number of clients as they come (pipelining them, a COPY IN's data
//! streamed after its query), and reads the backend's messages, handing each to the oldest
//! request not yet answered to its ReadyForQuery (answers come in order) and each
//! notification to the subscriber. A caller that drops its answer's receiver costs
//! nothing: the rest of that answer is read and skipped. A read or write failure (a
//! malformed message, an oversized one, the server gone) ends the task, and every caller
//! waiting, or calling later, gets an `io::Error` saying why.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

use overlap::codec::{BytesMut, FramedRead};
use overlap::io::AsyncWriteExt;
use overlap::net::{OwnedReadHalf, OwnedWriteHalf};
use overlap::stream::StreamExt;
use overlap::sync::mpsc;

use super::client::{Notification, Shared};
use super::proto::{Backend, BackendCodec, Frontend};

/// One request: its messages, a COPY IN's data to stream after them, and where its answer
/// goes.
pub struct Request {
    pub bytes: BytesMut,
    pub copy: Option<mpsc::Receiver<CopyMsg>>,
    pub reply: mpsc::Sender<Backend>,
}

pub enum CopyMsg {
    Data(Vec<u8>),
    Done,
}

/// A request written and not yet answered to its end.
struct Pending {
    reply: mpsc::Sender<Backend>,
    skipped: bool,
}

type Queue = RefCell<VecDeque<Pending>>;

pub async fn run(
    mut frames: FramedRead<OwnedReadHalf, BackendCodec>,
    wr: OwnedWriteHalf,
    requests: mpsc::Receiver<Request>,
    shared: Rc<Shared>,
    notes: mpsc::UnboundedSender<Notification>,
) {
    let pending: Queue = RefCell::default();
    let failure = {
        let reading = std::pin::pin!(read_loop(&mut frames, &pending, &shared, &notes));
        let writing = std::pin::pin!(write_loop(wr, requests, &pending, &shared));
        let (mut reading, mut writing) = (reading, writing);
        overlap::select! {
            e = &mut reading => e,
            w = &mut writing => match w {
                // Every client gone and Terminate sent: the server's close is the end.
                Ok(()) => match reading.await {
                    e if e.kind() == io::ErrorKind::UnexpectedEof => return,
                    e => e,
                },
                Err(e) => e,
            },
        }
    };
    // The reason first, then the callers' channels closed: each finds it there.
    *shared.failed.borrow_mut() = Some((failure.kind(), failure.to_string()));
    pending.borrow_mut().clear();
}

/// Reads until the connection fails; gives why.
async fn read_loop(
    frames: &mut FramedRead<OwnedReadHalf, BackendCodec>,
    pending: &Queue,
    shared: &Shared,
    notes: &mpsc::UnboundedSender<Notification>,
) -> io::Error {
    loop {
        let msg = match frames.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return e,
            None => {
                let waiting = pending.borrow().len();
                return io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("server closed the connection with {waiting} requests unanswered"),
                );
            }
        };
        let msg = match msg {
            Backend::Notification {
                pid,
                channel,
                payload,
            } => {
                let n = &shared.stats.notifications;
                n.set(n.get() + 1);
                let _ = notes.send(Notification {
                    pid,
                    channel,
                    payload,
                });
                continue;
            }
            Backend::Notice(_) | Backend::ParameterStatus(..) => continue,
            m => m,
        };
        let done = matches!(msg, Backend::Ready(_));
        let reply = match pending.borrow().front() {
            Some(p) if !p.skipped => Some(p.reply.clone()),
            Some(_) => None,
            None => {
                return super::proto::invalid(format!("{msg:?} with no request waiting"));
            }
        };
        // The send waits while the caller is slow (backpressure all the way to the
        // server); it fails once the caller has gone, and the rest is skipped.
        let delivered = match reply {
            Some(reply) => reply.send(msg).await.is_ok(),
            None => false,
        };
        let mut queue = pending.borrow_mut();
        if !delivered {
            queue.front_mut().expect("still there").skipped = true;
        }
        if done {
            let p = queue.pop_front().expect("still there");
            if p.skipped {
                let n = &shared.stats.answers_skipped;
                n.set(n.get() + 1);
            }
        }
    }
}

/// Writes the requests as they come; `Ok` once every client is gone and Terminate is sent.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut requests: mpsc::Receiver<Request>,
    pending: &Queue,
    shared: &Shared,
) -> io::Result<()> {
    let mut buf = BytesMut::new();
    while let Some(request) = requests.recv().await {
        if request.reply.is_closed() {
            // Its caller gave up before it went out: not worth a round trip.
            let n = &shared.stats.requests_skipped;
            n.set(n.get() + 1);
            continue;
        }
        let depth = {
            let mut queue = pending.borrow_mut();
            queue.push_back(Pending {
                reply: request.reply,
                skipped: false,
            });
            queue.len()
        };
        let max = &shared.stats.max_in_flight;
        max.set(max.get().max(depth));
        wr.write_all(&request.bytes).await?;
        if let Some(mut data) = request.copy {
            loop {
                buf.clear();
                let last = match data.recv().await {
                    Some(CopyMsg::Data(chunk)) => {
                        Frontend::CopyData(chunk).encode(&mut buf);
                        false
                    }
                    Some(CopyMsg::Done) => {
                        Frontend::CopyDone.encode(&mut buf);
                        true
                    }
                    None => {
                        Frontend::CopyFail("COPY IN dropped by the client".into()).encode(&mut buf);
                        true
                    }
                };
                wr.write_all(&buf).await?;
                if last {
                    break;
                }
            }
        }
    }
    buf.clear();
    Frontend::Terminate.encode(&mut buf);
    wr.write_all(&buf).await?;
    wr.close().await
}
