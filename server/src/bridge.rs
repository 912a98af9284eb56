//! What crosses the channels between the reactor thread and the logic thread.

use bytes::Bytes;
use tungstenite::Message;

use crate::ConnId;
use crate::app::RouteId;

/// From the reactor to the logic thread, in the order things happened on each connection:
/// a connection's `Connected` comes before its requests, and its `Disconnected` after them.
#[derive(Debug)]
pub enum ToLogic {
    /// A connection finished its handshake.
    Connected(ConnId),
    /// A request whose route exists.
    Request {
        /// Who sent it.
        conn: ConnId,
        /// Its callback id.
        id: u32,
        /// Its route, already looked up by the reactor.
        route: RouteId,
        /// Its body: a slice of the received message, not a copy.
        body: Bytes,
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

/// Encodes a frame whose body the caller appends: used by the logic thread for every reply
/// and push, so a frame is built in one buffer.
pub(crate) fn frame_with_body(header: impl FnOnce(&mut Vec<u8>), body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(16 + body.len());
    header(&mut out);
    out.extend_from_slice(body);
    Bytes::from(out)
}
