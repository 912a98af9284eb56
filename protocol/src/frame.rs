//! The envelopes: one frame per WebSocket binary message.
//!
//! Every frame starts with a tag (a varint) that names its kind, followed by its fields in
//! order. A frame that carries a body ends with it: the body is the rest of the message. The
//! decoders borrow from the message, so decoding a request copies nothing.

use std::borrow::Cow;

use bincode::{BorrowDecode, Encode};

use crate::{DECODE_CONFIG, ENCODE_CONFIG};

const TAG_REQUEST: u32 = 0;

const TAG_WELCOME: u32 = 0;
const TAG_REPLY: u32 = 1;
const TAG_ERROR: u32 = 2;
const TAG_PUSH: u32 = 3;
/// The same tag in both versions (version 2 uses 4..=6), so one decoder reads it in either.
pub(crate) const TAG_TICK_REPLY: u32 = 7;

/// A frame from a client to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// A call: the server answers with exactly one [`ServerFrame::Reply`] or
    /// [`ServerFrame::Error`] that carries the same `id`.
    Request {
        /// The callback id the client keeps its callback under. The server does not interpret it.
        id: u32,
        /// The name of the route to call.
        route: &'a str,
        /// The route's request, encoded as the route defines (see [`crate::body`]).
        body: &'a [u8],
    },
}

/// A frame from the server to a client.
///
/// `message` and `topic` are borrowed from the message when decoded from bincode; a JSON frame
/// whose strings hold escapes owns them ([`crate::wire::decode_server_frame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// The first frame on every connection, sent right after the handshake.
    Welcome {
        /// The wire format version the server speaks ([`crate::PROTOCOL_VERSION`]).
        version: u16,
        /// How many game ticks the server runs per second.
        tick_hz: u16,
        /// This connection's id: the slot index in the low 32 bits, its generation in the high.
        conn_id: u64,
    },
    /// The successful answer to the request with callback id `id`.
    Reply {
        /// The request's callback id.
        id: u32,
        /// The route's response, encoded as the route defines.
        body: &'a [u8],
    },
    /// The successful answer to the request with callback id `id`, on a connection that asked
    /// for tick-stamped replies at its upgrade (`?ticks=1`, PROTOCOL.md 4.3): the request's
    /// effects are first in the game's state of tick `tick`.
    TickReply {
        /// The request's callback id.
        id: u32,
        /// The first tick whose state includes the request's effects.
        tick: u64,
        /// The route's response, encoded as the route defines.
        body: &'a [u8],
    },
    /// The failed answer to the request with callback id `id`.
    Error {
        /// The request's callback id.
        id: u32,
        /// What went wrong: see [`crate::error_code`].
        code: u16,
        /// A human-readable explanation, for logs. Clients branch on `code`, not on this.
        message: Cow<'a, str>,
    },
    /// A message the server sends on its own, answering no request.
    Push {
        /// What the body is about; clients dispatch on it.
        topic: Cow<'a, str>,
        /// The push's payload, encoded as the topic defines.
        body: &'a [u8],
    },
}

/// A frame did not decode.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The message was empty or its tag names no frame kind. No callback id could be read, so
    /// the receiver cannot answer it: the server closes the connection (1007).
    #[error("unknown frame kind {tag:?}")]
    UnknownKind {
        /// The tag that was read, or `None` when the message was too short to hold one.
        tag: Option<u32>,
    },
    /// A field did not decode. When `callback_id` is known the server answers that call with a
    /// `BAD_FRAME` error and keeps the connection; otherwise it closes it (1007).
    #[error("field `{field}` does not decode: {source}")]
    Malformed {
        /// Which field failed.
        field: &'static str,
        /// The request's callback id, if it was read before the failure.
        callback_id: Option<u32>,
        /// What bincode said.
        source: bincode::error::DecodeError,
    },
    /// The route name is longer than [`MAX_ROUTE_LEN`](crate::MAX_ROUTE_LEN) bytes. The
    /// callback id is known, so the server answers that call with `BAD_FRAME`; the message
    /// gives the name's length, not the name.
    #[error("route name of {len} bytes is over the limit of {limit}", limit = crate::MAX_ROUTE_LEN)]
    RouteTooLong {
        /// The request's callback id.
        callback_id: u32,
        /// The name's length in bytes.
        len: usize,
    },
    /// A JSON frame did not decode (see [`crate::json::JsonFrameError`] for what to do).
    #[error(transparent)]
    Json(crate::json::JsonFrameError),
}

