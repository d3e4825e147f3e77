//! The wire format, both ways: a kind byte, a big-endian `u32` (a sequence number, a session
//! id, or 0), then the payload. A datagram is at most [`MAX_DATAGRAM`] bytes.

/// The longest datagram either side sends; the dispatcher reads into one byte more, so a
/// longer one shows as such (`recv_from` truncates silently).
pub const MAX_DATAGRAM: usize = 512;

/// Client to server: open a session (payload: anything, ignored). Answered with `WELCOME`.
pub const HELLO: u8 = 1;
/// Server to client: the session is open; the number is its id.
pub const WELCOME: u8 = 2;
/// Reliable data, both ways; the number is the sender's sequence number (from 1).
pub const DATA: u8 = 3;
/// Acknowledges the `DATA` whose sequence number it carries.
pub const ACK: u8 = 4;
/// Client to server: pair this session with the session whose id it carries. Data from
/// either is then relayed to the other instead of echoed.
pub const PAIR: u8 = 5;
/// Server to client: paired with the session whose id it carries.
pub const PAIRED: u8 = 6;
/// Client to server: keep-alive (answered with `PONG`, carrying the same number).
pub const PING: u8 = 7;
/// Server to client: the answer to a `PING`.
pub const PONG: u8 = 8;
/// Both ways: the session ends. The server answers one with one (from a peer it knows no
/// more too: the first answer may have been lost), and sends one when it shuts down.
pub const BYE: u8 = 9;

/// Encodes one datagram.
pub fn encode(kind: u8, num: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&num.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes one datagram: `None` if it is shorter than a header.
pub fn decode(d: &[u8]) -> Option<(u8, u32, &[u8])> {
    let num = u32::from_be_bytes(d.get(1..5)?.try_into().ok()?);
    Some((d[0], num, &d[5..]))
}
