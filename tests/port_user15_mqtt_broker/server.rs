//! The broker's tasks: the accept loop, one task per connection reading packets (the
//! CONNECT first, within a time limit; then within one and a half keep-alives of each
//! other) with a writer task beside it that drains the connection's bounded queue into
//! the socket, and the graceful shutdown.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{FramedRead, FramedWrite};
use overlap::net::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpSocket, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, CancellationToken};
use overlap::task::TaskTracker;
use overlap::time::timeout;

use super::broker::{bump, Config, Kick, Link, Shared, Stats};
use super::packet::{CodecError, Connect, MqttCodec, Packet, Publish};
use super::topic::{valid_filter, valid_topic};

pub struct Broker {
    pub addr: SocketAddr,
    pub shared: Rc<Shared>,
    pub tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Broker {
    pub async fn start(config: Config) -> std::io::Result<Broker> {
        let socket = match config.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(size) = config.send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        socket.bind(config.addr)?;
        let listener = socket.listen(128)?;
        let shared = Rc::new(Shared::new(config));
        if let Some(path) = &shared.config.persist {
            super::persist::load(&shared, path).await?;
        }
        let broker = Broker {
            addr: listener.local_addr()?,
            shared,
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        };
        broker.tasks.spawn(accept(
            listener,
            broker.shared.clone(),
            broker.shutdown.clone(),
            broker.tasks.clone(),
        ));
        Ok(broker)
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Stops accepting, closes every connection (no will is published: the broker is
    /// going, not the clients), waits for every task, then saves the state if it is
    /// persistent; whether all ended in time and the state was saved.
    pub async fn shutdown(&self) -> bool {
        self.shutdown.cancel();
        self.tasks.close();
        let drain = self.shared.config.drain;
        let ended = timeout(drain, self.tasks.wait()).await.is_ok();
        let Some(path) = &self.shared.config.persist else {
            return ended;
        };
        match super::persist::save(&self.shared, path).await {
            Ok(()) => ended,
            Err(e) => {
                *self.shared.stats.last_error.borrow_mut() = format!("saving: {e}");
                false
            }
        }
    }
}

async fn accept(
    listener: TcpListener,
    shared: Rc<Shared>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let stream = overlap::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        bump(&shared.stats.connections);
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            shared.clone(),
            shutdown.clone(),
            tasks.clone(),
        ));
    }
}

/// How a connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The client sent DISCONNECT.
    Disconnect,
    /// The client vanished, broke the protocol, or went silent: its will goes out.
    Abrupt,
    /// The broker ended it (a slow reader, a takeover): its will goes out too.
    Kicked(Option<Kick>),
    Shutdown,
}

fn protocol_error(stats: &Stats, what: impl ToString) -> End {
    bump(&stats.protocol_errors);
    *stats.last_error.borrow_mut() = what.to_string();
    End::Abrupt
}

async fn connection(
    stream: TcpStream,
    shared: Rc<Shared>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let config = &shared.config;
    let (rd, wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, MqttCodec::new(config.max_packet));
    reader.decoder_mut().expect_connect = true;
    let mut writer = FramedWrite::new(wr, MqttCodec::new(config.max_packet));
    let stats = &shared.stats;
    let first = overlap::select! {
        _ = shutdown.cancelled() => return,
        r = timeout(config.connect_timeout, reader.next()) => r,
    };
    let connect = match first {
        Err(_) => return bump(&stats.connect_timeouts),
        Ok(Some(Ok(Packet::Connect(c)))) => c,
        Ok(Some(Ok(_))) => unreachable!("the codec lets only a CONNECT through first"),
        Ok(Some(Err(e))) => {
            protocol_error(stats, e);
            return;
        }
        Ok(None) => return,
    };
    reader.decoder_mut().expect_connect = false;
    let refuse = match &connect {
        c if c.level != 4 => Some(1),
        c if c.client_id.is_empty() && !c.clean_session => Some(2),
        _ => None,
    };
    if let Some(code) = refuse {
        let ack = Packet::ConnAck {
            session_present: false,
            code,
        };
        let _ = timeout(config.drain, writer.send(ack)).await;
        return;
    }
    if let Some(w) = &connect.will {
        if !valid_topic(&w.topic) || w.qos > 1 {
            protocol_error(stats, "will topic or QoS");
            return;
        }
    }
    let conn = shared.next_conn();
    let client_id = match connect.client_id.as_str() {
        "" => format!("auto-{conn}"),
        id => id.to_string(),
    };
    let (tx, rx) = mpsc::channel(config.outbound_queue);
    let kick = shutdown.child_token();
    let why = Rc::default();
    let link = Link {
        id: conn,
        tx,
        kick: kick.clone(),
        why: Rc::clone(&why),
    };
    shared.attach(&client_id, connect.clean_session, link);
    let write_task = tasks.spawn(write_loop(writer, rx, kick.clone()));
    let end = overlap::select! {
        _ = kick.cancelled() => match shutdown.is_cancelled() {
            true => End::Shutdown,
            false => End::Kicked(why.get()),
        },
        end = read_loop(&mut reader, &shared, &client_id, conn, &connect) => end,
    };
    shared.detach(&client_id, conn);
    if matches!(end, End::Abrupt | End::Kicked(_)) {
        if let Some(w) = connect.will {
            bump(&stats.wills);
            let mut msg = Publish::new(&w.topic, w.payload, w.qos);
            msg.retain = w.retain;
            shared.publish(msg);
        }
    }
    // The writer sends what is queued (a DISCONNECTing client's last acks), then closes
    // its half; it is stopped if that takes too long.
    if timeout(config.drain, write_task).await.is_err() {
        kick.cancel();
    }
}

