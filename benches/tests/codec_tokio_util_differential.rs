//! overlap's codecs against tokio-util's on the same random input (the benches crate has
//! both): `LinesCodec`, `AnyDelimiterCodec` and `LengthDelimitedCodec` (every builder
//! option, decoding and encoding) fed the same bytes in the same random pieces, and
//! `FramedRead`/`FramedWrite` over the same scripted reader and writer (data, `Pending`,
//! errors, end of file and more after it; partial writes, zero writes, errors), every
//! result compared: frames, errors (by kind), `None`s, `Pending`s and what is left in the
//! buffers. The ports in `tests/port_tokio_util_codec_*.rs` say what each found; this
//! found, against the code before them, a lone `\r` at end of file dropped by
//! `LinesCodec` and the kind of a length gone below its adjustment, both fixed.
//!
//! Error messages are not compared: overlap's frame-too-big error says the size and the
//! maximum, as documented. Nor is what a `FramedRead` of lines gives once `decode_eof` has
//! failed and its `None` has been given out: overlap's then decodes what is still buffered
//! where tokio-util's reads again and drops it (documented in `overlap::codec`).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use overlap::codec as ov;
use tokio_util::codec as tk;

use ov::{Decoder as _, Encoder as _};
use tk::{Decoder as _, Encoder as _};

/// A xorshift generator: the same seed, the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `input` in random pieces of 1 to 8 bytes.
fn chunks(rng: &mut Rng, input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let n = 1 + rng.below(8) as usize;
        let end = (i + n).min(input.len());
        out.push(input[i..end].to_vec());
        i = end;
    }
    out
}

fn io_ev(e: &std::io::Error) -> String {
    format!("ioerr({:?})", e.kind())
}

/// Runs a decoder over chunks: after each chunk, decode until None (or 20 tries), then at
/// the end decode_eof until None (or 5 tries). Records every result and the buffer.
macro_rules! drive {
    ($codec:expr, $buf:ty, $parts:expr, $fmt_ok:expr, $fmt_err:expr) => {{
        let mut codec = $codec;
        let mut buf = <$buf>::new();
        let mut ev: Vec<String> = Vec::new();
        for part in $parts {
            buf.extend_from_slice(part);
            for _ in 0..20 {
                match codec.decode(&mut buf) {
                    Ok(Some(f)) => ev.push(format!("F{}", $fmt_ok(f))),
                    Ok(None) => break,
                    Err(e) => ev.push(format!("E{}", $fmt_err(e))),
                }
            }
            ev.push(format!("|{:?}", &buf[..]));
        }
        for _ in 0..5 {
            match codec.decode_eof(&mut buf) {
                Ok(Some(f)) => ev.push(format!("EOF-F{}", $fmt_ok(f))),
                Ok(None) => {
                    ev.push("EOF-None".into());
                    break;
                }
                Err(e) => ev.push(format!("EOF-E{}", $fmt_err(e))),
            }
        }
        ev.push(format!("end{:?}", &buf[..]));
        ev
    }};
}

