//! A small line-based TCP chat service, written through the `overlap` facade only, the way
//! a tokio user would first write it: one task per client, an `mpsc` hub that fans lines
//! out to bounded per-client queues (a client whose queue fills is dropped, so it cannot
//! stall the others), an idle `timeout` per client, a log file written with `fs`, a
//! `spawn_blocking` summary of that log, and a graceful shutdown on a `Notify` that joins
//! every task. Loopback clients check what arrives, and in what order, and that the whole
//! run leaves no fd open.
//!
//! What the tokio-style first try had to change, as the README says: `select!` branches
//! want fused futures (`.fuse()` on `accept`, `recv`, `read_line`), take no `if` guard and
//! no refutable pattern; `shutdown()` on a write half is `close()`; `lines.next_line()` is
//! `lines.next().await.transpose()`. Two places needed the library to change: a
//! `Notified` enabled once before the loop goes in by name (it is fused), and
//! `done = clients.join_next() =>` waits while the set is empty, where the `.fuse()`d
//! form took an empty set's `None` on every turn and held the whole runtime.

mod support;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{FusedFuture, FutureExt};
use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot, Notify};
use overlap::task::JoinSet;
use overlap::time::timeout;

const HANG: Duration = Duration::from_secs(10);
/// How many lines a client's queue holds before the hub drops that client.
const QUEUE: usize = 64;

enum Event {
    Join {
        name: String,
        out: mpsc::Sender<Rc<str>>,
        kick: oneshot::Sender<&'static str>,
    },
    Say {
        name: String,
        text: String,
    },
    Leave {
        name: String,
        why: &'static str,
    },
}

struct Member {
    out: mpsc::Sender<Rc<str>>,
    kick: oneshot::Sender<&'static str>,
}

/// What the server hands back when it has shut down.
#[derive(Debug, PartialEq)]
struct Summary {
    clients: usize,
    log_lines: usize,
}

