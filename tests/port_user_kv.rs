//! A user's key-value server, sketched as tokio's tinydb example (one task per client,
//! `GET`/`SET` lines, a shared map; tokio needs `Arc<Mutex<HashMap>>`) and then written for
//! overlap, where tasks need not be `Send` and the map is an `Rc<RefCell<HashMap>>`. A
//! background task counts requests through an `mpsc` channel; a `Semaphore` caps the
//! clients served at once. Several clients at once check every answer.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{self, AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, Semaphore};
use overlap::task::JoinSet;
use support::within;

const HANG: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Db {
    map: RefCell<HashMap<String, String>>,
    /// The most clients served at once so far.
    peak: Cell<usize>,
    now: Cell<usize>,
}

enum Request {
    Get(String),
    Set(String, String),
    Del(String),
    Len,
}

impl std::str::FromStr for Request {
    type Err = String;
    fn from_str(line: &str) -> Result<Request, String> {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("GET"), Some(key), None) => Ok(Request::Get(key.into())),
            (Some("SET"), Some(key), Some(value)) => Ok(Request::Set(key.into(), value.into())),
            (Some("DEL"), Some(key), None) => Ok(Request::Del(key.into())),
            (Some("LEN"), None, None) => Ok(Request::Len),
            _ => Err(format!("bad request: {line:?}")),
        }
    }
}

impl Db {
    /// The answer to `req`. The `RefCell` borrow never crosses an `.await`.
    fn handle(&self, req: Request) -> String {
        let mut map = self.map.borrow_mut();
        match req {
            Request::Get(key) => match map.get(&key) {
                Some(value) => format!("VALUE {value}"),
                None => "NONE".into(),
            },
            Request::Set(key, value) => match map.insert(key, value) {
                Some(old) => format!("OLD {old}"),
                None => "NEW".into(),
            },
            Request::Del(key) => map
                .remove(&key)
                .map_or("NONE".into(), |v| format!("GONE {v}")),
            Request::Len => map.len().to_string(),
        }
    }
}

async fn serve_client(
    db: Rc<Db>,
    stream: TcpStream,
    served: mpsc::UnboundedSender<SocketAddr>,
) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next().await {
        let reply = match line?.parse::<Request>() {
            Ok(req) => db.handle(req),
            Err(e) => format!("ERR {e}"),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
        let _ = served.send(peer);
    }
    Ok(())
}

async fn server(listener: TcpListener, db: Rc<Db>, served: mpsc::UnboundedSender<SocketAddr>) {
    let limit = Rc::new(Semaphore::new(3));
    loop {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (db, served) = (db.clone(), served.clone());
        overlap::spawn(async move {
            db.now.set(db.now.get() + 1);
            db.peak.set(db.peak.get().max(db.now.get()));
            serve_client(db.clone(), stream, served).await.unwrap();
            db.now.set(db.now.get() - 1);
            drop(permit);
        });
    }
}

struct Client {
    lines: overlap::io::Lines<BufReader<overlap::net::OwnedReadHalf>>,
    write: overlap::net::OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        Client {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    async fn ask(&mut self, req: &str) -> String {
        self.write
            .write_all(format!("{req}\n").as_bytes())
            .await
            .unwrap();
        within(HANG, self.lines.next(), req).await.unwrap().unwrap()
    }
}

#[overlap::test]
async fn clients_share_one_map_through_rc_refcell() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = Rc::new(Db::default());
    let (served_tx, mut served) = mpsc::unbounded_channel();
    overlap::spawn(server(listener, db.clone(), served_tx)).detach();

    let mut a = Client::connect(addr).await;
    let mut b = Client::connect(addr).await;
    assert_eq!(a.ask("GET k").await, "NONE");
    assert_eq!(a.ask("SET k one value").await, "NEW");
    assert_eq!(b.ask("GET k").await, "VALUE one value");
    assert_eq!(b.ask("SET k two").await, "OLD one value");
    assert_eq!(a.ask("GET k").await, "VALUE two");
    assert_eq!(a.ask("LEN").await, "1");
    assert_eq!(b.ask("DEL k").await, "GONE two");
    assert_eq!(a.ask("DEL k").await, "NONE");
    assert_eq!(a.ask("PUT k v").await, r#"ERR bad request: "PUT k v""#);
    assert_eq!(db.map.borrow().len(), 0);

    // The counter task saw every request, from the right peer.
    let (a_addr, b_addr) = (a.write.local_addr().unwrap(), b.write.local_addr().unwrap());
    let mut seen = Vec::new();
    while let Ok(peer) = served.try_recv() {
        seen.push(peer);
    }
    let expected = [
        a_addr, a_addr, b_addr, b_addr, a_addr, a_addr, b_addr, a_addr, a_addr,
    ];
    assert_eq!(seen, expected);
}

#[overlap::test]
async fn many_clients_at_once_see_each_others_writes_and_the_cap_holds() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = Rc::new(Db::default());
    let (served_tx, _served) = mpsc::unbounded_channel();
    overlap::spawn(server(listener, db.clone(), served_tx)).detach();

    let mut clients = JoinSet::new();
    for i in 0..12 {
        clients.spawn(async move {
            let mut c = Client::connect(addr).await;
            for j in 0..20 {
                let key = format!("c{i}-{j}");
                assert_eq!(c.ask(&format!("SET {key} {}", i * j)).await, "NEW");
                assert_eq!(
                    c.ask(&format!("GET {key}")).await,
                    format!("VALUE {}", i * j)
                );
            }
        });
    }
    while let Some(done) = within(HANG, clients.join_next(), "clients").await {
        done.unwrap();
    }
    assert_eq!(db.map.borrow().len(), 12 * 20);
    assert!(db.peak.get() <= 3, "served {} at once", db.peak.get());
    assert!(db.peak.get() >= 1);
}
