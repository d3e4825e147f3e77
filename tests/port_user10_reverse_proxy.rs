//! A user's HTTP/1.1 reverse proxy, sketched as one would for tokio and then written for
//! overlap (`port_user10_reverse_proxy/proxy.rs`), with the wire format in `http.rs` and
//! the upstreams the tests put behind it in `upstream.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! loop {
//!     let (client, peer) = listener.accept().await?;
//!     let shared = shared.clone(); // Arc<Shared>: upstreams, each a Mutex<Vec<UpConn>> pool
//!     tokio::spawn(async move {
//!         let mut buf = BytesMut::new();
//!         while let Some(head) = read_head(&mut client, &mut buf).await? {
//!             let Ok(framing) = head.framing() else { return answer(&mut client, 400).await };
//!             let mut up_head = strip_hop_by_hop(&head); // and those Connection names
//!             up_head.append_forwarded_for(peer.ip());
//!             // Round-robin, skipping upstreams marked down; an idle pooled connection
//!             // first, checked still open with `try_read` (WouldBlock: open); a refused
//!             // connect marks the upstream down.
//!             let Some((i, mut up)) = checkout(&shared).await else { return answer(502) };
//!             let (mut crd, mut cwr) = client.split();
//!             let (mut urd, mut uwr) = up.stream.split();
//!             // The body goes up while the response comes back (an upstream may answer
//!             // piece by piece); the timeout covers the wait for the response head.
//!             let send = async {
//!                 uwr.write_all(&up_head.encode()).await?;
//!                 relay_body(&mut crd, &mut buf, &mut uwr, framing).await
//!             };
//!             let recv = async {
//!                 let resp = timeout(shared.upstream_timeout, read_head(&mut urd, &mut up.buf))
//!                     .await
//!                     .map_err(|_| io::Error::from(ErrorKind::TimedOut))??;
//!                 cwr.write_all(&strip_hop_by_hop(&resp).encode()).await?; // framing kept
//!                 if resp.status != 101 {
//!                     relay_body(&mut urd, &mut up.buf, &mut cwr, resp.framing()).await?;
//!                 }
//!                 Ok(resp)
//!             };
//!             let resp = match try_join!(send, recv) {
//!                 Ok((_, resp)) => resp,
//!                 Err(e) if e.kind() == ErrorKind::TimedOut => return answer(504).await,
//!                 Err(_) => return answer(&mut client, 502).await, // if no head went yet
//!             };
//!             if resp.status == 101 {
//!                 return copy_bidirectional(&mut client, &mut up.stream).await;
//!             }
//!             if resp.keeps_alive() { checkin(&shared, i, up) } // dropped past the cap
//!         }
//!     });
//! }
//! ```
//!
//! The tests check: round-robin over two upstreams with a refusing one marked down after
//! one try, its connections pooled (one accept per upstream for six requests); 1 MiB
//! bodies with a Content-Length and chunked streamed through byte-exact both ways, and a
//! response without length ending with the connection; a chunked body moving piece by
//! piece (the upstream answers each before the next is sent); hop-by-hop headers removed
//! and `X-Forwarded-For` added; an idle connection the upstream closed replaced before
//! use; the pool capped; an upgrade answered 101 relayed raw both ways until either side
//! closes; an upstream's early answer (413 on the head alone) passed on while the body is
//! cut short; an upstream that never answers (on a paused clock) and one that never accepts
//! (on the real clock) answered 504; malformed requests answered 400 and closed; 50
//! clients at once; and no fd or task left.
//!
//! What the port changed, against tokio: `tokio::spawn` became a `JoinSet` in the accept
//! loop (the proxy's drop aborts every client), `Arc<Mutex<..>>` became `Rc<RefCell<..>>`
//! (the pool is never borrowed across an await), and `client.split()` became
//! `TcpStream::split(&mut client)`, the method form resolving to futures'
//! `AsyncReadExt::split` (which takes the stream by value). The pooled connection's liveness check is a `peek` polled once with
//! `now_or_never` where tokio's sketch used `try_read`: both give `WouldBlock` (or
//! `Pending`) while the socket is not known to be readable, as tokio's do, so either sees
//! a close only once the loop has taken the edge, which it has by the time a request comes
//! (the upstream's FIN arrived while the proxy waited on its client). A reset idle
//! connection's peek gives `ConnectionReset` (taken from the socket, so a `try_read` after
//! it reads end of file), a closed one's `Ok(0)`: both are stale. The paused clock serves
//! the upstream that never answers, whose loopback bytes are all in the kernel's queues at
//! once (the sockets `set_nodelay`, as the clock's docs ask); the upstream that never
//! accepts runs on the real clock. The sketch's `try_join!` let an upstream's early
//! answer fail the exchange (the body's relay fails once the upstream closes), in tokio as
//! here: the port runs the two relays in a `select!` that only the response's relay ends,
//! and a body relay found unfinished then closes both connections.

