//! StatsD's line format: `name:value|type[|@rate]`, several lines to a datagram separated
//! by newlines. A bad line is an error value, never a panic: the datagram's other lines
//! still count.

/// A metric's type, from the letters after the `|`.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `|c`: added up over a window.
    Counter(f64),
    /// `|g`: set to the value, or moved by it when it is signed (`+3`, `-2`).
    Gauge { value: f64, delta: bool },
    /// `|ms`: every value kept, summarised at the flush.
    Timer(f64),
    /// `|s`: the distinct members seen in a window.
    Set(String),
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub kind: Kind,
    /// The sample rate (`|@0.1`): the client sent one in `1 / rate` of its events.
    pub rate: f64,
}

/// Why a line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadLine {
    NotUtf8,
    NoValue,
    NoType,
    BadName,
    BadValue,
    UnknownType(String),
    BadRate,
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Result<Sample, BadLine> {
    let (name, rest) = line.split_once(':').ok_or(BadLine::NoValue)?;
    let name = name.trim();
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        return Err(BadLine::BadName);
    }
    let mut fields = rest.split('|');
    let value = fields.next().unwrap_or_default();
    let ty = fields.next().ok_or(BadLine::NoType)?;
    let rate = match fields.next() {
        None => 1.0,
        Some(r) => {
            let rate: f64 = r
                .strip_prefix('@')
                .and_then(|r| r.parse().ok())
                .ok_or(BadLine::BadRate)?;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(BadLine::BadRate);
            }
            rate
        }
    };
    if fields.next().is_some() {
        return Err(BadLine::BadRate);
    }
    let number = || -> Result<f64, BadLine> {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or(BadLine::BadValue)
    };
    let kind = match ty {
        "c" => Kind::Counter(number()?),
        "ms" => Kind::Timer(number()?),
        "g" => Kind::Gauge {
            value: number()?,
            delta: value.starts_with(['+', '-']),
        },
        "s" if !value.is_empty() => Kind::Set(value.to_string()),
        "s" => return Err(BadLine::BadValue),
        other => return Err(BadLine::UnknownType(other.to_string())),
    };
    Ok(Sample {
        name: name.to_string(),
        kind,
        rate,
    })
}

/// Parses a datagram: its samples, and the count of bad lines in it (empty lines, as the
/// one after a trailing newline, are neither).
pub fn parse_datagram(bytes: &[u8]) -> (Vec<Sample>, u64) {
    let mut samples = Vec::new();
    let mut bad = 0;
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line)
            .map_err(|_| BadLine::NotUtf8)
            .and_then(parse_line)
        {
            Ok(s) => samples.push(s),
            Err(_) => bad += 1,
        }
    }
    (samples, bad)
}
