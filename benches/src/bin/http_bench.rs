//! HTTP/1.1 echo: overlap's `examples/http_echo`, and hyper's server on overlap
//! (`examples/hyper_echo`), vs hyper on tokio's current-thread runtime (`http_echo_hyper`),
//! all as server processes pinned to CPU 0, loaded by `wrk` pinned to CPU 1 (one wrk
//! thread). The two hyper servers are the same code but for the runtime (and its I/O
//! adapter), so their ratio is the runtime's doing.
//!
//! ```text
//! cargo build --release -p overlap --example http_echo --example hyper_echo -p overlap-benches --bins
//! target/release/http_bench [seconds per run, default 2] [runs, default 3]
//! ```
//!
//! Every request is a keep-alive `POST /` with a 64-byte body, which both servers echo. Rows:
//! 1, 50 and 500 connections, and 50 connections with 16 requests pipelined on each. Per
//! row: requests per second, the **server's CPU time per request** (the scheduler's
//! nanosecond runtime from `/proc/PID/task/*/schedstat` over the run; with two cores wrk
//! saturates first, so this is the figure that compares servers) and wrk's p99 latency. Each figure is the best of N runs, servers
//! interleaved. Ratios are against hyper on tokio: CPU below 1 and requests/s above 1 favour
//! the server on overlap. Needs `wrk` (`apt-get install wrk`).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use overlap_benches::server::{sibling_bin, Server};

const BODY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One request per round trip.
const PLAIN: &str = r#"
wrk.method = "POST"
wrk.body = "BODY"
wrk.headers["Content-Type"] = "text/plain"
"#;

/// 16 requests written at once on each connection; wrk counts each response.
const PIPELINED: &str = r#"
init = function(args)
  local r = {}
  for i = 1, 16 do
    r[i] = wrk.format("POST", "/", {["Content-Type"] = "text/plain"}, "BODY")
  end
  req = table.concat(r)
end
request = function()
  return req
end
"#;

#[derive(Clone, Copy)]
struct Figures {
    req_per_sec: f64,
    cpu_us_per_req: f64,
    p99_us: f64,
}

impl Figures {
    fn best(self, o: Figures) -> Figures {
        Figures {
            req_per_sec: self.req_per_sec.max(o.req_per_sec),
            cpu_us_per_req: self.cpu_us_per_req.min(o.cpu_us_per_req),
            p99_us: self.p99_us.min(o.p99_us),
        }
    }
}

/// wrk's latency figure ("808.00us", "1.45ms", "2.01s") in microseconds.
fn parse_latency(s: &str) -> Option<f64> {
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// Runs wrk against `server`; returns (requests completed, seconds, p99 µs).
fn wrk(server: &Server, conns: usize, secs: u32, script: &Path) -> io::Result<(f64, f64, f64)> {
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "--latency"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg("-s")
        .arg(script)
        .arg(format!("http://{}/", server.addr))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let bad = || io::Error::other(format!("unexpected wrk output:\n{text}"));
    if !out.status.success() || text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(bad());
    }
    // "  234076 requests in 3.10s, 37.06MB read"
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .ok_or_else(bad)?;
    let mut words = line.split_whitespace();
    let requests: f64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let secs = words
        .nth(2)
        .and_then(|w| w.trim_end_matches(',').strip_suffix('s'))
        .and_then(|w| w.parse().ok())
        .ok_or_else(bad)?;
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(parse_latency)
        .ok_or_else(bad)?;
    Ok((requests, secs, p99))
}

fn measure(bin: &Path, conns: usize, secs: u32, script: &Path) -> io::Result<Figures> {
    let server = Server::start(bin)?;
    wrk(&server, conns, 1, script)?; // warm-up
    let cpu0 = server.cpu_secs();
    let (requests, elapsed, p99) = wrk(&server, conns, secs, script)?;
    let cpu = server.cpu_secs() - cpu0;
    Ok(Figures {
        req_per_sec: requests / elapsed,
        cpu_us_per_req: cpu * 1e6 / requests,
        p99_us: p99,
    })
}