/// Sends `line` to every member but `except`; a member whose queue is full is dropped.
fn fan_out(
    members: &mut HashMap<String, Member>,
    except: Option<&str>,
    line: &str,
    log: &mut Vec<String>,
) {
    let line: Rc<str> = Rc::from(format!("{line}\n"));
    let mut slow = Vec::new();
    for (name, member) in members.iter() {
        if Some(name.as_str()) == except {
            continue;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = member.out.try_send(line.clone()) {
            slow.push(name.clone());
        }
    }
    for name in slow {
        let member = members.remove(&name).unwrap();
        let _ = member.kick.send("too slow");
        let notice = format!("* {name} was too slow and was dropped");
        log.push(notice.clone());
        fan_out(members, None, &notice, log);
    }
}

async fn hub(
    mut events: mpsc::Receiver<Event>,
    shutdown: Rc<Notify>,
    log_path: PathBuf,
) -> io::Result<()> {
    let mut log_file = overlap::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .await?;
    let mut members: HashMap<String, Member> = HashMap::new();
    let notified = shutdown.notified();
    overlap::pin_mut!(notified);
    notified.as_mut().enable();
    let mut shutting_down = false;
    loop {
        let mut log = Vec::new();
        overlap::select_biased! {
            _ = notified => {
                log.push("* server shutting down".to_string());
                fan_out(&mut members, None, "* server shutting down", &mut Vec::new());
                // Dropping the queues lets each writer send what it holds and finish.
                members.clear();
                shutting_down = true;
            }
            event = events.recv().fuse() => match event {
                None => break,
                Some(Event::Join { name, out, kick }) => {
                    if shutting_down {
                        let _ = kick.send("shutting down");
                        continue;
                    }
                    let _ = out.try_send(Rc::from(format!("* you are {name}\n")));
                    let notice = format!("* {name} joined");
                    log.push(notice.clone());
                    fan_out(&mut members, Some(&name), &notice, &mut log);
                    members.insert(name, Member { out, kick });
                }
                Some(Event::Say { name, text }) => {
                    let line = format!("{name}: {text}");
                    log.push(line.clone());
                    fan_out(&mut members, Some(&name), &line, &mut log);
                }
                Some(Event::Leave { name, why }) => {
                    if let Some(member) = members.remove(&name) {
                        let _ = member.out.try_send(Rc::from(format!("* bye ({why})\n")));
                        let notice = format!("* {name} left ({why})");
                        log.push(notice.clone());
                        fan_out(&mut members, None, &notice, &mut log);
                    }
                }
            },
        }
        for line in log {
            log_file.write_all(format!("{line}\n").as_bytes()).await?;
        }
    }
    log_file.flush().await?;
    log_file.sync_all().await?;
    Ok(())
}

/// One client: reads its lines for the hub, writes what the hub queues for it.
async fn client(
    stream: TcpStream,
    name: String,
    hub: mpsc::Sender<Event>,
    idle: Duration,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let (out_tx, mut out_rx) = mpsc::channel::<Rc<str>>(QUEUE);
    let (kick_tx, mut kick_rx) = oneshot::channel();
    if hub
        .send(Event::Join {
            name: name.clone(),
            out: out_tx,
            kick: kick_tx,
        })
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut writer = overlap::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            write.write_all(line.as_bytes()).await?;
        }
        write.close().await
    });
    let mut line = String::new();
    let why = loop {
        line.clear();
        overlap::select! {
            read = timeout(idle, reader.read_line(&mut line)).fuse() => match read {
                Err(_elapsed) => break "idle",
                Ok(Err(_)) => break "read error",
                Ok(Ok(0)) => break "quit",
                Ok(Ok(_)) if !line.ends_with('\n') => break "disconnected mid-line",
                Ok(Ok(_)) => {
                    let text = line.trim_end_matches(['\r', '\n']).to_string();
                    if hub.send(Event::Say { name: name.clone(), text }).await.is_err() {
                        break "server gone";
                    }
                }
            },
            // An error is the hub letting go of this client (shutting down): the writer
            // sends what is queued and ends. The receiver is fused: the branch is then skipped.
            why = kick_rx => if let Ok(why) = why {
                writer.abort();
                break why;
            },
            _ = writer => break "writer done",
        }
    };
    let _ = hub.send(Event::Leave { name, why }).await;
    if !writer.is_terminated() {
        let _ = writer.await;
    }
    Ok(())
}

/// Accepts clients until `shutdown`, then waits for every task.
async fn serve(
    listener: TcpListener,
    shutdown: Rc<Notify>,
    idle: Duration,
    log_path: PathBuf,
) -> io::Result<Summary> {
    let (hub_tx, hub_rx) = mpsc::channel(QUEUE);
    let hub = overlap::spawn(hub(hub_rx, shutdown.clone(), log_path.clone()));
    let mut clients = JoinSet::new();
    let notified = shutdown.notified();
    overlap::pin_mut!(notified);
    notified.as_mut().enable();
    let mut accepted = 0;
    loop {
        overlap::select! {
            conn = listener.accept().fuse() => {
                let (stream, _peer) = conn?;
                accepted += 1;
                clients.spawn(client(stream, format!("user{accepted}"), hub_tx.clone(), idle));
            }
            done = clients.join_next() => done.expect("a member")??,
            _ = notified => break,
        }
    }
    drop(hub_tx);
    while let Some(done) = clients.join_next().await {
        done??;
    }
    hub.await??;
    let log_lines = overlap::spawn_blocking(move || std::fs::read_to_string(log_path))
        .await??
        .lines()
        .count();
    Ok(Summary {
        clients: accepted,
        log_lines,
    })
}

