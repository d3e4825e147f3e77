//! The relay: an accept loop spawning sessions into a `JoinSet`, the delivery task that
//! relays the queue to the next hop (one connection reused, retried with backoff), and the
//! graceful shutdown of both.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncReadExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::watch;
use overlap::task::JoinHandle;
use overlap::time::{sleep, timeout};
use overlap::JoinSet;

use crate::client::{stuff_into, Client};
use crate::session::{self, Config, Shared, Stats};
use crate::spool::{self, Spool};

/// Where and how a relay passes its queue on.
#[derive(Clone, Copy)]
pub struct NextHop {
    pub addr: SocketAddr,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// For each reply from the next hop.
    pub reply_timeout: Duration,
}

/// What the delivery task did.
#[derive(Default)]
pub struct Deliveries {
    pub delivered: Cell<u32>,
    pub bounced: Cell<u32>,
    /// Attempts that failed and were retried (connection refused, cut, 4xx).
    pub retries: Cell<u32>,
    pub connections: Cell<u32>,
}

pub struct Relay {
    pub addr: SocketAddr,
    pub shared: Rc<Shared>,
    pub deliveries: Rc<Deliveries>,
    stop: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    deliver: Option<JoinHandle<io::Result<()>>>,
}

impl Relay {
    /// A relay on `listener`, spooling under `root`, passing mail to `next_hop` if any.
    pub async fn start(
        listener: TcpListener,
        config: Config,
        root: &Path,
        next_hop: Option<NextHop>,
    ) -> io::Result<Relay> {
        let spool = Rc::new(Spool::create(root).await?);
        let (stop, stop_rx) = watch::channel(false);
        let shared = Rc::new(Shared {
            config,
            spool,
            stats: Stats::default(),
            stop: stop_rx,
        });
        let deliveries = Rc::new(Deliveries::default());
        let deliver =
            next_hop.map(|hop| overlap::spawn(deliver(shared.clone(), hop, deliveries.clone())));
        Ok(Relay {
            addr: listener.local_addr()?,
            accept: Some(overlap::spawn(accept_loop(listener, shared.clone()))),
            shared,
            deliveries,
            stop,
            deliver,
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn queue(&self) -> &PathBuf {
        &self.shared.spool.queue
    }

    /// Stops accepting, tells idle sessions goodbye and lets those mid-message finish
    /// (up to `grace`), lets the delivery task finish the message in hand; returns its
    /// result.
    pub async fn shut_down(mut self) -> io::Result<()> {
        let _ = self.stop.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        match self.deliver.take() {
            Some(deliver) => deliver.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // A relay dropped without `shut_down`: its tasks go too.
        for task in [self.accept.take()].into_iter().flatten() {
            task.abort();
        }
        if let Some(task) = self.deliver.take() {
            task.abort();
        }
    }
}

/// Accepts until told to stop, then waits for the sessions (each says goodbye when idle).
async fn accept_loop(listener: TcpListener, shared: Rc<Shared>) {
    let mut sessions = JoinSet::new();
    let mut stop = shared.stop.clone();
    let grace = shared.config.command_timeout;
    loop {
        if *stop.borrow() {
            break;
        }
        overlap::select! {
            accepted = listener.accept().fuse() => match accepted {
                Ok((tcp, _)) => {
                    sessions.spawn(session::serve(tcp, shared.clone()));
                }
                // Out of fds, say: wait a little rather than spin.
                Err(_) => sleep(Duration::from_millis(10)).await,
            },
            // Reaping finished sessions as they go keeps the set small.
            _ = sessions.join_next() => {},
            _ = Box::pin(stop.changed()).fuse() => {},
        }
    }
    drop(listener);
    let drain = async { while sessions.join_next().await.is_some() {} };
    // Sessions mid-message get the grace; then the rest are aborted, and waited for (as
    // tokio's `JoinSet::shutdown`), so their drafts are gone when the loop ends.
    if timeout(grace, drain).await.is_err() {
        sessions.shutdown().await;
    }
}

/// Relays the queue to the next hop until told to stop: oldest first, over one reused
/// connection, a failure retried with a doubling backoff, each file removed once the next
/// hop took it.
async fn deliver(shared: Rc<Shared>, hop: NextHop, stats: Rc<Deliveries>) -> io::Result<()> {
    let spool = &shared.spool;
    let mut stop = shared.stop.clone();
    let mut conn: Option<Client<TcpStream>> = None;
    let mut backoff = hop.first_backoff;
    'scan: loop {
        // Armed before the scan, so a message renamed in meanwhile is not missed.
        let arrived = spool.arrived.notified();
        overlap::pin_mut!(arrived);
        arrived.as_mut().enable();
        let queued = spool::queued(&spool.queue).await?;
        if queued.is_empty() {
            if *stop.borrow() {
                break;
            }
            overlap::select! {
                _ = arrived.fuse() => {},
                _ = Box::pin(stop.changed()).fuse() => {},
            }
            continue;
        }
        for path in queued {
            if *stop.borrow() {
                break 'scan;
            }
            match relay_one(&mut conn, hop, &path, &stats).await {
                Ok(true) => stats.delivered.set(stats.delivered.get() + 1),
                Ok(false) => stats.bounced.set(stats.bounced.get() + 1),
                Err(_) => {
                    conn = None;
                    stats.retries.set(stats.retries.get() + 1);
                    overlap::select! {
                        _ = sleep(backoff).fuse() => {},
                        _ = Box::pin(stop.changed()).fuse() => {},
                    }
                    backoff = (backoff * 2).min(hop.max_backoff);
                    continue 'scan;
                }
            }
            // Taken (or refused for good): off the queue.
            overlap::fs::remove_file(&path).await?;
            backoff = hop.first_backoff;
        }
    }
    if let Some(conn) = conn {
        let _ = timeout(hop.reply_timeout, conn.quit()).await;
    }
    Ok(())
}

/// One spool file to the next hop: `Ok(true)` taken, `Ok(false)` refused for good (5xx),
/// an error to retry.
async fn relay_one(
    conn: &mut Option<Client<TcpStream>>,
    hop: NextHop,
    path: &Path,
    stats: &Deliveries,
) -> io::Result<bool> {
    let wait = |what: &'static str| {
        move |_| io::Error::new(io::ErrorKind::TimedOut, format!("next hop: {what}"))
    };
    if conn.is_none() {
        let tcp = timeout(hop.reply_timeout, TcpStream::connect(hop.addr))
            .await
            .map_err(wait("connect"))??;
        // As MTAs do: replies are awaited after every command, so Nagle only delays.
        tcp.set_nodelay(true)?;
        let mut client = Client::new(tcp);
        timeout(hop.reply_timeout, client.hello("relay"))
            .await
            .map_err(wait("greeting"))??;
        stats.connections.set(stats.connections.get() + 1);
        *conn = Some(client);
    }
    let client = conn.as_mut().unwrap();
    // The envelope, then the body streamed from the file, stuffed on the way.
    let mut file = overlap::fs::File::open(path).await?;
    let mut head = Vec::new();
    loop {
        let start = head.len();
        if file.read_until(b'\n', &mut head).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a cut spool file",
            ));
        }
        if &head[start..] == b"\n" {
            break;
        }
    }
    let (from, to, _) = spool::parse(&head)?;
    let step = |reply: crate::client::Reply| -> io::Result<Option<bool>> {
        match reply.code {
            200..=399 => Ok(None),
            500..=599 => Ok(Some(false)),
            _ => Err(reply.error("next hop")),
        }
    };
    macro_rules! command {
        ($line:expr) => {{
            let reply = timeout(hop.reply_timeout, client.command($line))
                .await
                .map_err(wait("reply"))??;
            if let Some(done) = step(reply)? {
                let _ = client.command("RSET").await;
                return Ok(done);
            }
        }};
    }
    command!(&format!("MAIL FROM:<{from}>"));
    for rcpt in &to {
        command!(&format!("RCPT TO:<{rcpt}>"));
    }
    command!("DATA");
    // The final dot goes in the same write as the body's last bytes: written apart, Nagle's
    // algorithm would hold it until the next hop's delayed ACK (40 ms a message).
    let mut chunk = vec![0; 64 * 1024];
    let mut out = Vec::with_capacity(chunk.len() + 1024);
    let mut at_line_start = true;
    loop {
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            out.extend_from_slice(if at_line_start {
                b".\r\n"
            } else {
                b"\r\n.\r\n"
            });
            client.send_raw(&out).await?;
            break;
        }
        at_line_start = stuff_into(&chunk[..n], at_line_start, &mut out);
        if out.len() >= chunk.len() {
            client.send_raw(&out).await?;
            out.clear();
        }
    }
    let reply = timeout(hop.reply_timeout, client.reply())
        .await
        .map_err(wait("reply to the body"))??;
    Ok(step(reply)?.unwrap_or(true))
}
