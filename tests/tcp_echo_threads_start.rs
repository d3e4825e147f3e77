//! How the multi-threaded echo examples start: `tcp_echo_per_core` announces its address
//! only once every thread listens (it used to announce it first, and a client that
//! connected at once was refused), and neither it nor `tcp_echo_acceptor` panics when a
//! thread cannot make its runtime or its socket (more threads than the descriptor limit can
//! carry): the process exits with status 1, naming the thread and the cause. Their first
//! line counts one thread or worker in the singular.
//!
//! Needs the examples built (`cargo test` builds them).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{example_bin, run_example_with_nofile, ExampleServer};

#[test]
fn per_core_accepts_a_connection_made_as_soon_as_it_announces_its_address() {
    for _ in 0..10 {
        let server = ExampleServer::start_with("tcp_echo_per_core", &["2"]);
        let mut conn =
            TcpStream::connect(server.addr).expect("refused just after the announcement");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"first").unwrap();
        let mut got = [0u8; 5];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"first");
    }
}

/// 64 threads under a limit of `nofile` descriptors: 96 leaves room for their 64 listening
/// sockets, not for their 64 runtimes; 32 not even for the sockets.
fn too_many_threads_for_the_limit(name: &str, nofile: u64, thread: &str) {
    let run = run_example_with_nofile(name, nofile, &["127.0.0.1:0", "64"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(run.stderr.contains(thread), "{run:?}");
    assert!(run.stderr.contains("Too many open files"), "{run:?}");
    assert!(!run.stdout.contains("listening"), "{run:?}");
}

#[test]
fn per_core_with_more_threads_than_descriptors_exits_naming_the_thread() {
    too_many_threads_for_the_limit("tcp_echo_per_core", 96, "thread ");
}

#[test]
fn acceptor_with_more_workers_than_descriptors_exits_naming_the_worker() {
    too_many_threads_for_the_limit("tcp_echo_acceptor", 96, "worker ");
}

#[test]
fn per_core_with_more_threads_than_sockets_exits_naming_the_thread() {
    too_many_threads_for_the_limit("tcp_echo_per_core", 32, "thread ");
}

/// The first line `name` prints when started with `count` threads or workers.
fn announced(name: &str, count: &str) -> String {
    let mut child = Command::new(example_bin(name))
        .args(["127.0.0.1:0", count])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    read.unwrap();
    line
}

/// One thread is "1 thread", not "1 threads".
#[test]
fn the_announcement_counts_threads_and_workers_in_good_english() {
    for (name, one, two) in [
        ("tcp_echo_per_core", " with 1 thread\n", " with 2 threads\n"),
        ("tcp_echo_acceptor", " with 1 worker\n", " with 2 workers\n"),
    ] {
        let line = announced(name, "1");
        assert!(line.ends_with(one), "{name}: {line:?}");
        let line = announced(name, "2");
        assert!(line.ends_with(two), "{name}: {line:?}");
    }
}
