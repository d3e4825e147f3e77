//! A user's pub/sub server over Unix stream sockets, sketched as one would for tokio
//! (`UnixListener` in a runtime dir, length-prefixed frames read with `read_u32` and
//! `read_exact` on the read half of `into_split`, a writer task per connection fed by an
//! `mpsc` channel, topics in an `Rc<RefCell<HashMap>>` of `broadcast::Sender`s, a config
//! reloaded on `SIGHUP` and handed out through `watch`) and then written for overlap.
//!
//! The test checks that a subscriber that keeps up gets every message in order; that one
//! that reads nothing falls behind and is told (`RecvError::Lagged`, passed on as a
//! `LAGGED` frame) how many it missed, every message being either delivered or counted,
//! in order and ending at the last one; that a `SIGHUP` the test raises at itself makes the
//! server re-read its config file and tell every client, with the new frame limit
//! enforced; and that a client hanging up in the middle of a frame ends its connection
//! task and its subscriptions, and nothing else.
//!
//! What the port changed, against tokio: `spawn` is `spawn_local` (the topic map is an
//! `Rc<RefCell<..>>`); `read_u32`/`write_u32` come from `overlap::io::AsyncReadIntExt` and
//! `AsyncWriteIntExt` rather than tokio's `AsyncReadExt`; `select!` wants `.fuse()`; the
//! signal is `overlap::signal::unix::signal`, as tokio's. The per-connection reader is not
//! raced against the config watch in a `select!` (a frame read with `read_exact` is not
//! cancel-safe, here as with tokio): a separate task turns config changes into frames.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{self, AsyncReadExt, AsyncReadIntExt, AsyncWriteExt, AsyncWriteIntExt};
use overlap::net::unix::OwnedWriteHalf;
use overlap::net::{UnixListener, UnixStream};
use overlap::signal::unix::{signal, SignalKind};
use overlap::sync::broadcast::{self, error::RecvError};
use overlap::sync::{mpsc, watch};
use overlap::task::{JoinHandle, JoinSet};
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(20);
/// Each topic's backlog, per subscriber.
const BACKLOG: usize = 8;
/// Enough 16 KiB messages to fill a socket buffer several times over.
const MESSAGES: usize = 100;
const BODY: usize = 16 * 1024;

/// What the config file says.
#[derive(Clone, Debug, PartialEq)]
struct Config {
    max_frame: u32,
}

fn parse_config(text: &str) -> io::Result<Config> {
    text.lines()
        .find_map(|l| l.strip_prefix("max_frame="))
        .and_then(|n| n.trim().parse().ok())
        .map(|max_frame| Config { max_frame })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no max_frame"))
}

/// The server's shared state (one thread: `Rc`, `RefCell`, `Cell`).
struct State {
    topics: RefCell<HashMap<String, broadcast::Sender<Rc<str>>>>,
    config: watch::Sender<Config>,
    /// Connection tasks alive (counted by a guard, so an aborted one counts down too).
    live: Cell<usize>,
}

struct LiveGuard(Rc<State>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

/// One frame: a big-endian `u32` length, then that many bytes.
async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), payload: &[u8]) -> io::Result<()> {
    w.write_u32(payload.len() as u32).await?;
    w.write_all(payload).await
}