fn lines(rng: &mut Rng, trials: usize) -> usize {
    let alpha = b"ab\n\r,;\xff\xc3\x28";
    let mut bad = 0;
    for t in 0..trials {
        let len = rng.below(40) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alpha[rng.below(alpha.len() as u64) as usize])
            .collect();
        let parts = chunks(rng, &input);
        let max = if rng.below(3) == 0 {
            usize::MAX
        } else {
            rng.below(8) as usize
        };
        let a = drive!(
            ov::LinesCodec::new_with_max_length(max),
            ov::BytesMut,
            &parts,
            |f: String| format!("{f:?}"),
            |e: ov::LinesCodecError| match e {
                ov::LinesCodecError::MaxLineLengthExceeded => "max".to_string(),
                ov::LinesCodecError::Io(e) => io_ev(&e),
            }
        );
        let b = drive!(
            tk::LinesCodec::new_with_max_length(max),
            bytes::BytesMut,
            &parts,
            |f: String| format!("{f:?}"),
            |e: tk::LinesCodecError| match e {
                tk::LinesCodecError::MaxLineLengthExceeded => "max".to_string(),
                tk::LinesCodecError::Io(e) => io_ev(&e),
            }
        );
        if a != b {
            bad += 1;
            if bad <= 3 {
                println!("LINES #{t} max={max} parts={parts:?}\n ov={a:?}\n tk={b:?}");
            }
        }
        // Any delimiter.
        let a = drive!(
            ov::AnyDelimiterCodec::new_with_max_length(b",;".to_vec(), b"|".to_vec(), max),
            ov::BytesMut,
            &parts,
            |f: ov::BytesMut| format!("{:?}", &f[..]),
            |e: ov::AnyDelimiterCodecError| match e {
                ov::AnyDelimiterCodecError::MaxChunkLengthExceeded => "max".to_string(),
                ov::AnyDelimiterCodecError::Io(e) => io_ev(&e),
            }
        );
        let b = drive!(
            tk::AnyDelimiterCodec::new_with_max_length(b",;".to_vec(), b"|".to_vec(), max),
            bytes::BytesMut,
            &parts,
            |f: bytes::Bytes| format!("{:?}", &f[..]),
            |e: tk::AnyDelimiterCodecError| match e {
                tk::AnyDelimiterCodecError::MaxChunkLengthExceeded => "max".to_string(),
                tk::AnyDelimiterCodecError::Io(e) => io_ev(&e),
            }
        );
        if a != b {
            bad += 1;
            if bad <= 3 {
                println!("ANY #{t} max={max} parts={parts:?}\n ov={a:?}\n tk={b:?}");
            }
        }
    }
    bad
}

fn length_delimited(rng: &mut Rng, trials: usize) -> usize {
    let mut bad = 0;
    for t in 0..trials {
        let field = 1 + rng.below(4) as usize;
        let offset = rng.below(3) as usize;
        let adjust = rng.below(7) as isize - 3;
        let skip = if rng.below(2) == 0 {
            None
        } else {
            Some(rng.below(7) as usize)
        };
        let little = rng.below(2) == 0;
        let max = if rng.below(2) == 0 {
            8 << 20
        } else {
            rng.below(12) as usize
        };
        let mut ob = ov::LengthDelimitedCodec::builder();
        let mut tb = tk::LengthDelimitedCodec::builder();
        ob.length_field_length(field)
            .length_field_offset(offset)
            .length_adjustment(adjust)
            .max_frame_length(max);
        tb.length_field_length(field)
            .length_field_offset(offset)
            .length_adjustment(adjust)
            .max_frame_length(max);
        if let Some(s) = skip {
            ob.num_skip(s);
            tb.num_skip(s);
        }
        if little {
            ob.little_endian();
            tb.little_endian();
        }
        // Input: small numbers mostly, so lengths are small.
        let len = rng.below(40) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    rng.below(256) as u8
                } else {
                    rng.below(6) as u8
                }
            })
            .collect();
        let parts = chunks(rng, &input);
        let a = drive!(
            ob.new_codec(),
            ov::BytesMut,
            &parts,
            |f: ov::BytesMut| format!("{:?}", &f[..]),
            |e: std::io::Error| io_ev(&e)
        );
        let b = drive!(
            tb.new_codec(),
            bytes::BytesMut,
            &parts,
            |f: bytes::BytesMut| format!("{:?}", &f[..]),
            |e: std::io::Error| io_ev(&e)
        );
        if a != b {
            bad += 1;
            if bad <= 3 {
                println!("LD #{t} field={field} off={offset} adj={adjust} skip={skip:?} le={little} max={max} parts={parts:?}\n ov={a:?}\n tk={b:?}");
            }
        }
        // Encoding.
        let (mut oc, mut tc) = (ob.new_codec(), tb.new_codec());
        assert_eq!(oc.max_frame_length(), tc.max_frame_length(), "max clip");
        for _ in 0..3 {
            let n = rng.below(14) as usize;
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut od = ov::BytesMut::from(&b"pre"[..]);
            let mut td = bytes::BytesMut::from(&b"pre"[..]);
            let ra = oc.encode(&data[..], &mut od).map_err(|e| e.kind());
            let rb = tc.encode(&data[..], &mut td).map_err(|e| e.kind());
            if ra != rb || od[..] != td[..] {
                bad += 1;
                if bad <= 3 {
                    println!("LD-ENC #{t} field={field} adj={adjust} max={max} n={n}: ov={ra:?} {:?} tk={rb:?} {:?}", &od[..], &td[..]);
                }
            }
        }
    }
    bad
}

