//! What crosses the channels between the reactor thread and the logic thread.

use bytes::Bytes;
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
