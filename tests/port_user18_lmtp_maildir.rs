//! A user's local mail delivery agent, sketched as one would for tokio and then written for
//! overlap by changing `tokio::` to `overlap::`: an LMTP server (RFC 2033) on a Unix socket
//! and on TCP loopback (`port_user18_lmtp_maildir/server.rs`), speaking `LHLO`, `MAIL FROM`
//! (with `SIZE=` and `BODY=8BITMIME`), `RCPT TO` per recipient, `DATA` with dot-stuffing and
//! one reply per accepted recipient, `RSET`, `NOOP` and `QUIT`, advertising and honouring
//! `PIPELINING`, `8BITMIME` and `SIZE` (`session.rs`); delivering each message into each
//! recipient's Maildir the crash-safe way — `tmp/<time.pid_seq.host>`, `sync_all`, `rename`
//! into `new/`, then an fsync of `new/` itself (`maildir.rs`, which also holds the tiny
//! reader the tests check contents with: list `new/`, move to `cur/` as `:2,S`); with a quota
//! per mailbox (the bytes in `cur/` + `new/`, read once with `read_dir` + `metadata` and then
//! cached). The tests' client is `client.rs`; the tests of limits, broken mailboxes,
//! timeouts and vanishing clients are in `limits.rs`, those of the `fsync`s (counted, and
//! made to fail, by a seccomp filter) in `durability.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::fs::{self, File};
//! use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
//! use tokio::net::{TcpListener, UnixListener};
//! use tokio::time::timeout;
//!
//! // Two listeners, one task per connection; tasks share an `Rc` (a `LocalSet`).
//! let unix = UnixListener::bind(&socket)?;
//! let tcp = TcpListener::bind("127.0.0.1:0").await?;
//! loop { let (s, _) = unix.accept().await?; tokio::task::spawn_local(serve(s, shared.clone())); }
//!
//! // A session: each line bounded (1,000 bytes) and timed.
//! let mut io = BufReader::new(stream);
//! let n = timeout(cmd_timeout, (&mut io).take(1000).read_until(b'\n', &mut buf)).await??;
//! // Replies held while `io.buffer()` holds another command (PIPELINING), then
//! io.get_mut().write_all(&out).await?;
//!
//! // DATA: one draft per recipient, every body line (unstuffed, CRLF -> LF) into each.
//! let mut f = File::options().write(true).create_new(true).open(&tmp).await?;
//! f.write_all(line).await?;
//! // Commit: flush + fsync, rename, fsync the directory.
//! f.sync_all().await?;
//! fs::rename(&tmp, &new).await?;
//! File::open(maildir.join("new")).await?.sync_all().await?;
//! // Quota: bytes in cur/ + new/, once.
//! let mut dir = fs::read_dir(maildir.join("cur")).await?;
//! while let Some(e) = dir.next_entry().await? { used += e.metadata().await?.len(); }
//! // After the final dot, in RCPT order: 250, 552 (over quota) or 451 (mailbox broken).
//! ```
//!
//! The tests check, over the real kernel (a Unix socket in a temp dir and 127.0.0.1): a
//! message to two users arriving byte-exact in both Maildirs (unstuffed, CRLF made LF,
//! 8-bit bytes and a lone CR kept, a `Return-Path` and `Delivered-To` per recipient), read
//! and moved to `cur/` as `:2,S`, nothing left in `tmp/`; the same over TCP with the
//! extensions `LHLO` offers, `HELO`/`EHLO` refused; a pipelined group answered exactly in
//! order; bad commands refused with clear codes while the session goes on; twenty clients
//! delivering to one mailbox at once, each message there exactly once under a unique
//! `time.pid_seq.host` name; and, in `limits.rs`: a recipient over quota getting 552 after
//! `DATA` while the other gets 250 (the usage cached), a Maildir whose `tmp` (or `new`) is a
//! regular file getting 451 for that recipient only and leaving no file in `tmp/` (so it
//! works as root, which permission bits do not stop); an over-long line (500, the session
//! going on); an over-size message (552 at `MAIL` when declared with `SIZE=`, 552 per
//! recipient after the body when not); recipients past the limit (452); the command and
//! DATA timeouts on the paused clock (421, then the connection closed, no file left); a
//! client vanishing mid-DATA leaving no file in `tmp/` or `new/` and no fd; and, in
//! `durability.rs`: two `fsync`s per copy delivered (the file's, then `new/`'s), and an
//! `fsync` failing with `EIO` giving 451 with nothing left in `tmp/` or `new/`.
//!
//! # What porting it found missing
//!
//! Nothing. Each tokio call above has its overlap twin under the same name: `fs::File`'s
//! `create_new`, `write_all` and `sync_all` (which takes `&mut self` here, since it writes
//! out the `File`'s own buffer first: `let mut file` where tokio's needs none),
//! `fs::rename`, `fs::read_dir` with `next_entry` and `DirEntry::metadata`, and
//! `BufReader`/`read_until`/`take`, `time::timeout`, `TcpListener`/`UnixListener`. A
//! directory's fsync is done as with tokio (and std): `fs::File::open(dir)` then
//! `sync_all`, which works on a directory fd; there is no dedicated call in either. The
//! sessions' `Rc` state needs no `LocalSet`: every overlap task may be `!Send`.

