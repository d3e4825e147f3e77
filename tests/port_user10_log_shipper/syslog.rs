//! A syslog input: RFC 3164 datagrams (`<PRI>Mmm dd hh:mm:ss host tag: message`) on a UDP
//! socket, each made a line of the "syslog" source, `facility.severity host tag: message`.

use std::io;
use std::rc::Rc;

use overlap::future::FutureExt;
use overlap::net::UdpSocket;
use overlap::sync::mpsc::Sender;
use overlap::sync::CancellationToken;

use crate::tailer::Line;

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// One datagram as a line. Without a valid PRI the whole datagram is the message, from
/// `user.notice` and an unknown host, as RFC 3164 (4.3.3) has a relay take it; a
/// timestamp that is not one is left in the message (4.3.2).
pub fn parse(datagram: &[u8]) -> String {
    let text = String::from_utf8_lossy(datagram);
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let pri = text.strip_prefix('<').and_then(|rest| {
        let (num, after) = rest.split_once('>')?;
        let ok = (1..=3).contains(&num.len()) && num.bytes().all(|b| b.is_ascii_digit());
        let pri: usize = num.parse().ok().filter(|_| ok)?;
        (pri < 192).then_some((pri, after))
    });
    let Some((pri, rest)) = pri else {
        return format!("user.notice - {text}");
    };
    let (fac, sev) = (FACILITIES[pri / 8], SEVERITIES[pri % 8]);
    // "Mmm dd hh:mm:ss " is 16 bytes, a day below 10 padded with a space.
    let stamped = rest.len() > 16
        && rest.is_char_boundary(16)
        && rest.as_bytes()[15] == b' '
        && rest.as_bytes()[6] == b' '
        && rest[7..15].bytes().filter(|&b| b == b':').count() == 2;
    if !stamped {
        return format!("{fac}.{sev} - {rest}");
    }
    match rest[16..].split_once(' ') {
        Some((host, msg)) => format!("{fac}.{sev} {host} {msg}"),
        None => format!("{fac}.{sev} - {}", &rest[16..]),
    }
}

/// Receives datagrams until `token` is cancelled. Sequence numbers go on from `seq`.
pub async fn run(
    sock: UdpSocket,
    tx: Sender<Line>,
    token: CancellationToken,
    mut seq: u64,
) -> io::Result<()> {
    let source: Rc<str> = "syslog".into();
    let mut buf = vec![0u8; 2048];
    loop {
        let n = overlap::select! {
            _ = token.cancelled() => return Ok(()),
            got = sock.recv_from(&mut buf).fuse() => got?.0,
        };
        let line = Line {
            source: source.clone(),
            seq,
            inode: 0,
            end: 0,
            text: parse(&buf[..n]),
        };
        overlap::select! {
            _ = token.cancelled() => return Ok(()),
            sent = tx.send(line).fuse() => sent.map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?,
        }
        seq += 1;
    }
}
