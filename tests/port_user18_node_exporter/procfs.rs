//! The collectors that read procfs through `overlap::fs` (one pool job per file, whole file
//! read with `read_to_string`, since procfs files report a size of 0): CPU times from
//! `stat`, `meminfo`, `loadavg`, the exporter's own process (`self/status`, `self/fd`,
//! `self/limits`, `self/io`), and `net/dev`. Each takes the procfs root, as node_exporter's
//! `--path.procfs` does, so the tests can also feed it files of their own.

use std::io;
use std::path::PathBuf;

use overlap::future::{FutureExt, LocalBoxFuture};

use crate::collect::Collector;
use crate::exposition::{Family, Kind};

/// The kernel's clock ticks per second in `/proc/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// The modes of a `cpuN` line of `/proc/stat`, in the kernel's order.
const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

fn bad(file: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {what}"))
}

fn number(file: &str, field: &str) -> io::Result<f64> {
    field
        .parse::<f64>()
        .map_err(|_| bad(file, format!("not a number: {field:?}")))
}

/// Which procfs files a [`Procfs`] collector reads.
#[derive(Clone, Copy)]
enum Source {
    Cpu,
    Meminfo,
    Loadavg,
    Process,
    Netdev,
}

/// A collector of one group of procfs files; `root` is the procfs mount.
pub struct Procfs {
    source: Source,
    root: PathBuf,
}

impl Collector for Procfs {
    fn name(&self) -> &str {
        match self.source {
            Source::Cpu => "cpu",
            Source::Meminfo => "meminfo",
            Source::Loadavg => "loadavg",
            Source::Process => "process",
            Source::Netdev => "netdev",
        }
    }
    fn collect(&self) -> LocalBoxFuture<'_, io::Result<Vec<Family>>> {
        match self.source {
            Source::Cpu => cpu(self).boxed_local(),
            Source::Meminfo => meminfo(self).boxed_local(),
            Source::Loadavg => loadavg(self).boxed_local(),
            Source::Process => process(self).boxed_local(),
            Source::Netdev => netdev(self).boxed_local(),
        }
    }
}

impl Procfs {
    async fn read(&self, file: &str) -> io::Result<String> {
        overlap::fs::read_to_string(self.root.join(file)).await
    }

    /// `node_cpu_seconds_total{cpu,mode}`, `node_context_switches_total`, `node_forks_total`.
    pub fn cpu(root: impl Into<PathBuf>) -> Procfs {
        Procfs {
            source: Source::Cpu,
            root: root.into(),
        }
    }

    /// `node_memory_<Field>_bytes` for each `/proc/meminfo` line (kB turned into bytes).
    pub fn meminfo(root: impl Into<PathBuf>) -> Procfs {
        Procfs {
            source: Source::Meminfo,
            root: root.into(),
        }
    }

    /// `node_load1`, `node_load5`, `node_load15`.
    pub fn loadavg(root: impl Into<PathBuf>) -> Procfs {
        Procfs {
            source: Source::Loadavg,
            root: root.into(),
        }
    }

    /// The exporter's own process: threads, resident and virtual memory, open and maximum
    /// fds, and the I/O counters of `self/io` (left out where it cannot be read).
    pub fn process(root: impl Into<PathBuf>) -> Procfs {
        Procfs {
            source: Source::Process,
            root: root.into(),
        }
    }

    /// `node_network_{receive,transmit}_{bytes,packets,errs,drop}_total{device}`.
    pub fn netdev(root: impl Into<PathBuf>) -> Procfs {
        Procfs {
            source: Source::Netdev,
            root: root.into(),
        }
    }
}

