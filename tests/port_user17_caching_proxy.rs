//! A user's HTTP/1.1 caching reverse proxy (a small Varnish, or nginx's `proxy_cache`),
//! sketched as one would for tokio (hand-rolled HTTP/1.1 over httparse, no hyper), then
//! written for overlap with `overlap::fs::PositionalFile` for the cache files: the wire
//! format (`port_user17_caching_proxy/http.rs`), the index, admission, freshness and LRU
//! cap (`cache.rs`), the origin fetch, the fill task and the pass relay (`fill.rs`), the
//! accept loop and the decision per request (`proxy.rs`), and the tests' origin, client
//! and set-up (`origin.rs`, `client.rs`, `rig.rs`); the tests of freshness and `Vary` are
//! in `freshness.rs`, those of the cap and the faults in `faults.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::{os::unix::fs::FileExt, rc::Rc, sync::Arc};
//! use tokio::{io::{AsyncReadExt, AsyncWriteExt}, net::{TcpListener, TcpStream}};
//! use tokio::sync::watch;
//! use tokio::time::{timeout, Instant};
//!
//! struct Entry {                                  // in a HashMap<url, Vec<Rc<Entry>>>
//!     file: Arc<std::fs::File>,                   // <dir>/<id>.body
//!     progress: watch::Sender<Progress>,          // { state, written }
//!     stored: RefCell<Option<Stored>>,            // head, len, stored_at, lifetime, vary
//! }
//! // A miss: the entry goes in the index at once (later requests wait on it), then
//! let (mut origin, resp, leftover) = fetch(&req, None).await?;   // GET, Connection: close
//! match cache.admit(&resp, &req) {                // 200, Content-Length, no no-store/private,
//!     Err(_) => return pass(client, origin).await, // max-age / Expires-Date / validators
//!     Ok(admit) => cache.publish(&entry, admit),  // evicts LRU complete entries past the cap
//! }
//! tokio::task::spawn_local(async move {           // the fill: origin -> file
//!     let mut buf = vec![0; 64 * 1024];
//!     while at < len {
//!         let n = timeout(idle, origin.read(&mut buf)).await??;  // 0: the origin died
//!         let (f, chunk) = (file.clone(), buf[..n].to_vec());
//!         spawn_blocking(move || f.write_all_at(&chunk, at)).await??;
//!         at += n as u64;
//!         entry.progress.send_modify(|p| p.written = at);
//!     }
//! });
//! // Every client, the first one too, follows the file as it grows:
//! client.write_all(&head).await?;
//! let mut rx = entry.progress.subscribe();
//! while sent < end {
//!     let p = *rx.borrow_and_update();
//!     if p.written > sent {
//!         // No sendfile in tokio: read the bytes back and write them out.
//!         let (f, at) = (file.clone(), sent);
//!         let chunk = spawn_blocking(move || read_at(&f, at, p.written - at)).await??;
//!         client.write_all(&chunk).await?;
//!         sent += chunk.len() as u64;
//!     } else if p.state == State::Failed { return Ok(false) }   // cut: close the connection
//!     else { rx.changed().await? }
//! }
//! // Stale with a validator: fetch(&req, Some(&stored)) with If-None-Match /
//! // If-Modified-Since; 304 refreshes the entry's headers and age, 200 replaces it.
//! // Range on a complete entry: 206 with Content-Range, 416 past the end.
//! ```
//!
//! The tests check, over real sockets on 127.0.0.1 against an origin task that counts its
//! hits, with the cache files in a temp dir: a miss stored and then three keep-alive hits
//! the origin never sees, byte-exact with the origin's end-to-end headers (and not its
//! hop-by-hop ones), the file read back with `read_vec_at`; twenty concurrent misses making
//! one origin fetch, the nineteen followers each getting the first half of the body before
//! the origin sends the second; a client that reads nothing not holding back a fast one on
//! the same filling entry (4 MiB); on the paused clock, `max-age` hits with a growing
//! `Age`, a revalidation with `If-None-Match` answered 304 that refreshes the entry (its
//! new headers and `max-age`), then a changed resource's 200 replacing it (its old file
//! unlinked), `Expires` minus `Date` as the lifetime and `If-Modified-Since` from
//! `Last-Modified`, an `Expires` that is no date revalidated every time; `no-store`,
//! `private`, a 404 and a response without freshness or validator passed on every time and
//! never written, and requests that waited on a fetch whose answer turned out private
//! fetching for themselves; `Vary: Accept-Language` keeping one variant per language, a
//! request that waited on another language's fetch fetching its own; ranges from a
//! complete entry (206 for a span, a suffix, an open end and one past the end clipped, 416
//! past the end, the whole body for a malformed or multi-range header and on a miss); HEAD
//! on a miss filling the cache and on a hit; the LRU cap evicting the least recently used
//! entry while a slow client still streams it (the file unlinked at once, the client
//! getting every byte, and no fd left on the deleted file after); an origin dying mid-body
//! (the fetching client and two followers cut at exactly the bytes there were, the
//! connection closed, the entry and its file gone, the next request fetching again); an
//! origin stalling mid-body (the fill failing at the 30 s idle timeout of the paused
//! clock); malformed requests (not HTTP, HTTP/1.0, no Host, a header without a colon, a
//! body, an absolute target) getting 400 with the reason, a head over 8 KiB 431, a POST
//! 501, all closing the connection and none reaching the origin, a head cut off getting
//! nothing; a client vanishing mid-body while the fill completes for the next one; and a
//! stop in the middle of a fill with followers. Every test ends by stopping the proxy and
//! the origin and checking that no task is left (`overlap::metrics().tasks_alive`) and no
//! fd is open on the cache dir's files, unlinked ones included (`/proc/self/fd` links under
//! the test's own dir, so other tests cannot race the count).
//!
//! The tests were run against the proxy broken on purpose: eviction of the most recently
//! used entry instead of the least fails the eviction test; followers served only once the
//! fill is complete (no streaming) fail the coalescing and slow-client tests.
//!
//! What porting it found missing, or different, in overlap:
//!
//! - Nothing was missing, and two things were better than tokio's: tokio has no positional
//!   file and no `sendfile`, so the sketch does `spawn_blocking` around `FileExt` for the
//!   fill and reads every hit back into user memory to `write_all` it. Here the fill is
//!   `PositionalFile::write_vec_at` (the chunk handed to the pool, not copied) and every
//!   reader, hit or follower, is `PositionalFile::send_to` from an offset, straight from the
//!   page cache to the socket, for exactly the bytes the `watch` says are written (its docs
//!   promise that a write awaited before a `send_to` is sent, which is what following a
//!   fill needs). `send_to` takes the `TcpStream` itself (`&*sock`), and waits for room in
//!   the socket, so a slow client only ever holds its own task.
//! - `write_vec_at` took the `Vec` and did not give it back, so the fill allocated a new
//!   64 KiB buffer for each chunk it read from the origin (tokio-uring's `write_all_at`
//!   returns the buffer in its `BufResult`; `write_all_at(&chunk)` would reuse one buffer
//!   but copy it for the pool). Fixed: `write_vec_at` now hands the buffer back on
//!   success, and the fill reads into it again.
//! - `send_to`'s errors name the file even when the destination failed: a client that
//!   vanished mid-body gives `failed to send /tmp/.../1.body: Broken pipe`, which reads as
//!   a problem with the cache file. The kind (`BrokenPipe`) is right, and the message is as
//!   `File::send_to`'s docs say and its tests pin, so it stays; a proxy logging it must
//!   look at the kind to tell a gone client from a disk error.
//! - Each indexed entry keeps its `PositionalFile` open (one fd per entry), so that an
//!   evicted file stays readable for its readers after the unlink; a bigger cache would
//!   need an fd budget. The unlink itself is `std::fs::remove_file` from sync code
//!   (eviction, a fill's drop guard), as it would be with tokio.
//! - On the paused clock, auto-advance waited for the fill's pool jobs, and the origin's
//!   idle timeout fired at exactly 30 s of virtual time, as with tokio. `watch`
//!   (`Sender::new`, `subscribe`, `borrow_and_update`, `changed`, `wait_for`), `timeout`,
//!   `Instant::saturating_duration_since` and `JoinHandle::{abort, is_finished}` all have
//!   tokio's names and behaviour.
//!
//! What the port changed, against tokio: shared state is `Rc` with `Cell`/`RefCell` where
//! tokio's `spawn` needs `Arc` and a lock (the sketch's `spawn_local`). The program's own
//! limits: only `Content-Length` bodies from the origin are stored (the rest are passed
//! on), `Vary` on one header only, HTTP/1.0 clients are refused, a 200 to a revalidation
//! starts a new fill without coalescing the concurrent revalidations, and a range on an
//! entry still filling gets the whole body.

