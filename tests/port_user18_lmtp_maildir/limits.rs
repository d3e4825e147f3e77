//! The tests of what goes wrong: quotas, broken Maildirs, over-long lines, over-size
//! messages, too many recipients, the command and DATA timeouts on the paused clock, and
//! clients vanishing mid-DATA.

use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::{TcpStream, UnixStream};
use overlap::time::sleep;

use crate::client::{stuffed, Client};
use crate::maildir::{names_in, take_new};
use crate::server::Config;
use crate::support::{open_fds, run_in_child, until, within};
use crate::{delivered, users, Rig, HANG};

/// A hang guard for the paused-clock tests, far past every timeout they wait for (the
/// paused clock jumps to it only if the agent never answers).
const PAUSED_HANG: Duration = Duration::from_secs(24 * 3600);

/// A recipient over quota gets 552 after `DATA` while the other gets 250; the quota's
/// usage is read from disk once (`cur/` + `new/`) and then counted by the agent.
#[overlap::test]
async fn a_recipient_over_quota_gets_552_while_the_other_gets_250() {
    let rig = Rig::start(
        "lmtp-quota",
        Config::default(),
        &[("alice", Some(1000)), ("bob", None)],
    )
    .await;
    let alice = rig.maildir("alice");
    std::fs::write(alice.cur().join("1.old:2,S"), vec![b'o'; 800]).unwrap();
    let mut client = rig.unix().await;
    // Stored: 51 bytes of header for alice + 101 of body = 152; 800 + 152 fits in 1000.
    let body = format!("{}\r\n", "x".repeat(100));
    let to = ["alice@here.test", "bob@here.test"];
    let first = client.send_mail("a@b", &to, body.as_bytes()).await.unwrap();
    assert_eq!(first.per_rcpt_codes(), [250, 250]);
    // 952 + 152 does not.
    let second = client.send_mail("a@b", &to, body.as_bytes()).await.unwrap();
    assert_eq!(first.rcpts, second.rcpts);
    assert_eq!(second.per_rcpt_codes(), [552, 250]);
    assert_eq!(second.per_rcpt[0].lines[0], "5.2.2 mailbox full");
    // The usage is the agent's count now, not the disk's: removing the old file behind
    // its back frees nothing (as with a `maildirsize` not yet recalculated).
    std::fs::remove_file(alice.cur().join("1.old:2,S")).unwrap();
    let third = client.send_mail("a@b", &to, body.as_bytes()).await.unwrap();
    assert_eq!(third.per_rcpt_codes(), [552, 250]);
    within(HANG, client.quit(), "QUIT").await.unwrap();

    let stored = delivered(
        "a@b",
        "alice@here.test",
        format!("{}\n", "x".repeat(100)).as_bytes(),
    );
    assert_eq!(stored.len(), 152);
    let got = take_new(&alice).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, stored);
    assert_eq!(take_new(&rig.maildir("bob")).await.unwrap().len(), 3);
    assert!(names_in(&alice.tmp()).is_empty());
    rig.sessions_ended_cleanly().await;
}

/// A Maildir whose `tmp` is a regular file (no draft can be opened) and one whose `new` is
/// a regular file (the draft is written and synced, then the rename fails): 451 for those
/// recipients only, the third gets the message, and no file is left in any `tmp/`. A
/// regular file where a directory should be stops root too, as permission bits would not.
#[overlap::test]
async fn a_broken_maildir_gets_451_for_that_recipient_only() {
    let rig = Rig::start("lmtp-broken", Config::default(), &users()).await;
    let (bob, carol) = (rig.maildir("bob"), rig.maildir("carol"));
    std::fs::remove_dir(bob.tmp()).unwrap();
    std::fs::write(bob.tmp(), b"not a directory").unwrap();
    std::fs::remove_dir(carol.new_dir()).unwrap();
    std::fs::write(carol.new_dir(), b"not a directory").unwrap();

    let mut client = rig.tcp().await;
    let to = ["bob@here.test", "alice@here.test", "carol@here.test"];
    let outcome = client
        .send_mail("a@b", &to, b"for three\r\n")
        .await
        .unwrap();
    assert_eq!(outcome.rcpts, [250, 250, 250]);
    assert_eq!(outcome.per_rcpt_codes(), [451, 250, 451]);
    assert_eq!(outcome.per_rcpt[0].lines[0], "4.2.0 mailbox unavailable");
    // The session goes on.
    assert_eq!(client.command("NOOP").await.unwrap().code, 250);
    within(HANG, client.quit(), "QUIT").await.unwrap();

    assert_eq!(std::fs::read(bob.tmp()).unwrap(), b"not a directory");
    assert!(
        names_in(&carol.tmp()).is_empty(),
        "a partial file in carol's tmp/"
    );
    assert_eq!(std::fs::read(carol.new_dir()).unwrap(), b"not a directory");
    let got = take_new(&rig.maildir("alice")).await.unwrap();
    assert_eq!(
        got[0].bytes,
        delivered("a@b", "alice@here.test", b"for three\n")
    );
    rig.sessions_ended_cleanly().await;
}

