//! A user's small FTP server (passive mode only), sketched as one would for tokio, then
//! written for overlap by changing `tokio::` to `overlap::` and `tokio_util::codec` to
//! `overlap::codec`: the accept loop and its session limit (`port_user12_ftp/server.rs`),
//! a control connection's commands and replies (`session.rs`), the data transfers as
//! cancellable tasks (`transfer.rs`), the virtual paths confined to the root and `LIST`'s
//! lines (`paths.rs`), and the tests' client (`client.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::io::AsyncWriteExt;
//! use tokio::net::{TcpListener, TcpStream};
//! use tokio::sync::{oneshot, Semaphore};
//! use tokio_stream::wrappers::ReadDirStream;
//! use tokio_stream::StreamExt;
//! use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
//!
//! // the accept loop, its sessions in a JoinSet (dropped with the loop, it aborts them)
//! let limit = Arc::new(Semaphore::new(config.max_sessions));
//! let mut sessions = JoinSet::new();
//! loop {
//!     let (mut stream, _) = tokio::select! {
//!         accepted = listener.accept() => accepted?,
//!         Some(_) = sessions.join_next() => continue,
//!     };
//!     match limit.clone().try_acquire_owned() {
//!         Ok(permit) => { sessions.spawn(async move { session(stream, shared).await; drop(permit) }); }
//!         Err(_) => { stream.write_all(b"421 Too many connections\r\n").await.ok(); }
//!     }
//! }
//! // a session
//! let (input, mut out) = stream.into_split();
//! let mut lines = FramedRead::new(input, AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), 1024));
//! let idle = tokio::time::sleep(config.idle);
//! tokio::pin!(idle);
//! loop {
//!     tokio::select! {
//!         line = lines.next() => match line {
//!             Some(Ok(line)) => {
//!                 idle.as_mut().reset(Instant::now() + config.idle);
//!                 match command_text(&line) {   // Telnet bytes skipped, then UTF-8
//!                     Some(text) => s.command(&text).await?,
//!                     None => s.reply(500, "Command is not valid UTF-8.").await?,
//!                 }
//!             }
//!             Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => s.reply(500, "Command line too long.").await?,
//!             Some(Err(_)) | None => break,
//!         },
//!         out = finished(&mut s.transfer) => { s.transfer = None; s.report(out).await? }
//!         _ = &mut idle, if s.transfer.is_none() => { s.reply(421, "Idle timeout.").await?; break }
//!     }
//! }
//! // PASV, then RETR
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let port = listener.local_addr()?.port();
//! s.reply(227, &format!("Entering Passive Mode (127,0,0,1,{},{}).", port >> 8, port & 0xff)).await?;
//! let data = match tokio::time::timeout(config.data_accept, listener.accept()).await {
//!     Ok(Ok((data, _))) => data,
//!     _ => return s.reply(425, "Can't open data connection.").await,
//! };
//! let (cancel, cancelled) = oneshot::channel();
//! let handle: JoinHandle<Outcome> = tokio::spawn(async move {
//!     tokio::select! {
//!         r = async { file.seek(SeekFrom::Start(rest)).await?; tokio::io::copy(&mut file, &mut data).await } => ..,
//!         _ = cancelled => Outcome::Aborted,
//!     }
//! });
//! // LIST
//! let mut entries = ReadDirStream::new(tokio::fs::read_dir(&dir).await?);
//! while let Some(entry) = entries.next().await {
//!     let entry = entry?;
//!     let meta = entry.metadata().await?;
//!     lines.push(format!("{}rw-r--r-- 1 ftp ftp {:>12} {} {}\r\n", .., meta.len(), .., name));
//! }
//! // STOR: into `.name.part-N`, `tokio::fs::rename` over the name once the upload ended
//! // cleanly, `tokio::fs::remove_file` of the temporary file on any other end
//! // ABOR: `cancel.send(())`, `handle.await`, then 426 and 226
//! ```
//!
//! The tests check: a login and a 4 MiB upload then download, byte for byte, with SIZE
//! and the multi-line greeting and FEAT; LIST's lines for files and directories, MKD,
//! CWD, CDUP, DELE, RMD; `..` past the root, absolute paths and a symlink out of it
//! refused with 550; REST resuming a download at an offset; ABOR mid-upload (426, then
//! 226) leaving no file, temporary or final, and the session usable, and ABOR
//! mid-download (RETR by `File::send_to` and by `io::copy`), once sent as BSD ftp(1)
//! sends it, after Telnet's interrupt and an urgent Synch; a file replaced (an upload
//! renamed over it) while it is downloaded arriving whole and as it was, both ways; EPSV
//! over `::1` (PASV refused there with 522); a client vanishing mid-STOR (its control
//! connection gone, or its data connection reset) leaving no temporary file, and a
//! reader resetting a download answered 426; the session limit (421, then room again
//! once a session quits); garbage, unknown and empty commands, commands before login, a
//! line that is not UTF-8 and an overlong line each answered with a 500-series reply, the
//! session going on; the idle timeout's 421, and a PASV no client connected to answered
//! 425, on a paused clock; forty sessions at once; the server dropped mid-upload (its
//! acceptor aborted, whose `JoinSet` aborts the sessions) closing every control
//! connection and leaving no temporary file and no task; and no fd or task left after a
//! run that aborts an upload and a `sendfile` download.
//!
//! What porting it found missing in overlap: tokio-stream's `ReadDirStream`. The LIST
//! loop is `ReadDirStream::new(fs::read_dir(&dir).await?)` read with `next()`, as
//! tokio-stream's docs show it, and `overlap::stream::wrappers` had no such name
//! (overlap's `ReadDir` is a stream itself, so the first draft called `next_entry` on it,
//! which works in both). It is there now, in overlap-fs, and beside it `LinesStream`, the
//! other wrapper of tokio-stream's with no counterpart, for a control channel read as
//! `LinesStream::new(BufReader::new(input).lines())` in a `select!` (see
//! `tests/stream_tokio_stream.rs`). tokio-stream's `SplitStream` stays without one:
//! futures-io has no `AsyncBufReadExt::split(byte)` for it to wrap (the README says what
//! to use). Nothing else: every other call the sketch makes has its counterpart under
//! the same name, and behaved as tokio's would.
//!
//! What the port changed, against tokio: the imports (`tokio_stream::StreamExt` is
//! `overlap::stream::StreamExt`). RETR sends with `File::send_to` (`sendfile`, the bytes
//! never in user memory) from the REST offset, or, with `Config::retr_by_copy`, as the
//! sketch does (`seek`, then `io::copy`); the tests run both. `Arc` is `Rc`: tasks need
//! not be `Send`. A future raced by bare name in `select!` (`r = work =>`) is borrowed,
//! not moved, so it is pinned first (`pin!(work)`), as the README's `select!` row says;
//! the compile error said so. The control connection sets `TCP_NODELAY` on both ends, as
//! the README's paused-clock row advises: with Nagle's algorithm a reply could wait for
//! the last one's delayed ACK while the paused clock jumped to the idle deadline (a 421 in
//! the middle of the 425 test, at first); tokio's auto-advance has the same rule.
//!
//! What the port got wrong at first was the user's, and would be in tokio: after a
//! decoding error (the overlong line) the codec's stream ends once and then reads on, as
//! tokio-util's does, so the sketch's `None => break` ended the session right after its
//! 500; the loop now skips the one `None` after an error. `LinesCodec`, the first draft's
//! codec, answered ABOR as BSD ftp(1) sends it (Telnet's `IAC IP`, an urgent `IAC` as the
//! Synch, then `DM` and the command) with a 500, the line not being UTF-8: the control
//! channel is read with `AnyDelimiterCodec` (the same bound) and the Telnet bytes are
//! skipped before decoding. The read stopping at the urgent mark, with the rest of the
//! line queued behind it, needed nothing of the port (see `tests/net_short_reads.rs`).
//!
//! One hazard the design avoids, in both runtimes: the temporary file is created before
//! the transfer is raced against its cancel signal, since a `File::create` dropped
//! mid-way still runs to its end on the blocking pool (as tokio's `spawn_blocking` does)
//! and would leave the file behind the clean-up.