mod support;

#[path = "port_user17_caching_proxy/cache.rs"]
mod cache;
#[path = "port_user17_caching_proxy/client.rs"]
mod client;
#[path = "port_user17_caching_proxy/faults.rs"]
mod faults;
#[path = "port_user17_caching_proxy/fill.rs"]
mod fill;
#[path = "port_user17_caching_proxy/freshness.rs"]
mod freshness;
#[path = "port_user17_caching_proxy/http.rs"]
mod http;
#[path = "port_user17_caching_proxy/origin.rs"]
mod origin;
#[path = "port_user17_caching_proxy/proxy.rs"]
mod proxy;
#[path = "port_user17_caching_proxy/rig.rs"]
mod rig;

use std::time::Duration;

use client::{get, Client};
use origin::{Resource, Send};
use rig::{rig, MIB};
use support::{pattern_seeded, until, within};

/// A hang guard (virtual time in the paused tests).
const HANG: Duration = Duration::from_secs(60);

/// A miss stores the body in a file while the client gets it, byte-exact and with the
/// origin's end-to-end headers (hop-by-hop ones dropped); the next requests, on one
/// keep-alive connection, are hits the origin never sees.
#[overlap::test]
async fn a_miss_is_stored_and_then_served_from_the_file() {
    within(
        HANG,
        async {
            let rig = rig("proxy-hit", 64 * MIB as u64).await;
            let body = pattern_seeded(300_000, 1);
            let headers = [
                ("Cache-Control", "max-age=300"),
                ("ETag", "\"a1\""),
                ("X-Origin", "yes"),
            ];
            rig.origin.put("/a", Resource::new(&body, &headers));
            let mut c = Client::connect(rig.proxy.addr).await;
            c.request("GET", "/a", "").await;
            let first = c.reply(false).await;
            assert_eq!((first.status, first.cache()), (200, "MISS"));
            assert!(first.complete && first.body == body);
            assert_eq!(first.header("content-length"), Some("300000"));
            assert_eq!(first.header("etag"), Some("\"a1\""));
            assert_eq!(first.header("x-origin"), Some("yes"));
            assert_eq!(
                first.header("connection"),
                None,
                "hop-by-hop, not passed on"
            );
            for _ in 0..3 {
                c.request("GET", "/a", "").await;
                let hit = c.reply(false).await;
                assert_eq!((hit.status, hit.cache()), (200, "HIT"));
                assert!(hit.complete && hit.body == body);
                assert_eq!(hit.header("age"), Some("0"));
            }
            assert_eq!(rig.origin.hits("/a"), 1);
            let s = rig.proxy.stats();
            assert_eq!((s.misses, s.hits, s.coalesced), (1, 3, 0));
            // The file holds the body, read back at offsets.
            assert_eq!(rig.files(), ["1.body"]);
            let file = overlap::fs::PositionalFile::open(rig.dir.join("1.body"))
                .await
                .unwrap();
            assert_eq!(
                file.read_vec_at(10, 299_995).await.unwrap(),
                body[299_995..]
            );
            drop(file);
            drop(c);
            rig.finish().await;
        },
        "hit",
    )
    .await;
}

