//! `AsyncReadIntExt`/`AsyncWriteIntExt`: every width and byte order, byte for byte as
//! `to_be_bytes`/`to_le_bytes`, over loopback TCP and real pipes; values split across
//! reads; a stream ending mid-value; a writer whose peer is gone.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{
    AllowStdIo, AsyncRead, AsyncReadExt, AsyncReadIntExt, AsyncWrite, AsyncWriteExt,
    AsyncWriteIntExt, ErrorKind,
};
use support::{tcp_pair, within};

const LIMIT: Duration = Duration::from_secs(20);

/// One value per method pair; each of its bytes differs from its mirror, so a wrong byte
/// order shows. Writes them all, reads them all, and gives the bytes `to_*_bytes` makes.
macro_rules! every_kind {
    ($($write:ident / $read:ident: $ty:ty = $value:expr, $bytes:ident;)*) => {
        async fn write_every_kind<W: AsyncWrite + Unpin>(w: &mut W) -> io::Result<()> {
            $(w.$write($value).await?;)*
            Ok(())
        }

        /// Compares bit patterns, so a NaN matches itself.
        async fn read_every_kind<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<()> {
            $(
                let got: $ty = r.$read().await?;
                let want: $ty = $value;
                assert_eq!(got.to_ne_bytes(), want.to_ne_bytes(), stringify!($read));
            )*
            Ok(())
        }

        fn every_kind_bytes() -> Vec<u8> {
            let mut out = Vec::new();
            $(out.extend_from_slice(&{ let v: $ty = $value; v }.$bytes());)*
            out
        }
    };
}

every_kind! {
    write_u8 / read_u8: u8 = 0xA1, to_be_bytes;
    write_i8 / read_i8: i8 = -0x5F, to_be_bytes;
    write_u16 / read_u16: u16 = 0x0102, to_be_bytes;
    write_u16_le / read_u16_le: u16 = 0x0304, to_le_bytes;
    write_i16 / read_i16: i16 = -0x1234, to_be_bytes;
    write_i16_le / read_i16_le: i16 = -0x1235, to_le_bytes;
    write_u32 / read_u32: u32 = 0x0102_0304, to_be_bytes;
    write_u32_le / read_u32_le: u32 = 0x0506_0708, to_le_bytes;
    write_i32 / read_i32: i32 = -0x1234_5678, to_be_bytes;
    write_i32_le / read_i32_le: i32 = i32::MIN + 0x0102, to_le_bytes;
    write_u64 / read_u64: u64 = 0x0102_0304_0506_0708, to_be_bytes;
    write_u64_le / read_u64_le: u64 = u64::MAX - 0x0102, to_le_bytes;
    write_i64 / read_i64: i64 = -0x0102_0304_0506_0708, to_be_bytes;
    write_i64_le / read_i64_le: i64 = i64::MIN + 0x0A0B, to_le_bytes;
    write_u128 / read_u128: u128 = 0x0102_0304_0506_0708_090A_0B0C_0D0E_0F10, to_be_bytes;
    write_u128_le / read_u128_le: u128 = u128::MAX / 3, to_le_bytes;
    write_i128 / read_i128: i128 = -0x0102_0304_0506_0708_090A_0B0C_0D0E_0F10, to_be_bytes;
    write_i128_le / read_i128_le: i128 = i128::MIN + 7, to_le_bytes;
    write_f32 / read_f32: f32 = -1.5, to_be_bytes;
    write_f32_le / read_f32_le: f32 = f32::from_bits(0x7FC0_1234), to_le_bytes;
    write_f64 / read_f64: f64 = std::f64::consts::PI, to_be_bytes;
    write_f64_le / read_f64_le: f64 = f64::from_bits(0xFFF8_0000_0000_5678), to_le_bytes;
}

#[overlap::test]
async fn writes_put_exactly_the_to_bytes_form_on_the_wire() {
    let (mut a, mut b) = tcp_pair().await;
    write_every_kind(&mut a).await.unwrap();
    a.close().await.unwrap();
    let mut wire = Vec::new();
    within(LIMIT, b.read_to_end(&mut wire), "reading the wire")
        .await
        .unwrap();
    let want = every_kind_bytes();
    assert_eq!(
        want.len(),
        2 + 4 * 2 + 4 * 4 + 4 * 8 + 2 * 16 + 2 * 4 + 2 * 8 + 2 * 16
    );
    assert_eq!(wire, want);
}

