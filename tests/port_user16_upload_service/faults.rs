//! The tests of limits and faults: 413 and the quota, clients that vanish, malformed
//! heads, chunks and names, the two timeouts on the paused clock, and nothing left behind.

use std::io::ErrorKind;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::time;

use super::client::{chunked, get, put, put_chunked_head, put_head, Client, Resp};
use super::names::etag_of;
use super::rig::{Rig, HANG, KIB, MIB};
use super::server::Config;
use super::support::{open_fds, pattern_seeded, run_in_child, until, within};

/// A hang guard on the paused clock (virtual time: far past every timeout).
const PAUSED_HANG: Duration = Duration::from_secs(24 * 3600);

/// Writes `raw` (a request with a large body) while reading the answer that refuses it
/// part way: the answer, how much was written, and the error that stopped the writing.
async fn refused_mid_body(c: &Client, raw: &[u8]) -> (Resp, usize, Option<ErrorKind>) {
    let write = async {
        let mut w = &c.stream;
        let mut sent = 0;
        for part in raw.chunks(64 * KIB) {
            if let Err(e) = w.write_all(part).await {
                return (sent, Some(e.kind()));
            }
            sent += part.len();
        }
        (sent, None)
    };
    let ((sent, error), resp) = overlap::join!(write, c.response(false));
    (resp, sent, error)
}

#[overlap::test]
async fn an_upload_over_the_limit_gets_413_and_the_rest_is_never_read() {
    within(
        HANG,
        async {
            let cfg = Config {
                max_upload: MIB as u64,
                ..Config::default()
            };
            let rig = Rig::start("upload-413", "127.0.0.1", cfg).await;
            // Declared too large: refused on the head alone.
            let c = Client::connect(rig.addr()).await;
            let r = c.request(&put_head("huge", MIB + 1, "")).await;
            assert_eq!((r.status, r.field("connection")), (413, Some("close")));
            assert!(c.closed().await);
            // Chunked: refused when the limit is passed, the connection closed with the
            // rest unread, so the client's writes fail.
            let data = pattern_seeded(8 * MIB, 9);
            let mut raw = put_chunked_head("huge", "");
            raw.extend(chunked(&data, || 256 * KIB));
            let c = Client::connect(rig.addr()).await;
            let (r, sent, error) = refused_mid_body(&c, &raw).await;
            assert_eq!((r.status, r.field("connection")), (413, Some("close")));
            assert!(c.closed().await);
            assert!(
                matches!(
                    error,
                    Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)
                ),
                "{error:?} after {sent} bytes"
            );
            assert!(sent < raw.len());
            let st = &rig.server.stats;
            assert!(st.body_bytes.get() <= MIB as u64, "{}", st.body_bytes.get());
            assert_eq!(st.too_large.get(), 2);
            // Exactly the limit is fine, on a new connection.
            let limit = pattern_seeded(MIB, 10);
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_chunked_head("huge", "");
            raw.extend(chunked(&limit, || 100 * KIB));
            let r = c.request(&raw).await;
            assert_eq!((r.status, r.etag()), (201, etag_of(&limit)));
            rig.assert_no_temp_files();
            assert_eq!(rig.server.store.used(), MIB as u64);
            rig.stop().await;
        },
        "413",
    )
    .await;
}

