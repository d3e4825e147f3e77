//! Many datagrams per syscall: `UdpSocket::recv_batch` (`recvmmsg`) and
//! `UdpSocket::send_batch` (`sendmmsg`).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::io::{poll_read_with, poll_write_with};
use crate::sys::{RecvMeta, SockAddr, MAX_BATCH};
use crate::UdpSocket;
use overlap_runtime::own_waits;

/// Buffers for up to `capacity` received datagrams of up to `max_len` bytes each, filled by
/// [`UdpSocket::recv_batch`] and reused from one call to the next.
///
/// ```
/// use overlap::net::{RecvBatch, UdpSocket};
///
/// overlap::block_on(async {
///     let server = UdpSocket::bind("127.0.0.1:0").await?;
///     let client = UdpSocket::bind("127.0.0.1:0").await?;
///     let to = server.local_addr()?;
///     let sent = client.send_batch(&[(&b"one"[..], to), (&b"two"[..], to)]).await?;
///     assert_eq!(sent, 2);
///
///     let mut batch = RecvBatch::new(16, 1500);
///     let mut got = Vec::new();
///     while got.len() < 2 {
///         server.recv_batch(&mut batch).await?;
///         got.extend(batch.iter().map(|d| d.data.to_vec()));
///     }
///     assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct RecvBatch {
    data: Vec<u8>,
    max_len: usize,
    meta: Vec<RecvMeta>,
    from: Vec<SocketAddr>,
    filled: usize,
}

/// One datagram in a [`RecvBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Its bytes (at most the batch's `max_len`).
    pub data: &'a [u8],
    /// Who sent it.
    pub from: SocketAddr,
    /// It was longer than `max_len`; the rest was dropped by the kernel.
    pub truncated: bool,
}

impl RecvBatch {
    /// Room for `capacity` datagrams (at least 1, at most 32: one `recvmmsg`'s worth) of up
    /// to `max_len` bytes each (at least 1, at most 65,535; 65,507 holds any IPv4 UDP
    /// datagram, 1,500 what fits an Ethernet frame).
    pub fn new(capacity: usize, max_len: usize) -> RecvBatch {
        // Clamped: more datagrams than one call takes would be memory never used, and no UDP
        // datagram is longer; so the buffer's size cannot overflow either.
        let (capacity, max_len) = (capacity.clamp(1, MAX_BATCH), max_len.clamp(1, 65_535));
        RecvBatch {
            data: vec![0; capacity * max_len],
            max_len,
            meta: vec![RecvMeta::empty(); capacity],
            from: Vec::with_capacity(capacity),
            filled: 0,
        }
    }

    /// How many datagrams one call can receive: the capacity (at most 32, one `recvmmsg`'s
    /// worth).
    pub fn per_call(&self) -> usize {
        self.meta.len()
    }

    /// The datagrams from the last [`UdpSocket::recv_batch`].
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last receive brought nothing (or none happened yet).
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The `i`th datagram of the last receive.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.filled {
            return None;
        }
        let m = &self.meta[i];
        let start = i * self.max_len;
        Some(Datagram {
            data: &self.data[start..start + m.len.min(self.max_len)],
            from: self.from[i],
            truncated: m.truncated,
        })
    }

    /// The datagrams of the last receive, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> + '_ {
        (0..self.filled).filter_map(|i| self.get(i))
    }
}

impl fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.meta.len())
            .field("max_len", &self.max_len)
            .field("len", &self.filled)
            .finish()
    }
}

impl UdpSocket {
    /// Waits for datagrams and receives as many as are queued, up to
    /// [`batch.per_call()`](RecvBatch::per_call), with one `recvmmsg`. Returns how many
    /// (at least one); they are then in `batch`, replacing the previous ones.
    ///
    /// Under load this costs one syscall for up to 32 datagrams where
    /// [`recv_from`](UdpSocket::recv_from) costs one each. When fewer arrive than there was
    /// room for, the queue was empty: the next call waits for the next readiness edge
    /// instead of paying for an `EAGAIN`.
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram from the queue (the
    /// `batch` is then empty: a call clears the previous datagrams when it starts).
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.filled = 0;
        batch.from.clear();
        let room = batch.per_call();
        let RecvBatch {
            data,
            max_len,
            meta,
            ..
        } = batch;
        let got = own_waits(|cx| {
            poll_read_with(
                &self.io,
                cx,
                |s| s.recv_mmsg(data, *max_len, &mut meta[..room]),
                |&n| n < room,
            )
        })
        .await?;
        for m in &batch.meta[..got] {
            batch.from.push(m.from.to_inet()?);
        }
        batch.filled = got;
        Ok(got)
    }

