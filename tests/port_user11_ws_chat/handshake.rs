//! The HTTP/1.1 upgrade: the request's head read as lines through
//! `Framed<_, LinesCodec>` (a line over the maximum is a 431), checked for a `GET` with
//! `Upgrade: websocket`, `Connection: Upgrade`, version 13 and a `Sec-WebSocket-Key`, and
//! answered `101` with the key's `Sec-WebSocket-Accept` (SHA-1 and base64, written out
//! here as a tokio user would take them from the `sha1` and `base64` crates).

use overlap::codec::{Framed, LinesCodec, LinesCodecError};
use overlap::io::AsyncRead;
use overlap::stream::StreamExt;

/// The upgrade asked for.
#[derive(Debug)]
pub struct Request {
    /// The path, whose last segment names the room (`/chat/lobby`).
    pub path: String,
    pub key: String,
    /// `X-Name`, if the client gave one.
    pub name: Option<String>,
}

/// Why an upgrade was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    BadRequest(&'static str),
    HeadersTooLarge,
    /// The client went away (or failed) before its head was whole: nothing to answer.
    Gone,
}

impl Reject {
    /// The response to write, if any.
    pub fn response(&self) -> Option<String> {
        let (status, reason) = match self {
            Reject::BadRequest(why) => ("400 Bad Request", *why),
            Reject::HeadersTooLarge => (
                "431 Request Header Fields Too Large",
                "header line too long",
            ),
            Reject::Gone => return None,
        };
        Some(format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nX-Reason: {reason}\r\nContent-Length: 0\r\n\r\n"
        ))
    }
}

/// The most header lines taken.
const MAX_HEADERS: usize = 64;

/// Reads a request head through `lines`, leaving what follows it in the read buffer.
pub async fn read_request<S>(lines: &mut Framed<S, LinesCodec>) -> Result<Request, Reject>
where
    S: AsyncRead + Unpin,
{
    let mut next_line = async || match lines.next().await {
        Some(Ok(line)) => Ok(line),
        Some(Err(LinesCodecError::MaxLineLengthExceeded)) => Err(Reject::HeadersTooLarge),
        Some(Err(LinesCodecError::Io(_))) | None => Err(Reject::Gone),
    };
    let first = next_line().await?;
    let mut words = first.split(' ');
    let (Some("GET"), Some(path), Some("HTTP/1.1"), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(Reject::BadRequest("bad request line"));
    };
    if !path.starts_with('/') {
        return Err(Reject::BadRequest("bad request line"));
    }
    let (mut upgrade, mut connection, mut version, mut key, mut name) =
        (false, false, false, None, None);
    for _ in 0..MAX_HEADERS {
        let line = next_line().await?;
        if line.is_empty() {
            if !upgrade || !connection {
                return Err(Reject::BadRequest("not an upgrade to websocket"));
            }
            if !version {
                return Err(Reject::BadRequest("version 13 only"));
            }
            let Some(key) = key else {
                return Err(Reject::BadRequest("no Sec-WebSocket-Key"));
            };
            return Ok(Request {
                path: path.to_string(),
                key,
                name,
            });
        }
        let Some((field, value)) = line.split_once(':') else {
            return Err(Reject::BadRequest("bad header line"));
        };
        let value = value.trim();
        match field.to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => {
                connection = value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            }
            "sec-websocket-version" => version = value == "13",
            "sec-websocket-key" if value.len() == 24 => key = Some(value.to_string()),
            "sec-websocket-key" => return Err(Reject::BadRequest("bad Sec-WebSocket-Key")),
            "x-name" => name = Some(value.to_string()),
            _ => {}
        }
    }
    Err(Reject::HeadersTooLarge)
}

/// The `101` answer to `key`.
pub fn switching_protocols(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
}

/// `Sec-WebSocket-Accept`: base64 of the SHA-1 of the key and the protocol's GUID.
pub fn accept_key(key: &str) -> String {
    base64(&sha1(
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    ))
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0; 20];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn the_rfc_example_key_is_accepted_as_the_rfc_says() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}
