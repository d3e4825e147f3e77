//! [`UdpFramed`]: tokio-util's `UdpFramed`, a UDP socket as a stream and sink of frames with
//! their peers' addresses, one datagram per frame sent.

use std::borrow::Borrow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_util::sink::Sink;
use overlap_runtime::codec::{BytesMut, Decoder, Encoder};

use crate::UdpSocket;

/// The room one receive gets: the largest UDP payload (65,507 bytes over IPv4, 65,527 over
/// IPv6) fits.
const DATAGRAM_ROOM: usize = 64 * 1024;

/// A [`UdpSocket`] framed by a codec (tokio-util's `udp::UdpFramed`): a
/// [`Stream`] of `(frame, sender)` decoded from each datagram received, and a
/// [`Sink`] of `(item, destination)` sending each item encoded as one datagram.
///
/// - **Receiving**: each datagram is decoded on its own, with
///   [`decode_eof`](Decoder::decode_eof) until it gives no more frames, so one datagram may
///   carry several frames (all with its sender's address); bytes left over go with it.
///   A datagram that fails to decode yields that one error, and the stream goes on with
///   the next datagram (tokio's yields the same error again on every poll). The codec
///   itself keeps its state from one datagram to the next, as with tokio: one that failed
///   part-way (a `LengthDelimitedCodec` waiting for the rest of a body, a `LinesCodec`
///   discarding an over-long line up to its `\n`) carries that into the next datagram,
///   so a datagram protocol wants a codec that keeps none, or a fresh one put in through
///   [`codec_mut`](UdpFramed::codec_mut) after an error. A decode error carries no
///   address, as with tokio: [`last_sender`](UdpFramed::last_sender) names the datagram's
///   sender, to answer or blame it. An empty datagram yields what the codec's
///   `decode_eof` makes of an empty buffer: nothing, with overlap's codecs and
///   tokio-util's (every codec must answer `Ok(None)` there, since it is also asked after
///   each datagram's last frame), so it is skipped unseen, as with tokio; a protocol that
///   must count empty datagrams receives with [`UdpSocket::recv_from`]. An error from
///   the socket itself (a refused earlier send reported by a connected socket, say) is
///   yielded too, and the stream goes on. The stream never ends.
/// - **Sending**: each item is encoded alone and sent as one datagram when the sink is
///   flushed or the next item is readied. A send the kernel refuses (a destination of the
///   other address family, a datagram too large: `EMSGSIZE`) is reported once and that
///   datagram dropped, where tokio's tries it again on every flush.
///
/// `T` is the socket or anything that borrows one, so an `Rc<UdpSocket>` can serve a
/// receiving `UdpFramed` and a sending one in two tasks. Dropping it drops `T`; an item
/// readied but not flushed is not sent.
///
/// ```
/// use overlap::codec::LinesCodec;
/// use overlap::udp::UdpFramed;
/// use overlap::net::UdpSocket;
/// use overlap::sink::SinkExt;
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);
///     let mut a = UdpFramed::new(a, LinesCodec::new());
///     let mut b = UdpFramed::new(b, LinesCodec::new());
///     a.send(("ping".to_string(), b_addr)).await.unwrap();
///     let (line, from) = b.next().await.unwrap().unwrap();
///     assert_eq!((line.as_str(), from), ("ping", a_addr));
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct UdpFramed<C, T = UdpSocket> {
    socket: T,
    codec: C,
    /// The datagram being decoded.
    rd: BytesMut,
    /// Where each datagram is received: zeroed once, so receives need not zero it again.
    room: Vec<u8>,
    /// The sender of the datagram in `rd`, while frames may be left in it.
    decoding_from: Option<SocketAddr>,
    /// The sender of the datagram the last item came from (see `last_sender`).
    last_sender: Option<SocketAddr>,
    /// The encoded item waiting to be sent, and where to.
    wr: BytesMut,
    out_addr: Option<SocketAddr>,
}

impl<C, T> Unpin for UdpFramed<C, T> {}

