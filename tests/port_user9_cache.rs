//! A user's memcached-style cache server (the text protocol's `set`, `get`, `delete`,
//! `touch`, `flush_all`, with expiry), sketched as one would for tokio and tokio-util and
//! then written for overlap, its expiry on the new `time::DelayQueue`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! // One task owns the map and the expiry queue; connections send it commands.
//! let mut expiry = tokio_util::time::DelayQueue::new();
//! loop {
//!     tokio::select! {
//!         Some(cmd) = commands.recv() => match cmd {
//!             Set { key, item, ttl, reply } => {
//!                 if let Some(old) = map.get(&key).and_then(|e| e.expiry) { expiry.remove(&old); }
//!                 let expiry_key = ttl.map(|t| expiry.insert(key.clone(), t));
//!                 map.insert(key, Entry { item, expiry: expiry_key });
//!                 reply.send(Stored)
//!             }
//!             // get, delete (removes its expiry too), touch (expiry.reset), flush_all (clear)
//!         },
//!         Some(expired) = expiry.next() => { map.remove(expired.get_ref()); }
//!         else => break,
//!     }
//! }
//! // per connection: BufReader lines; `set k flags exptime bytes\r\n` then read_exact(bytes + 2)
//! ```
//!
//! The tests check: values byte-exact (with `\r\n` inside) through set, get of several keys,
//! delete; expiry at the exact second on a paused clock, `touch` moving it, and an
//! overwrite or delete cancelling the old expiry (a value set again without a TTL must not
//! be removed by its predecessor's); `flush_all`; 50 clients at once; malformed commands,
//! a bad data block and an oversized value answered with the protocol's errors while the
//! connection goes on; and the cache task ending once every connection and the listener
//! are gone.
//!
//! What the port changed, against tokio: nothing in the loop, since overlap's `select!`
//! takes tokio's (its first version, on futures-util's `select!`, had both branches on
//! `select_next_some()` and `complete` for `else`; the queue, a `FusedStream` terminated
//! from a `None` seen empty until the next insert, is skipped unpolled there either way).
//! `Arc<Mutex<HashMap>>` was never needed: the map lives in one task. The rest is tokio's
//! line for line.

mod support;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};
use overlap::time::{self, delay_queue, DelayQueue};

/// The largest value taken (memcached's default item size).
const MAX_VALUE: usize = 1 << 20;

