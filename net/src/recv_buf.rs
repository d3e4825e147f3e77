//! `recv_buf`, `recv_buf_from` and their `try_` forms for the datagram sockets: tokio's
//! receives appended to a `BytesMut` or `Vec<u8>`, written once for `UdpSocket` and
//! `UnixDatagram`.

/// Writes `recv_buf`, `recv_buf_from`, `try_recv_buf` and `try_recv_buf_from` into a
/// datagram socket's `impl`, over its `recv`, `recv_from`, `try_recv` and `try_recv_from`: `$addr` is the sender's address type, `$max` the most room opened (and
/// `$max_doc` says why), and the attributes before `recv_buf_from` its example.
macro_rules! recv_buf_methods {
    ($addr:ty, $max:expr, $max_doc:literal, $(#[$example:meta])*) => {
        /// [`recv`](Self::recv) appending the datagram to a `BytesMut` or `Vec<u8>` (tokio's
        /// `recv_buf`): it is given the buffer's spare capacity (64 bytes made when it has
        #[doc = concat!("none; at most ", $max_doc, "), and a longer datagram is cut to it, as")]
        /// with `recv`, so reserve the largest datagram first. Returns its length as kept.
        ///
        /// Cancel-safe: dropped while it waits, it has taken no datagram and the buffer is
        /// as it was.
        pub async fn recv_buf<B: overlap_runtime::io::ReadBufTarget>(
            &self,
            buf: &mut B,
        ) -> std::io::Result<usize> {
            let received =
                overlap_runtime::io::receive_into(buf, $max, async |room: &mut [u8]| {
                    Ok((self.recv(room).await?, ()))
                });
            Ok(received.await?.0)
        }

        /// [`recv_from`](Self::recv_from) appending the datagram to a `BytesMut` or
        /// `Vec<u8>` (tokio's `recv_buf_from`), with the room of
        /// [`recv_buf`](Self::recv_buf).
        ///
        $(#[$example])*
        ///
        /// Cancel-safe: dropped while it waits, it has taken no datagram and the buffer is
        /// as it was.
        pub async fn recv_buf_from<B: overlap_runtime::io::ReadBufTarget>(
            &self,
            buf: &mut B,
        ) -> std::io::Result<(usize, $addr)> {
            overlap_runtime::io::receive_into(buf, $max, async |room: &mut [u8]| {
                self.recv_from(room).await
            })
            .await
        }

        /// [`try_recv`](Self::try_recv) appending the datagram to a `BytesMut` or `Vec<u8>`
        /// (tokio's `try_recv_buf`), with the room of [`recv_buf`](Self::recv_buf):
        /// `WouldBlock` when none is queued, the buffer then as it was. Pairs with
        /// [`readable`](Self::readable).
        pub fn try_recv_buf<B: overlap_runtime::io::ReadBufTarget>(
            &self,
            buf: &mut B,
        ) -> std::io::Result<usize> {
            let received = overlap_runtime::io::receive_into_now(buf, $max, |room: &mut [u8]| {
                Ok((self.try_recv(room)?, ()))
            });
            Ok(received?.0)
        }

        /// [`try_recv_from`](Self::try_recv_from) appending the datagram to a `BytesMut` or
        /// `Vec<u8>` (tokio's `try_recv_buf_from`), with the room of
        /// [`recv_buf`](Self::recv_buf): `WouldBlock` when none is queued, the buffer then
        /// as it was.
        pub fn try_recv_buf_from<B: overlap_runtime::io::ReadBufTarget>(
            &self,
            buf: &mut B,
        ) -> std::io::Result<(usize, $addr)> {
            overlap_runtime::io::receive_into_now(buf, $max, |room: &mut [u8]| {
                self.try_recv_from(room)
            })
        }
    };
}
