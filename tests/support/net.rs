//! Connected loopback sockets and fresh files made through overlap, for tests on a runtime.

use std::path::Path;

use overlap::fs::{File, OpenOptions};
use overlap::net::{TcpListener, TcpStream};

/// Two connected TCP streams over 127.0.0.1.
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = listener.accept().await.unwrap();
    (a, b)
}

/// `path` opened for reading and writing, created or truncated.
pub async fn open_fresh(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await
        .unwrap()
}
