//! A user's static-file HTTP/1.1 server, sketched as one would for tokio (a `TcpListener`
//! accepting in a loop into a `JoinSet`, a task per connection, the request head read with
//! `read_line` from a `BufReader`, `fs::canonicalize` to keep requests inside the served
//! directory, `fs::metadata` and `fs::read_dir` for a directory listing, `fs::File` for a
//! file, whose body goes out with `io::copy`, and the connection kept alive between
//! requests) and then written for overlap (`port_user4_static_files/server.rs`), against
//! clients on loopback.
//!
//! The tests check exact bytes of an empty, a small and an 8 MiB file, `Range` requests,
//! pipelined requests, 404 and 403 answers (`..`, a link out of the root, a NUL) on one
//! kept-alive connection; fifty clients fetching at once; clients that hang up in the
//! middle of a large body (the task ends with an error naming the file, another transfer
//! goes on unharmed, no fd is left open, nor after the server is aborted with sends in
//! flight); a client that stops reading (the server waits without polls or pool jobs, then
//! sends every byte once it reads again); a file truncated while it is sent (the answer
//! ends short and the connection closes: no hang, no padding) and one replaced by `rename`
//! (the answer in flight is the old file's, whole).
//!
//! What the port changed, against tokio: the body goes out with `File::send_to`
//! (`sendfile`, no copy through user memory; tokio has no such call, so this is the part a
//! tokio user would not write; `?copy` in a request takes the tokio way, `seek`, `take`
//! and `io::copy`). It returns fewer bytes than asked for when the file ends first, which
//! the server has to check, since a `Content-Length` went out before. The bytes go by
//! reference to the page cache: a file truncated while sent can reach the client with
//! zeros where it was cut (what the docs of `send_to` now say). `&TcpStream` is
//! `AsyncRead` and `AsyncWrite` (as `&std::net::TcpStream` is `Read`/`Write`), so the
//! `BufReader` borrows the stream and the head and the `sendfile` both use it, where tokio
//! needs `split` or `BufReader::get_mut`. `BufReader`, `read_line` and `take` are
//! futures-io's; a client reading a body to its end calls `overlap::io::read_to_end`, since
//! futures' `AsyncReadExt::read_to_end` is quadratic on a socket (tokio's is not). The
//! head's write and the body's `sendfile` are two sends: like any server that writes a
//! head and then a body, it sets `TCP_NODELAY`, or a small body waits behind Nagle for the
//! client's delayed ACK.

mod support;

#[path = "port_user4_static_files/server.rs"]
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::task::JoinHandle;
use overlap::time::sleep;
use server::{serve, Log};
use support::{open_fds, pattern_seeded, run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(20);
const BIG: usize = 8 << 20;

// ---------------------------------------------------------------------------------------
// The test's side: a served directory, a server, and a keep-alive client.
// ---------------------------------------------------------------------------------------

/// A directory with `empty`, `small` (13 bytes), `big` (8 MiB), `sub/inner`, and a link
/// `escape` to the directory above it.
fn tree(name: &str) -> (TempDir, PathBuf, &'static [u8]) {
    let dir = TempDir::new(name);
    let root = dir.join("www");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("small"), b"hello, world\n").unwrap();
    static BIG_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let big = BIG_BYTES.get_or_init(|| pattern_seeded(BIG, 41));
    std::fs::write(root.join("big"), big).unwrap();
    std::fs::write(root.join("sub/inner"), b"inside").unwrap();
    std::fs::write(dir.join("secret"), b"outside the root").unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("escape")).unwrap();
    (dir, root, big)
}

