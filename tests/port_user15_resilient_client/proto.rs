//! The cluster's wire protocol, one line each way (a Redis-like text protocol): commands
//! `GET k`, `SET k v`, `INCR k`, `SLOTS`, `ASKING`; replies `+OK`, `$value`, `_` (no value),
//! `:n`, `*lo-hi=addr,...` (the slot map), `-MOVED slot addr`, `-ASK slot addr`,
//! `-ERR text`. Keys go to one of 16384 slots by CRC16 (XMODEM), as in Redis Cluster.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

pub const SLOTS: u16 = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's key hash.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

pub fn slot_of(key: &str) -> u16 {
    crc16(key.as_bytes()) % SLOTS
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Get(String),
    Set(String, String),
    Incr(String),
    Slots,
    Asking,
}

impl Cmd {
    pub fn encode(&self) -> String {
        match self {
            Cmd::Get(k) => format!("GET {k}"),
            Cmd::Set(k, v) => format!("SET {k} {v}"),
            Cmd::Incr(k) => format!("INCR {k}"),
            Cmd::Slots => "SLOTS".into(),
            Cmd::Asking => "ASKING".into(),
        }
    }

    pub fn parse(line: &str) -> Option<Cmd> {
        let mut it = line.splitn(3, ' ');
        let (op, a, b) = (it.next()?, it.next(), it.next());
        Some(match (op, a, b) {
            ("GET", Some(k), None) => Cmd::Get(k.into()),
            ("SET", Some(k), Some(v)) => Cmd::Set(k.into(), v.into()),
            ("INCR", Some(k), None) => Cmd::Incr(k.into()),
            ("SLOTS", None, None) => Cmd::Slots,
            ("ASKING", None, None) => Cmd::Asking,
            _ => return None,
        })
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Cmd::Get(k) | Cmd::Set(k, _) | Cmd::Incr(k) => Some(k),
            Cmd::Slots | Cmd::Asking => None,
        }
    }

    /// Whether sending it twice does no harm: only these are retried after a timeout or a
    /// lost connection, when the first sending may or may not have been applied.
    pub fn is_idempotent(&self) -> bool {
        !matches!(self, Cmd::Incr(_))
    }
}

pub type SlotMap = Vec<(RangeInclusive<u16>, SocketAddr)>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Value(Option<String>),
    Int(i64),
    Slots(SlotMap),
    Moved(u16, SocketAddr),
    Ask(u16, SocketAddr),
    Err(String),
}

impl Reply {
    pub fn encode(&self) -> String {
        match self {
            Reply::Ok => "+OK".into(),
            Reply::Value(Some(v)) => format!("${v}"),
            Reply::Value(None) => "_".into(),
            Reply::Int(n) => format!(":{n}"),
            Reply::Slots(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .map(|(r, a)| format!("{}-{}={a}", r.start(), r.end()))
                    .collect();
                format!("*{}", parts.join(","))
            }
            Reply::Moved(s, a) => format!("-MOVED {s} {a}"),
            Reply::Ask(s, a) => format!("-ASK {s} {a}"),
            Reply::Err(e) => format!("-ERR {e}"),
        }
    }

    /// A reply line, or why it is not one.
    pub fn parse(line: &str) -> Result<Reply, String> {
        let bad = || format!("malformed reply {line:?}");
        let redirect = |rest: &str| -> Result<(u16, SocketAddr), String> {
            let (s, a) = rest.split_once(' ').ok_or_else(bad)?;
            let slot: u16 = s.parse().map_err(|_| bad())?;
            if slot >= SLOTS {
                return Err(bad());
            }
            Ok((slot, a.parse().map_err(|_| bad())?))
        };
        let (tag, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
        match tag {
            "+" if rest == "OK" => Ok(Reply::Ok),
            "$" => Ok(Reply::Value(Some(rest.into()))),
            "_" if rest.is_empty() => Ok(Reply::Value(None)),
            ":" => rest.parse().map(Reply::Int).map_err(|_| bad()),
            "*" => rest
                .split(',')
                .map(|part| {
                    let (range, addr) = part.split_once('=').ok_or_else(bad)?;
                    let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
                    let (lo, hi): (u16, u16) = (
                        lo.parse().map_err(|_| bad())?,
                        hi.parse().map_err(|_| bad())?,
                    );
                    if lo > hi || hi >= SLOTS {
                        return Err(bad());
                    }
                    Ok((lo..=hi, addr.parse().map_err(|_| bad())?))
                })
                .collect::<Result<SlotMap, String>>()
                .map(Reply::Slots),
            "-" => {
                if let Some(r) = rest.strip_prefix("MOVED ") {
                    redirect(r).map(|(s, a)| Reply::Moved(s, a))
                } else if let Some(r) = rest.strip_prefix("ASK ") {
                    redirect(r).map(|(s, a)| Reply::Ask(s, a))
                } else if let Some(e) = rest.strip_prefix("ERR ") {
                    Ok(Reply::Err(e.into()))
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}
