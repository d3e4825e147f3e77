//! The broker: an accept loop under a root token, a tracked task per connection, the
//! publish and subscribe sessions, and the shutdown.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{mpsc, oneshot, CancellationToken};
use overlap::task::TaskTracker;
use overlap::time::{sleep, sleep_until, Instant};

use crate::topic::{Limits, Publish, Reader, Topic};

pub struct Config {
    pub dir: PathBuf,
    pub topics: Vec<&'static str>,
    pub limits: Limits,
    /// How long a delivered record may stay unacked before it is sent again.
    pub redeliver: Duration,
    /// Records a consumer may hold unacked.
    pub window: usize,
}

pub struct Broker {
    pub addr: SocketAddr,
    pub token: CancellationToken,
    pub tracker: TaskTracker,
    pub topics: Rc<HashMap<String, Rc<Topic>>>,
}

/// The longest command line taken.
const MAX_LINE: usize = 256;

impl Broker {
    /// Recovers every topic under `config.dir` and serves on a loopback port.
    pub async fn start(config: Config) -> io::Result<Broker> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut topics = HashMap::new();
        for name in &config.topics {
            let dir = config.dir.join(name);
            let topic = Topic::open(dir, config.limits, token.child_token(), &tracker).await?;
            topics.insert(name.to_string(), topic);
        }
        let topics = Rc::new(topics);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config = Rc::new(config);
        let (t, tr, tops) = (token.clone(), tracker.clone(), topics.clone());
        tracker.spawn(async move {
            loop {
                let accepted = overlap::select! {
                    _ = t.cancelled() => break,
                    a = listener.accept().fuse() => a,
                };
                let conn = match accepted {
                    Ok((conn, _)) => conn,
                    // Out of fds (or memory): the connection waits in the kernel's queue;
                    // back off while sessions close theirs, as the listener's docs advise.
                    Err(e) if out_of_resources(&e) => {
                        sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    Err(_) => break,
                };
                let (t, tops, config) = (t.clone(), tops.clone(), config.clone());
                // The whole session under the token: a client stalled anywhere (halfway
                // through a payload, say) cannot hold the shutdown.
                tr.spawn(async move {
                    let _ = t
                        .run_until_cancelled(session(conn, &tops, &config, &t))
                        .await;
                });
            }
        });
        Ok(Broker {
            addr,
            token,
            tracker,
            topics,
        })
    }

    /// Stops accepting, ends every session and writer, and waits for them.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Whether an accept error means "no descriptors or memory left right now".
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Reads one line of at most `MAX_LINE` bytes; `None` at a clean end of input.
async fn read_line(rd: &mut BufReader<OwnedReadHalf>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = (&mut *rd)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line too long or cut",
        ));
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line not UTF-8"))
}

async fn session(
    conn: TcpStream,
    topics: &HashMap<String, Rc<Topic>>,
    config: &Config,
    token: &CancellationToken,
) -> io::Result<()> {
    // Small answers and acks each go at once: with Nagle's algorithm a second small
    // write waits for the peer's delayed ACK (40 ms on Linux), longer than a redelivery.
    conn.set_nodelay(true)?;
    let (rd, mut wr) = conn.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let line = overlap::select! {
            _ = token.cancelled() => return Ok(()),
            l = read_line(&mut rd).fuse() => l,
        };
        let line = match line {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e) => return refuse(&mut wr, &e.to_string()).await,
        };
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["PUB", name, len] => {
                let Some(topic) = topics.get(name) else {
                    return refuse(&mut wr, "no such topic").await;
                };
                let len: u32 = match len.parse() {
                    Ok(n) if n <= crate::log::MAX_PAYLOAD => n,
                    _ => return refuse(&mut wr, "bad length").await,
                };
                let mut payload = vec![0; len as usize];
                rd.read_exact(&mut payload).await?;
                let (reply, answer) = oneshot::channel();
                let answer = match topic.publish.send(Publish { payload, reply }).await {
                    Ok(()) => answer.await.unwrap_or_else(|_| Err("shutting down".into())),
                    Err(_) => Err("shutting down".into()),
                };
                let out = match answer {
                    Ok(offset) => format!("OK {offset}\n"),
                    Err(reason) => format!("ERR {reason}\n"),
                };
                wr.write_all(out.as_bytes()).await?;
            }
            ["SUB", name, from] => {
                let Some(topic) = topics.get(name) else {
                    return refuse(&mut wr, "no such topic").await;
                };
                let Ok(from) = from.parse() else {
                    return refuse(&mut wr, "bad offset").await;
                };
                return subscribe(rd, wr, topic, from, config, token).await;
            }
            ["FETCH", name, from, max] => {
                let Some(topic) = topics.get(name) else {
                    return refuse(&mut wr, "no such topic").await;
                };
                let (Ok(from), Ok(max)) = (from.parse(), max.parse()) else {
                    return refuse(&mut wr, "bad offset or size").await;
                };
                // A long poll: with nothing past `from` yet, the answer waits for it.
                let mut committed = topic.committed.subscribe();
                let mut reader = Reader::at(topic, from).await?;
                while reader.send_batch(topic, &mut wr, max).await?.is_none() {
                    overlap::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = committed.changed().fuse() => {}
                    }
                }
            }
            _ => return refuse(&mut wr, "unknown command").await,
        }
    }
}

