//! The JSON form of the same frames, for browsers, IoT devices and people at a WebSocket
//! console: subprotocol [`SUBPROTOCOL_JSON`](crate::SUBPROTOCOL_JSON), one frame per text message.
//!
//! ```text
//! client:  {"id": 1, "route": "login", "body": {"name": "ann"}}
//! server:  {"type": "welcome", "version": 1, "tick_hz": 30, "conn_id": "4294967296"}
//!          {"type": "reply", "id": 1, "body": {"player_id": 7}}
//!          {"type": "reply", "id": 2, "tick": 42, "body": {"tick": 42}}   (asked for stamps)
//!          {"type": "error", "id": 1, "code": 1, "message": "no route `x`"}
//!          {"type": "push", "topic": "state", "body": {"tick": 5, "players": []}}
//! ```
//!
//! A body is the route's type as serde's JSON form. `conn_id` is a string because it can pass
//! 2^53, beyond what a JavaScript number holds exactly. A request may carry `"type": "request"`
//! (a `type` of `null` is present, and malformed), and may leave out `body` when the route takes
//! none (`()`, JSON `null`). Keys a request does not need are ignored; a needed key given twice
//! makes the request malformed. The route is a plain string (no escapes) of at most
//! [`MAX_ROUTE_LEN`](crate::MAX_ROUTE_LEN) bytes.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::FrameError;

/// A request, borrowed from a text message. `body` is the raw JSON text of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonRequest<'a> {
    /// The callback id.
    pub id: u32,
    /// The route.
    pub route: &'a str,
    /// The body's JSON text, borrowed from the message; `None` when absent (the route then
    /// gets JSON `null`).
    pub body: Option<&'a str>,
}

/// A request's keys. Keys it does not name are ignored (serde's default), and a key it names
/// that appears twice fails the whole envelope (serde's derive refuses duplicate fields).
#[derive(Deserialize)]
struct Envelope<'a> {
    /// Raw, and `Some` whenever the key is present: `"type": null` must not read as absent.
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    id: Option<u32>,
    /// Raw, so that no error message ever quotes a route (which may be long).
    #[serde(borrow, default, deserialize_with = "present")]
    route: Option<&'a RawValue>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
}

/// A key that is present, whatever its value (`null` included), as its raw JSON text.
fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(value).map(Some)
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<u32>,
}

/// A JSON frame did not decode.
#[derive(Debug, thiserror::Error)]
pub enum JsonFrameError {
    /// Not a request: invalid JSON, not an object, or no readable `id`. The server closes the
    /// connection (1007).
    #[error("not a ticksock request: {0}")]
    NoId(String),
    /// The `id` was read but the rest is wrong (no `route`, a route that is not a plain string
    /// or is longer than [`MAX_ROUTE_LEN`](crate::MAX_ROUTE_LEN), a `type` other than
    /// `"request"`, a key given twice). The server answers that call with `BAD_FRAME`.
    #[error("bad request {id}: {reason}")]
    Malformed {
        /// The request's callback id.
        id: u32,
        /// What is wrong.
        reason: String,
    },
}

impl JsonFrameError {
    /// The callback id, when it could be read.
    pub fn callback_id(&self) -> Option<u32> {
        match self {
            JsonFrameError::NoId(_) => None,
            JsonFrameError::Malformed { id, .. } => Some(*id),
        }
    }
}

impl From<JsonFrameError> for FrameError {
    fn from(e: JsonFrameError) -> Self {
        FrameError::Json(e)
    }
}

impl<'a> JsonRequest<'a> {
    /// Decodes a request from a whole text message. A route holding JSON escapes is rejected
    /// as malformed: route names are plain.
    pub fn decode(text: &'a str) -> Result<Self, JsonFrameError> {
        let envelope: Envelope<'a> = match serde_json::from_str(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                // Maybe only the id is readable: answer that call.
                let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|i| i.id);
                return Err(match id {
                    Some(id) => JsonFrameError::Malformed { id, reason: e.to_string() },
                    None => JsonFrameError::NoId(e.to_string()),
                });
            }
        };
        let Some(id) = envelope.id else { return Err(JsonFrameError::NoId("no `id`".into())) };
        let malformed = |reason: String| JsonFrameError::Malformed { id, reason };
        if envelope.kind.is_some_and(|k| k.get() != r#""request""#) {
            return Err(malformed("`type` must be \"request\" when present".into()));
        }
        let Some(route) = envelope.route else { return Err(malformed("no `route`".into())) };
        let route = plain_string(route.get()).map_err(|e| malformed(format!("`route` {e}")))?;
        if route.len() > crate::MAX_ROUTE_LEN {
            let limit = crate::MAX_ROUTE_LEN;
            return Err(malformed(format!(
                "route name of {} bytes is over the limit of {limit}",
                route.len()
            )));
        }
        Ok(JsonRequest { id, route, body: envelope.body.map(RawValue::get) })
    }

    /// This request as a text message.
    pub fn encode(&self) -> String {
        format!(
            r#"{{"id":{},"route":{},"body":{}}}"#,
            self.id,
            quote(self.route),
            self.body.unwrap_or("null")
        )
    }
}

