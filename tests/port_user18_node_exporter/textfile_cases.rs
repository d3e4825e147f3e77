//! The textfile collector's tests: good files (escaped label values byte for byte), a
//! file with no final newline, a bad line, a duplicate series, a type conflict, files over
//! the size limit, a FIFO with no writer, a file gone between the listing and the open, and
//! the files it must not read (`.prom.tmp`, other names, directories).

use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use crate::client::{Client, Scrape};
use crate::collect::Registry;
use crate::procfs::Procfs;
use crate::server::Config;
use crate::start;
use crate::support::{mkfifo, TempDir};
use crate::textfile::Textfile;

/// A registry of the textfile collector alone, on `dir`, with this size limit.
fn textfile_only(dir: &TempDir, max_file_bytes: u64) -> Registry {
    let tf = Textfile {
        dir: dir.path().into(),
        max_file_bytes,
    };
    Registry::default().add(tf, Duration::from_secs(30))
}

async fn body(addr: std::net::SocketAddr) -> String {
    let reply = Client::connect(addr).await.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[overlap::test]
async fn good_files_are_served_bad_ones_reported_and_others_skipped() {
    let dir = TempDir::new("node-exporter-textfile");
    std::fs::write(
        dir.join("good.prom"),
        "# HELP backup_last_success_seconds Last backup\\nof the day.\n\
         # TYPE backup_last_success_seconds gauge\n\
         backup_last_success_seconds{path=\"C:\\\\backups\",note=\"say \\\"hi\\\"\\nbye\"} 1.7e9\n\
         # a comment\n\n\
         # HELP backup_files_total Files under C:\\\\new.\n\
         backup_files_total 42\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tail.prom"),
        "cron_runs_total 3\ncron_last_exit_code -1",
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.prom"),
        "ok_metric 1\nbroken_metric{job=\"x\"} abc\n",
    )
    .unwrap();
    std::fs::write(dir.join("writing.prom.tmp"), "half_written 1\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not_a_prom_file 1\n").unwrap();
    std::fs::create_dir(dir.join("sub.prom")).unwrap();
    std::os::unix::fs::symlink(dir.join("vanished"), dir.join("gone.prom")).unwrap();
    let (_ex, task, addr) = start(Config::new(textfile_only(&dir, 64 * 1024))).await;
    let text = body(addr).await;
    // Byte for byte: the help's newline, the label values' backslash, quotes and newline.
    assert!(text.contains(
        "# HELP backup_last_success_seconds Last backup\\nof the day.\n\
         # TYPE backup_last_success_seconds gauge\n\
         backup_last_success_seconds{path=\"C:\\\\backups\",note=\"say \\\"hi\\\"\\nbye\"} 1700000000\n"
    ), "{text}");
    assert!(
        text.contains("# HELP backup_files_total Files under C:\\\\new.\n"),
        "{text}"
    );
    let s = Scrape::parse(&text);
    let labels = [("path", "C:\\backups"), ("note", "say \"hi\"\nbye")];
    assert_eq!(s.value("backup_last_success_seconds", &labels), 1.7e9);
    assert_eq!(s.value("backup_files_total", &[]), 42.0);
    assert_eq!(s.types["backup_files_total"], "untyped");
    assert_eq!(s.value("cron_runs_total", &[]), 3.0);
    assert_eq!(
        s.value("cron_last_exit_code", &[]),
        -1.0,
        "the last line, with no newline"
    );
    for absent in [
        "ok_metric",
        "broken_metric",
        "half_written",
        "not_a_prom_file",
    ] {
        assert!(s.all(absent).is_empty(), "{absent} was served");
    }
    let errors: Vec<(String, f64)> = s
        .all("node_textfile_scrape_error")
        .into_iter()
        .map(|(l, v)| (l["file"].clone(), v))
        .collect();
    let want = [("bad.prom", 1.0), ("good.prom", 0.0), ("tail.prom", 0.0)];
    assert_eq!(errors, want.map(|(f, v)| (f.to_string(), v)));
    assert!(text.contains(
        "node_textfile_error_info{file=\"bad.prom\",error=\"line 2: invalid value \\\"abc\\\"\"} 1\n"
    ), "{text}");
    assert_eq!(
        s.value(
            "node_scrape_collector_success",
            &[("collector", "textfile")]
        ),
        1.0
    );
    // The writer renames its finished file into place: the next scrape has it.
    std::fs::rename(dir.join("writing.prom.tmp"), dir.join("writing.prom")).unwrap();
    let s = Scrape::parse(&body(addr).await);
    assert_eq!(s.value("half_written", &[]), 1.0);
    task.abort();
}

