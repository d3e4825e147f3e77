//! The DNS codec for `UdpFramed`: one message per datagram, decoded whole; a malformed one
//! is an error that keeps what a FORMERR answer needs (the id, and whether it was a query).

use std::fmt;
use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

use crate::wire::{self, Malformed, Message};

#[derive(Debug)]
pub enum CodecError {
    Io(io::Error),
    Malformed(Malformed),
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> CodecError {
        CodecError::Io(e)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Io(e) => e.fmt(f),
            CodecError::Malformed(m) => m.fmt(f),
        }
    }
}

/// Keeps no state between datagrams, so an error in one cannot spill into the next.
#[derive(Debug, Default)]
pub struct DnsCodec;

impl Decoder for DnsCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        if src.is_empty() {
            return Ok(None);
        }
        let datagram = src.split_to(src.len());
        wire::decode(&datagram)
            .map(Some)
            .map_err(CodecError::Malformed)
    }
}

/// Already encoded: the size limit depends on the query, so the server encodes.
impl Encoder<Vec<u8>> for DnsCodec {
    type Error = CodecError;

    fn encode(&mut self, bytes: Vec<u8>, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&bytes);
        Ok(())
    }
}
