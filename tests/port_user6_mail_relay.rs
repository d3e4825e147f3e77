//! A user's SMTP-like mail relay, sketched as one would for tokio and then written for
//! overlap (`port_user6_mail_relay/session.rs`, `spool.rs`, `relay.rs`, `client.rs`; the
//! STARTTLS tests in `starttls.rs`, the next hop's in `next_hop.rs`, the shutdown's in
//! `shutdown.rs`, shared helpers in `harness.rs`): a TCP server on loopback speaks a small
//! SMTP subset (EHLO/HELO, STARTTLS, MAIL FROM, RCPT TO, DATA with dot-stuffing, BDAT
//! chunks, RSET, NOOP, QUIT) through a `BufReader` whose lines are bounded (a longer line
//! gets `500`, never unbounded memory), answering pipelined commands as a group;
//! `STARTTLS` takes the `BufReader` apart and hands the stream to futures-rustls's
//! `TlsAcceptor`, throwing away any plaintext the client sent after the command (RFC
//! 3207); each body streams, unstuffed, into a spool
//! file in `tmp/` (`overlap::fs::File`; a BDAT chunk with `io::copy_buf` through `take`),
//! with a size limit, and is synced and renamed into `queue/` once whole; a per-command
//! timeout and a whole-session deadline (`time::timeout`) bound every session. A delivery
//! task reads `queue/` (`fs::read_dir`), relays each file to a next hop (another instance of
//! the same relay) over one reused connection, retrying with a doubling backoff, and removes
//! a file once the next hop took it. Shutdown stops accepting, says `421` to idle sessions,
//! lets sessions mid-message finish and the delivery task end after the message in hand.
//!
//! The tokio sketch: `TcpListener::accept` in a `select!` against a `watch` of the
//! shutdown; per connection, `let mut io = BufReader::new(stream)`; each line read with
//! `timeout(cmd_timeout, (&mut io).take(limit).read_until(b'\n', &mut buf))` (or tokio-util's
//! `FramedRead` with `LinesCodec::new_with_max_length`); replies written through
//! `io.get_mut()`; on `STARTTLS`, `let stream = io.into_inner();
//! acceptor.accept(stream).await?` (tokio-rustls) and a fresh session state over the TLS
//! stream; `DATA` into `tokio::fs::File::create`, `write_all`, `sync_all`, `fs::rename`;
//! BDAT with `io::copy(&mut (&mut io).take(n), &mut file)`; delivery with
//! `fs::read_dir(queue).next_entry()`, `TcpStream::connect`, `sleep(backoff)`.
//!
//! The tests check: thirty clients at once, each sending a message of 1 KiB to 1 MiB full of
//! lines that need stuffing, every body arriving byte-exact in the next hop's queue over one
//! reused connection; pipelined commands answered in order, 20,000 of them too; STARTTLS
//! and a message over TLS; commands pipelined after STARTTLS thrown away, not run inside
//! the TLS session; BDAT chunks spooled exactly, and refused whole; an over-long line (a
//! command, and a body line) refused with the session going on; an over-size message
//! refused with its spool file removed; a silent client timed out, a trickling one cut by
//! the session deadline; a client vanishing mid-DATA leaving no spool file and no fd; the
//! next hop down and then up, restarted, and closing the idle delivery connection (each
//! message delivered exactly once); and a shutdown leaving no task, no fd and no temp file,
//! its kept message delivered by the next start, as a runtime dropped mid-DATA leaves none.
//!
//! What the port changed, against tokio: tokio's `lines.into_inner()` (to take a
//! `Lines<BufReader<_>>` apart for STARTTLS) has no counterpart, futures' `Lines` having no
//! way back to its reader, so the session reads with `read_until` on the `BufReader`
//! itself; tokio's `BufReader::into_inner` and futures' both drop the buffered bytes without
//! a word, so the session looks at `buffer()` first to count what it throws away (a
//! `BufStream` had no such look until `read_buffer`, added for this port); `select!` is
//! futures' (fused branches), `sync_all` takes `&mut self`, the delivery task reads the
//! spool `File` as the `AsyncBufRead` it is (tokio's needs a `BufReader`), and `Rc`/`Cell`
//! replace `Arc`/atomics since tasks need not be `Send`. Two things a tokio user meets the
//! same way: Nagle's algorithm held the final dot back 40 ms a message until the delivery
//! connection set `set_nodelay`, and a paused clock jumps past a loopback write Nagle holds.

