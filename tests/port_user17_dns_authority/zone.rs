//! The zone: a master file in a small subset of RFC 1035's format (`$ORIGIN`, `$TTL`,
//! `@`, relative and absolute owners, a blank owner for the last one, `;` comments, quoted
//! TXT strings; A, AAAA, CNAME, MX, TXT, NS, SOA) parsed into records by owner, and the
//! authoritative answer to a question: REFUSED outside the zone, CNAMEs chased within it,
//! NXDOMAIN or NODATA with the SOA in the authority section, MX exchanges' addresses added.

use std::collections::BTreeMap;
use std::fmt;

use crate::wire::{rcode, ty, Message, Question, RData, Record, Soa};

/// CNAMEs followed in one answer before the chain is taken for a loop.
const MAX_CHAIN: usize = 8;

#[derive(Debug)]
pub struct Zone {
    pub origin: String,
    pub soa: Record,
    /// Records by lowercased owner.
    names: BTreeMap<String, Vec<Record>>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ZoneError {
    pub line: usize,
    pub what: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone file line {}: {}", self.line, self.what)
    }
}

/// Splits a line into fields: whitespace-separated, `"..."` one field (with `\"` and
/// `\\`), a `;` outside quotes ending the line. Quoted fields keep a leading `"` marker.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == ';' {
            break;
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted string".into()),
                    Some('"') => break,
                    Some('\\') => s.push(chars.next().ok_or("a lone backslash")?),
                    Some(c) => s.push(c),
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == ';' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    Ok(out)
}

fn absolute(name: &str, origin: &str) -> String {
    if name == "@" {
        origin.to_string()
    } else if let Some(abs) = name.strip_suffix('.') {
        abs.to_string()
    } else if origin.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{origin}")
    }
}

/// Whether `name` is `zone` or below it.
pub fn within(name: &str, zone: &str) -> bool {
    let (name, zone) = (name.to_ascii_lowercase(), zone.to_ascii_lowercase());
    zone.is_empty() || name == zone || name.ends_with(&format!(".{zone}"))
}