/// One step of a scripted reader or writer, played alike by both mocks.
#[derive(Clone, Debug)]
enum Step {
    Data(Vec<u8>),
    Pending,
    Fail(io::ErrorKind),
    Eof,
    /// Write: take this many bytes.
    Take(usize),
}

/// A reader and writer playing a script (tokio's `AsyncRead`/`AsyncWrite` for tokio-util,
/// futures-io's for overlap), keeping what was written. Pending is not woken: the tests
/// poll by hand.
struct Mock(VecDeque<Step>, Vec<u8>);

impl Mock {
    fn pop(&mut self) -> Option<Step> {
        self.0.pop_front()
    }
}

impl futures_util::io::AsyncRead for Mock {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.pop() {
            None | Some(Step::Eof) => Poll::Ready(Ok(0)),
            Some(Step::Pending) => Poll::Pending,
            Some(Step::Fail(k)) => Poll::Ready(Err(io::Error::new(k, "x"))),
            Some(Step::Data(d)) => {
                assert!(d.len() <= buf.len());
                buf[..d.len()].copy_from_slice(&d);
                Poll::Ready(Ok(d.len()))
            }
            Some(Step::Take(_)) => unreachable!(),
        }
    }
}

impl tokio::io::AsyncRead for Mock {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.pop() {
            None | Some(Step::Eof) => Poll::Ready(Ok(())),
            Some(Step::Pending) => Poll::Pending,
            Some(Step::Fail(k)) => Poll::Ready(Err(io::Error::new(k, "x"))),
            Some(Step::Data(d)) => {
                assert!(d.len() <= buf.remaining());
                buf.put_slice(&d);
                Poll::Ready(Ok(()))
            }
            Some(Step::Take(_)) => unreachable!(),
        }
    }
}