mod support;

#[path = "port_user10_reverse_proxy/http.rs"]
mod http;
#[path = "port_user10_reverse_proxy/proxy.rs"]
mod proxy;
#[path = "port_user10_reverse_proxy/upstream.rs"]
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use http::Head;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use proxy::{Config, Proxy};
use support::{pattern, pattern_seeded, until, within};
use upstream::Upstream;

const HANG: Duration = Duration::from_secs(20);

/// A client connection to the proxy, with the bytes read past the last response.
struct Client {
    conn: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(proxy: SocketAddr) -> Client {
        let conn = TcpStream::connect(proxy).await.unwrap();
        conn.set_nodelay(true).unwrap();
        Client {
            conn,
            buf: Vec::new(),
        }
    }

    /// Sends `req` whole and reads the response to `method`: its head and body.
    async fn call(&mut self, method: &str, req: &[u8]) -> (Head, Vec<u8>) {
        self.conn.write_all(req).await.unwrap();
        self.response(method).await
    }

    async fn response(&mut self, method: &str) -> (Head, Vec<u8>) {
        let read = async {
            let head = http::read_head(&mut self.conn, &mut self.buf)
                .await?
                .unwrap();
            let framing = head.framing(Some(method))?;
            let body = http::read_body(&mut self.conn, &mut self.buf, framing).await?;
            std::io::Result::Ok((head, body))
        };
        within(HANG, read, "a response").await.unwrap()
    }

    async fn get(&mut self, path: &str) -> (Head, Vec<u8>) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: app\r\n\r\n");
        self.call("GET", req.as_bytes()).await
    }

    /// Reads to end of file.
    async fn rest(&mut self) -> Vec<u8> {
        let mut got = std::mem::take(&mut self.buf);
        within(
            HANG,
            overlap::io::read_to_end(&mut self.conn, &mut got),
            "end of file",
        )
        .await
        .unwrap();
        got
    }
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

fn post_chunked(path: &str, body: &[u8], piece: usize) -> Vec<u8> {
    let head = format!("POST {path} HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n");
    [head.as_bytes(), &http::chunked(body, piece)].concat()
}

fn backend(head: &Head) -> &str {
    head.get("x-backend").unwrap_or("none")
}

#[overlap::test]
async fn round_robin_skips_a_refusing_upstream_and_pools_its_connections() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let dead = upstream::dead_port().await;
    let proxy = Proxy::start(Config::new(vec![a.addr, dead, b.addr])).await;
    let mut client = Client::connect(proxy.addr).await;
    let mut served = Vec::new();
    for i in 0..6 {
        let (head, body) = client.get(&format!("/n{i}")).await;
        assert_eq!((head.status(), &body[..]), (200, &b"ok"[..]));
        served.push(backend(&head).to_string());
    }
    assert_eq!(served, ["a", "b", "a", "b", "a", "b"]);
    assert!(proxy.is_down(1));
    assert_eq!(proxy.stats.refused.get(), 1, "tried once, then skipped");
    assert_eq!(a.paths(), ["/n0", "/n2", "/n4"]);
    assert_eq!(b.paths(), ["/n1", "/n3", "/n5"]);
    assert_eq!((a.log.accepts.get(), b.log.accepts.get()), (1, 1));
    assert_eq!(
        (proxy.stats.connected.get(), proxy.stats.reused.get()),
        (2, 4)
    );
    // With every upstream down, the proxy answers 502 itself.
    let only_dead = Proxy::start(Config::new(vec![upstream::dead_port().await])).await;
    let mut client = Client::connect(only_dead.addr).await;
    let (head, _) = client.get("/").await;
    assert_eq!(head.status(), 502);
    assert_eq!(client.rest().await, b"");
}

