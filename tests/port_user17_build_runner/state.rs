//! Incremental rebuilds: a job is up to date when every output exists and is newer than
//! every input (mtimes through `overlap::fs::metadata`), and `.build_log` holds the hash of
//! the very command that made them, so a changed command line reruns its job.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::buildfile::Job;

pub const BUILD_LOG: &str = ".build_log";

/// The hash `.build_log` keeps for a command line (`DefaultHasher::new()` is SipHash with
/// fixed keys: the same on every run).
pub fn command_hash(cmd: &str) -> u64 {
    let mut h = DefaultHasher::new();
    cmd.hash(&mut h);
    h.finish()
}

/// `.build_log`: job name to the hash of the command that last built it successfully.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BuildLog(pub HashMap<String, u64>);

impl BuildLog {
    /// Reads the log; a missing one is empty, a malformed line is skipped (its job reruns).
    pub async fn load(dir: &Path) -> io::Result<BuildLog> {
        let text = match overlap::fs::read_to_string(dir.join(BUILD_LOG)).await {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BuildLog::default()),
            Err(e) => return Err(e),
        };
        let mut map = HashMap::new();
        for line in text.lines() {
            if let Some((name, hash)) = line.split_once(' ') {
                if let Ok(hash) = u64::from_str_radix(hash, 16) {
                    map.insert(name.to_owned(), hash);
                }
            }
        }
        Ok(BuildLog(map))
    }

    /// Writes the log whole, through a temp file and a rename (never half-written).
    pub async fn save(&self, dir: &Path) -> io::Result<()> {
        let mut names: Vec<_> = self.0.iter().collect();
        names.sort();
        let text: String = names
            .into_iter()
            .map(|(n, h)| format!("{n} {h:016x}\n"))
            .collect();
        let tmp = dir.join(format!("{BUILD_LOG}.tmp"));
        overlap::fs::write(&tmp, text).await?;
        overlap::fs::rename(&tmp, dir.join(BUILD_LOG)).await
    }
}

async fn mtime(path: &Path) -> io::Result<Option<SystemTime>> {
    match overlap::fs::metadata(path).await {
        Ok(m) => m.modified().map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `job` can be skipped. A job without outputs always runs; a missing input is an
/// error (nothing could have built it from that).
pub async fn up_to_date(dir: &Path, job: &Job, log: &BuildLog) -> io::Result<bool> {
    if job.outputs.is_empty() || log.0.get(&job.name) != Some(&command_hash(&job.cmd)) {
        return Ok(false);
    }
    let mut newest_in = SystemTime::UNIX_EPOCH;
    for input in &job.inputs {
        let t = mtime(&dir.join(input)).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("job `{}`: input `{input}` does not exist", job.name),
            )
        })?;
        newest_in = newest_in.max(t);
    }
    for output in &job.outputs {
        match mtime(&dir.join(output)).await? {
            Some(t) if t > newest_in => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}
