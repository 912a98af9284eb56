//! Version 2 of the wire format (`ticksock.v2`, `ticksock.v2.json`): sessions that survive a
//! dropped link (`docs/PROTOCOL.md` section 11).
//!
//! What changes from version 1: a client's Request carries its sequence number `seq` and its
//! acknowledgement `ack` before the callback id; a client may send a [`ClientFrame::Ack`] of its
//! own, or a [`ClientFrame::Resume`] as its first frame; the Welcome carries the server run's
//! `epoch` and the session's secret; and the server answers a resume with
//! [`ServerFrame::Resumed`] or [`ServerFrame::ResumeFailed`], and acknowledges requests with
//! [`ServerFrame::Ack`]. Reply, TickReply, Error and Push are version 1's frames, written with
//! [`crate::write_reply`] (or [`crate::write_reply_at`]), [`crate::write_error`] and
//! [`crate::write_push`].
//!
//! | frame | binary | JSON |
//! |-------|--------|------|
//! | any client frame | [`decode_client_frame`] | the same function |
//! | request | [`write_request`], [`write_raw_request`] | the same functions |
//! | client ack | [`write_client_ack`] | the same function |
//! | resume | [`write_resume`] | the same function |
//! | any server frame | [`decode_server_frame`] | the same function |
//! | welcome | [`write_welcome`] | the same function |
//! | resumed | [`write_resumed`] | the same function |
//! | resume failed | [`write_resume_failed`] | the same function |
//! | server ack | [`write_server_ack`] | the same function |
//!
//! Decoding fails as version 1's does ([`FrameError::callback_id`]): a Request whose `seq`,
//! `ack` or `id` cannot be read, and any client Ack or Resume that does not decode, has no
//! callback id (the server closes the link, 1007); a Request whose route fails after
//! its id was read carries that id (the server answers `BAD_FRAME`).

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::{BodyError, Encoding, FrameError, Request};

mod binary;
mod json;

/// How many bytes a session's secret has.
pub const SECRET_LEN: usize = 16;

/// A session's secret: with the session's `conn_id` and the server's `epoch`, it lets its
/// holder resume the session, so it must stay private (never logged: the frames' `Debug` leaves
/// it out).
pub type Secret = [u8; SECRET_LEN];

/// A frame from a client to the server, in version 2.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// A call, numbered on its session. The server answers it exactly once (section 11.6).
    Request {
        /// The request's number on the session: 1 for its first request, then one more each.
        seq: u64,
        /// The client's received count: how many sequenced frames it has received.
        ack: u64,
        /// The callback id, route and body, as in version 1.
        request: Request<'a>,
    },
    /// An acknowledgement on its own.
    Ack {
        /// The client's received count.
        ack: u64,
    },
    /// Asks to continue an earlier session on this link; only valid as the link's first frame.
    Resume {
        /// The earlier session's `conn_id`, from its Welcome.
        session: u64,
        /// The `epoch` of that Welcome.
        epoch: u64,
        /// The session's current secret (from its Welcome, or from the last Resumed).
        secret: Secret,
        /// The client's received count on that session.
        received: u64,
    },
}

/// A frame from the server to a client, in version 2.
///
/// `message` and `topic` are borrowed from the message, unless a JSON frame's strings hold
/// escapes.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// The first frame on every link: a new session.
    Welcome {
        /// The wire format version: [`crate::PROTOCOL_VERSION_2`].
        version: u16,
        /// How many game ticks the server runs per second.
        tick_hz: u16,
        /// The new session's id, which also names it in a Resume.
        conn_id: u64,
        /// This server run's epoch, random at each start.
        epoch: u64,
        /// The new session's secret.
        secret: Secret,
    },
    /// The successful answer to the request with callback id `id` (a sequenced frame).
    Reply {
        /// The request's callback id.
        id: u32,
        /// The route's response, encoded as the route defines.
        body: &'a [u8],
    },
    /// The successful answer to the request with callback id `id`, stamped with the first tick
    /// whose state includes its effects (a sequenced frame), on a session whose first link
    /// asked for stamps (`?ticks=1`, PROTOCOL.md 4.3).
    TickReply {
        /// The request's callback id.
        id: u32,
        /// The first tick whose state includes the request's effects.
        tick: u64,
        /// The route's response, encoded as the route defines.
        body: &'a [u8],
    },
    /// The failed answer to the request with callback id `id` (a sequenced frame).
    Error {
        /// The request's callback id.
        id: u32,
        /// What went wrong: see [`crate::error_code`].
        code: u16,
        /// A human-readable explanation, for logs.
        message: Cow<'a, str>,
    },
    /// A message the server sends on its own (a sequenced frame).
    Push {
        /// What the body is about.
        topic: Cow<'a, str>,
        /// The push's payload, encoded as the topic defines.
        body: &'a [u8],
    },
    /// The answer to a Resume that succeeded; the replay follows it.
    Resumed {
        /// The server's received count on the session: the last request `seq` it has taken.
        received: u64,
        /// The session's new secret; the one the Resume sent is retired.
        secret: Secret,
    },
    /// The answer to a Resume that failed; the link carries on as its Welcome's new session.
    ResumeFailed {
        /// Why: see [`crate::resume_reason`].
        reason: u16,
        /// A human-readable explanation, for logs.
        message: Cow<'a, str>,
    },
    /// The server's acknowledgement of the requests it has taken.
    Ack {
        /// The server's received count.
        received: u64,
    },
}

