//! Whole frames in either encoding: the one place where frame bytes are written and read.
//!
//! The server, the clients and the load simulator call these and never lay out a frame
//! themselves, so a change to the wire format is a change to this crate alone. Every writer
//! appends to a caller's buffer (so many frames can share one allocation) and, when it fails,
//! leaves the buffer as it found it.
//!
//! | frame   | binary ([`Encoding::Binary`]) | JSON ([`Encoding::Json`]) |
//! |---------|--------------------------------|---------------------------|
//! | request | [`write_request`], [`decode_request`] | the same functions |
//! | reply   | [`write_reply`], [`write_raw_reply`] | the same functions |
//! | tick reply | [`write_reply_at`], [`write_raw_reply_at`] | the same functions |
//! | error   | [`write_error`] | the same function |
//! | push    | [`write_push`] | the same function |
//! | welcome | [`write_welcome`] | the same function |
//! | any server frame | [`decode_server_frame`] | the same function |

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::frame::{write_push_header, write_reply_header, write_request_header};
use crate::json::{self, JsonFrameError};
use crate::{BodyError, ClientFrame, Encoding, FrameError, PROTOCOL_VERSION, ServerFrame};

/// A request, borrowed from the message it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The callback id the reply must carry.
    pub id: u32,
    /// The route it calls.
    pub route: &'a str,
    /// Its body in the connection's encoding: bincode bytes, or JSON text (`null` when a JSON
    /// request left `body` out).
    pub body: &'a [u8],
}

impl Encoding {
    /// Whether frames of this encoding travel in WebSocket text messages (JSON) rather than
    /// binary ones (bincode).
    #[inline]
    pub fn is_text(self) -> bool {
        matches!(self, Encoding::Json)
    }
}

/// Decodes a client's request from a whole WebSocket message in `encoding`.
///
/// On error, [`FrameError::callback_id`] says whether the call can still be answered (with
/// `BAD_FRAME`) or the connection must be closed (1007).
#[inline]
pub fn decode_request(encoding: Encoding, message: &[u8]) -> Result<Request<'_>, FrameError> {
    match encoding {
        Encoding::Binary => match ClientFrame::decode(message)? {
            ClientFrame::Request { id, route, body } => Ok(Request { id, route, body }),
        },
        Encoding::Json => {
            let text = std::str::from_utf8(message)
                .map_err(|_| FrameError::Json(JsonFrameError::NoId("not UTF-8".into())))?;
            let request = json::JsonRequest::decode(text)?;
            let body = request.body.map_or(&b"null"[..], str::as_bytes);
            Ok(Request { id: request.id, route: request.route, body })
        }
    }
}

