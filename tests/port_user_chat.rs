//! A user's chat server, written first as one would for tokio (a `broadcast` channel, one
//! task per client, a `select!` between the client's lines and the channel) and then for
//! overlap. Real clients check that each line reaches every other client, not its sender,
//! and that a `watch` shutdown signal ends every client task.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::{broadcast, watch};
use overlap::task::JoinSet;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// One client: its lines go out on `tx`, everyone else's lines come in on `rx`, until the
/// client leaves or `shutdown` changes.
async fn client_task(
    stream: TcpStream,
    addr: SocketAddr,
    tx: broadcast::Sender<(SocketAddr, String)>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<&'static str> {
    let mut rx = tx.subscribe();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"welcome\n").await?;
    loop {
        overlap::select! {
            line = lines.next().fuse() => match line.transpose()? {
                Some(line) => {
                    // Err only when no receiver is left, and this task holds one.
                    tx.send((addr, line)).expect("our own receiver is alive");
                }
                None => return Ok("left"),
            },
            msg = rx.recv().fuse() => match msg {
                Ok((from, line)) if from != addr => {
                    write.write_all(format!("{from}: {line}\n").as_bytes()).await?;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    write.write_all(format!("missed {n}\n").as_bytes()).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok("closed"),
            },
            _ = shutdown.changed().fuse() => {
                write.write_all(b"bye\n").await?;
                return Ok("shutdown");
            }
        }
    }
}

/// The accept loop: one task per client in a `JoinSet`; on shutdown, waits for them all.
async fn server(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<Vec<&'static str>> {
    let (tx, _) = broadcast::channel(16);
    let mut clients = JoinSet::new();
    loop {
        overlap::select! {
            accepted = listener.accept().fuse() => {
                let (stream, addr) = accepted?;
                clients.spawn(client_task(stream, addr, tx.clone(), shutdown.clone()));
            }
            _ = shutdown.changed().fuse() => break,
        }
    }
    let mut ends = Vec::new();
    while let Some(end) = clients.join_next().await {
        ends.push(end.expect("client task panicked")?);
    }
    ends.sort();
    Ok(ends)
}

struct Client {
    addr: SocketAddr,
    lines: overlap::io::Lines<BufReader<overlap::net::OwnedReadHalf>>,
    write: overlap::net::OwnedWriteHalf,
}

impl Client {
    async fn connect(server: SocketAddr) -> Client {
        let stream = TcpStream::connect(server).await.unwrap();
        let addr = stream.local_addr().unwrap();
        let (read, write) = stream.into_split();
        let mut client = Client {
            addr,
            lines: BufReader::new(read).lines(),
            write,
        };
        assert_eq!(client.line().await, "welcome");
        client
    }

    async fn line(&mut self) -> String {
        within(HANG, self.lines.next(), "a chat line")
            .await
            .expect("server closed the connection")
            .unwrap()
    }

    async fn say(&mut self, text: &str) {
        self.write
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
    }
}

#[overlap::test]
async fn each_line_reaches_every_other_client_and_shutdown_ends_them_all() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let server = overlap::spawn(server(listener, stop_rx));

    let mut alice = Client::connect(server_addr).await;
    let mut bob = Client::connect(server_addr).await;
    let mut carol = Client::connect(server_addr).await;

    alice.say("hi all").await;
    let expected = format!("{}: hi all", alice.addr);
    assert_eq!(bob.line().await, expected);
    assert_eq!(carol.line().await, expected);

    bob.say("hello alice").await;
    carol.say("hey").await;
    // Each sees the others' lines in the order the server took them; the server took
    // bob's first only if it read it first, so compare as a set per reader.
    let mut at_alice = vec![alice.line().await, alice.line().await];
    at_alice.sort();
    let mut want = vec![
        format!("{}: hello alice", bob.addr),
        format!("{}: hey", carol.addr),
    ];
    want.sort();
    assert_eq!(at_alice, want);
    assert_eq!(bob.line().await, format!("{}: hey", carol.addr));
    assert_eq!(carol.line().await, format!("{}: hello alice", bob.addr));

    // Carol leaves; the others still talk.
    drop(carol);
    alice.say("still here").await;
    assert_eq!(bob.line().await, format!("{}: still here", alice.addr));

    stop.send(true).unwrap();
    assert_eq!(alice.line().await, "bye");
    assert_eq!(bob.line().await, "bye");
    let ends = within(HANG, server, "server end").await.unwrap().unwrap();
    assert_eq!(ends, ["left", "shutdown", "shutdown"]);
    assert!(within(HANG, alice.lines.next(), "eof").await.is_none());
}
