//! Version 2 frames in bincode (`docs/PROTOCOL.md` section 11.3): a tag, then the fields in
//! order, as in version 1. The new fields are varint `u64`s and the 16 raw bytes of a secret.
//!
//! A Request's fields after `seq` and `ack` are read by version 1's reader, and Reply, Error,
//! Push and TickReply (tag 7 in both versions) are version 1's frames, decoded by version 1's
//! decoder.

use super::{ClientFrame, Secret, ServerFrame, from_v1};
use crate::FrameError;
use crate::frame::{Reader, put, read_request};

const TAG_REQUEST: u32 = 0;
const TAG_CLIENT_ACK: u32 = 1;
const TAG_RESUME: u32 = 2;

const TAG_WELCOME: u32 = 0;
const TAG_REPLY: u32 = 1;
const TAG_PUSH: u32 = 3;
const TAG_RESUMED: u32 = 4;
const TAG_RESUME_FAILED: u32 = 5;
const TAG_SERVER_ACK: u32 = 6;

/// Decodes one client frame from a whole binary message.
pub(super) fn decode_client_frame(message: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    let mut r = Reader::new(message);
    match r.tag()? {
        TAG_REQUEST => {
            let seq = r.field("seq", None)?;
            let ack = r.field("ack", None)?;
            Ok(ClientFrame::Request { seq, ack, request: read_request(r)? })
        }
        TAG_CLIENT_ACK => Ok(ClientFrame::Ack { ack: r.field("ack", None)? }),
        TAG_RESUME => Ok(ClientFrame::Resume {
            session: r.field("session", None)?,
            epoch: r.field("epoch", None)?,
            secret: r.field("secret", None)?,
            received: r.field("received", None)?,
        }),
        tag => Err(FrameError::UnknownKind { tag: Some(tag) }),
    }
}

/// Decodes one server frame from a whole binary message.
pub(super) fn decode_server_frame(message: &[u8]) -> Result<ServerFrame<'_>, FrameError> {
    let mut r = Reader::new(message);
    match r.tag()? {
        TAG_WELCOME => Ok(ServerFrame::Welcome {
            version: r.field("version", None)?,
            tick_hz: r.field("tick_hz", None)?,
            conn_id: r.field("conn_id", None)?,
            epoch: r.field("epoch", None)?,
            secret: r.field("secret", None)?,
        }),
        tag @ (TAG_REPLY..=TAG_PUSH | crate::frame::TAG_TICK_REPLY) => {
            // Version 1's frames, read by version 1's decoder; it never makes a Welcome of
            // these tags, but if it did, that would be no frame of this tag.
            from_v1(crate::ServerFrame::decode(message)?).ok_or(FrameError::UnknownKind { tag: Some(tag) })
        }
        TAG_RESUMED => Ok(ServerFrame::Resumed {
            received: r.field("received", None)?,
            secret: r.field("secret", None)?,
        }),
        TAG_RESUME_FAILED => Ok(ServerFrame::ResumeFailed {
            reason: r.field("reason", None)?,
            message: r.field::<&str>("message", None)?.into(),
        }),
        TAG_SERVER_ACK => Ok(ServerFrame::Ack { received: r.field("received", None)? }),
        tag => Err(FrameError::UnknownKind { tag: Some(tag) }),
    }
}

/// Appends a request's fields up to its body: the caller appends the body right after it.
pub(super) fn write_request_header(out: &mut Vec<u8>, seq: u64, ack: u64, id: u32, route: &str) {
    put(out, TAG_REQUEST);
    put(out, seq);
    put(out, ack);
    put(out, id);
    put(out, route);
}

/// Appends a client's Ack.
pub(super) fn write_client_ack(out: &mut Vec<u8>, ack: u64) {
    put(out, TAG_CLIENT_ACK);
    put(out, ack);
}

/// Appends a Resume.
pub(super) fn write_resume(out: &mut Vec<u8>, session: u64, epoch: u64, secret: &Secret, received: u64) {
    put(out, TAG_RESUME);
    put(out, session);
    put(out, epoch);
    put(out, secret);
    put(out, received);
}

/// Appends a Welcome.
pub(super) fn write_welcome(
    out: &mut Vec<u8>,
    version: u16,
    tick_hz: u16,
    conn_id: u64,
    epoch: u64,
    secret: &Secret,
) {
    put(out, TAG_WELCOME);
    put(out, version);
    put(out, tick_hz);
    put(out, conn_id);
    put(out, epoch);
    put(out, secret);
}

/// Appends a Resumed.
pub(super) fn write_resumed(out: &mut Vec<u8>, received: u64, secret: &Secret) {
    put(out, TAG_RESUMED);
    put(out, received);
    put(out, secret);
}

/// Appends a ResumeFailed.
pub(super) fn write_resume_failed(out: &mut Vec<u8>, reason: u16, message: &str) {
    put(out, TAG_RESUME_FAILED);
    put(out, reason);
    put(out, message);
}

/// Appends a server's Ack.
pub(super) fn write_server_ack(out: &mut Vec<u8>, received: u64) {
    put(out, TAG_SERVER_ACK);
    put(out, received);
}
