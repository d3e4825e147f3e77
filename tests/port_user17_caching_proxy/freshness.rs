//! The tests of freshness on the paused clock (`max-age`, `Expires`, revalidation with
//! `If-None-Match` and `If-Modified-Since`) and of `Vary`.

use std::time::Duration;

use crate::client::{get, Client};
use crate::http;
use crate::origin::{Resource, Send};
use crate::rig::{rig, MIB};
use crate::support::{until, within};

const HANG: Duration = Duration::from_secs(60);
/// The hang guard on the paused clock, where hours pass in no time.
const PAUSED_HANG: Duration = Duration::from_secs(24 * 3600);
const DATE: &str = "Fri, 04 Dec 2026 22:00:00 GMT";

/// `max-age` on the paused clock: hits with a growing `Age`, then a conditional request
/// (`If-None-Match`) answered 304, which refreshes the entry (new headers, `Age` 0), and
/// later a changed resource's 200, which replaces it.
#[overlap::test(start_paused = true)]
async fn max_age_then_revalidation_with_an_etag() {
    within(
        PAUSED_HANG,
        async {
            let rig = rig("proxy-maxage", 64 * MIB as u64).await;
            let v1 = Resource::new(
                b"version one",
                &[("Cache-Control", "max-age=60"), ("ETag", "\"v1\"")],
            );
            rig.origin.put("/r", v1);
            assert_eq!(get(rig.proxy.addr, "/r", "").await.cache(), "MISS");
            overlap::time::advance(Duration::from_secs(30)).await;
            let hit = get(rig.proxy.addr, "/r", "").await;
            assert_eq!((hit.cache(), hit.header("age")), ("HIT", Some("30")));
            overlap::time::advance(Duration::from_secs(31)).await;
            let mut v1b = Resource::new(
                b"version one",
                &[("Cache-Control", "max-age=120"), ("ETag", "\"v1\"")],
            );
            v1b.headers.push(("X-Refreshed".into(), "1".into()));
            rig.origin.put("/r", v1b);
            let re = get(rig.proxy.addr, "/r", "").await;
            assert_eq!(
                (re.status, re.cache(), re.header("age")),
                (200, "REVALIDATED", Some("0"))
            );
            assert_eq!(
                (re.body.as_slice(), re.header("x-refreshed")),
                (&b"version one"[..], Some("1"))
            );
            let asked = rig.origin.last_request();
            assert_eq!(
                http::header(&asked.headers, "if-none-match"),
                Some("\"v1\"")
            );
            assert_eq!((rig.origin.not_modified(), rig.origin.hits("/r")), (1, 2));
            // The refreshed entry is fresh for the new max-age.
            overlap::time::advance(Duration::from_secs(100)).await;
            assert_eq!(get(rig.proxy.addr, "/r", "").await.cache(), "HIT");
            overlap::time::advance(Duration::from_secs(21)).await;
            let v2 = Resource::new(
                b"version two!",
                &[("Cache-Control", "max-age=60"), ("ETag", "\"v2\"")],
            );
            rig.origin.put("/r", v2);
            let new = get(rig.proxy.addr, "/r", "").await;
            assert_eq!(
                (new.cache(), new.body.as_slice()),
                ("MISS", &b"version two!"[..])
            );
            assert_eq!(get(rig.proxy.addr, "/r", "").await.body, b"version two!");
            assert_eq!((rig.origin.hits("/r"), rig.origin.not_modified()), (3, 1));
            assert_eq!(rig.files(), ["2.body"], "the replaced entry's file is gone");
            assert_eq!(rig.proxy.stats().revalidated, 1);
            rig.finish().await;
        },
        "max-age",
    )
    .await;
}

