//! What the session tells its drivers: [`Event`]s for the game, [`LinkCommand`]s for the I/O
//! layer, and where the connection is ([`LinkState`]).

use std::time::Duration;

#[cfg(doc)]
use super::Session;
use super::{CallId, Outcome};
use crate::Error;

/// Something the game should know about, from [`Session::poll_event`].
#[derive(Debug)]
pub enum Event {
    /// A connection is up: the server's welcome arrived. Calls queued offline wait until the
    /// next [`Session::poll_event`], so calls made while handling this one (logging in again)
    /// go out before them. See "After a welcome" in the [`session`](crate::session) docs.
    Connected {
        /// The server's game ticks per second.
        tick_hz: u16,
        /// This connection's id on the server (opaque; for logs).
        conn_id: u64,
    },
    /// The connection that was up has dropped. Calls in flight have failed with
    /// [`Outcome::Disconnected`]; a [`Event::Reconnecting`] or [`Event::Stopped`] follows (the
    /// latter when the session gave up, or a callback closed it meanwhile).
    Disconnected,
    /// The session will try to connect again after `delay`.
    Reconnecting {
        /// Failed attempts in a row so far, counting this one's predecessor (1 for the first retry).
        attempt: u32,
        /// How long until the attempt.
        delay: Duration,
    },
    /// The session stopped for good and will not connect again: see the reason.
    Stopped {
        /// [`Error::Closed`] (closed by the caller), [`Error::GaveUp`], or [`Error::Protocol`]
        /// (the server speaks another protocol version).
        reason: Error,
    },
    /// A call without a callback ended.
    Outcome {
        /// The call.
        id: CallId,
        /// How it ended.
        outcome: Outcome,
        /// Time from the call to its outcome.
        elapsed: Duration,
        /// Time from sending the request to its outcome (`None` if it was never sent).
        rtt: Option<Duration>,
    },
    /// A push on a topic without a handler.
    Push {
        /// The topic.
        topic: String,
        /// The body, still encoded.
        body: Vec<u8>,
    },
    /// A push handler registered with [`Session::on_push_typed`] could not decode a body.
    BadPush {
        /// The topic.
        topic: String,
        /// Why.
        error: Error,
    },
    /// The server sent something this client cannot understand; the connection is being
    /// dropped (a [`Event::Disconnected`] or [`Event::Reconnecting`] follows).
    ProtocolError {
        /// What was wrong.
        problem: String,
    },
}

/// Something the I/O layer must do to the connection, from [`Session::poll_link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCommand {
    /// Send a WebSocket ping (the connection has been quiet).
    Ping,
    /// Close the connection with this WebSocket close code and drop it. The session has
    /// already accounted for the drop; calling [`Session::handle_disconnect`] too is harmless.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
}

/// Where the session's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No connection; one will be attempted when [`Session::poll_connect`] says so.
    Down,
    /// The I/O layer is connecting (TCP and WebSocket handshake).
    Connecting,
    /// The WebSocket is open; the server's welcome has not arrived yet.
    AwaitingWelcome,
    /// Connected: calls are sent as they are made.
    Up,
    /// Stopped for good.
    Closed,
}
