//! What a call is called ([`CallId`]) and how it ends ([`Outcome`]).

use std::fmt;

use serde::de::DeserializeOwned;

use crate::Error;

/// A call's callback id, as sent on the wire. Opaque apart from that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u32);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a call ended. Each call has exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server's reply: the route's response body, still encoded ([`Outcome::decode`]).
    Reply(Vec<u8>),
    /// The server's reply on a connection that asked for tick-stamped replies
    /// ([`Config::tick_stamps`](crate::Config::tick_stamps), `docs/PROTOCOL.md` 4.3): the body,
    /// and the first tick whose state includes the call's effects, to reconcile a prediction
    /// against. [`Outcome::reply_body`] reads the body of either reply.
    TickReply {
        /// The first tick whose state (a `state` push, a replication update) includes the
        /// call's effects; no earlier tick's does.
        tick: u64,
        /// The route's response body, still encoded.
        body: Vec<u8>,
    },
    /// The server's error reply.
    Error {
        /// What went wrong ([`ticksock_protocol::error_code`], or the route's own codes from 1000).
        code: u16,
        /// The server's explanation, for logs.
        message: String,
    },
    /// No answer within the call's timeout. The server may or may not have handled it.
    Timeout,
    /// The call was sent, and the server session it was sent to ended before its answer came:
    /// the link dropped on version 1, or (version 2) the session could not be resumed. The
    /// server may or may not have handled it.
    Disconnected,
    /// Version 2: the server had taken the request already and no longer holds its answer
    /// (error `stale_request`): it ran at most once, and its answer is lost.
    AnswerLost,
    /// The call was never sent: the session was closed or gave up reconnecting.
    Closed,
    /// The server redirected the call to another node (error `redirect`, `docs/PROTOCOL.md`
    /// section 12) and the client could not make it there: see [`RedirectFailure`]. The call
    /// did not run on the node that redirected it; on the node it was sent to, it did not run
    /// either, except after [`RedirectFailure::TooMany`] (where each node redirected it).
    Redirect(RedirectFailure),
}

/// Why a redirected call failed ([`Outcome::Redirect`]). Each URL is the one the server sent,
/// ticket included (a ticket is good for one connection only, and is spent or expired by now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectFailure {
    /// The call was redirected again after [`MAX_REDIRECTS`](super::MAX_REDIRECTS) redirects
    /// followed: the nodes disagree on where it belongs (a server bug). `url` is the last one.
    TooMany {
        /// The redirect not followed.
        url: String,
    },
    /// The URL is not one this client can connect to (not `ws://` with a host, a malformed
    /// ticket, TLS, a name that does not resolve). The session stays where it was.
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The connection to the node failed before its welcome. The session goes back to
    /// reconnecting to the URL it was made with, with backoff.
    Unreachable {
        /// The URL.
        url: String,
    },
    /// The node refused the ticket (close 4002, [`ticksock_protocol::CLOSE_BAD_TICKET`]): it
    /// handled no request. The session goes back to reconnecting to the URL it was made with,
    /// with backoff, where the game logs in again ([`Event::Connected`](super::Event::Connected)).
    TicketRefused {
        /// The URL.
        url: String,
    },
}

impl fmt::Display for RedirectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectFailure::TooMany { url } => {
                write!(f, "redirected again (to {url}) after {} redirects followed", super::MAX_REDIRECTS)
            }
            RedirectFailure::BadUrl { url, problem } => {
                write!(f, "cannot follow the redirect to {url}: {problem}")
            }
            RedirectFailure::Unreachable { url } => {
                write!(f, "the node of the redirect, {url}, could not be reached")
            }
            RedirectFailure::TicketRefused { url } => {
                write!(f, "the node of the redirect, {url}, refused its ticket (close 4002)")
            }
        }
    }
}

impl Outcome {
    /// The reply's body, or the failure as an [`Error`].
    pub fn into_result(self) -> Result<Vec<u8>, Error> {
        match self {
            Outcome::Reply(body) | Outcome::TickReply { body, .. } => Ok(body),
            Outcome::Error { code, message } => Err(Error::Server { code, message }),
            Outcome::Timeout => Err(Error::Timeout),
            Outcome::Disconnected => Err(Error::Disconnected),
            Outcome::AnswerLost => Err(Error::AnswerLost),
            Outcome::Closed => Err(Error::Closed),
            Outcome::Redirect(failure) => Err(Error::Redirect(failure)),
        }
    }

    /// The reply decoded as `T`, or the failure as an [`Error`].
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, Error> {
        let body = self.into_result()?;
        ticksock_protocol::decode_body(&body).map_err(Error::Decode)
    }

    /// Whether the server answered with a reply (not an error), stamped or not.
    pub fn is_reply(&self) -> bool {
        matches!(self, Outcome::Reply(_) | Outcome::TickReply { .. })
    }

    /// The body of the server's reply, stamped or not; `None` for any other outcome.
    pub fn reply_body(&self) -> Option<&[u8]> {
        match self {
            Outcome::Reply(body) | Outcome::TickReply { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The tick a stamped reply carries: the first tick whose state includes the call's
    /// effects. `None` for a plain reply and for every other outcome.
    pub fn tick(&self) -> Option<u64> {
        match self {
            Outcome::TickReply { tick, .. } => Some(*tick),
            _ => None,
        }
    }
}