mod support;

#[path = "port_user6_mail_relay/client.rs"]
mod client;
#[path = "port_user6_mail_relay/harness.rs"]
mod harness;
#[path = "port_user6_mail_relay/next_hop.rs"]
mod next_hop;
#[path = "port_user6_mail_relay/relay.rs"]
mod relay;
#[path = "port_user6_mail_relay/session.rs"]
mod session;
#[path = "port_user6_mail_relay/shutdown.rs"]
mod shutdown;
#[path = "port_user6_mail_relay/spool.rs"]
mod spool;
#[path = "port_user6_mail_relay/starttls.rs"]
mod starttls;

use std::time::Duration;

use client::{stuffed, Client};
use harness::*;
use overlap::net::TcpStream;
use relay::Relay;
use session::Config;
use support::{open_fds, run_in_child, within, TempDir};

/// Thirty clients at once, messages of 1 KiB to 1 MiB: every body arrives byte-exact at the
/// next hop, each with its envelope, over one connection from the relay.
#[overlap::test]
async fn thirty_clients_relay_exact_bodies_through_one_reused_connection() {
    let p = pair("mail-thirty", config()).await;
    let sizes = [KIB, 8 * KIB, 32 * KIB, 3 * KIB, 64 * KIB];
    let mut clients = overlap::JoinSet::new();
    for k in 0..30u32 {
        let addr = p.front.addr;
        let size = if k == 7 {
            1 << 20
        } else {
            sizes[k as usize % sizes.len()]
        };
        clients.spawn(async move {
            let mut client = connect(addr).await;
            let sent = body(size, k);
            let from = format!("sender{k}@a.test");
            let rcpt = format!("rcpt{k}@b.test");
            let reply = client.send_mail(&from, &[&rcpt], &sent).await.unwrap();
            assert_eq!(reply.code, 250, "{reply:?}");
            client.quit().await.unwrap();
            (from, rcpt, sent)
        });
    }
    let mut sent = Vec::new();
    within(
        HANG,
        async {
            while let Some(done) = clients.join_next().await {
                sent.push(done.unwrap());
            }
        },
        "thirty clients",
    )
    .await;
    let next_stats = p.next.stats();
    until(
        || next_stats.spooled.get() == 30,
        "thirty messages at the next hop",
    )
    .await;
    until(|| entries(p.front.queue()) == 0, "the front queue to empty").await;
    let mut got = mail_in(p.next.queue());
    assert_eq!(got.len(), 30);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    for ((from, rcpt, body), (got_from, got_to, got_body)) in sent.iter().zip(&got) {
        assert_eq!((from, &vec![rcpt.clone()]), (got_from, got_to));
        assert!(
            body == got_body,
            "{from}'s body differs ({} bytes sent, {} got)",
            body.len(),
            got_body.len()
        );
    }
    assert_eq!(
        p.front.deliveries.connections.get(),
        1,
        "one reused connection"
    );
    assert_eq!(p.front.deliveries.delivered.get(), 30);
    assert_eq!(entries(&p.dir.join("front/tmp")), 0);
    ended_cleanly(&p.front).await;
    // The next hop's one session is the front's delivery connection: its QUIT ends it.
    p.front.shut_down().await.unwrap();
    ended_cleanly(&p.next).await;
    p.next.shut_down().await.unwrap();
}

