//! `TcpSocket`'s `IP_TOS`, `SO_BINDTODEVICE` and zero-linger options.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::block_on;
use overlap::io::AsyncReadExt;
use overlap::net::{TcpListener, TcpSocket};
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[test]
fn tos_round_trips_and_refuses_more_than_a_byte() {
    block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        assert_eq!(sock.tos().unwrap(), 0);
        sock.set_tos(0x28).unwrap();
        assert_eq!(sock.tos().unwrap(), 0x28);
        assert_eq!(
            sock.set_tos(256).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(sock.tos().unwrap(), 0x28, "a refused value changes nothing");
    });
}

#[test]
fn a_socket_bound_to_loopback_connects_over_it_and_unbinds() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        assert_eq!(sock.device().unwrap(), None);
        sock.bind_device(Some(b"lo")).unwrap();
        assert_eq!(sock.device().unwrap().as_deref(), Some(&b"lo"[..]));
        sock.bind_device(None).unwrap();
        assert_eq!(sock.device().unwrap(), None);
        sock.bind_device(Some(b"lo")).unwrap();
        let addr = listener.local_addr().unwrap();
        within(HANG, sock.connect(addr), "connect over lo")
            .await
            .unwrap();
        let err = TcpSocket::new_v4()
            .unwrap()
            .bind_device(Some(b"no-such-if0"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    });
}

/// The kernel reads the name as a C string cut to 15 bytes: `b"lo\0junk"` would bind to
/// `lo`, and a 16-byte name to the interface its first 15 bytes name. Both are refused before
/// the syscall, leaving the socket unbound; a single trailing NUL (a C string) is fine.
#[test]
fn bind_device_refuses_names_the_kernel_would_cut() {
    block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        for bad in [
            &b"lo\0junk"[..],
            b"\0lo",
            b"lo\0\0",
            &[b'l'; 16],
            &[b'l'; 40],
        ] {
            let err = sock.bind_device(Some(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
            assert_eq!(sock.device().unwrap(), None, "{bad:?}");
        }
        // Fifteen bytes is an interface name's most: passed to the kernel, which knows none.
        let err = sock.bind_device(Some(&[b'l'; 15])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        sock.bind_device(Some(b"lo\0")).unwrap();
        assert_eq!(sock.device().unwrap().as_deref(), Some(&b"lo"[..]));
    });
}

#[test]
fn zero_linger_resets_the_connection_on_close() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_zero_linger().unwrap();
        assert_eq!(sock.linger().unwrap(), Some(Duration::ZERO));
        let client = sock.connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        drop(client);
        let mut buf = [0u8; 8];
        let err = within(HANG, server.read(&mut buf), "reset")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);

        let (a, _b) = support::tcp_pair().await;
        a.set_zero_linger().unwrap();
        assert_eq!(a.linger().unwrap(), Some(Duration::ZERO));
    });
}
