//! The daemon's configuration file: `key = value` lines, `#` comments and blank lines
//! skipped, every key optional (its default kept). A file that does not parse is refused as
//! a whole, with the line that failed: a reload keeps the settings it had.

use std::path::Path;
use std::time::Duration;

/// The settings, applied to each connection as it is accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The answer to `GREET`.
    pub greeting: String,
    /// The longest request line, newline excluded; a longer one ends the connection.
    pub max_line: usize,
    /// Connections served at once; one more is told `ERR busy` and closed.
    pub max_conns: usize,
    /// How long `SIGTERM` lets requests in flight run before they are cut.
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            greeting: "hello".into(),
            max_line: 256,
            max_conns: 64,
            drain: Duration::from_secs(10),
        }
    }
}

/// A configuration and its generation: 1 for the one read at start, one more for each
/// reload that succeeded.
#[derive(Debug)]
pub struct Generation {
    pub number: u64,
    pub config: Config,
}

/// Parses a configuration file's text; the error names the line.
pub fn parse(text: &str) -> Result<Config, String> {
    let mut cfg = Config::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: expected `key = value`, got {line:?}"));
        };
        let (key, value) = (key.trim(), value.trim());
        let number = |min: u64| -> Result<u64, String> {
            let v: u64 = value
                .parse()
                .map_err(|e| format!("line {n}: {key}: {e} in {value:?}"))?;
            if v < min {
                return Err(format!("line {n}: {key}: {v} is less than {min}"));
            }
            Ok(v)
        };
        match key {
            "greeting" => cfg.greeting = value.to_owned(),
            "max_line" => cfg.max_line = number(4)? as usize,
            "max_conns" => cfg.max_conns = number(1)? as usize,
            "drain_secs" => cfg.drain = Duration::from_secs(number(0)?),
            _ => return Err(format!("line {n}: unknown key {key:?}")),
        }
    }
    Ok(cfg)
}

/// Reads and parses the file at `path` (on the blocking pool); the error says which file
/// or which line.
pub async fn load(path: &Path) -> Result<Config, String> {
    let text = overlap::fs::read_to_string(path)
        .await
        .map_err(|e| e.to_string())?;
    parse(&text)
}
