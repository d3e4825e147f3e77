//! smol's `examples/` programs over loopback, ported to overlap the way a smol user would:
//! `tcp-server`/`tcp-client` (and `unix-stream` style echo) with `io::copy(&stream, &mut
//! &stream)`, and `chat-server`/`chat-client` sharing each client's stream between its
//! reader task and the dispatcher. smol's programs share a stream through
//! `async_dup::Arc<Async<TcpStream>>`; overlap's streams are read and written through
//! `&TcpStream`, so an `Rc<TcpStream>` does the same between the tasks of one runtime.
//!
//! (`linux-timerfd` and `linux-inotify` are in `port_user2_user_fds.rs`, `unix-signal` and
//! `ctrl-c` in `port_smol_signal.rs`.)

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use support::{pattern, within};

const HANG: Duration = Duration::from_secs(30);

/// smol's `tcp-server` echo: each connection copies what it reads back to itself.
async fn echo(stream: TcpStream) -> std::io::Result<u64> {
    io::copy(&stream, &mut &stream).await
}

// smol: examples/tcp-server.rs + tcp-client.rs (the client sends a big body and reads it
// back; the server's copy reads and writes one stream at once, so a full send buffer on
// either side must not stall it)
#[overlap::test]
async fn an_echo_server_copying_a_stream_into_itself_returns_every_byte() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = overlap::spawn(async move {
        let mut copied = Vec::new();
        let mut incoming = listener.incoming();
        for _ in 0..2 {
            let stream = incoming.next().await.unwrap().unwrap();
            copied.push(echo(stream).await.unwrap());
        }
        copied
    });

    let mut lens = Vec::new();
    for len in [5usize, 4 << 20] {
        let body = pattern(len);
        let stream = TcpStream::connect(addr).await.unwrap();
        // smol's client: stdin to the socket and the socket to stdout at once.
        let (mut rd, mut wr) = stream.into_split();
        let send = async {
            wr.write_all(&body).await?;
            wr.close().await // shutdown(Write): the server's copy sees the end
        };
        let mut back = Vec::new();
        let recv = rd.read_to_end(&mut back);
        let both = async { overlap::try_join!(send, recv) };
        within(HANG, both, "the echo stalled").await.unwrap();
        assert!(back == body, "{len} bytes did not come back as sent");
        lens.push(len as u64);
    }
    assert_eq!(within(HANG, server, "server").await.unwrap(), lens);
}

// The same over a Unix socket pair (smol's `Async::<UnixStream>::pair()`).
#[overlap::test]
async fn a_unix_stream_echo_through_copy_returns_every_byte() {
    let (client, server) = UnixStream::pair().unwrap();
    let server = overlap::spawn(async move { io::copy(&server, &mut &server).await });
    let body = pattern(1 << 20);
    let (mut rd, mut wr) = client.into_split();
    let send = async {
        wr.write_all(&body).await?;
        wr.close().await
    };
    let mut back = Vec::new();
    let both = async { overlap::try_join!(send, rd.read_to_end(&mut back)) };
    within(HANG, both, "the echo stalled").await.unwrap();
    assert!(back == body);
    assert_eq!(server.await.unwrap().unwrap(), body.len() as u64);
}

/// An event on the chat server (smol's `chat-server`).
enum Event {
    Join(SocketAddr, Rc<TcpStream>),
    Leave(SocketAddr),
    Message(SocketAddr, String),
}

/// Sends each event, formatted, to every client present.
async fn dispatch(mut events: mpsc::Receiver<Event>) {
    let mut clients = BTreeMap::<SocketAddr, Rc<TcpStream>>::new();
    while let Some(event) = events.recv().await {
        let output = match event {
            Event::Join(addr, stream) => {
                clients.insert(addr, stream);
                format!("{addr} has joined\n")
            }
            Event::Leave(addr) => {
                clients.remove(&addr);
                format!("{addr} has left\n")
            }
            Event::Message(addr, msg) => format!("{addr} says: {msg}\n"),
        };
        for stream in clients.values() {
            // A client may be gone at any point: its errors are ignored, as in smol's.
            let _ = (&**stream).write_all(output.as_bytes()).await;
        }
    }
}

/// One client's task: join, forward its lines, leave.
async fn serve_client(events: mpsc::Sender<Event>, client: Rc<TcpStream>, addr: SocketAddr) {
    let _ = events.send(Event::Join(addr, client.clone())).await;
    let mut lines = BufReader::new(&*client).lines();
    while let Some(Ok(line)) = lines.next().await {
        let _ = events.send(Event::Message(addr, line)).await;
    }
    let _ = events.send(Event::Leave(addr)).await;
}

async fn chat_server(listener: TcpListener) {
    let (tx, rx) = mpsc::channel(100);
    overlap::spawn(dispatch(rx)).detach();
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        overlap::spawn(serve_client(tx.clone(), Rc::new(stream), addr)).detach();
    }
}

/// The next line a chat client receives.
async fn next_line(lines: &mut io::Lines<BufReader<overlap::net::OwnedReadHalf>>) -> String {
    within(HANG, lines.next(), "no line from the server")
        .await
        .expect("the server hung up")
        .unwrap()
}

// smol: examples/chat-server.rs with two chat-client.rs sessions
#[overlap::test]
async fn chat_clients_hear_joins_messages_and_leaves_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = overlap::spawn(chat_server(listener));

    let a = TcpStream::connect(addr).await.unwrap();
    let a_addr = a.local_addr().unwrap();
    let (a_rd, mut a_wr) = a.into_split();
    let mut a_lines = BufReader::new(a_rd).lines();
    assert_eq!(
        next_line(&mut a_lines).await,
        format!("{a_addr} has joined")
    );

    let b = TcpStream::connect(addr).await.unwrap();
    let b_addr = b.local_addr().unwrap();
    let (b_rd, mut b_wr) = b.into_split();
    let mut b_lines = BufReader::new(b_rd).lines();
    assert_eq!(
        next_line(&mut b_lines).await,
        format!("{b_addr} has joined")
    );
    assert_eq!(
        next_line(&mut a_lines).await,
        format!("{b_addr} has joined")
    );

    a_wr.write_all(b"hello\nhow are you?\n").await.unwrap();
    b_wr.write_all(b"fine").await.unwrap(); // the line ends in the next write
    b_wr.write_all(b"\n").await.unwrap();
    for lines in [&mut a_lines, &mut b_lines] {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next_line(lines).await);
        }
        // A's two lines keep their order; B's may come before, between or after them.
        let from_a: Vec<_> = got
            .iter()
            .filter(|l| l.starts_with(&a_addr.to_string()))
            .collect();
        assert_eq!(
            from_a,
            [
                &format!("{a_addr} says: hello"),
                &format!("{a_addr} says: how are you?")
            ]
        );
        assert!(got.contains(&format!("{b_addr} says: fine")), "{got:?}");
    }

    // A quits: B hears it, and A's stream gets nothing more.
    drop(a_wr);
    drop(a_lines);
    assert_eq!(next_line(&mut b_lines).await, format!("{a_addr} has left"));
    b_wr.write_all(b"bye\n").await.unwrap();
    assert_eq!(next_line(&mut b_lines).await, format!("{b_addr} says: bye"));
    server.abort();
}
