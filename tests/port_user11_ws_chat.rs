//! A user's WebSocket-style chat server, sketched as one would for tokio with tokio-util's
//! codecs, `CancellationToken` and `TaskTracker`, then written for overlap by changing
//! `tokio::` to `overlap::` and `tokio_util::codec` to `overlap::codec`: the HTTP/1.1
//! upgrade read as lines (`port_user11_ws_chat/handshake.rs`), a simplified RFC 6455
//! framing as a `Decoder`/`Encoder` (`frame.rs`), rooms over `broadcast` channels and a
//! connection's `select!` (`server.rs`), and the tests' client (`client.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use bytes::{Buf, BufMut, BytesMut};
//! use futures::{SinkExt, StreamExt};
//! use tokio_util::codec::{Decoder, Encoder, Framed, FramedParts, LinesCodec, LinesCodecError};
//!
//! impl Decoder for WsCodec {
//!     type Item = Message;
//!     type Error = WsError;
//!     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WsError> {
//!         let mut head = &src[..];
//!         let (b0, b1) = (head.get_u8(), head.get_u8());
//!         let len = match b1 & 0x7f { 126 => head.get_u16() as u64, 127 => head.get_u64(), n => n as u64 };
//!         if len > self.max { return Err(WsError::TooBig { len, max: self.max }) }
//!         // .. wait for the whole frame, src.advance(head_len), unmask src.split_to(len)
//!     }
//! }
//! // a connection
//! let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(1024));
//! let req = match read_request(&mut lines).await {
//!     Ok(req) => req,
//!     Err(Reject::HeadersTooLarge) => return refuse(lines.into_inner(), "431 ..").await,
//!     ..
//! };
//! let mut parts = lines.into_parts();
//! parts.io.write_all(switching_protocols(&req.key).as_bytes()).await?;
//! let mut ws = FramedParts::new::<Message>(parts.io, WsCodec::server(max));
//! ws.read_buf = parts.read_buf;                     // frames sent along with the head
//! let (sink, mut stream) = Framed::from_parts(ws).split();
//! let (out, out_rx) = mpsc::channel(outbound);
//! // tokio_stream::wrappers: the queue forwarded into the sink, closed when `out` drops
//! let writer = tokio::spawn(ReceiverStream::new(out_rx).map(Ok).forward(sink));
//! let mut room = BroadcastStream::new(room_rx);
//! let mut ping = tokio::time::interval(ping_every);
//! let idle = tokio::time::sleep(idle_for);
//! tokio::pin!(idle);
//! loop {
//!     let queued = tokio::select! {
//!         _ = token.cancelled() => break (1001, "going away"),
//!         frame = stream.next() => { idle.as_mut().reset(Instant::now() + idle_for); .. }
//!         Some(msg) = room.next() => match msg {
//!             Ok(text) => out.try_send(Message::Text(text.to_string())),
//!             Err(BroadcastStreamRecvError::Lagged(n)) => out.try_send(notice(n)),
//!         },
//!         _ = ping.tick() => out.try_send(Message::Ping(vec![])),
//!         _ = &mut idle => break (1000, "idle"),
//!     };
//!     if queued.is_err() { writer.abort(); return End::TooSlow }   // a full queue: cut it
//! }
//! // the server
//! tracker.spawn(accept_loop(..));
//! token.cancel(); tracker.close();
//! tokio::time::timeout(drain, tracker.wait()).await
//! ```
//!
//! The tests check: an upgrade answered with the RFC's accept key, and refused with a 400
//! (a bad request line, a missing key, no upgrade) or a 431 (a header line over the
//! maximum) that the client reads whole; frames sent in the same write as the head kept
//! through `into_parts`/`from_parts`; a frame written byte by byte, and a fragmented
//! message with a ping between its fragments; masked frames taken and an unmasked one
//! closed with 1002; a ping answered with its payload, and the server's own pings; a
//! message over the maximum closed with 1009 from its header alone, 64-bit length and
//! all; fifty clients each getting every message of every sender, in each sender's order;
//! a burst past a room's capacity giving a notice with exactly the count missed; a client
//! that stops reading cut while the others get everything; a shutdown mid-traffic giving
//! every client a close frame (1001), its drain within the timeout; an idle client closed;
//! the same over `::1`; and no fd or task left after a run.
//!
//! What porting it found missing in overlap: tokio-stream's `wrappers`. The tokio
//! server's writer task is `ReceiverStream::new(out_rx).map(Ok).forward(sink)` and its
//! room a `BroadcastStream` in the `select!` (a lag an `Err(Lagged(n))` item), neither of
//! which had a counterpart: the first draft hand-wrote the writer (`recv`, `feed`, a
//! `try_recv` loop, `flush`, `close` after the close frame) and matched `recv()`'s
//! `RecvError::Closed` as unreachable. `overlap::stream::wrappers` has them now, under
//! tokio-stream's names and paths (`errors::BroadcastStreamRecvError` too; see
//! `tests/stream_tokio_stream.rs`), and the server uses them as the tokio version does.
//! And, trying `bytes`' calls beyond what this codec needed while sketching its encoder,
//! `BytesMut` lacked the signed, float and 128-bit numbers, `put_bytes`, `resize` and
//! `zeroed`; they are there now (see `tests/codec_bytes_mut_numbers.rs`).
//!
//! What the port changed, against tokio: the imports (`bytes::BytesMut` is
//! `overlap::codec::BytesMut`; `futures::StreamExt` is `overlap::stream::StreamExt`,
//! `tokio_stream::wrappers` is `overlap::stream::wrappers`). The decoder's header parse
//! through `bytes::Buf` on a slice (`let mut head = &src[..]; head.get_u16()`) has no
//! counterpart: overlap has no `Buf` trait, its `BytesMut` having the `get_*` methods
//! inherently, which consume the buffer itself, so a decoder peeking at a header that may
//! not be whole yet reads `u16::from_be_bytes([src[2], src[3]])` (the README says `bytes`
//! is not used; left as it is). `split_to(len).freeze()` gives a `Vec<u8>` where tokio's
//! gives `Bytes`, which suits a payload unmasked in place. The room's messages are
//! `Rc<str>` where tokio's `spawn` needs `Arc<str>`: overlap's tasks need not be `Send`.
//! As with tokio-util, `flush` on a `Framed` over `LinesCodec` needs its item type named
//! (`SinkExt::<&str>::flush`), the codec encoding both `String` and `&str`. The rest is
//! tokio's as written: `Framed`, `FramedParts::new::<Message>` and its buffers, `split()`,
//! `select!` with `&mut idle`, `Sleep::reset`, `interval`, `try_send`'s `Full`,
//! `CancellationToken`, `TaskTracker`, `timeout`.
//!
//! What the port got wrong at first was the user's, and would be in tokio: the first
//! tests awaited `server.shutdown()` before their clients read, and every shutdown took
//! the whole drain time, each connection waiting for its client's answer to the close
//! frame; `shut_down` now lets the clients read and answer while the server drains. A
//! refusal is written, the write side shut and the rest of the request read away before
//! the socket is dropped (`refuse`), as an HTTP server's lingering close does: on loopback
//! the client read its 431 without that too, but a reset sent for unread bytes can
//! overtake the answer across a network.