/// A whole transaction in one write, then the body, the next commands and QUIT in another:
/// every reply comes back, in order, and the message is spooled once.
#[overlap::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let dir = TempDir::new("mail-pipelined");
    let relay = Relay::start(listener().await, config(), dir.path(), None)
        .await
        .unwrap();
    let mut client = Client::new(TcpStream::connect(relay.addr).await.unwrap());
    assert_eq!(codes(&mut client, 1).await, [220]);
    client
        .send_raw(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n")
        .await
        .unwrap();
    let ehlo = within(HANG, client.reply(), "EHLO's reply").await.unwrap();
    assert_eq!(ehlo.code, 250);
    assert_eq!(codes(&mut client, 4).await, [250, 250, 250, 354]);
    let sent = body(5 * KIB, 9);
    let mut rest = stuffed(&sent);
    rest.extend_from_slice(b"NOOP\r\nMAIL FROM:<bad\r\nRCPT TO:<b@y>\r\nRSET\r\nDATA\r\nQUIT\r\n");
    client.send_raw(&rest).await.unwrap();
    assert_eq!(
        codes(&mut client, 7).await,
        [250, 250, 501, 503, 250, 503, 221]
    );
    let mail = mail_in(relay.queue());
    assert_eq!(mail.len(), 1);
    assert_eq!(
        (mail[0].0.as_str(), &mail[0].1),
        ("a@x", &vec!["b@y".to_string(), "c@y".to_string()])
    );
    assert!(mail[0].2 == sent, "the body differs");
    ended_cleanly(&relay).await;
    relay.shut_down().await.unwrap();
}

/// A client pipelining 20,000 commands while it reads the replies: every reply comes back,
/// in order (the relay writes its held replies out every 4 KiB, rather than holding them
/// for as long as commands keep coming).
#[overlap::test]
async fn a_long_pipeline_gets_every_reply() {
    use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = TempDir::new("mail-long-pipeline");
    let relay = Relay::start(listener().await, config(), dir.path(), None)
        .await
        .unwrap();
    let (read, mut write) = TcpStream::connect(relay.addr).await.unwrap().into_split();
    let writer = overlap::spawn(async move {
        let batch = b"NOOP\r\n".repeat(1000);
        for _ in 0..20 {
            write.write_all(&batch).await.unwrap();
        }
        write.write_all(b"QUIT\r\n").await.unwrap();
        write
    });
    let mut replies = BufReader::new(read);
    let mut line = String::new();
    let mut got = Vec::new();
    let read_all = async {
        while replies.read_line(&mut line).await.unwrap() > 0 {
            got.push(line[..3].to_string());
            line.clear();
        }
    };
    within(HANG, read_all, "the replies").await;
    assert_eq!(got.len(), 20_002);
    assert_eq!((got[0].as_str(), got[20_001].as_str()), ("220", "221"));
    assert!(got[1..20_001].iter().all(|c| c == "250"));
    drop(writer.await.unwrap());
    ended_cleanly(&relay).await;
    relay.shut_down().await.unwrap();
}

/// A command line of 1 MiB, and a body line past the limit: each refused with a 500 (the
/// line skipped, never held whole), the session going on; the message with the long line
/// is not spooled.
#[overlap::test]
async fn an_over_long_line_is_refused_and_the_session_goes_on() {
    let dir = TempDir::new("mail-long-line");
    let relay = Relay::start(listener().await, config(), dir.path(), None)
        .await
        .unwrap();
    let mut client = connect(relay.addr).await;
    let mut long = b"NOOP ".to_vec();
    long.resize(1 << 20, b'x');
    long.extend_from_slice(b"\r\nNOOP\r\n");
    client.send_raw(&long).await.unwrap();
    assert_eq!(codes(&mut client, 2).await, [500, 250]);
    let mut sent = body(4 * KIB, 1);
    sent.extend_from_slice(&[b'y'; 5000]);
    sent.extend_from_slice(b"\r\nlast line\r\n");
    let reply = client.send_mail("a@x", &["b@y"], &sent).await.unwrap();
    assert_eq!(reply.code, 500, "{reply:?}");
    let ok = body(KIB, 2);
    assert_eq!(
        client.send_mail("a@x", &["b@y"], &ok).await.unwrap().code,
        250
    );
    client.quit().await.unwrap();
    assert_eq!(relay.stats().too_long_lines.get(), 2);
    let mail = mail_in(relay.queue());
    assert_eq!(mail.len(), 1);
    assert!(mail[0].2 == ok);
    assert_eq!(entries(&dir.join("tmp")), 0);
    ended_cleanly(&relay).await;
    relay.shut_down().await.unwrap();
}