#[overlap::test]
async fn files_merge_into_one_family_and_a_duplicate_or_conflict_is_refused() {
    let dir = TempDir::new("node-exporter-merge");
    let files = [
        (
            "a.prom",
            "# TYPE jobs_done_total counter\njobs_done_total{job=\"x\"} 1\n",
        ),
        (
            "b.prom",
            "# TYPE jobs_done_total counter\njobs_done_total{job=\"y\"} 2\n",
        ),
        (
            "c.prom",
            "# TYPE jobs_done_total counter\njobs_done_total{job=\"x\"} 5\n",
        ),
        (
            "d.prom",
            "# TYPE jobs_done_total gauge\njobs_done_total{job=\"z\"} 1\n",
        ),
        ("e.prom", "temp 1\ntemp{} 2\n"),
        ("f.prom", "# TYPE late counter\nlate 1\n# TYPE late gauge\n"),
        ("g.prom", "stamped 1 1700000000000\n"),
        ("h.prom", "bad{job=\"x\",job=\"y\"} 1\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let (_ex, task, addr) = start(Config::new(textfile_only(&dir, 64 * 1024))).await;
    let s = Scrape::parse(&body(addr).await);
    let jobs: Vec<(String, f64)> = s
        .all("jobs_done_total")
        .into_iter()
        .map(|(l, v)| (l["job"].clone(), v))
        .collect();
    assert_eq!(jobs, [("x".to_string(), 1.0), ("y".to_string(), 2.0)]);
    assert_eq!(s.types["jobs_done_total"], "counter");
    let why = |file: &str| -> String {
        let infos = s.all("node_textfile_error_info");
        let found = infos.iter().find(|(l, _)| l["file"] == file);
        found.map(|(l, _)| l["error"].clone()).unwrap_or_default()
    };
    assert_eq!(why("a.prom"), "");
    assert_eq!(why("c.prom"), "duplicate series jobs_done_total{job=\"x\"}");
    assert_eq!(
        why("d.prom"),
        "jobs_done_total is a counter in an earlier file"
    );
    assert_eq!(why("e.prom"), "line 2: duplicate series temp{}");
    assert_eq!(
        why("f.prom"),
        "line 3: TYPE for late after its samples or a TYPE"
    );
    assert_eq!(
        why("g.prom"),
        "line 1: timestamps are not allowed in text files"
    );
    assert_eq!(why("h.prom"), "line 1: label job given twice");
    for name in ["temp", "late", "stamped", "bad"] {
        assert!(s.all(name).is_empty(), "{name} was served");
    }
    task.abort();
}

#[overlap::test]
async fn a_file_over_the_size_limit_is_refused_and_one_at_it_is_read() {
    let dir = TempDir::new("node-exporter-size");
    let line = "filler_metric 1\n";
    let mut at_limit = "# just padding\n".repeat(60);
    at_limit.push_str(line);
    let limit = at_limit.len() as u64;
    std::fs::write(dir.join("at_limit.prom"), &at_limit).unwrap();
    let mut huge = String::from("huge_metric 1\n");
    huge.push_str(&"# padding padding padding padding\n".repeat(32 * 1024));
    std::fs::write(dir.join("huge.prom"), &huge).unwrap();
    std::fs::write(dir.join("one_over.prom"), format!("{at_limit} ")).unwrap();
    let (_ex, task, addr) = start(Config::new(textfile_only(&dir, limit))).await;
    let s = Scrape::parse(&body(addr).await);
    assert_eq!(s.value("filler_metric", &[]), 1.0);
    assert!(s.all("huge_metric").is_empty());
    let too_big = format!("larger than {limit} bytes");
    for file in ["huge.prom", "one_over.prom"] {
        assert_eq!(
            s.value("node_textfile_scrape_error", &[("file", file)]),
            1.0
        );
        assert_eq!(
            s.value(
                "node_textfile_error_info",
                &[("file", file), ("error", &too_big)]
            ),
            1.0
        );
    }
    assert_eq!(
        s.value("node_textfile_scrape_error", &[("file", "at_limit.prom")]),
        0.0
    );
    task.abort();
}

/// Real clock: the FIFO's open blocks a pool thread, and a paused clock does not
/// auto-advance while a pool job runs.
#[overlap::test]
async fn a_fifo_with_no_writer_times_out_only_the_textfile_collector() {
    let dir = TempDir::new("node-exporter-fifo");
    std::fs::write(dir.join("ok.prom"), "ok_metric 1\n").unwrap();
    mkfifo(&dir.join("pipe.prom"));
    let t = Duration::from_secs(30);
    let tf = Textfile {
        dir: dir.path().into(),
        max_file_bytes: 1024,
    };
    let reg = Registry::default()
        .add(Procfs::cpu("/proc"), t)
        .add(Procfs::meminfo("/proc"), t)
        .add(Procfs::loadavg("/proc"), t)
        .add(Procfs::process("/proc"), t)
        .add(Procfs::netdev("/proc"), t)
        .add(tf, Duration::from_secs(1));
    let (_ex, task, addr) = start(Config::new(reg)).await;
    let s = Scrape::parse(&body(addr).await);
    let ok = |c: &str| s.value("node_scrape_collector_success", &[("collector", c)]);
    assert_eq!(ok("textfile"), 0.0);
    for c in ["cpu", "meminfo", "loadavg", "process", "netdev"] {
        assert_eq!(ok(c), 1.0, "{c}");
    }
    let took = s.value(
        "node_scrape_collector_duration_seconds",
        &[("collector", "textfile")],
    );
    assert!(took >= 1.0, "timed out after {took} s");
    // ok.prom, read before the FIFO, is dropped with the rest of the collector's work...
    assert!(s.all("ok_metric").is_empty());
    // ...until the FIFO gets a writer: O_RDWR never blocks and lets the blocked opens end.
    let rw = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dir.join("pipe.prom"))
        .unwrap();
    std::fs::remove_file(dir.join("pipe.prom")).unwrap();
    drop(rw);
    let s = Scrape::parse(&body(addr).await);
    assert_eq!(
        s.value(
            "node_scrape_collector_success",
            &[("collector", "textfile")]
        ),
        1.0
    );
    assert_eq!(s.value("ok_metric", &[]), 1.0);
    task.abort();
}