mod support;

#[path = "port_user18_lmtp_maildir/client.rs"]
mod client;
#[path = "port_user18_lmtp_maildir/durability.rs"]
mod durability;
#[path = "port_user18_lmtp_maildir/limits.rs"]
mod limits;
#[path = "port_user18_lmtp_maildir/maildir.rs"]
mod maildir;
#[path = "port_user18_lmtp_maildir/server.rs"]
mod server;
#[path = "port_user18_lmtp_maildir/session.rs"]
mod session;

use std::collections::HashSet;
use std::time::Duration;

use client::{Client, Reply};
use maildir::{names_in, take_new, Maildir};
use overlap::net::{TcpStream, UnixStream};
use server::{Config, Mailboxes, Server};
use support::{within, TempDir};

/// The hang guard for one step of a test.
const HANG: Duration = Duration::from_secs(20);

/// A running agent with its users' Maildirs under one temp dir.
struct Rig {
    dir: TempDir,
    server: Server,
}

impl Rig {
    /// An agent with `users` (name, quota), each with a fresh Maildir under `mail/<name>`.
    async fn start(name: &str, config: Config, users: &[(&str, Option<u64>)]) -> Rig {
        let dir = TempDir::new(name);
        let mut mailboxes = Mailboxes::default();
        for &(user, quota) in users {
            let root = dir.path().join("mail").join(user);
            Maildir::create(&root).await.unwrap();
            mailboxes.add(user, &root, quota);
        }
        let socket = dir.join("lmtp.sock");
        let server = Server::start(config, mailboxes, &socket).await.unwrap();
        Rig { dir, server }
    }

    fn maildir(&self, user: &str) -> Maildir {
        Maildir::at(&self.dir.path().join("mail").join(user))
    }

    async fn unix(&self) -> Client<UnixStream> {
        let stream = UnixStream::connect(&self.server.unix_path).await.unwrap();
        let mut client = within(HANG, Client::greeted(stream), "the greeting")
            .await
            .unwrap();
        client.lhlo("mta.test").await.unwrap();
        client
    }

