//! The tests of the crash-safe path, with fault injection (a seccomp filter, in a child
//! process of its own): every copy delivered costs two `fsync`s, its file's and then
//! `new/`'s; an `fsync` that fails leaves nothing in `tmp/` or `new/` and gets 451.

use crate::maildir::{names_in, take_new};
use crate::server::Config;
use crate::support::{run_in_child, seccomp};
use crate::{users, Rig};

/// Each copy delivered is `fsync`ed, and so is its `new/` directory after the rename:
/// three copies (one message to two users, one to a third), six calls. Counted by a trap
/// that makes each `fsync` return 0 having done nothing.
#[test]
fn each_copy_fsyncs_its_file_and_then_its_new_directory() {
    run_in_child(
        "durability::each_copy_fsyncs_its_file_and_then_its_new_directory",
        || {
            overlap::block_on(async {
                let rig = Rig::start("lmtp-fsyncs", Config::default(), &users()).await;
                seccomp::install(&[seccomp::trap(libc::SYS_fsync)]);
                let mut client = rig.unix().await;
                let to = ["alice@here.test", "bob@here.test"];
                let both = client.send_mail("a@b", &to, b"twice\r\n").await.unwrap();
                assert_eq!(both.per_rcpt_codes(), [250, 250]);
                assert_eq!(seccomp::trapped(), 4);
                let one = client
                    .send_mail("a@b", &to[1..], b"once\r\n")
                    .await
                    .unwrap();
                assert_eq!(one.per_rcpt_codes(), [250]);
                assert_eq!(seccomp::trapped(), 6);
                client.quit().await.unwrap();
                assert_eq!(take_new(&rig.maildir("bob")).await.unwrap().len(), 2);
                rig.sessions_ended_cleanly().await;
            })
        },
    );
}

/// An `fsync` that fails (`EIO`: the disk went bad) means the copy is not safe: 451 for
/// each recipient, the draft removed from `tmp/`, nothing renamed into `new/`; the session
/// goes on.
#[test]
fn a_failing_fsync_gets_451_and_leaves_no_file() {
    run_in_child(
        "durability::a_failing_fsync_gets_451_and_leaves_no_file",
        || {
            overlap::block_on(async {
                let rig = Rig::start("lmtp-eio", Config::default(), &users()).await;
                seccomp::deny(&[(libc::SYS_fsync, libc::EIO)]);
                let mut client = rig.tcp().await;
                let to = ["alice@here.test", "bob@here.test"];
                let outcome = client.send_mail("a@b", &to, b"lost\r\n").await.unwrap();
                assert_eq!(outcome.per_rcpt_codes(), [451, 451]);
                assert_eq!(client.command("NOOP").await.unwrap().code, 250);
                client.quit().await.unwrap();
                for user in ["alice", "bob"] {
                    let maildir = rig.maildir(user);
                    assert!(names_in(&maildir.tmp()).is_empty(), "{user}'s tmp/");
                    assert!(names_in(&maildir.new_dir()).is_empty(), "{user}'s new/");
                }
                assert_eq!(rig.server.stats().delivered.get(), 0);
                rig.sessions_ended_cleanly().await;
            })
        },
    );
}