/// Appends a request calling `route` with `body`, tagged with callback id `id`.
#[inline]
pub fn write_request<T: Serialize + ?Sized>(
    encoding: Encoding,
    out: &mut Vec<u8>,
    id: u32,
    route: &str,
    body: &T,
) -> Result<(), BodyError> {
    undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            write_request_header(out, id, route);
            crate::encode_body_into(body, out)
        }
        Encoding::Json => {
            json::write_request_open(out, id, route);
            serde_json::to_writer(&mut *out, body)?;
            out.push(json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends a request whose body is already encoded: bincode bytes, or JSON text.
#[inline]
pub fn write_raw_request(
    encoding: Encoding,
    out: &mut Vec<u8>,
    id: u32,
    route: &str,
    body: &[u8],
) -> Result<(), BodyError> {
    undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            write_request_header(out, id, route);
            out.extend_from_slice(body);
            Ok(())
        }
        Encoding::Json => {
            check_json(body)?;
            json::write_request_open(out, id, route);
            out.extend_from_slice(body);
            out.push(json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends the reply to call `id`, carrying `body`.
///
/// Fails only when `body` does not encode, a bug in its type; nothing is appended then.
#[inline]
pub fn write_reply<T: Serialize + ?Sized>(
    encoding: Encoding,
    out: &mut Vec<u8>,
    id: u32,
    body: &T,
) -> Result<(), BodyError> {
    write_reply_at(encoding, out, id, None, body)
}

/// Appends the reply to call `id`, carrying `body`: a TickReply stamped `tick` when it is
/// given (for a connection that asked for stamps, PROTOCOL.md 4.3), else a plain Reply.
///
/// Fails only when `body` does not encode, a bug in its type; nothing is appended then.
#[inline]
pub fn write_reply_at<T: Serialize + ?Sized>(
    encoding: Encoding,
    out: &mut Vec<u8>,
    id: u32,
    tick: Option<u64>,
    body: &T,
) -> Result<(), BodyError> {
    undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            write_reply_header(out, id, tick);
            crate::encode_body_into(body, out)
        }
        Encoding::Json => {
            json::write_reply_open(out, id, tick);
            serde_json::to_writer(&mut *out, body)?;
            out.push(json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends the reply to call `id` whose body is already encoded: bincode bytes, or JSON text.
///
/// On a JSON connection a body that is not one JSON value is refused ([`BodyError::Json`])
/// and nothing is appended, so a raw route cannot send a client a broken frame.
#[inline]
pub fn write_raw_reply(encoding: Encoding, out: &mut Vec<u8>, id: u32, body: &[u8]) -> Result<(), BodyError> {
    write_raw_reply_at(encoding, out, id, None, body)
}

/// [`write_raw_reply`], stamped `tick` when it is given, as [`write_reply_at`].
#[inline]
pub fn write_raw_reply_at(
    encoding: Encoding,
    out: &mut Vec<u8>,
    id: u32,
    tick: Option<u64>,
    body: &[u8],
) -> Result<(), BodyError> {
    undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            write_reply_header(out, id, tick);
            out.extend_from_slice(body);
            Ok(())
        }
        Encoding::Json => {
            check_json(body)?;
            json::write_reply_open(out, id, tick);
            out.extend_from_slice(body);
            out.push(json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends the error answer to call `id`. Cannot fail.
#[inline]
pub fn write_error(encoding: Encoding, out: &mut Vec<u8>, id: u32, code: u16, message: &str) {
    match encoding {
        Encoding::Binary => ServerFrame::Error { id, code, message: Cow::Borrowed(message) }.encode_into(out),
        Encoding::Json => out.extend_from_slice(json::error(id, code, message).as_bytes()),
    }
}

/// Appends a push of `body` on `topic`.
///
/// Fails only when `body` does not encode, a bug in its type; nothing is appended then.
#[inline]
pub fn write_push<T: Serialize + ?Sized>(
    encoding: Encoding,
    out: &mut Vec<u8>,
    topic: &str,
    body: &T,
) -> Result<(), BodyError> {
    undo_on_error(out, |out| match encoding {
        Encoding::Binary => {
            write_push_header(out, topic);
            crate::encode_body_into(body, out)
        }
        Encoding::Json => {
            json::write_push_open(out, topic);
            serde_json::to_writer(&mut *out, body)?;
            out.push(json::FRAME_CLOSE);
            Ok(())
        }
    })
}

/// Appends the welcome frame of this [`PROTOCOL_VERSION`]. Cannot fail.
#[inline]
pub fn write_welcome(encoding: Encoding, out: &mut Vec<u8>, tick_hz: u16, conn_id: u64) {
    match encoding {
        Encoding::Binary => {
            ServerFrame::Welcome { version: PROTOCOL_VERSION, tick_hz, conn_id }.encode_into(out)
        }
        Encoding::Json => out.extend_from_slice(json::welcome(PROTOCOL_VERSION, tick_hz, conn_id).as_bytes()),
    }
}

/// Decodes any server frame from a whole WebSocket message in `encoding`. A JSON frame's
/// body is its JSON text; its topic and message are borrowed unless they hold escapes.
pub fn decode_server_frame(encoding: Encoding, message: &[u8]) -> Result<ServerFrame<'_>, FrameError> {
    match encoding {
        Encoding::Binary => ServerFrame::decode(message),
        Encoding::Json => decode_json_server_frame(message).map_err(FrameError::Json),
    }
}

/// A JSON server frame's fields, all optional: which are required depends on `type`.
#[derive(Deserialize)]
struct ServerEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<u32>,
    code: Option<u16>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
    tick: Option<u64>,
    version: Option<u16>,
    tick_hz: Option<u16>,
    #[serde(borrow, default)]
    conn_id: Option<Cow<'a, str>>,
}

fn decode_json_server_frame(message: &[u8]) -> Result<ServerFrame<'_>, JsonFrameError> {
    let envelope: ServerEnvelope<'_> =
        serde_json::from_slice(message).map_err(|e| JsonFrameError::NoId(e.to_string()))?;
    let missing = |field: &str| match envelope.id {
        Some(id) => JsonFrameError::Malformed { id, reason: format!("no `{field}`") },
        None => JsonFrameError::NoId(format!("no `{field}`")),
    };
    let body = || envelope.body.map_or(&b"null"[..], |b| b.get().as_bytes());
    match &*envelope.kind {
        "welcome" => Ok(ServerFrame::Welcome {
            version: envelope.version.ok_or_else(|| missing("version"))?,
            tick_hz: envelope.tick_hz.ok_or_else(|| missing("tick_hz"))?,
            conn_id: envelope
                .conn_id
                .as_deref()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| missing("conn_id"))?,
        }),
        "reply" => {
            let id = envelope.id.ok_or_else(|| missing("id"))?;
            Ok(match envelope.tick {
                Some(tick) => ServerFrame::TickReply { id, tick, body: body() },
                None => ServerFrame::Reply { id, body: body() },
            })
        }
        "error" => Ok(ServerFrame::Error {
            id: envelope.id.ok_or_else(|| missing("id"))?,
            code: envelope.code.ok_or_else(|| missing("code"))?,
            message: envelope.message.clone().ok_or_else(|| missing("message"))?,
        }),
        "push" => Ok(ServerFrame::Push {
            topic: envelope.topic.clone().ok_or_else(|| missing("topic"))?,
            body: body(),
        }),
        other => Err(JsonFrameError::NoId(format!("unknown frame type `{other}`"))),
    }
}

/// Runs `write`; if it fails, truncates `out` back to where it was.
#[inline]
pub(crate) fn undo_on_error(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), BodyError>,
) -> Result<(), BodyError> {
    let start = out.len();
    let written = write(out);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// Whether `body` is one JSON value.
pub(crate) fn check_json(body: &[u8]) -> Result<(), BodyError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Encoding; 2] = [Encoding::Binary, Encoding::Json];

    #[test]
    fn a_written_request_decodes_to_what_was_written() {
        for encoding in BOTH {
            let mut out = Vec::new();
            write_request(encoding, &mut out, 7, "add", &5u64).expect("encodes");
            let request = decode_request(encoding, &out).expect("decodes");
            assert_eq!((request.id, request.route), (7, "add"));
            assert_eq!(crate::decode_body_as::<u64>(encoding, request.body).expect("body"), 5);
        }
    }

    #[test]
    fn every_server_frame_round_trips_in_both_encodings() {
        for encoding in BOTH {
            let mut out = Vec::new();
            write_welcome(encoding, &mut out, 30, u64::MAX);
            assert_eq!(
                decode_server_frame(encoding, &out).expect("welcome"),
                ServerFrame::Welcome { version: PROTOCOL_VERSION, tick_hz: 30, conn_id: u64::MAX }
            );
            out.clear();
            write_error(encoding, &mut out, 3, 1000, "a \"quoted\" word");
            assert_eq!(
                decode_server_frame(encoding, &out).expect("error"),
                ServerFrame::Error { id: 3, code: 1000, message: "a \"quoted\" word".into() }
            );
            out.clear();
            write_push(encoding, &mut out, "state", &vec![1u8, 2]).expect("push");
            let ServerFrame::Push { topic, body } = decode_server_frame(encoding, &out).expect("push") else {
                panic!("not a push")
            };
            assert_eq!(topic, "state");
            assert_eq!(crate::decode_body_as::<Vec<u8>>(encoding, body).expect("body"), [1, 2]);
            out.clear();
            write_reply(encoding, &mut out, 9, "ok").expect("reply");
            let ServerFrame::Reply { id, body } = decode_server_frame(encoding, &out).expect("reply") else {
                panic!("not a reply")
            };
            assert_eq!(
                (id, crate::decode_body_as::<String>(encoding, body).expect("body")),
                (9, "ok".into())
            );
        }
    }

    #[test]
    fn a_stamped_reply_round_trips_in_both_encodings_and_an_unstamped_one_stays_a_reply() {
        for encoding in BOTH {
            let mut out = Vec::new();
            write_reply_at(encoding, &mut out, 9, Some(41), "ok").expect("reply");
            let ServerFrame::TickReply { id, tick, body } =
                decode_server_frame(encoding, &out).expect("reply")
            else {
                panic!("not a tick reply")
            };
            assert_eq!((id, tick), (9, 41));
            assert_eq!(crate::decode_body_as::<String>(encoding, body).expect("body"), "ok");
            out.clear();
            write_raw_reply_at(encoding, &mut out, 2, Some(0), b"null").expect("raw");
            assert!(matches!(
                decode_server_frame(encoding, &out),
                Ok(ServerFrame::TickReply { id: 2, tick: 0, body: b"null" })
            ));
            let mut plain = Vec::new();
            write_reply_at(encoding, &mut plain, 9, None, "ok").expect("reply");
            let mut reply = Vec::new();
            write_reply(encoding, &mut reply, 9, "ok").expect("reply");
            assert_eq!(plain, reply);
        }
        let mut out = Vec::new();
        write_reply_at(Encoding::Json, &mut out, 3, Some(12), &5u8).expect("reply");
        assert_eq!(out, br#"{"type":"reply","id":3,"tick":12,"body":5}"#);
    }

    #[test]
    fn a_json_raw_reply_must_be_json_and_a_failed_write_leaves_the_buffer_alone() {
        let mut out = b"kept".to_vec();
        assert!(write_raw_reply(Encoding::Json, &mut out, 1, b"{not json").is_err());
        assert_eq!(out, b"kept");
        write_raw_reply(Encoding::Json, &mut out, 1, b"[1]").expect("JSON");
        assert_eq!(&out[4..], br#"{"type":"reply","id":1,"body":[1]}"#);
    }

    #[test]
    fn a_json_request_without_a_body_has_a_null_body() {
        let request = decode_request(Encoding::Json, br#"{"id":1,"route":"rooms"}"#).expect("decodes");
        assert_eq!(request.body, b"null");
        let bad = decode_request(Encoding::Json, b"\xff").expect_err("not UTF-8");
        assert_eq!(bad.callback_id(), None);
    }
}