/// Starts the server on a fresh port; returns its address, its log and its task.
async fn start(root: PathBuf) -> (SocketAddr, Log, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let server = overlap::spawn(serve(listener, root, log.clone()));
    (addr, log, server)
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

type Client = BufReader<TcpStream>;

async fn client(addr: SocketAddr) -> Client {
    BufReader::new(TcpStream::connect(addr).await.unwrap())
}

/// Sends `GET target` with `extra` header lines and reads the status and head.
async fn ask(c: &mut Client, target: &str, extra: &str) -> (u16, Vec<(String, String)>) {
    let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    c.get_mut().write_all(req.as_bytes()).await.unwrap();
    head_of(c).await
}

/// Reads a reply's status and head.
async fn head_of(c: &mut Client) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    c.read_line(&mut line).await.unwrap();
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
    let status = status.unwrap_or_else(|| panic!("status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        c.read_line(&mut line).await.unwrap();
        let Some((n, v)) = line.trim_end().split_once(':') else {
            assert_eq!(line, "\r\n", "end of head");
            return (status, headers);
        };
        headers.push((n.to_string(), v.trim().to_string()));
    }
}

/// A whole request and reply.
async fn get(c: &mut Client, target: &str, extra: &str) -> Reply {
    let (status, headers) = ask(c, target, extra).await;
    body_of(c, status, headers).await
}

/// Reads the body a head announced.
async fn body_of(c: &mut Client, status: u16, headers: Vec<(String, String)>) -> Reply {
    let mut body = vec![0; length_of(&headers)];
    c.read_exact(&mut body).await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn length_of(headers: &[(String, String)]) -> usize {
    let found = headers.iter().find(|(n, _)| n == "Content-Length");
    found
        .and_then(|(_, v)| v.parse().ok())
        .expect("a Content-Length")
}

/// Waits until the server has logged `n` ended connections.
async fn ended(log: &Log, n: usize) {
    within(
        HANG,
        async {
            while log.borrow().len() < n {
                sleep(Duration::from_millis(1)).await;
            }
        },
        "connection tasks did not end",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

#[test]
fn files_listings_ranges_and_refusals_over_one_kept_alive_connection() {
    let (_dir, root, big) = tree("static-one");
    overlap::block_on(async {
        let (addr, log, _server) = start(root).await;
        let mut c = client(addr).await;
        let r = get(&mut c, "/empty", "").await;
        assert_eq!((r.status, r.body.len()), (200, 0));
        let r = get(&mut c, "/small", "").await;
        assert_eq!((r.status, &r.body[..]), (200, &b"hello, world\n"[..]));
        let r = within(HANG, get(&mut c, "/big", ""), "8 MiB never came").await;
        assert_eq!(r.status, 200);
        assert!(r.body == big, "the 8 MiB body differs");

        let r = get(&mut c, "/", "").await;
        assert_eq!(
            (r.status, &r.body[..]),
            (200, &b"big\nempty\nescape\nsmall\nsub/\n"[..])
        );
        let r = get(&mut c, "/sub", "").await;
        assert_eq!(r.body, b"inner\n");
        let r = get(&mut c, "/sub/inner?x=1", "").await;
        assert_eq!(r.body, b"inside");

        for (target, status) in [
            ("/missing", 404),
            ("/sub/../small", 403),
            ("/../secret", 403),
            ("/escape/secret", 403),
            ("/escape", 403),
            ("/sm\0all", 403),
        ] {
            let r = get(&mut c, target, "").await;
            assert_eq!((r.status, r.body.len()), (status, 0), "{target}");
        }

        let r = get(&mut c, "/big", "Range: bytes=1000000-1999999\r\n").await;
        assert_eq!(r.status, 206);
        assert_eq!(
            r.header("Content-Range"),
            Some("bytes 1000000-1999999/8388608")
        );
        assert!(r.body == big[1_000_000..2_000_000], "the range differs");
        let r = get(&mut c, "/big?copy", "Range: bytes=3-4000000\r\n").await;
        assert_eq!(r.status, 206);
        assert!(r.body == big[3..4_000_001], "the range copied differs");
        let r = get(&mut c, "/big?copy", "").await;
        assert!(r.body == big, "the file copied differs");
        let r = get(&mut c, "/small", "Range: bytes=-6\r\n").await;
        assert_eq!((r.status, &r.body[..]), (206, &b"world\n"[..]));
        let r = get(&mut c, "/small", "Range: bytes=7-\r\n").await;
        assert_eq!(r.body, b"world\n");
        let r = get(&mut c, "/small", "Range: bytes=13-\r\n").await;
        assert_eq!(r.status, 416);
        assert_eq!(r.header("Content-Range"), Some("bytes */13"));
        let r = get(&mut c, "/empty", "Range: bytes=0-\r\n").await;
        assert_eq!(r.status, 416);

        // Two requests in one write: the answers come in order.
        let two = b"GET /small HTTP/1.1\r\n\r\nGET /sub/inner HTTP/1.1\r\n\r\n";
        c.get_mut().write_all(two).await.unwrap();
        for want in [&b"hello, world\n"[..], b"inside"] {
            let (status, headers) = head_of(&mut c).await;
            assert_eq!(body_of(&mut c, status, headers).await.body, want);
        }

        // Every answer came on the one connection; the last asks to close it.
        let r = get(&mut c, "/small", "Connection: close\r\n").await;
        assert_eq!(r.header("Connection"), Some("close"));
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        ended(&log, 1).await;
        assert!(log.borrow()[0].is_ok(), "{:?}", log.borrow()[0]);
    });
}

#[test]
fn fifty_clients_at_once_each_get_their_files_whole() {
    let (_dir, root, big) = tree("static-fifty");
    std::fs::write(root.join("mid"), &big[..256 << 10]).unwrap();
    overlap::block_on(async {
        let (addr, log, _server) = start(root).await;
        let clients: Vec<_> = (0..50)
            .map(|i| {
                overlap::spawn(async move {
                    let mut c = client(addr).await;
                    let r = get(&mut c, "/mid", "").await;
                    assert!(r.body[..] == big[..256 << 10], "client {i}: mid differs");
                    let r = get(&mut c, "/small", "").await;
                    assert_eq!(r.body, b"hello, world\n", "client {i}");
                    if i % 10 == 0 {
                        let r = get(&mut c, "/big", "").await;
                        assert!(r.body[..] == big[..], "client {i}: big differs");
                    }
                })
            })
            .collect();
        for c in clients {
            within(HANG, c, "a client never finished").await.unwrap();
        }
        ended(&log, 50).await;
        assert!(log.borrow().iter().all(|e| e.is_ok()), "{:?}", log.borrow());
    });
}

#[test]
fn a_client_gone_mid_transfer_ends_its_task_with_an_error_and_leaks_no_fd() {
    run_in_child(
        "a_client_gone_mid_transfer_ends_its_task_with_an_error_and_leaks_no_fd",
        || {
            let (_dir, root, big) = tree("static-gone");
            overlap::block_on(async {
                let (addr, log, server) = start(root).await;
                // One full round first, so the pool and the reactor have what they keep.
                let mut warm = client(addr).await;
                assert_eq!(get(&mut warm, "/big", "").await.body.len(), BIG);
                drop(warm);
                ended(&log, 1).await;
                let fds = open_fds();

                let mut steady = client(addr).await;
                let (status, _) = ask(&mut steady, "/big", "").await;
                assert_eq!(status, 200);
                for (round, how) in ["", "?copy", ""].into_iter().enumerate() {
                    let mut gone = client(addr).await;
                    assert_eq!(ask(&mut gone, &format!("/big{how}"), "").await.0, 200);
                    let mut some = vec![0; 100_000];
                    gone.read_exact(&mut some).await.unwrap();
                    assert!(some == big[..100_000], "round {round}");
                    drop(gone); // unread bytes: the kernel resets the connection
                    ended(&log, 2 + round).await;
                    let err = log.borrow_mut().pop().unwrap().unwrap_err();
                    log.borrow_mut().push(Ok(()));
                    let kind = err.kind();
                    use io::ErrorKind::{BrokenPipe, ConnectionReset};
                    assert!(matches!(kind, BrokenPipe | ConnectionReset), "{err}");
                    if how.is_empty() {
                        assert!(err.to_string().starts_with("failed to send "), "{err}");
                        assert!(err.to_string().contains("big"), "{err}");
                    }
                }
                // The transfer that went on meanwhile is whole.
                let mut body = vec![0; BIG];
                within(
                    HANG,
                    steady.read_exact(&mut body),
                    "the steady client stalled",
                )
                .await
                .unwrap();
                assert!(body == big, "the steady client's body differs");
                assert_eq!(get(&mut steady, "/small", "").await.body, b"hello, world\n");
                drop(steady);
                ended(&log, 5).await;
                assert_eq!(open_fds(), fds, "fds left open");
                let registered = overlap::metrics().registered_fds;

                // Two clients stop reading mid-body; then the server is aborted, with its
                // connections' tasks. Each client reads what was sent, then the end.
                let mut stalled = Vec::new();
                for _ in 0..2 {
                    let mut c = client(addr).await;
                    assert_eq!(ask(&mut c, "/big", "").await.0, 200);
                    let mut some = vec![0; 1000];
                    c.read_exact(&mut some).await.unwrap();
                    stalled.push(c);
                }
                server.abort();
                for mut c in stalled {
                    let mut rest = Vec::new();
                    let read = io::read_to_end(&mut c, &mut rest);
                    within(HANG, read, "an aborted connection stayed open")
                        .await
                        .unwrap();
                    assert!(rest.len() < BIG && rest[..] == big[1000..1000 + rest.len()]);
                }
                // Only the listener went besides the clients' own sockets.
                assert_eq!(open_fds(), fds - 1, "fds left open after the abort");
                assert_eq!(overlap::metrics().registered_fds, registered - 1);
            });
        },
    );
}

#[test]
fn a_stalled_reader_costs_no_polls_and_later_gets_every_byte() {
    let (_dir, root, big) = tree("static-stall");
    overlap::block_on(async {
        let (addr, log, _server) = start(root).await;
        for (i, how) in ["", "?copy"].into_iter().enumerate() {
            // A small receive window, so the server's sends fill up early.
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(16 << 10).unwrap();
            let mut c = BufReader::new(socket.connect(addr).await.unwrap());
            assert_eq!(ask(&mut c, &format!("/big{how}"), "").await.0, 200);
            let mut body = vec![0; BIG];
            c.read_exact(&mut body[..1000]).await.unwrap();
            // The client reads nothing more. Wait until the server stops handing work to
            // the pool (a server spinning on the full socket never does), then watch it.
            // (Two quiet spells in a row: on a loaded machine one pool job can be late.)
            let quiet = async {
                let mut spells = 0;
                while spells < 2 {
                    let before = overlap::metrics().blocking_jobs;
                    sleep(Duration::from_millis(20)).await;
                    let still = overlap::metrics().blocking_jobs == before;
                    spells = if still { spells + 1 } else { 0 };
                }
            };
            within(HANG, quiet, "the server kept using the pool").await;
            // A late ACK may make room a few times; a spinning server would make
            // thousands of polls and jobs.
            let m0 = overlap::metrics();
            sleep(Duration::from_millis(100)).await;
            let m1 = overlap::metrics();
            let jobs = m1.blocking_jobs - m0.blocking_jobs;
            let polls = m1.task_polls - m0.task_polls;
            assert!(
                jobs <= 16 && polls <= 40,
                "{how}: {jobs} jobs, {polls} polls"
            );
            // Then it reads slowly, 64 KiB at a time with a pause now and then.
            let mut at = 1000;
            let mut reads = 0u64;
            while at < BIG {
                let end = (at + (64 << 10)).min(BIG);
                c.read_exact(&mut body[at..end]).await.unwrap();
                at = end;
                reads += 1;
                if reads % 8 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
            assert!(body == big, "{how}: the slow client's body differs");
            let jobs = overlap::metrics().blocking_jobs - m1.blocking_jobs;
            assert!(
                jobs <= 4 * reads + 16,
                "{how}: {jobs} pool jobs, {reads} reads"
            );
            drop(c);
            ended(&log, i + 1).await;
        }
    });
}

#[test]
fn a_file_truncated_while_sent_ends_the_answer_short_and_closes() {
    let (_dir, root, big) = tree("static-truncate");
    overlap::block_on(async {
        let (addr, log, _server) = start(root.clone()).await;
        for (i, how) in ["", "?copy"].into_iter().enumerate() {
            let path = root.join("shrinking");
            std::fs::copy(root.join("big"), &path).unwrap();
            // A small receive window: most of the file is still unsent when it shrinks.
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(16 << 10).unwrap();
            let mut c = BufReader::new(socket.connect(addr).await.unwrap());
            let (status, headers) = ask(&mut c, &format!("/shrinking{how}"), "").await;
            assert_eq!((status, length_of(&headers)), (200, BIG));
            let mut body = vec![0; 1000];
            c.read_exact(&mut body).await.unwrap();
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(1 << 20).unwrap();
            let rest = io::read_to_end(&mut c, &mut body);
            within(HANG, rest, "the truncated answer never ended")
                .await
                .unwrap();
            assert!(body.len() < BIG, "{how}: the whole length came");
            // What `sendfile` sent before the truncation went by reference to the page
            // cache (see `File::send_to`): up to the new end it is the file's; past it, the
            // kernel may have zeroed some of it before this client read it.
            let kept = body.len().min(1 << 20);
            assert!(
                body[..kept] == big[..kept],
                "{how}: differs before the new end"
            );
            for (got, was) in body[kept..].chunks(4096).zip(big[kept..].chunks(4096)) {
                let zeros = got.iter().all(|&b| b == 0) && how.is_empty();
                assert!(got == was || zeros, "{how}: not the file's bytes nor zeros");
            }
            ended(&log, i + 1).await;
            let err = log.borrow()[i].as_ref().unwrap_err().to_string();
            assert!(err.contains("shrinking shrank"), "{how}: {err}");
        }
    });
}

/// The way to update a served file that `File::send_to`'s docs give: a new file renamed
/// over the old one leaves the answer in flight as it was, byte for byte.
#[test]
fn a_file_replaced_by_rename_while_sent_arrives_as_it_was() {
    let (dir, root, big) = tree("static-rename");
    overlap::block_on(async {
        let (addr, log, _server) = start(root.clone()).await;
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 << 10).unwrap();
        let mut c = BufReader::new(socket.connect(addr).await.unwrap());
        let (status, _) = ask(&mut c, "/big", "").await;
        assert_eq!(status, 200);
        let mut body = vec![0; BIG];
        c.read_exact(&mut body[..1000]).await.unwrap();
        let new = dir.join("new");
        std::fs::write(&new, vec![b'x'; BIG]).unwrap();
        std::fs::rename(&new, root.join("big")).unwrap();
        let rest = c.read_exact(&mut body[1000..]);
        within(HANG, rest, "the answer stalled").await.unwrap();
        assert!(body == big, "the answer changed with the file");
        // The next request gets the new file.
        let r = get(&mut c, "/big", "Range: bytes=0-3\r\n").await;
        assert_eq!(r.body, b"xxxx");
        drop(c);
        ended(&log, 1).await;
    });
}
