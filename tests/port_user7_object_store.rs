//! A user's small object store over HTTP/1.1, sketched as one would for tokio and then
//! written for overlap (`port_user7_object_store/store.rs`): `PUT /key` streams its body
//! (`Content-Length` or chunked) into a temp file in an uploads directory, chunk by chunk
//! as it arrives (never the whole body in memory), with an FNV-1a checksum computed on the
//! way and returned in `x-checksum`; then `sync_all` and a `rename` over the key's file, so
//! concurrent PUTs of one key end with the last rename's object, never a torn one. `GET
//! /key` streams the object back with `File::send_to` (tokio: `io::copy` from the file);
//! `DELETE /key` removes it. A body over the store's limit is refused with 413, a disk
//! refusing writes (`EFBIG`, `ENOSPC`, `EDQUOT`) gives 507, and each request runs under a
//! `timeout` (408). A guard removes an upload's temp file however its request ends: an
//! error, a refusal, the client gone, the timeout dropping it.
//!
//! The tokio version, as sketched:
//!
//! ```text
//! let mut tmp = tokio::fs::File::create(&part).await?;
//! while left > 0 {
//!     let buf = reader.fill_buf().await?;           // BufReader<&mut TcpStream>
//!     sum = fnv(sum, &buf[..n]);
//!     tmp.write_all(&buf[..n]).await?;               // EFBIG -> 507
//!     reader.consume(n);
//! }
//! tmp.flush().await?; tmp.sync_all().await?;
//! tokio::fs::rename(&part, &object).await?;
//! // GET: tokio::io::copy(&mut File::open(&object).await?, &mut stream)
//! ```
//!
//! The tests check exact bytes for twenty concurrent uploads of 64 KiB to 2 MiB read back
//! with GET, that concurrent PUTs (and GETs) of one key only ever see a whole object, 413
//! for a declared and for a chunked body over the limit, a client gone mid-upload and an
//! upload cut by the request timeout (temp file removed, server still serving), `EFBIG`
//! mid-upload (`RLIMIT_FSIZE` in a child: 507, temp file removed, the next PUT works), a
//! stalled uploader not holding up others, a download whose client reads nothing cut by
//! the timeout mid-`send_to` (the client gets a short body and the end), a downloader
//! reading nothing holding up no upload on a one-thread blocking pool, and no fd or task
//! left when the server stops.
//!
//! What the port changed, against tokio: `BufReader::new(&conn)` reads a borrowed stream
//! (overlap implements the io traits for `&TcpStream`), `fill_buf`/`consume` come from
//! futures' `AsyncBufReadExt`, and GET uses `File::send_to` rather than a copy through user
//! memory. Tasks need not be `Send`: the store is an `Rc`. Two mistakes of the first draft
//! were the user's, not overlap's, and would be the same with tokio: answering 413 and
//! closing with the body unread reset the connection, and the client lost the answer (the
//! server now shuts its side and drains up to 16 MiB: a lingering close); and the 408
//! sent after a timeout was written even after a GET's head, with `write_all`, so a client
//! reading nothing held the task forever (it is now sent only before any answer, with one
//! `try_write`). One was overlap's: a `File::create` cut by the timeout while it waited for
//! a busy pool still ran after the guard had removed the path, leaving a temp file; a
//! queued open now never runs once dropped (`tests/cancel_safety_fs.rs`). Overlap's `File`
//! docs now also say that past `RLIMIT_FSIZE` the kernel raises `SIGXFSZ`, which this port
//! ignores to get `EFBIG`.

mod support;