mod support;

#[path = "port_user12_ftp/client.rs"]
mod client;
#[path = "port_user12_ftp/limits.rs"]
mod limits;
#[path = "port_user12_ftp/paths.rs"]
mod paths;
#[path = "port_user12_ftp/server.rs"]
mod server;
#[path = "port_user12_ftp/session.rs"]
mod session;
#[path = "port_user12_ftp/transfer.rs"]
mod transfer;

use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};

use client::Client;
use server::{Config, End, Server};
use support::{pattern_seeded, until, within, TempDir};

/// A hang guard only: every test ends long before it.
const HANG: Duration = Duration::from_secs(60);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(root: &TempDir, config: Config) -> Server {
    Server::start(local(), root.path().to_path_buf(), config).await
}

/// The names in `dir` on disk, sorted.
fn on_disk(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[overlap::test]
async fn a_login_and_a_4_mib_upload_then_download_are_byte_exact() {
    let root = TempDir::new("ftp-roundtrip");
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            let mut c = Client::connect(server.addr).await;
            assert_eq!(c.greeting.code, 220);
            assert_eq!(c.greeting.lines.len(), 2, "a multi-line greeting");
            assert_eq!(c.cmd("USER alice").await.code, 331);
            assert_eq!(c.cmd("PASS wrong").await.code, 530);
            assert_eq!(c.cmd("PWD").await.code, 530, "not logged in");
            assert_eq!(c.cmd("USER alice").await.code, 331);
            assert_eq!(c.cmd("PASS wonderland").await.code, 230);
            let feat = c.cmd("FEAT").await;
            assert_eq!(feat.code, 211);
            assert!(feat.lines.iter().any(|l| l == " REST STREAM"), "{feat:?}");
            assert_eq!(c.cmd("TYPE I").await.code, 200);
            assert_eq!(c.cmd("TYPE X").await.code, 504);
            let body = pattern_seeded(4 << 20, 12);
            let r = c.stor("big.bin", &body).await;
            assert_eq!(
                (r.code, r.text()),
                (226, "Transfer complete (4194304 bytes).")
            );
            assert_eq!(std::fs::read(root.join("big.bin")).unwrap(), body);
            assert_eq!(on_disk(root.path()), ["big.bin"], "no temporary file left");
            let size = c.cmd("SIZE big.bin").await;
            assert_eq!((size.code, size.text()), (213, "4194304"));
            assert_eq!(c.retr("big.bin", 0).await, body);
            // The same connection again, a second file over the first.
            let small = pattern_seeded(1000, 13);
            assert_eq!(c.stor("big.bin", &small).await.code, 226);
            assert_eq!(c.retr("/big.bin", 0).await, small);
            assert_eq!(c.cmd("RETR missing").await.code, 550);
            c.quit().await;
            until(|| server.ends() == [End::Quit], "the session's end").await;
        },
        "the round trip",
    )
    .await;
}