/// Twenty clients ask for one URL at once: one origin fetch; the nineteen who came while
/// it ran follow the fill as it grows, each getting the first half of the body before the
/// origin has sent the second.
#[overlap::test]
async fn twenty_concurrent_misses_make_one_fetch_and_stream_as_it_fills() {
    within(
        HANG,
        async {
            let rig = rig("proxy-coalesce", 64 * MIB as u64).await;
            let body = pattern_seeded(MIB, 2);
            let half = MIB / 2;
            let res =
                Resource::new(&body, &[("Cache-Control", "max-age=60")]).sent(Send::Gated(half));
            rig.origin.put("/big", res);
            let mut clients = Vec::new();
            for _ in 0..20 {
                let mut c = Client::connect(rig.proxy.addr).await;
                c.request("GET", "/big", "").await;
                clients.push(c);
            }
            until(|| rig.proxy.stats().coalesced == 19, "19 requests waiting").await;
            assert_eq!(rig.origin.hits("/big"), 1);
            rig.origin.open_gate(1);
            let mut heads = Vec::new();
            for c in &mut clients {
                let head = c.head().await;
                let part = c.body_part(half).await;
                assert!(part == body[..half]);
                heads.push(head);
            }
            // Every client has half the body; the origin has not sent the rest yet.
            rig.origin.open_gate(2);
            let mut labels = Vec::new();
            for (c, head) in clients.iter_mut().zip(heads) {
                let reply = c.rest(head, body[..half].to_vec()).await;
                assert!(reply.complete && reply.body == body);
                labels.push(reply.cache().to_string());
            }
            labels.sort();
            assert_eq!(labels[..19], vec!["COALESCED".to_string(); 19][..]);
            assert_eq!(labels[19], "MISS");
            assert_eq!(rig.origin.hits("/big"), 1);
            let hit = get(rig.proxy.addr, "/big", "").await;
            assert_eq!((hit.cache(), hit.body == body), ("HIT", true));
            assert_eq!(rig.origin.hits("/big"), 1);
            drop(clients);
            rig.finish().await;
        },
        "coalescing",
    )
    .await;
}