impl FrameError {
    /// The callback id of the request that failed, when it could be read.
    pub fn callback_id(&self) -> Option<u32> {
        match self {
            FrameError::UnknownKind { .. } => None,
            FrameError::Malformed { callback_id, .. } => *callback_id,
            FrameError::RouteTooLong { callback_id, .. } => Some(*callback_id),
            FrameError::Json(e) => e.callback_id(),
        }
    }
}

impl<'a> ClientFrame<'a> {
    /// Decodes one client frame from a whole WebSocket message.
    pub fn decode(message: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(message);
        match r.tag()? {
            TAG_REQUEST => {
                let crate::Request { id, route, body } = read_request(r)?;
                Ok(ClientFrame::Request { id, route, body })
            }
            tag => Err(FrameError::UnknownKind { tag: Some(tag) }),
        }
    }

    /// Appends this frame's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            ClientFrame::Request { id, route, body } => {
                write_request_header(out, id, route);
                out.extend_from_slice(body);
            }
        }
    }

    /// This frame's encoding.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl<'a> ServerFrame<'a> {
    /// Decodes one server frame from a whole WebSocket message.
    pub fn decode(message: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(message);
        match r.tag()? {
            TAG_WELCOME => Ok(ServerFrame::Welcome {
                version: r.field("version", None)?,
                tick_hz: r.field("tick_hz", None)?,
                conn_id: r.field("conn_id", None)?,
            }),
            TAG_REPLY => {
                let id = r.field("id", None)?;
                Ok(ServerFrame::Reply { id, body: r.rest() })
            }
            TAG_ERROR => {
                let id = r.field("id", None)?;
                Ok(ServerFrame::Error {
                    id,
                    code: r.field("code", Some(id))?,
                    message: Cow::Borrowed(r.field("message", Some(id))?),
                })
            }
            TAG_PUSH => {
                let topic = r.field("topic", None)?;
                Ok(ServerFrame::Push { topic: Cow::Borrowed(topic), body: r.rest() })
            }
            TAG_TICK_REPLY => {
                let id = r.field("id", None)?;
                let tick = r.field("tick", Some(id))?;
                Ok(ServerFrame::TickReply { id, tick, body: r.rest() })
            }
            tag => Err(FrameError::UnknownKind { tag: Some(tag) }),
        }
    }

    /// Appends this frame's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            &ServerFrame::Welcome { version, tick_hz, conn_id } => {
                put(out, TAG_WELCOME);
                put(out, version);
                put(out, tick_hz);
                put(out, conn_id);
            }
            &ServerFrame::Reply { id, body } => {
                write_reply_header(out, id, None);
                out.extend_from_slice(body);
            }
            &ServerFrame::TickReply { id, tick, body } => {
                write_reply_header(out, id, Some(tick));
                out.extend_from_slice(body);
            }
            ServerFrame::Error { id, code, message } => {
                put(out, TAG_ERROR);
                put(out, *id);
                put(out, *code);
                put(out, &**message);
            }
            ServerFrame::Push { topic, body } => {
                write_push_header(out, topic);
                out.extend_from_slice(body);
            }
        }
    }

    /// This frame's encoding.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Appends the header of a request; the caller appends the body right after it.
#[inline]
pub fn write_request_header(out: &mut Vec<u8>, id: u32, route: &str) {
    put_uint(out, TAG_REQUEST.into());
    put_uint(out, id.into());
    put_str(out, route);
}

