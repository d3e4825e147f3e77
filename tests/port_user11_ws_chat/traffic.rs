//! The chat under load: fifty clients at once, a room's capacity overrun, a client that
//! stops reading, a shutdown mid-traffic, IPv6, and what a run leaves behind.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::client::Client;
use super::frame::{Message, WsError};
use super::server::{Config, End, Server};
use super::support::{open_fds, run_in_child, until, within};
use super::{ended, shut_down, start, HANG};

/// Checks that `texts` hold, per sender, `0..per_sender` in order; returns the count of
/// senders.
fn check_order(texts: &[String], per_sender: usize) -> usize {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in texts {
        let (sender, n) = t.split_once(": ").unwrap();
        let next = seen.entry(sender).or_default();
        assert_eq!(n.parse::<usize>().unwrap(), *next, "{sender}'s order");
        *next += 1;
    }
    assert!(seen.values().all(|&n| n == per_sender), "{seen:?}");
    seen.len()
}

#[overlap::test]
async fn fifty_clients_each_get_every_message_in_each_senders_order() {
    within(
        HANG,
        async {
            const CLIENTS: usize = 50;
            const EACH: usize = 20;
            let server = start(Config::default()).await;
            let mut clients = Vec::new();
            for i in 0..CLIENTS {
                clients.push(Client::connect(server.addr, "crowd", &format!("c{i:02}")).await);
            }
            until(|| server.members("crowd") == CLIENTS, "every member").await;
            let mut tasks = Vec::new();
            for mut c in clients {
                tasks.push(overlap::spawn(async move {
                    for n in 0..EACH {
                        c.ws.feed(Message::Text(n.to_string())).await.unwrap();
                    }
                    SinkExt::<Message>::flush(&mut c.ws).await.unwrap();
                    let mut texts = Vec::new();
                    while texts.len() < CLIENTS * EACH {
                        texts.push(c.text().await);
                    }
                    (c, texts)
                }));
            }
            let mut clients = Vec::new();
            for t in tasks {
                let (c, texts) = t.await.unwrap();
                assert_eq!(check_order(&texts, EACH), CLIENTS, "{}", c.name);
                clients.push(c);
            }
            // Nothing more was queued for anyone: the next message is the next one read.
            server.announce("crowd", "done");
            for c in &mut clients {
                assert_eq!(c.text().await, "server: done");
            }
            for close in shut_down(&server, &mut clients).await {
                assert_eq!(close, (vec![], Message::close(1001, "going away")));
            }
            assert_eq!(server.ends.borrow().len(), CLIENTS);
        },
        "the crowd",
    )
    .await;
}

#[overlap::test]
async fn a_burst_past_the_rooms_capacity_gives_a_notice_with_the_count_missed() {
    within(
        HANG,
        async {
            let server = start(Config {
                room_capacity: 16,
                outbound: 64,
                ..Config::default()
            })
            .await;
            let mut c = Client::connect(server.addr, "burst", "lagger").await;
            until(|| server.members("burst") == 1, "the member").await;
            // 48 sent before the connection's task runs: it lags by 32.
            for i in 0..48 {
                assert_eq!(server.announce("burst", &i.to_string()), 1);
            }
            assert_eq!(c.text().await, "server: you missed 32 messages");
            for i in 32..48 {
                assert_eq!(c.text().await, format!("server: {i}"));
            }
            // And on as before.
            server.announce("burst", "after");
            assert_eq!(c.text().await, "server: after");
            let closes = shut_down(&server, &mut [c]).await;
            assert_eq!(closes[0].1, Message::close(1001, "going away"));
        },
        "the burst",
    )
    .await;
}

/// Reads every frame a cut client still gets: whole texts, then the end (a frame cut in
/// the middle may come last, an error at its end).
async fn rest_of(mut c: Client) -> Vec<String> {
    let mut texts = Vec::new();
    loop {
        match c.ws.next().await {
            Some(Ok(Message::Text(t))) => texts.push(t),
            Some(Ok(Message::Ping(_))) => {}
            Some(Err(WsError::Io(_))) | None => return texts,
            other => panic!("after {} texts: {other:?}", texts.len()),
        }
    }
}

