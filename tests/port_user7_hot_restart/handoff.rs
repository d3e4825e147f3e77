//! Handing the listening socket from one generation to the next over a Unix stream: one
//! `sendmsg` carrying the state bytes with the fd (`SCM_RIGHTS`), one or more `recvmsg`
//! (`MSG_CMSG_CLOEXEC`, so the fd is never inheritable, not even for a moment) on the
//! reactor, through the stream's `writable`/`readable` and `try_io`, as a tokio user writes
//! it (tokio has no fd-passing API either).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use overlap::io::{AsyncWriteExt, Interest};
use overlap::net::UnixStream;

/// The state bytes that travel with the fd: the generation handing over, and how many
/// connections the generations so far accepted (big-endian `u64`s).
pub const STATE_LEN: usize = 16;

/// Room for this many fds in a receive's control buffer: a peer sending more than one is
/// caught (and every fd closed) rather than truncated.
const MAX_FDS: usize = 4;

/// Sends `state` with `fd` attached, waiting for room on the reactor; the bytes a short
/// `sendmsg` left go after it (the fd went with the first byte).
pub async fn send_fd(sock: &mut UnixStream, state: &[u8], fd: RawFd) -> io::Result<()> {
    let sent = loop {
        sock.writable().await?;
        match sock.try_io(Interest::WRITABLE, || {
            crate::support::sendmsg_fd(sock.as_raw_fd(), state, fd)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            res => break res?,
        }
    };
    sock.write_all(&state[sent..]).await
}

/// Receives `STATE_LEN` state bytes and the one fd that comes with them. The peer closing
/// before all of it came is `UnexpectedEof`; no fd, or more than one, `InvalidData`. Every
/// fd received is owned at once, so an error closes it.
pub async fn recv_fd(sock: &UnixStream) -> io::Result<([u8; STATE_LEN], OwnedFd)> {
    let mut state = [0u8; STATE_LEN];
    let mut got = 0;
    let mut fds = Vec::new();
    while got < STATE_LEN {
        sock.readable().await?;
        let res = sock.try_io(Interest::READABLE, || {
            recvmsg_fds(sock.as_raw_fd(), &mut state[got..], &mut fds)
        });
        match res {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the handoff socket closed after {got} of {STATE_LEN} state bytes"),
                ))
            }
            Ok(n) => got += n,
        }
    }
    match fds.len() {
        1 => Ok((state, fds.pop().unwrap())),
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the state came with {n} fds, not one listener"),
        )),
    }
}

/// One `recvmsg` into `buf`; the fds that came are pushed onto `fds`, owned (and
/// close-on-exec). A control buffer too small for them (`MSG_CTRUNC`: the kernel closed
/// the rest) is `InvalidData`.
fn recvmsg_fds(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) };
    let mut cbuf = vec![0u64; (space as usize).div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid; it is filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let flags = libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT;
    // SAFETY: `msg` describes buffers that outlive the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled in `msg_controllen` bytes of well-formed headers, which
    // CMSG_FIRSTHDR/CMSG_NXTHDR walk within; an SCM_RIGHTS header's data holds
    // (cmsg_len - CMSG_LEN(0)) / 4 fds, new in this process and owned by nobody else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more fds came than the handoff expects",
        ));
    }
    Ok(n as usize)
}