#[overlap::test]
async fn list_shows_files_and_directories_and_the_directory_commands_work() {
    let root = TempDir::new("ftp-list");
    std::fs::write(root.join("a.txt"), b"hello").unwrap();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/inner.txt"), vec![7; 1234]).unwrap();
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            let mut c = Client::login(server.addr).await;
            let text = c.list("").await;
            let lines: Vec<&str> = text.split_terminator("\r\n").collect();
            assert_eq!(lines.len(), 2, "{text:?}");
            assert!(lines[0].starts_with("-rw-r--r-- 1 ftp ftp"), "{text:?}");
            assert!(
                lines[0].ends_with(" 5 ") || lines[0].contains(" 5 "),
                "{text:?}"
            );
            assert!(lines[0].ends_with(" a.txt"), "{text:?}");
            assert!(
                lines[1].starts_with('d') && lines[1].ends_with(" docs"),
                "{text:?}"
            );
            assert_eq!(c.cmd("CWD docs").await.code, 250);
            let pwd = c.cmd("PWD").await;
            assert_eq!(
                (pwd.code, pwd.text()),
                (257, "\"/docs\" is the current directory.")
            );
            let inner = c.list("-la").await;
            assert!(
                inner.contains("         1234 ") && inner.ends_with(" inner.txt\r\n"),
                "{inner:?}"
            );
            assert_eq!(c.cmd("MKD sub").await.text(), "\"/docs/sub\" created.");
            assert_eq!(c.cmd("MKD sub").await.code, 550, "it exists");
            assert_eq!(c.cmd("CWD sub").await.code, 250);
            assert_eq!(c.list("").await, "", "an empty directory");
            assert_eq!(c.cmd("CDUP").await.code, 250);
            assert_eq!(c.cmd("RMD sub").await.code, 250);
            assert_eq!(c.cmd("DELE inner.txt").await.code, 250);
            assert_eq!(c.cmd("DELE inner.txt").await.code, 550, "gone");
            assert_eq!(c.cmd("CDUP").await.code, 250);
            assert_eq!(c.cmd("RMD docs").await.code, 250);
            assert_eq!(c.cmd("CWD a.txt").await.code, 550, "not a directory");
            assert_eq!(c.cmd("DELE").await.code, 501);
            assert_eq!(on_disk(root.path()), ["a.txt"]);
            c.quit().await;
        },
        "the listing",
    )
    .await;
}

