//! The tests of limits and faults: LRU eviction under the size cap while a reader streams
//! the evicted file, an origin dying or stalling mid-body, malformed requests, a client
//! vanishing mid-body, and a stop in the middle of a fill.

use std::time::Duration;

use crate::cache::State;
use crate::client::{get, Client};
use crate::origin::{Resource, Send};
use crate::rig::{deleted_fds_in, fds_in, rig, MIB};
use crate::support::{pattern_seeded, until, within};

const HANG: Duration = Duration::from_secs(60);
/// The hang guard on the paused clock, where hours pass in no time.
const PAUSED_HANG: Duration = Duration::from_secs(24 * 3600);
const FRESH: [(&str, &str); 1] = [("Cache-Control", "max-age=600")];

/// Past the cap, the least recently used entry goes, though a slow client still streams
/// it: its file is unlinked at once, the client still gets every byte, and the blocks are
/// freed (no fd left on the deleted file) when it is done.
#[overlap::test]
async fn lru_eviction_unlinks_a_file_still_streamed_and_frees_it_after() {
    within(
        HANG,
        async {
            let rig = rig("proxy-evict", 16 * MIB as u64).await;
            let a = pattern_seeded(12 * MIB, 6);
            for (path, len) in [("/s", MIB), ("/t", MIB), ("/b", 3 * MIB)] {
                rig.origin.put(
                    path,
                    Resource::new(&pattern_seeded(len, len as u32), &FRESH),
                );
            }
            rig.origin.put("/a", Resource::new(&a, &FRESH));
            assert!(get(rig.proxy.addr, "/a", "").await.body == a);
            // A client that asks for /a and reads only its head: the proxy's send_to waits.
            let mut slow = Client::connect(rig.proxy.addr).await;
            slow.request("GET", "/a", "").await;
            let head = slow.head().await;
            assert_eq!(head.cache(), "HIT");
            for path in ["/s", "/t", "/s"] {
                get(rig.proxy.addr, path, "").await;
            }
            assert_eq!(rig.files(), ["1.body", "2.body", "3.body"]);
            assert_eq!(rig.proxy.cache.used(), 14 * MIB as u64);
            // 3 MiB more is over the cap by one: /a, the least recently used, goes.
            let b = get(rig.proxy.addr, "/b", "").await;
            assert_eq!((b.cache(), b.body.len()), ("MISS", 3 * MIB));
            assert_eq!(rig.files(), ["2.body", "3.body", "4.body"]);
            assert_eq!(rig.proxy.cache.used(), 5 * MIB as u64);
            assert_eq!(rig.proxy.stats().evictions, 1);
            assert_eq!(
                deleted_fds_in(rig.dir.path()),
                1,
                "the reader's file, unlinked"
            );
            let rest = slow.rest(head, Vec::new()).await;
            assert!(rest.complete && rest.body == a, "{} bytes", rest.body.len());
            until(
                || deleted_fds_in(rig.dir.path()) == 0,
                "the deleted file closed",
            )
            .await;
            assert_eq!(get(rig.proxy.addr, "/a", "").await.cache(), "MISS");
            assert_eq!(rig.origin.hits("/a"), 2);
            drop(slow);
            rig.finish().await;
        },
        "eviction",
    )
    .await;
}

/// An origin that closes mid-body: the client that fetched and the two that followed get
/// the bytes there were and a closed connection (short of the `Content-Length`), the
/// partial entry and its file are gone, and the next request fetches again.
#[overlap::test]
async fn an_origin_dying_mid_body_cuts_the_replies_and_discards_the_entry() {
    within(
        HANG,
        async {
            let rig = rig("proxy-die", 64 * MIB as u64).await;
            let body = pattern_seeded(300_000, 7);
            let dying = Resource::new(&body, &FRESH).sent(Send::DieAfter(100_000));
            rig.origin.put("/d", dying);
            let mut clients = Vec::new();
            for _ in 0..3 {
                let mut c = Client::connect(rig.proxy.addr).await;
                c.request("GET", "/d", "").await;
                clients.push(c);
            }
            until(|| rig.proxy.stats().coalesced == 2, "two following").await;
            rig.origin.open_gate(1);
            for c in &mut clients {
                let cut = c.reply(false).await;
                assert_eq!(
                    (cut.status, cut.header("content-length")),
                    (200, Some("300000"))
                );
                assert!(!cut.complete);
                assert!(cut.body == body[..100_000], "{} bytes", cut.body.len());
                assert!(c.closed().await);
            }
            assert!(rig.proxy.cache.entries().is_empty());
            until(|| rig.files().is_empty(), "the partial file unlinked").await;
            assert_eq!(rig.proxy.stats().failed_fills, 1);
            rig.origin.put("/d", Resource::new(&body, &FRESH));
            let again = get(rig.proxy.addr, "/d", "").await;
            assert_eq!(
                (again.cache(), again.complete, again.body == body),
                ("MISS", true, true)
            );
            assert_eq!(rig.origin.hits("/d"), 2);
            drop(clients);
            rig.finish().await;
        },
        "origin dies",
    )
    .await;
}