async fn process(p: &Procfs) -> io::Result<Vec<Family>> {
    let status = p.read("self/status").await?;
    let field = |key: &str| -> io::Result<f64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .ok_or_else(|| bad("self/status", format!("no {key} line")))?;
        number("self/status", line.split_whitespace().next().unwrap_or(""))
    };
    let mut out = vec![
        Family::single(
            "process_threads",
            "Number of OS threads.",
            Kind::Gauge,
            field("Threads")?,
        ),
        Family::single(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Kind::Gauge,
            field("VmRSS")? * 1024.0,
        ),
        Family::single(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Kind::Gauge,
            field("VmSize")? * 1024.0,
        ),
    ];
    // Counted while the listing is open, so its own fd is in the count, as in node_exporter.
    let mut dir = overlap::fs::read_dir(p.root.join("self/fd")).await?;
    let mut fds = 0u32;
    while dir.next_entry().await?.is_some() {
        fds += 1;
    }
    drop(dir);
    out.push(Family::single(
        "process_open_fds",
        "Number of open fds.",
        Kind::Gauge,
        fds.into(),
    ));
    let limits = p.read("self/limits").await?;
    if let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) {
        let soft = line.split_whitespace().nth(3).unwrap_or("");
        let v = if soft == "unlimited" {
            f64::INFINITY
        } else {
            number("self/limits", soft)?
        };
        out.push(Family::single(
            "process_max_fds",
            "Maximum open fds.",
            Kind::Gauge,
            v,
        ));
    }
    match p.read("self/io").await {
        Ok(io) => {
            for line in io.lines() {
                let (key, v) = line
                    .split_once(':')
                    .ok_or_else(|| bad("self/io", format!("no colon in {line:?}")))?;
                let name = format!("process_io_{key}_total");
                let help = format!("I/O statistic {key} of the process.");
                out.push(Family::single(
                    &name,
                    &help,
                    Kind::Counter,
                    number("self/io", v.trim())?,
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

async fn cpu(p: &Procfs) -> io::Result<Vec<Family>> {
    let text = p.read("stat").await?;
    let mut cpu = Family::new(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Kind::Counter,
    );
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(n) = key.strip_prefix("cpu").filter(|n| !n.is_empty()) {
            let ticks: Vec<&str> = fields.collect();
            if ticks.len() < CPU_MODES.len() {
                return Err(bad("stat", format!("short line for {key}")));
            }
            for (mode, t) in CPU_MODES.iter().zip(ticks) {
                let secs = number("stat", t)? / USER_HZ;
                cpu.push(&[("cpu", n), ("mode", mode)], secs);
            }
        } else if key == "ctxt" || key == "processes" {
            let v = number("stat", fields.next().unwrap_or(""))?;
            let (name, help) = if key == "ctxt" {
                (
                    "node_context_switches_total",
                    "Total number of context switches.",
                )
            } else {
                ("node_forks_total", "Total number of forks.")
            };
            out.push(Family::single(name, help, Kind::Counter, v));
        }
    }
    if cpu.samples.is_empty() {
        return Err(bad("stat", "no cpuN lines"));
    }
    out.push(cpu);
    Ok(out)
}

async fn meminfo(p: &Procfs) -> io::Result<Vec<Family>> {
    let text = p.read("meminfo").await?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| bad("meminfo", format!("no colon in {line:?}")))?;
        let mut fields = rest.split_whitespace();
        let v = number("meminfo", fields.next().unwrap_or(""))?;
        // "Active(anon)" becomes "Active_anon", as node_exporter spells it.
        let key = key.replace('(', "_").replace(')', "");
        let (name, v) = match fields.next() {
            Some("kB") => (format!("node_memory_{key}_bytes"), v * 1024.0),
            _ => (format!("node_memory_{key}"), v),
        };
        let help = format!("Memory information field {key}.");
        out.push(Family::single(&name, &help, Kind::Gauge, v));
    }
    Ok(out)
}

async fn loadavg(p: &Procfs) -> io::Result<Vec<Family>> {
    let text = p.read("loadavg").await?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < 3 {
        return Err(bad("loadavg", "fewer than 3 fields"));
    }
    let mut out = Vec::new();
    for (name, field) in ["node_load1", "node_load5", "node_load15"]
        .iter()
        .zip(fields)
    {
        let help = format!("{}m load average.", &name[9..]);
        let v = number("loadavg", field)?;
        out.push(Family::single(name, &help, Kind::Gauge, v));
    }
    Ok(out)
}

async fn netdev(p: &Procfs) -> io::Result<Vec<Family>> {
    let text = p.read("net/dev").await?;
    let names = ["bytes", "packets", "errs", "drop"];
    let mut fams: Vec<Family> = ["receive", "transmit"]
        .iter()
        .flat_map(|dir| names.iter().map(move |n| (dir, n)))
        .map(|(dir, n)| {
            let name = format!("node_network_{dir}_{n}_total");
            let help = format!("Network device statistic {dir}_{n}.");
            Family::new(name, help, Kind::Counter)
        })
        .collect();
    // Two header lines, then "  lo: rx(8 fields) tx(8 fields)".
    for line in text.lines().skip(2) {
        let (dev, rest) = line
            .split_once(':')
            .ok_or_else(|| bad("net/dev", format!("no colon in {line:?}")))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 16 {
            return Err(bad("net/dev", format!("short line for {}", dev.trim())));
        }
        for (i, fam) in fams.iter_mut().enumerate() {
            let field = if i < 4 { f[i] } else { f[8 + i - 4] };
            fam.push(&[("device", dev.trim())], number("net/dev", field)?);
        }
    }
    Ok(fams)
}