#[overlap::test]
async fn paths_out_of_the_root_are_refused_with_550() {
    let root = TempDir::new("ftp-traversal");
    let outside = TempDir::new("ftp-outside");
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    std::fs::create_dir(root.join("pub")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("pub/escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("link")).unwrap();
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            let mut c = Client::login(server.addr).await;
            for cmd in [
                "CWD ..",
                "CWD ../..",
                "CWD /..",
                "CDUP",
                "CWD pub/../../",
                "SIZE ../secret",
                "DELE /../../etc/passwd",
                "MKD ../made",
                "CWD pub/escape",
                "SIZE pub/escape/secret",
                "SIZE link",
                "DELE link/x",
            ] {
                let r = c.cmd(cmd).await;
                assert_eq!(r.code, 550, "{cmd}: {r:?}");
            }
            // An absolute path is the root's: /etc/passwd is not the system's.
            assert_eq!(c.cmd("SIZE /etc/passwd").await.code, 550);
            assert_eq!(c.cmd("PWD").await.text(), "\"/\" is the current directory.");
            // The transfer commands refuse before any data connection.
            let r = c.cmd("RETR ../../../../etc/passwd").await;
            assert_eq!(r.code, 550, "{r:?}");
            let r = c.cmd("STOR pub/escape/planted").await;
            assert_eq!(r.code, 550, "{r:?}");
            let r = c.cmd("RETR link").await;
            assert_eq!(r.code, 550, "{r:?}");
            // Inside, `..` is fine.
            assert_eq!(c.cmd("CWD pub/../pub").await.code, 250);
            assert_eq!(
                c.cmd("PWD").await.text(),
                "\"/pub\" is the current directory."
            );
            c.quit().await;
            assert_eq!(on_disk(outside.path()), ["secret"]);
            assert!(!root.join("../made").exists());
        },
        "the traversal",
    )
    .await;
}

/// The two RETRs: `File::send_to`, and the tokio version's `seek` then `io::copy`.
fn both_retrs() -> [Config; 2] {
    [false, true].map(|retr_by_copy| Config {
        retr_by_copy,
        ..Config::default()
    })
}

#[overlap::test]
async fn rest_resumes_a_download_at_an_offset() {
    let root = TempDir::new("ftp-rest");
    let body = pattern_seeded(300_000, 14);
    std::fs::write(root.join("f"), &body).unwrap();
    within(
        HANG,
        async {
            for config in both_retrs() {
                let server = start(&root, config).await;
                let mut c = Client::login(server.addr).await;
                assert_eq!(c.retr("f", 123_457).await, body[123_457..]);
                // REST is for the next transfer only.
                assert_eq!(c.retr("f", 0).await, body);
                assert_eq!(c.retr("f", 300_000).await, b"", "at the end");
                assert_eq!(c.retr("f", 10_000_000).await, b"", "past the end");
                assert_eq!(c.cmd("REST x").await.code, 501);
                c.quit().await;
            }
        },
        "the resumed download",
    )
    .await;
}

