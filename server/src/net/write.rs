//! Writing: frames into a connection's outbound queue, and one flush per connection per turn
//! (the recipients of a burst of broadcasts a slice per turn, after the turn's replies). A
//! connection whose socket does not keep up has the logic thread's frames held back by class
//! ([`hold`](super::hold)) and released into its queue as the socket takes bytes.

use std::io;

use bytes::Bytes;
use mio::{Interest, Token};
use tungstenite::Message;

use super::Reactor;
use super::connection::{Carries, Connection, Phase, WriteOutcome};
use super::hold::{Class, HeldOut, Hold, Pushed, Released, STALLED_READER_REASON, dropped_notice};
use super::inbound::close;
use super::lifecycle::Lifecycle;
use super::session::replay::HeldFrame;
use crate::bridge::DataOpcode;

impl Reactor {
    /// Sends one of the reactor's own messages: an error answer, or a ping.
    pub(super) fn send(&mut self, index: usize, message: Message) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let len = message.len() as u64;
        let data = message.is_binary() || message.is_text();
        let outcome = conn.write(message, &mut self.contexts);
        self.after_write(index, outcome, data.then_some(len), false);
    }

    /// Queues one data frame carrying `payload`, flushed at the end of this turn.
    pub(super) fn send_data(&mut self, index: usize, opcode: DataOpcode, payload: &[u8]) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let outcome = conn.write_data(opcode, payload);
        self.after_write(index, outcome, Some(payload.len() as u64), false);
    }

    /// Queues one recipient's copy of a broadcast, flushed with a slice of the flush backlog
    /// (or sooner, with anything else written to the connection).
    pub(super) fn send_broadcast(&mut self, index: usize, opcode: DataOpcode, payload: &[u8]) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let outcome = conn.write_data(opcode, payload);
        self.after_write(index, outcome, Some(payload.len() as u64), true);
    }

    /// Whether frames for the connection at `index` must be held back: some already are, or
    /// its queue has `Config::hold_after_bytes` unwritten. The fast path's one test.
    #[inline]
    pub(super) fn holding(&mut self, index: usize) -> bool {
        let threshold = self.config.hold_after_bytes;
        self.conns.get_mut(index).is_some_and(|conn| conn.hold.is_some() || conn.queued() >= threshold)
    }

    /// Sends a frame of the logic thread's of class `class` to the connection at `index`:
    /// into its queue if its socket keeps up, else held back (`bytes` is made only then).
    pub(super) fn send_classed(
        &mut self,
        index: usize,
        opcode: DataOpcode,
        payload: &[u8],
        bytes: impl FnOnce() -> Bytes,
        class: Class,
        broadcast: bool,
    ) {
        if !self.holding(index) {
            if broadcast {
                self.send_broadcast(index, opcode, payload)
            } else {
                self.send_data(index, opcode, payload)
            }
            return;
        }
        let answers = if let Class::Reply(id) = class { Some(id) } else { None };
        self.hold_frame(index, class, HeldOut { opcode, bytes: bytes(), answers }, broadcast);
    }

    /// Holds a frame back from the connection at `index` (not numbered yet, for a version 2
    /// session: it is when released); closes the connection if its replies alone pass the cap.
    pub(super) fn hold_frame(&mut self, index: usize, class: Class, frame: HeldOut, broadcast: bool) {
        let (now, max_events, cap) = (self.now, self.config.max_held_events, self.config.max_outbound_bytes);
        let Some(conn) = self.conns.get_mut(index) else { return };
        if conn.link().is_none_or(|link| !link.can_write()) {
            return;
        }
        if conn.hold.is_none() {
            self.counters.holding += 1;
        }
        let queued = conn.queued();
        let hold = conn.hold.get_or_insert_with(|| Box::new(Hold::new(max_events, now)));
        let before = hold.bytes();
        match hold.push(class, frame) {
            Pushed::Held => {}
            Pushed::Conflated => self.counters.states_conflated += 1,
            Pushed::DroppedEvent => self.counters.events_dropped += 1,
        }
        let (after, replies) = (hold.bytes(), hold.reply_bytes());
        self.count_held(before, after);
        if queued + replies > cap {
            // Replies are never dropped: a client that lets them pile up past the cap does not
            // read, and goes as one whose queue overflowed.
            self.discard_hold(index);
            self.after_write(index, WriteOutcome::Overflow, None, false);
        } else if broadcast {
            self.mark_broadcast(index);
        } else {
            self.mark_dirty(index);
        }
    }

    /// Keeps the gauges of held bytes: a hold went from `before` to `after` bytes.
    fn count_held(&mut self, before: usize, after: usize) {
        let c = &mut self.counters;
        c.held_bytes = (c.held_bytes + after as u64).saturating_sub(before as u64);
        c.held_bytes_max = c.held_bytes_max.max(c.held_bytes);
    }

    /// Takes the hold of the connection at `index` away, with its counts.
    pub(super) fn take_hold(&mut self, index: usize) -> Option<Box<Hold>> {
        let hold = self.conns.get_mut(index)?.hold.take()?;
        self.counters.holding -= 1;
        self.count_held(hold.bytes(), 0);
        Some(hold)
    }

    /// Drops what is held for the connection at `index`: it is closing for not reading.
    pub(super) fn discard_hold(&mut self, index: usize) {
        let _ = self.take_hold(index);
    }

    /// Releases held frames into the queue of the connection at `index` while it holds fewer
    /// than `room` unwritten bytes, in the order they were sent; a version 2 session numbers
    /// each one now. Returns whether anything was released. The hold goes once empty.
    pub(super) fn release_held(&mut self, index: usize, room: usize) -> bool {
        let Some(conn) = self.conns.get_mut(index) else { return false };
        let (id, encoding, carries) = (conn.id, conn.encoding, conn.carries);
        let Phase::Open(link) = &mut conn.phase else { return false };
        let Some(hold) = conn.hold.as_mut() else { return false };
        let before = hold.bytes();
        let mut released = false;
        let mut overflow = false;
        while link.socket_mut().queued() < room && link.can_write() {
            let Some(next) = hold.pop() else { break };
            let frame = match next {
                Released::Frame(frame) => frame,
                Released::DroppedNotice(count) => HeldOut {
                    opcode: DataOpcode::of(encoding),
                    bytes: Bytes::from(dropped_notice(encoding, count)),
                    answers: None,
                },
            };
            if matches!(carries, Carries::Session | Carries::Undecided)
                && let Some(session) = self.sessions.get_mut(id)
            {
                // It has this link, so holding cannot end it (only a session without one ends).
                let _ = session.hold(HeldFrame {
                    opcode: frame.opcode,
                    bytes: frame.bytes.clone(),
                    answers: frame.answers,
                });
            }
            if link.socket_mut().queue_data(frame.opcode, &frame.bytes).is_err() {
                overflow = true;
                break;
            }
            self.counters.frames_out += 1;
            self.counters.bytes_out += frame.bytes.len() as u64;
            released = true;
        }
        let (after, empty) = (hold.bytes(), hold.is_empty());
        self.count_held(before, after);
        if overflow {
            self.discard_hold(index);
            self.after_write(index, WriteOutcome::Overflow, None, false);
        } else if empty
            || !self.conns.get_mut(index).and_then(Connection::link).is_some_and(|l| l.can_write())
        {
            self.discard_hold(index);
        }
        released
    }

    /// Releases everything held for the connection at `index` (up to its queue's cap): a
    /// close frame is about to follow, and what was sent before it must go before it.
    pub(super) fn release_all_held(&mut self, index: usize) {
        if self.conns.get(index).is_some_and(|c| c.hold.is_some()) {
            self.release_held(index, usize::MAX);
        }
    }

    /// Closes (or, for a version 2 link, drops) each connection whose frames are held and
    /// whose socket has taken nothing for `Config::stalled_reader_timeout` at this turn's
    /// `now`: it has stopped reading.
    pub(super) fn close_stalled_readers(&mut self) {
        let (now, timeout) = (self.now, self.config.stalled_reader_timeout);
        let stalled: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.hold.as_ref().is_some_and(|h| h.stalled(now, timeout)))
            .map(|(index, _)| index)
            .collect();
        for index in stalled {
            self.counters.stalled_closes += 1;
            let Some(conn) = self.conns.get(index) else { continue };
            tracing::debug!("{}: read nothing for {timeout:?} with frames held; closing", conn.id);
            if conn.carries == Carries::Session && conn.lifecycle == Lifecycle::Open {
                // As for an overflow: the session waits for a resume, holding what was held.
                self.remove(index);
            } else {
                self.discard_hold(index);
                self.close(index, ticksock_protocol::CLOSE_STALLED_READER, STALLED_READER_REASON);
            }
        }
    }

    /// Counts a queued data frame of `data_len` bytes and lists the connection for a flush
    /// (this turn's, or a later slice's for a `broadcast` of a burst); closes a peer too slow
    /// to take it.
    fn after_write(&mut self, index: usize, outcome: WriteOutcome, data_len: Option<u64>, broadcast: bool) {
        match outcome {
            WriteOutcome::Queued => {
                if let Some(len) = data_len {
                    self.counters.frames_out += 1;
                    self.counters.bytes_out += len;
                }
                if broadcast { self.mark_broadcast(index) } else { self.mark_dirty(index) }
            }
            WriteOutcome::Overflow => {
                let Some(conn) = self.conns.get_mut(index) else { return };
                if conn.carries == Carries::Session && conn.lifecycle == Lifecycle::Open {
                    // A version 2 session's link that stopped reading (half-open, most
                    // likely): dropped, as a lost link is, rather than closed, which would end
                    // the session. What it was sent is held for a resume, within its bound.
                    tracing::debug!("{}: outbound buffer full; dropping the link of its session", conn.id);
                    self.counters.overflow_drops += 1;
                    self.remove(index);
                    return;
                }
                // The peer does not read. A close frame is small enough to fit where the
                // refused message did not; if even that fails, drop the connection.
                tracing::debug!("{}: outbound buffer full, closing with 1008", conn.id);
                self.counters.overflow_closes += 1;
                match conn.close(close::POLICY, close::OUTBOUND_FULL, self.now, &mut self.contexts) {
                    WriteOutcome::Queued => self.mark_dirty(index),
                    _ => self.remove(index),
                }
            }
            WriteOutcome::Closed => {}
        }
    }

    /// Lists a connection that was sent a broadcast for a later slice of flushes. Once: its
    /// flag is cleared only when its entry leaves the list, so the list never holds more
    /// entries than there are connections.
    fn mark_broadcast(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.in_flush_backlog
        {
            conn.in_flush_backlog = true;
            self.flush_backlog.push_back(conn.id);
        }
    }

    pub(super) fn mark_dirty(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Writes out the connections written to: one flush, so usually one write syscall, per
    /// connection. Those written to this turn go first (replies, pongs, closes: whatever they
    /// have queued goes with them, broadcasts included), then `Config::broadcast_flush_slice`
    /// of the flush backlog, so reads and replies go on between the slices of a tick's burst
    /// instead of waiting for all of it.
    pub(super) fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &index in &dirty {
            let Some(conn) = self.conns.get_mut(index) else { continue };
            conn.dirty = false;
            self.flush(index);
        }
        // Reuse the allocation.
        self.dirty = dirty;
        self.dirty.clear();
        for _ in 0..self.config.broadcast_flush_slice {
            let Some(id) = self.flush_backlog.pop_front() else { break };
            // A connection that has gone (its slot maybe reused) is skipped; one whose frames
            // already went out with another flush costs no syscall.
            if let Some(index) = self.live_index(id) {
                self.conns[index].in_flush_backlog = false;
                self.flush(index);
            }
        }
    }

    /// Writes one connection's queue (one `write` syscall unless the socket takes less). With
    /// frames held back, it releases them as the socket takes bytes: up to
    /// `Config::hold_after_bytes` queued, written again while the socket takes it all.
    fn flush(&mut self, index: usize) {
        let now = self.now;
        let flushed = loop {
            let Some(conn) = self.conns.get_mut(index) else { return };
            let holding = conn.hold.is_some();
            let Some(link) = conn.link() else { return };
            let before = link.socket_mut().queued();
            self.counters.flushes += 1;
            let flushed = link.flush();
            let socket = link.socket_mut();
            self.counters.write_syscalls += u64::from(socket.take_writes());
            if !holding {
                break flushed;
            }
            if socket.queued() < before
                && let Some(hold) = conn.hold.as_mut()
            {
                hold.progressed(now);
            }
            let room = self.config.hold_after_bytes;
            match flushed {
                // Written out: what is released now may go at once.
                Ok(()) if self.release_held(index, room) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.release_held(index, room);
                    break Err(tungstenite::Error::Io(e));
                }
                flushed => break flushed,
            }
        };
        match flushed {
            Ok(()) => self.want_writable(index, false),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_writable(index, true)
            }
            Err(tungstenite::Error::ConnectionClosed) => self.end_tcp(index),
            Err(e) => {
                tracing::debug!("flush failed: {e}");
                self.remove(index);
            }
        }
    }

    pub(super) fn want_writable(&mut self, index: usize, wanted: bool) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        if conn.wants_writable == wanted {
            return;
        }
        conn.wants_writable = wanted;
        let interest = if wanted { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        if let Some(stream) = conn.stream_mut()
            && let Err(e) = self.poll.registry().reregister(stream, Token(index), interest)
        {
            tracing::debug!("reregister: {e}");
        }
    }
}