/// Appends the header of a reply: a Reply, or with `tick` a TickReply. The caller appends
/// the body right after it.
#[inline]
pub fn write_reply_header(out: &mut Vec<u8>, id: u32, tick: Option<u64>) {
    match tick {
        None => {
            put_uint(out, TAG_REPLY.into());
            put_uint(out, id.into());
        }
        Some(tick) => {
            put_uint(out, TAG_TICK_REPLY.into());
            put_uint(out, id.into());
            put_uint(out, tick);
        }
    }
}

/// Appends the header of a push; the caller appends the body right after it.
#[inline]
pub fn write_push_header(out: &mut Vec<u8>, topic: &str) {
    put_uint(out, TAG_PUSH.into());
    put_str(out, topic);
}

/// Reads a request's fields after its tag: the callback id, the route, and the rest as the
/// body. Version 2 calls it after its own `seq` and `ack`, so both versions read the id and
/// route by the same rules.
#[inline]
pub(crate) fn read_request<'a>(mut r: Reader<'a>) -> Result<crate::Request<'a>, FrameError> {
    let id = r.u32_field("id", None)?;
    let route = r.str_field("route", Some(id))?;
    if route.len() > crate::MAX_ROUTE_LEN {
        return Err(FrameError::RouteTooLong { callback_id: id, len: route.len() });
    }
    Ok(crate::Request { id, route, body: r.rest() })
}

/// Appends `value`'s bincode encoding (an integer, a string, a fixed array).
pub(crate) fn put<T: Encode>(out: &mut Vec<u8>, value: T) {
    // Cannot fail: a Vec accepts every write, and integers and strings always encode.
    bincode::encode_into_std_write(value, out, ENCODE_CONFIG).expect("encoding into a Vec");
}

/// The largest integer whose varint (section 3.1 of PROTOCOL.md) is the one byte of its value.
pub(crate) const ONE_BYTE_UINT: u8 = 250;

/// Varint markers (section 3.1 of PROTOCOL.md): a `u16`, a `u32` or a `u64` follows,
/// little-endian. The replica reader (`replica/read.rs`) reads the same markers.
pub(crate) const U16_FOLLOWS: u8 = 251;
pub(crate) const U32_FOLLOWS: u8 = 252;
pub(crate) const U64_FOLLOWS: u8 = 253;

/// Appends an unsigned integer's varint, the forms of every frame header (tags, callback ids,
/// lengths, ticks below 2^32) written in place, a `u64`'s through bincode. Bincode picks the
/// varint's width by the value, not the type, so this is `put` of any unsigned type holding
/// `value` (tested against it), at a few instructions instead of bincode's writer (66 an echo
/// call, callgrind).
#[inline]
pub(crate) fn put_uint(out: &mut Vec<u8>, value: u64) {
    if let Ok(byte) = u8::try_from(value)
        && byte <= ONE_BYTE_UINT
    {
        out.push(byte);
    } else if let Ok(short) = u16::try_from(value) {
        out.push(U16_FOLLOWS);
        out.extend_from_slice(&short.to_le_bytes());
    } else if let Ok(word) = u32::try_from(value) {
        out.push(U32_FOLLOWS);
        out.extend_from_slice(&word.to_le_bytes());
    } else {
        put(out, value);
    }
}