/// `Expires` minus `Date` as the lifetime, then `If-Modified-Since` from `Last-Modified`;
/// an `Expires` that is no date is already stale (revalidated every time).
#[overlap::test(start_paused = true)]
async fn expires_and_if_modified_since() {
    within(
        PAUSED_HANG,
        async {
            let rig = rig("proxy-expires", 64 * MIB as u64).await;
            let lm = "Thu, 03 Dec 2026 10:00:00 GMT";
            let headers = [
                ("Date", DATE),
                ("Expires", "Fri, 04 Dec 2026 22:02:00 GMT"),
                ("Last-Modified", lm),
            ];
            rig.origin.put("/e", Resource::new(b"expiring", &headers));
            assert_eq!(get(rig.proxy.addr, "/e", "").await.cache(), "MISS");
            overlap::time::advance(Duration::from_secs(119)).await;
            assert_eq!(get(rig.proxy.addr, "/e", "").await.cache(), "HIT");
            overlap::time::advance(Duration::from_secs(1)).await;
            let re = get(rig.proxy.addr, "/e", "").await;
            assert_eq!(
                (re.cache(), re.body.as_slice()),
                ("REVALIDATED", &b"expiring"[..])
            );
            let asked = rig.origin.last_request();
            assert_eq!(http::header(&asked.headers, "if-modified-since"), Some(lm));
            assert_eq!(http::header(&asked.headers, "if-none-match"), None);
            let bad = [("Date", DATE), ("Expires", "0"), ("Last-Modified", lm)];
            rig.origin.put("/z", Resource::new(b"zero", &bad));
            assert_eq!(get(rig.proxy.addr, "/z", "").await.cache(), "MISS");
            for _ in 0..2 {
                assert_eq!(get(rig.proxy.addr, "/z", "").await.cache(), "REVALIDATED");
            }
            assert_eq!((rig.origin.hits("/z"), rig.origin.not_modified()), (3, 3));
            rig.finish().await;
        },
        "expires",
    )
    .await;
}

/// `Vary: Accept-Language`: one entry per language, each a hit for its own.
#[overlap::test]
async fn vary_keeps_one_variant_per_language() {
    within(
        HANG,
        async {
            let rig = rig("proxy-vary", 64 * MIB as u64).await;
            let mut res = Resource::new(b"hello in ", &[("Cache-Control", "max-age=60")]);
            res.vary_language = true;
            rig.origin.put("/hello", res);
            let (en, fr) = ("Accept-Language: en\r\n", "Accept-Language: fr\r\n");
            let a = get(rig.proxy.addr, "/hello", en).await;
            let b = get(rig.proxy.addr, "/hello", fr).await;
            let c = get(rig.proxy.addr, "/hello", en).await;
            let d = get(rig.proxy.addr, "/hello", "").await;
            assert_eq!(
                (a.body.as_slice(), a.cache()),
                (&b"hello in en"[..], "MISS")
            );
            assert_eq!(
                (b.body.as_slice(), b.cache()),
                (&b"hello in fr"[..], "MISS")
            );
            assert_eq!((c.body.as_slice(), c.cache()), (&b"hello in en"[..], "HIT"));
            assert_eq!((d.body.as_slice(), d.cache()), (&b"hello in -"[..], "MISS"));
            assert_eq!(get(rig.proxy.addr, "/hello", fr).await.cache(), "HIT");
            assert_eq!(rig.origin.hits("/hello"), 3);
            assert_eq!(a.header("vary"), Some("Accept-Language"));
            // A request that waited for another language's fetch asks again once the
            // origin's `Vary` is known, and fetches its own.
            let mut res = Resource::new(b"hi in ", &[("Cache-Control", "max-age=60")]);
            res.vary_language = true;
            rig.origin.put("/hi", res.sent(Send::Gated(2)));
            let mut de = Client::connect(rig.proxy.addr).await;
            de.request("GET", "/hi", "Accept-Language: de\r\n").await;
            until(|| rig.origin.hits("/hi") == 1, "the fetch for de").await;
            let mut it = Client::connect(rig.proxy.addr).await;
            it.request("GET", "/hi", "Accept-Language: it\r\n").await;
            until(|| rig.proxy.stats().coalesced == 1, "it waiting").await;
            rig.origin.open_gate(2);
            let (de, it) = (de.reply(false).await, it.reply(false).await);
            assert_eq!((de.body.as_slice(), de.cache()), (&b"hi in de"[..], "MISS"));
            assert_eq!((it.body.as_slice(), it.cache()), (&b"hi in it"[..], "MISS"));
            assert_eq!(rig.origin.hits("/hi"), 2);
            rig.finish().await;
        },
        "vary",
    )
    .await;
}
