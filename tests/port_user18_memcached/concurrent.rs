//! Tests of clients at once: a CAS race between two connections, and 50 clients doing
//! mixed operations checked against their models.

use std::collections::HashMap;

use super::client::{Client, Rig};
use super::server::Config;
use super::support;

/// Two connections race on one key with gets/cas: of two cas with the same unique one
/// wins; then two tasks each add 1 a hundred times by gets + cas, retrying on EXISTS,
/// and none of the 200 is lost, each retry counted as a `cas_badval`.
#[overlap::test]
async fn cas_races_between_two_connections() {
    let rig = Rig::new(Config::default()).await;
    let (mut a, mut b) = (rig.client().await, rig.client().await);
    assert_eq!(a.set("k", b"0").await, "STORED");
    let (_, ua) = a.gets("k").await.unwrap();
    let (_, ub) = b.gets("k").await.unwrap();
    assert_eq!(ua, ub);
    assert_eq!(b.cmd(&format!("cas k 0 0 1 {ub}\r\nb")).await, "STORED");
    assert_eq!(a.cmd(&format!("cas k 0 0 1 {ua}\r\na")).await, "EXISTS");
    assert_eq!(a.get("k").await.as_deref(), Some(&b"b"[..]));
    assert_eq!(a.set("n", b"0").await, "STORED");

    async fn add_one_100_times(mut c: Client) -> u64 {
        let mut retries = 0;
        for _ in 0..100 {
            loop {
                let (data, unique) = c.gets("n").await.unwrap();
                let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                let next = (n + 1).to_string();
                // Let the other task in between the gets and the cas.
                overlap::task::yield_now().await;
                let line = format!("cas n 0 0 {} {unique}\r\n{next}", next.len());
                match c.cmd(&line).await.as_str() {
                    "STORED" => break,
                    "EXISTS" => retries += 1,
                    other => panic!("{other}"),
                }
            }
        }
        retries
    }
    let ta = overlap::spawn(add_one_100_times(a));
    let tb = overlap::spawn(add_one_100_times(b));
    let retries = ta.await.unwrap() + tb.await.unwrap();
    let mut c = rig.client().await;
    assert_eq!(c.get("n").await.as_deref(), Some(&b"200"[..]));
    assert!(retries > 0, "the two tasks did race");
    assert_eq!(rig.stat("cas_badval"), (retries + 1).to_string());
    assert_eq!(rig.stat("cas_hits"), "201");
}

/// 50 clients at once, 200 operations each on keys of their own (set, append, incr,
/// delete, get, checked against each client's model as they go) and a shared counter;
/// at the end every key holds what its model says and the counter every increment.
#[overlap::test]
async fn fifty_clients_with_mixed_operations_stay_consistent() {
    let rig = Rig::new(Config::default()).await;
    let mut c = rig.client().await;
    assert_eq!(c.set("shared", b"0").await, "STORED");
    let addr = rig.addr;
    let client = |id: u64| async move {
        let mut c = Client::connect(addr).await;
        let mut model: HashMap<String, Vec<u8>> = HashMap::new();
        let mut rng = support::Rng(id * 7919 + 1);
        let mut incrs = 0;
        for _ in 0..200 {
            let key = format!("c{id}-{}", rng.below(8));
            let have = model.get(&key).cloned();
            match rng.below(6) {
                0 => {
                    let data = format!("{}", rng.below(1000)).into_bytes();
                    assert_eq!(c.set(&key, &data).await, "STORED");
                    model.insert(key, data);
                }
                1 => {
                    let reply = c.store("append", &key, 0, 0, b"7").await;
                    match have {
                        Some(mut d) => {
                            assert_eq!(reply, "STORED");
                            d.push(b'7');
                            model.insert(key, d);
                        }
                        None => assert_eq!(reply, "NOT_STORED"),
                    }
                }
                2 => {
                    let reply = c.cmd(&format!("incr {key} 3")).await;
                    // Appended 7s may make a number too long for 64 bits.
                    let n = have
                        .as_ref()
                        .map(|d| std::str::from_utf8(d).unwrap().parse());
                    match n {
                        None => assert_eq!(reply, "NOT_FOUND"),
                        Some(Err(_)) => assert!(reply.starts_with("CLIENT_ERROR cannot")),
                        Some(Ok(n)) => {
                            let next = u64::wrapping_add(n, 3).to_string();
                            assert_eq!(reply, next);
                            model.insert(key, next.into_bytes());
                        }
                    }
                }
                3 => {
                    let reply = c.cmd(&format!("delete {key}")).await;
                    let want = if have.is_some() {
                        "DELETED"
                    } else {
                        "NOT_FOUND"
                    };
                    assert_eq!(reply, want);
                    model.remove(&key);
                }
                4 => assert_eq!(c.get(&key).await, have, "{key}"),
                _ => {
                    let n: u64 = c.cmd("incr shared 1").await.parse().unwrap();
                    assert!(n >= 1);
                    incrs += 1;
                }
            }
        }
        (model, incrs)
    };
    let all = overlap::future::join_all((0..50).map(client)).await;
    let mut items = 1;
    let mut incrs = 0;
    for (model, n) in all {
        incrs += n;
        items += model.len();
        let keys: Vec<&str> = model.keys().map(String::as_str).collect();
        if keys.is_empty() {
            continue;
        }
        let got = c.get_with("get", &keys).await;
        let got: HashMap<String, Vec<u8>> = got.into_iter().map(|v| (v.key, v.data)).collect();
        assert_eq!(got, model);
    }
    assert_eq!(c.get("shared").await, Some(incrs.to_string().into_bytes()));
    assert_eq!(rig.stat("curr_items"), items.to_string());
    assert_eq!(rig.stat("total_connections"), "51");
}