/// Lines are limited to 1,000 bytes with their CRLF: a longer command gets 500 5.5.2 and
/// the session goes on; a body with a longer line is refused for every recipient after
/// its final dot, leaving no file; a line of exactly 1,000 goes through.
#[overlap::test]
async fn an_over_long_line_gets_500_and_the_connection_goes_on() {
    let rig = Rig::start("lmtp-long", Config::default(), &users()).await;
    let mut client = rig.unix().await;
    let long = format!("NOOP {}", "n".repeat(1200));
    let reply = client.command(&long).await.unwrap();
    assert_eq!(
        (reply.code, reply.lines[0].as_str()),
        (500, "5.5.2 line too long")
    );
    assert_eq!(client.command("NOOP").await.unwrap().code, 250);

    let mut body = b"before\r\n".to_vec();
    body.extend_from_slice("y".repeat(999).as_bytes()); // 1,001 with CRLF
    body.extend_from_slice(b"\r\nafter\r\n");
    let to = ["alice@here.test", "bob@here.test"];
    let refused = client.send_mail("a@b", &to, &body).await.unwrap();
    assert_eq!(refused.per_rcpt_codes(), [500, 500]);
    for user in ["alice", "bob"] {
        assert!(names_in(&rig.maildir(user).tmp()).is_empty());
        assert!(names_in(&rig.maildir(user).new_dir()).is_empty());
    }

    let exact = format!("{}\r\n", "z".repeat(998)); // 1,000 with CRLF
    let accepted = client
        .send_mail("a@b", &to[..1], exact.as_bytes())
        .await
        .unwrap();
    assert_eq!(accepted.per_rcpt_codes(), [250]);
    within(HANG, client.quit(), "QUIT").await.unwrap();
    let got = take_new(&rig.maildir("alice")).await.unwrap();
    let stored = format!("{}\n", "z".repeat(998));
    assert_eq!(
        got[0].bytes,
        delivered("a@b", "alice@here.test", stored.as_bytes())
    );
    rig.sessions_ended_cleanly().await;
}

/// `SIZE` is honoured: a declared size over the limit is refused at `MAIL` (552); an
/// undeclared message over it is read to its final dot and refused per recipient (552),
/// leaving no file, and the connection goes on; a message of exactly the limit is taken.
#[overlap::test]
async fn an_over_size_message_gets_552_and_the_connection_goes_on() {
    let config = Config {
        max_message: 1000,
        ..Config::default()
    };
    let rig = Rig::start("lmtp-size", config, &users()).await;
    let mut client = rig.tcp().await;
    let offered = client.lhlo("again.test").await.unwrap();
    assert!(offered.contains(&"SIZE 1000".to_string()), "{offered:?}");
    let reply = client.command("MAIL FROM:<a@b> SIZE=1001").await.unwrap();
    assert_eq!(
        (reply.code, reply.lines[0].as_str()),
        (552, "5.3.4 message size exceeds fixed limit")
    );
    assert_eq!(
        client
            .command("MAIL FROM:<a@b> SIZE=1000")
            .await
            .unwrap()
            .code,
        250
    );
    assert_eq!(client.command("RSET").await.unwrap().code, 250);

    // Ten lines of 100 bytes with CRLF: exactly the limit. Eleven: over it.
    let line = format!("{}\r\n", "s".repeat(98));
    let to = ["alice@here.test", "bob@here.test"];
    let big = line.repeat(11);
    let refused = client.send_mail("a@b", &to, big.as_bytes()).await.unwrap();
    assert_eq!(refused.per_rcpt_codes(), [552, 552]);
    assert!(names_in(&rig.maildir("alice").tmp()).is_empty());
    assert_eq!(client.command("NOOP").await.unwrap().code, 250);
    let exact = line.repeat(10);
    let taken = client
        .send_mail("a@b", &to, exact.as_bytes())
        .await
        .unwrap();
    assert_eq!(taken.per_rcpt_codes(), [250, 250]);
    within(HANG, client.quit(), "QUIT").await.unwrap();
    for user in ["alice", "bob"] {
        let got = take_new(&rig.maildir(user)).await.unwrap();
        assert_eq!(got.len(), 1);
        let to = format!("{user}@here.test");
        let stored = exact.replace("\r\n", "\n");
        assert_eq!(got[0].bytes, delivered("a@b", &to, stored.as_bytes()));
    }
    rig.sessions_ended_cleanly().await;
}

