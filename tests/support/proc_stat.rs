//! Fields of `/proc/PID/stat`: a process's state, and which processes are in a group.

/// The fields of `/proc/<pid>/stat` after the command name (state, ppid, pgrp, ...), or
/// `None` once the process is gone (reaped).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces and ')': split after the last one.
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The state letter of process `pid` (`R`, `S`, `Z` for a zombie, ...), or `None` once it
/// is gone: exited and reaped.
pub fn process_state(pid: u32) -> Option<char> {
    stat_fields(&pid.to_string())?.first()?.chars().next()
}

/// The pids of the processes in process group `pgid` that have not exited (zombies, which
/// no signal reaches any more, are left out), from a scan of `/proc`.
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        // Gone between the listing and the read: not a member any more.
        let Some(fields) = stat_fields(name) else {
            continue;
        };
        if fields.get(2).map(String::as_str) == Some(&pgid.to_string()) && fields[0] != "Z" {
            pids.push(pid);
        }
    }
    pids
}

/// The parent pid of process `pid`, or `None` once it is gone (reaped).
pub fn parent_pid(pid: u32) -> Option<u32> {
    stat_fields(&pid.to_string())?.get(1)?.parse().ok()
}