mod support;

#[path = "port_user11_ws_chat/client.rs"]
mod client;
#[path = "port_user11_ws_chat/frame.rs"]
mod frame;
#[path = "port_user11_ws_chat/handshake.rs"]
mod handshake;
#[path = "port_user11_ws_chat/server.rs"]
mod server;
#[path = "port_user11_ws_chat/traffic.rs"]
mod traffic;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::BytesMut;
use overlap::io::AsyncWriteExt;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use client::{refused, request, trickle, Client};
use frame::{encode_frame, Message};

/// The opcodes, for frames written by hand.
mod op {
    pub use super::frame::{BINARY, CONTINUATION, PING, TEXT};
}
use handshake::Reject;
use server::{Config, End, Server};
use support::{until, within};

/// A hang guard only: every test ends long before it.
const HANG: Duration = Duration::from_secs(30);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(config: Config) -> Rc<Server> {
    Server::start(local(), config).await
}

/// `frame` masked with a fixed mask, as a client sends it.
fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(&mut buf, fin, opcode, payload, Some([1, 2, 3, 4]));
    buf.freeze()
}

/// Shuts the server down while `clients` read up to its close and answer it, as real
/// clients would (each connection waits for that answer): every connection must have
/// ended within the drain time. The texts each read first, and its close.
async fn shut_down(server: &Server, clients: &mut [Client]) -> Vec<(Vec<String>, Message)> {
    let closes = overlap::future::join_all(clients.iter_mut().map(|c| c.until_close()));
    let (drained, closes) = overlap::join!(server.shutdown(), closes);
    assert!(drained, "every connection ended within the drain time");
    closes
}

async fn ended(server: &Server, name: &str) -> End {
    until(|| server.end_of(name).is_some(), "the connection's end").await;
    server.end_of(name).unwrap()
}

