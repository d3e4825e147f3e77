//! The textfile collector: every `*.prom` file in a directory, which other programs (cron
//! jobs, batch scripts) write as `name.prom.tmp` and rename into place, so a file is never
//! read half-written (`.prom.tmp` does not end in `.prom` and is skipped). Files are read
//! at each scrape, in name order, up to a size limit. A file that is bad in any way (a line
//! that does not parse, a series another file already gave, too big) is left out whole and
//! reported as `node_textfile_scrape_error{file} 1` with the reason in
//! `node_textfile_error_info{file,error}`; the other files and the scrape go on. A file
//! removed between the listing and its open (a dangling symlink looks the same) is skipped.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::PathBuf;

use overlap::future::{FutureExt, LocalBoxFuture};
use overlap::io::AsyncReadExt;

use crate::collect::Collector;
use crate::exposition::{valid_label_name, valid_metric_name, Family, Kind, Sample};

/// The textfile collector: its directory and the size above which a file is refused.
pub struct Textfile {
    pub dir: PathBuf,
    pub max_file_bytes: u64,
}

impl Collector for Textfile {
    fn name(&self) -> &str {
        "textfile"
    }
    fn collect(&self) -> LocalBoxFuture<'_, io::Result<Vec<Family>>> {
        self.scan().boxed_local()
    }
}

impl Textfile {
    async fn scan(&self) -> io::Result<Vec<Family>> {
        let mut names = Vec::new();
        let mut dir = overlap::fs::read_dir(&self.dir).await?;
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".prom") {
                continue;
            }
            match entry.file_type().await {
                Ok(t) if t.is_dir() => {}
                Ok(_) => names.push(name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {} // gone already
                Err(e) => return Err(e),
            }
        }
        drop(dir);
        names.sort();
        let mut merged: BTreeMap<String, Family> = BTreeMap::new();
        let mut error = Family::new(
            "node_textfile_scrape_error",
            "1 if there was an error reading or parsing the file, 0 otherwise.",
            Kind::Gauge,
        );
        let mut info = Family::new(
            "node_textfile_error_info",
            "Why a text file was left out.",
            Kind::Gauge,
        );
        for name in names {
            let outcome = match self.read(&name).await {
                Ok(None) => continue,
                Ok(Some(text)) => parse(&text).and_then(|fams| merge(&mut merged, fams)),
                Err(e) => Err(e.to_string()),
            };
            error.push(&[("file", &name)], f64::from(u8::from(outcome.is_err())));
            if let Err(why) = outcome {
                info.push(&[("file", &name), ("error", &why)], 1.0);
            }
        }
        let mut out: Vec<Family> = merged.into_values().collect();
        out.push(error);
        if !info.samples.is_empty() {
            out.push(info);
        }
        Ok(out)
    }

    /// The file's text; `None` if it is gone.
    async fn read(&self, name: &str) -> io::Result<Option<String>> {
        let file = match overlap::fs::File::open(self.dir.join(name)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.take(self.max_file_bytes + 1)
            .read_to_end(&mut bytes)
            .await?;
        if bytes.len() as u64 > self.max_file_bytes {
            let msg = format!("larger than {} bytes", self.max_file_bytes);
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
    }
}

/// Adds a file's families to those of the files before it, or changes nothing and says why.
fn merge(merged: &mut BTreeMap<String, Family>, fams: Vec<Family>) -> Result<(), String> {
    for f in &fams {
        if let Some(old) = merged.get(&f.name) {
            if old.kind != f.kind {
                return Err(format!(
                    "{} is a {} in an earlier file",
                    f.name,
                    old.kind.as_str()
                ));
            }
            if let Some(s) = f
                .samples
                .iter()
                .find(|s| old.samples.iter().any(|o| same_series(o, s)))
            {
                return Err(format!(
                    "duplicate series {}{}",
                    f.name,
                    label_text(&s.labels)
                ));
            }
        }
    }
    for f in fams {
        match merged.get_mut(&f.name) {
            Some(old) => old.samples.extend(f.samples),
            None => {
                merged.insert(f.name.clone(), f);
            }
        }
    }
    Ok(())
}

fn same_series(a: &Sample, b: &Sample) -> bool {
    let mut a = a.labels.clone();
    let mut b = b.labels.clone();
    a.sort();
    b.sort();
    a == b
}

fn label_text(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// Parses a whole file; an error names its 1-based line.
pub fn parse(text: &str) -> Result<Vec<Family>, String> {
    let mut fams: Vec<Family> = Vec::new();
    let mut helped = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        parse_line(line, &mut fams, &mut helped).map_err(|e| format!("line {}: {e}", i + 1))?;
    }
    Ok(fams)
}

fn family<'a>(fams: &'a mut Vec<Family>, name: &str) -> &'a mut Family {
    match fams.iter().position(|f| f.name == name) {
        Some(i) => &mut fams[i],
        None => {
            let help = format!("Metric read from a text file: {name}.");
            fams.push(Family::new(name, help, Kind::Untyped));
            fams.last_mut().unwrap()
        }
    }
}

fn parse_line(
    line: &str,
    fams: &mut Vec<Family>,
    helped: &mut HashSet<String>,
) -> Result<(), String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(());
    }
    if let Some(comment) = line.strip_prefix('#') {
        let mut parts = comment.trim_start().splitn(3, ' ');
        let (Some(word @ ("HELP" | "TYPE")), Some(name)) = (parts.next(), parts.next()) else {
            return Ok(()); // an ordinary comment
        };
        if !valid_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        let rest = parts.next().unwrap_or("").trim();
        let known = fams.iter().any(|f| f.name == name);
        if word == "HELP" {
            if !helped.insert(name.to_string()) {
                return Err(format!("second HELP for {name}"));
            }
            family(fams, name).help = unescape_help(rest)?;
        } else {
            let kind = Kind::parse(rest).ok_or_else(|| format!("unsupported type {rest:?}"))?;
            let f = family(fams, name);
            if known && (!f.samples.is_empty() || f.kind != Kind::Untyped) {
                return Err(format!("TYPE for {name} after its samples or a TYPE"));
            }
            f.kind = kind;
        }
        return Ok(());
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value: f64 = value
        .parse()
        .map_err(|_| format!("invalid value {value:?}"))?;
    if fields.next().is_some() {
        return Err("timestamps are not allowed in text files".into());
    }
    let sample = Sample { labels, value };
    let f = family(fams, name);
    if f.samples.iter().any(|s| same_series(s, &sample)) {
        return Err(format!(
            "duplicate series {name}{}",
            label_text(&sample.labels)
        ));
    }
    f.samples.push(sample);
    Ok(())
}

/// Undoes the help text's escapes (`\\` and `\n`).
fn unescape_help(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            _ => return Err("bad escape in HELP".into()),
        }
    }
    Ok(out)
}

/// Parses `k="v",...}` and returns what follows the `}`.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim();
        if !valid_label_name(key) {
            return Err(format!("invalid label name {key:?}"));
        }
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} given twice"));
        }
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let start = s.len() - s[eq + 1..].trim_start().len();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("value of label {key} is not quoted"));
        }
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {key}")),
                Some((i, '"')) => break start + i + 1,
                Some((_, '\\')) => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    _ => return Err(format!("bad escape in label {key}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        s = s[end..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}