    async fn tcp(&self) -> Client<TcpStream> {
        let stream = TcpStream::connect(self.server.tcp_addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut client = within(HANG, Client::greeted(stream), "the greeting")
            .await
            .unwrap();
        client.lhlo("mta.test").await.unwrap();
        client
    }

    /// Waits for every session to end; fails if any ended with an error.
    async fn sessions_ended_cleanly(&self) {
        let stats = self.server.stats();
        support::until(|| stats.live.get() == 0, "the sessions to end").await;
        assert!(
            stats.errors.borrow().is_empty(),
            "{:?}",
            stats.errors.borrow()
        );
    }
}

fn users() -> [(&'static str, Option<u64>); 3] {
    [("alice", None), ("bob", None), ("carol", None)]
}

/// What a delivered message holds: the two header lines the agent adds, then the body with
/// LF line ends.
fn delivered(from: &str, to: &str, body_lf: &[u8]) -> Vec<u8> {
    let mut out = format!("Return-Path: <{from}>\nDelivered-To: <{to}>\n").into_bytes();
    out.extend_from_slice(body_lf);
    out
}

/// A body with every case of dot-stuffing and line ends, as sent (CRLF) and as stored (LF).
fn tricky_body() -> (Vec<u8>, Vec<u8>) {
    let sent: &[u8] = b"Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nmid.dle.\r\n\
        caf\xc3\xa9 \xff\xfe 8-bit\r\nlone\rcr\r\n\r\n...\r\nlast";
    let stored: &[u8] = b"Subject: dots\n\n.\n..two\n.leading\nmid.dle.\n\
        caf\xc3\xa9 \xff\xfe 8-bit\nlone\rcr\n\n...\nlast\n";
    (sent.to_vec(), stored.to_vec())
}

/// A message to two users over the Unix socket: both get it byte-exact (unstuffed, LF line
/// ends, 8-bit bytes and a lone CR kept), the reader moves it to `cur/` as seen, and
/// nothing is left in `tmp/`.
#[overlap::test]
async fn a_message_to_two_users_over_unix_arrives_byte_exact_in_both() {
    let rig = Rig::start("lmtp-unix", Config::default(), &users()).await;
    let mut client = rig.unix().await;
    let (sent, stored) = tricky_body();
    let outcome = within(
        HANG,
        client.send_mail("ann@far.test", &["alice@here.test", "Bob@here.test"], &sent),
        "the delivery",
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome.mail, outcome.rcpts.clone(), outcome.data),
        (250, vec![250, 250], 354)
    );
    assert_eq!(outcome.per_rcpt_codes(), [250, 250]);
    // Each reply names its recipient, in RCPT order.
    assert!(outcome.per_rcpt[0].lines[0].starts_with("2.0.0 <alice@here.test> "));
    assert!(outcome.per_rcpt[1].lines[0].starts_with("2.0.0 <Bob@here.test> "));
    within(HANG, client.quit(), "QUIT").await.unwrap();

    for (user, to) in [("alice", "alice@here.test"), ("bob", "Bob@here.test")] {
        let maildir = rig.maildir(user);
        let got = take_new(&maildir).await.unwrap();
        assert_eq!(got.len(), 1, "{user}");
        assert_eq!(
            got[0].bytes,
            delivered("ann@far.test", to, &stored),
            "{user}"
        );
        assert!(names_in(&maildir.tmp()).is_empty());
        assert!(names_in(&maildir.new_dir()).is_empty());
        assert_eq!(names_in(&maildir.cur()), [format!("{}:2,S", got[0].name)]);
        // Read once: a second look finds nothing new.
        assert!(take_new(&maildir).await.unwrap().is_empty());
    }
    assert!(take_new(&rig.maildir("carol")).await.unwrap().is_empty());
    assert_eq!(rig.server.stats().delivered.get(), 2);
    rig.sessions_ended_cleanly().await;
}

/// Over TCP loopback: `LHLO` offers exactly PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES and
/// SIZE; `HELO` and `EHLO` are refused (this is LMTP); a message goes through the same way.
#[overlap::test]
async fn over_tcp_lhlo_offers_the_extensions_and_helo_is_refused() {
    let rig = Rig::start("lmtp-tcp", Config::default(), &users()).await;
    let stream = TcpStream::connect(rig.server.tcp_addr).await.unwrap();
    let mut client = within(HANG, Client::greeted(stream), "greeting")
        .await
        .unwrap();
    for refused in ["HELO mta.test", "EHLO mta.test"] {
        let reply = client.command(refused).await.unwrap();
        assert_eq!(reply.code, 500, "{reply:?}");
    }
    // MAIL before LHLO is out of sequence.
    assert_eq!(client.command("MAIL FROM:<a@b>").await.unwrap().code, 503);
    let offered = client.lhlo("mta.test").await.unwrap();
    assert_eq!(
        offered,
        [
            "PIPELINING",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SIZE 1048576"
        ]
    );
    let outcome = client
        .send_mail("", &["carol@here.test"], b"hello\r\n")
        .await
        .unwrap();
    assert_eq!(outcome.per_rcpt_codes(), [250]);
    within(HANG, client.quit(), "QUIT").await.unwrap();
    let got = take_new(&rig.maildir("carol")).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, delivered("", "carol@here.test", b"hello\n"));
    rig.sessions_ended_cleanly().await;
}

