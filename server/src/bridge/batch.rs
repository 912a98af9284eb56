//! [`Batch`]: the logic thread's commands for the reactor, with the payloads of all their frames
//! in one buffer.

use super::messages::Command;
use crate::ConnId;

/// The kind of a data frame: its WebSocket opcode (RFC 6455, 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOpcode {
    /// A text frame (opcode `0x1`): the JSON encoding.
    Text = 0x1,
    /// A binary frame (opcode `0x2`): the bincode encoding.
    Binary = 0x2,
}

impl DataOpcode {
    /// The kind of frame that carries `encoding`'s frames.
    pub fn of(encoding: ticksock_protocol::Encoding) -> Self {
        if encoding.is_text() { DataOpcode::Text } else { DataOpcode::Binary }
    }
}

/// Where one frame's payload lies in its [`Batch`]'s shared buffer, and its kind. Replies,
/// errors and pushes are encoded by the logic thread straight into that buffer, so sending
/// one costs no allocation on either thread and no reference count crossing between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    opcode: DataOpcode,
    start: usize,
    end: usize,
}

impl Payload {
    /// The frame's kind: binary (bincode) or text (JSON).
    pub fn opcode(&self) -> DataOpcode {
        self.opcode
    }

    /// Its bytes in `payloads`, the buffer of the batch it came with.
    pub(crate) fn bytes<'a>(&self, payloads: &'a [u8]) -> &'a [u8] {
        &payloads[self.start..self.end]
    }
}

/// One frame of a batch, as the reactor will send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Binary (bincode) or text (JSON).
    pub opcode: DataOpcode,
    /// The message's bytes, unframed.
    pub payload: &'a [u8],
}

/// A batch of commands, with one buffer holding the payloads of all its frames back to back.
///
/// The logic thread fills it; the reactor applies it and sends it back empty, capacity kept,
/// so in the steady state neither thread allocates per frame.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) commands: Vec<Command>,
    pub(crate) payloads: Vec<u8>,
}

/// A batch's buffer keeps at most this much capacity when it is recycled, so one huge burst
/// does not pin its memory for good: with [`SPARE_BATCHES`](super::SPARE_BATCHES) spares on
/// each side, at most 8 MiB kept in all.
const KEPT_PAYLOAD_CAPACITY: usize = 256 << 10;

impl Batch {
    /// How many commands it holds.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether it holds no command.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Its commands, in order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The bytes of a payload of this batch.
    ///
    /// # Panics
    /// If `payload` belongs to another batch and lies past this one's buffer (a bug).
    pub fn payload(&self, payload: Payload) -> Frame<'_> {
        Frame { opcode: payload.opcode, payload: payload.bytes(&self.payloads) }
    }

    /// Every `(recipient, frame)` the batch queues, in order: one per `Send`, one per
    /// recipient of a `SendMany`, none for a `Close`.
    pub fn sends(&self) -> impl Iterator<Item = (ConnId, Frame<'_>)> {
        self.commands.iter().flat_map(move |command| {
            let (conns, payload): (&[ConnId], Option<Payload>) = match command {
                Command::Send { conn, payload, .. } => (std::slice::from_ref(conn), Some(*payload)),
                Command::SendMany { conns, payload, .. } => (conns, Some(*payload)),
                Command::Close { .. } => (&[], None),
            };
            conns.iter().filter_map(move |&conn| payload.map(|p| (conn, self.payload(p))))
        })
    }

    /// Queues a command.
    pub fn push(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// Queues `payload` (copied into the batch) for `conn`.
    pub fn send(&mut self, conn: ConnId, opcode: DataOpcode, payload: &[u8]) {
        let payload = self.push_payload(opcode, |out| out.extend_from_slice(payload));
        self.commands.push(Command::Send { conn, payload, answers: None, state: None });
    }

    /// Appends one payload to the buffer with `write`, which cannot fail.
    pub fn push_payload(&mut self, opcode: DataOpcode, write: impl FnOnce(&mut Vec<u8>)) -> Payload {
        let start = self.payloads.len();
        write(&mut self.payloads);
        Payload { opcode, start, end: self.payloads.len() }
    }

    /// Appends one payload to the buffer with `write`; on `Err` nothing written stays.
    pub fn write_payload<E>(
        &mut self,
        opcode: DataOpcode,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Payload, E> {
        let start = self.payloads.len();
        match write(&mut self.payloads) {
            Ok(()) => Ok(Payload { opcode, start, end: self.payloads.len() }),
            Err(e) => {
                self.payloads.truncate(start);
                Err(e)
            }
        }
    }

    /// Empties it, keeping its capacity (up to a bound for the buffer).
    pub fn clear(&mut self) {
        self.commands.clear();
        if self.payloads.capacity() > KEPT_PAYLOAD_CAPACITY {
            self.payloads = Vec::new();
        } else {
            self.payloads.clear();
        }
    }
}