#[overlap::test]
async fn the_quota_is_shared_by_the_uploads_in_progress() {
    within(
        HANG,
        async {
            let cfg = Config {
                quota: 4 * MIB as u64,
                ..Config::default()
            };
            let rig = Rig::start("upload-quota", "127.0.0.1", cfg).await;
            let store = &rig.server.store;
            let expect = "Expect: 100-continue\r\n";
            // A holds 3 MiB from its 100 on, before a byte of its body.
            let a = Client::connect(rig.addr()).await;
            let three = pattern_seeded(3 * MIB, 11);
            assert_eq!(
                a.request(&put_head("a", three.len(), expect)).await.status,
                100
            );
            assert_eq!(store.used(), 3 * MIB as u64);
            // B declares 2 MiB: 507 at once.
            let b = Client::connect(rig.addr()).await;
            assert_eq!(b.request(&put_head("b", 2 * MIB, expect)).await.status, 507);
            assert!(b.closed().await);
            // C is chunked: refused once its bytes pass what is left, mid-body.
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_chunked_head("c", "");
            raw.extend(chunked(&pattern_seeded(2 * MIB, 12), || 128 * KIB));
            // (Its writes may all fit in the sockets' buffers: whether they fail is not
            // checked here; the 413 test sends more.)
            let (r, _, _) = refused_mid_body(&c, &raw).await;
            assert_eq!((r.status, r.field("connection")), (507, Some("close")));
            assert!(c.closed().await);
            assert_eq!(store.used(), 3 * MIB as u64, "C's part given back");
            // A's body comes: stored, and its reservation is now the file's.
            a.send(&three).await;
            assert_eq!(a.response(false).await.status, 201);
            assert_eq!(store.used(), 3 * MIB as u64);
            let two = pattern_seeded(2 * MIB, 13);
            let d = Client::connect(rig.addr()).await;
            assert_eq!(
                d.request(&put_head("b", two.len(), expect)).await.status,
                507
            );
            assert!(d.closed().await);
            let b = Client::connect(rig.addr()).await;
            assert_eq!(b.request(&super::client::delete("a", "")).await.status, 204);
            assert_eq!(store.used(), 0);
            assert_eq!(b.request(&put("b", &two, "")).await.status, 201);
            // Replacing counts the old file until the new one is in place: 2 + 3 > 4.
            let e = Client::connect(rig.addr()).await;
            assert_eq!(
                e.request(&put_head("b", three.len(), expect)).await.status,
                507
            );
            assert!(e.closed().await);
            assert_eq!(b.request(&put("b", &two[..MIB], "")).await.status, 200);
            assert_eq!(store.used(), MIB as u64);
            assert_eq!(rig.server.stats.over_quota.get(), 4);
            rig.assert_no_temp_files();
            rig.stop().await;
        },
        "quota",
    )
    .await;
}

#[overlap::test]
async fn a_client_vanishing_mid_body_leaves_no_temp_file_and_no_partial_target() {
    within(
        HANG,
        async {
            let rig = Rig::start("upload-vanish", "127.0.0.1", Config::default()).await;
            let st = rig.server.stats.clone();
            let first = Client::connect(rig.addr()).await;
            assert_eq!(
                first.request(&put("keep", b"original", "")).await.status,
                201
            );
            // 1 MiB of a declared 4, then the end of the stream (FIN).
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_head("keep", 4 * MIB, "");
            raw.extend(pattern_seeded(MIB, 14));
            let before = st.body_bytes.get();
            c.send(&raw).await;
            until(
                || st.body_bytes.get() == before + MIB as u64,
                "the mebibyte",
            )
            .await;
            assert_eq!(
                rig.server.store.temp_files().len(),
                1,
                "the upload is under way"
            );
            drop(c);
            until(|| st.vanished.get() == 1, "the upload given up").await;
            rig.assert_no_temp_files();
            assert_eq!(rig.stored("keep").unwrap(), b"original");
            // Part way through a chunk, then a reset (RST).
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_chunked_head("new", "");
            raw.extend(b"100000\r\n");
            raw.extend(pattern_seeded(300 * KIB, 15));
            let before = st.body_bytes.get();
            c.send(&raw).await;
            until(
                || st.body_bytes.get() == before + 300 * KIB as u64,
                "the chunk",
            )
            .await;
            c.stream.set_zero_linger().unwrap();
            drop(c);
            until(|| st.vanished.get() == 2, "the reset upload given up").await;
            assert_eq!(st.resets.get(), 1);
            // Part way through a chunk-size line; and after the 100, before the body.
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_chunked_head("new", "");
            raw.extend(b"5\r\nhello\r\nff");
            c.send(&raw).await;
            let before = st.body_bytes.get();
            until(|| st.body_bytes.get() == before + 5, "5 bytes").await;
            drop(c);
            until(|| st.vanished.get() == 3, "the third").await;
            let c = Client::connect(rig.addr()).await;
            let r = c
                .request(&put_head("new", 10, "Expect: 100-continue\r\n"))
                .await;
            assert_eq!(r.status, 100);
            drop(c);
            until(|| st.vanished.get() == 4, "the fourth").await;
            rig.assert_no_temp_files();
            assert_eq!(rig.stored("new"), None);
            assert_eq!(rig.server.store.entry("new"), None);
            assert_eq!(rig.server.store.used(), 8, "only \"original\"");
            assert_eq!(st.committed.get(), 1);
            drop(first);
            until(|| st.open.get() == 0, "every connection's task ended").await;
            rig.stop().await;
        },
        "vanishing clients",
    )
    .await;
}