#[overlap::test]
async fn a_file_replaced_while_it_is_downloaded_arrives_whole_and_old() {
    let root = TempDir::new("ftp-replace");
    let old = pattern_seeded(8 << 20, 18);
    let new = pattern_seeded(1 << 20, 19);
    within(
        HANG,
        async {
            for config in both_retrs() {
                std::fs::write(root.join("f"), &old).unwrap();
                let server = start(&root, config).await;
                let mut reader = Client::login(server.addr).await;
                let mut writer = Client::login(server.addr).await;
                let mut data = reader.pasv().await;
                assert_eq!(reader.cmd("RETR f").await.code, 150);
                let mut first = vec![0; 4096];
                data.read_exact(&mut first).await.unwrap();
                // Replaced (a temporary file renamed over it) mid-download.
                assert_eq!(writer.stor("f", &new).await.code, 226);
                let mut rest = Vec::new();
                data.read_to_end(&mut rest).await.unwrap();
                first.extend(rest);
                assert!(first == old, "the old bytes, whole");
                assert_eq!(reader.reply().await.code, 226);
                assert_eq!(reader.retr("f", 0).await, new);
                reader.quit().await;
                writer.quit().await;
            }
        },
        "the replaced file",
    )
    .await;
}

#[overlap::test]
async fn the_server_works_over_ipv6_loopback_with_epsv() {
    let root = TempDir::new("ftp-ipv6");
    within(
        HANG,
        async {
            let server = Server::start(
                "[::1]:0".parse().unwrap(),
                root.path().to_path_buf(),
                Config::default(),
            )
            .await;
            assert!(server.addr.is_ipv6());
            let mut c = Client::login(server.addr).await;
            assert_eq!(
                c.cmd("PASV").await.code,
                522,
                "PASV cannot name an IPv6 address"
            );
            let body = pattern_seeded(100_000, 20);
            assert_eq!(c.stor("six", &body).await.code, 226);
            assert_eq!(c.retr("six", 6).await, body[6..]);
            assert!(c.list("").await.ends_with(" six\r\n"));
            c.quit().await;
        },
        "IPv6",
    )
    .await;
}

#[overlap::test]
async fn abor_mid_transfer_leaves_no_partial_file_and_the_session_usable() {
    let root = TempDir::new("ftp-abor");
    let big = pattern_seeded(16 << 20, 15);
    std::fs::write(root.join("big"), &big).unwrap();
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            let mut c = Client::login(server.addr).await;
            // An upload cut short: a MiB sent, the data connection left open.
            let mut data = c.pasv().await;
            assert_eq!(c.cmd("STOR partial").await.code, 150);
            data.write_all(&big[..1 << 20]).await.unwrap();
            until(
                || {
                    on_disk(root.path())
                        .iter()
                        .any(|n| n.starts_with(".partial.part-"))
                },
                "the temporary file",
            )
            .await;
            c.send("ABOR").await;
            assert_eq!(c.reply().await.code, 426);
            assert_eq!(c.reply().await.code, 226);
            assert_eq!(on_disk(root.path()), ["big"], "nothing of the upload left");
            let mut rest = Vec::new();
            let _ = data.read_to_end(&mut rest).await; // closed by the server
                                                       // A download the client does not read: the server waits for room, then ABOR.
            let mut data = c.pasv().await;
            assert_eq!(c.cmd("RETR big").await.code, 150);
            let mut first = vec![0; 1000];
            data.read_exact(&mut first).await.unwrap();
            assert_eq!(first, big[..1000]);
            c.send("ABOR").await;
            assert_eq!(c.reply().await.code, 426);
            assert_eq!(c.reply().await.code, 226);
            drop(data);
            assert_eq!(server.shared.aborted.get(), 2);
            // The same with the tokio version's RETR, `seek` then `io::copy`.
            let copying = start(&root, both_retrs()[1].clone()).await;
            let mut c2 = Client::login(copying.addr).await;
            let mut data = c2.pasv().await;
            assert_eq!(c2.cmd("REST 5").await.code, 350);
            assert_eq!(c2.cmd("RETR big").await.code, 150);
            data.read_exact(&mut first).await.unwrap();
            assert_eq!(first, big[5..1005]);
            // ABOR as ftp(1) sends it, with Telnet's interrupt and urgent Synch before it.
            c2.send_abor_with_synch().await;
            let r = c2.reply().await;
            assert_eq!(r.code, 426, "{r:?}");
            assert_eq!(c2.reply().await.code, 226);
            assert_eq!(copying.shared.aborted.get(), 1);
            c2.quit().await;
            // No transfer: 225. The session goes on.
            assert_eq!(c.cmd("ABOR").await.code, 225);
            assert_eq!(c.stor("after", b"fine").await.code, 226);
            assert_eq!(c.retr("after", 0).await, b"fine");
            assert_eq!(on_disk(root.path()), ["after", "big"]);
            c.quit().await;
        },
        "the aborts",
    )
    .await;
}