/// A client that reads nothing does not hold back another on the same filling entry: the
/// fast one gets all 4 MiB while the slow one has read none, then the slow one all of it.
#[overlap::test]
async fn a_slow_client_does_not_stall_a_fast_one() {
    within(
        HANG,
        async {
            let rig = rig("proxy-slow", 64 * MIB as u64).await;
            let body = pattern_seeded(4 * MIB, 3);
            let res =
                Resource::new(&body, &[("Cache-Control", "max-age=60")]).sent(Send::Gated(MIB));
            rig.origin.put("/v", res);
            let mut slow = Client::connect(rig.proxy.addr).await;
            slow.request("GET", "/v", "").await;
            until(|| rig.origin.hits("/v") == 1, "the fetch").await;
            let mut fast = Client::connect(rig.proxy.addr).await;
            fast.request("GET", "/v", "").await;
            until(|| rig.proxy.stats().coalesced == 1, "the fast one waiting").await;
            rig.origin.open_gate(1);
            let head = fast.head().await;
            let part = fast.body_part(MIB).await;
            rig.origin.open_gate(2);
            let got = fast.rest(head, part).await;
            assert!(
                got.complete && got.body == body,
                "the fast client has it all"
            );
            assert_eq!(got.cache(), "COALESCED");
            until(
                || rig.proxy.cache.entries()[0].1 == cache::State::Complete,
                "fill done",
            )
            .await;
            let late = slow.reply(false).await;
            assert!(late.complete && late.body == body);
            assert_eq!((late.cache(), rig.origin.hits("/v")), ("MISS", 1));
            drop((slow, fast));
            rig.finish().await;
        },
        "slow client",
    )
    .await;
}

/// `no-store`, `private`, a 404 and a response never fresh without a validator are passed
/// on each time and never written to the cache dir.
#[overlap::test]
async fn what_may_not_be_stored_is_passed_on_each_time() {
    within(
        HANG,
        async {
            let rig = rig("proxy-pass", 64 * MIB as u64).await;
            rig.origin.put(
                "/ns",
                Resource::new(b"secret", &[("Cache-Control", "no-store")]),
            );
            rig.origin.put(
                "/p",
                Resource::new(b"mine", &[("Cache-Control", "private, max-age=60")]),
            );
            rig.origin.put("/nv", Resource::new(b"plain", &[]));
            for (path, body) in [("/ns", &b"secret"[..]), ("/p", b"mine"), ("/nv", b"plain")] {
                for _ in 0..3 {
                    let r = get(rig.proxy.addr, path, "").await;
                    assert_eq!(
                        (r.status, r.cache(), r.body.as_slice()),
                        (200, "PASS", body)
                    );
                }
                assert_eq!(rig.origin.hits(path), 3, "{path}");
            }
            let missing = get(rig.proxy.addr, "/none", "").await;
            assert_eq!((missing.status, missing.cache()), (404, "PASS"));
            // Requests that waited for a fetch whose answer may not be stored fetch for
            // themselves: another user's private response is not theirs.
            let held = Resource::new(b"per user", &[("Cache-Control", "private")]);
            rig.origin.put("/u", held.sent(Send::Gated(3)));
            let mut clients = Vec::new();
            for _ in 0..3 {
                let mut c = Client::connect(rig.proxy.addr).await;
                c.request("GET", "/u", "").await;
                clients.push(c);
            }
            until(|| rig.proxy.stats().coalesced == 2, "two waiting").await;
            rig.origin.open_gate(2);
            for c in &mut clients {
                let r = c.reply(false).await;
                assert_eq!((r.cache(), r.body.as_slice()), ("PASS", &b"per user"[..]));
            }
            assert_eq!(rig.origin.hits("/u"), 3);
            assert!(rig.files().is_empty(), "{:?}", rig.files());
            assert!(rig.proxy.cache.entries().is_empty());
            assert_eq!(rig.proxy.stats().passes, 13);
            drop(clients);
            rig.finish().await;
        },
        "pass",
    )
    .await;
}