/// A whole pipelined group in one write gets its replies exactly in order, unknown
/// users and an `RSET` in the middle included; the body after 354 is delivered only to
/// the recipients of the second transaction.
#[overlap::test]
async fn a_pipelined_group_is_answered_exactly_in_order() {
    let rig = Rig::start("lmtp-pipeline", Config::default(), &users()).await;
    let mut client = rig.unix().await;
    let group = "MAIL FROM:<x@far.test> BODY=8BITMIME\r\n\
                 RCPT TO:<alice@here.test>\r\n\
                 NOOP\r\n\
                 RSET\r\n\
                 MAIL FROM:<y@far.test> SIZE=6\r\n\
                 RCPT TO:<nobody@here.test>\r\n\
                 RCPT TO:<carol@here.test>\r\n\
                 RCPT TO:<bob@here.test>\r\n\
                 DATA\r\n";
    client.send_raw(group.as_bytes()).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..9 {
        codes.push(within(HANG, client.reply(), "a reply").await.unwrap().code);
    }
    assert_eq!(codes, [250, 250, 250, 250, 250, 550, 250, 250, 354]);
    client.send_raw(b"piped\r\n.\r\nNOOP\r\n").await.unwrap();
    let after: Vec<Reply> = vec![
        client.reply().await.unwrap(),
        client.reply().await.unwrap(),
        client.reply().await.unwrap(),
    ];
    assert_eq!(
        after.iter().map(|r| r.code).collect::<Vec<_>>(),
        [250, 250, 250]
    );
    assert!(after[0].lines[0].starts_with("2.0.0 <carol@here.test> "));
    assert!(after[1].lines[0].starts_with("2.0.0 <bob@here.test> "));
    assert_eq!(after[2].lines[0], "2.0.0 ok");
    within(HANG, client.quit(), "QUIT").await.unwrap();
    assert!(take_new(&rig.maildir("alice")).await.unwrap().is_empty());
    for user in ["carol", "bob"] {
        let got = take_new(&rig.maildir(user)).await.unwrap();
        let to = format!("{user}@here.test");
        assert_eq!(got[0].bytes, delivered("y@far.test", &to, b"piped\n"));
    }
    rig.sessions_ended_cleanly().await;
}