impl Zone {
    pub fn parse(text: &str) -> Result<Zone, ZoneError> {
        let mut origin: Option<String> = None;
        let mut default_ttl = 3600;
        let mut last_owner: Option<String> = None;
        let mut soa = None;
        let mut names: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |what: String| ZoneError { line, what };
            let mut f = fields(raw).map_err(err)?;
            if f.is_empty() {
                continue;
            }
            match f[0].as_str() {
                "$ORIGIN" => {
                    let o = f.get(1).filter(|o| o.ends_with('.'));
                    let o = o.ok_or_else(|| err("$ORIGIN wants an absolute name".into()))?;
                    origin = Some(o.trim_end_matches('.').to_string());
                    continue;
                }
                "$TTL" => {
                    let t = f.get(1).and_then(|t| t.parse().ok());
                    default_ttl = t.ok_or_else(|| err("$TTL wants a number".into()))?;
                    continue;
                }
                d if d.starts_with('$') => return Err(err(format!("unknown directive {d}"))),
                _ => {}
            }
            let origin = origin
                .as_deref()
                .ok_or_else(|| err("a record before $ORIGIN".into()))?;
            let owner = if raw.starts_with([' ', '\t']) {
                last_owner
                    .clone()
                    .ok_or_else(|| err("a blank owner on the first record".into()))?
            } else {
                absolute(&f.remove(0), origin)
            };
            let mut f = f.into_iter().peekable();
            let mut ttl = default_ttl;
            if let Some(t) = f.peek().and_then(|t| t.parse().ok()) {
                ttl = t;
                f.next();
            }
            if f.peek().map(String::as_str) == Some("IN") {
                f.next();
            }
            let rtype = f.next().ok_or_else(|| err("no record type".into()))?;
            let args: Vec<String> = f.collect();
            let data = rdata(&rtype, &args, origin).map_err(err)?;
            if !within(&owner, origin) {
                return Err(err(format!("{owner} is outside {origin}")));
            }
            let record = Record {
                name: owner.clone(),
                ttl,
                data,
            };
            if let RData::Soa(_) = record.data {
                if !owner.eq_ignore_ascii_case(origin) || soa.is_some() {
                    return Err(err("one SOA, at the apex".into()));
                }
                soa = Some(record.clone());
            }
            names
                .entry(owner.to_ascii_lowercase())
                .or_default()
                .push(record);
            last_owner = Some(owner);
        }
        let soa = soa.ok_or(ZoneError {
            line: 0,
            what: "no SOA".into(),
        })?;
        for (owner, records) in &names {
            let cname = records.iter().any(|r| r.data.rtype() == ty::CNAME);
            if cname && records.len() > 1 {
                return Err(ZoneError {
                    line: 0,
                    what: format!("{owner} has a CNAME and other records"),
                });
            }
        }
        Ok(Zone {
            origin: origin.unwrap_or_default(),
            soa,
            names,
        })
    }

    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::Soa(s) => s.serial,
            _ => unreachable!(),
        }
    }

    fn at(&self, name: &str) -> &[Record] {
        self.names
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// Whether `name` exists: it owns records, or a name below it does (an empty
    /// non-terminal, which is NODATA rather than NXDOMAIN).
    fn exists(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        let below = format!(".{lower}");
        self.names
            .keys()
            .any(|k| *k == lower || k.ends_with(&below))
    }

    /// The negative answer's SOA, its TTL capped by the minimum (RFC 2308 3).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::Soa(Soa { minimum, .. }) = soa.data {
            soa.ttl = soa.ttl.min(minimum);
        }
        soa
    }

    /// The answer to the query `q` (one question of class IN), without EDNS.
    pub fn answer(&self, q: &Message) -> Message {
        let question: &Question = &q.questions[0];
        let mut m = Message {
            id: q.id,
            qr: true,
            opcode: q.opcode,
            rd: q.rd,
            questions: q.questions.clone(),
            ..Message::default()
        };
        if !within(&question.name, &self.origin) || question.qclass != 1 {
            m.rcode = rcode::REFUSED;
            return m;
        }
        m.aa = true;
        let mut name = question.name.clone();
        for _ in 0..MAX_CHAIN {
            let records = self.at(&name);
            let wanted: Vec<&Record> = records
                .iter()
                .filter(|r| r.data.rtype() == question.qtype)
                .collect();
            if !wanted.is_empty() {
                for r in wanted {
                    let mut r = r.clone();
                    r.name = name.clone();
                    if let RData::Mx(_, exchange) = &r.data {
                        self.add_addresses(exchange, &mut m.additional);
                    }
                    m.answers.push(r);
                }
                return m;
            }
            match records.iter().find(|r| r.data.rtype() == ty::CNAME) {
                Some(cname) => {
                    let mut r = cname.clone();
                    r.name = name.clone();
                    m.answers.push(r);
                    let RData::Cname(target) = &cname.data else {
                        unreachable!()
                    };
                    if !within(target, &self.origin) {
                        // Out of the zone: the resolver chases it elsewhere.
                        return m;
                    }
                    name = target.clone();
                }
                None => {
                    if !self.exists(&name) {
                        m.rcode = rcode::NXDOMAIN;
                    }
                    m.authority.push(self.negative_soa());
                    return m;
                }
            }
        }
        m.rcode = rcode::SERVFAIL;
        m
    }

    fn add_addresses(&self, name: &str, out: &mut Vec<Record>) {
        for r in self.at(name) {
            if matches!(r.data, RData::A(_) | RData::Aaaa(_)) {
                out.push(r.clone());
            }
        }
    }
}

fn rdata(rtype: &str, args: &[String], origin: &str) -> Result<RData, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{rtype} wants {n} fields, got {}", args.len()))
        }
    };
    let num = |s: &String| s.parse::<u32>().map_err(|_| format!("bad number {s:?}"));
    Ok(match rtype {
        "A" => {
            want(1)?;
            RData::A(
                args[0]
                    .parse()
                    .map_err(|_| format!("bad IPv4 {:?}", args[0]))?,
            )
        }
        "AAAA" => {
            want(1)?;
            RData::Aaaa(
                args[0]
                    .parse()
                    .map_err(|_| format!("bad IPv6 {:?}", args[0]))?,
            )
        }
        "CNAME" => {
            want(1)?;
            RData::Cname(absolute(&args[0], origin))
        }
        "NS" => {
            want(1)?;
            RData::Ns(absolute(&args[0], origin))
        }
        "MX" => {
            want(2)?;
            let pref = u16::try_from(num(&args[0])?).map_err(|_| "MX preference over 65535")?;
            RData::Mx(pref, absolute(&args[1], origin))
        }
        "TXT" => {
            if args.is_empty() {
                return Err("TXT wants a string".into());
            }
            let mut strings = Vec::new();
            for a in args {
                let s = a.strip_prefix('"').unwrap_or(a).as_bytes().to_vec();
                if s.len() > 255 {
                    return Err("a TXT string over 255 bytes".into());
                }
                strings.push(s);
            }
            RData::Txt(strings)
        }
        "SOA" => {
            want(7)?;
            RData::Soa(Soa {
                mname: absolute(&args[0], origin),
                rname: absolute(&args[1], origin),
                serial: num(&args[2])?,
                refresh: num(&args[3])?,
                retry: num(&args[4])?,
                expire: num(&args[5])?,
                minimum: num(&args[6])?,
            })
        }
        other => return Err(format!("unknown record type {other}")),
    })
}
