//! A tokio program that builds its runtime by hand, ported name for name:
//! `runtime::Builder::new_current_thread().enable_all().build()`, then `enter`, a spawn
//! through `Handle::current()`, a loopback echo and a timer on that runtime.

mod support;

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::runtime::{Builder, EnterGuard, Handle, Runtime};
use support::within;

const HANG: Duration = Duration::from_secs(30);

fn build() -> std::io::Result<Runtime> {
    Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .enable_all()
        .thread_name("port-tokio")
        .build()
}

#[test]
fn hand_built_runtime_serves_an_echo() {
    let rt = build().unwrap();
    let guard: EnterGuard<'_> = rt.enter();
    let spawned = Handle::current().spawn(async { "via handle" });
    drop(guard);
    let echoed = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        overlap::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            let mut buf = vec![0; 1024];
            loop {
                let n = socket.read(&mut buf).await?;
                if n == 0 {
                    return std::io::Result::Ok(());
                }
                socket.write_all(&buf[..n]).await?;
            }
        });
        let mut client = TcpStream::connect(addr).await?;
        client.write_all(b"hello runtime").await?;
        client.close().await?;
        overlap::time::sleep(Duration::from_millis(1)).await;
        let mut out = Vec::new();
        within(HANG, client.read_to_end(&mut out), "the echo never ended").await?;
        std::io::Result::Ok(out)
    });
    assert_eq!(echoed.unwrap(), b"hello runtime");
    assert_eq!(rt.block_on(spawned).unwrap(), "via handle");
    let name = rt.block_on(rt.spawn_blocking(|| std::thread::current().name().map(String::from)));
    assert_eq!(name.unwrap().as_deref(), Some("port-tokio"));
}

/// tokio's builder methods take `&mut self`: a builder configured statement by statement
/// (as configurable programs do) keeps every setting, and builds more than one runtime.
#[test]
fn a_builder_set_up_statement_by_statement_keeps_its_settings() {
    let mut builder = Builder::new_current_thread();
    builder.enable_all();
    builder.thread_name("stepwise");
    if cfg!(target_os = "linux") {
        builder.event_interval(7).max_blocking_threads(2);
    }
    for _ in 0..2 {
        let rt = builder.build().unwrap();
        let name =
            rt.block_on(rt.spawn_blocking(|| std::thread::current().name().map(String::from)));
        assert_eq!(name.unwrap().as_deref(), Some("stepwise"));
    }
}
