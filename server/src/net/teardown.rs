//! Ending connections (closes, drops, timeouts) and the reactor's own shutdown stages. The
//! decisions are [`lifecycle`](super::lifecycle)'s; this file carries them out.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use mio::{Interest, Token};
use tungstenite::Message;

use super::connection::{Carries, Connection, Phase, WriteOutcome};
use super::inbound::close;
use super::lifecycle::{Lifecycle, Stage, StageStep, Sweep, Violation, on_violation, sweep, sweep_period};
use super::linger::{LingerEnd, LingerStep, Lingering};
use super::link::ends_session;
use super::{LINGER_BASE, Reactor};
use crate::bridge::ToLogic;

impl Reactor {
    /// Starts the closing handshake; the connection goes when the peer answers or times out.
    pub(super) fn close(&mut self, index: usize, code: u16, reason: &'static str) {
        // What was sent before the close goes before it.
        self.release_all_held(index);
        let Some(conn) = self.conns.get_mut(index) else { return };
        match conn.close(code, reason, self.now, &mut self.contexts) {
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

    /// Sends a close frame and ends the connection's TCP without waiting for the peer's
    /// close frame: after a protocol violation its stream cannot be trusted to carry one.
    pub(super) fn close_and_drop(&mut self, index: usize, code: u16, reason: &'static str) {
        self.release_all_held(index);
        if let Some(conn) = self.conns.get_mut(index) {
            let _ = conn.close(code, reason, self.now, &mut self.contexts);
        }
        self.end_tcp(index);
    }

    /// Ends a connection whose peer may still be sending: the game is told it dropped, and
    /// its socket goes into a lingering close (see [`linger`](super::linger)): the rest of
    /// its queue, our side of TCP shut, its input drained for a bounded time. So a peer's
    /// unread input cannot turn the close into a reset that destroys the last frames.
    pub(super) fn end_tcp(&mut self, index: usize) {
        let Some(conn) = self.take(index) else { return };
        let Some(socket) = conn.into_socket() else { return };
        let mut lingering = Lingering::new(socket, self.now);
        if let LingerStep::Close(end) = lingering.advance(&self.linger_limits) {
            self.linger_ended(end);
            return;
        }
        let entry = self.lingering.vacant_entry();
        let token = Token(LINGER_BASE + entry.key());
        let interest = if lingering.wants_writable() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(e) = self.poll.registry().register(lingering.stream_mut(), token, interest) {
            // Unwatched, it could never end: close it now instead.
            tracing::debug!("register a lingering socket: {e}");
            return;
        }
        entry.insert(lingering);
    }

    /// Drops a connection at once: its peer is gone or silent, or it broke the server.
    pub(super) fn remove(&mut self, index: usize) {
        let Some(mut conn) = self.take(index) else { return };
        if let Some(link) = conn.link() {
            // One last non-blocking try, so the peer may see the frames queued for it (a
            // close frame, say). Whatever the socket does not take is dropped.
            let _ = link.socket_mut().write_queued();
        }
    }

    /// Takes a connection out of the slab and out of the poll, and tells the logic thread it
    /// has gone.
    fn take(&mut self, index: usize) -> Option<Connection> {
        // A version 2 link's session keeps what the link held back; anything else lets it go.
        self.settle_hold(index);
        self.discard_hold(index);
        let mut conn = self.conns.try_remove(index)?;
        if !self.tickets.is_empty()
            && let Some(offered) = self.tickets.remove(&index)
            && conn.carries == Carries::Undecided
            && let Some(session) = self.sessions.get_mut(conn.id)
        {
            // A version 2 link that ends before its first frame: its session may still be
            // resumed, and the game hear of it then, with what this link offered.
            session.keep_offered(offered);
        }
        if matches!(conn.lifecycle, Lifecycle::Handshaking { refusing: true, .. }) {
            self.refusing -= 1;
        }
        if let Some(stream) = conn.stream_mut() {
            let _ = self.poll.registry().deregister(stream);
        }
        let ended = ends_session(conn.lifecycle, conn.peer_closed);
        self.link_gone(conn.id, conn.carries, conn.announced(), ended);
        Some(conn)
    }

    /// Moves a lingering close along on its socket's readiness.
    pub(super) fn advance_lingering(&mut self, key: usize) {
        let Some(lingering) = self.lingering.get_mut(key) else { return };
        match lingering.advance(&self.linger_limits) {
            LingerStep::Wait => {
                if !lingering.wants_writable() {
                    let token = Token(LINGER_BASE + key);
                    let _ =
                        self.poll.registry().reregister(lingering.stream_mut(), token, Interest::READABLE);
                }
            }
            LingerStep::Close(end) => self.close_lingering(key, end),
        }
    }

    fn close_lingering(&mut self, key: usize, end: LingerEnd) {
        let Some(mut lingering) = self.lingering.try_remove(key) else { return };
        let _ = self.poll.registry().deregister(lingering.stream_mut());
        self.linger_ended(end);
    }

    fn linger_ended(&mut self, end: LingerEnd) {
        if matches!(end, LingerEnd::TimedOut | LingerEnd::TooMuchInput) {
            self.counters.lingers_cut += 1;
        }
    }

    /// Heartbeats and timeouts, for every connection, at this turn's `now`.
    pub(super) fn sweep(&mut self) {
        let now = self.now;
        let period = sweep_period(&self.timeouts);
        self.next_sweep = now + period;
        let mut doomed = Vec::new();
        let mut ended = Vec::new();
        let mut ping = Vec::new();
        for (index, conn) in &mut self.conns {
            // Quiet for a sweep period, it is idle: it gives back its outbound buffer. A busy
            // one keeps it, to use it again at once.
            if conn.liveness.quiet_for(now) >= period
                && let Some(link) = conn.link()
            {
                link.socket_mut().release_idle_buffer();
            }
            match sweep(conn.lifecycle, &mut conn.liveness, now, &self.timeouts) {
                Sweep::Keep => {}
                Sweep::Ping => ping.push(index),
                Sweep::Drop => doomed.push(index),
                Sweep::EndTcp => ended.push(index),
            }
        }
        self.counters.timeouts += (doomed.len() + ended.len()) as u64;
        for index in doomed {
            tracing::debug!("timed out: {:?}", self.conns.get(index).map(|c| c.id));
            self.remove(index);
        }
        for index in ended {
            tracing::debug!("no close reply: {:?}", self.conns.get(index).map(|c| c.id));
            self.end_tcp(index);
        }
        let lingered: Vec<(usize, LingerEnd)> = self
            .lingering
            .iter()
            .filter_map(|(key, l)| match l.handle_sweep(now, &self.linger_limits) {
                LingerStep::Close(end) => Some((key, end)),
                LingerStep::Wait => None,
            })
            .collect();
        for (key, end) in lingered {
            self.close_lingering(key, end);
        }
        self.close_stalled_readers();
        self.sweep_sessions(now);
        self.contexts.trim();
        for index in ping {
            self.send(index, Message::Ping(Bytes::new()));
        }
        self.flush_dirty();
    }

    /// Moves shutdown along (see [`Stage::step`]). Returns true when the reactor is done.
    pub(super) fn advance_stage(&mut self, logic_done: bool) -> bool {
        loop {
            let stop = self.stop.load(Ordering::Acquire);
            // Lingering sockets count: the last close replies may still be on their way.
            let left = self.conns.len() + self.lingering.len();
            let step = self.stage.step(stop, logic_done, left, self.now, self.config.close_timeout);
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
