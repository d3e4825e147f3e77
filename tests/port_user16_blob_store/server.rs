//! The TCP protocol, one request after another per connection, each a line:
//! `PUT <len>` then the bytes (`OK <hash>`), `GET <hash>` (`OK <len>` then the bytes, read
//! from the pack in bounded chunks), `HAS <hash>` (`YES <len>` or `NO`), `DEL <hash>`
//! (`OK`); a missing blob or a failed read is an `ERR` line and the connection goes on; a
//! malformed request is an `ERR` line and that connection closes.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::{JoinHandle, JoinSet};

use super::hash::{from_hex, to_hex};
use super::store::{Store, CHUNK};

#[derive(Clone, Debug)]
pub struct Config {
    pub max_blob: u64,
    pub max_line: usize,
    /// How long one read of a blob's chunk may wait before the GET fails.
    pub read_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_blob: 64 << 20,
            max_line: 64,
            read_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
pub struct ServerStats {
    pub open: Cell<usize>,
    pub malformed: Cell<u64>,
    pub vanished_mid_put: Cell<u64>,
    pub timeouts: Cell<u64>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Rc<ServerStats>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(host: &str, store: Rc<Store>, cfg: Config) -> Server {
        let listener = TcpListener::bind((host, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Rc::new(ServerStats::default());
        let st = stats.clone();
        let task = overlap::spawn(async move {
            // Dropped with the acceptor, the set aborts every connection's task.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (store, cfg, st) = (store.clone(), cfg.clone(), st.clone());
                conns.spawn(async move {
                    st.open.set(st.open.get() + 1);
                    let _open = Counted(st.clone());
                    let _ = serve(stream, &store, &cfg, &st).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Server { addr, stats, task }
    }

    /// Stops accepting and ends every connection.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

struct Counted(Rc<ServerStats>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

enum Request {
    Put(u64),
    Get(u64),
    Has(u64),
    Del(u64),
}

fn parse(line: &str, cfg: &Config) -> Result<Request, String> {
    let (verb, arg) = line.split_once(' ').ok_or("no argument")?;
    let hash = || from_hex(arg).ok_or_else(|| format!("bad hash {arg:?}"));
    match verb {
        "PUT" => {
            let len: u64 = arg.parse().map_err(|_| format!("bad length {arg:?}"))?;
            if len > cfg.max_blob {
                return Err(format!(
                    "blob of {len} bytes over the limit of {}",
                    cfg.max_blob
                ));
            }
            Ok(Request::Put(len))
        }
        "GET" => Ok(Request::Get(hash()?)),
        "HAS" => Ok(Request::Has(hash()?)),
        "DEL" => Ok(Request::Del(hash()?)),
        _ => Err(format!("unknown verb {verb:?}")),
    }
}

async fn serve(stream: TcpStream, store: &Store, cfg: &Config, st: &ServerStats) -> io::Result<()> {
    let mut conn = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut conn)
            .take(cfg.max_line as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let req = match line.strip_suffix(b"\n") {
            Some(l) => std::str::from_utf8(l)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|l| parse(l, cfg)),
            None if n > cfg.max_line => Err("line too long".to_string()),
            None => Err("cut short".to_string()),
        };
        let req = match req {
            Ok(r) => r,
            Err(why) => {
                st.malformed.set(st.malformed.get() + 1);
                let _ = reply(&mut conn, &format!("ERR bad request: {why}\n")).await;
                return Ok(());
            }
        };
        match req {
            Request::Put(len) => match store.put_from(&mut conn, len).await {
                Ok(h) => reply(&mut conn, &format!("OK {}\n", to_hex(h))).await?,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    st.vanished_mid_put.set(st.vanished_mid_put.get() + 1);
                    return Err(e);
                }
                Err(e) => reply(&mut conn, &format!("ERR {e}\n")).await?,
            },
            Request::Get(h) => get(&mut conn, store, cfg, st, h).await?,
            Request::Has(h) => {
                let answer = match store.lookup(h) {
                    Some((_, loc)) => format!("YES {}\n", loc.len),
                    None => "NO\n".to_string(),
                };
                reply(&mut conn, &answer).await?
            }
            Request::Del(h) => match store.delete(h).await {
                Ok(true) => reply(&mut conn, "OK\n").await?,
                Ok(false) => reply(&mut conn, "ERR not found\n").await?,
                Err(e) => reply(&mut conn, &format!("ERR {e}\n")).await?,
            },
        }
    }
}

async fn reply(conn: &mut BufReader<TcpStream>, s: &str) -> io::Result<()> {
    conn.get_mut().write_all(s.as_bytes()).await
}

/// Streams a blob back a chunk at a time. The first chunk is read before the answer, so a
/// read that fails or times out there is an `ERR`; one failing later cuts the connection.
async fn get(
    conn: &mut BufReader<TcpStream>,
    store: &Store,
    cfg: &Config,
    st: &ServerStats,
    h: u64,
) -> io::Result<()> {
    let Some((pack, loc)) = store.lookup(h) else {
        return reply(conn, "ERR not found\n").await;
    };
    let mut buf = vec![0u8; CHUNK.min(loc.len as usize)];
    let mut pos = 0u64;
    loop {
        let n = CHUNK.min((loc.len - pos) as usize);
        let read = Store::read_chunk(&pack, loc, pos, &mut buf[..n]);
        let err = match overlap::time::timeout(cfg.read_timeout, read).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => {
                st.timeouts.set(st.timeouts.get() + 1);
                Some("timed out reading the blob".to_string())
            }
        };
        match (err, pos) {
            (Some(e), 0) => return reply(conn, &format!("ERR {e}\n")).await,
            (Some(e), _) => return Err(io::Error::other(e)),
            (None, 0) => reply(conn, &format!("OK {}\n", loc.len)).await?,
            (None, _) => {}
        }
        conn.get_mut().write_all(&buf[..n]).await?;
        pos += n as u64;
        if pos == loc.len {
            return Ok(());
        }
    }
}