async fn read_loop(
    reader: &mut FramedRead<OwnedReadHalf, MqttCodec>,
    shared: &Shared,
    client_id: &str,
    conn: u64,
    connect: &Connect,
) -> End {
    let stats = &shared.stats;
    // The connection's own sender: answers wait for room, holding up only this client.
    let Some(tx) = shared.link_of(client_id, conn) else {
        return End::Kicked(Some(Kick::TakenOver));
    };
    let silence = match connect.keep_alive {
        0 => None,
        secs => Some(Duration::from_millis(secs as u64 * 1500)),
    };
    loop {
        let next = match silence {
            Some(limit) => timeout(limit, reader.next()).await,
            None => Ok(reader.next().await),
        };
        let packet = match next {
            Err(_) => {
                bump(&stats.keepalive_timeouts);
                return End::Abrupt;
            }
            Ok(None) => return End::Abrupt,
            Ok(Some(Err(CodecError::Io(_)))) => return End::Abrupt,
            Ok(Some(Err(e))) => return protocol_error(stats, e),
            Ok(Some(Ok(p))) => p,
        };
        let answer = match packet {
            Packet::Publish(p) => {
                if !valid_topic(&p.topic) {
                    return protocol_error(stats, "PUBLISH to a topic filter");
                }
                if p.qos > 1 {
                    return protocol_error(stats, "QoS 2 not supported");
                }
                bump(&stats.published);
                let pid = p.pid;
                shared.publish(p);
                pid.map(Packet::PubAck)
            }
            Packet::PubAck(pid) => {
                shared.acked(client_id, pid);
                None
            }
            Packet::Subscribe { pid, filters } => {
                let codes: Vec<u8> = filters
                    .iter()
                    .map(|(f, q)| if valid_filter(f) { (*q).min(1) } else { 0x80 })
                    .collect();
                let granted: Vec<(String, u8)> = filters
                    .into_iter()
                    .zip(&codes)
                    .filter(|(_, &c)| c != 0x80)
                    .map(|((f, _), &c)| (f, c))
                    .collect();
                // The SUBACK goes before the retained messages the subscription brings.
                if tx.send(Packet::SubAck { pid, codes }).await.is_err() {
                    return End::Abrupt;
                }
                shared.subscribe(client_id, &granted);
                None
            }
            Packet::Unsubscribe { pid, filters } => {
                shared.unsubscribe(client_id, &filters);
                Some(Packet::UnsubAck(pid))
            }
            Packet::PingReq => Some(Packet::PingResp),
            Packet::Disconnect => return End::Disconnect,
            Packet::Connect(_) => return protocol_error(stats, "a second CONNECT"),
            other => return protocol_error(stats, format!("{other:?} from a client")),
        };
        if let Some(p) = answer {
            if tx.send(p).await.is_err() {
                return End::Abrupt;
            }
        }
    }
}

/// Sends the connection's packets as they come, until every sender is gone (then closes
/// its half) or the connection is kicked (then just stops: the socket closes with the
/// read half).
async fn write_loop(
    mut writer: FramedWrite<OwnedWriteHalf, MqttCodec>,
    mut rx: mpsc::Receiver<Packet>,
    kick: CancellationToken,
) {
    loop {
        let next = overlap::select! {
            biased;
            _ = kick.cancelled() => return,
            p = rx.recv() => p,
        };
        let Some(p) = next else { break };
        overlap::select! {
            biased;
            _ = kick.cancelled() => return,
            r = writer.send(p) => if r.is_err() { return },
        }
    }
    let _ = writer.close().await;
}
