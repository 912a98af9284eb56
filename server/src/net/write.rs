//! Writing: frames into a connection's outbound queue, and one flush per connection per turn
//! (the recipients of a burst of broadcasts a slice per turn, after the turn's replies).

use std::io;

use mio::{Interest, Token};
use tungstenite::Message;

use super::Reactor;
use super::connection::{Carries, Connection, WriteOutcome};
use super::inbound::close;
use super::lifecycle::Lifecycle;
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

    /// Writes one connection's queue (one `write` syscall unless the socket takes less).
    fn flush(&mut self, index: usize) {
        let Some(link) = self.conns.get_mut(index).and_then(Connection::link) else { return };
        self.counters.flushes += 1;
        let flushed = link.flush();
        self.counters.write_syscalls += u64::from(link.socket_mut().take_writes());
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