    /// Sends the datagrams in order, each to its address, with one `sendmmsg` for up to 32
    /// of them; waits until at least one is sent and returns how many were (like a
    /// `write`: call again with the rest). An empty slice sends nothing.
    ///
    /// An error for one datagram (too long, say) comes back once the ones before it are sent:
    /// this call returns their count, the next one the error. The kernel's `sendmmsg`
    /// drops the error of a datagram that stops a batch, so after a short count the next
    /// call with datagrams to send (not an empty one, and not one dropped before it finishes)
    /// sends its first datagram alone: an error that datagram meets, or one the socket
    /// holds by then (an ICMP `ConnectionRefused` on a connected socket), is reported, as a
    /// `send` would. No more than one datagram's report is lost.
    ///
    /// Cancel-safe: dropped before it completes, it has sent nothing.
    ///
    /// ```
    /// # overlap::block_on(async {
    /// # let socket = overlap::net::UdpSocket::bind("127.0.0.1:0").await?;
    /// # let to = socket.local_addr()?;
    /// let mut queue: Vec<(&[u8], std::net::SocketAddr)> = vec![(b"a", to), (b"b", to)];
    /// let mut rest = &queue[..];
    /// while !rest.is_empty() {
    ///     let sent = socket.send_batch(rest).await?;
    ///     rest = &rest[sent..];
    /// }
    /// # std::io::Result::Ok(())
    /// # }).unwrap();
    /// ```
    pub async fn send_batch(&self, datagrams: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        if datagrams.is_empty() {
            return Ok(0);
        }
        // The cut stays noted until a call completes: neither an empty call nor one dropped
        // while it waits uses it up.
        let cap = if self.batch_cut.load(Relaxed) {
            1
        } else {
            MAX_BATCH
        };
        let n = datagrams.len().min(cap);
        let mut addrs = [(&[][..], SockAddr::empty()); MAX_BATCH];
        for (slot, (buf, to)) in addrs.iter_mut().zip(datagrams) {
            *slot = (*buf, SockAddr::from(*to));
        }
        let msgs = &addrs[..n];
        // A short count may mean a full buffer or an error waiting for the next call, which
        // cannot be told apart: readiness is only cleared on `EAGAIN` itself.
        let sent =
            own_waits(|cx| poll_write_with(&self.io, cx, |s| s.send_mmsg(msgs), |_| false)).await;
        self.batch_cut
            .store(matches!(sent, Ok(sent) if sent < n), Relaxed);
        sent.map_err(|e| crate::sock_errors::udp_refused(self.io.get_ref(), datagrams[0].1, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn a_cut_survives_an_empty_call_and_is_used_by_the_next_real_one() {
        overlap_runtime::block_on(async {
            let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = rx.local_addr().unwrap();
            let huge = vec![0u8; 70_000]; // over UDP's 65,507-byte limit
            let queue: Vec<(&[u8], SocketAddr)> = vec![(b"one", to), (&huge, to), (b"two", to)];
            assert_eq!(tx.send_batch(&queue).await.unwrap(), 1);
            assert!(tx.batch_cut.load(Relaxed), "a short count notes a cut");
            assert_eq!(tx.send_batch(&[]).await.unwrap(), 0);
            assert!(tx.batch_cut.load(Relaxed), "an empty call leaves it");
            assert!(tx.send_batch(&queue[1..]).await.is_err());
            assert!(
                !tx.batch_cut.load(Relaxed),
                "the call that used it clears it"
            );
            assert_eq!(tx.send_batch(&queue[2..]).await.unwrap(), 1);
        });
    }
}