/// Ranges from a complete entry: 206 with `Content-Range`, a suffix, an open end, 416 past
/// the end; a malformed or multi-range header gets the whole body; a range on a miss too.
#[overlap::test]
async fn ranges_are_served_from_a_complete_entry() {
    within(
        HANG,
        async {
            let rig = rig("proxy-range", 64 * MIB as u64).await;
            let body = pattern_seeded(100_000, 4);
            rig.origin.put(
                "/f",
                Resource::new(&body, &[("Cache-Control", "max-age=60")]),
            );
            let first = get(rig.proxy.addr, "/f", "Range: bytes=0-9\r\n").await;
            assert_eq!(
                (first.status, first.cache(), first.body.len()),
                (200, "MISS", 100_000)
            );
            let mut c = Client::connect(rig.proxy.addr).await;
            let cases: [(&str, u16, Option<&str>, &[u8]); 6] = [
                (
                    "bytes=10-19",
                    206,
                    Some("bytes 10-19/100000"),
                    &body[10..20],
                ),
                (
                    "bytes=-5",
                    206,
                    Some("bytes 99995-99999/100000"),
                    &body[99_995..],
                ),
                (
                    "bytes=99990-",
                    206,
                    Some("bytes 99990-99999/100000"),
                    &body[99_990..],
                ),
                (
                    "bytes=50000-999999",
                    206,
                    Some("bytes 50000-99999/100000"),
                    &body[50_000..],
                ),
                ("bytes=z-1", 200, None, &body),
                ("bytes=0-1,5-6", 200, None, &body),
            ];
            for (range, status, content_range, want) in cases {
                c.request("GET", "/f", &format!("Range: {range}\r\n")).await;
                let r = c.reply(false).await;
                assert_eq!(
                    (r.status, r.header("content-range")),
                    (status, content_range),
                    "{range}"
                );
                assert!(r.complete && r.body == want, "{range}");
            }
            c.request("GET", "/f", "Range: bytes=100000-\r\n").await;
            let r = c.reply(false).await;
            assert_eq!(
                (r.status, r.header("content-range")),
                (416, Some("bytes */100000"))
            );
            // The connection goes on after a 416.
            c.request("GET", "/f", "Range: bytes=0-0\r\n").await;
            assert_eq!(c.reply(false).await.body, &body[..1]);
            assert_eq!(rig.origin.hits("/f"), 1);
            drop(c);
            rig.finish().await;
        },
        "ranges",
    )
    .await;
}

/// HEAD on a miss fetches (a GET) and stores, sending the head only; the GET after it on
/// the same connection is a hit with the body, and HEAD on a hit is a head again.
#[overlap::test]
async fn head_requests_get_heads_and_fill_the_cache() {
    within(
        HANG,
        async {
            let rig = rig("proxy-head", 64 * MIB as u64).await;
            let body = pattern_seeded(70_000, 5);
            rig.origin.put(
                "/h",
                Resource::new(&body, &[("Cache-Control", "max-age=60")]),
            );
            let mut c = Client::connect(rig.proxy.addr).await;
            c.request("HEAD", "/h", "").await;
            let head = c.reply(true).await;
            assert_eq!(
                (head.status, head.cache(), head.header("content-length")),
                (200, "MISS", Some("70000"))
            );
            let done = || rig.proxy.cache.entries() == [("/h".into(), cache::State::Complete, 0)];
            until(done, "the fill done").await;
            c.request("GET", "/h", "").await;
            let got = c.reply(false).await;
            assert_eq!((got.cache(), got.body == body), ("HIT", true));
            c.request("HEAD", "/h", "").await;
            assert_eq!(c.reply(true).await.cache(), "HIT");
            c.request("GET", "/h", "Connection: close\r\n").await;
            assert!(c.reply(false).await.body == body);
            assert!(c.closed().await, "closed after Connection: close");
            assert_eq!(
                (
                    rig.origin.hits("/h"),
                    rig.origin.last_request().method.as_str()
                ),
                (1, "GET")
            );
            rig.finish().await;
        },
        "head",
    )
    .await;
}
