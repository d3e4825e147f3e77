//! A NUL byte in a command (which no C string can carry to the child) is refused with
//! `InvalidInput` in words that say where it is: in the program's name, in which argument,
//! in `argv[0]`, in the working directory, in an environment variable's name or in its
//! value; each time with the text given. std's own words, "nul byte found in provided
//! data", which these used to be, name none of that.
//!
//! A `std::process::Command` handed to `overlap::process::spawn` or `output` has already
//! replaced an argument with a NUL by a stand-in, so there only the environment can be
//! named; an argument there still fails with std's `InvalidInput`.

mod support;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use overlap::process::Command;

fn nul(s: &[u8]) -> &OsStr {
    OsStr::from_bytes(s)
}

fn expect_named(what: &str, how: &str, e: io::Error, words: &[&str]) {
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}, {how}: {e}");
    let msg = e.to_string();
    for w in words {
        assert!(msg.contains(w), "{what}, {how}: {msg:?} should say {w:?}");
    }
}

/// Each case: what it is, the command, and what its error must say.
fn cases() -> Vec<(&'static str, Command, Vec<&'static str>)> {
    let mut arg = Command::new("echo");
    arg.arg("fine").arg(nul(b"bef\0ore"));
    let mut args = Command::new("echo");
    args.args(["one", "two", "th\0ree"]);
    let mut arg0 = Command::new("echo");
    arg0.arg0(nul(b"ec\0ho"));
    let mut dir = Command::new("echo");
    dir.current_dir(nul(b"/tmp\0/x"));
    let mut env_name = Command::new("echo");
    env_name.env(nul(b"NA\0ME"), "value");
    let mut env_value = Command::new("echo");
    env_value.env("NAME", nul(b"val\0ue"));
    vec![
        (
            "the program",
            Command::new(nul(b"ec\0ho")),
            vec!["program", r#""ec\0ho""#, "NUL"],
        ),
        (
            "argument 2",
            arg,
            vec!["argument 2", r#""bef\0ore""#, "NUL"],
        ),
        (
            "argument 3",
            args,
            vec!["argument 3", r#""th\0ree""#, "NUL"],
        ),
        ("argv[0]", arg0, vec!["argv[0]", r#""ec\0ho""#, "NUL"]),
        (
            "the working directory",
            dir,
            vec!["working directory", r#""/tmp\0/x""#, "NUL"],
        ),
        (
            "an environment name",
            env_name,
            vec!["environment variable name", r#""NA\0ME""#, "NUL"],
        ),
        (
            "an environment value",
            env_value,
            vec!["environment variable", r#""NAME""#, "value", "NUL"],
        ),
    ]
}

#[overlap::test]
async fn a_nul_byte_is_refused_saying_where_it_is() {
    for (what, mut cmd, words) in cases() {
        let e = cmd.spawn().map(drop).unwrap_err();
        expect_named(what, "spawn", e, &words);
        let e = cmd.output().await.unwrap_err();
        expect_named(what, "output", e, &words);
        let e = cmd.status().await.unwrap_err();
        expect_named(what, "status", e, &words);
        if what.starts_with("an environment") {
            let e = overlap::process::spawn(cmd.as_std_mut())
                .map(drop)
                .unwrap_err();
            expect_named(what, "process::spawn", e, &words);
        }
    }
}

#[overlap::test]
async fn a_later_setting_does_not_clear_an_earlier_nul() {
    // std keeps refusing once it has seen a NUL, whatever replaces it: so does the message.
    let mut cmd = Command::new("true");
    cmd.current_dir(nul(b"/tm\0p")).current_dir("/tmp");
    let e = cmd.status().await.unwrap_err();
    expect_named(
        "a replaced directory",
        "status",
        e,
        &["working directory", "NUL"],
    );
}
