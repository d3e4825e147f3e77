//! smol's `examples/` programs over loopback, ported to overlap the way a smol user would:
//! `tcp-server`/`tcp-client` (and `unix-stream` style echo) with `io::copy(&stream, &mut
//! &stream)`, and `chat-server`/`chat-client` sharing each client's stream between its
//! reader task and the dispatcher. smol's programs share a stream through
//! `async_dup::Arc<Async<TcpStream>>`; overlap's streams are read and written through
//! `&TcpStream`, so an `Rc<TcpStream>` does the same between the tasks of one runtime.
//!
//! `linux-inotify` reads events through `AsyncFd::async_io_mut` (smol's `read_with_mut`),
//! with its `read_op` made to fit overlap's edge-triggered readiness. (`linux-timerfd` and
//! a plain inotify watch are in `port_user2_user_fds.rs`, `unix-signal` and `ctrl-c` in
//! `port_smol_signal.rs`.)

mod support;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::unix::AsyncFd;
use overlap::io::Interest;
use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use support::{pattern, within, TempDir};

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

/// The names in a buffer of inotify events (events on the watched directory itself have
/// none, and are skipped, as smol's example does).
fn names_in(buf: &[u8]) -> Vec<String> {
    let head = std::mem::size_of::<libc::inotify_event>();
    let (mut names, mut at) = (Vec::new(), 0);
    while at + head <= buf.len() {
        // SAFETY: the kernel writes whole events; `read_unaligned` copes with the alignment.
        let ev: libc::inotify_event =
            unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
        let name = &buf[at + head..at + head + ev.len as usize];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if end > 0 {
            names.push(String::from_utf8_lossy(&name[..end]).into_owned());
        }
        at += head + ev.len as usize;
    }
    names
}

/// smol's `read_op`, fitted to edge-triggered readiness: it reads until the fd says
/// `WouldBlock`, and says `WouldBlock` itself only then, with no named event found. (smol's
/// returns `WouldBlock` as soon as one 1 KiB read brings no named event: with more events
/// queued, overlap would then wait for the next one instead of reading them.)
fn read_op(inotify: &mut OwnedFd) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match support::read(inotify.as_raw_fd(), &mut buffer) {
            Ok(n) => names.extend(names_in(&buffer[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !names.is_empty() => {
                return Ok(names)
            }
            Err(e) => return Err(e),
        }
    }
}

// smol: examples/linux-inotify.rs (watch a directory, print the named events), with more
// nameless events queued ahead of the named ones than one read of smol's buffer takes.
#[overlap::test]
async fn an_inotify_watch_read_with_async_io_mut_finds_names_behind_nameless_events() {
    // SAFETY: inotify_init1 takes no pointers.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        eprintln!(
            "skipped: no inotify here ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    // SAFETY: `raw` was just returned by the kernel and nothing else owns it.
    let inotify = unsafe { OwnedFd::from_raw_fd(raw) };
    let dir = TempDir::new("port-smol-inotify");
    let path = CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let watch = unsafe { libc::inotify_add_watch(raw, path.as_ptr(), libc::IN_ALL_EVENTS) };
    assert!(watch >= 0, "{}", std::io::Error::last_os_error());
    let mut inotify = AsyncFd::new(inotify).unwrap();

    // Each listing of the directory queues three nameless events (open, access, close):
    // 40 of them are 1,920 bytes, more than one 1 KiB read.
    for _ in 0..40 {
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    std::fs::write(dir.join("first"), b"").unwrap();
    let events = inotify.async_io_mut(Interest::READABLE, read_op);
    let names = within(HANG, events, "the named events were never read")
        .await
        .unwrap();
    // create, open, close-write: each names the file.
    assert_eq!(names, ["first", "first", "first"]);

    // Then a quiet watch wakes for the next change only.
    std::fs::rename(dir.join("first"), dir.join("second")).unwrap();
    let events = inotify.async_io_mut(Interest::READABLE, read_op);
    let names = within(HANG, events, "the rename was never read")
        .await
        .unwrap();
    assert_eq!(names, ["first", "second"]);
}
