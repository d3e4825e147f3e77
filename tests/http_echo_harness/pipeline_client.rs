//! A client that sends a pipeline in pieces, each its own write followed by a few yields (so
//! the server reads them apart), while it reads the answers and checks them against the
//! model as they come (`pipeline_model.rs` and `pipeline_answers.rs`, declared under those
//! names at the crate root).

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

use crate::pipeline_answers::Checker;
use crate::pipeline_model::{shown, Due};
use crate::support::Rng;

/// How the client ends once its pipeline is sent.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// It shuts down its write side at once: every answer must still come, then the close.
    HalfClose,
    /// It waits for every answer, then sends [`PROBE`] on the same connection: the server
    /// must have kept it open after the last answer that did not say `close`.
    Probe,
}

/// A request asking to close, sent after a pipeline that kept the connection open.
pub const PROBE: &[u8] = b"GET /probe HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n";

/// What [`PROBE`] is due: its head back, and the close.
pub fn probe_due() -> Due {
    let echo = PROBE[..PROBE.len() - 2].to_vec();
    Due::Echo {
        head_only: false,
        length: echo.len(),
        body: echo,
        content_type: b"text/plain; charset=utf-8".to_vec(),
        connection: Some("close"),
        may_continue: false,
    }
}

/// `wire` cut at `cuts` (sorted, inside it), each piece with 0 to 3 yields after its write.
pub fn pieces(rng: &mut Rng, wire: &[u8], cuts: &[usize]) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([&wire.len()]) {
        out.push((wire[at..cut].to_vec(), rng.below(4)));
        at = cut;
    }
    out
}

/// Sends `pieces` on `stream` while reading the answers `read_size` bytes at a time and
/// checking them against `dues`, then ends as `end` says. What went wrong, if anything.
pub async fn exchange(
    mut stream: TcpStream,
    pieces: &[(Vec<u8>, usize)],
    dues: Vec<Due>,
    end: End,
    read_size: usize,
) -> Result<(), String> {
    let mut checker = Checker::new(dues);
    // A server that closed after an answer saying so may reset what is sent after it.
    let closes = checker.ends_closed();
    let probe = matches!(end, End::Probe) && !closes;
    {
        let (mut rd, mut wr) = TcpStream::split(&mut stream);
        let write = async {
            for (piece, yields) in pieces {
                if let Err(e) = wr.write_all(piece).await {
                    return if closes {
                        Ok(())
                    } else {
                        Err(format!("write: {e}"))
                    };
                }
                for _ in 0..*yields {
                    overlap::yield_now().await;
                }
            }
            if !probe {
                if let Err(e) = wr.close().await {
                    return if closes {
                        Ok(())
                    } else {
                        Err(format!("half-close: {e}"))
                    };
                }
            }
            Ok(())
        };
        let checker = &mut checker;
        let read = async {
            let mut buf = vec![0u8; read_size];
            while !(probe && checker.done()) {
                match rd.read(&mut buf).await {
                    Ok(0) => return checker.eof(),
                    Ok(n) => checker.feed(&buf[..n])?,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            Ok(())
        };
        overlap::try_join!(write, read)?;
    }
    if probe {
        checker.expect(probe_due());
        stream
            .write_all(PROBE)
            .await
            .map_err(|e| format!("probe: {e}"))?;
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .await
            .map_err(|e| format!("after the probe: {e}, {}", shown(&rest)))?;
        checker.feed(&rest)?;
        checker.eof()?;
    }
    Ok(())
}