fn write_step(m: &mut Mock, buf: &[u8]) -> Poll<io::Result<usize>> {
    match m.pop() {
        None => Poll::Ready(Ok(buf.len().min(3))),
        Some(Step::Pending) => Poll::Pending,
        Some(Step::Fail(k)) => Poll::Ready(Err(io::Error::new(k, "x"))),
        Some(Step::Take(n)) => {
            let n = n.min(buf.len());
            m.1.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        Some(other) => panic!("{other:?}"),
    }
}

fn flush_step(m: &mut Mock) -> Poll<io::Result<()>> {
    match m.0.front() {
        Some(Step::Pending) => {
            m.pop();
            Poll::Pending
        }
        Some(Step::Fail(_)) => match m.pop() {
            Some(Step::Fail(k)) => Poll::Ready(Err(io::Error::new(k, "f"))),
            _ => unreachable!(),
        },
        _ => Poll::Ready(Ok(())),
    }
}

impl futures_util::io::AsyncWrite for Mock {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        write_step(self.get_mut(), buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        flush_step(self.get_mut())
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        flush_step(self.get_mut())
    }
}

impl tokio::io::AsyncWrite for Mock {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        write_step(self.get_mut(), buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        flush_step(self.get_mut())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        flush_step(self.get_mut())
    }
}

fn script(rng: &mut Rng) -> Vec<Step> {
    let alpha = b"ab\n\r\x00\x02";
    let n = rng.below(14);
    (0..n)
        .map(|_| match rng.below(10) {
            0 => Step::Pending,
            1 => Step::Fail(io::ErrorKind::Other),
            2 => Step::Eof,
            _ => Step::Data(
                (0..1 + rng.below(6))
                    .map(|_| alpha[rng.below(6) as usize])
                    .collect(),
            ),
        })
        .collect()
}

fn poll_stream<S: futures_util::Stream + Unpin>(s: &mut S) -> Poll<Option<S::Item>> {
    Pin::new(s).poll_next(&mut Context::from_waker(Waker::noop()))
}

/// A decoder that notes when `decode_eof` fails. After such an error (and the `None` that
/// follows it), overlap's `FramedRead` decodes on what is buffered where tokio-util's reads
/// again and drops it (documented in `overlap::codec`): the polls are compared up to there.
struct Tap<D> {
    inner: D,
    eof_failed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<D: ov::Decoder> ov::Decoder for Tap<D> {
    type Item = D::Item;
    type Error = D::Error;
    fn decode(&mut self, src: &mut ov::BytesMut) -> Result<Option<D::Item>, D::Error> {
        self.inner.decode(src)
    }
    fn decode_eof(&mut self, src: &mut ov::BytesMut) -> Result<Option<D::Item>, D::Error> {
        let out = self.inner.decode_eof(src);
        self.eof_failed.set(self.eof_failed.get() || out.is_err());
        out
    }
}

impl<D: tk::Decoder> tk::Decoder for Tap<D> {
    type Item = D::Item;
    type Error = D::Error;
    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<D::Item>, D::Error> {
        self.inner.decode(src)
    }
    fn decode_eof(&mut self, src: &mut bytes::BytesMut) -> Result<Option<D::Item>, D::Error> {
        let out = self.inner.decode_eof(src);
        self.eof_failed.set(self.eof_failed.get() || out.is_err());
        out
    }
}

/// `inner` in a [`Tap`], and the flag it sets.
fn tap<D>(inner: D) -> (Tap<D>, std::rc::Rc<std::cell::Cell<bool>>) {
    let eof_failed = std::rc::Rc::new(std::cell::Cell::new(false));
    let tap = Tap {
        inner,
        eof_failed: eof_failed.clone(),
    };
    (tap, eof_failed)
}

macro_rules! run_read {
    ($framed:expr, $fmt:expr) => {
        run_read!($framed, std::cell::Cell::new(false), $fmt)
    };
    ($framed:expr, $eof_failed:expr, $fmt:expr) => {{
        let mut f = $framed;
        let mut ev = Vec::new();
        let mut cut = false;
        for _ in 0..30 {
            ev.push(match poll_stream(&mut f) {
                Poll::Pending => "P".to_string(),
                Poll::Ready(None) => "N".to_string(),
                Poll::Ready(Some(Ok(x))) => format!("F{}", $fmt(x)),
                Poll::Ready(Some(Err(e))) => format!("E{e}"),
            });
            if $eof_failed.get() {
                // The error, then the `None` after it; the rest differs by design.
                ev.push(match poll_stream(&mut f) {
                    Poll::Ready(None) => "N".to_string(),
                    _ => "not None after the error".to_string(),
                });
                ev.push("then decodes on (overlap) or reads on (tokio-util)".to_string());
                cut = true;
                break;
            }
        }
        if !cut {
            ev.push(format!("buf{:?}", &f.read_buffer()[..]));
        }
        ev
    }};
}

fn reads(rng: &mut Rng, trials: usize) -> usize {
    let mut bad = 0;
    for t in 0..trials {
        let s = script(rng);
        let max = 1 + rng.below(5) as usize;
        let (ov_lines, ov_eof_failed) = tap(ov::LinesCodec::new_with_max_length(max));
        let a = run_read!(
            ov::FramedRead::new(Mock(s.clone().into(), vec![]), ov_lines),
            ov_eof_failed,
            |x: String| format!("{x:?}")
        );
        let (tk_lines, tk_eof_failed) = tap(tk::LinesCodec::new_with_max_length(max));
        let b = run_read!(
            tk::FramedRead::new(Mock(s.clone().into(), vec![]), tk_lines),
            tk_eof_failed,
            |x: String| format!("{x:?}")
        );
        if a != b {
            bad += 1;
            if bad <= 3 {
                println!("READ-LINES #{t} max={max} {s:?}\n ov={a:?}\n tk={b:?}");
            }
        }
        let mut ob = ov::LengthDelimitedCodec::builder();
        ob.length_field_length(1);
        let mut tb = tk::LengthDelimitedCodec::builder();
        tb.length_field_length(1);
        let a = run_read!(
            ob.new_read(Mock(s.clone().into(), vec![])),
            |x: ov::BytesMut| format!("{:?}", &x[..])
        );
        let b = run_read!(
            tb.new_read(Mock(s.clone().into(), vec![])),
            |x: bytes::BytesMut| format!("{:?}", &x[..])
        );
        if a != b {
            bad += 1;
            if bad <= 3 {
                println!("READ-LD #{t} {s:?}\n ov={a:?}\n tk={b:?}");
            }
        }
    }
    bad
}

fn writes(rng: &mut Rng, trials: usize) -> usize {
    use futures_util::sink::Sink;
    let mut bad = 0;
    for t in 0..trials {
        let steps: Vec<Step> = (0..rng.below(12))
            .map(|_| match rng.below(6) {
                0 => Step::Pending,
                1 => Step::Fail(io::ErrorKind::BrokenPipe),
                2 => Step::Take(0),
                _ => Step::Take(1 + rng.below(5) as usize),
            })
            .collect();
        let boundary = rng.below(10) as usize;
        let ops: Vec<u64> = (0..10).map(|_| rng.below(4)).collect();
        let mut a = ov::FramedWrite::new(Mock(steps.clone().into(), vec![]), ov::LinesCodec::new());
        let mut b = tk::FramedWrite::new(Mock(steps.clone().into(), vec![]), tk::LinesCodec::new());
        a.set_backpressure_boundary(boundary);
        b.set_backpressure_boundary(boundary);
        let mut ea = Vec::new();
        let mut eb = Vec::new();
        let cx = &mut Context::from_waker(Waker::noop());
        for (i, op) in ops.iter().enumerate() {
            let item = format!("i{i}");
            let fa = |p: Poll<Result<(), ov::LinesCodecError>>| {
                format!("{:?}", p.map(|r| r.map_err(|e| e.to_string())))
            };
            let fb = |p: Poll<Result<(), tk::LinesCodecError>>| {
                format!("{:?}", p.map(|r| r.map_err(|e| e.to_string())))
            };
            match op {
                0 => {
                    ea.push(fa(Sink::<String>::poll_ready(Pin::new(&mut a), cx)));
                    eb.push(fb(Sink::<String>::poll_ready(Pin::new(&mut b), cx)));
                }
                1 => {
                    ea.push(format!(
                        "{:?}",
                        Pin::new(&mut a).start_send(item.clone()).is_ok()
                    ));
                    eb.push(format!("{:?}", Pin::new(&mut b).start_send(item).is_ok()));
                }
                2 => {
                    ea.push(fa(Sink::<String>::poll_flush(Pin::new(&mut a), cx)));
                    eb.push(fb(Sink::<String>::poll_flush(Pin::new(&mut b), cx)));
                }
                _ => {
                    ea.push(fa(Sink::<String>::poll_close(Pin::new(&mut a), cx)));
                    eb.push(fb(Sink::<String>::poll_close(Pin::new(&mut b), cx)));
                }
            }
            ea.push(format!("{:?}/{:?}", &a.write_buffer()[..], a.get_ref().1));
            eb.push(format!("{:?}/{:?}", &b.write_buffer()[..], b.get_ref().1));
        }
        if ea != eb {
            bad += 1;
            if bad <= 3 {
                println!("WRITE #{t} boundary={boundary} steps={steps:?} ops={ops:?}\n ov={ea:?}\n tk={eb:?}");
            }
        }
    }
    bad
}

const SEEDS: [u64; 3] = [0x9e37_79b9_7f4a_7c15, 1, 12345];
const TRIALS: usize = 3000;

fn each_seed(check: fn(&mut Rng, usize) -> usize) {
    for seed in SEEDS {
        let mismatches = check(&mut Rng(seed), TRIALS);
        assert_eq!(
            mismatches, 0,
            "seed {seed}: {mismatches} inputs decoded differently"
        );
    }
}

#[test]
fn lines_and_any_delimiter_decode_as_tokio_util() {
    each_seed(lines);
}

#[test]
fn length_delimited_decodes_and_encodes_as_tokio_util() {
    each_seed(length_delimited);
}

#[test]
fn framed_read_polls_as_tokio_util() {
    each_seed(reads);
}

#[test]
fn framed_write_polls_as_tokio_util() {
    each_seed(writes);
}
