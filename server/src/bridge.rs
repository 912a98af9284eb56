//! What crosses the channels between the reactor thread and the logic thread.

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use tungstenite::Message;

use crate::ConnId;
use crate::app::RouteId;
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

/// From the logic thread to the reactor. Commands arrive in batches, one batch per wake, so
/// the reactor writes all of a batch's frames for one connection with one flush.
#[derive(Debug, Clone)]
pub enum Command {
    /// Queue a message on a connection. Dropped if the connection has gone.
    Send {
        /// The recipient.
        conn: ConnId,
        /// The message; broadcasts share one `Bytes` among every recipient.
        message: Message,
    },
    /// Queue one message on many connections: a push to a group or to all. The reactor
    /// clones the message (a shared buffer) per recipient itself, so the buffer's reference
    /// count never bounces between the threads, and a push to thousands is one command.
    SendMany {
        /// The recipients; those that have gone are skipped.
        conns: Vec<ConnId>,
        /// The message, encoded once.
        message: Message,
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

/// One batch of commands.
pub type Batch = Vec<Command>;

impl Command {
    /// Every `(recipient, message)` this command queues, in order: one for a `Send`, one per
    /// recipient for a `SendMany`, none for a `Close`.
    pub fn sends(&self) -> impl Iterator<Item = (ConnId, &Message)> {
        let (conns, message): (&[ConnId], Option<&Message>) = match self {
            Command::Send { conn, message } => (std::slice::from_ref(conn), Some(message)),
            Command::SendMany { conns, message } => (conns, Some(message)),
            Command::Close { .. } => (&[], None),
        };
        conns.iter().filter_map(move |&conn| message.map(|m| (conn, m)))
    }
}

/// The reactor's ends of the channels between the threads.
pub(crate) struct ReactorEnds {
    /// What it read, to the logic thread (bounded: full means stop reading).
    pub(crate) to_logic: Sender<ToLogic>,
    /// The logic thread's batches.
    pub(crate) from_logic: Receiver<Batch>,
    /// Applied batches, emptied, going back for reuse.
    pub(crate) spent: Sender<Batch>,
}

/// The logic thread's ends of the channels between the threads.
pub(crate) struct LogicEnds {
    /// What the reactor read.
    pub(crate) inbound: Receiver<ToLogic>,
    /// Batches of commands for the reactor.
    pub(crate) outbound: Sender<Batch>,
    /// Empty batches with their capacity, so that a tick's thousands of commands do not
    /// regrow (and page-fault) a fresh `Vec` every time.
    pub(crate) spent: Receiver<Batch>,
}

/// The channels between the reactor and the logic thread, bounded as configured.
pub(crate) fn channels(inbound_queue: usize, outbound_queue: usize) -> (ReactorEnds, LogicEnds) {
    let (to_logic, inbound) = crossbeam_channel::bounded(inbound_queue);
    let (outbound, from_logic) = crossbeam_channel::bounded(outbound_queue);
    // A few spare batches are enough: one being filled, one in flight, one being applied.
    let (spent_tx, spent_rx) = crossbeam_channel::bounded(4);
    (ReactorEnds { to_logic, from_logic, spent: spent_tx }, LogicEnds { inbound, outbound, spent: spent_rx })
}