/// Reads one frame of at most `max()` bytes (asked once the length has arrived, so a limit
/// changed while waiting applies); `Ok(None)` when the input ends before a length (as
/// tokio users write it: `read_u32` failing with `UnexpectedEof`). A longer frame is
/// `InvalidData`; an end inside a frame's body is `UnexpectedEof`.
async fn read_frame(
    r: &mut (impl AsyncReadExt + Unpin),
    max: impl Fn() -> u32,
) -> io::Result<Option<Vec<u8>>> {
    let len = match r.read_u32().await {
        Ok(len) => len,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > max() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Reloads the config file on every `SIGHUP`. The handler is installed before this
/// returns, so a `SIGHUP` after it cannot end the process.
fn reloader(state: Rc<State>, path: PathBuf) -> io::Result<JoinHandle<io::Result<()>>> {
    let mut hup = signal(SignalKind::hangup())?;
    Ok(overlap::spawn(async move {
        while hup.recv().await.is_some() {
            let config = parse_config(&overlap::fs::read_to_string(&path).await?)?;
            state.config.send_replace(config);
        }
        Ok(())
    }))
}

async fn serve(listener: UnixListener, state: Rc<State>) -> io::Result<()> {
    loop {
        let (conn, _) = listener.accept().await?;
        state.live.set(state.live.get() + 1);
        let guard = LiveGuard(state.clone());
        overlap::spawn(async move {
            // A client's bad input ends its own connection only.
            let _ = connection(conn, &guard.0).await;
            drop(guard);
        });
    }
}

/// Writes the frames queued for one client, in order.
async fn writer(mut w: OwnedWriteHalf, mut queue: mpsc::Receiver<Vec<u8>>) -> io::Result<()> {
    while let Some(frame) = queue.recv().await {
        write_frame(&mut w, &frame).await?;
    }
    w.close().await
}

async fn connection(conn: UnixStream, state: &Rc<State>) -> io::Result<()> {
    let (mut r, w) = conn.into_split();
    // Room for one frame: a client that does not read holds up its own subscriptions.
    let (out, queue) = mpsc::channel::<Vec<u8>>(1);
    let writer = overlap::spawn(writer(w, queue));
    // Subscriptions and the config notifier: aborted when the connection ends.
    let mut helpers = JoinSet::new();
    let mut config = state.config.subscribe();
    let notify = out.clone();
    helpers.spawn(async move {
        while config.changed().await.is_ok() {
            let line = format!("CONFIG max_frame={}", config.borrow_and_update().max_frame);
            if notify.send(line.into_bytes()).await.is_err() {
                break;
            }
        }
    });
    let res = async {
        loop {
            let max = || state.config.borrow().max_frame;
            let frame = match read_frame(&mut r, max).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let _ = out.send(format!("ERR {e}").into_bytes()).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let text = String::from_utf8_lossy(&frame);
            let mut words = text.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("SUB"), Some(topic), None) => {
                    let mut rx = state
                        .topics
                        .borrow_mut()
                        .entry(topic.to_owned())
                        .or_insert_with(|| broadcast::channel(BACKLOG).0)
                        .subscribe();
                    let (forward, name) = (out.clone(), topic.to_owned());
                    helpers.spawn(async move {
                        loop {
                            let frame = match rx.recv().await {
                                Ok(msg) => format!("MSG {name} {msg}"),
                                Err(RecvError::Lagged(n)) => format!("LAGGED {name} {n}"),
                                Err(RecvError::Closed) => break,
                            };
                            if forward.send(frame.into_bytes()).await.is_err() {
                                break;
                            }
                        }
                    });
                    out.send(format!("OK {topic}").into_bytes()).await.ok();
                }
                (Some("PUB"), Some(topic), Some(msg)) => {
                    let sender = state.topics.borrow().get(topic).cloned();
                    let n = sender.map_or(0, |s| s.send(Rc::from(msg)).unwrap_or(0));
                    out.send(format!("SENT {n}").into_bytes()).await.ok();
                }
                (Some("PING"), None, None) => {
                    out.send(b"PONG".to_vec()).await.ok();
                }
                _ => {
                    out.send(b"ERR unknown command".to_vec()).await.ok();
                }
            }
        }
    }
    .await;
    helpers.shutdown().await;
    drop(out);
    let _ = writer.await;
    res
}

/// A test client.
struct Client(UnixStream);

impl Client {
    async fn connect(path: &Path) -> Client {
        Client(UnixStream::connect(path).await.unwrap())
    }

    async fn send(&mut self, text: &str) {
        write_frame(&mut self.0, text.as_bytes()).await.unwrap();
    }

    async fn recv(&mut self) -> Option<String> {
        let frame = read_frame(&mut self.0, || u32::MAX).await.unwrap()?;
        Some(String::from_utf8(frame).unwrap())
    }

    async fn expect(&mut self, text: &str) {
        assert_eq!(self.recv().await.as_deref(), Some(text));
    }

    async fn ask(&mut self, text: &str, reply: &str) {
        self.send(text).await;
        self.expect(reply).await;
    }
}

/// Message `seq` of the `news` topic: its number, then padding to `BODY` bytes.
fn news(seq: usize) -> String {
    let head = format!("{seq:04}:");
    format!("{head}{}", "x".repeat(BODY - head.len()))
}

fn seq_of(msg: &str) -> usize {
    msg.strip_prefix("MSG news ")
        .and_then(|m| m.get(..4))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a news message: {:.40}", msg))
}

/// Polls `cond` between short sleeps (the server runs in the same thread).
async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        overlap::time::sleep(Duration::from_millis(1)).await;
    }
}

