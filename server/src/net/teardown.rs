//! Ending connections (closes, drops, timeouts) and the reactor's own shutdown stages. The
//! decisions are [`lifecycle`](super::lifecycle)'s; this file carries them out.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tungstenite::Message;

use super::Reactor;
use super::connection::{Phase, WriteOutcome};
use super::inbound::close;
use super::lifecycle::{Lifecycle, Stage, StageStep, Sweep, Violation, on_violation, sweep, sweep_period};
use crate::bridge::ToLogic;

impl Reactor {
    /// Starts the closing handshake; the connection goes when the peer answers or times out.
    pub(super) fn close(&mut self, index: usize, code: u16, reason: &'static str) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        match conn.close(code, reason, self.now) {
            WriteOutcome::Queued => self.mark_dirty(index),
            WriteOutcome::Overflow => self.remove(index),
            WriteOutcome::Closed => {}
        }
    }

    /// Closes a connection for what it sent, after the replies to everything it sent before:
    /// it is read no more, and the logic thread, which handles messages in order, sends the
    /// close back behind those replies. `drop` (after a protocol violation, when its stream
    /// cannot be trusted to carry a close reply) drops it right after the close frame instead
    /// of waiting for the peer's.
    pub(super) fn close_after_replies(&mut self, index: usize, code: u16, reason: &'static str, drop: bool) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        match on_violation(conn.lifecycle, self.stage == Stage::Running, drop) {
            Violation::CloseAfterReplies(ending) => {
                let first = conn.lifecycle == Lifecycle::Open;
                conn.lifecycle = ending;
                if first {
                    let id = conn.id;
                    self.forward(ToLogic::CloseAfterReplies { conn: id, code, reason });
                }
            }
            Violation::CloseNow { drop_after_close: true } => self.close_and_drop(index, code, reason),
            Violation::CloseNow { drop_after_close: false } => self.close(index, code, reason),
        }
    }

    /// Sends a close frame as a courtesy and drops the connection: after a protocol
    /// violation nothing more is read from it.
    pub(super) fn close_and_drop(&mut self, index: usize, code: u16, reason: &'static str) {
        if let Some(conn) = self.conns.get_mut(index) {
            let _ = conn.close(code, reason, self.now);
            if let Some(ws) = conn.ws() {
                let _ = ws.flush();
            }
        }
        self.remove(index);
    }

    pub(super) fn remove(&mut self, index: usize) {
        let Some(mut conn) = self.conns.try_remove(index) else { return };
        if matches!(conn.lifecycle, Lifecycle::Handshaking { refusing: true, .. }) {
            self.refusing -= 1;
        }
        if let Some(ws) = conn.ws() {
            // tungstenite ends a finished closing handshake by reporting the connection
            // closed, with its close reply still in our queue: one last non-blocking try, so
            // the peer sees a clean close. Whatever the socket does not take is dropped.
            let _ = ws.get_mut().write_queued();
        }
        if let Some(stream) = conn.stream_mut() {
            let _ = self.poll.registry().deregister(stream);
        }
        if conn.announced() {
            self.forward(ToLogic::Disconnected(conn.id));
        }
    }

    /// Heartbeats and timeouts, for every connection, at this turn's `now`.
    pub(super) fn sweep(&mut self) {
        let now = self.now;
        self.next_sweep = now + sweep_period(&self.timeouts);
        let mut doomed = Vec::new();
        let mut ping = Vec::new();
        for (index, conn) in &mut self.conns {
            match sweep(conn.lifecycle, &mut conn.liveness, now, &self.timeouts) {
                Sweep::Keep => {}
                Sweep::Ping => ping.push(index),
                Sweep::Drop => doomed.push(index),
            }
        }
        self.counters.timeouts += doomed.len() as u64;
        for index in doomed {
            tracing::debug!("timed out: {:?}", self.conns.get(index).map(|c| c.id));
            self.remove(index);
        }
        for index in ping {
            self.send(index, Message::Ping(Bytes::new()));
        }
        self.flush_dirty();
    }

    /// Moves shutdown along (see [`Stage::step`]). Returns true when the reactor is done.
    pub(super) fn advance_stage(&mut self, logic_done: bool) -> bool {
        loop {
            let stop = self.stop.load(Ordering::Acquire);
            let step =
                self.stage.step(stop, logic_done, self.conns.len(), self.now, self.config.close_timeout);
            self.stage = self.stage.after(step);
            match step {
                StageStep::Stay => return false,
                StageStep::Done => return true,
                StageStep::BeginDraining => {
                    // Stop accepting; everything read so far reaches the logic thread first.
                    if let Some(mut listener) = self.listener.take() {
                        let _ = self.poll.registry().deregister(&mut listener);
                    }
                    self.forward(ToLogic::Shutdown);
                    self.send_pending();
                }
                StageStep::BeginClosing { .. } => {
                    let indices: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
                    for index in indices {
                        match self.conns.get(index).map(|c| matches!(c.phase, Phase::Open(_))) {
                            Some(true) => self.close(index, close::GOING_AWAY, close::SHUTTING_DOWN),
                            _ => self.remove(index),
                        }
                    }
                    self.flush_dirty();
                }
            }
        }
    }
}
