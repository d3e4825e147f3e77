//! The gateway's tests of its keep-alive pool: reuse, the idle cap and timeout, a closed
//! idle connection found or its close crossing a request (a GET retried once, a POST not),
//! and no connection leased to two requests at once.

use std::time::Duration;

use overlap::time;

use super::client::{get, Client};
use super::support::{pattern_seeded, until, within};
use super::{rig, HANG};

#[overlap::test(start_paused = true)]
async fn the_pool_reuses_caps_its_idle_connections_and_expires_them() {
    within(
        HANG,
        async {
            let rig = rig(|cfg| {
                cfg.pool.max_idle = 2;
                cfg.pool.idle_timeout = Duration::from_secs(30);
            })
            .await;
            let pool = rig.gw.backend("users").pool.clone();
            let st = rig.users.state.clone();
            let mut c = Client::connect(rig.v4()).await;
            for i in 0..5 {
                assert_eq!(c.get(&format!("/users/{i}"), "").await.status(), 200);
            }
            assert_eq!((st.accepts.get(), pool.stats().reused), (1, 4));
            // Four at once: the idle one and three new; two kept afterwards.
            let addr = rig.v4();
            let tasks: Vec<_> = (0..4)
                .map(|_| overlap::spawn(async move { get(addr, "/slow/1").await.status() }))
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 200);
            }
            assert_eq!(st.accepts.get(), 4);
            assert_eq!((pool.idle(), pool.stats().over_max_idle), (2, 2));
            until(|| st.closed.get() == 2, "the two over max_idle closed").await;
            // Past the idle timeout, both go and a new one is made.
            time::advance(Duration::from_secs(31)).await;
            assert_eq!(c.get("/users/late", "").await.status(), 200);
            let s = pool.stats();
            assert_eq!((s.expired, s.connects, s.stale), (2, 5, 0), "{s:?}");
            until(|| st.closed.get() == 4, "the expired ones closed").await;
            assert_eq!((pool.idle(), pool.leased()), (1, 0));
        },
        "pool",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_closed_idle_connection_is_found_or_a_get_retried_once_but_not_a_post() {
    within(
        HANG,
        async {
            let rig = rig(|_| {}).await;
            // The backend closes after each answer: found closed at checkout, no retry.
            rig.users.state.close_after_response.set(true);
            let mut c = Client::connect(rig.v4()).await;
            assert_eq!(c.get("/users/a", "").await.header("x-conn"), Some("0"));
            assert_eq!(c.get("/users/b", "").await.header("x-conn"), Some("1"));
            let s = rig.gw.backend("users").pool.stats();
            assert_eq!((s.stale, s.connects), (1, 2));
            // The backend closes as the second request on a connection arrives: the close
            // crosses it. A GET is sent again on a fresh connection, once.
            rig.orders.state.close_on_reuse.set(true);
            let r = c.get("/orders/1", "").await;
            assert_eq!((r.status(), r.header("x-conn")), (200, Some("0")));
            let r = c.get("/orders/2", "").await;
            assert_eq!((r.status(), r.text()), (200, "orders GET /orders/2\n"));
            assert_eq!(r.header("x-conn"), Some("1"), "a fresh connection");
            assert_eq!(rig.gw.shared.stats.retries.get(), 1);
            // A POST is not: its body cannot be sent twice.
            let r = c.with_body("POST", "/orders/3", b"once only").await;
            assert_eq!((r.status(), r.text()), (502, "bad answer from backend"));
            assert_eq!(rig.gw.shared.stats.retries.get(), 1);
            let ost = &rig.orders.state;
            assert_eq!((ost.accepts.get(), ost.requests.get()), (2, 4));
            // The client's connection goes on, on a new backend connection.
            let r = c.get("/orders/4", "").await;
            assert_eq!((r.status(), r.header("x-conn")), (200, Some("2")));
        },
        "stale",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_pool_never_leases_one_connection_to_two_requests() {
    within(
        HANG,
        async {
            let rig = rig(|cfg| cfg.pool.max_idle = 4).await;
            let addr = rig.v4();
            let clients: Vec<_> = (0..16)
                .map(|c| {
                    overlap::spawn(async move {
                        let mut client = Client::connect(addr).await;
                        for i in 0..8 {
                            let body = pattern_seeded(1000 + 997 * i, (c * 8 + i) as u32);
                            let path = format!("/users/{c}/{i}");
                            let r = client.with_body("POST", &path, &body).await;
                            let mut want = format!("users POST {path}\n").into_bytes();
                            want.extend_from_slice(&body);
                            assert!(r.status() == 200 && r.body == want, "{path}");
                            overlap::yield_now().await;
                        }
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            let pool = rig.gw.backend("users").pool.clone();
            let s = pool.stats();
            assert_eq!(s.connects, rig.users.state.accepts.get());
            assert_eq!(s.connects + s.reused, 128);
            assert!(s.max_leased > 1 && s.max_leased <= 16, "{s:?}");
            assert!(s.reused > 0, "{s:?}");
            assert_eq!((pool.leased(), pool.idle()), (0, 4));
            assert_eq!(rig.gw.shared.stats.status(200), 128);
        },
        "no sharing",
    )
    .await;
}
