//! Applying the logic thread's batches: replies and pushes into the connections' outbound
//! queues, closes.

use bytes::Bytes;
use crossbeam_channel::TryRecvError;

use super::Reactor;
use super::hold::Class;
use super::lifecycle::{Lifecycle, is_burst};
use crate::bridge::{Batch, Command};

impl Reactor {
    /// Applies every batch the logic thread has sent. Returns true when it has finished.
    pub(super) fn apply_batches(&mut self) -> bool {
        loop {
            match self.from_logic.try_recv() {
                Ok(mut batch) => {
                    let Batch { commands, payloads } = &mut batch;
                    // A batch that broadcasts to more connections than one slice (a tick's
                    // state for everyone) is a burst: its recipients go to the flush backlog.
                    // Smaller broadcasts (a user's devices, a chat line) go out this turn.
                    let recipients: usize = commands
                        .iter()
                        .map(|c| if let Command::SendMany { conns, .. } = c { conns.len() } else { 0 })
                        .sum();
                    let burst = is_burst(recipients, self.config.broadcast_flush_slice);
                    for command in commands.drain(..) {
                        self.apply(command, payloads, burst);
                    }
                    // Back for reuse; if the logic thread has spares enough, drop it.
                    let _ = self.spent.try_send(batch);
                }
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    /// Applies one command of a batch whose frames' bytes are `payloads`; `burst` sends its
    /// broadcasts' recipients to the flush backlog.
    fn apply(&mut self, command: Command, payloads: &[u8], burst: bool) {
        match command {
            Command::Send { conn, payload, answers, state } => {
                let bytes = payload.bytes(payloads);
                let copy = || Bytes::copy_from_slice(bytes);
                // Echo mode's frames answer the messages it echoes: all kept, as replies are.
                let class = if self.config.echo { Class::Reply(0) } else { Class::of(answers, state) };
                if !self.send_to_session(conn, payload.opcode(), copy, class, false)
                    && let Some(index) = self.live_index(conn)
                {
                    self.send_classed(index, payload.opcode(), bytes, copy, class, false);
                }
            }
            Command::SendMany { conns, payload, state } => {
                let bytes = payload.bytes(payloads);
                let class = Class::of(None, state);
                // Sessions hold the frame until acknowledged, and slow readers hold it back:
                // one copy, shared by all of them.
                let mut held: Option<Bytes> = None;
                for conn in conns {
                    let mut shared = || held.get_or_insert_with(|| Bytes::copy_from_slice(bytes)).clone();
                    if self.send_to_session(conn, payload.opcode(), &mut shared, class, burst) {
                        continue;
                    }
                    if let Some(index) = self.live_index(conn) {
                        self.send_classed(index, payload.opcode(), bytes, shared, class, burst);
                    }
                }
            }
            Command::Close { conn, code, reason } => {
                // Indexing cannot panic: `live_index` found the slot occupied.
                let Some(index) = self.live_index(conn) else {
                    // A session without a link has nowhere to send a close frame: it ends.
                    self.end_session(conn, false);
                    return;
                };
                // What the game sent before the close goes before it.
                self.release_all_held(index);
                match self.conns[index].lifecycle {
                    Lifecycle::Ending { drop_after_close: true } => self.close_and_drop(index, code, reason),
                    Lifecycle::Ending { drop_after_close: false } => {
                        self.close(index, code, reason);
                        // It was read no more while its replies went out; now its close reply
                        // must be read, and may already be waiting (edge-triggered readiness
                        // will not say so again).
                        self.queue_read(index);
                    }
                    _ => self.close(index, code, reason),
                }
            }
        }
    }
}
