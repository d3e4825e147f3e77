//! The line protocol over TCP, and the tests' client.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
use overlap::task::JoinSet;

use super::store::Store;

/// The longest request line taken; a longer one is answered `ERR` and skipped.
const MAX_LINE: usize = 4096;

pub struct Server {
    pub addr: SocketAddr,
    accept: overlap::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(store: Rc<Store>) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = overlap::spawn(async move {
            // The connections end with the accept loop: the set aborts them when dropped.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(serve(store.clone(), stream));
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Server { addr, accept })
    }

    /// Stops accepting and ends every connection.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }
}

async fn serve(store: Rc<Store>, stream: TcpStream) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut rd, &mut line).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let reply = if line.len() > MAX_LINE {
            "ERR line too long".to_string()
        } else {
            match std::str::from_utf8(&line) {
                Ok(text) => answer(&store, text.trim_end_matches(['\r', '\n'])).await,
                Err(_) => "ERR not UTF-8".to_string(),
            }
        };
        if send(&mut wr, &reply).await.is_err() {
            return;
        }
    }
}

/// One line into `line` (without caring how long: past `MAX_LINE` the rest is dropped);
/// false at the end of the stream.
async fn read_line(rd: &mut BufReader<OwnedReadHalf>, line: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let buf = rd.fill_buf().await?;
        if buf.is_empty() {
            return Ok(!line.is_empty());
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(line.len());
        line.extend_from_slice(&buf[..n.min(room)]);
        rd.consume_unpin(n);
        if done {
            return Ok(true);
        }
    }
}

async fn send(wr: &mut OwnedWriteHalf, reply: &str) -> io::Result<()> {
    wr.write_all(format!("{reply}\n").as_bytes()).await
}

async fn answer(store: &Store, line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let cmd = parts.next().unwrap_or("");
    let key = parts.next().filter(|k| !k.is_empty());
    let rest = parts.next();
    let res = match (cmd, key, rest) {
        ("SET", Some(k), Some(v)) => store
            .set(k.as_bytes(), v.as_bytes())
            .await
            .map(|_| "OK".into()),
        ("SET", _, _) => return "ERR usage: SET key value".into(),
        ("GET", Some(k), None) => store.get(k.as_bytes()).await.map(|v| match v {
            Some(v) => format!("VALUE {}", String::from_utf8_lossy(&v)),
            None => "NOTFOUND".into(),
        }),
        ("GET", _, _) => return "ERR usage: GET key".into(),
        ("DEL", Some(k), None) => store
            .del(k.as_bytes())
            .await
            .map(|had| if had { "OK" } else { "NOTFOUND" }.into()),
        ("DEL", _, _) => return "ERR usage: DEL key".into(),
        ("COMPACT", None, None) => store
            .compact()
            .await
            .map(|(before, after)| format!("OK {before} {after}")),
        ("STATS", None, None) => Ok(format!(
            "keys={} records={} syncs={} compactions={}",
            store.len(),
            store.stats.records.get(),
            store.stats.syncs.get(),
            store.stats.compactions.get()
        )),
        ("COMPACT" | "STATS", _, _) => return format!("ERR {cmd} takes no arguments"),
        ("", _, _) => return "ERR empty line".into(),
        _ => return format!("ERR unknown command {cmd:?}"),
    };
    res.unwrap_or_else(|e| format!("ERR {e}"))
}

/// The tests' client: a request line, its one reply line.
pub struct Client {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
        Client {
            rd: BufReader::new(rd),
            wr,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    pub async fn reply(&mut self) -> String {
        let mut line = String::new();
        self.rd.read_line(&mut line).await.unwrap();
        assert!(line.ends_with('\n'), "a whole reply: {line:?}");
        line.trim_end().to_string()
    }

    pub async fn ask(&mut self, req: &str) -> String {
        self.send_raw(format!("{req}\n").as_bytes()).await;
        self.reply().await
    }
}