/// A test client: its lines come in on a task of their own, so it reads while it writes.
struct Client {
    name: String,
    lines: mpsc::UnboundedReceiver<String>,
    write: overlap::net::OwnedWriteHalf,
    reader: overlap::JoinHandle<io::Result<()>>,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).await.unwrap()).await
    }

    async fn from_stream(stream: TcpStream) -> Client {
        let (read, write) = stream.into_split();
        let (tx, lines) = mpsc::unbounded_channel();
        let reader = overlap::spawn(async move {
            let mut lines = BufReader::new(read).lines();
            while let Some(line) = lines.next().await.transpose()? {
                if tx.send(line).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut client = Client {
            name: String::new(),
            lines,
            write,
            reader,
        };
        let hello = client.line().await;
        client.name = hello.strip_prefix("* you are ").unwrap().to_string();
        client
    }

    async fn line(&mut self) -> String {
        match support::within(HANG, self.lines.recv(), "a chat line").await {
            Some(line) => line,
            None => panic!(
                "{}: the connection ended: {:?}",
                self.name,
                (&mut self.reader).await
            ),
        }
    }

    async fn say(&mut self, text: &str) {
        self.write
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
    }

    /// Waits for the server to close the connection, and gives the lines still unread.
    async fn rest(mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = support::within(HANG, self.lines.recv(), "the end").await {
            rest.push(line);
        }
        self.reader.await.unwrap().unwrap();
        rest
    }
}

/// A running chat server.
struct Server {
    addr: std::net::SocketAddr,
    shutdown: Rc<Notify>,
    task: overlap::JoinHandle<io::Result<Summary>>,
}

async fn start(idle: Duration, log_path: PathBuf) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Rc::new(Notify::new());
    let task = overlap::spawn(serve(listener, shutdown.clone(), idle, log_path));
    Server {
        addr,
        shutdown,
        task,
    }
}

/// The whole conversation: ordered lines, a client leaving mid-line, a slow client dropped
/// while the others go on, then a shutdown that closes everyone and joins every task.
/// Returns the log the server wrote.
async fn conversation(dir: &support::TempDir) -> Vec<String> {
    let log_path = dir.join("chat.log");
    let server = start(Duration::from_secs(60), log_path.clone()).await;

    let mut alice = Client::connect(server.addr).await;
    let mut bob = Client::connect(server.addr).await;
    assert_eq!((alice.name.as_str(), bob.name.as_str()), ("user1", "user2"));
    assert_eq!(alice.line().await, "* user2 joined");

    alice.say("hello").await;
    alice.say("how are you?").await;
    assert_eq!(bob.line().await, "user1: hello");
    assert_eq!(bob.line().await, "user1: how are you?");
    bob.say("fine").await;
    assert_eq!(alice.line().await, "user2: fine");

    // Carol leaves in the middle of a line: her half line reaches nobody.
    let mut carol = Client::connect(server.addr).await;
    assert_eq!(alice.line().await, "* user3 joined");
    assert_eq!(bob.line().await, "* user3 joined");
    carol.write.write_all(b"half a li").await.unwrap();
    drop(carol);
    assert_eq!(alice.line().await, "* user3 left (disconnected mid-line)");
    assert_eq!(bob.line().await, "* user3 left (disconnected mid-line)");

    // A client that never reads, with a small receive buffer: once its queue is full the
    // hub drops it, and alice's lines keep reaching bob, all of them, in order.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let slow = socket.connect(server.addr).await.unwrap();
    assert_eq!(alice.line().await, "* user4 joined");
    assert_eq!(bob.line().await, "* user4 joined");
    let dropped = "* user4 was too slow and was dropped";
    let padding = "x".repeat(1000);
    let mut sent = Vec::new();
    let mut notice_seen = false;
    while !notice_seen {
        assert!(sent.len() < 100_000, "the slow client was never dropped");
        for _ in 0..32 {
            let text = format!("line {} {padding}", sent.len());
            alice.say(&text).await;
            sent.push(format!("user1: {text}"));
        }
        let mut batch = Vec::new();
        while batch.len() < 32 {
            let line = bob.line().await;
            if line == dropped {
                assert!(!notice_seen, "the notice came twice");
                notice_seen = true;
            } else {
                batch.push(line);
            }
        }
        assert!(batch == sent[sent.len() - 32..], "bob's lines, in order");
    }
    assert_eq!(alice.line().await, dropped);
    // What the slow client got is the start of the conversation, with no gap, then the end.
    let slow = Client::from_stream(slow).await;
    assert_eq!(slow.name, "user4");
    let got = slow.rest().await;
    assert!(
        !got.is_empty() && got.len() < sent.len(),
        "{} of {}",
        got.len(),
        sent.len()
    );
    // The writer was stopped in the middle of a line: the last one may be cut short.
    let (last, whole) = got.split_last().unwrap();
    assert!(
        sent[whole.len()].starts_with(last.as_str()),
        "{last:.60?} ends the slow client's lines"
    );
    if let Some(i) = (0..whole.len()).find(|&i| got[i] != sent[i]) {
        panic!(
            "slow line {i} of {}: {:.60?} where {:.60?} was expected",
            got.len(),
            got[i],
            sent[i]
        );
    }

    // Shutdown, the tokio way: notify_waiters while every task may be busy.
    bob.say("bye").await;
    assert_eq!(alice.line().await, "user2: bye");
    server.shutdown.notify_waiters();
    assert_eq!(alice.line().await, "* server shutting down");
    assert_eq!(bob.line().await, "* server shutting down");
    assert!(alice.rest().await.is_empty());
    assert!(bob.rest().await.is_empty());
    let summary = support::within(HANG, server.task, "the server's end")
        .await
        .unwrap()
        .unwrap();

    let mut want = vec![
        "* user1 joined".to_string(),
        "* user2 joined".into(),
        "user1: hello".into(),
        "user1: how are you?".into(),
        "user2: fine".into(),
        "* user3 joined".into(),
        "* user3 left (disconnected mid-line)".into(),
        "* user4 joined".into(),
    ];
    let log = overlap::fs::read_to_string(&log_path).await.unwrap();
    let log: Vec<String> = log.lines().map(str::to_string).collect();
    let at = log
        .iter()
        .position(|l| l == dropped)
        .expect("the drop is logged");
    want.extend(sent.iter().cloned());
    want.insert(at, dropped.to_string());
    want.push("user2: bye".into());
    want.push("* server shutting down".into());
    if let Some(i) = (0..log.len().max(want.len())).find(|&i| log.get(i) != want.get(i)) {
        panic!(
            "log line {i}: {:.60?} where {:.60?} was expected",
            log.get(i),
            want.get(i)
        );
    }
    assert_eq!(
        summary,
        Summary {
            clients: 4,
            log_lines: want.len()
        }
    );
    log
}

#[overlap::test]
async fn a_chat_keeps_order_drops_slow_and_half_gone_clients_and_shuts_down() {
    let dir = support::TempDir::new("chat");
    conversation(&dir).await;
}

#[test]
fn a_chat_shut_down_leaves_no_fd_open() {
    support::run_in_child("a_chat_shut_down_leaves_no_fd_open", || {
        overlap::block_on(async {
            let dir = support::TempDir::new("chat-fds");
            let before = support::open_fds();
            conversation(&dir).await;
            assert_eq!(support::open_fds(), before, "fds left open");
        })
    });
}

#[overlap::test]
async fn an_idle_client_is_told_and_closed() {
    let dir = support::TempDir::new("chat-idle");
    let server = start(Duration::from_millis(200), dir.join("chat.log")).await;
    let mut dave = Client::connect(server.addr).await;
    assert_eq!(dave.line().await, "* bye (idle)");
    assert!(dave.rest().await.is_empty());
    server.shutdown.notify_waiters();
    let summary = support::within(HANG, server.task, "the server's end")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary,
        Summary {
            clients: 1,
            log_lines: 3
        }
    );
}
