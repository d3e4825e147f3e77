//! TFTP packets (RFC 1350) and options (RFC 2347: OACK; 2348: blksize; 2349: tsize).

/// Error codes of RFC 1350 (and 8, option negotiation refused, of RFC 2347).
pub const NOT_DEFINED: u16 = 0;
pub const NOT_FOUND: u16 = 1;
pub const ACCESS: u16 = 2;
pub const DISK_FULL: u16 = 3;
pub const ILLEGAL: u16 = 4;
pub const UNKNOWN_TID: u16 = 5;
pub const EXISTS: u16 = 6;

/// The block size without the blksize option, and the option's bounds.
pub const DEFAULT_BLKSIZE: usize = 512;
pub const MIN_BLKSIZE: usize = 8;
pub const MAX_BLKSIZE: usize = 65464;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Rrq(Request),
    Wrq(Request),
    Data(u16, Vec<u8>),
    Ack(u16),
    Error(u16, String),
    Oack(Vec<(String, String)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub file: String,
    pub mode: String,
    /// Options as sent, names lowercased.
    pub options: Vec<(String, String)>,
}

impl Request {
    pub fn option(&self, name: &str) -> Option<&str> {
        option(&self.options, name)
    }
}

pub fn option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn strings(mut rest: &[u8]) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("a string without its NUL")?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| "a string not UTF-8")?;
        out.push(s.to_string());
        rest = &rest[end + 1..];
    }
    Ok(out)
}

fn pairs(items: &[String]) -> Result<Vec<(String, String)>, &'static str> {
    if items.len() % 2 != 0 {
        return Err("an option without its value");
    }
    Ok(items
        .chunks(2)
        .map(|c| (c[0].to_ascii_lowercase(), c[1].clone()))
        .collect())
}

/// Parses one datagram; a malformed one gives what is wrong with it.
pub fn parse(msg: &[u8]) -> Result<Packet, &'static str> {
    if msg.len() < 4 {
        return Err("shorter than any packet");
    }
    let op = u16::from_be_bytes([msg[0], msg[1]]);
    let word = u16::from_be_bytes([msg[2], msg[3]]);
    match op {
        1 | 2 => {
            let items = strings(&msg[2..])?;
            if items.len() < 2 {
                return Err("a request without file name and mode");
            }
            let req = Request {
                file: items[0].clone(),
                mode: items[1].to_ascii_lowercase(),
                options: pairs(&items[2..])?,
            };
            Ok(if op == 1 {
                Packet::Rrq(req)
            } else {
                Packet::Wrq(req)
            })
        }
        3 => Ok(Packet::Data(word, msg[4..].to_vec())),
        4 if msg.len() == 4 => Ok(Packet::Ack(word)),
        5 => {
            let text = strings(&msg[4..])?;
            Ok(Packet::Error(
                word,
                text.into_iter().next().unwrap_or_default(),
            ))
        }
        6 => Ok(Packet::Oack(pairs(&strings(&msg[2..])?)?)),
        _ => Err("an unknown opcode"),
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

pub fn encode(p: &Packet) -> Vec<u8> {
    let mut out = Vec::new();
    let op = |out: &mut Vec<u8>, op: u16| out.extend_from_slice(&op.to_be_bytes());
    match p {
        Packet::Rrq(r) | Packet::Wrq(r) => {
            op(&mut out, if matches!(p, Packet::Rrq(_)) { 1 } else { 2 });
            push_str(&mut out, &r.file);
            push_str(&mut out, &r.mode);
            for (n, v) in &r.options {
                push_str(&mut out, n);
                push_str(&mut out, v);
            }
        }
        Packet::Data(block, data) => {
            op(&mut out, 3);
            out.extend_from_slice(&block.to_be_bytes());
            out.extend_from_slice(data);
        }
        Packet::Ack(block) => {
            op(&mut out, 4);
            out.extend_from_slice(&block.to_be_bytes());
        }
        Packet::Error(code, msg) => {
            op(&mut out, 5);
            out.extend_from_slice(&code.to_be_bytes());
            push_str(&mut out, msg);
        }
        Packet::Oack(opts) => {
            op(&mut out, 6);
            for (n, v) in opts {
                push_str(&mut out, n);
                push_str(&mut out, v);
            }
        }
    }
    out
}

pub fn error(code: u16, msg: &str) -> Vec<u8> {
    encode(&Packet::Error(code, msg.to_string()))
}