async fn refuse(wr: &mut OwnedWriteHalf, reason: &str) -> io::Result<()> {
    wr.write_all(format!("ERR {reason}\n").as_bytes()).await
}

/// Streams `topic` from `from`: what is on disk, then live records, at most `window`
/// unacked, each sent again once `redeliver` passed without its ACK.
async fn subscribe(
    mut rd: BufReader<OwnedReadHalf>,
    mut wr: OwnedWriteHalf,
    topic: &Topic,
    from: u64,
    config: &Config,
    token: &CancellationToken,
) -> io::Result<()> {
    let mut reader = match Reader::at(topic, from).await {
        Ok(r) => r,
        Err(e) => return refuse(&mut wr, &e.to_string()).await,
    };
    // The acks come in through a task of their own: a read_line is not cancel-safe, so it
    // cannot sit in the select! below.
    let (ack_tx, mut acks) = mpsc::channel::<u64>(64);
    let ack_reader = overlap::spawn(async move {
        while let Ok(Some(line)) = read_line(&mut rd).await {
            let Some(offset) = line.strip_prefix("ACK ").and_then(|o| o.parse().ok()) else {
                break;
            };
            if ack_tx.send(offset).await.is_err() {
                break;
            }
        }
    });
    let _abort = AbortOnDrop(ack_reader);
    let mut committed = topic.committed.subscribe();
    let mut unacked: BTreeMap<u64, (Vec<u8>, Instant)> = BTreeMap::new();
    loop {
        let mut out = Vec::new();
        while unacked.len() < config.window {
            let Some((offset, payload)) = reader.next(topic).await? else {
                break;
            };
            push_msg(&mut out, offset, &payload);
            unacked.insert(offset, (payload, Instant::now() + config.redeliver));
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
        }
        let oldest = unacked
            .iter()
            .min_by_key(|(_, (_, due))| *due)
            .map(|(o, (_, d))| (*o, *d));
        let far = Instant::now() + Duration::from_secs(3600);
        overlap::select! {
            _ = token.cancelled() => return Ok(()),
            ack = acks.recv().fuse() => match ack {
                Some(offset) => { unacked.remove(&offset); }
                None => return Ok(()),
            },
            _ = committed.changed().fuse() => {}
            _ = sleep_until(oldest.map_or(far, |(_, d)| d)).fuse() => {
                if let Some((offset, _)) = oldest {
                    let (payload, due) = unacked.get_mut(&offset).unwrap();
                    *due = Instant::now() + config.redeliver;
                    let mut out = Vec::new();
                    push_msg(&mut out, offset, payload);
                    wr.write_all(&out).await?;
                }
            }
        }
    }
}

fn push_msg(out: &mut Vec<u8>, offset: u64, payload: &[u8]) {
    out.extend_from_slice(format!("MSG {offset} {}\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
}

struct AbortOnDrop(overlap::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
