//! SOCKS5's bytes (RFC 1928, RFC 1929 for the username/password method), both sides.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where a request points.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

/// A client's request, or the reply code refusing it.
#[derive(Debug)]
pub enum Request {
    Connect(Target),
    Bind(Target),
    UdpAssociate(Target),
    /// 0x07 (command) or 0x08 (address type) not supported.
    Unsupported(u8),
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The methods a greeting offers.
pub async fn read_greeting(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(bad("not SOCKS5"));
    }
    let mut methods = vec![0u8; head[1] as usize];
    r.read_exact(&mut methods).await?;
    Ok(methods)
}

async fn read_string(r: &mut (impl AsyncRead + Unpin)) -> io::Result<String> {
    let mut len = [0u8; 1];
    r.read_exact(&mut len).await?;
    let mut s = vec![0u8; len[0] as usize];
    r.read_exact(&mut s).await?;
    String::from_utf8(s).map_err(|_| bad("not UTF-8"))
}

/// RFC 1929's `VER ULEN UNAME PLEN PASSWD`.
pub async fn read_auth(r: &mut (impl AsyncRead + Unpin)) -> io::Result<(String, String)> {
    let mut ver = [0u8; 1];
    r.read_exact(&mut ver).await?;
    if ver[0] != 1 {
        return Err(bad("auth version"));
    }
    Ok((read_string(r).await?, read_string(r).await?))
}

/// `VER CMD RSV ATYP DST.ADDR DST.PORT`.
pub async fn read_request(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Request> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(bad("not SOCKS5"));
    }
    let target = match head[3] {
        1 => {
            let mut b = [0u8; 6];
            r.read_exact(&mut b).await?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Target::Addr(SocketAddr::from((ip, u16::from_be_bytes([b[4], b[5]]))))
        }
        4 => {
            let mut b = [0u8; 18];
            r.read_exact(&mut b).await?;
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).unwrap());
            Target::Addr(SocketAddr::from((ip, u16::from_be_bytes([b[16], b[17]]))))
        }
        3 => {
            let name = read_string(r).await?;
            let mut p = [0u8; 2];
            r.read_exact(&mut p).await?;
            Target::Name(name, u16::from_be_bytes(p))
        }
        _ => return Ok(Request::Unsupported(0x08)),
    };
    Ok(match head[1] {
        1 => Request::Connect(target),
        2 => Request::Bind(target),
        3 => Request::UdpAssociate(target),
        _ => Request::Unsupported(0x07),
    })
}

/// `ATYP ADDR PORT` for `addr`.
pub fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// `ATYP ADDR PORT` for any target.
pub fn put_target(out: &mut Vec<u8>, target: &Target) {
    match target {
        Target::Addr(a) => put_addr(out, *a),
        Target::Name(name, port) => {
            out.push(3);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&port.to_be_bytes());
        }
    }
}

/// The reply bytes: `VER REP RSV ATYP BND.ADDR BND.PORT` (0.0.0.0:0 when there is none).
pub fn reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let mut out = vec![5, code, 0];
    put_addr(
        &mut out,
        bound.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
    );
    out
}

pub async fn write_reply(
    w: &mut (impl AsyncWrite + Unpin),
    code: u8,
    bound: Option<SocketAddr>,
) -> io::Result<()> {
    w.write_all(&reply(code, bound)).await
}

/// A client's read of a reply: the code and the address.
pub async fn read_reply(r: &mut (impl AsyncRead + Unpin)) -> io::Result<(u8, SocketAddr)> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).await?;
    assert_eq!((head[0], head[2]), (5, 0), "reply header {head:?}");
    let addr = match head[3] {
        1 => {
            let mut b = [0u8; 6];
            r.read_exact(&mut b).await?;
            SocketAddr::from((
                Ipv4Addr::new(b[0], b[1], b[2], b[3]),
                u16::from_be_bytes([b[4], b[5]]),
            ))
        }
        4 => {
            let mut b = [0u8; 18];
            r.read_exact(&mut b).await?;
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).unwrap());
            SocketAddr::from((ip, u16::from_be_bytes([b[16], b[17]])))
        }
        t => panic!("reply address type {t}"),
    };
    Ok((head[1], addr))
}

/// A request's bytes.
pub fn request(cmd: u8, target: &Target) -> Vec<u8> {
    let mut out = vec![5, cmd, 0];
    put_target(&mut out, target);
    out
}

/// `RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA` parsed: the fragment number, target, data.
pub fn parse_udp(d: &[u8]) -> Option<(u8, Target, &[u8])> {
    if d.len() < 4 || d[0] != 0 || d[1] != 0 {
        return None;
    }
    let (target, rest) = match d[3] {
        1 if d.len() >= 10 => {
            let ip = Ipv4Addr::new(d[4], d[5], d[6], d[7]);
            let port = u16::from_be_bytes([d[8], d[9]]);
            (Target::Addr(SocketAddr::from((ip, port))), &d[10..])
        }
        4 if d.len() >= 22 => {
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&d[4..20]).unwrap());
            let port = u16::from_be_bytes([d[20], d[21]]);
            (Target::Addr(SocketAddr::from((ip, port))), &d[22..])
        }
        3 if d.len() >= 5 && d.len() >= 7 + d[4] as usize => {
            let end = 5 + d[4] as usize;
            let name = std::str::from_utf8(&d[5..end]).ok()?.to_string();
            let port = u16::from_be_bytes([d[end], d[end + 1]]);
            (Target::Name(name, port), &d[end + 2..])
        }
        _ => return None,
    };
    Some((d[2], target, rest))
}

/// A datagram with its SOCKS UDP header, `frag` 0 unless asked.
pub fn udp_with(frag: u8, target: &Target, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, frag];
    put_target(&mut out, target);
    out.extend_from_slice(data);
    out
}

/// A datagram from `from` as the relay hands it to the client.
pub fn udp_datagram(from: SocketAddr, data: &[u8]) -> Vec<u8> {
    udp_with(0, &Target::Addr(from), data)
}
