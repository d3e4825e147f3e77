//! `recvmmsg` and `sendmmsg`: many datagrams per syscall.

use std::io;
use std::mem;

#[cfg(feature = "count-syscalls")]
use super::counters;
use super::{SockAddr, Socket};
use overlap_runtime::syscall;

/// The most datagrams one call moves. The headers live on the stack (about 6 KiB for a
/// send), and past a few dozen datagrams the per-call saving no longer grows.
pub(crate) const MAX_BATCH: usize = 32;

/// What `recvmmsg` tells about one datagram.
#[derive(Clone, Copy)]
pub(crate) struct RecvMeta {
    /// Bytes stored (at most the slot's size).
    pub(crate) len: usize,
    /// The datagram was longer than its slot; the rest is lost.
    pub(crate) truncated: bool,
    pub(crate) from: SockAddr,
}

impl RecvMeta {
    pub(crate) fn empty() -> RecvMeta {
        RecvMeta {
            len: 0,
            truncated: false,
            from: SockAddr::empty(),
        }
    }
}

/// Points `hdr` at one buffer (through `iov`) and one address. Only stores pointers: the
/// syscall that reads them is where the borrows must hold.
fn point(
    hdr: &mut libc::mmsghdr,
    iov: &mut libc::iovec,
    buf: (*mut libc::c_void, usize),
    name: (*mut libc::c_void, libc::socklen_t),
) {
    iov.iov_base = buf.0;
    iov.iov_len = buf.1;
    hdr.msg_hdr.msg_name = name.0;
    hdr.msg_hdr.msg_namelen = name.1;
    hdr.msg_hdr.msg_iov = iov;
    hdr.msg_hdr.msg_iovlen = 1;
}

/// A batch's worth of empty iovecs and headers, on the stack.
fn empty_headers() -> ([libc::iovec; MAX_BATCH], [libc::mmsghdr; MAX_BATCH]) {
    let iov = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    // SAFETY: mmsghdr is plain old data (pointers, lengths, flags); all zeroes is a valid,
    // empty header.
    let hdr: libc::mmsghdr = unsafe { mem::zeroed() };
    ([iov; MAX_BATCH], [hdr; MAX_BATCH])
}

impl Socket {
    /// `recvmmsg` into consecutive `stride`-byte slots of `data`, one datagram per slot and
    /// per entry of `meta`, at most [`MAX_BATCH`]. Returns how many arrived (at least one,
    /// or an error such as `EAGAIN`).
    pub(crate) fn recv_mmsg(
        &self,
        data: &mut [u8],
        stride: usize,
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let n = meta
            .len()
            .min(data.len().checked_div(stride).unwrap_or(0))
            .min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        let (mut iovs, mut hdrs) = empty_headers();
        for (i, (iov, (hdr, m))) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut().zip(meta.iter_mut()))
            .take(n)
            .enumerate()
        {
            let slot = &mut data[i * stride..(i + 1) * stride];
            m.from = SockAddr::empty();
            let name = (m.from.as_mut_ptr().cast(), m.from.len());
            point(hdr, iov, (slot.as_mut_ptr().cast(), slot.len()), name);
        }
        count!(Recv);
        // SAFETY: the first `n` headers each point at one iovec over a distinct `stride`-byte
        // slot of `data` and at a writable sockaddr_storage in `meta` with its size as the
        // length; all of them stay borrowed, unmoved, for the call. A null timeout is allowed.
        let got = syscall!(recvmmsg(
            self.raw(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            0,
            std::ptr::null_mut()
        ))? as usize;
        for (hdr, m) in hdrs.iter().zip(meta.iter_mut()).take(got) {
            m.len = hdr.msg_len as usize;
            m.truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            *m.from.len_mut() = hdr.msg_hdr.msg_namelen;
            m.from.clamp_len();
        }
        Ok(got)
    }

    /// `sendmmsg` with `MSG_NOSIGNAL`: each buffer as one datagram to its address, at most
    /// [`MAX_BATCH`]. Returns how many were sent (at least one, or an error).
    pub(crate) fn send_mmsg(&self, datagrams: &[(&[u8], SockAddr)]) -> io::Result<usize> {
        let n = datagrams.len().min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        let (mut iovs, mut hdrs) = empty_headers();
        for (iov, (hdr, (buf, to))) in iovs.iter_mut().zip(hdrs.iter_mut().zip(datagrams)).take(n) {
            // The kernel only reads through these for a send, so `*mut` from shared borrows
            // is never written through.
            let name = (to.as_ptr().cast_mut().cast(), to.len());
            point(hdr, iov, (buf.as_ptr().cast_mut().cast(), buf.len()), name);
        }
        count!(Send);
        // SAFETY: the first `n` headers each point at one iovec over a caller's buffer and at
        // an initialised address of the stated length; the kernel only reads them, and all
        // stay borrowed for the call.
        let sent = syscall!(sendmmsg(
            self.raw(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_NOSIGNAL
        ))?;
        Ok(sent as usize)
    }
}