#[overlap::test]
async fn a_client_vanishing_mid_stor_leaves_no_temporary_file() {
    let root = TempDir::new("ftp-vanish");
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            for reset in [false, true] {
                let mut c = Client::login(server.addr).await;
                let mut data = c.pasv().await;
                assert_eq!(c.cmd("STOR upload").await.code, 150);
                data.write_all(&pattern_seeded(1 << 20, 16)).await.unwrap();
                until(|| !on_disk(root.path()).is_empty(), "the temporary file").await;
                if reset {
                    // The data connection reset, the control one left open a moment.
                    data.set_zero_linger().unwrap();
                    drop(data);
                    let r = c.reply().await;
                    assert_eq!(r.code, 426, "{r:?}");
                    drop(c);
                } else {
                    // The control connection gone, the data one still open.
                    drop(c);
                    until(|| server.live() == 0, "the session's end").await;
                    drop(data);
                }
                until(|| server.live() == 0, "the session's end").await;
                assert_eq!(on_disk(root.path()), Vec::<String>::new());
            }
            assert_eq!(server.ends(), [End::Lost, End::Lost]);
            // A download whose reader resets the data connection: 426, the session goes on
            // (the `sendfile` run meets the reset; SIGPIPE is ignored, as in any Rust
            // program).
            std::fs::write(root.join("big"), vec![b'b'; 32 << 20]).unwrap();
            let mut c = Client::login(server.addr).await;
            let mut data = c.pasv().await;
            assert_eq!(c.cmd("RETR big").await.code, 150);
            let mut first = [0; 100];
            data.read_exact(&mut first).await.unwrap();
            data.set_zero_linger().unwrap();
            drop(data);
            let r = c.reply().await;
            assert_eq!(r.code, 426, "{r:?}");
            assert_eq!(c.cmd("NOOP").await.code, 200);
            c.quit().await;
        },
        "the vanished client",
    )
    .await;
}

#[overlap::test]
async fn garbage_and_overlong_lines_get_500_series_replies_and_the_session_goes_on() {
    let root = TempDir::new("ftp-garbage");
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            let mut c = Client::connect(server.addr).await;
            assert_eq!(c.cmd("").await.code, 500);
            assert_eq!(c.cmd("LIST").await.code, 530, "not logged in");
            assert_eq!(c.cmd("HELP").await.code, 214);
            let mut c = {
                drop(c);
                Client::login(server.addr).await
            };
            assert_eq!(c.cmd("XYZZY plugh").await.code, 502);
            assert_eq!(c.cmd("   ").await.code, 500);
            c.send_raw(b"RETR \xc3\x28\r\n").await;
            let r = c.reply().await;
            assert_eq!((r.code, r.text()), (500, "Command is not valid UTF-8."));
            c.send_raw(b"\xff\xfe\xfd garbage\r\n").await;
            assert_eq!(c.reply().await.code, 500, "Telnet bytes, then nothing");
            assert_eq!(c.cmd("NOOP").await.code, 200);
            let long = format!("RETR {}", "a".repeat(100_000));
            let r = c.cmd(&long).await;
            assert_eq!((r.code, r.text()), (500, "Command line too long."));
            assert_eq!(c.cmd("NOOP").await.code, 200, "the line after it is read");
            c.send_raw(b"\0\0\0\r\nN").await;
            assert_eq!(c.reply().await.code, 502);
            assert_eq!(c.cmd("OOP").await.code, 200, "NOOP split over two writes");
            assert_eq!(c.cmd("RETR").await.code, 501);
            assert_eq!(c.cmd("RETR x").await.code, 550);
            assert_eq!(c.cmd("LIST").await.code, 425, "no PASV");
            assert_eq!(c.cmd("pwd").await.code, 257, "verbs in any case");
            c.quit().await;
        },
        "the garbage",
    )
    .await;
}
