//! tokio's chat example, ported: a server that relays each client's lines to every other
//! client through per-peer unbounded channels, with the peers in a shared map behind an
//! async `Mutex`, and each connection a `select!` between its socket's lines and its
//! channel. Several real clients check that every message reaches every other client, in
//! order, and that joins and leaves are announced.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use overlap::net::{OwnedReadHalf, TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, Mutex};
use support::within;

const HANG: Duration = Duration::from_secs(30);

type Peers = Rc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<String>>>>;

/// Sends `msg` to every peer but `from`.
async fn broadcast(peers: &Peers, from: SocketAddr, msg: &str) {
    for (addr, tx) in peers.lock().await.iter() {
        if *addr != from {
            let _ = tx.send(msg.to_string());
        }
    }
}

async fn serve_peer(peers: Peers, stream: TcpStream, addr: SocketAddr) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines().fuse();
    write.write_all(b"name?\n").await?;
    let Some(Ok(name)) = lines.next().await else {
        return Ok(());
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    peers.lock().await.insert(addr, tx);
    // Registered: from now on this peer hears everything.
    write
        .write_all(format!("welcome {name}\n").as_bytes())
        .await?;
    broadcast(&peers, addr, &format!("{name} joined")).await;
    loop {
        overlap::select! {
            msg = rx.recv().fuse() => match msg {
                Some(msg) => write.write_all(format!("{msg}\n").as_bytes()).await?,
                None => break,
            },
            line = lines.next() => match line {
                Some(Ok(line)) => broadcast(&peers, addr, &format!("{name}: {line}")).await,
                _ => break,
            },
        }
    }
    peers.lock().await.remove(&addr);
    broadcast(&peers, addr, &format!("{name} left")).await;
    Ok(())
}

struct Client {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: overlap::net::OwnedWriteHalf,
}

impl Client {
    async fn join(addr: SocketAddr, name: &str) -> Client {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut client = Client {
            lines: BufReader::new(read).lines(),
            write,
        };
        assert_eq!(client.next().await, "name?");
        client.say(name).await;
        assert_eq!(client.next().await, format!("welcome {name}"));
        client
    }

    async fn say(&mut self, line: &str) {
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn next(&mut self) -> String {
        within(HANG, self.lines.next(), "a chat line never came")
            .await
            .expect("the server hung up")
            .unwrap()
    }
}

#[overlap::test]
async fn every_message_reaches_every_other_client_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers: Peers = Rc::default();
    let server = overlap::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            overlap::spawn(serve_peer(peers.clone(), stream, peer));
        }
    });

    let mut ann = Client::join(addr, "ann").await;
    let mut bob = Client::join(addr, "bob").await;
    assert_eq!(ann.next().await, "bob joined");
    let mut cy = Client::join(addr, "cy").await;
    assert_eq!(ann.next().await, "cy joined");
    assert_eq!(bob.next().await, "cy joined");

    for i in 0..50 {
        ann.say(&format!("a{i}")).await;
        bob.say(&format!("b{i}")).await;
    }
    // Each sender's lines arrive in order; the two senders' may interleave.
    let (mut from_ann, mut from_bob) = (0, 0);
    for _ in 0..100 {
        let line = cy.next().await;
        if let Some(n) = line.strip_prefix("ann: a") {
            assert_eq!(n, from_ann.to_string());
            from_ann += 1;
        } else {
            assert_eq!(line, format!("bob: b{from_bob}"));
            from_bob += 1;
        }
    }
    for i in 0..50 {
        assert_eq!(bob.next().await, format!("ann: a{i}"));
        assert_eq!(ann.next().await, format!("bob: b{i}"));
    }

    drop(bob);
    assert_eq!(ann.next().await, "bob left");
    assert_eq!(cy.next().await, "bob left");
    cy.say("still here").await;
    assert_eq!(ann.next().await, "cy: still here");
    server.abort();
}