fn script(name: &str, text: &str) -> io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "overlap-http-bench-{}-{name}.lua",
        std::process::id()
    ));
    std::fs::write(&path, text.replace("BODY", BODY))?;
    Ok(path)
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: u32 = args
        .next()
        .map_or(2, |s| s.parse().expect("seconds per run"));
    let reps: usize = args.next().map_or(3, |s| s.parse().expect("repetitions"));
    const BUILD: &str = "cargo build --release -p overlap --example http_echo --example \
                         hyper_echo -p overlap-benches --bins";
    // The baseline, hyper on tokio, comes last.
    let bins = [
        ("overlap", sibling_bin(&["examples", "http_echo"], BUILD)),
        ("hyper/ovl", sibling_bin(&["examples", "hyper_echo"], BUILD)),
        ("hyper", sibling_bin(&["http_echo_hyper"], BUILD)),
    ];
    let plain = script("plain", PLAIN)?;
    let pipelined = script("pipelined", PIPELINED)?;
    let rows = [
        ("keep-alive", 1, &plain),
        ("keep-alive", 50, &plain),
        ("keep-alive", 500, &plain),
        ("pipelined x16", 50, &pipelined),
    ];
    println!(
        "HTTP/1.1 echo (POST, 64-byte body), servers on CPU 0, wrk -t1 on CPU 1, best of {reps} \
         runs of {secs} s (servers interleaved)"
    );
    println!(
        "{:>14} {:>5} {:>9} {:>9} {:>11} {:>9} {:>10} {:>11} {:>10}",
        "mode",
        "conns",
        "server",
        "req/s",
        "cpu µs/req",
        "p99 µs",
        "cpu/hyper",
        "req/s/hyper",
        "p99/hyper"
    );
    let mut ratios = vec![Vec::new(); bins.len() - 1];
    for (mode, conns, script) in rows {
        let mut best: Vec<Option<Figures>> = vec![None; bins.len()];
        for rep in 0..reps {
            for k in 0..bins.len() {
                let i = (k + rep) % bins.len();
                let f = measure(&bins[i].1, conns, secs, script)?;
                best[i] = Some(best[i].map_or(f, |b| b.best(f)));
            }
        }
        let best: Vec<Figures> = best
            .into_iter()
            .map(|b| b.expect("every server ran at least once"))
            .collect();
        let h = best[bins.len() - 1];
        for (i, f) in best.iter().enumerate() {
            // Pipelined, wrk times a whole batch and may print 0 for it.
            let (p99, p99_ratio) = if h.p99_us > 0.0 && f.p99_us > 0.0 {
                (
                    format!("{:.0}", f.p99_us),
                    format!("{:.3}", f.p99_us / h.p99_us),
                )
            } else {
                ("n/a".to_string(), "n/a".to_string())
            };
            println!(
                "{:>14} {:>5} {:>9} {:>9.0} {:>11.2} {:>9} {:>10.3} {:>11.3} {:>10}",
                mode,
                conns,
                bins[i].0,
                f.req_per_sec,
                f.cpu_us_per_req,
                p99,
                f.cpu_us_per_req / h.cpu_us_per_req,
                f.req_per_sec / h.req_per_sec,
                p99_ratio
            );
            if let Some(r) = ratios.get_mut(i) {
                r.push(f.cpu_us_per_req / h.cpu_us_per_req);
            }
        }
    }
    for (i, r) in ratios.iter().enumerate() {
        let geo = (r.iter().map(|r| r.ln()).sum::<f64>() / r.len() as f64).exp();
        println!(
            "{} / hyper on tokio, server CPU per request, geometric mean: {geo:.3}",
            bins[i].0
        );
    }
    let _ = std::fs::remove_file(plain);
    let _ = std::fs::remove_file(pipelined);
    Ok(())
}
