//! The collector the shipper sends to: frames of `u32 length | body`, the body a batch id
//! line and then `source \t seq \t text` lines; each batch acked with its id as a `u64`.
//! It drops a line whose sequence number its source already passed (a resent batch after a
//! lost ack) and records a gap, which would be a lost line.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncReadIntExt, AsyncWrite, AsyncWriteIntExt};
use overlap::net::TcpListener;
use overlap::task::JoinSet;

/// What reached the collector, across its restarts.
#[derive(Default, Debug)]
pub struct Received {
    /// Each source's lines, once each, in the order they were taken.
    pub lines: BTreeMap<String, Vec<String>>,
    next: BTreeMap<String, u64>,
    /// Lines dropped as seen before.
    pub duplicates: u64,
    /// Lines whose sequence number skipped ahead: (source, expected, got).
    pub gaps: Vec<(String, u64, u64)>,
    pub batches: u64,
    pub connections: u64,
}

impl Received {
    pub fn texts(&self, source: &str) -> Vec<String> {
        self.lines.get(source).cloned().unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.lines.values().map(Vec::len).sum()
    }

    fn take(&mut self, source: &str, seq: u64, text: &str) {
        let next = self.next.entry(source.to_string()).or_insert(0);
        if seq < *next {
            self.duplicates += 1;
            return;
        }
        if seq > *next {
            self.gaps.push((source.to_string(), *next, seq));
        }
        *next = seq + 1;
        let lines = self.lines.entry(source.to_string()).or_default();
        lines.push(text.to_string());
    }
}

pub struct Collector {
    pub addr: SocketAddr,
    /// The accept loop and the connections: dropping the set aborts them, which closes
    /// every socket, as a collector process dying would.
    _tasks: JoinSet<()>,
}

impl Collector {
    /// Listens on `addr` (port 0 for a new one, or the port of one stopped before). The
    /// `die_after`th batch a connection takes is recorded and not acked: the connection
    /// closes, as a collector crashing between its write and its ack would.
    pub async fn start(
        addr: SocketAddr,
        store: Rc<RefCell<Received>>,
        die_after: Option<u64>,
    ) -> Collector {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Aborting the accept loop drops this set, which aborts the connections.
            let mut conns = JoinSet::new();
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                conn.set_nodelay(true).unwrap();
                store.borrow_mut().connections += 1;
                let store = store.clone();
                conns.spawn(async move {
                    // A reset or a cut frame is the shipper going away: it resends.
                    let _ = serve(conn, store, die_after).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Collector {
            addr,
            _tasks: tasks,
        }
    }
}

/// Serves one connection (a TCP stream, or one end of an in-memory duplex).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    store: Rc<RefCell<Received>>,
    die_after: Option<u64>,
) -> io::Result<()> {
    let mut taken = 0;
    loop {
        let len = conn.read_u32().await?;
        let mut body = vec![0; len as usize];
        conn.read_exact(&mut body).await?;
        let body = String::from_utf8(body).expect("batches are UTF-8");
        let (id, lines) = body.split_once('\n').expect("a batch id line");
        let id: u64 = id.parse().expect("a batch id");
        {
            let mut store = store.borrow_mut();
            store.batches += 1;
            for line in lines.lines() {
                let mut f = line.splitn(3, '\t');
                let (Some(source), Some(seq), Some(text)) = (f.next(), f.next(), f.next()) else {
                    panic!("a line has three fields: {line:?}")
                };
                store.take(source, seq.parse().expect("a sequence number"), text);
            }
        }
        taken += 1;
        if Some(taken) == die_after {
            return Ok(());
        }
        conn.write_u64(id).await?;
    }
}
