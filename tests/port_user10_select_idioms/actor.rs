//! An actor owning a bounded buffer: commands over an mpsc channel (a push, or a
//! question answered on a oneshot), its capacity over a watch channel, a oneshot to stop,
//! an `interval` tick that flushes the buffer into a `JoinSet` task sending it on, the
//! tasks' results collected by `Some(res) = jobs.join_next()`, and `else => break` once
//! every input is closed and nothing is left to flush.

use std::time::Duration;

use overlap::sync::{mpsc, oneshot, watch};
use overlap::task::JoinSet;
use overlap::time;

/// What the actor is told.
#[derive(Debug)]
pub enum Cmd {
    Push(u32),
    /// How many values are buffered, not yet flushed.
    Buffered(oneshot::Sender<usize>),
}

/// What the actor did, for the test to check.
#[derive(Debug, Default)]
pub struct Report {
    /// `"stop"` or `"else"`: which branch ended the loop.
    pub ended_by: &'static str,
    /// The most values the buffer held at once.
    pub max_buffered: usize,
    /// Every capacity the watch channel gave, in order.
    pub caps: Vec<usize>,
    /// Values the `JoinSet` tasks reported as sent.
    pub sent: usize,
    /// Values still buffered when the loop ended.
    pub left: Vec<u32>,
}

pub async fn run(
    mut cmds: mpsc::Receiver<Cmd>,
    mut cap: watch::Receiver<usize>,
    mut stop: oneshot::Receiver<()>,
    sink: mpsc::Sender<Vec<u32>>,
    flush_every: Duration,
) -> Report {
    let mut report = Report::default();
    let mut cap_now = *cap.borrow_and_update();
    report.caps.push(cap_now);
    let mut buf: Vec<u32> = Vec::new();
    let mut tick = time::interval_at(time::Instant::now() + flush_every, flush_every);
    let mut jobs = JoinSet::new();
    loop {
        overlap::select! {
            // Stopping comes first, then a new capacity, then finished sends, then input.
            biased;
            Ok(()) = &mut stop => {
                report.ended_by = "stop";
                break;
            }
            Ok(()) = cap.changed() => {
                cap_now = *cap.borrow_and_update();
                report.caps.push(cap_now);
            }
            Some(res) = jobs.join_next() => report.sent += res.expect("a send task panicked"),
            Some(cmd) = cmds.recv(), if buf.len() < cap_now => match cmd {
                Cmd::Push(v) => {
                    buf.push(v);
                    report.max_buffered = report.max_buffered.max(buf.len());
                }
                Cmd::Buffered(reply) => {
                    let _ = reply.send(buf.len());
                }
            },
            _ = tick.tick(), if !buf.is_empty() => {
                let batch = std::mem::take(&mut buf);
                let sink = sink.clone();
                jobs.spawn(async move {
                    let n = batch.len();
                    sink.send(batch).await.expect("the sink is gone");
                    n
                });
            }
            else => {
                report.ended_by = "else";
                break;
            }
        }
    }
    report.left = buf;
    report
}
