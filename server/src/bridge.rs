//! What crosses the channels between the reactor thread and the logic thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use tungstenite::Message;

use crate::ConnId;
use crate::app::RouteId;
use crate::outbound::DataOpcode;
use protocol::Encoding;

/// From the reactor to the logic thread, in the order things happened on each connection:
/// a connection's `Connected` comes before its requests, and its `Disconnected` after them.
#[derive(Debug)]
pub enum ToLogic {
    /// A connection finished its handshake.
    Connected {
        /// Which one.
        conn: ConnId,
        /// The form of frames it speaks, chosen by its subprotocol.
        encoding: Encoding,
    },
    /// A request whose route exists.
    Request {
        /// Who sent it.
        conn: ConnId,
        /// Its callback id.
        id: u32,
        /// Its route, already looked up by the reactor.
        route: RouteId,
        /// Its body: a slice of the received message, not a copy (bincode bytes, or JSON
        /// text on a JSON connection).
        body: Bytes,
        /// The connection's encoding, for decoding the body and encoding the answer.
        encoding: Encoding,
    },
    /// Echo mode: a data message to send back unchanged.
    Echo {
        /// Who sent it.
        conn: ConnId,
        /// The message, text or binary.
        message: Message,
    },
    /// A connection broke the protocol (or sent what its encoding does not allow) and is
    /// read no more. The logic thread answers everything it sent before, then sends back a
    /// [`Command::Close`] with this code, so the replies go out ahead of the close frame.
    CloseAfterReplies {
        /// Which one.
        conn: ConnId,
        /// The close code (1002, 1003, 1007, 1009, ...).
        code: u16,
        /// A short reason for the peer.
        reason: &'static str,
    },
    /// A connection closed; nothing more will arrive from it.
    Disconnected(ConnId),
    /// The server is shutting down and reads no more requests: every request the logic thread
    /// will ever get came before this. It answers them, runs the game's shutdown hook, sends
    /// its last batch and stops.
    Shutdown,
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

impl Frame<'_> {
    /// The frame as a tungstenite message (a copy), for tests and tools that inspect batches.
    pub fn to_message(&self) -> Message {
        match self.opcode {
            DataOpcode::Binary => Message::Binary(Bytes::copy_from_slice(self.payload)),
            DataOpcode::Text => match std::str::from_utf8(self.payload) {
                Ok(text) => Message::Text(text.into()),
                // Cannot happen for frames the server encodes; shown as binary if it did.
                Err(_) => Message::Binary(Bytes::copy_from_slice(self.payload)),
            },
        }
    }
}

/// From the logic thread to the reactor. Commands arrive in batches, one batch per wake, so
/// the reactor writes all of a batch's frames for one connection with one flush (a burst of
/// broadcasts is flushed a slice of connections per turn, each still with one flush).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Queue a frame on a connection. Dropped if the connection has gone.
    Send {
        /// The recipient.
        conn: ConnId,
        /// The frame, in the batch's buffer.
        payload: Payload,
    },
    /// Queue one frame on many connections: a push to a group or to all. Its bytes are in
    /// the batch once, and the reactor copies them into each recipient's queue, so a push to
    /// thousands is one encode and one command.
    SendMany {
        /// The recipients; those that have gone are skipped.
        conns: Vec<ConnId>,
        /// The frame, in the batch's buffer.
        payload: Payload,
    },
    /// Close a connection with a WebSocket close frame.
    Close {
        /// Which one.
        conn: ConnId,
        /// The close code (1000 normal, 1008 policy, ...).
        code: u16,
        /// A short reason for the peer.
        reason: &'static str,
    },
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
/// does not pin its memory for good.
const KEPT_PAYLOAD_CAPACITY: usize = 1 << 20;

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
                Command::Send { conn, payload } => (std::slice::from_ref(conn), Some(*payload)),
                Command::SendMany { conns, payload } => (conns, Some(*payload)),
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
        self.commands.push(Command::Send { conn, payload });
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

/// The most messages the reactor puts in one batch for the logic thread. Big enough that a
/// busy turn costs a few channel hops instead of one per request; small enough that the
/// logic thread starts on a turn's first requests while the reactor reads the rest.
pub const TO_LOGIC_BATCH: usize = 64;

/// The reactor's ends of the channels between the threads.
pub(crate) struct ReactorEnds {
    /// What it read, in batches of up to [`TO_LOGIC_BATCH`], to the logic thread (bounded:
    /// full means stop reading).
    pub(crate) to_logic: Sender<Vec<ToLogic>>,
    /// The logic thread's batches.
    pub(crate) from_logic: Receiver<Batch>,
    /// Applied batches, emptied, going back for reuse.
    pub(crate) spent: Sender<Batch>,
    /// Its own batches, emptied by the logic thread, back for reuse.
    pub(crate) handled: Receiver<Vec<ToLogic>>,
    /// Messages sent and not handled yet (see [`InboundCount`]).
    pub(crate) queued: InboundCount,
    /// Rung after every batch sent on `to_logic`, and when the reactor goes away.
    pub(crate) doorbell: Bell,
}

/// The logic thread's ends of the channels between the threads.
pub(crate) struct LogicEnds {
    /// What the reactor read, in batches.
    pub(crate) inbound: Receiver<Vec<ToLogic>>,
    /// Batches of commands for the reactor.
    pub(crate) outbound: Sender<Batch>,
    /// Empty batches with their capacity, so that a tick's thousands of commands do not
    /// regrow (and page-fault) a fresh `Vec` every time.
    pub(crate) spent: Receiver<Batch>,
    /// The reactor's batches once handled, emptied with their capacity, so the reactor does
    /// not allocate one per turn (short-lived allocations among the connections' buffers
    /// fragment the heap: ~0.35 KiB of RSS per idle connection, measured).
    pub(crate) handled: Sender<Vec<ToLogic>>,
    /// Messages sent and not handled yet (see [`InboundCount`]).
    pub(crate) queued: InboundCount,
    /// What the logic thread waits on for `inbound`.
    pub(crate) doorbell: Arc<Doorbell>,
}

