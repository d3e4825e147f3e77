//! What is checked of a command before it is spawned: input that std would pass to the
//! child in another form than the one asked for, and settings that cannot work together.

use std::io;
use std::os::unix::ffi::OsStrExt;

/// The end of a message about a NUL byte.
const NO_NUL: &str = ", which cannot be passed to a program";

/// Refuses, with [`InvalidInput`](io::ErrorKind::InvalidInput) naming it, an environment
/// variable set on `cmd` under a name the child cannot get it by: a name with `=` in it
/// (the child would read the entry `A=B=c` as a variable `A` with the value `B=c`) or an
/// empty one (the entry `=c` names no variable). std passes both on as they are, as
/// `setenv(3)` would not. A NUL byte in a name or a value, which std refuses without
/// saying where, is named too. Removals (`env_remove`) ask nothing of the child and are let be.
pub(super) fn env_names(cmd: &std::process::Command) -> io::Result<()> {
    for (name, value) in cmd.get_envs() {
        let Some(value) = value else { continue };
        let bytes = name.as_bytes();
        if bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("environment variable name {name:?} contains a NUL byte{NO_NUL}"),
            ));
        }
        if value.as_bytes().contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the value of environment variable {name:?}, {value:?}, contains a NUL \
                     byte{NO_NUL}"
                ),
            ));
        }
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("environment variable name \"\" is empty (its value: {value:?})"),
            ));
        }
        if let Some(at) = bytes.iter().position(|&b| b == b'=') {
            let (before, after) = bytes.split_at(at);
            let mut seen = after[1..].to_vec();
            seen.push(b'=');
            seen.extend_from_slice(value.as_bytes());
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "environment variable name {name:?} contains '=': the child would get \
                     {:?} set to {:?} instead",
                    std::ffi::OsStr::from_bytes(before),
                    std::ffi::OsStr::from_bytes(&seen),
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses, with [`InvalidInput`](io::ErrorKind::InvalidInput), a command whose child's
/// group is to be killed on drop (`kill_group_on_drop`) but which does not make the child
/// lead a group of its own (`process_group(0)`): its group would be this process's, or
/// another one's.
pub(super) fn group_of_its_own(kill_group_on_drop: bool, group: Option<i32>) -> io::Result<()> {
    if !kill_group_on_drop || group == Some(0) {
        return Ok(());
    }
    let given = match group {
        None => "none was set".to_owned(),
        Some(g) => format!("`process_group({g})` joins an existing group"),
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "`kill_group_on_drop(true)` needs a child leading a group of its own, set with \
             `process_group(0)` on the same `Command`: {given}"
        ),
    ))
}
