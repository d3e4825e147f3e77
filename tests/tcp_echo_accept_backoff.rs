//! `examples/tcp_echo.rs` when `accept` keeps failing for want of kernel memory (`ENOBUFS`,
//! `ENOMEM`, injected with seccomp in a child process): the loop backs off, as it does out
//! of descriptors, instead of retrying at once and burning the CPU the rest of the server
//! needs; connections already open are still served meanwhile.

mod support;
#[allow(dead_code)]
#[path = "../examples/tcp_echo.rs"]
mod tcp_echo;

use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use support::seccomp::{install, rule_arg0};
use support::{run_in_child, still_serves, within};

const HANG: Duration = Duration::from_secs(10);

/// Runs the example's accept loop with every `accept4` on its listener failing with
/// `errno`, and a client waiting in the backlog, so the listener stays readable.
fn accept_keeps_failing(name: &str, errno: i32) {
    run_in_child(name, || {
        overlap::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let fd = listener.as_raw_fd() as u32;
            // A connection served by the example before the failures start.
            let mut open = TcpStream::connect(addr).await.unwrap();
            let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = TcpStream::connect(other.local_addr().unwrap())
                .await
                .unwrap();
            let (mut served, _) = other.accept().await.unwrap();
            overlap::spawn(tcp_echo::serve(listener));
            overlap::time::sleep(Duration::from_millis(20)).await;
            install(&[rule_arg0(libc::SYS_accept4, fd, errno)]);
            let _waiting = TcpStream::connect(addr).await.unwrap();
            let before = overlap::metrics();
            overlap::time::sleep(Duration::from_millis(300)).await;
            let after = overlap::metrics();
            // Backing off between tries, each poll of the loop makes one try and sleeps.
            // Retrying at once, it runs out of its budget (128 tries) again and again.
            let exhausted = after.budget_exhausted - before.budget_exhausted;
            assert_eq!(exhausted, 0, "the accept loop spun through its budget");
            within(HANG, still_serves(&mut client, &mut served), "serving").await;
            // The connection accepted before the failures is still echoed.
            open.write_all(b"ping").await.unwrap();
            let mut back = [0u8; 4];
            within(HANG, open.read_exact(&mut back), "echo")
                .await
                .unwrap();
            assert_eq!(&back, b"ping");
        });
    });
}

#[test]
fn accept_out_of_buffers_backs_off() {
    accept_keeps_failing("accept_out_of_buffers_backs_off", libc::ENOBUFS);
}

#[test]
fn accept_out_of_memory_backs_off() {
    accept_keeps_failing("accept_out_of_memory_backs_off", libc::ENOMEM);
}