/// Stands for a secret in `Debug` output, so that logging a frame does not leak it.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Debug for ClientFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientFrame::Request { seq, ack, request } => f
                .debug_struct("Request")
                .field("seq", seq)
                .field("ack", ack)
                .field("request", request)
                .finish(),
            ClientFrame::Ack { ack } => f.debug_struct("Ack").field("ack", ack).finish(),
            ClientFrame::Resume { session, epoch, secret: _, received } => f
                .debug_struct("Resume")
                .field("session", session)
                .field("epoch", epoch)
                .field("secret", &Redacted)
                .field("received", received)
                .finish(),
        }
    }
}

impl fmt::Debug for ServerFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerFrame::Welcome { version, tick_hz, conn_id, epoch, secret: _ } => f
                .debug_struct("Welcome")
                .field("version", version)
                .field("tick_hz", tick_hz)
                .field("conn_id", conn_id)
                .field("epoch", epoch)
                .field("secret", &Redacted)
                .finish(),
            ServerFrame::Reply { id, body } => {
                f.debug_struct("Reply").field("id", id).field("body", body).finish()
            }
            ServerFrame::TickReply { id, tick, body } => {
                f.debug_struct("TickReply").field("id", id).field("tick", tick).field("body", body).finish()
            }
            ServerFrame::Error { id, code, message } => {
                f.debug_struct("Error").field("id", id).field("code", code).field("message", message).finish()
            }
            ServerFrame::Push { topic, body } => {
                f.debug_struct("Push").field("topic", topic).field("body", body).finish()
            }
            ServerFrame::Resumed { received, secret: _ } => {
                f.debug_struct("Resumed").field("received", received).field("secret", &Redacted).finish()
            }
            ServerFrame::ResumeFailed { reason, message } => {
                f.debug_struct("ResumeFailed").field("reason", reason).field("message", message).finish()
            }
            ServerFrame::Ack { received } => f.debug_struct("Ack").field("received", received).finish(),
        }
    }
}

/// A version 1 Reply, TickReply, Error or Push as version 2 has it (the same frame); `None` for a
/// version 1 Welcome, which is not a version 2 frame.
fn from_v1(frame: crate::ServerFrame<'_>) -> Option<ServerFrame<'_>> {
    match frame {
        crate::ServerFrame::Welcome { .. } => None,
        crate::ServerFrame::Reply { id, body } => Some(ServerFrame::Reply { id, body }),
        crate::ServerFrame::TickReply { id, tick, body } => Some(ServerFrame::TickReply { id, tick, body }),
        crate::ServerFrame::Error { id, code, message } => Some(ServerFrame::Error { id, code, message }),
        crate::ServerFrame::Push { topic, body } => Some(ServerFrame::Push { topic, body }),
    }
}

/// Decodes a client's frame from a whole WebSocket message in `encoding`.
///
/// On error, [`FrameError::callback_id`] says whether the call can still be answered (with
/// `BAD_FRAME`) or the link must be closed (1007).
pub fn decode_client_frame(encoding: Encoding, message: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    match encoding {
        Encoding::Binary => binary::decode_client_frame(message),
        Encoding::Json => json::decode_client_frame(message),
    }
}

/// Decodes any server frame from a whole WebSocket message in `encoding`. A JSON frame's body
/// is its JSON text.
pub fn decode_server_frame(encoding: Encoding, message: &[u8]) -> Result<ServerFrame<'_>, FrameError> {
    match encoding {
        Encoding::Binary => binary::decode_server_frame(message),
        Encoding::Json => json::decode_server_frame(message),
    }
}