/// Past `max_rcpts`, `RCPT` gets 452 4.5.3 and the message goes to the first ones only,
/// with one reply each after `DATA`.
#[overlap::test]
async fn recipients_past_the_limit_get_452() {
    let config = Config {
        max_rcpts: 2,
        ..Config::default()
    };
    let rig = Rig::start("lmtp-rcpts", config, &users()).await;
    let mut client = rig.unix().await;
    let to = ["alice@here.test", "bob@here.test", "carol@here.test"];
    let outcome = client
        .send_mail("a@b", &to, b"two of three\r\n")
        .await
        .unwrap();
    assert_eq!(outcome.rcpts, [250, 250, 452]);
    assert_eq!(outcome.per_rcpt_codes(), [250, 250]);
    within(HANG, client.quit(), "QUIT").await.unwrap();
    assert_eq!(take_new(&rig.maildir("bob")).await.unwrap().len(), 1);
    assert!(take_new(&rig.maildir("carol")).await.unwrap().is_empty());
    rig.sessions_ended_cleanly().await;
}

/// Reads what is left on the connection after the agent closed it.
async fn rest_of<S: overlap::io::AsyncRead + overlap::io::AsyncWrite + Unpin>(
    client: &mut Client<S>,
) -> Vec<u8> {
    let mut rest = Vec::new();
    client.get_mut().read_to_end(&mut rest).await.unwrap();
    rest
}