#[path = "port_user7_object_store/store.rs"]
mod store;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{self, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinHandle;
use store::{fnv, Log, Store, FNV_START};
use support::{pattern_seeded, run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(20);
const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

struct Server {
    dir: TempDir,
    addr: SocketAddr,
    store: Rc<Store>,
    log: Log,
    task: JoinHandle<()>,
}

async fn server(name: &str, max_body: u64, request_timeout: Duration) -> Server {
    let dir = TempDir::new(name);
    let store = Store::new(dir.path(), max_body, request_timeout).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let task = overlap::spawn(store::serve(listener, store.clone(), log.clone()));
    Server {
        dir,
        addr,
        store,
        log,
        task,
    }
}

struct Response {
    status: u16,
    checksum: Option<String>,
    body: Vec<u8>,
}

/// Reads a response to the end of the connection.
async fn response(mut conn: TcpStream) -> Response {
    let mut raw = Vec::new();
    within(HANG, io::read_to_end(&mut conn, &mut raw), "response")
        .await
        .unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(at) = resp.parse(&raw).unwrap() else {
        panic!("partial response {raw:?}");
    };
    let checksum = resp
        .headers
        .iter()
        .find(|h| h.name == "x-checksum")
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap());
    Response {
        status: resp.code.unwrap(),
        checksum,
        body: raw[at..].to_vec(),
    }
}

/// One request with a `Content-Length` body (or none).
async fn request(addr: SocketAddr, method: &str, key: &str, body: Option<&[u8]>) -> Response {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} /{key} HTTP/1.1\r\nhost: store\r\n");
    if let Some(body) = body {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    if let Some(body) = body {
        within(HANG, conn.write_all(body), "body").await.unwrap();
    }
    response(conn).await
}

fn checksum_of(body: &[u8]) -> String {
    format!("{:016x}", fnv(FNV_START, body))
}

async fn put_ok(addr: SocketAddr, key: &str, body: &[u8]) {
    let resp = request(addr, "PUT", key, Some(body)).await;
    assert_eq!(
        resp.status,
        201,
        "PUT {key}: {:?}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(resp.checksum.as_deref(), Some(checksum_of(body).as_str()));
}

async fn get_body(addr: SocketAddr, key: &str) -> Vec<u8> {
    let resp = request(addr, "GET", key, None).await;
    assert_eq!(resp.status, 200, "GET {key}");
    resp.body
}

/// The temp files of uploads in progress.
fn uploads(s: &Server) -> Vec<String> {
    std::fs::read_dir(&s.store.uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Waits until `n` connections have ended; returns the last one's result.
async fn ended(s: &Server, n: usize) -> io::Result<()> {
    within(
        HANG,
        async {
            while s.log.borrow().len() < n {
                overlap::time::sleep(Duration::from_millis(2)).await;
            }
        },
        "connections end",
    )
    .await;
    s.log.borrow_mut().pop().unwrap()
}

#[test]
fn twenty_concurrent_uploads_read_back_exactly() {
    overlap::block_on(async {
        let s = server("os-twenty", 4 * MIB as u64, HANG).await;
        let bodies: Vec<Rc<Vec<u8>>> = (0..20)
            // 64 KiB to 2 MiB, growing by a constant factor (plus a few odd bytes).
            .map(|i| {
                let size = (64.0 * 32f64.powf(i as f64 / 19.0)) as usize * KIB + i;
                Rc::new(pattern_seeded(size, i as u32))
            })
            .collect();
        let puts: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let b = b.clone();
                overlap::spawn(async move { put_ok(s.addr, &format!("obj-{i}"), &b).await })
            })
            .collect();
        for p in puts {
            within(HANG, p, "PUT").await.unwrap();
        }
        let gets: Vec<_> = (0..20)
            .map(|i| overlap::spawn(async move { get_body(s.addr, &format!("obj-{i}")).await }))
            .collect();
        for (i, g) in gets.into_iter().enumerate() {
            assert!(
                within(HANG, g, "GET").await.unwrap() == *bodies[i],
                "obj-{i}"
            );
        }
        assert!(uploads(&s).is_empty());
        let resp = request(s.addr, "DELETE", "obj-3", None).await;
        assert_eq!(resp.status, 204);
        assert_eq!(request(s.addr, "GET", "obj-3", None).await.status, 404);
        assert_eq!(request(s.addr, "DELETE", "obj-3", None).await.status, 404);
        assert_eq!(request(s.addr, "GET", "../etc", None).await.status, 400);
        s.task.abort();
    });
}

/// Eight PUTs of one key at once, with GETs among them: every GET sees one whole body, and
/// the object left is one of them.
#[test]
fn concurrent_puts_of_one_key_never_tear() {
    overlap::block_on(async {
        let s = server("os-one-key", MIB as u64, HANG).await;
        let bodies: Vec<Rc<Vec<u8>>> = (0..8u8)
            .map(|i| Rc::new(vec![b'a' + i; 256 * KIB]))
            .collect();
        put_ok(s.addr, "k", &bodies[0]).await;
        let mut tasks = Vec::new();
        for b in &bodies {
            let b = b.clone();
            tasks.push(overlap::spawn(async move {
                put_ok(s.addr, "k", &b).await;
                get_body(s.addr, "k").await
            }));
        }
        for t in tasks {
            let got = within(HANG, t, "PUT then GET").await.unwrap();
            assert!(bodies.iter().any(|b| **b == got), "torn object");
        }
        let last = get_body(s.addr, "k").await;
        assert!(bodies.iter().any(|b| **b == last), "torn object");
        assert!(uploads(&s).is_empty());
        s.task.abort();
    });
}

/// A body declared over the limit is refused before it is read; a chunked one is refused
/// once its chunks pass the limit, and its temp file goes.
#[test]
fn bodies_over_the_limit_get_413() {
    overlap::block_on(async {
        let s = server("os-413", 100 * KIB as u64, HANG).await;
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        conn.write_all(b"PUT /big HTTP/1.1\r\ncontent-length: 102401\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(response(conn).await.status, 413);

        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        let chunk = vec![b'x'; 40 * KIB];
        let mut req = b"PUT /big HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            req.extend_from_slice(&chunk);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        // The server may answer and close before taking it all: a reset is fine here.
        let _ = conn.write_all(&req).await;
        assert_eq!(response(conn).await.status, 413);
        ended(&s, 2).await.unwrap();
        assert!(uploads(&s).is_empty());
        assert_eq!(request(s.addr, "GET", "big", None).await.status, 404);

        // Under the limit, chunked, it is stored.
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        let mut req = b"PUT /small HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n");
        conn.write_all(&req).await.unwrap();
        let resp = response(conn).await;
        assert_eq!(resp.status, 201);
        assert_eq!(resp.checksum.unwrap(), checksum_of(b"hello world"));
        assert_eq!(get_body(s.addr, "small").await, b"hello world");
        s.task.abort();
    });
}

/// A client gone mid-upload: its connection ends with an error, its temp file goes, no
/// object appears, and the server serves on.
#[test]
fn client_gone_mid_upload() {
    overlap::block_on(async {
        let s = server("os-gone", 4 * MIB as u64, HANG).await;
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        conn.write_all(b"PUT /half HTTP/1.1\r\ncontent-length: 1048576\r\n\r\n")
            .await
            .unwrap();
        conn.write_all(&vec![b'h'; 300 * KIB]).await.unwrap();
        within(
            HANG,
            async {
                while uploads(&s).is_empty() {
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            },
            "upload starts",
        )
        .await;
        drop(conn);
        let err = ended(&s, 1).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(uploads(&s).is_empty());
        assert_eq!(request(s.addr, "GET", "half", None).await.status, 404);
        put_ok(s.addr, "half", b"whole").await;
        s.task.abort();
    });
}

/// An uploader that stalls is cut by the request timeout (408, temp file removed), and
/// while it stalls others upload and download.
#[test]
fn stalled_uploader_holds_up_no_one_and_times_out() {
    overlap::block_on(async {
        let s = server("os-stall", MIB as u64, Duration::from_millis(300)).await;
        let mut slow = TcpStream::connect(s.addr).await.unwrap();
        slow.write_all(b"PUT /slow HTTP/1.1\r\ncontent-length: 1000\r\n\r\nsome")
            .await
            .unwrap();
        for i in 0..5 {
            let body = pattern_seeded(50 * KIB, i);
            put_ok(s.addr, &format!("quick-{i}"), &body).await;
            assert!(get_body(s.addr, &format!("quick-{i}")).await == body);
        }
        let resp = response(slow).await;
        assert_eq!(resp.status, 408);
        // On a loaded machine the quick ones may outlast the slow one's timeout, so the
        // order of the endings is not checked: ten quick successes and one timeout.
        within(
            HANG,
            async {
                while s.log.borrow().len() < 11 {
                    overlap::time::sleep(Duration::from_millis(2)).await;
                }
            },
            "all eleven end",
        )
        .await;
        {
            let log = s.log.borrow();
            let errors: Vec<_> = log.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(log.len(), 11);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].kind(), io::ErrorKind::TimedOut);
        }
        assert!(uploads(&s).is_empty());
        assert_eq!(request(s.addr, "GET", "slow", None).await.status, 404);
        s.task.abort();
    });
}

/// Ignores `SIGXFSZ` (so a write past the limit fails with `EFBIG` instead of killing the
/// process) and sets the soft file size limit to `soft`.
fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    support::set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

/// The disk refusing an upload mid-body (`RLIMIT_FSIZE`: `EFBIG`): 507, the temp file
/// removed, no object; a smaller upload then works.
#[test]
fn disk_refusing_writes_gives_507() {
    run_in_child("disk_refusing_writes_gives_507", || {
        overlap::block_on(async {
            let s = server("os-efbig", 4 * MIB as u64, HANG).await;
            set_fsize(200 * KIB as u64);
            let resp = request(s.addr, "PUT", "huge", Some(&vec![b'e'; MIB])).await;
            assert_eq!(
                resp.status,
                507,
                "{:?}",
                String::from_utf8_lossy(&resp.body)
            );
            let said = String::from_utf8_lossy(&resp.body);
            assert!(said.contains("huge.0.part: File too large"), "{said}");
            ended(&s, 1).await.unwrap();
            assert!(uploads(&s).is_empty());
            assert_eq!(request(s.addr, "GET", "huge", None).await.status, 404);
            let body = pattern_seeded(150 * KIB, 7);
            put_ok(s.addr, "fits", &body).await;
            assert!(get_body(s.addr, "fits").await == body);
            s.task.abort();
        });
    });
}

/// The server stopped after uploads, a refused one, a client gone and a GET cut short:
/// no fd or task is left.
#[test]
fn no_fd_or_task_left() {
    run_in_child("no_fd_or_task_left", || {
        overlap::block_on(async {
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let s = server("os-leaks", MIB as u64, HANG).await;
            put_ok(s.addr, "a", &pattern_seeded(300 * KIB, 1)).await;
            assert_eq!(
                request(s.addr, "PUT", "b", Some(&vec![0; MIB + 1]))
                    .await
                    .status,
                413
            );
            let mut gone = TcpStream::connect(s.addr).await.unwrap();
            gone.write_all(b"PUT /c HTTP/1.1\r\ncontent-length: 9999\r\n\r\nxx")
                .await
                .unwrap();
            // A GET whose client reads only the head, then goes.
            let mut reader = TcpStream::connect(s.addr).await.unwrap();
            reader.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
            let mut some = [0; 64];
            overlap::io::AsyncReadExt::read(&mut reader, &mut some)
                .await
                .unwrap();
            drop(reader);
            drop(gone);
            ended(&s, 4).await.ok();
            // A connection still open when the server stops.
            let open = TcpStream::connect(s.addr).await.unwrap();
            s.task.abort();
            let _ = s.task.await;
            drop(open);
            let Server {
                dir, store, log, ..
            } = s;
            drop((store, log));
            assert!(std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .next()
                .is_none());
            drop(dir);
            within(
                HANG,
                async {
                    while overlap::metrics().tasks_alive > tasks {
                        overlap::time::sleep(Duration::from_millis(2)).await;
                    }
                },
                "tasks end",
            )
            .await;
            // The upload whose client went after two bytes dropped its `File` with their
            // write job perhaps still in flight (writes are write-behind), and the GET cut
            // short may leave a `send_to` run holding its socket's duplicate: either fd
            // closes on the pool as its job ends, after the task (the docs say so). Wait
            // for them rather than race them.
            within(
                HANG,
                async {
                    while support::open_fds() > fds {
                        overlap::time::sleep(Duration::from_millis(2)).await;
                    }
                },
                "the fds of the cut upload and GET go",
            )
            .await;
            assert_eq!(support::open_fds(), fds, "fds left");
        });
    });
}

/// A GET whose client reads nothing is cut by the request timeout mid-`send_to`: the
/// connection closes (the client gets a short body, then the end), and no fd is left once
/// the server stops.
#[test]
fn download_cut_by_the_timeout() {
    run_in_child("download_cut_by_the_timeout", || {
        overlap::block_on(async {
            let fds = support::open_fds();
            let s = server("os-cut-get", 4 * MIB as u64, Duration::from_millis(500)).await;
            // Put in place directly, not uploaded: a PUT under the short timeout may itself
            // be cut on a loaded machine (and then closed with its body unread, a reset).
            let body = pattern_seeded(8 * MIB, 9);
            std::fs::write(s.store.objects.join("big"), &body).unwrap();
            let mut conn = TcpStream::connect(s.addr).await.unwrap();
            conn.write_all(b"GET /big HTTP/1.1\r\n\r\n").await.unwrap();
            let err = ended(&s, 1).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            let resp = response(conn).await;
            assert_eq!(resp.status, 200);
            assert!(resp.body.len() < body.len(), "{}", resp.body.len());
            assert!(
                resp.body == body[..resp.body.len()],
                "the bytes sent are the object's"
            );
            s.task.abort();
            let _ = s.task.await;
            drop((s.store, s.log, s.dir));
            // The cut `send_to`'s pool run holds its own duplicate of the socket until it
            // ends (the docs say so): wait for it rather than race it.
            within(
                HANG,
                async {
                    while support::open_fds() > fds {
                        overlap::time::sleep(Duration::from_millis(2)).await;
                    }
                },
                "the cut send's fd goes",
            )
            .await;
            assert_eq!(support::open_fds(), fds, "fds left");
        });
    });
}

/// With a blocking pool of one thread, a downloader that reads nothing of a 4 MiB object
/// holds up no upload: its `send_to` runs end when its socket is full.
#[test]
fn stalled_downloader_holds_up_no_upload_on_a_one_thread_pool() {
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let s = server("os-one-thread", 4 * MIB as u64, HANG).await;
        let big = pattern_seeded(4 * MIB, 11);
        put_ok(s.addr, "big", &big).await;
        let mut stalled = TcpStream::connect(s.addr).await.unwrap();
        stalled
            .write_all(b"GET /big HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let puts: Vec<_> = (0..6u32)
            .map(|i| {
                overlap::spawn(async move {
                    let body = pattern_seeded(200 * KIB, i);
                    put_ok(s.addr, &format!("p{i}"), &body).await;
                    assert!(get_body(s.addr, &format!("p{i}")).await == body);
                })
            })
            .collect();
        for p in puts {
            within(HANG, p, "PUT and GET beside a stalled download")
                .await
                .unwrap();
        }
        let resp = response(stalled).await;
        assert!(resp.body == big);
        s.task.abort();
    });
}