#[overlap::test]
async fn one_mib_bodies_stream_through_byte_exact() {
    let up = Upstream::start("a").await;
    let proxy = Proxy::start(Config::new(vec![up.addr])).await;
    let mut client = Client::connect(proxy.addr).await;
    let data = pattern(1024 * 1024 + 3);
    // A Content-Length body each way.
    let (head, body) = client.call("POST", &post("/echo", &data)).await;
    assert_eq!(head.get("content-length"), Some("1048579"));
    assert!(body == data, "a Content-Length body changed");
    // A chunked body in odd pieces, echoed chunked.
    let (head, body) = client
        .call("POST", &post_chunked("/echo", &data, 7777))
        .await;
    assert_eq!(head.get("transfer-encoding"), Some("chunked"));
    assert!(body == data, "a chunked body changed");
    // A chunked response to a GET, then one whose body ends with the connection.
    let (_, body) = client.get("/big/1048577").await;
    assert!(body == pattern(1048577), "a chunked response changed");
    let (head, body) = client.get("/raw/300001").await;
    assert_eq!(head.get("connection"), Some("close"));
    assert!(body == pattern(300001), "a response without length changed");
    assert_eq!(client.rest().await, b"");
    let lens: Vec<usize> = up
        .log
        .requests
        .borrow()
        .iter()
        .map(|s| s.body_len)
        .collect();
    assert_eq!(lens, [data.len(), data.len(), 0, 0]);
    assert_eq!(up.log.accepts.get(), 1, "one connection for all four");
}

#[overlap::test]
async fn a_chunked_body_moves_piece_by_piece() {
    // The upstream reads the head, answers each piece the client sends before the next is
    // sent: only a proxy that streams the body (and the response) gets past the first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(Config::new(vec![listener.local_addr().unwrap()])).await;
    let mut client = Client::connect(proxy.addr).await;
    let head = "POST /stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    client.conn.write_all(head.as_bytes()).await.unwrap();
    let (mut up, _) = listener.accept().await.unwrap();
    let mut up_buf = Vec::new();
    let req = http::read_head(&mut up, &mut up_buf)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.get("transfer-encoding"), Some("chunked"));
    let resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    up.write_all(resp.as_bytes()).await.unwrap();
    let got = http::read_head(&mut client.conn, &mut client.buf)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.status(), 200);
    for i in 0..5 {
        let piece = pattern_seeded(1000 + i, i as u32);
        let chunk = format!("{:x}\r\n", piece.len());
        let sent = [chunk.as_bytes(), &piece, b"\r\n"].concat();
        client.conn.write_all(&sent).await.unwrap();
        let mut at_up = vec![0u8; sent.len()];
        within(
            HANG,
            read_exact_via(&mut up, &mut up_buf, &mut at_up),
            "the piece upstream",
        )
        .await;
        assert_eq!(at_up, sent);
        up.write_all(&sent).await.unwrap();
        let mut back = vec![0u8; sent.len()];
        within(
            HANG,
            read_exact_via(&mut client.conn, &mut client.buf, &mut back),
            "it back",
        )
        .await;
        assert_eq!(back, sent);
    }
    client.conn.write_all(b"0\r\n\r\n").await.unwrap();
    let mut end = [0u8; 5];
    within(
        HANG,
        read_exact_via(&mut up, &mut up_buf, &mut end),
        "the last chunk",
    )
    .await;
    assert_eq!(&end, b"0\r\n\r\n");
}

/// `out.len()` bytes from the front of `buf`, then from `r`.
async fn read_exact_via(r: &mut TcpStream, buf: &mut Vec<u8>, out: &mut [u8]) {
    let first = buf.len().min(out.len());
    out[..first].copy_from_slice(&buf[..first]);
    buf.drain(..first);
    r.read_exact(&mut out[first..]).await.unwrap();
}

