//! What the session tells its drivers: [`Event`]s for the game, [`LinkCommand`]s for the I/O
//! layer, and where the connection is ([`LinkState`]); and why a version 2 session ended
//! ([`SessionEnd`]).

use std::fmt;
use std::time::Duration;

#[cfg(doc)]
use super::RedirectFailure;
#[cfg(doc)]
use super::Session;
use super::{CallId, Outcome};
use crate::Error;

/// Something the game should know about, from [`Session::poll_event`].
#[derive(Debug)]
pub enum Event {
    /// A new server session is up: log in (again) now. On version 1, every welcome; on
    /// version 2, the first welcome and the new session after [`Event::SessionEnded`] (a
    /// resumed session is [`Event::Resumed`] instead). Calls queued offline wait until the next
    /// [`Session::poll_event`], so calls made while handling this one (logging in again) go
    /// out before them. See "After a welcome" in the [`session`](crate::session) docs.
    Connected {
        /// The server's game ticks per second.
        tick_hz: u16,
        /// This connection's (version 2: session's) id on the server (opaque; for logs).
        conn_id: u64,
    },
    /// The link that was up has dropped, **and the server session with it**: calls in flight
    /// have failed with [`Outcome::Disconnected`]. On version 1 every drop is one; on
    /// version 2, a drop after the server's close frame (it ends the session) or when the
    /// session stops. A [`Event::Reconnecting`] or [`Event::Stopped`] follows (the latter when
    /// the session gave up, or a callback closed it meanwhile).
    Disconnected,
    /// Version 2: the link that was up has dropped, but **the server session is kept**: calls
    /// in flight wait for their answers and pushes are held by the server; the next link
    /// resumes the session ([`Event::Resumed`], or [`Event::SessionEnded`] if the server
    /// refuses). A [`Event::Reconnecting`] follows. Nothing to do but wait (a game may show
    /// that it is reconnecting).
    LinkDropped,
    /// Version 2: the session continues on a new link. Nothing was lost: the server sends
    /// again what the client missed, the client resends the requests the server missed, and
    /// every call in flight gets its one answer. Do not log in again.
    Resumed {
        /// The server's game ticks per second.
        tick_hz: u16,
        /// The session's id on the server (opaque; for logs): the one of its first welcome.
        conn_id: u64,
    },
    /// Version 2: the session that was waiting to be resumed is gone, for `reason`. Calls in
    /// flight have failed with [`Outcome::Disconnected`] (they may or may not have run), and
    /// what the server held for the client is lost. An [`Event::Connected`] for the new
    /// session follows (at once when the server refused the resume, else on the next link):
    /// log in again there.
    SessionEnded {
        /// Why.
        reason: SessionEnd,
    },
    /// A call was redirected to another node (error `redirect`, `docs/PROTOCOL.md` section 12)
    /// and the session has moved there: this is its connection now, reconnects go to `url`,
    /// and the redirected call has been made again here (its callback or
    /// [`Event::Outcome`] gets this node's answer). **Do not log in again**: the ticket in the
    /// redirect logged this connection in as the same user; it is a new server session, in no
    /// room (the redirected call, an arena's `join`, puts it in one). Calls queued meanwhile
    /// go out once this node has answered the redirected call. If the node refuses the ticket,
    /// the call fails with [`RedirectFailure::TicketRefused`](super::RedirectFailure) and an
    /// [`Event::Disconnected`] follows, then an [`Event::Connected`] on the original URL.
    Redirected {
        /// The node's URL, without its one-use ticket (where reconnects go).
        url: String,
        /// The server's game ticks per second.
        tick_hz: u16,
        /// This connection's (version 2: session's) id on the node (opaque; for logs).
        conn_id: u64,
    },
    /// The server closed the connection because of its token (`docs/PROTOCOL.md` 13): it was
    /// refused (close 4003, at the upgrade) or it expired and no new one came within the
    /// server's grace (close 4004, after an `auth_expired` push). The session has forgotten
    /// the token ([`Session::token`] is `None`) and reconnects anonymous as usual
    /// ([`Event::Disconnected`] or [`Event::LinkDropped`] follows): sign in again and hand the
    /// new token to [`Session::authenticate`].
    TokenRefused {
        /// `true` for an expired token (4004), `false` for a refused one (4003).
        expired: bool,
    },
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
    /// The server dropped `count` events (pushes that are not latest-wins states, such as
    /// chat) because this client read too slowly, since it last said so (push
    /// `ticksock.dropped`, PROTOCOL.md 7.3). The event after it in the stream is the first
    /// kept after the drops. A game may show "messages missed"; the states it gets are the
    /// latest, not every one.
    EventsDropped {
        /// Events dropped since the last such event.
        count: u64,
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
    /// A call was redirected: set this connection aside as the **old link** (send nothing more
    /// on it; hand what it receives to [`Session::handle_old_link_frame`], and its end to
    /// [`Session::handle_old_link_gone`]), and open the next connection, which
    /// [`Session::poll_connect`] asks for at once, to [`Session::connect_url`]. Close the old
    /// link with 1000 as soon as [`Session::keeps_old_link`] says `false`. The session has
    /// already accounted for the switch.
    Redirect,
    /// Send a WebSocket ping (the connection has been quiet).
    Ping,
    /// Drop the connection without a close frame, as a lost network would (version 2: a close
    /// frame would end the server session, which the next link resumes). The session has
    /// already accounted for the drop; calling [`Session::handle_disconnect`] too is harmless.
    Drop,
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
    /// Version 2: the welcome arrived and the client asked to resume its session; the answer
    /// has not arrived yet. Calls wait in the offline queue meanwhile.
    Resuming,
    /// Connected: calls are sent as they are made.
    Up,
    /// Stopped for good.
    Closed,
}

/// Why a version 2 session ended while it waited to be resumed ([`Event::SessionEnded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The server refused the resume (`docs/PROTOCOL.md` 11.5).
    ResumeFailed {
        /// One of [`ticksock_protocol::resume_reason`]: `ended` (2, its grace passed or it was
        /// closed), `gap_lost` (3), `restarted` (4, the server restarted), ...
        reason: u16,
        /// The server's explanation, for logs.
        message: String,
    },
    /// The server of the new link speaks only version 1 (it was replaced, or downgraded):
    /// there is nothing to resume.
    ServerSpeaksV1,
    /// The server's counts contradict the client's (a server bug): the session cannot be
    /// continued safely.
    CountMismatch {
        /// What did not add up.
        problem: String,
    },
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::ResumeFailed { reason, message } => write!(
                f,
                "the server refused the resume: {} ({reason}): {message}",
                ticksock_protocol::resume_reason::name(*reason)
            ),
            SessionEnd::ServerSpeaksV1 => f.write_str("the server now speaks only version 1"),
            SessionEnd::CountMismatch { problem } => {
                write!(f, "the server's counts do not add up: {problem}")
            }
        }
    }
}