#[overlap::test]
async fn pubsub_over_unix_sockets_with_lag_reload_and_a_broken_client() {
    let dir = TempDir::new("pubsub");
    let config_path = dir.join("pubsub.conf");
    std::fs::write(&config_path, "max_frame=65536\n").unwrap();
    let sock = dir.join("pubsub.sock");
    let (config, _) = watch::channel(parse_config("max_frame=65536").unwrap());
    let state = Rc::new(State {
        topics: RefCell::new(HashMap::new()),
        config,
        live: Cell::new(0),
    });
    let reload = reloader(state.clone(), config_path.clone()).unwrap();
    let server = overlap::spawn(serve(UnixListener::bind(&sock).unwrap(), state.clone()));

    within(
        HANG,
        async {
            let mut fast = Client::connect(&sock).await;
            let mut slow = Client::connect(&sock).await;
            let mut publisher = Client::connect(&sock).await;
            fast.ask("SUB news", "OK news").await;
            slow.ask("SUB news", "OK news").await;
            // Another that reads nothing, and hangs up while the server is stuck writing to
            // it.
            let mut stalled = Client::connect(&sock).await;
            stalled.ask("SUB news", "OK news").await;
            publisher.ask("PING", "PONG").await;

            // The fast subscriber reads each message before the next is published; the slow
            // one reads nothing meanwhile.
            for seq in 0..MESSAGES {
                publisher
                    .ask(&format!("PUB news {}", news(seq)), "SENT 3")
                    .await;
                let got = fast.recv().await.unwrap();
                assert_eq!(seq_of(&got), seq);
                assert_eq!(got, format!("MSG news {}", news(seq)));
            }

            // The stalled one's writer is blocked on a full socket: hanging up ends its
            // connection (the write fails) and its subscription.
            assert_eq!(state.live.get(), 4);
            drop(stalled);
            until(|| state.live.get() == 3).await;
            assert_eq!(state.topics.borrow()["news"].receiver_count(), 2);

            // The slow one gets what its socket, its queue and the backlog held, is told how
            // many it missed, and ends on the last message.
            let (mut delivered, mut missed, mut lags) = (Vec::new(), 0, 0);
            while delivered.last() != Some(&(MESSAGES - 1)) {
                let frame = slow.recv().await.unwrap();
                if let Some(n) = frame.strip_prefix("LAGGED news ") {
                    missed += n.parse::<usize>().unwrap();
                    lags += 1;
                } else {
                    delivered.push(seq_of(&frame));
                }
            }
            assert!(lags >= 1, "the slow subscriber never lagged");
            assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{delivered:?}");
            assert_eq!(
                delivered.len() + missed,
                MESSAGES,
                "{delivered:?}, {missed} missed"
            );

            // A client hangs up halfway through a frame: its connection and subscription go,
            // the others stay.
            assert_eq!(state.live.get(), 3);
            let mut quitter = Client::connect(&sock).await;
            quitter.ask("SUB news", "OK news").await;
            assert_eq!(state.topics.borrow()["news"].receiver_count(), 3);
            quitter.0.write_u32(100).await.unwrap();
            quitter.0.write_all(b"SUB ne").await.unwrap();
            drop(quitter);
            until(|| state.live.get() == 3).await;
            assert_eq!(state.topics.borrow()["news"].receiver_count(), 2);
            publisher.ask("PUB news after", "SENT 2").await;
            fast.expect("MSG news after").await;
            slow.expect("MSG news after").await;

            // SIGHUP: the server re-reads its config and tells every client.
            std::fs::write(&config_path, "max_frame=1024\n").unwrap();
            // SAFETY: raise takes no pointers; the reloader installed the SIGHUP handler
            // before it was spawned, so the signal is caught, not fatal.
            assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
            for client in [&mut fast, &mut slow, &mut publisher] {
                client.expect("CONFIG max_frame=1024").await;
            }
            assert_eq!(state.config.borrow().max_frame, 1024);
            // The new limit holds: a 2000-byte frame is refused and its connection ends.
            publisher
                .ask(
                    &format!("PUB news {}", "y".repeat(2000)),
                    "ERR frame too long",
                )
                .await;
            // The server closes with the frame's body unread: the kernel reports that as a
            // reset rather than a clean end (for Unix sockets as for TCP).
            match read_frame(&mut publisher.0, || u32::MAX).await {
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                other => panic!("expected the end of the connection, got {other:?}"),
            }
            until(|| state.live.get() == 2).await;
            fast.ask("PUB news small", "SENT 2").await;
            fast.expect("MSG news small").await;
            slow.expect("MSG news small").await;
        },
        "the pub/sub exchange",
    )
    .await;

    // The server lived through all of it; stopping it leaves no connection task behind
    // once the clients are gone.
    assert!(!server.is_finished());
    server.abort();
    assert!(within(HANG, server, "the server")
        .await
        .unwrap_err()
        .is_cancelled());
    within(HANG, until(|| state.live.get() == 0), "connections to end").await;
    reload.abort();
    let _ = within(HANG, reload, "the reloader").await;
}