/// The text of `raw`, the JSON text of one value, when it is a string without escapes.
fn plain_string(raw: &str) -> Result<&str, &'static str> {
    let inside = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).ok_or("is not a string")?;
    // A valid JSON string holds no raw control characters and no unescaped quote, so without a
    // backslash its text is exactly the bytes between the quotes.
    if inside.contains('\\') { Err("holds JSON escapes") } else { Ok(inside) }
}

/// The welcome frame.
pub fn welcome(version: u16, tick_hz: u16, conn_id: u64) -> String {
    format!(r#"{{"type":"welcome","version":{version},"tick_hz":{tick_hz},"conn_id":"{conn_id}"}}"#)
}

/// A reply frame around `body`, which must be JSON text.
pub fn reply(id: u32, body: &str) -> String {
    format!(r#"{{"type":"reply","id":{id},"body":{body}}}"#)
}

/// Appends a reply frame up to its body, with a `tick` when `tick` is given (a connection that
/// asked for tick-stamped replies, PROTOCOL.md 4.3): the caller appends the body's JSON text
/// and then [`FRAME_CLOSE`], so a body is serialized in place with no copy.
pub fn write_reply_open(out: &mut Vec<u8>, id: u32, tick: Option<u64>) {
    use std::io::Write;
    // Cannot fail: a Vec accepts every write.
    match tick {
        None => write!(out, r#"{{"type":"reply","id":{id},"body":"#),
        Some(tick) => write!(out, r#"{{"type":"reply","id":{id},"tick":{tick},"body":"#),
    }
    .expect("writing into a Vec");
}

/// Appends a request frame up to its body: the caller appends the body's JSON text and then
/// [`FRAME_CLOSE`].
pub fn write_request_open(out: &mut Vec<u8>, id: u32, route: &str) {
    use std::io::Write;
    // Cannot fail: a Vec accepts every write.
    write!(out, r#"{{"id":{id},"route":{},"body":"#, quote(route)).expect("writing into a Vec");
}

/// Appends a push frame up to its body: the caller appends the body's JSON text and then
/// [`FRAME_CLOSE`].
pub fn write_push_open(out: &mut Vec<u8>, topic: &str) {
    use std::io::Write;
    // Cannot fail: a Vec accepts every write.
    write!(out, r#"{{"type":"push","topic":{},"body":"#, quote(topic)).expect("writing into a Vec");
}

/// What ends a frame opened with [`write_reply_open`] or [`write_push_open`].
pub const FRAME_CLOSE: u8 = b'}';

/// An error frame.
pub fn error(id: u32, code: u16, message: &str) -> String {
    format!(r#"{{"type":"error","id":{id},"code":{code},"message":{}}}"#, quote(message))
}

/// A push frame around `body`, which must be JSON text.
pub fn push(topic: &str, body: &str) -> String {
    format!(r#"{{"type":"push","topic":{},"body":{body}}}"#, quote(topic))
}

fn quote(text: &str) -> String {
    // Cannot fail: a str always serializes to a JSON string.
    serde_json::to_string(text).expect("a str serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_in_place_match_the_whole_frame_builders() {
        let mut out = Vec::new();
        write_reply_open(&mut out, 42, None);
        out.extend_from_slice(br#"{"x":1}"#);
        out.push(FRAME_CLOSE);
        assert_eq!(out, reply(42, r#"{"x":1}"#).into_bytes());
        out.clear();
        write_reply_open(&mut out, 42, Some(7));
        out.extend_from_slice(b"null");
        out.push(FRAME_CLOSE);
        assert_eq!(out, br#"{"type":"reply","id":42,"tick":7,"body":null}"#);
        out.clear();
        write_push_open(&mut out, "st\"ate");
        out.extend_from_slice(b"[1,2]");
        out.push(FRAME_CLOSE);
        assert_eq!(out, push("st\"ate", "[1,2]").into_bytes());
    }

    #[test]
    fn a_request_decodes_with_its_raw_body() {
        let r =
            JsonRequest::decode(r#"{"id": 7, "route": "login", "body": {"name": "ann"}}"#).expect("decodes");
        assert_eq!(r, JsonRequest { id: 7, route: "login", body: Some(r#"{"name": "ann"}"#) });
        let text = r.encode();
        let again = JsonRequest::decode(&text).expect("round trip");
        assert_eq!((again.id, again.route), (7, "login"));
    }

    #[test]
    fn a_missing_body_is_null_and_type_request_is_allowed() {
        let r = JsonRequest::decode(r#"{"type":"request","id":1,"route":"rooms"}"#).expect("decodes");
        assert_eq!(r.body, None);
    }

    #[test]
    fn errors_keep_the_id_when_it_can_be_read() {
        assert_eq!(JsonRequest::decode("{").map_err(|e| e.callback_id()).err(), Some(None));
        assert_eq!(JsonRequest::decode("[1,2]").map_err(|e| e.callback_id()).err(), Some(None));
        assert_eq!(JsonRequest::decode(r#"{"id":3}"#).map_err(|e| e.callback_id()).err(), Some(Some(3)));
        assert_eq!(
            JsonRequest::decode(r#"{"id":4,"route":5}"#).map_err(|e| e.callback_id()).err(),
            Some(Some(4))
        );
        assert_eq!(
            JsonRequest::decode(r#"{"id":5,"type":"reply","route":"x"}"#).map_err(|e| e.callback_id()).err(),
            Some(Some(5))
        );
        assert_eq!(
            JsonRequest::decode(r#"{"id":6,"route":"a\u0062"}"#).map_err(|e| e.callback_id()).err(),
            Some(Some(6))
        );
    }

    /// The reason of a malformed request that kept its id, or a panic.
    fn malformed(text: &str) -> (u32, String) {
        match JsonRequest::decode(text) {
            Err(JsonFrameError::Malformed { id, reason }) => (id, reason),
            other => panic!("{text}: expected a malformed request, got {other:?}"),
        }
    }

    #[test]
    fn a_type_must_be_request_when_present_and_null_is_present() {
        for kind in ["null", "1", r#""reply""#, r#""requ\u0065st""#, r#"["request"]"#] {
            let (id, reason) = malformed(&format!(r#"{{"id":8,"route":"echo","type":{kind}}}"#));
            assert_eq!((id, reason.as_str()), (8, r#"`type` must be "request" when present"#), "{kind}");
        }
        let r =
            JsonRequest::decode(r#"{ "id" : 8 , "type" : "request" , "route" : "echo" }"#).expect("spaces");
        assert_eq!((r.id, r.route), (8, "echo"));
    }

    #[test]
    fn unknown_keys_are_ignored_and_known_keys_may_not_repeat() {
        let r = JsonRequest::decode(r#"{"x":[{"y":null}],"id":1,"x":2,"route":"a","body":3,"ID":4}"#)
            .expect("unknown keys ignored");
        assert_eq!(r, JsonRequest { id: 1, route: "a", body: Some("3") });
        for (key, text) in [
            ("route", r#"{"id":2,"route":"a","route":"a"}"#),
            ("body", r#"{"id":2,"route":"a","body":1,"body":1}"#),
            ("type", r#"{"id":2,"type":"request","route":"a","type":"request"}"#),
        ] {
            let (id, reason) = malformed(text);
            assert_eq!(id, 2);
            assert!(reason.contains(&format!("duplicate field `{key}`")), "{text}: {reason}");
        }
        // Two ids, equal or not: no id can be read.
        let twice = JsonRequest::decode(r#"{"id":3,"id":3,"route":"a"}"#).expect_err("two ids");
        assert_eq!(twice.callback_id(), None);
    }

    #[test]
    fn a_route_is_a_plain_string_of_at_most_max_route_len_bytes_and_is_never_quoted_in_errors() {
        let longest = "r".repeat(crate::MAX_ROUTE_LEN);
        let text = format!(r#"{{"id":1,"route":"{longest}"}}"#);
        assert_eq!(JsonRequest::decode(&text).expect("64 bytes").route, longest);
        // Multi-byte UTF-8 counts in bytes: 32 two-byte characters are 64 bytes, 33 are 66.
        assert!(JsonRequest::decode(&format!(r#"{{"id":1,"route":"{}"}}"#, "é".repeat(32))).is_ok());
        for route in [
            format!(r#""{longest}r""#),
            format!(r#""{}""#, "é".repeat(33)),
            format!(r#""{}""#, "w".repeat(65_000)),
        ] {
            let (id, reason) = malformed(&format!(r#"{{"id":2,"route":{route}}}"#));
            assert_eq!(id, 2);
            assert!(
                reason.starts_with("route name of ") && reason.ends_with(" bytes is over the limit of 64"),
                "{reason}"
            );
        }
        let escaped = format!(r#""{}\u0062""#, "q".repeat(100));
        let (_, reason) = malformed(&format!(r#"{{"id":3,"route":{escaped}}}"#));
        assert_eq!(reason, "`route` holds JSON escapes");
        assert_eq!(malformed(r#"{"id":4,"route":null}"#).1, "`route` is not a string");
        assert_eq!(malformed(r#"{"id":5,"route":["a"]}"#).1, "`route` is not a string");
    }

    #[test]
    fn server_frames_are_valid_json() {
        for text in [
            welcome(1, 30, u64::MAX),
            reply(1, "null"),
            error(2, 1, "a \"quoted\" word"),
            push("state", "[1]"),
        ] {
            let _: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        }
        assert_eq!(error(2, 1, "x\"y"), r#"{"type":"error","id":2,"code":1,"message":"x\"y"}"#);
    }
}
