//! The transmission phase of one connection: a reader that takes a permit per request (at
//! most `max_in_flight` read and not yet answered, so a client sending faster than it
//! reads makes the server stop reading the socket), reads each fixed 28-byte header and a
//! WRITE's payload, and spawns a task per request on the shared `PositionalFile`; a
//! writer task that sends the replies in the order they are done, matched by handle,
//! each permit given back once its reply is written.
//!
//! A request's trouble answers only it (EINVAL, EPERM, ENOSPC); a WRITE longer than
//! `max_payload` is read and dropped, then answered EINVAL, since the stream can go on
//! after it. What leaves the stream nowhere to go on from ends the connection: a bad
//! magic, a WRITE longer than `max_skip`, the client closing mid-request. However it
//! ends, the requests already read finish and are answered first (a DISC's promise),
//! and on a shutdown the export is flushed before the close.

use std::io;
use std::rc::Rc;

use overlap::fs::PositionalFile;
use overlap::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use overlap::sync::{mpsc, CancellationToken, OwnedSemaphorePermit, Semaphore};
use overlap::task::JoinSet;

use super::device::Device;
use super::proto::*;
use super::server::{Config, End, Shared};

/// A reply on its way to the writer, holding its request's permit and count until it is
/// written.
struct Reply {
    handle: u64,
    result: Result<Vec<u8>, u32>,
    _permit: OwnedSemaphorePermit,
    _in_flight: InFlight,
}

/// Counts a request from its header read to its reply written (or dropped).
struct InFlight(Rc<Shared>);

impl InFlight {
    fn new(shared: &Rc<Shared>) -> InFlight {
        let s = &shared.stats;
        s.in_flight.set(s.in_flight.get() + 1);
        s.peak_in_flight
            .set(s.peak_in_flight.get().max(s.in_flight.get()));
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.0.stats;
        s.in_flight.set(s.in_flight.get() - 1);
    }
}

/// What the reader found next.
enum Next {
    Request(Request, Vec<u8>),
    /// A WRITE over `max_payload`, its payload skipped: EINVAL without running it.
    TooLong(Request),
    Disc,
}

pub async fn serve<S>(
    stream: S,
    file: PositionalFile,
    size: u64,
    read_only: bool,
    shared: &Rc<Shared>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let cfg = shared.cfg;
    let (rd, wr) = overlap::io::split(stream);
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (tx, rx) = mpsc::channel::<Reply>(cfg.max_in_flight);
    let writer_failed = CancellationToken::new();
    let writer = overlap::spawn(write_replies(wr, rx, writer_failed.clone()));
    let permits = Rc::new(Semaphore::new(cfg.max_in_flight));
    let dev = Rc::new(Device {
        file,
        size,
        read_only,
        shared: shared.clone(),
    });
    let mut requests = JoinSet::new();
    let end = loop {
        let permit = overlap::select! {
            p = permits.clone().acquire_owned() => p.expect("never closed"),
            _ = shared.stop.cancelled() => break End::Shutdown,
            _ = writer_failed.cancelled() => break End::ReplyFailed,
        };
        while requests.try_join_next().is_some() {}
        // A request half read when the shutdown comes is dropped with the connection.
        let next = overlap::select! {
            next = read_request(&mut rd, &cfg, shared) => next,
            _ = shared.stop.cancelled() => break End::Shutdown,
            _ = writer_failed.cancelled() => break End::ReplyFailed,
        };
        let (req, payload) = match next {
            Ok(Next::Request(req, payload)) => (req, payload),
            Ok(Next::TooLong(req)) => {
                let reply = Reply {
                    handle: req.handle,
                    result: Err(EINVAL),
                    _permit: permit,
                    _in_flight: InFlight::new(shared),
                };
                // Room is sure: the channel holds as many as there are permits.
                let _ = tx.send(reply).await;
                continue;
            }
            Ok(Next::Disc) => break End::Disconnect,
            Err(end) => break end,
        };
        let in_flight = InFlight::new(shared);
        let (dev, tx) = (dev.clone(), tx.clone());
        requests.spawn(async move {
            let result = dev.run(req, payload).await;
            // A writer gone: nobody to tell.
            let _ = tx
                .send(Reply {
                    handle: req.handle,
                    result,
                    _permit: permit,
                    _in_flight: in_flight,
                })
                .await;
        });
    };
    // Every request read is answered, whatever ended the connection.
    while requests.join_next().await.is_some() {}
    if end == End::Shutdown && !read_only {
        let _ = dev.sync("shutdown").await;
    }
    drop(tx);
    let _ = writer.await;
    end
}

async fn read_request<R: AsyncRead + Unpin>(
    rd: &mut BufReader<R>,
    cfg: &Config,
    shared: &Shared,
) -> Result<Next, End> {
    let io_end = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => End::Truncated,
        _ => End::Io(e.to_string()),
    };
    if rd.fill_buf().await.map_err(io_end)?.is_empty() {
        return Err(End::Eof);
    }
    let mut head = [0u8; REQUEST_LEN];
    rd.read_exact(&mut head).await.map_err(io_end)?;
    let req = Request::parse(&head).map_err(End::BadMagic)?;
    let stats = &shared.stats;
    stats.requests.set(stats.requests.get() + 1);
    match req.ty {
        CMD_DISC => Ok(Next::Disc),
        CMD_WRITE if req.len > cfg.max_skip => Err(End::AbsurdWrite(req.len)),
        CMD_WRITE if req.len > cfg.max_payload => {
            let want = req.len as u64;
            let skipped = overlap::io::copy((&mut *rd).take(want), &mut overlap::io::sink())
                .await
                .map_err(io_end)?;
            if skipped < want {
                return Err(End::Truncated);
            }
            Ok(Next::TooLong(req))
        }
        CMD_WRITE => {
            let mut payload = vec![0u8; req.len as usize];
            rd.read_exact(&mut payload).await.map_err(io_end)?;
            Ok(Next::Request(req, payload))
        }
        _ => Ok(Next::Request(req, Vec::new())),
    }
}

/// Writes each reply as it comes (header, then a READ's data), giving its permit back
/// once written; on a write error, says so through `failed` and stops, so the senders'
/// replies (and permits) are dropped at once.
async fn write_replies<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Reply>,
    failed: CancellationToken,
) {
    while let Some(reply) = rx.recv().await {
        let (error, data) = match &reply.result {
            Ok(data) => (0, &data[..]),
            Err(e) => (*e, &[][..]),
        };
        let head = encode_reply(error, reply.handle);
        let written = async {
            wr.write_all(&head).await?;
            wr.write_all(data).await
        };
        if written.await.is_err() {
            failed.cancel();
            return;
        }
    }
    let _ = wr.close().await;
}
