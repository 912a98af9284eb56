//! The messages that cross between the threads: [`ToLogic`] from the reactor, [`Command`]s
//! (inside a [`Batch`](super::Batch)) from the logic thread.

use bytes::Bytes;
use ticksock_protocol::Encoding;

use super::batch::{DataOpcode, Payload};
use super::routes::RouteId;
use crate::ConnId;

/// What a new connection asked for at its upgrade: who it is, and how it wants its replies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// A redirect's ticket (`?ticket=`, PROTOCOL.md 12.3).
    pub ticket: Option<Box<str>>,
    /// A token for the game's verifier (`Authorization: Bearer` or `?token=`, PROTOCOL.md 13.1).
    pub token: Option<Box<str>>,
    /// Replies stamped with the tick their effects apply at (`?ticks=1`, PROTOCOL.md 4.3).
    pub tick_stamps: bool,
}

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
        /// The ticket and the token its upgrade offered (PROTOCOL.md 12.3, 13.1), and whether it
        /// asked for tick-stamped replies (4.3); `None` when it asked for none of these.
        credentials: Option<Box<Credentials>>,
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
        /// Text or binary, as it came.
        opcode: DataOpcode,
        /// The message's bytes.
        payload: Bytes,
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
    /// A connection closed (for version 2, its session ended); nothing more will arrive from
    /// it.
    Disconnected(ConnId),
    /// A version 2 session lost its link; it waits for a resume, and whatever is sent to it
    /// meanwhile is kept for the client.
    Dropped(ConnId),
    /// A version 2 session that had dropped resumed on a new link: its requests follow.
    Resumed(ConnId),
    /// A version 2 session that had dropped ends without having resumed (its grace passed, it
    /// could not keep what it was sent, or too many sessions were waiting): the game is told
    /// so, then that it disconnected, as for [`ToLogic::Disconnected`].
    Expired(ConnId),
    /// The server is shutting down and reads no more requests: every request the logic thread
    /// will ever get came before this. It answers them, runs the game's shutdown hook, sends
    /// its last batch and stops.
    Shutdown,
}

/// A push topic the game declared latest-wins ([`Router::latest_wins`](crate::Router), and
/// replication's `replica`): to a connection that does not keep up, a newer push on it
/// replaces one still held back (PROTOCOL.md 7.3). Numbered by the logic thread, so that the
/// reactor compares two small numbers, never topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateTopic(pub u16);

impl StateTopic {
    /// Replication's topic `replica`: each update is relative to a baseline the client
    /// acknowledged and still holds, so only the latest matters.
    pub const REPLICA: StateTopic = StateTopic(0);
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
        /// The callback id it answers, for a Reply or an Error: a version 2 session keeps the
        /// answer by that id until the client acknowledges it (PROTOCOL.md 11.6).
        answers: Option<u32>,
        /// For a push on a latest-wins topic, that topic; `None` for an event (or a reply).
        state: Option<StateTopic>,
    },
    /// Queue one frame on many connections: a push to a group or to all. Its bytes are in
    /// the batch once, and the reactor copies them into each recipient's queue, so a push to
    /// thousands is one encode and one command.
    SendMany {
        /// The recipients; those that have gone are skipped.
        conns: Vec<ConnId>,
        /// The frame, in the batch's buffer.
        payload: Payload,
        /// For a push on a latest-wins topic, that topic; `None` for an event.
        state: Option<StateTopic>,
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