/// How the reactor wakes the logic thread when it has sent it a batch.
///
/// The logic thread waits for `inbound` with [`Doorbell::wait_until`] (a park) instead of a
/// blocking channel receive: crossbeam's receive spins and then yields (`sched_yield`) a few
/// times before it sleeps, which pays off when the next message comes within microseconds and
/// is waste when batches come a reactor turn apart. Measured with `server --echo` at
/// 2000 connections x 20 messages/s, the logic thread's CPU fell from 67–70 to 39–43 ticks
/// in 8 s with the park (docs/BENCHMARKS.md, commit `49de683`).
///
/// No wake-up is lost: the reactor rings after it sends, and the logic thread checks the
/// channel before it waits; a ring that comes in between makes the wait return at once.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    logic: OnceLock<Thread>,
}

impl Doorbell {
    /// Names the thread that waits (the logic thread), once, before the reactor starts:
    /// from then on rings wake it. A ring before would be lost, which is harmless, as the
    /// thread checks the channel before each wait.
    pub(crate) fn answered_by(&self, logic: Thread) {
        let first = self.logic.set(logic).is_ok();
        debug_assert!(first, "a doorbell has one thread that answers it");
    }

    /// Sleeps until `deadline` or a ring, whichever is first; may return early for no reason,
    /// so the caller checks what it waits for and calls again.
    pub(crate) fn wait_until(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            std::thread::park_timeout(left);
        }
    }

    fn ring(&self) {
        // An atomic swap, and a futex wake only if the thread is asleep.
        if let Some(logic) = self.logic.get() {
            logic.unpark();
        }
    }
}

/// The reactor's side of the [`Doorbell`]: it also rings when dropped, so the logic thread
/// sees at once that the reactor is gone.
#[derive(Debug)]
pub(crate) struct Bell(Arc<Doorbell>);

impl Bell {
    /// Wakes the logic thread if it waits.
    pub(crate) fn ring(&self) {
        self.0.ring();
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        self.0.ring();
    }
}

/// How many messages the reactor has sent to the logic thread that it has not handled yet.
/// Batches vary from one message to [`TO_LOGIC_BATCH`], so the channel's capacity (in
/// batches) cannot bound them; this count does (`Config::inbound_queue`).
#[derive(Debug, Clone, Default)]
pub(crate) struct InboundCount(Arc<AtomicUsize>);

impl InboundCount {
    /// Messages sent and not handled yet.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// The reactor is about to send `n` messages. Counted before the send, so the logic thread
    /// never takes away what was not added.
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` messages were handled, or were not sent after all.
    pub(crate) fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The channels between the reactor and the logic thread, bounded as configured:
/// `inbound_queue` messages (the reactor checks [`InboundCount`]; the channel holds as many
/// batches, since a batch holds at least one) and `outbound_queue` batches.
pub(crate) fn channels(inbound_queue: usize, outbound_queue: usize) -> (ReactorEnds, LogicEnds) {
    let (to_logic, inbound) = crossbeam_channel::bounded(inbound_queue);
    let queued = InboundCount::default();
    let (outbound, from_logic) = crossbeam_channel::bounded(outbound_queue);
    // A few spare batches are enough: one being filled, one in flight, one being applied.
    let (spent_tx, spent_rx) = crossbeam_channel::bounded(4);
    let (handled_tx, handled_rx) = crossbeam_channel::bounded(4);
    let doorbell = Arc::new(Doorbell::default());
    (
        ReactorEnds {
            to_logic,
            from_logic,
            spent: spent_tx,
            handled: handled_rx,
            queued: queued.clone(),
            doorbell: Bell(doorbell.clone()),
        },
        LogicEnds { inbound, outbound, spent: spent_rx, handled: handled_tx, queued, doorbell },
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Waits on `doorbell` the way the logic thread does, until `done` says so or 10 s
    /// passes; returns how long it took.
    fn wait_for(doorbell: &Doorbell, done: impl Fn() -> bool) -> Duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        while !done() && Instant::now() < deadline {
            doorbell.wait_until(deadline);
        }
        started.elapsed()
    }

    #[test]
    fn a_ring_wakes_the_waiting_thread_long_before_its_deadline() {
        let (reactor, logic) = channels(8, 8);
        let waiter = std::thread::spawn(move || {
            logic.doorbell.answered_by(std::thread::current());
            let took = wait_for(&logic.doorbell, || !logic.inbound.is_empty());
            (took, logic.inbound.try_recv().map(|batch| batch.len()))
        });
        // Whether the send lands before or after the waiter first checks, it is not missed.
        std::thread::sleep(Duration::from_millis(50));
        reactor.to_logic.send(vec![ToLogic::Shutdown]).expect("send");
        reactor.doorbell.ring();
        let (took, received) = waiter.join().expect("waiter");
        assert_eq!(received, Ok(1));
        assert!(took < Duration::from_secs(5), "woken after {took:?}");
    }

    #[test]
    fn dropping_the_reactor_end_wakes_the_logic_thread_to_see_the_channel_closed() {
        let (reactor, logic) = channels(8, 8);
        let waiter = std::thread::spawn(move || {
            logic.doorbell.answered_by(std::thread::current());
            let closed =
                || matches!(logic.inbound.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected));
            wait_for(&logic.doorbell, closed)
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(reactor);
        let took = waiter.join().expect("waiter");
        assert!(took < Duration::from_secs(5), "woken after {took:?}");
    }
}