#[overlap::test]
async fn an_upgrade_is_answered_and_a_message_comes_back_to_the_room() {
    within(
        HANG,
        async {
            let server = start(Config::default()).await;
            let mut alice = Client::connect(server.addr, "lobby", "alice").await;
            let mut bob = Client::connect(server.addr, "lobby", "bob").await;
            let mut carol = Client::connect(server.addr, "elsewhere", "carol").await;
            until(|| server.connected.get() == 3, "three connections").await;
            alice.say("hello").await;
            assert_eq!(alice.text().await, "alice: hello");
            assert_eq!(bob.text().await, "alice: hello");
            carol.say("alone").await;
            assert_eq!(carol.text().await, "carol: alone");
            bob.ws.send(Message::close(1000, "bye")).await.unwrap();
            assert_eq!(
                bob.ws.next().await.unwrap().unwrap(),
                Message::close(1000, "bye")
            );
            assert!(
                bob.ws.next().await.is_none(),
                "the server's side shut after its close"
            );
            assert_eq!(ended(&server, "bob").await, End::ClientClosed(Some(1000)));
            let closes = shut_down(&server, &mut [alice, carol]).await;
            assert!(closes
                .iter()
                .all(|c| *c == (vec![], Message::close(1001, "going away"))));
        },
        "the upgrade",
    )
    .await;
}

#[overlap::test]
async fn bad_upgrades_are_refused_with_a_status_the_client_reads_whole() {
    within(
        HANG,
        async {
            let server = start(Config::default()).await;
            let bad_line = b"GET /chat/lobby\r\nHost: x\r\n\r\n";
            assert_eq!(
                refused(server.addr, bad_line).await,
                ("HTTP/1.1 400 Bad Request".into(), "bad request line".into())
            );
            let post = request("lobby", "p").replacen("GET", "POST", 1);
            assert_eq!(
                refused(server.addr, post.as_bytes()).await.1,
                "bad request line"
            );
            let no_key = request("lobby", "k").replace("Sec-WebSocket-Key", "X-Key");
            assert_eq!(
                refused(server.addr, no_key.as_bytes()).await.1,
                "no Sec-WebSocket-Key"
            );
            let no_upgrade = request("lobby", "u").replace("Upgrade: websocket\r\n", "");
            assert_eq!(
                refused(server.addr, no_upgrade.as_bytes()).await.1,
                "not an upgrade to websocket"
            );
            // A header line past the maximum, with more of the head behind it: a 431, read
            // whole although the server never read the rest.
            let long = request("lobby", "l").replace(
                "Host: localhost",
                &format!("Cookie: {}", "c".repeat(64 * 1024)),
            );
            assert_eq!(
                refused(server.addr, long.as_bytes()).await,
                (
                    "HTTP/1.1 431 Request Header Fields Too Large".into(),
                    "header line too long".into()
                )
            );
            until(|| server.ends.borrow().len() == 5, "five refusals").await;
            let ends = server.ends.borrow().clone();
            assert_eq!(
                ends.iter()
                    .filter(|(_, e)| *e == End::Rejected(Reject::HeadersTooLarge))
                    .count(),
                1
            );
            shut_down(&server, &mut []).await;
        },
        "the refusals",
    )
    .await;
}

#[overlap::test]
async fn frames_sent_with_the_head_are_kept_across_the_codec_change() {
    within(
        HANG,
        async {
            let server = start(Config::default()).await;
            let mut early = masked(true, op::TEXT, b"first");
            early.extend(masked(true, op::PING, b"p"));
            early.extend(masked(true, op::TEXT, b"second"));
            let mut c = Client::connect_with(server.addr, "early", "e", None, &early).await;
            // The ping's pong comes first or between, as the server read them; texts in order.
            let mut got = Vec::new();
            while got.len() < 3 {
                got.push(c.ws.next().await.unwrap().unwrap());
            }
            let texts: Vec<&Message> = got
                .iter()
                .filter(|m| matches!(m, Message::Text(_)))
                .collect();
            assert_eq!(
                texts,
                [
                    &Message::Text("e: first".into()),
                    &Message::Text("e: second".into())
                ]
            );
            assert!(got.contains(&Message::Pong(b"p".to_vec())));
            shut_down(&server, &mut [c]).await;
        },
        "the early frames",
    )
    .await;
}

