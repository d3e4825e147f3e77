//! Syslog messages into records: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD
//! MSG`) and RFC 3164 (`<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`). Whatever the bytes, a
//! record: a missing or bad PRI, or a 5424 header cut short, gives a raw record with
//! RFC 3164's default priority (user.notice) and the whole message as its text; bytes that
//! are not UTF-8 are replaced, never refused.

/// The facility and severity a message without a usable PRI gets (RFC 3164 4.3.3).
pub const DEFAULT_FACILITY: u8 = 1;
pub const DEFAULT_SEVERITY: u8 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
    /// Not parsed: why.
    Raw(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub facility: u8,
    pub severity: u8,
    pub format: Format,
    pub timestamp: Option<String>,
    pub host: Option<String>,
    pub app: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    pub sd: Vec<SdElement>,
    pub msg: String,
}

impl Record {
    fn raw(why: &'static str, bytes: &[u8]) -> Record {
        Record {
            facility: DEFAULT_FACILITY,
            severity: DEFAULT_SEVERITY,
            format: Format::Raw(why),
            timestamp: None,
            host: None,
            app: None,
            procid: None,
            msgid: None,
            sd: Vec::new(),
            msg: text(bytes),
        }
    }

    pub fn malformed(&self) -> bool {
        matches!(self.format, Format::Raw(_))
    }

    /// The record as one line of a log file: `facility.severity host app: msg`, a
    /// newline inside the message written as `\n` so that a record is always one line.
    pub fn line(&self) -> String {
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let msg = self.msg.replace('\r', "\\r").replace('\n', "\\n");
        format!(
            "{}.{} {} {}: {}\n",
            self.facility,
            self.severity,
            dash(&self.host),
            dash(&self.app),
            msg
        )
    }
}

/// UTF-8 where it is, U+FFFD where not; trailing newlines, CRs and NULs dropped.
fn text(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `<PRI>`: the value and the bytes after it. 1 to 3 digits, no leading zero, at most 191.
fn pri(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let rest = bytes.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let value: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (value <= 191).then_some((value as u8, &rest[close + 1..]))
}

pub fn parse(bytes: &[u8]) -> Record {
    let Some((pri, rest)) = pri(bytes) else {
        return Record::raw("no PRI", bytes);
    };
    let (facility, severity) = (pri >> 3, pri & 7);
    let mut record = match rest.strip_prefix(b"1 ") {
        Some(after) => match rfc5424(after) {
            Some(r) => r,
            None => Record::raw("a 5424 header cut short", bytes),
        },
        None => rfc3164(rest),
    };
    if !record.malformed() {
        (record.facility, record.severity) = (facility, severity);
    }
    record
}

/// The next space-separated field, `-` as `None`; `None` at the end of the input.
fn field(rest: &mut &[u8]) -> Option<Option<String>> {
    if rest.is_empty() {
        return None;
    }
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let f = &rest[..end];
    *rest = rest.get(end + 1..).unwrap_or(&[]);
    if f.is_empty() {
        return None;
    }
    Some((f != b"-").then(|| text(f)))
}

fn rfc5424(mut rest: &[u8]) -> Option<Record> {
    let timestamp = field(&mut rest)?;
    let host = field(&mut rest)?;
    let app = field(&mut rest)?;
    let procid = field(&mut rest)?;
    let msgid = field(&mut rest)?;
    let (sd, after) = structured_data(rest)?;
    let msg = match after {
        [] => &[][..],
        [b' ', msg @ ..] => msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg),
        _ => return None,
    };
    Some(Record {
        facility: 0,
        severity: 0,
        format: Format::Rfc5424,
        timestamp,
        host,
        app,
        procid,
        msgid,
        sd,
        msg: text(msg),
    })
}

/// `-`, or one or more `[id name="value" ...]`, a value's `\"`, `\\` and `\]` unescaped.
fn structured_data(input: &[u8]) -> Option<(Vec<SdElement>, &[u8])> {
    if let Some(rest) = input.strip_prefix(b"-") {
        return Some((Vec::new(), rest));
    }
    let mut rest = input;
    let mut out = Vec::new();
    while let Some(after) = rest.strip_prefix(b"[") {
        let id_end = after.iter().position(|&b| b == b' ' || b == b']')?;
        if id_end == 0 {
            return None;
        }
        let mut element = SdElement {
            id: text(&after[..id_end]),
            params: Vec::new(),
        };
        rest = &after[id_end..];
        while let Some(p) = rest.strip_prefix(b" ") {
            let eq = p.iter().position(|&b| b == b'=')?;
            let name = text(&p[..eq]);
            let mut v = p[eq + 1..].strip_prefix(b"\"")?;
            let mut value = Vec::new();
            loop {
                match v {
                    [b'\\', c @ (b'"' | b'\\' | b']'), tail @ ..] => {
                        value.push(*c);
                        v = tail;
                    }
                    [b'"', tail @ ..] => {
                        v = tail;
                        break;
                    }
                    [c, tail @ ..] => {
                        value.push(*c);
                        v = tail;
                    }
                    [] => return None,
                }
            }
            element.params.push((name, text(&value)));
            rest = v;
        }
        rest = rest.strip_prefix(b"]")?;
        out.push(element);
    }
    (!out.is_empty()).then_some((out, rest))
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Mmm dd hh:mm:ss` (the day space-padded), as RFC 3164 writes it.
fn bsd_timestamp(b: &[u8]) -> bool {
    let digit = |i: usize| b[i].is_ascii_digit();
    b.len() >= 15
        && MONTHS.contains(&&b[..3])
        && b[3] == b' '
        && (b[4] == b' ' || digit(4))
        && digit(5)
        && b[6] == b' '
        && digit(7)
        && digit(8)
        && b[9] == b':'
        && digit(10)
        && digit(11)
        && b[12] == b':'
        && digit(13)
        && digit(14)
}

fn rfc3164(rest: &[u8]) -> Record {
    let mut record = Record {
        format: Format::Rfc3164,
        ..Record::raw("", b"")
    };
    if !bsd_timestamp(rest) || rest.get(15) != Some(&b' ') {
        // No header: the whole rest is the message (RFC 3164 4.3.2).
        record.msg = text(rest);
        return record;
    }
    record.timestamp = Some(text(&rest[..15]));
    let mut rest = &rest[16..];
    record.host = field(&mut rest).flatten();
    // The tag: up to 32 alphanumerics, then `[pid]` and `:`, or the content at once.
    let tag_end = rest
        .iter()
        .take(33)
        .position(|b| !b.is_ascii_alphanumeric() && !b"-_./".contains(b))
        .unwrap_or(rest.len().min(33));
    if tag_end > 0 && tag_end <= 32 && matches!(rest.get(tag_end), Some(b'[' | b':')) {
        record.app = Some(text(&rest[..tag_end]));
        rest = &rest[tag_end..];
        if let Some(after) = rest.strip_prefix(b"[") {
            if let Some(close) = after.iter().position(|&b| b == b']') {
                record.procid = Some(text(&after[..close]));
                rest = &after[close + 1..];
            }
        }
        rest = rest.strip_prefix(b":").unwrap_or(rest);
        rest = rest.strip_prefix(b" ").unwrap_or(rest);
    }
    record.msg = text(rest);
    record
}