impl<C, T: Borrow<UdpSocket>> UdpFramed<C, T> {
    /// Frames `socket` with `codec`.
    pub fn new(socket: T, codec: C) -> UdpFramed<C, T> {
        UdpFramed {
            socket,
            codec,
            rd: BytesMut::new(),
            room: Vec::new(),
            decoding_from: None,
            last_sender: None,
            wr: BytesMut::new(),
            out_addr: None,
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &T {
        &self.socket
    }

    /// The socket, mutably: receiving from or sending on it directly bypasses the framing.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.socket
    }

    /// The socket back; frames still undecoded in the last datagram, and an item readied
    /// but not flushed, are dropped.
    pub fn into_inner(self) -> T {
        self.socket
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// The codec, mutably.
    pub fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// The sender of the last datagram received, which the stream's last item came from,
    /// a frame or a decode error (which, as tokio-util's, carries no address): the peer to
    /// answer a malformed request, or the stranger to ignore. `None` before the first
    /// datagram, and after an error of the socket itself, which comes from no datagram.
    /// tokio-util's `UdpFramed` has no such method.
    ///
    /// ```
    /// use overlap::codec::LinesCodec;
    /// use overlap::net::UdpSocket;
    /// use overlap::stream::StreamExt;
    /// use overlap::udp::UdpFramed;
    ///
    /// overlap::block_on(async {
    ///     let peer = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let mut framed = UdpFramed::new(UdpSocket::bind("127.0.0.1:0").await?, LinesCodec::new());
    ///     assert_eq!(framed.last_sender(), None);
    ///     // Not UTF-8: a decode error, without the sender in it.
    ///     peer.send_to(b"\xff\n", framed.get_ref().local_addr()?).await?;
    ///     assert!(framed.next().await.unwrap().is_err());
    ///     assert_eq!(framed.last_sender(), Some(peer.local_addr()?));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn last_sender(&self) -> Option<SocketAddr> {
        self.last_sender
    }

    /// What is left of the datagram being decoded.
    pub fn read_buffer(&self) -> &BytesMut {
        &self.rd
    }

    /// What is left of the datagram being decoded, mutably.
    pub fn read_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.rd
    }
}

impl<C: Decoder, T: Borrow<UdpSocket>> Stream for UdpFramed<C, T> {
    type Item = Result<(C::Item, SocketAddr), C::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(from) = this.decoding_from {
                match this.codec.decode_eof(&mut this.rd) {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok((frame, from)))),
                    Ok(None) => {}
                    Err(e) => {
                        // This datagram is done with: the next poll receives the next one.
                        this.finish_datagram();
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                this.finish_datagram();
            }
            if this.room.len() < DATAGRAM_ROOM {
                this.room.resize(DATAGRAM_ROOM, 0);
            }
            let (n, from) = match ready!(this.socket.borrow().poll_recv_from(cx, &mut this.room)) {
                Ok(received) => received,
                Err(e) => {
                    this.last_sender = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            };
            this.rd.clear();
            this.rd.extend_from_slice(&this.room[..n]);
            this.decoding_from = Some(from);
            this.last_sender = Some(from);
        }
    }
}

impl<C, T> UdpFramed<C, T> {
    fn finish_datagram(&mut self) {
        self.decoding_from = None;
        self.rd.clear();
    }
}

impl<C, T: Borrow<UdpSocket>> UdpFramed<C, T> {
    /// Sends the encoded item waiting, if any. Sent or refused, it is done with.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(to) = self.out_addr else {
            return Poll::Ready(Ok(()));
        };
        let res = ready!(self.socket.borrow().poll_send_to(cx, &self.wr, to));
        let len = self.wr.len();
        self.wr.clear();
        self.out_addr = None;
        Poll::Ready(match res? {
            n if n == len => Ok(()),
            n => Err(io::Error::other(format!(
                "sent {n} of the datagram's {len} bytes to {to}"
            ))),
        })
    }
}

impl<I, C: Encoder<I>, T: Borrow<UdpSocket>> Sink<(I, SocketAddr)> for UdpFramed<C, T> {
    type Error = C::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.get_mut().poll_send_pending(cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, (item, to): (I, SocketAddr)) -> Result<(), C::Error> {
        let this = self.get_mut();
        // `poll_ready` sent the last one; an item readied without it replaces it.
        this.wr.clear();
        this.out_addr = None;
        this.codec.encode(item, &mut this.wr)?;
        this.out_addr = Some(to);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.get_mut().poll_send_pending(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.get_mut().poll_send_pending(cx).map_err(Into::into)
    }
}

impl<C: fmt::Debug, T: fmt::Debug> fmt::Debug for UdpFramed<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpFramed")
            .field("socket", &self.socket)
            .field("codec", &self.codec)
            .field("undecoded", &self.rd.len())
            .field("decoding_from", &self.decoding_from)
            .field("last_sender", &self.last_sender)
            .field("unsent", &self.wr.len())
            .field("out_addr", &self.out_addr)
            .finish()
    }
}
