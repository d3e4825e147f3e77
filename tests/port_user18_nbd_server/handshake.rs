//! The "newstyle fixed" handshake, server side: the greeting, the client's flags, then
//! options until one picks an export (NBD_OPT_EXPORT_NAME, or NBD_OPT_GO after any number
//! of NBD_OPT_LIST and NBD_OPT_INFO) or the client gives up (NBD_OPT_ABORT). Unknown
//! options get NBD_REP_ERR_UNSUP and the handshake goes on; an error reply's data is a
//! message saying what was wrong. Reads are exact (no buffering), so nothing the client
//! sends after its last option is taken from the transmission phase.

use std::io;

use overlap::fs::{OpenOptions, PositionalFile};
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::proto::*;
use super::server::{End, Export, Shared};

/// The export a client picked, its file open and its size taken.
pub struct Chosen {
    pub export: Export,
    pub file: PositionalFile,
    pub size: u64,
}

/// The transmission flags of an export.
pub fn transmission_flags(export: &Export) -> u16 {
    let mut flags = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_CAN_MULTI_CONN;
    if export.read_only {
        flags |= TF_READ_ONLY;
    } else {
        // fallocate(PUNCH_HOLE) for both; writing zeros where the file system has no holes.
        flags |= TF_SEND_TRIM | TF_SEND_WRITE_ZEROES;
    }
    flags
}

fn eof_as_end(e: io::Error) -> End {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => End::HandshakeEof,
        _ => End::Io(e.to_string()),
    }
}

pub async fn negotiate<S>(s: &mut S, shared: &Shared) -> Result<Chosen, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut greeting = Vec::with_capacity(18);
    greeting.extend_from_slice(&NBDMAGIC.to_be_bytes());
    greeting.extend_from_slice(&IHAVEOPT.to_be_bytes());
    greeting.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    s.write_all(&greeting).await.map_err(eof_as_end)?;
    let mut word = [0u8; 4];
    s.read_exact(&mut word).await.map_err(eof_as_end)?;
    let client_flags = u32::from_be_bytes(word);
    if client_flags & !(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES) != 0 {
        return Err(End::BadClientFlags(client_flags));
    }
    let no_zeroes = client_flags & FLAG_C_NO_ZEROES != 0;
    loop {
        let mut head = [0u8; OPTION_HEADER_LEN];
        s.read_exact(&mut head).await.map_err(eof_as_end)?;
        let (magic, opt, len) = parse_option(&head);
        if magic != IHAVEOPT {
            return Err(End::BadOptionMagic(magic));
        }
        if len > shared.cfg.max_option {
            return Err(End::OptionTooLong(len));
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data).await.map_err(eof_as_end)?;
        let reply = |ty: u32, data: &[u8]| encode_option_reply(opt, ty, data);
        let out: Vec<u8> = match opt {
            OPT_EXPORT_NAME => {
                let name = String::from_utf8_lossy(&data).into_owned();
                let Some(export) = shared.export(&name) else {
                    return Err(End::UnknownExport(name));
                };
                // No way to report a failed open here but closing.
                let (file, size) = open(&export).await.map_err(|e| End::Io(e.to_string()))?;
                let mut out = size.to_be_bytes().to_vec();
                out.extend_from_slice(&transmission_flags(&export).to_be_bytes());
                if !no_zeroes {
                    out.extend_from_slice(&[0; 124]);
                }
                s.write_all(&out).await.map_err(eof_as_end)?;
                return Ok(Chosen { export, file, size });
            }
            OPT_GO | OPT_INFO => match parse_go(&data) {
                Err(msg) => reply(REP_ERR_INVALID, msg.as_bytes()),
                Ok((name, infos)) => match shared.export(&name) {
                    None => reply(REP_ERR_UNKNOWN, format!("no export {name:?}").as_bytes()),
                    Some(export) => match open(&export).await {
                        Err(e) => reply(REP_ERR_PLATFORM, e.to_string().as_bytes()),
                        Ok((file, size)) => {
                            let mut out = info_replies(opt, &export, size, &infos, shared);
                            out.extend(reply(REP_ACK, &[]));
                            s.write_all(&out).await.map_err(eof_as_end)?;
                            if opt == OPT_GO {
                                return Ok(Chosen { export, file, size });
                            }
                            continue;
                        }
                    },
                },
            },
            OPT_LIST if !data.is_empty() => reply(REP_ERR_INVALID, b"LIST takes no data"),
            OPT_LIST => {
                let mut out = Vec::new();
                for e in shared.exports.borrow().iter() {
                    let mut d = (e.name.len() as u32).to_be_bytes().to_vec();
                    d.extend_from_slice(e.name.as_bytes());
                    out.extend(reply(REP_SERVER, &d));
                }
                out.extend(reply(REP_ACK, &[]));
                out
            }
            OPT_ABORT => {
                // The client may close without reading it.
                let _ = s.write_all(&reply(REP_ACK, &[])).await;
                return Err(End::Aborted);
            }
            _ => reply(
                REP_ERR_UNSUP,
                format!("option {opt} unsupported").as_bytes(),
            ),
        };
        s.write_all(&out).await.map_err(eof_as_end)?;
    }
}

/// The export's file, opened as it is exported, and its size.
async fn open(export: &Export) -> io::Result<(PositionalFile, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(!export.read_only)
        .open_positional(&export.path)
        .await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::other(format!("{} is not a file", export.name)));
    }
    Ok((file, meta.len()))
}

/// NBD_REP_INFO replies: always the size and flags, the name and block sizes when asked.
fn info_replies(opt: u32, export: &Export, size: u64, asked: &[u16], shared: &Shared) -> Vec<u8> {
    let mut d = INFO_EXPORT.to_be_bytes().to_vec();
    d.extend_from_slice(&size.to_be_bytes());
    d.extend_from_slice(&transmission_flags(export).to_be_bytes());
    let mut out = encode_option_reply(opt, REP_INFO, &d);
    if asked.contains(&INFO_NAME) {
        let mut d = INFO_NAME.to_be_bytes().to_vec();
        d.extend_from_slice(export.name.as_bytes());
        out.extend(encode_option_reply(opt, REP_INFO, &d));
    }
    if asked.contains(&INFO_BLOCK_SIZE) {
        let mut d = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
        for v in [1, 4096, shared.cfg.max_payload] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        out.extend(encode_option_reply(opt, REP_INFO, &d));
    }
    out
}
