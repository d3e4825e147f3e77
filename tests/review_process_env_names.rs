//! An environment variable set with a name the child cannot get it under is refused with
//! `InvalidInput` naming it, before anything runs, through every entry point:
//!
//! - a name with `=` in it (`env("A=B", "c")`), which used to reach the child as the entry
//!   `A=B=c`: a variable `A` with the value `B=c`, another variable than the one asked for,
//!   silently (std's behaviour, rust-lang/rust#122335; `setenv(3)` refuses such a name);
//! - an empty name, which used to reach the child as the entry `=c`, a variable no program
//!   can look up.
//!
//! Removing such a name (`env_remove("A=B")`) asks nothing of the child and still spawns;
//! a value with `=` in it is a value like any other.

mod support;

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use overlap::process::Command;
use support::TempDir;

/// A command that leaves `marker` behind if it runs at all.
fn marks(marker: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("echo ran > \"$0\"").arg(marker);
    cmd
}

fn expect_refused(what: &str, name: &str, res: io::Result<()>, marker: &Path) {
    let e = res.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
    let msg = e.to_string();
    assert!(
        msg.contains("environment variable") && msg.contains(&format!("{name:?}")),
        "{what}: the message should name the variable {name:?}: {msg}"
    );
    assert!(!marker.exists(), "{what}: the program ran");
}

#[overlap::test]
async fn a_variable_name_with_an_equals_sign_or_empty_is_refused() {
    let dir = TempDir::new("review-env-names");
    let marker = dir.join("ran");
    for name in ["A=B", "", "=A", "A="] {
        let set = |cmd: &mut Command| {
            cmd.env(name, "c");
        };
        let mut cmd = marks(&marker);
        set(&mut cmd);
        expect_refused("spawn", name, cmd.spawn().map(drop), &marker);
        expect_refused("output", name, cmd.output().await.map(drop), &marker);
        expect_refused("status", name, cmd.status().await.map(drop), &marker);
        let mut std_cmd = std::process::Command::new("sh");
        std_cmd
            .arg("-c")
            .arg("echo ran > \"$0\"")
            .arg(&marker)
            .envs([
                (OsStr::new("OK"), OsStr::new("1")),
                (name.as_ref(), "c".as_ref()),
            ]);
        expect_refused(
            "process::spawn",
            name,
            overlap::process::spawn(&mut std_cmd).map(drop),
            &marker,
        );
        expect_refused(
            "process::output",
            name,
            overlap::process::output(&mut std_cmd).await.map(drop),
            &marker,
        );
    }
}

#[overlap::test]
async fn removing_such_a_name_and_a_value_with_an_equals_sign_still_spawn() {
    let out = Command::new("sh")
        .args(["-c", "printf %s \"$A\""])
        .env_remove("A=B")
        .env("A", "B=c")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"B=c");
}