#[overlap::test]
async fn malformed_heads_get_their_status_and_close_only_their_connection() {
    within(
        HANG,
        async {
            let rig = Rig::start("upload-badhead", "127.0.0.1", Config::default()).await;
            let long_field = format!("GET /files/x HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
            let many_fields = format!("GET /files/x HTTP/1.1\r\n{}\r\n", "X: 1\r\n".repeat(65));
            let cases: Vec<(&[u8], u16)> = vec![
                (b"GARBAGE\r\n\r\n", 400),
                (b"GET /files/x\r\n\r\n", 400),
                (b"GET  /files/x HTTP/1.1\r\n\r\n", 400),
                (b"GET /files/x HTTP/2.0\r\n\r\n", 505),
                (b"GET /files/x HTTQ/1.1\r\n\r\n", 400),
                (b"G(T /files/x HTTP/1.1\r\n\r\n", 400),
                (b"GET /files/x HTTP/1.1\r\nNoColon\r\n\r\n", 400),
                (b"GET /files/x HTTP/1.1\r\nBad Name: v\r\n\r\n", 400),
                (b"GET /files/x HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400),
                (b"GET /files/x HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
                (b"GET /files/x HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
                (b"PUT /files/x HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", 400),
                (b"PUT /files/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
                (b"PUT /files/x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
                (b"PUT /files/x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
                (b"PUT /files/x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
                (b"DELETE /files/x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 400),
                (long_field.as_bytes(), 431),
                (many_fields.as_bytes(), 431),
            ];
            // A kept-alive client, served between every bad one.
            let good = Client::connect(rig.addr()).await;
            for (i, (raw, status)) in cases.iter().enumerate() {
                let c = Client::connect(rig.addr()).await;
                let r = c.request(raw).await;
                let what = String::from_utf8_lossy(&raw[..raw.len().min(60)]);
                assert_eq!(r.status, *status, "{what}");
                assert_eq!(r.field("connection"), Some("close"), "{what}");
                assert!(c.closed().await, "{what}");
                let name = format!("ok{i}");
                assert_eq!(good.request(&put(&name, b"fine", "")).await.status, 201);
            }
            let st = &rig.server.stats;
            assert_eq!(st.bad_heads.get(), cases.len() as u64 - 1);
            assert_eq!(st.accepted.get(), cases.len() as u64 + 1);
            assert_eq!(rig.stored("x"), None);
            rig.assert_no_temp_files();
            rig.stop().await;
        },
        "malformed heads",
    )
    .await;
}

#[overlap::test]
async fn malformed_chunk_framing_gets_400_and_removes_the_temp_file() {
    within(
        HANG,
        async {
            let rig = Rig::start("upload-badchunk", "127.0.0.1", Config::default()).await;
            let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(2000));
            let cases: Vec<&[u8]> = vec![
                b"zz\r\n",
                b"-1\r\n",
                b"\r\n",
                b"1234567890abcdef0\r\n",
                b"5\r\nhelloX\r\n0\r\n\r\n",
                b"5\nhello\r\n0\r\n\r\n",
                b"4\r\nabcd\r\nxyz\r\n",
                b"4\r\nabcd\r\n0\r\nno colon here\r\n\r\n",
                long_ext.as_bytes(),
            ];
            for chunks in &cases {
                let c = Client::connect(rig.addr()).await;
                let mut raw = put_chunked_head("x", "");
                raw.extend_from_slice(chunks);
                let r = c.request(&raw).await;
                let what = String::from_utf8_lossy(&chunks[..chunks.len().min(40)]);
                assert_eq!(
                    r.status,
                    400,
                    "{what}: {:?}",
                    String::from_utf8_lossy(&r.body)
                );
                assert!(c.closed().await, "{what}");
                rig.assert_no_temp_files();
            }
            assert_eq!(rig.server.stats.malformed_bodies.get(), cases.len() as u64);
            assert_eq!(rig.stored("x"), None);
            assert_eq!(rig.server.store.used(), 0);
            rig.stop().await;
        },
        "malformed chunks",
    )
    .await;
}

#[overlap::test]
async fn traversal_and_bad_names_get_400_and_nothing_escapes() {
    within(
        HANG,
        async {
            let rig = Rig::start("upload-names", "127.0.0.1", Config::default()).await;
            let long = "n".repeat(256);
            let bad = [
                "..",
                ".",
                "%2e%2e",
                "%2E%2e",
                "../escape",
                "a/b",
                "..%2fescape",
                "a%2Fb",
                "%00",
                "a%00b",
                "%0a",
                &long,
                ".hidden",
                ".uploads",
                "%zz",
                "%4",
                "",
                "%ff%fe",
            ];
            let c = Client::connect(rig.addr()).await;
            for name in bad {
                // Without a body, the connection goes on.
                assert_eq!(c.request(&get(name, "")).await.status, 400, "GET {name:?}");
                let r = c.request(&super::client::delete(name, "")).await;
                assert_eq!(r.status, 400, "DELETE {name:?}");
                let p = Client::connect(rig.addr()).await;
                let r = p.request(&put(name, b"oops", "")).await;
                assert_eq!(r.status, 400, "PUT {name:?}");
                assert!(p.closed().await, "the body was not read: closed");
            }
            assert_eq!(
                c.request(&b"GET /other HTTP/1.1\r\n\r\n"[..]).await.status,
                404
            );
            // Names that are fine: a space, and 255 bytes.
            let fine = "n".repeat(255);
            assert_eq!(c.request(&put("a%20b", b"spaced", "")).await.status, 201);
            assert_eq!(c.request(&put(&fine, b"long", "")).await.status, 201);
            assert_eq!(rig.stored("a b").unwrap(), b"spaced");
            let mut want = vec![".uploads", "a b", &fine, "store"];
            want.sort();
            assert_eq!(rig.listing(), want);
            rig.assert_no_temp_files();
            rig.stop().await;
        },
        "names",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn idle_kept_alive_and_slow_loris_clients_are_dropped_at_the_header_timeout() {
    within(
        PAUSED_HANG,
        async {
            let cfg = Config::default();
            let limit = cfg.header_timeout;
            let rig = Rig::start("upload-loris", "127.0.0.1", cfg).await;
            let start = time::now();
            let since = || time::now() - start;
            let idle = async {
                let c = Client::connect(rig.addr()).await;
                assert!(c.closed().await);
                since()
            };
            let kept_alive = async {
                let c = Client::connect(rig.addr()).await;
                assert_eq!(c.request(&get("nothing", "")).await.status, 404);
                assert!(c.closed().await);
                since()
            };
            let loris = async {
                let c = Client::connect(rig.addr()).await;
                let trickle = async {
                    // A byte every 3 s: each read comes well within any per-read timeout.
                    for b in b"GET /files/x HTTP/1.1\r\nHost: t\r\n".iter() {
                        if (&c.stream).write_all(&[*b]).await.is_err() {
                            break;
                        }
                        time::sleep(Duration::from_secs(3)).await;
                    }
                };
                let answer = async {
                    let r = c.response(false).await;
                    assert_eq!((r.status, r.field("connection")), (408, Some("close")));
                    assert!(c.closed().await);
                    since()
                };
                overlap::join!(trickle, answer).1
            };
            let served = async {
                time::sleep(Duration::from_secs(5)).await;
                let c = Client::connect(rig.addr()).await;
                let r = c.request(&put("late", b"on time", "")).await;
                assert_eq!(r.status, 201);
                assert_eq!(c.request(&get("late", "")).await.body, b"on time");
                assert!(c.closed().await);
                since()
            };
            let times = overlap::join!(idle, kept_alive, loris, served);
            let five = Duration::from_secs(5);
            assert_eq!(times, (limit, limit, limit, five + limit));
            let st = &rig.server.stats;
            assert_eq!((st.idle_closed.get(), st.slow_heads.get()), (3, 1));
            rig.stop().await;
        },
        "header timeout",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_stalled_body_is_dropped_at_the_body_idle_timeout_but_a_slow_one_is_not() {
    within(
        PAUSED_HANG,
        async {
            let cfg = Config::default();
            let idle = cfg.body_idle;
            let rig = Rig::start("upload-stall", "127.0.0.1", cfg).await;
            let st = rig.server.stats.clone();
            let start = time::now();
            // Half a declared body, then nothing.
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_head("stalled", 200 * KIB, "");
            raw.extend(pattern_seeded(100 * KIB, 16));
            c.send(&raw).await;
            let r = c.response(false).await;
            assert_eq!((r.status, time::now() - start), (408, idle));
            assert!(c.closed().await);
            // Stalled in a chunk-size line.
            let start = time::now();
            let c = Client::connect(rig.addr()).await;
            let mut raw = put_chunked_head("stalled", "");
            raw.extend(b"4\r\nabcd\r\n1");
            c.send(&raw).await;
            let r = c.response(false).await;
            assert_eq!((r.status, time::now() - start), (408, idle));
            assert_eq!(st.body_timeouts.get(), 2);
            rig.assert_no_temp_files();
            // A piece every 20 s for 200 s: slow, never idle for 30 s, so stored.
            let data = pattern_seeded(40 * KIB, 17);
            let c = Client::connect(rig.addr()).await;
            c.send(&put_head("slow", data.len(), "")).await;
            let start = time::now();
            for piece in data.chunks(4 * KIB) {
                time::sleep(Duration::from_secs(20)).await;
                c.send(piece).await;
            }
            let r = c.response(false).await;
            assert_eq!((r.status, r.etag()), (201, etag_of(&data)));
            assert_eq!(time::now() - start, Duration::from_secs(200));
            assert_eq!(st.body_timeouts.get(), 2);
            assert!(rig.stored("stalled").is_none());
            rig.stop().await;
        },
        "body idle timeout",
    )
    .await;
}

#[test]
fn no_fd_or_task_is_left_after_good_and_bad_requests_and_a_stop() {
    run_in_child(
        "faults::no_fd_or_task_is_left_after_good_and_bad_requests_and_a_stop",
        || {
            let rt = overlap::Runtime::new().unwrap();
            rt.block_on(async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let cfg = Config {
                    max_upload: MIB as u64,
                    ..Config::default()
                };
                let rig = Rig::start("upload-leaks", "127.0.0.1", cfg).await;
                let st = rig.server.stats.clone();
                let data = pattern_seeded(MIB, 18);
                let c = Client::connect(rig.addr()).await;
                assert_eq!(c.request(&put("f", &data, "")).await.status, 201);
                assert!(c.request(&get("f", "Range: bytes=10-\r\n")).await.body == data[10..]);
                // A client gone mid-body, a 413 mid-body, a malformed head, an idle client,
                // and an upload still in progress when the server stops.
                let gone = Client::connect(rig.addr()).await;
                gone.send(&put_head("g", MIB, "")).await;
                gone.send(&data[..1000]).await;
                drop(gone);
                let mut raw = put_chunked_head("h", "");
                raw.extend(chunked(&pattern_seeded(3 * MIB, 19), || 64 * KIB));
                let big = Client::connect(rig.addr()).await;
                assert_eq!(refused_mid_body(&big, &raw).await.0.status, 413);
                let bad = Client::connect(rig.addr()).await;
                assert_eq!(bad.request(b"NOPE\r\n\r\n").await.status, 400);
                let _idle = Client::connect(rig.addr()).await;
                let pending = Client::connect(rig.addr()).await;
                pending.send(&put_head("p", MIB, "")).await;
                pending.send(&data[..5000]).await;
                let store = &rig.server.store;
                let steady = || {
                    st.vanished.get() == 1 && st.open.get() == 3 && store.temp_files().len() == 1
                };
                // The one temp file left is the pending upload's.
                until(steady, "the steady state").await;
                let store = rig.server.store.clone();
                rig.server.stop().await;
                assert_eq!(st.open.get(), 0, "the connections' tasks aborted");
                assert!(
                    store.temp_files().is_empty(),
                    "the pending upload's guard ran"
                );
                drop((c, big, bad, _idle, pending, store, rig.root));
                assert_eq!(overlap::metrics().tasks_alive, tasks);
                // A file's fd closes on the pool once its last job ends.
                until(|| open_fds() == fds, "the fds back").await;
            });
        },
    );
}
