//! A user's HTTP/1.1 client with a keep-alive connection pool (what hyper's and reqwest's
//! pool do, written by hand), sketched for tokio with `tokio::net::TcpStream`,
//! `tokio::sync::Semaphore` and `tokio::time`, then written for overlap by changing
//! `tokio::` to `overlap::`: the connection and its stale check (`port_user19_http_client_pool/conn.rs`),
//! reading a response head and body (`response.rs`), the client, its per-host pool, retry
//! and reaper (`pool.rs`), and the tests' server (`server.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::{collections::HashMap, rc::Rc, sync::Arc};
//! use tokio::{io::AsyncWriteExt, net::TcpStream, sync::{Mutex, Semaphore}};
//! use tokio::time::{sleep, timeout, Instant};
//!
//! struct Host { slots: Arc<Semaphore>, idle: Vec<Conn> }   // FIFO permits, LIFO idle
//!
//! async fn checkout(&self, key: &str) -> io::Result<Checkout> {
//!     let slots = self.host(key).slots.clone();
//!     let slot = timeout(self.cfg.wait_timeout, slots.acquire_owned()).await
//!         .map_err(|_| io::Error::new(ErrorKind::TimedOut, "no connection free"))??;
//!     while let Some(conn) = self.host(key).idle.pop() {
//!         // The stale check: a server that closed an idle connection left EOF on it.
//!         match conn.stream.try_read(&mut [0u8; 1]) {
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Checkout::reused(conn, slot)),
//!             _ => continue, // EOF, stray bytes or an error: drop it
//!         }
//!     }
//!     let stream = timeout(self.cfg.request_timeout, TcpStream::connect(key)).await??;
//!     Ok(Checkout::fresh(stream, slot))
//! }
//!
//! pub async fn request(&self, method: &str, url: &str, body: &[u8]) -> io::Result<Response> {
//!     let mut retried = false;
//!     loop {
//!         let mut co = self.checkout(&url.authority).await?;
//!         match timeout(limit, exchange(&mut co, method, &url, body)).await {
//!             Ok(Ok(head)) => return Response::new(head, co),
//!             Ok(Err(e)) if co.reused && !retried && idempotent(method)
//!                 && co.received() == 0 && closed_kind(&e) => retried = true,
//!             Ok(Err(e)) => return Err(e),
//!             Err(_) => return Err(io::Error::new(ErrorKind::TimedOut, "no response")),
//!         }
//!     }
//! }
//! // The reaper: tokio::spawn(async move { loop { sleep(idle / 4).await; retain(...) } })
//! ```
//!
//! The decisions: a request holds one of the host's `per_host` slots from before it takes
//! a connection to the moment it gives it back, so busy + idle connections never pass the
//! limit and waiters are served in the order they asked (the semaphore's FIFO); idle
//! connections are reused last-in first-out; `Connection: close`, HTTP/1.0, bodies read to
//! EOF and responses with bytes after them are not pooled; a response dropped before its
//! body is read to the end closes its connection (no draining); only a request that got
//! not a single byte back, on a reused connection, with an idempotent method, is sent once
//! more, on a fresh connection.
//!
//! The tests check, against the server in `server.rs` on 127.0.0.1 (most on the paused
//! clock, which moves only when every task waits): 100 sequential GETs on one connection;
//! 50 concurrent GETs through 4 slots opening exactly 4 connections, waiters served in the
//! order they asked; chunked bodies with extensions and trailers, POST bodies, and
//! `Connection: close` and HTTP/1.0 responses not pooled; a connection the server closed
//! while idle, or wrote an unsolicited `408` on, replaced with no error; a GET on a
//! connection reset or closed after reading the request retried once, a POST not, a reset
//! mid-body or a head cut short never retried; malformed status lines, oversized heads,
//! bad chunk sizes and bad `Content-Length`s as `InvalidData`, the pool working on; the
//! reaper closing idle connections (the server sees EOF) and the last connection given
//! back being the first reused; the slot wait timeout and the request timeout at their
//! exact instants; a dropped request or unread response closing its connection; and no fd
//! and no task left after the client and server go.
//!
//! The tests were run against the pool broken on purpose, one fault at a time, and each
//! fault made at least one fail: no stale check; POST counted idempotent; no retry; a
//! retry after response bytes; a dropped checkout given back to the pool; idle connections
//! reused first-in first-out; a reaper that never ticks; `Connection: close` and HTTP/1.0
//! ignored.
//!
//! One thing the tests' server needs that a real one may not: `TCP_NODELAY`. Without it,
//! the unsolicited `408` written right after an answer waits in the server's send queue
//! for the client's delayed ACK, 40 ms of real time that the paused clock never waits, and
//! the stale check (rightly) finds nothing.
//!
//! ## What porting it found missing
//!
//! Nothing. `TcpStream::connect` (with a `"host:port"` string), `try_read`, `set_linger`,
//! `Semaphore::acquire_owned` with `OwnedSemaphorePermit`, `timeout`, `sleep`, `Instant`,
//! `JoinSet` and `JoinHandle::abort` have tokio's names and behaved as tokio's would. As
//! with tokio, `try_read` only reads when the reactor has seen the socket readable, so the
//! stale check sees a FIN the loop has already taken from epoll, not one that arrived a
//! moment ago; the retry on a reused connection covers that window, as it covers a FIN
//! still in flight. What the port changed: `Arc` became `Rc` (overlap's tasks need not be
//! `Send`, and its `Semaphore::acquire_owned` takes an `Rc<Self>`).

mod support;

#[path = "port_user19_http_client_pool/conn.rs"]
mod conn;
#[path = "port_user19_http_client_pool/pool.rs"]
mod pool;
#[path = "port_user19_http_client_pool/response.rs"]
mod response;
#[path = "port_user19_http_client_pool/server.rs"]
mod server;
#[path = "port_user19_http_client_pool/tests.rs"]
mod tests;