/// Appends a string: its length's varint, then its bytes (section 3.4).
#[inline]
pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) {
    put_uint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// Reads a frame's fields in order, remembering where it is.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(message: &'a [u8]) -> Self {
        Self { rest: message }
    }

    pub(crate) fn tag(&mut self) -> Result<u32, FrameError> {
        if self.rest.is_empty() {
            return Err(FrameError::UnknownKind { tag: None });
        }
        self.u32_field("tag", None)
    }

    pub(crate) fn field<T: BorrowDecode<'a, ()>>(
        &mut self,
        field: &'static str,
        callback_id: Option<u32>,
    ) -> Result<T, FrameError> {
        let (value, used) = bincode::borrow_decode_from_slice(self.rest, DECODE_CONFIG)
            .map_err(|source| FrameError::Malformed { field, callback_id, source })?;
        self.rest = &self.rest[used..];
        Ok(value)
    }

    /// A `u32` field: [`Reader::field`], with its varint read in place when it is in its
    /// shortest form (the only form a sender writes, section 3.1); any other (bincode decides
    /// whether it is an error) is bincode's to read, so values and errors are the same.
    #[inline]
    pub(crate) fn u32_field(
        &mut self,
        field: &'static str,
        callback_id: Option<u32>,
    ) -> Result<u32, FrameError> {
        let (value, used) = match *self.rest {
            [byte, ..] if byte <= ONE_BYTE_UINT => (u32::from(byte), 1),
            [U16_FOLLOWS, lo, hi, ..] if u16::from_le_bytes([lo, hi]) > u16::from(ONE_BYTE_UINT) => {
                (u32::from(u16::from_le_bytes([lo, hi])), 3)
            }
            [U32_FOLLOWS, a, b, c, d, ..] if u32::from_le_bytes([a, b, c, d]) > u32::from(u16::MAX) => {
                (u32::from_le_bytes([a, b, c, d]), 5)
            }
            _ => return self.field(field, callback_id),
        };
        self.rest = &self.rest[used..];
        Ok(value)
    }

    /// A string field: [`Reader::field`], read in place when its length is one byte and the
    /// message holds it whole and it is UTF-8; anything else (an error included) is bincode's
    /// to read, so the errors are the same.
    #[inline]
    pub(crate) fn str_field(
        &mut self,
        field: &'static str,
        callback_id: Option<u32>,
    ) -> Result<&'a str, FrameError> {
        if let [len, ref rest @ ..] = *self.rest
            && len <= ONE_BYTE_UINT
            && let Some((bytes, after)) = rest.split_at_checked(usize::from(len))
            && let Ok(text) = std::str::from_utf8(bytes)
        {
            self.rest = after;
            return Ok(text);
        }
        self.field(field, callback_id)
    }

    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_varint_fast_paths_write_and_read_what_bincode_does() {
        let values = [
            0u64,
            1,
            249,
            250,
            251,
            252,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        for value in values {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            put_uint(&mut fast, value);
            put(&mut slow, value);
            assert_eq!(fast, slow, "{value}");
            if let Ok(small) = u32::try_from(value) {
                let mut slow32 = Vec::new();
                put(&mut slow32, small);
                assert_eq!(fast, slow32, "{value} as u32");
                let mut r = Reader::new(&fast);
                assert_eq!(r.u32_field("id", None).expect("decodes"), small);
                assert!(r.rest().is_empty());
            }
        }
        for text in ["", "echo", "é", &"r".repeat(250), &"r".repeat(251), &"r".repeat(300)] {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            put_str(&mut fast, text);
            put(&mut slow, text);
            assert_eq!(fast, slow, "{} bytes", text.len());
            let mut r = Reader::new(&fast);
            assert_eq!(r.str_field("route", None).expect("decodes"), text);
        }
    }

    #[test]
    fn the_fast_paths_fail_as_bincode_does() {
        // Cut short, not UTF-8, a wide varint cut short: each must fail the same way with the
        // fast path as through bincode alone.
        let cases: [&[u8]; 9] = [
            &[3, b'a'],
            &[2, 0xff, 0xfe],
            &[251, 1],
            &[],
            &[252, 0, 0],
            // Longer forms than needed: bincode's to judge.
            &[251, 5, 0],
            &[252, 7, 1, 0, 0],
            &[252, 0xff, 0xff, 0, 0],
            &[253, 1, 0, 0, 0, 0, 0, 0, 0],
        ];
        for bytes in cases {
            let fast = Reader::new(bytes).str_field("route", Some(7)).map_err(|e| e.to_string());
            let slow = Reader::new(bytes).field::<&str>("route", Some(7)).map_err(|e| e.to_string());
            assert_eq!(fast, slow, "{bytes:?}");
            let fast = Reader::new(bytes).u32_field("id", None).map_err(|e| e.to_string());
            let slow = Reader::new(bytes).field::<u32>("id", None).map_err(|e| e.to_string());
            assert_eq!(fast, slow, "{bytes:?}");
        }
    }

    #[test]
    fn request_round_trips() {
        let frame = ClientFrame::Request { id: 300, route: "echo", body: b"hi" };
        let bytes = frame.to_vec();
        assert_eq!(ClientFrame::decode(&bytes).expect("decodes"), frame);
    }

    #[test]
    fn every_server_frame_round_trips() {
        let frames = [
            ServerFrame::Welcome { version: 1, tick_hz: 30, conn_id: u64::MAX },
            ServerFrame::Reply { id: u32::MAX, body: &[] },
            ServerFrame::TickReply { id: 1, tick: u64::MAX, body: &[0xde, 0xad] },
            ServerFrame::TickReply { id: 0, tick: 0, body: &[] },
            ServerFrame::Error { id: 0, code: 1000, message: "no".into() },
            ServerFrame::Push { topic: "state".into(), body: &[1, 2, 3] },
        ];
        for frame in frames {
            assert_eq!(ServerFrame::decode(&frame.to_vec()).expect("decodes"), frame);
        }
    }

    #[test]
    fn a_tick_reply_is_tag_7_then_id_tick_and_body() {
        let frame = ServerFrame::TickReply { id: 1, tick: 300, body: &[0xde, 0xad] };
        assert_eq!(frame.to_vec(), [7, 1, 251, 0x2c, 0x01, 0xde, 0xad]);
        // A tick that does not decode is an error that names the call it answered.
        let err = ServerFrame::decode(&[7, 9, 252, 1]).expect_err("truncated tick");
        assert_eq!(err.callback_id(), Some(9));
    }

    #[test]
    fn empty_message_has_no_kind() {
        assert!(matches!(ClientFrame::decode(&[]), Err(FrameError::UnknownKind { tag: None })));
    }

    #[test]
    fn unknown_tag_is_reported() {
        assert!(matches!(ClientFrame::decode(&[7]), Err(FrameError::UnknownKind { tag: Some(7) })));
    }

    #[test]
    fn a_bad_route_still_yields_the_callback_id() {
        // tag 0, id 42, route of length 2 holding invalid UTF-8.
        let err = ClientFrame::decode(&[0, 42, 2, 0xff, 0xfe]).expect_err("invalid utf-8");
        assert_eq!(err.callback_id(), Some(42));
    }

    #[test]
    fn a_truncated_id_has_no_callback_id() {
        // tag 0, then varint marker 252 (u32 follows) with only one byte.
        let err = ClientFrame::decode(&[0, 252, 1]).expect_err("truncated");
        assert_eq!(err.callback_id(), None);
    }

    #[test]
    fn a_route_over_the_limit_is_refused_without_its_name() {
        let longest = "r".repeat(crate::MAX_ROUTE_LEN);
        let frame = ClientFrame::Request { id: 9, route: &longest, body: b"x" }.to_vec();
        assert!(
            matches!(ClientFrame::decode(&frame), Ok(ClientFrame::Request { route, .. }) if route == longest)
        );
        let longer = "s".repeat(crate::MAX_ROUTE_LEN + 1);
        let err = ClientFrame::decode(&ClientFrame::Request { id: 9, route: &longer, body: b"x" }.to_vec())
            .expect_err("one byte too long");
        assert_eq!(err.callback_id(), Some(9));
        assert_eq!(err.to_string(), "route name of 65 bytes is over the limit of 64");
    }

    #[test]
    fn a_route_claiming_a_huge_length_is_an_error() {
        let hostile = [0, 1, 253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let err = ClientFrame::decode(&hostile).expect_err("too long");
        assert_eq!(err.callback_id(), Some(1));
    }
}