/// BDAT (RFC 3030 CHUNKING): a binary body in pipelined chunks is spooled exactly as sent,
/// a lone dot and a leading one untouched; a message past the size limit is refused at its
/// last chunk, its spool file removed, and every refused byte read (the session stays in
/// step: a NOOP after it is answered), as is a chunk sent with no recipient; an empty last
/// chunk ends a message, and a size that would overflow the count is refused.
#[overlap::test]
async fn bdat_chunks_are_spooled_exactly_and_refused_whole() {
    let dir = TempDir::new("mail-bdat");
    let config = Config {
        max_message: 256 * KIB,
        ..config()
    };
    let relay = Relay::start(listener().await, config, dir.path(), None)
        .await
        .unwrap();
    let mut client = connect(relay.addr).await;
    let mut sent = support::pattern_seeded(200 * KIB, 50);
    sent.splice(1000..1000, b"\r\n.\r\n..x\r\n".iter().copied());
    let reply = client
        .send_chunked("a@x", &["b@y"], &sent, 64 * KIB)
        .await
        .unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    let too_big = support::pattern_seeded(300 * KIB, 51);
    let reply = client
        .send_chunked("a@x", &["b@y"], &too_big, 64 * KIB)
        .await
        .unwrap();
    assert_eq!(reply.code, 552, "{reply:?}");
    assert_eq!(entries(&dir.join("tmp")), 0);
    client
        .send_raw(b"BDAT 5 LAST\r\nhelloNOOP\r\n")
        .await
        .unwrap();
    assert_eq!(codes(&mut client, 2).await, [503, 250]);
    // An empty last chunk ends a message (RFC 3030).
    let empty_last = b"MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\n";
    client.send_raw(empty_last).await.unwrap();
    assert_eq!(codes(&mut client, 4).await, [250, 250, 250, 250]);
    client.quit().await.unwrap();
    // A chunk size that would overflow the count: refused (its bytes read until the client
    // goes), not a panic.
    let mut huge = Client::new(TcpStream::connect(relay.addr).await.unwrap());
    huge.hello("huge").await.unwrap();
    let max = u64::MAX;
    let sizes = format!("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcBDAT {max}\r\n");
    huge.send_raw(sizes.as_bytes()).await.unwrap();
    assert_eq!(codes(&mut huge, 3).await, [250, 250, 250]);
    drop(huge);
    let stats = relay.stats();
    until(|| stats.live.get() == 0, "the sessions to end").await;
    assert_eq!(
        stats.errors.borrow().len(),
        1,
        "{:?}",
        stats.errors.borrow()
    );
    let mail = mail_in(relay.queue());
    assert_eq!(mail.len(), 2);
    assert!(mail[0].2 == sent, "the body differs");
    assert_eq!(mail[1].2, b"abc");
    relay.shut_down().await.unwrap();
}

/// A message past the size limit: 552, its spool file removed, and the next message on
/// the same session accepted.
#[overlap::test]
async fn an_over_size_message_is_refused_and_its_spool_file_removed() {
    let dir = TempDir::new("mail-too-big");
    let config = Config {
        max_message: 64 * KIB,
        ..config()
    };
    let relay = Relay::start(listener().await, config, dir.path(), None)
        .await
        .unwrap();
    let mut client = connect(relay.addr).await;
    let reply = client
        .send_mail("a@x", &["b@y"], &body(100 * KIB, 4))
        .await
        .unwrap();
    assert_eq!(reply.code, 552, "{reply:?}");
    assert_eq!(entries(&dir.join("tmp")), 0, "the spool file is gone");
    assert_eq!(client.command("NOOP").await.unwrap().code, 250);
    let ok = body(60 * KIB, 5);
    assert_eq!(
        client.send_mail("a@x", &["b@y"], &ok).await.unwrap().code,
        250
    );
    client.quit().await.unwrap();
    let mail = mail_in(relay.queue());
    assert_eq!(mail.len(), 1);
    assert!(mail[0].2 == ok);
    assert_eq!(relay.stats().too_big.get(), 1);
    ended_cleanly(&relay).await;
    relay.shut_down().await.unwrap();
}

