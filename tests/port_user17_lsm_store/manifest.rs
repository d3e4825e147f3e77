//! The MANIFEST: which tables make up each level, the first write-ahead log still needed,
//! and the next file number, as a few lines of text ending in their checksum. It is
//! replaced atomically: written to `MANIFEST.tmp`, synced, renamed over, and the directory
//! synced, so a crash leaves the old one or the new one, never a mix.

use std::io;
use std::path::Path;

use overlap::fs::{self, File};
use overlap::io::AsyncWriteExt;

use super::format::fnv32;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub next_id: u64,
    /// Logs numbered from this on hold writes not yet in a table.
    pub log: u64,
    /// Newest first.
    pub l0: Vec<u64>,
    /// In key order.
    pub l1: Vec<u64>,
}

pub const NAME: &str = "MANIFEST";

fn ids(ids: &[u64]) -> String {
    ids.iter().map(|i| format!(" {i}")).collect()
}

impl Manifest {
    pub fn encode(&self) -> String {
        let body = format!(
            "lsm-manifest 1\nnext {}\nlog {}\nL0{}\nL1{}\n",
            self.next_id,
            self.log,
            ids(&self.l0),
            ids(&self.l1)
        );
        format!("{body}check {:08x}\n", fnv32(body.as_bytes()))
    }

    pub fn decode(text: &str) -> Result<Manifest, String> {
        let cut = text.rfind("check ").ok_or("no checksum line")?;
        let (body, check) = text.split_at(cut);
        let want = format!("check {:08x}\n", fnv32(body.as_bytes()));
        if check != want {
            return Err("its checksum does not match".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some("lsm-manifest 1") {
            return Err("not a version 1 manifest".into());
        }
        let mut field = |name: &str| -> Result<Vec<u64>, String> {
            let line = lines.next().ok_or(format!("no {name} line"))?;
            let rest = line
                .strip_prefix(name)
                .ok_or(format!("expected {name}, found {line:?}"))?;
            rest.split_whitespace()
                .map(|n| n.parse().map_err(|_| format!("bad number in {line:?}")))
                .collect()
        };
        let next = field("next")?;
        let log = field("log")?;
        let (l0, l1) = (field("L0")?, field("L1")?);
        match (&next[..], &log[..]) {
            (&[next_id], &[log]) => Ok(Manifest {
                next_id,
                log,
                l0,
                l1,
            }),
            _ => Err("next and log take one number each".into()),
        }
    }

    /// Reads `dir`'s MANIFEST; `None` if there is none (a new store).
    pub async fn load(dir: &Path) -> io::Result<Option<Manifest>> {
        let path = dir.join(NAME);
        match fs::read(&path).await {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| "it is not UTF-8 text".to_string())
                .and_then(|text| Manifest::decode(&text))
                .map(Some)
                .map_err(|why| {
                    let msg = format!("{} is corrupt: {why}", path.display());
                    io::Error::new(io::ErrorKind::InvalidData, msg)
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Installs this manifest atomically (see the module's docs).
    pub async fn store(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join("MANIFEST.tmp");
        let mut file = File::create(&tmp).await?;
        file.write_all(self.encode().as_bytes()).await?;
        file.sync_all().await?;
        drop(file);
        fs::rename(&tmp, dir.join(NAME)).await?;
        sync_dir(dir).await
    }
}

/// Makes `dir`'s entries (a rename, a new file) durable: `fsync` on the directory.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).await?.sync_all().await
}