#[overlap::test]
async fn a_frame_written_byte_by_byte_and_a_fragmented_message_arrive_whole() {
    within(
        HANG,
        async {
            let server = start(Config::default()).await;
            let mut c = Client::connect(server.addr, "slowly", "s").await;
            let long = "x".repeat(300); // a 16-bit length
            trickle(c.raw(), &masked(true, op::TEXT, long.as_bytes())).await;
            assert_eq!(c.text().await, format!("s: {long}"));
            // Three fragments with a ping between them, all byte by byte.
            let mut bytes = masked(false, op::TEXT, b"frag");
            bytes.extend(masked(false, op::CONTINUATION, b"men"));
            bytes.extend(masked(true, op::PING, b"mid"));
            bytes.extend(masked(true, op::CONTINUATION, b"ted"));
            trickle(c.raw(), &bytes).await;
            assert_eq!(
                c.ws.next().await.unwrap().unwrap(),
                Message::Pong(b"mid".to_vec())
            );
            assert_eq!(c.text().await, "s: fragmented");
            shut_down(&server, &mut [c]).await;
        },
        "the trickled frames",
    )
    .await;
}

#[overlap::test]
async fn pings_are_answered_and_an_unmasked_frame_is_closed_with_1002() {
    within(
        HANG,
        async {
            let server = start(Config {
                ping_every: Duration::from_millis(20),
                ..Config::default()
            })
            .await;
            let mut c = Client::connect(server.addr, "pings", "p").await;
            c.ws.send(Message::Ping(b"are you there".to_vec()))
                .await
                .unwrap();
            // The server's own pings may come first.
            loop {
                match c.ws.next().await.unwrap().unwrap() {
                    Message::Ping(p) => assert_eq!(p, b"ping"),
                    other => {
                        assert_eq!(other, Message::Pong(b"are you there".to_vec()));
                        break;
                    }
                }
            }
            let mut plain = BytesMut::new();
            encode_frame(&mut plain, true, op::TEXT, b"naked", None);
            c.raw().write_all(&plain).await.unwrap();
            let (texts, close) = c.until_close().await;
            assert_eq!((texts.len(), close), (0, Message::close(1002, "bad frame")));
            assert_eq!(ended(&server, "p").await, End::Closed(1002));
            shut_down(&server, &mut []).await;
        },
        "the pings",
    )
    .await;
}

#[overlap::test]
async fn a_message_over_the_maximum_is_closed_with_1009_from_its_header() {
    within(
        HANG,
        async {
            let server = start(Config {
                max_message: 1000,
                ..Config::default()
            })
            .await;
            // A 64-bit length of a terabyte: only the header is ever sent.
            let mut c = Client::connect(server.addr, "big", "huge").await;
            let mut head = vec![0x81, 0x80 | 127];
            head.extend_from_slice(&(1u64 << 40).to_be_bytes());
            head.extend_from_slice(&[9, 9, 9, 9]);
            c.raw().write_all(&head).await.unwrap();
            assert_eq!(c.until_close().await.1, Message::close(1009, "bad frame"));
            // Fragments each under it, together over it.
            let mut c = Client::connect(server.addr, "big", "frags").await;
            c.raw()
                .write_all(&masked(false, op::BINARY, &[1; 600]))
                .await
                .unwrap();
            c.raw()
                .write_all(&masked(true, op::CONTINUATION, &[2; 600]))
                .await
                .unwrap();
            assert_eq!(c.until_close().await.1, Message::close(1009, "bad frame"));
            // Exactly the maximum passes.
            let mut c = Client::connect(server.addr, "big", "fits").await;
            let fits = "y".repeat(1000 - "fits: ".len());
            c.say(&fits).await;
            assert_eq!(c.text().await.len(), 1000);
            assert_eq!(ended(&server, "huge").await, End::Closed(1009));
            assert_eq!(ended(&server, "frags").await, End::Closed(1009));
            shut_down(&server, &mut [c]).await;
        },
        "the big frames",
    )
    .await;
}

#[overlap::test]
async fn a_client_that_answers_no_ping_is_closed_as_idle() {
    within(
        HANG,
        async {
            let server = start(Config {
                idle: Duration::from_millis(100),
                ping_every: Duration::from_millis(20),
                ..Config::default()
            })
            .await;
            let mut quiet = Client::connect(server.addr, "idle", "quiet").await;
            // Reads (and so sees the pings) without answering them.
            let close = loop {
                match quiet.ws.next().await.unwrap().unwrap() {
                    Message::Ping(_) => {}
                    other => break other,
                }
            };
            assert_eq!(close, Message::close(1000, "idle"));
            quiet.ws.send(close).await.unwrap();
            assert_eq!(ended(&server, "quiet").await, End::Closed(1000));
            shut_down(&server, &mut []).await;
        },
        "the idle close",
    )
    .await;
}