/// Bad input gets a clear refusal and nothing else: unknown verbs, bad syntax, unknown
/// parameters, commands out of sequence, `DATA` with no recipient accepted, binary junk.
/// The same session then delivers normally.
#[overlap::test]
async fn bad_commands_are_refused_and_the_session_goes_on() {
    let rig = Rig::start("lmtp-bad", Config::default(), &users()).await;
    let mut client = rig.tcp().await;
    let cases: &[(&str, u16)] = &[
        ("FROB", 500),
        ("LHLO", 501),
        ("RCPT TO:<alice@here.test>", 503),
        ("DATA", 503),
        ("MAIL FROM:alice", 501),
        ("MAIL FROM:<a@b> SIZE=lots", 501),
        ("MAIL FROM:<a@b> SMTPUTF8", 555),
        ("MAIL FROM:<a@b>", 250),
        ("MAIL FROM:<a@b>", 503),
        ("RCPT TO:<nobody@here.test>", 550),
        ("RCPT TO:alice", 501),
        ("DATA", 503),
        ("DATA now", 501),
        ("\u{1}\u{2}\u{7f} junk", 500),
        ("RSET", 250),
    ];
    for &(line, code) in cases {
        let reply = within(HANG, client.command(line), line).await.unwrap();
        assert_eq!(reply.code, code, "{line}: {reply:?}");
    }
    let outcome = client
        .send_mail(
            "a@b",
            &["nobody@here.test", "alice@here.test"],
            b"still here\r\n",
        )
        .await
        .unwrap();
    assert_eq!(outcome.rcpts, [550, 250]);
    assert_eq!(outcome.per_rcpt_codes(), [250]);
    within(HANG, client.quit(), "QUIT").await.unwrap();
    let got = take_new(&rig.maildir("alice")).await.unwrap();
    assert_eq!(
        got[0].bytes,
        delivered("a@b", "alice@here.test", b"still here\n")
    );
    rig.sessions_ended_cleanly().await;
}

/// Twenty clients, half on the Unix socket and half on TCP, deliver to the same mailbox at
/// once: every message is there exactly once, byte-exact, under twenty different names of
/// the form `time.pid_seq.host`.
#[overlap::test]
async fn twenty_clients_at_once_into_one_mailbox_each_exactly_once() {
    let rig = std::rc::Rc::new(Rig::start("lmtp-twenty", Config::default(), &users()).await);
    let mut clients = overlap::JoinSet::new();
    for k in 0..20u32 {
        let rig = rig.clone();
        clients.spawn(async move {
            // Bodies of 0.5 to 40 KiB, each line naming its sender.
            let lines = 20 + 200 * (k as usize % 5);
            let body: Vec<u8> = (0..lines)
                .flat_map(|i| {
                    format!("client {k} line {i} .{}\r\n", "x".repeat(i % 150)).into_bytes()
                })
                .collect();
            let from = format!("sender{k}@far.test");
            let outcome = if k % 2 == 0 {
                let mut c = rig.unix().await;
                let o = c
                    .send_mail(&from, &["alice@here.test"], &body)
                    .await
                    .unwrap();
                c.quit().await.unwrap();
                o
            } else {
                let mut c = rig.tcp().await;
                let o = c
                    .send_mail(&from, &["alice@here.test"], &body)
                    .await
                    .unwrap();
                c.quit().await.unwrap();
                o
            };
            assert_eq!(outcome.per_rcpt_codes(), [250], "{k}");
            let stored = String::from_utf8(body).unwrap().replace("\r\n", "\n");
            delivered(&from, "alice@here.test", stored.as_bytes())
        });
    }
    let mut expected = Vec::new();
    while let Some(done) = within(HANG, clients.join_next(), "a client").await {
        expected.push(done.unwrap());
    }
    let got = take_new(&rig.maildir("alice")).await.unwrap();
    let mut got_bytes: Vec<Vec<u8>> = got.iter().map(|m| m.bytes.clone()).collect();
    got_bytes.sort();
    expected.sort();
    assert_eq!(got_bytes.len(), 20);
    assert!(got_bytes == expected, "the messages differ from those sent");
    let names: HashSet<&str> = got.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), 20);
    let host = maildir::host_name().await;
    let pid = std::process::id();
    for name in &names {
        // time.pid_seq.host
        let (time, rest) = name.split_once('.').unwrap();
        let (pid_seq, name_host) = rest.split_once('.').unwrap();
        assert!(time.parse::<u64>().is_ok(), "{name}");
        let (p, seq) = pid_seq.split_once('_').unwrap();
        assert_eq!(p.parse::<u32>().unwrap(), pid, "{name}");
        assert!(seq.parse::<u64>().is_ok(), "{name}");
        assert_eq!(name_host, host, "{name}");
    }
    assert!(names_in(&rig.maildir("alice").tmp()).is_empty());
    rig.sessions_ended_cleanly().await;
}