/// Appends request number `seq`, acknowledging `ack` frames, calling `route` with `body` under
/// callback id `id`.
///
/// Fails only when `body` does not encode, a bug in its type; nothing is appended then.
pub fn write_request<T: Serialize + ?Sized>(
    encoding: Encoding,
    out: &mut Vec<u8>,
    seq: u64,
    ack: u64,
    id: u32,
    route: &str,
    body: &T,
) -> Result<(), BodyError> {
    crate::wire::undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            binary::write_request_header(out, seq, ack, id, route);
            crate::encode_body_into(body, out)
        }
        Encoding::Json => {
            json::write_request_open(out, seq, ack, id, route);
            serde_json::to_writer(&mut *out, body)?;
            out.push(crate::json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends a request whose body is already encoded: bincode bytes, or JSON text.
///
/// On a JSON link a body that is not one JSON value is refused ([`BodyError::Json`]) and
/// nothing is appended.
pub fn write_raw_request(
    encoding: Encoding,
    out: &mut Vec<u8>,
    seq: u64,
    ack: u64,
    id: u32,
    route: &str,
    body: &[u8],
) -> Result<(), BodyError> {
    crate::wire::undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            binary::write_request_header(out, seq, ack, id, route);
            out.extend_from_slice(body);
            Ok(())
        }
        Encoding::Json => {
            crate::wire::check_json(body)?;
            json::write_request_open(out, seq, ack, id, route);
            out.extend_from_slice(body);
            out.push(crate::json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends a client's acknowledgement of `ack` sequenced frames. Cannot fail.
pub fn write_client_ack(encoding: Encoding, out: &mut Vec<u8>, ack: u64) {
    match encoding {
        Encoding::Binary => binary::write_client_ack(out, ack),
        Encoding::Json => json::write_client_ack(out, ack),
    }
}

/// Appends a Resume of session `session` of server run `epoch`, having received `received`
/// sequenced frames on it. Cannot fail.
pub fn write_resume(
    encoding: Encoding,
    out: &mut Vec<u8>,
    session: u64,
    epoch: u64,
    secret: &Secret,
    received: u64,
) {
    match encoding {
        Encoding::Binary => binary::write_resume(out, session, epoch, secret, received),
        Encoding::Json => json::write_resume(out, session, epoch, secret, received),
    }
}

/// Appends the Welcome of version 2 ([`crate::PROTOCOL_VERSION_2`]) for a new session.
/// Cannot fail.
pub fn write_welcome(
    encoding: Encoding,
    out: &mut Vec<u8>,
    tick_hz: u16,
    conn_id: u64,
    epoch: u64,
    secret: &Secret,
) {
    let version = crate::PROTOCOL_VERSION_2;
    match encoding {
        Encoding::Binary => binary::write_welcome(out, version, tick_hz, conn_id, epoch, secret),
        Encoding::Json => json::write_welcome(out, version, tick_hz, conn_id, epoch, secret),
    }
}

/// Appends the answer to a Resume that succeeded. Cannot fail.
pub fn write_resumed(encoding: Encoding, out: &mut Vec<u8>, received: u64, secret: &Secret) {
    match encoding {
        Encoding::Binary => binary::write_resumed(out, received, secret),
        Encoding::Json => json::write_resumed(out, received, secret),
    }
}

/// Appends the answer to a Resume that failed, for `reason` ([`crate::resume_reason`]).
/// Cannot fail.
pub fn write_resume_failed(encoding: Encoding, out: &mut Vec<u8>, reason: u16, message: &str) {
    match encoding {
        Encoding::Binary => binary::write_resume_failed(out, reason, message),
        Encoding::Json => json::write_resume_failed(out, reason, message),
    }
}

/// Appends the server's acknowledgement of the `received` requests it has taken. Cannot fail.
pub fn write_server_ack(encoding: Encoding, out: &mut Vec<u8>, received: u64) {
    match encoding {
        Encoding::Binary => binary::write_server_ack(out, received),
        Encoding::Json => json::write_server_ack(out, received),
    }
}

#[cfg(test)]
mod tests;