/// An origin that sends part of a body and then nothing: after the idle timeout (paused
/// clock) the fill fails, the follower's reply is cut, and the next request refetches.
#[overlap::test(start_paused = true)]
async fn an_origin_stalling_mid_body_times_out() {
    within(
        PAUSED_HANG,
        async {
            let rig = rig("proxy-stall", 64 * MIB as u64).await;
            let body = pattern_seeded(50_000, 8);
            rig.origin
                .put("/st", Resource::new(&body, &FRESH).sent(Send::Gated(1000)));
            rig.origin.open_gate(1);
            let start = overlap::time::Instant::now();
            let mut c = Client::connect(rig.proxy.addr).await;
            c.request("GET", "/st", "").await;
            let cut = c.reply(false).await;
            assert!(!cut.complete && cut.body == body[..1000]);
            assert_eq!(
                start.elapsed(),
                Duration::from_secs(30),
                "the origin idle timeout"
            );
            assert_eq!(rig.proxy.stats().failed_fills, 1);
            rig.origin.put("/st", Resource::new(&body, &FRESH));
            assert!(get(rig.proxy.addr, "/st", "").await.body == body);
            rig.finish().await;
        },
        "stall",
    )
    .await;
}

/// Bad requests get 400 (431 for a head too large, 501 for another method) and a closed
/// connection, and never reach the origin; a head cut off gets nothing; a good request
/// still works after them all.
#[overlap::test]
async fn malformed_requests_get_400_and_never_reach_the_origin() {
    within(
        HANG,
        async {
            let rig = rig("proxy-bad", 64 * MIB as u64).await;
            rig.origin.put("/x", Resource::new(b"fine", &FRESH));
            let huge = format!(
                "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
                "b".repeat(9000)
            );
            let cases: [(&[u8], u16, Option<&str>); 8] = [
                (
                    b"GARBAGE\r\n\r\n",
                    400,
                    Some("not an HTTP/1.x request head"),
                ),
                (
                    b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n",
                    400,
                    Some("not HTTP/1.1"),
                ),
                (b"GET /x HTTP/1.1\r\n\r\n", 400, Some("no Host header")),
                (
                    b"GET /x HTTP/1.1\r\nHost a\r\n\r\n",
                    400,
                    Some("not an HTTP/1.x request head"),
                ),
                (
                    b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                    400,
                    Some("a request body"),
                ),
                (
                    b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
                    400,
                    Some("a target that is not a path"),
                ),
                (huge.as_bytes(), 431, None),
                (b"POST /x HTTP/1.1\r\nHost: a\r\n\r\n", 501, None),
            ];
            for (raw, status, why) in cases {
                let mut c = Client::connect(rig.proxy.addr).await;
                c.send_raw(raw).await;
                let r = c.reply(false).await;
                assert_eq!((r.status, r.header("x-error")), (status, why));
                assert!(c.closed().await, "{status} closes");
            }
            let mut cut = Client::connect(rig.proxy.addr).await;
            cut.send_raw(b"GET /x HTTP/1.1\r\nHo").await;
            cut.sock.shutdown(std::net::Shutdown::Write).unwrap();
            assert!(cut.closed().await, "a head cut off: no reply");
            assert_eq!(rig.proxy.stats().bad_requests, 7);
            assert_eq!(rig.origin.hits("/x"), 0);
            assert_eq!(get(rig.proxy.addr, "/x", "").await.body, b"fine");
            rig.finish().await;
        },
        "malformed",
    )
    .await;
}

/// A client vanishing mid-body costs the fill nothing: it completes, the entry is
/// complete with no reader, and the next client has a hit.
#[overlap::test]
async fn a_client_vanishing_mid_body_leaves_the_fill_to_complete() {
    within(
        HANG,
        async {
            let rig = rig("proxy-vanish", 64 * MIB as u64).await;
            let body = pattern_seeded(2 * MIB, 9);
            rig.origin.put(
                "/g",
                Resource::new(&body, &FRESH).sent(Send::Gated(256 * 1024)),
            );
            let mut c = Client::connect(rig.proxy.addr).await;
            c.request("GET", "/g", "").await;
            rig.origin.open_gate(1);
            c.head().await;
            assert!(c.body_part(256 * 1024).await == body[..256 * 1024]);
            drop(c);
            rig.origin.open_gate(2);
            let done = || rig.proxy.cache.entries() == [("/g".into(), State::Complete, 0)];
            until(done, "the fill done, no reader left").await;
            let hit = get(rig.proxy.addr, "/g", "").await;
            assert_eq!((hit.cache(), hit.body == body), ("HIT", true));
            assert_eq!(rig.origin.hits("/g"), 1);
            rig.finish().await;
        },
        "vanish",
    )
    .await;
}

/// Stopping the proxy while a fill and its followers are mid-body ends every task and
/// closes every fd on the cache's files; the cut fill's file is unlinked.
#[overlap::test]
async fn a_stop_mid_fill_leaves_no_task_and_no_fd() {
    within(
        HANG,
        async {
            let rig = rig("proxy-stop", 64 * MIB as u64).await;
            let body = pattern_seeded(MIB, 10);
            rig.origin.put("/k", Resource::new(&body, &FRESH));
            rig.origin
                .put("/m", Resource::new(&body, &FRESH).sent(Send::Gated(4096)));
            assert!(get(rig.proxy.addr, "/k", "").await.body == body);
            let mut clients = Vec::new();
            for _ in 0..3 {
                let mut c = Client::connect(rig.proxy.addr).await;
                c.request("GET", "/m", "").await;
                clients.push(c);
            }
            until(|| rig.proxy.stats().coalesced == 2, "two waiting").await;
            rig.origin.open_gate(1);
            for c in &mut clients {
                c.head().await;
                assert!(c.body_part(4096).await == body[..4096]);
            }
            assert_eq!(fds_in(rig.dir.path()), 2, "/k's file and /m's");
            let dir = rig.finish().await;
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                1,
                "/k's file only"
            );
            for c in &mut clients {
                assert!(c.closed().await);
            }
        },
        "stop",
    )
    .await;
}