#[overlap::test]
async fn a_client_that_stops_reading_is_cut_and_the_others_get_everything() {
    within(
        HANG,
        async {
            const MESSAGES: usize = 500;
            let server = start(Config {
                outbound: 16,
                send_buffer: Some(4096),
                ..Config::default()
            })
            .await;
            let slow = Client::connect_with(server.addr, "busy", "slow", Some(4096), b"").await;
            let mut readers = Vec::new();
            for i in 0..5 {
                let mut c = Client::connect(server.addr, "busy", &format!("r{i}")).await;
                readers.push(overlap::spawn(async move {
                    let mut texts = Vec::new();
                    while texts.len() < MESSAGES {
                        texts.push(c.text().await);
                    }
                    (c, texts)
                }));
            }
            let mut talker = Client::connect(server.addr, "busy", "talker").await;
            until(|| server.members("busy") == 7, "every member").await;
            let pad = "p".repeat(1000);
            for n in 0..MESSAGES {
                // One at a time: each sent once the last came back.
                talker.say(&format!("{n} {pad}")).await;
                assert_eq!(talker.text().await, format!("talker: {n} {pad}"));
            }
            assert_eq!(ended(&server, "slow").await, End::TooSlow);
            let mut clients = vec![talker];
            for r in readers {
                let (c, texts) = r.await.unwrap();
                for (n, t) in texts.iter().enumerate() {
                    assert_eq!(*t, format!("talker: {n} {pad}"), "{}", c.name);
                }
                clients.push(c);
            }
            // The slow client gets what was written to it before the cut, in order, then the end.
            let got = rest_of(slow).await;
            assert!(got.len() < MESSAGES, "cut after {}", got.len());
            for (n, t) in got.iter().enumerate() {
                assert_eq!(*t, format!("talker: {n} {pad}"));
            }
            shut_down(&server, &mut clients).await;
        },
        "the slow reader",
    )
    .await;
}

#[overlap::test]
async fn a_shutdown_mid_traffic_gives_every_client_a_close_frame() {
    within(
        HANG,
        async {
            let server = start(Config::default()).await;
            let rounds = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for i in 0..10 {
                let mut c = Client::connect(server.addr, "busy", &format!("t{i}")).await;
                let rounds = rounds.clone();
                tasks.push(overlap::spawn(async move {
                    let me = format!("{}: ", c.name);
                    for n in 0.. {
                        c.say(&n.to_string()).await;
                        // Up to the echo of our own, or the close.
                        loop {
                            match c.next().await {
                                Some(Ok(Message::Text(t))) if t.starts_with(&me) => break,
                                Some(Ok(Message::Text(_))) => {}
                                Some(Ok(close @ Message::Close(_))) => {
                                    c.ws.send(close.clone()).await.unwrap();
                                    assert!(c.ws.next().await.is_none());
                                    return close;
                                }
                                other => panic!("{}: {other:?}", c.name),
                            }
                        }
                        rounds.set(rounds.get() + 1);
                    }
                    unreachable!()
                }));
            }
            until(|| rounds.get() >= 200, "traffic").await;
            assert!(server.shutdown().await, "drained within the timeout");
            for t in tasks {
                assert_eq!(t.await.unwrap(), Message::close(1001, "going away"));
            }
            let ends = server.ends.borrow();
            assert_eq!(ends.len(), 10);
            assert!(
                ends.iter().all(|(_, e)| *e == End::Closed(1001)),
                "{ends:?}"
            );
            assert!(server.tracker.is_empty());
        },
        "the shutdown",
    )
    .await;
}

#[overlap::test]
async fn the_chat_works_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let server = Server::start("[::1]:0".parse().unwrap(), Config::default()).await;
            assert!(server.addr.is_ipv6());
            let mut a = Client::connect(server.addr, "six", "a").await;
            let mut b = Client::connect(server.addr, "six", "b").await;
            until(|| server.members("six") == 2, "both members").await;
            a.say("over ::1").await;
            assert_eq!(b.text().await, "a: over ::1");
            let closes = shut_down(&server, &mut [a, b]).await;
            let away = Message::close(1001, "going away");
            assert_eq!(
                closes,
                [(vec!["a: over ::1".into()], away.clone()), (vec![], away)]
            );
        },
        "IPv6",
    )
    .await;
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "traffic::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let server = start(Config {
                    outbound: 4,
                    send_buffer: Some(4096),
                    ..Config::default()
                })
                .await;
                let mut a = Client::connect(server.addr, "r", "a").await;
                let slow = Client::connect_with(server.addr, "r", "slow", Some(4096), b"").await;
                let _ = super::client::refused(server.addr, b"nonsense\r\n\r\n").await;
                until(|| server.members("r") == 2, "both members").await;
                let pad = "q".repeat(2000);
                while server.end_of("slow").is_none() {
                    a.say(&pad).await;
                    a.text().await;
                }
                drop(slow);
                shut_down(&server, std::slice::from_mut(&mut a)).await;
                drop((a, server));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