enum Cmd {
    Set(
        Vec<u8>,
        u32,
        Vec<u8>,
        Option<Duration>,
        oneshot::Sender<&'static str>,
    ),
    Get(Vec<u8>, oneshot::Sender<Option<(u32, Vec<u8>)>>),
    Delete(Vec<u8>, oneshot::Sender<&'static str>),
    Touch(Vec<u8>, Option<Duration>, oneshot::Sender<&'static str>),
    Flush(oneshot::Sender<&'static str>),
}

struct Entry {
    flags: u32,
    value: Vec<u8>,
    expiry: Option<delay_queue::Key>,
}

/// The cache task: owns the map and the expiry queue; ends when every sender is gone and
/// nothing is left to expire. Counts expiries in `expired`.
async fn cache(mut commands: mpsc::UnboundedReceiver<Cmd>, expired: Rc<Cell<u32>>) {
    let mut map: HashMap<Vec<u8>, Entry> = HashMap::new();
    let mut expiry = DelayQueue::new();
    loop {
        overlap::select! {
            Some(cmd) = commands.recv() => match cmd {
                Cmd::Set(key, flags, value, ttl, reply) => {
                    if let Some(old) = map.get(&key).and_then(|e| e.expiry) {
                        expiry.remove(&old);
                    }
                    let at = ttl.map(|t| expiry.insert(key.clone(), t));
                    map.insert(key, Entry { flags, value, expiry: at });
                    let _ = reply.send("STORED");
                }
                Cmd::Get(key, reply) => {
                    let _ = reply.send(map.get(&key).map(|e| (e.flags, e.value.clone())));
                }
                Cmd::Delete(key, reply) => {
                    let gone = map.remove(&key);
                    if let Some(at) = gone.as_ref().and_then(|e| e.expiry) {
                        expiry.remove(&at);
                    }
                    let _ = reply.send(if gone.is_some() { "DELETED" } else { "NOT_FOUND" });
                }
                Cmd::Touch(key, ttl, reply) => {
                    let Some(entry) = map.get_mut(&key) else {
                        let _ = reply.send("NOT_FOUND");
                        continue;
                    };
                    match (entry.expiry, ttl) {
                        (Some(at), Some(t)) => expiry.reset(&at, t),
                        (Some(at), None) => {
                            expiry.remove(&at);
                            entry.expiry = None;
                        }
                        (None, Some(t)) => entry.expiry = Some(expiry.insert(key.clone(), t)),
                        (None, None) => {}
                    }
                    let _ = reply.send("TOUCHED");
                }
                Cmd::Flush(reply) => {
                    map.clear();
                    expiry.clear();
                    let _ = reply.send("OK");
                }
            },
            Some(gone) = expiry.next() => {
                map.remove(gone.get_ref());
                expired.set(expired.get() + 1);
            }
            else => break,
        }
    }
}

/// memcached's exptime: 0 is never, else seconds from now.
fn ttl(field: &[u8]) -> Option<Option<Duration>> {
    let secs: u64 = std::str::from_utf8(field).ok()?.parse().ok()?;
    Some((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Asks the cache task, through `tx`, and waits for its answer.
async fn ask<T>(tx: &mpsc::UnboundedSender<Cmd>, cmd: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> T {
    let (reply, answer) = oneshot::channel();
    assert!(tx.send(cmd(reply)).is_ok(), "the cache task is gone");
    answer.await.expect("the cache task dropped a reply")
}

/// One client connection: reads commands line by line, answers each.
async fn serve(stream: TcpStream, tx: mpsc::UnboundedSender<Cmd>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let words: Vec<&[u8]> = line
            .trim_ascii_end()
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        let answer: Vec<u8> = match words.as_slice() {
            [b"set", key, flags, exptime, bytes] => {
                let parsed = (|| {
                    let flags: u32 = std::str::from_utf8(flags).ok()?.parse().ok()?;
                    let len: usize = std::str::from_utf8(bytes).ok()?.parse().ok()?;
                    Some((flags, ttl(exptime)?, len))
                })();
                let Some((flags, ttl, len)) = parsed.filter(|_| key.len() <= 250) else {
                    write
                        .write_all(b"CLIENT_ERROR bad command line format\r\n")
                        .await?;
                    continue;
                };
                let key = key.to_vec();
                if len > MAX_VALUE {
                    // Skip the block without holding it, then refuse.
                    let skipped = overlap::io::copy(
                        &mut (&mut read).take(len as u64 + 2),
                        &mut overlap::io::sink(),
                    )
                    .await?;
                    if skipped < len as u64 + 2 {
                        return Ok(());
                    }
                    write
                        .write_all(b"SERVER_ERROR object too large for cache\r\n")
                        .await?;
                    continue;
                }
                let mut block = vec![0u8; len + 2];
                read.read_exact(&mut block).await?;
                if !block.ends_with(b"\r\n") {
                    // As memcached does: the rest of the line goes with the bad block.
                    if !block.ends_with(b"\n") {
                        read.read_until(b'\n', &mut Vec::new()).await?;
                    }
                    write.write_all(b"CLIENT_ERROR bad data chunk\r\n").await?;
                    continue;
                }
                block.truncate(len);
                let said = ask(&tx, |r| Cmd::Set(key, flags, block, ttl, r)).await;
                format!("{said}\r\n").into_bytes()
            }
            [b"get", keys @ ..] if !keys.is_empty() => {
                let mut out = Vec::new();
                for key in keys {
                    if let Some((flags, value)) = ask(&tx, |r| Cmd::Get(key.to_vec(), r)).await {
                        out.extend_from_slice(b"VALUE ");
                        out.extend_from_slice(key);
                        out.extend_from_slice(format!(" {flags} {}\r\n", value.len()).as_bytes());
                        out.extend_from_slice(&value);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                out.extend_from_slice(b"END\r\n");
                out
            }
            [b"delete", key] => {
                let said = ask(&tx, |r| Cmd::Delete(key.to_vec(), r)).await;
                format!("{said}\r\n").into_bytes()
            }
            [b"touch", key, exptime] => match ttl(exptime) {
                Some(ttl) => {
                    let said = ask(&tx, |r| Cmd::Touch(key.to_vec(), ttl, r)).await;
                    format!("{said}\r\n").into_bytes()
                }
                None => b"CLIENT_ERROR bad command line format\r\n".to_vec(),
            },
            [b"flush_all"] => format!("{}\r\n", ask(&tx, Cmd::Flush).await).into_bytes(),
            [b"quit"] => return Ok(()),
            _ => b"ERROR\r\n".to_vec(),
        };
        write.write_all(&answer).await?;
    }
}

/// A server: the cache task and an accept loop; returns its address, the count of
/// expiries, and the cache task's handle (it ends once the accept loop and every
/// connection are gone, and nothing is left to expire).
async fn start() -> (
    std::net::SocketAddr,
    Rc<Cell<u32>>,
    overlap::task::JoinHandle<()>,
    overlap::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let expired = Rc::new(Cell::new(0));
    let cache = overlap::spawn(cache(rx, expired.clone()));
    let acceptor = overlap::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            overlap::spawn(async move { serve(stream, tx).await.unwrap() });
        }
    });
    (addr, expired, cache, acceptor)
}

struct Client(BufReader<TcpStream>);

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        Client(BufReader::new(TcpStream::connect(addr).await.unwrap()))
    }

    /// Sends `req`, then reads the answer's lines until one of `ends` (or, for a `get`,
    /// `END`), returning everything read.
    async fn call(&mut self, req: &[u8]) -> Vec<u8> {
        self.0.get_mut().write_all(req).await.unwrap();
        let get = req.starts_with(b"get ");
        let mut out = Vec::new();
        loop {
            let start = out.len();
            assert_ne!(
                self.0.read_until(b'\n', &mut out).await.unwrap(),
                0,
                "closed"
            );
            let line = &out[start..];
            if !get || line == b"END\r\n" {
                return out;
            }
            if let Some(len) = line.strip_prefix(b"VALUE ") {
                let len: usize = std::str::from_utf8(len.rsplit(|&b| b == b' ').next().unwrap())
                    .unwrap()
                    .trim_end()
                    .parse()
                    .unwrap();
                let mut block = vec![0u8; len + 2];
                self.0.read_exact(&mut block).await.unwrap();
                out.extend_from_slice(&block);
            }
        }
    }
}

#[overlap::test]
async fn values_round_trip_byte_exact_and_many_clients_share_the_cache() {
    let (addr, _, _cache, _acceptor) = start().await;
    let mut c = Client::connect(addr).await;
    assert_eq!(
        c.call(b"set a 7 0 9\r\nline\r\ntwo\r\n").await,
        b"STORED\r\n"
    );
    assert_eq!(c.call(b"set b 0 0 0\r\n\r\n").await, b"STORED\r\n");
    assert_eq!(
        c.call(b"get a missing b\r\n").await,
        b"VALUE a 7 9\r\nline\r\ntwo\r\nVALUE b 0 0\r\n\r\nEND\r\n"
    );
    assert_eq!(c.call(b"delete a\r\n").await, b"DELETED\r\n");
    assert_eq!(c.call(b"delete a\r\n").await, b"NOT_FOUND\r\n");
    assert_eq!(c.call(b"get a\r\n").await, b"END\r\n");

    let clients: Vec<_> = (0..50)
        .map(|i| {
            overlap::spawn(async move {
                let mut c = Client::connect(addr).await;
                let value = format!("value-{i}-").repeat(i + 1);
                let set = format!("set k{i} {i} 0 {}\r\n{value}\r\n", value.len());
                assert_eq!(c.call(set.as_bytes()).await, b"STORED\r\n");
                let got = c.call(format!("get k{i}\r\n").as_bytes()).await;
                let want = format!("VALUE k{i} {i} {}\r\n{value}\r\nEND\r\n", value.len());
                assert_eq!(String::from_utf8(got).unwrap(), want);
            })
        })
        .collect();
    for c in clients {
        support::within(Duration::from_secs(20), c, "a client")
            .await
            .unwrap();
    }
}

#[overlap::test(start_paused = true)]
async fn values_expire_at_their_second_and_touch_overwrite_delete_move_it() {
    let (addr, expired, _cache, _acceptor) = start().await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.call(b"set t 0 10 1\r\nx\r\n").await, b"STORED\r\n");
    assert_eq!(c.call(b"set kept 0 5 1\r\ny\r\n").await, b"STORED\r\n");
    // Set again without a TTL: its predecessor's expiry must not remove it.
    assert_eq!(c.call(b"set kept 0 0 1\r\nz\r\n").await, b"STORED\r\n");
    assert_eq!(c.call(b"set gone 0 3 1\r\nw\r\n").await, b"STORED\r\n");
    assert_eq!(c.call(b"delete gone\r\n").await, b"DELETED\r\n");
    assert_eq!(c.call(b"set gone 0 0 1\r\nv\r\n").await, b"STORED\r\n");

    time::advance(Duration::from_millis(9_999)).await;
    assert_eq!(c.call(b"get t\r\n").await, b"VALUE t 0 1\r\nx\r\nEND\r\n");
    assert_eq!(c.call(b"touch t 5\r\n").await, b"TOUCHED\r\n"); // now due at 15 s
    time::advance(Duration::from_millis(2)).await;
    assert_eq!(
        c.call(b"get t kept gone\r\n").await.len(),
        b"VALUE t 0 1\r\nx\r\nVALUE kept 0 1\r\nz\r\nVALUE gone 0 1\r\nv\r\nEND\r\n".len()
    );
    assert_eq!(
        expired.get(),
        0,
        "nothing expired yet: the old expiries were cancelled"
    );
    time::advance(Duration::from_secs(5)).await;
    assert_eq!(c.call(b"get t\r\n").await, b"END\r\n");
    assert_eq!(expired.get(), 1);
    assert_eq!(
        c.call(b"get kept gone\r\n").await,
        b"VALUE kept 0 1\r\nz\r\nVALUE gone 0 1\r\nv\r\nEND\r\n"
    );

    assert_eq!(c.call(b"set f 0 100 1\r\nq\r\n").await, b"STORED\r\n");
    assert_eq!(c.call(b"flush_all\r\n").await, b"OK\r\n");
    assert_eq!(c.call(b"get f kept\r\n").await, b"END\r\n");
    time::advance(Duration::from_secs(200)).await;
    assert_eq!(expired.get(), 1, "a flushed value's expiry went with it");
    assert_eq!(c.call(b"touch f 1\r\n").await, b"NOT_FOUND\r\n");
}

#[overlap::test]
async fn bad_commands_get_the_protocols_errors_and_the_connection_goes_on() {
    let (addr, _, _cache, _acceptor) = start().await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.call(b"bogus\r\n").await, b"ERROR\r\n");
    assert_eq!(
        c.call(b"set k x 0 1\r\n").await,
        b"CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        c.call(b"set k 0 0 3\r\nabcde\r\n").await,
        b"CLIENT_ERROR bad data chunk\r\n"
    );
    // The block was read as 5 bytes, "abcde", which ends in no CRLF: the rest of its line
    // goes with it, and the next line is a command again.
    assert_eq!(
        c.call(b"touch k never\r\n").await,
        b"CLIENT_ERROR bad command line format\r\n"
    );
    let big = MAX_VALUE + 1;
    let mut req = format!("set big 0 0 {big}\r\n").into_bytes();
    req.extend(std::iter::repeat_n(b'b', big));
    req.extend_from_slice(b"\r\n");
    assert_eq!(
        c.call(&req).await,
        b"SERVER_ERROR object too large for cache\r\n"
    );
    let long_key = "k".repeat(251);
    let req = format!("set {long_key} 0 0 1\r\n");
    assert_eq!(
        c.call(req.as_bytes()).await,
        b"CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(c.call(b"set ok 1 0 2\r\nhi\r\n").await, b"STORED\r\n");
    assert_eq!(
        c.call(b"get ok big\r\n").await,
        b"VALUE ok 1 2\r\nhi\r\nEND\r\n"
    );
}

#[overlap::test(start_paused = true)]
async fn the_cache_task_ends_once_its_clients_are_gone_and_nothing_is_left_to_expire() {
    let (addr, expired, cache, acceptor) = start().await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.call(b"set last 0 30 1\r\nx\r\n").await, b"STORED\r\n");
    c.0.get_mut().write_all(b"quit\r\n").await.unwrap();
    let mut rest = Vec::new();
    assert_eq!(c.0.read_to_end(&mut rest).await.unwrap(), 0, "quit closes");
    acceptor.abort();
    drop(c);
    // Every sender is gone once the connection's task ends; the queue still holds a value,
    // so the task waits for it to expire, then ends.
    time::sleep(Duration::from_secs(31)).await;
    support::within(Duration::from_secs(20), cache, "the cache task")
        .await
        .unwrap();
    assert_eq!(expired.get(), 1);
}
