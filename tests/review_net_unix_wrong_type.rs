//! A Unix socket of one type pointed at a socket of another type: a stream connecting to a
//! datagram socket's path, a datagram socket connecting or sending to a stream listener's.
//! The kernel refuses these with `EPROTOTYPE`, which used to come out as an uncategorized
//! "Protocol wrong type for socket", naming neither the path nor the type it needed. Now
//! each is `InvalidInput`, naming the path and the type that was needed; and the socket that
//! asked is still usable. (Abstract names are looked up by type: one held by a socket of
//! another type is no socket at all to the kernel, `ConnectionRefused`.)

mod support;

use std::io;
use std::time::Duration;

use overlap::net::{UnixDatagram, UnixListener, UnixSocket, UnixStream};
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// `res` failed with `InvalidInput`, and its message names `path` and `needed`.
fn wrong_type<T>(what: &str, res: io::Result<T>, path: &str, needed: &str) {
    match res {
        Ok(_) => panic!("{what}: a socket of the other type was taken"),
        Err(e) => {
            let text = e.to_string();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {text}");
            assert!(text.contains(path), "{what}: {text} (should name {path})");
            assert!(
                text.contains(needed),
                "{what}: {text} (should say {needed})"
            );
        }
    }
}

#[overlap::test]
async fn a_unix_socket_of_the_other_type_is_named_as_such() {
    let dir = TempDir::new("review-unix-wrong-type");
    let stream_path = dir.join("listener.sock");
    let dgram_path = dir.join("datagram.sock");
    let listener = UnixListener::bind(&stream_path).unwrap();
    let receiver = UnixDatagram::bind(&dgram_path).unwrap();
    let (stream_name, dgram_name) = ("listener.sock", "datagram.sock");

    let res = within(HANG, UnixStream::connect(&dgram_path), "connect").await;
    wrong_type(
        "UnixStream::connect",
        res,
        dgram_name,
        "not a stream socket",
    );
    let res = within(
        HANG,
        UnixSocket::new_stream().unwrap().connect(&dgram_path),
        "connect",
    )
    .await;
    wrong_type(
        "UnixSocket::connect",
        res,
        dgram_name,
        "not a stream socket",
    );

    let sender = UnixDatagram::unbound().unwrap();
    wrong_type(
        "UnixDatagram::connect",
        sender.connect(&stream_path),
        stream_name,
        "not a datagram socket",
    );
    let res = within(HANG, sender.send_to(b"x", &stream_path), "send_to").await;
    wrong_type(
        "UnixDatagram::send_to",
        res,
        stream_name,
        "not a datagram socket",
    );
    wrong_type(
        "UnixDatagram::try_send_to",
        sender.try_send_to(b"x", &stream_path),
        stream_name,
        "not a datagram socket",
    );

    // The sockets that asked are still usable, for sockets of their own type.
    sender.connect(&dgram_path).unwrap();
    sender.send(b"after").await.unwrap();
    let mut buf = [0u8; 8];
    let n = within(HANG, receiver.recv(&mut buf), "recv").await.unwrap();
    assert_eq!(&buf[..n], b"after");
    let _client = within(HANG, UnixStream::connect(&stream_path), "connect")
        .await
        .unwrap();
    within(HANG, listener.accept(), "accept").await.unwrap();
}