/// A client that sends nothing after the greeting gets a 421 once the command timeout
/// passes, and its connection closes.
#[overlap::test(start_paused = true)]
async fn a_silent_client_is_timed_out() {
    let dir = TempDir::new("mail-silent");
    let config = Config {
        command_timeout: Duration::from_secs(5),
        ..config()
    };
    let relay = Relay::start(listener().await, config, dir.path(), None)
        .await
        .unwrap();
    let mut client = connect(relay.addr).await;
    assert_eq!(codes(&mut client, 1).await, [421]);
    let mut rest = Vec::new();
    overlap::io::read_to_end(client.get_mut(), &mut rest)
        .await
        .unwrap();
    assert!(rest.is_empty());
    assert_eq!(relay.stats().timeouts.get(), 1);
    relay.shut_down().await.unwrap();
}

/// Clients vanishing mid-DATA, one closing and one resetting: their partial spool files are
/// removed, the sessions end with an error, and no fd is left.
#[test]
fn a_client_vanishing_mid_data_leaves_no_spool_file_and_no_fd() {
    run_in_child(
        "a_client_vanishing_mid_data_leaves_no_spool_file_and_no_fd",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let dir = TempDir::new("mail-vanish");
                let relay = Relay::start(listener().await, config(), dir.path(), None)
                    .await
                    .unwrap();
                for reset in [false, true] {
                    let mut client = connect(relay.addr).await;
                    client.expect("MAIL FROM:<a@x>", 250).await.unwrap();
                    client.expect("RCPT TO:<b@y>", 250).await.unwrap();
                    client.expect("DATA", 354).await.unwrap();
                    let half = stuffed(&body(300 * KIB, 6));
                    client.send_raw(&half[..half.len() / 2]).await.unwrap();
                    let tmp = dir.join("tmp");
                    until(|| entries(&tmp) == 1, "the spool file").await;
                    if reset {
                        client.get_mut().set_zero_linger().unwrap();
                    }
                    drop(client);
                    until(|| entries(&tmp) == 0, "the spool file to go").await;
                }
                let stats = relay.stats();
                until(|| stats.live.get() == 0, "the sessions to end").await;
                assert_eq!(
                    stats.errors.borrow().len(),
                    2,
                    "{:?}",
                    stats.errors.borrow()
                );
                assert_eq!(entries(relay.queue()), 0);
                relay.shut_down().await.unwrap();
                drop(dir);
                // A dropped File's last write job closes its fd when it ends, on the pool.
                until(|| open_fds() == fds, "the fds to close").await;
            })
        },
    );
}

/// A client trickling a body, one line just inside each command timeout, is cut by the
/// session deadline: its partial spool file is removed and its connection closed.
#[overlap::test(start_paused = true)]
async fn a_trickling_client_is_cut_by_the_session_deadline() {
    let dir = TempDir::new("mail-trickle");
    let config = Config {
        command_timeout: Duration::from_secs(5),
        session_deadline: Duration::from_secs(60),
        ..config()
    };
    let relay = Relay::start(listener().await, config, dir.path(), None)
        .await
        .unwrap();
    let mut client = connect(relay.addr).await;
    // The clock jumps ahead as soon as no socket has news: a line Nagle's algorithm held
    // back (the last one not yet acknowledged) would reach the relay only after its
    // command timeout. Without Nagle, a loopback write is in the relay's socket at once.
    client.get_mut().set_nodelay(true).unwrap();
    client.expect("MAIL FROM:<a@x>", 250).await.unwrap();
    client.expect("RCPT TO:<b@y>", 250).await.unwrap();
    client.expect("DATA", 354).await.unwrap();
    let cut = async {
        for _ in 0..100 {
            if client.send_raw(b"a line\r\n").await.is_err() {
                return;
            }
            overlap::time::sleep(Duration::from_secs(4)).await;
        }
        panic!("still served after 400 s");
    };
    within(Duration::from_secs(600), cut, "the cut").await;
    let stats = relay.stats();
    until(|| stats.live.get() == 0, "the session to end").await;
    assert_eq!(stats.errors.borrow().as_slice(), ["session deadline"]);
    assert_eq!(entries(&dir.join("tmp")), 0);
    relay.shut_down().await.unwrap();
}