#[overlap::test]
async fn hop_by_hop_headers_go_and_forwarded_for_is_added() {
    let up = Upstream::start("a").await;
    let proxy = Proxy::start(Config::new(vec![up.addr])).await;
    let mut client = Client::connect(proxy.addr).await;
    let req = "POST /echo HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, X-Hop\r\n\
               Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTE: trailers\r\n\
               Proxy-Authorization: Basic eA==\r\nX-Forwarded-For: 127.0.0.9\r\n\
               X-Kept: yes\r\nContent-Length: 4\r\n\r\nbody";
    let (head, body) = client.call("POST", req.as_bytes()).await;
    assert_eq!(body, b"body");
    let seen = up.log.requests.borrow()[0].clone();
    assert_eq!(seen.hop_headers, Vec::<String>::new());
    assert_eq!(seen.forwarded_for.as_deref(), Some("127.0.0.9, 127.0.0.1"));
    // The upstream's own Keep-Alive (on chunked echoes) does not reach the client either.
    let (head2, _) = client.call("POST", &post_chunked("/echo", b"abc", 2)).await;
    assert_eq!(head2.get("keep-alive"), None);
    assert_eq!(head.status(), 200);
    // A client over IPv6 is forwarded for as ::1.
    let proxy6 = Proxy::start_on("[::1]:0", Config::new(vec![up.addr])).await;
    let mut client = Client::connect(proxy6.addr).await;
    client.get("/v6").await;
    let seen = up.log.requests.borrow().last().unwrap().clone();
    assert_eq!(
        (seen.path.as_str(), seen.forwarded_for.as_deref()),
        ("/v6", Some("::1"))
    );
}

#[overlap::test]
async fn a_stale_idle_connection_is_replaced_before_use() {
    let up = Upstream::start("a").await;
    let proxy = Proxy::start(Config::new(vec![up.addr])).await;
    let mut client = Client::connect(proxy.addr).await;
    // The upstream answers, then closes the kept-alive connection, as one whose idle
    // timeout passed does.
    let (head, _) = client.get("/bye").await;
    assert_eq!(head.status(), 200);
    assert_eq!(proxy.idle(0), 1);
    until(|| up.log.closed.get() == 1, "the upstream's close").await;
    support::settle().await;
    let (head, body) = client.get("/after").await;
    assert_eq!((head.status(), &body[..]), (200, &b"ok"[..]));
    assert_eq!(proxy.stats.stale.get(), 1);
    assert_eq!(up.log.accepts.get(), 2);
    // Reset rather than closed: the peek takes the reset as an error, stale all the same.
    client.get("/reset").await;
    until(|| up.log.closed.get() == 2, "the upstream's reset").await;
    support::settle().await;
    let (head, body) = client.get("/after").await;
    assert_eq!((head.status(), &body[..]), (200, &b"ok"[..]));
    assert_eq!((proxy.stats.stale.get(), up.log.accepts.get()), (2, 3));
    // A response saying `Connection: close` is not pooled at all.
    let (head, body) = client.get("/close").await;
    assert_eq!((head.status(), &body[..]), (200, &b"closing"[..]));
    assert_eq!(proxy.idle(0), 0);
    client.get("/").await;
    assert_eq!((up.log.accepts.get(), proxy.stats.stale.get()), (4, 2));
}

#[overlap::test]
async fn the_pool_keeps_at_most_its_cap() {
    let up = Upstream::start("a").await;
    let mut config = Config::new(vec![up.addr]);
    config.pool_max = 2;
    let proxy = Proxy::start(config).await;
    let mut held = overlap::task::JoinSet::new();
    for _ in 0..5 {
        let addr = proxy.addr;
        held.spawn(async move {
            let mut client = Client::connect(addr).await;
            let (_, body) = client.get("/gate").await;
            assert_eq!(body, b"through the gate");
        });
    }
    until(|| up.log.requests.borrow().len() == 5, "five at the gate").await;
    up.gate.add_permits(5);
    within(HANG, held.join_all(), "five answers").await;
    assert_eq!(up.log.accepts.get(), 5);
    assert_eq!((proxy.idle(0), proxy.stats.pool_full.get()), (2, 3));
    let mut client = Client::connect(proxy.addr).await;
    for _ in 0..4 {
        client.get("/").await;
    }
    assert_eq!((up.log.accepts.get(), proxy.stats.reused.get()), (5, 4));
}

#[path = "port_user10_reverse_proxy/more.rs"]
mod more;