#[overlap::test]
async fn every_kind_round_trips_over_tcp() {
    let (mut a, mut b) = tcp_pair().await;
    let writer = overlap::spawn(async move {
        write_every_kind(&mut a).await.unwrap();
        a.write_u32(0xDEAD_BEEF).await.unwrap();
    });
    within(LIMIT, read_every_kind(&mut b), "reading every kind")
        .await
        .unwrap();
    assert_eq!(b.read_u32().await.unwrap(), 0xDEAD_BEEF);
    writer.await.unwrap();
}

/// Counts the reads that brought bytes.
struct CountReads<R> {
    inner: R,
    reads: usize,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountReads<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let got = Pin::new(&mut self.inner).poll_read(cx, out);
        if matches!(got, Poll::Ready(Ok(n)) if n > 0) {
            self.reads += 1;
        }
        got
    }
}

#[overlap::test]
async fn values_written_a_byte_at_a_time_through_a_pipe_are_assembled() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    let bytes = every_kind_bytes();
    let len = bytes.len();
    let writer = overlap::spawn(async move {
        for byte in bytes {
            tx.write_all(&[byte]).await.unwrap();
            tx.flush().await.unwrap();
            overlap::yield_now().await;
        }
    });
    let mut rx = CountReads {
        inner: rx,
        reads: 0,
    };
    within(LIMIT, read_every_kind(&mut rx), "reading byte by byte")
        .await
        .unwrap();
    writer.await.unwrap();
    // Most values came in more than one read; the reader put each together.
    assert!(rx.reads > 22, "{} reads for {len} bytes", rx.reads);
    let mut rest = Vec::new();
    rx.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[overlap::test]
async fn a_stream_ending_mid_value_is_unexpected_eof() {
    for sent in [0usize, 1, 3, 7, 15] {
        let (mut a, mut b) = tcp_pair().await;
        a.write_all(&[0xAB; 15][..sent]).await.unwrap();
        a.close().await.unwrap();
        let err = match sent {
            0 => b.read_u8().await.unwrap_err(),
            1 => b.read_u16().await.unwrap_err(),
            3 => b.read_i32_le().await.unwrap_err(),
            7 => b.read_f64().await.unwrap_err(),
            _ => b.read_u128_le().await.unwrap_err(),
        };
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "after {sent} bytes");
        assert!(
            err.to_string().contains(&format!("after {sent} of")),
            "{err}"
        );
    }
    let (tx, mut rx) = overlap::pipe::pipe().unwrap();
    drop(tx);
    let err = rx.read_i64().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[overlap::test]
async fn writing_to_a_pipe_whose_reader_is_gone_is_broken_pipe() {
    let (mut tx, rx) = overlap::pipe::pipe().unwrap();
    drop(rx);
    let err = tx.write_u32(7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let err = tx.write_u8(7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
}

#[overlap::test]
async fn writing_to_a_closed_tcp_peer_fails_without_panicking() {
    let (mut a, b) = tcp_pair().await;
    drop(b);
    let err = within(
        LIMIT,
        async {
            // The first writes may go out before the peer's reset comes back.
            loop {
                if let Err(e) = a.write_u64_le(u64::MAX).await {
                    break e;
                }
                overlap::yield_now().await;
            }
        },
        "a write failing",
    )
    .await;
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
}

#[overlap::test]
async fn a_read_dropped_mid_value_loses_the_bytes_it_took() {
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    tx.write_all(&[1, 2]).await.unwrap();
    rx.readable().await.unwrap(); // so the one poll below reads the two bytes
    assert!(
        rx.read_u32().now_or_never().is_none(),
        "half a u32 is not a u32"
    );
    tx.write_all(&[3, 4]).await.unwrap();
    assert_eq!(rx.read_u16().await.unwrap(), 0x0304);
}

#[overlap::test]
async fn a_writer_that_fills_up_mid_value_is_write_zero() {
    let mut room = [0u8; 6];
    let mut w = overlap::io::Cursor::new(&mut room[..]);
    w.write_u32_le(0x0102_0304).await.unwrap();
    let err = w.write_i32(-2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriteZero);
    assert_eq!(room, [4, 3, 2, 1, 0xFF, 0xFF]);
}

/// Claims to have read one byte more than it had room for.
struct Overclaiming;

impl io::Read for Overclaiming {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        out.fill(1);
        Ok(out.len() + 1)
    }
}

#[overlap::test]
async fn a_reader_claiming_more_than_its_room_is_invalid_data() {
    let err = AllowStdIo::new(Overclaiming).read_u64().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
}