/// A client silent past the command timeout gets `421 4.4.2` and the connection closes;
/// one that keeps sending within it is not cut.
#[overlap::test(start_paused = true)]
async fn a_silent_client_gets_421_at_the_command_timeout() {
    let config = Config {
        command_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let rig = Rig::start("lmtp-idle", config, &users()).await;
    let mut client = rig.unix().await;
    for _ in 0..3 {
        sleep(Duration::from_secs(20)).await;
        assert_eq!(client.command("NOOP").await.unwrap().code, 250);
    }
    let reply = within(PAUSED_HANG, client.reply(), "the 421")
        .await
        .unwrap();
    assert_eq!(
        (reply.code, reply.lines[0].as_str()),
        (421, "4.4.2 timeout, closing connection")
    );
    assert!(within(PAUSED_HANG, rest_of(&mut client), "EOF")
        .await
        .is_empty());
    let stats = rig.server.stats();
    until(|| stats.live.get() == 0, "the session to end").await;
    assert_eq!(stats.timeouts.get(), 1);
    assert_eq!(*stats.errors.borrow(), ["command timeout"]);
}

/// A body stalling past the DATA timeout (longer than the command timeout, so a slow line
/// inside it is fine) gets `421 4.4.2`, the connection closes, and neither recipient's
/// draft is left in `tmp/` nor anything in `new/`.
#[overlap::test(start_paused = true)]
async fn a_stalled_body_gets_421_at_the_data_timeout_and_leaves_no_file() {
    let config = Config {
        command_timeout: Duration::from_secs(10),
        data_timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let rig = Rig::start("lmtp-stall", config, &users()).await;
    let mut client = rig.tcp().await;
    let group =
        "MAIL FROM:<a@b>\r\nRCPT TO:<alice@here.test>\r\nRCPT TO:<bob@here.test>\r\nDATA\r\n";
    client.send_raw(group.as_bytes()).await.unwrap();
    for code in [250, 250, 250, 354] {
        assert_eq!(client.reply().await.unwrap().code, code);
    }
    client.send_raw(b"first line\r\n").await.unwrap();
    let (alice, bob) = (rig.maildir("alice"), rig.maildir("bob"));
    until(
        || names_in(&alice.tmp()).len() == 1 && names_in(&bob.tmp()).len() == 1,
        "drafts",
    )
    .await;
    sleep(Duration::from_secs(40)).await;
    client.send_raw(b"a slow second line\r\n").await.unwrap();
    let reply = within(PAUSED_HANG, client.reply(), "the 421")
        .await
        .unwrap();
    assert_eq!(
        (reply.code, reply.lines[0].as_str()),
        (421, "4.4.2 timeout, closing connection")
    );
    assert!(within(PAUSED_HANG, rest_of(&mut client), "EOF")
        .await
        .is_empty());
    let stats = rig.server.stats();
    until(|| stats.live.get() == 0, "the session to end").await;
    assert_eq!(*stats.errors.borrow(), ["data timeout"]);
    for maildir in [&alice, &bob] {
        assert!(names_in(&maildir.tmp()).is_empty());
        assert!(names_in(&maildir.new_dir()).is_empty());
    }
}

/// A client vanishing mid-DATA (a Unix socket closed, a TCP connection reset) leaves no
/// file in `tmp/` or `new/` and, once the agent is gone, no fd. In a child process, so the
/// fd count is this test's alone.
#[test]
fn a_client_vanishing_mid_data_leaves_no_file_and_no_fd() {
    run_in_child(
        "limits::a_client_vanishing_mid_data_leaves_no_file_and_no_fd",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let rig = Rig::start("lmtp-vanish", Config::default(), &users()).await;
                let (alice, bob) = (rig.maildir("alice"), rig.maildir("bob"));
                let to = ["alice@here.test", "bob@here.test"];
                let group = "MAIL FROM:<a@b>\r\nRCPT TO:<alice@here.test>\r\nRCPT TO:<bob@here.test>\r\nDATA\r\n";
                let half = stuffed("part of a body\r\n".repeat(2000).as_bytes());
                let half = &half[..half.len() / 2];
                let drafts = || names_in(&alice.tmp()).len() + names_in(&bob.tmp()).len();

                let mut unix =
                    Client::greeted(UnixStream::connect(&rig.server.unix_path).await.unwrap())
                        .await
                        .unwrap();
                unix.lhlo("mta.test").await.unwrap();
                unix.send_raw(group.as_bytes()).await.unwrap();
                for code in [250, 250, 250, 354] {
                    assert_eq!(unix.reply().await.unwrap().code, code);
                }
                unix.send_raw(half).await.unwrap();
                until(|| drafts() == to.len(), "the drafts").await;
                drop(unix);
                until(|| drafts() == 0, "the drafts to go").await;

                let mut tcp =
                    Client::greeted(TcpStream::connect(rig.server.tcp_addr).await.unwrap())
                        .await
                        .unwrap();
                tcp.lhlo("mta.test").await.unwrap();
                tcp.send_raw(group.as_bytes()).await.unwrap();
                for code in [250, 250, 250, 354] {
                    assert_eq!(tcp.reply().await.unwrap().code, code);
                }
                tcp.send_raw(half).await.unwrap();
                until(|| drafts() == to.len(), "the drafts").await;
                tcp.get_mut().set_zero_linger().unwrap();
                drop(tcp);
                until(|| drafts() == 0, "the drafts to go").await;

                let stats = rig.server.stats();
                until(|| stats.live.get() == 0, "the sessions to end").await;
                assert_eq!(
                    stats.errors.borrow().len(),
                    2,
                    "{:?}",
                    stats.errors.borrow()
                );
                assert_eq!(stats.delivered.get(), 0);
                assert!(
                    names_in(&alice.new_dir()).is_empty() && names_in(&bob.new_dir()).is_empty()
                );
                drop(rig);
                // The accept loops end (and close their listeners) on the loop's next turn; a
                // dropped File's last write job closes its fd when it ends, on the pool.
                until(|| open_fds() == fds, "the fds to close").await;
            })
        },
    );
}
